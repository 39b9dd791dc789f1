"""Find a module's top-level statements from its text, so the guard parses only some.

Parsing is most of the guard's work on a file that mentions a breaker, and most
of such a file is code that mentions none: the analysis visits only statements
on lines that hold something of interest (:class:`._check._Analyzer`).  So the
guard parses a copy of the file in which every other top-level statement is
replaced by empty lines: each statement it keeps is the same text at the same
line and column, and parses to the same nodes.

:func:`statement_starts` finds where top-level statements begin with a light
scan (strings, comments, brackets and backslash continuations, with regular
expressions), and gives up (None) on anything it is not sure of: then the whole
file is parsed, as it always was.  A test compares its answer with ``ast`` on
every module of the standard library.

Standard library only.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Final

__all__ = ["Chunks", "statement_starts"]

# A lexical element that can hide a line start or join two lines, tried left to
# right (only where a quote, ``#`` or a backslash is: the regular expression
# engine skips everything else quickly): 1 a complete string (triple-quoted, then
# single-quoted; an escaped character, a backslash-newline included, never ends
# one), 2 a comment, 3 a backslash continuation, 4 a quote that starts no
# complete string (an unterminated string, or a Python 3.12 f-string spanning
# lines): the scan gives up.  Brackets are counted between these, in C.
_TOKEN_RE: Final = re.compile(
    rb"""(?=["'\#\\])(?:
        (\"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*\"\"\"
        | '''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''
        | "[^"\\\r\n]*(?:\\(?:\r\n|.)[^"\\\r\n]*)*"
        | '[^'\\\r\n]*(?:\\(?:\r\n|.)[^'\\\r\n]*)*')
      | (\#[^\r\n]*)
      | (\\(?:\r\n|\n))
      | (["'])
    )""",
    re.VERBOSE | re.DOTALL,
)
_STRING, _COMMENT, _CONTINUATION, _STRAY = 1, 2, 3, 4
# Lines that start with code: no indentation, not a comment, not blank (the
# line break before one: a literal first byte is quick to search for).
_LINE_START_RE: Final = re.compile(rb"\n(?=[^\s#])")
# Clauses that continue the statement above them (``if``/``try``...).
_CLAUSES: Final = (b"else", b"elif", b"except", b"finally")
_IDENT_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_BRACES_RE: Final = re.compile(rb"\{\{|\}\}|\{|\}")
_NOT_OPENING: Final = bytes(b for b in range(256) if b not in b"([{")
_NOT_CLOSING: Final = bytes(b for b in range(256) if b not in b")]}")


def _net(code: bytes) -> int:
    """Brackets opened minus brackets closed in ``code``."""
    return len(code.translate(None, _NOT_OPENING)) - len(code.translate(None, _NOT_CLOSING))


def statement_starts(data: bytes, until: int | None = None) -> list[int] | None:
    """Byte offsets of ``data``'s top-level statements (a decorated one at its first decorator).

    ``data`` is source with ``\\n`` or ``\\r\\n`` line ends (else None).
    Several statements on one line (``a = 1; b = 2``) count once, and a
    statement that starts with a string is not found (it joins the one before:
    the cut is coarser, never wrong).  None when the scan is not sure:
    a quote that starts no complete string, an f-string whose braces do not
    balance (Python 3.12 allows quotes inside them), a closing bracket with
    none open, brackets still open at the end.

    ``until``: only the statements that start before this offset are wanted,
    and the first one at or after it: the scan stops there, so what follows is
    one piece (left out of the parse unless something in it is wanted).
    """
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None  # lone CR line ends: ``^`` would not see those lines
    # The code alone: every string, comment and backslash continuation blanked
    # to as many spaces, so offsets stay and the lines they hid or joined vanish.
    # Tokens are matched left to right, so the code before ``stop`` is the same
    # whatever follows it.
    parts: list[bytes] = []
    done = 0
    stop = len(data)
    for m in _TOKEN_RE.finditer(data):
        pos, end = m.span()
        if (
            until is not None
            and pos > until
            # (a line starts in the code between ``until`` and this token)
            and _LINE_START_RE.search(data, max(until, done), pos) is not None
        ):
            stop = pos
            break
        kind = m.lastindex
        if kind == _STRAY:
            return None
        if kind == _STRING and b"f" in data[pos - 2 : pos].lower() and not _balanced(m.group()):
            return None
        parts.append(data[done:pos])
        parts.append(b" " * (end - pos))
        done = end
    parts.append(data[done:stop])
    code = b"".join(parts)
    starts: list[int] = []
    if code[:1].strip() and code[:1] != b"#":
        starts.append(0)
    depth = 0  # brackets open before ``done``
    done = 0
    for m in _LINE_START_RE.finditer(code):
        line = m.end()
        segment = code[done:line]
        depth += len(segment.translate(None, _NOT_OPENING)) - len(
            segment.translate(None, _NOT_CLOSING)
        )
        done = line
        if depth == 0:
            starts.append(line)
            if until is not None and line >= until:
                return _merge(data, starts)
        elif depth < 0:
            return None
    if stop < len(data):  # no statement starts between ``until`` and the next token
        return statement_starts(data)
    if depth + _net(code[done:]) != 0:
        return None
    return _merge(data, starts)


def _balanced(literal: bytes) -> bool:
    """Whether an f-string's replacement-field braces pair up (``{{``/``}}`` are text)."""
    depth = 0
    for m in _BRACES_RE.finditer(literal):
        token = m.group()
        if token == b"{":
            depth += 1
        elif token == b"}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _merge(data: bytes, starts: list[int]) -> list[int]:
    """Drop the starts that continue a statement: ``else:``... clauses, a decorated definition."""
    out: list[int] = []
    after_decorator = False
    for pos in starts:
        decorator = data.startswith(b"@", pos)
        if after_decorator or _is_clause(data, pos):
            after_decorator = decorator
            continue
        after_decorator = decorator
        out.append(pos)
    return out


def _is_clause(data: bytes, pos: int) -> bool:
    for word in _CLAUSES:
        if data.startswith(word, pos):
            end = pos + len(word)
            return end >= len(data) or data[end] not in _IDENT_BYTES
    return False


class Chunks:
    """A module cut at its top-level statements, to parse the ones on some lines only."""

    def __init__(self, data: bytes, starts: Sequence[int], line_starts: Sequence[int]) -> None:
        """``line_starts``: ``_check._line_starts(data)`` (``bisect_right`` gives 1-based lines)."""
        self._data = data
        offsets = [0, *(s for s in starts if s > 0), len(data)]
        self._offsets = offsets
        # first line of each chunk, and one past the last line
        self._lines = [bisect.bisect_right(line_starts, o) for o in offsets]
        self._lines[-1] = len(line_starts)  # one past the last line (the sentinel)
        self.selected: set[int] = set()

    def _chunk(self, line: int) -> int:
        return bisect.bisect_right(self._lines, line) - 1

    def select(self, lines: Iterable[int]) -> bool:
        """Select the chunks holding ``lines``; whether any was not selected before."""
        before = len(self.selected)
        last = len(self._offsets) - 2
        self.selected.update(min(self._chunk(line), last) for line in lines)
        return len(self.selected) != before

    def covers(self, lines: Iterable[int]) -> bool:
        last = len(self._offsets) - 2
        return all(min(self._chunk(line), last) in self.selected for line in lines)

    def source(self) -> bytes:
        """The module with every chunk not selected replaced by as many empty lines."""
        data, offsets, lines = self._data, self._offsets, self._lines
        parts: list[bytes] = []
        for i in range(len(offsets) - 1):
            if i in self.selected:
                parts.append(data[offsets[i] : offsets[i + 1]])
            else:
                parts.append(b"\n" * (lines[i + 1] - lines[i]))
        return b"".join(parts)
