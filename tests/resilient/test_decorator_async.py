"""``@circuit_breaker`` on coroutine functions.  Twin: test_decorator_sync.py."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import typing

import pytest

import resilient
from resilient import (
    CallTimeoutError,
    CircuitOpenError,
    ConfigError,
    State,
    circuit_breaker,
    configure,
    get_breaker,
)


class DependencyDown(ConnectionError):
    """The protected dependency failed."""


class InvalidTokenError(Exception):
    """A business outcome, not a dependency failure."""


class Dependency:
    """A stand-in for a remote service: counts calls, fails while ``down``."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    async def __call__(self, value: int = 0) -> int:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise DependencyDown("connection refused")
        return value


@circuit_breaker
async def bare_fetch(key: str, *, default: str = "-") -> str:
    """Fetch one key."""
    await asyncio.sleep(0)
    return f"{key}:{default}"


@circuit_breaker("tests.async.settings", failure_threshold=3, recovery_timeout=10)
async def with_settings(x: int) -> int:
    return x


@circuit_breaker("tests.async.defaults")
async def uses_defaults(dep: Dependency) -> int:
    return await dep()


def protect(dep: Dependency, name: str = "tests.async.dep", **settings: typing.Any):
    @circuit_breaker(name, **settings)
    async def call(value: int = 0) -> int:
        return await dep(value)

    return call


# -- what the decorator keeps --------------------------------------------------------


def test_bare_decorator_names_the_breaker_module_qualname():
    """Bare @circuit_breaker names the breaker after the coroutine function's module.qualname."""
    assert bare_fetch.breaker.name == f"{__name__}.bare_fetch"
    assert bare_fetch.breaker is get_breaker(f"{__name__}.bare_fetch")


def test_named_decorator_uses_the_name_and_settings():
    """The called form uses the given name and settings for its breaker."""
    assert with_settings.breaker.name == "tests.async.settings"
    assert with_settings.breaker.config.failure_threshold == 3
    assert with_settings.breaker.config.recovery_timeout == 10


def test_name_doc_module_and_wrapped_survive():
    """__name__, __qualname__, __doc__, __module__ and __wrapped__ are the original's."""
    assert bare_fetch.__name__ == "bare_fetch"
    assert bare_fetch.__qualname__ == "bare_fetch"
    assert bare_fetch.__doc__ == "Fetch one key."
    assert bare_fetch.__module__ == __name__
    assert inspect.iscoroutinefunction(bare_fetch.__wrapped__)


def test_signature_and_type_hints_survive():
    """inspect.signature and typing.get_type_hints see the original coroutine function."""
    sig = inspect.signature(bare_fetch)
    assert list(sig.parameters) == ["key", "default"]
    assert sig.parameters["default"].kind is inspect.Parameter.KEYWORD_ONLY
    assert typing.get_type_hints(bare_fetch) == {"key": str, "default": str, "return": str}


@pytest.mark.asyncio
async def test_a_coroutine_function_stays_a_coroutine_function():
    """inspect.iscoroutinefunction is true and calling it gives an awaitable with the result."""
    assert inspect.iscoroutinefunction(bare_fetch)
    pending = bare_fetch("k", default="d")
    assert inspect.isawaitable(pending)
    assert await pending == "k:d"


@pytest.mark.asyncio
async def test_arguments_and_result_pass_through_untouched():
    """Positional, keyword, default and variadic arguments reach the coroutine as given."""
    seen = []

    @circuit_breaker("tests.async.args")
    async def record(a, b=2, *rest, c, **extra):
        seen.append((a, b, rest, c, extra))
        return a

    assert await record(1, c=3) == 1
    await record(1, 5, 6, 7, c=3, d=4)
    assert seen == [(1, 2, (), 3, {}), (1, 5, (6, 7), 3, {"d": 4})]


def test_repr_names_the_breaker():
    """repr() of a decorated coroutine function says which breaker protects what."""
    assert "tests.async.settings" in repr(with_settings)
    assert "with_settings" in repr(with_settings)


def test_decorated_function_pickles_by_reference():
    """A module-level decorated coroutine function pickles and unpickles to itself."""
    assert pickle.loads(pickle.dumps(bare_fetch)) is bare_fetch


