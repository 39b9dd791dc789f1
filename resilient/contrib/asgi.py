"""A health endpoint as an ASGI app, for a Kubernetes readiness probe.

::

    from resilient.contrib.asgi import health_app

    app.mount("/healthz", health_app())  # Starlette / FastAPI

``GET`` answers :func:`resilient.health` as JSON: HTTP 200 when the status is
``ok`` (every breaker closed) or ``degraded`` (one half-open, or open with a
fallback answering for it), 503 when it is ``failing`` (one open with nothing to
answer for it).  Standard library only.  The WSGI twin is
:func:`resilient.contrib.wsgi.health_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._health import health_response

__all__ = ["ASGIApp", "health_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def health_app() -> ASGIApp:
    """An ASGI app serving :func:`resilient.health` as JSON, 200 or 503.

    It answers every path it is mounted at; methods other than GET and HEAD
    get 405.  It also completes the ASGI lifespan protocol, so it can run on
    its own (``uvicorn --factory resilient.contrib.asgi:health_app``).

    Returns:
        The ASGI application.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            raise RuntimeError(f"resilient's health app serves HTTP only, not {kind!r}")
        code, _, headers, body = health_response(str(scope.get("method", "GET")).upper())
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app
