"""benchmarks/bench_redis.py runs end to end on a private Redis.  Timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_quick_run_reports_every_figure_and_target(own_redis, tmp_path):
    """--quick prints the time, traffic and propagation sections and the three targets,
    and writes the JSON; RedisStore's healthy calls make far fewer round trips than
    pybreaker's CircuitRedisStorage (counts, not timings)."""
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_redis.py", "--quick", "--redis", own_redis.url,
         "--json", str(out_json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for tag in ("[time]", "[async-time]", "[traffic]", "[propagation]"):
        assert tag in proc.stdout
    for target in (
        "round trips per healthy call",
        "overhead within 3x",
        "within the sync interval",
    ):
        assert target in proc.stdout
    doc = json.loads(out_json.read_text())
    fast = doc["traffic"]["fast"]
    assert fast["resilient (RedisStore)"]["round_trips_per_call"] <= 0.01
    assert fast["pybreaker (CircuitRedisStorage)"]["round_trips_per_call"] >= 1
    assert doc["propagation"]["trips"] == 3
