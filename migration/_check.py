"""The ``resilient check`` guard: find mock breakers in production code with ``ast``.

Standard library only (never libcst, redis or httpx), so the pre-commit hook is
fast and light.  Each file is read as bytes and searched with cheap substring
tests first; only a file that could hold a finding is parsed.

Rules (see :data:`resilient.migration._diagnostics.RULES`):

- RES000 ``unparsable-file``: a file that cannot be read, decoded or parsed.
- RES001 ``mock-breaker-class``: a mock breaker class defined.
- RES002 ``mock-breaker-usage``: a mock breaker imported, referenced,
  instantiated, looked up by name (``getattr``), patched in, re-exported
  (``__all__``) or named in an annotation (also a string annotation).
- RES003 ``unittest-mock-breaker``: a ``unittest.mock`` object standing in for a
  breaker.
- RES004 ``breaker-without-recovery`` (warning): a class that opens when a call
  fails and has no time-based way back to closed.
- RES005 ``unused-suppression``: a ``# resilient: ignore[...]`` that suppresses nothing.
- RES006 ``pass-through-breaker`` (warning): a breaker stand-in defined when the
  breaker library is missing (``except ImportError:``, an availability flag).
"""

from __future__ import annotations

import ast
import bisect
import functools
import io
import itertools
import marshal
import os
import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence

from ._diagnostics import RULES, Finding
from ._names import MockNames
from ._record import Frozen

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Any, Final, NamedTuple

    from ._diagnostics import Severity

__all__ = [
    "CheckOptions",
    "check_file",
    "check_files",
    "check_source",
    "default_jobs",
    "needs_parse",
    "read_bytes",
]

_O_RDONLY: Final = os.O_RDONLY | getattr(os, "O_BINARY", 0)

_SUPPRESSION_RE: Final = re.compile(
    r"#\s*resilient\s*:\s*ignore\b(?:\[(?P<codes>[^\]]*)\])?(?P<reason>[^#]*)", re.IGNORECASE
)
_CODE_RE: Final = re.compile(r"RES\d{3}")
# RES004's prefilter: an assignment that can open a breaker (lower-cased text).
_OPENING_RE: Final = re.compile(
    rb"(?:open\w*|state|status|mode)\s*(?::[^=\n]*)?=\s*(?:true\b|[\w.]*open(?:ed)?\b|[\"']open)"
)
_IDENT_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")
_BREAKER_DEF_RE: Final = re.compile(rb"(?:class|def)\s+\w*(?:breaker|circuit)")
_SPACE_BYTES: Final = frozenset(b" \t\n\r\f\v")  # ``\s`` in a bytes pattern
_SUPPRESSION_BYTES_RE: Final = re.compile(rb"#\s*resilient\s*:\s*ignore")
# Lines worth visiting in a parsed file (lower-cased needles).
_LINE_NEEDLES: Final = (
    b"breaker",
    b"circuit",
    b"mock",
    b"patch",
    b"autospec",
    b"attr(",
    b"__all__",
    b"import",
    b"locate",
    b"lambda",
    b"nullcontext",
)

