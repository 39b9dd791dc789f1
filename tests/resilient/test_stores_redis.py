"""RedisStore in one process: several instances (stores with their own instance ids)
sharing breakers through a real Redis.  Multi-process behaviour is in
test_stores_redis_fleet.py, faults in test_stores_redis_faults.py."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import freezegun
import pytest
import time_machine

import resilient
from resilient import CircuitBreaker, CircuitOpenError, ConfigError, State, circuit_breaker
from resilient.stores import RedisStore
from resilient.stores._redis_scripts import breaker_keys

from .conftest_redis import free_port, wait_until

pytestmark = pytest.mark.redis


class Down(Exception):
    """A dependency failure."""


def ok() -> str:
    return "ok"


def fail() -> None:
    raise Down("connection refused")


def fail_n(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Down):
            breaker.call(fail)


def rejected(breaker: CircuitBreaker) -> bool:
    try:
        breaker.call(ok)
    except CircuitOpenError:
        return True
    return False


def transitions(events, source=None):
    return [(e.old_state, e.new_state) for e in events if source is None or e.source == source]


@pytest.fixture
def events():
    seen = []
    resilient.add_listener(seen.append)
    yield seen
    resilient.remove_listener(seen.append)


def store_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "resilient"
        and r.levelno == logging.WARNING
        and "Redis store" in r.getMessage()
    ]


# --------------------------------------------------------------------------- building


def test_import_resilient_does_not_import_redis():
    """`import resilient`, the stores package and the RedisStore class load no redis."""
    code = (
        "import sys, resilient, resilient.stores, resilient._ops_cli\n"
        "from resilient.stores import RedisStore\n"
        "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if 'redis' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_redis_package_says_how_to_install():
    """Building a RedisStore without redis-py raises ImportError with the pip command."""
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "from resilient.stores import RedisStore\n"
        "try:\n"
        "    RedisStore.from_url('redis://127.0.0.1:6379/0')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert "pip install 'resilient[redis]'" in out


def test_bad_url_is_a_config_error_naming_it(redis_py):
    """A URL that is not a Redis URL fails when the store is built, and says why."""
    with pytest.raises(ConfigError, match=r"http://example\.com"):
        RedisStore.from_url("http://example.com")


@pytest.mark.parametrize(
    ("option", "value"),
    [("quorum", 0), ("sync_interval", 0), ("prefix", ""), ("timeout", -1), ("key_ttl", "1")],
)
def test_bad_settings_are_config_errors(redis_url, option, value):
    """Invalid store settings raise ConfigError naming the setting and the value."""
    with pytest.raises(ConfigError, match=option):
        RedisStore.from_url(redis_url, **{option: value})


def test_url_password_is_not_shown(redis_py):
    """The store's repr and messages hide the password in its URL."""
    store = RedisStore.from_url("redis://:hunter2@127.0.0.1:1/0")
    try:
        assert "hunter2" not in repr(store)
        assert "***" in repr(store)
    finally:
        store.close()


def test_client_with_long_timeouts_gets_a_warning(redis_url):
    """A client that could hold calls for seconds is flagged when the store is built."""
    import redis

    client = redis.Redis.from_url(redis_url)  # redis-py defaults: 5 s timeouts, retries
    try:
        with pytest.warns(UserWarning, match="socket_timeout") as record:
            RedisStore(client).close()
        assert record[0].filename == __file__
    finally:
        client.close()


def test_unreachable_server_at_start_up_warns_once_and_calls_go_on(redis_py, caplog):
    """No Redis at all: calls run, the breaker works in-process, one warning, no error."""
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        b = CircuitBreaker("nowhere", store=store, failure_threshold=3)
        with caplog.at_level(logging.WARNING, logger="resilient"):
            for _ in range(50):
                assert b.call(ok) == "ok"
            fail_n(b, 3)
            assert rejected(b)
            assert b.state is State.OPEN
        assert len(store_warnings(caplog)) == 1
    finally:
        store.close()


# --------------------------------------------------------------------------- fleet state


