"""``resilient status``, ``resilient trip NAME``, ``resilient reset NAME``: act on a fleet.

These commands talk to the Redis that a fleet's :class:`resilient.stores.RedisStore`
shares (``--redis URL`` or ``$RESILIENT_REDIS_URL``, and the same ``--prefix``).
Registration imports nothing optional; redis-py is imported when a command runs.

Exit status: 0 done; 2 usage error, no or bad URL, Redis unreachable or answering
with an error, or redis-py missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stores._redis import RedisStore

__all__ = ["register"]

ENV_URL = "RESILIENT_REDIS_URL"

_EPILOG = f"""\
The Redis URL comes from --redis or ${ENV_URL}; --prefix must match the prefix
the services give RedisStore (default: resilient).  Every instance follows a trip
or a reset within its sync interval (RedisStore(sync_interval=...), 0.5 s by default).
Exit status: 0 done, 2 usage error or Redis unreachable."""


def register(sub: Any) -> None:
    """Add the operator sub-commands to the ``resilient`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--redis",
        metavar="URL",
        help=f"the fleet's Redis, e.g. redis://127.0.0.1:6379/0 (default: ${ENV_URL})",
    )
    common.add_argument(
        "--prefix",
        default="resilient",
        help="the key prefix the services use (default: resilient)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long to wait for Redis (default: 2)",
    )

    p = sub.add_parser(
        "status",
        parents=[common],
        help="list the breakers shared through Redis: state, failures, retry time",
        description="List every breaker shared through Redis under the prefix, with its "
        "fleet-wide state, consecutive failures, next trial time and reason.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="output format (default: text)",
    )
    p.set_defaults(handler=_status)

    p = sub.add_parser(
        "trip",
        parents=[common],
        help="open a breaker for the whole fleet",
        description="Open breaker NAME for every instance: calls are rejected (or answered "
        "by their fallback) until its recovery timeout passes and trial calls succeed; "
        "with --hold, until `resilient reset NAME`.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the breaker's name, e.g. auth.validate_token")
    p.add_argument(
        "--hold",
        action="store_true",
        help="keep it open (FORCED_OPEN, no trial calls) until `resilient reset NAME`",
    )
    p.add_argument("--reason", help="words for the services' logs and rejection messages")
    p.set_defaults(handler=_trip)

    p = sub.add_parser(
        "reset",
        parents=[common],
        help="close a breaker for the whole fleet and clear its counters",
        description="Close breaker NAME for every instance and clear its failure counts; "
        "each instance's own breaker closes too.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the breaker's name, e.g. auth.validate_token")
    p.set_defaults(handler=_reset)


class _Failed(Exception):
    """A message for stderr and exit status 2."""


def _connect(args: argparse.Namespace) -> RedisStore:
    url = args.redis or os.environ.get(ENV_URL)
    if not url:
        raise _Failed(f"no Redis URL: pass --redis URL or set {ENV_URL}")
    if not args.timeout > 0:
        raise _Failed(f"--timeout must be a positive number of seconds, got {args.timeout!r}")
    from ._errors import ConfigError

    try:
        from .stores._redis import RedisStore

        with warnings.catch_warnings():  # a long timeout is right for an operator
            warnings.simplefilter("ignore")
            store = RedisStore.from_url(url, prefix=args.prefix, timeout=args.timeout)
    except ImportError as exc:
        raise _Failed(str(exc)) from None
    except ConfigError as exc:
        raise _Failed(str(exc)) from None
    try:
        store.client.ping()
    except Exception as exc:
        store.close()
        raise _Failed(f"cannot reach Redis at {_where(store)}: {_error_text(exc)}") from None
    return store


def _where(store: RedisStore) -> str:
    return store._where


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if type(exc).__name__ in text else f"{text} ({type(exc).__name__})"


def _run(args: argparse.Namespace, action: Any) -> int:
    try:
        store = _connect(args)
    except _Failed as exc:
        print(f"resilient {args.command}: {exc}", file=sys.stderr)
        return 2
    try:
        action(store)
    except _Failed as exc:
        print(f"resilient {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(
            f"resilient {args.command}: Redis at {_where(store)} failed: {_error_text(exc)}",
            file=sys.stderr,
        )
        return 2
    finally:
        store.close()
    return 0


def _status(args: argparse.Namespace) -> int:
    def action(store: RedisStore) -> None:
        entries = store.status()
        if args.format == "json":
            doc = {"redis": _where(store), "prefix": store.prefix, "breakers": entries}
            print(json.dumps(doc, indent=2, ensure_ascii=False))
            return
        if not entries:
            print(f"no breakers under prefix {store.prefix!r} at {_where(store)}")
            return
        print(_table(entries))

    return _run(args, action)


def _trip(args: argparse.Namespace) -> int:
    def action(store: RedisStore) -> None:
        _check_name(args.name)
        out = store.trip(args.name, hold=args.hold, reason=args.reason)
        old, new = out["old_state"], out["new_state"]
        if args.hold:
            tail = f"held open until `resilient reset {_quote(args.name)}`"
        else:
            tail = f"next trial in {out['retry_after']:.1f} s"
        print(
            f"{args.name}: {old} -> {new} for the whole fleet ({tail}); "
            "every instance rejects its calls within its sync interval"
        )

    return _run(args, action)


def _reset(args: argparse.Namespace) -> int:
    def action(store: RedisStore) -> None:
        _check_name(args.name)
        out = store.reset(args.name)
        print(
            f"{args.name}: {out['old_state']} -> {out['new_state']} for the whole fleet; "
            "every instance closes it within its sync interval"
        )

    return _run(args, action)


def _check_name(name: str) -> None:
    if not name.strip():
        raise _Failed("the breaker name is empty")


def _quote(name: str) -> str:
    return name if name.replace(".", "").replace("_", "").replace("-", "").isalnum() else repr(name)


def _table(entries: list[dict[str, Any]]) -> str:
    headers = ("NAME", "STATE", "FAILURES", "RETRY IN", "TRIALS", "REASON")
    rows = []
    for e in entries:
        threshold = e["failure_threshold"]
        failures = f"{e['failures']}/{threshold}" if threshold else str(e["failures"])
        if e["failing_instances"] > 1:
            failures += f" from {e['failing_instances']}"
        if e["total_failures"] != e["failures"]:
            failures += f", {e['total_failures']} total"
        retry = e["retry_after"]
        if e["stored_state"] == "forced_open":
            retry_text = "held"
        elif retry is None:
            retry_text = "-"
        elif retry <= 0:
            retry_text = "due"
        else:
            retry_text = f"{retry:.1f} s"
        trials = str(e["half_open_in_flight"]) if e["state"] == "half_open" else "-"
        reason = e["reason"] or (f"last error: {e['last_error']}" if e["last_error"] else "")
        rows.append((e["name"], e["state"], failures, retry_text, trials, reason))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers[:-1])]
    lines = []
    for row in (headers, *rows):
        cells = [f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
