"""Rule 5: safe under threads and under any number of event loops.  Rule 1: it always recovers.

Nothing here sleeps to wait for behaviour: trials are held in flight with
threading.Barrier/Event and asyncio.Event, and time moves with freezegun.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading

import freezegun
import pytest

from resilient import CircuitBreaker, CircuitOpenError, State, circuit_breaker, get_breaker


class DependencyDown(ConnectionError):
    """The protected dependency failed."""


class InvalidTokenError(Exception):
    """A business outcome: neutral."""


@pytest.fixture
def frozen_threads():
    """Frozen time that worker threads see too.

    freezegun hands real time to callers whose nearby frames belong to an
    ignored module, and ``threading`` is ignored by default, so a breaker
    called a few frames above ``Thread.run`` would read the real clock.  The
    threads here only block on untimed Barrier/Event waits, which read no clock.
    """
    saved = list(freezegun.config.settings.default_ignore_list)
    freezegun.configure(default_ignore_list=[m for m in saved if m != "threading"])
    try:
        with freezegun.freeze_time("2026-11-30 12:00:00") as frozen:
            yield frozen
    finally:
        freezegun.configure(default_ignore_list=saved)


THREADS = 8
CALLS_PER_THREAD = 10_000


def outcome(kind: str) -> str:
    if kind == "failure":
        raise DependencyDown
    if kind == "ignored":
        raise InvalidTokenError
    return "ok"


MIX = ["success", "success", "failure", "ignored", "success", "failure", "ignored", "success"]
#: Runs of failures (an ignored one in between does not break a run) to open the breaker.
OUTAGES = ["failure", "failure", "ignored", "failure", "failure", "success", "success", "success"]


def observe(call, kind: str, seen: collections.Counter[str]) -> None:
    """Make one call and count, from the caller's side, what happened."""
    try:
        call(kind)
    except DependencyDown:
        seen["failures"] += 1
    except InvalidTokenError:
        seen["ignored"] += 1
    except CircuitOpenError:
        seen["rejections"] += 1
    else:
        seen["successes"] += 1


def run_threads(worker, count: int = THREADS) -> list[collections.Counter[str]]:
    start = threading.Barrier(count)
    results: list[collections.Counter[str]] = [collections.Counter() for _ in range(count)]

    def main(index: int) -> None:
        start.wait()
        worker(index, results[index])

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# -- threads: no lost updates ---------------------------------------------------------------------


def test_eight_threads_of_mixed_calls_add_up_exactly_on_the_healthy_path():
    """8 threads x 10,000 mixed calls on one closed breaker: every count is exact."""

    @circuit_breaker(
        "tests.concurrency.threads.closed",
        failure_threshold=1_000_000,
        ignore=(InvalidTokenError,),
    )
    def call(kind: str) -> str:
        return outcome(kind)

    def worker(index: int, seen: collections.Counter[str]) -> None:
        for i in range(CALLS_PER_THREAD):
            observe(call, MIX[(i + index) % len(MIX)], seen)

    seen = sum(run_threads(worker), collections.Counter())
    metrics = call.breaker.metrics()
    total = THREADS * CALLS_PER_THREAD
    assert metrics.successes == seen["successes"] == total // 2
    assert metrics.failures == seen["failures"] == total // 4
    assert metrics.ignored == seen["ignored"] == total // 4
    assert metrics.calls == total
    assert metrics.rejections == 0
    assert metrics.state is State.CLOSED


def test_eight_threads_of_mixed_calls_add_up_exactly_while_the_state_churns():
    """With the breaker opening and recovering under load, metrics equal what callers saw."""
    name = "tests.concurrency.threads.churn"
    breaker = get_breaker(
        name,
        failure_threshold=3,
        recovery_timeout=0.0005,  # real time: only to churn states, nothing waits for it
        half_open_max_calls=2,
        success_threshold=2,
        ignore=(InvalidTokenError,),
    )
    decorated = circuit_breaker(
        name,
        failure_threshold=3,
        recovery_timeout=0.0005,
        half_open_max_calls=2,
        success_threshold=2,
        ignore=(InvalidTokenError,),
    )(outcome)

    def in_block(kind: str) -> str:
        with breaker:
            return outcome(kind)

    drivers = [decorated, lambda kind: breaker.call(outcome, kind), in_block]

    def worker(index: int, seen: collections.Counter[str]) -> None:
        for i in range(CALLS_PER_THREAD):
            observe(drivers[(i + index) % 3], OUTAGES[i % len(OUTAGES)], seen)

    seen = sum(run_threads(worker), collections.Counter())
    metrics = breaker.metrics()
    assert metrics.successes == seen["successes"]
    assert metrics.failures == seen["failures"]
    assert metrics.ignored == seen["ignored"]
    assert metrics.rejections == seen["rejections"]
    assert metrics.calls + metrics.rejections == THREADS * CALLS_PER_THREAD
    assert seen["rejections"] > 0, "the breaker never opened: the test exercised nothing"
    assert metrics.half_open_in_flight == 0


