"""The public API as type checkers see it.  Never run: only type-checked.

``tests/test_typing.py`` runs mypy (strict, ``warn_unused_ignores``) and pyright on
this file and expects a clean result.  Every ``assert_type`` pins what a user's
checker infers; every ``# type: ignore[code]`` pins an error a user must get, so
the check fails the day that error disappears.
"""

from __future__ import annotations

import functools
from typing import Any

from typing_extensions import assert_type

import resilient
from resilient import (
    BreakerConfig,
    BreakerEvent,
    BreakerMetrics,
    CallTimeoutError,
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    ResilientError,
    State,
    add_listener,
    breakers,
    circuit_breaker,
    configure,
    get_breaker,
    health,
    remove_listener,
)
from resilient.testing import BreakerSandbox, forced_open, isolated


class InvalidTokenError(Exception):
    """A business outcome: never counted."""


# -- functions ------------------------------------------------------------------


@circuit_breaker
def bare(count: int, text: str = "a") -> str:
    return text * count


@circuit_breaker("typing.named", fallback=lambda count: 0, failure_threshold=3, call_timeout=2)
def named(count: int) -> int:
    return count


@circuit_breaker("typing.no_params")
def no_params() -> float:
    return 1.0


@circuit_breaker("typing.keyword_only", ignore=(InvalidTokenError,))
def keyword_only(*, token: str) -> bool:
    return bool(token)


@circuit_breaker
async def fetch(url: str, *, retries: int = 1) -> bytes:
    return url.encode() * retries


# -- methods ----------------------------------------------------------------------


class Client:
    @circuit_breaker("typing.client.validate", fallback="_validate_locally")
    def validate(self, token: str, *, strict: bool = True) -> dict[str, int]:
        return {token: int(strict)}

    def _validate_locally(self, token: str, *, strict: bool = True) -> dict[str, int]:
        return {}

    @circuit_breaker("typing.client.avalidate")
    async def avalidate(self, token: str) -> int:
        return len(token)

    @circuit_breaker("typing.client.build")
    @classmethod
    def build(cls, url: str) -> list[str]:
        return [url]

    @circuit_breaker("typing.client.abuild")
    @classmethod
    async def abuild(cls, url: str) -> tuple[str, ...]:
        return (url,)

    @circuit_breaker("typing.client.parse")
    @staticmethod
    def parse(raw: bytes) -> set[int]:
        return set(raw)

    @circuit_breaker("typing.client.aparse")
    @staticmethod
    async def aparse(raw: bytes) -> frozenset[int]:
        return frozenset(raw)

    @circuit_breaker("typing.client.ping")
    @staticmethod
    def ping() -> None:
        return None


class SubClient(Client):
    pass


async def decorated() -> None:
    client = Client()

    # Functions keep their parameters, by position and by keyword, and their result.
    assert_type(bare(2), str)
    assert_type(bare(2, "b"), str)
    assert_type(bare(count=2, text="b"), str)
    assert_type(named(1), int)
    assert_type(no_params(), float)
    assert_type(keyword_only(token="t"), bool)
    assert_type(await fetch("u"), bytes)
    assert_type(await fetch(url="u", retries=2), bytes)
    assert_type(functools.partial(bare, 2)(), str)

    # Instance methods: through an instance without self, through the class with it.
    assert_type(client.validate("t"), dict[str, int])
    assert_type(client.validate(token="t", strict=False), dict[str, int])
    assert_type(Client.validate(client, "t"), dict[str, int])
    assert_type(SubClient().validate("t"), dict[str, int])
    assert_type(await client.avalidate("t"), int)

    # Classmethods bind cls through the class and through an instance.
    assert_type(Client.build("u"), list[str])
    assert_type(client.build(url="u"), list[str])
    assert_type(SubClient.build("u"), list[str])
    assert_type(await Client.abuild("u"), tuple[str, ...])

    # Staticmethods bind nothing, through the class and through an instance.
    assert_type(Client.parse(b"x"), set[int])
    assert_type(client.parse(raw=b"x"), set[int])
    assert_type(await client.aparse(b"x"), frozenset[int])
    assert_type(Client.ping(), None)
    assert_type(client.ping(), None)

    # .breaker everywhere.
    assert_type(bare.breaker, CircuitBreaker)
    assert_type(fetch.breaker, CircuitBreaker)
    assert_type(client.validate.breaker, CircuitBreaker)
    assert_type(Client.validate.breaker, CircuitBreaker)
    assert_type(Client.build.breaker, CircuitBreaker)
    assert_type(client.build.breaker, CircuitBreaker)
    assert_type(Client.parse.breaker, CircuitBreaker)
    assert_type(client.aparse.breaker, CircuitBreaker)

    # Errors a user must get.
    bare("2")  # type: ignore[arg-type]
    bare(2, text=3)  # type: ignore[arg-type]
    bare(2, colour="red")  # type: ignore[call-arg]
    no_params(1)  # type: ignore[call-arg]
    keyword_only("t")  # type: ignore[call-arg]
    client.validate(1)  # type: ignore[arg-type]
    client.validate("t", strict="yes")  # type: ignore[arg-type]
    Client.validate("t")  # type: ignore[arg-type, call-arg]
    Client.build(1)  # type: ignore[arg-type]
    client.parse("x")  # type: ignore[arg-type]
    wrong: int = bare(2)  # type: ignore[assignment]
    print(wrong)
    bare.breaker = get_breaker("typing.other")  # type: ignore[misc]
    circuit_breaker("typing.bad", fallback=3)  # type: ignore[call-overload]