def test_failures_spread_over_instances_open_the_fleet_once(make_store, events):
    """Failures from three instances add up; the one that opens the fleet logs it,
    once, and every instance rejects."""
    name = "auth.validate_token"
    bs = [
        CircuitBreaker(name, store=make_store(instance_id=i), failure_threshold=5)
        for i in ("a", "b", "c")
    ]
    for b in bs:
        assert b.call(ok) == "ok"
    fail_n(bs[0], 2)
    fail_n(bs[1], 2)
    assert not rejected(bs[2])
    fail_n(bs[2], 1)
    assert transitions(events) == [(State.CLOSED, State.OPEN)]
    assert events[0].source == "store"
    assert "5 consecutive failures from 3 instances" in events[0].reason
    assert rejected(bs[2])
    assert wait_until(lambda: all(rejected(b) for b in bs), timeout=1.0)
    assert [b.state for b in bs] == [State.OPEN] * 3
    # No instance opened on its own: only the fleet's transition was reported.
    assert len(events) == 1


def test_a_success_clears_the_fleet_failures(make_store, redis_client):
    """Failures must be consecutive fleet-wide: a success anywhere starts the count again."""
    a = CircuitBreaker("dep", store=make_store(instance_id="a"), failure_threshold=3)
    b = CircuitBreaker("dep", store=make_store(instance_id="b"), failure_threshold=3)
    b.call(ok)
    fail_n(a, 2)
    key = breaker_keys(a.store.prefix, "dep")[0]  # type: ignore[union-attr]
    assert redis_client.hget(key, "failures") == b"2"

    def b_succeeds_and_clears():
        b.call(ok)
        return redis_client.hget(key, "failures") == b"0"

    assert wait_until(b_succeeds_and_clears, timeout=2.0)
    c = CircuitBreaker("dep", store=make_store(instance_id="c"), failure_threshold=3)
    fail_n(c, 2)
    assert redis_client.hget(key, "failures") == b"2"
    assert not rejected(c)
    assert c.state is State.CLOSED


def test_healthy_calls_do_not_reach_redis(own_redis):
    """Closed and healthy: calls are served from the local view; Redis sees about
    one sync per interval, not one command per call."""
    store = RedisStore.from_url(own_redis.url, sync_interval=0.2)
    admin = own_redis.client()
    try:
        guarded = circuit_breaker("healthy", store=store)(ok)
        guarded()
        wait_until(lambda: guarded.breaker._fast, timeout=2.0)
        before = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        calls, start = 0, time.monotonic()
        while time.monotonic() - start < 1.0:
            for _ in range(1000):
                guarded()
            calls += 1000
        elapsed = time.monotonic() - start
        after = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        scripts = after - before
        assert scripts <= elapsed / 0.2 + 3
        assert scripts / calls <= 0.01
    finally:
        store.close()
        admin.close()