_MOCK_MODULES: Final = frozenset({"unittest.mock", "mock"})
_MOCK_FACTORIES: Final = frozenset(
    {
        "Mock",
        "MagicMock",
        "AsyncMock",
        "NonCallableMock",
        "NonCallableMagicMock",
        "create_autospec",
    }
)
# Recognised even when not imported (a star import or a re-export).
_BARE_MOCK_FACTORIES: Final = frozenset(
    {"MagicMock", "AsyncMock", "NonCallableMagicMock", "create_autospec"}
)
_LOOKUP_FUNCS: Final = frozenset({"getattr", "hasattr", "setattr", "delattr"})
_IMPORT_BY_NAME_FUNCS: Final = frozenset(
    {"import_module", "import_string", "locate", "import_from_string", "import_object"}
)
_CLOCK_ATTRS: Final = frozenset(
    {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns"}
)
_CLOCK_NAMES: Final = frozenset(
    {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time_ns"}
)
_TIMER_ATTRS: Final = frozenset(
    {"now", "utcnow", "today", "call_later", "call_at", "Timer", "sleep", "timedelta"}
)
_TIMEISH_RE: Final = re.compile(
    r"timeout|recovery|cooldown|cool_down|elapsed|deadline|retry_after|opened_at|"
    r"open_until|_until|expires|expiry|reset_after|reset_at|since|last_failure_time",
    re.IGNORECASE,
)
_FLAG_RE: Final = re.compile(
    r"^_*(?:has|have|is|use|with|enable)_|available|installed|enabled|present|_ok$",
    re.IGNORECASE,
)
_FAILURE_FUNC_RE: Final = re.compile(r"fail|error|exception|exc\b", re.IGNORECASE)
_FAILURE_NAME_RE: Final = re.compile(r"fail|error|err_|exc|count|threshold", re.IGNORECASE)
_OPEN_TOKENS: Final = frozenset({"open", "opened"})
_STATE_TOKENS: Final = frozenset({"state", "status", "mode"})


class CheckOptions(Frozen):
    """What to look for.

    Attributes:
        names: which identifiers are mock breakers (default: the built-in patterns).
        strict: RES004 and RES006 are errors instead of warnings.

    Immutable; equal (and hashed) by both.  (Written out rather than a frozen
    dataclass: ``dataclasses`` would cost the pre-commit hook ~10 ms to import.)
    """

    _fields = ("names", "strict")
    names: MockNames
    strict: bool

    def __init__(self, names: MockNames | None = None, strict: bool = False) -> None:
        object.__setattr__(self, "names", MockNames() if names is None else names)
        object.__setattr__(self, "strict", strict)


def _breakerish(name: str) -> bool:
    low = name.lower()
    return "breaker" in low or "circuit" in low


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in spaced.lower().split("_") if t]


def _target_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value if _breakerish(key.value) else _target_name(node.value)
        return _target_name(node.value)
    if isinstance(node, ast.Starred):
        return _target_name(node.value)
    return None


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _str_const(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _has_opening(lowered: bytes) -> bool:
    """RES004's prefilter: a line that assigns an open flag or an open state."""
    pos = lowered.find(b"open")
    while pos != -1:
        start = lowered.rfind(b"\n", 0, pos) + 1
        end = lowered.find(b"\n", pos)
        if end == -1:
            end = len(lowered)
        if _OPENING_RE.search(lowered, start, end) is not None:
            return True
        pos = lowered.find(b"open", end)
    return False


def _mentions_mock_name(lowered: bytes, names: MockNames) -> bool:
    """Whether an identifier ending in ``breaker`` matches the mock patterns."""
    pos = lowered.find(b"breaker")
    while pos != -1:
        start = pos
        while start > 0 and lowered[start - 1] in _IDENT_BYTES:
            start -= 1
        if names.matches(lowered[start : pos + 7].decode("ascii", "replace")):
            return True
        pos = lowered.find(b"breaker", pos + 7)
    return False


def _defines_breaker(lowered: bytes) -> bool:
    """``_BREAKER_DEF_RE.search(lowered)``: a ``class``/``def`` named ``*breaker*``/``*circuit*``.

    Looks back from each ``breaker``/``circuit`` instead of trying the pattern at
    every byte (the same answer; a test compares them): the word's identifier
    must follow whitespace that follows ``class`` or ``def``.
    """
    for word in (b"breaker", b"circuit"):
        pos = lowered.find(word)
        while pos != -1:
            start = pos
            while start > 0 and lowered[start - 1] in _IDENT_BYTES:
                start -= 1
            end = start
            while end > 0 and lowered[end - 1] in _SPACE_BYTES:
                end -= 1
            if end < start and (
                lowered.endswith(b"class", 0, end) or lowered.endswith(b"def", 0, end)
            ):
                return True
            pos = lowered.find(word, pos + 1)
    return False


def needs_parse(lowered: bytes, names: MockNames) -> bool:
    """Cheap prefilter on lower-cased source bytes: can the file hold any finding?

    False is definitive: no rule can fire on such a file, so it is not parsed.
    """
    if names.extra and names.may_mention(lowered):
        return True
    if b"breaker" in lowered or b"circuit" in lowered:
        if _mentions_mock_name(lowered, names):
            return True  # RES001, RES002
        if b"mock" in lowered or b"patch" in lowered or b"autospec" in lowered:
            return True  # RES003
        if b"lambda" in lowered or b"nullcontext" in lowered or _defines_breaker(lowered):
            return True  # RES006
    if b"resilient" in lowered and _SUPPRESSION_BYTES_RE.search(lowered) is not None:
        return True  # RES005
    return b"open" in lowered and _has_opening(lowered)  # RES004


if TYPE_CHECKING:

    class _Raw(NamedTuple):
        """A finding before suppression and column conversion (ast positions)."""

        line: int
        col: int  # 0-based UTF-8 byte offset, as ast gives it
        end_line: int
        end_col: int
        code: str
        message: str

else:  # the same, without importing ``typing``
    _Raw = namedtuple("_Raw", ["line", "col", "end_line", "end_col", "code", "message"])


_match_start: Final = re.Match.start
_plus_one: Final = (1).__add__


def _line_starts(data: bytes) -> list[int]:
    """``[0, start of line 2, ..., len(data) + 1]``: ``bisect_right`` on it gives 1-based lines."""
    starts = [0]
    starts.extend(itertools.accumulate(map(_plus_one, map(len, data.split(b"\n")))))
    return starts


@functools.lru_cache(maxsize=256)
def _needle_pattern(needles: tuple[bytes, ...]) -> re.Pattern[bytes]:
    return re.compile(b"|".join(re.escape(n) for n in needles))


def _needle_lines(data: bytes, needles: tuple[bytes, ...]) -> list[int]:
    """An offset on each line of ``data`` that holds one of ``needles`` (none empty).

    The lines of these offsets are the lines of ``_needle_pattern(needles).finditer``
    when no needle holds a line break: a match then never leaves its line, and a
    needle skipped because it overlaps a match is on that match's line.  Found
    with ``bytes.find``, not by trying the alternation at every byte.
    """
    out: list[int] = []
    find = data.find
    for needle in set(needles):
        pos = find(needle)
        while pos != -1:
            out.append(pos)
            end = find(b"\n", pos)
            if end == -1:
                break
            pos = find(needle, end + 1)  # the rest of this line adds nothing
    return out


_OPENING_WORDS: Final = (b"open", b"stat", b"mode")  # how an ``_OPENING_RE`` match starts


def _opening_starts(data: bytes) -> list[int]:
    """The starts of ``_OPENING_RE.finditer(data)``'s matches, tried only where one can start."""
    find = data.find
    match = _OPENING_RE.match
    ahead = [find(word) for word in _OPENING_WORDS]  # next occurrence of each, or -1
    out: list[int] = []
    while True:
        found = [p for p in ahead if p != -1]
        if not found:
            return out
        start = min(found)
        m = match(data, start)
        if m is not None:
            out.append(start)
            pos = m.end()  # finditer goes on after the match
        else:
            pos = start + 1
        ahead = [
            p if p == -1 or p >= pos else find(word, pos)
            for word, p in zip(_OPENING_WORDS, ahead, strict=True)
        ]


class _Analyzer:
    """Walks one module's tree and collects raw findings."""

    def __init__(
        self,
        tree: ast.Module,
        names: MockNames,
        lowered: bytes,
        *,
        starts: list[int] | None = None,
        interest: tuple[list[int], list[int]] | None = None,
    ) -> None:
        """``starts``: ``_line_starts(lowered)``; ``interest``: :meth:`interesting` (when known)."""
        self.tree = tree
        self.names = names
        self.lowered = lowered
        self._starts = _line_starts(lowered) if starts is None else starts
        self.lines, self.opening_lines = self.interesting() if interest is None else interest
        self.found: list[_Raw] = []
        self._reported: set[tuple[int, int, str]] = set()
        self.aliases: dict[str, str] = {}  # local name -> mock breaker it stands for
        self.mock_factories: dict[str, str] = {}  # local name -> MagicMock etc.
        self.mock_modules: set[str] = set()  # local names bound to unittest.mock / mock
        self.patch_names: set[str] = set()
        self.local_classes: dict[str, ast.ClassDef] = {}

    # -- reporting ---------------------------------------------------------------

    def report(self, node: ast.AST, code: str, message: str) -> None:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        key = (line, col, code)
        if key in self._reported:
            return
        self._reported.add(key)
        end_line = getattr(node, "end_lineno", None) or line
        end_col = getattr(node, "end_col_offset", None)
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            # point at the header (``class Name``), not the whole body
            keyword = {"ClassDef": 6, "FunctionDef": 4, "AsyncFunctionDef": 10}
            end_line, end_col = line, col + keyword[type(node).__name__] + len(node.name)
        self.found.append(
            _Raw(line, col, end_line, col if end_col is None else end_col, code, message)
        )

    # -- which lines matter ---------------------------------------------------------

    def interesting(self) -> tuple[list[int], list[int]]:
        """The lines worth visiting before any alias is known, and the "open" assignments'."""
        needles = list(_LINE_NEEDLES)
        needles.extend(n for n in self.names.needles() if n)
        opening = self._opening_lines()
        return sorted(set(self._lines_with(needles)) | set(opening)), opening

    def _lines_of(self, matches: Iterator[re.Match[bytes]]) -> list[int]:
        """The sorted, distinct lines where ``matches`` start."""
        line_of = functools.partial(bisect.bisect_right, self._starts)
        return sorted(set(map(line_of, map(_match_start, matches))))

    def _lines_with(self, needles: Iterable[bytes]) -> list[int]:
        """The lines where ``_needle_pattern(needles).finditer`` finds something."""
        words = tuple(needles)
        if any(not n or b"\n" in n for n in words):
            return self._lines_of(_needle_pattern(words).finditer(self.lowered))
        line_of = functools.partial(bisect.bisect_right, self._starts)
        return sorted(set(map(line_of, _needle_lines(self.lowered, words))))

    def _opening_lines(self) -> list[int]:
        line_of = functools.partial(bisect.bisect_right, self._starts)
        return sorted(set(map(line_of, _opening_starts(self.lowered))))

    @staticmethod
    def _intersects(lines: Sequence[int], node: ast.AST) -> bool:
        start = getattr(node, "lineno", 0)
        for deco in getattr(node, "decorator_list", ()):
            start = min(start, deco.lineno)
        end = getattr(node, "end_lineno", None) or start
        i = bisect.bisect_left(lines, start)
        return i < len(lines) and lines[i] <= end

    def statements(self) -> Iterator[ast.stmt]:
        """Every statement whose lines hold something of interest (pruned walk)."""
        stack: list[ast.stmt] = list(reversed(self.tree.body))
        while stack:
            stmt = stack.pop()
            if not self._intersects(self.lines, stmt):
                continue
            yield stmt
            inner: list[ast.stmt] = []
            for name in ("body", "orelse", "finalbody"):
                inner.extend(getattr(stmt, name, ()))
            for handler in getattr(stmt, "handlers", ()):
                inner.extend(handler.body)
            for case in getattr(stmt, "cases", ()):
                inner.extend(case.body)
            stack.extend(reversed(inner))

    # -- pass 1: bindings --------------------------------------------------------

    def collect_bindings(self) -> None:
        for node in self.statements():
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._bind_import(alias)
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self._bind_from(node, alias)
            elif isinstance(node, ast.ClassDef):
                self.local_classes.setdefault(node.name, node)
        self._add_alias_lines()
        # simple alias chains: CB = MockCircuitBreaker; B2 = CB
        for _ in range(3):
            changed = False
            for node in self.statements():
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name) and target.id not in self.aliases:
                        original = self.mock_ref(node.value)
                        if original is not None and original != target.id:
                            self.aliases[target.id] = original
                            changed = True
            if not changed:
                break
            self._add_alias_lines()

    def _add_alias_lines(self) -> None:
        words = {*self.aliases, *self.mock_factories, *self.mock_modules, *self.patch_names}
        if words:
            found = self._lines_with(w.split(".")[0].lower().encode() for w in words)
            self.lines = sorted(set(self.lines) | set(found))

    def _bind_import(self, alias: ast.alias) -> None:
        name = alias.name
        if name in _MOCK_MODULES:
            if alias.asname:
                self.mock_modules.add(alias.asname)
            else:
                self.mock_modules.add(name.split(".")[0] if name == "mock" else name)
        last = name.rsplit(".", 1)[-1]
        if self.names.matches(last):
            self.report(alias, "RES002", f"mock breaker `{name}` imported")
            if alias.asname:
                self.aliases[alias.asname] = last

    def _bind_from(self, node: ast.ImportFrom, alias: ast.alias) -> None:
        module = node.module or ""
        local = alias.asname or alias.name
        if module in _MOCK_MODULES or (module == "unittest" and alias.name == "mock"):
            if module == "unittest":
                self.mock_modules.add(local)
            elif alias.name in _MOCK_FACTORIES:
                self.mock_factories[local] = alias.name
            elif alias.name == "patch":
                self.patch_names.add(local)
            return
        if self.names.matches(alias.name):
            source = "." * node.level + module
            via = f" as `{alias.asname}`" if alias.asname else ""
            self.report(
                alias, "RES002", f"mock breaker `{alias.name}` imported from `{source}`{via}"
            )
            self.aliases[local] = alias.name

    # -- name resolution ---------------------------------------------------------

    def mock_ref(self, node: ast.AST) -> str | None:
        """The mock breaker an expression names, if any (through aliases)."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            return node.id if self.names.matches(node.id) else None
        if isinstance(node, ast.Attribute):
            return node.attr if self.names.matches(node.attr) else None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
        ):
            value = _str_const(node.args[1])
            if value is not None:
                return self.names.string_reference(value)
        return None

    def mock_factory(self, func: ast.AST) -> str | None:
        """``MagicMock``, ``AsyncMock``... when ``func`` is a unittest.mock factory."""
        if isinstance(func, ast.Name):
            if func.id in self.mock_factories:
                return self.mock_factories[func.id]
            if func.id in _BARE_MOCK_FACTORIES and func.id not in self.local_classes:
                return func.id
            return None
        if isinstance(func, ast.Attribute) and func.attr in _MOCK_FACTORIES:
            base = _dotted(func.value)
            if base is not None and (base in self.mock_modules or base in _MOCK_MODULES):
                return func.attr
        return None

    def is_patch(self, func: ast.AST) -> bool:
        if isinstance(func, ast.Name):
            return func.id in self.patch_names
        if isinstance(func, ast.Attribute):
            base = _dotted(func.value)
            if func.attr == "patch":
                return base is not None and (
                    base in self.mock_modules or base in _MOCK_MODULES or base == "mocker"
                )
            if func.attr in {"object", "multiple", "dict"}:
                return self.is_patch(func.value)
            if func.attr == "setattr":
                return base == "monkeypatch"
        return False

    def stands_in(self, node: ast.AST) -> str | None:
        """When ``node`` builds a unittest.mock object, the factory's name."""
        if isinstance(node, ast.Await):
            node = node.value
        if isinstance(node, ast.Call):
            return self.mock_factory(node.func)
        return None

    # -- pass 2: the walk ----------------------------------------------------------

    def run(self, *, shape: bool) -> list[_Raw]:
        self.collect_bindings()
        # (node, enclosing function name, in annotation)
        stack: list[tuple[ast.AST, str | None, bool]] = [(self.tree, None, False)]
        lines = self.lines
        while stack:
            node, func, in_ann = stack.pop()
            if isinstance(node, ast.stmt) and not self._intersects(lines, node):
                continue
            children = self.visit(node, func, in_ann, shape=shape)
            stack.extend(reversed(children))
        return self.found

    def visit(
        self, node: ast.AST, func: str | None, in_ann: bool, *, shape: bool
    ) -> list[tuple[ast.AST, str | None, bool]]:
        if isinstance(node, ast.ClassDef):
            self.visit_class(node, shape=shape)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out: list[tuple[ast.AST, str | None, bool]] = [
                (d, func, False) for d in node.decorator_list
            ]
            out.extend((a, func, False) for a in _arg_nodes(node.args))
            out.extend((d, func, False) for d in _defaults(node.args))
            if node.returns is not None:
                out.append((node.returns, func, True))
            out.extend((s, node.name, False) for s in node.body)
            return out
        elif isinstance(node, ast.arg):
            return [(node.annotation, func, True)] if node.annotation is not None else []
        elif isinstance(node, ast.AnnAssign):
            self.visit_assign([node.target], node.value)
            out = [(node.annotation, func, True), (node.target, func, False)]
            if node.value is not None:
                out.append((node.value, func, False))
            return out
        elif isinstance(node, ast.Assign):
            self.visit_assign(node.targets, node.value)
        elif isinstance(node, ast.AugAssign):
            self.visit_assign([node.target], node.value)
        elif isinstance(node, ast.Return):
            if node.value is not None and func is not None and _breakerish(func):
                factory = self.stands_in(node.value)
                if factory is not None:
                    self.report(
                        node.value,
                        "RES003",
                        f"`{factory}()` returned as a breaker from `{func}()`",
                    )
        elif isinstance(node, ast.Call):
            skip_func = self.visit_call(node)
            children = [] if skip_func else [node.func]
            children.extend(node.args)
            children.extend(k.value for k in node.keywords)
            return [(c, func, in_ann) for c in children]
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                original = self.mock_ref(node)
                if original is not None:
                    self.report(node, "RES002", self._ref_message(node.id, original, in_ann))
        elif isinstance(node, ast.Attribute):
            if isinstance(node.ctx, ast.Load) and self.names.matches(node.attr):
                self.report(
                    node,
                    "RES002",
                    self._ref_message(_dotted(node) or node.attr, node.attr, in_ann),
                )
        elif isinstance(node, ast.Constant) and in_ann and isinstance(node.value, str):
            self.visit_string_annotation(node)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                key_s = _str_const(key) if key is not None else None
                if key_s is not None and _breakerish(key_s):
                    factory = self.stands_in(value)
                    if factory is not None:
                        self.report(value, "RES003", f"`{factory}()` stored as breaker `{key_s!r}`")
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            self.visit_try(node)
        elif isinstance(node, ast.If):
            self.visit_flag_branch(node.test, node.body, node.orelse)
        elif isinstance(node, ast.IfExp):
            self.visit_flag_branch(node.test, [node.body], [node.orelse])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            return []
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return []  # docstrings and bare strings are prose
        return [(c, func, in_ann) for c in ast.iter_child_nodes(node)]

    @staticmethod
    def _ref_message(spelled: str, original: str, in_ann: bool) -> str:
        where = " in an annotation" if in_ann else ""
        if spelled != original:
            return f"mock breaker `{original}` (as `{spelled}`) referenced{where}"
        return f"mock breaker `{original}` referenced{where}"

    def visit_string_annotation(self, node: ast.Constant) -> None:
        text = str(node.value)
        if len(text) > 500:
            return
        try:
            expr = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError):
            return
        for sub in ast.walk(expr):
            original = None
            if isinstance(sub, ast.Name):
                original = self.mock_ref(sub)
            elif isinstance(sub, ast.Attribute) and self.names.matches(sub.attr):
                original = sub.attr
            if original is not None:
                self.report(
                    node,
                    "RES002",
                    f"mock breaker `{original}` referenced in a string annotation",
                )
                return

    def visit_assign(self, targets: Sequence[ast.AST], value: ast.AST | None) -> None:
        if value is None:
            return
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "__all__":
                self.visit_all(value)
        names = [n for n in (_target_name(t) for t in targets) if n is not None]
        if isinstance(value, (ast.Dict, ast.List, ast.Tuple, ast.Set)):
            items = value.values if isinstance(value, ast.Dict) else value.elts
            for item in items:
                made = self.stands_in(item)
                if made is not None and any(_breakerish(n) for n in names):
                    holder = next(n for n in names if _breakerish(n))
                    self.report(item, "RES003", f"`{made}()` stored in breaker `{holder}`")
            return
        factory = self.stands_in(value)
        if factory is None:
            return
        for target in targets:
            name = _target_name(target)
            if name is not None and _breakerish(name):
                self.report(value, "RES003", f"`{factory}()` assigned to breaker `{name}`")
                return

    def visit_all(self, value: ast.AST) -> None:
        if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
            for elt in value.elts:
                text = _str_const(elt)
                if text is not None and self.names.matches(text):
                    self.report(elt, "RES002", f"mock breaker `{text}` re-exported in `__all__`")

    def visit_call(self, node: ast.Call) -> bool:
        """Check one call; True when its ``func`` needs no further visit."""
        func = node.func
        original = self.mock_ref(func)
        if original is not None:
            spelled = _dotted(func) or original
            via = f" (as `{spelled}`)" if spelled not in {original} else ""
            if isinstance(func, ast.Call):
                via = " (looked up with `getattr`)"
            self.report(node, "RES002", f"mock breaker `{original}`{via} instantiated")
            return True
        fname = func.id if isinstance(func, ast.Name) else None
        aname = func.attr if isinstance(func, ast.Attribute) else None
        if fname in _LOOKUP_FUNCS and len(node.args) >= 2:
            text = _str_const(node.args[1])
            ref = self.names.string_reference(text) if text is not None else None
            if ref is not None:
                self.report(node, "RES002", f"mock breaker `{ref}` looked up with `{fname}()`")
            elif (
                fname == "setattr"
                and text is not None
                and _breakerish(text)
                and len(node.args) >= 3
            ):
                factory = self.stands_in(node.args[2])
                if factory is not None:
                    self.report(node.args[2], "RES003", f"`{factory}()` set as breaker `{text}`")
        if (fname or aname) in _IMPORT_BY_NAME_FUNCS and node.args:
            text = _str_const(node.args[0])
            ref = self.names.string_reference(text) if text is not None else None
            if ref is not None:
                self.report(node, "RES002", f"mock breaker `{ref}` imported by name")
        if self.is_patch(func):
            self.visit_patch(node)
        factory = self.mock_factory(func)
        if factory is not None:
            self.visit_mock_factory(node, factory)
        # a mock passed as `breaker=...` or to something that takes a breaker
        for kw in node.keywords:
            if kw.arg is not None and _breakerish(kw.arg):
                made = self.stands_in(kw.value)
                if made is not None:
                    self.report(kw.value, "RES003", f"`{made}()` passed as `{kw.arg}=`")
        callee = fname or aname
        if callee is not None and _breakerish(callee):
            for arg in node.args:
                made = self.stands_in(arg)
                if made is not None:
                    self.report(arg, "RES003", f"`{made}()` passed to `{callee}()`")
        return False

    def visit_patch(self, node: ast.Call) -> None:
        spelled = _dotted(node.func) or "patch"
        if spelled.endswith((".object", ".setattr")) and len(node.args) >= 2:
            text = _str_const(node.args[1])
        elif node.args:
            text = _str_const(node.args[0])
        else:
            return
        if text is None:
            return
        ref = self.names.string_reference(text)
        if ref is not None:
            self.report(node, "RES002", f"mock breaker `{ref}` patched in with `{spelled}()`")
            return
        last = re.split(r"[.:]", text.strip())[-1]
        if re.fullmatch(r"[A-Za-z_]\w*", last) and _breakerish(last):
            self.report(
                node,
                "RES003",
                f"`{spelled}({text!r})` replaces breaker `{last}` with a mock",
            )

    def visit_mock_factory(self, node: ast.Call, factory: str) -> None:
        specs: list[ast.AST] = [kw.value for kw in node.keywords if kw.arg in {"spec", "spec_set"}]
        if node.args and factory in {"create_autospec", "Mock", "MagicMock", "AsyncMock"}:
            specs.append(node.args[0])
        for spec in specs:
            name = _dotted(spec) or _str_const(spec)
            if name is not None and _breakerish(name):
                self.report(node, "RES003", f"`{factory}()` specced as breaker `{name}`")
                return

    # -- RES006: a pass-through when the library is missing ------------------------

    def visit_try(self, node: ast.AST) -> None:
        for handler in getattr(node, "handlers", []):
            if _catches_import_error(handler.type):
                self.flag_fallbacks(handler.body, "when the import fails")

    def visit_flag_branch(
        self, test: ast.AST, body: Sequence[ast.AST], orelse: Sequence[ast.AST]
    ) -> None:
        verdict = _availability_test(test)
        if verdict is None:
            return
        negated, flag = verdict
        self.flag_fallbacks(body if negated else orelse, f"when `{flag}` is unavailable")

    def flag_fallbacks(self, stmts: Sequence[ast.AST], when: str) -> None:
        for stmt in _flatten(stmts):
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                if _breakerish(stmt.name) and not self.names.matches(stmt.name):
                    kind = "class" if isinstance(stmt, ast.ClassDef) else "function"
                    self.report(
                        stmt,
                        "RES006",
                        f"stand-in breaker {kind} `{stmt.name}` defined {when}: "
                        "protection silently becomes a pass-through",
                    )
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [n for n in (_target_name(t) for t in targets) if n]
                if any(_breakerish(n) for n in names) and self._pass_through(stmt.value):
                    self.report(
                        stmt,
                        "RES006",
                        f"breaker `{names[0]}` replaced by a pass-through {when}",
                    )
            elif isinstance(stmt, ast.expr) and self._pass_through(stmt):
                self.report(stmt, "RES006", f"a pass-through breaker is used {when}")

    def _pass_through(self, value: ast.AST | None) -> bool:
        if isinstance(value, ast.Lambda):
            return True
        if isinstance(value, ast.Call):
            name = _dotted(value.func) or ""
            last = name.rsplit(".", 1)[-1]
            if last == "nullcontext":
                return True
            cls = self.local_classes.get(last)
            return cls is not None and _breakerish(cls.name) and _never_rejects(cls)
        if isinstance(value, ast.Name):
            cls = self.local_classes.get(value.id)
            return cls is not None and _breakerish(cls.name) and _never_rejects(cls)
        return False

    # -- RES001 and RES004 -----------------------------------------------------------

    def visit_class(self, node: ast.ClassDef, *, shape: bool) -> None:
        if self.names.matches(node.name):
            self.report(node, "RES001", f"mock breaker class `{node.name}` defined")
        if shape and self._intersects(self.opening_lines, node):
            opening = _opens_without_recovery(node)
            if opening is not None:
                self.report(
                    node,
                    "RES004",
                    f"`{node.name}` opens when a call fails (`{opening}`) but has no "
                    "time-based way back to closed",
                )