# -- breakers, registry, health ---------------------------------------------------------


def sync_dependency(value: int) -> str:
    return str(value)


async def async_dependency(value: int) -> bytes:
    return bytes(value)


async def breakers_api() -> None:
    breaker = get_breaker("typing.dependency", failure_threshold=5, recovery_timeout=30.0)
    assert_type(breaker, CircuitBreaker)
    direct = CircuitBreaker("typing.direct", BreakerConfig(), failure_threshold=2)
    assert_type(direct, CircuitBreaker)
    assert_type(breakers(), list[CircuitBreaker])
    assert_type(health(), dict[str, Any])
    assert_type(configure(recovery_timeout=5), None)
    assert_type(resilient.__version__, Any)

    assert_type(breaker.name, str)
    assert_type(breaker.state, State)
    assert_type(breaker.is_open, bool)
    assert_type(breaker.is_closed, bool)
    assert_type(breaker.is_half_open, bool)
    assert_type(breaker.config, BreakerConfig)
    assert_type(breaker.trip(), None)
    assert_type(breaker.trip(hold=True, reason="maintenance"), None)
    assert_type(breaker.reset(), None)
    assert_type(breaker.disable(), None)

    assert_type(breaker.call(sync_dependency, 1), str)
    assert_type(await breaker.acall(async_dependency, 1), bytes)
    assert_type(await breaker.acall(sync_dependency, 1), str)
    with breaker as guarded:
        assert_type(guarded, CircuitBreaker)
    async with breaker as aguarded:
        assert_type(aguarded, CircuitBreaker)

    metrics = breaker.metrics()
    assert_type(metrics, BreakerMetrics)
    assert_type(metrics.state, State)
    assert_type(metrics.failures, int)
    assert_type(metrics.failure_rate, float)
    assert_type(metrics.retry_after, float | None)
    assert_type(metrics.as_dict(), dict[str, Any])

    def on_change(event: BreakerEvent) -> None:
        assert_type(event.new_state, State)
        assert_type(event.reason, str)

    breaker.add_listener(on_change)
    breaker.remove_listener(on_change)
    add_listener(on_change)
    remove_listener(on_change)

    config = BreakerConfig(failure_threshold=3, ignore=(InvalidTokenError,))
    assert_type(config.failure_threshold, int)
    assert_type(config.call_timeout, float | None)
    assert_type(config.replace(success_threshold=1), BreakerConfig)
    assert_type(State("open"), State)

    breaker.trip(True)  # type: ignore[call-arg]
    breaker.call(sync_dependency, "1")  # type: ignore[arg-type]
    await breaker.acall(async_dependency)  # type: ignore[call-overload]
    breaker.metrics().failures = 0  # type: ignore[misc]
    config.failure_threshold = 1  # type: ignore[misc]


# -- errors and testing helpers ---------------------------------------------------------


def errors_and_testing() -> None:
    try:
        no_params()
    except CircuitOpenError as err:
        assert_type(err.name, str)
        assert_type(err.retry_after, float | None)
        assert_type(err.state, State | None)
        assert_type(err.reason, str)
    except CallTimeoutError as err:
        assert_type(err.timeout, float)
    except ConfigError as err:
        assert_type(err, ValueError)  # type: ignore[assert-type]
    except ResilientError:
        pass

    with isolated() as sandbox:
        assert_type(sandbox, BreakerSandbox)
        assert_type(sandbox.events, list[BreakerEvent])
        with forced_open("typing.dependency") as held:
            assert_type(held, CircuitBreaker)
