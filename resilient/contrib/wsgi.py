"""A health endpoint as a WSGI app, for a Kubernetes readiness probe.

::

    from resilient.contrib.wsgi import health_app

    # Flask: app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/healthz": health_app()})

``GET`` answers :func:`resilient.health` as JSON: HTTP 200 when the status is
``ok`` or ``degraded``, 503 when it is ``failing``.  Standard library only.
The ASGI twin is :func:`resilient.contrib.asgi.health_app`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._health import health_response

__all__ = ["WSGIApp", "health_app"]

StartResponse = Callable[..., object]
#: A WSGI application.
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def health_app() -> WSGIApp:
    """A WSGI app serving :func:`resilient.health` as JSON, 200 or 503.

    It answers every path it is mounted at; methods other than GET and HEAD
    get 405.

    Returns:
        The WSGI application.
    """

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        code, reason, headers, body = health_response(method)
        start_response(f"{code} {reason}", headers)
        return [body]

    return app
