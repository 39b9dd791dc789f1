"""The guard parses only the top-level statements it visits: same findings as parsing it all.

``_check_slice.statement_starts`` finds top-level statements from the text; the
guard parses a copy of the file with the other statements blanked.  These tests
hold it to ``ast`` (on the standard library and on tricky sources) and hold the
findings to those of a whole-file parse.
"""

from __future__ import annotations

import ast
import bisect
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from resilient.migration import _check
from resilient.migration._check import CheckOptions, Finding, check_source
from resilient.migration._check_slice import Chunks, statement_starts
from resilient.migration._names import MockNames

from .test_check import INCIDENT_MOCK, SIMULATION_FACTORY


def _lines_of(data: bytes, offsets: list[int]) -> set[int]:
    starts = _check._line_starts(data)
    return {bisect.bisect_right(starts, o) for o in offsets}


def _true_starts(data: bytes) -> tuple[set[int], set[int]]:
    """(every line a top-level statement starts on, those starting with a name, keyword or @)."""
    tree = ast.parse(data)
    lines = data.split(b"\n")
    every: set[int] = set()
    named: set[int] = set()
    previous_end = 0
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        if first != previous_end:  # not the second statement of ``a = 1; b = 2``
            every.add(first)
            head = lines[first - 1][:1]
            if head.isalpha() or head in (b"_", b"@"):
                named.add(first)
        previous_end = node.end_lineno or node.lineno
    return every, named


