"""benchmarks/bench_runtime.py runs end to end. Timings are never asserted here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_runtime.py"
SCENARIOS = ["sync-closed", "async-closed", "sync-open", "async-open", "threads", "method"]
CANDIDATES = [
    "undecorated",
    "closure",
    "wrapt",
    "pybreaker",
    "circuitbreaker",
    "aiobreaker",
    "purgatory",
    "resilient",
]


def _sections(stdout: str) -> dict[str, list[str]]:
    """Scenario key -> the lines of its table."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        heading = re.match(r"^== \d+\. .*\[([a-z-]+)\]", line)
        if heading:
            current = sections.setdefault(heading.group(1), [])
        elif line.startswith("=="):
            current = None
        elif current is not None:
            current.append(line)
    return sections


def test_quick_run_prints_every_scenario_and_target(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out_json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout

    assert re.search(r"^python \d+\.\d+", out, re.MULTILINE)
    assert re.search(r"^wrapt \S+", out, re.MULTILINE)
    assert re.search(r"^resilient(:| )", out, re.MULTILINE)

    sections = _sections(out)
    assert list(sections) == SCENARIOS
    for key, lines in sections.items():
        names = [line.split()[0] for line in lines if line.strip()]
        for candidate in CANDIDATES:
            assert candidate in names, f"{key}: no row for {candidate}"
        # A candidate that is installed must be measured, not broken by its setup.
        assert not [line for line in lines if "failed" in line], "\n".join(lines)

    target_lines = re.findall(r"^(PASS|FAIL|SKIP)  ", out, re.MULTILINE)
    assert len(target_lines) == 9
    assert re.search(r"^targets met: \d+ of 9", out, re.MULTILINE)

    data = json.loads(out_json.read_text())
    assert list(data["scenarios"]) == SCENARIOS
    assert data["versions"]["wrapt"]
    for key in SCENARIOS:
        assert "undecorated" in data["scenarios"][key]["candidates"]