def test_exactly_one_winner_among_16_threads(make_store, events, caplog):
    """16 threads failing at once on one breaker: one opening, one log line, one event."""
    b = CircuitBreaker("race", store=make_store(), failure_threshold=5)
    b.call(ok)
    wait_until(lambda: b._fast, timeout=2.0)
    barrier = threading.Barrier(16)

    def failing():
        barrier.wait()
        raise Down("connection refused")

    def run():
        with pytest.raises((Down, CircuitOpenError)):
            b.call(failing)

    with caplog.at_level(logging.INFO, logger="resilient"):
        threads = [threading.Thread(target=run) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    lines = [r.getMessage() for r in caplog.records if "closed -> open" in r.getMessage()]
    assert len(lines) == 1
    assert transitions(events) == [(State.CLOSED, State.OPEN)]
    assert b.state is State.OPEN


def test_exactly_one_winner_among_16_instances(make_store, events):
    """16 instances, each failing once at the same moment: one opening for all."""
    stores = [make_store(instance_id=f"i{i}") for i in range(16)]
    bs = [CircuitBreaker("race16", store=s, failure_threshold=5) for s in stores]
    for b in bs:
        b.call(ok)
    barrier = threading.Barrier(16)

    def failing():
        barrier.wait()  # every instance is inside its call before any fails
        raise Down("connection refused")

    def run(b):
        with pytest.raises(Down):
            b.call(failing)

    threads = [threading.Thread(target=run, args=(b,)) for b in bs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert transitions(events) == [(State.CLOSED, State.OPEN)]
    assert wait_until(lambda: all(rejected(b) for b in bs), timeout=1.0)


def _open_fleet(bs, n):
    fail_n(bs[0], n)
    assert rejected(bs[0])


def test_half_open_admits_exactly_max_calls_fleet_wide(make_store, events):
    """In HALF_OPEN, exactly half_open_max_calls trial calls run across all instances;
    when they succeed the fleet closes."""
    settings = {
        "failure_threshold": 2,
        "recovery_timeout": 0.3,
        "half_open_max_calls": 2,
        "half_open_max_wait": 10,
    }
    bs = [
        CircuitBreaker("trials", store=make_store(instance_id=f"i{i}"), **settings)
        for i in range(4)
    ]
    _open_fleet(bs, 2)
    time.sleep(0.35)  # the recovery timeout, on Redis's clock too
    release = threading.Event()
    entered = []
    outcomes = []
    lock = threading.Lock()

    def trial():
        with lock:
            entered.append(1)
        release.wait(5)
        return "ok"

    def run(b):
        try:
            outcomes.append(b.call(trial))
        except CircuitOpenError as exc:
            outcomes.append(exc.state)

    threads = [threading.Thread(target=run, args=(bs[i % 4],)) for i in range(16)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(outcomes) >= 14, timeout=3.0), (len(entered), outcomes)
    time.sleep(0.1)
    assert len(entered) == 2
    assert sorted(map(str, outcomes)) == ["half_open"] * 14
    release.set()
    for t in threads:
        t.join(5)
    assert outcomes.count("ok") == 2
    assert transitions(events, "store") == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    assert wait_until(lambda: all(not rejected(b) for b in bs), timeout=1.0)


def test_a_failed_trial_reopens_with_backoff(make_store, redis_client, events):
    """A failed trial reopens the fleet, with the recovery timeout multiplied by the backoff."""
    b = CircuitBreaker(
        "backoff",
        store=make_store(),
        failure_threshold=1,
        recovery_timeout=0.2,
        recovery_backoff=3,
    )
    fail_n(b, 1)
    time.sleep(0.25)
    fail_n(b, 1)  # the trial
    key = breaker_keys(b.store.prefix, "backoff")[0]  # type: ignore[union-attr]
    fields = redis_client.hgetall(key)
    assert fields[b"state"] == b"open"
    assert int(float(fields[b"recovery"])) == 600
    assert int(fields[b"retry_at"]) - int(fields[b"opened_at"]) == 600
    assert transitions(events, "store")[-1] == (State.HALF_OPEN, State.OPEN)
    assert "trial call failed" in events[-1].reason


def test_a_hung_trial_loses_its_fleet_permit(make_store, caplog):
    """A trial that never reports back loses its permit after half_open_max_wait."""
    settings = {"failure_threshold": 1, "recovery_timeout": 0.1, "half_open_max_wait": 0.4}
    a = CircuitBreaker("hung", store=make_store(instance_id="a"), **settings)
    b = CircuitBreaker("hung", store=make_store(instance_id="b"), **settings)
    fail_n(a, 1)
    time.sleep(0.15)
    started = threading.Event()
    threading.Thread(
        target=lambda: a.call(lambda: started.set() or time.sleep(3)), daemon=True
    ).start()
    assert started.wait(2)
    t0 = time.monotonic()
    assert rejected(b)
    with caplog.at_level(logging.WARNING, logger="resilient"):
        assert wait_until(lambda: not rejected(b), timeout=2.0, every=0.02)
    waited = time.monotonic() - t0
    assert 0.2 < waited < 1.5
    assert any("past half_open_max_wait" in r.getMessage() for r in caplog.records)


def test_quorum_one_bad_instance_cannot_open_the_fleet(make_store, events):
    """With quorum=2 a single failing instance opens only its own breaker; failures
    from a second instance open the fleet for everyone."""
    name = "quorum"
    bad, good, other = (
        CircuitBreaker(name, store=make_store(instance_id=i, quorum=2), failure_threshold=3)
        for i in ("bad", "good", "other")
    )
    fail_n(bad, 3)
    assert rejected(bad)  # it protects itself
    assert transitions(events) == [(State.CLOSED, State.OPEN)]
    assert events[0].source == "local"
    time.sleep(0.3)
    assert other.state is State.CLOSED
    fail_n(good, 1)  # admitted: the fleet is not open
    assert transitions(events, "store") == [(State.CLOSED, State.OPEN)]
    assert "from 2 instances" in events[-1].reason
    assert wait_until(lambda: rejected(other), timeout=1.0)


# --------------------------------------------------------------------------- time


def test_recovery_follows_redis_time_not_the_host_clock(make_store):
    """A host whose clock is an hour ahead still waits for the fleet's recovery, and
    one an hour behind gets its trial when Redis says so."""
    a = CircuitBreaker(
        "clock", store=make_store(instance_id="a"), failure_threshold=1, recovery_timeout=0.6
    )
    skewed = CircuitBreaker(
        "clock", store=make_store(instance_id="s"), failure_threshold=1, recovery_timeout=0.6
    )
    skewed.call(ok)
    fail_n(a, 1)
    opened = time.monotonic()
    ahead = datetime.now(timezone.utc) + timedelta(hours=1)
    with freezegun.freeze_time(ahead, tick=True):
        assert wait_until(lambda: rejected(skewed), timeout=1.0)
        assert skewed.state is State.OPEN
    behind = datetime.now(timezone.utc) - timedelta(hours=1)
    with freezegun.freeze_time(behind, tick=True):
        assert wait_until(lambda: not rejected(skewed), timeout=3.0)
    assert time.monotonic() - opened >= 0.55


def test_wall_clock_travel_does_not_move_the_fleet(make_store):
    """time-machine moving the wall clock a day ahead changes nothing in the fleet."""
    a = CircuitBreaker("travel", store=make_store(), failure_threshold=1, recovery_timeout=30)
    fail_n(a, 1)
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=1), tick=True):
        err = _rejection(a)
        assert err is not None
        assert 25 < err.retry_after <= 30
        assert a.state is State.OPEN


