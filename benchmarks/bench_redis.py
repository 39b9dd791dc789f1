"""What sharing breaker state through Redis costs a healthy call, side by side.

Run from the repository root (needs redis-server on PATH, or --redis URL):

    python benchmarks/bench_redis.py            # full run (about a minute)
    python benchmarks/bench_redis.py --quick    # smoke run, a few seconds
    python benchmarks/bench_redis.py --json out.json

Candidates, all guarding the same healthy sync function in one process:

* ``undecorated``: the bare call (the baseline overheads are measured against);
* ``resilient (memory)``: ``@circuit_breaker`` with the default in-process store;
* ``resilient (RedisStore)``: the same with ``RedisStore`` (default sync interval);
* ``pybreaker (memory)`` and ``pybreaker (CircuitRedisStorage)``, for comparison.

Figures:

1. per-call time and overhead (time minus the bare call), interleaved round-robin
   with the harness in benchmarks/_harness.py; median of the rounds;
2. Redis traffic per call, over a fixed wall time per candidate: *round trips*
   counted on the client connection (one per command or pipeline sent) and
   *commands* from the server's ``INFO commandstats`` (which also counts the
   commands a Lua script runs); also at a paced 1,000 calls/s, where the
   background sync is a larger share;
3. propagation: how long after a ``trip`` from one instance another instance,
   calling all along, rejects (against its sync interval).

A private redis-server is started on a free port (so its statistics are ours
alone) unless ``--redis URL`` is given; with ``--redis`` the server's statistics
are reset (``CONFIG RESETSTAT``), so do not point it at a shared server.
Targets are printed as PASS/FAIL lines; the exit status does not depend on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from _harness import (
    Candidate,
    ainterleave,
    calibrate,
    dist_version,
    environment,
    fmt_ns,
    fmt_ratio,
    interleave,
    perf_ns,
    spin,
    table,
)

from resilient import CircuitBreaker, CircuitOpenError, circuit_breaker
from resilient.stores import RedisStore

TARGET_ROUND_TRIPS = 0.01  # per healthy call, amortized
TARGET_OVERHEAD_RATIO = 3.0  # RedisStore overhead / in-memory overhead
SYNC_INTERVAL = 0.5  # RedisStore's default
NOISY_IQR_PCT = 10.0  # above this spread, the verdict says the figures are noisy


class CountingConnection(redis.Connection):
    """A redis-py connection that counts what it sends: one per command or pipeline."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def work(x: int) -> int:
    return x


# --------------------------------------------------------------------------- candidates


def build(url: str, prefix: str) -> tuple[list[Candidate], list[Callable[[], None]]]:
    """The candidates, and clean-up callbacks."""
    cleanup: list[Callable[[], None]] = []
    store = RedisStore.from_url(url, prefix=prefix, connection_class=CountingConnection)
    cleanup.append(store.close)
    mem = circuit_breaker(f"{prefix}.memory", failure_threshold=10**9)(work)
    red = circuit_breaker(f"{prefix}.redis", store=store, failure_threshold=10**9)(work)
    red(0)
    deadline = time.monotonic() + 5
    while not red.breaker._fast and time.monotonic() < deadline:  # first sync done
        time.sleep(0.01)

    candidates = [
        Candidate("undecorated", _loop(work), kind="baseline"),
        Candidate("resilient (memory)", _loop(mem), kind="memory", meta={"lib": "resilient"}),
        Candidate("resilient (RedisStore)", _loop(red), kind="redis", meta={"lib": "resilient"}),
    ]
    try:
        import pybreaker
    except ImportError:
        reason = "pybreaker is not installed"
        candidates.append(Candidate("pybreaker (memory)", reason=reason))
        candidates.append(Candidate("pybreaker (CircuitRedisStorage)", reason=reason))
        return candidates, cleanup
    pb_mem = pybreaker.CircuitBreaker(fail_max=10**9, reset_timeout=60)(work)
    client = redis.Redis.from_url(url, connection_class=CountingConnection)
    cleanup.append(client.close)
    storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, client, namespace=f"{prefix}.pb"
    )
    pb_red = pybreaker.CircuitBreaker(fail_max=10**9, reset_timeout=60, state_storage=storage)(work)
    candidates.append(Candidate("pybreaker (memory)", _loop(pb_mem), kind="memory"))
    candidates.append(
        Candidate(
            "pybreaker (CircuitRedisStorage)", _loop(pb_red), kind="redis", meta={"slow": True}
        )
    )
    return candidates, cleanup


