"""``resilient migrate``: one before/after pair per shape of issue 3, each also run twice.

Every test writes a small tree, runs the real pipeline (index, analysis, plan,
rewrite) in this process with ``--write``, compares every file with the
expected result (files not listed must stay byte-identical) and the manual
sites with the expected ones, then runs it again on the result: the
after-to-after case, where nothing may change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .fixtures_migrate import assert_migrates, migrate, write_tree

MOCK_MODULE = """\
    \"\"\"Circuit breakers (MockCircuitBreaker until the real one lands).\"\"\"
    import logging
    import time
    from typing import Any, Callable, Dict

    logger = logging.getLogger(__name__)


    class MockCircuitBreaker:
        \"\"\"Opens on the first error and never closes again.\"\"\"

        def __init__(self, name: str, failure_threshold: int = 5, recovery_timeout: int = 60):
            self.name = name
            self.failure_threshold = failure_threshold
            self.recovery_timeout = recovery_timeout
            self.is_open = False
            self.failure_count = 0

        async def call(self, func: Callable, *args: Any, **kwargs: Any) -> Any:
            if self.is_open:
                raise Exception(f"Circuit breaker {self.name} is open")
            try:
                result = await func(*args, **kwargs)
                self.record_success()
                return result
            except Exception:
                self.record_failure()
                raise

        def record_failure(self) -> None:
            self.failure_count += 1
            self.is_open = True
            logger.warning("breaker %s opened at %s", self.name, time.time())

        def record_success(self) -> None:
            self.failure_count = 0

        def reset(self) -> None:
            self.is_open = False
            self.failure_count = 0

        def get_status(self) -> Dict[str, Any]:
            return {"name": self.name, "is_open": self.is_open}


    class CircuitBreakerManager:
        def __init__(self) -> None:
            self._breakers: Dict[str, MockCircuitBreaker] = {}

        def get_breaker(self, name: str) -> MockCircuitBreaker:
            if name not in self._breakers:
                self._breakers[name] = MockCircuitBreaker(name)
            return self._breakers[name]


    circuit_breaker_manager = CircuitBreakerManager()

    __all__ = ["MockCircuitBreaker", "CircuitBreakerManager", "circuit_breaker_manager"]
"""

MIGRATED_MODULE = """\
    \"\"\"Circuit breakers (MockCircuitBreaker until the real one lands).\"\"\"
    import logging
    from typing import Dict
    from resilient import CircuitBreaker, get_breaker

    logger = logging.getLogger(__name__)


    class CircuitBreakerManager:
        def __init__(self) -> None:
            self._breakers: Dict[str, CircuitBreaker] = {}

        def get_breaker(self, name: str) -> CircuitBreaker:
            if name not in self._breakers:
                self._breakers[name] = get_breaker(name)
            return self._breakers[name]


    circuit_breaker_manager = CircuitBreakerManager()

    __all__ = ["CircuitBreakerManager", "circuit_breaker_manager"]
"""

AUTH_CLIENT = """\
    from ..core.circuit_breaker import circuit_breaker_manager


    class AuthClient:
        def __init__(self) -> None:
            self._breaker = circuit_breaker_manager.get_breaker("_validate_token_remote_breaker")

        async def validate_token(self, token: str) -> dict:
            try:
                return await self._breaker.call(self._validate_token_remote, token)
            except Exception:
                return self._validate_locally(token)

        async def refresh(self, token: str) -> dict:
            breaker = circuit_breaker_manager.get_breaker("refresh")
            if breaker.is_open:
                return {}
            return await breaker.call(self._validate_token_remote, token)

        async def _validate_token_remote(self, token: str) -> dict:
            return {"sub": token}

        def _validate_locally(self, token: str) -> dict:
            return {"sub": token, "local": True}
