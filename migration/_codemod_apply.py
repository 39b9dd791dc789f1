"""Pass 3 of ``resilient migrate``: apply the planned edits to one module with LibCST.

:class:`MigrateBreakersCommand` is a ``VisitorBasedCodemodCommand``.  Edits are
addressed by the position their node had in the source the analysis read, so
they are all applied in one traversal (a second traversal would see moved
positions); each ``leave_*`` method handles the rewrites of its node type:

- ``Call``: ``MockBreaker(name, ...)`` -> ``get_breaker(name, ...)``, and
  ``b.is_open()`` -> ``b.is_open``;
- ``Attribute``: ``b.call`` -> ``b.acall``;
- ``Assign``: ``b.is_open = True`` -> ``b.trip()`` (``False`` -> ``b.reset()``),
  counter resets next to it dropped;
- ``Name``/``Attribute``/``SimpleString`` in annotations -> ``CircuitBreaker``;
- ``ClassDef``: an unreferenced mock class removed (and imports only it used);
- ``List``/``Tuple``/``Set``: its name dropped from ``__all__``.

Imports are scheduled with ``AddImportsVisitor``/``RemoveImportsVisitor``, which
the command runs after the traversal; an import is only removed when nothing in
the module uses it any more.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any, TypeVar, cast

import libcst as cst
from libcst.codemod import (
    Codemod,
    CodemodContext,
    ContextAwareTransformer,
    VisitorBasedCodemodCommand,
)
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.helpers import get_absolute_module_from_package_for_import
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from ._codemod_model import (
    AssignToCall,
    CallToAttr,
    DeleteClass,
    DropElement,
    DropStatement,
    Edit,
    FilePlan,
    ImportSpec,
    NodeKey,
    RenameAttr,
    ReplaceCall,
    ReplaceName,
    ReplaceString,
)

__all__ = ["MigrateBreakersCommand", "apply_edits", "warm_up"]

_N = TypeVar("_N", bound=cst.CSTNode)


def _key(node: cst.CSTNode, where: CodeRange) -> NodeKey:
    return (
        type(node).__name__,
        where.start.line,
        where.start.column,
        where.end.line,
        where.end.column,
    )


def _dotted_tail(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _transform(codemod: Codemod, tree: cst.Module) -> cst.Module:
    """``Codemod.transform_module`` without its defensive deep copy of the tree.

    LibCST copies the tree before computing metadata so that no node object
    appears twice in it; a tree fresh from the parser, or from these
    transforms (which never reuse one node in two places), already qualifies,
    and the copy costs as much as the transform itself.
    """
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    outer = codemod.context.wrapper
    codemod.context = replace(codemod.context, wrapper=wrapper)
    try:
        with codemod.resolve(wrapper):
            return codemod.transform_module_impl(wrapper.module)
    finally:
        codemod.context = replace(codemod.context, wrapper=outer)


class _Unmatched(ContextAwareTransformer):
    """A ``ContextAwareTransformer`` without LibCST's matcher layer.

    Every codemod transformer is a ``MatcherDecoratableTransformer``: it collects
    its ``@m.visit``/``@m.leave``/``@m.call_if_inside`` decorated methods when
    built (looking at each of the several hundred attributes of a transformer)
    and checks them around every node.  A transformer with no such decorators
    pays that for nothing, on every module: more than the transform itself on a
    small one.  This base skips it; the ``visit_*``/``leave_*`` methods run as
    ``CSTTransformer`` calls them, in the same order.
    """

    def __init__(self, context: CodemodContext) -> None:
        Codemod.__init__(self, context)  # what ContextAwareTransformer does, less the matchers

    def on_visit(self, node: cst.CSTNode) -> bool:
        return cst.CSTTransformer.on_visit(self, node)

    def on_leave(self, original_node: _N, updated_node: _N) -> _N | cst.RemovalSentinel:
        # (the leave_* methods here never return a FlattenSentinel)
        return cast(
            "_N | cst.RemovalSentinel",
            cst.CSTTransformer.on_leave(self, original_node, updated_node),
        )

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        cst.CSTTransformer.on_visit_attribute(self, node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        cst.CSTTransformer.on_leave_attribute(self, original_node, attribute)


class _AddImports(AddImportsVisitor, _Unmatched):
    """LibCST's ``AddImportsVisitor``, without the matcher layer it does not use."""


