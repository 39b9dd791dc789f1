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
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, NamedTuple

from ._names import MockNames

__all__ = ["ALWAYS_KEPT", "Slice", "parse_cached", "slice_source", "split_lines"]

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
        vanishing: placeholders that may be gone after the edits (class bodies
            blanked whole, deleted with their class).
        tree: ``ast.parse(text)``, built from the whole module's tree (the kept
            statements' own nodes, a placeholder's parsed on its own), so the
            analysis need not parse the slice again; None when not built.
    """

    text: str
    kept: int
    total: int
    blanked_names: frozenset[str]
    stand_ins: tuple[tuple[str, str], ...] = ()
    vanishing: frozenset[str] = frozenset()
    tree: ast.Module | None = field(default=None, compare=False, repr=False)

    def restore(self, code: str) -> str | None:
        """Put the original statements back in place of their placeholders.

        Returns None when a placeholder is not found exactly once, or not at
        all unless it stood for the body of a class the edits delete (the caller
        then works on the whole file instead).
        """
        for placeholder, original in self.stand_ins:
            count = code.count(placeholder)
            if count == 0 and placeholder in self.vanishing:
                continue
            if count != 1:
                return None
            code = code.replace(placeholder, original)
        return code


def _compound_bodies(node: ast.stmt) -> Iterator[ast.stmt]:
    """Statements nested in if/try/with/for/while/match blocks (not in defs or classes)."""
    for name in ("body", "orelse", "finalbody"):
        yield from getattr(node, name, ())
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


@lru_cache(maxsize=128)
def parse_cached(text: str) -> tuple[ast.Module, list[str]] | None:
    """``ast`` tree and lines of a module; None when it does not parse (cached: the
    analysis and the rewrite slice one text several times)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return tree, split_lines(text)


@dataclass
class _Statements:
    """The statements of one block, with what slicing decides on."""

    nodes: list[ast.stmt]
    spans: list[tuple[int, int]]
    idents: list[set[str]]
    imports: list[bool]
    binds: list[set[str]]

    @classmethod
    def of(cls, nodes: list[ast.stmt], lines: list[str]) -> _Statements:
        out = cls(nodes, [], [], [], [])
        for node in nodes:
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
            end = node.end_lineno or node.lineno
            out.spans.append((start, end))
            out.idents.append(set(_IDENT_RE.findall("".join(lines[start - 1 : end]))))
            has_import, bound = _facts(node)
            out.imports.append(has_import)
            out.binds.append(bound)
        return out

    def groups(self) -> list[tuple[int, int, list[int]]]:
        """Statements sharing a line (``a = 1; b = 2``), kept or blanked together."""
        groups: list[tuple[int, int, list[int]]] = []
        for i, (start, end) in enumerate(self.spans):
            if groups and start <= groups[-1][1]:
                first, last, members = groups[-1]
                groups[-1] = (first, max(last, end), [*members, i])
            else:
                groups.append((start, end, [i]))
        return groups

    def mentions(self, i: int, wanted: Collection[str], names: MockNames) -> bool:
        idents = self.idents[i]
        return bool(
            idents & wanted  # type: ignore[operator]
            or self.binds[i] & wanted  # type: ignore[operator]
            or any(names.matches(n) for n in idents if names.extra or "breaker" in n.lower())
        )


class _Blanker:
    """Replaces line ranges by placeholders and remembers how to put them back."""

    def __init__(self, text: str, lines: list[str]) -> None:
        self.lines = lines
        self.out = list(lines)
        self.token = _unused_token(text)
        self.stand_ins: list[tuple[str, str]] = []
        self.vanishing: set[str] = set()
        self.count = 0

    def blank(
        self, start: int, end: int, *, number: int | None = None, vanish: bool = False
    ) -> None:
        # One statement over the same lines: `_resilient_slice_N_ = """<newlines>"""`
        # (a single string token, so the parser builds no node per blank line),
        # indented as the first line was.
        lines = self.lines
        first = lines[start - 1]
        indent = first[: len(first) - len(first.lstrip(" \t\f"))]
        endings = [ln[len(ln.rstrip("\r\n")) :] for ln in lines[start - 1 : end]]
        name = f"{self.token}{self.count if number is None else number}_"
        self.count += 1
        if len(endings) == 1:
            stand_in = f'{indent}{name} = ""{endings[0]}'
        else:
            stand_in = f'{indent}{name} = """{"".join(endings[:-1])}"""{endings[-1]}'
        self.stand_ins.append((stand_in, "".join(lines[start - 1 : end])))
        if vanish:
            self.vanishing.add(stand_in)
        self.out[start - 1] = stand_in
        for ln in range(start + 1, end + 1):
            self.out[ln - 1] = ""


