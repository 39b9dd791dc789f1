"""Process-wide defaults set by :func:`resilient.configure`.

Kept in their own module so the breaker and the registry can both read them
without importing each other.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._config import BreakerConfig

if TYPE_CHECKING:
    from .stores import Store

_lock = threading.Lock()
_settings: dict[str, Any] = {}
_config = BreakerConfig()
_store: Store | None = None


def config() -> BreakerConfig:
    """The default config: library defaults with ``configure()``'s settings applied."""
    return _config


def store() -> Store | None:
    """The default store (``None``: in-process memory)."""
    return _store


def settings() -> dict[str, Any]:
    """The settings given to ``configure()`` so far."""
    return dict(_settings)


def set_defaults(store: Store | None, settings: dict[str, Any], *, replace: bool = False) -> None:
    """Apply ``configure()``: validate, then swap the defaults in one step."""
    global _config, _store, _settings
    with _lock:
        merged = dict(settings) if replace else {**_settings, **settings}
        cfg = BreakerConfig.from_mapping(merged)  # raises ConfigError before anything changes
        _settings = merged
        _config = cfg
        if store is not None or replace:
            _store = store