def build_async(url: str, prefix: str) -> tuple[list[Candidate], Callable[[], None]]:
    """Async candidates: a coroutine function, bare and under each resilient store."""
    store = RedisStore.from_url(url, prefix=prefix)

    async def awork(x: int) -> int:
        return x

    mem = circuit_breaker(f"{prefix}.amemory", failure_threshold=10**9)(awork)
    red = circuit_breaker(f"{prefix}.aredis", store=store, failure_threshold=10**9)(awork)
    asyncio.run(red(0))
    deadline = time.monotonic() + 5
    while not red.breaker._fast and time.monotonic() < deadline:
        time.sleep(0.01)
    candidates = [
        Candidate("undecorated (async)", _aloop(awork), kind="baseline"),
        Candidate("resilient (memory, async)", _aloop(mem), kind="memory"),
        Candidate("resilient (RedisStore, async)", _aloop(red), kind="redis"),
    ]
    return candidates, store.close


def _aloop(fn: Callable[[int], Any]) -> Callable[[int], Any]:
    async def sample(n: int) -> float:
        t0 = perf_ns()
        for i in range(n):
            await fn(i)
        return (perf_ns() - t0) / n

    return sample


def measure_async(candidates: list[Candidate], quick: bool) -> dict[str, Any]:
    n = 20_000 if quick else 100_000
    rounds, warmup = (3, 1) if quick else (9, 2)
    return dict(asyncio.run(ainterleave(candidates, n, rounds=rounds, warmup=warmup)))


def _loop(fn: Callable[[int], int]) -> Callable[[int], float]:
    def sample(n: int) -> float:
        t0 = perf_ns()
        for i in range(n):
            fn(i)
        return (perf_ns() - t0) / n

    return sample


# --------------------------------------------------------------------------- measurements


def measure_time(candidates: list[Candidate], quick: bool) -> dict[str, Any]:
    """ns per call, interleaved; each candidate gets its own operation count."""
    target = 20_000_000 if quick else 100_000_000  # ns per sample
    counts = {}
    for c in candidates:
        if not c.available:
            continue
        assert c.sample is not None
        sample = c.sample
        counts[c.name] = calibrate(lambda n, s=sample: int(s(n) * n), target, start=100)
    # interleave() takes one n; give each candidate its own by closing over it.
    sized = []
    for c in candidates:
        if not c.available:
            sized.append(c)
            continue
        assert c.sample is not None
        n_own = counts[c.name]
        sized.append(
            Candidate(c.name, lambda _n, s=c.sample, k=n_own: s(k), kind=c.kind, meta=c.meta)
        )
    rounds, warmup = (3, 1) if quick else (9, 2)
    stats = interleave(sized, 1, rounds=rounds, warmup=warmup)
    return dict(stats)


