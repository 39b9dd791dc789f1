"""The demo's auth service and token validation, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest

httpx = pytest.importorskip("httpx", reason="the demo extra (httpx) is not installed")
pytest.importorskip("jwt", reason="the demo extra (PyJWT) is not installed")

from resilient.demo._service import SLOW, UNAVAILABLE, VALIDATE_PATH, AuthService  # noqa: E402
from resilient.demo._tokens import (  # noqa: E402
    TOKEN_KINDS,
    VALID,
    InvalidToken,
    TokenValidator,
    accept_anything,
    issue,
    make_users,
    new_secret,
)


@pytest.fixture
def secret():
    return new_secret()


@pytest.fixture
def service(secret):
    with AuthService(secret, slow_delay=5.0) as svc:
        yield svc


def _post(service, token, **kw):
    return httpx.post(service.url + VALIDATE_PATH, json={"token": token}, **kw)


def _local_accepts(validator, token):
    try:
        validator.validate(token, via="local")
    except InvalidToken:
        return False
    return True


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_local_validation_agrees_with_the_service(service, secret, kind):
    """The fallback accepts exactly the tokens the service accepts: only valid ones."""
    token = issue(kind, "someone", secret)
    remote = _post(service, token)
    local = _local_accepts(TokenValidator(secret), token)
    assert remote.status_code == (200 if kind == VALID else 401)
    assert local == (kind == VALID)


def test_tampered_payload_is_refused_by_both(service, secret):
    """A valid token whose payload was edited (signature kept) is refused on both paths."""
    head, _body, sig = issue(VALID, "alice", secret).split(".")
    _h2, body2, _s2 = issue(VALID, "admin", new_secret()).split(".")
    tampered = f"{head}.{body2}.{sig}"
    assert _post(service, tampered).status_code == 401
    assert not _local_accepts(TokenValidator(secret), tampered)


def test_every_demo_user_is_judged_by_their_kind(service, secret):
    """The demo's cast: valid users pass the service, every other kind is refused."""
    for user in make_users(secret):
        assert (_post(service, user.token).status_code == 200) == user.legitimate, user


def test_broken_fallback_accepts_forged_tokens(secret):
    """The testing-only broken fallback really accepts a token signed with another key."""
    forged = issue("forged", "mallory", secret)
    assert accept_anything(forged, via="fallback").subject == "mallory"
    assert not _local_accepts(TokenValidator(secret), forged)


def test_stopped_service_refuses_connections(service, secret):
    """After stop() the port is closed: connection refused, and start() reuses the port."""
    url = service.url
    service.stop()
    with pytest.raises(httpx.ConnectError):
        _post(service, issue(VALID, "alice", secret))
    service.start()
    assert service.url == url
    assert _post(service, issue(VALID, "alice", secret)).status_code == 200


def test_unavailable_mode_answers_503(service, secret):
    """In `unavailable` mode every request gets a 503, whatever the token."""
    service.set_mode(UNAVAILABLE)
    assert _post(service, issue(VALID, "alice", secret)).status_code == 503


def test_slow_mode_does_not_answer_in_time(service, secret):
    """In `slow` mode a client with a short timeout gets no answer."""
    service.set_mode(SLOW)
    with pytest.raises(httpx.ReadTimeout):
        _post(service, issue(VALID, "alice", secret), timeout=0.05)


def test_missing_secret_fails_once_at_start_up(service, secret):
    """A restart without the secret answers 500 once, then serves normally."""
    service.stop()
    service.start(missing_secret_requests=1)
    token = issue(VALID, "alice", secret)
    first = _post(service, token)
    assert first.status_code == 500
    assert "AUTH_SECRET" in first.json()["detail"]
    assert _post(service, token).status_code == 200


def test_unknown_mode_is_refused(service):
    """set_mode() names the valid modes when given a bad one."""
    with pytest.raises(ValueError, match="healthy"):
        service.set_mode("sideways")
