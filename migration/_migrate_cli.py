"""The ``resilient migrate``  sub-command (placeholder until it lands)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``migrate`` sub-command to the ``resilient`` parser."""
    p = sub.add_parser("migrate", help="not implemented yet")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    print("resilient migrate: not implemented yet", file=sys.stderr)
    return 2