class _RemoveImports(RemoveImportsVisitor, _Unmatched):
    """LibCST's ``RemoveImportsVisitor``, without the matcher layer it does not use."""


@cache
def _undecorated(visitor: type[ContextAwareTransformer]) -> bool:
    """Whether ``visitor`` declares no matcher decorators (asked once of LibCST itself).

    Should a LibCST release decorate the import visitors, they run the usual way.
    """
    try:
        probe = visitor(CodemodContext())
        return not (probe._extra_visit_funcs or probe._extra_leave_funcs or probe._matchers)
    except Exception:  # any surprise: the usual way
        return False


class _Command(_Unmatched, VisitorBasedCodemodCommand):
    """A ``VisitorBasedCodemodCommand`` whose scheduled import visitors run without copies.

    Subclasses declare no matcher decorators (see :class:`_Unmatched`).
    """

    def transform_module(self, tree: cst.Module) -> cst.Module:
        tree = _transform(self, tree)
        # what CodemodCommand.transform_module runs after the transform, in its order
        for key, visitor, plain in (
            (AddImportsVisitor.CONTEXT_KEY, AddImportsVisitor, _AddImports),
            (RemoveImportsVisitor.CONTEXT_KEY, RemoveImportsVisitor, _RemoveImports),
        ):
            if key in self.context.scratch:
                chosen = plain if _undecorated(visitor) else visitor
                if visitor is AddImportsVisitor:
                    tree = _add_imports(chosen(self.context), tree)
                elif chosen is _RemoveImports:
                    tree = _remove_imports(self.context, tree)
                else:
                    tree = _transform(chosen(self.context), tree)
        return tree


class _RemoveKnownUnused(_RemoveImports):
    """``RemoveImportsVisitor`` told which imports are unused instead of finding out."""

    def __init__(self, context: CodemodContext, unused: dict[cst.ImportAlias, cst.CSTNode]) -> None:
        super().__init__(context)
        self._known = unused

    def visit_Module(self, node: cst.Module) -> None:
        self._unused_imports = self._known  # type: ignore[assignment]


def _remove_imports(context: CodemodContext, tree: cst.Module) -> cst.Module:
    """Run ``RemoveImportsVisitor``; without its scope analysis when the text decides.

    It removes a scheduled import only when nothing uses the name it binds, which
    it learns from scope, export and string-annotation analysis of the whole
    module (most of a rewrite's time where it runs).  When every import that
    binds a scheduled name is named nowhere in the module but in import
    statements (no reference, no ``__all__`` entry, no string: none of these can
    exist without the name's text), each is unused by that same definition, and
    the visitor is handed the answer.  Otherwise it finds out as usual.
    """
    scheduled = RemoveImportsVisitor._get_imports_from_context(context)
    known = _unused_by_text(tree, {_bound_name(m, o, a) for m, o, a in scheduled})
    if known is None or not _can_be_told():
        return _transform(_RemoveImports(context), tree)
    return tree.visit(_RemoveKnownUnused(context, known))


@cache
def _can_be_told() -> bool:
    """Whether this LibCST's ``RemoveImportsVisitor`` keeps its answer where we set it."""
    try:
        return isinstance(getattr(_RemoveImports(CodemodContext()), "_unused_imports", None), dict)
    except Exception:  # built otherwise: the usual way
        return False


def _bound_name(module: str, obj: str | None, asname: str | None) -> str:
    """The name an import binds: ``asname``, else the object, else the module's first part."""
    return asname or obj or module.split(".", maxsplit=1)[0]


