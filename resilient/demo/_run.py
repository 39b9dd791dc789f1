"""Runs ``resilient demo``: service up, clients wired, scenario driven, result written.

Imported only when the demo runs (it needs httpx and PyJWT, checked by the CLI first).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, TextIO

import resilient

from . import _report, _scenario
from ._channel import LocalChannel, WorkerChannel, WorkerError
from ._scenario import BREAKER_NAME, FAILURE_THRESHOLD, SUCCESS_THRESHOLD, Channel, Timing
from ._service import AuthService
from ._tokens import User, make_users, new_secret

if TYPE_CHECKING:
    from resilient.stores import Store


def quiet_resilient_logger() -> None:
    """Keep the library's transition log lines off the terminal.

    The demo prints every transition itself, from a listener; without a handler the
    ``resilient`` logger's WARNINGs would reach stderr through logging's last resort.
    """
    logging.getLogger("resilient").addHandler(logging.NullHandler())


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
    service: AuthService, secret: str, timing: Timing, *, broken: bool, origin: float
) -> list[Channel]:
    configure_runtime(recovery_timeout=timing.recovery_timeout, call_timeout=timing.call_timeout)
    # After configure(), so the breaker is created with the demo's timeouts.
    from ._client import AuthClient  # noqa: PLC0415

    client = AuthClient(service.url, secret, broken_fallback=broken)
    return [LocalChannel("local", client, origin=origin)]


async def _worker_channels(
    service: AuthService,
    secret: str,
    timing: Timing,
    *,
    broken: bool,
    origin: float,
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
        "broken_fallback": broken,
        "origin": origin,
    }
    channels: list[Channel] = []
    try:
        for label in ("A", "B"):
            channels.append(await WorkerChannel.start(label, config))  # noqa: PERF401
    except BaseException:
        for channel in channels:
            await channel.close()
        raise
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
    origin = time.monotonic()
    if redis_url is None:
        channels = await _local_channel(service, secret, timing, broken=broken, origin=origin)
    else:
        channels = await _worker_channels(
            service, secret, timing, broken=broken, origin=origin, redis_url=redis_url
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
            origin=origin,
        )
    finally:
        for channel in channels:
            await channel.close()
    return _report.summarize(result)


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
