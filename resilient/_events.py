"""State-change events, listeners, and the ``resilient`` logger."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from ._state import State

__all__ = ["BreakerEvent", "Listener", "add_listener", "logger", "remove_listener"]

#: Every transition is logged here: open at WARNING, half-open and close at INFO.
logger = logging.getLogger("resilient")

_LEVELS = {
    State.OPEN: logging.WARNING,
    State.FORCED_OPEN: logging.WARNING,
    State.DISABLED: logging.WARNING,
    State.HALF_OPEN: logging.INFO,
    State.CLOSED: logging.INFO,
}


@dataclasses.dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One state transition of one breaker, as given to listeners.

    Attributes:
        name: the breaker's name.
        old_state: the state before the transition.
        new_state: the state after it.
        reason: why, in words (``"5 consecutive failures"``, ``"recovery timeout passed"``).
        time: ``time.monotonic()`` when it happened (seconds).
        failures: consecutive failures counted at that moment.
        last_error: ``repr()`` of the last counted failure, if any.
        source: ``"local"`` for this process's breaker, ``"store"`` when the
            transition was won in a shared store (the whole fleet changed).
    """

    name: str
    old_state: State
    new_state: State
    reason: str
    time: float
    failures: int = 0
    last_error: str | None = None
    source: str = "local"


class Listener(Protocol):
    """Anything callable with a :class:`BreakerEvent`.  Its return value is ignored."""

    def __call__(self, event: BreakerEvent, /) -> object: ...


_global_listeners: tuple[Listener, ...] = ()
_global_lock = threading.Lock()


def add_listener(listener: Listener) -> None:
    """Call ``listener(event)`` on every state transition of every breaker.

    Listeners run after the transition, outside any lock; an exception in a
    listener is logged on the ``resilient`` logger and never reaches the caller.
    """
    if not callable(listener):
        raise TypeError(f"listener must be callable, got {listener!r}")
    global _global_listeners
    with _global_lock:
        _global_listeners = (*_global_listeners, listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling a listener added with :func:`add_listener` (no error if absent)."""
    global _global_listeners
    with _global_lock:
        _global_listeners = tuple(x for x in _global_listeners if x is not listener)


def global_listeners() -> tuple[Listener, ...]:
    """The process-wide listeners (for the testing helpers)."""
    return _global_listeners


def set_global_listeners(listeners: tuple[Listener, ...]) -> None:
    """Replace the process-wide listeners (for the testing helpers)."""
    global _global_listeners
    with _global_lock:
        _global_listeners = tuple(listeners)


def log_transition(event: BreakerEvent) -> None:
    """Write DESIGN's one line for a transition on the ``resilient`` logger."""
    level = _LEVELS[event.new_state]
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "circuit breaker '%s': %s -> %s (%s)",
        event.name,
        event.old_state.value,
        event.new_state.value,
        event.reason,
        extra={
            "resilient.breaker": event.name,
            "resilient.old_state": event.old_state.value,
            "resilient.new_state": event.new_state.value,
            "resilient.reason": event.reason,
            "resilient.failures": event.failures,
            "resilient.last_error": event.last_error,
            "resilient.source": event.source,
        },
    )


def dispatch(event: BreakerEvent, listeners: tuple[Callable[[BreakerEvent], object], ...]) -> None:
    """Log ``event`` and hand it to the breaker's and the global listeners."""
    log_transition(event)
    for listener in (*_global_listeners, *listeners):
        try:
            listener(event)
        except Exception:
            logger.exception(
                "circuit breaker '%s': listener %r failed on %s -> %s",
                event.name,
                listener,
                event.old_state.value,
                event.new_state.value,
            )
