"""Runtime cost of resilient's circuit breaker next to the other Python breakers.

Run from the repository root:

    python benchmarks/bench_runtime.py            # full run (about 1.5-2 minutes)
    python benchmarks/bench_runtime.py --quick    # smoke run, a few seconds
    python benchmarks/bench_runtime.py --json out.json
    python benchmarks/bench_runtime.py --clock cpu    # on a busy machine

Every scenario runs all its candidates in ONE process, interleaved round-robin (the
first candidate rotates each round), with the garbage collector paused while a sample
runs, after warm-up rounds, and reports the median of the rounds; resilient's ratios
to the others are taken within each round, then their median. See
benchmarks/README.md for how to read the output. Targets are printed as PASS/FAIL
lines; nothing here asserts on timings and the exit status does not depend on them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from itertools import repeat
from pathlib import Path
from typing import Any

import wrapt
from _harness import (
    Candidate,
    Stats,
    ainterleave,
    calibrate,
    dist_version,
    environment,
    fmt_ns,
    interleave,
    run_threads,
    spin,
    table,
)

BIG_THRESHOLD = 1_000_000_000  # closed scenarios must never open
RECOVERY_S = 3600  # open scenarios must stay open for the whole run
N_THREADS = 4
NOISY_IQR_PCT = 10.0  # above this spread, the output says the figures are noisy

RESILIENT = "resilient"
UNDECORATED = "undecorated"
CLOSURE = "closure"


# --------------------------------------------------------------------------- workloads


def ok(x):
    return x


async def aok(x):
    return x


class _Boom(Exception):
    """Raised by the failing function used to drive a breaker open."""


class _NeverRaised(Exception):
    """Caught by the rejection loop for candidates that never reject."""


class _FloorError(Exception):
    """Raised by the raise-floor reference (the cost of raising at all)."""


def _boom(x):
    raise _Boom(x)


async def _aboom(x):
    raise _Boom(x)


def _reject(x):
    raise _FloorError(x)


async def _areject(x):
    raise _FloorError(x)


def _make_service(deco):
    """An object whose `method` is decorated in the class body, as real code does."""

    class Service:
        @deco
        def method(self, x):
            return x

    return Service()


# ------------------------------------------------------------------ timed inner loops
# One loop per call shape; every candidate of a scenario goes through the same loop,
# so the loop's own cost is in every figure and cancels out of every overhead.

# The clock of the latency loops: wall-clock time.perf_counter_ns by default;
# `--clock cpu` switches to this thread's CPU time (time.thread_time_ns), which leaves
# out the time the process spends descheduled on a busy machine. The threads scenario
# always uses wall-clock time.
CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}
CLOCK_TEXT = {
    "wall": "time.perf_counter_ns (wall clock)",
    "cpu": "time.thread_time_ns (this thread's CPU time); threads scenario: wall clock",
}
_clock = CLOCKS["wall"]


def _loop_call(fn, n):
    t0 = _clock()
    for _ in repeat(None, n):
        fn(1)
    return (_clock() - t0) / n


def _loop_method(obj, n):
    t0 = _clock()
    for _ in repeat(None, n):
        obj.method(1)
    return (_clock() - t0) / n


def _loop_reject(fn, exc, n):
    t0 = _clock()
    for _ in repeat(None, n):
        try:
            fn(1)
        except exc:
            pass
    return (_clock() - t0) / n


async def _aloop_call(fn, n):
    t0 = _clock()
    for _ in repeat(None, n):
        await fn(1)
    return (_clock() - t0) / n


async def _aloop_reject(fn, exc, n):
    t0 = _clock()
    for _ in repeat(None, n):
        try:
            await fn(1)
        except exc:
            pass
    return (_clock() - t0) / n


def _threads_elapsed(fn, n):
    """Wall-clock ns for N_THREADS threads, released together, each making `n` calls."""

    def worker():
        for _ in repeat(None, n):
            fn(1)

    return run_threads(worker, N_THREADS)


def _threads_candidate(lib, fn, target_ms):
    """Calls per second in total; the per-thread count is calibrated per candidate so
    every sample lasts about `target_ms` (many GIL switch intervals) whatever its speed."""
    elapsed_of = functools.partial(_threads_elapsed, fn)
    per_thread = calibrate(elapsed_of, int(target_ms * 1e6))

    def sample(_n):
        return N_THREADS * per_thread * 1e9 / elapsed_of(per_thread)

    return Candidate(
        lib.name,
        sample,
        kind=lib.kind,
        note=f"{per_thread:,} calls/thread/sample",
        meta={"calls_per_thread_per_sample": per_thread},
    )


# ------------------------------------------------------------------------- candidates


class Unsupported(Exception):
    """The library has no way to do this scenario; the message says why."""


OpenSetup = tuple[Callable[..., Any], type[BaseException], Callable[[], None] | None, str]


class Lib:
    """How one candidate decorates a function and forces its breaker open.

    Libraries are imported when their adapter is built (import_module), not at the
    top of this file, so that a missing one shows as "n/a" and the rest still run.
    """

    name = ""
    kind = "library"  # "baseline", "library" or "resilient"
    version: str | None = None
    unavailable: str | None = None  # set when the library cannot be used at all
    sync_unsupported: str | None = None
    async_unsupported: str | None = None
    only_scenarios: frozenset[str] | None = None

    def decorator(self, tag: str) -> Callable[[Any], Any]:
        """The decorator for closed scenarios (thresholds too high to ever open)."""
        raise NotImplementedError

    def open_sync(self, fn: Callable[..., Any], tag: str) -> OpenSetup:
        """(decorated fn, error it raises when open, after-sample hook, note)."""
        raise NotImplementedError

    async def open_async(self, fn: Callable[..., Any], tag: str) -> OpenSetup:
        raise NotImplementedError


class Undecorated(Lib):
    name = UNDECORATED
    kind = "baseline"

    def decorator(self, tag):
        return lambda fn: fn

    def open_sync(self, fn, tag):
        return fn, _NeverRaised, None, "no breaker: never rejects (reference)"

    async def open_async(self, fn, tag):
        return self.open_sync(fn, tag)


def closure_passthrough(fn):
    """The practical floor for any decorator: a functools.wraps closure."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args, **kwargs):
            return await fn(*args, **kwargs)

        return awrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


