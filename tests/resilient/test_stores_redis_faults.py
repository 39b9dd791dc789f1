"""RedisStore when Redis fails: killed, paused, busy, restarted empty, answering errors.

Every test runs its own redis-server (``own_redis``), never the shared one.  In all
cases no call raises because of the store, breakers go on with per-process state,
one warning is logged, and the fleet state is back once Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from resilient import CircuitBreaker, CircuitOpenError, State
from resilient.stores import RedisStore, _redis

from .conftest_redis import wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class Down(Exception):
    """A dependency failure."""


def ok() -> str:
    return "ok"


def fail() -> None:
    raise Down("connection refused")


def call(breaker: CircuitBreaker, fn=ok) -> str:
    """One call; returns what happened (a store error would propagate and fail the test)."""
    try:
        breaker.call(fn)
    except Down:
        return "failed"
    except CircuitOpenError:
        return "rejected"
    return "ok"


def store_lines(caplog, level=logging.WARNING) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "resilient" and r.levelno == level and "Redis store" in r.getMessage()
    ]


@pytest.fixture
def stores():
    _redis._WARNED_AT.clear()  # each test counts its own warnings
    made: list[RedisStore] = []

    def make(url: str, **options) -> RedisStore:
        options.setdefault("sync_interval", 0.1)
        options.setdefault("reconnect_interval", 0.2)
        store = RedisStore.from_url(url, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def warm(*breakers: CircuitBreaker) -> None:
    for b in breakers:
        assert call(b) == "ok"
    assert wait_until(lambda: all(b._fast for b in breakers), timeout=2.0)


def timed_calls(
    breaker: CircuitBreaker, seconds: float, pattern=("ok",)
) -> tuple[list[str], float]:
    """Call for ``seconds`` (outcomes cycling through ``pattern``); return the
    results and the longest single call."""
    results, longest = [], 0.0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        results.append(call(breaker, fail if pattern[i % len(pattern)] == "fail" else ok))
        longest = max(longest, time.monotonic() - t0)
        i += 1
        time.sleep(0.005)
    return results, longest


def test_redis_killed_mid_run(own_redis, stores, caplog):
    """Redis dies: calls go on, the breaker still opens on its own, one warning;
    Redis comes back empty: the instances resync and follow the fleet again."""
    store = stores(own_redis.url)
    b = CircuitBreaker("killed", store=store, failure_threshold=3)
    other = CircuitBreaker("killed.other", store=store)
    warm(b, other)
    caplog.set_level(logging.INFO, logger="resilient")
    own_redis.kill()
    results, _ = timed_calls(b, 0.5)
    assert set(results) == {"ok"}
    assert [call(b, fail) for _ in range(3)] == ["failed"] * 3
    assert call(b) == "rejected"
    assert b.state is State.OPEN
    assert call(other) == "ok"
    assert len(store_lines(caplog)) == 1
    own_redis.start()
    assert wait_until(lambda: store_lines(caplog, logging.INFO), timeout=3.0)
    operator = stores(own_redis.url)
    operator.trip("killed.other", hold=True)
    assert wait_until(lambda: call(other) == "rejected", timeout=2.0)
    operator.reset("killed")  # also closes b's own breaker, opened during the outage
    assert wait_until(lambda: call(b) == "ok", timeout=2.0)
    assert len(store_lines(caplog)) == 1


def test_an_opening_seen_before_redis_died_is_honoured(own_redis, stores):
    """Redis dies while the fleet is open: an instance that saw the opening keeps
    rejecting until the fleet's retry time, then goes on with its own state."""
    settings = {"failure_threshold": 1, "recovery_timeout": 1.0}
    a = CircuitBreaker("seen", store=stores(own_redis.url, instance_id="a"), **settings)
    b = CircuitBreaker("seen", store=stores(own_redis.url, instance_id="b"), **settings)
    warm(a, b)
    assert call(a, fail) == "failed"
    opened = time.monotonic()
    assert wait_until(lambda: call(b) == "rejected", timeout=2.0)
    own_redis.kill()
    time.sleep(0.3)  # the store has noticed
    assert call(b) == "rejected"
    assert b.state is State.OPEN
    assert wait_until(lambda: call(b) == "ok", timeout=3.0)
    assert time.monotonic() - opened >= 0.9


