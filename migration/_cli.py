"""The ``resilient`` console script.

The command lives in the migration package because migration may import the
runtime and never the reverse: every sub-command registers itself here, and
the runtime's own commands (``status``, ``trip``, ``reset``, ``demo``) are
registered by :mod:`resilient._cli` without the runtime knowing about this
module.  Heavy imports (LibCST, redis, httpx) happen inside the handlers only.
"""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered."""
    from resilient import _cli as runtime_cli

    from . import _check_cli, _migrate_cli

    parser = argparse.ArgumentParser(
        prog="resilient",
        description="Circuit breakers for Python, and the tools that keep mock breakers out.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _check_cli.register(sub)
    _migrate_cli.register(sub)
    runtime_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``resilient`` command; returns the process exit status."""
    parser = build_parser()
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
    status = main(argv)
    if argv and argv[0] in _FAST_EXIT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # the reader went away (``resilient migrate | head``)
            pass
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    entry()
