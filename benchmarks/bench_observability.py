"""What resilient's exporters (Prometheus, OpenTelemetry) cost a healthy call.

Run from the repository root:

    python benchmarks/bench_observability.py            # full run (about a minute)
    python benchmarks/bench_observability.py --quick    # smoke run, a few seconds, noisy
    python benchmarks/bench_observability.py --json out.json

One process. For the sync call and the awaited coroutine, the same decorated
function is timed with no exporter, with `resilient.contrib.prometheus.instrument()`,
with `resilient.contrib.otel.instrument()` (an SDK MeterProvider with an
InMemoryMetricReader), with both, and with each exporter timing every call
(`sample_durations=1`). Each candidate installs its exporter before its sample
and removes it afterwards, outside the timed loop; candidates are interleaved
round-robin with the garbage collector paused (benchmarks/_harness.py), and the
median of the rounds is reported. Samples are timed with the thread's CPU clock
(time.thread_time_ns), so other processes on a busy machine do not inflate them.

  resilient's overhead = resilient - undecorated
  an exporter's cost   = (resilient + exporter) - resilient
  ratio                = exporter's cost / resilient's overhead   (target: <= 0.5)

Each figure is shown twice: from the candidates' medians, and "paired": the median
over rounds of the difference between two candidates' samples of the same round,
which cancels most of the load other processes put on the machine. Targets are
judged on the paired figures.

The last section times what happens off the calls' path, in the thread that
scrapes or collects: one Prometheus scrape and one OpenTelemetry collection with
1, 10 and 100 breakers, and the OpenTelemetry histogram record() of one queued
duration (paid at collection for each sampled call).

Targets are printed as PASS/FAIL lines; nothing asserts on timings and the exit
status does not depend on them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

from _harness import (
    Candidate,
    Stats,
    ainterleave,
    dist_version,
    environment,
    fmt_ns,
    interleave,
    spin,
    table,
)

import resilient
from resilient.contrib import otel, prometheus

UNDECORATED = "undecorated"
RESILIENT = "resilient"
LIMIT = 0.5  # an exporter may add at most this fraction of resilient's own overhead
BIG = 1_000_000_000

#: The thread's CPU clock: a sample is not inflated when other processes on a busy
#: machine take the CPU away mid-sample (wall-clock samples were, by up to 8x).
cpu_ns = time.thread_time_ns


def ok(x):
    return x


async def aok(x):
    return x


def _loop_call(fn, n):
    t0 = cpu_ns()
    for _ in repeat(None, n):
        fn(1)
    return (cpu_ns() - t0) / n


async def _aloop_call(fn, n):
    t0 = cpu_ns()
    for _ in repeat(None, n):
        await fn(1)
    return (cpu_ns() - t0) / n


# --------------------------------------------------------------------------- exporters


def _prometheus(sample_durations: int) -> Callable[[], Any]:
    from prometheus_client import CollectorRegistry

    def install():
        return prometheus.instrument(CollectorRegistry(), sample_durations=sample_durations)

    return install


def _otel(sample_durations: int) -> Callable[[], Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    def install():
        provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        return otel.instrument(provider, sample_durations=sample_durations)

    return install


class _Both:
    def __init__(self, handles):
        self.handles = handles

    def uninstrument(self):
        for handle in self.handles:
            handle.uninstrument()


def _both(sample_durations: int) -> Callable[[], Any]:
    prom, ot = _prometheus(sample_durations), _otel(sample_durations)
    return lambda: _Both([prom(), ot()])


EXPORTERS: list[tuple[str, Callable[[], Any], bool]] = [
    # (candidate name, installer, judged against the target)
    ("+prometheus", _prometheus(16), True),
    ("+otel", _otel(16), True),
    ("+prometheus+otel", _both(16), True),
    ("+prometheus, every call", _prometheus(1), False),
    ("+otel, every call", _otel(1), False),
]


def _with_exporter(install, loop):
    def sample(n):
        handle = install()
        try:
            return loop(n)
        finally:
            handle.uninstrument()

    return sample


def _awith_exporter(install, loop):
    async def sample(n):
        handle = install()
        try:
            return await loop(n)
        finally:
            handle.uninstrument()

    return sample


def sync_candidates() -> list[Candidate]:
    fn = resilient.circuit_breaker("bench.observability.sync", failure_threshold=BIG)(ok)
    assert fn(7) == 7
    loop = functools.partial(_loop_call, fn)
    out = [
        Candidate(UNDECORATED, functools.partial(_loop_call, ok), kind="baseline"),
        Candidate(RESILIENT, loop, kind="resilient"),
    ]
    for name, install, judged in EXPORTERS:
        out.append(
            Candidate(
                RESILIENT + name,
                _with_exporter(install, loop),
                kind="exporter",
                meta={"judged": judged},
            )
        )
    return out


def async_candidates() -> list[Candidate]:
    fn = resilient.circuit_breaker("bench.observability.async", failure_threshold=BIG)(aok)
    loop = functools.partial(_aloop_call, fn)
    out = [
        Candidate(UNDECORATED, functools.partial(_aloop_call, aok), kind="baseline"),
        Candidate(RESILIENT, loop, kind="resilient"),
    ]
    for name, install, judged in EXPORTERS:
        out.append(
            Candidate(
                RESILIENT + name,
                _awith_exporter(install, loop),
                kind="exporter",
                meta={"judged": judged},
            )
        )
    return out


# ------------------------------------------------------------------- collection costs


def _median_us(fn: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = cpu_ns()
        fn()
        samples.append((cpu_ns() - t0) / 1000)
    return statistics.median(samples)


def collection_costs(rounds: int) -> dict[str, Any]:
    """Scrape / collect times with 1, 10 and 100 breakers, and one queued record()."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from prometheus_client import CollectorRegistry, generate_latest

    out: dict[str, Any] = {"scrape_us": {}, "collect_us": {}}
    created: list[str] = []
    for count in (1, 10, 100):
        while len(created) < count:
            name = f"bench.observability.many.{len(created):03d}"
            fn = resilient.circuit_breaker(name, failure_threshold=BIG)(ok)
            fn(1)
            created.append(name)
        registry = CollectorRegistry()
        collector = prometheus.instrument(registry)
        reader = InMemoryMetricReader()
        instruments = otel.instrument(MeterProvider(metric_readers=[reader]))
        try:
            generate_latest(registry)
            reader.get_metrics_data()
            scrape = functools.partial(generate_latest, registry)
            out["scrape_us"][count] = _median_us(scrape, rounds)
            out["collect_us"][count] = _median_us(reader.get_metrics_data, rounds)
        finally:
            collector.uninstrument()
            instruments.uninstrument()

    # One queued duration, recorded into the SDK histogram at collection.
    reader = InMemoryMetricReader()
    instruments = otel.instrument(MeterProvider(metric_readers=[reader]), sample_durations=1)
    fn = resilient.circuit_breaker("bench.observability.flush", failure_threshold=BIG)(ok)
    try:
        queued = 5_000
        per = []
        for _ in range(max(3, rounds // 4)):
            for _ in repeat(None, queued):
                fn(1)
            t0 = cpu_ns()
            done = instruments.flush_durations()
            per.append((cpu_ns() - t0) / max(done, 1))
        out["otel_record_ns"] = statistics.median(per)
    finally:
        instruments.uninstrument()
    return out


# --------------------------------------------------------------------------- reporting


def _paired(stats: dict[str, Stats], a: str, b: str) -> float:
    """Median over rounds of (a - b) within the same round: background load that hits
    one round hits both candidates, so it mostly cancels out."""
    return statistics.median(x - y for x, y in zip(stats[a].samples, stats[b].samples, strict=True))


def render(title: str, candidates: list[Candidate], stats: dict[str, Stats]) -> str:
    base = stats[UNDECORATED].median
    res_over = stats[RESILIENT].median - base
    res_paired = _paired(stats, RESILIENT, UNDECORATED)
    rows = []
    for c in candidates:
        s = stats[c.name]
        cells = [c.name, fmt_ns(s.median), f"{s.iqr_pct:.1f}"]
        if c.name == UNDECORATED:
            rows.append([*cells, "0 (base)", "-", "-", "-", ""])
        elif c.name == RESILIENT:
            rows.append(
                [*cells, f"{res_over:+,.1f}", "-", f"{res_paired:+,.1f}", "-", "resilient's own"]
            )
        else:
            cost = s.median - stats[RESILIENT].median
            paired = _paired(stats, c.name, RESILIENT)
            rows.append(
                [
                    *cells,
                    f"{cost:+,.1f}",
                    f"{cost / res_over:.3f}x",
                    f"{paired:+,.1f}",
                    f"{paired / res_paired:.3f}x",
                    "" if c.meta.get("judged") else "(not judged)",
                ]
            )
    headers = [
        "candidate",
        "ns/call",
        "IQR%",
        "added ns",
        "/resilient's",
        "paired added ns",
        "/resilient's",
        "",
    ]
    return f"== {title} ==\n" + table(headers, rows)


def targets(label: str, candidates: list[Candidate], stats: dict[str, Stats]) -> list[str]:
    """Judged on the paired figures (the medians are shown alongside)."""
    res_paired = _paired(stats, RESILIENT, UNDECORATED)
    lines = []
    for c in candidates:
        if not c.meta.get("judged"):
            continue
        paired = _paired(stats, c.name, RESILIENT)
        ratio = paired / res_paired if res_paired > 0 else float("inf")
        status = "PASS" if ratio <= LIMIT else "FAIL"
        lines.append(
            f"{status}  {label} {c.name}: adds {paired:+,.1f} ns to resilient's "
            f"{res_paired:+,.1f} ns = {ratio:.3f}x (limit {LIMIT}x; paired medians)"
        )
    return lines


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run (few rounds)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="measured rounds")
    parser.add_argument("--warmup", type=int, help="untimed warm-up rounds")
    parser.add_argument("--calls", type=int, help="calls per sample")
    args = parser.parse_args(argv)
    defaults = (
        {"rounds": 5, "warmup": 1, "calls": 2_000}
        if args.quick
        else {"rounds": 101, "warmup": 3, "calls": 5_000}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1 or args.calls < 1 or args.warmup < 0:
        parser.error("--rounds and --calls must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("resilient").addHandler(logging.NullHandler())
    env = environment()
    print("resilient observability benchmark (benchmarks/bench_observability.py)")
    print(f"python {env['python']} ({env['implementation']}) on {env['platform']}")
    print(
        f"prometheus-client {dist_version('prometheus-client')}; "
        f"opentelemetry-api {dist_version('opentelemetry-api')}, "
        f"opentelemetry-sdk {dist_version('opentelemetry-sdk')}"
    )
    print(
        f"mode: {'quick' if args.quick else 'full'}; {args.rounds} rounds after "
        f"{args.warmup} warm-up round(s); {args.calls:,} calls per sample; medians; "
        "GC paused while timing; candidates interleaved round-robin; exporters time "
        "one call in 16 unless the row says every call"
    )
    print(flush=True)
    spin(0.3 if args.quick else 1.0)

    sync = sync_candidates()
    sync_stats = interleave(sync, args.calls, args.rounds, args.warmup)
    print(render("1. sync healthy call [sync]", sync, sync_stats))
    print(flush=True)

    async def run_async():
        cands = async_candidates()
        return cands, await ainterleave(cands, args.calls, args.rounds, args.warmup)

    async_, async_stats = asyncio.run(run_async())
    print(render("2. async healthy call, awaited [async]", async_, async_stats))
    print(flush=True)

    costs = collection_costs(max(5, args.rounds))
    print("== 3. off the calls' path: scrape / collection [collection] ==")
    rows = [
        [str(n), f"{costs['scrape_us'][n]:,.1f}", f"{costs['collect_us'][n]:,.1f}"]
        for n in (1, 10, 100)
    ]
    print(table(["breakers", "prometheus scrape us", "otel collection us"], rows))
    record = costs["otel_record_ns"]
    print(
        f"otel: each queued duration costs {record:,.0f} ns at collection (histogram "
        f"record()); at one call in 16 that is {record / 16:,.1f} ns per call, paid by "
        "the collecting thread, not by the call"
    )
    print(flush=True)

    lines = targets("sync", sync, sync_stats) + targets("async", async_, async_stats)
    print("== targets (ratios from this run) ==")
    for line in lines:
        print(line)
    met = sum(line.startswith("PASS") for line in lines)
    print(f"targets met: {met} of {len(lines)}")

    if args.json:
        data = {
            "environment": env,
            "config": {
                "quick": args.quick,
                "rounds": args.rounds,
                "warmup": args.warmup,
                "calls": args.calls,
            },
            "sync": {name: s.as_dict() for name, s in sync_stats.items()},
            "async": {name: s.as_dict() for name, s in async_stats.items()},
            "collection": costs,
            "targets": lines,
        }
        Path(args.json).write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