@wrapt.decorator
def wrapt_passthrough(wrapped, instance, args, kwargs):
    """A bare wrapt pass-through (used on coroutine functions too: it returns the
    coroutine, which the caller awaits)."""
    return wrapped(*args, **kwargs)


class Closure(Lib):
    name = CLOSURE
    kind = "baseline"

    def decorator(self, tag):
        return closure_passthrough

    def open_sync(self, fn, tag):
        return closure_passthrough(fn), _NeverRaised, None, "pass-through: never rejects"

    async def open_async(self, fn, tag):
        return self.open_sync(fn, tag)


class Wrapt(Lib):
    name = "wrapt"
    kind = "baseline"

    def decorator(self, tag):
        return wrapt_passthrough

    def open_sync(self, fn, tag):
        return wrapt_passthrough(fn), _NeverRaised, None, "pass-through: never rejects"

    async def open_async(self, fn, tag):
        return self.open_sync(fn, tag)


class RaiseFloor(Lib):
    name = "raise-floor"
    kind = "baseline"
    only_scenarios = frozenset({"sync-open", "async-open"})

    def open_sync(self, fn, tag):
        return _reject, _FloorError, None, "plain function raising a new exception"

    async def open_async(self, fn, tag):
        return _areject, _FloorError, None, "plain coroutine raising a new exception"


class PyBreaker(Lib):
    name = "pybreaker"
    async_unsupported = (
        "no asyncio support (its call_async is for Tornado coroutines; "
        "the decorator would return an un-awaited coroutine and count it a success)"
    )

    def __init__(self):
        self.mod = import_module("pybreaker")

    def decorator(self, tag):
        return self.mod.CircuitBreaker(fail_max=BIG_THRESHOLD, reset_timeout=RECOVERY_S, name=tag)

    def open_sync(self, fn, tag):
        breaker = self.mod.CircuitBreaker(
            fail_max=BIG_THRESHOLD, reset_timeout=RECOVERY_S, name=tag
        )
        decorated = breaker(fn)
        breaker.open()
        return decorated, self.mod.CircuitBreakerError, None, "breaker.open()"


