"""``@circuit_breaker`` on plain (sync) functions.  Twin: test_decorator_async.py."""

from __future__ import annotations

import inspect
import pickle
import typing

import pytest

import resilient
from resilient import (
    CircuitOpenError,
    ConfigError,
    State,
    circuit_breaker,
    configure,
    get_breaker,
)


class DependencyDown(ConnectionError):
    """The protected dependency failed."""


class InvalidTokenError(Exception):
    """A business outcome, not a dependency failure."""


class Dependency:
    """A stand-in for a remote service: counts calls, fails while ``down``."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    def __call__(self, value: int = 0) -> int:
        self.calls += 1
        if self.down:
            raise DependencyDown("connection refused")
        return value


@circuit_breaker
def bare_fetch(key: str, *, default: str = "-") -> str:
    """Fetch one key."""
    return f"{key}:{default}"


@circuit_breaker("tests.sync.settings", failure_threshold=3, recovery_timeout=10)
def with_settings(x: int) -> int:
    return x


@circuit_breaker("tests.sync.defaults")
def uses_defaults(dep: Dependency) -> int:
    return dep()


def protect(dep: Dependency, name: str = "tests.sync.dep", **settings: typing.Any):
    @circuit_breaker(name, **settings)
    def call(value: int = 0) -> int:
        return dep(value)

    return call


# -- what the decorator keeps --------------------------------------------------------


def test_bare_decorator_names_the_breaker_module_qualname():
    """Bare @circuit_breaker names its breaker after the function's module and qualname."""
    assert bare_fetch.breaker.name == f"{__name__}.bare_fetch"
    assert bare_fetch.breaker is get_breaker(f"{__name__}.bare_fetch")


def test_named_decorator_uses_the_name_and_settings():
    """The called form uses the given name and settings for its breaker."""
    assert with_settings.breaker.name == "tests.sync.settings"
    assert with_settings.breaker.config.failure_threshold == 3
    assert with_settings.breaker.config.recovery_timeout == 10


def test_name_doc_module_and_wrapped_survive():
    """__name__, __qualname__, __doc__, __module__ and __wrapped__ are the original's."""
    assert bare_fetch.__name__ == "bare_fetch"
    assert bare_fetch.__qualname__ == "bare_fetch"
    assert bare_fetch.__doc__ == "Fetch one key."
    assert bare_fetch.__module__ == __name__
    assert bare_fetch.__wrapped__.__name__ == "bare_fetch"
    assert callable(bare_fetch.__wrapped__)