"""

PACKAGES = {"app/__init__.py": "", "app/core/__init__.py": "", "app/auth/__init__.py": ""}


# -- the incident: a mock module with a manager, and callers elsewhere ----------------------


def test_manager_module_migrates_and_unused_mock_is_removed(tmp_path: Path) -> None:
    """The manager hands out get_breaker(name); the mock, its imports and __all__ entry go."""
    assert_migrates(
        tmp_path,
        {**PACKAGES, "app/core/circuit_breaker.py": MOCK_MODULE},
        {"app/core/circuit_breaker.py": MIGRATED_MODULE},
    )


def test_callers_in_another_module_await_acall(tmp_path: Path) -> None:
    """`await breaker.call(...)` on a breaker from the manager becomes `acall`, in both forms."""
    assert_migrates(
        tmp_path,
        {
            **PACKAGES,
            "app/core/circuit_breaker.py": MOCK_MODULE,
            "app/auth/client.py": AUTH_CLIENT,
        },
        {
            "app/core/circuit_breaker.py": MIGRATED_MODULE,
            "app/auth/client.py": AUTH_CLIENT.replace(".call(", ".acall("),
        },
    )


SYNC_MOCK = """\
    class MockCircuitBreaker:
        def __init__(self, name, failure_threshold=5, recovery_timeout=60,
                     timeout_seconds=None, half_open_max_calls=1):
            self.name = name
            self.is_open = False
            self.failure_count = 0

        def call(self, func, *args, **kwargs):
            if self.is_open:
                raise RuntimeError("open")
            return func(*args, **kwargs)

        def is_closed(self):
            return not self.is_open

        def reset(self):
            self.is_open = False
