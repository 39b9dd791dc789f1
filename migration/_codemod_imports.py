"""Adding and removing imports in a LibCST module, without ``libcst.codemod``.

LibCST's ``AddImportsVisitor`` and ``RemoveImportsVisitor`` live in
``libcst.codemod``, and importing that package loads ``libcst.matchers``: about
half a second, more than LibCST itself takes to load and more than the rewrite
of a typical tree.  This module does what the two visitors do, with LibCST's
nodes and its ``ScopeProvider`` only (the logic follows LibCST's, MIT licence,
Meta Platforms, Inc.).  The tests compare its output with the visitors' own.

- :func:`add_imports` makes sure ``from module import obj [as asname]`` (or
  ``import module [as asname]``) is there: names go into an existing
  ``from module import ...`` of the import block at the top of the module,
  new statements at the end of that block (``__future__`` ones at its start),
  after a docstring or ``__strict__`` flag, never inside the code below.
- :func:`remove_imports` drops the named imports, at any depth, where nothing
  in the module uses them any more (a reference, an ``__all__`` entry, a string
  annotation).  When every import binding one of the names is named nowhere
  else in the text, none is used and no scope analysis runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import libcst as cst
from libcst.helpers import (
    get_absolute_module_from_package,
    get_absolute_module_from_package_for_import,
)
from libcst.metadata import ImportAssignment, MetadataWrapper, Scope, ScopeProvider

from ._codemod_model import ImportSpec

__all__ = ["add_imports", "remove_imports", "unused_by_text"]

_Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement
_Importish = cst.Import | cst.ImportFrom
_DOTTED: Final = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*")


# -- adding -----------------------------------------------------------------------------


def _single_import(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], (cst.Import, cst.ImportFrom))
    )


def _skip_first(module: cst.Module) -> bool:
    """Whether the module opens with a docstring or a ``__strict__`` flag (imports go after)."""
    if not module.body:
        return False
    first = module.body[0]
    if not isinstance(first, cst.SimpleStatementLine) or len(first.body) != 1:
        return False
    small = first.body[0]
    if isinstance(small, cst.Expr):
        return isinstance(small.value, cst.SimpleString)
    return (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and small.targets[0].target.value == "__strict__"
    )


class _Present:
    """What the import block at the top of a module already imports."""

    def __init__(self, package: str | None) -> None:
        self.package = package
        self.module_imports: set[str] = set()
        self.object_mapping: dict[str, set[str]] = {}
        self.module_aliases: dict[str, str] = {}
        self.alias_mapping: dict[str, list[tuple[str, str]]] = {}

    def add(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for name in node.names:
                alias = name.evaluated_alias
                if alias is not None:
                    self.module_aliases[name.evaluated_name] = alias
                else:
                    self.module_imports.add(name.evaluated_name)
            return
        module = get_absolute_module_from_package_for_import(self.package, node)
        if module is None:
            return
        if isinstance(node.names, cst.ImportStar):
            self.object_mapping[module] = {"*"}
            return
        aliased = [
            (ia.evaluated_name, ia.evaluated_alias)
            for ia in node.names
            if ia.asname is not None and ia.evaluated_alias is not None
        ]
        if aliased:
            self.alias_mapping.setdefault(module, []).extend(aliased)
        plain = {ia.evaluated_name for ia in node.names if ia.asname is None}
        if plain:
            objects = self.object_mapping.setdefault(module, set())
            if "*" not in objects:
                objects.update(plain)


def _absolute(spec: ImportSpec, package: str | None) -> ImportSpec:
    """``spec`` with a relative module (``.x``, ``..``) made absolute when the package is known."""
    module = spec.module.lstrip(".")
    level = len(spec.module) - len(module)
    if not level:
        return spec
    obj = spec.obj
    if obj is None:  # `from . import x`: the module is the object
        module, obj = "", module
    if package is None:
        return ImportSpec("." * level + module, obj, spec.asname)
    absolute = get_absolute_module_from_package(package, module or None, level)
    if absolute is None:
        return ImportSpec("." * level + module, obj, spec.asname)
    return ImportSpec(absolute, obj, spec.asname)


def _check_future(specs: Iterable[ImportSpec]) -> None:
    for spec in specs:
        if spec.module == "__future__" and spec.obj is None:
            raise ValueError("Cannot import __future__ directly!")
        if spec.module == "__future__" and spec.asname is not None:
            raise ValueError("Cannot import __future__ objects with aliases!")


def add_imports(tree: cst.Module, specs: Sequence[ImportSpec], package: str | None) -> cst.Module:
    """``tree`` importing each of ``specs`` (what it imports already at the top is not repeated).

    Raises:
        ValueError: a ``__future__`` import without an object or with an alias.
    """
    _check_future(specs)
    wanted = [_absolute(spec, package) for spec in specs]
    module_imports = {s.module for s in wanted if s.obj is None and s.asname is None}
    from_modules = sorted({s.module for s in wanted if s.obj is not None and s.asname is None})
    module_mapping = {
        module: {s.obj for s in wanted if s.module == module and s.obj and s.asname is None}
        for module in from_modules
    }
    module_aliases = {s.module: s.asname for s in wanted if s.obj is None and s.asname}
    aliased_modules = sorted({s.module for s in wanted if s.obj is not None and s.asname})
    alias_mapping = {
        module: [(s.obj, s.asname) for s in wanted if s.module == module and s.obj and s.asname]
        for module in aliased_modules
    }

    body = list(tree.body)
    start = 1 if _skip_first(tree) else 0
    end = start
    while end < len(body) and _single_import(body[end]):
        end += 1
    top = [cst.ensure_type(body[i], cst.SimpleStatementLine) for i in range(start, end)]
    present = _Present(package)
    for line in top:
        node = line.body[0]
        assert isinstance(node, (cst.Import, cst.ImportFrom))  # (what _single_import checked)
        present.add(node)

    module_imports -= present.module_imports
    for module, alias in present.module_aliases.items():
        if module_aliases.get(module) == alias:
            del module_aliases[module]
    for module, aliases in present.alias_mapping.items():
        for pair in aliases:
            if module in alias_mapping and pair in alias_mapping[module]:
                alias_mapping[module].remove(pair)
                if not alias_mapping[module]:
                    del alias_mapping[module]
    for module, objects in present.object_mapping.items():
        if module not in module_mapping:
            continue
        if "*" in objects:
            del module_mapping[module]
        else:
            module_mapping[module] -= objects
            if not module_mapping[module]:
                del module_mapping[module]

    # names for a module already imported from at the top join that statement
    for offset, line in enumerate(top):
        node = line.body[0]
        if not isinstance(node, cst.ImportFrom) or isinstance(node.names, cst.ImportStar):
            continue
        source = get_absolute_module_from_package_for_import(package, node)
        if source is None or (source not in module_mapping and source not in alias_mapping):
            continue
        joining = sorted(module_mapping.pop(source, ()))
        aliases = sorted(alias_mapping.pop(source, ()))
        names = [
            *(cst.ImportAlias(name=cst.Name(obj)) for obj in joining),
            *(
                cst.ImportAlias(name=cst.Name(obj), asname=cst.AsName(name=cst.Name(alias)))
                for obj, alias in aliases
            ),
            *node.names,
        ]
        body[start + offset] = line.with_changes(body=[node.with_changes(names=names)])

    if not (module_imports or module_mapping or module_aliases or alias_mapping):
        return tree.with_changes(body=body)

    combined: dict[str, list[tuple[str, str | None]]] = {}
    for module, pairs in alias_mapping.items():
        combined.setdefault(module, []).extend(pairs)
    for module, objects in module_mapping.items():
        combined.setdefault(module, []).extend((obj, None) for obj in objects)

    def from_import(module: str, pairs: list[tuple[str, str | None]]) -> cst.BaseStatement:
        names = ", ".join(o if a is None else f"{o} as {a}" for o, a in sorted(pairs, key=_pair))
        return cst.parse_statement(f"from {module} import {names}", config=config)

    config = tree.config_for_parsing
    after: list[_Statement] = list(body[end:])
    return tree.with_changes(
        body=(
            *body[:start],
            *(from_import(m, p) for m, p in combined.items() if m == "__future__"),
            *body[start:end],
            *(cst.parse_statement(f"import {m}", config=config) for m in sorted(module_imports)),
            *(
                cst.parse_statement(f"import {m} as {a}", config=config)
                for m, a in module_aliases.items()
            ),
            *(from_import(m, p) for m, p in combined.items() if m != "__future__"),
            *_blank_line_first(after),
        )
    )


def _pair(pair: tuple[str, str | None]) -> tuple[str, str]:
    return pair[0], pair[1] or ""


def _blank_line_first(statements: list[_Statement]) -> list[_Statement]:
    """At least one empty line between the imports and the first statement after them."""
    if not statements:
        return statements
    first = statements[0]
    if first.leading_lines and first.leading_lines[0].comment is None:
        return statements
    return [
        first.with_changes(leading_lines=(cst.EmptyLine(), *first.leading_lines)),
        *statements[1:],
    ]


# -- removing ---------------------------------------------------------------------------


def _holds_no_import(node: cst.CSTNode) -> bool:
    """An expression or a simple statement other than an import: no import inside."""
    return isinstance(node, (cst.BaseExpression, cst.BaseSmallStatement)) and not isinstance(
        node, (cst.Import, cst.ImportFrom)
    )


def _all_imports(tree: cst.Module) -> list[_Importish]:
    found: list[_Importish] = []

    class _Imports(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return not _holds_no_import(node) and super().on_visit(node)

        def visit_Import(self, node: cst.Import) -> bool:
            found.append(node)
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            found.append(node)
            return False

    tree.visit(_Imports())
    return found


def _may_be_unused(node: _Importish) -> bool:
    """Whether this import is one LibCST's analysis would ever call unused.

    Never a star import, a ``from . import x`` or a ``from __future__ import x``.
    """
    if isinstance(node.names, cst.ImportStar):
        return False
    if isinstance(node, cst.ImportFrom):
        module = node.module
        if module is None or (isinstance(module, cst.Name) and module.value == "__future__"):
            return False
    return True


def _alias_bound(node: _Importish, alias: cst.ImportAlias) -> str:
    if alias.asname is not None:
        return cst.ensure_type(alias.asname.name, cst.Name).value
    if isinstance(node, cst.Import):
        return alias.evaluated_name.split(".")[0]
    return alias.evaluated_name


def unused_by_text(tree: cst.Module, names: set[str]) -> dict[cst.ImportAlias, _Importish] | None:
    """The imports binding one of ``names`` (at any depth), if none is named outside imports.

    None as soon as one of them is: the caller then asks the scope analysis.
    """
    imports = _all_imports(tree)
    code = tree.code
    # (one per line: joined end to end, `import a` + `import b` would read `aimport b`)
    in_imports = "\n".join(tree.code_for_node(node) for node in imports)
    out: dict[cst.ImportAlias, _Importish] = {}
    for node in imports:
        if not _may_be_unused(node):
            continue
        assert not isinstance(node.names, cst.ImportStar)
        for alias in node.names:
            bound = _alias_bound(node, alias)
            if bound not in names:
                continue
            word = re.compile(rf"(?<!\w){re.escape(bound)}(?!\w)")
            if len(word.findall(code)) != len(word.findall(in_imports)):
                return None
            out[alias] = node
    return out


def _dotted_names(node: cst.BaseExpression) -> list[str]:
    """``a.b.c`` -> ``["a.b.c", "a.b", "a"]``; a name -> itself; anything else -> nothing."""
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Attribute):
        inner = _dotted_names(node.value)
        return [f"{inner[0]}.{node.attr.value}", *inner] if inner else []
    return []


def _string_value(node: cst.CSTNode) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _strings_in(node: cst.CSTNode) -> list[str]:
    found: list[str] = []

    class _Strings(cst.CSTVisitor):
        def visit_SimpleString(self, string: cst.SimpleString) -> bool:
            value = _string_value(string)
            if value is not None:
                found.append(value)
            return False

        def visit_ConcatenatedString(self, string: cst.ConcatenatedString) -> bool:
            value = _string_value(string)
            if value is not None:
                found.append(value)
            return False

    node.visit(_Strings())
    return found


class _Mentions(cst.CSTVisitor):
    """Names a module exports in ``__all__`` and names its string annotations use.

    Exports: the strings of the list, tuple or set assigned to ``__all__`` (also
    with an annotation, as ``+=``, or in a tuple assignment).  String annotations:
    every dotted name in a string inside an annotation or a ``TypeVar(...)`` call
    (a superset of what LibCST's parse of those strings finds, so an import is
    kept rather than removed when in doubt).
    """

    def __init__(self) -> None:
        super().__init__()
        self.exported: set[str] = set()
        self.annotated: set[str] = set()

    def _export(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if _dotted_names(target)[:1] == ["__all__"]:
            if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
                self.exported.update(_strings_in(value))
        elif isinstance(target, cst.Tuple) and isinstance(value, cst.Tuple):
            # `__all__, x = [...], ...`: as in LibCST, every string on the right counts
            for element, element_value in zip(target.elements, value.elements, strict=False):
                if _dotted_names(element.value)[:1] == ["__all__"] and isinstance(
                    element_value.value, (cst.List, cst.Tuple, cst.Set)
                ):
                    self.exported.update(_strings_in(value))
                    return

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._export(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._export(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if (
            isinstance(node.operator, cst.AddAssign)
            and isinstance(node.target, cst.Name)
            and node.target.value == "__all__"
            and isinstance(node.value, (cst.List, cst.Tuple))
        ):
            self.exported.update(_strings_in(node.value))

    def _annotation(self, node: cst.CSTNode) -> None:
        for text in _strings_in(node):
            for match in _DOTTED.finditer(text):
                parts = [p.strip() for p in match.group().split(".")]
                self.annotated.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))

    def visit_Annotation(self, node: cst.Annotation) -> bool:
        self._annotation(node)
        return False

    def visit_Call(self, node: cst.Call) -> None:
        names = _dotted_names(node.func)
        if names and names[0].rpartition(".")[2] == "TypeVar":
            self._annotation(node)


def unused_by_scope(wrapper: MetadataWrapper) -> dict[cst.ImportAlias, _Importish]:
    """Every import of ``wrapper``'s module that nothing uses (scope analysis)."""
    tree = wrapper.module
    scopes = wrapper.resolve(ScopeProvider)
    mentions = _Mentions()
    tree.visit(mentions)
    out: dict[cst.ImportAlias, _Importish] = {}
    for node in _all_imports(tree):
        if not _may_be_unused(node):
            continue
        scope = scopes.get(node)
        if scope is None:
            continue
        assert not isinstance(node.names, cst.ImportStar)
        for alias in node.names:
            if not _in_use(scope, alias, mentions):
                out[alias] = node
    return out


