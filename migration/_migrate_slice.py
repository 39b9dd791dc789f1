"""Cut a module down to the top-level statements the codemod's analysis can need.

LibCST's scope and qualified-name metadata costs far more than parsing, and
grows with the size of the module, while the mock breaker in a 2,000-line
service module is usually a handful of statements.  Before LibCST reads a
module, every top-level statement that cannot matter is replaced by a
placeholder assignment spanning the same lines (``_resilient_slice_3_ = "..."``, a
triple-quoted string holding only the line breaks),
so every kept node keeps its line and column: edits found on the slice apply to
the whole file, and after a rewrite :meth:`Slice.restore` puts the original
statements back in place of the placeholders.

A top-level statement is kept when it

- holds an import outside functions and classes (names must resolve);
- mentions, anywhere in its text (comments and strings included), a mock
  breaker name, a name through which other modules reach one (a manager, a
  factory: the run's *carriers*), or one of the names the rewrite adds;
- mentions a name bound by a kept statement (transitively), since it may read a
  breaker out of it.

A statement that is blanked mentions none of these, so no value it computes can
be or hold a mock breaker as far as the analysis follows values.  Standard
library only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Final

from ._names import MockNames

__all__ = ["ALWAYS_KEPT", "Slice", "slice_source", "split_lines"]

#: Names the rewrite may introduce: a statement binding one must be seen.
ALWAYS_KEPT: Final = frozenset(
    {
        "get_breaker",
        "resilient_get_breaker",
        "CircuitBreaker",
        "ResilientCircuitBreaker",
        "__all__",
    }
)

_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LINE_RE: Final = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split only where Python's tokenizer splits."""
    return _LINE_RE.findall(text)


@dataclass(frozen=True, slots=True)
class Slice:
    """A module with the statements that cannot matter blanked out.

    Attributes:
        text: the source to work on; every kept statement is where it was.
        kept: top-level statements kept.
        total: top-level statements in the module.
        blanked_names: every identifier in the blanked statements, so a caller
            can tell when a name becoming interesting later needs a new slice.
        stand_ins: ``(placeholder, original text)`` pairs for :meth:`restore`.
    """

    text: str
    kept: int
    total: int
    blanked_names: frozenset[str]
    stand_ins: tuple[tuple[str, str], ...] = ()

    def restore(self, code: str) -> str | None:
        """Put the original statements back in place of their placeholders.

        Returns None when a placeholder is not found exactly once (the caller
        then works on the whole file instead).
        """
        for placeholder, original in self.stand_ins:
            if code.count(placeholder) != 1:
                return None
            code = code.replace(placeholder, original)
        return code


def _compound_bodies(node: ast.stmt) -> Iterator[ast.stmt]:
    """Statements nested in if/try/with/for/while/match blocks (not in defs or classes)."""
    for field in ("body", "orelse", "finalbody"):
        yield from getattr(node, field, ())
    for handler in getattr(node, "handlers", ()):
        yield from handler.body
    for case in getattr(node, "cases", ()):
        yield from case.body


def _walk_statements(node: ast.stmt) -> Iterator[ast.stmt]:
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return
    for child in _compound_bodies(node):
        yield from _walk_statements(child)


def _target_names(target: ast.AST) -> Iterator[str]:
    for sub in ast.walk(target):
        if isinstance(sub, ast.Name):
            yield sub.id


def _facts(node: ast.stmt) -> tuple[bool, set[str]]:
    """(holds a module-level import, names it binds at module level)."""
    has_import = False
    bound: set[str] = set()
    for stmt in _walk_statements(node):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            has_import = True
            for alias in stmt.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                bound.update(_target_names(target))
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            bound.update(_target_names(stmt.target))
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    bound.update(_target_names(item.optional_vars))
        elif isinstance(stmt, ast.Global):
            bound.update(stmt.names)
    return has_import, bound