@pytest.mark.parametrize("how", ["sigstop", "debug-sleep"])
def test_redis_paused_never_holds_a_call_longer_than_the_timeout(own_redis, stores, caplog, how):
    """A paused or busy Redis: each call returns within the store timeout (50 ms by
    default) plus scheduling noise, one warning, and a resync afterwards."""
    store = stores(own_redis.url)  # default timeout: 0.05 s
    b = CircuitBreaker("paused", store=store, failure_threshold=10)
    warm(b)
    caplog.set_level(logging.INFO, logger="resilient")
    admin = own_redis.client()
    sleeper = None
    try:
        if how == "sigstop":
            own_redis.pause()
        else:
            sleeper = threading.Thread(
                target=lambda: admin.execute_command("DEBUG", "SLEEP", "1.5")
            )
            sleeper.start()
            time.sleep(0.05)
        results, longest = timed_calls(b, 1.0, pattern=("fail", "ok", "ok"))
    finally:
        if how == "sigstop":
            own_redis.resume()
        if sleeper is not None:
            sleeper.join(5)
    print(f"\n[faults] {how}: longest call while Redis was unresponsive: {longest * 1000:.1f} ms")
    assert set(results) == {"ok", "failed"}
    assert longest < 0.25
    assert len(store_lines(caplog)) == 1
    assert wait_until(lambda: store_lines(caplog, logging.INFO), timeout=3.0)
    store.trip("paused")
    assert wait_until(lambda: call(b) == "rejected", timeout=2.0)
    admin.close()


def test_redis_restarted_empty(own_redis, stores, caplog):
    """Redis restarts with no data (and no scripts): the open fleet state is gone,
    instances resync to closed, and the fleet opens again on new failures."""
    a = CircuitBreaker("empty", store=stores(own_redis.url, instance_id="a"), failure_threshold=2)
    b = CircuitBreaker("empty", store=stores(own_redis.url, instance_id="b"), failure_threshold=2)
    warm(a, b)
    assert [call(a, fail), call(a, fail)] == ["failed", "failed"]
    assert wait_until(lambda: call(b) == "rejected", timeout=2.0)
    caplog.set_level(logging.INFO, logger="resilient")
    own_redis.kill()
    own_redis.start()
    assert wait_until(lambda: call(b) == "ok", timeout=3.0)
    assert call(a) == "ok"
    assert [call(b, fail), call(b, fail)] == ["failed", "failed"]  # scripts are loaded again
    assert wait_until(lambda: call(a) == "rejected", timeout=2.0)


@pytest.mark.parametrize("error", ["noperm", "oom"])
def test_redis_answering_errors(own_redis, stores, caplog, error):
    """Redis answers every script with an error (ACL) or refuses writes (out of
    memory): calls go on in-process, one warning, and the fleet works once it is fixed."""
    admin = own_redis.client()
    admin.execute_command("ACL", "SETUSER", "admin", "on", ">pw", "~*", "&*", "+@all")
    root = own_redis.client()
    root.connection_pool.connection_kwargs.update(username="admin", password="pw")
    a = CircuitBreaker("errors", store=stores(own_redis.url, instance_id="a"), failure_threshold=3)
    b = CircuitBreaker("errors", store=stores(own_redis.url, instance_id="b"), failure_threshold=3)
    warm(a, b)
    caplog.set_level(logging.INFO, logger="resilient")
    if error == "noperm":
        root.execute_command("ACL", "SETUSER", "default", "-evalsha", "-eval")
    else:
        root.config_set("maxmemory", 1)
    try:
        results, _ = timed_calls(a, 0.5, pattern=("fail", "ok"))
        assert set(results) == {"ok", "failed"}
        assert call(a) == "ok"
        assert [call(a, fail) for _ in range(3)] == ["failed"] * 3
        assert call(a) == "rejected"  # its own breaker protects it
        assert call(b) == "ok"  # the fleet never heard of it
        assert len(store_lines(caplog)) == 1
        assert ("permission" if error == "noperm" else "maxmemory") in store_lines(caplog)[0]
    finally:
        if error == "noperm":
            root.execute_command("ACL", "SETUSER", "default", "+@all")
        else:
            root.config_set("maxmemory", 0)
    assert [call(b, fail) for _ in range(3)] == ["failed"] * 3
    assert wait_until(lambda: b.state is State.OPEN, timeout=2.0)
    assert wait_until(lambda: store_lines(caplog, logging.INFO), timeout=2.0)
    admin.close()
    root.close()


@pytest.mark.asyncio
async def test_async_callers_never_block_the_event_loop(own_redis, stores):
    """With Redis paused, async calls that need the store wait in a worker thread:
    the event loop keeps running (its lag stays far below the store timeout)."""
    with pytest.warns(UserWarning, match="timeout=0.5"):
        store = stores(own_redis.url, timeout=0.5)  # a blocked loop would lag this long
    b = CircuitBreaker("loop", store=store, failure_threshold=100)
    assert await b.acall(ok) == "ok"
    lags: list[float] = []
    stop = asyncio.Event()

    async def heartbeat():
        while not stop.is_set():
            t0 = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - t0 - 0.005)

    beat = asyncio.ensure_future(heartbeat())
    own_redis.pause()
    try:
        outcomes = []
        for _ in range(5):
            try:
                await b.acall(fail)
            except Down:
                outcomes.append("failed")
    finally:
        own_redis.resume()
        stop.set()
        await beat
    assert outcomes == ["failed"] * 5
    assert max(lags) < 0.2
