"""Small immutable records: what ``@dataclass(frozen=True, slots=True)`` gives, for less.

``dataclasses`` imports ``inspect``, which costs ``resilient check`` (the
pre-commit hook) some 10 ms of start-up on every run, and it compiles some
eight functions for each class it builds (about a millisecond a class: the
codemod's several dozen records cost ``resilient migrate`` 50 ms of start-up).

A record lists in ``_fields`` the attributes that make its value, sets them in
``__init__`` with ``object.__setattr__``, and gets from :class:`Frozen` what a
frozen dataclass has: equality and hashing on those fields, a ``repr`` naming
them, no assignment or deletion afterwards (``AttributeError``), and pickling
and copying through the constructor (its positional parameters are
``_fields``).  The guard's records write their ``__init__`` out; the
:func:`record` decorator builds one from the class's annotations (and its
``__eq__``/``__hash__``, in one compiled unit), with ``__slots__``.

Standard library only.
"""

from __future__ import annotations

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, TypeVar

    from typing_extensions import dataclass_transform

    _C = TypeVar("_C", bound=type)
else:

    def dataclass_transform(**_: object) -> Callable[[_C], _C]:
        return lambda decorated: decorated


__all__ = ["Frozen", "record"]


class Frozen:
    """Value semantics for a record whose value is ``_fields`` (see the module doc)."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Frozen], tuple[Any, ...]]:
        return (self.__class__, self._values())


_SETTER = object.__setattr__


@dataclass_transform(frozen_default=True, eq_default=True)
def record(cls: _C) -> _C:
    """``cls`` as a frozen, slotted record of its annotated attributes (in their order).

    An attribute given a value in the class body has it as its default; one
    annotated ``ClassVar`` is not a field.  Fields without a default must come
    first, as with dataclasses.

    Raises:
        TypeError: a field without a default follows one with a default.
    """
    own = cls.__dict__
    names = tuple(
        name
        for name, kind in own.get("__annotations__", {}).items()
        # (a string under ``from __future__ import annotations``, else typing's object)
        if not str(kind).startswith(("ClassVar", "typing.ClassVar"))
    )
    defaults = {name: own[name] for name in names if name in own}
    seen_default = False
    for name in names:
        if name in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
    namespace = {k: v for k, v in own.items() if k not in defaults and k not in _NOT_COPIED}
    namespace.update(__slots__=names, _fields=names, __match_args__=names)
    values = "".join(f"self.{name}, " for name in names)
    others = "".join(f"other.{name}, " for name in names)
    params = "".join(f", {n}=_default_{n}" if n in defaults else f", {n}" for n in names)
    sets = "".join(f"    _set(self, {n!r}, {n})\n" for n in names) or "    pass\n"
    source = (
        f"def __init__(self{params}):\n{sets}"
        "def __eq__(self, other):\n"
        "    if other.__class__ is self.__class__:\n"
        f"        return ({values}) == ({others})\n"
        "    return NotImplemented\n"
        "def __hash__(self):\n"
        f"    return hash(({values}))\n"
    )
    scope: dict[str, Any] = {"_set": _SETTER, **{f"_default_{n}": v for n, v in defaults.items()}}
    exec(source, scope)  # noqa: S102 (text built above from the class's own field names)
    for method in ("__init__", "__eq__", "__hash__"):
        function = scope[method]
        function.__qualname__ = f"{cls.__qualname__}.{method}"
        namespace[method] = function
    bases = cls.__bases__ if issubclass(cls, Frozen) else (*_real_bases(cls), Frozen)
    return type(cls)(cls.__name__, bases, namespace)


_NOT_COPIED = frozenset({"__dict__", "__weakref__"})


def _real_bases(cls: type) -> tuple[type, ...]:
    return tuple(base for base in cls.__bases__ if base is not object)
