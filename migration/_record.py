"""The base of the guard's small immutable records (written out, not dataclasses).

``dataclasses`` imports ``inspect``, which costs ``resilient check`` (the
pre-commit hook) some 10 ms of start-up on every run.  A record lists in
``_fields`` the attributes that make its value, sets them in ``__init__`` with
``object.__setattr__``, and gets from :class:`Frozen` what a frozen dataclass
has: equality and hashing on those fields, a ``repr`` naming them, no
assignment or deletion afterwards (``AttributeError``), and pickling and
copying through the constructor (its positional parameters are ``_fields``).

Standard library only.
"""

from __future__ import annotations

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Any, ClassVar

__all__ = ["Frozen"]


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