def _unused_by_text(tree: cst.Module, names: set[str]) -> dict[cst.ImportAlias, cst.CSTNode] | None:
    """The imports binding one of ``names`` (at any depth), if none is named outside imports.

    None as soon as one of them is: the caller then asks the scope analysis.
    """
    imports: list[cst.Import | cst.ImportFrom] = []

    class _Imports(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> bool:
            imports.append(node)
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            imports.append(node)
            return False

    tree.visit(_Imports())
    code = tree.code
    in_imports = "".join(tree.code_for_node(node) for node in imports)
    out: dict[cst.ImportAlias, cst.CSTNode] = {}
    for node in imports:
        if isinstance(node.names, cst.ImportStar):
            continue
        if isinstance(node, cst.ImportFrom) and (
            node.module is None  # `from . import x`: the scope analysis never drops one
            or (isinstance(node.module, cst.Name) and node.module.value == "__future__")
        ):
            continue
        for alias in node.names:
            if alias.asname is not None:
                bound = cst.ensure_type(alias.asname.name, cst.Name).value
            elif isinstance(node, cst.Import):
                bound = alias.evaluated_name.split(".")[0]
            else:
                bound = alias.evaluated_name
            if bound not in names:
                continue
            word = re.compile(rf"(?<!\w){re.escape(bound)}(?!\w)")
            if len(word.findall(code)) != len(word.findall(in_imports)):
                return None
            out[alias] = node
    return out


def warm_up() -> None:
    """Do now the one-time work of the first rewrite (a worker calls it while it waits)."""
    for visitor in (AddImportsVisitor, RemoveImportsVisitor):
        _undecorated(visitor)
    _plain_gatherer()
    _can_be_told()


@cache
def _plain_gatherer() -> tuple[Any, type[cst.CSTVisitor]] | None:
    """``(LibCST's module, a matcher-free twin of the import gatherer AddImportsVisitor builds)``.

    ``AddImportsVisitor.visit_Module`` builds a private ``_GatherTopImportsBeforeStatements``
    for every module, and each one spends longer collecting its (absent) matcher
    decorators than gathering the imports.  The twin starts from the state a new
    gatherer has (asked once of LibCST itself: it must hold no matcher and only
    empty containers) and visits as a plain ``CSTVisitor``.  None when this LibCST
    differs: the usual gatherer then runs.
    """
    try:
        from libcst.codemod.visitors import _add_imports as module

        base = module._GatherTopImportsBeforeStatements
        probe = base(CodemodContext())
    except Exception:  # a LibCST without it, or built otherwise
        return None
    state = dict(vars(probe))
    containers = (set, dict, list)
    if any(isinstance(v, containers) and v for v in state.values()) or any(
        v is not None and not isinstance(v, containers) and k != "context" for k, v in state.items()
    ):
        return None

    class _PlainGatherer(base):  # type: ignore[misc,valid-type]
        def __init__(self, context: CodemodContext) -> None:
            for key, value in state.items():
                setattr(self, key, type(value)() if isinstance(value, containers) else value)
            self.context = context

        def on_visit(self, node: cst.CSTNode) -> bool:
            return cst.CSTVisitor.on_visit(self, node)

        def on_leave(self, original_node: cst.CSTNode) -> None:
            cst.CSTVisitor.on_leave(self, original_node)

        def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
            cst.CSTVisitor.on_visit_attribute(self, node, attribute)

        def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
            cst.CSTVisitor.on_leave_attribute(self, original_node, attribute)

    return module, _PlainGatherer


def _single_import(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], (cst.Import, cst.ImportFrom))
    )


def _add_imports(visitor: ContextAwareTransformer, tree: cst.Module) -> cst.Module:
    """Run ``AddImportsVisitor`` on the head of the module only.

    It reads and changes the imports at the top (after a docstring or a
    ``__strict__`` flag) and the first statement after them, nothing else, but
    walks the whole module twice to do so; the head it needs is handed to it
    and the rest of the body put back behind what it returns.
    """
    body = tree.body
    head = next((i + 1 for i in range(1, len(body)) if not _single_import(body[i])), len(body))
    plain = _plain_gatherer() if isinstance(visitor, _AddImports) else None
    usual = None
    if plain is not None:  # for this call only: LibCST stays as it was for anyone else
        usual = plain[0]._GatherTopImportsBeforeStatements
        plain[0]._GatherTopImportsBeforeStatements = plain[1]
    try:
        if head == len(body):
            return _transform(visitor, tree)
        new = _transform(visitor, tree.with_changes(body=body[:head]))
    finally:
        if plain is not None:
            plain[0]._GatherTopImportsBeforeStatements = usual
    return tree.with_changes(body=(*new.body, *body[head:]))


