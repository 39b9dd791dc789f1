"""``resilient demo`` (placeholder)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``demo`` sub-command to the ``resilient`` parser."""
    p = sub.add_parser("demo", help="not implemented yet")
    p.set_defaults(handler=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    print("resilient demo: not implemented yet", file=sys.stderr)
    return 2