class CircuitBreakerLib(Lib):
    name = "circuitbreaker"

    def __init__(self):
        self.mod = import_module("circuitbreaker")

    def decorator(self, tag):
        return self.mod.circuit(
            failure_threshold=BIG_THRESHOLD, recovery_timeout=RECOVERY_S, name=tag
        )

    def _opening_breaker(self, tag):
        # No public "open now": drive it open with one counted failure.
        return self.mod.circuit(failure_threshold=1, recovery_timeout=RECOVERY_S, name=tag)

    def open_sync(self, fn, tag):
        breaker = self._opening_breaker(tag)
        decorated = breaker(fn)
        try:
            breaker.call(_boom, 0)
        except _Boom:
            pass
        return decorated, self.mod.CircuitBreakerError, None, "opened by 1 failure"

    async def open_async(self, fn, tag):
        breaker = self._opening_breaker(tag)
        decorated = breaker(fn)
        try:
            await breaker.call_async(_aboom, 0)
        except _Boom:
            pass
        return decorated, self.mod.CircuitBreakerError, None, "opened by 1 failure"


class AioBreaker(Lib):
    name = "aiobreaker"

    def __init__(self):
        self.mod = import_module("aiobreaker")

    def _breaker(self, tag):
        return self.mod.CircuitBreaker(
            fail_max=BIG_THRESHOLD, timeout_duration=timedelta(seconds=RECOVERY_S), name=tag
        )

    def decorator(self, tag):
        return self._breaker(tag)

    def open_sync(self, fn, tag):
        breaker = self._breaker(tag)
        decorated = breaker(fn)
        breaker.open()
        return decorated, self.mod.CircuitBreakerError, None, "breaker.open()"

    async def open_async(self, fn, tag):
        return self.open_sync(fn, tag)


class Purgatory(Lib):
    name = "purgatory"

    def __init__(self):
        self.mod = purgatory = import_module("purgatory")
        self.open_error = import_module("purgatory.domain.model").OpenedState
        self.sync_factory = purgatory.SyncCircuitBreakerFactory(
            default_threshold=BIG_THRESHOLD, default_ttl=RECOVERY_S
        )
        self.sync_factory.initialize()
        self.async_factory = purgatory.AsyncCircuitBreakerFactory(
            default_threshold=BIG_THRESHOLD, default_ttl=RECOVERY_S
        )

    def decorator(self, tag):
        # Same decorator call for sync and async; each factory has its own circuits.
        sync_deco = self.sync_factory(tag)
        async_deco = self.async_factory(tag)
        return lambda fn: async_deco(fn) if inspect.iscoroutinefunction(fn) else sync_deco(fn)

    # Purgatory raises the *same* OpenedState instance on every rejection, so its
    # __traceback__ grows by several entries per rejected call and keeps their frames
    # alive. The after-sample hook (untimed) drops it, or memory would grow without
    # bound during the run.
    note = "1 failure opens; reused error, traceback cleared between samples"

    def open_sync(self, fn, tag):
        factory = self.mod.SyncCircuitBreakerFactory(default_threshold=1, default_ttl=RECOVERY_S)
        factory.initialize()
        decorated = factory(tag)(fn)
        try:
            factory(tag)(_boom)(0)
        except _Boom:
            pass
        try:
            decorated(0)
        except self.open_error as exc:
            return decorated, self.open_error, _traceback_dropper(exc), self.note
        raise RuntimeError("purgatory circuit did not open after its threshold")

    async def open_async(self, fn, tag):
        factory = self.mod.AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=RECOVERY_S)
        await factory.initialize()
        decorated = factory(tag)(fn)
        try:
            await factory(tag)(_aboom)(0)
        except _Boom:
            pass
        try:
            await decorated(0)
        except self.open_error as exc:
            return decorated, self.open_error, _traceback_dropper(exc), self.note
        raise RuntimeError("purgatory circuit did not open after its threshold")


def _traceback_dropper(exc):
    def drop():
        exc.__traceback__ = None

    return drop


