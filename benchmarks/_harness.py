"""Generic timing helpers for the scripts in benchmarks/.

Nothing here knows about circuit breakers. A benchmark builds a list of
`Candidate`s, each with a `sample(n)` callable that runs `n` operations and returns
one measurement (for example ns per call, or calls per second). The helpers run
warm-up rounds, then interleave the candidates round-robin (the starting candidate
rotates every round, so drift and machine noise land on every candidate alike),
with the garbage collector paused while a sample runs and a full collection
between rounds, and summarise each candidate's samples by their median.
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

perf_ns = time.perf_counter_ns


@dataclass
class Candidate:
    """One thing being measured.

    `sample(n)` performs `n` operations and returns one measurement (for an async
    benchmark it returns an awaitable of it). A candidate whose `reason` is set is
    not available (shown as "n/a" with the reason) and is never run. `after_sample`
    runs after every sample, outside the timed region (for example to drop state a
    library accumulates).
    """

    name: str
    sample: Callable[[int], Any] | None = None
    reason: str | None = None
    kind: str = ""
    after_sample: Callable[[], None] | None = None
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.reason is None and self.sample is not None


@dataclass
class Stats:
    """Summary of one candidate's samples."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p25(self) -> float:
        return _quantile(self.samples, 0.25)

    @property
    def p75(self) -> float:
        return _quantile(self.samples, 0.75)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    @property
    def iqr_pct(self) -> float:
        """Interquartile range as a percentage of the median (a noise indicator)."""
        med = self.median
        return 100.0 * (self.p75 - self.p25) / med if med else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "p25": self.p25,
            "p75": self.p75,
            "min": self.minimum,
            "max": self.maximum,
            "rounds": len(self.samples),
            "samples": self.samples,
        }


def _quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (same definition as numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector for the block (restored afterwards)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def round_orders(count: int, rounds: int) -> Iterator[list[int]]:
    """Yield, for each round, the order to run `count` candidates in.

    Round-robin with a rotating start: round r runs r % count first, so every
    candidate occupies every position equally often.
    """
    indices = list(range(count))
    for r in range(rounds):
        k = r % count if count else 0
        yield indices[k:] + indices[:k]


def interleave(
    candidates: Sequence[Candidate], n: int, rounds: int, warmup: int
) -> dict[str, Stats]:
    """Run every available candidate `warmup` times untimed, then `rounds` times.

    Returns the measured samples per candidate name, interleaved round-robin.
    """
    live = [c for c in candidates if c.available]
    for _ in range(warmup):
        for c in live:
            _run_sync(c, n)
    results = {c.name: Stats() for c in live}
    for order in round_orders(len(live), rounds):
        gc.collect()
        for i in order:
            c = live[i]
            results[c.name].samples.append(_run_sync(c, n))
    return results


def _run_sync(c: Candidate, n: int) -> float:
    assert c.sample is not None
    with gc_paused():
        value = c.sample(n)
    if c.after_sample is not None:
        c.after_sample()
    return float(value)


async def ainterleave(
    candidates: Sequence[Candidate], n: int, rounds: int, warmup: int
) -> dict[str, Stats]:
    """`interleave` for candidates whose `sample(n)` returns an awaitable.

    Everything runs inside the caller's (one) running event loop.
    """
    live = [c for c in candidates if c.available]
    for _ in range(warmup):
        for c in live:
            await _run_async(c, n)
    results = {c.name: Stats() for c in live}
    for order in round_orders(len(live), rounds):
        gc.collect()
        for i in order:
            c = live[i]
            results[c.name].samples.append(await _run_async(c, n))
    return results


async def _run_async(c: Candidate, n: int) -> float:
    assert c.sample is not None
    with gc_paused():
        awaitable: Awaitable[float] = c.sample(n)
        value = await awaitable
    if c.after_sample is not None:
        c.after_sample()
    return float(value)


def run_threads(worker: Callable[[], object], n_threads: int) -> int:
    """Run `worker` in `n_threads` threads released together; return wall-clock ns.

    The clock starts when all threads (and the caller) have passed a barrier and
    stops when the last one has finished; thread start-up is not timed.
    """
    barrier = threading.Barrier(n_threads + 1)
    errors: list[BaseException] = []

    def body() -> None:
        barrier.wait()
        try:
            worker()
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=body, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = perf_ns()
    for t in threads:
        t.join()
    elapsed = perf_ns() - t0
    if errors:
        raise errors[0]
    return elapsed


def calibrate(
    elapsed_ns: Callable[[int], int], target_ns: int, start: int = 1_000, limit: int = 10**8
) -> int:
    """Pick an operation count whose run takes about `target_ns`.

    `elapsed_ns(n)` runs `n` operations and returns how long they took. The count
    grows tenfold until a run takes at least a tenth of the target, then scales
    linearly to the target (like timeit's autorange). Never below `start`.
    """
    n = start
    while True:
        took = max(elapsed_ns(n), 1)
        if took * 10 >= target_ns or n >= limit:
            return max(start, min(limit, int(n * target_ns / took)))
        n *= 10


def spin(seconds: float) -> None:
    """Busy-wait for `seconds` so the CPU leaves any idle frequency state before timing."""
    deadline = perf_ns() + int(seconds * 1e9)
    x = 0
    while perf_ns() < deadline:
        for i in range(1000):
            x ^= i


def dist_version(dist: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Facts about the interpreter and machine worth printing with any timing."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "switch_interval_s": sys.getswitchinterval(),
    }


def fmt_ns(value: float) -> str:
    return f"{value:,.1f}"


def fmt_ratio(numerator: float, denominator: float) -> str:
    """numerator / denominator as `0.123x`, or `n/m` when not meaningful."""
    if denominator <= 0 or numerator < 0:
        return "n/m"
    return f"{numerator / denominator:.3f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """Plain-text table. `align` holds one of '<' or '>' per column (default '>' but
    the first column '<')."""
    cols = len(headers)
    aligns = list(align) if align else ["<"] + [">"] * (cols - 1)
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:cols]):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i in range(cols):
            cell = cells[i] if i < len(cells) else ""
            parts.append(f"{cell:{aligns[i]}{widths[i]}}")
        extra = "  ".join(cells[cols:])
        text = "  ".join(parts).rstrip()
        return f"{text}  {extra}" if extra else text

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out)