"""


def _with_sync_mock(module: str) -> dict[str, str]:
    return {"app/__init__.py": "", "app/cb.py": SYNC_MOCK, "app/svc.py": module}


def test_sync_call_stays_and_awaited_call_becomes_acall(tmp_path: Path) -> None:
    """A sync mock's `call()` keeps its name; awaited, it becomes `acall()`."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker

            breakers = {}


            def run(func):
                breaker = MockCircuitBreaker("sync")
                return breaker.call(func, 1)


            async def arun(func):
                breaker = MockCircuitBreaker("async")
                return await breaker.call(func, 1)


            def inline(func):
                return MockCircuitBreaker("inline").call(func)
            """
        ),
        {
            "app/svc.py": """\
            from resilient import get_breaker

            breakers = {}


            def run(func):
                breaker = get_breaker("sync")
                return breaker.call(func, 1)


            async def arun(func):
                breaker = get_breaker("async")
                return await breaker.acall(func, 1)


            def inline(func):
                return get_breaker("inline").call(func)
            """,
            "app/cb.py": "",
        },
    )


# -- construction ----------------------------------------------------------------------------


def test_positional_and_keyword_settings_become_get_breaker_keywords(tmp_path: Path) -> None:
    """Positional settings become keywords; timeout_seconds maps to call_timeout."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker


            class Payments:
                def __init__(self):
                    self.a = MockCircuitBreaker("payments", 3, 5)
                    self.b = MockCircuitBreaker(
                        "refunds",
                        failure_threshold=3,
                        recovery_timeout=5,
                        timeout_seconds=10,
                        half_open_max_calls=2,
                    )
                    self.c = MockCircuitBreaker(failure_threshold=2, name="ledger")
            """
        ),
        {
            "app/svc.py": """\
            from resilient import get_breaker


            class Payments:
                def __init__(self):
                    self.a = get_breaker("payments", failure_threshold=3, recovery_timeout=5)
                    self.b = get_breaker(
                        "refunds",
                        failure_threshold=3,
                        recovery_timeout=5,
                        call_timeout=10,
                        half_open_max_calls=2,
                    )
                    self.c = get_breaker("ledger", failure_threshold=2)
            """,
            "app/cb.py": "",
        },
    )


def test_constructions_that_cannot_be_mapped_are_listed_and_left_alone(tmp_path: Path) -> None:
    """No name, an unknown or ambiguous keyword, or *args leave the code as it is."""
    module = """\
        from app.cb import MockCircuitBreaker


        def build(opts):
            a = MockCircuitBreaker()
            b = MockCircuitBreaker("b", expected_exception=KeyError)
            c = MockCircuitBreaker("c", timeout=3)
            d = MockCircuitBreaker(*opts)
            return a, b, c, d
        """
    assert_migrates(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": (
                "class MockCircuitBreaker:\n    def __init__(self, name, **settings): pass\n"
            ),
            "app/svc.py": module,
        },
        {},
        manual=(
            "app/cb.py:1: kept: still referenced",
            "app/svc.py:5: no breaker name",
            "app/svc.py:6: `expected_exception` has no resilient equivalent",
            "app/svc.py:7: `timeout` is ambiguous",
            "app/svc.py:8: called with `*args`/`**kwargs`",
            "app/svc.py:1: import of mock `MockCircuitBreaker` kept",
        ),
    )


def test_one_name_with_two_configurations_is_listed(tmp_path: Path) -> None:
    """get_breaker() refuses one name with two configs, so both sites stay manual."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker


            def one():
                return MockCircuitBreaker("shared", failure_threshold=3)


            def two():
                return MockCircuitBreaker("shared", failure_threshold=4)
            """
        ),
        {},
        manual=(
            "app/cb.py:1: kept: still referenced",
            "app/svc.py:1: import of mock",
            "app/svc.py:5: built with different settings",
            "app/svc.py:9: built with different settings",
        ),
    )


# -- uses of a migrated breaker ----------------------------------------------------------------


def test_with_blocks_reads_and_reset_are_kept_and_writes_become_trip_reset(
    tmp_path: Path,
) -> None:
    """`with`/`async with`, is_open reads and reset() stay; flag writes become trip()/reset()."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker


            class Svc:
                def __init__(self):
                    self.breaker = MockCircuitBreaker("svc")

                def work(self):
                    with self.breaker:
                        return 1

                async def awork(self):
                    async with self.breaker:
                        return 2

                def healthy(self):
                    return not self.breaker.is_open and self.breaker.is_closed()

                def open_now(self):
                    self.breaker.is_open = True

                def close_now(self):
                    self.breaker.is_open = False
                    self.breaker.failure_count = 0

                def by_state(self):
                    self.breaker.state = "open"

                def by_state_closed(self):
                    self.breaker.state = "CLOSED"
                    self.breaker.last_failure_time = None

                def clear(self):
                    self.breaker.reset()
            """
        ),
        {
            "app/svc.py": """\
            from resilient import get_breaker


            class Svc:
                def __init__(self):
                    self.breaker = get_breaker("svc")

                def work(self):
                    with self.breaker:
                        return 1

                async def awork(self):
                    async with self.breaker:
                        return 2

                def healthy(self):
                    return not self.breaker.is_open and self.breaker.is_closed

                def open_now(self):
                    self.breaker.trip()

                def close_now(self):
                    self.breaker.reset()

                def by_state(self):
                    self.breaker.trip()

                def by_state_closed(self):
                    self.breaker.reset()

                def clear(self):
                    self.breaker.reset()
            """,
            "app/cb.py": "",
        },
    )


def test_unsupported_use_blocks_the_class_and_everything_stays(tmp_path: Path) -> None:
    """`get_status()`, a lone counter write, a half-open write: listed, nothing rewritten."""
    mock = MOCK_MODULE.replace(
        "circuit_breaker_manager = CircuitBreakerManager()",
        "circuit_breaker_manager = CircuitBreakerManager()\n\n\n"
        "    def statuses():\n"
        "        return {n: b.get_status() for n, b in circuit_breaker_manager._breakers.items()}",
    )
    client = """\
        from app.core.circuit_breaker import circuit_breaker_manager


        def poke():
            b = circuit_breaker_manager.get_breaker("x")
            b.failure_count = 0
            b.state = "half_open"
        """
    result = assert_migrates(
        tmp_path,
        {**PACKAGES, "app/core/circuit_breaker.py": mock, "app/poke.py": client},
        {},
        manual=(
            "app/core/circuit_breaker.py:9: class of `MockCircuitBreaker` not migrated",
            "app/core/circuit_breaker.py:48: reference of `MockCircuitBreaker` not migrated",
            "app/core/circuit_breaker.py:50: reference of `MockCircuitBreaker` not migrated",
            "app/core/circuit_breaker.py:52: construction of `MockCircuitBreaker` not migrated",
            "app/core/circuit_breaker.py:60: `get_status()` has no resilient equivalent",
            "app/core/circuit_breaker.py:62: reference of `MockCircuitBreaker` not migrated",
            "app/poke.py:6: `failure_count` cannot be written",
            'app/poke.py:7: `state = "half_open"` cannot be forced',
        ),
    )
    assert "blocks the migration of MockCircuitBreaker" in "\n".join(result.manual)


def test_is_open_write_with_a_computed_value_blocks(tmp_path: Path) -> None:
    """`b.is_open = flag` has no literal meaning: the class is left alone."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker


            def f(flag):
                b = MockCircuitBreaker("x")
                b.is_open = flag
            """
        ),
        {},
        manual=(
            "app/cb.py:1: class of `MockCircuitBreaker` not migrated",
            "app/svc.py:1: import of `MockCircuitBreaker` not migrated",
            "app/svc.py:5: construction of `MockCircuitBreaker` not migrated",
            "app/svc.py:6: `is_open` is read-only",
        ),
    )


def test_isinstance_against_the_mock_blocks(tmp_path: Path) -> None:
    """isinstance(x, Mock) would turn False after the migration: left alone and listed."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker


            def f(x):
                b = MockCircuitBreaker("x")
                return isinstance(x, MockCircuitBreaker), b
            """
        ),
        {},
        manual=(
            "app/cb.py:1: class of `MockCircuitBreaker` not migrated",
            "app/svc.py:1: import of `MockCircuitBreaker` not migrated",
            "app/svc.py:5: construction of `MockCircuitBreaker` not migrated",
            "app/svc.py:6: isinstance()/issubclass() would be False",
            "app/svc.py:6: reference of `MockCircuitBreaker` not migrated",
        ),
    )


def test_a_value_that_may_be_mock_or_migrated_blocks(tmp_path: Path) -> None:
    """One attribute fed by a migratable site and by a manual one cannot be rewritten."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            import os

            from app.cb import MockCircuitBreaker


            class Svc:
                def __init__(self):
                    if os.environ.get("SIMULATION"):
                        self.b = MockCircuitBreaker("sim")
                    self.b = MockCircuitBreaker("real")

                async def go(self, f):
                    return await self.b.call(f)
            """
        ),
        {},
        manual=(
            "app/cb.py:1: class of `MockCircuitBreaker` not migrated",
            "app/svc.py:3: import of `MockCircuitBreaker` not migrated",
            'app/svc.py:9: chosen on purpose under `if os.environ.get("SIMULATION"):`',
            "app/svc.py:10: construction of `MockCircuitBreaker` not migrated",
            "app/svc.py:13: may be a migrated breaker or a mock that stays",
        ),
    )


# -- imports and annotations -----------------------------------------------------------------


def test_aliased_relative_and_module_imports_are_seen_through(tmp_path: Path) -> None:
    """`as CB`, `from .cb import`, `import app.cb as m; m.Mock(...)`: all rewritten."""
    assert_migrates(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": SYNC_MOCK,
            "app/a.py": """\
                from app.cb import MockCircuitBreaker as CB


                def a():
                    return CB("a")
                """,
            "app/b.py": """\
                from .cb import MockCircuitBreaker


                def b():
                    return MockCircuitBreaker("b")
                """,
            "app/c.py": """\
                import app.cb as m


                def c():
                    return m.MockCircuitBreaker("c")
                """,
        },
        {
            "app/a.py": """\
                from resilient import get_breaker


                def a():
                    return get_breaker("a")
                """,
            "app/b.py": """\
                from resilient import get_breaker


                def b():
                    return get_breaker("b")
                """,
            "app/c.py": """\
                from resilient import get_breaker


                def c():
                    return get_breaker("c")
                """,
            "app/cb.py": "",
        },
    )


def test_annotations_also_string_and_type_checking_only_imports(tmp_path: Path) -> None:
    """Annotations name CircuitBreaker; an emptied `if TYPE_CHECKING:` block goes away."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from __future__ import annotations

            from typing import TYPE_CHECKING, Optional

            if TYPE_CHECKING:
                from app.cb import MockCircuitBreaker


            class Client:
                def __init__(self, breaker: "MockCircuitBreaker") -> None:
                    self.breaker = breaker

                async def go(self, f):
                    return await self.breaker.call(f)


            def pick(
                b: Optional["MockCircuitBreaker"], c: MockCircuitBreaker | None
            ) -> "MockCircuitBreaker":
                return b or c
            """
        ),
        {
            "app/svc.py": """\
            from __future__ import annotations

            from typing import Optional
            from resilient import CircuitBreaker


            class Client:
                def __init__(self, breaker: "CircuitBreaker") -> None:
                    self.breaker = breaker

                async def go(self, f):
                    return await self.breaker.acall(f)


            def pick(
                b: Optional["CircuitBreaker"], c: CircuitBreaker | None
            ) -> "CircuitBreaker":
                return b or c
            """,
            "app/cb.py": "",
        },
    )


def test_reexport_in_package_all_is_listed_and_keeps_the_class(tmp_path: Path) -> None:
    """A name re-exported in `__all__` is public API: left alone and listed; the mock stays."""
    assert_migrates(
        tmp_path,
        {
            "app/__init__.py": """\
                from .cb import MockCircuitBreaker

                __all__ = ["MockCircuitBreaker"]
                """,
            "app/cb.py": SYNC_MOCK,
            "app/svc.py": """\
                from app import MockCircuitBreaker


                def f():
                    return MockCircuitBreaker("f")
                """,
        },
        {
            "app/svc.py": """\
                from resilient import get_breaker


                def f():
                    return get_breaker("f")
                """,
        },
        manual=(
            "app/__init__.py:1: re-exported (imported into the package's __init__): public API",
            "app/__init__.py:3: re-exported (listed in __all__): public API",
            "app/cb.py:1: mock class `MockCircuitBreaker` kept: still referenced at "
            "app/__init__.py:1 (import), app/__init__.py:1 (reexport), app/__init__.py:3",
        ),
    )


def test_mock_still_imported_by_a_test_is_not_deleted(tmp_path: Path) -> None:
    """Production code migrates; the class stays because a test imports it, and is listed."""
    result = assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker


            def f():
                return MockCircuitBreaker("f")
            """
        )
        | {
            "tests/test_cb.py": """\
                from app.cb import MockCircuitBreaker


                def test_calls():
                    assert MockCircuitBreaker("t").call(lambda: 1) == 1
                """
        },
        {
            "app/svc.py": """\
            from resilient import get_breaker


            def f():
                return get_breaker("f")
            """
        },
        manual=("app/cb.py:1: tests still use it (tests/test_cb.py:1 (import)",),
    )
    assert "class MockCircuitBreaker" in result.text("app/cb.py")


