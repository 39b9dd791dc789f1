"""Type checkers see through the decorator: tests/typing/api.py checks clean.

The file is never run.  mypy (the project's strict config, ``warn_unused_ignores``)
and pyright (with ``reportUnnecessaryTypeIgnoreComment``) must both accept it:
each ``assert_type`` holds and each ``# type: ignore[code]`` marks an error
that is still reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "tests" / "typing" / "api.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=280, check=False)


def test_mypy_accepts_the_public_api(tmp_path: Path) -> None:
    """mypy --strict infers the original signatures and reports every pinned error."""
    pytest.importorskip("mypy")
    result = _run(
        [
            sys.executable,
            "-m",
            "mypy",
            # Errors in imported modules are the repository-wide mypy run's business;
            # this test is about what a user's code sees.
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(API.relative_to(ROOT)),
        ],
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_pyright_accepts_the_public_api(tmp_path: Path) -> None:
    """pyright infers the original signatures and reports every pinned error."""
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which(
        "pyright"
    )
    if pyright is None:
        pytest.skip("pyright is not installed")
    probe = _run([pyright, "--version"], cwd=tmp_path)
    if probe.returncode != 0:  # e.g. no node, or it would need to download one
        pytest.skip(f"pyright cannot run here: {probe.stdout}{probe.stderr}")
    config = tmp_path / "pyrightconfig.json"
    config.write_text(
        json.dumps(
            {
                "pythonVersion": "3.10",
                "extraPaths": [str(ROOT)],
                "reportUnnecessaryTypeIgnoreComment": "error",
            }
        )
    )
    result = _run(
        [pyright, "--project", str(config), "--pythonpath", sys.executable, str(API)],
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors" in result.stdout
