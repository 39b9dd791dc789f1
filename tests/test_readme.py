"""The README's runtime examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def runtime_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- section: runtime -->")
    end = text.index("<!-- /section: runtime -->")
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)


def test_quick_start_example_runs_and_falls_back():
    """The quick start prints five fallback answers, then a rejection answered locally."""
    code = runtime_blocks()[0]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert (
        lines[:5] == ["{'sub': 'alice', 'validated': 'locally', 'because': 'ConnectionError'}"] * 5
    )
    assert lines[5] == "{'sub': 'alice', 'validated': 'locally', 'because': 'CircuitOpenError'}"
    assert "state=open" in lines[6]
    assert "closed -> open (5 consecutive failures" in out.stderr


def test_operator_example_runs():
    """The get_breaker / operator-controls example runs and ends closed."""
    code = runtime_blocks()[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "charged 10"
    assert "held open by an operator" in lines[2]
    assert lines[-1] == "closed 0"


def test_testing_example_passes_under_pytest(tmp_path):
    """The README's pytest example passes, using the installed plugin."""
    (tmp_path / "test_example.py").write_text(runtime_blocks()[2], encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout
