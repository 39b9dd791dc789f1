"""The LibCST side of ``resilient migrate``: index and analyse one module.

Two of the three passes (see :mod:`._codemod_model`):

- :func:`index_module` records what every name, ``self.attr`` slot and
  function return in a module may hold, as symbolic expressions built from
  fully qualified names (LibCST scope analysis, so aliases and relative
  imports resolve), plus the classes the module defines;
- :func:`analyze_module` evaluates those expressions with the whole tree's
  bindings and reports every construction, use and reference of a mock breaker,
  each with the edit it needs or the reason it cannot be migrated;
- :func:`._codemod_apply.apply_edits` then applies the edits the tree-wide plan
  (:mod:`._codemod_plan`) kept.

LibCST is imported at module level here: only ``resilient migrate`` imports this
module, after checking that the ``migrate`` extra is installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import libcst as cst
from libcst.helpers import get_absolute_module_from_package_for_import
from libcst.metadata import (
    ClassScope,
    CodeRange,
    MetadataWrapper,
    PositionProvider,
    QualifiedName,
    QualifiedNameSource,
    Scope,
    ScopeProvider,
)

from ._codemod_model import (
    OPAQUE,
    Annotated,
    AnyOf,
    Arg,
    AssignToCall,
    Attr,
    CallOf,
    CallToAttr,
    ClassDefinition,
    ClassInfo,
    Construction,
    DefClass,
    DefFunc,
    DeleteClass,
    DropElement,
    DropStatement,
    Edit,
    ElemOf,
    FileFacts,
    ImportOf,
    ImportRef,
    ImportSpec,
    Item,
    IterOf,
    ModuleSummary,
    NodeKey,
    Param,
    ParamKind,
    Ref,
    Reference,
    RefKind,
    RenameAttr,
    ReplaceCall,
    ReplaceName,
    ReplaceString,
    SelfOf,
    SiteId,
    Sym,
    Use,
    UseAction,
)
from ._codemod_resolve import Resolver, VClass
from ._codemod_rules import (
    BREAKER_API,
    COUNTER_ATTRS,
    MODE_RE,
    map_arguments,
    unsupported_attribute,
)
from ._names import MockNames

__all__ = ["analyze_module", "index_module"]

_UNION_HEADS: Final = frozenset(
    {"Optional", "Union", "Annotated", "Final", "ClassVar", "Required", "NotRequired"}
)
_AVAILABILITY_RE: Final = re.compile(
    r"^_*(?:has|have|is|use|with|enable)_|available|installed|enabled|present|_ok$",
    re.IGNORECASE,
)
_STATE_VALUES: Final = frozenset({"closed", "open", "half_open", "forced_open", "disabled"})
_OPEN_WORDS: Final = frozenset({"open", "opened", "forced_open"})
_CLOSED_WORDS: Final = frozenset({"closed", "close"})

#: The names the rewritten code uses, and the fallbacks when a module already has them.
GET_BREAKER: Final = ("get_breaker", "resilient_get_breaker")
BREAKER_TYPE: Final = ("CircuitBreaker", "ResilientCircuitBreaker")


# -- a parsed module with its metadata ------------------------------------------------


class _Parsed:
    """One module parsed once, with the metadata every pass needs.

    Scope analysis comes from LibCST's ``ScopeProvider``; qualified names are
    asked of it only for the ``Name`` nodes the passes look at (what
    ``FullyQualifiedNameProvider`` would give, without computing one for every
    node of the module), and parents are recorded by the visitors as they walk
    (:class:`_Walker`).
    """

    def __init__(self, source: str, path: str, module: str, package: str) -> None:
        self.path = path
        self.module = module
        self.package = package
        self.tree = cst.parse_module(source)
        wrapper = MetadataWrapper(self.tree, unsafe_skip_copy=True)
        meta = wrapper.resolve_many([PositionProvider, ScopeProvider])
        self.positions = cast("Mapping[cst.CSTNode, CodeRange]", meta[PositionProvider])
        self.scopes = cast("Mapping[cst.CSTNode, Scope | None]", meta[ScopeProvider])
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self._fqns: dict[cst.CSTNode, list[str]] = {}

    # positions

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def key(self, node: cst.CSTNode) -> NodeKey:
        return _key(node, self.positions[node])

    def site_id(self, call: cst.Call) -> SiteId:
        start = self.positions[call].start
        return (self.path, start.line, start.column)

    def code(self, node: cst.CSTNode) -> str:
        return self.tree.code_for_node(node)

    # names

    def fqn_names(self, node: cst.CSTNode) -> list[str]:
        """Fully qualified names of a name (as ``FullyQualifiedNameProvider`` gives them)."""
        cached = self._fqns.get(node)
        if cached is not None:
            return cached
        scope = self.scopes.get(node)
        names: set[str] = set()
        if scope is not None:
            for q in scope.get_qualified_names_for(node):
                full = self._absolute(q)
                if full is not None:
                    names.add(full)
        result = sorted(names)
        self._fqns[node] = result
        return result

    def _absolute(self, q: QualifiedName) -> str | None:
        if q.source == QualifiedNameSource.BUILTIN:
            return q.name
        if q.source == QualifiedNameSource.IMPORT and not q.name.startswith("."):
            return q.name
        name = q.name
        bare = name.lstrip(".")
        dots = len(name) - len(bare)
        if dots == 0:
            return f"{self.module}.{name}"
        bits = self.package.rsplit(".", dots - 1)
        if not self.package or len(bits) < dots:
            return None  # a relative import past the top-level package
        return f"{bits[0]}.{bare}"

    def scope_prefix(self, node: cst.CSTNode) -> str:
        """The qualified-name prefix of the scope a binding at ``node`` lands in."""
        parts: list[str] = []
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, cst.ClassDef):
                parts.append(current.name.value)
            elif isinstance(current, cst.FunctionDef):
                parts.append("<locals>")
                parts.append(current.name.value)
            current = self.parents.get(current)
        parts.reverse()
        return ".".join([self.module, *parts]) if parts else self.module

    # symbolic expressions

    def sym(self, node: cst.BaseExpression) -> Sym:
        """The symbolic value of an expression (see :mod:`._codemod_resolve`)."""
        if isinstance(node, cst.Name):
            refs = [Ref(name) for name in self.fqn_names(node)]
            if not refs:
                return OPAQUE
            return refs[0] if len(refs) == 1 else AnyOf(tuple(refs))
        if isinstance(node, cst.Attribute):
            return Attr(self.sym(node.value), node.attr.value)
        if isinstance(node, cst.Subscript):
            return Item(self.sym(node.value))
        if isinstance(node, cst.Call):
            return CallOf(self.sym(node.func), self.site_id(node))
        if isinstance(node, cst.Await):
            return self.sym(node.expression)
        if isinstance(node, cst.BooleanOperation):
            return AnyOf((self.sym(node.left), self.sym(node.right)))
        if isinstance(node, cst.IfExp):
            return AnyOf((self.sym(node.body), self.sym(node.orelse)))
        if isinstance(node, cst.NamedExpr):
            return self.sym(node.value)
        return OPAQUE

    def detached_sym(self, node: cst.BaseExpression) -> Sym:
        """The value of a name parsed from a string annotation (module globals)."""
        if isinstance(node, cst.Name):
            return Ref(f"{self.module}.{node.value}")
        if isinstance(node, cst.Attribute):
            return Attr(self.detached_sym(node.value), node.attr.value)
        return OPAQUE

    def annotation_syms(self, expr: cst.BaseExpression) -> tuple[Sym, ...]:
        """The classes an annotation says a value is (``X``, ``X | None``, ``"X"``...)."""
        out: list[Sym] = []
        for member, detached in _annotation_members(expr, detached=False):
            out.append(self.detached_sym(member) if detached else self.sym(member))
        return tuple(out)


_PARSED: dict[tuple[str, str, str, str], _Parsed] = {}
_PARSED_LIMIT: Final = 256


def _parse(source: str, path: str, module: str, package: str) -> _Parsed:
    """Parse once per process: pass 1 and pass 2 read the same module."""
    key = (path, module, package, source)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = _Parsed(source, path, module, package)
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = parsed
    return parsed


class _Walker(cst.CSTVisitor):
    """A visitor that records each node's parent in ``parsed.parents`` as it walks."""

    def __init__(self, parsed: _Parsed) -> None:
        super().__init__()
        self.p = parsed
        self._stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._stack:
            self.p.parents[node] = self._stack[-1]
        self._stack.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self._stack.pop()


