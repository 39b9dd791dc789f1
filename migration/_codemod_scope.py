"""One module parsed with :mod:`ast`, answering what the codemod used to ask LibCST's metadata.

Passes 1 and 2 of ``resilient migrate`` (:mod:`._codemod`) read a module through
:class:`Parsed`; pass 3 (:mod:`._codemod_apply`) then applies the edits they
found with LibCST.  The two must agree on every node, so :class:`Parsed` answers
exactly as LibCST would:

- positions as ``PositionProvider`` gives them: 1-based lines, 0-based columns
  counted in characters, a node's own parentheses left out (``ast`` counts
  columns in UTF-8 bytes; the same otherwise);
- source text as ``Module.code_for_node`` gives it: the node's own parentheses
  included (``x = (  # why\\n  f(a)\\n)`` gives the call's text with the
  parentheses and the comment);
- the fully qualified names a name refers to, as ``ScopeProvider`` computes
  them, quirks included: scopes are not flow-sensitive, an access refers to
  the assignments its scope had when it was read (an access before any
  assignment of its own scope falls back to the enclosing one), class scopes
  are invisible from nested functions, ``global``/``nonlocal`` redirect
  assignments, ``import a.b`` binds ``a.b`` and ``a``, and the name prefixes are
  ``f.<locals>``, ``Cls`` and ``<comprehension>``.

Standard library only: parsing a module with ``ast`` costs about a millisecond,
LibCST's parse and metadata some fifty times that.
"""

from __future__ import annotations

import ast
import builtins
import token
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Final

from ._migrate_slice import split_lines

__all__ = [
    "BUILTIN",
    "IMPORT",
    "LOCAL",
    "Parsed",
    "absolute_module",
    "call_args",
    "cst_names",
    "field_of",
    "full_name",
    "parent_of",
    "string_literal_count",
]

#: Where a qualified name comes from (``QualifiedNameSource``).
IMPORT: Final = 1
BUILTIN: Final = 2
LOCAL: Final = 3

_PARENT: Final = "_resilient_parent"
_FIELD: Final = "_resilient_field"
_SIGNIFICANT_SKIP: Final = frozenset(
    {token.COMMENT, token.NL, token.NEWLINE, token.INDENT, token.DEDENT, token.ENDMARKER}
)
_BLANK: Final = " \t\f"
_FUNCTIONS: Final = (ast.FunctionDef, ast.AsyncFunctionDef)


def parent_of(node: ast.AST) -> ast.AST | None:
    """The node ``node`` belongs to (None for the module)."""
    parent: ast.AST | None = getattr(node, _PARENT, None)
    return parent


def field_of(node: ast.AST) -> str:
    """The field of its parent ``node`` is in (``""`` for the module)."""
    field: str = getattr(node, _FIELD, "")
    return field


def call_args(node: ast.Call | ast.ClassDef) -> list[ast.expr | ast.keyword]:
    """A call's arguments in source order (LibCST's ``Call.args``), keywords included."""
    items: list[ast.expr | ast.keyword] = (
        [*node.bases, *node.keywords]
        if isinstance(node, ast.ClassDef)
        else [*node.args, *node.keywords]
    )
    if isinstance(node, ast.Call) and node.args and node.keywords:
        items.sort(key=lambda a: (a.lineno, a.col_offset))
    return items


