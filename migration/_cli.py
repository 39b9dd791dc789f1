"""The ``resilient`` console script.

The command lives in the migration package because migration may import the
runtime and never the reverse: every sub-command registers itself here, and
the runtime's own commands (``status``, ``trip``, ``reset``, ``demo``) are
registered by :mod:`resilient._cli` without the runtime knowing about this
module.  Heavy imports (LibCST, redis, httpx) happen inside the handlers only.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import NoReturn

# Commands whose process may end without tearing the interpreter down: they hold
# large caches (file contents, syntax trees) that Python would otherwise free one
# object at a time on the way out (a quarter of a second after a ``migrate`` run),
# and they leave nothing behind that needs an exit handler (their worker
# processes are joined before the command returns).
_FAST_EXIT = frozenset({"check", "migrate"})


def _terminal_width() -> int:
    """``shutil.get_terminal_size().columns``, without importing ``shutil``.

    argparse imports ``shutil`` (and with it ``bz2``, ``lzma``...) for this when a
    formatter is not told its width: milliseconds of the pre-commit hook's start.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    if stdout is None:
        return 80
    try:
        columns = os.get_terminal_size(stdout.fileno()).columns
    except (AttributeError, ValueError, OSError):  # closed, detached, not a terminal
        return 80
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, given the terminal's width as argparse would find it."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_width() - 2  # (argparse leaves two columns free)
        super().__init__(prog, indent_increment, max_help_position, width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`HelpFormatter` that keeps the description's line breaks."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered.

    ``only`` (``"check"`` or ``"migrate"``) registers that sub-command alone: the
    same parser for its arguments, its help and its errors, without importing
    the others (the pre-commit hook starts faster).
    """
    parser = argparse.ArgumentParser(
        prog="resilient",
        description="Circuit breakers for Python, and the tools that keep mock breakers out.",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if only in (None, "check"):
        from . import _check_cli

        _check_cli.register(sub)
    if only in (None, "migrate"):
        from . import _migrate_cli

        _migrate_cli.register(sub)
    if only is None:
        from resilient import _cli as runtime_cli

        runtime_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``resilient`` command; returns the process exit status."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv[0] if argv and argv[0] in _FAST_EXIT else None)
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


def entry() -> NoReturn:
    """The ``resilient`` console script: :func:`main` on ``sys.argv``, then exit."""
    argv = sys.argv[1:]
    fast = bool(argv) and argv[0] in _FAST_EXIT
    release: Callable[[], None] | None = None
    if fast:
        # Their runs build syntax trees (acyclic) and disable the cyclic collector
        # themselves; with it off from here, the imports before them are quicker too.
        gc.disable()
        # git starts searching now, while the command is imported and configured
        from ._check_git import release_prefetched

        if argv[0] == "check":
            from ._check_git import prefetch
        else:
            from ._migrate_git import prefetch
        prefetch(argv[1:])
        release = release_prefetched
    try:
        status = main(argv)
    finally:
        if release is not None:  # (a usage error, say, before the run claimed them)
            release()
    if fast:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # the reader went away (``resilient migrate | head``)
            pass
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    entry()
