"""``resilient status``, ``resilient trip``, ``resilient reset``: run as the real command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from resilient import CircuitBreaker, State
from resilient.stores._redis_scripts import breaker_keys

from .conftest_redis import free_port, wait_until

pytestmark = pytest.mark.redis

SYNC_INTERVAL = 0.5  # the workers' (default) sync interval


class Down(Exception):
    """A dependency failure."""


def fail() -> None:
    raise Down("connection refused")


def resilient_cmd(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``resilient`` console script (``python -m resilient.migration`` if it is
    not on PATH)."""
    exe = shutil.which("resilient", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "resilient.migration"]
    full_env = {k: v for k, v in os.environ.items() if k != "RESILIENT_REDIS_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=60, env=full_env, check=False
    )


# --------------------------------------------------------------------------- errors


def test_registration_does_not_import_redis():
    """Building the command parser (and --help) loads no redis."""
    code = (
        "import sys\n"
        "from resilient.migration._cli import build_parser\n"
        "build_parser().parse_args(['status'])\n"
        "assert 'redis' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert resilient_cmd("trip", "--help").returncode == 0


def test_no_url_is_a_usage_error():
    """Without --redis or RESILIENT_REDIS_URL: exit 2 and the way to give one."""
    proc = resilient_cmd("status")
    assert proc.returncode == 2
    assert "--redis URL" in proc.stderr
    assert "RESILIENT_REDIS_URL" in proc.stderr


def test_bad_url_is_a_usage_error(redis_py):
    """A URL that is not a Redis URL: exit 2, naming it."""
    proc = resilient_cmd("trip", "x", "--redis", "http://example.com")
    assert proc.returncode == 2
    assert "http://example.com" in proc.stderr
    assert "redis://" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_server_is_a_clear_error(redis_py):
    """Nothing listening: exit 2 with the (password-free) address and the reason."""
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    proc = resilient_cmd("reset", "x", "--redis", url, "--timeout", "0.5")
    assert proc.returncode == 2
    assert "cannot reach Redis at redis://:***@127.0.0.1" in proc.stderr
    assert "secret" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_redis_package_is_a_clear_error(redis_url):
    """Without redis-py the commands exit 2 with the install command."""
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "from resilient.migration._cli import main\n"
        f"raise SystemExit(main(['status', '--redis', {redis_url!r}]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert "pip install 'resilient[redis]'" in proc.stderr


# --------------------------------------------------------------------------- status


def test_status_lists_every_breaker(redis_url, prefix, make_store):
    """status shows each breaker's fleet state, failure count and retry time, as a
    table and as JSON; the URL may come from RESILIENT_REDIS_URL."""
    store = make_store(instance_id="a")
    down = CircuitBreaker(
        "auth.validate_token", store=store, failure_threshold=2, recovery_timeout=30
    )
    flaky = CircuitBreaker("billing: charge ✓", store=store, failure_threshold=5)
    for _ in range(2):
        with pytest.raises(Down):
            down.call(fail)
    with pytest.raises(Down):
        flaky.call(fail)

    proc = resilient_cmd("status", "--prefix", prefix, env={"RESILIENT_REDIS_URL": redis_url})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "STATE", "FAILURES", "RETRY"]
    row = next(line for line in lines if line.startswith("auth.validate_token"))
    assert " open " in row
    assert "2 consecutive failures" in row
    assert any(line.startswith("billing: charge ✓") and "1/5" in line for line in lines)

    proc = resilient_cmd("status", "--redis", redis_url, "--prefix", prefix, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    entries = {e["name"]: e for e in doc["breakers"]}
    assert set(entries) == {"auth.validate_token", "billing: charge ✓"}
    auth = entries["auth.validate_token"]
    assert auth["state"] == "open"
    assert auth["total_failures"] == 2
    assert 25 < auth["retry_after"] <= 30
    billing = entries["billing: charge ✓"]
    assert (billing["state"], billing["failures"], billing["failure_threshold"]) == ("closed", 1, 5)
    assert billing["retry_after"] is None


def test_status_with_no_breakers(redis_url, prefix):
    """An empty prefix is not an error: status says there is nothing there."""
    proc = resilient_cmd("status", "--redis", redis_url, "--prefix", prefix)
    assert proc.returncode == 0
    assert "no breakers" in proc.stdout


# --------------------------------------------------------------------------- trip / reset


def test_trip_and_reset_reach_every_process(redis_url, redis_client, prefix, workers, capsys):
    """`resilient trip NAME` makes every process reject within the sync interval;
    `resilient reset NAME` closes it everywhere, including a process whose own
    breaker had opened."""
    name = "auth.validate_token"
    ws = workers(3, name, settings={"failure_threshold": 3}, store={"quorum": 2})
    for w in ws:
        assert w.ask("call", outcome="ok")["result"] == "ok"
    for _ in range(3):  # only this process fails: with quorum=2 it opens alone
        ws[2].ask("call", outcome="fail")
    assert ws[2].ask("call", outcome="ok")["result"] == "rejected"
    time.sleep(SYNC_INTERVAL + 0.1)

    for w in ws[:2]:  # calling all along, from before the trip
        w.send_only("until", want="rejected", within=30, every=0.002)
    proc = resilient_cmd("trip", name, "--redis", redis_url, "--prefix", prefix)
    assert proc.returncode == 0, proc.stderr
    assert "closed -> open" in proc.stdout
    replies = [w.receive(40) for w in ws[:2]]
    assert [r["result"] for r in replies] == ["rejected"] * 2
    # When the trip landed, on this host's monotonic clock (from Redis's own clock).
    key = breaker_keys(prefix, name)[0]
    changed_ms = int(redis_client.hget(key, "changed_at"))
    seconds, micros = redis_client.time()
    landed = time.monotonic() - (seconds * 1000 + micros // 1000 - changed_ms) / 1000
    delays = [r["t"] - landed for r in replies]
    with capsys.disabled():
        print(
            f"\n[cli] trip: processes rejected {', '.join(f'{d * 1000:.0f}' for d in delays)} ms "
            f"after it reached Redis (sync_interval={SYNC_INTERVAL}s)"
        )
    assert max(delays) <= SYNC_INTERVAL + 0.25

    proc = resilient_cmd("status", "--redis", redis_url, "--prefix", prefix, "--format", "json")
    (entry,) = json.loads(proc.stdout)["breakers"]
    assert entry["state"] == "open"
    assert entry["reason"] == "tripped by an operator"

    proc = resilient_cmd("reset", name, "--redis", redis_url, "--prefix", prefix)
    assert proc.returncode == 0, proc.stderr
    assert "open -> closed" in proc.stdout
    for w in ws:
        w.send_only("until", want="ok", within=3 * SYNC_INTERVAL, every=0.002)
    assert [w.receive(10)["result"] for w in ws] == ["ok"] * 3
    report = ws[2].ask("report")
    assert report["events"][-1][:3] == ["open", "closed", "store"]


def test_trip_hold_keeps_it_open_until_reset(redis_url, prefix, make_store):
    """`trip --hold` holds the breaker FORCED_OPEN (no trials) until `reset`."""
    b = CircuitBreaker("held", store=make_store(), recovery_timeout=0.1)
    b.call(lambda: "ok")
    proc = resilient_cmd("trip", "held", "--hold", "--redis", redis_url, "--prefix", prefix)
    assert proc.returncode == 0, proc.stderr
    assert "resilient reset held" in proc.stdout
    assert wait_until(lambda: b.state is State.FORCED_OPEN, timeout=2.0)
    time.sleep(0.3)  # far past the recovery timeout: still held
    assert b.state is State.FORCED_OPEN
    proc = resilient_cmd("status", "--redis", redis_url, "--prefix", prefix)
    assert "forced_open" in proc.stdout
    assert "held" in proc.stdout
    resilient_cmd("reset", "held", "--redis", redis_url, "--prefix", prefix)
    assert wait_until(lambda: b.state is State.CLOSED, timeout=2.0)