def _rejection(b):
    try:
        b.call(ok)
    except CircuitOpenError as exc:
        return exc
    return None


# --------------------------------------------------------------------------- keys


def test_keys_carry_a_ttl_and_expire_when_unused(make_store, redis_client):
    """Every key has an expiry; a breaker nobody uses disappears from Redis."""
    b = CircuitBreaker(
        "ttl", store=make_store(key_ttl=0.5), failure_threshold=5, recovery_timeout=0.1
    )
    fail_n(b, 1)
    state_key, _, inst_key = breaker_keys(b.store.prefix, "ttl")  # type: ignore[union-attr]
    assert 0 < redis_client.pttl(state_key) <= 500
    assert 0 < redis_client.pttl(inst_key) <= 500
    assert wait_until(lambda: not redis_client.exists(state_key, inst_key), timeout=3.0)


def test_keys_stay_while_the_breaker_is_used(make_store, redis_client):
    """A breaker in use keeps its keys (the background sync refreshes their expiry)."""
    b = CircuitBreaker(
        "kept", store=make_store(key_ttl=0.5, sync_interval=0.1), recovery_timeout=0.1
    )
    b.call(ok)
    key = breaker_keys(b.store.prefix, "kept")[0]  # type: ignore[union-attr]
    assert wait_until(lambda: redis_client.exists(key), timeout=2.0)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        b.call(ok)
        time.sleep(0.01)
    assert redis_client.exists(key)


ODD_NAMES = ["with space", "a:b:c", "a", "a:leases", "{brace}", "ünïcødé ✓", "*glob?[x]", "a}:{b"]