class Resilient(Lib):
    name = RESILIENT
    kind = "resilient"

    def __init__(self):
        resilient = import_module("resilient")
        try:
            self.circuit_breaker = resilient.circuit_breaker
            self.open_error = resilient.CircuitOpenError
        except AttributeError as exc:  # the runtime is not (fully) there yet
            raise ImportError(str(exc)) from exc

    def decorator(self, tag):
        return self.circuit_breaker(
            f"bench.{tag}", failure_threshold=BIG_THRESHOLD, recovery_timeout=RECOVERY_S
        )

    def open_sync(self, fn, tag):
        decorated = self.decorator(tag)(fn)
        decorated.breaker.trip()
        return decorated, self.open_error, None, "wrapper.breaker.trip()"

    async def open_async(self, fn, tag):
        return self.open_sync(fn, tag)


class Missing(Lib):
    """A library that could not be imported or set up."""

    def __init__(self, name, kind, reason):
        self.name = name
        self.kind = kind
        self.unavailable = reason


def load_libs() -> list[Lib]:
    libs: list[Lib] = [Undecorated(), Closure(), Wrapt(), RaiseFloor()]
    factories: list[tuple[str, str, Callable[[], Lib]]] = [
        ("pybreaker", "library", PyBreaker),
        ("circuitbreaker", "library", CircuitBreakerLib),
        ("aiobreaker", "library", AioBreaker),
        ("purgatory", "library", Purgatory),
        (RESILIENT, "resilient", Resilient),
    ]
    for name, kind, factory in factories:
        try:
            lib = factory()
        except ImportError as exc:
            lib = Missing(name, kind, f"not available ({type(exc).__name__}: {exc})")
        except Exception as exc:
            lib = Missing(name, kind, f"setup failed ({type(exc).__name__}: {exc})")
        lib.version = dist_version(name)
        libs.append(lib)
    return libs


# -------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    number: int
    title: str
    is_async: bool
    throughput: bool = False


SCENARIOS = [
    Scenario("sync-closed", 1, "sync closed success: f(x) -> x", is_async=False),
    Scenario("async-closed", 2, "async closed success: await f(x) in one loop", is_async=True),
    Scenario("sync-open", 3, "sync open rejection: breaker open, error caught", is_async=False),
    Scenario("async-open", 4, "async open rejection: breaker open, error caught", is_async=True),
    Scenario(
        "threads",
        5,
        f"{N_THREADS} threads sharing one breaker: sync closed success",
        is_async=False,
        throughput=True,
    ),
    Scenario("method", 6, "method call: obj.method(x) -> x, sync closed", is_async=False),
]
SCENARIO_KEYS = [s.key for s in SCENARIOS]


def _na(lib: Lib, reason: str) -> Candidate:
    return Candidate(lib.name, reason=reason, kind=lib.kind)


def _precheck(lib: Lib, scenario: Scenario) -> Candidate | None:
    if lib.unavailable:
        return _na(lib, lib.unavailable)
    if scenario.is_async and lib.async_unsupported:
        return _na(lib, lib.async_unsupported)
    if not scenario.is_async and lib.sync_unsupported:
        return _na(lib, lib.sync_unsupported)
    return None


def build_sync(lib: Lib, scenario: Scenario, thread_ms: float) -> Candidate:
    early = _precheck(lib, scenario)
    if early is not None:
        return early
    tag = scenario.key.replace("-", "_")
    try:
        if scenario.key == "sync-open":
            fn, exc, after, note = lib.open_sync(ok, tag)
            _expect_rejection(fn, exc)
            return Candidate(
                lib.name,
                functools.partial(_loop_reject, fn, exc),
                kind=lib.kind,
                after_sample=after,
                note=note,
            )
        if scenario.key == "method":
            obj = _make_service(lib.decorator(tag))
            _expect_value(obj.method(7))
            return Candidate(lib.name, functools.partial(_loop_method, obj), kind=lib.kind)
        fn = lib.decorator(tag)(ok)
        _expect_value(fn(7))
        if scenario.key == "threads":
            return _threads_candidate(lib, fn, thread_ms)
        return Candidate(lib.name, functools.partial(_loop_call, fn), kind=lib.kind)
    except NotImplementedError:
        return _na(lib, "not applicable")
    except Exception as exc:
        return _na(lib, f"setup or sanity check failed ({type(exc).__name__}: {exc})")