def full_name(node: ast.AST) -> str | None:
    """``get_full_name_for_node``: ``a.b.c`` for names, attributes, calls and subscripts."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{full_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return full_name(node.func)
    if isinstance(node, ast.Subscript):
        return full_name(node.value)
    return None


def absolute_module(package: str | None, node: ast.ImportFrom) -> str | None:
    """``get_absolute_module_from_package_for_import``: the module a ``from`` import reads."""
    if node.level == 0:
        return node.module
    if not package:
        return None
    bits = package.rsplit(".", node.level - 1)
    if len(bits) < node.level:
        return None
    return f"{bits[0]}.{node.module}" if node.module else bits[0]


# -- scopes (LibCST's ScopeProvider, on ast) ----------------------------------------------


class _Assignment:
    __slots__ = ("index", "kind", "name", "node", "scope")

    def __init__(self, name: str, scope: _Scope, node: object, index: int, kind: int) -> None:
        self.name = name
        self.scope = scope
        self.node = node
        self.index = index
        self.kind = kind  # LOCAL, IMPORT or BUILTIN

    def qualified_names(self, name: str) -> set[tuple[str, int]]:
        if self.kind == BUILTIN:
            return {(f"builtins.{self.name}", BUILTIN)}
        if self.kind == LOCAL:
            prefix = self.scope.prefix
            return {(f"{prefix}.{name}" if prefix else name, LOCAL)}
        return _import_names(self.node, name)


def _import_names(node: object, name: str) -> set[tuple[str, int]]:
    """``ImportAssignment.get_qualified_names_for``."""
    assert isinstance(node, (ast.Import, ast.ImportFrom))
    module = ""
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level:
            module = "." * node.level + module
    results: set[tuple[str, int]] = set()
    for alias in node.names:
        if alias.name == "*":
            return set()
        parts = alias.name.split(".")
        for dotted in [".".join(parts[:i]) for i in range(len(parts), 0, -1)]:
            real = dotted
            if module and module.endswith("."):
                real = f"{module}{dotted}"
            elif module:
                real = f"{module}.{dotted}"
            as_name = alias.asname if alias.asname is not None else dotted
            if name.startswith(as_name):
                rest = name.split(as_name, 1)[1]
                if rest and not rest.startswith("."):
                    continue
                rest = rest.lstrip(".")
                results.add((f"{real}.{rest}" if rest else real, IMPORT))
                break
    return results


class _Scope:
    """A LibCST scope: ``kind`` is builtin, global, function, class, comprehension or annotation."""

    __slots__ = ("assignments", "count", "kind", "overwrites", "parent", "prefix")
    prefix: str

    def __init__(self, kind: str, parent: _Scope | None, name: str | None = None) -> None:
        self.kind = kind
        self.parent: _Scope = parent if parent is not None else self
        self.assignments: dict[str, list[_Assignment]] = {}
        self.count = 0
        self.overwrites: dict[str, _Scope] = {}
        up = parent.prefix if parent is not None else ""
        if kind in {"builtin", "global"}:
            self.prefix = ""
        elif kind == "function":
            self.prefix = ".".join(p for p in (up, name, "<locals>") if p)
        elif kind == "class":
            self.prefix = ".".join(p for p in (up, name) if p)
        elif kind == "comprehension":
            self.prefix = ".".join(p for p in (up, "<comprehension>") if p)
        else:  # annotation scopes are transparent
            self.prefix = up

    def visible_from(self, child: _Scope) -> bool:
        if self.kind == "class":
            return child.parent is self and child.kind == "annotation"
        return True

    def next_visible(self, child: _Scope, first: _Scope | None = None) -> _Scope:
        scope = first if first is not None else self.parent
        while not scope.visible_from(child):
            scope = scope.parent
        return scope

    def contains(self, name: str) -> bool:
        if self.kind == "builtin":
            return hasattr(builtins, name)
        if self.kind != "global" and name in self.overwrites:
            return self.overwrites[name].contains(name)
        if name in self.assignments:
            return True
        return self.next_visible(self).contains(name)

    def resolve(self, name: str, child: _Scope) -> Sequence[_Assignment]:
        """``_resolve_scope_for_access``."""
        if self.kind == "builtin":
            found = self.assignments.get(name)
            if found is None and hasattr(builtins, name):
                found = self.assignments[name] = [_Assignment(name, self, None, -1, BUILTIN)]
            return found or ()
        if self.kind == "global":
            if name in self.assignments:
                return self.assignments[name]
            parent = self.next_visible(child)
            return parent.resolve(name, parent)
        if name in self.overwrites:
            return self.next_visible(child, self.overwrites[name]).resolve(name, child)
        if name in self.assignments:
            return self.assignments[name]
        return self.next_visible(child).resolve(name, child)

    def target(self, name: str) -> _Scope:
        if self.kind not in {"global", "builtin"} and name in self.overwrites:
            return self.next_visible(self, self.overwrites[name]).target(name)
        return self

    def record(self, name: str, node: object, kind: int = LOCAL) -> None:
        scope = self.target(name)
        scope.assignments.setdefault(name, []).append(
            _Assignment(name, scope, node, scope.count, kind)
        )

    def qualified_names(self, name: str, node: object = None) -> set[tuple[str, int]]:
        """``Scope.get_qualified_names_for`` for a node that is not an access."""
        assignments: Sequence[_Assignment] = ()
        prefix: str | None = name
        while prefix:
            if self.contains(prefix):
                assignments = self.resolve(prefix, self)
                break
            dot = prefix.rfind(".")
            prefix = None if dot == -1 else prefix[:dot]
        if node is not None:
            for assignment in assignments:
                if assignment.kind != BUILTIN and assignment.node is node:
                    return assignment.qualified_names(name)
        out: set[tuple[str, int]] = set()
        for assignment in assignments:
            out |= assignment.qualified_names(name)
        return out


def _dotted_names(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """``_gen_dotted_names``: ``("a.b.c", node), ("a.b", node.value), ("a", ...)``."""
    if isinstance(node, ast.Name):
        yield node.id, node
        return
    if not isinstance(node, ast.Attribute):
        return
    value = node.value
    if isinstance(value, ast.Call):
        if isinstance(value.func, (ast.Attribute, ast.Name)):
            yield from _dotted_names(value.func)
    elif isinstance(value, (ast.Attribute, ast.Name)):
        names = _dotted_names(value)
        first = next(names, None)
        if first is None:
            return
        yield f"{first[0]}.{node.attr}", node
        yield first
        yield from names


class _Access:
    __slots__ = ("enclosing", "index", "node", "scope")

    def __init__(self, node: ast.Name, scope: _Scope, enclosing: ast.Attribute | None) -> None:
        self.node = node
        self.scope = scope
        self.index = scope.count
        self.enclosing = enclosing


class _ScopeBuilder:
    """Walks a module the way LibCST's ``ScopeVisitor`` does, recording the same scopes."""

    def __init__(self) -> None:
        self.global_scope = _Scope("global", _Scope("builtin", None))
        self.scope = self.global_scope
        self.scopes: list[_Scope] = [self.global_scope]
        self.scope_of: dict[int, _Scope] = {}  # id(name node or def/arg node) -> its scope
        self.accesses: list[_Access] = []
        self.attributes: list[ast.Attribute | None] = [None]

    def new_scope(self, kind: str, name: str | None = None) -> _Scope:
        scope = _Scope(kind, self.scope, name)
        self.scopes.append(scope)
        return scope

    # -- the walk ---------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is not None:
            method(node)
        else:
            self.generic(node)

    def visit_all(self, nodes: Sequence[ast.AST | None]) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    def generic(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def bump(self) -> None:
        self.scope.count += 1

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname is not None:
                self.scope.record(alias.asname, node, IMPORT)
            else:
                parts = alias.name.split(".")
                for i in range(len(parts), 0, -1):
                    self.scope.record(".".join(parts[:i]), node, IMPORT)
        self.bump()

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                break
            local = alias.asname if alias.asname is not None else alias.name
            parts = local.split(".")
            for i in range(len(parts), 0, -1):
                self.scope.record(".".join(parts[:i]), node, IMPORT)
        self.bump()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self.attributes[-1] is None:
            self.attributes[-1] = node
        self.visit(node.value)
        if self.attributes[-1] is node:
            self.attributes[-1] = None

    def visit_Call(self, node: ast.Call) -> None:
        self.attributes.append(None)
        name = full_name(node)
        qnames = {q for q, _ in self.scope.qualified_names(name)} if name is not None else set()
        args = call_args(node)
        self.visit(node.func)
        if "typing.NewType" in qnames or "typing.TypeVar" in qnames:
            args = args[1:]  # the name string: LibCST does not visit it
        for arg in args:
            self.visit(arg.value if isinstance(arg, ast.keyword) else arg)
        self.attributes.pop()

    def visit_Name(self, node: ast.Name) -> None:
        self.scope_of[id(node)] = self.scope
        if isinstance(node.ctx, ast.Store):
            self.scope.record(node.id, node)
        else:
            self.accesses.append(_Access(node, self.scope, self.attributes[-1]))

    def visit_Constant(self, node: ast.Constant) -> None:
        pass  # string annotations only add accesses of their own

    def _arguments(self, args: ast.arguments, scope: _Scope) -> None:
        """``Parameters``: each parameter bound in ``scope``, defaults read outside it."""
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += args.defaults
        params: list[tuple[ast.arg, ast.expr | None]] = list(zip(positional, defaults, strict=True))
        if args.vararg is not None:
            params.append((args.vararg, None))
        params.extend(zip(args.kwonlyargs, args.kw_defaults, strict=True))
        if args.kwarg is not None:
            params.append((args.kwarg, None))
        for param, default in params:
            scope.record(param.arg, param)
            self.scope_of[id(param)] = scope
            outer = self.scope
            self.scope = scope.parent
            self.visit_all([default, param.annotation])
            self.scope = outer
        scope.count += 1  # leaving Parameters

    def _type_params(self, node: ast.AST) -> bool:
        params = getattr(node, "type_params", None)
        if not params:
            return False
        self.scope = self.new_scope("annotation")
        for param in params:
            self.scope.record(param.name, param)
            bound = getattr(param, "bound", None)
            if bound is not None:
                self.visit(bound)
            self.bump()
        return True

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer = self.scope
        self.scope.record(node.name, node)
        self.scope_of[id(node)] = self.scope
        self._type_params(node)
        around = self.scope
        self.scope = self.new_scope("function", node.name)
        self._arguments(node.args, self.scope)
        self.visit_all(node.body)
        self.scope = around
        self.visit_all(node.decorator_list)
        if node.returns is not None:
            self.visit(node.returns)
        self.scope = outer
        self.bump()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        outer = self.scope
        self.scope = self.new_scope("function")
        self._arguments(node.args, self.scope)
        self.visit(node.body)
        self.scope = outer

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer = self.scope
        self.scope.record(node.name, node)
        self.scope_of[id(node)] = self.scope
        self.visit_all(node.decorator_list)
        self._type_params(node)
        self.visit_all(node.bases)
        self.visit_all([k.value for k in node.keywords])
        self.scope = self.new_scope("class", node.name)
        self.visit_all(node.body)
        self.scope = outer
        self.bump()

    def visit_Global(self, node: ast.Global) -> None:
        if self.scope.kind != "global":
            for name in node.names:
                self.scope.overwrites[name] = self.global_scope
        self.bump()

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        if self.scope.kind == "global":
            raise NotImplementedError("nonlocal declaration not allowed at module level")
        for name in node.names:
            self.scope.overwrites[name] = self.scope.parent
        self.bump()

    def _comprehension(self, node: ast.AST, generators: list[ast.comprehension]) -> None:
        first = generators[0]
        self.visit(first.iter)
        outer = self.scope
        self.scope = self.new_scope("comprehension")
        self.visit(first.target)
        self.bump()
        self.visit_all(first.ifs)
        self._inner(generators[1:])
        if isinstance(node, ast.DictComp):
            self.visit_all([node.key, node.value])
        else:
            assert isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp))
            self.visit(node.elt)
        self.scope = outer

    def _inner(self, generators: list[ast.comprehension]) -> None:
        if not generators:
            return
        gen = generators[0]
        self.visit(gen.target)
        self.visit(gen.iter)
        self.visit_all(gen.ifs)
        self._inner(generators[1:])
        self.bump()  # leaving CompFor

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, node.generators)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._comprehension(node, node.generators)

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, node.generators)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._comprehension(node, node.generators)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.target)
        self.bump()
        self.visit(node.iter)
        self.visit_all(node.body)
        self.visit_all(node.orelse)

    visit_AsyncFor = visit_For

    def _assignment_like(self, node: ast.AST) -> None:
        self.generic(node)
        self.bump()

    visit_Assign = _assignment_like
    visit_AugAssign = _assignment_like
    visit_AnnAssign = _assignment_like
    visit_NamedExpr = _assignment_like

    def visit_withitem(self, node: ast.withitem) -> None:
        self.visit(node.context_expr)
        if node.optional_vars is not None:
            self.visit(node.optional_vars)
            self.bump()  # leaving AsName
        self.bump()  # leaving WithItem

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name is not None:
            self.scope.record(node.name, node)
            self.bump()  # leaving AsName
        self.visit_all(node.body)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None:
                self.visit(key)
            self.visit(value)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit_all([node.body, node.test, node.orelse])

    def visit_TypeAlias(self, node: ast.AST) -> None:  # Python 3.12+
        name = getattr(node, "name", None)
        if isinstance(name, ast.Name):
            self.scope.record(name.id, node)  # the name itself is not visited
        outer = self.scope
        self.scope = self.new_scope("annotation")
        for param in getattr(node, "type_params", ()):
            self.scope.record(param.name, param)
            bound = getattr(param, "bound", None)
            if bound is not None:
                self.visit(bound)
            self.bump()
        value = getattr(node, "value", None)
        if isinstance(value, ast.AST):
            self.visit(value)
        self.scope = outer
        self.bump()

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)

    # -- accesses, resolved once the whole module is seen (``infer_accesses``) -----------

    def finish(self) -> dict[int, set[tuple[str, int]]]:
        """Qualified names of every name node that is an access (by node id)."""
        out: dict[int, set[tuple[str, int]]] = {}
        for access in self.accesses:
            name = access.node.id
            moved = False
            if access.enclosing is not None:
                for dotted, node in _dotted_names(access.enclosing):
                    if access.scope.contains(dotted):
                        moved = node is not access.node
                        break
            if moved:
                continue  # the access belongs to an attribute (``import a.b``; ``a.b.c``)
            scope = access.scope
            found = scope.resolve(name, scope)
            previous = [a for a in found if a.scope is not scope or a.index < access.index]
            if not previous and found and scope.parent is not scope:
                previous = list(scope.parent.resolve(name, scope))
            names: set[tuple[str, int]] = set()
            for assignment in previous:
                names |= assignment.qualified_names(assignment.name)
            out[id(access.node)] = names
        return out


