"""Generate a tree of realistic Python files for the tooling benchmark.

    python benchmarks/gen_tree.py OUT [--files 10000] [--mock-rate 0.01] [--seed 1] [--git]

The tree looks like a mid-sized service monorepo: packages of modules with
imports, dataclasses, classes, sync and async functions, docstrings and
comments, file sizes drawn from a log-normal distribution (median about 3 KB,
a long tail past 40 KB), about 15% of files under ``tests/``.  A share of the
files (``--mock-rate``, default 1%) hold mock breakers in the shapes the guard
and the codemod look for; about 2% more use real ``resilient`` breakers (they
mention "breaker" without being findings); the rest never mention one.

With ``--git`` the tree becomes a git repository with every file added to the
index, so ``git grep`` can search it.  Writes a ``MANIFEST.json`` listing the
mock files.  Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
from pathlib import Path

WORDS = [
    *("account", "auth", "billing", "cache", "catalog", "checkout", "client", "config"),
    *("customer", "delivery", "discount", "email", "event", "feature", "gateway", "health"),
    *("inventory", "invoice", "ledger", "login", "metrics", "notification", "order"),
    *("payment", "pricing", "profile", "queue", "rating", "refund", "report", "search"),
    *("session", "shipment", "signup", "stock", "subscription", "tax", "tenant", "token"),
    *("upload", "user", "voucher", "warehouse", "webhook"),
]
VERBS = ["build", "fetch", "load", "parse", "render", "resolve", "save", "send", "sync"]
VERBS += ["update", "validate"]

HEADER = '''"""{title}.

This module is part of the {pkg} service.  It was generated for the tooling
benchmark and reads like ordinary application code.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)
'''

DATACLASS = '''

@dataclass
class {Name}:
    """A {word} record as stored by the {pkg} service."""

    id: int
    name: str
    tags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise for the message bus."""
        return json.dumps({{"id": self.id, "name": self.name, "tags": self.tags}})

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> {Name}:
        # rows come from the {word} table
        return cls(id=int(row["id"]), name=str(row["name"]), tags=list(row.get("tags", [])))
'''

FUNC = '''

def {verb}_{word}(items: list[dict[str, Any]], limit: int = {n}) -> list[str]:
    """{Verb} up to ``limit`` {word} entries and return their keys."""
    out: list[str] = []
    for i, item in enumerate(items):
        if i >= limit:
            break
        key = f"{{item.get('kind', '{word}')}}:{{item.get('id', i)}}"
        if key in out:
            logger.debug("duplicate %s", key)
            continue
        out.append(key)
    return out
'''

ASYNC_FUNC = '''

async def {verb}_{word}_remote(client: Any, key: str, retries: int = {n}) -> dict[str, Any]:
    """Ask the {word} service for ``key``; retried on timeouts."""
    for attempt in range(retries):
        try:
            response = await client.get(f"/{word}/{{key}}", timeout=5)
            return dict(response.json())
        except asyncio.TimeoutError:
            logger.warning("{word} lookup timed out (attempt %d)", attempt)
            await asyncio.sleep(0)
    return {{}}
'''

SERVICE = '''

class {Name}Service:
    """Coordinates {word} operations for request handlers."""

    def __init__(self, repo: Any, cache: dict[str, Any] | None = None) -> None:
        self._repo = repo
        self._cache = cache if cache is not None else {{}}

    def get(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        value = self._repo.load(key)
        self._cache[key] = value
        return value

    def export(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self._cache, fh)
'''

TEST = '''

def test_{verb}_{word}() -> None:
    """{Verb} keeps order and drops duplicates."""
    items = [{{"id": 1}}, {{"id": 1}}, {{"id": 2}}]
    assert len(items) == 3
'''

REAL_BREAKER = '''

from resilient import circuit_breaker, get_breaker

_breaker = get_breaker("{pkg}.{word}", failure_threshold=5, recovery_timeout=30)


@circuit_breaker("{pkg}.{word}.fetch", fallback="_cached")
async def fetch_{word}(key: str) -> dict[str, Any]:
    """Fetch through the real breaker."""
    return await _breaker.acall(asyncio.sleep, 0, result={{}})
'''

MOCK_SHAPES = (
    '''

class MockCircuitBreaker:
    """Stand-in until the real breaker lands."""

    def __init__(self, name: str, failure_threshold: int = 5, recovery_timeout: int = 60):
        self.name = name
        self.is_open = False
        self.failure_count = 0

    async def call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        if self.is_open:
            raise RuntimeError(f"Circuit breaker {{self.name}} is open")
        try:
            return await func(*args, **kwargs)
        except Exception:
            self.failure_count += 1
            self.is_open = True
            raise


class BreakerManager:
    def __init__(self) -> None:
        self._breakers: dict[str, MockCircuitBreaker] = {{}}

    def get_breaker(self, name: str) -> MockCircuitBreaker:
        if name not in self._breakers:
            self._breakers[name] = MockCircuitBreaker(name)
        return self._breakers[name]
''',
    """

