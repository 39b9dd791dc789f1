"""The state machine: thresholds, recovery, half-open trials, rates, backoff, shadow mode, events."""

from __future__ import annotations

import logging
import random

import pytest

from resilient import (
    BreakerEvent,
    CircuitBreaker,
    CircuitOpenError,
    State,
    add_listener,
    remove_listener,
)


class Down(Exception):
    """A dependency failure."""


def fail() -> None:
    raise Down("connection refused")


def ok() -> str:
    return "ok"


def fail_n(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Down):
            breaker.call(fail)


def test_opens_after_threshold_consecutive_failures(frozen):
    """CLOSED -> OPEN exactly at failure_threshold consecutive failures."""
    b = CircuitBreaker("t", failure_threshold=3)
    fail_n(b, 2)
    assert b.state is State.CLOSED
    fail_n(b, 1)
    assert b.state is State.OPEN
    assert b.is_open


def test_a_success_resets_the_consecutive_count(frozen):
    """Failures must be consecutive: a success in between starts the count again."""
    b = CircuitBreaker("t", failure_threshold=3)
    fail_n(b, 2)
    assert b.call(ok) == "ok"
    fail_n(b, 2)
    assert b.state is State.CLOSED
    assert b.metrics().consecutive_failures == 2


def test_open_rejects_without_calling(frozen):
    """An open breaker rejects with CircuitOpenError and never calls the function."""
    b = CircuitBreaker("auth.validate_token", failure_threshold=1, recovery_timeout=30)
    fail_n(b, 1)
    called = []
    frozen.tick(17.6)
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: called.append(1))
    assert called == []
    err = info.value
    assert err.name == "auth.validate_token"
    assert err.retry_after == pytest.approx(12.4)
    assert str(err) == (
        "circuit breaker 'auth.validate_token' is open after 1 consecutive failures "
        "(last: Down('connection refused')); next trial in 12.4 s"
    )
    assert b.metrics().rejections == 1


def test_state_reads_half_open_once_the_recovery_timeout_passed(frozen):
    """Reading state is time-aware: no call is needed to see HALF_OPEN."""
    b = CircuitBreaker("t", failure_threshold=1, recovery_timeout=30)
    fail_n(b, 1)
    frozen.tick(29.9)
    assert b.state is State.OPEN
    frozen.tick(0.1)
    assert b.state is State.HALF_OPEN
    assert b.is_half_open


def test_closes_after_success_threshold_trials(frozen):
    """HALF_OPEN -> CLOSED after success_threshold successful trials."""
    b = CircuitBreaker("t", failure_threshold=1, recovery_timeout=5, success_threshold=2)
    fail_n(b, 1)
    frozen.tick(5)
    assert b.call(ok) == "ok"
    assert b.state is State.HALF_OPEN
    assert b.call(ok) == "ok"
    assert b.state is State.CLOSED


def test_failed_trial_reopens_with_backoff_capped(frozen):
    """Each failed trial multiplies the recovery timeout, up to max_recovery_timeout."""
    b = CircuitBreaker(
        "t", failure_threshold=1, recovery_timeout=10, recovery_backoff=2, max_recovery_timeout=25
    )
    fail_n(b, 1)
    waits = []
    for _ in range(3):
        frozen.tick(b.metrics().retry_after)
        fail_n(b, 1)  # failed trial
        waits.append(b.metrics().retry_after)
    assert waits == [20.0, 25.0, 25.0]
    frozen.tick(25)
    b.call(ok)
    b.call(ok)
    assert b.state is State.CLOSED
    fail_n(b, 1)
    assert b.metrics().retry_after == 10.0  # closing resets the backoff


def test_jitter_spreads_retry_times_within_bounds(frozen):
    """With jitter, retry times vary across breakers but stay within the fraction."""
    random.seed(1)
    retry = set()
    for i in range(30):
        b = CircuitBreaker(f"j{i}", failure_threshold=1, recovery_timeout=10, jitter=0.2)
        fail_n(b, 1)
        after = b.metrics().retry_after
        assert 8.0 <= after <= 12.0
        retry.add(round(after, 3))
    assert len(retry) > 10


