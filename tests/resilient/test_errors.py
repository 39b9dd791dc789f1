"""Errors name the breaker, say why, and say when it retries; they pickle and catch by category."""

from __future__ import annotations

import asyncio
import copy
import pickle

import pytest

from resilient import (
    CallTimeoutError,
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    ResilientError,
    State,
    circuit_breaker,
)


class ConnectError(ConnectionError):
    """What an HTTP client raises when the service is down."""


def connect_error():
    raise ConnectError("connection refused")


def open_breaker(name: str = "auth.validate_token", **settings) -> CircuitBreaker:
    breaker = CircuitBreaker(name, **settings)
    for _ in range(breaker.config.failure_threshold):
        with pytest.raises(ConnectError):
            breaker.call(connect_error)
    return breaker


def rejection(breaker: CircuitBreaker) -> CircuitOpenError:
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: "never")
    return info.value


# -- CircuitOpenError -------------------------------------------------------------------------


def test_open_error_says_which_breaker_why_and_when(frozen):
    """The message names the breaker, the failures that opened it, and when the next trial is."""
    breaker = open_breaker(failure_threshold=5, recovery_timeout=30)
    frozen.tick(17.6)
    err = rejection(breaker)
    assert str(err) == (
        "circuit breaker 'auth.validate_token' is open after 5 consecutive failures "
        "(last: ConnectError('connection refused')); next trial in 12.4 s"
    )


def test_open_error_carries_its_context_as_attributes(frozen):
    """name, retry_after, state and reason are attributes, not only words in the message."""
    breaker = open_breaker(failure_threshold=2, recovery_timeout=10)
    frozen.tick(4)
    err = rejection(breaker)
    assert err.name == "auth.validate_token"
    assert err.retry_after == pytest.approx(6.0)
    assert err.state is State.OPEN
    assert err.reason.startswith("2 consecutive failures")


def test_retry_after_counts_down_with_the_clock(frozen):
    """Each rejection reports the time left until the next trial, not the full timeout."""
    breaker = open_breaker(failure_threshold=1, recovery_timeout=30)
    seen = []
    for _ in range(3):
        seen.append(rejection(breaker).retry_after)
        frozen.tick(10)
    assert seen == pytest.approx([30.0, 20.0, 10.0])


def test_held_open_error_says_it_waits_for_a_reset(frozen):
    """A breaker held open by an operator says so and says how to reset it; no retry time."""
    breaker = CircuitBreaker("billing.charge")
    breaker.trip(hold=True, reason="maintenance window")
    err = rejection(breaker)
    assert err.retry_after is None
    assert err.state is State.FORCED_OPEN
    message = str(err)
    assert "'billing.charge'" in message
    assert "held open by an operator" in message
    assert "maintenance window" in message
    assert "reset()" in message
    assert "resilient reset 'billing.charge'" in message


def test_an_operator_trip_says_so(frozen):
    """trip() without a reason says an operator tripped it, and when it retries."""
    breaker = CircuitBreaker("billing.refund", recovery_timeout=20)
    breaker.trip()
    message = str(rejection(breaker))
    assert "'billing.refund' is open" in message
    assert "tripped by an operator" in message
    assert message.endswith("next trial in 20.0 s")


def test_half_open_rejection_says_trials_are_in_flight(frozen):
    """A call rejected because the half-open trials are taken says so, and when to retry."""
    breaker = open_breaker("search.query", failure_threshold=1, recovery_timeout=5, call_timeout=3)
    frozen.tick(5)
    breaker.__enter__()  # one trial in flight holds the only permit
    err = rejection(breaker)
    breaker.__exit__(None, None, None)
    assert err.state is State.HALF_OPEN
    assert "'search.query' is half-open and its trial calls are in flight" in str(err)
    assert err.retry_after == pytest.approx(3.0)


def test_open_error_pickles_with_everything(frozen):
    """A CircuitOpenError survives pickling (process pools, task queues) with its attributes."""
    err = rejection(open_breaker(failure_threshold=1))
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(err, protocol=protocol))
        assert type(back) is CircuitOpenError
        assert (back.name, back.retry_after, back.state, back.reason) == (
            err.name,
            err.retry_after,
            err.state,
            err.reason,
        )
        assert str(back) == str(err)
    assert str(copy.copy(err)) == str(err)


def test_open_error_repr_shows_the_breaker(frozen):
    """repr() of a rejection names the breaker, so last_error of an outer breaker is useful."""
    err = rejection(open_breaker("inner.dependency", failure_threshold=1))
    assert "inner.dependency" in repr(err)


def test_a_nested_breakers_rejection_is_a_failure_of_the_outer_one(frozen):
    """An inner breaker's rejection counts for the outer breaker, and its last_error names it."""
    inner = open_breaker("inner.service", failure_threshold=1)

    @circuit_breaker("outer.service", failure_threshold=1)
    def outer():
        return inner.call(lambda: "never")

    with pytest.raises(CircuitOpenError):
        outer()
    assert outer.breaker.state is State.OPEN
    assert "inner.service" in outer.breaker.metrics().last_error


# -- CallTimeoutError ---------------------------------------------------------------------------


def test_call_timeout_error_is_a_timeout_error():
    """CallTimeoutError is caught by `except TimeoutError` and by `except ResilientError`."""
    assert issubclass(CallTimeoutError, TimeoutError)
    assert issubclass(CallTimeoutError, ResilientError)
    with pytest.raises(TimeoutError):
        raise CallTimeoutError("x", 1.0)


@pytest.mark.asyncio
async def test_call_timeout_error_names_the_breaker_and_the_timeout(frozen):
    """The raised timeout names the breaker and the call_timeout that passed."""
    breaker = CircuitBreaker("geo.lookup", call_timeout=2.5)

    async def hang():
        frozen.tick(3)
        await asyncio.Event().wait()

    with pytest.raises(CallTimeoutError) as info:
        await breaker.acall(hang)
    assert str(info.value) == "call through circuit breaker 'geo.lookup' timed out after 2.5 s"
    assert (info.value.name, info.value.timeout) == ("geo.lookup", 2.5)


def test_call_timeout_error_pickles():
    """A CallTimeoutError survives pickling with its name and timeout."""
    back = pickle.loads(pickle.dumps(CallTimeoutError("geo.lookup", 2.5)))
    assert (type(back), back.name, back.timeout) == (CallTimeoutError, "geo.lookup", 2.5)
    assert str(back) == "call through circuit breaker 'geo.lookup' timed out after 2.5 s"


# -- ConfigError and the hierarchy ----------------------------------------------------------------


def test_config_error_is_a_value_error_and_pickles():
    """ConfigError is a ValueError and survives pickling with its message."""
    with pytest.raises(ConfigError) as info:
        CircuitBreaker("x", failure_threshold=0)
    assert isinstance(info.value, ValueError)
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is ConfigError
    assert str(back) == str(info.value)


@pytest.mark.parametrize("error_type", [CircuitOpenError, CallTimeoutError, ConfigError])
def test_every_error_is_a_resilient_error_and_an_exception(error_type):
    """One `except ResilientError` catches everything resilient raises, and all are Exceptions."""
    assert issubclass(error_type, ResilientError)
    assert issubclass(error_type, Exception)


def test_errors_are_importable_from_the_package_with_its_name():
    """Tracebacks show resilient.CircuitOpenError, not a private module path."""
    for error_type in (ResilientError, CircuitOpenError, CallTimeoutError, ConfigError):
        assert error_type.__module__ == "resilient"
