"""The README's demo section matches the demo: its flags, its decorator, its output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- section: demo -->")
    end = text.index("<!-- /section: demo -->")
    return text[start:end]


def test_section_shows_a_passing_run():
    """The output block starts with the banner and ends with a PASS and exit 0."""
    blocks = re.findall(r"```text\n(.*?)```", _section(), flags=re.DOTALL)
    assert blocks, "no output block in the demo section"
    run = blocks[0].strip().splitlines()
    assert run[0] == "resilient demo: the auth outage, replayed with a real circuit breaker"
    assert run[-1].strip().startswith("result: PASS")
    assert run[-1].strip().endswith("(exit 0)")
    body = "\n".join(run)
    assert re.search(r"valid users refused +0  must be 0", body)
    assert re.search(r"forged or expired tokens accepted +0  must be 0", body)
    for phase in range(1, 7):
        assert f"[{phase}/6]" in body


def test_every_flag_in_the_section_exists():
    """Each --flag the section mentions is in `resilient demo --help`."""
    flags = set(re.findall(r"`(--[a-z-]+)", _section()))
    assert flags >= {"--speed", "--json", "--redis", "--broken-fallback"}
    proc = subprocess.run(
        [sys.executable, "-m", "resilient.migration", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for flag in flags:
        assert flag in proc.stdout, flag


def test_decorator_shown_is_the_one_the_demo_uses():
    """The snippet's breaker settings are the real client's settings."""
    pytest.importorskip("httpx", reason="the demo extra (httpx) is not installed")
    pytest.importorskip("jwt", reason="the demo extra (PyJWT) is not installed")
    snippet = re.findall(r"```python\n(.*?)```", _section(), flags=re.DOTALL)[0]
    shown = dict(re.findall(r"(\w+_threshold)=(\d+)", snippet))
    assert '"auth.validate_token"' in snippet
    assert 'fallback="_validate_locally"' in snippet
    assert "ignore=(InvalidToken,)" in snippet
    code = (
        "from resilient.demo._client import AuthClient\n"
        "from resilient.demo._tokens import InvalidToken\n"
        "b = AuthClient.validate_token.breaker\n"
        "assert b.name == 'auth.validate_token', b.name\n"
        "assert b.config.ignore == (InvalidToken,), b.config.ignore\n"
        "print(b.config.failure_threshold, b.config.success_threshold)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    failure, success = proc.stdout.split()
    assert shown == {"failure_threshold": failure, "success_threshold": success}
