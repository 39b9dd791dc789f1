"""Rule 3: the fallback is reachable, and only for dependency failures and rejections."""

from __future__ import annotations

import asyncio

import pytest

from resilient import (
    CallTimeoutError,
    CircuitOpenError,
    State,
    circuit_breaker,
    health,
)


class DependencyDown(ConnectionError):
    """The protected dependency failed."""


class InvalidTokenError(Exception):
    """A business outcome, not a dependency failure."""


def module_level_fallback(token: str) -> str:
    return f"global:{token}"


@circuit_breaker("tests.fallback.global", fallback="module_level_fallback")
def fetch_with_global_fallback(token: str) -> str:
    raise DependencyDown(token)


# -- when it runs ---------------------------------------------------------------------


def test_a_counted_failure_is_answered_with_the_same_arguments():
    """On a counted failure the fallback gets the caller's positional and keyword arguments."""
    seen = []

    def fallback(*args, **kwargs):
        seen.append((args, kwargs))
        return "cached"

    @circuit_breaker("tests.fallback.args", fallback=fallback)
    def fetch(a, b, *, c=3):
        raise DependencyDown

    assert fetch(1, 2, c=4) == "cached"
    assert fetch(1, b=2) == "cached"
    assert seen == [((1, 2), {"c": 4}), ((1,), {"b": 2})]


def test_a_rejection_is_answered_without_calling_the_function(frozen):
    """While the breaker is open, the fallback answers and the protected function never runs."""
    calls = []

    @circuit_breaker("tests.fallback.reject", fallback=lambda x: f"fallback:{x}")
    def fetch(x):
        calls.append(x)
        return x

    fetch.breaker.trip()
    assert fetch("a") == "fallback:a"
    assert calls == []
    metrics = fetch.breaker.metrics()
    assert (metrics.rejections, metrics.fallbacks) == (1, 1)


def test_the_error_is_passed_to_a_parameter_named_error(frozen):
    """A fallback with a parameter named error receives the failure, or the CircuitOpenError."""
    errors = []

    def fallback(x, error):
        errors.append(error)
        return "fb"

    boom = DependencyDown("down")

    @circuit_breaker("tests.fallback.error", failure_threshold=1, fallback=fallback)
    def fetch(x):
        raise boom

    assert fetch(1) == "fb"
    assert fetch(2) == "fb"
    assert errors[0] is boom
    assert isinstance(errors[1], CircuitOpenError)
    assert errors[1].name == "tests.fallback.error"


def test_a_keyword_only_error_parameter_also_receives_the_error():
    """error may be keyword-only in the fallback's signature."""

    def fallback(x, *, error):
        return type(error).__name__

    @circuit_breaker("tests.fallback.kwonly", fallback=fallback)
    def fetch(x):
        raise DependencyDown

    assert fetch(1) == "DependencyDown"


def test_a_fallback_without_an_error_parameter_gets_only_the_arguments():
    """A fallback without an error parameter (even one taking **kwargs) is not sent error=."""
    seen = []

    def fallback(x, **kwargs):
        seen.append(kwargs)
        return "fb"

    @circuit_breaker("tests.fallback.noerror", fallback=fallback)
    def fetch(x, **kwargs):
        raise DependencyDown

    assert fetch(1, trace="t") == "fb"
    assert seen == [{"trace": "t"}]


def test_an_ignored_exception_never_reaches_the_fallback():
    """An ignored exception propagates unchanged; the fallback is not called."""
    called = []
    bad = InvalidTokenError("expired")

    @circuit_breaker(
        "tests.fallback.ignored", ignore=(InvalidTokenError,), fallback=lambda: called.append(1)
    )
    def validate():
        raise bad

    with pytest.raises(InvalidTokenError) as info:
        validate()
    assert info.value is bad
    assert called == []
    assert validate.breaker.metrics().fallbacks == 0