def test_signature_and_type_hints_survive():
    """inspect.signature and typing.get_type_hints see the original function."""
    sig = inspect.signature(bare_fetch)
    assert list(sig.parameters) == ["key", "default"]
    assert sig.parameters["default"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["default"].default == "-"
    assert typing.get_type_hints(bare_fetch) == {"key": str, "default": str, "return": str}


def test_a_sync_function_stays_sync():
    """A decorated sync function is not reported as a coroutine function and returns plainly."""
    assert not inspect.iscoroutinefunction(bare_fetch)
    assert bare_fetch("k", default="d") == "k:d"


def test_arguments_and_result_pass_through_untouched():
    """Positional, keyword, default and variadic arguments reach the function as given."""
    seen = []

    @circuit_breaker("tests.sync.args")
    def record(a, b=2, *rest, c, **extra):
        seen.append((a, b, rest, c, extra))
        return a

    assert record(1, c=3) == 1
    record(1, 5, 6, 7, c=3, d=4)
    assert seen == [(1, 2, (), 3, {}), (1, 5, (6, 7), 3, {"d": 4})]


def test_repr_names_the_breaker():
    """repr() of a decorated function says which breaker protects what."""
    assert "tests.sync.settings" in repr(with_settings)
    assert "with_settings" in repr(with_settings)


def test_decorated_function_pickles_by_reference():
    """A module-level decorated function pickles and unpickles to itself."""
    assert pickle.loads(pickle.dumps(bare_fetch)) is bare_fetch


# -- the breaker at work ----------------------------------------------------------------


def test_opens_after_the_threshold_and_rejects_without_calling(frozen):
    """After failure_threshold counted failures, calls are rejected and never run."""
    dep = Dependency()
    call = protect(dep, failure_threshold=3)
    dep.down = True
    for _ in range(3):
        with pytest.raises(DependencyDown):
            call()
    assert call.breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as info:
        call()
    assert dep.calls == 3
    assert info.value.name == "tests.sync.dep"
    assert info.value.retry_after == pytest.approx(30.0)
    assert call.breaker.metrics().rejections == 1


def test_the_original_exception_propagates_unchanged(frozen):
    """A counted failure reaches the caller as the very exception the function raised."""
    boom = DependencyDown("down")

    @circuit_breaker("tests.sync.identity")
    def fail():
        raise boom

    with pytest.raises(DependencyDown) as info:
        fail()
    assert info.value is boom
    assert info.value.__cause__ is None


def test_a_success_resets_the_consecutive_count(frozen):
    """Failures must be consecutive: a success in between starts the count again."""
    dep = Dependency()
    call = protect(dep, failure_threshold=3)
    for _ in range(4):
        dep.down = True
        for _ in range(2):
            with pytest.raises(DependencyDown):
                call()
        dep.down = False
        assert call(1) == 1
    assert call.breaker.state is State.CLOSED


def test_recovers_after_the_recovery_timeout(frozen):
    """Open -> half-open after recovery_timeout -> closed after success_threshold trials."""
    dep = Dependency()
    call = protect(dep, failure_threshold=2, recovery_timeout=30, success_threshold=2)
    dep.down = True
    for _ in range(2):
        with pytest.raises(DependencyDown):
            call()
    frozen.tick(29)
    with pytest.raises(CircuitOpenError):
        call()
    frozen.tick(1)
    assert call.breaker.state is State.HALF_OPEN
    dep.down = False
    assert call(7) == 7
    assert call.breaker.state is State.HALF_OPEN
    assert call(8) == 8
    assert call.breaker.state is State.CLOSED
    assert dep.calls == 4


def test_a_failed_trial_reopens(frozen):
    """A counted failure during half-open opens the breaker again for another recovery_timeout."""
    dep = Dependency()
    call = protect(dep, failure_threshold=1, recovery_timeout=5)
    dep.down = True
    with pytest.raises(DependencyDown):
        call()
    frozen.tick(5)
    with pytest.raises(DependencyDown):
        call()
    assert call.breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as info:
        call()
    assert info.value.retry_after == pytest.approx(5.0)


def test_an_ignored_exception_propagates_and_is_not_counted(frozen):
    """An exception listed in ignore reaches the caller unchanged and never opens the breaker."""
    bad = InvalidTokenError("expired")

    @circuit_breaker("tests.sync.ignore", failure_threshold=1, ignore=(InvalidTokenError,))
    def validate():
        raise bad

    for _ in range(3):
        with pytest.raises(InvalidTokenError) as info:
            validate()
        assert info.value is bad
    metrics = validate.breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.ignored) == (State.CLOSED, 0, 3)


def test_an_overrunning_call_returns_but_counts_as_a_timeout(frozen):
    """A sync call longer than call_timeout returns its result, and counts as a timeout failure."""

    @circuit_breaker("tests.sync.timeout", call_timeout=2, failure_threshold=2)
    def slow(result):
        frozen.tick(3)
        return result

    assert slow("late") == "late"
    metrics = slow.breaker.metrics()
    assert (metrics.failures, metrics.timeouts, metrics.successes) == (1, 1, 0)
    assert "CallTimeoutError" in metrics.last_error
    assert slow("late again") == "late again"
    assert slow.breaker.state is State.OPEN


def test_a_call_within_call_timeout_is_a_success(frozen):
    """A sync call that finishes inside call_timeout counts as a plain success."""

    @circuit_breaker("tests.sync.in_time", call_timeout=2)
    def quick():
        frozen.tick(1)
        return "ok"

    assert quick() == "ok"
    assert quick.breaker.metrics().successes == 1
    assert quick.breaker.metrics().timeouts == 0


