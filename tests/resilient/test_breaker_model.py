"""Stateful property test: the breaker against a small reference model of the contract.

Hypothesis drives random sequences of call starts and finishes (success, counted
failure, ignored error, cancellation, sync overrun of call_timeout), time jumps,
trips, holds, resets and disables.  After every step the breaker's state and
counters must equal the model's, and at the end it must always be able to
recover (rule 1): unless an operator holds it open, moving time forward far
enough always lets a call through again.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from typing import Any

import freezegun
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from resilient import CircuitBreaker, CircuitOpenError, State

THRESHOLD = 3
SUCCESSES = 2
RECOVERY = 10.0
MAX_CALLS = 2
MAX_WAIT = 5.0
BACKOFF = 2.0
MAX_RECOVERY = 40.0
CALL_TIMEOUT = 4.0


class Ignored(Exception):
    """A business outcome: never counts."""


class Down(Exception):
    """A dependency failure: counts."""


@dataclasses.dataclass
class ModelCall:
    ctx: contextvars.Context
    epoch: int
    trial: bool
    started: float
    lease_deadline: float = 0.0
    lease_active: bool = True


@dataclasses.dataclass
class Model:
    """The contract, as plainly as it can be written."""

    state: State = State.CLOSED
    epoch: int = 0
    consecutive: int = 0
    retry_at: float = 0.0
    recovery: float = RECOVERY
    trial_successes: int = 0
    leases: list[ModelCall] = dataclasses.field(default_factory=list)
    successes: int = 0
    failures: int = 0
    ignored: int = 0
    rejections: int = 0
    timeouts: int = 0

    def visible_state(self, now: float) -> State:
        if self.state is State.OPEN and now >= self.retry_at:
            return State.HALF_OPEN
        return self.state

    def _drop_leases(self) -> None:
        for call in self.leases:
            call.lease_active = False
        self.leases = []

    def to_open(self, now: float) -> None:
        self.state = State.OPEN
        self.epoch += 1
        self.retry_at = now + self.recovery
        self._drop_leases()
        self.trial_successes = 0

    def to_closed(self) -> None:
        self.state = State.CLOSED
        self.epoch += 1
        self.consecutive = 0
        self._drop_leases()
        self.trial_successes = 0
        self.recovery = RECOVERY

    def admit(self, now: float) -> tuple[bool, bool]:
        """(admitted, is_trial)"""
        if self.state in (State.CLOSED, State.DISABLED):
            return True, False
        if self.state is State.FORCED_OPEN:
            self.rejections += 1
            return False, False
        if self.state is State.OPEN:
            if now < self.retry_at:
                self.rejections += 1
                return False, False
            self.state = State.HALF_OPEN
            self.epoch += 1
            self._drop_leases()
            self.trial_successes = 0
        if len(self.leases) >= MAX_CALLS:
            for call in self.leases:
                if call.lease_deadline <= now:
                    call.lease_active = False
            self.leases = [c for c in self.leases if c.lease_active]
        if len(self.leases) < MAX_CALLS:
            return True, True
        self.rejections += 1
        return False, False

    def finish(self, call: ModelCall, outcome: str, now: float) -> None:
        if outcome == "success" and now - call.started > CALL_TIMEOUT:
            outcome = "timeout"
        if outcome == "success":
            self.successes += 1
        elif outcome in ("failure", "timeout"):
            self.failures += 1
            if outcome == "timeout":
                self.timeouts += 1
        elif outcome == "ignored":
            self.ignored += 1
        else:  # cancelled
            self.ignored += 1
        counted = outcome in ("failure", "timeout")
        if call.trial:
            if not call.lease_active:
                return
            call.lease_active = False
            self.leases.remove(call)
            if call.epoch != self.epoch or self.state is not State.HALF_OPEN:
                return
            if outcome == "success":
                self.trial_successes += 1
                if self.trial_successes >= SUCCESSES:
                    self.to_closed()
            elif counted:
                self.recovery = min(self.recovery * BACKOFF, MAX_RECOVERY)
                self.to_open(now)
            return
        if call.epoch != self.epoch:
            return
        if outcome == "success":
            self.consecutive = 0
        elif counted and self.state in (State.CLOSED, State.DISABLED):
            self.consecutive += 1
            if self.consecutive >= THRESHOLD:
                if self.state is State.DISABLED:
                    self.consecutive = 0
                else:
                    self.to_open(now)


_EXC: dict[str, BaseException | None] = {
    "success": None,
    "failure": Down("connection refused"),
    "ignored": Ignored("invalid token"),
    "cancelled": asyncio.CancelledError(),
}


class BreakerMachine(RuleBasedStateMachine):
    """Random operation sequences against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = freezegun.freeze_time("2026-11-30 12:00:00")
        self.frozen = self.clock.start()
        self.breaker = CircuitBreaker(
            "model",
            failure_threshold=THRESHOLD,
            success_threshold=SUCCESSES,
            recovery_timeout=RECOVERY,
            half_open_max_calls=MAX_CALLS,
            half_open_max_wait=MAX_WAIT,
            recovery_backoff=BACKOFF,
            max_recovery_timeout=MAX_RECOVERY,
            call_timeout=CALL_TIMEOUT,
            ignore=(Ignored,),
        )
        self.model = Model()
        self.calls: list[ModelCall] = []

    def now(self) -> float:
        import time

        return time.monotonic()

    @initialize()
    def start(self) -> None:
        self.t0 = self.now()

    @rule()
    def start_call(self) -> None:
        """A call enters the breaker (``with breaker:`` in its own context)."""
        now = self.now()
        ctx = contextvars.copy_context()
        admitted, trial = self.model.admit(now)
        try:
            ctx.run(self.breaker.__enter__)
        except CircuitOpenError as err:
            assert not admitted, "breaker rejected a call the model admits"
            assert err.name == "model"  # noqa: PT017 - the model decides whether a rejection is right
            return
        assert admitted, "breaker admitted a call the model rejects"
        call = ModelCall(ctx, self.model.epoch, trial, now)
        if trial:
            call.lease_deadline = now + MAX_WAIT
            self.model.leases.append(call)
        self.calls.append(call)

    @precondition(lambda self: bool(self.calls))
    @rule(data=st.data(), outcome=st.sampled_from(["success", "failure", "ignored", "cancelled"]))
    def finish_call(self, data: Any, outcome: str) -> None:
        """An in-flight call ends with some outcome."""
        index = data.draw(st.integers(0, len(self.calls) - 1))
        call = self.calls.pop(index)
        exc = _EXC[outcome]
        if exc is None:
            call.ctx.run(self.breaker.__exit__, None, None, None)
        else:
            call.ctx.run(self.breaker.__exit__, type(exc), exc, None)
        self.model.finish(call, outcome, self.now())

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 4.5, 5.0, 9.9, 10.0, 25.0, 60.0]))
    def tick(self, seconds: float) -> None:
        """Time passes."""
        self.frozen.tick(seconds)

    @rule()
    def trip(self) -> None:
        """An operator opens the breaker."""
        self.breaker.trip()
        self.model.to_open(self.now())

    @rule()
    def hold(self) -> None:
        """An operator holds the breaker open."""
        self.breaker.trip(hold=True)
        self.model.state = State.FORCED_OPEN
        self.model.epoch += 1
        self.model._drop_leases()

    @rule()
    def reset(self) -> None:
        """An operator resets the breaker."""
        self.breaker.reset()
        m = self.model
        m.to_closed()
        m.successes = m.failures = m.ignored = m.rejections = m.timeouts = 0

    @rule()
    def disable(self) -> None:
        """An operator puts the breaker in shadow mode."""
        self.breaker.disable()
        m = self.model
        m.state = State.DISABLED
        m.epoch += 1
        m.consecutive = 0
        m._drop_leases()

    @invariant()
    def matches_model(self) -> None:
        """State and counters equal the model's after every step."""
        if not hasattr(self, "t0"):
            return
        now = self.now()
        metrics = self.breaker.metrics()
        assert self.breaker.state is self.model.visible_state(now)
        assert metrics.consecutive_failures == self.model.consecutive
        assert metrics.successes == self.model.successes
        assert metrics.failures == self.model.failures
        assert metrics.ignored == self.model.ignored
        assert metrics.rejections == self.model.rejections
        assert metrics.timeouts == self.model.timeouts
        assert metrics.half_open_in_flight == len(self.model.leases)

    def teardown(self) -> None:
        try:
            if hasattr(self, "t0") and self.model.state is not State.FORCED_OPEN:
                # Rule 1: whatever happened, the breaker recovers once time passes.
                self.frozen.tick(MAX_RECOVERY + MAX_WAIT + 1)
                ctx = contextvars.copy_context()
                ctx.run(self.breaker.__enter__)
                ctx.run(self.breaker.__exit__, None, None, None)
                if self.breaker.state is not State.DISABLED:
                    # one more successful trial closes it (success_threshold=2)
                    ctx = contextvars.copy_context()
                    ctx.run(self.breaker.__enter__)
                    ctx.run(self.breaker.__exit__, None, None, None)
                    assert self.breaker.state is State.CLOSED
        finally:
            self.clock.stop()


BreakerMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBreakerAgainstModel = BreakerMachine.TestCase