def slice_source(
    text: str,
    interesting: Collection[str],
    names: MockNames,
    *,
    force_lines: Collection[int] = (),
    follow: bool = True,
    removals: Collection[int] = (),
    deleted: Collection[tuple[int, int]] = (),
) -> Slice:
    """Blank the statements of ``text`` that cannot matter (see the module doc).

    Args:
        text: the module's source.
        interesting: carrier names (besides mock breaker names, always interesting).
        names: the mock-breaker name patterns.
        force_lines: keep the statements covering these lines.
        follow: also keep what kept statements lead to (names they bind used
            elsewhere, assignments of names they use), as the analysis needs to
            follow values; only top-level statements are blanked.  Applying
            edits (``False``) needs only the statements that name something in
            ``interesting`` (the statements an edit touches come in through
            ``force_lines``, and every use of an import that may be removed names
            it), and blanks statements inside kept classes and functions too.
        removals: (``follow=False``) lines of statements an edit removes: a
            compound statement just above one is kept, as the comments between
            them belong to the one or the other by its indentation.
        deleted: (``follow=False``) ``(first, last)`` lines of classes an edit
            deletes: their bodies are blanked whole, and those placeholders may
            not come back (:attr:`Slice.vanishing`).

    Returns:
        The slice; the whole text when it does not parse with ``ast`` (LibCST then
        reports the error itself).
    """
    parsed = parse_cached(text)
    if parsed is None:
        return Slice(text, 0, 0, frozenset())
    tree, lines = parsed
    block = _Statements.of(tree.body, lines)
    statements = block.nodes
    spans, idents, imports, binds = block.spans, block.idents, block.imports, block.binds
    wanted = set(interesting) | ALWAYS_KEPT
    forced = set(force_lines)
    keep = [False] * len(statements)
    frontier: set[str] = set()
    for i, node in enumerate(statements):
        start, end = spans[i]
        if block.mentions(i, wanted, names) or any(start <= ln <= end for ln in forced):
            keep[i] = True
            frontier |= binds[i]  # also an alias: `from app.cb import MockBreaker as CB`
        elif imports[i] or (
            i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            keep[i] = True  # names must resolve; the docstring stays first
        elif i == 0 and not follow and "__strict__" in binds[i]:
            keep[i] = True  # AddImportsVisitor never inserts above a leading `__strict__ = ...`
    definitions = [
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in statements
    ]
    while follow:
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
    groups = block.groups()
    if not follow:
        _keep_above_removals(block, groups, keep, removals)
    blanker = _Blanker(text, lines)
    blanked: set[str] = set()
    body: list[ast.stmt] | None = [] if follow else None  # the slice's tree, as it goes
    for number, (start, end, members) in enumerate(groups):
        if any(keep[i] for i in members):
            if body is not None:
                body.extend(statements[i] for i in members)
            continue
        for i in members:
            blanked |= idents[i]
        blanker.blank(start, end, number=number)
        if body is not None:
            stand_in = _stand_in_node(blanker.stand_ins[-1][0], start)
            body = None if stand_in is None else [*body, stand_in]
    if not follow:
        blanker.count = len(groups)
        _blank_kept(statements, keep, _Inside(blanker, wanted, names, forced, removals, deleted))
    return Slice(
        "".join(blanker.out),
        sum(keep),
        len(statements),
        frozenset(blanked),
        tuple(blanker.stand_ins),
        frozenset(blanker.vanishing),
        tree if not blanker.stand_ins else _module(body),
    )


def _module(body: list[ast.stmt] | None) -> ast.Module | None:
    return None if body is None else ast.Module(body=body, type_ignores=[])


def _stand_in_node(stand_in: str, line: int) -> ast.stmt | None:
    """The node ``ast.parse`` gives a placeholder that starts at ``line``.

    Built directly for a placeholder at the start of its line (``compile`` costs
    some 0.1 ms a call whatever it parses: more than the rest of slicing); parsed
    on its own and moved to its line otherwise.  None if it does not stand alone
    (indented): the caller parses the whole slice then.
    """
    built = _built_stand_in(stand_in, line)
    if built is not None:
        return built
    try:
        node = ast.parse(stand_in).body[0]
    except (SyntaxError, ValueError):
        return None
    return ast.increment_lineno(node, line - 1)


_STAND_IN_RE: Final = re.compile(r'([A-Za-z_]\w*) = (""|"""([\r\n]*)""")(?:\r\n|\r|\n)?\Z')


def _built_stand_in(stand_in: str, line: int) -> ast.Assign | None:
    """A placeholder at column 0 (an empty string, or line breaks in triple quotes), as
    ``ast`` parses it; None for any other text."""
    match = _STAND_IN_RE.match(stand_in)
    if match is None:
        return None
    name, literal, breaks = match.groups()
    count = len(split_lines(breaks)) if breaks else 0  # ("\r\n" is one line break)
    end_line = line + count
    value_col = len(name) + 3
    end_col = 3 if count else value_col + len(literal)
    target = ast.Name(id=name, ctx=ast.Store(), lineno=line, col_offset=0)
    target.end_lineno, target.end_col_offset = line, len(name)
    value = ast.Constant(
        value="\n" * count,
        kind=None,
        lineno=line,
        col_offset=value_col,
        end_lineno=end_line,
        end_col_offset=end_col,
    )
    return ast.Assign(
        targets=[target],
        value=value,
        type_comment=None,
        lineno=line,
        col_offset=0,
        end_lineno=end_line,
        end_col_offset=end_col,
    )


def _keep_above_removals(
    block: _Statements,
    groups: list[tuple[int, int, list[int]]],
    keep: list[bool],
    removals: Collection[int],
) -> None:
    """Keep a compound statement whose next statement an edit removes (its footer decides)."""
    for g in range(len(groups) - 1):
        _, _, members = groups[g]
        start, end, _ = groups[g + 1]
        compound = any(
            hasattr(block.nodes[i], "body") or hasattr(block.nodes[i], "cases") for i in members
        )
        if compound and any(start <= ln <= end for ln in removals):
            for i in members:
                keep[i] = True


class _Inside(NamedTuple):
    """What blanking inside kept classes and functions needs (``follow=False``)."""

    blanker: _Blanker
    wanted: set[str]
    names: MockNames
    forced: set[int]
    removals: Collection[int]
    deleted: Collection[tuple[int, int]]


def _blank_kept(nodes: Sequence[ast.stmt], keep: Sequence[bool], inside: _Inside) -> None:
    """:func:`_blank_inside` each of ``nodes`` that is kept."""
    for i, node in enumerate(nodes):
        if keep[i]:
            _blank_inside(node, inside)


def _blank_inside(node: ast.stmt, inside: _Inside) -> None:
    """Blank what cannot matter inside a kept class or function (``follow=False``)."""
    blanker, wanted, names, forced, removals, deleted = inside
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return  # other blocks stay whole (`if TYPE_CHECKING:` must keep its shape)
    body = node.body
    lines = blanker.lines
    first = body[0]
    head = lines[first.lineno - 1][: first.col_offset]
    if head.strip() or (first.lineno == node.lineno):
        return  # `class A: x = 1` (one line): nothing to gain
    inner = _Statements.of(body, lines)
    first_line = inner.spans[0][0]
    last_line = max(end for _, end in inner.spans)
    if isinstance(node, ast.ClassDef) and (node.lineno, node.end_lineno) in deleted:
        if not any(first_line <= ln <= last_line for ln in forced):
            blanker.blank(first_line, last_line, vanish=True)  # goes with the class
        return
    keep = [
        inner.mentions(i, wanted, names)
        or inner.imports[i]
        or any(start <= ln <= end for ln in forced)
        for i, (start, end) in enumerate(inner.spans)
    ]
    groups = inner.groups()
    _keep_above_removals(inner, groups, keep, removals)
    for start, end, members in groups:
        if not any(keep[i] for i in members):
            blanker.blank(start, end)
    _blank_kept(body, keep, inside)


def _unused_token(text: str) -> str:
    for n in range(1000):
        token = f"_resilient_slice_{n}_"
        if token not in text:
            return token
    return "_resilient_slice_x_"  # pragma: no cover - a text naming 1000 tokens