def test_trip_and_reset_act_on_decorated_calls(frozen):
    """trip() rejects the decorated function's calls; reset() lets them through again."""
    dep = Dependency()
    call = protect(dep)
    assert call(1) == 1
    call.breaker.trip(hold=True)
    with pytest.raises(CircuitOpenError) as info:
        call(2)
    assert info.value.state is State.FORCED_OPEN
    assert info.value.retry_after is None
    call.breaker.reset()
    assert call(3) == 3
    assert dep.calls == 2


def test_disabled_breaker_lets_every_call_through(frozen):
    """In shadow mode (disable()) failures are counted but calls are never rejected."""
    dep = Dependency()
    call = protect(dep, failure_threshold=1)
    call.breaker.disable()
    dep.down = True
    for _ in range(5):
        with pytest.raises(DependencyDown):
            call()
    assert dep.calls == 5
    assert call.breaker.state is State.DISABLED
    assert call.breaker.metrics().failures == 5


# -- sealing: defaults are read at the first call ------------------------------------------


def test_configure_after_decoration_applies_at_the_first_call(frozen):
    """configure() called after a function was decorated still sets its breaker's defaults."""
    configure(failure_threshold=2, recovery_timeout=7)
    dep = Dependency()
    dep.down = True
    for _ in range(2):
        with pytest.raises(DependencyDown):
            uses_defaults(dep)
    assert uses_defaults.breaker.state is State.OPEN
    assert uses_defaults.breaker.config.recovery_timeout == 7


def test_explicit_settings_win_over_configure(frozen):
    """A setting given on the decorator line beats the configure() default."""
    configure(failure_threshold=1, recovery_timeout=99)
    assert with_settings.breaker.config.failure_threshold == 3
    assert with_settings.breaker.config.recovery_timeout == 10


# -- refusals and validation -----------------------------------------------------------------


def test_bad_settings_fail_at_the_decorator_line():
    """An invalid setting raises ConfigError at the decorator line, not at the first call."""
    with pytest.raises(ConfigError, match="failure_threshold"):
        circuit_breaker("tests.sync.bad", failure_threshold=0)
    with pytest.raises(ConfigError, match="call_timeout"):
        circuit_breaker("tests.sync.bad", timeout_seconds=3)


def test_settings_need_the_called_form():
    """circuit_breaker(fn, setting=...) is refused: settings go with circuit_breaker(name, ...)."""

    def fn():
        return None

    with pytest.raises(TypeError, match=r"circuit_breaker\(name, \.\.\.\)"):
        circuit_breaker(fn, failure_threshold=3)


def test_a_fallback_that_is_neither_callable_nor_a_name_is_refused():
    """fallback=3 is a TypeError at the decorator line."""
    with pytest.raises(TypeError, match="fallback"):
        circuit_breaker("tests.sync.fb", fallback=3)


def test_a_generator_function_is_refused_with_advice():
    """A generator function gets a TypeError that names it and says what to protect instead."""

    def rows():
        yield 1

    with pytest.raises(TypeError, match="rows") as info:
        circuit_breaker(rows)
    assert "generator" in str(info.value)
    assert "collect the items into a list" in str(info.value)


def test_a_property_is_refused_with_advice():
    """A property gets a TypeError that names its getter and says to decorate the getter."""

    def token(self):
        return "t"

    with pytest.raises(TypeError, match="decorate its getter") as info:
        circuit_breaker(property(token))
    assert "token" in str(info.value)


def test_a_class_is_refused_with_advice():
    """A class gets a TypeError that names it and says to decorate the method that calls out."""

    class Client:
        pass

    with pytest.raises(TypeError, match="Client") as info:
        circuit_breaker("tests.sync.cls")(Client)
    assert "decorate the method" in str(info.value)


