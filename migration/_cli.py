"""The ``resilient`` console script.

The command lives in the migration package because migration may import the
runtime and never the reverse: every sub-command registers itself here, and
the runtime's own commands (``status``, ``trip``, ``reset``, ``demo``) are
registered by :mod:`resilient._cli` without the runtime knowing about this
module.  Heavy imports (LibCST, redis, httpx) happen inside the handlers only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
