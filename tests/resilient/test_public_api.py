"""The public surface: exported names, their module, and a light import."""

from __future__ import annotations

import json
import subprocess
import sys

import resilient

EXPECTED = [
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


def test_all_is_pinned_and_sorted():
    """__all__ lists exactly the public names, sorted; a change here is an API change."""
    assert resilient.__all__ == EXPECTED
    assert sorted(resilient.__all__) == resilient.__all__


def test_public_names_belong_to_the_package():
    """Tracebacks and reprs show resilient.X, not private module paths."""
    for name in resilient.__all__:
        obj = getattr(resilient, name)
        assert getattr(obj, "__module__", "resilient") == "resilient", name


def test_design_contract_names_importable():
    """Every import name DESIGN.md promises is importable from resilient."""
    from resilient import (  # noqa: F401
        BreakerConfig,
        CallTimeoutError,
        CircuitBreaker,
        CircuitOpenError,
        ConfigError,
        State,
        breakers,
        circuit_breaker,
        configure,
        get_breaker,
        health,
    )


def test_errors_hierarchy():
    """Errors can be caught by category."""
    assert issubclass(resilient.CircuitOpenError, resilient.ResilientError)
    assert issubclass(resilient.CallTimeoutError, TimeoutError)
    assert issubclass(resilient.ConfigError, ValueError)


def test_version_is_available():
    """__version__ comes from the installed metadata."""
    assert resilient.__version__ == "0.1.0"


def test_import_is_light():
    """import resilient loads no optional dependency, not even wrapt or asyncio."""
    code = (
        "import sys, json, resilient, resilient.stores, resilient.testing;"
        "print(json.dumps(sorted(m for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    heavy = {
        "wrapt",
        "asyncio",
        "redis",
        "libcst",
        "httpx",
        "jwt",
        "prometheus_client",
        "opentelemetry",
    }
    assert loaded & heavy == set()


def test_decorating_loads_wrapt_but_nothing_optional():
    """The first decoration imports wrapt, and still nothing optional."""
    code = (
        "import sys, json, resilient\n"
        "@resilient.circuit_breaker\n"
        "def f(): return 1\n"
        "assert f() == 1\n"
        "print(json.dumps(sorted(m for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert "wrapt" in loaded
    assert (
        loaded & {"redis", "libcst", "httpx", "jwt", "prometheus_client", "opentelemetry"} == set()
    )