async def build_async(lib: Lib, scenario: Scenario) -> Candidate:
    early = _precheck(lib, scenario)
    if early is not None:
        return early
    tag = scenario.key.replace("-", "_")
    try:
        if scenario.key == "async-open":
            fn, exc, after, note = await lib.open_async(aok, tag)
            await _aexpect_rejection(fn, exc)
            return Candidate(
                lib.name,
                functools.partial(_aloop_reject, fn, exc),
                kind=lib.kind,
                after_sample=after,
                note=note,
            )
        fn = lib.decorator(tag)(aok)
        if not inspect.iscoroutinefunction(fn):
            note = "decorated function is not a coroutine function"
        else:
            note = ""
        _expect_value(await fn(7))
        return Candidate(lib.name, functools.partial(_aloop_call, fn), kind=lib.kind, note=note)
    except NotImplementedError:
        return _na(lib, "not applicable")
    except Exception as exc:
        return _na(lib, f"setup or sanity check failed ({type(exc).__name__}: {exc})")


def _expect_value(value):
    if value != 7:
        raise RuntimeError(f"returned {value!r} instead of 7")


def _expect_rejection(fn, exc):
    if exc is _NeverRaised:
        fn(1)
        return
    try:
        fn(1)
    except exc:
        return
    raise RuntimeError("the open breaker let the call through")


async def _aexpect_rejection(fn, exc):
    if exc is _NeverRaised:
        await fn(1)
        return
    try:
        await fn(1)
    except exc:
        return
    raise RuntimeError("the open breaker let the call through")


@dataclass
class Result:
    scenario: Scenario
    candidates: list[Candidate]
    stats: dict[str, Stats]
    calls: int
    rounds: int
    thread_ms: float


def run_scenario(scenario: Scenario, libs: list[Lib], args) -> Result:
    relevant = [
        lib for lib in libs if lib.only_scenarios is None or scenario.key in lib.only_scenarios
    ]
    if scenario.is_async:

        async def main():
            candidates = [await build_async(lib, scenario) for lib in relevant]
            stats = await ainterleave(candidates, args.calls, args.rounds, args.warmup)
            return candidates, stats

        candidates, stats = asyncio.run(main())
    else:
        candidates = [build_sync(lib, scenario, args.thread_ms) for lib in relevant]
        stats = interleave(candidates, args.calls, args.rounds, args.warmup)
    return Result(scenario, candidates, stats, args.calls, args.rounds, args.thread_ms)


# -------------------------------------------------------------------------- reporting


def _others(result: Result) -> list[Candidate]:
    return [c for c in result.candidates if c.kind == "library" and c.available]


def paired_ratio(result: Result, name: str) -> Stats | None:
    """resilient compared with `name`, round by round, as Stats over the rounds.

    Latency scenarios: resilient's overhead over the undecorated call divided by
    `name`'s overhead, both from the same round. Threads: resilient's calls/s divided
    by `name`'s. Every round measures all candidates back to back, so a ratio within
    a round is far less exposed to a busy machine than a ratio of two medians taken
    over the whole run. Rounds where `name`'s overhead is not positive are left out.
    """
    stats = result.stats
    if RESILIENT not in stats or name not in stats or name == RESILIENT:
        return None
    res = stats[RESILIENT].samples
    other = stats[name].samples
    if result.scenario.throughput:
        values = [r / o for r, o in zip(res, other, strict=True) if o > 0]
    else:
        if UNDECORATED not in stats or name == UNDECORATED:
            return None
        base = stats[UNDECORATED].samples
        values = [(r - b) / (o - b) for r, o, b in zip(res, other, base, strict=True) if o - b > 0]
    return Stats(values) if values else None


def _ratio_cell(result: Result, name: str) -> str:
    ratio = paired_ratio(result, name)
    return f"{ratio.median:.3f}x" if ratio is not None else "-"


def render_latency(result: Result) -> str:
    stats = result.stats
    base = stats[UNDECORATED].median if UNDECORATED in stats else None
    rows = []
    for c in result.candidates:
        if not c.available:
            rows.append([c.name, "n/a", "", "", "", c.reason or ""])
            continue
        s = stats[c.name]
        if c.name == UNDECORATED:
            over_txt = "0 (base)"
        else:
            over_txt = f"{s.median - base:+,.1f}" if base is not None else "?"
        rows.append(
            [
                c.name,
                fmt_ns(s.median),
                f"{s.iqr_pct:.1f}",
                over_txt,
                _ratio_cell(result, c.name),
                c.note,
            ]
        )
    headers = ["candidate", "ns/call", "IQR%", "overhead ns", "resilient/this"]
    return table(headers, rows)


