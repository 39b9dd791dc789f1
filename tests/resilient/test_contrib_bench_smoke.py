"""benchmarks/bench_observability.py runs end to end. Timings are never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_observability.py"


def test_quick_run_prints_every_section_and_target(tmp_path):
    """Both call tables, the collection costs and six target lines, plus the JSON file."""
    out_json = tmp_path / "obs.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--rounds",
            "2",
            "--warmup",
            "0",
            "--calls",
            "200",
            "--json",
            str(out_json),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for heading in ("[sync]", "[async]", "[collection]", "== targets"):
        assert heading in out
    for row in (
        "undecorated",
        "resilient+prometheus ",
        "resilient+otel ",
        "resilient+prometheus+otel",
    ):
        assert out.count(row) >= 2, row
    targets = [line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(targets) == 6
    data = json.loads(out_json.read_text())
    assert set(data["sync"]) == set(data["async"])
    assert data["collection"]["otel_record_ns"] > 0
