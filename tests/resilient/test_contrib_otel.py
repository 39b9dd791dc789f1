"""resilient.contrib.otel: what the OpenTelemetry SDK collects about every breaker."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter, MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

from resilient import CircuitOpenError, circuit_breaker, get_breaker
from resilient.contrib import otel, prometheus

NAME = "resilient.breaker.name"


class Down(Exception):
    """A dependency failure."""


def collect(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Metric name -> its data points, from one collection."""
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "resilient"
            for metric in scope.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def points(metrics: dict[str, list[Any]], name: str, breaker: str) -> dict[tuple, Any]:
    """The data points of one breaker, keyed by their other attributes."""
    return {
        tuple(sorted((k, v) for k, v in p.attributes.items() if k != NAME)): p
        for p in metrics.get(name, [])
        if p.attributes[NAME] == breaker
    }


def status(metrics: dict[str, list[Any]], breaker: str) -> dict[str, int]:
    return {
        dict(key)["resilient.breaker.state"]: p.value
        for key, p in points(metrics, "resilient.breaker.status", breaker).items()
    }


def calls(metrics: dict[str, list[Any]], breaker: str) -> dict[str, int]:
    return {
        dict(key)["resilient.call.outcome"]: p.value
        for key, p in points(metrics, "resilient.breaker.calls", breaker).items()
    }


def transitions(metrics: dict[str, list[Any]], breaker: str) -> dict[tuple[str, str], int]:
    return {
        (
            dict(key)["resilient.breaker.previous_state"],
            dict(key)["resilient.breaker.state"],
        ): p.value
        for key, p in points(metrics, "resilient.breaker.transitions", breaker).items()
    }


def durations(metrics: dict[str, list[Any]], breaker: str) -> dict[str, Any]:
    return {
        dict(key)["resilient.call.outcome"]: p
        for key, p in points(metrics, "resilient.breaker.call.duration", breaker).items()
    }


@pytest.fixture
def installed():
    """Instruments made in a test, uninstrumented after it."""
    made: list[otel.BreakerInstruments] = []
    yield made
    for instruments in made:
        instruments.uninstrument()


@pytest.fixture
def reader(installed):
    def make(**kwargs: Any) -> InMemoryMetricReader:
        reader = InMemoryMetricReader(**kwargs)
        installed.append(
            otel.instrument(MeterProvider(metric_readers=[reader]), sample_durations=1)
        )
        return reader

    return make


def test_collection_follows_a_breaker_through_open_and_closed(reader, frozen):
    """Status gauge, call counter and transitions match the breaker at every collection."""
    r = reader()
    failing = {"on": False}

    @circuit_breaker("otel.payments", failure_threshold=2, success_threshold=1, recovery_timeout=10)
    def charge() -> str:
        if failing["on"]:
            raise Down
        return "charged"

    charge()
    m = collect(r)
    assert status(m, "otel.payments") == {
        "closed": 1,
        "open": 0,
        "half_open": 0,
        "forced_open": 0,
        "disabled": 0,
    }
    failing["on"] = True
    for _ in range(2):
        with pytest.raises(Down):
            charge()
    with pytest.raises(CircuitOpenError):
        charge()
    m = collect(r)
    assert status(m, "otel.payments")["open"] == 1
    assert status(m, "otel.payments")["closed"] == 0
    assert calls(m, "otel.payments") == {
        "success": 1,
        "failure": 2,
        "ignored": 0,
        "rejected": 1,
        "fallback": 0,
        "timeout": 0,
    }
    assert transitions(m, "otel.payments") == {("closed", "open"): 1}

    frozen.tick(10)
    failing["on"] = False
    charge()
    m = collect(r)
    assert status(m, "otel.payments")["closed"] == 1
    assert transitions(m, "otel.payments") == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }


