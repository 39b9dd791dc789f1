"""resilient.contrib.prometheus: what a real Prometheus scrape shows about every breaker."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from resilient import CircuitOpenError, circuit_breaker, get_breaker
from resilient.contrib import prometheus

STATES = ("closed", "open", "half_open", "forced_open", "disabled")


class Down(Exception):
    """A dependency failure."""


class Invalid(Exception):
    """A business outcome, ignored by the breakers below."""


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of the text exposition, keyed by (name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def states(samples: Samples, breaker: str) -> dict[str, float | None]:
    return {s: value(samples, "resilient_state", breaker=breaker, state=s) for s in STATES}


def calls(samples: Samples, breaker: str) -> dict[str, float | None]:
    outcomes = ("success", "failure", "ignored", "rejected", "fallback", "timeout")
    return {
        o: value(samples, "resilient_calls_total", breaker=breaker, outcome=o) for o in outcomes
    }


def transitions(samples: Samples, breaker: str) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["from"], dict(labels)["to"]): v
        for (name, labels), v in samples.items()
        if name == "resilient_transitions_total" and dict(labels)["breaker"] == breaker
    }


@pytest.fixture
def registry():
    reg = CollectorRegistry()
    yield reg
    collector = prometheus.instrument(reg)  # the installed one (instrument is idempotent)
    collector.uninstrument()


def test_scrape_follows_a_breaker_through_open_and_closed(registry, frozen):
    """State series, call counters and transitions match the breaker at every scrape."""
    prometheus.instrument(registry)
    failing = {"on": False}

    @circuit_breaker("prom.payments", failure_threshold=2, success_threshold=1, recovery_timeout=10)
    def charge() -> str:
        if failing["on"]:
            raise Down("connection refused")
        return "charged"

    assert charge() == "charged"
    samples = scrape(registry)
    assert states(samples, "prom.payments") == {
        "closed": 1.0,
        "open": 0.0,
        "half_open": 0.0,
        "forced_open": 0.0,
        "disabled": 0.0,
    }
    assert transitions(samples, "prom.payments") == {}

    failing["on"] = True
    for _ in range(2):
        with pytest.raises(Down):
            charge()
    with pytest.raises(CircuitOpenError):
        charge()
    samples = scrape(registry)
    assert states(samples, "prom.payments") == {
        "closed": 0.0,
        "open": 1.0,
        "half_open": 0.0,
        "forced_open": 0.0,
        "disabled": 0.0,
    }
    assert calls(samples, "prom.payments") == {
        "success": 1.0,
        "failure": 2.0,
        "ignored": 0.0,
        "rejected": 1.0,
        "fallback": 0.0,
        "timeout": 0.0,
    }
    assert transitions(samples, "prom.payments") == {("closed", "open"): 1.0}

    frozen.tick(10)
    assert value(scrape(registry), "resilient_state", breaker="prom.payments", state="half_open")
    failing["on"] = False
    assert charge() == "charged"  # the trial call closes it
    samples = scrape(registry)
    assert states(samples, "prom.payments")["closed"] == 1.0
    assert states(samples, "prom.payments")["open"] == 0.0
    assert calls(samples, "prom.payments")["success"] == 2.0
    assert transitions(samples, "prom.payments") == {
        ("closed", "open"): 1.0,
        ("open", "half_open"): 1.0,
        ("half_open", "closed"): 1.0,
    }


def test_breakers_created_after_instrument_are_exported_and_timed(registry, frozen):
    """instrument() first, breakers later: they show up, durations included."""
    prometheus.instrument(registry, sample_durations=1)

    @circuit_breaker("prom.late")
    def late() -> int:
        frozen.tick(0.2)
        return 1

    late()
    samples = scrape(registry)
    assert states(samples, "prom.late")["closed"] == 1.0
    assert (
        value(
            samples, "resilient_call_duration_seconds_count", breaker="prom.late", outcome="success"
        )
        == 1.0
    )
    assert value(
        samples, "resilient_call_duration_seconds_sum", breaker="prom.late", outcome="success"
    ) == pytest.approx(0.2)


def test_duration_histogram_buckets_by_outcome(registry, frozen):
    """Each timed call lands in the right bucket, per outcome (success, failure, ignored)."""
    prometheus.instrument(registry, sample_durations=1)

    @circuit_breaker("prom.timed", failure_threshold=100, ignore=(Invalid,))
    def call(seconds: float, error: type[Exception] | None = None) -> None:
        frozen.tick(seconds)
        if error is not None:
            raise error

    call(0.3)
    call(0.004)
    with pytest.raises(Down):
        call(2.0, Down)
    with pytest.raises(Invalid):
        call(0.06, Invalid)
    samples = scrape(registry)

    def bucket(outcome: str, le: str) -> float | None:
        return value(
            samples,
            "resilient_call_duration_seconds_bucket",
            breaker="prom.timed",
            outcome=outcome,
            le=le,
        )

    assert bucket("success", "0.005") == 1.0
    assert bucket("success", "0.25") == 1.0
    assert bucket("success", "0.5") == 2.0
    assert bucket("success", "+Inf") == 2.0
    assert bucket("failure", "1.0") == 0.0
    assert bucket("failure", "2.5") == 1.0
    assert bucket("ignored", "0.05") == 0.0
    assert bucket("ignored", "0.075") == 1.0
    assert value(
        samples, "resilient_call_duration_seconds_sum", breaker="prom.timed", outcome="success"
    ) == pytest.approx(0.304)
    assert calls(samples, "prom.timed")["ignored"] == 1.0


def test_one_call_in_sample_durations_is_timed(registry):
    """sample_durations=4 times 2 of 8 calls; the call counter still counts all 8."""
    prometheus.instrument(registry, sample_durations=4)

    @circuit_breaker("prom.sampled")
    def ping() -> None:
        return None

    for _ in range(8):
        ping()
    samples = scrape(registry)
    count = value(
        samples, "resilient_call_duration_seconds_count", breaker="prom.sampled", outcome="success"
    )
    assert count == 2.0
    assert calls(samples, "prom.sampled")["success"] == 8.0


def test_sample_durations_zero_exports_no_histogram(registry):
    """sample_durations=0: states and counters only, no duration series."""
    prometheus.instrument(registry, sample_durations=0)

    @circuit_breaker("prom.untimed")
    def ping() -> None:
        return None

    ping()
    samples = scrape(registry)
    assert calls(samples, "prom.untimed")["success"] == 1.0
    assert not [key for key in samples if key[0].startswith("resilient_call_duration")]


def test_call_acall_and_with_blocks_are_timed_too(registry, frozen):
    """breaker.call, breaker.acall and with-blocks report durations like the decorator."""
    import asyncio

    prometheus.instrument(registry, sample_durations=1)
    breaker = get_breaker("prom.direct")

    def work() -> None:
        frozen.tick(0.03)

    async def awork() -> None:
        frozen.tick(0.03)

    breaker.call(work)
    asyncio.run(breaker.acall(awork))
    with breaker:
        frozen.tick(0.03)

    def failing_block() -> None:
        with breaker:
            frozen.tick(0.6)
            raise Down

    with pytest.raises(Down):
        failing_block()

    async def block() -> None:
        async with breaker:
            frozen.tick(0.03)

    asyncio.run(block())
    samples = scrape(registry)
    assert (
        value(
            samples,
            "resilient_call_duration_seconds_bucket",
            breaker="prom.direct",
            outcome="success",
            le="0.025",
        )
        == 0.0
    )
    assert (
        value(
            samples,
            "resilient_call_duration_seconds_bucket",
            breaker="prom.direct",
            outcome="success",
            le="0.05",
        )
        == 4.0
    )
    assert (
        value(
            samples,
            "resilient_call_duration_seconds_count",
            breaker="prom.direct",
            outcome="failure",
        )
        == 1.0
    )
    assert calls(samples, "prom.direct")["success"] == 4.0


def test_a_sync_call_over_its_timeout_counts_as_timeout_and_failure(registry, frozen):
    """call_timeout overrun: outcome timeout and failure counters, a failure duration."""
    prometheus.instrument(registry, sample_durations=1)

    @circuit_breaker("prom.slow", call_timeout=0.5, failure_threshold=10)
    def slow() -> str:
        frozen.tick(0.8)
        return "late"

    assert slow() == "late"
    samples = scrape(registry)
    assert calls(samples, "prom.slow") == {
        "success": 0.0,
        "failure": 1.0,
        "ignored": 0.0,
        "rejected": 0.0,
        "fallback": 0.0,
        "timeout": 1.0,
    }
    assert (
        value(
            samples,
            "resilient_call_duration_seconds_bucket",
            breaker="prom.slow",
            outcome="failure",
            le="1.0",
        )
        == 1.0
    )


def test_fallback_answers_are_counted(registry):
    """A fallback answering a failed and a rejected call counts twice as fallback."""
    prometheus.instrument(registry)

    def cached(user: str) -> str:
        return f"cached {user}"

    @circuit_breaker("prom.profile", fallback=cached, failure_threshold=1, recovery_timeout=60)
    def profile(user: str) -> str:
        raise Down(user)

    assert profile("ann") == "cached ann"  # failed: opens the breaker
    assert profile("bob") == "cached bob"  # rejected
    assert calls(scrape(registry), "prom.profile") == {
        "success": 0.0,
        "failure": 1.0,
        "ignored": 0.0,
        "rejected": 1.0,
        "fallback": 2.0,
        "timeout": 0.0,
    }


def test_forced_open_and_disabled_states_are_exported(registry):
    """An operator's trip(hold=True) and disable() show as forced_open and disabled."""
    prometheus.instrument(registry)
    held = get_breaker("prom.held")
    shadow = get_breaker("prom.shadow")
    held.trip(hold=True)
    shadow.disable()
    samples = scrape(registry)
    assert states(samples, "prom.held")["forced_open"] == 1.0
    assert states(samples, "prom.held")["closed"] == 0.0
    assert states(samples, "prom.shadow")["disabled"] == 1.0
    assert transitions(samples, "prom.held") == {("closed", "forced_open"): 1.0}