def test_half_open_admits_only_max_calls_at_once(frozen):
    """While half-open, at most half_open_max_calls trials are in flight."""
    b = CircuitBreaker("t", failure_threshold=1, recovery_timeout=1, half_open_max_calls=2)
    fail_n(b, 1)
    frozen.tick(1)
    b.__enter__()
    b.__enter__()  # same context: a stack of blocks
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    assert info.value.state is State.HALF_OPEN
    b.__exit__(None, None, None)
    b.__exit__(None, None, None)
    assert b.state is State.CLOSED


def test_failure_rate_over_count_window(frozen):
    """failure_rate_threshold opens on the rate over the last window_size calls."""
    b = CircuitBreaker(
        "t", failure_threshold=100, failure_rate_threshold=0.5, window_size=10, minimum_calls=10
    )
    for _ in range(5):
        b.call(ok)
        fail_n(b, 1)
    assert b.state is State.OPEN
    assert b._open_reason.startswith("failure rate 50% over the last 10 calls")


def test_rate_is_not_judged_before_minimum_calls(frozen):
    """Below minimum_calls the rate is not judged, however bad."""
    b = CircuitBreaker("t", failure_threshold=100, failure_rate_threshold=0.5, minimum_calls=10)
    fail_n(b, 9)
    assert b.state is State.CLOSED
    fail_n(b, 1)
    assert b.state is State.OPEN


def test_count_window_forgets_old_calls(frozen):
    """Only the last window_size outcomes count."""
    b = CircuitBreaker(
        "t", failure_threshold=100, failure_rate_threshold=0.6, window_size=5, minimum_calls=5
    )
    fail_n(b, 2)
    for _ in range(5):
        b.call(ok)
    fail_n(b, 2)  # window: ok ok ok fail fail -> 40%
    assert b.state is State.CLOSED
    fail_n(b, 1)  # ok ok fail fail fail -> 60%
    assert b.state is State.OPEN


def test_failure_rate_over_time_window(frozen):
    """window_seconds judges the rate over the last N seconds only."""
    b = CircuitBreaker(
        "t", failure_threshold=100, failure_rate_threshold=0.5, window_seconds=10, minimum_calls=4
    )
    fail_n(b, 3)
    frozen.tick(11)  # those failures leave the window
    b.call(ok)
    b.call(ok)
    fail_n(b, 1)
    assert b.state is State.CLOSED  # 1 of 3 in the window, below minimum anyway
    fail_n(b, 1)  # 2 of 4 -> 50%
    assert b.state is State.OPEN


def test_slow_call_rate_opens(frozen):
    """Calls slower than slow_call_duration count as slow; a slow rate opens it."""
    b = CircuitBreaker(
        "t",
        failure_threshold=100,
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        window_size=4,
        minimum_calls=4,
    )

    def slow() -> str:
        frozen.tick(2)
        return "late"

    b.call(ok)
    b.call(ok)
    assert b.call(slow) == "late"
    assert b.state is State.CLOSED
    assert b.call(slow) == "late"
    assert b.state is State.OPEN
    assert b.metrics().slow_calls == 2
    assert b._open_reason.startswith("slow-call rate 50%")


def test_sync_call_over_timeout_returns_but_counts_as_failure(frozen):
    """A sync call cannot be interrupted: it returns, and the overrun counts as a timeout."""
    b = CircuitBreaker("t", failure_threshold=2, call_timeout=1.0)

    def late() -> str:
        frozen.tick(1.5)
        return "late"

    assert b.call(late) == "late"
    m = b.metrics()
    assert (m.failures, m.timeouts, m.successes) == (1, 1, 0)
    assert b.call(late) == "late"
    assert b.state is State.OPEN
    assert "timed out after 1 s" in b.metrics().last_error


def test_trip_reset_and_hold(frozen):
    """Operator controls: trip opens, hold keeps it open past recovery, reset closes."""
    b = CircuitBreaker("t", recovery_timeout=5)
    b.trip()
    assert b.state is State.OPEN
    frozen.tick(5)
    assert b.state is State.HALF_OPEN
    b.trip(hold=True)
    frozen.tick(3600)
    assert b.state is State.FORCED_OPEN
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    assert info.value.retry_after is None
    assert "held open by an operator" in str(info.value)
    assert "until reset()" in str(info.value)
    b.reset()
    assert b.state is State.CLOSED
    assert b.call(ok) == "ok"
    assert b.metrics().rejections == 0  # reset clears the counters