def test_something_not_callable_is_refused():
    """A non-callable target is a TypeError naming its type."""
    with pytest.raises(TypeError, match="not callable"):
        circuit_breaker("tests.sync.nc")(42)


# -- one name, one breaker -------------------------------------------------------------------------


def test_same_name_and_settings_share_one_breaker():
    """Two functions decorated with the same name and settings share one breaker."""

    @circuit_breaker("tests.sync.shared", failure_threshold=4)
    def first():
        return 1

    @circuit_breaker("tests.sync.shared", failure_threshold=4)
    def second():
        return 2

    assert first.breaker is second.breaker
    assert (first(), second()) == (1, 2)
    assert first.breaker.metrics().successes == 2


def test_same_name_with_different_settings_is_a_config_error():
    """Reusing a name with other settings raises ConfigError naming both configurations."""

    @circuit_breaker("tests.sync.conflict", failure_threshold=4)
    def first():
        return 1

    with pytest.raises(ConfigError) as info:

        @circuit_breaker("tests.sync.conflict", failure_threshold=5)
        def second():
            return 2

    message = str(info.value)
    assert "'tests.sync.conflict'" in message
    assert "failure_threshold=4" in message
    assert "failure_threshold=5" in message


def test_the_breaker_is_in_the_default_registry_from_decoration():
    """The breaker exists (and is listed) as soon as the function is decorated, before any call."""

    @circuit_breaker("tests.sync.registered")
    def never_called():
        return None

    assert never_called.breaker in resilient.breakers()
    assert "tests.sync.registered" in resilient.health()["breakers"]


# -- the same breaker without a decorator: call() and `with` ------------------------------------


def test_call_runs_a_function_through_the_breaker(frozen):
    """breaker.call(fn, *args, **kwargs) returns fn's result and counts the outcome."""
    breaker = get_breaker("tests.sync.call", failure_threshold=1)
    assert breaker.call(lambda a, b=0: a + b, 1, b=2) == 3
    with pytest.raises(DependencyDown):
        breaker.call(_down)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "never")
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures, metrics.rejections) == (1, 1, 1)


def _down():
    raise DependencyDown("down")


def test_a_with_block_counts_its_outcome_and_is_rejected_when_open(frozen):
    """`with breaker:` counts the block's outcome; when open it raises before the block runs."""
    breaker = get_breaker("tests.sync.block", failure_threshold=1, ignore=(InvalidTokenError,))
    ran = []
    with breaker:
        ran.append("ok")
    with pytest.raises(InvalidTokenError), breaker:
        raise InvalidTokenError
    with pytest.raises(DependencyDown), breaker:
        raise DependencyDown
    with pytest.raises(CircuitOpenError), breaker:
        ran.append("never")
    assert ran == ["ok"]
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.ignored, metrics.failures, metrics.rejections) == (
        1,
        1,
        1,
        1,
    )


def test_a_with_block_that_overruns_call_timeout_counts_as_a_timeout(frozen):
    """A `with breaker:` block longer than call_timeout is counted as a timeout failure."""
    breaker = get_breaker("tests.sync.block_timeout", call_timeout=2)
    with breaker:
        frozen.tick(3)
    metrics = breaker.metrics()
    assert (metrics.failures, metrics.timeouts, metrics.successes) == (1, 1, 0)


def test_nested_with_blocks_unwind_in_order(frozen):
    """Nested blocks on one breaker each count their own outcome, innermost first."""
    breaker = get_breaker("tests.sync.nested", failure_threshold=10)
    with breaker:
        with pytest.raises(DependencyDown), breaker:
            raise DependencyDown
        with breaker:
            pass
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures) == (2, 1)


def test_name_may_be_given_by_keyword():
    """DESIGN's signature is circuit_breaker(name=None, ...): name= works as a keyword."""

    @circuit_breaker(name="kw.named", failure_threshold=2)
    def f() -> int:
        return 1

    assert f() == 1
    assert f.breaker.name == "kw.named"
    assert f.breaker.config.failure_threshold == 2
