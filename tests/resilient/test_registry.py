"""The default registry: get_breaker, breakers(), health() and configure()."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from resilient import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    State,
    breakers,
    circuit_breaker,
    configure,
    get_breaker,
    health,
)
from resilient.stores import MemoryStore


class DependencyDown(ConnectionError):
    """The protected dependency failed."""


def down():
    raise DependencyDown("down")


# -- get_breaker ------------------------------------------------------------------------


def test_get_breaker_creates_once_and_then_returns_the_same_breaker():
    """The first request creates the breaker; every later one gets that same object."""
    first = get_breaker("tests.registry.same", failure_threshold=3)
    assert isinstance(first, CircuitBreaker)
    assert get_breaker("tests.registry.same") is first
    assert get_breaker("tests.registry.same", failure_threshold=3) is first
    assert first.config.failure_threshold == 3


def test_equivalent_settings_are_the_same_settings():
    """Settings that validate to the same config (30 and 30.0, a class and a 1-tuple) match."""
    first = get_breaker("tests.registry.equiv", recovery_timeout=30, ignore=KeyError)
    assert get_breaker("tests.registry.equiv", recovery_timeout=30.0, ignore=(KeyError,)) is first
    assert get_breaker("tests.registry.defaults", recovery_timeout=30) is get_breaker(
        "tests.registry.defaults"
    )


def test_different_settings_for_one_name_raise_config_error_naming_both():
    """Asking for an existing name with other settings names both configurations and the fix."""
    get_breaker("tests.registry.conflict", failure_threshold=3, recovery_timeout=10)
    with pytest.raises(ConfigError) as info:
        get_breaker("tests.registry.conflict", failure_threshold=4)
    message = str(info.value)
    assert "get_breaker('tests.registry.conflict', failure_threshold=3, recovery_timeout=10)" in (
        message
    )
    assert "get_breaker('tests.registry.conflict', failure_threshold=4)" in message
    assert "one name is one dependency" in message


def test_a_different_store_for_one_name_is_a_conflict():
    """Asking for an existing name with another store raises ConfigError naming the store."""
    get_breaker("tests.registry.store")
    with pytest.raises(ConfigError, match="MemoryStore"):
        get_breaker("tests.registry.store", store=MemoryStore())


def test_get_breaker_validates_before_creating():
    """An invalid setting creates nothing: the name stays free for a valid request."""
    with pytest.raises(ConfigError):
        get_breaker("tests.registry.invalid", failure_threshold=0)
    assert "tests.registry.invalid" not in {b.name for b in breakers()}
    assert get_breaker("tests.registry.invalid", failure_threshold=2).config.failure_threshold == 2


def test_get_breaker_from_many_threads_creates_one_breaker():
    """Sixteen threads asking for a new name at the same moment all get one breaker."""
    barrier = threading.Barrier(16)
    got: list[CircuitBreaker] = []
    lock = threading.Lock()

    def ask():
        barrier.wait()
        breaker = get_breaker("tests.registry.race", failure_threshold=7)
        with lock:
            got.append(breaker)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 16
    assert len({id(b) for b in got}) == 1


def test_a_decorator_and_get_breaker_share_the_breaker():
    """get_breaker(name) returns the breaker a decorated function with that name uses."""

    @circuit_breaker("tests.registry.decorated", failure_threshold=2)
    def fetch():
        raise DependencyDown

    breaker = get_breaker("tests.registry.decorated")
    assert fetch.breaker is breaker
    breaker.trip()
    with pytest.raises(CircuitOpenError):
        fetch()


# -- breakers() and health() ---------------------------------------------------------------


def test_breakers_lists_registered_breakers_sorted_by_name():
    """breakers() lists every registry breaker by name; a directly built breaker is not listed."""
    b = get_breaker("tests.registry.list.b")
    a = get_breaker("tests.registry.list.a")
    direct = CircuitBreaker("tests.registry.list.direct")
    names = [x.name for x in breakers()]
    assert names == sorted(names)
    assert names.index(a.name) < names.index(b.name)
    assert direct not in breakers()


def test_health_is_json_serialisable_and_shows_each_breaker(frozen):
    """health() goes through json.dumps and shows every breaker's state and counters."""
    breaker = get_breaker("tests.registry.health", failure_threshold=1)
    with pytest.raises(DependencyDown):
        breaker.call(down)
    report = json.loads(json.dumps(health()))
    entry = report["breakers"]["tests.registry.health"]
    assert entry["state"] == "open"
    assert entry["failures"] == 1
    assert entry["consecutive_failures"] == 1
    assert entry["retry_after"] == pytest.approx(30.0)
    assert entry["last_error"] == "DependencyDown('down')"
    assert entry["has_fallback"] is False
    for field in ("calls", "successes", "rejections", "fallbacks", "timeouts", "failure_rate"):
        assert field in entry


