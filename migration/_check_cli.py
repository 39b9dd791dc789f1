"""The ``resilient check`` sub-command: the guard for pre-commit and CI.

Exit status: 0 clean (warnings alone do not fail unless ``--strict``), 1 findings,
2 usage or configuration error (a path that does not exist, a bad
``[tool.resilient]``).  Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ._check import CheckOptions, check_files, default_jobs
from ._check_git import GitScan, folder_prefix, git_pattern, select
from ._config import Config, ConfigFileError, load_config
from ._diagnostics import RULES, Finding, format_github, format_json, format_text
from ._files import discover
from ._names import MockNames

__all__ = ["register", "run_check"]

# With git doing the prefilter, only candidates are read: fork for fewer files.
GIT_PARALLEL_MIN_FILES = 48

_DESCRIPTION = """\
Find mock, fake, dummy, stub, no-op and null circuit breakers in production code,
unittest.mock objects standing in for breakers, and hand-rolled breakers that
never recover.  Test code is skipped unless --include-tests.

rules:
""" + "\n".join(f"  {r.code}  {r.name}" for r in RULES.values())


def register(sub: Any) -> None:
    """Add the ``check`` sub-command to the ``resilient`` parser."""
    p = sub.add_parser(
        "check",
        help="find mock breakers in production code (for pre-commit and CI)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files and folders to check (default: the current folder)",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="output format (default: text)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings (RES004, RES006) as errors",
    )
    p.add_argument(
        "--include-tests",
        action="store_true",
        help="check test code too (tests/, test_*.py, conftest.py, test-paths)",
    )
    p.add_argument(
        "--config",
        metavar="PYPROJECT",
        type=Path,
        help="read [tool.resilient] from this file instead of the nearest pyproject.toml",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        metavar="N",
        default=0,
        help="processes to check with (default: one per CPU; large trees only)",
    )
    p.add_argument(
        "--no-git",
        action="store_true",
        help="do not let `git grep` prefilter files inside a git checkout (same findings)",
    )
    p.set_defaults(handler=_run)


def _start_folder(paths: list[str]) -> Path:
    """Where to look for pyproject.toml: the common folder of the paths, else the cwd."""
    if not paths:
        return Path.cwd()
    try:
        common = os.path.commonpath([os.path.abspath(p) for p in paths])
    except ValueError:  # different drives
        return Path.cwd()
    return Path(common)


def run_check(
    paths: list[str],
    *,
    config: Config,
    strict: bool = False,
    include_tests: bool = False,
    jobs: int = 1,
    use_git: bool = True,
) -> tuple[list[Finding], list[str]]:
    """Check ``paths``; returns the findings and the paths that do not exist.

    ``use_git`` lets ``git grep`` prefilter folders inside a git checkout; the
    findings are the same either way (see :mod:`._check_git`).
    """
    options = CheckOptions(names=MockNames(extra=config.mock_names), strict=strict)
    # Inside a git checkout, git grep finds the candidate files while we walk.
    scans: list[tuple[str, GitScan]] = []
    if use_git:
        pattern = git_pattern(options.names)
        for arg in paths or ["."]:
            if os.path.isdir(arg) and not os.path.islink(arg):
                scan = GitScan.start(arg, pattern)
                if scan is not None:
                    scans.append((folder_prefix(arg), scan))
    try:
        found = discover(
            paths, root=config.root, test_paths=config.test_paths, exclude=config.exclude
        )
    except BaseException:
        for _, scan in scans:
            scan.close()
        raise
    findings: list[Finding] = []
    for path, reason in found.unreadable:
        if not path.endswith((".py", ".pyi")):
            rule = RULES["RES000"]
            findings.append(
                Finding(path, 1, 1, "RES000", f"cannot read folder: {reason}", help=rule.help)
            )
    selected = [s.path for s in found.files if include_tests or not s.is_test]
    min_parallel = None
    if scans:
        explicit = {s.path for s in found.files if s.explicit}
        selected = select(selected, scans, skip=explicit | found.symlinks)
        min_parallel = GIT_PARALLEL_MIN_FILES
    findings.extend(check_files(selected, options, jobs=jobs, min_parallel=min_parallel))
    findings.sort(key=Finding.sort_key)
    return findings, found.missing


def _run(args: argparse.Namespace) -> int:
    paths: list[str] = list(args.paths)
    try:
        config = load_config(args.config, start=_start_folder(paths))
    except ConfigFileError as exc:
        sys.stderr.write(f"resilient check: error: {exc}\n")
        return 2
    try:
        findings, missing = run_check(
            paths,
            config=config,
            strict=args.strict,
            include_tests=args.include_tests,
            jobs=args.jobs if args.jobs > 0 else default_jobs(),
            use_git=not args.no_git,
        )
    except Exception as exc:  # an internal error must still say what happened
        sys.stderr.write(f"resilient check: internal error: {exc!r}\n")
        return 2
    if missing:
        for path in missing:
            sys.stderr.write(f"resilient check: error: {path}: no such file or folder\n")
        return 2
    if args.format == "json":
        sys.stdout.write(format_json(findings))
    elif args.format == "github":
        sys.stdout.write(format_github(findings))
    else:
        sys.stdout.write(format_text(findings))
    return 1 if any(f.severity == "error" for f in findings) else 0