def render_throughput(result: Result) -> str:
    stats = result.stats
    rows = []
    for c in result.candidates:
        if not c.available:
            rows.append([c.name, "n/a", "", "", "", c.reason or ""])
            continue
        s = stats[c.name]
        rows.append(
            [
                c.name,
                f"{s.median:,.0f}",
                f"{s.iqr_pct:.1f}",
                fmt_ns(1e9 / s.median),
                _ratio_cell(result, c.name),
                c.note,
            ]
        )
    headers = ["candidate", "calls/s", "IQR%", "ns/call (wall)", "resilient/this"]
    text = table(headers, rows)
    best = _best_other(result, highest=True)
    if best is not None and RESILIENT in stats:
        ratio = paired_ratio(result, best)
        if ratio is not None:
            text += (
                f"\nresilient / best other library ({best}, "
                f"{stats[best].median:,.0f} calls/s): {ratio.median:.3f}x"
            )
    return text


def render(result: Result) -> str:
    sc = result.scenario
    if sc.throughput:
        unit = f"{N_THREADS} threads, ~{result.thread_ms:g} ms per sample"
    else:
        unit = f"{result.calls:,} calls per sample"
    head = f"== {sc.number}. {sc.title} [{sc.key}] ({result.rounds} rounds, {unit}) =="
    body = render_throughput(result) if sc.throughput else render_latency(result)
    noisy = [name for name, st in result.stats.items() if st.iqr_pct > NOISY_IQR_PCT]
    if noisy:
        body += (
            f"\nnoisy: IQR above {NOISY_IQR_PCT:g}% for {', '.join(noisy)} "
            "(the machine was busy?); rerun before trusting these figures"
        )
    return f"{head}\n{body}"


@dataclass
class Target:
    status: str  # PASS, FAIL or SKIP
    text: str

    def line(self) -> str:
        return f"{self.status}  {self.text}"


def evaluate_targets(results: dict[str, Result]) -> list[Target]:
    targets: list[Target] = []
    for key, label in [
        ("sync-closed", "sync closed success"),
        ("async-closed", "async closed success"),
        ("method", "method call (sync closed success)"),
    ]:
        targets.extend(_closed_targets(results.get(key), label))
    for key, label in [
        ("sync-open", "sync open rejection"),
        ("async-open", "async open rejection"),
    ]:
        targets.append(_open_target(results.get(key), label))
    targets.append(_threads_target(results.get("threads")))
    return targets


def _skip_reason(result: Result | None) -> str | None:
    if result is None:
        return "scenario not run"
    if RESILIENT not in result.stats:
        return "resilient not available"
    if not _others(result):
        return "no other library ran this scenario"
    return None


def _best_other(result: Result, *, highest: bool) -> str | None:
    """The other library with the lowest (or highest) median, or None."""
    others = [(c.name, result.stats[c.name].median) for c in _others(result)]
    if not others:
        return None
    pick = max if highest else min
    return pick(others, key=lambda item: item[1])[0]


def _ratio_text(ratio: Stats | None, of_medians: float | None) -> str:
    if ratio is None:
        return "ratio n/m"
    text = f"{ratio.median:.3f}x (rounds p25-p75 {ratio.p25:.3f}-{ratio.p75:.3f})"
    if of_medians is not None:
        text += f", ratio of medians {of_medians:.3f}x"
    return text


def _over(result: Result, name: str) -> float:
    return result.stats[name].median - result.stats[UNDECORATED].median


