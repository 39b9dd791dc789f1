"""``@circuit_breaker``: breakers around functions, methods and coroutines.

Built on wrapt: the decorated object is a ``wrapt.FunctionWrapper`` (so name,
docstring, ``__wrapped__``, signature, ``isinstance`` checks and
``inspect.iscoroutinefunction`` see the original), but wrapt's generic call and
binding paths are slow for plain functions (they probe ``__self__`` and raise
an AttributeError on every call) and for methods (a Python-level bound wrapper
per attribute access).  So each decorated callable gets its own small wrapper
class whose ``__call__`` is the protected function itself and whose
``__get__`` binds with ``types.MethodType``, the same C-level binding Python
uses for plain functions.  For instance methods, ``__set_name__`` goes one step
further and installs the protected function itself as the class attribute, so
``obj.method(...)`` pays no Python-level ``__get__`` at all.  The healthy path
is inlined in that function.

wrapt is imported when the first function is decorated, not by ``import resilient``.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Coroutine
from types import MethodType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from ._config import BreakerConfig, check_setting_names
from ._errors import CircuitOpenError
from ._registry import get_breaker, note_fallback
from ._state import State

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._breaker import CircuitBreaker
    from .stores import Store

__all__ = ["BoundBreakerFunction", "BreakerFunction", "circuit_breaker"]

P = ParamSpec("P")
Q = ParamSpec("Q")
P2 = ParamSpec("P2")
R = TypeVar("R")
R2 = TypeVar("R2")
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")

_OPEN = State.OPEN
_FUNCTION = "function"
_CLASSMETHOD = "classmethod"
_STATICMETHOD = "staticmethod"


class BoundBreakerFunction(Protocol[P, R_co]):
    """A protected callable as seen through an instance or class (bound)."""

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker protecting this callable."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class BreakerFunction(Protocol[P, R_co]):
    """A protected function, method, classmethod or staticmethod.

    Called directly it takes every parameter of the original, by position or by
    keyword.  Looked up on a class or an instance it binds like the original:
    an instance method through an instance drops ``self``, a classmethod drops
    ``cls``, a staticmethod drops nothing.

    How the ``__get__`` overloads work: the binding kind is read from the type
    of the first parameter (``type[X]`` for a classmethod, the instance's class
    for a method).  mypy checks a ``self: Callable[...]`` annotation precisely
    but does not check ``Concatenate`` inside ``self: BreakerFunction[...]``;
    pyright does the reverse (it never selects the ``Callable`` forms).  So each
    question is asked twice, ``Callable`` form first, and a ``Callable[P2, R2]``
    catch-all sends mypy to "unbound" before it reaches the forms it cannot
    check.  Known gap: a staticmethod whose first parameter is ``Any`` or
    ``object`` looks like a method to both checkers.
    """

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker protecting this function."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    # Looked up on the class (instance is None): only a classmethod binds.
    @overload
    def __get__(  # type: ignore[misc]
        self: Callable[Concatenate[type[S], Q], R], instance: None, owner: type[S]
    ) -> BoundBreakerFunction[Q, R]: ...
    @overload
    def __get__(
        self: Callable[P2, R2], instance: None, owner: type[Any] | None = None
    ) -> BreakerFunction[P2, R2]: ...
    @overload
    def __get__(
        self: BreakerFunction[Concatenate[type[S], Q], R], instance: None, owner: type[S]
    ) -> BoundBreakerFunction[Q, R]: ...
    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    # Looked up on an instance: a method or classmethod binds, a staticmethod does not.
    @overload
    def __get__(
        self: Callable[Concatenate[S, Q], R], instance: S, owner: type[Any] | None = None
    ) -> BoundBreakerFunction[Q, R]: ...
    @overload
    def __get__(  # type: ignore[misc]
        self: Callable[Concatenate[type[S], Q], R], instance: S, owner: type[Any] | None = None
    ) -> BoundBreakerFunction[Q, R]: ...
    @overload
    def __get__(
        self: Callable[P2, R2], instance: object, owner: type[Any] | None = None
    ) -> BreakerFunction[P2, R2]: ...
    @overload
    def __get__(
        self: BreakerFunction[Concatenate[S, Q], R], instance: S, owner: type[Any] | None = None
    ) -> BoundBreakerFunction[Q, R]: ...
    @overload
    def __get__(
        self: BreakerFunction[Concatenate[type[S], Q], R],
        instance: S,
        owner: type[Any] | None = None,
    ) -> BoundBreakerFunction[Q, R]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> Self: ...


class BreakerClassMethod(Protocol[P, R_co]):
    """A protected classmethod or staticmethod object (bound on every lookup).

    For type checkers that hand the decorator the ``classmethod`` or
    ``staticmethod`` object itself; mypy and pyright hand it the function.
    """

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker protecting this method."""

    def __get__(
        self, instance: object, owner: type[Any] | None = None
    ) -> BoundBreakerFunction[P, R_co]: ...


