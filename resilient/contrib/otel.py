"""OpenTelemetry metrics for every circuit breaker, in one line of setup.

::

    from resilient.contrib import otel

    otel.instrument()  # the global MeterProvider (or pass meter_provider=...)

Instruments (meter ``resilient``; attribute ``resilient.breaker.name`` on all):

- ``resilient.breaker.status`` (observable gauge, unit ``1``): 1 for the state the
  breaker is in, 0 for the other four, per ``resilient.breaker.state`` (closed,
  open, half_open, forced_open, disabled).
- ``resilient.breaker.calls`` (observable counter, ``{call}``) per
  ``resilient.call.outcome``: every call that reached the breaker is exactly one
  of ``success``, ``failure``, ``ignored``, ``rejected``; ``timeout`` counts the
  failures that were timeouts and ``fallback`` the calls a fallback answered.
- ``resilient.breaker.call.duration`` (histogram, ``s``) per
  ``resilient.call.outcome`` (``success``, ``failure``, ``ignored``), from one
  call in ``sample_durations``.
- ``resilient.breaker.transitions`` (observable counter, ``{transition}``) per
  ``resilient.breaker.previous_state`` and ``resilient.breaker.state``, since
  ``instrument()``.

States and counts are read from each breaker when the SDK collects, so they cost
the calls nothing.  A histogram ``record()`` costs microseconds, so sampled
durations are queued (a deque append) and recorded when the SDK next collects,
off the calls' path.  At most :data:`MAX_QUEUED` durations wait between two
collections; past that the oldest are dropped.

Requires the ``otel`` extra (the OpenTelemetry API; configure an SDK
``MeterProvider`` to export): ``pip install 'resilient[otel]'``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Histogram, MeterProvider, Observation
except ModuleNotFoundError as exc:  # pragma: no cover - exercised without the extra
    if not (exc.name or "").startswith("opentelemetry"):
        raise
    raise ModuleNotFoundError(
        "resilient.contrib.otel needs the opentelemetry-api package: pip install 'resilient[otel]'",
        name=exc.name,
    ) from exc

from .._registry import breakers
from .._state import State
from ._hub import (
    CALL_OUTCOMES,
    DURATION_OUTCOMES,
    MonotonicTotals,
    TransitionCounts,
    attach,
    call_counts,
    check_sample_every,
    detach,
)

if TYPE_CHECKING:
    from .._breaker import CircuitBreaker, Observer

__all__ = [
    "BREAKER_NAME",
    "CALL_OUTCOME",
    "DEFAULT_BUCKETS",
    "MAX_QUEUED",
    "PREVIOUS_STATE",
    "STATE",
    "BreakerInstruments",
    "instrument",
]

#: Attribute names.
BREAKER_NAME = "resilient.breaker.name"
STATE = "resilient.breaker.state"
PREVIOUS_STATE = "resilient.breaker.previous_state"
CALL_OUTCOME = "resilient.call.outcome"

#: Bucket bounds (seconds) advised for the duration histogram: OpenTelemetry's
#: recommendation for request durations.  A View set by the application wins.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

#: Sampled durations waiting for the next collection, at most.
MAX_QUEUED = 10_000

_STATES = tuple(State)
_Attributes = Mapping[str, str]
_lock = threading.Lock()
#: id(meter provider, or None for the global one) -> its instruments.
_installed: dict[int, BreakerInstruments] = {}


def instrument(
    meter_provider: MeterProvider | None = None,
    *,
    sample_durations: int = 16,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
) -> BreakerInstruments:
    """Report every breaker's state, calls, call durations and transitions.

    Calling it again with the same meter provider returns the instruments
    already there (their settings unchanged).

    Args:
        meter_provider: default: the global one (``opentelemetry.metrics``).
        sample_durations: time one call in this many (up to 1024) for the
            duration histogram: 1 times every call (costs more on every call, see
            the README's figures), 0 turns the histogram off.  When several exporters time
            calls, the smallest value applies to all of them.
        buckets: bucket bounds in seconds advised for the histogram (used by
            SDKs that support advice, opentelemetry-sdk >= 1.30).

    Returns:
        The instruments; ``instruments.uninstrument()`` stops them.

    Raises:
        ValueError: ``sample_durations`` is invalid.
    """
    every = check_sample_every(sample_durations)
    key = id(meter_provider) if meter_provider is not None else 0
    with _lock:
        existing = _installed.get(key)
        if existing is not None:
            return existing
        instruments = BreakerInstruments(meter_provider, sample_every=every, buckets=buckets)
        instruments._start()
        _installed[key] = instruments
        instruments._key = key
        return instruments


class _Queued:
    """One breaker's duration hook: queue ``(attributes, seconds)`` for the next collection."""

    __slots__ = ("_append", "_attributes")

    def __init__(self, name: str, append: Callable[[tuple[_Attributes, float]], None]) -> None:
        self._append = append
        self._attributes = {o: {BREAKER_NAME: name, CALL_OUTCOME: o} for o in DURATION_OUTCOMES}

    def observe(self, seconds: float, outcome: str) -> None:
        attributes = self._attributes.get(outcome)
        if attributes is None:
            attributes = {**self._attributes["success"], CALL_OUTCOME: outcome}
        self._append((attributes, seconds))


class BreakerInstruments:
    """The instruments :func:`instrument` creates, and their callbacks."""

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        sample_every: int = 16,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            resilient_version = version("resilient")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            resilient_version = ""
        meter = metrics.get_meter("resilient", resilient_version, meter_provider=meter_provider)
        self._sample_every = sample_every
        self._queue: deque[tuple[_Attributes, float]] = deque(maxlen=MAX_QUEUED)
        self._totals = MonotonicTotals()
        self._transitions = TransitionCounts()
        self._active = False
        self._key: int | None = None
        self._flush_lock = threading.Lock()
        meter.create_observable_gauge(
            "resilient.breaker.status",
            callbacks=[self._observe_status],
            unit="1",
            description="Circuit breaker state: 1 for the state it is in, 0 for the others.",
        )
        meter.create_observable_counter(
            "resilient.breaker.calls",
            callbacks=[self._observe_calls],
            unit="{call}",
            description="Calls through a circuit breaker, by outcome.",
        )
        meter.create_observable_counter(
            "resilient.breaker.transitions",
            callbacks=[self._observe_transitions],
            unit="{transition}",
            description="Circuit breaker state transitions.",
        )
        self._duration: Histogram | None = None
        if sample_every:
            self._duration = _create_histogram(
                meter,
                "resilient.breaker.call.duration",
                unit="s",
                description="Duration of calls that ran through a circuit breaker (sampled).",
                buckets=buckets,
            )

    def __repr__(self) -> str:
        return (
            f"<resilient BreakerInstruments sample_durations={self._sample_every} "
            f"active={self._active}>"
        )

    @property
    def sample_every(self) -> int:
        """Time one call in this many (the duration histogram's sampling)."""
        return self._sample_every

    def observer_for(self, breaker: CircuitBreaker) -> Observer:
        """The duration hook queueing ``breaker``'s sampled calls for the histogram."""
        return _Queued(breaker.name, self._queue.append).observe

    def _start(self) -> None:
        self._active = True
        self._transitions.start()
        if self._duration is not None:
            attach(self)

    def uninstrument(self) -> None:
        """Stop timing calls and counting transitions; the instruments report nothing more.

        (The OpenTelemetry API cannot remove instruments from a meter.)
        """
        with _lock:
            if self._key is not None and _installed.get(self._key) is self:
                del _installed[self._key]
            if not self._active:
                return
            self._active = False
        detach(self)
        self._transitions.stop()
        self._queue.clear()

    def flush_durations(self) -> int:
        """Record the queued durations into the histogram now; returns how many.

        Runs at every collection; call it yourself only to record durations
        before a collection that would not run resilient's callbacks.
        """
        histogram = self._duration
        if histogram is None:
            return 0
        queue = self._queue
        done = 0
        with self._flush_lock:
            for _ in range(len(queue)):
                try:
                    attributes, seconds = queue.popleft()
                except IndexError:
                    break
                histogram.record(seconds, attributes)
                done += 1
        return done

    def _observe_status(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        self.flush_durations()
        out: list[Observation] = []
        for breaker in breakers():
            state = breaker.state
            for s in _STATES:
                attributes = {BREAKER_NAME: breaker.name, STATE: s.value}
                out.append(Observation(1 if state is s else 0, attributes))
        return out

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        self.flush_durations()
        out: list[Observation] = []
        for breaker in breakers():
            name = breaker.name
            totals = self._totals.read(name, call_counts(breaker.metrics()))
            for outcome, value in zip(CALL_OUTCOMES, totals, strict=True):
                out.append(Observation(value, {BREAKER_NAME: name, CALL_OUTCOME: outcome}))
        return out

    def _observe_transitions(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        self.flush_durations()
        present = {breaker.name for breaker in breakers()}
        return [
            Observation(count, {BREAKER_NAME: name, PREVIOUS_STATE: old, STATE: new})
            for (name, old, new), count in sorted(self._transitions.snapshot().items())
            if name in present
        ]


def _create_histogram(
    meter: metrics.Meter, name: str, *, unit: str, description: str, buckets: Sequence[float]
) -> Histogram:
    try:
        return meter.create_histogram(
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=list(buckets),
        )
    except TypeError:  # pragma: no cover - opentelemetry-api < 1.30 takes no advice
        return meter.create_histogram(name, unit=unit, description=description)
