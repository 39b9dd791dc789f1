"""What the exporters share: the breakers' call-duration hook, and counters that never go down.

Standard library only; each exporter imports its client library itself.

Counts and states are read from :meth:`CircuitBreaker.metrics` when a scrape or a
collection asks for them, so they cost the healthy path nothing.  Call durations
need a clock reading around the call; the breaker takes one only while a
:class:`DurationSink` is attached, and only for one call in ``sample_every``.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Protocol

from .. import _registry
from .._events import add_listener, remove_listener

if TYPE_CHECKING:
    from .._breaker import BreakerMetrics, CircuitBreaker, Observer
    from .._events import BreakerEvent

__all__ = [
    "CALL_OUTCOMES",
    "DURATION_OUTCOMES",
    "MAX_SAMPLE_EVERY",
    "DurationSink",
    "MonotonicTotals",
    "TransitionCounts",
    "attach",
    "call_counts",
    "check_sample_every",
    "detach",
]

#: Values of the ``outcome`` label of the call counters.  Every call that reached
#: the breaker is exactly one of success, failure, ignored or rejected; ``timeout``
#: counts the failures that were timeouts, ``fallback`` the calls a fallback answered.
CALL_OUTCOMES = ("success", "failure", "ignored", "rejected", "fallback", "timeout")

#: Values of the ``outcome`` label of the duration histogram (calls that ran).
DURATION_OUTCOMES = ("success", "failure", "ignored")


def call_counts(m: BreakerMetrics) -> tuple[int, ...]:
    """A breaker's counters in :data:`CALL_OUTCOMES` order."""
    return (m.successes, m.failures, m.ignored, m.rejections, m.fallbacks, m.timeouts)


#: The largest ``sample_durations`` (a breaker keeps one flag per call of the cycle).
MAX_SAMPLE_EVERY = 1024


def check_sample_every(value: object) -> int:
    """Validate ``sample_durations`` (an int from 0 to 1024) and return it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SAMPLE_EVERY:
        raise ValueError(
            f"sample_durations must be an int from 0 to {MAX_SAMPLE_EVERY} (1 times every "
            f"call, 16 one call in 16, 0 turns the duration histogram off), got {value!r}"
        )
    return value


class DurationSink(Protocol):
    """Where sampled call durations go (one per exporter instance)."""

    @property
    def sample_every(self) -> int:
        """Time one call in this many."""
        ...

    def observer_for(self, breaker: CircuitBreaker) -> Observer:
        """The ``(seconds, outcome)`` callable that records ``breaker``'s calls."""
        ...


_lock = threading.RLock()
_sinks: tuple[DurationSink, ...] = ()
_hooked: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()


def attach(sink: DurationSink) -> None:
    """Start timing calls (sampled) of every breaker, present and future, into ``sink``."""
    global _sinks
    with _lock:
        if any(s is sink for s in _sinks):
            return
        _sinks = (*_sinks, sink)
        if len(_sinks) == 1:
            _registry.add_creation_hook(_install)
        for breaker in _registry.breakers():
            _install(breaker)


def detach(sink: DurationSink) -> None:
    """Stop timing calls into ``sink``; with no sink left, no call is timed."""
    global _sinks
    with _lock:
        if not any(s is sink for s in _sinks):
            return
        _sinks = tuple(s for s in _sinks if s is not sink)
        if not _sinks:
            _registry.remove_creation_hook(_install)
        for breaker in {*_hooked, *_registry.breakers()}:
            _install(breaker)


def _install(breaker: CircuitBreaker) -> None:
    with _lock:
        sinks = _sinks
        if not sinks:
            breaker._set_observer(None)
            _hooked.discard(breaker)
            return
        observers = tuple(s.observer_for(breaker) for s in sinks)
        every = min(s.sample_every for s in sinks)
        breaker._set_observer(observers[0] if len(observers) == 1 else _fan_out(observers), every)
        _hooked.add(breaker)


def _fan_out(observers: tuple[Observer, ...]) -> Observer:
    def observe(seconds: float, outcome: str) -> None:
        for observer in observers:
            observer(seconds, outcome)

    return observe


class MonotonicTotals:
    """Per-breaker counters that never go down.

    ``reset()`` zeroes a breaker's counters.  Exporters must not report a counter
    going down, so when a value is lower than the last one read, the last one is
    carried over and added from then on.  (Calls between the last read and the
    reset are lost, as with Prometheus's own reset detection.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[list[int], list[int]]] = {}

    def read(self, name: str, values: tuple[int, ...]) -> tuple[int, ...]:
        """The monotonic view of ``values``, the breaker's counters read just now."""
        with self._lock:
            entry = self._seen.get(name)
            if entry is None:
                self._seen[name] = (list(values), [0] * len(values))
                return values
            last, carry = entry
            out: list[int] = []
            for i, value in enumerate(values):
                if value < last[i]:
                    carry[i] += last[i]
                last[i] = value
                out.append(carry[i] + value)
            return tuple(out)


class TransitionCounts:
    """A listener counting each breaker's state transitions by (from, to).

    Only this process's own transitions count (``event.source == "local"``); a
    transition won in a shared store for the whole fleet is not counted again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}

    def __call__(self, event: BreakerEvent) -> None:
        """Count one transition."""
        if event.source != "local":
            return
        key = (event.name, event.old_state.value, event.new_state.value)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def start(self) -> None:
        """Listen to every breaker's transitions from now on."""
        add_listener(self)

    def stop(self) -> None:
        """Stop listening."""
        remove_listener(self)

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        """``{(breaker, from, to): count}`` so far."""
        with self._lock:
            return dict(self._counts)