def _arg_nodes(args: ast.arguments) -> Iterator[ast.arg]:
    yield from args.posonlyargs
    yield from args.args
    if args.vararg is not None:
        yield args.vararg
    yield from args.kwonlyargs
    if args.kwarg is not None:
        yield args.kwarg


def _defaults(args: ast.arguments) -> Iterator[ast.expr]:
    yield from args.defaults
    yield from (d for d in args.kw_defaults if d is not None)


def _flatten(stmts: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Statements, looking inside nested if/try/with blocks but not into definitions."""
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from _flatten(stmt.body)
            yield from _flatten(stmt.orelse)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            yield from _flatten(stmt.body)
        elif isinstance(stmt, ast.Try):
            yield from _flatten(stmt.body)
            yield from _flatten(stmt.orelse)
        elif isinstance(stmt, ast.Expr):
            yield stmt.value


def _catches_import_error(node: ast.AST | None) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Tuple):
        return any(_catches_import_error(e) for e in node.elts)
    name = _dotted(node)
    return name is not None and name.rsplit(".", 1)[-1] in {"ImportError", "ModuleNotFoundError"}


def _availability_test(test: ast.AST) -> tuple[bool, str] | None:
    """``(negated, flag)`` when ``test`` asks whether a dependency is available."""
    negated = False
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        negated, test = True, test.operand
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        right = test.comparators[0]
        if isinstance(right, ast.Constant) and right.value is None:
            name = _dotted(test.left)
            if name is None:
                return None
            if isinstance(test.ops[0], ast.Is):
                return (not negated, name)
            if isinstance(test.ops[0], ast.IsNot):
                return (negated, name)
        return None
    name = _dotted(test)
    if name is not None and _FLAG_RE.search(name.rsplit(".", 1)[-1]):
        return (negated, name)
    return None


def _never_rejects(cls: ast.ClassDef) -> bool:
    return not any(isinstance(n, ast.Raise) for n in ast.walk(cls))


def _opening_value(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        if node.value is True:
            return True
        return isinstance(node.value, str) and node.value.lower() in _OPEN_TOKENS
    name = _dotted(node)
    return name is not None and name.rsplit(".", 1)[-1].lower() in _OPEN_TOKENS


def _opening_assignment(node: ast.AST) -> str | None:
    """The source text of an assignment that opens a breaker, else None."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return None
    for target in targets:
        name = _target_name(target)
        if name is None:
            continue
        tokens = _tokens(name)
        opens = False
        if any(t in _OPEN_TOKENS for t in tokens):
            opens = isinstance(value, ast.Constant) and value.value is True
        if not opens and any(t in _STATE_TOKENS for t in tokens):
            opens = _opening_value(value) and not (
                isinstance(value, ast.Constant) and value.value is True
            )
        if opens:
            return ast.unparse(node).strip()
    return None


def _is_clock(node: ast.AST) -> bool:
    """A clock read or a timer: the raw material of a way back to closed."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in _CLOCK_NAMES or func.id in {"Timer", "call_later", "timedelta"}
        if isinstance(func, ast.Attribute):
            base = _dotted(func.value) or ""
            if func.attr in _CLOCK_ATTRS:
                return True  # time.monotonic(), loop.time(), ...
            if func.attr in _TIMER_ATTRS:
                return True
            return "datetime" in base or base.endswith("time")
        return False
    if isinstance(node, ast.Compare):
        for side in (node.left, *node.comparators):
            for sub in ast.walk(side):
                name = sub.id if isinstance(sub, ast.Name) else None
                if isinstance(sub, ast.Attribute):
                    name = sub.attr
                if name is not None and _TIMEISH_RE.search(name):
                    return True
    return False


def _opens_without_recovery(cls: ast.ClassDef) -> str | None:
    """For RES004: the opening assignment when ``cls`` opens on failure with no clock."""
    opening: str | None = None
    # (node, in failure context)
    stack: list[tuple[ast.AST, bool]] = [(stmt, False) for stmt in cls.body]
    while stack:
        node, failing = stack.pop()
        if _is_clock(node):
            return None
        if isinstance(node, ast.ClassDef):
            continue  # judged on its own
        if opening is None and failing:
            opening = _opening_assignment(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            is_failure = bool(_FAILURE_FUNC_RE.search(node.name)) and node.name != "__init__"
            stack.extend((s, failing or is_failure) for s in node.body)
            stack.extend((d, False) for d in node.decorator_list)
            continue
        if isinstance(node, ast.ExceptHandler):
            stack.extend((s, True) for s in node.body)
            continue
        if isinstance(node, ast.If):
            cond = any(
                _FAILURE_NAME_RE.search(n)
                for n in (
                    sub.id if isinstance(sub, ast.Name) else getattr(sub, "attr", "")
                    for sub in ast.walk(node.test)
                )
                if n
            )
            stack.append((node.test, failing))
            stack.extend((s, failing or cond) for s in node.body)
            stack.extend((s, failing) for s in node.orelse)
            continue
        stack.extend((c, failing) for c in ast.iter_child_nodes(node))
    return opening


# -- suppressions ----------------------------------------------------------------------


class _Suppression:
    """One ``# resilient: ignore[...]`` comment; columns are 0-based characters."""

    __slots__ = ("blanket", "codes", "col", "line", "used")

    def __init__(
        self, line: int, col: int, codes: list[tuple[str, int]], *, blanket: bool = False
    ) -> None:
        self.line = line
        self.col = col
        self.codes = codes  # (code, column of the code)
        self.used: set[str] = set()
        self.blanket = blanket


def _suppressions(text: str) -> dict[int, _Suppression]:
    import tokenize  # only files with a suppression comment need it

    out: dict[int, _Suppression] = {}
    lines = text.splitlines()
    comments: list[tuple[int, int, str]] = []
    try:
        comments.extend(
            (tok.start[0], tok.start[1], tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.COMMENT and "resilient" in tok.string.lower()
        )
    except (tokenize.TokenError, SyntaxError):
        for i, source_line in enumerate(lines, 1):
            pos = source_line.find("#")
            if pos >= 0 and "resilient" in source_line[pos:].lower():
                comments.append((i, pos, source_line[pos:]))
    for line, col, comment in comments:
        m = _SUPPRESSION_RE.search(comment)
        if m is None:
            continue
        base = col + m.start()
        if m.group("codes") is None:
            out[line] = _Suppression(line, base, [], blanket=True)
            continue
        start = col + m.start("codes")
        codes = [
            (c.group(0).upper(), start + c.start())
            for c in _CODE_RE.finditer(m.group("codes").upper())
        ]
        out[line] = _Suppression(line, base, codes)
    return out


# -- one file ----------------------------------------------------------------------


def _decode(data: bytes) -> str:
    """The text of a source file, honouring a BOM and an encoding cookie."""
    import tokenize  # only non-ASCII files need it

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        # no usable cookie: say which byte is not UTF-8, if that is the problem
        data.decode("utf-8")
        raise
    return data.decode(encoding)


def _error_finding(path: str, message: str, line: int = 1, col: int = 1) -> Finding:
    rule = RULES["RES000"]
    return Finding(path, line, col, "RES000", message, line, col, "error", rule.help)


def check_source(
    data: bytes,
    path: str,
    options: CheckOptions | None = None,
    *,
    tree: ast.Module | None = None,
) -> list[Finding]:
    """Check one file's raw bytes; returns its findings, sorted, suppressions applied.

    Never raises for bad input: undecodable text, syntax errors, null bytes and
    nesting too deep to parse each come back as one RES000 finding.  A file whose
    text cannot hold any finding (see :func:`needs_parse`) is not decoded or
    parsed, so it gives no finding whatever else is wrong with it; and of an
    ASCII file only the top-level statements the analysis visits are parsed
    (:func:`_analyze_statements`), so a syntax error elsewhere goes unreported.

    ``tree``: ``ast.parse`` of this very text, when the caller has it (used only
    for an ASCII file, whose text and bytes parse alike).
    """
    options = options or CheckOptions()
    names = options.names
    # The prefilter runs on the raw bytes (ASCII letters lower-cased), before any
    # decoding, so a file that mentions no breaker costs one pass and nothing else.
    lowered = data.lower()
    if not needs_parse(lowered, names):
        return []
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        return [_error_finding(path, "file contains null bytes; Python cannot parse it", line)]
    text: str | None = None
    if not data.isascii():
        try:
            text = _decode(data)
        except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
            return [_error_finding(path, _decode_message(exc))]
        lowered = text.lower().encode("utf-8", "surrogatepass")
    shape = b"open" in lowered and _has_opening(lowered)
    raw: list[_Raw] | None = None
    if tree is None and text is None and not _has_cookie(lowered):
        raw = _analyze_statements(data, names, lowered, shape=shape)
    if raw is None:
        try:
            if tree is None or text is not None:  # text: not ASCII, decoded above
                tree = ast.parse(data, filename=path, type_comments=False)
        except SyntaxError as exc:
            line = exc.lineno or 1
            col = exc.offset or 1
            detail = exc.msg or "invalid syntax"
            return [_error_finding(path, f"cannot parse: {detail}", line, max(col, 1))]
        except (ValueError, UnicodeDecodeError, LookupError) as exc:
            return [_error_finding(path, f"cannot parse: {exc}")]
        except (RecursionError, MemoryError):
            return [_error_finding(path, "cannot parse: nested too deeply for Python's parser")]
        try:
            raw = _Analyzer(tree, names, lowered).run(shape=shape)
        except RecursionError:
            return [_error_finding(path, "cannot check: nested too deeply")]
    if not raw and b"resilient" not in lowered:
        return []
    if text is None:
        text = data.decode("utf-8") if data.isascii() else _decode(data)
    return _finish(path, text, raw, options)


def _has_cookie(lowered: bytes) -> bool:
    """Whether the first two lines may hold an encoding cookie (``coding``)."""
    first = lowered.find(b"\n")
    second = lowered.find(b"\n", first + 1) if first != -1 else -1
    return b"coding" in (lowered if second == -1 else lowered[:second])


def _analyze_statements(
    data: bytes, names: MockNames, lowered: bytes, *, shape: bool
) -> list[_Raw] | None:
    """The analysis of ``data`` parsing only the top-level statements it visits.

    The same raw findings as parsing the whole file (see :mod:`._check_slice`):
    the analysis visits only statements on its lines of interest, so the others
    are left out of the parse.  The statements kept hold every line the
    analysis ends up interested in (names bound to a mock breaker add lines);
    when they do not, the missing ones are added and the analysis runs again.
    None when the statements cannot be found from the text, or the cut-down
    module does not parse (the caller parses the whole file: a syntax error is
    then reported as usual).
    """
    from ._check_slice import Chunks, statement_starts

    starts = _line_starts(lowered)
    interest = _Analyzer(_EMPTY_MODULE, names, lowered, starts=starts).interesting()
    # (the statements after the last line of interest are one piece: not parsed
    # unless a line of interest turns up there, when the piece is parsed whole)
    last = interest[0][-1] if interest[0] else 0
    found = statement_starts(data, until=starts[min(last, len(starts) - 1)])
    if found is None:
        return None
    chunks = Chunks(data, found, starts)
    chunks.select(interest[0])
    for _ in range(3):
        try:
            tree = ast.parse(chunks.source(), type_comments=False)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        analyzer = _Analyzer(tree, names, lowered, starts=starts, interest=interest)
        try:
            raw = analyzer.run(shape=shape)
        except RecursionError:
            return None
        if not chunks.select(analyzer.lines):  # it saw every statement it looked for
            return raw
    return None


_EMPTY_MODULE: Final = ast.Module(body=[], type_ignores=[])


def _decode_message(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"cannot decode as {exc.encoding}: byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}; add an encoding cookie (`# -*- coding: latin-1 -*-`) or save as UTF-8"
        )
    return f"cannot decode: {exc}"


def _finish(path: str, text: str, raw: list[_Raw], options: CheckOptions) -> list[Finding]:
    lines = text.splitlines()
    ascii_text = text.isascii()

    def char_col(line: int, byte_col: int) -> int:
        if ascii_text or not 0 < line <= len(lines):
            return byte_col + 1
        return len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace")) + 1

    # (tokenizing is slow: only a text holding a suppression comment's words is tokenized)
    suppressions = _suppressions(text) if _SUPPRESSION_RE.search(text) is not None else {}
    findings: list[Finding] = []
    for r in raw:
        sup = suppressions.get(r.line)
        if sup is not None and any(code == r.code for code, _ in sup.codes):
            sup.used.add(r.code)
            continue
        findings.append(_make(path, r, char_col, options))
    for sup in suppressions.values():
        if sup.blanket:
            findings.append(
                _finding(
                    path,
                    sup.line,
                    sup.col + 1,
                    "RES005",
                    "suppression `# resilient: ignore` names no code and suppresses nothing; "
                    "name the codes, e.g. `# resilient: ignore[RES002]`",
                    options=options,
                )
            )
            continue
        for code, col in sup.codes:
            if code not in RULES:
                message = f"unknown code `{code}` in suppression"
            elif code not in sup.used:
                message = f"unused suppression `{code}`: nothing on this line needs it"
            else:
                continue
            findings.append(_finding(path, sup.line, col + 1, "RES005", message, options=options))
    findings.sort(key=Finding.sort_key)
    return findings


def _severity(code: str, options: CheckOptions) -> Severity:
    severity = RULES[code].severity
    return "error" if options.strict else severity


def _finding(
    path: str, line: int, col: int, code: str, message: str, *, options: CheckOptions
) -> Finding:
    return Finding(
        path, line, col, code, message, line, col, _severity(code, options), RULES[code].help
    )


def _make(
    path: str, r: _Raw, char_col: Callable[[int, int], int], options: CheckOptions
) -> Finding:
    col = char_col(r.line, r.col)
    end_col = char_col(r.end_line, r.end_col)
    code = r.code
    return Finding(
        path,
        r.line,
        col,
        code,
        r.message,
        r.end_line,
        end_col,
        _severity(code, options),
        RULES[code].help,
    )


def read_bytes(path: str) -> bytes:
    """The whole file, read with as few system calls as possible."""
    fd = os.open(path, _O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) != size:  # it changed meanwhile, fstat cannot tell (/proc), a short read
            chunks = [data]
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def check_file(path: str, options: CheckOptions | None = None) -> list[Finding]:
    """Read and check one file; an unreadable file gives one RES000 finding."""
    try:
        data = read_bytes(path)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return [_error_finding(path, f"cannot read file: {reason}")]
    return check_source(data, path, options)


# Below this many files a single process is faster than forking workers.
PARALLEL_MIN_FILES: Final = 2000


def default_jobs() -> int:
    """How many processes to use: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_files(
    paths: Sequence[str],
    options: CheckOptions | None = None,
    *,
    jobs: int = 1,
    min_parallel: int | None = None,
) -> list[Finding]:
    """Check many files, in ``jobs`` forked processes when there are enough of them.

    Forking (POSIX only) shares the already imported code and compiled patterns,
    so a worker starts in about a millisecond; elsewhere, and for small runs,
    the files are checked in this process.
    """
    options = options or CheckOptions()
    threshold = PARALLEL_MIN_FILES if min_parallel is None else min_parallel
    if jobs <= 1 or len(paths) < max(threshold, 2) or not hasattr(os, "fork"):
        return [f for p in paths for f in check_file(p, options)]
    from ._fork import fork_map

    def rows(path: str) -> list[tuple[Any, ...]]:  # marshal-able, for the children
        return [_as_row(f) for f in check_file(path, options)]

    # (a worker that dies has its files checked here: nothing is lost)
    return [Finding(*row) for found in fork_map(rows, paths, processes=jobs) for row in found]


def _as_row(f: Finding) -> tuple[str, int, int, str, str, int, int, str, str]:
    return (f.path, f.line, f.col, f.code, f.message, f.end_line, f.end_col, f.severity, f.help)


class Helpers:
    """Forked processes (POSIX) that check the paths handed to them, one at a time.

    For work that arrives bit by bit (``git grep`` output): :meth:`send` hands a
    path to a helper at once, :meth:`collect` returns everything they found.
    A helper that dies is replaced by this process: the paths it had are
    checked here, so nothing is lost.  An exception inside a helper is raised
    again here as a :class:`RuntimeError`.
    """

    def __init__(self, options: CheckOptions, count: int) -> None:
        self._options = options
        # (pid, pipe to it, pipe from it, paths sent)
        self._helpers: list[tuple[int, int, int, list[str]]] = []
        self._next = 0
        for _ in range(count):
            to_read, to_write = os.pipe()
            back_read, back_write = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                os.close(to_write)
                os.close(back_read)
                for _pid, fd_to, fd_back, _sent in self._helpers:
                    os.close(fd_to)
                    os.close(fd_back)
                _serve(to_read, back_write, options)
            os.close(to_read)
            os.close(back_write)
            self._helpers.append((pid, to_write, back_read, []))

    def __len__(self) -> int:
        return len(self._helpers)

    def send(self, path: str) -> None:
        """Hand ``path`` to the next helper, in turn."""
        _pid, fd_to, _back, sent = self._helpers[self._next]
        self._next = (self._next + 1) % len(self._helpers)
        sent.append(path)
        data = memoryview(os.fsencode(path) + b"\0")
        try:
            while data:
                data = data[os.write(fd_to, data) :]
        except OSError:
            pass  # it died: collect() checks what it had here

    def collect(self) -> list[Finding]:
        """Wait for the helpers to finish; their findings."""
        findings: list[Finding] = []
        errors: list[str] = []
        redo: list[str] = []
        helpers, self._helpers = self._helpers, []
        for _pid, fd_to, _back, _sent in helpers:  # no more work: let them all finish
            try:
                os.close(fd_to)
            except OSError:
                pass
        for pid, _to, fd_back, sent in helpers:
            with os.fdopen(fd_back, "rb") as fh:
                payload = fh.read()
            os.waitpid(pid, 0)
            try:
                status, rows = marshal.loads(payload)  # noqa: S302 - our own child wrote it
            except (EOFError, ValueError, TypeError):
                redo.extend(sent)  # it died: check its share here
                continue
            if status != "ok":
                errors.append(str(rows))
                continue
            findings.extend(Finding(*row) for row in rows)
        if errors:
            raise RuntimeError("; ".join(errors))
        findings.extend(f for p in redo for f in check_file(p, self._options))
        return findings

    def close(self) -> None:
        """Stop any helper still running (the run was abandoned)."""
        import signal

        helpers, self._helpers = self._helpers, []
        for pid, fd_to, fd_back, _sent in helpers:
            for fd in (fd_to, fd_back):
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _serve(read_fd: int, write_fd: int, options: CheckOptions) -> None:  # pragma: no cover
    """A helper's life: check each NUL-terminated path read, then report and exit."""
    code = 0
    try:
        rows: list[tuple[str, int, int, str, str, int, int, str, str]] = []
        pending = b""
        while chunk := os.read(read_fd, 1 << 16):
            *paths, pending = (pending + chunk).split(b"\0")
            for raw in paths:
                rows.extend(_as_row(f) for f in check_file(os.fsdecode(raw), options))
        payload = marshal.dumps(("ok", rows))
    except BaseException as exc:
        payload = marshal.dumps(("error", repr(exc)))
        code = 1
    with os.fdopen(write_fd, "wb") as fh:
        fh.write(payload)
    os._exit(code)
