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
from collections.abc import Sequence
from typing import NoReturn

# Commands whose process may end without tearing the interpreter down: they hold
# large caches (file contents, syntax trees) that Python would otherwise free one
# object at a time on the way out (a quarter of a second after a ``migrate`` run),
# and they leave nothing behind that needs an exit handler (their worker
# processes are joined before the command returns).
_FAST_EXIT = frozenset({"check", "migrate"})


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered.

    ``only`` (``"check"`` or ``"migrate"``) registers that sub-command alone: the
    same parser for its arguments, its help and its errors, without importing
    the others (the pre-commit hook starts faster).
    """
    parser = argparse.ArgumentParser(
        prog="resilient",
        description="Circuit breakers for Python, and the tools that keep mock breakers out.",
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
    if fast:
        # Their runs build syntax trees (acyclic) and disable the cyclic collector
        # themselves; with it off from here, the imports before them are quicker too.
        gc.disable()
    status = main(argv)
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