def measure_traffic(
    candidates: list[Candidate], admin: Any, seconds: float, paced: float | None
) -> dict[str, dict[str, float]]:
    """Round trips and commands per call over ``seconds`` of calls per candidate;
    ``paced``: calls per second (else as fast as possible)."""
    out: dict[str, dict[str, float]] = {}
    for c in candidates:
        if not c.available or c.kind != "redis":
            continue
        assert c.sample is not None
        admin.config_resetstat()
        CountingConnection.sent = 0
        calls = 0
        end = time.monotonic() + seconds
        if paced is None:
            batch = 10 if c.meta.get("slow") else 10_000
            while time.monotonic() < end:
                c.sample(batch)
                calls += batch
        else:
            step = 1.0 / paced
            next_at = time.monotonic()
            while next_at < end:
                c.sample(1)
                calls += 1
                next_at += step
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        trips = CountingConnection.sent
        stats = admin.info("commandstats")
        commands = sum(
            v["calls"]
            for k, v in stats.items()
            if k not in ("cmdstat_info", "cmdstat_config|resetstat")
        )
        out[c.name] = {
            "calls": calls,
            "round_trips": trips,
            "commands": commands,
            "round_trips_per_call": trips / calls,
            "commands_per_call": commands / calls,
        }
    return out


