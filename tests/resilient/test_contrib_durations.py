"""The duration hook the exporters install: breakers behave exactly as without it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from resilient import CircuitBreaker, circuit_breaker, get_breaker
from resilient.contrib import prometheus


class Down(Exception):
    """A dependency failure."""


class Invalid(Exception):
    """A business outcome, ignored."""


SETTINGS: dict[str, Any] = {
    "failure_threshold": 2,
    "success_threshold": 1,
    "recovery_timeout": 10,
    "ignore": (Invalid,),
}


def _snapshot(breaker: CircuitBreaker) -> dict[str, Any]:
    m = breaker.metrics().as_dict()
    for key in ("name", "opened_at", "retry_after"):
        m.pop(key)
    return m


def _script(call: Callable[[str], Any], breaker: CircuitBreaker, frozen: Any) -> list[Any]:
    """Drive a breaker through every state; return what each step did."""
    trace: list[Any] = []

    def step(what: str) -> None:
        try:
            trace.append((what, "returned", call(what)))
        except Exception as exc:  # the outcome is what the trace records
            trace.append((what, "raised", type(exc).__name__))
        trace.append(breaker.state.value)

    step("ok")
    step("down")
    step("ok")  # clears the consecutive count
    step("down")
    step("invalid")  # ignored: neither success nor failure
    step("down")  # opens
    step("ok")  # rejected
    frozen.tick(10)
    step("invalid")  # half-open trial, ignored: gives its permit back
    step("down")  # the trial fails: open again
    frozen.tick(30)
    step("ok")  # trial succeeds: closed
    breaker.trip(hold=True)
    step("ok")  # forced open
    breaker.reset()
    breaker.disable()
    step("down")
    step("down")
    step("down")  # shadow mode: would have opened, stays disabled
    breaker.reset()
    step("ok")
    trace.append(_snapshot(breaker))
    return trace


def _outcome(what: str) -> str:
    if what == "down":
        raise Down
    if what == "invalid":
        raise Invalid
    return what


async def _aoutcome(what: str) -> str:
    return _outcome(what)


@pytest.fixture
def exporter():
    """An exporter timing every call, installed for one scenario run."""
    collectors: list[prometheus.BreakerCollector] = []

    def install() -> None:
        collectors.append(prometheus.instrument(CollectorRegistry(), sample_durations=1))

    yield install
    for collector in collectors:
        collector.uninstrument()


def _run_decorated(name: str, frozen: Any, *, fallback: bool, is_async: bool) -> list[Any]:
    extra: dict[str, Any] = {"fallback": (lambda what: f"fallback for {what}")} if fallback else {}
    if is_async:
        fn = circuit_breaker(name, **SETTINGS, **extra)(_aoutcome)
        return _script(lambda what: asyncio.run(fn(what)), fn.breaker, frozen)
    fn = circuit_breaker(name, **SETTINGS, **extra)(_outcome)
    return _script(fn, fn.breaker, frozen)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("fallback", [False, True], ids=["no-fallback", "fallback"])
def test_decorated_function_behaves_the_same_with_the_hook(frozen, exporter, fallback, is_async):
    """Same outcomes, same states and same counters with an exporter timing every call."""
    kind = f"{'a' if is_async else ''}{'fb' if fallback else ''}"
    plain = _run_decorated(f"same.plain.{kind}", frozen, fallback=fallback, is_async=is_async)
    exporter()
    timed = _run_decorated(f"same.timed.{kind}", frozen, fallback=fallback, is_async=is_async)
    assert timed == plain


@pytest.mark.parametrize("is_async", [False, True], ids=["call", "acall"])
def test_call_and_acall_behave_the_same_with_the_hook(frozen, exporter, is_async):
    """breaker.call and breaker.acall: same outcomes, states and counters, timed or not."""

    def run(name: str) -> list[Any]:
        breaker = get_breaker(name, **SETTINGS)
        if is_async:
            return _script(lambda w: asyncio.run(breaker.acall(_aoutcome, w)), breaker, frozen)
        return _script(lambda w: breaker.call(_outcome, w), breaker, frozen)

    plain = run(f"same.plain.call{is_async}")
    exporter()
    assert run(f"same.timed.call{is_async}") == plain


def test_only_calls_that_ran_are_timed(frozen, exporter):
    """Rejected calls are counted as rejected, never given a duration."""
    registry = CollectorRegistry()
    collector = prometheus.instrument(registry, sample_durations=1)
    try:
        fn = circuit_breaker("timed.rejections", **SETTINGS)(_outcome)
        for what in ("ok", "invalid", "down", "down", "ok", "ok"):  # opens, then rejects 2
            with contextlib.suppress(Exception):
                fn(what)
        frozen.tick(10)
        fn("ok")  # the trial call closes it
        m = fn.breaker.metrics()
        timed = sum(
            registry.get_sample_value(
                "resilient_call_duration_seconds_count",
                {"breaker": "timed.rejections", "outcome": outcome},
            )
            or 0.0
            for outcome in ("success", "failure", "ignored")
        )
        assert (m.rejections, m.calls) == (2, 5)
        assert timed == 5.0
    finally:
        collector.uninstrument()


def test_the_hook_follows_breakers_created_before_and_after_instrument(exporter):
    """An exporter installed between two get_breaker() calls times both breakers."""
    registry = CollectorRegistry()
    before = get_breaker("timed.before")
    collector = prometheus.instrument(registry, sample_durations=1)
    try:
        after = get_breaker("timed.after")
        before.call(lambda: None)
        after.call(lambda: None)
        for name in ("timed.before", "timed.after"):
            count = registry.get_sample_value(
                "resilient_call_duration_seconds_count", {"breaker": name, "outcome": "success"}
            )
            assert count == 1.0
    finally:
        collector.uninstrument()
