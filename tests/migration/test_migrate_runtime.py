"""What ``resilient migrate`` writes must behave: real breakers that open and recover.

The incident's code is migrated with ``--write``, then imported and driven:
the manager now hands out resilient breakers that open after the failure
threshold, send callers to their local fallback while open, and close again
after the recovery timeout.  Time moves with freezegun; nothing sleeps.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import freezegun
import pytest

import resilient
from resilient import CircuitBreaker, CircuitOpenError, State

from .fixtures_migrate import migrate, write_tree
from .test_migrate import AUTH_CLIENT, MOCK_MODULE, SYNC_MOCK


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """A unique top-level package name on sys.path, removed afterwards."""
    name = f"incident_{uuid.uuid4().hex[:12]}"
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        for mod in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[mod]


def _migrated(tmp_path: Path, package: str, files: dict[str, str]) -> None:
    write_tree(tmp_path, {f"{package}/{rel}": text for rel, text in files.items()})
    result = migrate(tmp_path)
    assert not result.report.failed
    assert result.report.changed
    importlib.invalidate_caches()


def _incident(tmp_path: Path, package: str) -> tuple[ModuleType, ModuleType]:
    _migrated(
        tmp_path,
        package,
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "auth/__init__.py": "",
            "core/circuit_breaker.py": MOCK_MODULE,
            "auth/client.py": AUTH_CLIENT,
        },
    )
    cb = importlib.import_module(f"{package}.core.circuit_breaker")
    client = importlib.import_module(f"{package}.auth.client")
    return cb, client


def test_migrated_manager_hands_out_registered_resilient_breakers(
    tmp_path: Path, package: str
) -> None:
    """The manager's get_breaker returns one resilient breaker per name, from the registry."""
    cb, _ = _incident(tmp_path, package)
    assert not hasattr(cb, "MockCircuitBreaker")
    first = cb.circuit_breaker_manager.get_breaker("inventory")
    assert isinstance(first, CircuitBreaker)
    assert cb.circuit_breaker_manager.get_breaker("inventory") is first
    assert resilient.get_breaker("inventory") is first


@pytest.mark.asyncio
async def test_migrated_client_opens_after_threshold_and_recovers_after_timeout(
    tmp_path: Path, package: str
) -> None:
    """The incident replayed: the breaker opens, the local fallback answers, then it recovers."""
    _, client_module = _incident(tmp_path, package)
    client = client_module.AuthClient()
    breaker = client._breaker
    assert isinstance(breaker, CircuitBreaker)
    config = breaker.config
    remote_calls = 0
    healthy = False

    async def remote(token: str) -> dict[str, object]:
        nonlocal remote_calls
        remote_calls += 1
        if not healthy:
            raise ConnectionError("auth service unreachable")
        return {"sub": token}

    client._validate_token_remote = remote
    with freezegun.freeze_time("2026-11-30 12:00:00") as frozen:
        for _ in range(config.failure_threshold):
            assert await client.validate_token("t") == {"sub": "t", "local": True}
        assert breaker.state is State.OPEN
        assert remote_calls == config.failure_threshold
        # open: the remote is not called, the local fallback still answers
        assert await client.validate_token("t") == {"sub": "t", "local": True}
        assert remote_calls == config.failure_threshold
        with pytest.raises(CircuitOpenError):
            await breaker.acall(remote, "t")

        healthy = True
        frozen.tick(config.recovery_timeout + 1)
        assert breaker.state is State.HALF_OPEN
        for _ in range(config.success_threshold):
            assert await client.validate_token("t") == {"sub": "t"}
        assert breaker.state is State.CLOSED
        assert remote_calls == config.failure_threshold + config.success_threshold


def test_migrated_construction_keeps_its_settings(tmp_path: Path, package: str) -> None:
    """`MockCircuitBreaker("payments", 3, 5)` becomes a breaker with threshold 3, timeout 5 s."""
    _migrated(
        tmp_path,
        package,
        {
            "__init__.py": "",
            "cb.py": SYNC_MOCK,
            "payments.py": f"""\
                from {package}.cb import MockCircuitBreaker


                class Payments:
                    def __init__(self):
                        self.breaker = MockCircuitBreaker("payments", 3, 5)

                    def charge(self, gateway, amount):
                        return self.breaker.call(gateway, amount)

                    def force_open(self):
                        self.breaker.is_open = True

                    def force_close(self):
                        self.breaker.is_open = False
                        self.breaker.failure_count = 0
                """,
        },
    )
    payments = importlib.import_module(f"{package}.payments").Payments()
    breaker = payments.breaker
    assert (breaker.config.failure_threshold, breaker.config.recovery_timeout) == (3, 5)

    def down(amount: int) -> int:
        raise ConnectionError("gateway down")

    with freezegun.freeze_time("2026-11-30 12:00:00") as frozen:
        for _ in range(3):
            with pytest.raises(ConnectionError):
                payments.charge(down, 10)
        with pytest.raises(CircuitOpenError):
            payments.charge(lambda amount: amount, 10)
        frozen.tick(6)
        assert payments.charge(lambda amount: amount, 10) == 10
        payments.force_open()
        assert breaker.is_open
        payments.force_close()
        assert breaker.state is State.CLOSED
