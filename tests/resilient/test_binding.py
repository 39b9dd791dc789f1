"""The binding matrix: every way a protected callable can be reached, sync and async.

Each case is one binding kind (in wrapt's sense): a plain function, a nested
function, an instance method through an instance and through its class, a
classmethod and a staticmethod through the class and through an instance, an
inherited method, a subclass that overrides the fallback, and a
``functools.partial`` of a protected function.  Every case must call the
original with the right ``self``/``cls``, expose ``.breaker``, count on the
right breaker, and reach the fallback named by a string.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from resilient import CircuitBreaker, State, circuit_breaker, get_breaker


class DependencyDown(ConnectionError):
    """The protected dependency failed."""


def _work(owner: str, x: str) -> tuple[str, str]:
    if x == "fail":
        raise DependencyDown(x)
    return (owner, x)


# -- targets --------------------------------------------------------------------------


def _function_fallback(x: str, error: BaseException) -> tuple[str, str, str]:
    return ("fallback", "module", type(error).__name__)


@circuit_breaker(fallback="_function_fallback")
def plain(x: str) -> tuple[str, str]:
    """A plain function."""
    return _work("module", x)


def make_nested() -> Callable[[str], tuple[str, str]]:
    def local_fallback(x: str, error: BaseException) -> tuple[str, str, str]:
        return ("fallback", "nested", type(error).__name__)

    @circuit_breaker(fallback=local_fallback)
    def nested(x: str) -> tuple[str, str]:
        """A nested function."""
        return _work("nested", x)

    return nested


nested = make_nested()


class Service:
    def __init__(self, label: str) -> None:
        self.label = label

    @circuit_breaker(fallback="_method_fallback")
    def method(self, x: str) -> tuple[str, str]:
        """An instance method."""
        return _work(self.label, x)

    def _method_fallback(self, x: str, error: BaseException) -> tuple[str, str, str]:
        return ("fallback", self.label, type(error).__name__)

    @circuit_breaker(fallback="_class_fallback")
    @classmethod
    def cmethod(cls, x: str) -> tuple[str, str]:
        """A classmethod."""
        return _work(cls.__name__, x)

    @classmethod
    def _class_fallback(cls, x: str, error: BaseException) -> tuple[str, str, str]:
        return ("fallback", cls.__name__, type(error).__name__)

    @circuit_breaker(fallback="_static_fallback")
    @staticmethod
    def smethod(x: str) -> tuple[str, str]:
        """A staticmethod."""
        return _work("static", x)

    @staticmethod
    def _static_fallback(x: str, error: BaseException) -> tuple[str, str, str]:
        return ("fallback", "static", type(error).__name__)

    @circuit_breaker(fallback="_method_fallback")
    async def amethod(self, x: str) -> tuple[str, str]:
        """An async instance method."""
        return _work(self.label, x)

    @circuit_breaker(fallback="_class_fallback")
    @classmethod
    async def acmethod(cls, x: str) -> tuple[str, str]:
        """An async classmethod."""
        return _work(cls.__name__, x)

    @circuit_breaker(fallback="_static_fallback")
    @staticmethod
    async def asmethod(x: str) -> tuple[str, str]:
        """An async staticmethod."""
        return _work("static", x)


class Inheriting(Service):
    """Uses every protected method as inherited."""


class OverridingFallback(Service):
    """Overrides the fallbacks that the base class names by string."""

    def _method_fallback(self, x: str, error: BaseException) -> tuple[str, str, str]:
        return ("override", self.label, type(error).__name__)

    @classmethod
    def _class_fallback(cls, x: str, error: BaseException) -> tuple[str, str, str]:
        return ("override", cls.__name__, type(error).__name__)


# -- the matrix -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """How to reach one protected callable, and what it must do."""

    get: Callable[[], Callable[..., Any]]  # the callable as the user reaches it
    prefix: tuple[Any, ...]  # arguments the user passes before ``x`` (self, via the class)
    breaker: str  # the breaker's name
    owner: str  # what the original sees as its self/cls/module
    fallback: tuple[str, str]  # what the fallback answers (before the error's type)
    params: list[str]  # inspect.signature as seen on this access path


a = Service("a")
M = f"{__name__}."

SYNC_CASES = [
    pytest.param(
        Case(lambda: plain, (), M + "plain", "module", ("fallback", "module"), ["x"]),
        id="plain-function",
    ),
    pytest.param(
        Case(
            lambda: nested,
            (),
            M + "make_nested.<locals>.nested",
            "nested",
            ("fallback", "nested"),
            ["x"],
        ),
        id="nested-function",
    ),
    pytest.param(
        Case(lambda: a.method, (), M + "Service.method", "a", ("fallback", "a"), ["x"]),
        id="method-via-instance",
    ),
    pytest.param(
        Case(
            lambda: Service.method,
            (a,),
            M + "Service.method",
            "a",
            ("fallback", "a"),
            ["self", "x"],
        ),
        id="method-via-class",
    ),
    pytest.param(
        Case(
            lambda: Service.cmethod,
            (),
            M + "Service.cmethod",
            "Service",
            ("fallback", "Service"),
            ["x"],
        ),
        id="classmethod-via-class",
    ),
    pytest.param(
        Case(
            lambda: a.cmethod, (), M + "Service.cmethod", "Service", ("fallback", "Service"), ["x"]
        ),
        id="classmethod-via-instance",
    ),
    pytest.param(
        Case(
            lambda: Service.smethod,
            (),
            M + "Service.smethod",
            "static",
            ("fallback", "static"),
            ["x"],
        ),
        id="staticmethod-via-class",
    ),
    pytest.param(
        Case(lambda: a.smethod, (), M + "Service.smethod", "static", ("fallback", "static"), ["x"]),
        id="staticmethod-via-instance",
    ),
    pytest.param(
        Case(
            lambda: Inheriting("i").method,
            (),
            M + "Service.method",
            "i",
            ("fallback", "i"),
            ["x"],
        ),
        id="inherited-method",
    ),
    pytest.param(
        Case(
            lambda: Inheriting.cmethod,
            (),
            M + "Service.cmethod",
            "Inheriting",
            ("fallback", "Inheriting"),
            ["x"],
        ),
        id="inherited-classmethod",
    ),
    pytest.param(
        Case(
            lambda: OverridingFallback("o").method,
            (),
            M + "Service.method",
            "o",
            ("override", "o"),
            ["x"],
        ),
        id="subclass-overrides-method-fallback",
    ),
    pytest.param(
        Case(
            lambda: OverridingFallback.cmethod,
            (),
            M + "Service.cmethod",
            "OverridingFallback",
            ("override", "OverridingFallback"),
            ["x"],
        ),
        id="subclass-overrides-classmethod-fallback",
    ),
    pytest.param(
        Case(
            lambda: functools.partial(plain),
            (),
            M + "plain",
            "module",
            ("fallback", "module"),
            ["x"],
        ),
        id="partial-of-function",
    ),
    pytest.param(
        Case(
            lambda: functools.partial(Service.method, a),
            (),
            M + "Service.method",
            "a",
            ("fallback", "a"),
            ["x"],
        ),
        id="partial-of-method-via-class",
    ),
]

ASYNC_CASES = [
    pytest.param(
        Case(lambda: a.amethod, (), M + "Service.amethod", "a", ("fallback", "a"), ["x"]),
        id="async-method-via-instance",
    ),
    pytest.param(
        Case(
            lambda: Service.amethod,
            (a,),
            M + "Service.amethod",
            "a",
            ("fallback", "a"),
            ["self", "x"],
        ),
        id="async-method-via-class",
    ),
    pytest.param(
        Case(
            lambda: Service.acmethod,
            (),
            M + "Service.acmethod",
            "Service",
            ("fallback", "Service"),
            ["x"],
        ),
        id="async-classmethod-via-class",
    ),
    pytest.param(
        Case(
            lambda: Inheriting("i").acmethod,
            (),
            M + "Service.acmethod",
            "Inheriting",
            ("fallback", "Inheriting"),
            ["x"],
        ),
        id="async-classmethod-via-subclass-instance",
    ),
    pytest.param(
        Case(
            lambda: a.asmethod,
            (),
            M + "Service.asmethod",
            "static",
            ("fallback", "static"),
            ["x"],
        ),
        id="async-staticmethod-via-instance",
    ),
    pytest.param(
        Case(
            lambda: OverridingFallback("o").amethod,
            (),
            M + "Service.amethod",
            "o",
            ("override", "o"),
            ["x"],
        ),
        id="async-subclass-overrides-fallback",
    ),
    pytest.param(
        Case(
            lambda: functools.partial(a.amethod),
            (),
            M + "Service.amethod",
            "a",
            ("fallback", "a"),
            ["x"],
        ),
        id="async-partial-of-bound-method",
    ),
]


def breaker_of(target: Callable[..., Any]) -> CircuitBreaker:
    """``.breaker`` as the user reaches it (through a partial, its ``func``)."""
    if isinstance(target, functools.partial):
        target = target.func
    return target.breaker


# -- sync matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SYNC_CASES)
def test_calls_reach_the_original_with_the_right_binding(case: Case):
    """The original runs with the self/cls the access path implies and its result comes back."""
    assert case.get()(*case.prefix, "ok") == (case.owner, "ok")
    assert case.get()(*case.prefix, x="kw") == (case.owner, "kw")


@pytest.mark.parametrize("case", SYNC_CASES)
def test_breaker_attribute_is_the_one_breaker_for_the_function(case: Case):
    """.breaker on every access path is the registry's breaker, named module.qualname."""
    breaker = breaker_of(case.get())
    assert breaker is get_breaker(case.breaker)
    assert breaker.name == case.breaker


