"""The README's "Many instances" example runs as written: two processes, one breaker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def fleet_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("<!-- section: redis -->") : text.index("<!-- /section: redis -->")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]


def test_two_processes_share_one_opening(redis_url, prefix):
    """Five failures in total open the breaker for both processes; one of them logs it."""
    code = fleet_example()
    assert 'RedisStore.from_url("redis://127.0.0.1:6379/0", prefix="readme")' in code
    code = code.replace("redis://127.0.0.1:6379/0", redis_url).replace('"readme"', repr(prefix))
    code = code.replace("time.sleep(1)", "time.sleep(0.2)")  # same story, five times faster
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    stdout = "".join(o for o, _ in outs).splitlines()
    logs = "".join(e for _, e in outs)
    failed = [line for line in stdout if ": failed: " in line]
    assert 5 <= len(failed) <= 6  # a call already on its way when it opens may add one
    assert logs.count("closed -> open (5 consecutive failures from 2 instances") == 1
    for name, (out, _) in zip("ab", outs, strict=True):
        assert out.splitlines()[-1].startswith(
            f"{name}: rejected: circuit breaker 'payments.charge'"
        )
