"""resilient: circuit breakers for sync and async Python, applied as decorators.

::

    from resilient import circuit_breaker

    @circuit_breaker("auth.validate_token", fallback="_validate_locally",
                     failure_threshold=5, recovery_timeout=30, ignore=(InvalidToken,))
    async def validate_token(self, token: str) -> Claims: ...

``import resilient`` costs next to nothing: each public name is loaded from its
private module the first time it is used (PEP 562), wrapt is imported when the
first function is decorated, and optional parts (Redis, LibCST, Prometheus,
OpenTelemetry, the demo) only when used.  So ``resilient check`` (the
pre-commit hook, in ``resilient.migration``) never pays for the runtime.
"""

from __future__ import annotations

import importlib

# ``typing`` is not imported at run time: ``resilient check`` (``resilient.migration``)
# imports this package first, and the pre-commit hook has no use for it.
TYPE_CHECKING = False
if TYPE_CHECKING:
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

_HOMES = {
    "BreakerConfig": "._config",
    "BreakerEvent": "._events",
    "BreakerMetrics": "._breaker",
    "CallTimeoutError": "._errors",
    "CircuitBreaker": "._breaker",
    "CircuitOpenError": "._errors",
    "ConfigError": "._errors",
    "Listener": "._events",
    "ResilientError": "._errors",
    "State": "._state",
    "add_listener": "._events",
    "breakers": "._registry",
    "circuit_breaker": "._decorator",
    "configure": "._registry",
    "get_breaker": "._registry",
    "health": "._registry",
    "remove_listener": "._events",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home, __name__), name)
        try:
            value.__module__ = __name__  # tracebacks and reprs say resilient.X
        except (AttributeError, TypeError):  # pragma: no cover - not settable
            pass
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import version

        return version("resilient")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
