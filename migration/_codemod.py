"""The analysis side of ``resilient migrate``: index and analyse one module (standard library).

Two of the three passes (see :mod:`._codemod_model`):

- :func:`index_module` records what every name, ``self.attr`` slot and
  function return in a module may hold, as symbolic expressions built from
  fully qualified names (scope analysis, so aliases and relative imports
  resolve), plus the classes the module defines;
- :func:`analyze_module` evaluates those expressions with the whole tree's
  bindings and reports every construction, use and reference of a mock breaker,
  each with the edit it needs or the reason it cannot be migrated;
- :func:`._codemod_apply.apply_edits` then applies the edits the tree-wide plan
  (:mod:`._codemod_plan`) kept, with LibCST.

Both passes read the module with :mod:`ast` through :class:`._codemod_scope.Parsed`,
which answers as LibCST's scope and position metadata would (so an edit found
here finds its node in LibCST's tree), at a fraction of the cost.  They walk the
tree in LibCST's order (decorators before a definition's name, a call's
arguments in source order...), so what they report comes in the same order.
LibCST is imported only by pass 3.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

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
from ._codemod_scope import (
    Parsed,
    absolute_module,
    call_args,
    field_of,
    parent_of,
    string_literal_count,
)
from ._names import MockNames
from ._record import record

__all__ = ["BREAKER_TYPE", "GET_BREAKER", "analyze_module", "index_module"]

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
_FUNCTIONS: Final = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITIONS: Final = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_DISPLAYS: Final = (ast.List, ast.Tuple, ast.Set)
_COMPREHENSIONS: Final = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_NOT_WALKED: Final = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)
_STRING_PREFIX_RE: Final = re.compile(r"[A-Za-z]*")

#: The names the rewritten code uses, and the fallbacks when a module already has them.
GET_BREAKER: Final = ("get_breaker", "resilient_get_breaker")
BREAKER_TYPE: Final = ("CircuitBreaker", "ResilientCircuitBreaker")


# -- ast as LibCST sees it ----------------------------------------------------------------
#
# LibCST spells ``True``, ``False`` and ``None`` as names, a single string literal
# as ``SimpleString`` and implicitly concatenated ones as ``ConcatenatedString``;
# ``ast`` has a ``Constant`` for all of them.


def _name_text(node: ast.AST) -> str | None:
    """The value of what LibCST parses as a ``Name`` (``x``, ``True``, ``None``)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and (
        node.value is None or node.value is True or node.value is False
    ):
        return str(node.value)
    return None


