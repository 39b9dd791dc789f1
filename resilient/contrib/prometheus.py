"""Prometheus metrics for every circuit breaker, in one line of setup.

::

    from resilient.contrib import prometheus

    prometheus.instrument()  # the default registry, served by your /metrics endpoint

Series (``breaker`` is the breaker's name; every breaker in the registry shows,
including breakers created after ``instrument()``):

- ``resilient_state{breaker, state}``: 1 for the state the breaker is in, 0 for the
  other four (closed, open, half_open, forced_open, disabled).
- ``resilient_calls_total{breaker, outcome}``: every call that reached the breaker
  is exactly one of ``success``, ``failure``, ``ignored``, ``rejected``;
  ``timeout`` counts the failures that were timeouts and ``fallback`` the calls a
  fallback answered (so do not sum over every outcome).
- ``resilient_call_duration_seconds{breaker, outcome}``: histogram of the duration
  of calls that ran (``success``, ``failure``, ``ignored``), from one call in
  ``sample_durations``.
- ``resilient_transitions_total{breaker, from, to}``: state transitions since
  ``instrument()``.

States and counts are read from each breaker at scrape time, so they cost the
calls nothing.  Durations need a clock reading, which the breakers take only
while an exporter is installed, and only for the sampled calls.

Requires the ``prometheus`` extra: ``pip install 'resilient[prometheus]'``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ModuleNotFoundError as exc:  # pragma: no cover - exercised without the extra
    if not (exc.name or "").startswith("prometheus_client"):
        raise
    raise ModuleNotFoundError(
        "resilient.contrib.prometheus needs the prometheus-client package: "
        "pip install 'resilient[prometheus]'",
        name=exc.name,
    ) from exc

from .._breaker import _count_value
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

__all__ = ["DEFAULT_BUCKETS", "BreakerCollector", "instrument"]

#: Histogram bucket bounds in seconds (Prometheus's defaults, which are also
#: OpenTelemetry's recommended bounds for request durations).
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

_STATES = tuple(State)
_lock = threading.Lock()
#: id(registry) -> its collector (the collector keeps its registry alive).
_installed: dict[int, BreakerCollector] = {}


def instrument(
    registry: CollectorRegistry | None = None,
    *,
    sample_durations: int = 16,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
) -> BreakerCollector:
    """Export every breaker's state, calls, call durations and transitions.

    Calling it again with the same registry returns the collector already there
    (its settings unchanged).

    Args:
        registry: where to register; default: ``prometheus_client.REGISTRY``.
        sample_durations: time one call in this many (up to 1024) for the
            duration histogram: 1 times every call (costs more on every call, see
            the README's figures), 0 turns the histogram off.  When several exporters time
            calls, the smallest value applies to all of them.
        buckets: histogram bucket upper bounds in seconds, increasing.

    Returns:
        The registered collector; ``collector.uninstrument()`` removes it.

    Raises:
        ValueError: ``sample_durations`` or ``buckets`` is invalid.
    """
    target = REGISTRY if registry is None else registry
    every = check_sample_every(sample_durations)
    bounds = _check_buckets(buckets)
    with _lock:
        existing = _installed.get(id(target))
        if existing is not None:
            return existing
        collector = BreakerCollector(target, sample_every=every, bounds=bounds)
        target.register(collector)
        collector._start()
        _installed[id(target)] = collector
        return collector


def _check_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    bounds = [float(b) for b in buckets]
    if bounds and math.isinf(bounds[-1]) and bounds[-1] > 0:
        bounds.pop()  # +Inf is always added
    if not bounds or not all(0 < b < math.inf for b in bounds):
        raise ValueError(
            f"buckets must be positive, finite numbers of seconds, got {tuple(buckets)!r}"
        )
    if any(a >= b for a, b in itertools.pairwise(bounds)):
        raise ValueError(f"buckets must be strictly increasing, got {tuple(buckets)!r}")
    return tuple(bounds)


class _Row:
    """One outcome's bucket counts (exact: ``itertools.count``) and sum of seconds."""

    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [itertools.count() for _ in range(size)]
        self.total = 0.0


class _BucketHistogram:
    """One breaker's sampled call durations, per outcome, in fixed buckets.

    Recording takes no lock (a lock costs more than the rest of ``observe``):
    ``next()`` on an ``itertools.count`` is atomic, and the float add to the sum
    runs between two bytecodes that never switch threads under the GIL.
    """

    __slots__ = ("_bounds", "_lock", "_rows")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}

    def observe(self, seconds: float, outcome: str) -> None:
        """Record one call (the breaker's duration hook)."""
        row = self._rows.get(outcome)
        if row is None:
            with self._lock:
                row = self._rows.setdefault(outcome, _Row(len(self._bounds) + 1))
        if seconds < 0.0:  # noqa: PLR1730 - a clock moved back by a test; max() costs a call
            seconds = 0.0
        next(row.counts[bisect_left(self._bounds, seconds)])
        row.total += seconds

    def samples(self) -> list[tuple[str, list[tuple[str, float]], float]]:
        """``(outcome, cumulative buckets as (le, count), sum)`` per outcome seen."""
        with self._lock:
            rows = dict(self._rows)
        out: list[tuple[str, list[tuple[str, float]], float]] = []
        # repr() is how prometheus_client writes a bound below 1e6 s ("0.005", "1.0").
        les = [*(repr(b) for b in self._bounds), "+Inf"]
        for outcome in sorted(rows, key=_outcome_order):
            row = rows[outcome]
            total = row.total
            running = 0.0
            cumulative: list[tuple[str, float]] = []
            for le, count in zip(les, row.counts, strict=True):
                running += _count_value(count)
                cumulative.append((le, running))
            out.append((outcome, cumulative, total))
        return out


