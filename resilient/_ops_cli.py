"""``resilient status``, ``resilient trip NAME``, ``resilient reset NAME`` (placeholder)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the operator sub-commands to the ``resilient`` parser."""
    for name in ("status", "trip", "reset"):
        p = sub.add_parser(name, help="not implemented yet")
        p.set_defaults(handler=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    print(f"resilient {args.command}: not implemented yet", file=sys.stderr)
    return 2
