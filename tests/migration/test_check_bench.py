"""benchmarks/bench_tooling.py and gen_tree.py run end to end on a small tree (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_generated_tree_has_the_promised_mix(tmp_path: Path) -> None:
    """gen_tree writes the requested files, 1% with mocks, and check finds every mock file."""
    tree = tmp_path / "tree"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gen_tree.py"), str(tree), "--files", "300"],
        check=True,
        capture_output=True,
    )
    manifest = json.loads((tree / "MANIFEST.json").read_text())
    assert len(list(tree.rglob("*.py"))) == 300
    assert len(manifest["mock_files"]) == 3
    proc = subprocess.run(
        [sys.executable, "-m", "resilient.migration", "check", "--format", "json", str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    flagged = {Path(d["filename"]).relative_to(tree).as_posix() for d in json.loads(proc.stdout)}
    assert flagged == set(manifest["mock_files"])


@pytest.mark.slow
def test_tooling_benchmark_runs_and_reports_ratios(tmp_path: Path) -> None:
    """The benchmark prints the three timings and both ratios (migrate may be unavailable)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_tooling.py"),
            "--files",
            "200",
            "--rounds",
            "1",
            "--tree",
            str(tmp_path / "tree"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "git grep -l MockCircuitBreaker" in proc.stdout
    assert "check / git grep:" in proc.stdout
    assert "migrate / check:" in proc.stdout
    assert "resilient check  " in proc.stdout