def test_mock_patched_by_name_in_a_test_is_not_deleted(tmp_path: Path) -> None:
    """`patch("app.cb.MockCircuitBreaker")` in a test is a reference too."""
    assert_migrates(
        tmp_path,
        _with_sync_mock("from app.cb import MockCircuitBreaker\n\n\ndef f():\n    return 1\n")
        | {
            "tests/test_cb.py": """\
                from unittest.mock import patch


                def test_patch():
                    with patch("app.cb.MockCircuitBreaker"):
                        pass
                """
        },
        {"app/svc.py": "\n\ndef f():\n    return 1\n"},
        manual=("app/cb.py:1: tests still use it (tests/test_cb.py:5 (string)",),
    )


def test_name_clash_with_an_existing_get_breaker_uses_an_alias(tmp_path: Path) -> None:
    """A module with its own `get_breaker` imports resilient's under another name."""
    assert_migrates(
        tmp_path,
        _with_sync_mock(
            """\
            from app.cb import MockCircuitBreaker

            _registry = {}


            def get_breaker(name):
                if name not in _registry:
                    _registry[name] = MockCircuitBreaker(name)
                return _registry[name]
            """
        ),
        {
            "app/svc.py": """\
            from resilient import get_breaker as resilient_get_breaker

            _registry = {}


            def get_breaker(name):
                if name not in _registry:
                    _registry[name] = resilient_get_breaker(name)
                return _registry[name]
            """,
            "app/cb.py": "",
        },
    )


