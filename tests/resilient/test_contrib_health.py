"""resilient.health() and the readiness endpoints: resilient.contrib.asgi and .wsgi."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import resilient
from resilient import circuit_breaker, get_breaker
from resilient.contrib import asgi, wsgi


class Down(Exception):
    """A dependency failure."""


def _with_fallback(name: str) -> Any:
    @circuit_breaker(name, fallback=lambda: "cached", failure_threshold=1, recovery_timeout=30)
    def fetch() -> str:
        raise Down

    return fetch


# ----------------------------------------------------------------------- health()


def test_health_is_ok_when_every_breaker_is_closed_or_disabled():
    """ok: all closed (a disabled breaker lets every call through, so it is ok too)."""
    get_breaker("health.a").call(lambda: None)
    get_breaker("health.b").disable()
    report = resilient.health()
    assert report["status"] == "ok"
    assert report["breakers"]["health.a"]["state"] == "closed"
    assert report["breakers"]["health.b"]["state"] == "disabled"
    json.dumps(report)  # JSON-serialisable as it is


def test_health_is_failing_when_a_breaker_is_open_without_a_fallback():
    """failing: an open breaker has nothing to answer its calls."""
    get_breaker("health.ok").call(lambda: None)
    get_breaker("health.down").trip()
    report = resilient.health()
    assert report["status"] == "failing"
    assert report["breakers"]["health.down"]["state"] == "open"
    assert report["breakers"]["health.down"]["has_fallback"] is False


def test_health_is_failing_when_a_breaker_is_held_open_without_a_fallback():
    """An operator's trip(hold=True) without a fallback is failing too."""
    get_breaker("health.held").trip(hold=True)
    assert resilient.health()["status"] == "failing"


def test_health_is_degraded_when_an_open_breaker_has_a_fallback():
    """degraded: open, but a fallback answers for it."""
    fetch = _with_fallback("health.cached")
    assert fetch() == "cached"  # fails once: opens
    report = resilient.health()
    assert report["breakers"]["health.cached"]["state"] == "open"
    assert report["breakers"]["health.cached"]["has_fallback"] is True
    assert report["status"] == "degraded"


def test_health_is_degraded_when_a_breaker_is_half_open(frozen):
    """degraded: half-open (recovery timeout passed), even without a fallback."""
    breaker = get_breaker("health.recovering", recovery_timeout=10)
    breaker.trip()
    assert resilient.health()["status"] == "failing"
    frozen.tick(10)
    report = resilient.health()
    assert report["breakers"]["health.recovering"]["state"] == "half_open"
    assert report["status"] == "degraded"


def test_failing_wins_over_degraded_whatever_the_order():
    """One failing breaker makes the whole report failing, before or after a degraded one."""
    _with_fallback("health.z.cached")()
    assert resilient.health()["status"] == "degraded"
    get_breaker("health.a.down").trip()  # sorts before the degraded one
    assert resilient.health()["status"] == "failing"


# ----------------------------------------------------------------------- ASGI


async def _aget(method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=asgi.health_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as client:
        return await client.request(method, "/healthz")


@pytest.mark.asyncio
async def test_asgi_answers_200_with_the_report_when_ok():
    """GET: 200, JSON body equal to resilient.health(), not cached."""
    get_breaker("asgi.fine").call(lambda: None)
    response = await _aget()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "ok"
    assert body["breakers"]["asgi.fine"]["state"] == "closed"
    assert body["breakers"]["asgi.fine"]["successes"] == 1


@pytest.mark.asyncio
async def test_asgi_answers_200_when_degraded():
    """degraded keeps the pod ready: 200."""
    _with_fallback("asgi.cached")()
    response = await _aget()
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


@pytest.mark.asyncio
async def test_asgi_answers_503_when_failing():
    """failing: 503, and the body says which breaker is open."""
    get_breaker("asgi.down").trip(reason="database unreachable")
    response = await _aget()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["breakers"]["asgi.down"]["state"] == "open"


@pytest.mark.asyncio
async def test_asgi_head_has_the_status_and_no_body():
    """HEAD: same status code, empty body."""
    get_breaker("asgi.head").trip()
    response = await _aget("HEAD")
    assert response.status_code == 503
    assert response.content == b""


@pytest.mark.asyncio
async def test_asgi_refuses_other_methods_with_405():
    """POST: 405 with an Allow header."""
    response = await _aget("POST")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.asyncio
async def test_asgi_app_completes_the_lifespan_protocol():
    """Run on its own, the app answers lifespan startup and shutdown."""
    app = asgi.health_app()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


# ----------------------------------------------------------------------- WSGI


def _get(method: str = "GET") -> httpx.Response:
    transport = httpx.WSGITransport(app=wsgi.health_app())
    with httpx.Client(transport=transport, base_url="http://pod") as client:
        return client.request(method, "/healthz")


def test_wsgi_answers_200_with_the_report_when_ok():
    """GET: 200, JSON body equal to resilient.health()."""
    get_breaker("wsgi.fine").call(lambda: None)
    response = _get()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "ok"
    assert response.json()["breakers"]["wsgi.fine"]["successes"] == 1


def test_wsgi_answers_200_when_degraded_and_503_when_failing():
    """degraded: 200; then one breaker open without a fallback: 503."""
    _with_fallback("wsgi.cached")()
    assert _get().status_code == 200
    get_breaker("wsgi.down").trip()
    response = _get()
    assert response.status_code == 503
    assert response.json()["status"] == "failing"


def test_wsgi_head_and_other_methods():
    """HEAD: status without a body; POST: 405."""
    head = _get("HEAD")
    assert head.status_code == 200
    assert head.content == b""
    assert _get("POST").status_code == 405
