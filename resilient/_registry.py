"""The default registry: one name, one breaker, one protected dependency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _defaults
from ._breaker import CircuitBreaker
from ._config import check_setting_names
from ._errors import ConfigError
from ._events import logger
from ._state import State

if TYPE_CHECKING:
    from .stores import Store

__all__ = ["breakers", "configure", "get_breaker", "health"]

_lock = threading.Lock()
_breakers: dict[str, CircuitBreaker] = {}

#: Called with every breaker the registry creates (resilient.contrib's exporters
#: install their duration hook this way, so new breakers are timed too).
_creation_hooks: tuple[Callable[[CircuitBreaker], object], ...] = ()


def add_creation_hook(hook: Callable[[CircuitBreaker], object]) -> None:
    """Call ``hook(breaker)`` for every breaker the registry creates from now on."""
    global _creation_hooks
    with _lock:
        _creation_hooks = (*_creation_hooks, hook)


def remove_creation_hook(hook: Callable[[CircuitBreaker], object]) -> None:
    """Undo :func:`add_creation_hook` (no error if absent)."""
    global _creation_hooks
    with _lock:
        _creation_hooks = tuple(h for h in _creation_hooks if h is not hook)


def get_breaker(name: str, *, store: Store | None = None, **config: Any) -> CircuitBreaker:
    """Return the breaker called ``name``, creating it on first request.

    One name is one breaker is one protected dependency: every caller that asks
    for ``name`` shares the same state.  Asking again with no settings returns
    the existing breaker; asking with settings that describe a *different*
    breaker raises :class:`ConfigError` naming both.

    Args:
        name: the breaker's name, e.g. ``"auth.validate_token"``.
        store: where its state lives (default: the ``configure()`` store, else
            in-process memory).
        **config: :class:`BreakerConfig` settings, e.g. ``failure_threshold=5``.

    Raises:
        ConfigError: a setting is unknown or invalid, or conflicts with the
            existing breaker of that name.
    """
    check_setting_names(config)
    existing = _breakers.get(name)
    if existing is None:
        candidate = CircuitBreaker(name, store=store, **config)  # validates first
        with _lock:
            existing = _breakers.setdefault(name, candidate)
        if existing is candidate:
            for hook in _creation_hooks:
                try:
                    hook(candidate)
                except Exception:
                    logger.exception("circuit breaker '%s': creation hook %r failed", name, hook)
            return candidate
    if not existing._matches(config, store):
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(config.items()))
        if store is not None:
            inner = f"{inner}, store={store!r}" if inner else f"store={store!r}"
        requested = f"get_breaker({name!r}{', ' if inner else ''}{inner})"
        raise ConfigError(
            f"circuit breaker {name!r} already exists with different settings: it was created "
            f"as {existing._describe_settings()} and is now requested as {requested}; "
            "one name is one dependency, so give the same settings or use another name"
        )
    return existing


def breakers() -> list[CircuitBreaker]:
    """Every breaker in the default registry, sorted by name."""
    with _lock:
        items = list(_breakers.values())
    return sorted(items, key=lambda b: b.name)


def health() -> dict[str, Any]:
    """Every breaker's metrics as a JSON-serialisable dict, for a health endpoint.

    ``status`` is ``"ok"`` when every breaker is closed (or disabled),
    ``"degraded"`` when any is half-open, or open with a fallback to answer for
    it, and ``"failing"`` when any is open with nothing to answer for it.
    """
    status = "ok"
    entries: dict[str, Any] = {}
    for breaker in breakers():
        snapshot = breaker.metrics().as_dict()
        has_fallback = breaker.name in _with_fallback
        snapshot["has_fallback"] = has_fallback
        entries[breaker.name] = snapshot
        state = State(snapshot["state"])
        if state in (State.OPEN, State.FORCED_OPEN) and not has_fallback:
            status = "failing"
        elif state is not State.CLOSED and state is not State.DISABLED and status == "ok":
            status = "degraded"
    return {"status": status, "breakers": entries}


#: Names of breakers that some decorated function answers with a fallback.
_with_fallback: set[str] = set()


def note_fallback(name: str) -> None:
    """Remember that a decorated function answers for ``name`` with a fallback."""
    _with_fallback.add(name)


def configure(*, store: Store | None = None, **config: Any) -> None:
    """Set process-wide defaults for breakers.

    Settings apply to every breaker that has not handled its first call yet
    (breakers resolve their defaults then), so calling ``configure()`` at
    start-up, after modules with decorated functions were imported, still
    applies to them.  Settings given to a breaker explicitly always win.
    Repeated calls merge: ``configure(recovery_timeout=5)`` then
    ``configure(store=s)`` keeps both.

    Args:
        store: the default store, e.g. ``RedisStore.from_url(...)``.
        **config: default :class:`BreakerConfig` settings.

    Raises:
        ConfigError: a setting is unknown or invalid (nothing changes then).
    """
    _defaults.set_defaults(store, config)


def _snapshot() -> dict[str, CircuitBreaker]:
    with _lock:
        return dict(_breakers)


def _restore(snapshot: dict[str, CircuitBreaker]) -> None:
    with _lock:
        _breakers.clear()
        _breakers.update(snapshot)
