"""Evaluates the index's symbolic expressions to the values they may hold (no LibCST).

The evaluation is flow-insensitive and deliberately small: it follows names,
imports (also re-exports and relative ones, already made absolute by the
index), ``self.attr`` slots, dictionary slots (``self._breakers[name] = ...``,
``.get``/``.values()``/``.items()``), function and method returns, and
annotations.  That is enough to see that

.. code-block:: python

    breaker = circuit_breaker_manager.get_breaker("auth")   # another module
    await breaker.call(self._validate_token_remote, token)

awaits a breaker built by ``self._breakers[name] = MockCircuitBreaker(name)``.
Anything it cannot follow evaluates to :data:`UNKNOWN`, never to a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

from ._codemod_model import (
    Annotated,
    AnyOf,
    Attr,
    CallOf,
    ClassInfo,
    DefClass,
    DefFunc,
    ElemOf,
    ImportRef,
    Item,
    IterOf,
    Opaque,
    Ref,
    SelfOf,
    SiteId,
    Sym,
)
from ._record import record

__all__ = [
    "UNKNOWN",
    "Resolver",
    "VBreaker",
    "VClass",
    "VFunc",
    "VInst",
    "VPath",
    "Value",
]


@record
class VClass:
    """A class object."""

    fqn: str


@record
class VFunc:
    """A function or method; calling it gives its returns."""

    fqn: str


@record
class VInst:
    """An instance of a (non-mock) class."""

    cls: str


@record
class VBreaker:
    """A mock breaker instance built at ``site`` (None: known only by an annotation)."""

    cls: str
    site: SiteId | None


@record
class VSlot:
    """A name or ``self.attr`` slot that items are stored into (a dict of breakers)."""

    key: str


@record
class VSlotMethod:
    """A dict method of a slot (``self._breakers.get``)."""

    key: str
    name: str


@record
class VView:
    """``slot.values()`` or ``slot.items()``."""

    key: str
    kind: str


@record
class VPair:
    """A ``(key, item)`` pair from iterating ``slot.items()``."""

    key: str


@record
class VPath:
    """A dotted name the index has no binding for (a module, or outside the tree)."""

    fqn: str


@record
class VUnknown:
    """Anything else."""


UNKNOWN: Final = VUnknown()

Value: TypeAlias = (
    VClass | VFunc | VInst | VBreaker | VSlot | VSlotMethod | VView | VPair | VPath | VUnknown
)

_DICT_GETTERS: Final = frozenset({"get", "pop", "setdefault", "__getitem__"})
_DICT_VIEWS: Final = frozenset({"values", "items"})
_MAX_DEPTH: Final = 150
_NO_CYCLE: Final = 1 << 30


class Resolver:
    """Evaluates symbolic expressions against the merged bindings of every indexed module.

    Args:
        bindings: fully qualified name -> the expressions bound to it.  Keys
            follow the index's scheme: ``mod.name``, ``mod.f.<locals>.x``,
            ``mod.Cls#attr`` for ``self.attr``, a ``[]`` suffix for items stored
            into a slot, a ``()`` suffix for what a function returns.
        classes: every indexed class by fully qualified name.
    """

    def __init__(
        self, bindings: Mapping[str, tuple[Sym, ...]], classes: Mapping[str, ClassInfo]
    ) -> None:
        self.bindings = bindings
        self.classes = classes
        self._memo: dict[Sym, frozenset[Value]] = {}
        self._active: dict[Sym, int] = {}
        self._lows: list[int] = []
        self._mro: dict[str, tuple[str, ...]] = {}

    # -- public ------------------------------------------------------------------------

    def values(self, sym: Sym) -> frozenset[Value]:
        """Everything ``sym`` may evaluate to."""
        self._lows.append(_NO_CYCLE)
        try:
            return self._eval(sym)
        finally:
            self._lows.pop()

    def breakers(self, sym: Sym) -> frozenset[tuple[str, SiteId | None]]:
        """The mock breakers ``sym`` may be: ``(class, construction site)`` pairs."""
        return frozenset((v.cls, v.site) for v in self.values(sym) if isinstance(v, VBreaker))

    def is_mock(self, fqn: str) -> bool:
        """True when ``fqn`` is an indexed mock breaker class."""
        info = self.classes.get(fqn)
        return info is not None and info.is_mock

    def canonical(self, path: str) -> str:
        """Follow import bindings (also re-exports) from ``path`` to where it is defined."""
        for _ in range(50):
            entries = self.bindings.get(path)
            if not entries:
                return path
            targets = {e.fqn for e in entries if isinstance(e, ImportRef)}
            if len(targets) != 1 or len(entries) != 1:
                return path
            path = next(iter(targets))
        return path

    def direct_path(self, sym: Sym) -> str | None:
        """The dotted path a Name/Attribute chain spells through imports, or None.

        ``CB`` (``from app.cb import MockCircuitBreaker as CB``) and
        ``cb.MockCircuitBreaker`` (``import app.cb as cb``) both give
        ``app.cb.MockCircuitBreaker``; a local variable holding the class gives
        the variable's own name, never the class.
        """
        if isinstance(sym, Ref):
            return self.canonical(sym.fqn)
        if isinstance(sym, Attr):
            base = self.direct_path(sym.base)
            if base is None:
                return None
            entries = self.bindings.get(base)
            if entries and not all(isinstance(e, DefClass) for e in entries):
                return None  # an attribute of a variable, not of a module or class
            return self.canonical(f"{base}.{sym.name}")
        if isinstance(sym, AnyOf) and len(sym.items) == 1:
            return self.direct_path(sym.items[0])
        return None

    def mock_class(self, sym: Sym) -> str | None:
        """The mock class ``sym`` names directly (through imports, not variables)."""
        path = self.direct_path(sym)
        if path is not None and self.is_mock(path):
            return path
        return None

    def mro(self, cls: str) -> tuple[str, ...]:
        """``cls`` and its indexed base classes, nearest first."""
        cached = self._mro.get(cls)
        if cached is not None:
            return cached
        self._mro[cls] = (cls,)  # guards against cycles
        out = [cls]
        info = self.classes.get(cls)
        if info is not None:
            for base in info.bases:
                path = self.direct_path(base)
                if path is not None and path in self.classes:
                    out.extend(c for c in self.mro(path) if c not in out)
        result = tuple(out)
        self._mro[cls] = result
        return result

    def carriers(self) -> dict[str, frozenset[str]]:
        """Short names through which other modules can reach mock breakers, and which ones.

        Mock classes, module-level functions and variables whose value is or
        hands out a mock breaker, and classes holding one (a manager), each
        mapped to the mock classes it leads to.  The run uses the names as a byte
        prefilter to find more files worth parsing, and to know what a file it
        could not parse may be using.
        """
        reach: dict[str, set[str]] = {c: {c} for c, info in self.classes.items() if info.is_mock}
        keys = [k for k in self.bindings if "<locals>" not in k]
        for _ in range(20):
            changed = False
            for key in keys:
                owner = key.removesuffix("()").removesuffix("[]").split("#", 1)[0]
                found: set[str] = set()
                for value in self._top_entries(key):
                    found |= self._reached(value, reach)
                parent = owner.rpartition(".")[0]
                targets = [owner, parent] if parent in self.classes else [owner]
                for target in targets:  # a manager: its method hands out breakers
                    if not found <= reach.get(target, set()):
                        reach.setdefault(target, set()).update(found)
                        changed = True
            for cls in self.classes:
                for base in self.mro(cls)[1:]:
                    if not reach.get(base, set()) <= reach.get(cls, set()):
                        reach.setdefault(cls, set()).update(reach[base])
                        changed = True
            if not changed:
                break
        names: dict[str, set[str]] = {}
        for fqn, mocks in reach.items():
            if not mocks or "<locals>" in fqn or "#" in fqn:
                continue
            parent, _, short = fqn.rpartition(".")
            if parent in self.classes or not short:
                continue  # a method: reached through its class or an instance
            names.setdefault(short, set()).update(mocks)
        return {k: frozenset(v) for k, v in names.items()}

    def carrier_names(self) -> frozenset[str]:
        """The names of :meth:`carriers`."""
        return frozenset(self.carriers())

    # -- evaluation --------------------------------------------------------------------

    def _top_entries(self, key: str) -> frozenset[Value]:
        self._lows.append(_NO_CYCLE)
        try:
            return self._entries(key)
        finally:
            self._lows.pop()

    def _entries(self, key: str) -> frozenset[Value]:
        out: set[Value] = set()
        for s in self.bindings.get(key, ()):
            out |= self._sub(s)
        return frozenset(out)

    @staticmethod
    def _reached(value: Value, reach: Mapping[str, set[str]]) -> set[str]:
        if isinstance(value, VBreaker):
            return {value.cls}
        if isinstance(value, (VClass, VFunc, VPath)):
            return reach.get(value.fqn, set())
        if isinstance(value, VInst):
            return reach.get(value.cls, set())
        if isinstance(value, (VSlot, VSlotMethod, VView, VPair)):
            return reach.get(value.key.split("#", 1)[0], set()) | reach.get(value.key, set())
        return set()

    def _sub(self, sym: Sym) -> frozenset[Value]:
        return self._eval(sym)

    def _eval(self, sym: Sym) -> frozenset[Value]:
        memo = self._memo.get(sym)
        if memo is not None:
            return memo
        depth = self._active.get(sym)
        if depth is not None:
            # A cycle back to a value still being computed: that caller adds the rest.
            self._lows[-1] = min(self._lows[-1], depth)
            return frozenset()
        if len(self._active) > _MAX_DEPTH:
            return frozenset({UNKNOWN})
        depth = len(self._active)
        self._active[sym] = depth
        self._lows.append(_NO_CYCLE)
        try:
            result = frozenset(self._compute(sym))
        finally:
            low = self._lows.pop()
            del self._active[sym]
        if low >= depth:
            self._memo[sym] = result  # complete: no cycle reached above this value
        else:
            self._lows[-1] = min(self._lows[-1], low)
        return result

    def _compute(self, sym: Sym) -> Iterable[Value]:
        if isinstance(sym, Ref):
            return self._ref(sym.fqn)
        if isinstance(sym, ImportRef):
            return self._ref(sym.fqn)
        if isinstance(sym, DefClass):
            return (VClass(sym.fqn),)
        if isinstance(sym, DefFunc):
            return (VFunc(sym.fqn),)
        if isinstance(sym, SelfOf):
            return (VInst(sym.cls),)
        if isinstance(sym, Attr):
            return self._union(self._attr(v, sym.name) for v in self._sub(sym.base))
        if isinstance(sym, Item):
            return self._union(self._item(v) for v in self._sub(sym.base))
        if isinstance(sym, CallOf):
            return self._union(self._call(v, sym.site) for v in self._sub(sym.func))
        if isinstance(sym, IterOf):
            return self._union(self._iter(v) for v in self._sub(sym.base))
        if isinstance(sym, ElemOf):
            return self._union(self._elem(v, sym.index) for v in self._sub(sym.base))
        if isinstance(sym, AnyOf):
            return self._union(self._sub(s) for s in sym.items)
        if isinstance(sym, Annotated):
            return self._annotated(sym)
        assert isinstance(sym, Opaque)
        return (UNKNOWN,)

    @staticmethod
    def _union(parts: Iterable[Iterable[Value]]) -> set[Value]:
        out: set[Value] = set()
        for p in parts:
            out.update(p)
        return out

    def _ref(self, fqn: str) -> set[Value]:
        out: set[Value] = set()
        entries = self.bindings.get(fqn)
        if entries:
            for s in entries:
                out |= self._sub(s)
        else:
            out.add(VPath(fqn))
        if f"{fqn}[]" in self.bindings:
            out.add(VSlot(fqn))
        return out

    def _attr(self, value: Value, name: str) -> Iterable[Value]:
        if isinstance(value, VPath):
            return self._ref(f"{value.fqn}.{name}")
        if isinstance(value, VClass):
            for cls in self.mro(value.fqn):
                if f"{cls}.{name}" in self.bindings:
                    return self._ref(f"{cls}.{name}")
            return (UNKNOWN,)
        if isinstance(value, VInst):
            out: set[Value] = set()
            for cls in self.mro(value.cls):
                if f"{cls}.{name}" in self.bindings:
                    out |= self._ref(f"{cls}.{name}")
                slot = f"{cls}#{name}"
                if slot in self.bindings or f"{slot}[]" in self.bindings:
                    out.add(VSlot(slot))
                    out |= self._entries(slot)
                if out:
                    return out
            return (UNKNOWN,)
        if isinstance(value, VSlot):
            if name in _DICT_GETTERS or name in _DICT_VIEWS:
                return (VSlotMethod(value.key, name),)
            return (UNKNOWN,)
        return (UNKNOWN,)

    def _item(self, value: Value) -> Iterable[Value]:
        if isinstance(value, VSlot):
            return self._entries(f"{value.key}[]") or (UNKNOWN,)
        return (UNKNOWN,)

    def _call(self, value: Value, site: SiteId) -> Iterable[Value]:
        if isinstance(value, VClass):
            if self.is_mock(value.fqn):
                return (VBreaker(value.fqn, site),)
            return (VInst(value.fqn),)
        if isinstance(value, VFunc):
            return self._entries(f"{value.fqn}()") or (UNKNOWN,)
        if isinstance(value, VSlotMethod):
            if value.name in _DICT_VIEWS:
                return (VView(value.key, value.name),)
            return self._entries(f"{value.key}[]") | {UNKNOWN}
        return (UNKNOWN,)

    def _iter(self, value: Value) -> Iterable[Value]:
        if isinstance(value, VView):
            if value.kind == "values":
                return self._entries(f"{value.key}[]") or (UNKNOWN,)
            return (VPair(value.key),)
        return (UNKNOWN,)

    def _elem(self, value: Value, index: int) -> Iterable[Value]:
        if isinstance(value, VPair) and index == 1:
            return self._entries(f"{value.key}[]") or (UNKNOWN,)
        return (UNKNOWN,)

    def _annotated(self, sym: Annotated) -> set[Value]:
        out: set[Value] = set()
        for item in sym.items:
            path = self.direct_path(item)
            if path is None:
                continue
            if self.is_mock(path):
                out.add(VBreaker(path, None))
            elif path in self.classes:
                out.add(VInst(path))
        return out or {UNKNOWN}