def test_module_level_registry_dict_and_its_callers(tmp_path: Path) -> None:
    """A module-level dict filled with mocks is followed into callers of its getter."""
    assert_migrates(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": SYNC_MOCK,
            "app/registry.py": """\
                from app.cb import MockCircuitBreaker

                _BREAKERS: dict = {}


                def breaker_for(name):
                    if name not in _BREAKERS:
                        _BREAKERS[name] = MockCircuitBreaker(name)
                    return _BREAKERS[name]
                """,
            "app/user.py": """\
                from app.registry import breaker_for


                async def go(f):
                    b = breaker_for("users")
                    b.is_open = False
                    return await b.call(f)
                """,
        },
        {
            "app/registry.py": """\
                from resilient import get_breaker

                _BREAKERS: dict = {}


                def breaker_for(name):
                    if name not in _BREAKERS:
                        _BREAKERS[name] = get_breaker(name)
                    return _BREAKERS[name]
                """,
            "app/user.py": """\
                from app.registry import breaker_for


                async def go(f):
                    b = breaker_for("users")
                    b.reset()
                    return await b.acall(f)
                """,
            "app/cb.py": "",
        },
    )


# -- what stays manual -------------------------------------------------------------------------

DUMMY = """\
    class DummyBreaker:
        def __init__(self, name="dummy"):
            self.name = name

        def call(self, func, *args, **kwargs):
            return func(*args, **kwargs)
"""