def _in_use(scope: Scope, alias: cst.ImportAlias, mentions: _Mentions) -> bool:
    target = alias.asname.name if alias.asname is not None else alias.name
    if not isinstance(target, (cst.Name, cst.Attribute)):
        return True  # (never: an import binds a name) in doubt, in use
    for name in _dotted_names(target):
        if name in mentions.exported or name in mentions.annotated:
            return True
        for assignment in scope[name]:
            if isinstance(assignment, ImportAssignment) and assignment.references:
                return True
    return False


def remove_imports(
    tree: cst.Module, specs: Sequence[ImportSpec], package: str | None
) -> cst.Module:
    """``tree`` without the imports of ``specs`` that nothing in it uses (at any depth)."""
    if not specs:
        return tree
    unused = unused_by_text(tree, {spec.bound for spec in specs})
    if unused is None:
        unused = unused_by_scope(MetadataWrapper(tree, unsafe_skip_copy=True))
    return tree.visit(_Remover(specs, package, unused))


def _merge_whitespace_after(
    left: cst.BaseParenthesizableWhitespace, right: cst.BaseParenthesizableWhitespace
) -> cst.BaseParenthesizableWhitespace:
    if not isinstance(right, cst.ParenthesizedWhitespace):
        return left
    if not isinstance(left, cst.ParenthesizedWhitespace):
        return right
    return left.with_changes(
        empty_lines=tuple(line for line in right.empty_lines if line.comment is not None)
    )


