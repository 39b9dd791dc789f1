"""The ``resilient check`` sub-command: the guard for pre-commit and CI.

Exit status: 0 clean (warnings alone do not fail unless ``--strict``), 1 findings,
2 usage or configuration error (a path that does not exist, a bad
``[tool.resilient]``).  Standard library only.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections import deque, namedtuple
from collections.abc import Sequence

from ._check_git import (
    GitScan,
    cpus,
    folder_prefix,
    git_pattern,
    grep_threads,
    pump,
    relative_in,
    release_prefetched,
)
from ._cli import RawDescriptionHelpFormatter
from ._config import Config, ConfigFileError, load_config, start_folder
from ._diagnostics import RULES, Finding, format_github, format_json, format_text
from ._names import MockNames

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, NamedTuple

    from ._check import CheckOptions

__all__ = ["register", "run_check"]

# When git has finished and this many candidates are still waiting, fork workers.
GIT_PARALLEL_MIN_FILES = 48
# With this many files for git to rule on, forked helpers share the candidates
# from the start (git reports some 3% of files of a typical tree), where there
# are CPUs to spare besides git's: else one process checks them as they come,
# and forks only for what is left when git is done.
GIT_HELPERS_MIN_FILES = 1000
MAX_HELPERS = 7

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
        formatter_class=RawDescriptionHelpFormatter,
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
        type=_path,
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


def _path(text: str) -> Path:
    """``--config``: a :class:`~pathlib.Path` (``pathlib`` is imported only when it is given)."""
    from pathlib import Path

    return Path(text)


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
    names = MockNames(extra=config.mock_names)
    # Inside a git checkout, git grep looks for candidate files from the start,
    # while this process imports the checker and walks the folders.
    scans: list[tuple[str, GitScan]] = []
    if use_git:
        pattern = git_pattern(names)
        for arg in paths or ["."]:
            if pattern and os.path.isdir(arg) and not os.path.islink(arg):
                scan = GitScan.start(arg, pattern, skip_tests=not include_tests)
                if scan is not None:
                    scans.append((folder_prefix(arg), scan))
    gc_was_enabled = gc.isenabled()
    # Syntax trees are acyclic and freed as soon as a file is done: the cyclic
    # collector would only re-scan them while they are built.
    gc.disable()
    try:
        return _run_check(paths, scans, config, CheckSettings(names, strict, include_tests, jobs))
    finally:
        for _, scan in scans:
            scan.close()
        release_prefetched()
        if gc_was_enabled:
            gc.enable()


if TYPE_CHECKING:

    class CheckSettings(NamedTuple):
        """What :func:`run_check` was asked for, handed to the part that runs after git starts."""

        names: MockNames
        strict: bool
        include_tests: bool
        jobs: int

else:  # the same, without importing ``typing``
    CheckSettings = namedtuple("CheckSettings", ["names", "strict", "include_tests", "jobs"])


def _run_check(
    paths: list[str], scans: list[tuple[str, GitScan]], config: Config, settings: CheckSettings
) -> tuple[list[Finding], list[str]]:
    from ._check import CheckOptions, check_files
    from ._files import find_files

    options = CheckOptions(names=settings.names, strict=settings.strict)
    include_tests, jobs = settings.include_tests, settings.jobs
    found = find_files(
        paths, root=config.root_dir, test_paths=config.test_paths, exclude=config.exclude
    )
    findings: list[Finding] = []
    for path, reason in found.unreadable:
        if not path.endswith((".py", ".pyi")):
            rule = RULES["RES000"]
            findings.append(
                Finding(path, 1, 1, "RES000", f"cannot read folder: {reason}", help=rule.help)
            )
    selected = [path for path, is_test, _ in found.rows if include_tests or not is_test]
    if scans:
        explicit = {path for path, _, named in found.rows if named}
        findings.extend(
            _check_with_git(selected, scans, options, skip=explicit | found.symlinks, jobs=jobs)
        )
    else:
        findings.extend(check_files(selected, options, jobs=jobs))
    findings.sort(key=Finding.sort_key)
    return findings, found.missing


def _check_with_git(
    paths: Sequence[str],
    scans: list[tuple[str, GitScan]],
    options: CheckOptions,
    *,
    skip: set[str],
    jobs: int,
) -> list[Finding]:
    """Check ``paths``, skipping those a git scan searched and did not list.

    A path is looked at by the first scan whose folder holds it and that
    searched it; candidates are checked as git reports them, so reading and
    parsing overlap git's search, shared with forked helpers on a large tree.
    When a scan fails, every path it was looking at is checked, as without git.
    """
    from ._check import Helpers, check_file

    searched = [scan.searched() for _, scan in scans]
    rest = set(paths) - skip  # not yet given to a scan
    waiting: list[dict[str, str]] = []  # per scan: relative path -> path
    for (prefix, _), seen in zip(scans, searched, strict=True):
        mine: dict[str, str] = {}
        if seen is not None and rest:
            if not prefix and os.sep == "/":  # the common case, in C
                mine = {p: p for p in rest & seen}
            else:
                for path in rest:
                    relative = relative_in(path, prefix)
                    if relative is not None and relative in seen:
                        mine[relative] = path
            rest.difference_update(mine.values())
        waiting.append(mine)
    # no scan covers these: the Python prefilter decides, as without git
    local = [p for p in paths if p in rest or p in skip]
    live: list[GitScan] = []
    index: dict[int, int] = {}
    for i, (_, scan) in enumerate(scans):
        if waiting[i]:
            live.append(scan)
            index[id(scan)] = i
        else:
            scan.close()  # nothing of ours it could rule out
    size = len(local) + sum(len(w) for w in waiting)
    # git has its CPUs (see grep_threads); helpers take the others, if any.
    count = min(jobs, cpus() - grep_threads(), MAX_HELPERS + 1) - 1
    if not live or count < 1 or size < GIT_HELPERS_MIN_FILES or not hasattr(os, "fork"):
        return _check_alone(local, live, waiting, index, options, jobs=jobs)
    helpers = Helpers(options, count)
    try:
        queue: deque[str] = deque()
        turn = 0
        share = len(helpers) + 1

        def hand_out(path: str) -> None:
            nonlocal turn
            if turn:
                helpers.send(path)
            else:
                queue.append(path)
            turn = (turn + 1) % share

        for path in local:
            hand_out(path)
        findings: list[Finding] = []
        while live:
            for scan, rel in pump(live, block=not queue):
                mine = waiting[index[id(scan)]]
                if rel in mine:
                    hand_out(mine.pop(rel))
            for scan in [s for s in live if s.done]:
                live.remove(scan)
                if not scan.ok:  # check all it was looking at, as without git
                    for path in waiting[index[id(scan)]].values():
                        hand_out(path)
            if queue and live:
                findings.extend(check_file(queue.popleft(), options))
        findings.extend(f for p in queue for f in check_file(p, options))
        findings.extend(helpers.collect())
    finally:
        helpers.close()
    return findings


def _check_alone(
    local: list[str],
    live: list[GitScan],
    waiting: list[dict[str, str]],
    index: dict[int, int],
    options: CheckOptions,
    *,
    jobs: int,
) -> list[Finding]:
    """:func:`_check_with_git` in this process (forking only for a backlog at the end)."""
    from ._check import check_file, check_files

    # Files git does not cover first (forking only for very many, as without
    # git): git keeps searching meanwhile.
    findings = check_files(local, options, jobs=jobs)
    queue: deque[str] = deque()
    while live:
        for scan, rel in pump(live, block=not queue):
            mine = waiting[index[id(scan)]]
            if rel in mine:
                queue.append(mine.pop(rel))
        for scan in [s for s in live if s.done]:
            live.remove(scan)
            if not scan.ok:  # check all it was looking at, as without git
                queue.extend(waiting[index[id(scan)]].values())
        if queue and live:
            findings.extend(check_file(queue.popleft(), options))
    # git is done: what is left may be worth a second process.
    findings.extend(
        check_files(list(queue), options, jobs=jobs, min_parallel=GIT_PARALLEL_MIN_FILES)
    )
    return findings


def _run(args: argparse.Namespace) -> int:
    paths: list[str] = list(args.paths)
    try:
        config = load_config(args.config, start=start_folder(paths))
    except ConfigFileError as exc:
        sys.stderr.write(f"resilient check: error: {exc}\n")
        return 2
    try:
        findings, missing = run_check(
            paths,
            config=config,
            strict=args.strict,
            include_tests=args.include_tests,
            jobs=args.jobs if args.jobs > 0 else _default_jobs(),
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


def _default_jobs() -> int:
    from ._check import default_jobs

    return default_jobs()
