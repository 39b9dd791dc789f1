"""The ``resilient migrate`` sub-command: the codemod from mock breakers to resilient.

Exit status: 0 done (dry run or ``--write``), 1 when ``--check`` finds something
to change or a file could not be processed, 2 usage or configuration error (a
path that does not exist, a bad ``[tool.resilient]``, LibCST missing).

Unified diffs go to stdout (so ``resilient migrate > migration.patch`` works);
manual sites, failures and the summary go to stderr, and with ``--write`` one
``path: migrated`` line per file written.  LibCST is imported only when a file
is rewritten.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._migrate_run import RunReport

__all__ = ["register"]

_DESCRIPTION = """\
Rewrite mock, fake, dummy, stub, no-op and null circuit breakers to resilient:
constructions become get_breaker(name, ...), awaited .call( becomes .acall(,
`b.is_open = True/False` becomes b.trip()/b.reset(), annotations name
resilient.CircuitBreaker, and mock classes nothing references any more are
removed.  What cannot be proved safe is left byte-identical and listed as
`path:line: manual: reason`.  Dry run by default.
"""

_INSTALL_HINT = (
    "resilient migrate needs LibCST, which is not installed: pip install 'resilient[migrate]'\n"
)


def register(sub: Any) -> None:
    """Add the ``migrate`` sub-command to the ``resilient`` parser."""
    p = sub.add_parser(
        "migrate",
        help="rewrite mock breakers to resilient (dry run unless --write)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files and folders to migrate (default: the current folder)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="apply the changes to the files")
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when something would change (prints the diff, writes nothing)",
    )
    p.add_argument(
        "--include-tests",
        action="store_true",
        help="rewrite test code too (tests/, test_*.py, conftest.py, test-paths)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        default=0,
        metavar="N",
        help="worker processes for the rewrite (default: one, when many files may need it)",
    )
    p.add_argument(
        "--no-git",
        action="store_true",
        help="do not let `git grep` rule out files inside a git checkout (same result)",
    )
    p.add_argument(
        "--config",
        metavar="PYPROJECT",
        type=Path,
        help="read [tool.resilient] from this file instead of the nearest pyproject.toml",
    )
    p.set_defaults(handler=_run)


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 (automatic) or more")
    return n


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _libcst_installed() -> bool:
    """Whether the `migrate` extra is there, without importing it (~0.4 s, and often unused)."""
    try:
        return importlib.util.find_spec("libcst") is not None
    except (ImportError, ValueError):
        return False


def _run(args: argparse.Namespace) -> int:
    if not _libcst_installed():
        sys.stderr.write(_INSTALL_HINT)
        return 2
    from ._config import ConfigFileError, load_config, start_folder
    from ._migrate_run import MigrateOptions, run_migrate

    paths: list[str] = list(args.paths)
    try:
        config = load_config(args.config, start=start_folder(paths))
    except ConfigFileError as exc:
        sys.stderr.write(f"resilient migrate: error: {exc}\n")
        return 2
    options = MigrateOptions(
        paths=tuple(paths),
        config=config,
        write=args.write,
        include_tests=args.include_tests,
        jobs=args.jobs,
        use_git=not args.no_git,
    )
    try:
        report = run_migrate(options)
    except Exception as exc:  # an internal error must still say what happened
        sys.stderr.write(f"resilient migrate: internal error: {exc!r}\n")
        return 2
    if report.missing:
        for path in report.missing:
            sys.stderr.write(f"resilient migrate: error: {path}: no such file or folder\n")
        return 2
    out = sys.stdout
    err = sys.stderr
    for result in report.changed:
        if report.written:
            err.write(f"{result.path}: migrated\n")
        else:
            out.write(result.diff)
    out.flush()
    for site in report.manual:
        err.write(site.format() + "\n")
    for result in report.failed:
        err.write(f"{result.path}: error: {result.error}\n")
    err.write(_summary(report, check=args.check))
    if report.failed:
        return 1
    if args.check and report.changed:
        return 1
    return 0


_LABELS = {
    "get_breaker": "get_breaker()",
    "acall": "acall()",
    "trip": "trip()",
    "reset": "reset()",
    "property": "is_open()->is_open",
    "annotation": "annotations",
    "class removed": "classes removed",
    "__all__": "__all__ entries",
}


def _order(item: tuple[str, int]) -> int:
    keys = list(_LABELS)
    return keys.index(item[0]) if item[0] in keys else len(keys)


def _summary(report: RunReport, *, check: bool) -> str:
    changed = len(report.changed)
    verb = "changed" if report.written else "would change"
    totals = report.totals()
    parts = [f"{_LABELS.get(what, what)} {n}" for what, n in sorted(totals.items(), key=_order)]
    lines = [
        f"resilient migrate: {verb} {_plural(changed, 'file')}"
        + (f" ({', '.join(parts)})" if parts else "")
        + f"; {_plural(len(report.manual), 'manual site')}"
        + f"; {_plural(len(report.failed), 'file')} failed"
        + f"; {report.scanned} scanned, {report.skipped} skipped without parsing"
    ]
    if changed and not report.written:
        lines.append(
            "run `resilient migrate --write` to apply"
            if not check
            else "`resilient migrate --write` would apply these changes"
        )
    return "\n".join(lines) + "\n"
