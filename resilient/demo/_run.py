"""Runs ``resilient demo``: service up, clients wired, scenario driven, result written.

Imported only when the demo runs (it needs httpx and PyJWT, checked by the CLI first).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import resilient

from . import _report, _scenario
from ._channel import LocalChannel, WorkerChannel, WorkerError
from ._scenario import BREAKER_NAME, FAILURE_THRESHOLD, SUCCESS_THRESHOLD, Channel, Timing
from ._service import AuthService
from ._tokens import User, make_users, new_secret

if TYPE_CHECKING:
    from resilient.stores import Store


class _NoTransitions(logging.Filter):
    """Drops the per-transition log records: the demo prints those lines itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, "resilient.new_state")


def quiet_resilient_logger() -> None:
    """Send the ``resilient`` logger's warnings to stderr, except transitions.

    Transitions are shown from a listener, on their own lines; anything else the
    library warns about (for example Redis being unreachable) still shows.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(_NoTransitions())
    handler.setFormatter(logging.Formatter("resilient demo: %(name)s: %(message)s"))
    logging.getLogger("resilient").addHandler(handler)


def configure_runtime(
    *, recovery_timeout: float, call_timeout: float, store: Store | None = None
) -> None:
    """Set this process's breaker defaults for the demo, before the client is imported.

    This is the per-environment configuration DESIGN.md describes: the decorator in
    :mod:`._client` states what the breaker protects and how it classifies errors;
    timeouts (scaled by ``--speed``) and the store come from here.
    """
    quiet_resilient_logger()
    resilient.configure(store=store, recovery_timeout=recovery_timeout, call_timeout=call_timeout)


async def _local_channel(
    service: AuthService, secret: str, timing: Timing, *, broken: bool
) -> list[Channel]:
    configure_runtime(recovery_timeout=timing.recovery_timeout, call_timeout=timing.call_timeout)
    # After configure(), so the breaker is created with the demo's timeouts.
    from ._client import AuthClient

    client = AuthClient(service.url, secret, broken_fallback=broken)
    return [LocalChannel("local", client)]


async def _worker_channels(
    service: AuthService,
    secret: str,
    timing: Timing,
    *,
    broken: bool,
    redis_url: str,
) -> list[Channel]:
    config = {
        "service_url": service.url,
        "secret": secret,
        "redis_url": redis_url,
        # A fresh key prefix per run: no state left over from an earlier run applies.
        "prefix": f"resilient-demo-{uuid.uuid4().hex[:12]}",
        "recovery_timeout": timing.recovery_timeout,
        "call_timeout": timing.call_timeout,
        "sync_interval": max(0.01, timing.interval / 2),
        "broken_fallback": broken,
    }
    started = await asyncio.gather(
        *(WorkerChannel.start(label, config) for label in ("A", "B")), return_exceptions=True
    )
    channels: list[Channel] = [c for c in started if isinstance(c, WorkerChannel)]
    errors = [e for e in started if isinstance(e, BaseException)]
    if errors:
        for channel in channels:
            await channel.close()
        raise errors[0]
    return channels


async def _run(
    *,
    service: AuthService,
    secret: str,
    users: list[User],
    timing: Timing,
    redis_url: str | None,
    broken: bool,
    out: TextIO | None,
) -> dict[str, Any]:
    if redis_url is None:
        channels = await _local_channel(service, secret, timing, broken=broken)
    else:
        channels = await _worker_channels(
            service, secret, timing, broken=broken, redis_url=redis_url
        )
    reporter: _scenario.Reporter
    if out is None:
        reporter = _report.QuietReporter()
    else:
        out.write(
            _report.banner(
                service_url=service.url,
                timing=timing,
                users=users,
                failure_threshold=FAILURE_THRESHOLD,
                success_threshold=SUCCESS_THRESHOLD,
                breaker_name=BREAKER_NAME,
                clients=[c.label for c in channels],
                store="Redis" if redis_url else "memory",
                broken_fallback=broken,
            )
            + "\n"
        )
        reporter = _report.LiveReporter(out, show_client=len(channels) > 1)
    try:
        result = await _scenario.run(
            mode="redis" if redis_url else "local",
            service=service,
            channels=channels,
            users=users,
            timing=timing,
            reporter=reporter,
            broken_fallback=broken,
        )
    finally:
        for channel in channels:
            await channel.close()
    return _report.summarize(result)


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def check_redis(url: str) -> str | None:
    """Ping Redis once; return what went wrong, or ``None`` when it answers."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    except ValueError as exc:
        return f"not a Redis URL: {redact(url)} ({exc})"
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"cannot reach Redis at {redact(url)}: {exc}"
    finally:
        client.close()
    return None


def run_demo(
    *,
    speed: float,
    json_target: str | None,
    redis_url: str | None,
    broken_fallback: bool,
) -> int:
    """Run the demo; returns the exit status (0 pass, 1 a check failed, 2 could not run).

    Args:
        speed: time scale (1.0: a few seconds).
        json_target: ``None`` for text only; ``"-"`` for JSON on stdout instead of
            text; otherwise a path to write the JSON to, besides the text.
        redis_url: run two client processes sharing the breaker through Redis.
        broken_fallback: FOR TESTING: a fallback that accepts any token.
    """
    if redis_url is not None:
        problem = check_redis(redis_url)
        if problem is not None:
            print(f"resilient demo --redis: {problem}", file=sys.stderr)
            return 2
    timing = Timing.for_speed(speed)
    secret = new_secret()
    users = make_users(secret)
    service = AuthService(secret, slow_delay=timing.slow_delay)
    out = None if json_target == "-" else sys.stdout
    try:
        service.start()
    except OSError as exc:
        print(f"resilient demo: cannot start the auth service on 127.0.0.1: {exc}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(
            _run(
                service=service,
                secret=secret,
                users=users,
                timing=timing,
                redis_url=redis_url,
                broken=broken_fallback,
                out=out,
            )
        )
    except WorkerError as exc:
        print(f"resilient demo: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"resilient demo: the auth service failed to restart: {exc}", file=sys.stderr)
        return 2
    finally:
        service.stop()
    text = _report.to_json(summary)
    if json_target == "-":
        sys.stdout.write(text + "\n")
    else:
        print(_report.format_summary(summary))
        if json_target is not None:
            try:
                with open(json_target, "w", encoding="utf-8") as f:
                    f.write(text + "\n")
            except OSError as exc:
                print(f"resilient demo: cannot write {json_target}: {exc}", file=sys.stderr)
                return 2
    status: int = summary["exit_status"]
    return status