class MigrateBreakersCommand(_Command):
    """Applies the planned edits to one module.

    The edits come from the tree-wide plan, addressed by node position; imports
    are scheduled through ``AddImportsVisitor``/``RemoveImportsVisitor``, which
    run after the transform (an import is only removed when nothing uses it any
    more).
    """

    DESCRIPTION = "Rewrite mock circuit breakers to resilient."
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self,
        context: CodemodContext,
        plan: FilePlan,
        protect: Collection[str] = (),
        class_names: Mapping[NodeKey, Collection[str]] | None = None,
    ) -> None:
        super().__init__(context)
        self.protect = frozenset(protect)
        self.class_names = class_names or {}
        self.edits: dict[NodeKey, Edit] = {e.key: e for e in plan.edits}
        self.applied: set[NodeKey] = set()
        # a class to delete is found by where it starts: the caller may have put a
        # stand-in for its body, which ends elsewhere
        self.deletions: dict[tuple[int, int], NodeKey] = {
            e.key[1:3]: e.key for e in plan.edits if isinstance(e, DeleteClass)
        }
        for spec in plan.add_imports:
            self.add_needed_import(spec.module, spec.obj, spec.asname)
        for spec in plan.remove_imports:
            self.remove_unused_import(spec.module, spec.obj, spec.asname)

    def _edit(self, node: cst.CSTNode) -> Edit | None:
        key = _key(node, self.get_metadata(PositionProvider, node))
        if isinstance(node, cst.ClassDef):
            key = self.deletions.get(key[1:3], key)
        edit = self.edits.get(key)
        if edit is not None:
            self.applied.add(key)
        return edit

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        edit = self._edit(original_node)
        if isinstance(edit, RenameAttr):
            return updated_node.with_changes(attr=cst.Name(edit.new))
        if isinstance(edit, ReplaceName):
            return cst.Name(edit.new, lpar=updated_node.lpar, rpar=updated_node.rpar)
        return updated_node

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        edit = self._edit(original_node)
        if isinstance(edit, ReplaceName):
            return updated_node.with_changes(value=edit.new)
        return updated_node

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.BaseExpression:
        edit = self._edit(original_node)
        if isinstance(edit, ReplaceString):
            return updated_node.with_changes(value=edit.new)
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        edit = self._edit(original_node)
        if isinstance(edit, ReplaceCall):
            return _replace_call(updated_node, edit)
        if isinstance(edit, CallToAttr):
            func = updated_node.func
            if updated_node.lpar:
                return func.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)
            return func
        return updated_node

    def leave_Assign(
        self, original_node: cst.Assign, updated_node: cst.Assign
    ) -> cst.BaseSmallStatement | cst.RemovalSentinel:
        edit = self._edit(original_node)
        if isinstance(edit, AssignToCall):
            target = updated_node.targets[0].target
            assert isinstance(target, cst.Attribute)
            return cst.Expr(
                value=cst.Call(func=target.with_changes(attr=cst.Name(edit.method))),
                semicolon=updated_node.semicolon,
            )
        if isinstance(edit, DropStatement):
            return cst.RemoveFromParent()
        return updated_node

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        edit = self._edit(original_node)
        if isinstance(edit, DeleteClass):
            # Imports the class used go too, when nothing else uses them (the
            # RemoveImportsVisitor checks).  Same effect as remove_unused_import_by_node,
            # which resolves scope metadata once per name and is quadratic on big classes.
            # (The caller may name what the class uses when the tree holds a stand-in body.)
            known = self.class_names.get(edit.key)
            used = set(known) if known is not None else _names_in(original_node)
            for local, spec in _module_imports(self.module, self.context.full_package_name):
                if local in used and local not in self.protect:
                    self.remove_unused_import(spec.module, spec.obj, spec.asname)
            return cst.RemoveFromParent()
        return updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        # When the first statement went (a removed mock class), the blank lines that
        # separated it from the next one would now open the file.
        body = list(updated_node.body)
        if (
            original_node.body
            and body
            and body[0] is not original_node.body[0]
            and isinstance(self._edit(original_node.body[0]), DeleteClass)
        ):
            first = body[0]
            kept = [line for line in first.leading_lines if line.comment is not None]
            body[0] = first.with_changes(leading_lines=kept)
            return updated_node.with_changes(body=body)
        return updated_node

    def leave_List(self, original_node: cst.List, updated_node: cst.List) -> cst.BaseExpression:
        return updated_node.with_changes(elements=self._drop_elements(original_node, updated_node))

    def leave_Tuple(self, original_node: cst.Tuple, updated_node: cst.Tuple) -> cst.BaseExpression:
        elements = self._drop_elements(original_node, updated_node)
        if len(elements) == 1 and not isinstance(elements[0].comma, cst.Comma):
            elements = [elements[0].with_changes(comma=cst.Comma())]
        return updated_node.with_changes(elements=elements)

    def leave_Set(self, original_node: cst.Set, updated_node: cst.Set) -> cst.BaseExpression:
        elements = self._drop_elements(original_node, updated_node)
        if not elements:  # `{}` would be a dict
            return cst.Call(func=cst.Name("set"), lpar=updated_node.lpar, rpar=updated_node.rpar)
        return updated_node.with_changes(elements=elements)

    def _drop_elements(
        self,
        original: cst.List | cst.Tuple | cst.Set,
        updated: cst.List | cst.Tuple | cst.Set,
    ) -> list[cst.BaseElement]:
        keep: list[cst.BaseElement] = []
        dropped_last = False
        for i, (orig, new) in enumerate(zip(original.elements, updated.elements, strict=True)):
            if isinstance(self._edit(orig), DropElement):
                dropped_last = i == len(original.elements) - 1
                continue
            keep.append(new)
            dropped_last = False
        if dropped_last and keep and original.elements:
            keep[-1] = keep[-1].with_changes(comma=original.elements[-1].comma)
        return keep


