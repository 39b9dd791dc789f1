"""Stores for breaker state.

``MemoryStore`` (the default) keeps state in the process.  ``RedisStore`` (extra
``redis``) shares state, counters and half-open permits across a fleet; it is
imported only when first used, so ``import resilient`` never imports redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import FleetLink, FleetVerdict, MemoryStore, Outcome, Store

if TYPE_CHECKING:
    from ._redis import RedisStore

__all__ = ["FleetLink", "FleetVerdict", "MemoryStore", "Outcome", "RedisStore", "Store"]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from ._redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
