"""Rule 2: only dependency failures count.

Ignored exceptions, exceptions the classifier does not count, and BaseExceptions
that are not Exceptions (cancellation, exit) are neutral: they propagate
untouched and count as neither success nor failure.  So bad input can neither
open a breaker nor keep one closed during an outage.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from resilient import CircuitBreaker, CircuitOpenError, State, circuit_breaker, get_breaker


class DependencyDown(ConnectionError):
    """The protected dependency failed."""


class InvalidTokenError(Exception):
    """A business outcome: the caller sent a bad token."""


class ExpiredTokenError(InvalidTokenError):
    """A subclass of an ignored exception."""


class AuthService:
    """The shape of the original outage: token validation against a remote service."""

    def __init__(self) -> None:
        self.remote_up = True
        self.remote_calls = 0

    @circuit_breaker("tests.classification.validate", ignore=(InvalidTokenError,))
    def validate(self, token: str) -> dict[str, str]:
        self.remote_calls += 1
        if not self.remote_up:
            raise DependencyDown("auth service unreachable")
        if token.startswith("bad"):
            raise InvalidTokenError(token)
        return {"sub": token}


def test_a_thousand_invalid_tokens_leave_the_breaker_closed(frozen):
    """1,000 invalid tokens propagate InvalidTokenError each time and never open the breaker."""
    auth = AuthService()
    for i in range(1000):
        with pytest.raises(InvalidTokenError):
            auth.validate(f"bad-{i}")
    assert auth.validate("good") == {"sub": "good"}
    metrics = AuthService.validate.breaker.metrics()
    assert metrics.state is State.CLOSED
    assert (metrics.failures, metrics.ignored, metrics.successes) == (0, 1000, 1)
    assert metrics.consecutive_failures == 0
    assert auth.remote_calls == 1001


def test_invalid_tokens_interleaved_with_an_outage_still_open_it_after_five_failures(frozen):
    """Invalid tokens between real failures neither reset the count nor count: the 5th opens it."""
    auth = AuthService()
    breaker = AuthService.validate.breaker
    auth.remote_up = False
    for failure in range(1, 6):
        for i in range(50):
            auth.remote_up = True
            with pytest.raises(InvalidTokenError):
                auth.validate(f"bad-{failure}-{i}")
            auth.remote_up = False
        assert breaker.state is State.CLOSED
        with pytest.raises(DependencyDown):
            auth.validate("good")
        assert breaker.metrics().consecutive_failures == failure
    assert breaker.state is State.OPEN
    calls = auth.remote_calls
    with pytest.raises(CircuitOpenError):
        auth.validate("bad-after")
    assert auth.remote_calls == calls
    metrics = breaker.metrics()
    assert (metrics.failures, metrics.ignored) == (5, 250)


@pytest.mark.parametrize(
    "exc_type",
    [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError],
    ids=lambda t: t.__name__,
)
def test_base_exceptions_that_are_not_exceptions_are_neutral(frozen, exc_type):
    """Cancellation, exit and interrupts propagate, and neither open nor reset the breaker."""
    breaker = CircuitBreaker("tests.classification.base", failure_threshold=2)

    def raise_it():
        raise exc_type

    def fail():
        raise DependencyDown

    with pytest.raises(DependencyDown):
        breaker.call(fail)
    for _ in range(10):
        with pytest.raises(exc_type):
            breaker.call(raise_it)
    assert breaker.state is State.CLOSED
    assert breaker.metrics().consecutive_failures == 1
    with pytest.raises(DependencyDown):
        breaker.call(fail)
    assert breaker.state is State.OPEN


def test_base_exceptions_stay_neutral_even_if_listed_in_failure_on(frozen):
    """failure_on cannot make KeyboardInterrupt count: BaseExceptions are always neutral."""
    breaker = CircuitBreaker(
        "tests.classification.base_on", failure_threshold=1, failure_on=(BaseException,)
    )

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupt)
    assert breaker.state is State.CLOSED


def test_subclasses_of_ignored_exceptions_are_ignored(frozen):
    """ignore matches by isinstance, so subclasses of an ignored exception are neutral too."""
    breaker = CircuitBreaker(
        "tests.classification.sub", failure_threshold=1, ignore=InvalidTokenError
    )

    def expired():
        raise ExpiredTokenError("old")

    with pytest.raises(ExpiredTokenError):
        breaker.call(expired)
    assert breaker.state is State.CLOSED
    assert breaker.metrics().ignored == 1


def test_failure_on_limits_what_counts(frozen):
    """With failure_on=(ConnectionError,) a ValueError is neutral and a ConnectionError counts."""
    breaker = CircuitBreaker(
        "tests.classification.failure_on", failure_threshold=2, failure_on=(ConnectionError,)
    )

    def value_error():
        raise ValueError("bad input")

    def down():
        raise DependencyDown

    with pytest.raises(DependencyDown):
        breaker.call(down)
    for _ in range(5):
        with pytest.raises(ValueError, match="bad input"):
            breaker.call(value_error)
    assert breaker.metrics().consecutive_failures == 1
    with pytest.raises(DependencyDown):
        breaker.call(down)
    assert breaker.state is State.OPEN


def test_is_failure_decides_when_given(frozen):
    """is_failure(exc) decides for every exception not ignored, overriding failure_on."""
    seen = []

    def only_503(exc: BaseException) -> bool:
        seen.append(exc)
        return "503" in str(exc)

    breaker = CircuitBreaker(
        "tests.classification.is_failure",
        failure_threshold=1,
        failure_on=(KeyError,),
        is_failure=only_503,
    )

    def http(status: str):
        raise RuntimeError(status)

    with pytest.raises(RuntimeError):
        breaker.call(http, "404")
    assert breaker.state is State.CLOSED
    with pytest.raises(RuntimeError):
        breaker.call(http, "503")
    assert breaker.state is State.OPEN
    assert [str(e) for e in seen] == ["404", "503"]


def test_ignore_wins_over_is_failure(frozen):
    """An ignored exception is neutral even if is_failure would count it."""
    breaker = CircuitBreaker(
        "tests.classification.ignore_first",
        failure_threshold=1,
        ignore=(InvalidTokenError,),
        is_failure=lambda exc: True,
    )

    def bad():
        raise InvalidTokenError

    with pytest.raises(InvalidTokenError):
        breaker.call(bad)
    assert breaker.state is State.CLOSED


def test_an_is_failure_that_raises_counts_the_call_as_a_failure_and_logs(frozen, caplog):
    """A classifier bug does not reach the caller: the call counts as a failure and it is logged."""

    def broken(exc: BaseException) -> bool:
        raise ZeroDivisionError

    breaker = CircuitBreaker("tests.classification.broken", failure_threshold=1, is_failure=broken)

    def down():
        raise DependencyDown("down")

    with caplog.at_level(logging.ERROR, logger="resilient"), pytest.raises(DependencyDown):
        breaker.call(down)
    assert breaker.state is State.OPEN
    assert any("is_failure" in r.getMessage() for r in caplog.records)


def test_is_failure_result_counts_a_returned_value_but_returns_it(frozen):
    """A result flagged by is_failure_result is returned to the caller and counted as a failure."""
    breaker = CircuitBreaker(
        "tests.classification.result",
        failure_threshold=2,
        is_failure_result=lambda response: response["status"] >= 500,
    )
    assert breaker.call(lambda: {"status": 503}) == {"status": 503}
    assert breaker.call(lambda: {"status": 200}) == {"status": 200}
    assert breaker.metrics().consecutive_failures == 0
    breaker.call(lambda: {"status": 500})
    breaker.call(lambda: {"status": 502})
    assert breaker.state is State.OPEN
    assert "failure result" in breaker.metrics().last_error


# -- half-open: a neutral outcome gives the permit back ----------------------------------------


def test_a_neutral_outcome_in_half_open_gives_back_the_permit(frozen):
    """An ignored exception during a half-open trial frees the permit and decides nothing."""
    breaker = CircuitBreaker(
        "tests.classification.half_open",
        failure_threshold=1,
        recovery_timeout=10,
        half_open_max_calls=1,
        success_threshold=2,
        ignore=(InvalidTokenError,),
    )

    def down():
        raise DependencyDown

    def bad():
        raise InvalidTokenError

    with pytest.raises(DependencyDown):
        breaker.call(down)
    frozen.tick(10)
    with pytest.raises(InvalidTokenError):
        breaker.call(bad)
    assert breaker.state is State.HALF_OPEN
    assert breaker.metrics().half_open_in_flight == 0
    assert breaker.call(lambda: "ok") == "ok"
    with pytest.raises(InvalidTokenError):
        breaker.call(bad)
    assert breaker.state is State.HALF_OPEN
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is State.CLOSED


def test_a_neutral_outcome_in_a_with_block_gives_back_the_permit(frozen):
    """An ignored exception leaving a `with breaker:` trial block frees the permit."""
    breaker = CircuitBreaker(
        "tests.classification.block", failure_threshold=1, recovery_timeout=1, success_threshold=1
    )
    breaker.trip()
    frozen.tick(1)
    with pytest.raises(KeyboardInterrupt), breaker:
        raise KeyboardInterrupt
    assert breaker.metrics().half_open_in_flight == 0
    with breaker:
        pass
    assert breaker.state is State.CLOSED


# -- every driver classifies the same way -------------------------------------------------------


SYNC_DRIVERS = ["decorator", "call", "with"]
ASYNC_DRIVERS = ["decorator", "acall", "async-with"]


def _sync_runner(driver: str, breaker: CircuitBreaker, name: str):
    if driver == "decorator":

        def run(fn):
            return circuit_breaker(name, ignore=(InvalidTokenError,), failure_threshold=3)(fn)()

    elif driver == "call":

        def run(fn):
            return breaker.call(fn)

    else:

        def run(fn):
            with breaker:
                return fn()

    return run


@pytest.mark.parametrize("driver", SYNC_DRIVERS)
def test_every_sync_driver_classifies_the_same_way(frozen, driver):
    """Decorator, call() and `with` all ignore bad input and open on real failures."""
    name = f"tests.classification.driver.{driver}"
    breaker = get_breaker(name, ignore=(InvalidTokenError,), failure_threshold=3)
    run = _sync_runner(driver, breaker, name)

    def bad():
        raise InvalidTokenError

    def down():
        raise DependencyDown

    for _ in range(2):
        with pytest.raises(DependencyDown):
            run(down)
        for _ in range(20):
            with pytest.raises(InvalidTokenError):
                run(bad)
    assert breaker.state is State.CLOSED
    with pytest.raises(DependencyDown):
        run(down)
    assert breaker.state is State.OPEN
    assert breaker.metrics().ignored == 40


@pytest.mark.asyncio
@pytest.mark.parametrize("driver", ASYNC_DRIVERS)
async def test_every_async_driver_classifies_the_same_way(frozen, driver):
    """Decorator, acall() and `async with` all ignore bad input and open on real failures."""
    name = f"tests.classification.adriver.{driver}"
    breaker = get_breaker(name, ignore=(InvalidTokenError,), failure_threshold=3)

    async def bad():
        raise InvalidTokenError

    async def down():
        raise DependencyDown

    async def run(fn):
        if driver == "decorator":
            return await circuit_breaker(name, ignore=(InvalidTokenError,), failure_threshold=3)(
                fn
            )()
        if driver == "acall":
            return await breaker.acall(fn)
        async with breaker:
            return await fn()

    for _ in range(2):
        with pytest.raises(DependencyDown):
            await run(down)
        for _ in range(20):
            with pytest.raises(InvalidTokenError):
                await run(bad)
    assert breaker.state is State.CLOSED
    with pytest.raises(DependencyDown):
        await run(down)
    assert breaker.state is State.OPEN
    assert breaker.metrics().ignored == 40
