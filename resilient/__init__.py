"""resilient: circuit breakers for sync and async Python, applied as decorators.

::

    from resilient import circuit_breaker

    @circuit_breaker("auth.validate_token", fallback="_validate_locally",
                     failure_threshold=5, recovery_timeout=30, ignore=(InvalidToken,))
    async def validate_token(self, token: str) -> Claims: ...

``import resilient`` loads only the standard library; wrapt is imported when
the first function is decorated, and optional parts (Redis, LibCST,
Prometheus, OpenTelemetry, the demo) only when used.
"""

from __future__ import annotations

from typing import Any

from ._breaker import BreakerMetrics, CircuitBreaker
from ._config import BreakerConfig
from ._decorator import circuit_breaker
from ._errors import CallTimeoutError, CircuitOpenError, ConfigError, ResilientError
from ._events import BreakerEvent, Listener, add_listener, remove_listener
from ._registry import breakers, configure, get_breaker, health
from ._state import State

__all__ = [
    "BreakerConfig",
    "BreakerEvent",
    "BreakerMetrics",
    "CallTimeoutError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "Listener",
    "ResilientError",
    "State",
    "add_listener",
    "breakers",
    "circuit_breaker",
    "configure",
    "get_breaker",
    "health",
    "remove_listener",
]

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__"):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover - builtins
            pass
del _name, _obj


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("resilient")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
