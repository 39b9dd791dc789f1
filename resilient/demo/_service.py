"""A real HTTP auth service on 127.0.0.1, with the failure modes of the outage.

``POST /v1/validate`` with ``{"token": "..."}`` answers 200 with the claims, or 401
``{"error": "invalid_token"}``.  The operator side of the demo switches it between:

- ``healthy``: answers correctly;
- stopped (:meth:`AuthService.stop`): the port is closed, clients get *connection
  refused*;
- ``unavailable``: every request gets ``503 Service Unavailable``;
- ``slow``: correct answers, but only after ``slow_delay`` seconds;
- a restart with the secret missing (:meth:`AuthService.start` with
  ``missing_secret_requests``): the first requests get ``500`` "AUTH_SECRET is not
  set", then the secret is loaded and it answers normally (the incident's start-up
  fault, which happens once and is fixed).

Standard library only (``http.server`` in a daemon thread), plus the shared validator.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from ._tokens import InvalidToken, TokenValidator

HEALTHY: Final = "healthy"
UNAVAILABLE: Final = "unavailable"
SLOW: Final = "slow"
MODES: Final = (HEALTHY, UNAVAILABLE, SLOW)

VALIDATE_PATH: Final = "/v1/validate"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: AuthService) -> None:
        super().__init__(address, _Handler)
        self.service = service

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that gave up on a slow answer are part of the scenario."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: a stopped port refuses at once

    def log_message(self, format: str, *args: Any) -> None:  # stdlib's signature
        """No access log: the demo prints its own line per request."""

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._reply(HTTPStatus.OK, {"status": "ok"})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not_found"})

    def do_POST(self) -> None:
        if self.path != VALIDATE_PATH:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not_found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            token = str(json.loads(self.rfile.read(length))["token"])
        except (ValueError, KeyError, TypeError):
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "bad_request"})
            return
        status, body = self.server.service.answer(token)
        self._reply(status, body)

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client stopped waiting (call_timeout); nothing to answer to


class AuthService:
    """The auth service the client depends on, running in a background thread.

    Args:
        secret: the HS256 secret tokens are signed with (``AUTH_SECRET``).
        slow_delay: seconds a ``slow`` answer takes.
        host: interface to bind; the demo always uses loopback.
    """

    def __init__(self, secret: str, *, slow_delay: float, host: str = "127.0.0.1") -> None:
        self._validator = TokenValidator(secret)
        self._slow_delay = slow_delay
        self._host = host
        self._port = 0
        self._lock = threading.Lock()
        self._mode = HEALTHY
        self._missing_secret_left = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.requests = 0

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (the port stays the same across restarts)."""
        return f"http://{self._host}:{self._port}"

    @property
    def running(self) -> bool:
        """True while the port accepts connections."""
        return self._server is not None

    def start(self, *, missing_secret_requests: int = 0) -> None:
        """Bind (the same port as before, after a restart) and serve in a daemon thread.

        Args:
            missing_secret_requests: how many requests, right after start-up, find
                the service secret not loaded yet and get a 500.
        """
        if self._server is not None:
            return
        self._stopping.clear()
        self._missing_secret_left = missing_secret_requests
        server = _Server((self._host, self._port), self)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="resilient-demo-auth-service",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the port: from now on clients get *connection refused*."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes the handlers sleeping in `slow` mode
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_mode(self, mode: str) -> None:
        """Switch between ``healthy``, ``unavailable`` (503) and ``slow``."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        with self._lock:
            self._mode = mode

    def answer(self, token: str) -> tuple[HTTPStatus, dict[str, Any]]:
        """Decide the HTTP answer to one validation request (runs in a handler thread)."""
        with self._lock:
            self.requests += 1
            mode = self._mode
            missing_secret = self._missing_secret_left > 0
            if missing_secret:
                self._missing_secret_left -= 1
        if missing_secret:
            detail = "AUTH_SECRET is not set"
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "misconfigured", "detail": detail}
        if mode == UNAVAILABLE:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "unavailable"}
        if mode == SLOW and self._stopping.wait(self._slow_delay):
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "shutting_down"}
        try:
            claims = self._validator.validate(token, via="remote")
        except InvalidToken as exc:
            return HTTPStatus.UNAUTHORIZED, {"error": "invalid_token", "detail": exc.reason}
        return HTTPStatus.OK, {"sub": claims.subject, "exp": claims.expires_at}

    def __enter__(self) -> AuthService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