def _names_in(node: cst.CSTNode) -> set[str]:
    names: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            names.add(name.value)

    node.visit(_Names())
    return names


def _module_imports(module: cst.Module, package: str | None) -> list[tuple[str, ImportSpec]]:
    """``(local name, import)`` for imports outside functions and classes."""
    out: list[tuple[str, ImportSpec]] = []

    def scan(statements: Sequence[cst.CSTNode]) -> None:
        for stmt in statements:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Import):
                        for alias in small.names:
                            local = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
                            spec = ImportSpec(alias.evaluated_name, None, alias.evaluated_alias)
                            out.append((local, spec))
                    elif isinstance(small, cst.ImportFrom) and not isinstance(
                        small.names, cst.ImportStar
                    ):
                        name = get_absolute_module_from_package_for_import(package, small)
                        if name is None:
                            continue
                        for alias in small.names:
                            spec = ImportSpec(name, alias.evaluated_name, alias.evaluated_alias)
                            out.append((alias.evaluated_alias or alias.evaluated_name, spec))
            elif isinstance(stmt, (cst.If, cst.Try)):
                scan(_bodies(stmt))

    scan(module.body)
    return out


def _bodies(stmt: cst.If | cst.Try) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = []
    blocks: list[cst.BaseSuite] = [stmt.body]
    if isinstance(stmt, cst.If):
        orelse = stmt.orelse
        while orelse is not None:
            blocks.append(orelse.body)
            orelse = orelse.orelse if isinstance(orelse, cst.If) else None
    else:
        blocks.extend(h.body for h in stmt.handlers)
        if stmt.orelse is not None:
            blocks.append(stmt.orelse.body)
        if stmt.finalbody is not None:
            blocks.append(stmt.finalbody.body)
    for block in blocks:
        if isinstance(block, cst.IndentedBlock):
            out.extend(block.body)
    return out