# -- the breaker at work ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_opens_after_the_threshold_and_rejects_without_calling(frozen):
    """After failure_threshold counted failures, calls are rejected and never run."""
    dep = Dependency()
    call = protect(dep, failure_threshold=3)
    dep.down = True
    for _ in range(3):
        with pytest.raises(DependencyDown):
            await call()
    assert call.breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await call()
    assert dep.calls == 3
    assert info.value.name == "tests.async.dep"
    assert info.value.retry_after == pytest.approx(30.0)
    assert call.breaker.metrics().rejections == 1


@pytest.mark.asyncio
async def test_the_original_exception_propagates_unchanged(frozen):
    """A counted failure reaches the caller as the very exception the coroutine raised."""
    boom = DependencyDown("down")

    @circuit_breaker("tests.async.identity")
    async def fail():
        raise boom

    with pytest.raises(DependencyDown) as info:
        await fail()
    assert info.value is boom
    assert info.value.__cause__ is None


@pytest.mark.asyncio
async def test_a_success_resets_the_consecutive_count(frozen):
    """Failures must be consecutive: a success in between starts the count again."""
    dep = Dependency()
    call = protect(dep, failure_threshold=3)
    for _ in range(4):
        dep.down = True
        for _ in range(2):
            with pytest.raises(DependencyDown):
                await call()
        dep.down = False
        assert await call(1) == 1
    assert call.breaker.state is State.CLOSED


@pytest.mark.asyncio
async def test_recovers_after_the_recovery_timeout(frozen):
    """Open -> half-open after recovery_timeout -> closed after success_threshold trials."""
    dep = Dependency()
    call = protect(dep, failure_threshold=2, recovery_timeout=30, success_threshold=2)
    dep.down = True
    for _ in range(2):
        with pytest.raises(DependencyDown):
            await call()
    frozen.tick(29)
    with pytest.raises(CircuitOpenError):
        await call()
    frozen.tick(1)
    assert call.breaker.state is State.HALF_OPEN
    dep.down = False
    assert await call(7) == 7
    assert call.breaker.state is State.HALF_OPEN
    assert await call(8) == 8
    assert call.breaker.state is State.CLOSED
    assert dep.calls == 4


@pytest.mark.asyncio
async def test_a_failed_trial_reopens(frozen):
    """A counted failure during half-open opens the breaker again for another recovery_timeout."""
    dep = Dependency()
    call = protect(dep, failure_threshold=1, recovery_timeout=5)
    dep.down = True
    with pytest.raises(DependencyDown):
        await call()
    frozen.tick(5)
    with pytest.raises(DependencyDown):
        await call()
    assert call.breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await call()
    assert info.value.retry_after == pytest.approx(5.0)


@pytest.mark.asyncio
async def test_an_ignored_exception_propagates_and_is_not_counted(frozen):
    """An exception listed in ignore reaches the caller unchanged and never opens the breaker."""
    bad = InvalidTokenError("expired")

    @circuit_breaker("tests.async.ignore", failure_threshold=1, ignore=(InvalidTokenError,))
    async def validate():
        raise bad

    for _ in range(3):
        with pytest.raises(InvalidTokenError) as info:
            await validate()
        assert info.value is bad
    metrics = validate.breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.ignored) == (State.CLOSED, 0, 3)


@pytest.mark.asyncio
async def test_an_overrunning_call_is_cancelled_and_raises_call_timeout_error(frozen):
    """An async call longer than call_timeout is cancelled and raises CallTimeoutError, counted."""
    cancelled = []

    @circuit_breaker("tests.async.timeout", call_timeout=2, failure_threshold=2)
    async def slow():
        frozen.tick(3)  # the loop's clock is frozen too: the timeout is due now
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(CallTimeoutError) as info:
        await slow()
    assert isinstance(info.value, TimeoutError)
    assert info.value.name == "tests.async.timeout"
    assert info.value.timeout == 2
    assert cancelled == [True]
    metrics = slow.breaker.metrics()
    assert (metrics.failures, metrics.timeouts) == (1, 1)
    with pytest.raises(CallTimeoutError):
        await slow()
    assert slow.breaker.state is State.OPEN


