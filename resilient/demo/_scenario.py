"""The scenario: phases of the outage, the request stream, and what was observed.

Pure orchestration: the HTTP service is in :mod:`._service`, the breaker-protected
client in :mod:`._client` (reached through a :class:`Channel`, in this process or in
a worker process), the output in :mod:`._report`.  Each phase switches the service
into a failure mode and sends requests until its goal is observed (for example
"a half-open trial failed and later calls were rejected"), so the run takes no longer
than the breaker's own timeouts make necessary; a per-phase time limit guarantees the
demo always ends, and a phase that hit it is reported as such.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ._service import HEALTHY, SLOW, UNAVAILABLE, AuthService
from ._tokens import VALID, User

# As written in the decorator on resilient.demo._client.AuthClient.validate_token.
BREAKER_NAME: Final = "auth.validate_token"
FAILURE_THRESHOLD: Final = 3
SUCCESS_THRESHOLD: Final = 2

# The paths a validation can take (shown on every line of the demo).
REMOTE: Final = "remote"  # the auth service answered
FALLBACK: Final = "fallback"  # the call failed; the local fallback answered
REJECTED: Final = "rejected"  # the breaker refused the call; the local fallback answered
ERROR: Final = "error"  # an exception reached the caller (must never happen)
ACCEPTED: Final = "accepted"
REFUSED: Final = "refused"

OPEN_STATES: Final = ("open", "forced_open")


@dataclass(frozen=True, slots=True)
class Timing:
    """Every duration of the run, in seconds, scaled by ``--speed``.

    At speed 1 the whole scenario takes a few seconds; speed 0.1 is ten times slower
    (easier to watch), speed 2 twice as fast.
    """

    speed: float
    recovery_timeout: float
    call_timeout: float
    slow_delay: float
    interval: float

    @classmethod
    def for_speed(cls, speed: float) -> Timing:
        """Timings for a speed factor (1.0: recovery 0.5 s, call timeout 0.2 s)."""
        return cls(
            speed=speed,
            recovery_timeout=0.5 / speed,
            call_timeout=0.2 / speed,
            slow_delay=1.0 / speed,
            interval=0.08 / speed,
        )

    @property
    def phase_limit(self) -> float:
        """Longest a phase may run before it is reported as not reaching its goal."""
        return 10 * self.recovery_timeout + 40 * self.interval + 5 * self.slow_delay


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one validation request did, as seen by the caller."""

    path: str
    verdict: str
    detail: str
    latency: float
    state: str


@dataclass(frozen=True, slots=True)
class Transition:
    """One breaker state change, stamped on the demo's monotonic clock.

    ``source`` is ``"store"`` when the change was won in the shared store (the
    whole fleet changed), ``"local"`` otherwise.
    """

    t: float
    client: str
    old: str
    new: str
    reason: str
    source: str = "local"


@dataclass(frozen=True, slots=True)
class Step:
    """One request of the stream: who, with what token, which path, which verdict."""

    index: int
    t: float
    phase: str
    client: str
    user: str
    kind: str
    state: str
    path: str
    verdict: str
    latency_ms: float
    detail: str

    @property
    def legitimate(self) -> bool:
        """True for a user holding a valid token."""
        return self.kind == VALID

    @property
    def wrong(self) -> bool:
        """A valid user refused, or a bad token accepted: what must never happen."""
        return (self.verdict == ACCEPTED) != self.legitimate


class Channel(Protocol):
    """A way to reach one auth client (in this process, or a worker process)."""

    label: str

    async def validate(self, token: str) -> Outcome:
        """Validate one token through the client's breaker-protected method."""
        ...

    def transitions(self) -> list[Transition]:
        """Breaker transitions seen since the last call (and forget them)."""
        ...

    async def metrics(self) -> dict[str, Any]:
        """The breaker's ``metrics()`` snapshot, JSON-ready."""
        ...

    async def close(self) -> None:
        """Release the client (and stop the worker, if any)."""
        ...


@dataclass
class Progress:
    """What one phase has seen so far; its goal is a predicate on this."""

    steps: int = 0
    failed_calls: int = 0
    rejected_since_failure: int = 0
    opened: bool = False
    closed_again: bool = False
    remote_since_closed: int = 0

    def record(self, step: Step) -> None:
        """Account for one step."""
        self.steps += 1
        if step.path == FALLBACK:
            self.failed_calls += 1
            self.rejected_since_failure = 0
        elif step.path == REJECTED:
            self.rejected_since_failure += 1
        if step.state != "closed":
            self.opened = True  # open or half-open: the breaker left closed
        elif self.opened:
            if self.closed_again and step.path == REMOTE:
                self.remote_since_closed += 1
            self.closed_again = True


@dataclass(frozen=True, slots=True)
class Phase:
    """One chapter of the outage."""

    key: str
    title: str
    setup: Callable[[AuthService], None]
    goal: Callable[[Progress], bool]
    goal_text: str


@dataclass
class PhaseResult:
    """How a phase went."""

    key: str
    title: str
    started: float
    ended: float
    steps: int
    goal: str
    reached: bool