def _closed_targets(result: Result | None, label: str) -> list[Target]:
    half = f"{label}: overhead <= 0.5x the best other library's"
    floor = f"{label}: overhead <= 3x the plain closure's"
    skip = _skip_reason(result)
    if skip is not None or result is None:
        return [Target("SKIP", f"{half} ({skip})"), Target("SKIP", f"{floor} ({skip})")]
    res_over = _over(result, RESILIENT)
    out = []
    for limit, name, text in [
        (0.5, _best_other(result, highest=False), half),
        (3.0, CLOSURE if CLOSURE in result.stats else None, floor),
    ]:
        ratio = paired_ratio(result, name) if name is not None else None
        if name is None or ratio is None:
            out.append(Target("SKIP", f"{text} (nothing to compare with)"))
            continue
        other_over = _over(result, name)
        of_medians = res_over / other_over if other_over > 0 else None
        out.append(
            Target(
                "PASS" if ratio.median <= limit else "FAIL",
                f"{text}: resilient {res_over:+,.1f} ns vs {name} {other_over:+,.1f} ns; "
                f"paired {_ratio_text(ratio, of_medians)}; limit {limit:g}x",
            )
        )
    return out


def _open_target(result: Result | None, label: str) -> Target:
    text = f"{label}: cheaper than every other library's"
    skip = _skip_reason(result)
    if skip is not None or result is None:
        return Target("SKIP", f"{text} ({skip})")
    stats = result.stats
    res = stats[RESILIENT].median
    # Per-round resilient ns / other ns, for every other library; the closest one decides.
    paired = {}
    for c in _others(result):
        values = [
            r / o for r, o in zip(stats[RESILIENT].samples, stats[c.name].samples, strict=True)
        ]
        paired[c.name] = Stats(values)
    name = max(paired, key=lambda n: paired[n].median)
    ratio = paired[name]
    return Target(
        "PASS" if ratio.median < 1 else "FAIL",
        f"{text}: resilient {fmt_ns(res)} ns/call vs closest other {name} "
        f"{fmt_ns(stats[name].median)} ns/call; paired "
        f"{_ratio_text(ratio, res / stats[name].median)}; must be < 1x",
    )


def _threads_target(result: Result | None) -> Target:
    text = f"{N_THREADS} threads: calls/s >= 2x the best other library's"
    skip = _skip_reason(result)
    if skip is not None or result is None:
        return Target("SKIP", f"{text} ({skip})")
    stats = result.stats
    name = _best_other(result, highest=True)
    assert name is not None
    res, best = stats[RESILIENT].median, stats[name].median
    ratio = paired_ratio(result, name)
    return Target(
        "PASS" if ratio is not None and ratio.median >= 2 else "FAIL",
        f"{text}: resilient {res:,.0f} vs {name} {best:,.0f} calls/s; "
        f"paired {_ratio_text(ratio, res / best)}; limit 2x",
    )


def header_lines(libs: list[Lib], args) -> list[str]:
    env = environment()
    c_ext = _wrapt_c_extension()
    lines = [
        "resilient runtime benchmark (benchmarks/bench_runtime.py)",
        f"python {env['python']} ({env['implementation']}) on {env['platform']}; "
        f"switch interval {env['switch_interval_s']} s",
        f"wrapt {dist_version('wrapt')} (C extension: {'yes' if c_ext else 'no'})",
    ]
    for lib in libs:
        if lib.kind == "baseline":
            continue
        if lib.unavailable:
            lines.append(f"{lib.name}: {lib.unavailable}")
        else:
            lines.append(f"{lib.name} {lib.version}")
    lines.append(
        f"mode: {'quick' if args.quick else 'full'}; {args.rounds} rounds after "
        f"{args.warmup} warm-up round(s); {args.calls:,} calls per sample; "
        f"threads: {N_THREADS}, ~{args.thread_ms:g} ms per sample; "
        "medians; GC paused while timing; candidates interleaved round-robin"
    )
    lines.append(f"clock: {CLOCK_TEXT[args.clock]}")
    return lines


def _wrapt_c_extension() -> bool:
    try:
        c_wrappers = import_module("wrapt._wrappers")
    except ImportError:
        return False
    return wrapt.FunctionWrapper is c_wrappers.FunctionWrapper


