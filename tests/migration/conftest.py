"""Helpers for the migration tests: a project folder and the real ``resilient check`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class CheckRun:
    """The outcome of one ``resilient check`` process."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """Finding lines only (``path:line:col: CODE ...``)."""
        return [
            ln for ln in self.out.splitlines() if ": RES" in ln and not ln.startswith("  help:")
        ]

    def codes(self) -> list[str]:
        """The code of every finding, in output order."""
        return [ln.split(": ", 2)[1].split()[0] for ln in self.lines]

    def json(self) -> list[dict[str, Any]]:
        """The parsed ``--format json`` output."""
        data: list[dict[str, Any]] = json.loads(self.out)
        return data


class Project:
    """A throwaway project folder (a git checkout root) to run the guard in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / ".git").mkdir(parents=True)  # marks the checkout root, like a clone

    def write(self, rel: str, text: str | bytes, *, dedent: bool = True) -> Path:
        """Create ``rel`` with ``text`` (dedented) and return its path."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text) if dedent else text, encoding="utf-8")
        return path

    def check(self, *args: str, cwd: Path | None = None) -> CheckRun:
        """Run ``python -m resilient.migration check ARGS`` as a user would."""
        env = dict(os.environ)
        env.pop("COLUMNS", None)
        proc = subprocess.run(
            [sys.executable, "-m", "resilient.migration", "check", *args],
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        return CheckRun(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project folder."""
    return Project(tmp_path / "proj")


@pytest.fixture
def check_snippet(project: Project) -> Callable[..., CheckRun]:
    """Write one production module and check it."""

    def run(source: str, *args: str, rel: str = "app/mod.py") -> CheckRun:
        project.write(rel, source)
        return project.check(*args)

    return run
