"""Runtime sub-commands of the ``resilient`` console script: ``status``, ``trip``, ``reset``, ``demo``.

Registered by the console script (see ``resilient.migration._cli``); nothing
here is imported by ``import resilient``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the runtime sub-commands to the ``resilient`` parser."""
    for name in ("status", "trip", "reset", "demo"):
        p = sub.add_parser(name, help="not implemented yet")
        p.set_defaults(handler=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    print(f"resilient {args.command}: not implemented yet", file=sys.stderr)
    return 2
