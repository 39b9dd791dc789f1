"""Helpers for the ``resilient migrate`` tests: throwaway trees, in-process and CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from resilient.migration._config import load_config
from resilient.migration._migrate_run import MigrateOptions, RunReport, run_migrate

__all__ = [
    "CliRun",
    "Migration",
    "assert_migrates",
    "migrate",
    "read_tree",
    "run_cli",
    "write_tree",
]


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Create each file under ``root``; text is dedented and written as UTF-8 (LF)."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(textwrap.dedent(content).encode("utf-8"))


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by POSIX relative path."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


@contextmanager
def _chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@dataclass
class Migration:
    """One in-process run: the report and the tree afterwards."""

    report: RunReport
    files: dict[str, bytes]

    @property
    def manual(self) -> list[str]:
        """``path:line: manual: reason`` lines, as the CLI prints them."""
        return [site.format() for site in self.report.manual]

    def text(self, rel: str) -> str:
        """A file's content after the run."""
        return self.files[rel].decode("utf-8")


def migrate(
    root: Path,
    *paths: str,
    write: bool = True,
    include_tests: bool = False,
    jobs: int = 1,
) -> Migration:
    """Run the codemod in this process with ``root`` as the current folder."""
    with _chdir(root):
        options = MigrateOptions(
            paths=paths or (".",),
            config=load_config(start=root),
            write=write,
            include_tests=include_tests,
            jobs=jobs,
        )
        report = run_migrate(options)
    return Migration(report, read_tree(root))


def assert_migrates(
    root: Path,
    before: Mapping[str, str],
    after: Mapping[str, str],
    *,
    manual: tuple[str, ...] = (),
    include_tests: bool = False,
) -> Migration:
    """Write ``before``, migrate it, and compare with ``after``; then check idempotence.

    ``after`` lists the files that change (dedented); every other file must stay
    byte-identical.  ``manual`` lists ``"path:line: fragment"`` entries: each must
    match one reported manual site (same place, reason containing the fragment),
    and there must be no other manual site.  Finally the migrated tree is
    migrated again (the after-to-after case) and nothing may change.
    """
    write_tree(root, before)
    original = read_tree(root)
    result = migrate(root, include_tests=include_tests)
    failures = [f"{r.path}: {r.error}" for r in result.report.failed]
    assert not failures, failures
    expected = dict(original)
    for rel, text in after.items():
        expected[rel] = textwrap.dedent(text).encode("utf-8")
    for rel in sorted(set(expected) | set(result.files)):
        assert result.files.get(rel, b"").decode() == expected.get(rel, b"").decode(), rel
    _assert_manual(result.manual, manual)
    again = migrate(root, include_tests=include_tests)
    assert again.files == result.files, "a second run changed the tree"
    assert not again.report.changed
    assert not again.report.failed
    return result


def _assert_manual(actual: list[str], expected: tuple[str, ...]) -> None:
    unmatched = list(actual)
    for entry in expected:
        place, _, fragment = entry.partition(": ")
        prefix = f"{place}: manual: "
        hits = [a for a in unmatched if a.startswith(prefix) and fragment in a]
        assert hits, f"no manual site {entry!r} in:\n" + "\n".join(actual)
        unmatched.remove(hits[0])
    assert not unmatched, "unexpected manual sites:\n" + "\n".join(unmatched)


@dataclass
class CliRun:
    """The outcome of one ``resilient migrate`` process."""

    code: int
    out: str
    err: str

    @property
    def manual(self) -> list[str]:
        """The manual-site lines of stderr."""
        return [ln for ln in self.err.splitlines() if ": manual: " in ln]


def run_cli(root: Path, *args: str, env: Mapping[str, str] | None = None) -> CliRun:
    """Run ``python -m resilient.migration migrate ARGS`` in ``root``, as a user would."""
    full_env = dict(os.environ)
    full_env.pop("COLUMNS", None)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "resilient.migration", "migrate", *args],
        cwd=root,
        capture_output=True,
        env=full_env,
        timeout=300,
        check=False,
    )
    return CliRun(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