def test_instrument_kinds_and_units_follow_the_semantic_conventions(reader):
    """Names under resilient.breaker.*, units 1, {call}, {transition} and s."""
    r = reader()

    @circuit_breaker("otel.units")
    def ping() -> None:
        return None

    ping()
    ping.breaker.trip()  # a transition, so the transitions counter has a point
    data = r.get_metrics_data()
    assert data is not None
    found = {
        m.name: (type(m.data).__name__, m.unit)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert found == {
        "resilient.breaker.status": ("Gauge", "1"),
        "resilient.breaker.calls": ("Sum", "{call}"),
        "resilient.breaker.transitions": ("Sum", "{transition}"),
        "resilient.breaker.call.duration": ("Histogram", "s"),
    }


def test_durations_reach_the_histogram_at_the_next_collection(reader, frozen):
    """Sampled durations are recorded with their outcome and the advised buckets."""
    r = reader()

    @circuit_breaker("otel.timed", failure_threshold=100)
    def call(seconds: float, fail: bool = False) -> None:
        frozen.tick(seconds)
        if fail:
            raise Down

    call(0.3)
    call(0.004)
    with pytest.raises(Down):
        call(2.0, True)
    hist = durations(collect(r), "otel.timed")
    assert hist["success"].count == 2
    assert hist["success"].sum == pytest.approx(0.304)
    assert hist["failure"].count == 1
    assert tuple(hist["success"].explicit_bounds) == otel.DEFAULT_BUCKETS
    bounds = list(hist["success"].explicit_bounds)
    counts = list(hist["success"].bucket_counts)
    assert counts[bounds.index(0.005)] == 1  # 0.004 s
    assert counts[bounds.index(0.5)] == 1  # 0.3 s


def test_queued_durations_are_bounded(installed, monkeypatch):
    """At most MAX_QUEUED durations wait for a collection; the rest are dropped."""
    monkeypatch.setattr(otel, "MAX_QUEUED", 5)
    r = InMemoryMetricReader()
    installed.append(otel.instrument(MeterProvider(metric_readers=[r]), sample_durations=1))

    @circuit_breaker("otel.bounded")
    def ping() -> None:
        return None

    for _ in range(20):
        ping()
    m = collect(r)
    assert durations(m, "otel.bounded")["success"].count == 5
    assert calls(m, "otel.bounded")["success"] == 20


def test_delta_temporality_never_reports_a_negative_count_after_reset(installed):
    """With delta export, a breaker's reset() does not turn into a negative delta."""
    r = InMemoryMetricReader(
        preferred_temporality={
            ObservableCounter: AggregationTemporality.DELTA,
            Counter: AggregationTemporality.DELTA,
        }
    )
    installed.append(otel.instrument(MeterProvider(metric_readers=[r])))

    @circuit_breaker("otel.delta")
    def ping() -> None:
        return None

    for _ in range(3):
        ping()
    assert calls(collect(r), "otel.delta")["success"] == 3
    ping.breaker.reset()
    ping()
    deltas = calls(collect(r), "otel.delta")
    assert deltas["success"] == 1
    assert min(deltas.values()) >= 0


def test_one_call_in_sample_durations_is_timed(installed):
    """sample_durations=4 records 2 of 8 calls."""
    r = InMemoryMetricReader()
    installed.append(otel.instrument(MeterProvider(metric_readers=[r]), sample_durations=4))

    @circuit_breaker("otel.sampled")
    def ping() -> None:
        return None

    for _ in range(8):
        ping()
    assert durations(collect(r), "otel.sampled")["success"].count == 2


def test_prometheus_and_otel_together_both_get_durations(installed):
    """Both exporters at once: each sees every sampled call, at the smaller interval."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    collector = prometheus.instrument(registry, sample_durations=2)
    try:
        r = InMemoryMetricReader()
        installed.append(otel.instrument(MeterProvider(metric_readers=[r]), sample_durations=4))

        @circuit_breaker("otel.both")
        def ping() -> None:
            return None

        for _ in range(8):
            ping()
        assert durations(collect(r), "otel.both")["success"].count == 4
        count = registry.get_sample_value(
            "resilient_call_duration_seconds_count", {"breaker": "otel.both", "outcome": "success"}
        )
        assert count == 4.0
    finally:
        collector.uninstrument()


def test_instrument_is_idempotent_per_meter_provider(installed):
    """A second instrument() with the same provider returns the same instruments."""
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    first = otel.instrument(provider)
    installed.append(first)
    assert otel.instrument(provider) is first


def test_uninstrument_stops_reporting(installed):
    """After uninstrument() the callbacks report nothing and calls are not timed."""
    r = InMemoryMetricReader()
    instruments = otel.instrument(MeterProvider(metric_readers=[r]), sample_durations=1)
    installed.append(instruments)
    breaker = get_breaker("otel.stopped")
    breaker.call(lambda: None)
    instruments.uninstrument()
    breaker.call(lambda: None)
    assert instruments.flush_durations() == 0
    m = collect(r) if r.get_metrics_data() is not None else {}
    assert calls(m, "otel.stopped") == {}
    assert status(m, "otel.stopped") == {}


def test_missing_opentelemetry_says_which_extra_to_install():
    """Without opentelemetry-api the import error gives the pip command."""
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import resilient.contrib.otel\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'resilient[otel]'" in out


def test_invalid_sample_durations_is_refused():
    """sample_durations must be an int >= 0."""
    with pytest.raises(ValueError, match="sample_durations"):
        otel.instrument(MeterProvider(), sample_durations=-3)
