"""The health endpoint's response, shared by the ASGI and WSGI apps (standard library only)."""

from __future__ import annotations

import json

from .._registry import health

__all__ = ["health_response"]

_REASONS = {200: "OK", 405: "Method Not Allowed", 503: "Service Unavailable"}


def health_response(method: str) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """``(status code, reason, headers, body)`` answering ``method`` with :func:`resilient.health`.

    200 when the status is ``ok`` or ``degraded``, 503 when it is ``failing``;
    the body is the report as JSON (empty for HEAD).  Other methods get 405.
    """
    if method not in ("GET", "HEAD"):
        body = json.dumps({"error": f"method {method} is not allowed here; use GET"}).encode()
        code = 405
        headers = [("allow", "GET, HEAD")]
    else:
        report = health()
        body = json.dumps(report).encode()
        code = 503 if report["status"] == "failing" else 200
        headers = []
    headers += [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    if method == "HEAD":
        body = b""
    return code, _REASONS[code], headers, body
