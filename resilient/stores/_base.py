"""The seam between a breaker and a shared store.

A breaker always runs its own in-process state machine.  A shared store adds a
*fleet* layer on top: the breaker asks it before admitting a call and reports
outcomes to it.  Every method of a :class:`FleetLink` must be cheap when
nothing needs to cross the network (a short-lived local view), must never
raise into the caller, and returns ``None`` when the store cannot be reached
(the breaker then goes on with its per-process state).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from .._state import State

if TYPE_CHECKING:
    from .._breaker import CircuitBreaker

Outcome = Literal["success", "failure", "neutral"]


@dataclasses.dataclass(frozen=True, slots=True)
class FleetVerdict:
    """The fleet's answer to "may this call go ahead?".

    Attributes:
        allowed: whether the fleet admits the call.
        state: the fleet-wide state as the store sees it.
        retry_after: seconds until the fleet admits a trial (when rejected).
        reason: why the fleet is open (for the rejection message).
        lease: a fleet-wide half-open permit granted to this call; its outcome
            must be reported with it, and it expires on its own if never reported.
    """

    allowed: bool
    state: State
    retry_after: float | None = None
    reason: str = ""
    lease: str | None = None


@runtime_checkable
class FleetLink(Protocol):
    """One breaker's connection to a shared store (see the module docstring)."""

    def admit(self) -> FleetVerdict | None:
        """Ask the fleet before a sync call; ``None`` means "no opinion, go local"."""

    async def aadmit(self) -> FleetVerdict | None:
        """Async twin of :meth:`admit` (never blocks the event loop)."""

    def record(self, outcome: Outcome, lease: str | None, error: str | None) -> bool | None:
        """Report a sync call's outcome (``error`` is the repr of a counted failure).

        Returns True when the fleet took charge of a failure (it is open after
        it): the breaker then does not count it toward its own opening, so one
        failure never produces two openings (the fleet's and this process's)."""

    async def arecord(self, outcome: Outcome, lease: str | None, error: str | None) -> bool | None:
        """Async twin of :meth:`record`."""

    def offload(self, job: Callable[[], object]) -> bool:
        """Run ``job`` (which may reach the store) off the calling thread when that
        thread runs an event loop; return False to have the caller run it now.
        Used for a failure on the decorator's fast path, which cannot await."""

    def command(self, state: State, reason: str) -> None:
        """Apply an operator action fleet-wide: trip (OPEN), hold (FORCED_OPEN),
        reset (CLOSED) or disable (DISABLED)."""

    def fleet_state(self) -> tuple[State, float | None] | None:
        """The last known fleet state and seconds until retry, from the local view
        (no I/O); ``None`` when unknown."""

    def close(self) -> None:
        """Release resources (called when the breaker is dropped from its registry)."""


class Store(Protocol):
    """Where breakers keep shared state.  ``attach`` is called once per breaker,
    when it handles its first call; returning ``None`` keeps the breaker purely
    in-process."""

    def attach(self, breaker: CircuitBreaker) -> FleetLink | None:
        """Connect ``breaker`` to this store."""


class MemoryStore:
    """The default store: state lives in this process only, in the breaker itself.

    Passing ``MemoryStore()`` (or nothing) keeps a breaker purely in-process; it is
    the fastest setting and needs no service.
    """

    def attach(self, breaker: CircuitBreaker) -> FleetLink | None:
        """In-process breakers need no fleet link."""
        return None

    def __repr__(self) -> str:
        return "MemoryStore()"