def to_json(libs, args, results: dict[str, Result], targets: list[Target]) -> dict[str, Any]:
    scenarios = {}
    for key, result in results.items():
        cands = {}
        for c in result.candidates:
            entry: dict[str, Any] = {"kind": c.kind, "available": c.available}
            if c.available:
                entry.update(result.stats[c.name].as_dict())
                entry["note"] = c.note
                entry.update(c.meta)
                ratio = paired_ratio(result, c.name)
                if ratio is not None:
                    entry["resilient_ratio_paired"] = {
                        "median": ratio.median,
                        "p25": ratio.p25,
                        "p75": ratio.p75,
                        "rounds": len(ratio.samples),
                    }
            else:
                entry["reason"] = c.reason
            cands[c.name] = entry
        base = result.stats.get(UNDECORATED)
        if base is not None and not result.scenario.throughput:
            for name, s in result.stats.items():
                cands[name]["overhead_ns"] = s.median - base.median
        scenarios[key] = {
            "number": result.scenario.number,
            "title": result.scenario.title,
            "unit": "calls/s" if result.scenario.throughput else "ns/call",
            "calls_per_sample": None if result.scenario.throughput else result.calls,
            "threads": N_THREADS if result.scenario.throughput else None,
            "rounds": result.rounds,
            "candidates": cands,
        }
    return {
        "environment": environment(),
        "versions": {
            "wrapt": dist_version("wrapt"),
            "wrapt_c_extension": _wrapt_c_extension(),
            **{lib.name: lib.version for lib in libs if lib.kind != "baseline"},
        },
        "unavailable": {lib.name: lib.unavailable for lib in libs if lib.unavailable},
        "config": {
            "quick": args.quick,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "calls": args.calls,
            "thread_sample_ms": args.thread_ms,
            "threads": N_THREADS,
            "clock": args.clock,
        },
        "scenarios": scenarios,
        "targets": [{"status": t.status, "text": t.text} for t in targets],
    }


# ------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run (few rounds)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="measured rounds per scenario")
    parser.add_argument("--warmup", type=int, help="untimed warm-up rounds per scenario")
    parser.add_argument("--calls", type=int, help="calls per sample (latency scenarios)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="clock of the latency scenarios: wall (perf_counter_ns, default) or cpu "
        "(thread_time_ns, for a busy machine); threads always use wall-clock time",
    )
    parser.add_argument(
        "--thread-ms", type=float, help="target duration of one threads sample, in ms"
    )
    parser.add_argument(
        "--only",
        metavar="KEYS",
        help=f"comma-separated scenarios to run (default all: {','.join(SCENARIO_KEYS)})",
    )
    args = parser.parse_args(argv)
    defaults = (
        {"rounds": 5, "warmup": 1, "calls": 2_000, "thread_ms": 10.0}
        if args.quick
        else {"rounds": 101, "warmup": 5, "calls": 5_000, "thread_ms": 50.0}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1 or args.calls < 1 or args.thread_ms <= 0 or args.warmup < 0:
        parser.error("--rounds and --calls must be >= 1, --thread-ms > 0, --warmup >= 0")
    if args.only:
        keys = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in keys if k not in SCENARIO_KEYS]
        if unknown:
            parser.error(f"unknown scenario(s) {unknown}; choose from {SCENARIO_KEYS}")
        args.only = keys
    else:
        args.only = SCENARIO_KEYS
    return args


def main(argv: list[str] | None = None) -> int:
    global _clock
    args = parse_args(argv)
    _clock = CLOCKS[args.clock]
    # resilient logs each transition (here: the trips that set up the open scenarios)
    # on the `resilient` logger; keep them out of the table. Not on any timed path.
    logging.getLogger("resilient").addHandler(logging.NullHandler())
    libs = load_libs()
    for line in header_lines(libs, args):
        print(line)
    print(flush=True)
    spin(0.3 if args.quick else 1.0)

    results: dict[str, Result] = {}
    for scenario in SCENARIOS:
        if scenario.key not in args.only:
            continue
        result = run_scenario(scenario, libs, args)
        results[scenario.key] = result
        print(render(result))
        print(flush=True)

    targets = evaluate_targets(results)
    print("== targets (resilient, ratios from this run) ==")
    for t in targets:
        print(t.line())
    met = sum(t.status == "PASS" for t in targets)
    missed = sum(t.status == "FAIL" for t in targets)
    skipped = sum(t.status == "SKIP" for t in targets)
    print(f"targets met: {met} of {len(targets)} (missed {missed}, skipped {skipped})")

    if args.json:
        path = Path(args.json)
        path.write_text(json.dumps(to_json(libs, args, results, targets), indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