def test_injected_dummy_singleton_and_simulation_factory_are_left_and_listed(
    tmp_path: Path,
) -> None:
    """Constructor injection, a module-level singleton and a simulation mode stay as they are."""
    assert_migrates(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": DUMMY,
            "app/svc.py": """\
                import os

                from app.cb import DummyBreaker

                shared = DummyBreaker("shared")


                class Client:
                    def __init__(self, breaker=None):
                        self.breaker = breaker or DummyBreaker()

                    def run(self, f):
                        return self.breaker.call(f)


                class Other:
                    def __init__(self, breaker=DummyBreaker("other")):
                        self.breaker = breaker


                def make(name):
                    if os.environ.get("SIMULATION_MODE"):
                        return DummyBreaker(name)
                    return None


                def wire():
                    return Client(breaker=DummyBreaker("wired"))
                """,
        },
        {},
        manual=(
            "app/cb.py:1: mock class `DummyBreaker` kept: still referenced",
            "app/svc.py:3: import of mock `DummyBreaker` kept: still used",
            "app/svc.py:5: module-level singleton",
            "app/svc.py:10: fallback in `... or/and Mock(...)`: an injectable dummy",
            "app/svc.py:17: default value of parameter `breaker`",
            'app/svc.py:23: chosen on purpose under `if os.environ.get("SIMULATION_MODE"):`',
            "app/svc.py:28: passed as an argument (an injected dummy)",
        ),
    )