def _outcome_order(outcome: str) -> tuple[int, str]:
    known = outcome in DURATION_OUTCOMES
    return (DURATION_OUTCOMES.index(outcome) if known else len(DURATION_OUTCOMES), outcome)


class BreakerCollector(Collector):
    """The collector :func:`instrument` registers (a ``prometheus_client`` Collector).

    It reads every breaker in :func:`resilient.breakers` at each scrape.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        sample_every: int = 16,
        bounds: tuple[float, ...] = DEFAULT_BUCKETS,
    ) -> None:
        self._registry = registry
        self._sample_every = sample_every
        self._bounds = bounds
        self._lock = threading.Lock()
        self._histograms: dict[str, _BucketHistogram] = {}
        self._totals = MonotonicTotals()
        self._transitions = TransitionCounts()
        self._active = False

    def __repr__(self) -> str:
        return (
            f"<resilient BreakerCollector sample_durations={self._sample_every} "
            f"buckets={len(self._bounds)} active={self._active}>"
        )

    @property
    def sample_every(self) -> int:
        """Time one call in this many (the duration histogram's sampling)."""
        return self._sample_every

    def observer_for(self, breaker: CircuitBreaker) -> Observer:
        """The duration hook recording ``breaker``'s calls into this collector."""
        with self._lock:
            histogram = self._histograms.get(breaker.name)
            if histogram is None:
                histogram = self._histograms[breaker.name] = _BucketHistogram(self._bounds)
        return histogram.observe

    def _start(self) -> None:
        self._active = True
        self._transitions.start()
        if self._sample_every:
            attach(self)

    def uninstrument(self) -> None:
        """Unregister from the registry and stop timing calls and counting transitions."""
        with _lock:
            if _installed.get(id(self._registry)) is self:
                del _installed[id(self._registry)]
            if not self._active:
                return
            self._active = False
        detach(self)
        self._transitions.stop()
        with contextlib.suppress(KeyError):  # already unregistered by hand
            self._registry.unregister(self)

    def describe(self) -> Iterable[Metric]:
        """The metric families, without samples (lets the registry check names)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Read every breaker now."""
        state, calls, duration, transitions = families = self._families()
        present: set[str] = set()
        for breaker in breakers():
            name = breaker.name
            present.add(name)
            m = breaker.metrics()
            for s in _STATES:
                state.add_metric([name, s.value], 1.0 if m.state is s else 0.0)
            totals = self._totals.read(name, call_counts(m))
            for outcome, value in zip(CALL_OUTCOMES, totals, strict=True):
                calls.add_metric([name, outcome], value)
            with self._lock:
                histogram = self._histograms.get(name)
            if histogram is not None:
                for outcome, buckets, total in histogram.samples():
                    duration.add_metric([name, outcome], buckets, total)
        for (name, old, new), count in sorted(self._transitions.snapshot().items()):
            if name in present:
                transitions.add_metric([name, old, new], count)
        return families

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily, CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily
    ]:
        return (
            GaugeMetricFamily(
                "resilient_state",
                "Circuit breaker state: 1 for the state the breaker is in, 0 for the others.",
                labels=["breaker", "state"],
            ),
            CounterMetricFamily(
                "resilient_calls",
                "Calls through a circuit breaker by outcome: success, failure, ignored and "
                "rejected partition the calls; timeout (a kind of failure) and fallback "
                "(calls a fallback answered) overlap them.",
                labels=["breaker", "outcome"],
            ),
            HistogramMetricFamily(
                "resilient_call_duration_seconds",
                "Duration of calls that ran through a circuit breaker (sampled).",
                labels=["breaker", "outcome"],
            ),
            CounterMetricFamily(
                "resilient_transitions",
                "Circuit breaker state transitions.",
                labels=["breaker", "from", "to"],
            ),
        )
