"""BreakerConfig: frozen, validated, and clear about every bad value."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from resilient import (
    BreakerConfig,
    CircuitBreaker,
    ConfigError,
    ResilientError,
    circuit_breaker,
    configure,
    get_breaker,
)


class InvalidTokenError(Exception):
    """A business outcome."""


INVALID = [
    ("failure_threshold", 0),
    ("failure_threshold", -1),
    ("failure_threshold", 2.5),
    ("failure_threshold", True),
    ("failure_threshold", "5"),
    ("success_threshold", 0),
    ("recovery_timeout", 0),
    ("recovery_timeout", -30),
    ("recovery_timeout", math.inf),
    ("recovery_timeout", math.nan),
    ("recovery_timeout", "30"),
    ("half_open_max_calls", 0),
    ("half_open_max_calls", None),
    ("half_open_max_wait", 0),
    ("half_open_max_wait", -1.0),
    ("call_timeout", 0),
    ("call_timeout", -10),
    ("call_timeout", "10"),
    ("failure_rate_threshold", 0),
    ("failure_rate_threshold", 1.5),
    ("failure_rate_threshold", 50),
    ("window_size", 0),
    ("window_size", 10.5),
    ("window_seconds", 0),
    ("minimum_calls", 0),
    ("slow_call_duration", -1),
    ("slow_call_rate_threshold", 0),
    ("recovery_backoff", 0.5),
    ("recovery_backoff", math.inf),
    ("max_recovery_timeout", 0),
    ("jitter", -0.1),
    ("jitter", 1.0),
    ("jitter", None),
    ("failure_on", "ConnectionError"),
    ("failure_on", (ConnectionError, 3)),
    ("failure_on", ConnectionError("instance, not class")),
    ("ignore", 3),
    ("ignore", [InvalidTokenError, "x"]),
    ("is_failure", 3),
    ("is_failure_result", "not callable"),
]


def _entry_points():
    """Every place a user writes settings: all must validate the same way."""
    return {
        "BreakerConfig": BreakerConfig,
        "CircuitBreaker": lambda **kw: CircuitBreaker("tests.config.direct", **kw),
        "get_breaker": lambda **kw: get_breaker("tests.config.registry", **kw),
        "circuit_breaker": lambda **kw: circuit_breaker("tests.config.decorator", **kw),
        "configure": configure,
    }


@pytest.mark.parametrize("entry", list(_entry_points()))
@pytest.mark.parametrize(("field", "value"), INVALID, ids=lambda v: repr(v)[:30])
def test_every_invalid_setting_names_the_field_and_the_value(entry, field, value):
    """A bad value raises ConfigError naming the field and the value, wherever it is written."""
    build = _entry_points()[entry]
    with pytest.raises(ConfigError) as info:
        build(**{field: value})
    message = str(info.value)
    assert field in message
    assert repr(value) in message


def test_a_rate_given_as_a_percentage_gets_a_hint():
    """failure_rate_threshold=50 says that rates are fractions (0.5 means 50%)."""
    with pytest.raises(ConfigError, match=r"0\.5 means 50%"):
        BreakerConfig(failure_rate_threshold=50)


@pytest.mark.parametrize(
    ("settings", "fields"),
    [
        ({"window_size": 10, "window_seconds": 60}, ["window_size", "window_seconds"]),
        ({"slow_call_rate_threshold": 0.5}, ["slow_call_rate_threshold", "slow_call_duration"]),
        ({"window_size": 10, "minimum_calls": 20}, ["minimum_calls", "window_size"]),
        (
            {"recovery_timeout": 60, "max_recovery_timeout": 30},
            ["max_recovery_timeout", "recovery_timeout"],
        ),
    ],
    ids=["two-windows", "slow-rate-without-duration", "minimum-above-window", "cap-below-base"],
)
def test_settings_that_contradict_each_other_name_both(settings, fields):
    """Contradictory settings raise ConfigError naming every field involved and its value."""
    with pytest.raises(ConfigError) as info:
        BreakerConfig(**settings)
    message = str(info.value)
    for field in fields:
        assert field in message
    for field, value in settings.items():
        assert f"{field}={value!r}" in message


def test_config_error_is_a_value_error_and_a_resilient_error():
    """ConfigError can be caught as ValueError (bad value) and as ResilientError."""
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerConfig(failure_threshold=0)
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, ResilientError)


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("timeout_seconds", "call_timeout"),
        ("timeout", "call_timeout"),
        ("fail_max", "failure_threshold"),
        ("reset_timeout", "recovery_timeout"),
        ("expected_exception", "failure_on"),
        ("exclude", "ignore"),
        ("failure_treshold", "failure_threshold"),
        ("recovery_timout", "recovery_timeout"),
        ("half_open_max_call", "half_open_max_calls"),
    ],
)
@pytest.mark.parametrize("entry", ["CircuitBreaker", "get_breaker", "circuit_breaker", "configure"])
def test_an_unknown_setting_suggests_the_right_name(entry, wrong, right):
    """A misspelt or foreign setting name raises ConfigError that suggests ours."""
    build = _entry_points()[entry]
    with pytest.raises(ConfigError) as info:
        build(**{wrong: 3})
    message = str(info.value)
    assert repr(wrong) in message
    assert f"did you mean {right!r}?" in message


def test_an_unknown_setting_with_no_near_match_suggests_nothing():
    """A name that resembles no setting is reported without a misleading suggestion."""
    with pytest.raises(ConfigError) as info:
        CircuitBreaker("tests.config.unknown", colour="red")
    assert "'colour'" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_defaults_match_the_design():
    """The defaults are the documented ones: 5 failures, 2 successes, 30 s, one trial."""
    config = BreakerConfig()
    assert config.failure_threshold == 5
    assert config.success_threshold == 2
    assert config.recovery_timeout == 30
    assert config.half_open_max_calls == 1
    assert config.call_timeout is None
    assert config.failure_on == (Exception,)
    assert config.ignore == ()
    assert config.is_failure is None
    assert config.is_failure_result is None
    assert config.recovery_backoff == 1
    assert config.jitter == 0


def test_half_open_max_wait_defaults_to_call_timeout_then_recovery_timeout():
    """A trial's permit lasts half_open_max_wait, else call_timeout, else recovery_timeout."""
    assert BreakerConfig(recovery_timeout=30).effective_half_open_max_wait == 30
    assert BreakerConfig(call_timeout=4).effective_half_open_max_wait == 4
    assert BreakerConfig(call_timeout=4, half_open_max_wait=9).effective_half_open_max_wait == 9


