"""RedisStore across real processes: each worker process runs one breaker on its
own RedisStore (see conftest_redis.Worker), all sharing one Redis."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SYNC_INTERVAL = 0.5  # the RedisStore default, used by the workers fixture


def store_events(reports, new_state=None):
    return [
        e
        for r in reports
        for e in r["events"]
        if e[2] == "store" and (new_state is None or e[1] == new_state)
    ]


def test_four_processes_share_one_opening(workers, capsys):
    """5 failures spread over the processes open the breaker for all 4; each rejects
    within the sync interval, including one that never failed (delays printed)."""
    ws = workers(4, "auth.validate_token", settings={"failure_threshold": 5})
    for w in ws:
        assert w.ask("call", outcome="ok")["result"] == "ok"
    time.sleep(SYNC_INTERVAL + 0.1)  # every view synced: healthy calls skip Redis
    for w in (ws[0], ws[0], ws[1], ws[1]):
        assert w.ask("call", outcome="fail")["result"] == "failed"
    last = ws[2].ask("call", outcome="fail")
    assert last["result"] == "failed"
    opened_at = last["t"]
    for w in ws:
        w.send_only("until", want="rejected", within=3 * SYNC_INTERVAL, every=0.002)
    replies = [w.receive(10) for w in ws]
    assert [r["result"] for r in replies] == ["rejected"] * 4
    delays = [r["t"] - opened_at for r in replies]
    with capsys.disabled():
        print(
            f"\n[fleet] sync_interval={SYNC_INTERVAL}s; rejecting after the opening: "
            f"processes that had failed {', '.join(f'{d * 1000:.0f}' for d in delays[:3])} ms, "
            f"the one that never failed {delays[3] * 1000:.0f} ms"
        )
    assert max(delays) <= SYNC_INTERVAL + 0.25
    reports = [w.ask("report") for w in ws]
    opened = store_events(reports, "open")
    assert len(opened) == 1
    assert "5 consecutive failures from 3 instances" in opened[0][3]
    assert [r["state"] for r in reports] == ["open"] * 4


def test_sixteen_processes_racing_make_one_transition(workers):
    """16 processes failing at the same instant: one opening, one log line, one event."""
    ws = workers(16, "race", settings={"failure_threshold": 5})
    for w in ws:
        w.ask("call", outcome="ok")
    time.sleep(SYNC_INTERVAL + 0.1)
    at = time.monotonic() + 1.0
    for w in ws:
        w.send_only("call", outcome="fail", at=at)
    results = [w.receive(10)["result"] for w in ws]
    assert set(results) <= {"failed", "rejected"}
    reports = [w.ask("report") for w in ws]
    events = [e for r in reports for e in r["events"]]
    assert [(e[0], e[1], e[2]) for e in events] == [("closed", "open", "store")]
    lines = [line for r in reports for line in r["logs"] if "closed -> open" in line]
    assert len(lines) == 1


def test_half_open_runs_exactly_max_calls_across_processes(workers):
    """While half-open, exactly half_open_max_calls trial calls run fleet-wide."""
    settings = {
        "failure_threshold": 1,
        "recovery_timeout": 0.3,
        "half_open_max_calls": 2,
        "half_open_max_wait": 30,
    }
    ws = workers(8, "trials", settings=settings)
    assert ws[0].ask("call", outcome="fail")["result"] == "failed"
    time.sleep(0.4)
    for w in ws:
        w.send_only("hold_trial")
    admitted = [w.receive(15)["admitted"] for w in ws]
    assert admitted.count(True) == 2


def test_one_broken_instance_cannot_open_the_fleet(workers, redis_client, prefix):
    """quorum=2: a process whose own calls all fail opens its own breaker only; a
    failure from a second process opens it for everyone."""
    ws = workers(3, "quorum", settings={"failure_threshold": 3}, store={"quorum": 2})
    bad, good, other = ws
    for w in ws:
        w.ask("call", outcome="ok")
    for _ in range(5):
        bad.ask("call", outcome="fail")
    bad_report = bad.ask("report")
    assert bad_report["state"] == "open"
    assert [(e[1], e[2]) for e in bad_report["events"]] == [("open", "local")]
    time.sleep(SYNC_INTERVAL + 0.1)
    assert other.ask("report")["state"] == "closed"
    assert good.ask("call", outcome="fail")["result"] == "failed"  # admitted
    reply = other.ask("until", want="rejected", within=3 * SYNC_INTERVAL)
    assert reply["result"] == "rejected"
    opened = store_events([good.ask("report")], "open")
    assert len(opened) == 1
    assert "from 2 instances" in opened[0][3]


def test_a_killed_trial_holder_does_not_wedge_the_fleet(workers):
    """A process that dies (SIGKILL) holding the only half-open permit: its lease
    expires after half_open_max_wait and another process gets a trial."""
    settings = {
        "failure_threshold": 1,
        "recovery_timeout": 0.2,
        "half_open_max_wait": 1.0,
        "success_threshold": 1,
    }
    holder, other = workers(2, "lease", settings=settings)
    assert holder.ask("call", outcome="fail")["result"] == "failed"
    time.sleep(0.3)
    held = holder.ask("hold_trial")
    assert held["admitted"]
    assert other.ask("call", outcome="ok")["result"] == "rejected"
    holder.kill()
    reply = other.ask("until", want="ok", within=5.0, every=0.02)
    assert reply["result"] == "ok"
    waited = reply["t"] - held["t"]
    assert 0.8 <= waited <= 2.5
    report = other.ask("report")
    assert any("past half_open_max_wait" in line for line in report["logs"])
    assert report["state"] == "closed"


def test_hosts_with_skewed_clocks_agree_on_recovery(workers):
    """Recovery is decided on Redis's clock: a process an hour ahead does not retry
    early, and one an hour behind retries on time."""
    settings = {"failure_threshold": 1, "recovery_timeout": 1.0}
    opener, ahead, behind = workers(3, "skew", settings=settings, skews=[None, 3600, -3600])
    clocks = [w.ask("report") for w in (ahead, behind)]
    assert all(c["state"] == "closed" for c in clocks)
    t0 = time.monotonic()
    assert opener.ask("call", outcome="fail")["result"] == "failed"
    assert ahead.ask("until", want="rejected", within=3 * SYNC_INTERVAL)["result"] == "rejected"
    assert behind.ask("until", want="rejected", within=3 * SYNC_INTERVAL)["result"] == "rejected"
    retry = [w.ask("report")["metrics"]["retry_after"] for w in (ahead, behind)]
    assert all(0 < r <= 1.0 for r in retry)
    assert ahead.ask("call", outcome="ok")["result"] == "rejected"
    reply = behind.ask("until", want="ok", within=4.0, every=0.02)
    assert reply["result"] == "ok"
    assert 0.9 <= time.monotonic() - t0 <= 3.0