def _key(node: cst.CSTNode, where: CodeRange) -> NodeKey:
    return (
        type(node).__name__,
        where.start.line,
        where.start.column,
        where.end.line,
        where.end.column,
    )


def _annotation_members(
    expr: cst.BaseExpression, *, detached: bool
) -> Iterator[tuple[cst.Name | cst.Attribute, bool]]:
    if isinstance(expr, (cst.Name, cst.Attribute)):
        yield expr, detached
    elif isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
        yield from _annotation_members(expr.left, detached=detached)
        yield from _annotation_members(expr.right, detached=detached)
    elif isinstance(expr, cst.Subscript):
        head = expr.value
        head_name = (
            head.value
            if isinstance(head, cst.Name)
            else head.attr.value
            if isinstance(head, cst.Attribute)
            else None
        )
        if head_name in _UNION_HEADS:
            for i, element in enumerate(expr.slice):
                if head_name == "Annotated" and i > 0:
                    break
                if isinstance(element.slice, cst.Index):
                    yield from _annotation_members(element.slice.value, detached=detached)
    elif isinstance(expr, cst.SimpleString):
        inner = _parse_string_annotation(expr)
        if inner is not None:
            yield from _annotation_members(inner, detached=True)


def _parse_string_annotation(node: cst.SimpleString) -> cst.BaseExpression | None:
    value = node.evaluated_value
    if not isinstance(value, str) or len(value) > 500:
        return None
    try:
        return cst.parse_expression(value.strip())
    except Exception:  # any parser error: the string is prose, not an annotation
        return None