@pytest.mark.parametrize("case", SYNC_CASES)
def test_outcomes_count_on_that_breaker(case: Case):
    """Successes and failures through any access path are counted on the function's breaker."""
    case.get()(*case.prefix, "ok")
    case.get()(*case.prefix, "fail")
    metrics = get_breaker(case.breaker).metrics()
    assert (metrics.successes, metrics.failures, metrics.fallbacks) == (1, 1, 1)


@pytest.mark.parametrize("case", SYNC_CASES)
def test_a_failure_reaches_the_fallback_for_this_binding(case: Case):
    """A counted failure is answered by the fallback, resolved for the same self/cls."""
    assert case.get()(*case.prefix, "fail") == (*case.fallback, "DependencyDown")


@pytest.mark.parametrize("case", SYNC_CASES)
def test_a_rejection_reaches_the_fallback_for_this_binding(case: Case):
    """While the breaker is open the call is answered by the fallback without running."""
    get_breaker(case.breaker).trip()
    assert case.get()(*case.prefix, "ok") == (*case.fallback, "CircuitOpenError")
    assert get_breaker(case.breaker).metrics().successes == 0


@pytest.mark.parametrize("case", SYNC_CASES)
def test_signature_matches_the_access_path(case: Case):
    """inspect.signature drops self/cls exactly where Python's own binding would."""
    assert list(inspect.signature(case.get()).parameters) == case.params