def _is_none(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None and _name_text(node) == "None"


def _dotted_tail(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    return _name_text(node)


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return _name_text(node)


def _children(node: ast.AST) -> Iterator[ast.AST]:
    """Child nodes in LibCST's order (source order; ``ast`` differs for a few types)."""
    if isinstance(node, ast.Call):
        yield node.func
        yield from call_args(node)
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None:
                yield key
            yield value
    elif isinstance(node, ast.IfExp):
        yield node.body
        yield node.test
        yield node.orelse
    else:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _NOT_WALKED):
                yield child


@record
class _String:
    """A string constant as LibCST sees it: one literal (``SimpleString``) or several."""

    simple: bool
    raw: str  # the literal's source (prefix and quotes included) when simple

    @property
    def prefix(self) -> str:
        match = _STRING_PREFIX_RE.match(self.raw)
        return match.group(0) if match else ""

    @property
    def quote(self) -> str:
        body = self.raw[len(self.prefix) :]
        return body[:3] if body[:3] in {'"""', "'''"} else body[:1]


def _string(parsed: Parsed, node: ast.Constant) -> _String | None:
    """How LibCST parses a ``str``/``bytes`` constant; None for an f-string's text part."""
    if not isinstance(node.value, (str, bytes)) or isinstance(parent_of(node), ast.JoinedStr):
        return None
    raw = parsed.segment(node)
    return _String(string_literal_count(raw) == 1, raw)


def _is_simple_str(parsed: Parsed, node: ast.AST) -> bool:
    """A single ``str`` literal (a ``SimpleString`` whose value is text)."""
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        return False
    info = _string(parsed, node)
    return info is not None and info.simple


# -- a parsed module, with the helpers both passes use --------------------------------------


class _Module(Parsed):
    """A :class:`Parsed` module with the symbolic view the passes build on."""

    def scope_prefix(self, node: ast.AST, *, inclusive: bool = False) -> str:
        """The qualified-name prefix of the scope a binding at ``node`` lands in.

        ``inclusive`` counts ``node`` itself (the name of a ``def`` or ``class``
        belongs to it in LibCST's tree).
        """
        parts: list[str] = []
        current = node if inclusive else parent_of(node)
        while current is not None:
            if isinstance(current, ast.ClassDef):
                parts.append(current.name)
            elif isinstance(current, _FUNCTIONS):
                parts.append("<locals>")
                parts.append(current.name)
            current = parent_of(current)
        parts.reverse()
        return ".".join([self.module, *parts]) if parts else self.module

    def sym(self, node: ast.AST) -> Sym:
        """The symbolic value of an expression (see :mod:`._codemod_resolve`)."""
        if isinstance(node, ast.Name):
            refs = [Ref(name) for name in self.fqn_names(node)]
            if not refs:
                return OPAQUE
            return refs[0] if len(refs) == 1 else AnyOf(tuple(refs))
        text = _name_text(node)
        if text is not None:  # True, False, None: builtins to LibCST's scope analysis
            return Ref(f"builtins.{text}")
        if isinstance(node, ast.Attribute):
            return Attr(self.sym(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return Item(self.sym(node.value))
        if isinstance(node, ast.Call):
            return CallOf(self.sym(node.func), self.site_id(node))
        if isinstance(node, ast.Await):
            return self.sym(node.value)
        if isinstance(node, ast.BoolOp):  # LibCST nests `a or b or c` to the left
            out = self.sym(node.values[0])
            for value in node.values[1:]:
                out = AnyOf((out, self.sym(value)))
            return out
        if isinstance(node, ast.IfExp):
            return AnyOf((self.sym(node.body), self.sym(node.orelse)))
        if isinstance(node, ast.NamedExpr):
            return self.sym(node.value)
        return OPAQUE

    def detached_sym(self, node: ast.AST) -> Sym:
        """The value of a name parsed from a string annotation (module globals)."""
        text = _name_text(node)
        if text is not None:
            return Ref(f"{self.module}.{text}")
        if isinstance(node, ast.Attribute):
            return Attr(self.detached_sym(node.value), node.attr)
        return OPAQUE

    def annotation_syms(self, expr: ast.AST) -> tuple[Sym, ...]:
        """The classes an annotation says a value is (``X``, ``X | None``, ``"X"``...)."""
        out: list[Sym] = []
        for member, detached in _annotation_members(self, expr, detached=False):
            out.append(self.detached_sym(member) if detached else self.sym(member))
        return tuple(out)

    def element_key(self, element: ast.expr) -> NodeKey:
        """The key of a list/tuple/set element (LibCST's ``Element`` holds its parentheses)."""
        if isinstance(element, ast.Starred):
            return self.key(element, "StarredElement")
        start, end = self.outer_span(element)
        return ("Element", start[0], start[1], end[0], end[1])

    def decorator_line(self, expr: ast.expr) -> int:
        """The line of the ``@`` before a decorator expression."""
        at = self.prev_significant(self.outer_span(expr)[0])
        return at[0] if at is not None else self.line(expr)


_PARSED: dict[tuple[str, str, str, str], _Module] = {}
_PARSED_LIMIT: Final = 256


def _parse(
    source: str, path: str, module: str, package: str, tree: ast.Module | None = None
) -> _Module:
    """Parse once per process: pass 1 and pass 2 read the same module.

    ``tree``: ``ast.parse(source)``, when the caller has it already.
    """
    key = (path, module, package, source)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = _Module(source, path, module, package, tree)
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = parsed
    return parsed


class _StringAnnotation:
    """The expression in a string annotation, parsed on its own (module globals)."""

    def __init__(self, text: str, expr: ast.expr, parsed: _Module, shift: int) -> None:
        self.text = text
        self.expr = expr
        self.parsed = parsed
        self.shift = shift  # characters put in front of the text to parse it

    def _offset(self, pos: tuple[int, int]) -> int:
        line, col = pos
        return sum(len(ln) for ln in self.parsed.lines[: line - 1]) + col - self.shift

    def replace(self, nodes: Sequence[ast.AST], new: str) -> str:
        """The text with each of ``nodes`` (parentheses included) replaced by ``new``."""
        spans = sorted(
            (self._offset(a), self._offset(b)) for a, b in map(self.parsed.outer_span, nodes)
        )
        outer: list[tuple[int, int]] = []
        for start, end in spans:
            if outer and start < outer[-1][1]:
                continue  # inside a node already replaced (`A.B` when `A` matched too)
            outer.append((start, end))
        out = self.text
        for start, end in reversed(outer):
            out = out[:start] + new + out[end:]
        return out


def _parse_string_annotation(parsed: Parsed, node: ast.Constant) -> _StringAnnotation | None:
    """What LibCST's ``parse_expression`` makes of a string annotation, or None."""
    value = node.value
    if not isinstance(value, str) or len(value) > 500:
        return None
    text = value.strip()
    wrapped, shift = text, 0
    try:
        ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        if not text.startswith("*") or text.startswith("**"):
            return None
        wrapped, shift = f"[{text}]", 1  # LibCST parses a starred expression on its own
        try:
            tree = ast.parse(wrapped, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        if not (
            isinstance(tree.body, ast.List)
            and len(tree.body.elts) == 1
            and isinstance(tree.body.elts[0], ast.Starred)
        ):
            return None
    module = _Module(wrapped, parsed.path, parsed.module, parsed.package)
    statement = module.tree.body[0]
    assert isinstance(statement, ast.Expr)
    expr = statement.value
    if shift:
        assert isinstance(expr, ast.List)
        expr = expr.elts[0]
    return _StringAnnotation(text, expr, module, shift)


def _annotation_members(
    parsed: _Module, expr: ast.AST, *, detached: bool
) -> Iterator[tuple[ast.AST, bool]]:
    if isinstance(expr, ast.Attribute) or _name_text(expr) is not None:
        yield expr, detached
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        yield from _annotation_members(parsed, expr.left, detached=detached)
        yield from _annotation_members(parsed, expr.right, detached=detached)
    elif isinstance(expr, ast.Subscript):
        head = expr.value
        head_name = (
            head.id
            if isinstance(head, ast.Name)
            else head.attr
            if isinstance(head, ast.Attribute)
            else None
        )
        if head_name in _UNION_HEADS:
            for i, element in enumerate(_subscript_elements(parsed, expr)):
                if head_name == "Annotated" and i > 0:
                    break
                if isinstance(element, ast.Slice):
                    continue  # LibCST: a Slice, not an Index
                value = element.value if isinstance(element, ast.Starred) else element
                yield from _annotation_members(parsed, value, detached=detached)
    elif isinstance(expr, ast.Constant) and _is_simple_str(parsed, expr):
        inner = _parse_string_annotation(parsed, expr)
        if inner is not None:
            yield from _annotation_members(inner.parsed, inner.expr, detached=True)


def _subscript_elements(parsed: Parsed, node: ast.Subscript) -> list[ast.expr]:
    """LibCST's ``SubscriptElement`` values: ``X[a, b]`` has two, ``X[(a, b)]`` one."""
    sl = node.slice
    if isinstance(sl, ast.Tuple) and sl.elts:
        segment = parsed.segment(sl)
        parenthesized = (
            segment.startswith("(")
            and segment.endswith(")")
            and parsed.outer_span(sl.elts[0])[0] != parsed.start(sl)
        )
        if not parenthesized:
            return list(sl.elts)
    return [sl]


def _catches_import_error(node: ast.AST | None) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Tuple):
        return any(
            _catches_import_error(e.value if isinstance(e, ast.Starred) else e) for e in node.elts
        )
    return _dotted_tail(node) in {"ImportError", "ModuleNotFoundError"}


def _availability_flag(test: ast.AST) -> str | None:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        if _is_none(test.comparators[0]):
            test = test.left
        else:
            return None
    tail = _dotted_tail(test)
    if tail is not None and _AVAILABILITY_RE.search(tail):
        return tail
    return None


def _in_except_handler(handler: ast.AST) -> bool:
    """An ``except`` clause (LibCST's ``ExceptHandler``; ``except*`` is another node)."""
    return isinstance(handler, ast.ExceptHandler) and not isinstance(
        parent_of(handler), getattr(ast, "TryStar", ())
    )


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    out: set[str] = set()
    for decorator in node.decorator_list:
        expr = decorator.func if isinstance(decorator, ast.Call) else decorator
        tail = _dotted_tail(expr)
        if tail is not None:
            out.add(tail)
    return out


def _ordered_params(args: ast.arguments) -> Iterator[tuple[ast.arg, ParamKind, bool]]:
    """``(parameter, kind, has a default)`` in LibCST's order."""
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    for i, p in enumerate(positional):
        yield p, "positional", i >= first_default
    if args.vararg is not None:
        yield args.vararg, "var_positional", False
    for p, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        yield p, "keyword", default is not None
    if args.kwarg is not None:
        yield args.kwarg, "var_keyword", False


def _param_defaults(args: ast.arguments) -> dict[int, ast.expr]:
    """Parameter node id -> its default value."""
    positional = [*args.posonlyargs, *args.args]
    out = {
        id(p): d
        for p, d in zip(
            positional[len(positional) - len(args.defaults) :], args.defaults, strict=True
        )
    }
    for p, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is not None:
            out[id(p)] = default
    return out


def _param_of_default(args: ast.arguments, value: ast.AST) -> ast.arg | None:
    positional = [*args.posonlyargs, *args.args]
    for p, d in zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True):
        if d is value:
            return p
    for p, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is value:
            return p
    return None


_TRIES: Final[tuple[type[ast.Try], ...]] = (
    ast.Try,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
)
_COMPOUND: Final = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.Match,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
)


def _is_suite(parsed: Parsed, statements: list[ast.stmt]) -> bool:
    """A body on its header's line (LibCST's ``SimpleStatementSuite``: ``if x: y()``)."""
    first = statements[0]
    line = parsed.lines[first.lineno - 1]
    return bool(line[: parsed.start(first)[1]].strip())


def _last_block(node: ast.stmt) -> list[ast.stmt] | ast.If:
    """The block a compound statement ends with (an ``elif`` as its ``If``)."""
    if isinstance(node, ast.If):
        if _is_elif(node):
            inner = node.orelse[0]
            assert isinstance(inner, ast.If)
            return inner
        return node.orelse or node.body
    if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
        return node.orelse or node.body
    if isinstance(node, ast.Match):
        return node.cases[-1].body if node.cases else []
    if isinstance(node, _TRIES):
        handlers = node.handlers
        return node.finalbody or node.orelse or (handlers[-1].body if handlers else node.body)
    body: list[ast.stmt] = getattr(node, "body", [])
    return body


def _arg_wrapper(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """``(the argument, the call or class)`` when ``node`` is what LibCST wraps in an ``Arg``."""
    parent = parent_of(node)
    where = field_of(node)
    if isinstance(parent, ast.Call) and where == "args":
        return node, parent
    if isinstance(parent, ast.ClassDef) and where == "bases":
        return node, parent
    if isinstance(parent, ast.keyword):
        owner = parent_of(parent)
        if owner is not None:
            return parent, owner
    if isinstance(parent, ast.Starred) and where == "value":
        owner = parent_of(parent)
        if isinstance(owner, (ast.Call, ast.ClassDef)) and field_of(parent) in {"args", "bases"}:
            return parent, owner
    return None


def _is_elif(node: ast.If) -> bool:
    """An ``if`` in ``orelse`` that is spelled ``elif`` (LibCST nests it, no ``Else``)."""
    if len(node.orelse) != 1 or not isinstance(node.orelse[0], ast.If):
        return False
    inner = node.orelse[0]
    return inner.lineno != node.lineno and (
        inner.col_offset == node.col_offset and inner.lineno > node.lineno
    )


# -- walking ast in LibCST's order ------------------------------------------------------------


class _Walk:
    """Visits a module's nodes in LibCST's order.

    ``visit_X(node)`` (may return False to skip the children) and ``leave_X(node)``
    are looked up by the ``ast`` class name; :meth:`block` is called when a
    statement body is entered (LibCST's ``Module``, ``IndentedBlock`` or
    ``SimpleStatementSuite``), :meth:`decorator` before a decorator expression.
    """

    def __init__(self, parsed: _Module) -> None:
        self.p = parsed

    def run(self) -> None:
        self.block(self.p.tree.body, suite=False)
        for stmt in self.p.tree.body:
            self.walk(stmt)

    def walk(self, node: ast.AST) -> None:
        name = type(node).__name__
        visit = getattr(self, f"visit_{name}", None)
        if visit is None or visit(node) is not False:
            self.children(node)
        leave = getattr(self, f"leave_{name}", None)
        if leave is not None:
            leave(node)

    def walk_all(self, nodes: Sequence[ast.AST | None]) -> None:
        for node in nodes:
            if node is not None:
                self.walk(node)

    def body(self, statements: list[ast.stmt]) -> None:
        self.block(statements, suite=_is_suite(self.p, statements))
        for stmt in statements:
            self.walk(stmt)

    def block(self, statements: list[ast.stmt], *, suite: bool) -> None:
        """A statement body is entered (before its statements)."""

    def decorator(self, expr: ast.expr) -> None:
        """A decorator is entered (before its expression)."""

    def children(self, node: ast.AST) -> None:
        if isinstance(node, _FUNCTIONS):
            for expr in node.decorator_list:
                self.decorator(expr)
                self.walk(expr)
            self.parameters(node.args)
            if node.returns is not None:
                self.walk(node.returns)
            self.body(node.body)
        elif isinstance(node, ast.ClassDef):
            for expr in node.decorator_list:
                self.decorator(expr)
                self.walk(expr)
            self.walk_all(node.bases)
            self.walk_all(node.keywords)
            self.body(node.body)
        elif isinstance(node, ast.Lambda):
            self.parameters(node.args)
            self.walk(node.body)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.walk(node.target)
            self.walk(node.iter)
            self.body(node.body)
            if node.orelse:
                self.body(node.orelse)
        elif isinstance(node, ast.While):
            self.walk(node.test)
            self.body(node.body)
            if node.orelse:
                self.body(node.orelse)
        elif isinstance(node, ast.If):
            self.walk(node.test)
            self.body(node.body)
            if _is_elif(node):
                self.walk(node.orelse[0])
            elif node.orelse:
                self.body(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            self.walk_all(node.items)
            self.body(node.body)
        elif isinstance(node, _TRIES):
            self.body(node.body)
            for handler in node.handlers:
                self.walk(handler)
            if node.orelse:
                self.body(node.orelse)
            if node.finalbody:
                self.body(node.finalbody)
        elif isinstance(node, ast.ExceptHandler):
            if node.type is not None:
                self.walk(node.type)
            self.body(node.body)
        elif isinstance(node, ast.match_case):
            self.walk(node.pattern)
            if node.guard is not None:
                self.walk(node.guard)
            self.body(node.body)
        elif isinstance(node, _COMPREHENSIONS):
            if isinstance(node, ast.DictComp):
                self.walk(node.key)
                self.walk(node.value)
            else:
                self.walk(node.elt)
            self.walk_all(node.generators)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            pass  # LibCST's visitors here never look inside
        else:
            for child in _children(node):
                self.walk(child)

    def parameters(self, args: ast.arguments) -> None:
        defaults = _param_defaults(args)
        for param, _kind, _ in _ordered_params(args):
            if param.annotation is not None:
                self.walk(param.annotation)
            default = defaults.get(id(param))
            if default is not None:
                self.walk(default)


# -- pass 1: the index --------------------------------------------------------------------


@dataclass
class _ClassCollector:
    fqn: str
    node: ast.ClassDef
    methods: set[str] = field(default_factory=set)
    async_methods: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    init: tuple[Param, ...] | None = None


class _Indexer(_Walk):
    """Collects a module's bindings (pass 1)."""

    def __init__(self, parsed: _Module, names: MockNames) -> None:
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

    def _def_fqn(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> str:
        names = self.p.fqn_names(node)
        return names[0] if names else f"{self.p.scope_prefix(node, inclusive=True)}.{node.name}"

    # definitions

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        fqn = self._def_fqn(node)
        self.bind(fqn, DefClass(fqn))
        self.class_stack.append(_ClassCollector(fqn, node))
        self.scope.append(("class", fqn))

    def leave_ClassDef(self, node: ast.ClassDef) -> None:
        col = self.class_stack.pop()
        self.scope.pop()
        self.classes.append(
            ClassInfo(
                fqn=col.fqn,
                path=self.p.path,
                line=self.p.line(node),
                name=node.name,
                is_mock=self.names.matches(node.name),
                top_level=isinstance(parent_of(node), ast.Module),
                bases=tuple(
                    self.p.sym(b.value if isinstance(b, ast.Starred) else b) for b in node.bases
                ),
                init=col.init,
                methods=frozenset(col.methods),
                async_methods=frozenset(col.async_methods),
                properties=frozenset(col.properties),
                fallback=self._fallback(node),
            )
        )

    def _fallback(self, node: ast.AST) -> str | None:
        current = node
        while True:
            parent = parent_of(current)
            if parent is None or isinstance(parent, _DEFINITIONS):
                return None
            if _in_except_handler(parent):
                assert isinstance(parent, ast.ExceptHandler)
                if _catches_import_error(parent.type):
                    return "defined in an `except ImportError:` branch"
            if isinstance(parent, ast.If):
                flag = _availability_flag(parent.test)
                if flag is not None:
                    return f"defined in a branch on `{flag}`"
            current = parent

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        fqn = self._def_fqn(node)
        self.bind(fqn, DefFunc(fqn))
        owner = self.class_stack[-1] if self.scope and self.scope[-1][0] == "class" else None
        decorators = _decorator_names(node)
        name = node.name
        params = list(_ordered_params(node.args))
        if owner is not None:
            owner.methods.add(name)
            if isinstance(node, ast.AsyncFunctionDef):
                owner.async_methods.add(name)
            if decorators & {"property", "cached_property"}:
                owner.properties.add(name)
            if name == "__init__":
                owner.init = tuple(Param(p.arg, kind, default) for p, kind, default in params[1:])
        defaults = _param_defaults(node.args)
        first = owner is not None and "staticmethod" not in decorators
        for param, _kind, _ in params:
            value: Sym
            if first and owner is not None:
                if "classmethod" in decorators:
                    value = DefClass(owner.fqn)
                else:
                    value = SelfOf(owner.fqn)
                    for q in self.p.fqn_names(param):
                        self.self_params[q] = owner.fqn
            else:
                parts: list[Sym] = []
                if param.annotation is not None:
                    parts.append(Annotated(self.p.annotation_syms(param.annotation)))
                default = defaults.get(id(param))
                if default is not None:
                    parts.append(self.p.sym(default))
                value = AnyOf(tuple(parts)) if parts else OPAQUE
            first = False
            for q in self.p.fqn_names(param):
                self.bind(q, value)
        self.scope.append(("func", fqn))

    visit_AsyncFunctionDef = visit_FunctionDef

    def leave_FunctionDef(self, node: ast.AST) -> None:
        self.scope.pop()

    leave_AsyncFunctionDef = leave_FunctionDef

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and self.scope and self.scope[-1][0] == "func":
            self.bind(f"{self.scope[-1][1]}()", self.p.sym(node.value))

    # assignments

    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.p.sym(node.value)
        for target in node.targets:
            self._assign(target, node.value, value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._assign(node.target, None, Annotated(self.p.annotation_syms(node.annotation)))
        if node.value is not None:
            self._assign(node.target, node.value, self.p.sym(node.value))

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._assign(node.target, None, IterOf(self.p.sym(node.iter)))

    visit_AsyncFor = visit_For

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._assign(node.target, None, IterOf(self.p.sym(node.iter)))

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._assign(node.target, node.value, self.p.sym(node.value))

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._assign(node.optional_vars, None, OPAQUE)

    def visit_Call(self, node: ast.Call) -> None:
        # self._breakers.setdefault(name, MockBreaker(name)) stores an item
        func = node.func
        args = call_args(node)
        if isinstance(func, ast.Attribute) and func.attr == "setdefault" and len(args) == 2:
            second = args[1]
            value = second.value if isinstance(second, (ast.keyword, ast.Starred)) else second
            for key in self._item_keys(func.value):
                self.bind(key, self.p.sym(value))

    def _slot(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            for q in self.p.fqn_names(node.value):
                cls = self.self_params.get(q)
                if cls is not None:
                    return f"{cls}#{node.attr}"
        return None

    def _item_keys(self, container: ast.AST) -> list[str]:
        slot = self._slot(container)
        if slot is not None:
            return [f"{slot}[]"]
        if isinstance(container, ast.Name):
            return [f"{q}[]" for q in self.p.fqn_names(container)]
        return []

    def _assign(self, target: ast.AST, value: ast.AST | None, sym: Sym) -> None:
        if isinstance(target, ast.Name):
            names = self.p.fqn_names(target) or [f"{self.p.scope_prefix(target)}.{target.id}"]
            for q in names:
                self.bind(q, sym)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values: Sequence[ast.expr] | None = None
            if (
                isinstance(value, (ast.Tuple, ast.List))
                and len(value.elts) == len(target.elts)
                and not any(isinstance(e, ast.Starred) for e in value.elts)
            ):
                values = value.elts
            for i, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    self._assign(element.value, None, OPAQUE)
                elif values is not None:
                    self._assign(element, values[i], self.p.sym(values[i]))
                else:
                    self._assign(element, None, ElemOf(sym, i))
        elif isinstance(target, ast.Attribute):
            slot = self._slot(target)
            if slot is not None:
                self.bind(slot, sym)
        elif isinstance(target, ast.Subscript):
            for key in self._item_keys(target.value):
                self.bind(key, sym)
        elif isinstance(target, ast.Starred):
            self._assign(target.value, None, OPAQUE)

    # imports

    def visit_Import(self, node: ast.Import) -> bool:
        prefix = self.p.scope_prefix(node)
        for alias in node.names:
            if alias.asname is not None:
                self.bind(f"{prefix}.{alias.asname}", ImportRef(alias.name))
            else:
                top = alias.name.split(".")[0]
                self.bind(f"{prefix}.{top}", ImportRef(top))
        return False

    def visit_ImportFrom(self, node: ast.ImportFrom) -> bool:
        if any(alias.name == "*" for alias in node.names):
            return False
        module = absolute_module(self.p.package or None, node)
        if module is None:
            return False
        prefix = self.p.scope_prefix(node)
        for alias in node.names:
            local = alias.asname or alias.name
            self.bind(f"{prefix}.{local}", ImportRef(f"{module}.{alias.name}"))
        return False


def index_module(
    source: str,
    path: str,
    module: str,
    package: str,
    names: MockNames,
    *,
    tree: ast.Module | None = None,
) -> ModuleSummary:
    """Pass 1: a module's bindings and classes.

    ``tree``: ``ast.parse(source)``, when the caller has it already.

    Raises:
        SyntaxError: the source does not parse.
    """
    parsed = _parse(source, path, module, package, tree)
    indexer = _Indexer(parsed, names)
    indexer.run()
    return ModuleSummary(
        path=path,
        module=module,
        bindings=tuple((k, tuple(v)) for k, v in indexer.bindings.items()),
        classes=tuple(indexer.classes),
    )


# -- pass 2: the analysis -------------------------------------------------------------


@dataclass
class _Poke:
    assign: ast.Assign
    line: list[ast.stmt] | None  # the statements sharing its line (None in a one-line suite)
    target: ast.Attribute
    base: str
    attr: str
    breakers: frozenset[tuple[str, SiteId | None]]


class _Analyzer(_Walk):
    """Finds constructions, uses and references of mock breakers (pass 2)."""

    def __init__(
        self,
        parsed: _Module,
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
        self.handled: set[int] = set()
        self.by_short: dict[str, list[str]] = {}
        for fqn, info in resolver.classes.items():
            if info.is_mock:
                self.by_short.setdefault(info.name, []).append(fqn)

    # -- helpers -------------------------------------------------------------------

    def _use(
        self,
        line: int,
        breakers: frozenset[tuple[str, SiteId | None]],
        action: UseAction,
        what: str,
        reason: str,
        *,
        edits: tuple[Edit, ...] = (),
    ) -> None:
        self.uses.append(Use(line, breakers, action, what, reason, edits))

    @staticmethod
    def _ancestors(node: ast.AST) -> Iterator[ast.AST]:
        current = parent_of(node)
        while current is not None:
            yield current
            current = parent_of(current)

    @staticmethod
    def _in_annotation(node: ast.AST) -> bool:
        current = node
        while True:
            parent = parent_of(current)
            where = field_of(current)
            if parent is None:
                return False
            if (
                (isinstance(parent, ast.arg) and where == "annotation")
                or (isinstance(parent, _FUNCTIONS) and where == "returns")
                or (isinstance(parent, ast.AnnAssign) and where == "annotation")
            ):
                return True
            if isinstance(parent, (ast.stmt, ast.Module)):
                return False
            current = parent

    @staticmethod
    def _in_isinstance(node: ast.AST) -> bool:
        """True inside the class argument of ``isinstance(x, ...)``/``issubclass``."""
        current = node
        while isinstance(parent_of(current), ast.Tuple):
            current = parent_of(current)  # type: ignore[assignment]
        wrapper = _arg_wrapper(current)
        if wrapper is None:
            return False
        arg, call = wrapper
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in {"isinstance", "issubclass"}
        ):
            return False
        args = call_args(call)
        return len(args) >= 2 and args[1] is arg

    @staticmethod
    def _reference_position(node: ast.Name | ast.Attribute) -> bool:
        parent = parent_of(node)
        where = field_of(node)
        if isinstance(node, ast.Name) and isinstance(parent, ast.withitem):
            return where != "optional_vars"  # LibCST's AsName
        if isinstance(parent, ast.Assign) and where == "targets":
            return False
        if isinstance(parent, (ast.AnnAssign, ast.AugAssign)) and where == "target":
            return False
        return not (
            isinstance(parent, (ast.For, ast.AsyncFor, ast.comprehension, ast.NamedExpr))
            and where == "target"
        )

    @staticmethod
    def _store_context(node: ast.AST) -> str | None:
        parent = parent_of(node)
        where = field_of(node)
        if isinstance(parent, ast.Assign) and where == "targets":
            return "set"
        if isinstance(parent, ast.AnnAssign) and where == "target":
            return "set"
        if isinstance(parent, ast.AugAssign) and where == "target":
            return "update"
        if isinstance(parent, ast.Delete) and len(parent.targets) == 1:
            return "delete"
        return None

    # -- classes ---------------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        names = self.p.fqn_names(node)
        fqn = names[0] if names else f"{self.p.scope_prefix(node, inclusive=True)}.{node.name}"
        pushed = self.r.is_mock(fqn)
        if pushed:
            top = isinstance(parent_of(node), ast.Module)
            self.class_defs.append(
                ClassDefinition(
                    fqn,
                    self.p.line(node),
                    DeleteClass(self.p.key(node, "ClassDef")) if top else None,
                )
            )
            self.mock_stack.append(fqn)
        self.class_pushed.append(pushed)

    def leave_ClassDef(self, node: ast.ClassDef) -> None:
        if self.class_pushed.pop():
            self.mock_stack.pop()

    # -- imports ---------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> bool:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            self.imports.append(
                ImportOf(
                    None,
                    self.p.line(alias),
                    local,
                    ImportSpec(alias.name, None, alias.asname),
                    self.p.segment(alias),
                )
            )
        return False

    def visit_ImportFrom(self, node: ast.ImportFrom) -> bool:
        module = absolute_module(self.p.package or None, node)
        if module is None:
            return False
        if any(alias.name == "*" for alias in node.names):
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
            local = alias.asname or alias.name
            target = self.r.canonical(f"{module}.{alias.name}")
            cls = target if self.r.is_mock(target) else None
            line = self.p.line(alias)
            self.imports.append(
                ImportOf(
                    cls,
                    line,
                    local,
                    ImportSpec(module, alias.name, alias.asname),
                    self.p.segment(alias),
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

    def visit_Call(self, node: ast.Call) -> None:
        if self.mock_stack:
            return
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
                    self.p.line(node),
                    breakers,
                    "unsafe",
                    "call",
                    "a resilient breaker is not callable: decorate the function with "
                    "`@circuit_breaker(name)` or run it with `call()`/`acall()`",
                )

    def decorator(self, expr: ast.expr) -> None:
        if self.mock_stack:
            return
        breakers = self.r.breakers(self.p.sym(expr))
        if breakers:
            self._use(
                self.p.decorator_line(expr),
                breakers,
                "unsafe",
                "decorator",
                "a resilient breaker is not a decorator: use `@circuit_breaker(name)`",
            )

    def _construction(self, node: ast.Call, cls: str, *, direct: bool) -> Construction:
        info = self.r.classes[cls]
        site = self.p.site_id(node)
        binding = _root_name(node.func)
        args: list[Arg] = []
        for a in call_args(node):
            keyword: str | None = None
            star = False
            value: ast.AST = a
            if isinstance(a, ast.keyword):
                keyword = a.arg
                star = a.arg is None
                value = a.value
            elif isinstance(a, ast.Starred):
                star = True
                value = a.value
            literal = (
                value.value
                if isinstance(value, ast.Constant) and _is_simple_str(self.p, value)
                else None
            )
            assert literal is None or isinstance(literal, str)
            args.append(Arg(keyword=keyword, code=self.p.code(value), literal=literal, star=star))
        reason = None if direct else "the mock class is called through a variable"
        if reason is None:
            reason = self._position_reason(node)
        if reason is None and info.fallback is not None:
            reason = (
                f"`{info.name}` is a stand-in {info.fallback}: protection silently "
                "turns into nothing; depend on resilient instead"
            )
        mapping = map_arguments(tuple(args), info.init)
        if reason is None:
            reason = mapping.reason
        if reason is None and self.get_breaker_name is None:
            reason = (
                "`get_breaker` and `resilient_get_breaker` are both taken in this module; "
                "import resilient.get_breaker under another name by hand"
            )
        edit = None
        if reason is None and self.get_breaker_name is not None:
            edit = ReplaceCall(self.p.key(node, "Call"), self.get_breaker_name, mapping.args)
        return Construction(cls, site, reason, edit, mapping.name, mapping.config, binding=binding)

    def _position_reason(self, call: ast.Call) -> str | None:
        parent = parent_of(call)
        where = field_of(call)
        wrapper = _arg_wrapper(call)
        if wrapper is not None:
            arg, owner = wrapper
            owner_args = call_args(owner) if isinstance(owner, (ast.Call, ast.ClassDef)) else []
            setdefault = (
                isinstance(owner, ast.Call)
                and isinstance(owner.func, ast.Attribute)
                and owner.func.attr == "setdefault"
                and len(owner_args) == 2
                and owner_args[1] is arg
            )
            if not setdefault:
                return (
                    "passed as an argument (an injected dummy): whoever receives it decides "
                    "what it is; build the real breaker with get_breaker(name) there"
                )
        elif isinstance(parent, ast.arguments):
            param = _param_of_default(parent, call)
            name = param.arg if param is not None else "?"
            return (
                f"default value of parameter `{name}`: an injectable dummy, so "
                "callers that pass nothing get a mock"
            )
        elif isinstance(parent, ast.BoolOp):
            return "fallback in `... or/and Mock(...)`: an injectable dummy"
        elif isinstance(parent, ast.IfExp):
            return f"chosen by a condition (`{self.p.code(parent.test)}`)"
        elif isinstance(parent, ast.Attribute) and where == "value":
            pass  # `MockBreaker("x").call(f)`: get_breaker is get-or-create, same meaning
        elif not (
            (isinstance(parent, (ast.Assign, ast.AnnAssign)) and where == "value")
            or isinstance(parent, (ast.Return, ast.Expr))
        ):
            return "used inside a larger expression"
        elif isinstance(parent, ast.Assign) and len(parent.targets) != 1:
            return "assigned to several targets at once"
        child: ast.AST = call
        for anc in self._ancestors(call):
            if isinstance(anc, ast.If):
                test = self.p.code(anc.test)
                if MODE_RE.search(test):
                    return (
                        f"chosen on purpose under `if {test}:` (a simulation or test mode); "
                        "if that is intended, keep it and suppress the guard with a reason"
                    )
                if self._injection_test(anc.test):
                    return f"used when no breaker is injected (`if {test}:`)"
                other = anc.orelse if field_of(child) == "body" else anc.body
                if other and self._builds_breaker(other):
                    return f"chosen by a condition (`if {test}:`) against another breaker"
            elif _in_except_handler(anc):
                assert isinstance(anc, ast.ExceptHandler)
                if _catches_import_error(anc.type):
                    return (
                        "a stand-in built when an import fails: protection silently turns "
                        "into nothing"
                    )
                caught = self.p.code(anc.type) if anc.type is not None else "everything"
                return f"built when `{caught}` is caught: a fallback that hides the failure"
            elif isinstance(anc, (ast.Match, ast.Lambda)):
                return "chosen by a match/lambda"
            elif isinstance(anc, _FUNCTIONS):
                return None
            elif isinstance(anc, ast.ClassDef):
                return (
                    "class attribute shared by every instance (a class-level singleton); "
                    "replace it by hand with get_breaker(name) where it is used"
                )
            elif isinstance(anc, ast.Module):
                return (
                    "module-level singleton: other modules may import it and poke at it; "
                    "replace it by hand with get_breaker(name), one name per dependency"
                )
            child = anc
        return None

    def _injection_test(self, test: ast.AST) -> bool:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test = test.operand
        elif isinstance(test, ast.Compare) and len(test.ops) == 1:
            if not _is_none(test.comparators[0]):
                return False
            test = test.left
        else:
            return False
        root = _root_name(test)
        return root is not None and "breaker" in self.p.code(test).lower()

    @staticmethod
    def _builds_breaker(statements: list[ast.stmt]) -> bool:
        for stmt in statements:
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Call):
                    tail = _dotted_tail(sub.func)
                    if (
                        tail is not None
                        and "breaker" in tail.lower()
                        and tail not in {"get", "setdefault"}
                    ):
                        return True
        return False

    # -- uses ------------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_reference(node)
        if self.mock_stack or id(node) in self.handled:
            return
        breakers = self.r.breakers(self.p.sym(node.value))
        if breakers:
            self._classify(node, breakers)

    def _classify(
        self, node: ast.Attribute, breakers: frozenset[tuple[str, SiteId | None]]
    ) -> None:
        attr = node.attr
        line = self.p.line(node)
        store = self._store_context(node)
        if store is not None:
            self._use(
                line,
                breakers,
                "unsafe",
                "write",
                unsupported_attribute(attr, write=True)
                if store != "delete"
                else f"`del breaker.{attr}` has no resilient equivalent",
            )
            return
        parent = parent_of(node)
        called = isinstance(parent, ast.Call) and field_of(node) == "func"
        infos = [self.r.classes[c] for c, _ in breakers if c in self.r.classes]
        if attr == "call":
            awaited = called and parent is not None and isinstance(parent_of(parent), ast.Await)
            kinds = {"call" in i.async_methods for i in infos}
            if awaited or kinds == {True}:
                why = "awaited `call()`" if awaited else "`call()` of an async mock"
                self._use(
                    line,
                    breakers,
                    "edit",
                    "acall",
                    f"{why} -> `acall()`",
                    edits=(RenameAttr(self.p.key(node, "Attribute"), "acall"),),
                )
            elif len(kinds) > 1:
                self._use(
                    line,
                    breakers,
                    "unsafe",
                    "call",
                    "the breaker may be a sync or an async mock here; choose `call()` or "
                    "`acall()` by hand",
                )
            return
        if attr in {"is_open", "is_closed", "is_half_open"}:
            if called:
                assert isinstance(parent, ast.Call)
                plain = bool(infos) and all(
                    attr in i.methods and attr not in i.properties for i in infos
                )
                if plain and not call_args(parent):
                    self._use(
                        line,
                        breakers,
                        "edit",
                        "property",
                        f"`{attr}()` -> `{attr}` (a property on resilient breakers)",
                        edits=(CallToAttr(self.p.key(parent, "Call")),),
                    )
                else:
                    self._use(
                        line,
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
                    line,
                    breakers,
                    "unsafe",
                    "state",
                    f"compares `state` with `{self.p.code(other)}`: a resilient breaker's "
                    "state is a `resilient.State` (lower-case string values)",
                )
            return
        if attr in BREAKER_API:
            return
        self._use(line, breakers, "unsafe", attr, unsupported_attribute(attr))

    @staticmethod
    def _compared_with(node: ast.AST) -> ast.AST | None:
        parent = parent_of(node)
        if isinstance(parent, ast.Compare):
            if field_of(node) == "left":
                return parent.comparators[0] if parent.comparators else None
            return parent.left
        return None

    def _state_literal(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            info = _string(self.p, node)
            if info is not None and info.simple:
                return isinstance(node.value, str) and node.value in _STATE_VALUES
        path = self.r.direct_path(self.p.sym(node))
        return path is not None and path.startswith("resilient.")

    # -- writes (`b.is_open = True`) ---------------------------------------------------

    def block(self, statements: list[ast.stmt], *, suite: bool) -> None:
        if self.mock_stack:
            return
        group: list[_Poke] = []
        for line in self._lines(statements, suite=suite):
            if line is None:  # a compound statement
                self._decide(group)
                group = []
                continue
            for small in line:
                poke = self._poke(small, None if suite else line)
                if poke is None or (group and group[-1].base != poke.base):
                    self._decide(group)
                    group = []
                if poke is not None:
                    group.append(poke)
        self._decide(group)

    @staticmethod
    def _lines(statements: list[ast.stmt], *, suite: bool) -> Iterator[list[ast.stmt] | None]:
        """LibCST's statements: a list per line of simple statements, None for compound ones."""
        if suite:
            yield list(statements)
            return
        current: list[ast.stmt] = []
        for stmt in statements:
            compound = isinstance(stmt, _COMPOUND)
            if current and (compound or stmt.lineno != current[-1].end_lineno):
                yield current
                current = []
            if compound:
                yield None
            else:
                current.append(stmt)
        if current:
            yield current

    def _poke(self, small: ast.stmt, line: list[ast.stmt] | None) -> _Poke | None:
        if not isinstance(small, ast.Assign) or len(small.targets) != 1:
            return None
        target = small.targets[0]
        if not isinstance(target, ast.Attribute):
            return None
        breakers = self.r.breakers(self.p.sym(target.value))
        if not breakers:
            return None
        self.handled.add(id(target))
        return _Poke(small, line, target, self.p.code(target.value), target.attr, breakers)

    def _poke_kind(self, attr: str, value: ast.AST) -> str | None:
        """``trip``/``reset`` for a decisive write, ``counter`` for a counter reset, else None."""
        name = _name_text(value)
        if attr in {"is_open", "is_closed"} and name is not None:
            if name in {"True", "False"}:
                opened = (name == "True") == (attr == "is_open")
                return "trip" if opened else "reset"
            return None
        if attr == "state":
            word: str | None = None
            if isinstance(value, ast.Constant) and _is_simple_str(self.p, value):
                assert isinstance(value.value, str)
                word = value.value
            elif isinstance(value, ast.Constant) and isinstance(value.value, (str, bytes)):
                word = None
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
            if (
                isinstance(value, ast.Constant)
                and type(value.value) in {int, float}
                and value.value == 0
            ):
                return "counter"
            if name == "None":
                return "counter"
        return None

    def _droppable(self, poke: _Poke) -> bool:
        line = poke.line
        if line is None or len(line) > 1:
            return True
        stmt = line[0]
        end_line, end_col = self.p.end(stmt)
        rest = self.p.lines[end_line - 1][end_col:].strip()
        if rest.startswith(";"):
            rest = rest[1:].strip()
        if rest.startswith("#"):
            return False  # a comment at the end of its line
        for number in range(self._leading_from(stmt), stmt.lineno):
            if self.p.lines[number - 1].strip().startswith("#"):
                return False  # a comment line of its own just above it
        return True

    def _leading_from(self, stmt: ast.stmt) -> int:
        """The first line LibCST counts as the statement's ``leading_lines``.

        The blank and comment lines above a statement are its own, except those a
        block just above claims as its ``footer``: for each block the previous
        statement ends with, innermost first, the lines up to the last one
        indented at least as deep as that block.
        """
        parent = parent_of(stmt)
        siblings: list[ast.stmt] = getattr(parent, field_of(stmt), [])
        index = next(i for i, s in enumerate(siblings) if s is stmt)
        if index == 0:
            colon = self.p.prev_significant(self.p.start(stmt))
            return colon[0] + 1 if colon is not None else 1
        previous = siblings[index - 1]
        start = (previous.end_lineno or previous.lineno) + 1
        for indent in reversed(self._footer_indents(previous)):
            for number in range(stmt.lineno - 1, start - 1, -1):
                if self.p.lines[number - 1].startswith(indent):
                    start = number + 1
                    break
        return start

    def _footer_indents(self, node: ast.stmt) -> list[str]:
        """The indentation of each block ``node`` ends with, outermost first."""
        out: list[str] = []
        current: ast.stmt | None = node
        while isinstance(current, _COMPOUND):
            block = _last_block(current)
            if isinstance(block, ast.If):  # `elif`: the same level, its own blocks
                current = block
                continue
            if not block or _is_suite(self.p, block):
                break
            text = self.p.lines[block[0].lineno - 1]
            out.append(text[: len(text) - len(text.lstrip(" \t\f"))])
            current = block[-1]
        return out

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
                self._use(self.p.line(poke.assign), poke.breakers, "unsafe", "write", reason)
            else:
                good.append((poke, kind))
        deciders = [(p, k) for p, k in good if k != "counter"]
        counters = [p for p, k in good if k == "counter"]
        if not deciders:
            for p in counters:
                self._use(
                    self.p.line(p.assign),
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
                    self.p.line(p.assign),
                    p.breakers,
                    "unsafe",
                    "write",
                    "these writes both open and close the breaker; decide by hand",
                )
            return
        method = methods.pop()
        first = deciders[0][0]
        edits: list[Edit] = [AssignToCall(self.p.key(first.assign, "Assign"), method)]
        extra = [p for p, _ in deciders[1:]]
        if method == "trip":
            for p in counters:
                self._use(
                    self.p.line(p.assign),
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
                edits.append(DropStatement(self.p.key(p.assign, "Assign")))
            else:
                self._use(
                    self.p.line(p.assign),
                    p.breakers,
                    "unsafe",
                    "write",
                    f"`{p.base}.{p.attr} = ...` is covered by `{method}()` but carries a "
                    "comment; remove it by hand",
                )
        writes = ", ".join(f"`{p.attr} = {self.p.code(p.assign.value)}`" for p, _ in deciders)
        self._use(
            self.p.line(first.assign),
            frozenset(values),
            "edit",
            method,
            f"{writes} -> `{first.base}.{method}()`",
            edits=tuple(edits),
        )

    # -- references ------------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        self._check_reference(node)

    def _check_reference(self, node: ast.Name | ast.Attribute) -> None:
        if not self._reference_position(node):
            return
        cls = self.r.mock_class(self.p.sym(node))
        if cls is None:
            if (
                isinstance(node, ast.Name)
                and node.id in self.by_short
                and not self.p.fqn_names(node)
            ):
                for c in self.by_short[node.id]:
                    self.refs.append(
                        Reference(
                            c,
                            self.p.line(node),
                            "other",
                            f"`{node.id}` cannot be resolved (a star import?)",
                            binding=node.id,
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
        parent = parent_of(node)
        if isinstance(parent, ast.Call) and field_of(node) == "func":
            self.refs.append(
                Reference(
                    cls, line, "construction", text, site=self.p.site_id(parent), binding=binding
                )
            )
            return
        if self._in_annotation(node):
            kind_name = "Attribute" if isinstance(node, ast.Attribute) else "Name"
            edit = (
                ReplaceName(self.p.key(node, kind_name), self.type_name) if self.type_name else None
            )
            self.refs.append(Reference(cls, line, "annotation", text, edit=edit, binding=binding))
            return
        kind: RefKind = "other"
        wrapper = _arg_wrapper(node)
        if wrapper is not None and isinstance(wrapper[1], ast.ClassDef):
            kind = "base"
        elif self._in_isinstance(node):
            kind = "isinstance"
        self.refs.append(Reference(cls, line, kind, text, binding=binding))

    # -- strings ---------------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> None:
        info = _string(self.p, node)
        if info is None:
            return
        if isinstance(parent_of(node), ast.Expr):
            return  # a docstring / bare string (prose)
        if info.simple and self._in_annotation(node):
            self._string_annotation(node, info)
            return
        if isinstance(node.value, str):
            self._string_reference(node, node.value)

    def _string_reference(self, node: ast.Constant, value: str) -> None:
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

    @staticmethod
    def _in_all(node: ast.AST) -> bool:
        """In an ``__all__`` assignment, two levels down in LibCST's tree."""
        parent = parent_of(node)
        where = field_of(node)
        container: ast.AST | None = None
        if (
            isinstance(parent, (*_DISPLAYS, ast.Dict, ast.JoinedStr))
            or (isinstance(parent, ast.Call) and where == "args")
            or (isinstance(parent, ast.Compare) and where == "comparators")
        ):
            container = parent
        elif isinstance(parent, ast.comprehension) and where == "iter":
            owner = parent_of(parent)
            if isinstance(owner, _COMPREHENSIONS) and owner.generators[0] is parent:
                container = owner
        elif isinstance(parent, (ast.Starred, ast.keyword, ast.FormattedValue)):
            owner = parent_of(parent)
            if isinstance(parent, ast.Starred) and not isinstance(owner, (*_DISPLAYS, ast.Call)):
                owner = None
            container = owner
        if container is None:
            return False
        stmt = parent_of(container)
        if field_of(container) != "value":
            return False
        if isinstance(stmt, ast.Assign):
            return any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets)
        if isinstance(stmt, ast.AugAssign):
            return isinstance(stmt.target, ast.Name) and stmt.target.id == "__all__"
        return False

    def _string_annotation(self, node: ast.Constant, info: _String) -> None:
        parsed = _parse_string_annotation(self.p, node)
        if parsed is None:
            return
        found: list[tuple[ast.AST, str]] = []
        for sub in _reference_nodes(parsed.expr):
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
                    self.refs.append(Reference(cls, line, "inside", info.raw, owner=owner))
            return
        edit: Edit | None = None
        classes = {c for _, c in found}
        simple = len(info.quote) == 1 and "\\" not in info.raw and info.prefix.lower() in {"", "u"}
        if len(classes) == 1 and simple and self.type_name is not None:
            inner = parsed.replace([sub for sub, _ in found], self.type_name)
            if info.quote not in inner:
                edit = ReplaceString(
                    self.p.key(node, "SimpleString"),
                    f"{info.prefix}{info.quote}{inner}{info.quote}",
                )
        for sub, cls in found:
            self.refs.append(
                Reference(cls, line, "annotation", info.raw, edit=edit, binding=_root_name(sub))
            )

    # -- __all__ -----------------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            self._all(node, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name) and node.target.id == "__all__":
            self._all(node, node.value)

    def _all(self, stmt: ast.stmt, value: ast.AST) -> None:
        at_top = isinstance(parent_of(stmt), ast.Module)
        if not isinstance(value, _DISPLAYS):
            return
        for element in value.elts:
            string = element.value if isinstance(element, ast.Starred) else element
            if not (isinstance(string, ast.Constant) and _is_simple_str(self.p, string)):
                continue
            name = string.value
            assert isinstance(name, str)
            own = f"{self.p.module}.{name}"
            path = self.r.canonical(own)
            if not self.r.is_mock(path):
                continue
            line = (
                self.p.line(element)
                if isinstance(element, ast.Starred)
                else self.p.outer_span(element)[0][0]
            )
            if path == own and at_top:
                self.refs.append(
                    Reference(
                        path,
                        line,
                        "all",
                        f"__all__ entry {name!r}",
                        edit=DropElement(self.p.element_key(element)),
                    )
                )
            else:
                self.refs.append(
                    Reference(path, line, "reexport", "listed in __all__", binding=name)
                )


def _reference_nodes(expr: ast.AST) -> Iterator[ast.AST]:
    if isinstance(expr, ast.Attribute):
        yield expr
        yield from _reference_nodes(expr.value)
        return
    if _name_text(expr) is not None:
        yield expr
        return
    for child in _children(expr):
        yield from _reference_nodes(child)


def _existing_import(parsed: Parsed, obj: str) -> str | None:
    """The local name of a module-level ``from resilient import obj [as x]``."""
    for stmt in parsed.tree.body:
        if (
            isinstance(stmt, ast.ImportFrom)
            and stmt.level == 0
            and stmt.module == "resilient"
            and not any(a.name == "*" for a in stmt.names)
        ):
            for alias in stmt.names:
                if alias.name == obj:
                    return alias.asname or obj
    return None


def _choose(
    parsed: Parsed, taken: Mapping[str, set[str]], candidates: tuple[str, str]
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
    tree: ast.Module | None = None,
) -> FileFacts:
    """Pass 2: every construction, use and reference of a mock breaker in one module.

    ``tree``: ``ast.parse(source)``, when the caller has it already.

    Raises:
        SyntaxError: the source does not parse.
    """
    parsed = _parse(source, path, module, package, tree)
    taken = parsed.taken_names()
    analyzer = _Analyzer(
        parsed,
        resolver,
        names,
        get_breaker_name=_choose(parsed, taken, GET_BREAKER),
        type_name=_choose(parsed, taken, BREAKER_TYPE),
    )
    analyzer.run()
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


def __getattr__(name: str) -> object:
    # ``_Parsed``/``_Walker``: a LibCST view of the same analysis, to check it against
    # LibCST's own providers (imported on demand: it needs LibCST)
    if name in {"_Parsed", "_Walker"}:
        from . import _codemod_cstview

        return getattr(_codemod_cstview, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