def test_a_config_is_frozen():
    """Settings cannot be changed after creation; replace() makes a validated copy."""
    config = BreakerConfig(failure_threshold=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.failure_threshold = 4  # type: ignore[misc]
    assert config.replace(failure_threshold=4).failure_threshold == 4
    assert config.failure_threshold == 3
    with pytest.raises(ConfigError, match="failure_threshold"):
        config.replace(failure_threshold=-4)


def test_values_are_normalised():
    """Whole seconds become floats and a single exception class becomes a tuple."""
    config = BreakerConfig(recovery_timeout=10, call_timeout=2, ignore=InvalidTokenError)
    assert isinstance(config.recovery_timeout, float)
    assert isinstance(config.call_timeout, float)
    assert config.ignore == (InvalidTokenError,)
    assert BreakerConfig(failure_on=[ConnectionError]).failure_on == (ConnectionError,)


def test_as_dict_is_json_serialisable():
    """as_dict() names exception types and callables, so it goes straight into json.dumps."""
    config = BreakerConfig(ignore=(InvalidTokenError,), is_failure=callable)
    data = json.loads(json.dumps(config.as_dict()))
    assert data["ignore"] == [f"{__name__}.InvalidTokenError"]
    assert data["failure_on"] == ["Exception"]
    assert data["is_failure"] == "callable"
    assert data["failure_threshold"] == 5


def test_a_breaker_needs_a_non_empty_string_name():
    """An empty or non-string breaker name is a ConfigError naming the value."""
    with pytest.raises(ConfigError, match="''"):
        CircuitBreaker("")
    with pytest.raises(ConfigError, match="42"):
        CircuitBreaker(42)  # type: ignore[arg-type]


def test_a_breaker_config_must_be_a_breaker_config():
    """Passing something else as config= is a ConfigError that shows it."""
    with pytest.raises(ConfigError, match="failure_threshold"):
        CircuitBreaker("tests.config.bad_config", {"failure_threshold": 3})  # type: ignore[arg-type]


def test_settings_on_top_of_a_config_object():
    """Keyword settings given with a BreakerConfig override it field by field."""
    base = BreakerConfig(failure_threshold=9, recovery_timeout=99)
    breaker = CircuitBreaker("tests.config.layered", base, recovery_timeout=5)
    assert breaker.config.failure_threshold == 9
    assert breaker.config.recovery_timeout == 5