def _replace_call(call: cst.Call, edit: ReplaceCall) -> cst.Call:
    old = list(call.args)
    new_args: list[cst.Arg] = []
    for position, (index, keyword) in enumerate(edit.args):
        arg = old[index]
        if keyword is None:
            arg = arg.with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
        elif arg.keyword is None or arg.keyword.value != keyword:
            equal = (
                arg.equal
                if isinstance(arg.equal, cst.AssignEqual)
                else cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                )
            )
            arg = arg.with_changes(keyword=cst.Name(keyword), equal=equal)
        # keep the original layout: each position takes the comma that was there
        arg = arg.with_changes(comma=old[position].comma if position < len(old) else arg.comma)
        new_args.append(arg)
    if new_args and len(new_args) < len(old):
        new_args[-1] = new_args[-1].with_changes(comma=old[-1].comma)
    return call.with_changes(func=cst.Name(edit.func), args=new_args)


class _DropEmptyTypeChecking(_Command):
    """Removes ``if TYPE_CHECKING: pass`` blocks the import removal left behind."""

    DESCRIPTION = "Remove emptied TYPE_CHECKING blocks."

    def leave_If(
        self, original_node: cst.If, updated_node: cst.If
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if _is_empty_type_checking(updated_node):
            self.remove_unused_import("typing", "TYPE_CHECKING")
            self.remove_unused_import("typing_extensions", "TYPE_CHECKING")
            self.remove_unused_import("typing")
            return cst.RemoveFromParent()
        return updated_node


def _is_empty_type_checking(node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.If) or node.orelse is not None:
        return False
    if _dotted_tail(node.test) != "TYPE_CHECKING":
        return False
    body = node.body
    statements: Sequence[cst.CSTNode] = body.body if isinstance(body, cst.IndentedBlock) else [body]
    for stmt in statements:
        smalls = (
            stmt.body
            if isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite))
            else None
        )
        if smalls is None or not all(isinstance(s, cst.Pass) for s in smalls):
            return False
    return True


def _count_empty_type_checking(tree: cst.Module) -> int:
    count = 0

    class _Counter(cst.CSTVisitor):
        def visit_If(self, node: cst.If) -> None:
            nonlocal count
            if _is_empty_type_checking(node):
                count += 1

    tree.visit(_Counter())
    return count


def apply_edits(
    source: str,
    path: str,
    module: str,
    package: str,
    plan: FilePlan,
    *,
    protect: Collection[str] = (),
    class_names: Mapping[NodeKey, Collection[str]] | None = None,
) -> str:
    """Pass 3: apply ``plan`` to ``source`` and return the new source.

    ``protect`` names imports that must stay even if a removed class was their
    last user in the code this call sees; ``class_names`` gives, by the key of
    its ``DeleteClass`` edit, the names a deleted class uses when ``source``
    holds only a stand-in for its body.

    Raises:
        libcst.ParserSyntaxError: the source does not parse.
        RuntimeError: an edit did not find its node (the file changed in between).
    """
    tree = cst.parse_module(source)
    context = CodemodContext(
        filename=path, full_module_name=module, full_package_name=package or None
    )
    command = MigrateBreakersCommand(context, plan, protect, class_names)
    new_tree = command.transform_module(tree)
    missing = set(command.edits) - command.applied
    if missing:
        raise RuntimeError(f"{len(missing)} planned edit(s) found no node; nothing written")
    if "TYPE_CHECKING" in source and _count_empty_type_checking(
        new_tree
    ) > _count_empty_type_checking(tree):
        cleanup = _DropEmptyTypeChecking(
            CodemodContext(
                filename=path, full_module_name=module, full_package_name=package or None
            )
        )
        new_tree = cleanup.transform_module(new_tree)
    code = new_tree.code
    if not code.strip() and source.strip():
        return ""  # everything was removed: leave an empty file, not a stray newline
    return code
