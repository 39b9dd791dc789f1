"""Process-wide defaults set by :func:`resilient.configure`.

Kept in their own module so the breaker and the registry can both read them
without importing each other.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._config import BreakerConfig
from ._errors import ConfigError

if TYPE_CHECKING:
    from .stores import Store

_lock = threading.Lock()
_settings: dict[str, Any] = {}
_config = BreakerConfig()
_store: Store | None = None


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


def resolve(settings: dict[str, Any]) -> tuple[BreakerConfig, list[str]]:
    """A breaker's own ``settings`` on top of the ``configure()`` defaults.

    The breaker's settings always win: a default that contradicts them (say
    ``max_recovery_timeout=60`` against the breaker's ``recovery_timeout=120``)
    is dropped for this breaker and returned as ``"name=value"`` in the list.
    """
    try:
        return BreakerConfig.from_mapping(settings, base=_config), []
    except ConfigError:
        pass
    cfg = BreakerConfig.from_mapping(settings)  # valid: checked when the breaker was built
    dropped: list[str] = []
    for key, value in _settings.items():
        if key in settings:
            continue
        try:
            cfg = cfg.replace(**{key: value})
        except ConfigError:
            dropped.append(f"{key}={value!r}")
    return cfg, dropped
