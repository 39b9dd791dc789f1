"""Test helpers for code that uses resilient.

A pytest plugin (registered through the ``pytest11`` entry point) provides the
``resilient_breakers`` fixture; it is inert until a test asks for it::

    def test_recovers(resilient_breakers, freezer):   # freezer: pytest-freezer
        ...

Outside pytest, :func:`isolated` and :func:`forced_open` are plain context
managers.  Nothing here needs a hand-rolled mock breaker: use the real one,
drive time with freezegun or time-machine, and force states with these helpers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import _defaults, _events, _registry
from ._breaker import CircuitBreaker
from ._events import BreakerEvent

if TYPE_CHECKING:
    from ._state import State

__all__ = ["BreakerSandbox", "forced_open", "isolated", "resilient_breakers"]


class BreakerSandbox:
    """What :func:`isolated` and the ``resilient_breakers`` fixture hand you.

    Attributes:
        events: every transition of every breaker since the sandbox opened.
    """

    def __init__(self) -> None:
        self.events: list[BreakerEvent] = []
        self._lock = threading.Lock()

    def _record(self, event: BreakerEvent) -> None:
        with self._lock:
            self.events.append(event)

    def get(self, name: str) -> CircuitBreaker:
        """The breaker called ``name`` (created with default settings if new)."""
        return _registry.get_breaker(name)

    def breakers(self) -> list[CircuitBreaker]:
        """Every breaker in the registry."""
        return _registry.breakers()

    def transitions(self, name: str | None = None) -> list[tuple[State, State]]:
        """``(old, new)`` pairs of the recorded events, optionally for one breaker."""
        return [(e.old_state, e.new_state) for e in self.events if name is None or e.name == name]

    def reset_all(self) -> None:
        """Close every breaker and clear its counters."""
        for breaker in _registry.breakers():
            breaker._reset_for_tests()


@contextlib.contextmanager
def isolated() -> Iterator[BreakerSandbox]:
    """Run a block with fresh breakers, restoring everything afterwards.

    Every existing breaker is reset (closed, counters cleared, defaults
    re-read at its next call); breakers created inside the block are removed
    at the end; ``configure()`` defaults and global listeners are restored.
    """
    sandbox = BreakerSandbox()
    snapshot = _registry._snapshot()
    settings, store = _defaults.settings(), _defaults.store()
    listeners = _events.global_listeners()
    for breaker in snapshot.values():
        breaker._reset_for_tests()
    _events.add_listener(sandbox._record)
    try:
        yield sandbox
    finally:
        _events.set_global_listeners(listeners)
        _defaults.set_defaults(store, settings, replace=True)
        created = set(_registry._snapshot()) - set(snapshot)
        for name in created:
            _registry._snapshot()[name]._reset_for_tests()
        _registry._restore(snapshot)
        for breaker in snapshot.values():
            breaker._reset_for_tests()


@contextlib.contextmanager
def forced_open(name: str) -> Iterator[CircuitBreaker]:
    """Hold the breaker ``name`` open (FORCED_OPEN) for the block, then reset it.

    Use it to test what your code does when a dependency is cut off: calls are
    rejected with :class:`~resilient.CircuitOpenError`, or answered by their
    fallback.
    """
    breaker = _registry.get_breaker(name)
    breaker.trip(hold=True, reason="forced open by resilient.testing.forced_open")
    try:
        yield breaker
    finally:
        breaker.reset()


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional outside tests
    pass
else:

    @pytest.fixture
    def resilient_breakers() -> Iterator[BreakerSandbox]:
        """Fresh, isolated breakers for one test (see :func:`isolated`)."""
        with isolated() as sandbox:
            yield sandbox


def __getattr__(name: str) -> Any:
    if name == "resilient_breakers":
        raise AttributeError("resilient.testing.resilient_breakers needs pytest installed")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