class _Remover(cst.CSTTransformer):
    """Drops the unused aliases of the scheduled imports, and statements left empty."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        # (most of a module is expressions: not walked, they hold no import)
        return not _holds_no_import(node) and super().on_visit(node)

    def __init__(
        self,
        specs: Sequence[ImportSpec],
        package: str | None,
        unused: Mapping[cst.ImportAlias, _Importish],
    ) -> None:
        super().__init__()
        self.package = package
        self.unused = unused
        self.modules = {s.module: s.asname for s in specs if s.obj is None}
        self.objects: dict[str, set[tuple[str, str | None]]] = {}
        for spec in specs:
            if spec.obj is not None:
                self.objects.setdefault(spec.module, set()).add((spec.obj, spec.asname))

    def leave_Import(
        self, original_node: cst.Import, updated_node: cst.Import
    ) -> cst.Import | cst.RemovalSentinel:
        keep = [
            alias
            for alias in original_node.names
            if alias.evaluated_name not in self.modules
            or alias.evaluated_alias != self.modules[alias.evaluated_name]
            or alias not in self.unused
        ]
        if len(keep) == len(original_node.names):
            return updated_node
        if not keep:
            return cst.RemoveFromParent()
        if keep[-1] is not original_node.names[-1]:
            keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(names=keep)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        names = original_node.names
        if isinstance(names, cst.ImportStar):
            return updated_node
        module = get_absolute_module_from_package_for_import(self.package, updated_node)
        if module is None or module not in self.objects:
            return updated_node
        remove = self.objects[module]
        changes: dict[str, object] = {}
        keep: list[cst.ImportAlias] = []
        for alias in names:
            if (alias.evaluated_name, alias.evaluated_alias) not in remove or (
                alias not in self.unused
            ):
                keep.append(alias)
                continue
            # the removed alias's comma: its line breaks (and comments) stay with
            # the one before, or with the opening parenthesis
            comma = alias.comma
            if not isinstance(comma, cst.Comma):
                continue
            if keep:
                previous = keep[-1]
                if isinstance(previous.comma, cst.Comma):
                    previous = previous.with_deep_changes(
                        previous.comma,
                        whitespace_after=_merge_whitespace_after(
                            previous.comma.whitespace_after, comma.whitespace_after
                        ),
                    )
                else:
                    previous = previous.with_changes(comma=comma)
                keep[-1] = previous
            elif isinstance(updated_node.lpar, cst.LeftParen):
                changes["lpar"] = updated_node.lpar.with_changes(
                    whitespace_after=_merge_whitespace_after(
                        updated_node.lpar.whitespace_after, comma.whitespace_after
                    )
                )
        if len(keep) == len(names) and all(a is b for a, b in zip(keep, names, strict=True)):
            return updated_node
        if not keep:
            return cst.RemoveFromParent()
        if keep[-1] is not names[-1]:
            keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(names=keep, **changes)