@pytest.mark.asyncio
async def test_a_call_within_call_timeout_is_a_success(frozen):
    """An async call that finishes inside call_timeout counts as a plain success."""

    @circuit_breaker("tests.async.in_time", call_timeout=2)
    async def quick():
        frozen.tick(1)
        await asyncio.sleep(0)
        return "ok"

    assert await quick() == "ok"
    assert quick.breaker.metrics().successes == 1
    assert quick.breaker.metrics().timeouts == 0


@pytest.mark.asyncio
async def test_a_timeout_error_raised_by_the_coroutine_is_an_ordinary_failure(frozen):
    """A TimeoutError the coroutine raises itself propagates as is: it is not a call timeout."""
    own = TimeoutError("upstream said so")

    @circuit_breaker("tests.async.own_timeout", call_timeout=5)
    async def upstream():
        raise own

    with pytest.raises(TimeoutError) as info:
        await upstream()
    assert info.value is own
    metrics = upstream.breaker.metrics()
    assert (metrics.failures, metrics.timeouts) == (1, 0)


@pytest.mark.asyncio
async def test_cancelling_the_caller_propagates_and_counts_nothing(frozen):
    """task.cancel() on a protected call raises CancelledError, counted as neither outcome."""
    started = asyncio.Event()

    @circuit_breaker("tests.async.cancel", failure_threshold=1)
    async def hang():
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    metrics = hang.breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.successes, metrics.ignored) == (
        State.CLOSED,
        0,
        0,
        1,
    )


@pytest.mark.asyncio
async def test_trip_and_reset_act_on_decorated_calls(frozen):
    """trip() rejects the decorated coroutine's calls; reset() lets them through again."""
    dep = Dependency()
    call = protect(dep)
    assert await call(1) == 1
    call.breaker.trip(hold=True)
    with pytest.raises(CircuitOpenError) as info:
        await call(2)
    assert info.value.state is State.FORCED_OPEN
    assert info.value.retry_after is None
    call.breaker.reset()
    assert await call(3) == 3
    assert dep.calls == 2


@pytest.mark.asyncio
async def test_disabled_breaker_lets_every_call_through(frozen):
    """In shadow mode (disable()) failures are counted but calls are never rejected."""
    dep = Dependency()
    call = protect(dep, failure_threshold=1)
    call.breaker.disable()
    dep.down = True
    for _ in range(5):
        with pytest.raises(DependencyDown):
            await call()
    assert dep.calls == 5
    assert call.breaker.state is State.DISABLED
    assert call.breaker.metrics().failures == 5


# -- sealing: defaults are read at the first call ------------------------------------------


@pytest.mark.asyncio
async def test_configure_after_decoration_applies_at_the_first_call(frozen):
    """configure() called after a coroutine function was decorated still sets its defaults."""
    configure(failure_threshold=2, recovery_timeout=7)
    dep = Dependency()
    dep.down = True
    for _ in range(2):
        with pytest.raises(DependencyDown):
            await uses_defaults(dep)
    assert uses_defaults.breaker.state is State.OPEN
    assert uses_defaults.breaker.config.recovery_timeout == 7


def test_explicit_settings_win_over_configure():
    """A setting given on the decorator line beats the configure() default."""
    configure(failure_threshold=1, recovery_timeout=99)
    assert with_settings.breaker.config.failure_threshold == 3
    assert with_settings.breaker.config.recovery_timeout == 10


# -- refusals and validation -----------------------------------------------------------------


def test_bad_settings_fail_at_the_decorator_line():
    """An invalid setting raises ConfigError at the decorator line, not at the first call."""
    with pytest.raises(ConfigError, match="call_timeout"):
        circuit_breaker("tests.async.bad", call_timeout=-1)


def test_an_async_generator_function_is_refused_with_advice():
    """An async generator function gets a TypeError that names it and says what to do instead."""

    async def stream():
        yield 1

    with pytest.raises(TypeError, match="stream") as info:
        circuit_breaker(stream)
    assert "async generator" in str(info.value)
    assert "collect the items into a list" in str(info.value)