def test_health_status_is_ok_degraded_or_failing(frozen):
    """Status: ok when all closed, degraded when half-open, failing when open without fallback."""
    breaker = get_breaker("tests.registry.status", recovery_timeout=10)
    assert health()["status"] == "ok"
    breaker.trip()
    assert health()["status"] == "failing"
    frozen.tick(10)
    assert health()["status"] == "degraded"
    breaker.reset()
    assert health()["status"] == "ok"
    breaker.disable()
    assert health()["status"] == "ok"


# -- configure() ------------------------------------------------------------------------------


def test_configure_defaults_apply_to_breakers_created_before_it(frozen):
    """A breaker created before configure() takes the new defaults at its first call."""
    breaker = get_breaker("tests.registry.early")
    configure(failure_threshold=2, recovery_timeout=5)
    for _ in range(2):
        with pytest.raises(DependencyDown):
            breaker.call(down)
    assert breaker.state is State.OPEN
    assert breaker.config.recovery_timeout == 5


def test_configure_after_the_first_call_leaves_that_breaker_alone(frozen):
    """Defaults are resolved once, at the first call: later configure() calls do not change them."""
    breaker = get_breaker("tests.registry.sealed")
    assert breaker.call(lambda: 1) == 1
    configure(failure_threshold=1)
    with pytest.raises(DependencyDown):
        breaker.call(down)
    assert breaker.state is State.CLOSED
    assert breaker.config.failure_threshold == 5


def test_explicit_settings_win_over_configure_defaults(frozen):
    """A breaker's own settings beat configure() defaults; the rest come from configure()."""
    configure(failure_threshold=9, recovery_timeout=5)
    breaker = get_breaker("tests.registry.explicit", failure_threshold=2)
    assert breaker.config.failure_threshold == 2
    assert breaker.config.recovery_timeout == 5


def test_repeated_configure_calls_merge(frozen):
    """configure(a=...) then configure(b=...) keeps both defaults."""
    configure(failure_threshold=3)
    configure(recovery_timeout=4)
    config = get_breaker("tests.registry.merged").config
    assert (config.failure_threshold, config.recovery_timeout) == (3, 4)


def test_configure_store_becomes_the_default_store():
    """configure(store=...) is the store of breakers that do not name their own."""
    store = MemoryStore()
    configure(store=store)
    assert get_breaker("tests.registry.default_store").store is store


def test_configure_validation_is_atomic():
    """An invalid configure() call raises ConfigError and changes no default at all."""
    configure(recovery_timeout=7)
    with pytest.raises(ConfigError, match="call_timeout"):
        configure(failure_threshold=3, call_timeout=-1)
    with pytest.raises(ConfigError, match="colour"):
        configure(failure_threshold=3, colour="red")
    with pytest.raises(ConfigError, match="window_seconds"):
        configure(window_size=10, window_seconds=5)
    with pytest.raises(ConfigError, match="failure_threshold"):
        configure(store=MemoryStore(), failure_threshold=0)
    breaker = get_breaker("tests.registry.atomic")
    config = breaker.config
    assert (config.failure_threshold, config.recovery_timeout) == (5, 7)
    assert config.window_size is None
    assert breaker.store is None


def test_configure_merged_with_earlier_defaults_is_validated_whole():
    """configure() validates the merged defaults: it cannot contradict earlier ones."""
    configure(window_size=10)
    with pytest.raises(ConfigError, match="window_size"):
        configure(window_seconds=5)
    assert get_breaker("tests.registry.merge_checked").config.window_seconds is None


def test_defaults_that_contradict_a_breakers_own_settings_give_way(frozen, caplog):
    """A configure() default that contradicts a breaker's own setting is dropped, with a warning.

    The breaker's own settings win, so its calls go through instead of every call
    raising ConfigError.
    """
    configure(max_recovery_timeout=60, failure_threshold=2)
    breaker = get_breaker("tests.registry.contradiction", recovery_timeout=120)
    with caplog.at_level(logging.WARNING, logger="resilient"):
        assert breaker.call(lambda: "ok") == "ok"
    assert breaker.config.recovery_timeout == 120
    assert breaker.config.max_recovery_timeout is None
    assert breaker.config.failure_threshold == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "tests.registry.contradiction" in m and "max_recovery_timeout=60" in m for m in warnings
    )


def test_a_breaker_built_from_a_config_object_ignores_configure():
    """A CircuitBreaker given a BreakerConfig uses it whole; configure() defaults do not apply."""
    configure(failure_threshold=9)
    breaker = CircuitBreaker("tests.registry.from_config", BreakerConfig(recovery_timeout=3))
    assert breaker.config.failure_threshold == 5
    assert breaker.config.recovery_timeout == 3