def test_counters_never_go_down_when_a_breaker_is_reset(registry):
    """reset() zeroes the breaker's counts; the exported counters keep counting up."""
    prometheus.instrument(registry)

    @circuit_breaker("prom.reset")
    def ping() -> None:
        return None

    for _ in range(3):
        ping()
    assert calls(scrape(registry), "prom.reset")["success"] == 3.0
    ping.breaker.reset()
    ping()
    assert ping.breaker.metrics().successes == 1
    assert calls(scrape(registry), "prom.reset")["success"] == 4.0


def test_durations_from_many_threads_are_all_counted(registry):
    """Timing every call from 4 threads loses no observation."""
    prometheus.instrument(registry, sample_durations=1)

    @circuit_breaker("prom.threads")
    def ping() -> None:
        return None

    def worker() -> None:
        for _ in range(2_000):
            ping()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples = scrape(registry)
    assert calls(samples, "prom.threads")["success"] == 8_000.0
    assert (
        value(
            samples,
            "resilient_call_duration_seconds_count",
            breaker="prom.threads",
            outcome="success",
        )
        == 8_000.0
    )


def test_instrument_is_idempotent_per_registry(registry):
    """A second instrument() on the same registry returns the same collector, no error."""
    first = prometheus.instrument(registry)
    assert prometheus.instrument(registry) is first
    other = CollectorRegistry()
    second = prometheus.instrument(other)
    try:
        assert second is not first
    finally:
        second.uninstrument()