# -- one name, one breaker -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_sync_and_an_async_function_can_share_one_breaker(frozen):
    """One name is one dependency: a sync and an async function with the same name share state."""

    @circuit_breaker("tests.async.shared", failure_threshold=2)
    def sync_side():
        raise DependencyDown

    @circuit_breaker("tests.async.shared", failure_threshold=2)
    async def async_side():
        return "never"

    assert sync_side.breaker is async_side.breaker
    with pytest.raises(DependencyDown):
        sync_side()
    with pytest.raises(DependencyDown):
        sync_side()
    with pytest.raises(CircuitOpenError):
        await async_side()


def test_the_breaker_is_in_the_default_registry_from_decoration():
    """The breaker exists (and is listed) as soon as the coroutine function is decorated."""

    @circuit_breaker("tests.async.registered")
    async def never_called():
        return None

    assert never_called.breaker in resilient.breakers()
    assert "tests.async.registered" in resilient.health()["breakers"]


# -- the same breaker without a decorator: acall() and `async with` ------------------------------


async def _down():
    await asyncio.sleep(0)
    raise DependencyDown("down")


@pytest.mark.asyncio
async def test_acall_awaits_a_coroutine_function_and_calls_a_plain_one(frozen):
    """breaker.acall(fn, ...) awaits a coroutine function, calls a plain function, counts both."""
    breaker = get_breaker("tests.async.acall", failure_threshold=1)

    async def add(a, b=0):
        await asyncio.sleep(0)
        return a + b

    assert await breaker.acall(add, 1, b=2) == 3
    assert await breaker.acall(lambda a: a * 2, 4) == 8
    with pytest.raises(DependencyDown):
        await breaker.acall(_down)
    with pytest.raises(CircuitOpenError):
        await breaker.acall(add, 1)
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures, metrics.rejections) == (2, 1, 1)


@pytest.mark.asyncio
async def test_an_async_with_block_counts_its_outcome_and_is_rejected_when_open(frozen):
    """`async with breaker:` counts the block's outcome; when open it raises before the block."""
    breaker = get_breaker("tests.async.block", failure_threshold=1, ignore=(InvalidTokenError,))
    ran = []
    async with breaker:
        ran.append("ok")
    with pytest.raises(InvalidTokenError):
        async with breaker:
            raise InvalidTokenError
    with pytest.raises(DependencyDown):
        async with breaker:
            await _down()
    with pytest.raises(CircuitOpenError):
        async with breaker:
            ran.append("never")
    assert ran == ["ok"]
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.ignored, metrics.failures, metrics.rejections) == (
        1,
        1,
        1,
        1,
    )


@pytest.mark.asyncio
async def test_an_async_with_block_that_overruns_call_timeout_counts_as_a_timeout(frozen):
    """A block cannot be cancelled by the breaker, so an overrun counts as a timeout failure."""
    breaker = get_breaker("tests.async.block_timeout", call_timeout=2)
    async with breaker:
        frozen.tick(3)
        await asyncio.sleep(0)
    metrics = breaker.metrics()
    assert (metrics.failures, metrics.timeouts, metrics.successes) == (1, 1, 0)


@pytest.mark.asyncio
async def test_async_with_blocks_in_concurrent_tasks_keep_their_own_permits(frozen):
    """Two tasks in `async with` at once each exit with their own permit and outcome."""
    breaker = get_breaker(
        "tests.async.blocks",
        failure_threshold=1,
        recovery_timeout=10,
        half_open_max_calls=2,
        success_threshold=2,
    )
    breaker.trip()
    frozen.tick(10)
    inside, release = asyncio.Event(), asyncio.Event()
    entered = []

    async def block(fail: bool) -> None:
        async with breaker:
            entered.append(fail)
            if len(entered) == 2:
                inside.set()
            await release.wait()
            if fail:
                raise DependencyDown

    tasks = [asyncio.ensure_future(block(fail)) for fail in (True, False)]
    await inside.wait()
    assert breaker.metrics().half_open_in_flight == 2
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["DependencyDown", "NoneType"]
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures, metrics.half_open_in_flight) == (1, 1, 0)
    assert breaker.state is State.OPEN
