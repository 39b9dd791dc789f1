"""``resilient demo``: the auth outage that motivated the library, replayed and survived.

Registration imports nothing optional; httpx and PyJWT (the ``demo`` extra) are
imported only when the command runs, and their absence gives the install command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

DESCRIPTION = """\
Start a real HTTP auth service on 127.0.0.1 and an auth client whose remote token
validation is protected by @circuit_breaker("auth.validate_token",
fallback="_validate_locally", ignore=(InvalidToken,)). Users with valid, forged,
expired, unsigned and wrong-audience tokens keep logging in while the service is
refused, answers 503, answers too slowly, restarts without its secret, and comes back.
One line per request, then a summary. Exit status: 0 when no valid user was refused,
no bad token was accepted and the breaker recovered; 1 when a check failed; 2 when
the demo could not run.
"""


def register(sub: Any) -> None:
    """Add the ``demo`` sub-command to the ``resilient`` parser."""
    p = sub.add_parser(
        "demo",
        help="replay the auth outage against a real breaker (extra: demo)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="FACTOR",
        help="time scale: 1 runs in a few seconds (recovery_timeout 500 ms, call_timeout "
        "200 ms), 0.1 is ten times slower and easier to watch, 2 twice as fast "
        "(0.02 to 10; default: 1)",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="PATH",
        help="write the result as JSON: to PATH (the live lines still go to standard "
        "output), or, without PATH, to standard output instead of the live lines",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        help="run two client processes that share the breaker through Redis "
        "(resilient.stores.RedisStore; extra: redis), e.g. redis://127.0.0.1:6379/0",
    )
    p.add_argument(
        "--broken-fallback",
        action="store_true",
        help="FOR TESTING: use a fallback that accepts any token, to show the demo "
        "catches it (it then exits 1 with forged tokens accepted)",
    )
    p.set_defaults(handler=_handle)


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.02 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range: use 0.02 to 10")
    return value


def _missing(*modules: str) -> list[str]:
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _handle(args: argparse.Namespace) -> int:
    missing = _missing("httpx", "jwt")
    if missing:
        print(
            f"resilient demo needs httpx and PyJWT (missing: {', '.join(missing)}).\n"
            "Install the demo extra: pip install 'resilient[demo]'",
            file=sys.stderr,
        )
        return 2
    if args.redis is not None and _missing("redis"):
        print(
            "resilient demo --redis needs redis-py.\n"
            "Install the redis extra: pip install 'resilient[redis]'",
            file=sys.stderr,
        )
        return 2
    from ._run import run_demo  # needs the extras checked above

    return run_demo(
        speed=args.speed,
        json_target=args.json,
        redis_url=args.redis,
        broken_fallback=args.broken_fallback,
    )