def test_pass_through_when_the_library_is_missing_is_listed(tmp_path: Path) -> None:
    """`except ImportError:` and availability-flag stand-ins are listed, never rewritten."""
    assert_migrates(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": """\
                try:
                    import pybreaker
                except ImportError:
                    class CircuitBreaker:
                        def __init__(self, *a, **k):
                            pass

                        def call(self, func, *args, **kwargs):
                            return func(*args, **kwargs)
                """,
            "app/flag.py": """\
                try:
                    from circuitbreaker import circuit
                    CIRCUITBREAKER_AVAILABLE = True
                except ImportError:
                    CIRCUITBREAKER_AVAILABLE = False

                if not CIRCUITBREAKER_AVAILABLE:
                    def circuit(*args, **kwargs):
                        return lambda f: f
                """,
            "app/noop.py": """\
                try:
                    from resilient import get_breaker
                except ImportError:
                    class NoOpBreaker:
                        def call(self, func, *args, **kwargs):
                            return func(*args, **kwargs)


                def make():
                    return NoOpBreaker("x")
                """,
        },
        {},
        manual=(
            "app/cb.py:4: RES006 pass-through-breaker",
            "app/flag.py:8: RES006 pass-through-breaker",
            "app/noop.py:4: mock class `NoOpBreaker` kept",
            "app/noop.py:10: `NoOpBreaker` is a stand-in defined in an `except ImportError:`",
        ),
    )


def test_mentions_in_comments_docstrings_and_strings_change_nothing(tmp_path: Path) -> None:
    """Prose about MockCircuitBreaker is not code: no edit, no manual site."""
    assert_migrates(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/notes.py": '''\
                """We replaced MockCircuitBreaker with resilient."""

                # MockCircuitBreaker used to open forever.
                MESSAGE = "the MockCircuitBreaker opened on the first error"


                def f():
                    """Do not bring back MockCircuitBreaker."""
                    return MESSAGE
                ''',
        },
        {},
    )


def test_tests_are_listed_not_rewritten_unless_included(tmp_path: Path) -> None:
    """A test awaiting `.call()` on a migrated breaker is listed; --include-tests rewrites it."""
    files = {
        **PACKAGES,
        "app/core/circuit_breaker.py": MOCK_MODULE,
        "tests/test_auth.py": """\
            from app.core.circuit_breaker import circuit_breaker_manager


            async def test_call():
                b = circuit_breaker_manager.get_breaker("t")
                assert await b.call(_ok) == 1


            async def _ok():
                return 1
            """,
    }
    assert_migrates(
        tmp_path / "a",
        files,
        {"app/core/circuit_breaker.py": MIGRATED_MODULE},
        manual=("tests/test_auth.py:6: test code needs awaited `call()` -> `acall()`",),
    )
    assert_migrates(
        tmp_path / "b",
        files,
        {
            "app/core/circuit_breaker.py": MIGRATED_MODULE,
            "tests/test_auth.py": str(files["tests/test_auth.py"]).replace(".call(", ".acall("),
        },
        include_tests=True,
    )


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    """Without --write the tree is byte-identical and the diff is reported."""
    write_tree(tmp_path, {**PACKAGES, "app/core/circuit_breaker.py": MOCK_MODULE})
    result = migrate(tmp_path, write=False)
    assert [r.path for r in result.report.changed] == ["app/core/circuit_breaker.py"]
    assert "-class MockCircuitBreaker:" in result.report.changed[0].diff
    assert result.text("app/core/circuit_breaker.py").startswith('"""Circuit breakers')
    assert "class MockCircuitBreaker" in result.text("app/core/circuit_breaker.py")


def test_a_caller_outside_the_paths_given_blocks_the_class(tmp_path: Path) -> None:
    """Migrating only app/core would break app/auth (it awaits .call): nothing changes."""
    write_tree(tmp_path, {".git/HEAD": "ref: refs/heads/main\n", **PACKAGES})
    write_tree(
        tmp_path, {"app/core/circuit_breaker.py": MOCK_MODULE, "app/auth/client.py": AUTH_CLIENT}
    )
    before = migrate(tmp_path, write=False).files
    result = migrate(tmp_path, "app/core")
    assert result.files == before
    assert not result.report.changed
    blockers = [m for m in result.manual if m.startswith("app/auth/client.py:")]
    assert blockers == [
        "app/auth/client.py:10: manual: outside the paths given, needs: awaited `call()` -> "
        "`acall()` (blocks the migration of MockCircuitBreaker)",
        "app/auth/client.py:18: manual: outside the paths given, needs: awaited `call()` -> "
        "`acall()` (blocks the migration of MockCircuitBreaker)",
    ]
    whole = migrate(tmp_path)
    assert [r.path for r in whole.report.changed] == [
        "app/auth/client.py",
        "app/core/circuit_breaker.py",
    ]


def test_an_exception_in_one_file_is_reported_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash while analysing one file fails that file only; the others still migrate."""
    from resilient.migration import _codemod

    real = _codemod.analyze_module

    def flaky(source: str, path: str, *args: object, **kwargs: object) -> object:
        if path == "app/a.py":
            raise RuntimeError("boom")
        return real(source, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_codemod, "analyze_module", flaky)
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": SYNC_MOCK,
            "app/a.py": "from app.cb import MockCircuitBreaker\n\n\ndef a():\n"
            "    return MockCircuitBreaker('a')\n",
            "app/b.py": "from app.cb import MockCircuitBreaker\n\n\ndef b():\n"
            "    return MockCircuitBreaker('b')\n",
        },
    )
    result = migrate(tmp_path)
    assert [(r.path, r.error) for r in result.report.failed] == [
        ("app/a.py", "internal error: RuntimeError('boom')")
    ]
    assert "get_breaker('b')" in result.text("app/b.py")
    assert "MockCircuitBreaker('a')" in result.text("app/a.py")
    assert "class MockCircuitBreaker" in result.text("app/cb.py")