from {pkg}.breakers import MockCircuitBreaker

_{word}_breaker = MockCircuitBreaker("{word}", failure_threshold=3, recovery_timeout=5)


async def guarded_{word}(key: str) -> Any:
    return await _{word}_breaker.call({verb}_{word}_remote, None, key)
""",
    """

from {pkg}.breakers import MockCircuitBreaker as CB


def make_{word}_breaker(simulation: bool) -> Any:
    if simulation:
        return CB("{word}")
    raise NotImplementedError
""",
    """

from unittest.mock import MagicMock

{word}_breaker = MagicMock()
""",
)


def _name(rng: random.Random) -> str:
    return "".join(w.capitalize() for w in rng.sample(WORDS, 2))


def _module(rng: random.Random, pkg: str, target: int, *, kind: str) -> str:
    title = f"{rng.choice(VERBS).capitalize()} {rng.choice(WORDS)} helpers"
    parts = [HEADER.format(title=title, pkg=pkg)]
    if kind == "mock":
        shape = rng.choice(MOCK_SHAPES)
        parts.append(shape.format(pkg=pkg, word=rng.choice(WORDS), verb=rng.choice(VERBS)))
    elif kind == "real":
        parts.append(REAL_BREAKER.format(pkg=pkg, word=rng.choice(WORDS)))
    size = sum(len(p) for p in parts)
    blocks = (DATACLASS, FUNC, ASYNC_FUNC, SERVICE) if kind != "test" else (TEST, FUNC)
    while size < target:
        block = rng.choice(blocks)
        word = rng.choice(WORDS)
        verb = rng.choice(VERBS)
        text = block.format(
            Name=_name(rng) + str(rng.randint(0, 999)),
            word=word,
            verb=verb,
            Verb=verb.capitalize(),
            pkg=pkg,
            n=rng.randint(2, 50),
        )
        parts.append(text)
        size += len(text)
    return "".join(parts)


def generate(out: Path, *, files: int, mock_rate: float, seed: int) -> dict[str, object]:
    """Write the tree; returns a manifest (counts and the mock files)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    n_mock = round(files * mock_rate)
    n_real = round(files * 0.02)
    kinds = ["mock"] * n_mock + ["real"] * n_real + ["plain"] * (files - n_mock - n_real)
    rng.shuffle(kinds)
    mock_files: list[str] = []
    total = 0
    per_pkg = 40
    for i, kind in enumerate(kinds):
        pkg = f"svc{i // per_pkg:03d}"
        is_test = kind == "plain" and rng.random() < 0.15
        # log-normal sizes: median ~3 KB, long tail
        target = int(min(60_000, max(300, math.exp(rng.gauss(math.log(3000), 0.8)))))
        if is_test:
            rel = Path(pkg) / "tests" / f"test_{rng.choice(WORDS)}_{i}.py"
            text = _module(rng, pkg, target, kind="test")
        else:
            rel = Path(pkg) / pkg / f"{rng.choice(WORDS)}_{i}.py"
            text = _module(rng, pkg, target, kind=kind)
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        total += len(text)
        if kind == "mock":
            mock_files.append(rel.as_posix())
    manifest: dict[str, object] = {
        "files": files,
        "bytes": total,
        "mock_files": sorted(mock_files),
        "seed": seed,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def make_git_repo(out: Path) -> None:
    """Turn the tree into a git repository with every file in the index."""
    env_args = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "-q", str(out)], check=True)
    subprocess.run(["git", *env_args, "-C", str(out), "add", "-A"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mock-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--git", action="store_true", help="make it a git repository")
    args = parser.parse_args()
    manifest = generate(args.out, files=args.files, mock_rate=args.mock_rate, seed=args.seed)
    if args.git:
        make_git_repo(args.out)
    mocks = manifest["mock_files"]
    assert isinstance(mocks, list)
    print(
        f"wrote {manifest['files']} files, {manifest['bytes']} bytes, "
        f"{len(mocks)} with mock breakers, to {args.out}"
    )


if __name__ == "__main__":
    main()