def test_an_exception_not_classified_as_failure_never_reaches_the_fallback():
    """An exception that is_failure rejects propagates unchanged; the fallback is not called."""

    @circuit_breaker(
        "tests.fallback.is_failure",
        is_failure=lambda exc: isinstance(exc, DependencyDown),
        fallback=lambda: "fb",
    )
    def fetch():
        raise KeyError("missing")

    with pytest.raises(KeyError):
        fetch()
    assert fetch.breaker.metrics().fallbacks == 0


def test_keyboard_interrupt_never_reaches_the_fallback():
    """A BaseException that is not an Exception (KeyboardInterrupt) propagates; no fallback."""

    @circuit_breaker("tests.fallback.interrupt", fallback=lambda: "fb")
    def fetch():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch()
    assert fetch.breaker.metrics().fallbacks == 0


def test_an_overrunning_sync_call_returns_its_own_result_not_the_fallback(frozen):
    """A sync call over call_timeout still returns its result (it is counted, not replaced)."""

    @circuit_breaker("tests.fallback.sync_timeout", call_timeout=1, fallback=lambda: "fb")
    def slow():
        frozen.tick(2)
        return "real"

    assert slow() == "real"
    assert slow.breaker.metrics().timeouts == 1
    assert slow.breaker.metrics().fallbacks == 0


# -- how it is found ----------------------------------------------------------------------


def test_a_string_names_a_function_in_the_module_for_plain_functions():
    """For a plain function, a string fallback is looked up in the function's module."""
    assert fetch_with_global_fallback("t") == "global:t"


class Client:
    def __init__(self, cache: dict[str, str]) -> None:
        self.cache = cache

    @circuit_breaker("tests.fallback.method", fallback="_from_cache")
    def lookup(self, key: str) -> str:
        raise DependencyDown(key)

    def _from_cache(self, key: str, error: BaseException) -> str:
        return self.cache[key]


def test_a_string_names_a_method_on_the_bound_instance():
    """A string fallback on a method is looked up on the very instance the call was made on."""
    assert Client({"k": "one"}).lookup("k") == "one"
    assert Client({"k": "two"}).lookup("k") == "two"


def test_a_missing_named_fallback_says_what_was_not_found():
    """A string naming nothing raises AttributeError naming the fallback and the breaker."""

    class Broken:
        @circuit_breaker("tests.fallback.missing", fallback="_nowhere")
        def lookup(self):
            raise DependencyDown("down")

    with pytest.raises(AttributeError, match="_nowhere") as info:
        Broken().lookup()
    assert "tests.fallback.missing" in str(info.value)
    assert isinstance(info.value.__cause__, DependencyDown)


# -- when it fails ----------------------------------------------------------------------------


def test_a_raising_fallback_propagates_chained_to_the_original():
    """If the fallback raises, its error propagates with __cause__ set to the original failure."""
    boom = DependencyDown("primary down")

    def fallback():
        raise LookupError("cache empty")

    @circuit_breaker("tests.fallback.raises", fallback=fallback)
    def fetch():
        raise boom

    with pytest.raises(LookupError, match="cache empty") as info:
        fetch()
    assert info.value.__cause__ is boom
    assert fetch.breaker.metrics().fallbacks == 1


def test_a_raising_fallback_keeps_an_explicit_cause():
    """A fallback that chains its own error explicitly keeps that __cause__."""
    own = RuntimeError("own cause")

    def fallback():
        raise LookupError("cache empty") from own

    @circuit_breaker("tests.fallback.own_cause", fallback=fallback)
    def fetch():
        raise DependencyDown

    with pytest.raises(LookupError) as info:
        fetch()
    assert info.value.__cause__ is own


def test_a_raising_fallback_on_rejection_is_chained_to_the_circuit_open_error(frozen):
    """A fallback that raises during a rejection is chained to the CircuitOpenError."""

    def fallback():
        raise LookupError("cache empty")

    @circuit_breaker("tests.fallback.raise_on_reject", fallback=fallback)
    def fetch():
        return "never"

    fetch.breaker.trip()
    with pytest.raises(LookupError) as info:
        fetch()
    assert isinstance(info.value.__cause__, CircuitOpenError)