# -- the parsed module ------------------------------------------------------------------


class Parsed:
    """A module parsed with ``ast``, with LibCST-equivalent positions, text and names.

    Args:
        source: the module's text.
        path, module, package: where it is and its dotted name.

    Raises:
        SyntaxError, ValueError, RecursionError, MemoryError: ``ast`` cannot parse it.
    """

    def __init__(
        self,
        source: str,
        path: str,
        module: str,
        package: str,
        tree: ast.Module | None = None,
    ) -> None:
        self.path = path
        self.module = module
        self.package = package
        self.source = source
        # ``tree``: ``ast.parse(source)`` already at hand (a slice's, see _migrate_slice)
        self.tree = tree if tree is not None else ast.parse(source)
        self.lines = split_lines(source)
        for parent in ast.walk(self.tree):
            for name, value in ast.iter_fields(parent):
                if isinstance(value, ast.AST):
                    setattr(value, _PARENT, parent)
                    setattr(value, _FIELD, name)
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST):
                            setattr(item, _PARENT, parent)
                            setattr(item, _FIELD, name)
        self._scopes: _ScopeBuilder | None = None
        self._access_names: dict[int, set[tuple[str, int]]] = {}
        self._fqns: dict[int, list[str]] = {}
        self._tokens: list[tuple[int, int, int, int]] | None = None
        self._token_starts: list[tuple[int, int]] = []
        self._nl_rows: set[int] = set()

    # -- scopes -------------------------------------------------------------------------

    def _scope_builder(self) -> _ScopeBuilder:
        if self._scopes is None:
            builder = _ScopeBuilder()
            builder.visit_all(self.tree.body)
            self._access_names = builder.finish()
            self._scopes = builder
        return self._scopes

    def fqn_names(
        self, node: ast.Name | ast.arg | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    ) -> list[str]:
        """Fully qualified names of a name (of its name, for a definition or parameter).

        What LibCST's ``FullyQualifiedNameProvider`` gives, sorted.
        """
        key = id(node)
        cached = self._fqns.get(key)
        if cached is not None:
            return cached
        builder = self._scope_builder()
        scope = builder.scope_of.get(key)
        names: set[str] = set()
        if scope is not None:
            qnames = self._access_names.get(key)
            if qnames is None:
                if isinstance(node, ast.Name):
                    text = node.id
                elif isinstance(node, ast.arg):
                    text = node.arg
                else:
                    text = node.name
                qnames = scope.qualified_names(text, node if isinstance(node, ast.Name) else None)
            for name, source in qnames:
                absolute = self._absolute(name, source)
                if absolute is not None:
                    names.add(absolute)
        result = sorted(names)
        self._fqns[key] = result
        return result

    def _absolute(self, name: str, source: int) -> str | None:
        if source == BUILTIN:
            return name
        if source == IMPORT and not name.startswith("."):
            return name
        bare = name.lstrip(".")
        dots = len(name) - len(bare)
        if dots == 0:
            return f"{self.module}.{name}"
        bits = self.package.rsplit(".", dots - 1)
        if not self.package or len(bits) < dots:
            return None
        return f"{bits[0]}.{bare}"

    def taken_names(self) -> dict[str, set[str]]:
        """Names bound in the global scope or any function scope, with their origin.

        ``resilient`` for ``from resilient import X``, else ``other`` (class scopes
        left out, as in LibCST's scope analysis).
        """
        out: dict[str, set[str]] = {}
        for scope in self._scope_builder().scopes:
            if scope.kind == "class":
                continue
            for name, assignments in scope.assignments.items():
                for assignment in assignments:
                    origin = "other"
                    node = assignment.node
                    if (
                        isinstance(node, ast.ImportFrom)
                        and absolute_module(self.package or None, node) == "resilient"
                    ):
                        origin = "resilient"
                    out.setdefault(name, set()).add(origin)
        return out

    # -- positions ----------------------------------------------------------------------

    def _col(self, line: int, col: int) -> int:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii():
            return col
        return len(text.encode("utf-8")[:col].decode("utf-8", "replace"))

    def start(self, node: ast.AST) -> tuple[int, int]:
        """Where ``node`` starts: (1-based line, column in characters)."""
        line: int = node.lineno  # type: ignore[attr-defined]
        return line, self._col(line, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> tuple[int, int]:
        """Where ``node`` ends (exclusive)."""
        line: int = node.end_lineno  # type: ignore[attr-defined]
        return line, self._col(line, node.end_col_offset)  # type: ignore[attr-defined]

    def line(self, node: ast.AST) -> int:
        """The line ``node`` starts on."""
        line: int = node.lineno  # type: ignore[attr-defined]
        return line

    def key(self, node: ast.AST, kind: str) -> tuple[str, int, int, int, int]:
        """``(LibCST node type, start line, start column, end line, end column)``."""
        start = self.start(node)
        end = self.end(node)
        return (kind, start[0], start[1], end[0], end[1])

    def site_id(self, call: ast.Call) -> tuple[str, int, int]:
        line, col = self.start(call)
        return (self.path, line, col)

    def text(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        if start[0] == end[0]:
            return self.lines[start[0] - 1][start[1] : end[1]].rstrip("\r\n")
        parts = [self.lines[start[0] - 1][start[1] :]]
        parts.extend(self.lines[start[0] : end[0] - 1])
        parts.append(self.lines[end[0] - 1][: end[1]])
        return "".join(parts)

    def segment(self, node: ast.AST) -> str:
        """The source of ``node`` without its own parentheses."""
        return self.text(self.start(node), self.end(node))

    def code(self, node: ast.AST) -> str:
        """The source of ``node`` as ``code_for_node`` gives it.

        With the node's own parentheses; a line break inside brackets drops the
        indentation of the statement's block from the next line (LibCST keeps it
        as "indent here", and a node printed on its own has no indentation).
        """
        start, end = self.outer_span(node)
        text = self.text(start, end)
        if start[0] == end[0]:
            return text
        self._token_table()
        indent = self._block_indent(node)
        if not indent:
            return text
        lines = text.splitlines(keepends=True)
        for k in range(1, len(lines)):
            if start[0] + k - 1 in self._nl_rows and lines[k].startswith(indent):
                lines[k] = lines[k][len(indent) :]
        return "".join(lines)

    def _block_indent(self, node: ast.AST) -> str:
        """The indentation of the line that opens the statement (or ``case``) holding ``node``."""
        current: ast.AST | None = node
        line = 0
        while current is not None:
            if isinstance(current, ast.stmt):
                line = current.lineno
                break
            if isinstance(current, ast.match_case):
                line = current.pattern.lineno
                break
            current = parent_of(current)
        if not line:
            return ""
        first = self.lines[line - 1]
        return first[: len(first) - len(first.lstrip(_BLANK))]

    def outer_span(self, node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
        """``node``'s span with the parentheses LibCST gives it (those only around it)."""
        start = self.start(node)
        end = self.end(node)
        while True:
            before = self.prev_significant(start)
            if before is None or before[2] != "(":
                return start, end
            after = self.next_significant(end)
            if after is None or after[2] != ")":
                return start, end
            if self._owned_elsewhere(node, (before[0], before[1]), (after[0], after[1])):
                return start, end
            start = (before[0], before[1])
            end = (after[0], after[1] + 1)

    def _owned_elsewhere(
        self, node: ast.AST, opening: tuple[int, int], closing: tuple[int, int]
    ) -> bool:
        """True when the parentheses around ``node`` belong to a call, class or ``with``."""
        parent = parent_of(node)
        if isinstance(parent, ast.keyword):
            return False
        if isinstance(parent, ast.Call) and field_of(node) == "args":
            args = call_args(parent)
            if args and args[0] is node:
                func_end = self.outer_span(parent.func)[1]
                before = self.prev_significant(opening)
                return before is not None and (before[0], before[1] + 1) == func_end
            return False
        if isinstance(parent, ast.ClassDef) and field_of(node) == "bases":
            args = call_args(parent)
            if args and args[0] is node:
                before = self.prev_significant(opening)
                return before is not None and before[2] != "("
            return False
        if isinstance(parent, ast.withitem) and field_of(node) == "context_expr":
            statement = parent_of(parent)
            if isinstance(statement, (ast.With, ast.AsyncWith)) and statement.items[0] is parent:
                before = self.prev_significant(opening)
                after = self.next_significant((closing[0], closing[1] + 1))
                return (
                    before is not None
                    and self.lines[before[0] - 1][: before[1] + 1].endswith("with")
                    and after is not None
                    and after[2] == ":"
                )
        return False

    # the character before or after a position, skipping blanks, line breaks and comments

    def prev_significant(self, pos: tuple[int, int]) -> tuple[int, int, str] | None:
        line, col = pos
        head = self.lines[line - 1][:col].rstrip(_BLANK)
        if head:
            return line, len(head) - 1, head[-1]
        tokens = self._token_table()
        i = bisect_left(self._token_starts, pos) - 1
        while i >= 0:
            _, _, el, ec = tokens[i]
            if (el, ec) <= pos:
                text = self.lines[el - 1]
                return el, ec - 1, text[ec - 1] if 0 < ec <= len(text) else ""
            i -= 1
        return None

    def next_significant(self, pos: tuple[int, int]) -> tuple[int, int, str] | None:
        line, col = pos
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        rest = text[col:].rstrip("\r\n")
        stripped = rest.lstrip(_BLANK)
        if stripped and stripped[0] not in "#\\":
            return line, col + len(rest) - len(stripped), stripped[0]
        tokens = self._token_table()
        i = bisect_left(self._token_starts, pos)
        if i > 0:
            start_line, start_col, end_line, end_col = tokens[i - 1]
            if (start_line, start_col) < pos < (end_line, end_col):
                return None  # inside a token (an f-string before Python 3.12)
        if i < len(tokens):
            sl, sc, _, _ = tokens[i]
            return sl, sc, self.lines[sl - 1][sc : sc + 1]
        return None

    def _token_table(self) -> list[tuple[int, int, int, int]]:
        if self._tokens is None:
            import tokenize  # only for the rare positions the text alone does not settle

            tokens: list[tuple[int, int, int, int]] = []
            lines = iter([ln.rstrip("\r\n") + "\n" for ln in self.lines])
            try:
                for tok in tokenize.generate_tokens(lambda: next(lines, "")):
                    if tok.type not in _SIGNIFICANT_SKIP:
                        tokens.append((*tok.start, *tok.end))
                    elif tok.type == token.NL:
                        self._nl_rows.add(tok.start[0])
            except (tokenize.TokenError, SyntaxError, IndentationError):
                pass  # what was read so far still answers
            self._tokens = tokens
            self._token_starts = [(t[0], t[1]) for t in tokens]
        return self._tokens


def cst_names(node: ast.AST) -> set[str]:
    """Every name LibCST sees as a ``Name`` node in ``node``'s subtree.

    Besides ``ast.Name``: attribute names, definition and parameter names,
    keyword-argument names, imported names and module paths, ``global`` names,
    ``as`` names, pattern captures, and ``True``/``False``/``None``.
    """
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(sub.name)
        elif isinstance(sub, ast.arg):
            out.add(sub.arg)
        elif isinstance(sub, ast.keyword):
            if sub.arg is not None:
                out.add(sub.arg)
        elif isinstance(sub, ast.alias):
            out.update(sub.name.split("."))
            if sub.asname is not None:
                out.add(sub.asname)
        elif isinstance(sub, ast.ImportFrom) and sub.module:
            out.update(sub.module.split("."))
        elif isinstance(sub, (ast.Global, ast.Nonlocal)):
            out.update(sub.names)
        elif isinstance(sub, ast.Constant) and (
            sub.value is None or sub.value is True or sub.value is False
        ):
            out.add(str(sub.value))
        elif isinstance(sub, ast.MatchClass):
            out.update(sub.kwd_attrs)
        else:
            for attr in ("name", "rest"):  # except/match captures, type parameters
                value = getattr(sub, attr, None)
                if isinstance(value, str):
                    out.add(value)
    out.discard("*")
    return out


def string_literal_count(segment: str) -> int:
    """How many string literals an ``ast`` string constant's source holds (``"a" "b"``: 2)."""
    count = 0
    i = 0
    n = len(segment)
    while i < n:
        c = segment[i]
        if c in "\"'":
            quote = segment[i : i + 3] if segment[i : i + 3] in {'"""', "'''"} else c
            i += len(quote)
            while i < n and not segment.startswith(quote, i):
                i += 2 if segment[i] == "\\" else 1
            i += len(quote)
            count += 1
        elif c == "#":
            while i < n and segment[i] not in "\r\n":
                i += 1
        else:
            i += 1
    return count