def slice_source(
    text: str,
    interesting: Collection[str],
    names: MockNames,
    *,
    force_lines: Collection[int] = (),
) -> Slice:
    """Blank the top-level statements of ``text`` that cannot matter (see the module doc).

    Args:
        text: the module's source.
        interesting: carrier names (besides mock breaker names, always interesting).
        names: the mock-breaker name patterns.
        force_lines: keep the statements covering these lines.

    Returns:
        The slice; the whole text when it does not parse with ``ast`` (LibCST then
        reports the error itself).
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Slice(text, 0, 0, frozenset())
    lines = split_lines(text)
    statements = tree.body
    spans: list[tuple[int, int]] = []
    idents: list[set[str]] = []
    imports: list[bool] = []
    binds: list[set[str]] = []
    for node in statements:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        end = node.end_lineno or node.lineno
        spans.append((start, end))
        idents.append(set(_IDENT_RE.findall("".join(lines[start - 1 : end]))))
        has_import, bound = _facts(node)
        imports.append(has_import)
        binds.append(bound)
    wanted = set(interesting) | ALWAYS_KEPT
    forced = set(force_lines)
    keep = [False] * len(statements)
    frontier: set[str] = set()
    for i, node in enumerate(statements):
        start, end = spans[i]
        mentions = (
            idents[i] & wanted
            or binds[i] & wanted
            or any(names.matches(n) for n in idents[i] if names.extra or "breaker" in n.lower())
        )
        if mentions or any(start <= ln <= end for ln in forced):
            keep[i] = True
            frontier |= binds[i]  # also an alias: `from app.cb import MockBreaker as CB`
        elif imports[i] or (
            i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            keep[i] = True  # names must resolve; the docstring stays first
    definitions = [
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in statements
    ]
    while True:
        # statements that use a name a kept statement binds (they may read a breaker)
        changed = False
        for i in range(len(statements)):
            if not keep[i] and idents[i] & frontier:
                keep[i] = changed = True
                frontier |= binds[i]
        # module-level assignments that bind a name kept code uses (`_BREAKERS = {}`
        # filled by a kept function): the names must resolve to the same binding
        used: set[str] = set()
        for i in range(len(statements)):
            if keep[i]:
                used |= idents[i]
        for i in range(len(statements)):
            if not keep[i] and not definitions[i] and binds[i] & used:
                keep[i] = changed = True
                frontier |= binds[i]
        if not changed:
            break
    # Statements sharing a line (`a = 1; b = 2`) are kept or blanked together.
    groups: list[tuple[int, int, list[int]]] = []
    for i, (start, end) in enumerate(spans):
        if groups and start <= groups[-1][1]:
            first, last, members = groups[-1]
            groups[-1] = (first, max(last, end), [*members, i])
        else:
            groups.append((start, end, [i]))
    out = list(lines)
    blanked: set[str] = set()
    stand_ins: list[tuple[str, str]] = []
    token = _unused_token(text)
    for number, (start, end, members) in enumerate(groups):
        if any(keep[i] for i in members):
            continue
        for i in members:
            blanked |= idents[i]
        # One statement over the same lines: `_resilient_slice_N_ = """<newlines>"""`
        # (a single string token, so the parser builds no node per blank line).
        endings = [ln[len(ln.rstrip("\r\n")) :] for ln in lines[start - 1 : end]]
        name = f"{token}{number}_"
        if len(endings) == 1:
            stand_in = f'{name} = ""{endings[0]}'
        else:
            stand_in = f'{name} = """{"".join(endings[:-1])}"""{endings[-1]}'
        stand_ins.append((stand_in, "".join(lines[start - 1 : end])))
        out[start - 1] = stand_in
        for ln in range(start + 1, end + 1):
            out[ln - 1] = ""
    return Slice("".join(out), sum(keep), len(statements), frozenset(blanked), tuple(stand_ins))


def _unused_token(text: str) -> str:
    for n in range(1000):
        token = f"_resilient_slice_{n}_"
        if token not in text:
            return token
    return "_resilient_slice_x_"  # pragma: no cover - a text naming 1000 tokens
