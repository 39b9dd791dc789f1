"""JWTs for the demo: issuing them, validating them, and the users who present them.

One validation function serves both sides: the auth service (the remote) and the
client's local fallback call :meth:`TokenValidator.validate`, so the fallback checks
exactly what the service checks (signature, expiry, issuer, audience) and can never
accept a token the service would refuse.  Imports PyJWT, so only the demo loads it.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import jwt

ISSUER: Final = "https://auth.demo.invalid"
AUDIENCE: Final = "orders-api"
ALGORITHM: Final = "HS256"
REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub")

VALID: Final = "valid"
FORGED: Final = "forged"
EXPIRED: Final = "expired"
UNSIGNED: Final = "alg-none"
WRONG_AUDIENCE: Final = "wrong-aud"
TOKEN_KINDS: Final = (VALID, FORGED, EXPIRED, UNSIGNED, WRONG_AUDIENCE)


class InvalidToken(Exception):
    """The token is not acceptable: a business outcome, never a dependency failure.

    Attributes:
        reason: why the token was refused (``"Signature verification failed"``).
        via: who decided: ``"remote"`` (the auth service) or the fallback's path.
        cause: why the fallback ran (the remote failure, or the open breaker), if it did.
    """

    def __init__(self, reason: str, *, via: str = "local", cause: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.via = via
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Claims:
    """An accepted token's identity, and which path accepted it."""

    subject: str
    expires_at: int
    via: str
    cause: str = ""


def _utcnow() -> datetime:
    # JWT `exp`/`iat` are wall-clock by definition (RFC 7519, NumericDate); the
    # breaker's own timing is monotonic and is never derived from this.
    return datetime.now(timezone.utc)  # noqa: TID251


def new_secret() -> str:
    """A fresh HS256 secret (48 random bytes, URL-safe text)."""
    return secrets.token_urlsafe(48)


class TokenValidator:
    """Validates a JWT the way the auth service does: HS256, expiry, issuer, audience."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def validate(self, token: str, *, via: str, cause: str = "") -> Claims:
        """Return the token's claims, or raise :class:`InvalidToken` saying why.

        Args:
            token: the encoded JWT.
            via: the path that is deciding (``"remote"``, ``"fallback"``, ...).
            cause: why the fallback runs, carried into the result for display.
        """
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_reason(exc), via=via, cause=cause) from None
        return Claims(
            subject=str(payload["sub"]), expires_at=int(payload["exp"]), via=via, cause=cause
        )


def _reason(exc: jwt.InvalidTokenError) -> str:
    # Most specific first: ExpiredSignatureError, etc. subclass the generic errors.
    for kind, reason in (
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.InvalidSignatureError, "bad signature"),
        (jwt.InvalidAlgorithmError, "algorithm not allowed"),
        (jwt.InvalidAudienceError, "wrong audience"),
        (jwt.InvalidIssuerError, "wrong issuer"),
        (jwt.ImmatureSignatureError, "not valid yet"),
        (jwt.MissingRequiredClaimError, f"missing claim: {getattr(exc, 'claim', '?')}"),
        (jwt.DecodeError, "malformed token"),
    ):
        if isinstance(exc, kind):
            return reason
    return str(exc) or type(exc).__name__


def _claims(subject: str, *, audience: str = AUDIENCE, age: timedelta, ttl: timedelta) -> Any:
    issued = _utcnow() - age
    return {"sub": subject, "iss": ISSUER, "aud": audience, "iat": issued, "exp": issued + ttl}


def issue(kind: str, subject: str, secret: str) -> str:
    """Issue a token of the given kind (one of :data:`TOKEN_KINDS`) for ``subject``."""
    hour = timedelta(hours=1)
    if kind == VALID:
        return jwt.encode(_claims(subject, age=timedelta(0), ttl=hour), secret, ALGORITHM)
    if kind == FORGED:
        # Well-formed and unexpired, but signed by someone without the service secret.
        claims = _claims(subject, age=timedelta(0), ttl=hour)
        return jwt.encode(claims, new_secret(), ALGORITHM)
    if kind == EXPIRED:
        return jwt.encode(_claims(subject, age=2 * hour, ttl=hour), secret, ALGORITHM)
    if kind == WRONG_AUDIENCE:
        # Genuinely issued, but for another service: replaying it here must fail.
        claims = _claims(subject, audience="billing-api", age=timedelta(0), ttl=hour)
        return jwt.encode(claims, secret, ALGORITHM)
    if kind == UNSIGNED:
        # The classic `alg: none` attack: a token that carries no signature at all.
        now = int(_utcnow().timestamp())
        header = {"alg": "none", "typ": "JWT"}
        body = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600}
        return f"{_b64(header)}.{_b64(body)}."
    raise ValueError(f"unknown token kind {kind!r}; expected one of {', '.join(TOKEN_KINDS)}")


def _b64(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def accept_anything(token: str, *, via: str, cause: str = "") -> Claims:
    """Decode WITHOUT verifying anything: the broken fallback the tests use.

    This is exactly the bug a fallback must not have; ``resilient demo
    --broken-fallback`` wires it in so a test can show the demo then fails.
    """
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(str(exc), via=via, cause=cause) from None
    subject, expires_at = str(payload.get("sub", "?")), int(payload.get("exp", 0))
    return Claims(subject=subject, expires_at=expires_at, via=via, cause=cause)


@dataclass(frozen=True, slots=True)
class User:
    """A simulated user and the token they present."""

    name: str
    kind: str
    token: str

    @property
    def legitimate(self) -> bool:
        """True when the service would accept this user's token."""
        return self.kind == VALID


# Interleaved so every phase sees both legitimate users and attackers.
CAST: Final = (
    ("alice", VALID),
    ("mallory", FORGED),
    ("bob", VALID),
    ("eve", EXPIRED),
    ("carol", VALID),
    ("trudy", UNSIGNED),
    ("dave", VALID),
    ("oscar", WRONG_AUDIENCE),
)


def make_users(secret: str) -> list[User]:
    """The demo's users, each with a freshly issued token of their kind."""
    return [User(name, kind, issue(kind, name, secret)) for name, kind in CAST]