def test_fallbacks_are_counted_and_the_breaker_still_opens(frozen):
    """Answering with a fallback does not hide failures: they count and the breaker opens."""

    @circuit_breaker("tests.fallback.counts", failure_threshold=3, fallback=lambda: "fb")
    def fetch():
        raise DependencyDown

    for _ in range(5):
        assert fetch() == "fb"
    metrics = fetch.breaker.metrics()
    assert metrics.state is State.OPEN
    assert (metrics.failures, metrics.rejections, metrics.fallbacks) == (3, 2, 5)


def test_health_says_a_breaker_has_a_fallback(frozen):
    """health() marks breakers answered by a fallback, and an open one is degraded, not failing."""

    @circuit_breaker("tests.fallback.health", fallback=lambda: "fb")
    def fetch():
        return "ok"

    fetch.breaker.trip()
    report = health()
    assert report["breakers"]["tests.fallback.health"]["has_fallback"] is True
    assert report["status"] == "degraded"


def test_an_async_fallback_for_a_sync_function_is_refused():
    """A coroutine-function fallback cannot answer for a sync function: TypeError at decoration."""

    async def fallback():
        return "fb"

    with pytest.raises(TypeError, match="fallback") as info:

        @circuit_breaker("tests.fallback.async_for_sync", fallback=fallback)
        def fetch():
            return "ok"

    assert "fetch" in str(info.value)


# -- under an async wrapper -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_sync_fallback_answers_for_a_coroutine_function():
    """A plain function can be the fallback of a coroutine function."""

    @circuit_breaker("tests.fallback.async_sync_fb", fallback=lambda x, error: ("sync", x))
    async def fetch(x):
        raise DependencyDown

    assert await fetch(1) == ("sync", 1)


@pytest.mark.asyncio
async def test_an_async_fallback_answers_for_a_coroutine_function(frozen):
    """An async fallback answers for a coroutine function, on failure and on rejection."""

    async def fallback(x, error):
        await asyncio.sleep(0)
        return ("async", x, type(error).__name__)

    @circuit_breaker("tests.fallback.async_async_fb", failure_threshold=1, fallback=fallback)
    async def fetch(x):
        raise DependencyDown

    assert await fetch(1) == ("async", 1, "DependencyDown")
    assert await fetch(2) == ("async", 2, "CircuitOpenError")


class AsyncClient:
    @circuit_breaker("tests.fallback.async_method", fallback="_local")
    async def validate(self, token: str) -> str:
        raise DependencyDown(token)

    async def _local(self, token: str) -> str:
        return f"local:{token}"


@pytest.mark.asyncio
async def test_a_string_names_an_async_method_on_the_instance():
    """A string fallback on an async method may name an async method of the instance."""
    assert await AsyncClient().validate("t") == "local:t"


@pytest.mark.asyncio
async def test_a_call_timeout_is_answered_by_the_fallback(frozen):
    """An async call cancelled by call_timeout is answered by the fallback with that error."""

    async def fallback(error):
        return error

    @circuit_breaker("tests.fallback.timeout", call_timeout=1, fallback=fallback)
    async def slow():
        frozen.tick(2)
        await asyncio.Event().wait()

    error = await slow()
    assert isinstance(error, CallTimeoutError)
    assert slow.breaker.metrics().timeouts == 1


@pytest.mark.asyncio
async def test_a_cancellation_never_reaches_the_fallback():
    """Cancelling a protected call propagates CancelledError; the fallback is not called."""
    called = []
    started = asyncio.Event()

    @circuit_breaker("tests.fallback.cancel", fallback=lambda: called.append(1))
    async def hang():
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert called == []
    assert hang.breaker.metrics().fallbacks == 0


@pytest.mark.asyncio
async def test_an_async_fallback_that_raises_is_chained_to_the_original():
    """An async fallback's error propagates with __cause__ set to the original failure."""
    boom = DependencyDown("down")

    async def fallback():
        raise LookupError("cache empty")

    @circuit_breaker("tests.fallback.async_raises", fallback=fallback)
    async def fetch():
        raise boom

    with pytest.raises(LookupError) as info:
        await fetch()
    assert info.value.__cause__ is boom