# -- threads: half-open admits exactly half_open_max_calls ------------------------------------


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_admits_exactly_max_calls_concurrent_trials_from_threads(
    frozen_threads, max_calls
):
    """In half-open, exactly half_open_max_calls trials run at once; the rest are rejected."""
    contenders = 12
    breaker = CircuitBreaker(
        "tests.concurrency.half_open.threads",
        failure_threshold=1,
        recovery_timeout=10,
        half_open_max_calls=max_calls,
        success_threshold=max_calls,
    )
    for round_ in range(5):
        breaker.trip()
        frozen_threads.tick(10)
        assert breaker.state is State.HALF_OPEN
        attempted = threading.Barrier(contenders + 1)
        release = threading.Event()
        seen: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def trial(attempted=attempted, release=release, seen=seen, lock=lock) -> str:
            with lock:
                seen["running"] += 1
            attempted.wait()  # in flight: counted as attempted, holding its permit
            release.wait()
            return "ok"

        def contender(attempted=attempted, seen=seen, lock=lock, trial=trial) -> None:
            try:
                breaker.call(trial)
            except CircuitOpenError as err:
                with lock:
                    seen["rejected"] += 1
                    seen["rejected_half_open"] += err.state is State.HALF_OPEN
                attempted.wait()
            else:
                with lock:
                    seen["admitted"] += 1

        threads = [threading.Thread(target=contender) for _ in range(contenders)]
        for thread in threads:
            thread.start()
        attempted.wait()  # every contender is now in flight or was rejected
        assert seen["running"] == max_calls, round_
        assert seen["rejected"] == seen["rejected_half_open"] == contenders - max_calls
        assert breaker.metrics().half_open_in_flight == max_calls
        release.set()
        for thread in threads:
            thread.join()
        assert seen["admitted"] == max_calls
        assert breaker.state is State.CLOSED


# -- asyncio ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_five_thousand_concurrent_tasks_add_up_exactly():
    """5,000 concurrent tasks on one breaker: every count is exact and matches what tasks saw."""

    @circuit_breaker(
        "tests.concurrency.tasks", failure_threshold=1_000_000, ignore=(InvalidTokenError,)
    )
    async def call(kind: str) -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return outcome(kind)

    kinds = [MIX[i % len(MIX)] for i in range(5_000)]
    results = await asyncio.gather(*(call(k) for k in kinds), return_exceptions=True)
    seen = collections.Counter(type(r).__name__ for r in results)
    metrics = call.breaker.metrics()
    assert metrics.successes == seen["str"] == 2_500
    assert metrics.failures == seen["DependencyDown"] == 1_250
    assert metrics.ignored == seen["InvalidTokenError"] == 1_250
    assert metrics.calls == 5_000


@pytest.mark.asyncio
async def test_five_thousand_concurrent_tasks_in_an_outage_open_it_once(frozen, sandbox):
    """5,000 tasks via acall with call_timeout, half failing at once: counts match, one opening."""
    breaker = get_breaker(
        "tests.concurrency.tasks.outage",
        failure_threshold=50,
        call_timeout=60,
        ignore=(InvalidTokenError,),
    )
    gate = asyncio.Event()

    async def dependency(kind: str) -> str:
        await gate.wait()
        return outcome(kind)

    kinds = ["failure" if i % 2 else "ignored" for i in range(5_000)]
    tasks = [asyncio.ensure_future(breaker.acall(dependency, k)) for k in kinds]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    seen = collections.Counter(type(r).__name__ for r in results)
    metrics = breaker.metrics()
    # All 5,000 were admitted while closed; the outage opened the breaker while they ran.
    assert (metrics.failures, metrics.ignored) == (
        seen["DependencyDown"],
        seen["InvalidTokenError"],
    )
    assert metrics.failures == metrics.ignored == 2_500
    assert metrics.rejections == 0
    assert metrics.state is State.OPEN
    assert sandbox.transitions(breaker.name) == [(State.CLOSED, State.OPEN)]
    later = await asyncio.gather(
        *(breaker.acall(dependency, "success") for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, CircuitOpenError) for r in later)
    assert breaker.metrics().rejections == 10


