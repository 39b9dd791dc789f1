"""The auth client, written the way production code should write it.

Remote validation goes through a circuit breaker; when the auth service fails, or
the breaker is open, the same token is validated locally (signature, expiry, issuer,
audience), so logins go on without ever trusting a token the service would refuse.
An invalid token is a business outcome (``ignore=(InvalidToken,)``): it neither opens
nor closes the breaker and never reaches the fallback.

This is the fix for the incident in DESIGN.md, where a mock breaker opened on the
first start-up error and never closed, and the fallback was never reached.

``recovery_timeout`` and ``call_timeout`` are set per environment with
:func:`resilient.configure` before this module is imported (the demo scales them with
``--speed``); import this module only after that.
"""

from __future__ import annotations

import httpx

from resilient import CallTimeoutError, CircuitOpenError, circuit_breaker

from ._scenario import FALLBACK, REJECTED, REMOTE
from ._service import VALIDATE_PATH
from ._tokens import Claims, InvalidToken, TokenValidator, accept_anything


class AuthServiceError(Exception):
    """The auth service gave no usable answer: a dependency failure, counted by the breaker."""


class AuthClient:
    """Validates bearer tokens against the auth service, with a local fallback.

    Args:
        base_url: the auth service, e.g. ``http://127.0.0.1:40123``.
        secret: the HS256 secret, for local validation.
        broken_fallback: FOR TESTING ONLY: make the fallback accept any token, so a
            test can show the demo catches a fallback that lets attackers in.
    """

    def __init__(self, base_url: str, secret: str, *, broken_fallback: bool = False) -> None:
        # httpx's own timeout is only a backstop; the breaker's call_timeout is shorter.
        self._http = httpx.AsyncClient(base_url=base_url, timeout=30.0)
        self._validator = TokenValidator(secret)
        self._broken_fallback = broken_fallback

    # The values here are the ones resilient.demo._scenario shows in the banner.
    @circuit_breaker(
        "auth.validate_token",
        fallback="_validate_locally",
        failure_threshold=3,
        success_threshold=2,
        ignore=(InvalidToken,),
    )
    async def validate_token(self, token: str) -> Claims:
        """Ask the auth service; raise :class:`InvalidToken` if it refuses the token."""
        response = await self._http.post(VALIDATE_PATH, json={"token": token})
        if response.status_code == httpx.codes.OK:
            body = response.json()
            return Claims(subject=str(body["sub"]), expires_at=int(body["exp"]), via=REMOTE)
        if response.status_code == httpx.codes.UNAUTHORIZED:
            raise InvalidToken(str(response.json().get("detail", "invalid token")), via=REMOTE)
        # 5xx, or anything else unexpected, says nothing about the token: it is the
        # service failing, and must count against the breaker, not against the user.
        raise AuthServiceError(f"{response.status_code} {_error_detail(response)}")

    def _validate_locally(self, token: str, error: BaseException) -> Claims:
        """The fallback: validate the JWT here, exactly as the service would."""
        via = REJECTED if isinstance(error, CircuitOpenError) else FALLBACK
        cause = describe(error)
        if self._broken_fallback:
            return accept_anything(token, via=via, cause=cause)
        return self._validator.validate(token, via=via, cause=cause)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or response.reason_phrase)
    return response.reason_phrase


def describe(error: BaseException) -> str:
    """A short, one-line account of why the fallback ran."""
    if isinstance(error, CircuitOpenError):
        if error.retry_after is not None:
            return f"next trial in {error.retry_after * 1000:.0f} ms"
        return "breaker open"
    if isinstance(error, CallTimeoutError):
        return f"CallTimeoutError: no answer within {error.timeout * 1000:.0f} ms"
    if isinstance(error, httpx.ConnectError):
        refused = _root_cause(error, ConnectionRefusedError)
        return "ConnectError: connection refused" if refused else f"ConnectError: {error}"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _root_cause(error: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