def _stdlib_modules() -> Iterator[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    yield from sorted(stdlib.glob("*.py"))
    yield from sorted((stdlib / "asyncio").glob("*.py"))
    yield from sorted((stdlib / "email").glob("*.py"))


def test_statement_starts_agree_with_ast_on_the_standard_library() -> None:
    """Every start found is a real statement's, and none that begins with a name is missed."""
    checked = unsure = 0
    for path in _stdlib_modules():
        data = path.read_bytes()
        try:
            every, named = _true_starts(data)
        except SyntaxError:  # (a test file meant not to parse, say)
            continue
        found = statement_starts(data)
        if found is None:
            unsure += 1
            continue
        lines = _lines_of(data, found)
        assert lines <= every, (path, sorted(lines - every)[:5])
        assert named <= lines, (path, sorted(named - lines)[:5])
        checked += 1
    assert checked > 150
    assert unsure < checked / 20


def test_a_scan_that_stops_early_finds_the_same_starts_up_to_there() -> None:
    """``until``: the starts before it, and the next one (the rest is left as one piece)."""
    checked = 0
    for path in list(_stdlib_modules())[::4]:
        data = path.read_bytes()
        full = statement_starts(data)
        if full is None or len(full) < 4:
            continue
        for until in (0, len(data) // 5, len(data) // 2, full[len(full) // 2], len(data)):
            early = statement_starts(data, until=until)
            assert early is not None
            assert early == full[: len(early)], (path, until)
            assert [s for s in full if s < until] == [s for s in early if s < until], (path, until)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("source", "starts"),
    [
        # a docstring with code at column 0 is one string
        ('def f():\n    """Example:\n\nclass MockCircuitBreaker:\n    pass\n"""\nx = 1\n', [1, 7]),
        # a bracket left open over lines at column 0
        ("CONFIG = dict(\na=MockCircuitBreaker(),\nb=2,\n)\ny = 1\n", [1, 5]),
        # a backslash continuation
        ("x = 1 + \\\n2\nbreaker = MagicMock \\\n()\nz = 3\n", [1, 3, 5]),
        # clauses at column 0 belong to the statement above
        ("if a:\n    b = 1\nelif c:\n    b = 2\nelse:\n    b = 3\nz = 4\n", [1, 7]),
        ("try:\n    import x\nexcept ImportError:\n    x = None\nfinally:\n    y = 1\n", [1]),
        ("else_ = 1\nexcepted = 2\n", [1, 2]),
        # decorators start their definition
        ("@a\n@b(\n1)\ndef f():\n    pass\nclass C:\n    pass\n", [1, 6]),
        # comments and blank lines at column 0 start nothing
        ("class A:\n    x = 1\n# note\n\n    y = 2\nz = 3\n", [1, 6]),
        # strings holding quotes, brackets, hashes and continuations
        ("s = 'a\"(#'\nt = \"\"\"x\n)\ny\"\"\"\nu = r'\\'' + '\\\nb'\nv = 1\n", [1, 2, 5, 7]),
        # CRLF line ends
        ("a = 1\r\nb = (\r\n2)\r\nc = 3\r\n", [1, 2, 4]),
        # a statement that starts with a string joins the one above (a bracket does not)
        ('"""Doc."""\nx = 1\n"""Note."""\n(a, b) = 1, 2\ny = 2\n', [2, 4, 5]),
    ],
)
def test_statement_starts_on_tricky_text(source: str, starts: list[int]) -> None:
    data = source.encode()
    found = statement_starts(data)
    assert found is not None
    assert sorted(_lines_of(data, found)) == starts


@pytest.mark.parametrize(
    "source",
    [
        "x = 'unterminated\ny = 1\n",  # a quote that starts no string
        'x = """never closed\ny = 1\n',
        "x = (1,\ny = 2\n",  # a bracket never closed
        "x = 1)\ny = 2\n",  # closed, never opened
        'x = f"{a["k"]}"\n',  # Python 3.12: the same quote inside a replacement field
        "x = 1\ry = 2\r",  # old Mac line ends
    ],
)
def test_statement_starts_gives_up_when_unsure(source: str) -> None:
    assert statement_starts(source.encode()) is None


def test_chunks_blank_what_is_not_selected() -> None:
    """Kept statements keep their lines and columns; the others become empty lines."""
    data = b"import os\n\ndef f():\n    return 1\n\nbreaker = Mock()\n# end\n"
    found = statement_starts(data)
    assert found is not None
    chunks = Chunks(data, found, _check._line_starts(data))
    assert chunks.select([6])
    assert not chunks.select([7])  # the comment after it is in the same chunk
    text = chunks.source()
    assert text.count(b"\n") >= data.count(b"\n")
    assert text.split(b"\n")[5] == b"breaker = Mock()"
    assert b"def f" not in text
    assert b"import os" not in text
    node = ast.parse(text).body[0]
    assert (node.lineno, node.col_offset) == (6, 0)


def _findings_both_ways(
    data: bytes, monkeypatch: pytest.MonkeyPatch, options: CheckOptions | None = None
) -> tuple[list[Finding], list[Finding]]:
    sliced = check_source(data, "m.py", options)
    with monkeypatch.context() as m:
        m.setattr(_check, "_analyze_statements", lambda *a, **k: None)
        whole = check_source(data, "m.py", options)
    return sliced, whole


_DOCSTRING_ONLY = (
    'def f():\n    """Use it like this:\n\nb = MockCircuitBreaker()\n"""\n    return 1\n'
)
_TRICKY_MODULES = [
    INCIDENT_MOCK,
    SIMULATION_FACTORY,
    # an alias bound in one statement and used in another that mentions no breaker
    "from app.cb import MockCircuitBreaker as CB\n\n\ndef make():\n    return CB('x')\n",
    "from app import cb as m\nX = m.MockCircuitBreaker\nY = X\n\ndef g():\n    return Y()\n",
    "from unittest.mock import MagicMock as MM\n\ndef build():\n    return 1\n\n"
    "service_breaker = MM()\n",
    # code inside a docstring is prose (the one source without a finding)
    _DOCSTRING_ONLY,
    # a bracket held open across column-0 lines
    "CONFIG = dict(\nprimary=MockCircuitBreaker('a'),\nb=2,\n)\n",
    "breaker = MagicMock \\\n()\n",
    # the incident's shape, decorated, with else clauses at column 0
    "import functools\n\n@functools.total_ordering\nclass Guard:\n    def call(self, f):\n"
    "        try:\n            return f()\n        except Exception:\n"
    "            self.is_open = True\n            raise\n",
    "try:\n    from resilient import circuit_breaker\nexcept ImportError:\n"
    "    def circuit_breaker(name, **kw):\n        return lambda f: f\n",
    "HAS_RESILIENT = True\nif HAS_RESILIENT:\n    import resilient\nelse:\n"
    "    breaker = lambda f: f\n",
    # suppressions, used and unused
    "x = MockCircuitBreaker('a')  # resilient: ignore[RES002] simulation\n"
    "y = 1  # resilient: ignore[RES002]\n",
    # a syntax error where the guard reads the code is reported
    "from app.cb import MockCircuitBreaker\nb = MockCircuitBreaker(\n",
    "b = MockCircuitBreaker(:)\n",
]


@pytest.mark.parametrize("source", _TRICKY_MODULES)
def test_findings_are_those_of_a_whole_parse(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in (source, source.replace("\n", "\r\n")):
        sliced, whole = _findings_both_ways(text.encode(), monkeypatch)
        assert sliced == whole
    assert bool(whole) == (source != _DOCSTRING_ONLY)


def test_findings_are_those_of_a_whole_parse_on_a_generated_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file of a generated service tree (benchmarks/gen_tree.py)."""
    script = Path(__file__).parents[2] / "benchmarks" / "gen_tree.py"
    subprocess.run(
        [sys.executable, str(script), str(tmp_path), "--files", "400", "--mock-rate", "0.1"],
        check=True,
        capture_output=True,
    )
    with_findings = 0
    for path in sorted(tmp_path.rglob("*.py")):
        sliced, whole = _findings_both_ways(path.read_bytes(), monkeypatch)
        assert sliced == whole, path
        with_findings += bool(whole)
    assert with_findings > 30


_STATEMENTS = [
    "import os",
    "from app.cb import MockCircuitBreaker",
    "from app.cb import MockCircuitBreaker as CB",
    "from unittest import mock",
    "from unittest.mock import MagicMock as MM",
    "x = CB('a')",
    "y = MM()",
    "payment_breaker = MM()",
    "breaker = mock.MagicMock()",
    "Z = MockCircuitBreaker",
    "W = Z",
    "def f():\n    return W()",
    "def g():\n    '''Doc.\n\nb = MockCircuitBreaker()\n'''\n    return 1",
    "CONFIG = dict(\nb=MockCircuitBreaker('a'),\n)",
    "value = (1 +\n2)",
    "s = 'it''s (' + \"#\"",
    "if flag:\n    v = 1\nelse:\n    v = CB('b')",
    "@decorator\nclass Open:\n    def call(self):\n        self.is_open = True",
    "class Fine:\n    pass",
    "# a comment mentioning MockCircuitBreaker",
    "t = 1  # resilient: ignore[RES002]",
    "u = CB('c')  # resilient: ignore[RES002] on purpose",
]


_BROKEN = "def h(:\n    pass"  # a syntax error, in a statement that mentions nothing of interest


def _whole(data: bytes) -> list[Finding]:
    original = _check._analyze_statements
    _check._analyze_statements = lambda *a, **k: None  # type: ignore[assignment]
    try:
        return check_source(data, "m.py")
    finally:
        _check._analyze_statements = original


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*_STATEMENTS, _BROKEN]), min_size=1, max_size=8))
def test_findings_are_those_of_a_whole_parse_on_any_mix(statements: list[str]) -> None:
    """Modules built from tricky statements in any order: the same findings either way.

    With a syntax error in a statement the guard does not read, it may instead
    find what a whole parse finds once that statement is made valid.
    """
    data = ("\n\n".join(statements) + "\n").encode()
    sliced = check_source(data, "m.py")
    whole = _whole(data)
    if _BROKEN not in statements or sliced == whole:
        assert sliced == whole
        return
    mended = "\n\n".join("pass\npass" if s == _BROKEN else s for s in statements) + "\n"
    assert sliced == _whole(mended.encode())


def test_a_syntax_error_where_no_breaker_is_mentioned_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard reads the statements that mention a breaker: a mock there is still reported.

    Parsing the whole file reported only the syntax error; the findings for the
    statements the guard reads are more use, and Python reports the error itself.
    """
    data = textwrap.dedent(
        """\
        from app.cb import MockCircuitBreaker

        def unrelated():
            return = 1
        """
    ).encode()
    sliced, whole = _findings_both_ways(data, monkeypatch)
    assert [f.code for f in whole] == ["RES000"]
    assert [(f.code, f.line) for f in sliced] == [("RES002", 1)]


def test_custom_mock_names_select_their_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    options = CheckOptions(names=MockNames(extra=("LegacyGuard",)))
    data = b"import os\n\n\ndef f():\n    return 1\n\n\nlegacy = LegacyGuard()\n"
    sliced, whole = _findings_both_ways(data, monkeypatch, options)
    assert sliced == whole
    assert [f.line for f in sliced] == [8]