@pytest.mark.asyncio
async def test_half_open_admits_exactly_max_calls_concurrent_trials_from_tasks(frozen):
    """In half-open, exactly half_open_max_calls tasks run trials at once; the rest are rejected."""
    breaker = CircuitBreaker(
        "tests.concurrency.half_open.tasks",
        failure_threshold=1,
        recovery_timeout=10,
        half_open_max_calls=2,
        success_threshold=2,
    )
    breaker.trip()
    frozen.tick(10)
    release = asyncio.Event()
    in_flight = []

    async def trial() -> str:
        in_flight.append(1)
        await release.wait()
        return "ok"

    tasks = [asyncio.ensure_future(breaker.acall(trial)) for _ in range(10)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(in_flight) == 2
    assert breaker.metrics().half_open_in_flight == 2
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("ok") == 2
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 8
    assert breaker.state is State.CLOSED


# -- one breaker, many event loops ---------------------------------------------------------------


def test_one_breaker_works_across_two_asyncio_run_calls(frozen):
    """A breaker opened in one event loop rejects, recovers and closes in another."""

    @circuit_breaker(
        "tests.concurrency.two_runs", failure_threshold=2, recovery_timeout=5, call_timeout=30
    )
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise DependencyDown
        return "ok"

    loops = []

    async def first() -> None:
        loops.append(asyncio.get_running_loop())
        for _ in range(2):
            with pytest.raises(DependencyDown):
                await fetch(True)
        with pytest.raises(CircuitOpenError):
            await fetch(False)

    async def second() -> None:
        loops.append(asyncio.get_running_loop())
        with pytest.raises(CircuitOpenError):
            await fetch(False)
        frozen.tick(5)
        assert await fetch(False) == "ok"
        async with fetch.breaker:
            await asyncio.sleep(0)

    asyncio.run(first())
    assert fetch.breaker.state is State.OPEN
    asyncio.run(second())
    assert loops[0] is not loops[1]
    assert fetch.breaker.state is State.CLOSED


# Not in the registry, so the per-test isolation leaves it alone: one object used
# by two tests, each with its own pytest-asyncio event loop.
SHARED = CircuitBreaker("tests.concurrency.shared_by_tests", failure_threshold=2, call_timeout=30)
LOOPS_SEEN: list[asyncio.AbstractEventLoop] = []


@pytest.mark.asyncio
@pytest.mark.parametrize("run", ["first-test", "second-test"])
async def test_one_breaker_serves_tests_with_their_own_event_loops(run):
    """The same breaker object opens, rejects and resets in each pytest-asyncio test's loop."""
    loop = asyncio.get_running_loop()
    assert all(seen is not loop for seen in LOOPS_SEEN)
    LOOPS_SEEN.append(loop)

    async def fail() -> None:
        await asyncio.sleep(0)
        raise DependencyDown

    async def ok() -> str:
        await asyncio.sleep(0)
        return run

    assert await SHARED.acall(ok) == run
    for _ in range(2):
        with pytest.raises(DependencyDown):
            await SHARED.acall(fail)
    with pytest.raises(CircuitOpenError):
        async with SHARED:
            pass
    SHARED.reset()
    async with SHARED:
        assert await SHARED.acall(ok) == run
    assert SHARED.state is State.CLOSED


def test_a_breaker_used_from_threads_each_running_an_event_loop():
    """Four threads each running asyncio.run share one breaker and its exact counts."""
    breaker = CircuitBreaker("tests.concurrency.loops_in_threads", failure_threshold=1_000_000)

    async def work(index: int) -> None:
        async def dep(kind: str) -> str:
            await asyncio.sleep(0)
            return outcome(kind)

        for i in range(500):
            kind = "failure" if (i + index) % 5 == 0 else "success"
            try:
                await breaker.acall(dep, kind)
            except DependencyDown:
                pass

    def worker(index: int, seen: collections.Counter[str]) -> None:
        asyncio.run(work(index))

    run_threads(worker, 4)
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures) == (1_600, 400)


# -- it always recovers: cancelled, timed-out and hung trials ---------------------------------


@pytest.mark.asyncio
async def test_a_cancelled_half_open_trial_gives_back_its_permit(frozen):
    """task.cancel() on the only trial frees its permit: the next call is admitted and closes it."""
    breaker = CircuitBreaker(
        "tests.concurrency.cancelled_trial",
        failure_threshold=1,
        recovery_timeout=10,
        half_open_max_calls=1,
        success_threshold=1,
    )
    breaker.trip()
    frozen.tick(10)
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    trial = asyncio.ensure_future(breaker.acall(hang))
    await started.wait()
    assert breaker.metrics().half_open_in_flight == 1
    with pytest.raises(CircuitOpenError):
        await breaker.acall(hang)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert breaker.state is State.HALF_OPEN
    assert breaker.metrics().half_open_in_flight == 0

    async def ok() -> str:
        return "ok"

    assert await breaker.acall(ok) == "ok"
    assert breaker.state is State.CLOSED