def test_odd_names_are_safe_and_distinct(make_store, redis_client):
    """Spaces, colons, braces, glob characters and unicode in names never collide."""
    store = make_store()
    bs = {n: CircuitBreaker(n, store=store, failure_threshold=1) for n in ODD_NAMES}
    fail_n(bs["a:leases"], 1)
    assert rejected(bs["a:leases"])
    for n in ODD_NAMES:
        if n != "a:leases":
            assert bs[n].call(ok) == "ok"
    wait_until(lambda: len(store.status()) == len(ODD_NAMES), timeout=2.0)
    status = {e["name"]: e for e in store.status()}
    assert set(status) == set(ODD_NAMES)
    assert status["a:leases"]["state"] == "open"
    assert {e["state"] for n, e in status.items() if n != "a:leases"} == {"closed"}
    store.trip("a}:{b", hold=True)
    assert wait_until(lambda: rejected(bs["a}:{b"]), timeout=1.0)
    assert not rejected(bs["a"])


# --------------------------------------------------------------------------- operators


def test_operator_trip_hold_and_reset_reach_every_instance(make_store, events):
    """trip(hold=True) from one place rejects everywhere; reset closes everywhere."""
    a = CircuitBreaker("ops", store=make_store(instance_id="a"))
    b = CircuitBreaker("ops", store=make_store(instance_id="b"))
    a.call(ok)
    b.call(ok)
    a.trip(hold=True)
    assert wait_until(lambda: rejected(b), timeout=1.0)
    err = _rejection(b)
    assert err is not None
    assert err.state is State.FORCED_OPEN
    assert err.retry_after is None
    b.reset()
    assert wait_until(lambda: not rejected(a), timeout=1.0)
    assert a.state is State.CLOSED
    assert b.state is State.CLOSED


def test_fleet_reset_closes_a_process_that_opened_on_its_own(make_store, events):
    """An operator reset closes each instance's own breaker too, not only the fleet's."""
    bad = CircuitBreaker("own", store=make_store(instance_id="bad", quorum=2), failure_threshold=2)
    operator = make_store(instance_id="operator")
    fail_n(bad, 2)
    assert rejected(bad)
    operator.reset("own")
    assert wait_until(lambda: not rejected(bad), timeout=1.0)
    followed = [e for e in events if e.new_state is State.CLOSED]
    assert len(followed) == 1
    assert followed[0].source == "store"
    assert "reset by an operator" in followed[0].reason


def test_disable_is_followed_fleet_wide(make_store):
    """disable() in one instance puts every instance in shadow mode; reset ends it."""
    a = CircuitBreaker("shadow", store=make_store(instance_id="a"), failure_threshold=1)
    b = CircuitBreaker("shadow", store=make_store(instance_id="b"), failure_threshold=1)
    b.call(ok)
    a.disable()
    assert wait_until(lambda: b.state is State.DISABLED, timeout=1.0)
    fail_n(b, 3)
    assert b.call(ok) == "ok"
    a.reset()
    assert wait_until(lambda: b.state is State.CLOSED, timeout=1.0)


def test_metrics_and_health_show_the_fleet_state(make_store):
    """A process whose own breaker is closed shows the fleet's opening in metrics()
    and health()."""
    store = make_store(instance_id="me")
    b = resilient.get_breaker("health.dep", store=store)
    b.call(ok)
    make_store(instance_id="operator").trip("health.dep")
    assert wait_until(lambda: b.metrics().fleet_state is State.OPEN, timeout=1.0)
    snap = b.metrics()
    assert snap.state is State.OPEN
    assert snap.retry_after is not None
    assert snap.retry_after > 20
    report = resilient.health()
    assert report["status"] == "failing"
    assert report["breakers"]["health.dep"]["fleet_state"] == "open"