def test_disabled_passes_everything_and_logs_would_open(frozen, caplog):
    """Shadow mode: calls pass, outcomes count, and the log says it would have opened."""
    b = CircuitBreaker("t", failure_threshold=2)
    b.disable()
    with caplog.at_level(logging.WARNING, logger="resilient"):
        fail_n(b, 5)
    assert b.state is State.DISABLED
    assert b.metrics().failures == 5
    would = [r for r in caplog.records if "would have opened" in r.getMessage()]
    assert len(would) == 1  # rate-limited to once per recovery_timeout
    assert "2 consecutive failures" in would[0].getMessage()
    b.reset()
    assert b.state is State.CLOSED


def test_transitions_are_logged_in_one_line_with_extra(frozen, caplog):
    """Open logs WARNING, half-open and close INFO, in DESIGN's format, with extra fields."""
    b = CircuitBreaker(
        "auth.validate_token", failure_threshold=2, recovery_timeout=1, success_threshold=1
    )
    with caplog.at_level(logging.INFO, logger="resilient"):
        fail_n(b, 2)
        frozen.tick(1)
        b.call(ok)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "WARNING",
            "circuit breaker 'auth.validate_token': closed -> open "
            "(2 consecutive failures (last: Down('connection refused')))",
        ),
        (
            "INFO",
            "circuit breaker 'auth.validate_token': open -> half_open (recovery timeout passed after 1.0 s)",
        ),
        (
            "INFO",
            "circuit breaker 'auth.validate_token': half_open -> closed (1 successful trial call)",
        ),
    ]
    first = caplog.records[0]
    assert first.__dict__["resilient.breaker"] == "auth.validate_token"
    assert first.__dict__["resilient.new_state"] == "open"
    assert first.__dict__["resilient.failures"] == 2


def test_listeners_get_frozen_events(frozen):
    """Breaker and global listeners receive one frozen event per transition."""
    b = CircuitBreaker("t", failure_threshold=1, recovery_timeout=1, success_threshold=1)
    mine: list[BreakerEvent] = []
    everyone: list[BreakerEvent] = []
    b.add_listener(mine.append)
    add_listener(everyone.append)
    try:
        fail_n(b, 1)
        frozen.tick(1)
        b.call(ok)
    finally:
        remove_listener(everyone.append)
    assert [(e.old_state, e.new_state) for e in mine] == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    assert everyone == mine
    with pytest.raises(AttributeError):
        mine[0].name = "x"  # type: ignore[misc]


def test_a_failing_listener_never_reaches_the_caller(frozen, caplog):
    """A listener that raises is logged; the call and the transition go on."""
    b = CircuitBreaker("t", failure_threshold=1)

    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener bug")

    b.add_listener(broken)
    with caplog.at_level(logging.ERROR, logger="resilient"):
        fail_n(b, 1)
    assert b.state is State.OPEN
    assert any("listener" in r.getMessage() for r in caplog.records)


def test_metrics_snapshot_is_json_friendly(frozen):
    """metrics().as_dict() holds plain values only."""
    import json

    b = CircuitBreaker("t", failure_threshold=1, recovery_timeout=10)
    b.call(ok)
    fail_n(b, 1)
    data = b.metrics().as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["state"] == "open"
    assert data["calls"] == 2
    assert data["failure_rate"] == 0.5
    assert data["retry_after"] == 10.0


def test_a_stale_failure_does_not_count_after_the_breaker_moved_on(frozen):
    """A call admitted before the breaker opened cannot fail a later trial."""
    b = CircuitBreaker("t", failure_threshold=1, recovery_timeout=1, success_threshold=1)
    import contextvars

    slow_call = contextvars.copy_context()
    slow_call.run(b.__enter__)  # admitted while closed
    fail_n(b, 1)  # opens
    frozen.tick(1)
    b.call(ok)  # trial succeeds: closed again
    assert b.state is State.CLOSED
    slow_call.run(b.__exit__, Down, Down("late"), None)
    assert b.state is State.CLOSED
    assert b.metrics().consecutive_failures == 0
    assert b.metrics().failures == 2  # still counted in the metrics


def test_repr_names_state_and_settings():
    """repr shows the name, state and key settings."""
    b = CircuitBreaker("auth.validate_token", failure_threshold=5, recovery_timeout=30)
    assert (
        repr(b)
        == "<CircuitBreaker 'auth.validate_token' state=closed failures=0/5 recovery_timeout=30s>"
    )