@pytest.mark.parametrize("case", SYNC_CASES + ASYNC_CASES)
def test_type_hints_survive_on_every_access_path(case: Case):
    """typing.get_type_hints sees the original annotations however the callable is reached."""
    target = case.get()
    if isinstance(target, functools.partial):
        target = target.func
    hints = typing.get_type_hints(target)
    assert hints["x"] is str
    assert hints["return"] == tuple[str, str]


@pytest.mark.parametrize("case", SYNC_CASES)
def test_sync_targets_are_not_coroutine_functions(case: Case):
    """A sync target stays sync on every access path."""
    assert not inspect.iscoroutinefunction(case.get())


# -- async matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ASYNC_CASES)
def test_async_targets_are_coroutine_functions_on_every_path(case: Case):
    """inspect.iscoroutinefunction holds on every access path of an async target."""
    target = case.get()
    if isinstance(target, functools.partial):
        target = target.func
    assert inspect.iscoroutinefunction(target)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ASYNC_CASES)
async def test_async_calls_reach_the_original_with_the_right_binding(case: Case):
    """The original coroutine runs with the right self/cls and its result comes back."""
    assert await case.get()(*case.prefix, "ok") == (case.owner, "ok")


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ASYNC_CASES)
async def test_async_failures_and_rejections_reach_the_fallback(case: Case):
    """Failures and rejections of async targets are answered by the fallback for that binding."""
    assert await case.get()(*case.prefix, "fail") == (*case.fallback, "DependencyDown")
    get_breaker(case.breaker).trip()
    assert await case.get()(*case.prefix, "ok") == (*case.fallback, "CircuitOpenError")
    metrics = breaker_of(case.get()).metrics()
    assert (metrics.failures, metrics.rejections, metrics.fallbacks) == (1, 1, 2)


@pytest.mark.parametrize("case", ASYNC_CASES)
def test_async_signature_matches_the_access_path(case: Case):
    """inspect.signature of an async target drops self/cls where Python's binding would."""
    assert list(inspect.signature(case.get()).parameters) == case.params


# -- across the matrix ----------------------------------------------------------------------------


def test_every_instance_binds_its_own_self():
    """Two instances share one breaker, but each call and fallback sees its own instance."""
    first, second = Service("first"), Service("second")
    assert first.method("ok") == ("first", "ok")
    assert second.method("ok") == ("second", "ok")
    assert second.method("fail") == ("fallback", "second", "DependencyDown")
    assert first.method.breaker is second.method.breaker


def test_instance_and_class_access_share_one_breaker_state():
    """Failures through the instance open the breaker for calls through the class as well."""
    breaker = Service.method.breaker
    for _ in range(5):
        a.method("fail")
    assert breaker.state is State.OPEN
    assert Service.method(a, "ok") == ("fallback", "a", "CircuitOpenError")


def test_a_bound_method_is_a_real_bound_method():
    """obj.method is bound to obj (its __self__), and the class attribute is the wrapper."""
    bound = a.method
    assert bound.__self__ is a
    assert Service.__dict__["method"] is Service.method
    assert a.cmethod.__self__ is Service
    assert Inheriting.cmethod.__self__ is Inheriting
