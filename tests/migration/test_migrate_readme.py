"""The README's `resilient migrate` example is the real output on the tree it describes."""

from __future__ import annotations

import re
from pathlib import Path

from .fixtures_migrate import run_cli, write_tree

README = Path(__file__).resolve().parents[2] / "README.md"

EXAMPLE = {
    "app/__init__.py": "",
    "app/breakers.py": """\
        from typing import Dict


        class MockCircuitBreaker:
            def __init__(self, name: str) -> None:
                self.name = name
                self.is_open = False

            async def call(self, func, *args, **kwargs):
                if self.is_open:
                    raise RuntimeError(f"Circuit breaker {self.name} is open")
                try:
                    return await func(*args, **kwargs)
                except Exception:
                    self.is_open = True  # never closes again
                    raise


        class CircuitBreakerManager:
            def __init__(self) -> None:
                self._breakers: Dict[str, MockCircuitBreaker] = {}

            def get_breaker(self, name: str) -> MockCircuitBreaker:
                if name not in self._breakers:
                    self._breakers[name] = MockCircuitBreaker(name)
                return self._breakers[name]


        circuit_breaker_manager = CircuitBreakerManager()
        """,
    "app/client.py": """\
        from .breakers import circuit_breaker_manager


        class AuthClient:
            def __init__(self) -> None:
                self._breaker = circuit_breaker_manager.get_breaker("auth.validate_token")

            async def validate_token(self, token: str) -> dict:
                try:
                    return await self._breaker.call(self._validate_token_remote, token)
                except Exception:
                    return self._validate_locally(token)
        """,
    "app/sim.py": """\
        import os

        from .breakers import MockCircuitBreaker


        def make_breaker(name):
            if os.environ.get("SIMULATION_MODE"):
                return MockCircuitBreaker(name)
            return None
        """,
}


def _readme_console() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[
        text.index("<!-- section: migrate -->") : text.index("<!-- /section: migrate -->")
    ]
    match = re.search(r"```console\n\$ resilient migrate\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None
    return match.group(1)


def test_readme_example_is_the_real_output(tmp_path: Path) -> None:
    """Diff, manual sites and summary in the README match a run on the example tree."""
    write_tree(tmp_path, EXAMPLE)
    run = run_cli(tmp_path)
    assert run.code == 0, run.err
    assert run.out + run.err == _readme_console()
