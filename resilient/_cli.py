"""Runtime sub-commands of the ``resilient`` console script.

Registered by the console script (``resilient.migration._cli``); nothing here is
imported by ``import resilient``.  Each group lives in its own module:
``status``/``trip``/``reset`` in :mod:`resilient._ops_cli`, ``demo`` in
:mod:`resilient.demo._cli`.  Registration imports no optional dependency.
"""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add the runtime sub-commands to the ``resilient`` parser."""
    from . import _ops_cli
    from .demo import _cli as demo_cli

    _ops_cli.register(sub)
    demo_cli.register(sub)