@dataclass
class Result:
    """Everything the run observed; :mod:`._report` turns it into text and JSON."""

    mode: str
    timing: Timing
    service_url: str
    broken_fallback: bool
    clients: list[str]
    steps: list[Step] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    duration: float = 0.0
    final_states: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


class Reporter(Protocol):
    """Receives the run as it happens (the live lines)."""

    def phase(self, number: int, total: int, phase: Phase) -> None:
        """A phase starts."""
        ...

    def step(self, step: Step) -> None:
        """A request finished."""
        ...

    def transition(self, transition: Transition) -> None:
        """The breaker changed state."""
        ...


def _outage_goal(progress: Progress) -> bool:
    return progress.failed_calls >= 1 and progress.rejected_since_failure >= 2


def _stop(service: AuthService) -> None:
    service.stop()


def _start_failing(mode: str) -> Callable[[AuthService], None]:
    def setup(service: AuthService) -> None:
        service.set_mode(mode)
        service.start()

    return setup


def _restart_without_secret(service: AuthService) -> None:
    service.stop()
    service.set_mode(HEALTHY)
    service.start(missing_secret_requests=1)


def phases(timing: Timing, n_users: int) -> list[Phase]:
    """The scenario, in order."""
    ms = round(timing.call_timeout * 1000)
    return [
        Phase(
            "healthy",
            "healthy: the auth service answers every request",
            lambda service: service.start(),
            lambda p: p.steps >= n_users,
            f"{n_users} requests answered",
        ),
        Phase(
            "refused",
            "outage: the auth service is down (connection refused)",
            _stop,
            lambda p: p.opened and p.rejected_since_failure >= 3,
            "breaker open, later requests served without waiting",
        ),
        Phase(
            "unavailable",
            "outage: the auth service is up again but answers 503",
            _start_failing(UNAVAILABLE),
            _outage_goal,
            "a half-open trial failed (503) and the breaker re-opened",
        ),
        Phase(
            "slow",
            f"outage: answers take {timing.slow_delay:.2f} s, past call_timeout {ms} ms",
            _start_failing(SLOW),
            _outage_goal,
            "a half-open trial timed out and the breaker re-opened",
        ),
        Phase(
            "secret",
            "redeploy: the service starts without its secret (one 500, then fixed)",
            _restart_without_secret,
            _outage_goal,
            "the start-up fault hit once; nobody was locked out",
        ),
        Phase(
            "recovered",
            "recovery: the service is healthy; half-open trial, then closed",
            lambda service: None,
            lambda p: p.closed_again and p.remote_since_closed >= 4,
            "breaker closed again, requests answered by the service",
        ),
    ]


async def run(
    *,
    mode: str,
    service: AuthService,
    channels: Sequence[Channel],
    users: Sequence[User],
    timing: Timing,
    reporter: Reporter,
    broken_fallback: bool,
) -> Result:
    """Drive the scenario through ``channels`` and record everything.

    Users take turns in a fixed order; with two channels (``--redis``) they are
    dealt two by two, so each client process sees valid and bad tokens alike.
    Times are seconds since the scenario started.
    """
    origin = time.monotonic()

    def now() -> float:
        return time.monotonic() - origin

    def drain() -> list[Transition]:
        seen = [tr for channel in channels for tr in channel.transitions()]
        rebased = [dataclasses.replace(tr, t=round(tr.t - origin, 4)) for tr in seen]
        return sorted(rebased, key=lambda tr: tr.t)

    result = Result(
        mode=mode,
        timing=timing,
        service_url=service.url,
        broken_fallback=broken_fallback,
        clients=[c.label for c in channels],
    )
    plan = phases(timing, len(users))
    turn = 0
    for number, phase in enumerate(plan, start=1):
        phase.setup(service)
        reporter.phase(number, len(plan), phase)
        progress = Progress()
        started = now()
        reached = False
        while True:
            user = users[turn % len(users)]
            channel = channels[(turn // 2) % len(channels)]
            turn += 1
            t = now()
            outcome = await channel.validate(user.token)
            step = Step(
                index=len(result.steps) + 1,
                t=round(t, 4),
                phase=phase.key,
                client=channel.label,
                user=user.name,
                kind=user.kind,
                state=outcome.state,
                path=outcome.path,
                verdict=outcome.verdict,
                latency_ms=round(outcome.latency * 1000, 2),
                detail=outcome.detail,
            )
            result.steps.append(step)
            progress.record(step)
            reporter.step(step)
            for transition in drain():
                result.transitions.append(transition)
                reporter.transition(transition)
            if phase.goal(progress):
                reached = True
                break
            if now() - started > timing.phase_limit:
                break
            await asyncio.sleep(timing.interval)
        result.phases.append(
            PhaseResult(
                key=phase.key,
                title=phase.title,
                started=round(started, 4),
                ended=round(now(), 4),
                steps=progress.steps,
                goal=phase.goal_text,
                reached=reached,
            )
        )
    result.duration = round(now(), 4)
    for channel in channels:
        result.metrics[channel.label] = await channel.metrics()
    for transition in drain():
        result.transitions.append(transition)
        reporter.transition(transition)
    result.transitions.sort(key=lambda tr: tr.t)
    for label in result.clients:
        last = [s for s in result.steps if s.client == label]
        result.final_states[label] = last[-1].state if last else "unknown"
    return result
