"""Pass 3 of ``resilient migrate``: apply the planned edits to one module with LibCST.

:class:`MigrateBreakersCommand` is a ``CSTTransformer``.  Edits are addressed by
the position their node had in the source the analysis read, so they are all
applied in one traversal (a second traversal would see moved positions); each
``leave_*`` method handles the rewrites of its node type:

- ``Call``: ``MockBreaker(name, ...)`` -> ``get_breaker(name, ...)``, and
  ``b.is_open()`` -> ``b.is_open``;
- ``Attribute``: ``b.call`` -> ``b.acall``;
- ``Assign``: ``b.is_open = True`` -> ``b.trip()`` (``False`` -> ``b.reset()``),
  counter resets next to it dropped;
- ``Name``/``Attribute``/``SimpleString`` in annotations -> ``CircuitBreaker``;
- ``ClassDef``: an unreferenced mock class removed (and imports only it used);
- ``List``/``Tuple``/``Set``: its name dropped from ``__all__``.

Imports are scheduled during the traversal and handled after it by
:mod:`._codemod_imports` (what LibCST's ``AddImportsVisitor`` and
``RemoveImportsVisitor`` do, without loading ``libcst.codemod``); an import is
only removed when nothing in the module uses it any more.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import libcst as cst
from libcst.helpers import get_absolute_module_from_package_for_import
from libcst.metadata import BaseMetadataProvider, MetadataWrapper, ProviderT
from libcst.metadata.position_provider import PositionProvidingCodegenState

from ._codemod_imports import add_imports, remove_imports
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


Span = tuple[int, int, int, int]


def _key(node: cst.CSTNode, where: Span) -> NodeKey:
    return (type(node).__name__, *where)


class _SpanState(PositionProvidingCodegenState):
    """LibCST's ``PositionProvider`` bookkeeping, done with tuples.

    The same walk through the code LibCST generates, recording the same start
    and end for every node (``PositionProvider``'s syntactic positions), as
    ``(start line, start column, end line, end column)``: no ``CodeRange``
    objects, no regular expression for tokens without a line break, no
    generator-based context manager per node.  It took half of a rewrite's time.
    """

    __slots__ = ()

    def _update_position(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            super()._update_position(value)
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        stack: list[tuple[int, int]] = self._stack  # type: ignore[assignment]
        stack.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        stack: list[tuple[int, int]] = self._stack  # type: ignore[assignment]
        line, column = stack.pop()
        computed = _spans(self)
        if node not in computed:  # (a syntactic position already recorded stays)
            computed[node] = (line, column, self.line, self.column)

    def record_syntactic_position(  # type: ignore[override]
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> _Syntactic:
        return _Syntactic(self, node, start_node, end_node)


class _Syntactic:
    """``record_syntactic_position``'s context: the node's span is what it encloses,
    or starts where ``start_node`` starts and ends where ``end_node`` ends."""

    __slots__ = ("end_node", "node", "start", "start_node", "state")

    def __init__(
        self,
        state: _SpanState,
        node: cst.CSTNode,
        start_node: cst.CSTNode | None,
        end_node: cst.CSTNode | None,
    ) -> None:
        self.state = state
        self.node = node
        self.start_node = start_node
        self.end_node = end_node
        self.start = (0, 0)

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exc: object) -> None:
        state = self.state
        computed = _spans(state)
        start = computed[self.start_node][:2] if self.start_node is not None else self.start
        end = (state.line, state.column)
        if self.end_node is not None:
            end = computed[self.end_node][2:]
        computed[self.node] = (*start, *end)


def _spans(state: _SpanState) -> dict[cst.CSTNode, Span]:
    """The provider's table of spans (typed by LibCST for ``CodeRange`` values)."""
    computed: dict[cst.CSTNode, Span] = state.provider._computed  # type: ignore[assignment]
    return computed


class SpanProvider(BaseMetadataProvider[Span]):
    """Each node's ``PositionProvider`` range as ``(line, column, end line, end column)``."""

    def _gen_impl(self, module: cst.Module) -> None:
        provider: Any = self  # (LibCST types the state's provider for CodeRange values)
        state = _SpanState(
            default_indent=module.default_indent,
            default_newline=module.default_newline,
            provider=provider,
        )
        module._codegen(state)


def _dotted_tail(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


class _Command(cst.CSTTransformer):
    """A transformer that schedules imports to add and (when unused) remove afterwards.

    :meth:`transform_module` runs it over a module (with the metadata it
    declares), then adds the scheduled imports, then removes the scheduled ones
    nothing uses any more: the order of LibCST's ``CodemodCommand``.
    """

    METADATA_DEPENDENCIES: ClassVar[tuple[ProviderT, ...]] = ()

    def __init__(self, package: str | None) -> None:
        super().__init__()
        self.package = package
        self.to_add: list[ImportSpec] = []
        self.to_remove: list[ImportSpec] = []
        self.module = cst.Module(body=())

    def add_needed_import(
        self, module: str, obj: str | None = None, asname: str | None = None
    ) -> None:
        self.to_add.append(ImportSpec(module, obj, asname))

    def remove_unused_import(
        self, module: str, obj: str | None = None, asname: str | None = None
    ) -> None:
        self.to_remove.append(ImportSpec(module, obj, asname))

    def visit_Module(self, node: cst.Module) -> None:
        self.module = node

    def transform_module(self, tree: cst.Module) -> cst.Module:
        # the tree comes fresh from the parser or from these transforms (which never
        # put one node in two places): LibCST's defensive deep copy is not needed
        if self.METADATA_DEPENDENCIES:
            tree = MetadataWrapper(tree, unsafe_skip_copy=True).visit(self)
        else:
            tree = tree.visit(self)
        if self.to_add:
            tree = add_imports(tree, self.to_add, self.package)
        if self.to_remove:
            tree = remove_imports(tree, self.to_remove, self.package)
        return tree


def warm_up() -> None:
    """Do now the one-time work of the first rewrite (a worker calls it while it waits)."""
    source = "from app import A, B\n\nx: A = B()\n"
    specs = [ImportSpec("app", "A"), ImportSpec("app", "B")]
    tree = remove_imports(cst.parse_module(source), specs, None)
    add_imports(tree, [ImportSpec("resilient", "get_breaker")], None)


class MigrateBreakersCommand(_Command):
    """Applies the planned edits to one module.

    The edits come from the tree-wide plan, addressed by node position; imports
    are scheduled during the transform and added or removed after it
    (:mod:`._codemod_imports`: an import is only removed when nothing uses it any
    more).
    """

    METADATA_DEPENDENCIES = (SpanProvider,)

    def __init__(
        self,
        package: str | None,
        plan: FilePlan,
        protect: Collection[str] = (),
        class_names: Mapping[NodeKey, Collection[str]] | None = None,
    ) -> None:
        super().__init__(package)
        self.protect = frozenset(protect)
        self.class_names = class_names or {}
        self.edits: dict[NodeKey, Edit] = {e.key: e for e in plan.edits}
        self.applied: set[NodeKey] = set()
        # a class to delete is found by where it starts: the caller may have put a
        # stand-in for its body, which ends elsewhere
        self.deletions: dict[tuple[int, int], NodeKey] = {
            e.key[1:3]: e.key for e in plan.edits if isinstance(e, DeleteClass)
        }
        self.edit_lines = sorted({e.key[1] for e in plan.edits})
        for spec in plan.add_imports:
            self.add_needed_import(spec.module, spec.obj, spec.asname)
        for spec in plan.remove_imports:
            self.remove_unused_import(spec.module, spec.obj, spec.asname)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.BaseStatement):
            # a statement where no edit starts: nothing inside it changes (its own
            # leave_* method still runs)
            first, _, last, _ = self.get_metadata(SpanProvider, node)
            i = bisect.bisect_left(self.edit_lines, first)
            if i == len(self.edit_lines) or self.edit_lines[i] > last:
                return False
        return super().on_visit(node)

    def _edit(self, node: cst.CSTNode) -> Edit | None:
        key = _key(node, self.get_metadata(SpanProvider, node))
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
            # Imports the class used go too, when nothing else uses them (the import
            # removal checks).  Same effect as LibCST's remove_unused_import_by_node,
            # which resolves scope metadata once per name and is quadratic on big classes.
            # (The caller may name what the class uses when the tree holds a stand-in body.)
            known = self.class_names.get(edit.key)
            used = set(known) if known is not None else _names_in(original_node)
            for local, spec in _module_imports(self.module, self.package):
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
        def on_visit(self, node: cst.CSTNode) -> bool:
            # an `if` is a statement: expressions and simple statements hold none
            if isinstance(node, (cst.BaseExpression, cst.BaseSmallStatement)):
                return False
            return super().on_visit(node)

        def visit_If(self, node: cst.If) -> None:
            nonlocal count
            if _is_empty_type_checking(node):
                count += 1

    tree.visit(_Counter())
    return count


def apply_edits(
    source: str,
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
    command = MigrateBreakersCommand(package or None, plan, protect, class_names)
    new_tree = command.transform_module(tree)
    missing = set(command.edits) - command.applied
    if missing:
        raise RuntimeError(f"{len(missing)} planned edit(s) found no node; nothing written")
    if "TYPE_CHECKING" in source and _count_empty_type_checking(
        new_tree
    ) > _count_empty_type_checking(tree):
        new_tree = _DropEmptyTypeChecking(package or None).transform_module(new_tree)
    code = new_tree.code
    if not code.strip() and source.strip():
        return ""  # everything was removed: leave an empty file, not a stray newline
    return code