def test_reset_of_an_instance_whose_fleet_is_open_is_logged(make_store, events):
    """reset() where only the fleet is open still reports open -> closed."""
    a = CircuitBreaker("logged", store=make_store(instance_id="a"), failure_threshold=1)
    b = CircuitBreaker("logged", store=make_store(instance_id="b"), failure_threshold=1)
    b.call(ok)
    fail_n(a, 1)
    assert wait_until(lambda: b.state is State.OPEN, timeout=1.0)
    events.clear()
    b.reset()
    assert transitions(events) == [(State.OPEN, State.CLOSED)]


# --------------------------------------------------------------------------- async


@pytest.mark.asyncio
async def test_async_failures_count_fleet_wide(make_store, events):
    """Async callers report to the fleet (without blocking the loop) and are rejected
    once it opens."""
    store_a, store_b = make_store(instance_id="a"), make_store(instance_id="b")

    @circuit_breaker("async.dep", store=store_a, failure_threshold=3)
    async def call_a(fail_it: bool) -> str:
        if fail_it:
            raise Down("refused")
        return "ok"

    b = CircuitBreaker("async.dep", store=store_b, failure_threshold=3)
    assert await call_a(False) == "ok"
    for _ in range(2):
        with pytest.raises(Down):
            await call_a(True)
    with pytest.raises(Down):
        await b.acall(fail)
    deadline = time.monotonic() + 1.0
    while not events:  # the fast path may have reported from a worker thread
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert transitions(events) == [(State.CLOSED, State.OPEN)]
    with pytest.raises(CircuitOpenError):
        await b.acall(ok)

    async def a_rejects():
        try:
            await call_a(False)
        except CircuitOpenError:
            return True
        return False

    deadline = time.monotonic() + 1.0
    while not await a_rejects():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_async_fast_path_failure_reaches_the_fleet(make_store):
    """A failure on the healthy (fast) path of an async breaker still counts fleet-wide."""
    store = make_store(instance_id="a")

    @circuit_breaker("async.fast", store=store, failure_threshold=1)
    async def flaky(fail_it: bool) -> str:
        if fail_it:
            raise Down("refused")
        return "ok"

    assert await flaky(False) == "ok"
    deadline = time.monotonic() + 2
    while not flaky.breaker._fast:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    with pytest.raises(Down):
        await flaky(True)
    other = CircuitBreaker("async.fast", store=make_store(instance_id="b"), failure_threshold=1)
    deadline = time.monotonic() + 1.0
    while not rejected(other):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


def test_async_breaker_serves_several_event_loops(make_store):
    """One breaker on a RedisStore works from successive and concurrent event loops."""
    b = CircuitBreaker("loops", store=make_store(), failure_threshold=2)

    async def use(n_fail: int) -> list[str]:
        out = []
        for _ in range(n_fail):
            try:
                await b.acall(fail)
            except Down:
                out.append("failed")
            except CircuitOpenError:
                out.append("rejected")
        return out

    assert asyncio.run(use(1)) == ["failed"]
    results = []
    t = threading.Thread(target=lambda: results.append(asyncio.run(use(1))))
    t.start()
    t.join(10)
    assert results == [["failed"]]
    assert asyncio.run(use(1)) == ["rejected"]


@pytest.mark.asyncio
async def test_async_cancelled_trial_gives_its_permit_back(make_store):
    """A half-open trial cancelled by its caller frees its fleet permit (long before
    half_open_max_wait)."""
    settings = {"failure_threshold": 1, "recovery_timeout": 0.1, "half_open_max_wait": 30}
    b = CircuitBreaker("cancel", store=make_store(instance_id="a"), **settings)
    other = CircuitBreaker("cancel", store=make_store(instance_id="b"), **settings)
    with pytest.raises(Down):
        await b.acall(fail)
    await asyncio.sleep(0.15)
    started = asyncio.Event()

    async def slow():
        started.set()
        await asyncio.sleep(30)

    task = asyncio.ensure_future(b.acall(slow))
    await asyncio.wait_for(started.wait(), 2)
    with pytest.raises(CircuitOpenError):
        other.call(ok)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 1.0  # other instances re-ask within a sync interval
    while rejected(other):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