def test_uninstrument_removes_the_series_and_the_duration_hook(registry):
    """After uninstrument() the registry has no resilient series and calls are not timed."""
    collector = prometheus.instrument(registry, sample_durations=1)

    @circuit_breaker("prom.removed")
    def ping() -> None:
        return None

    ping()
    collector.uninstrument()
    assert not [key for key in scrape(registry) if key[0].startswith("resilient_")]
    again = prometheus.instrument(registry, sample_durations=1)
    assert again is not collector
    samples = scrape(registry)
    # the new collector's histogram starts empty: the old hook is gone
    assert (
        value(
            samples,
            "resilient_call_duration_seconds_count",
            breaker="prom.removed",
            outcome="success",
        )
        is None
    )
    ping()
    samples = scrape(registry)
    assert (
        value(
            samples,
            "resilient_call_duration_seconds_count",
            breaker="prom.removed",
            outcome="success",
        )
        == 1.0
    )


@pytest.mark.parametrize("bad", [-1, 1025, 1.5, True, "16"])
def test_invalid_sample_durations_is_refused(registry, bad):
    """sample_durations must be an int from 0 to 1024; the message says what it means."""
    with pytest.raises(ValueError, match="sample_durations must be an int from 0 to 1024"):
        prometheus.instrument(registry, sample_durations=bad)


@pytest.mark.parametrize("bad", [(), (0.5, 0.1), (0.0, 1.0), (float("nan"),)])
def test_invalid_buckets_are_refused(registry, bad):
    """Buckets must be positive, finite and strictly increasing."""
    with pytest.raises(ValueError, match="buckets must be"):
        prometheus.instrument(registry, buckets=bad)


def test_custom_buckets_and_a_trailing_inf_are_accepted(registry, frozen):
    """buckets=(0.1, 1, inf): +Inf is implied, so giving it is harmless."""
    prometheus.instrument(registry, sample_durations=1, buckets=(0.1, 1, float("inf")))

    @circuit_breaker("prom.buckets")
    def ping() -> None:
        frozen.tick(0.5)

    ping()
    les = sorted(
        dict(labels)["le"]
        for (name, labels) in scrape(registry)
        if name == "resilient_call_duration_seconds_bucket"
        and dict(labels)["breaker"] == "prom.buckets"
    )
    assert les == ["+Inf", "0.1", "1.0"]


def test_import_resilient_loads_no_exporter_dependency():
    """`import resilient` (and resilient.contrib, asgi, wsgi) never loads prometheus_client,
    opentelemetry or httpx."""
    code = (
        "import sys, resilient, resilient.contrib, resilient.contrib.asgi, resilient.contrib.wsgi\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('prometheus_client', 'opentelemetry', 'httpx'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_missing_prometheus_client_says_which_extra_to_install():
    """Without prometheus-client the import error gives the pip command."""
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None\n"
        "try:\n"
        "    import resilient.contrib.prometheus\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'resilient[prometheus]'" in out