@pytest.mark.asyncio
async def test_a_cancelled_decorated_trial_gives_back_its_permit(frozen):
    """The same holds for a decorated coroutine function cancelled mid-trial."""
    started = asyncio.Event()
    hang = asyncio.Event()

    @circuit_breaker(
        "tests.concurrency.cancelled_decorated",
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=1,
    )
    async def fetch() -> str:
        started.set()
        await hang.wait()
        return "ok"

    fetch.breaker.trip()
    frozen.tick(10)
    trial = asyncio.ensure_future(fetch())
    await started.wait()
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    hang.set()
    assert await fetch() == "ok"
    assert fetch.breaker.state is State.CLOSED


@pytest.mark.asyncio
async def test_a_timed_out_half_open_trial_reopens_and_does_not_wedge(frozen):
    """A trial cancelled by call_timeout counts as a failure and reopens; it holds no permit."""
    breaker = CircuitBreaker(
        "tests.concurrency.timed_out_trial",
        failure_threshold=1,
        recovery_timeout=10,
        call_timeout=2,
        success_threshold=1,
    )
    breaker.trip()
    frozen.tick(10)

    async def slow() -> str:
        frozen.tick(3)
        await asyncio.Event().wait()
        return "never"

    async def ok() -> str:
        return "ok"

    with pytest.raises(TimeoutError):
        await breaker.acall(slow)
    assert breaker.state is State.OPEN
    assert breaker.metrics().half_open_in_flight == 0
    frozen.tick(10)
    assert await breaker.acall(ok) == "ok"
    assert breaker.state is State.CLOSED


@pytest.mark.asyncio
async def test_a_hung_trial_loses_its_permit_after_half_open_max_wait(frozen, caplog):
    """A trial that never returns loses its permit after half_open_max_wait; its outcome is void."""
    breaker = CircuitBreaker(
        "tests.concurrency.hung_trial",
        failure_threshold=1,
        recovery_timeout=10,
        half_open_max_wait=20,
        success_threshold=1,
    )
    breaker.trip()
    frozen.tick(10)
    started, finish = asyncio.Event(), asyncio.Event()

    async def hang() -> str:
        started.set()
        await finish.wait()
        raise DependencyDown("late failure")

    async def ok() -> str:
        return "ok"

    hung = asyncio.ensure_future(breaker.acall(hang))
    await started.wait()
    frozen.tick(19)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.acall(ok)
    assert info.value.retry_after == pytest.approx(1.0)
    frozen.tick(1)
    with caplog.at_level(logging.WARNING, logger="resilient"):
        assert await breaker.acall(ok) == "ok"
    assert breaker.state is State.CLOSED
    assert any("half_open_max_wait" in r.getMessage() for r in caplog.records)
    finish.set()
    with pytest.raises(DependencyDown):
        await hung
    assert breaker.state is State.CLOSED


def test_a_hung_thread_trial_loses_its_permit_after_half_open_max_wait(frozen_threads):
    """A sync trial stuck in another thread frees its permit after half_open_max_wait."""
    breaker = CircuitBreaker(
        "tests.concurrency.hung_thread",
        failure_threshold=1,
        recovery_timeout=10,
        call_timeout=5,  # half_open_max_wait defaults to call_timeout
        success_threshold=1,
    )
    breaker.trip()
    frozen_threads.tick(10)
    entered, finish = threading.Event(), threading.Event()

    def hang() -> str:
        entered.set()
        finish.wait()
        return "late"

    stuck = threading.Thread(target=lambda: breaker.call(hang))
    stuck.start()
    entered.wait()
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "ok")
    frozen_threads.tick(5)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is State.CLOSED
    finish.set()
    stuck.join()
    assert breaker.state is State.CLOSED


def test_nested_with_blocks_in_concurrent_threads_keep_their_own_permits(frozen_threads):
    """`with breaker:` keeps its state per thread: blocks in two threads do not mix their exits."""
    breaker = CircuitBreaker(
        "tests.concurrency.blocks",
        failure_threshold=1,
        recovery_timeout=10,
        half_open_max_calls=2,
        success_threshold=2,
    )
    breaker.trip()
    frozen_threads.tick(10)
    inside, release = threading.Barrier(3), threading.Event()
    errors: list[BaseException] = []

    def block(fail: bool) -> None:
        try:
            with breaker:
                inside.wait()
                release.wait()
                if fail:
                    raise DependencyDown
        except DependencyDown:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=block, args=(fail,)) for fail in (False, True)]
    for thread in threads:
        thread.start()
    inside.wait()  # both threads are inside their own `with breaker:` block
    assert breaker.metrics().half_open_in_flight == 2
    release.set()
    for thread in threads:
        thread.join()
    assert errors == []
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures) == (1, 1)
    assert metrics.half_open_in_flight == 0
    assert breaker.state is State.OPEN