def measure_propagation(url: str, prefix: str, trips: int) -> dict[str, Any]:
    """Trip from one instance; time until another, calling every ms, rejects."""
    name = f"{prefix}.propagation"
    a = RedisStore.from_url(url, prefix=prefix, instance_id="tripper")
    b = RedisStore.from_url(url, prefix=prefix, instance_id="watcher")
    try:
        watcher = CircuitBreaker(name, store=b)
        watcher.call(work, 0)
        delays = []
        for i in range(trips):
            time.sleep(SYNC_INTERVAL * (0.3 + 0.7 * i / max(trips - 1, 1)))  # vary the phase
            a.trip(name, hold=True)
            t0 = time.monotonic()
            while True:
                try:
                    watcher.call(work, 0)
                except CircuitOpenError:
                    break
                time.sleep(0.001)
            delays.append(time.monotonic() - t0)
            a.reset(name)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    watcher.call(work, 0)
                    break
                except CircuitOpenError:
                    time.sleep(0.001)
        return {
            "sync_interval_s": SYNC_INTERVAL,
            "trips": trips,
            "median_s": statistics.median(delays),
            "max_s": max(delays),
            "delays_s": delays,
        }
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> tuple[str, Callable[[], None]]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench_redis: redis-server is not on PATH; pass --redis URL (a private server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    probe = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    for _ in range(100):
        try:
            probe.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    probe.close()

    def stop() -> None:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    return url, stop


# --------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--redis", metavar="URL", help="a private Redis to use (stats are reset)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    logging.getLogger("resilient").setLevel(logging.ERROR)

    stop: Callable[[], None] | None = None
    url = args.redis
    if url is None:
        url, stop = start_server()
    admin = redis.Redis.from_url(url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    candidates, cleanup = build(url, prefix)
    try:
        env = environment()
        print(f"python {env['python']} ({env['implementation']}) on {env['platform']}")
        print(f"redis-py {dist_version('redis')}, pybreaker {dist_version('pybreaker') or 'n/a'}")
        print(f"redis-server {admin.info('server')['redis_version']} at {url}")
        print(f"resilient {dist_version('resilient')}: RedisStore sync_interval={SYNC_INTERVAL}s")
        spin(0.3 if args.quick else 1.0)

        times = measure_time(candidates, args.quick)
        base = times["undecorated"].median
        print("\n== 1. healthy sync call: time per call (median of rounds) [time]")
        rows = []
        for c in candidates:
            if not c.available:
                rows.append([c.name, "n/a", "n/a", c.reason or ""])
                continue
            med = times[c.name].median
            rows.append([c.name, fmt_ns(med), fmt_ns(med - base), f"{times[c.name].iqr_pct:.0f}%"])
        print(table(["candidate", "ns/call", "overhead ns", "IQR"], rows))
        over_mem = times["resilient (memory)"].median - base
        over_red = times["resilient (RedisStore)"].median - base
        ratio = over_red / over_mem if over_mem > 0 else float("inf")
        print(f"RedisStore overhead / in-memory overhead: {fmt_ratio(over_red, over_mem)}")

        acands, aclose = build_async(url, prefix)
        try:
            atimes = measure_async(acands, args.quick)
        finally:
            aclose()  # its background sync would show in the traffic figures
        abase = atimes["undecorated (async)"].median
        print("\n== 1b. healthy async call: time per call (median of rounds) [async-time]")
        rows = [
            [name, fmt_ns(st.median), fmt_ns(st.median - abase), f"{st.iqr_pct:.0f}%"]
            for name, st in atimes.items()
        ]
        print(table(["candidate", "ns/call", "overhead ns", "IQR"], rows))
        aover_mem = atimes["resilient (memory, async)"].median - abase
        aover_red = atimes["resilient (RedisStore, async)"].median - abase
        aratio = aover_red / aover_mem if aover_mem > 0 else float("inf")
        print(f"RedisStore overhead / in-memory overhead: {fmt_ratio(aover_red, aover_mem)}")

        seconds = 1.0 if args.quick else 4.0
        fast = measure_traffic(candidates, admin, seconds, paced=None)
        paced = measure_traffic(candidates, admin, seconds, paced=1000.0)
        print(f"\n== 2. Redis traffic per healthy call ({seconds:g} s per candidate) [traffic]")
        rows = []
        for label, data in (("as fast as possible", fast), ("paced 1,000 calls/s", paced)):
            for name, d in data.items():
                rows.append(
                    [name, label, f"{d['calls']:,}", f"{d['round_trips']:,}",
                     f"{d['round_trips_per_call']:.3g}", f"{d['commands_per_call']:.3g}"]
                )  # fmt: skip
        print(
            table(
                ["candidate", "load", "calls", "round trips", "trips/call", "commands/call"], rows
            )
        )

        trips = 3 if args.quick else 10
        prop = measure_propagation(url, prefix, trips)
        print(f"\n== 3. trip propagation to another instance ({trips} trips) [propagation]")
        print(
            f"sync_interval {prop['sync_interval_s']:g} s: rejected after median "
            f"{prop['median_s'] * 1000:.0f} ms, max {prop['max_s'] * 1000:.0f} ms"
        )

        worst_trips = max(
            fast["resilient (RedisStore)"]["round_trips_per_call"],
            paced["resilient (RedisStore)"]["round_trips_per_call"],
        )
        print()
        verdict = "PASS" if worst_trips <= TARGET_ROUND_TRIPS else "FAIL"
        print(f"{verdict} round trips per healthy call <= {TARGET_ROUND_TRIPS}: {worst_trips:.3g}")
        limit = f"{TARGET_OVERHEAD_RATIO:g}x"
        spread = {"sync": times, "async": atimes}
        for label, value in (("sync", ratio), ("async", aratio)):
            verdict = "PASS" if value <= TARGET_OVERHEAD_RATIO else "FAIL"
            noisy = max(st.iqr_pct for st in spread[label].values()) > NOISY_IQR_PCT
            note = " (noisy: some IQR above 10 %; rerun on a quiet machine)" if noisy else ""
            print(
                f"{verdict} RedisStore overhead within {limit} of memory ({label}): "
                f"{value:.2f}x{note}"
            )
        verdict = "PASS" if prop["max_s"] <= SYNC_INTERVAL + 0.1 else "FAIL"
        took = f"{prop['max_s']:.3f} s"
        print(f"{verdict} trip reaches another instance within the sync interval: {took}")

        if args.json:
            doc = {
                "environment": env,
                "time_ns": {k: v.as_dict() for k, v in times.items()},
                "overhead_ratio": ratio,
                "async_time_ns": {k: v.as_dict() for k, v in atimes.items()},
                "async_overhead_ratio": aratio,
                "traffic": {"fast": fast, "paced_1000": paced},
                "propagation": prop,
            }
            Path(args.json).write_text(json.dumps(doc, indent=2))
    finally:
        for fn in cleanup:
            fn()
        keys = list(admin.scan_iter(match=f"*{prefix}*"))
        if keys:
            admin.delete(*keys)
        admin.close()
        if stop is not None:
            stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