def _dotted_tail(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _root_name(node: cst.BaseExpression) -> str | None:
    while isinstance(node, cst.Attribute):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _catches_import_error(node: cst.BaseExpression | None) -> bool:
    if node is None:
        return False
    if isinstance(node, cst.Tuple):
        return any(_catches_import_error(e.value) for e in node.elements)
    return _dotted_tail(node) in {"ImportError", "ModuleNotFoundError"}


def _availability_flag(test: cst.BaseExpression) -> str | None:
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        test = test.expression
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        right = test.comparisons[0].comparator
        if isinstance(right, cst.Name) and right.value == "None":
            test = test.left
        else:
            return None
    tail = _dotted_tail(test)
    if tail is not None and _AVAILABILITY_RE.search(tail):
        return tail
    return None


# -- pass 1: the index ----------------------------------------------------------------


@dataclass
class _ClassCollector:
    fqn: str
    node: cst.ClassDef
    methods: set[str] = field(default_factory=set)
    async_methods: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    init: tuple[Param, ...] | None = None


def _decorator_names(node: cst.FunctionDef) -> set[str]:
    out: set[str] = set()
    for d in node.decorators:
        expr = d.decorator
        if isinstance(expr, cst.Call):
            expr = expr.func
        tail = _dotted_tail(expr)
        if tail is not None:
            out.add(tail)
    return out


def _ordered_params(params: cst.Parameters) -> Iterator[tuple[cst.Param, ParamKind]]:
    for p in params.posonly_params:
        yield p, "positional"
    for p in params.params:
        yield p, "positional"
    if isinstance(params.star_arg, cst.Param):
        yield params.star_arg, "var_positional"
    for p in params.kwonly_params:
        yield p, "keyword"
    if isinstance(params.star_kwarg, cst.Param):
        yield params.star_kwarg, "var_keyword"


class _Indexer(_Walker):
    """Collects a module's bindings (pass 1)."""

    def __init__(self, parsed: _Parsed, names: MockNames) -> None:
        super().__init__(parsed)
        self.names = names
        self.bindings: dict[str, list[Sym]] = {}
        self.classes: list[ClassInfo] = []
        self.scope: list[tuple[str, str]] = []  # ("class" | "func", fqn)
        self.class_stack: list[_ClassCollector] = []
        self.self_params: dict[str, str] = {}  # fqn of a method's `self` -> class

    def bind(self, key: str, sym: Sym) -> None:
        entries = self.bindings.setdefault(key, [])
        if sym not in entries:
            entries.append(sym)

    def _def_fqn(self, name: cst.Name) -> str:
        names = self.p.fqn_names(name)
        return names[0] if names else f"{self.p.scope_prefix(name)}.{name.value}"

    # definitions

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        fqn = self._def_fqn(node.name)
        self.bind(fqn, DefClass(fqn))
        self.class_stack.append(_ClassCollector(fqn, node))
        self.scope.append(("class", fqn))
        return True

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        col = self.class_stack.pop()
        self.scope.pop()
        self.classes.append(
            ClassInfo(
                fqn=col.fqn,
                path=self.p.path,
                line=self.p.line(original_node),
                name=original_node.name.value,
                is_mock=self.names.matches(original_node.name.value),
                top_level=isinstance(self.p.parents.get(original_node), cst.Module),
                bases=tuple(self.p.sym(a.value) for a in original_node.bases if not a.keyword),
                init=col.init,
                methods=frozenset(col.methods),
                async_methods=frozenset(col.async_methods),
                properties=frozenset(col.properties),
                fallback=self._fallback(original_node),
            )
        )

    def _fallback(self, node: cst.CSTNode) -> str | None:
        current = node
        while True:
            parent = self.p.parents.get(current)
            if parent is None or isinstance(parent, (cst.FunctionDef, cst.ClassDef)):
                return None
            if isinstance(parent, cst.ExceptHandler) and _catches_import_error(parent.type):
                return "defined in an `except ImportError:` branch"
            if isinstance(parent, cst.If):
                flag = _availability_flag(parent.test)
                if flag is not None:
                    return f"defined in a branch on `{flag}`"
            current = parent

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        fqn = self._def_fqn(node.name)
        self.bind(fqn, DefFunc(fqn))
        owner = self.class_stack[-1] if self.scope and self.scope[-1][0] == "class" else None
        decorators = _decorator_names(node)
        name = node.name.value
        if owner is not None:
            owner.methods.add(name)
            if node.asynchronous is not None:
                owner.async_methods.add(name)
            if decorators & {"property", "cached_property"}:
                owner.properties.add(name)
            if name == "__init__":
                owner.init = tuple(
                    Param(p.name.value, kind, p.default is not None)
                    for p, kind in list(_ordered_params(node.params))[1:]
                )
        first = owner is not None and "staticmethod" not in decorators
        for param, _kind in _ordered_params(node.params):
            value: Sym
            if first and owner is not None:
                if "classmethod" in decorators:
                    value = DefClass(owner.fqn)
                else:
                    value = SelfOf(owner.fqn)
                    for q in self.p.fqn_names(param.name):
                        self.self_params[q] = owner.fqn
            else:
                parts: list[Sym] = []
                if param.annotation is not None:
                    parts.append(Annotated(self.p.annotation_syms(param.annotation.annotation)))
                if param.default is not None:
                    parts.append(self.p.sym(param.default))
                value = AnyOf(tuple(parts)) if parts else OPAQUE
            first = False
            for q in self.p.fqn_names(param.name):
                self.bind(q, value)
        self.scope.append(("func", fqn))
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.scope.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None and self.scope and self.scope[-1][0] == "func":
            self.bind(f"{self.scope[-1][1]}()", self.p.sym(node.value))

    # assignments

    def visit_Assign(self, node: cst.Assign) -> None:
        value = self.p.sym(node.value)
        for target in node.targets:
            self._assign(target.target, node.value, value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._assign(
            node.target, None, Annotated(self.p.annotation_syms(node.annotation.annotation))
        )
        if node.value is not None:
            self._assign(node.target, node.value, self.p.sym(node.value))

    def visit_For(self, node: cst.For) -> None:
        self._assign(node.target, None, IterOf(self.p.sym(node.iter)))

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._assign(node.target, None, IterOf(self.p.sym(node.iter)))

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._assign(node.target, node.value, self.p.sym(node.value))

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._assign(node.asname.name, None, OPAQUE)

    def visit_Call(self, node: cst.Call) -> None:
        # self._breakers.setdefault(name, MockBreaker(name)) stores an item
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "setdefault"
            and len(node.args) == 2
        ):
            for key in self._item_keys(func.value):
                self.bind(key, self.p.sym(node.args[1].value))

    def _slot(self, node: cst.BaseExpression) -> str | None:
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            for q in self.p.fqn_names(node.value):
                cls = self.self_params.get(q)
                if cls is not None:
                    return f"{cls}#{node.attr.value}"
        return None

    def _item_keys(self, container: cst.BaseExpression) -> list[str]:
        slot = self._slot(container)
        if slot is not None:
            return [f"{slot}[]"]
        if isinstance(container, cst.Name):
            return [f"{q}[]" for q in self.p.fqn_names(container)]
        return []

    def _assign(
        self, target: cst.BaseExpression, value: cst.BaseExpression | None, sym: Sym
    ) -> None:
        if isinstance(target, cst.Name):
            names = self.p.fqn_names(target) or [f"{self.p.scope_prefix(target)}.{target.value}"]
            for q in names:
                self.bind(q, sym)
        elif isinstance(target, (cst.Tuple, cst.List)):
            values: Sequence[cst.BaseElement] | None = None
            if (
                isinstance(value, (cst.Tuple, cst.List))
                and len(value.elements) == len(target.elements)
                and not any(isinstance(e, cst.StarredElement) for e in value.elements)
            ):
                values = value.elements
            for i, element in enumerate(target.elements):
                if isinstance(element, cst.StarredElement):
                    self._assign(element.value, None, OPAQUE)
                elif values is not None:
                    self._assign(element.value, values[i].value, self.p.sym(values[i].value))
                else:
                    self._assign(element.value, None, ElemOf(sym, i))
        elif isinstance(target, cst.Attribute):
            slot = self._slot(target)
            if slot is not None:
                self.bind(slot, sym)
        elif isinstance(target, cst.Subscript):
            for key in self._item_keys(target.value):
                self.bind(key, sym)
        elif isinstance(target, cst.StarredElement):
            self._assign(target.value, None, OPAQUE)

    # imports

    def visit_Import(self, node: cst.Import) -> bool:
        prefix = self.p.scope_prefix(node)
        for alias in node.names:
            if alias.evaluated_alias is not None:
                self.bind(f"{prefix}.{alias.evaluated_alias}", ImportRef(alias.evaluated_name))
            else:
                top = alias.evaluated_name.split(".")[0]
                self.bind(f"{prefix}.{top}", ImportRef(top))
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if isinstance(node.names, cst.ImportStar):
            return False
        module = get_absolute_module_from_package_for_import(self.p.package or None, node)
        if module is None:
            return False
        prefix = self.p.scope_prefix(node)
        for alias in node.names:
            local = alias.evaluated_alias or alias.evaluated_name
            self.bind(f"{prefix}.{local}", ImportRef(f"{module}.{alias.evaluated_name}"))
        return False


def index_module(
    source: str, path: str, module: str, package: str, names: MockNames
) -> ModuleSummary:
    """Pass 1: a module's bindings and classes.

    Raises:
        libcst.ParserSyntaxError: the source does not parse.
    """
    parsed = _parse(source, path, module, package)
    indexer = _Indexer(parsed, names)
    parsed.tree.visit(indexer)
    return ModuleSummary(
        path=path,
        module=module,
        bindings=tuple((k, tuple(v)) for k, v in indexer.bindings.items()),
        classes=tuple(indexer.classes),
    )


# -- pass 2: the analysis -------------------------------------------------------------


@dataclass
class _Poke:
    assign: cst.Assign
    line: cst.SimpleStatementLine | None
    target: cst.Attribute
    base: str
    attr: str
    breakers: frozenset[tuple[str, SiteId | None]]


class _Analyzer(_Walker):
    """Finds constructions, uses and references of mock breakers (pass 2)."""

    def __init__(
        self,
        parsed: _Parsed,
        resolver: Resolver,
        names: MockNames,
        *,
        get_breaker_name: str | None,
        type_name: str | None,
    ) -> None:
        super().__init__(parsed)
        self.r = resolver
        self.names = names
        self.get_breaker_name = get_breaker_name
        self.type_name = type_name
        self.mock_stack: list[str] = []
        self.class_pushed: list[bool] = []
        self.constructions: list[Construction] = []
        self.uses: list[Use] = []
        self.refs: list[Reference] = []
        self.imports: list[ImportOf] = []
        self.class_defs: list[ClassDefinition] = []
        self.handled: set[cst.CSTNode] = set()
        self.by_short: dict[str, list[str]] = {}
        for fqn, info in resolver.classes.items():
            if info.is_mock:
                self.by_short.setdefault(info.name, []).append(fqn)

    # -- helpers -------------------------------------------------------------------

    def _use(
        self,
        node: cst.CSTNode,
        breakers: frozenset[tuple[str, SiteId | None]],
        action: UseAction,
        what: str,
        reason: str,
        *,
        edits: tuple[Edit, ...] = (),
    ) -> None:
        self.uses.append(Use(self.p.line(node), breakers, action, what, reason, edits))

    def _ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.p.parents.get(node)
        while current is not None:
            yield current
            current = self.p.parents.get(current)

    def _in_annotation(self, node: cst.CSTNode) -> bool:
        for anc in self._ancestors(node):
            if isinstance(anc, cst.Annotation):
                return True
            if isinstance(
                anc, (cst.BaseSmallStatement, cst.BaseCompoundStatement, cst.BaseSuite, cst.Module)
            ):
                return False
        return False

    def _in_isinstance(self, node: cst.CSTNode) -> bool:
        """True inside the class argument of ``isinstance(x, ...)``/``issubclass``."""
        for anc in self._ancestors(node):
            if isinstance(anc, (cst.Tuple, cst.Element)):
                continue
            if isinstance(anc, cst.Arg):
                call = self.p.parents.get(anc)
                return (
                    isinstance(call, cst.Call)
                    and isinstance(call.func, cst.Name)
                    and call.func.value in {"isinstance", "issubclass"}
                    and len(call.args) >= 2
                    and call.args[1] is anc
                )
            return False
        return False

    def _reference_position(self, node: cst.Name | cst.Attribute) -> bool:
        parent = self.p.parents.get(node)
        if isinstance(node, cst.Name):
            if isinstance(parent, cst.Attribute) and parent.attr is node:
                return False
            if isinstance(parent, (cst.ClassDef, cst.FunctionDef)) and parent.name is node:
                return False
            if isinstance(parent, cst.Param) and parent.name is node:
                return False
            if isinstance(parent, cst.Arg) and parent.keyword is node:
                return False
            if isinstance(parent, (cst.AsName, cst.NameItem, cst.ImportAlias)):
                return False
        if isinstance(parent, cst.AssignTarget) and parent.target is node:
            return False
        if isinstance(parent, (cst.AnnAssign, cst.AugAssign)) and parent.target is node:
            return False
        if isinstance(parent, (cst.For, cst.CompFor, cst.NamedExpr)) and parent.target is node:
            return False
        current: cst.CSTNode | None = parent
        while isinstance(current, (cst.Attribute, cst.Name)):
            current = self.p.parents.get(current)
        return not isinstance(current, (cst.ImportAlias, cst.ImportFrom, cst.Import))

    def _store_context(self, node: cst.CSTNode) -> str | None:
        parent = self.p.parents.get(node)
        if isinstance(parent, cst.AssignTarget) and parent.target is node:
            return "set"
        if isinstance(parent, cst.AnnAssign) and parent.target is node:
            return "set"
        if isinstance(parent, cst.AugAssign) and parent.target is node:
            return "update"
        if isinstance(parent, cst.Del):
            return "delete"
        return None

    # -- classes ---------------------------------------------------------------------

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        names = self.p.fqn_names(node.name)
        fqn = names[0] if names else f"{self.p.scope_prefix(node.name)}.{node.name.value}"
        pushed = self.r.is_mock(fqn)
        if pushed:
            top = isinstance(self.p.parents.get(node), cst.Module)
            self.class_defs.append(
                ClassDefinition(
                    fqn, self.p.line(node), DeleteClass(self.p.key(node)) if top else None
                )
            )
            self.mock_stack.append(fqn)
        self.class_pushed.append(pushed)
        return True

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        if self.class_pushed.pop():
            self.mock_stack.pop()

    # -- imports ---------------------------------------------------------------------

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            local = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
            self.imports.append(
                ImportOf(
                    None,
                    self.p.line(alias),
                    local,
                    ImportSpec(alias.evaluated_name, None, alias.evaluated_alias),
                    self.p.code(alias),
                )
            )
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        module = get_absolute_module_from_package_for_import(self.p.package or None, node)
        if module is None:
            return False
        if isinstance(node.names, cst.ImportStar):
            for fqn, info in self.r.classes.items():
                if info.is_mock and fqn == f"{module}.{info.name}":
                    self.refs.append(
                        Reference(
                            fqn,
                            self.p.line(node),
                            "other",
                            f"`from {module} import *` brings in mock `{info.name}`",
                        )
                    )
            return False
        package_init = self.p.path.endswith(("__init__.py", "__init__.pyi"))
        for alias in node.names:
            local = alias.evaluated_alias or alias.evaluated_name
            target = self.r.canonical(f"{module}.{alias.evaluated_name}")
            cls = target if self.r.is_mock(target) else None
            line = self.p.line(alias)
            self.imports.append(
                ImportOf(
                    cls,
                    line,
                    local,
                    ImportSpec(module, alias.evaluated_name, alias.evaluated_alias),
                    self.p.code(alias).rstrip(", "),
                )
            )
            if cls is not None and package_init and not self.mock_stack:
                # a package's __init__ importing a name publishes it, `__all__` or not
                self.refs.append(
                    Reference(
                        cls, line, "reexport", "imported into the package's __init__", binding=local
                    )
                )
        return False

    # -- constructions ---------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> bool:
        if self.mock_stack:
            return True
        func_sym = self.p.sym(node.func)
        cls = self.r.mock_class(func_sym)
        if cls is not None:
            self.constructions.append(self._construction(node, cls, direct=True))
        else:
            values = self.r.values(func_sym)
            via = sorted({v.fqn for v in values if isinstance(v, VClass) and self.r.is_mock(v.fqn)})
            for c in via:
                self.constructions.append(self._construction(node, c, direct=False))
            breakers = self.r.breakers(func_sym)
            if breakers:
                self._use(
                    node,
                    breakers,
                    "unsafe",
                    "call",
                    "a resilient breaker is not callable: decorate the function with "
                    "`@circuit_breaker(name)` or run it with `call()`/`acall()`",
                )
        return True

    def visit_Decorator(self, node: cst.Decorator) -> None:
        if self.mock_stack:
            return
        breakers = self.r.breakers(self.p.sym(node.decorator))
        if breakers:
            self._use(
                node,
                breakers,
                "unsafe",
                "decorator",
                "a resilient breaker is not a decorator: use `@circuit_breaker(name)`",
            )

    def _construction(self, node: cst.Call, cls: str, *, direct: bool) -> Construction:
        info = self.r.classes[cls]
        site = self.p.site_id(node)
        binding = _root_name(node.func)
        args = tuple(
            Arg(
                keyword=a.keyword.value if a.keyword is not None else None,
                code=self.p.code(a.value),
                literal=a.value.evaluated_value
                if isinstance(a.value, cst.SimpleString)
                and isinstance(a.value.evaluated_value, str)
                else None,
                star=bool(a.star),
            )
            for a in node.args
        )
        reason = None if direct else "the mock class is called through a variable"
        if reason is None:
            reason = self._position_reason(node)
        if reason is None and info.fallback is not None:
            reason = (
                f"`{info.name}` is a stand-in {info.fallback}: protection silently "
                "turns into nothing; depend on resilient instead"
            )
        mapping = map_arguments(args, info.init)
        if reason is None:
            reason = mapping.reason
        if reason is None and self.get_breaker_name is None:
            reason = (
                "`get_breaker` and `resilient_get_breaker` are both taken in this module; "
                "import resilient.get_breaker under another name by hand"
            )
        edit = None
        if reason is None and self.get_breaker_name is not None:
            edit = ReplaceCall(self.p.key(node), self.get_breaker_name, mapping.args)
        return Construction(cls, site, reason, edit, mapping.name, mapping.config, binding=binding)

    def _position_reason(self, call: cst.Call) -> str | None:
        parent = self.p.parents.get(call)
        if isinstance(parent, cst.Arg):
            owner = self.p.parents.get(parent)
            setdefault = (
                isinstance(owner, cst.Call)
                and isinstance(owner.func, cst.Attribute)
                and owner.func.attr.value == "setdefault"
                and len(owner.args) == 2
                and owner.args[1] is parent
            )
            if not setdefault:
                return (
                    "passed as an argument (an injected dummy): whoever receives it decides "
                    "what it is; build the real breaker with get_breaker(name) there"
                )
        elif isinstance(parent, cst.Param):
            return (
                f"default value of parameter `{parent.name.value}`: an injectable dummy, so "
                "callers that pass nothing get a mock"
            )
        elif isinstance(parent, cst.BooleanOperation):
            return "fallback in `... or/and Mock(...)`: an injectable dummy"
        elif isinstance(parent, cst.IfExp):
            return f"chosen by a condition (`{self.p.code(parent.test)}`)"
        elif isinstance(parent, cst.Attribute) and parent.value is call:
            pass  # `MockBreaker("x").call(f)`: get_breaker is get-or-create, same meaning
        elif not isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Return, cst.Expr)):
            return "used inside a larger expression"
        elif isinstance(parent, cst.Assign) and len(parent.targets) != 1:
            return "assigned to several targets at once"
        child: cst.CSTNode = call
        for anc in self._ancestors(call):
            if isinstance(anc, cst.If):
                test = self.p.code(anc.test)
                if MODE_RE.search(test):
                    return (
                        f"chosen on purpose under `if {test}:` (a simulation or test mode); "
                        "if that is intended, keep it and suppress the guard with a reason"
                    )
                if self._injection_test(anc.test):
                    return f"used when no breaker is injected (`if {test}:`)"
                other = anc.orelse if child is anc.body else anc.body
                if other is not None and self._builds_breaker(other):
                    return f"chosen by a condition (`if {test}:`) against another breaker"
            elif isinstance(anc, cst.ExceptHandler):
                if _catches_import_error(anc.type):
                    return (
                        "a stand-in built when an import fails: protection silently turns "
                        "into nothing"
                    )
                caught = self.p.code(anc.type) if anc.type is not None else "everything"
                return f"built when `{caught}` is caught: a fallback that hides the failure"
            elif isinstance(anc, (cst.Match, cst.Lambda)):
                return "chosen by a match/lambda"
            elif isinstance(anc, cst.FunctionDef):
                return None
            elif isinstance(anc, cst.ClassDef):
                return (
                    "class attribute shared by every instance (a class-level singleton); "
                    "replace it by hand with get_breaker(name) where it is used"
                )
            elif isinstance(anc, cst.Module):
                return (
                    "module-level singleton: other modules may import it and poke at it; "
                    "replace it by hand with get_breaker(name), one name per dependency"
                )
            child = anc
        return None

    def _injection_test(self, test: cst.BaseExpression) -> bool:
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            test = test.expression
        elif isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
            right = test.comparisons[0].comparator
            if not (isinstance(right, cst.Name) and right.value == "None"):
                return False
            test = test.left
        else:
            return False
        root = _root_name(test)
        return root is not None and "breaker" in self.p.code(test).lower()

    def _builds_breaker(self, node: cst.CSTNode) -> bool:
        found = False

        class _Finder(cst.CSTVisitor):
            def visit_Call(self, call: cst.Call) -> bool:
                nonlocal found
                tail = _dotted_tail(call.func)
                if (
                    tail is not None
                    and "breaker" in tail.lower()
                    and tail
                    not in {
                        "get",
                        "setdefault",
                    }
                ):
                    found = True
                return not found

        node.visit(_Finder())
        return found

    # -- uses ------------------------------------------------------------------------

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        self._check_reference(node)
        if self.mock_stack or node in self.handled:
            return True
        breakers = self.r.breakers(self.p.sym(node.value))
        if breakers:
            self._classify(node, breakers)
        return True

    def _classify(
        self, node: cst.Attribute, breakers: frozenset[tuple[str, SiteId | None]]
    ) -> None:
        attr = node.attr.value
        store = self._store_context(node)
        if store is not None:
            self._use(
                node,
                breakers,
                "unsafe",
                "write",
                unsupported_attribute(attr, write=True)
                if store != "delete"
                else f"`del breaker.{attr}` has no resilient equivalent",
            )
            return
        parent = self.p.parents.get(node)
        called = isinstance(parent, cst.Call) and parent.func is node
        infos = [self.r.classes[c] for c, _ in breakers if c in self.r.classes]
        if attr == "call":
            awaited = (
                called and parent is not None and isinstance(self.p.parents.get(parent), cst.Await)
            )
            kinds = {"call" in i.async_methods for i in infos}
            if awaited or kinds == {True}:
                why = "awaited `call()`" if awaited else "`call()` of an async mock"
                self._use(
                    node,
                    breakers,
                    "edit",
                    "acall",
                    f"{why} -> `acall()`",
                    edits=(RenameAttr(self.p.key(node), "acall"),),
                )
            elif len(kinds) > 1:
                self._use(
                    node,
                    breakers,
                    "unsafe",
                    "call",
                    "the breaker may be a sync or an async mock here; choose `call()` or "
                    "`acall()` by hand",
                )
            return
        if attr in {"is_open", "is_closed", "is_half_open"}:
            if called:
                assert isinstance(parent, cst.Call)
                plain = bool(infos) and all(
                    attr in i.methods and attr not in i.properties for i in infos
                )
                if plain and not parent.args:
                    self._use(
                        node,
                        breakers,
                        "edit",
                        "property",
                        f"`{attr}()` -> `{attr}` (a property on resilient breakers)",
                        edits=(CallToAttr(self.p.key(parent)),),
                    )
                else:
                    self._use(
                        node,
                        breakers,
                        "unsafe",
                        "call",
                        f"`{attr}` is a property on a resilient breaker, not a method",
                    )
            return
        if attr == "state":
            other = self._compared_with(node)
            if other is not None and not self._state_literal(other):
                self._use(
                    node,
                    breakers,
                    "unsafe",
                    "state",
                    f"compares `state` with `{self.p.code(other)}`: a resilient breaker's "
                    "state is a `resilient.State` (lower-case string values)",
                )
            return
        if attr in BREAKER_API:
            return
        self._use(node, breakers, "unsafe", attr, unsupported_attribute(attr))

    def _compared_with(self, node: cst.CSTNode) -> cst.BaseExpression | None:
        parent = self.p.parents.get(node)
        if isinstance(parent, cst.Comparison):
            if parent.left is node and parent.comparisons:
                return parent.comparisons[0].comparator
            return parent.left
        if isinstance(parent, cst.ComparisonTarget):
            grand = self.p.parents.get(parent)
            if isinstance(grand, cst.Comparison):
                return grand.left
        return None

    def _state_literal(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.SimpleString):
            value = node.evaluated_value
            return isinstance(value, str) and value in _STATE_VALUES
        path = self.r.direct_path(self.p.sym(node))
        return path is not None and path.startswith("resilient.")

    # -- writes (`b.is_open = True`) ---------------------------------------------------

    def visit_Module(self, node: cst.Module) -> None:
        self._scan_block(node.body)

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._scan_block(node.body)

    def visit_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        if self.mock_stack:
            return
        group: list[_Poke] = []
        for small in node.body:
            poke = self._poke(small, None)
            if poke is None or (group and group[-1].base != poke.base):
                self._decide(group)
                group = []
            if poke is not None:
                group.append(poke)
        self._decide(group)

    def _scan_block(self, statements: Sequence[cst.BaseStatement]) -> None:
        if self.mock_stack:
            return
        group: list[_Poke] = []
        for stmt in statements:
            if not isinstance(stmt, cst.SimpleStatementLine):
                self._decide(group)
                group = []
                continue
            for small in stmt.body:
                poke = self._poke(small, stmt)
                if poke is None or (group and group[-1].base != poke.base):
                    self._decide(group)
                    group = []
                if poke is not None:
                    group.append(poke)
        self._decide(group)

    def _poke(
        self, small: cst.BaseSmallStatement, line: cst.SimpleStatementLine | None
    ) -> _Poke | None:
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            return None
        target = small.targets[0].target
        if not isinstance(target, cst.Attribute):
            return None
        breakers = self.r.breakers(self.p.sym(target.value))
        if not breakers:
            return None
        self.handled.add(target)
        return _Poke(small, line, target, self.p.code(target.value), target.attr.value, breakers)

    @staticmethod
    def _poke_kind(attr: str, value: cst.BaseExpression) -> str | None:
        """``trip``/``reset`` for a decisive write, ``counter`` for a counter reset, else None."""
        if attr in {"is_open", "is_closed"} and isinstance(value, cst.Name):
            if value.value in {"True", "False"}:
                opened = (value.value == "True") == (attr == "is_open")
                return "trip" if opened else "reset"
            return None
        if attr == "state":
            word: str | None = None
            if isinstance(value, cst.SimpleString) and isinstance(value.evaluated_value, str):
                word = value.evaluated_value
            else:
                word = _dotted_tail(value)
            if word is None:
                return None
            word = word.lower()
            if word in _OPEN_WORDS:
                return "trip"
            if word in _CLOSED_WORDS:
                return "reset"
            return None
        if attr in COUNTER_ATTRS:
            if isinstance(value, cst.Integer) and value.evaluated_value == 0:
                return "counter"
            if isinstance(value, cst.Float) and value.evaluated_value == 0:
                return "counter"
            if isinstance(value, cst.Name) and value.value == "None":
                return "counter"
        return None

    @staticmethod
    def _droppable(poke: _Poke) -> bool:
        line = poke.line
        if line is None or len(line.body) > 1:
            return True
        if line.trailing_whitespace.comment is not None:
            return False
        return all(e.comment is None for e in line.leading_lines)

    def _decide(self, group: list[_Poke]) -> None:
        if not group:
            return
        good: list[tuple[_Poke, str]] = []
        for poke in group:
            kind = self._poke_kind(poke.attr, poke.assign.value)
            if kind is None:
                reason = unsupported_attribute(poke.attr, write=True)
                if poke.attr == "state":
                    reason = (
                        f"`state = {self.p.code(poke.assign.value)}` cannot be forced on a "
                        "resilient breaker: call `trip()` to open it or `reset()` to close it"
                    )
                self._use(poke.assign, poke.breakers, "unsafe", "write", reason)
            else:
                good.append((poke, kind))
        deciders = [(p, k) for p, k in good if k != "counter"]
        counters = [p for p, k in good if k == "counter"]
        if not deciders:
            for p in counters:
                self._use(
                    p.assign,
                    p.breakers,
                    "unsafe",
                    "write",
                    unsupported_attribute(p.attr, write=True),
                )
            return
        methods = {k for _, k in deciders}
        if len(methods) > 1:
            for p, _ in good:
                self._use(
                    p.assign,
                    p.breakers,
                    "unsafe",
                    "write",
                    "these writes both open and close the breaker; decide by hand",
                )
            return
        method = methods.pop()
        first = deciders[0][0]
        edits: list[Edit] = [AssignToCall(self.p.key(first.assign), method)]
        extra = [p for p, _ in deciders[1:]]
        if method == "trip":
            for p in counters:
                self._use(
                    p.assign,
                    p.breakers,
                    "unsafe",
                    "write",
                    unsupported_attribute(p.attr, write=True),
                )
        else:
            extra.extend(counters)
        values: set[tuple[str, SiteId | None]] = set(first.breakers)
        for p in extra:
            values |= p.breakers
            if self._droppable(p):
                edits.append(DropStatement(self.p.key(p.assign)))
            else:
                self._use(
                    p.assign,
                    p.breakers,
                    "unsafe",
                    "write",
                    f"`{p.base}.{p.attr} = ...` is covered by `{method}()` but carries a "
                    "comment; remove it by hand",
                )
        writes = ", ".join(f"`{p.attr} = {self.p.code(p.assign.value)}`" for p, _ in deciders)
        self._use(
            first.assign,
            frozenset(values),
            "edit",
            method,
            f"{writes} -> `{first.base}.{method}()`",
            edits=tuple(edits),
        )

    # -- references ------------------------------------------------------------------

    def visit_Name(self, node: cst.Name) -> None:
        self._check_reference(node)

    def _check_reference(self, node: cst.Name | cst.Attribute) -> None:
        if not self._reference_position(node):
            return
        cls = self.r.mock_class(self.p.sym(node))
        if cls is None:
            if (
                isinstance(node, cst.Name)
                and node.value in self.by_short
                and not self.p.fqn_names(node)
            ):
                for c in self.by_short[node.value]:
                    self.refs.append(
                        Reference(
                            c,
                            self.p.line(node),
                            "other",
                            f"`{node.value}` cannot be resolved (a star import?)",
                            binding=node.value,
                        )
                    )
            return
        line = self.p.line(node)
        text = self.p.code(node)
        if self.mock_stack:
            owner = self.mock_stack[-1]
            if owner != cls:
                self.refs.append(Reference(cls, line, "inside", text, owner=owner))
            return
        binding = _root_name(node)
        parent = self.p.parents.get(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            self.refs.append(
                Reference(
                    cls, line, "construction", text, site=self.p.site_id(parent), binding=binding
                )
            )
            return
        if self._in_annotation(node):
            edit = ReplaceName(self.p.key(node), self.type_name) if self.type_name else None
            self.refs.append(Reference(cls, line, "annotation", text, edit=edit, binding=binding))
            return
        kind: RefKind = "other"
        if isinstance(parent, cst.Arg) and isinstance(self.p.parents.get(parent), cst.ClassDef):
            kind = "base"
        elif self._in_isinstance(node):
            kind = "isinstance"
        self.refs.append(Reference(cls, line, kind, text, binding=binding))

    # -- strings ---------------------------------------------------------------------

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        parent = self.p.parents.get(node)
        if isinstance(parent, (cst.ConcatenatedString, cst.Expr)):
            return  # part of a longer string, or a docstring / bare string (prose)
        if self._in_annotation(node):
            self._string_annotation(node)
            return
        value = node.evaluated_value
        if isinstance(value, str):
            self._string_reference(node, value)

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> None:
        if isinstance(self.p.parents.get(node), (cst.ConcatenatedString, cst.Expr)):
            return
        value = node.evaluated_value
        if isinstance(value, str):
            self._string_reference(node, value)

    def _string_reference(self, node: cst.BaseString, value: str) -> None:
        if self._in_all(node):
            return
        short = self.names.string_reference(value)
        if short is None:
            return
        for cls in self.by_short.get(short, ()):
            if self.mock_stack:
                if self.mock_stack[-1] != cls:
                    self.refs.append(
                        Reference(
                            cls, self.p.line(node), "inside", value, owner=self.mock_stack[-1]
                        )
                    )
                continue
            self.refs.append(Reference(cls, self.p.line(node), "string", self.p.code(node)))

    def _in_all(self, node: cst.CSTNode) -> bool:
        element = self.p.parents.get(node)
        container = self.p.parents.get(element) if element is not None else None
        stmt = self.p.parents.get(container) if container is not None else None
        if isinstance(stmt, cst.Assign):
            return any(
                isinstance(t.target, cst.Name) and t.target.value == "__all__" for t in stmt.targets
            )
        if isinstance(stmt, cst.AugAssign):
            return isinstance(stmt.target, cst.Name) and stmt.target.value == "__all__"
        return False

    def _string_annotation(self, node: cst.SimpleString) -> None:
        expr = _parse_string_annotation(node)
        if expr is None:
            return
        found: list[tuple[cst.Name | cst.Attribute, str]] = []
        for sub in _reference_nodes(expr):
            cls = self.r.mock_class(self.p.detached_sym(sub))
            if cls is not None:
                found.append((sub, cls))
        if not found:
            return
        line = self.p.line(node)
        if self.mock_stack:
            owner = self.mock_stack[-1]
            for _, cls in found:
                if cls != owner:
                    self.refs.append(Reference(cls, line, "inside", node.value, owner=owner))
            return
        edit: Edit | None = None
        classes = {c for _, c in found}
        simple = (
            len(node.quote) == 1 and "\\" not in node.value and node.prefix.lower() in {"", "u"}
        )
        if len(classes) == 1 and simple and self.type_name is not None:
            replaced = expr.visit(_ReplaceNodes({id(sub) for sub, _ in found}, self.type_name))
            assert isinstance(replaced, cst.BaseExpression)
            inner = cst.Module(body=[]).code_for_node(replaced)
            if node.quote not in inner:
                edit = ReplaceString(
                    self.p.key(node), f"{node.prefix}{node.quote}{inner}{node.quote}"
                )
        for sub, cls in found:
            self.refs.append(
                Reference(cls, line, "annotation", node.value, edit=edit, binding=_root_name(sub))
            )

    # -- __all__ -----------------------------------------------------------------------

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(
            isinstance(t.target, cst.Name) and t.target.value == "__all__" for t in node.targets
        ):
            self._all(node, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name) and node.target.value == "__all__":
            self._all(node, node.value)

    def _all(self, stmt: cst.CSTNode, value: cst.BaseExpression) -> None:
        line_node = self.p.parents.get(stmt)
        at_top = isinstance(self.p.parents.get(line_node), cst.Module) if line_node else False
        if not isinstance(value, (cst.List, cst.Tuple, cst.Set)):
            return
        for element in value.elements:
            string = element.value
            if not isinstance(string, cst.SimpleString):
                continue
            name = string.evaluated_value
            if not isinstance(name, str):
                continue
            own = f"{self.p.module}.{name}"
            path = self.r.canonical(own)
            if not self.r.is_mock(path):
                continue
            if path == own and at_top:
                self.refs.append(
                    Reference(
                        path,
                        self.p.line(element),
                        "all",
                        f"__all__ entry {name!r}",
                        edit=DropElement(self.p.key(element)),
                    )
                )
            else:
                self.refs.append(
                    Reference(
                        path,
                        self.p.line(element),
                        "reexport",
                        "listed in __all__",
                        binding=name,
                    )
                )


class _ReplaceNodes(cst.CSTTransformer):
    def __init__(self, targets: set[int], new: str) -> None:
        super().__init__()
        self.targets = targets
        self.new = new

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return cst.Name(self.new) if id(original_node) in self.targets else updated_node

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        return cst.Name(self.new) if id(original_node) in self.targets else updated_node


def _reference_nodes(expr: cst.CSTNode) -> Iterator[cst.Name | cst.Attribute]:
    if isinstance(expr, cst.Attribute):
        yield expr
        yield from _reference_nodes(expr.value)
        return
    if isinstance(expr, cst.Name):
        yield expr
        return
    for child in expr.children:
        yield from _reference_nodes(child)


def _taken_names(parsed: _Parsed) -> dict[str, set[str]]:
    """Names bound in the module's global scope or any function scope, with their origin.

    Class scopes are left out: a method called ``get_breaker`` does not hide the
    module-level ``get_breaker`` from code inside methods.  The origin is
    ``resilient`` for ``from resilient import X``, else ``other``.
    """
    out: dict[str, set[str]] = {}
    seen: set[int] = set()
    for scope in parsed.scopes.values():
        if scope is None or id(scope) in seen or isinstance(scope, ClassScope):
            continue
        seen.add(id(scope))
        for assignment in scope.assignments:
            origin = "other"
            node = getattr(assignment, "node", None)
            if isinstance(node, cst.ImportFrom):
                module = get_absolute_module_from_package_for_import(parsed.package or None, node)
                if module == "resilient":
                    origin = "resilient"
            out.setdefault(assignment.name, set()).add(origin)
    return out


def _existing_import(parsed: _Parsed, obj: str) -> str | None:
    """The local name of a module-level ``from resilient import obj [as x]``."""
    for stmt in parsed.tree.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if (
                isinstance(small, cst.ImportFrom)
                and not small.relative
                and small.module is not None
                and parsed.code(small.module) == "resilient"
                and not isinstance(small.names, cst.ImportStar)
            ):
                for alias in small.names:
                    if alias.evaluated_name == obj:
                        return alias.evaluated_alias or obj
    return None


def _choose(
    parsed: _Parsed, taken: Mapping[str, set[str]], candidates: tuple[str, str]
) -> str | None:
    wanted = candidates[0]
    existing = _existing_import(parsed, wanted)
    if existing is not None and taken.get(existing, set()) <= {"resilient"}:
        return existing
    for name in candidates:
        if not taken.get(name, set()) - {"resilient"}:
            return name
    return None


def analyze_module(
    source: str,
    path: str,
    module: str,
    package: str,
    *,
    resolver: Resolver,
    names: MockNames,
) -> FileFacts:
    """Pass 2: every construction, use and reference of a mock breaker in one module.

    Raises:
        libcst.ParserSyntaxError: the source does not parse.
    """
    parsed = _parse(source, path, module, package)
    taken = _taken_names(parsed)
    analyzer = _Analyzer(
        parsed,
        resolver,
        names,
        get_breaker_name=_choose(parsed, taken, GET_BREAKER),
        type_name=_choose(parsed, taken, BREAKER_TYPE),
    )
    parsed.tree.visit(analyzer)
    return FileFacts(
        path=path,
        module=module,
        constructions=tuple(analyzer.constructions),
        uses=tuple(analyzer.uses),
        references=tuple(analyzer.refs),
        imports=tuple(analyzer.imports),
        classes=tuple(analyzer.class_defs),
        get_breaker_name=analyzer.get_breaker_name,
        breaker_type_name=analyzer.type_name,
    )
