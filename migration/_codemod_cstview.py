"""A LibCST view of the analysis' module model, to check it against LibCST's providers.

The codemod analyses modules with :mod:`ast` (:class:`._codemod_scope.Parsed`) and
relies on it answering as LibCST's metadata would.  :class:`_Parsed` shows the same
answers on a LibCST tree: :meth:`_Parsed.fqn_names` takes a ``libcst.Name`` and
returns what the ast model says for that name, so a test can compare it, name by
name, with ``FullyQualifiedNameProvider``.  Not used by the codemod itself.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import cast

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from ._codemod_scope import Parsed

__all__ = ["_Parsed", "_Walker"]


class _Parsed:
    """One module, parsed by LibCST (``tree``) and by ``ast`` (the model under check)."""

    def __init__(self, source: str, path: str, module: str, package: str) -> None:
        self.path = path
        self.module = module
        self.package = package
        self.tree = cst.parse_module(source)
        wrapper = MetadataWrapper(self.tree, unsafe_skip_copy=True)
        self.positions = cast("Mapping[cst.CSTNode, CodeRange]", wrapper.resolve(PositionProvider))
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self.model = Parsed(source, path, module, package)
        self._by_start: dict[tuple[int, int], list[ast.AST]] = {}
        for node in ast.walk(self.model.tree):
            if isinstance(node, (ast.Name, ast.arg)) or (
                isinstance(node, ast.Constant)
                and (node.value is None or node.value is True or node.value is False)
            ):
                self._by_start.setdefault(self.model.start(node), []).append(node)
            elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                self._by_start.setdefault(self._name_start(node), []).append(node)

    def _name_start(
        self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    ) -> tuple[int, int]:
        line, col = self.model.start(node)
        text = self.model.lines[line - 1]
        keyword = "class" if isinstance(node, ast.ClassDef) else "def"
        at = text.index(keyword, col) + len(keyword)
        while text[at] in " \t\f":
            at += 1
        return line, at

    def covers(self, node: cst.CSTNode) -> bool:
        """Whether the ast model has this name (it has no node for ``except E as e``'s ``e``,
        a pattern's captures, ``global`` names: names the analysis never looks up)."""
        where = self.positions.get(node)
        return (
            where is not None
            and isinstance(node, cst.Name)
            and (where.start.line, where.start.column) in self._by_start
        )

    def fqn_names(self, node: cst.CSTNode) -> list[str]:
        """What the ast model gives for the name at ``node``'s position ([] if it has none)."""
        where = self.positions.get(node)
        if where is None or not isinstance(node, cst.Name):
            return []
        for candidate in self._by_start.get((where.start.line, where.start.column), ()):
            if isinstance(candidate, ast.Name) and candidate.id == node.value:
                return self.model.fqn_names(candidate)
            if isinstance(candidate, ast.Constant) and str(candidate.value) == node.value:
                return [f"builtins.{node.value}"]  # True, False, None: always the builtins
            if isinstance(candidate, ast.arg) and candidate.arg == node.value:
                return self.model.fqn_names(candidate)
            if getattr(candidate, "name", None) == node.value:
                return self.model.fqn_names(
                    cast("ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef", candidate)
                )
        return []


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