class _Decorator(Protocol):
    @overload
    def __call__(self, fn: classmethod[Any, P, R], /) -> BreakerClassMethod[P, R]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: staticmethod[P, R], /
    ) -> BreakerClassMethod[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> BreakerFunction[P, R]: ...


@overload
def circuit_breaker(name: classmethod[Any, P, R], /) -> BreakerClassMethod[P, R]: ...
@overload
def circuit_breaker(name: staticmethod[P, R], /) -> BreakerClassMethod[P, R]: ...  # type: ignore[overload-overlap]
@overload
def circuit_breaker(name: Callable[P, R], /) -> BreakerFunction[P, R]: ...
@overload
def circuit_breaker(
    name: str | None = None,
    *,
    fallback: str | Callable[..., Any] | None = None,
    store: Store | None = None,
    **config: Any,
) -> _Decorator: ...


def circuit_breaker(
    name: Any = None,
    *,
    fallback: str | Callable[..., Any] | None = None,
    store: Store | None = None,
    **config: Any,
) -> Any:
    """Protect a function, method or coroutine function with a circuit breaker.

    Use it as ``@circuit_breaker`` (the breaker is named ``module.qualname``) or
    ``@circuit_breaker("auth.validate_token", fallback=..., failure_threshold=5)``.
    Put it outermost, above ``@classmethod`` and ``@staticmethod``.  The result
    keeps the name, docstring, signature, type hints and
    ``inspect.iscoroutinefunction`` of the original, and exposes ``.breaker``.

    Args:
        name: the breaker's name; one name is one protected dependency, so
            functions given the same name share one breaker.
        fallback: answers instead of the dependency when a call is rejected or
            fails with a counted failure: a callable taking the same arguments,
            or the name of a method on the same instance (or class).  If it
            has a parameter named ``error`` it also receives the exception.  A
            sync or async fallback both work under an async function.
        store: where the breaker's state lives (see :func:`get_breaker`).
        **config: :class:`BreakerConfig` settings, e.g. ``failure_threshold=5``,
            ``recovery_timeout=30``, ``call_timeout=10``, ``ignore=(InvalidToken,)``.

    Raises:
        ConfigError: a setting is unknown, invalid, or conflicts with the
            existing breaker of the same name.
        TypeError: the target cannot be protected (a generator, a property, a
            class, something not callable).
    """
    if name is not None and not isinstance(name, str):
        if fallback is not None or store is not None or config:
            raise TypeError(
                "circuit_breaker(fn, ...) takes settings only as circuit_breaker(name, ...)(fn)"
            )
        return _decorate(name, None, None, None, {})
    check_setting_names(config)
    BreakerConfig.from_mapping(config)  # bad values fail at the decorator line
    if fallback is not None and not (isinstance(fallback, str) or callable(fallback)):
        raise TypeError(f"fallback must be a callable or a method name, got {fallback!r}")

    def decorate(fn: Any) -> Any:
        return _decorate(fn, name, fallback, store, config)

    return decorate


class _Spec:
    """What a decorated callable knows about where it lives (set by ``__set_name__``)."""

    __slots__ = ("attr", "func", "kind", "owner")

    def __init__(self, func: Callable[..., Any], kind: str) -> None:
        self.func = func
        self.kind = kind
        self.owner: type[Any] | None = None
        self.attr: str | None = None


def _decorate(
    target: Any,
    name: str | None,
    fallback: str | Callable[..., Any] | None,
    store: Store | None,
    config: dict[str, Any],
) -> Any:
    if isinstance(target, classmethod):
        kind, func = _CLASSMETHOD, target.__func__
    elif isinstance(target, staticmethod):
        kind, func = _STATICMETHOD, target.__func__
    else:
        kind, func = _FUNCTION, target
    _refuse(target, func)
    if (
        callable(fallback)
        and inspect.iscoroutinefunction(fallback)
        and not inspect.iscoroutinefunction(func)
    ):
        raise TypeError(
            f"circuit_breaker cannot protect {func.__qualname__!r} with fallback {fallback!r}: "
            "the fallback is a coroutine function and the protected function is sync, so "
            "callers would get an un-awaited coroutine; give a sync fallback"
        )
    breaker_name = name if name is not None else _default_name(func)
    breaker = get_breaker(breaker_name, store=store, **config)
    spec = _Spec(func, kind)
    if fallback is not None:
        note_fallback(breaker_name)
    answer = _fallback_caller(fallback, spec, breaker_name) if fallback is not None else None
    if inspect.iscoroutinefunction(func):
        run = _async_runner(func, breaker, answer)
    else:
        run = _sync_runner(func, breaker, answer)
    functools.update_wrapper(run, func)
    run.breaker = breaker  # type: ignore[attr-defined]
    return _wrap(target, run, spec, breaker)


def _refuse(target: Any, func: Any) -> None:
    what = None
    if isinstance(target, property):
        what = "a property; decorate its getter function instead"
    elif isinstance(func, type):
        what = "a class; decorate the method that calls the dependency"
    elif inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        kind = "an async generator" if inspect.isasyncgenfunction(func) else "a generator"
        what = (
            f"{kind} function: its body runs after the call returns, outside the breaker; "
            "protect the function that fetches the data, or collect the items into a list"
        )
    elif not callable(func):
        what = f"not callable ({type(func).__name__})"
    if what is not None:
        getter = getattr(func, "fget", None)  # a property is named after its getter
        label = getattr(func, "__qualname__", None) or getattr(getter, "__qualname__", None)
        label = label or repr(func)
        raise TypeError(f"circuit_breaker cannot protect {label!r}: it is {what}")


def _default_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "__main__"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if qualname is None:  # a callable instance: name it after its class, not its address
        qualname = type(func).__qualname__
        module = type(func).__module__
    return f"{module}.{qualname}"


def _wants_error(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    param = params.get("error")
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def _fallback_caller(
    fallback: str | Callable[..., Any], spec: _Spec, breaker_name: str
) -> Callable[[tuple[Any, ...], dict[str, Any], BaseException], Any]:
    """Build ``(args, kwargs, error) -> value`` that calls the user's fallback."""
    if not isinstance(fallback, str):
        wants_error = _wants_error(fallback)

        def call_callable(
            args: tuple[Any, ...], kwargs: dict[str, Any], error: BaseException
        ) -> Any:
            if wants_error:
                return fallback(*args, error=error, **kwargs)
            return fallback(*args, **kwargs)

        return call_callable

    method_name = fallback
    cache: dict[Any, bool] = {}

    def resolve(args: tuple[Any, ...]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        kind = spec.kind
        if kind == _STATICMETHOD:
            if spec.owner is not None:
                return getattr(spec.owner, method_name), args
        elif (kind == _CLASSMETHOD or spec.owner is not None) and args:
            holder = args[0]
            try:
                return getattr(holder, method_name), args[1:]
            except AttributeError:
                pass
        func = spec.func
        scope = getattr(func, "__globals__", {})
        if method_name in scope:
            return scope[method_name], args
        where = (
            f"class {spec.owner.__qualname__!r}"
            if spec.owner is not None
            else f"module {func.__module__!r}"
        )
        raise AttributeError(
            f"fallback {method_name!r} of circuit breaker {breaker_name!r} was not found on "
            f"the instance, its class, or {where}"
        )

    def call_named(args: tuple[Any, ...], kwargs: dict[str, Any], error: BaseException) -> Any:
        target, rest = resolve(args)
        key = getattr(target, "__func__", target)
        wants_error = cache.get(key)
        if wants_error is None:
            wants_error = cache[key] = _wants_error(target)
        if wants_error:
            return target(*rest, error=error, **kwargs)
        return target(*rest, **kwargs)

    return call_named


def _sync_runner(
    fn: Callable[..., Any],
    breaker: CircuitBreaker,
    answer: Callable[[tuple[Any, ...], dict[str, Any], BaseException], Any] | None,
) -> Callable[..., Any]:
    # The healthy path is written out here rather than calling into the breaker:
    # one Python frame for the whole protected call.
    call_sync = breaker._call_sync
    record_exception = breaker._record_exception
    run_fallback = breaker._run_fallback
    clear_consecutive = breaker._clear_consecutive

    def protected(*args: Any, **kwargs: Any) -> Any:
        b = breaker
        if b._fast:
            epoch = b._epoch
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                if not record_exception(epoch, exc) or answer is None:
                    raise
                return run_fallback(answer, args, kwargs, exc)
            next(b._n_successes)
            if b._consecutive:
                clear_consecutive(epoch)
            return result
        observe = b._observe_fast
        if observe is not None:
            # The healthy path while resilient.contrib's duration hook is
            # installed: the same, plus a clock reading around sampled calls.
            epoch = b._epoch
            start = time.monotonic() if next(b._observe_sample) else None
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                took = time.monotonic() - start if start is not None else 0.0
                counted = record_exception(epoch, exc)
                if start is not None:
                    observe(took, "failure" if counted else "ignored")
                if not counted or answer is None:
                    raise
                return run_fallback(answer, args, kwargs, exc)
            if start is not None:
                observe(time.monotonic() - start, "success")
            next(b._n_successes)
            if b._consecutive:
                clear_consecutive(epoch)
            return result
        if b._state is _OPEN:
            # Open-state rejection, also inlined: no frames to unwind.
            now = time.monotonic()
            retry_at = b._retry_at
            if now < retry_at:
                next(b._n_rejected)
                err = CircuitOpenError(b.name, retry_at - now, _OPEN, b._open_reason)
                if answer is None:
                    raise err
                return run_fallback(answer, args, kwargs, err)
        return call_sync(fn, args, kwargs, answer)

    return protected


def _async_runner(
    fn: Callable[..., Coroutine[Any, Any, Any]],
    breaker: CircuitBreaker,
    answer: Callable[[tuple[Any, ...], dict[str, Any], BaseException], Any] | None,
) -> Callable[..., Any]:
    call_async = breaker._call_async
    record_exception = breaker._record_exception
    arun_fallback = breaker._arun_fallback
    clear_consecutive = breaker._clear_consecutive

    async def protected(*args: Any, **kwargs: Any) -> Any:
        b = breaker
        if b._fast:
            epoch = b._epoch
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                if not record_exception(epoch, exc) or answer is None:
                    raise
                return await arun_fallback(answer, args, kwargs, exc)
            next(b._n_successes)
            if b._consecutive:
                clear_consecutive(epoch)
            return result
        observe = b._observe_fast
        if observe is not None:
            epoch = b._epoch
            start = time.monotonic() if next(b._observe_sample) else None
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                took = time.monotonic() - start if start is not None else 0.0
                counted = record_exception(epoch, exc)
                if start is not None:
                    observe(took, "failure" if counted else "ignored")
                if not counted or answer is None:
                    raise
                return await arun_fallback(answer, args, kwargs, exc)
            if start is not None:
                observe(time.monotonic() - start, "success")
            next(b._n_successes)
            if b._consecutive:
                clear_consecutive(epoch)
            return result
        if b._state is _OPEN:
            now = time.monotonic()
            retry_at = b._retry_at
            if now < retry_at:
                next(b._n_rejected)
                err = CircuitOpenError(b.name, retry_at - now, _OPEN, b._open_reason)
                if answer is None:
                    raise err
                return await arun_fallback(answer, args, kwargs, err)
        return await call_async(fn, args, kwargs, answer)

    return protected


@functools.lru_cache(maxsize=1)
def _wrapper_base() -> type[Any]:
    import wrapt

    class CircuitBreakerFunction(wrapt.FunctionWrapper):  # type: ignore[type-arg]
        """Base of the per-callable wrapper classes (see the module docstring)."""

        def __set_name__(self, owner: type[Any], name: str) -> None:
            spec: _Spec = self._self_spec
            spec.owner = owner
            spec.attr = name
            wrapped_set_name = getattr(self.__wrapped__, "__set_name__", None)
            if wrapped_set_name is not None:
                wrapped_set_name(owner, name)
            if spec.kind == _FUNCTION and owner.__dict__.get(name) is self:
                # An instance method: our __get__ would return
                # MethodType(protected, instance), which is exactly what Python's
                # own (C-level) function binding returns for the protected function
                # itself.  Installing that function as the class attribute saves a
                # Python-level __get__ on every `obj.method(...)`.  It carries
                # `.breaker`, `__wrapped__`, the name, docstring and signature.
                setattr(owner, name, self._self_run)

        def __repr__(self) -> str:
            return f"<circuit_breaker {self._self_breaker.name!r} around {self.__wrapped__!r}>"

        def __reduce_ex__(self, protocol: Any) -> Any:
            # Pickle by reference, like the function it replaces.
            spec: _Spec = self._self_spec
            func = spec.func
            if spec.owner is not None:
                return (getattr, (spec.owner, spec.attr))
            return (_load_global, (func.__module__, func.__qualname__))

    return CircuitBreakerFunction


def _load_global(module: str, qualname: str) -> Any:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:  # pragma: no cover
    # wrapt's own call path; unused because every wrapper class defines __call__.
    return wrapped(*args, **kwargs)


def _wrap(target: Any, run: Callable[..., Any], spec: _Spec, breaker: CircuitBreaker) -> Any:
    base = _wrapper_base()
    kind = spec.kind
    if kind == _FUNCTION:

        def __get__(self: Any, instance: Any, owner: Any = None) -> Any:
            if instance is None:
                return self
            return MethodType(run, instance)

    elif kind == _CLASSMETHOD:

        def __get__(self: Any, instance: Any, owner: Any = None) -> Any:
            return MethodType(run, owner if owner is not None else type(instance))

    else:

        def __get__(self: Any, instance: Any, owner: Any = None) -> Any:
            return run

    namespace = {
        "__call__": staticmethod(run),
        "__get__": __get__,
        "breaker": property(lambda self: breaker, doc="The breaker protecting this callable."),
        "__module__": __name__,
        "__qualname__": f"circuit_breaker[{breaker.name}]",
    }
    cls = type(f"circuit_breaker[{breaker.name}]", (base,), namespace)
    wrapper = cls(target, _passthrough)
    wrapper._self_spec = spec
    wrapper._self_breaker = breaker
    wrapper._self_run = run
    return wrapper
