"""Shared fixtures: every test runs with isolated breakers."""

from __future__ import annotations

from collections.abc import Iterator

import freezegun
import pytest

from resilient.testing import BreakerSandbox, isolated


@pytest.fixture(autouse=True)
def _isolated_breakers() -> Iterator[BreakerSandbox]:
    with isolated() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(_isolated_breakers: BreakerSandbox) -> BreakerSandbox:
    """The isolation sandbox of the current test (its recorded events)."""
    return _isolated_breakers


@pytest.fixture
def frozen() -> Iterator[freezegun.api.FrozenDateTimeFactory]:
    """Frozen time (freezegun drives time.monotonic); move it with ``frozen.tick(seconds)``."""
    with freezegun.freeze_time("2026-11-30 12:00:00") as clock:
        yield clock
