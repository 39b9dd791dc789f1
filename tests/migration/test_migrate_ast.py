"""The analysis reads modules with ``ast`` and must see them exactly as LibCST does.

Passes 1 and 2 of ``resilient migrate`` use :mod:`ast` (fast); pass 3 applies their
edits with LibCST.  These tests hold the ``ast`` model to LibCST's own answers on
sources full of corner cases: qualified names (``FullyQualifiedNameProvider``),
positions (``PositionProvider``), node text (``code_for_node``); and they check
the shortcuts the rewrite takes (the finer slice).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import libcst as cst
import pytest
from libcst.helpers import ModuleNameAndPackage
from libcst.metadata import FullyQualifiedNameProvider, MetadataWrapper, PositionProvider
from resilient.migration._codemod import _Parsed
from resilient.migration._codemod_scope import Parsed, string_literal_count
from resilient.migration._migrate_run import _mentions_mock, _Rewriters
from resilient.migration._migrate_slice import slice_source, split_lines
from resilient.migration._names import MockNames

from .fixtures_migrate import migrate, write_tree

SCOPES = """\
import os.path
import a.b.c as abc
from . import sibling
from .cb import MockCircuitBreaker as CB, Other
from ..top import thing as top_thing
from typing import TypeVar, cast

print(late)
late = 1
T = TypeVar("T", bound="CB")
VALUE = CB("x") or top_thing
ALIAS = cast("CB", VALUE)


def decorate(f):
    return f


class Manager:
    attr = thing
    other = attr

    @decorate
    def get(self, name=VALUE, *args, key: CB = None, **kw) -> CB:
        local = [n for n in name if n and attr]
        inner = lambda v=local: v + len(local)
        before = after
        after = 1
        return CB(name), inner, os.path.join(name), os.sep, sibling, abc.d, before

    def again(self):
        self.value = Manager.attr
        return self.value, [x for x in range(3) for y in range(x) if (z := y)], z


def outer():
    x = 1
    y = 2

    def inner():
        nonlocal x
        global VALUE
        VALUE = x
        return x, y, VALUE, print

    class Local:
        x = y
        w = [x for _ in range(2)]

        def m(self):
            return x

    try:
        pass
    except Exception as err:
        print(err)
    with open("f") as (fh, _):
        print(fh)
    for i, (j, k) in enumerate({}):
        print(i, j, k)
    match x:
        case [first, *rest] if first:
            print(first, rest)
        case {"k": v, **others}:
            print(v, others)
        case Local(x=found) | found:
            print(found)
    del y
    return inner
"""

POSITIONS = """\
x = (  # why
    Mock("a",
         b=1)
)
y = ((q))
z = [(a), (b.c)]
print((yield_) if x else (y))
(a).b = f(x)(y)
w = "a" "b" 'c'
v = f"{(a)}" f"{b!r:>{width}}"
u = {"k": (1,), **(d)}
t = x[(1, 2), (3)]
with (a) as b, (c):
    pass
with (d):
    pass


class C((Base), metaclass=(M)):
    def f(self, a=(1), *, b=[(2)]):
        return (
            self.g(
                a,
                # comment
                b,
            )
        )
    if (self):
        pass
    elif (x and
          y):
        pass
    assert (x), (
        "message"
    )


def g():
    return \\
        value
"""


def _cst_names(source: str, module: str, package: str) -> list[tuple[int, int, list[str]]]:
    wrapper = MetadataWrapper(
        cst.parse_module(source),
        cache={FullyQualifiedNameProvider: ModuleNameAndPackage(module, package)},
    )
    found = wrapper.resolve(FullyQualifiedNameProvider)
    positions = wrapper.resolve(PositionProvider)
    out: list[tuple[int, int, list[str]]] = []

    class _Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            where = positions[node].start
            out.append((where.line, where.column, sorted(q.name for q in found.get(node, ()))))

    wrapper.module.visit(_Names())
    return out


def test_names_resolve_like_fully_qualified_name_provider_in_corner_cases() -> None:
    """Accesses before assignment, class scopes, comprehensions, global/nonlocal, patterns."""
    parsed = _Parsed(SCOPES, "pkg/sub/mod.py", "pkg.sub.mod", "pkg.sub")
    ours: dict[tuple[int, int], list[str]] = {}

    class _Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            if parsed.covers(node):
                where = parsed.positions[node].start
                ours[where.line, where.column] = parsed.fqn_names(node)

    parsed.tree.visit(_Names())
    theirs = {
        (line, col): names for line, col, names in _cst_names(SCOPES, "pkg.sub.mod", "pkg.sub")
    }
    assert len(ours) > 100  # every ast name, parameter and definition
    assert ours == {where: theirs[where] for where in ours}
    assert ["pkg.sub.cb.MockCircuitBreaker"] in ours.values()
    assert ["pkg.top.thing"] in ours.values()


def _cst_spans(source: str) -> dict[tuple[str, int, int, int, int], str]:
    """LibCST's position and code of each node kind the analysis reports or edits."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    out: dict[tuple[str, int, int, int, int], str] = {}
    kinds = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Assign, cst.ClassDef)

    class _Nodes(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, kinds):
                where = positions[node]
                key = (
                    type(node).__name__,
                    where.start.line,
                    where.start.column,
                    where.end.line,
                    where.end.column,
                )
                out[key] = module.code_for_node(node)
            return True

    module.visit(_Nodes())
    return out


_KINDS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Assign, ast.ClassDef)


def _ast_nodes(parsed: Parsed) -> Iterator[tuple[str, ast.AST]]:
    for node in ast.walk(parsed.tree):
        if isinstance(node, _KINDS):
            yield type(node).__name__, node


@pytest.mark.parametrize("source", [POSITIONS, SCOPES])
def test_positions_and_text_match_libcst(source: str) -> None:
    """Keys (type, start, end in characters) and node text equal LibCST's, parentheses too."""
    expected = _cst_spans(source)
    parsed = Parsed(source, "m.py", "m", "")
    seen = 0
    for kind, node in _ast_nodes(parsed):
        key = parsed.key(node, kind)
        assert key in expected, (key, parsed.segment(node))
        if kind != "ClassDef" and kind != "Assign":
            assert parsed.code(node) == expected[key], key
        seen += 1
    assert seen > 50


def test_positions_count_characters_not_bytes() -> None:
    """A line with non-ASCII text before a node keeps LibCST's column."""
    source = "s = 'café'; x = Mock('ü')\n"
    parsed = Parsed(source, "m.py", "m", "")
    call = next(n for n in ast.walk(parsed.tree) if isinstance(n, ast.Call))
    assert parsed.key(call, "Call") in _cst_spans(source)


@pytest.mark.parametrize(
    ("segment", "count"),
    [('"a"', 1), ('"a" "b"', 2), ("'''a\n'b'''", 1), ('("a"  # c\n "b")', 2), (r'"a\"" b"x"', 2)],
)
def test_string_literals_are_counted_as_libcst_splits_them(segment: str, count: int) -> None:
    """One literal is a SimpleString; several make a ConcatenatedString."""
    assert string_literal_count(segment) == count


# -- the rewrite's shortcuts ------------------------------------------------------------------

APPLY_SOURCE = """\
import logging
from typing import Any


class MockCircuitBreaker:
    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, func: Any) -> Any:
        return func()
    # a comment the class keeps


class Manager:
    def unrelated(self) -> int:
        return 1

    def get(self, name: str) -> MockCircuitBreaker:
        return MockCircuitBreaker(name)


def helper():
    pass
    # belongs to helper


class Other:
    pass
"""


def test_the_rewrite_slice_blanks_inside_classes_and_functions() -> None:
    """Method bodies without edits, and the body of a deleted class, become placeholders."""
    lines = split_lines(APPLY_SOURCE)
    deleted_at = next(i for i, ln in enumerate(lines, 1) if ln.startswith("class Mock"))
    deleted_end = next(i for i, ln in enumerate(lines, 1) if "return func()" in ln)
    get_line = next(i for i, ln in enumerate(lines, 1) if "return MockCircuitBreaker" in ln)
    part = slice_source(
        APPLY_SOURCE,
        {"Manager"},
        MockNames(),
        force_lines={deleted_at, get_line},
        follow=False,
        removals={deleted_at},
        deleted={(deleted_at, deleted_end)},
    )
    assert len(split_lines(part.text)) == len(lines)
    assert "return func()" not in part.text  # the deleted class's body
    assert "# a comment the class keeps" in part.text  # not part of any statement
    assert "return 1" not in part.text  # a method without an edit
    assert "return MockCircuitBreaker(name)" in part.text
    assert "class Other" not in part.text
    assert part.vanishing  # the class body's placeholder may go with the class
    assert part.restore(part.text) == APPLY_SOURCE
    # the class is gone: its placeholder with it, the others back in place
    without = "".join(
        ln for i, ln in enumerate(split_lines(part.text), 1) if not deleted_at <= i <= deleted_end
    )
    restored = part.restore(without)
    assert restored is not None
    assert "return 1" in restored
    assert "return func()" not in restored
    cst.parse_module(part.text)


def test_a_compound_statement_above_a_removed_one_stays_whole() -> None:
    """Comments under a block belong to it or to what follows by indentation: kept as is."""
    source = "def helper():\n    pass\n    # helper's\n\n\nclass MockBreaker:\n    pass\n"
    part = slice_source(
        source, (), MockNames(), force_lines={6}, follow=False, removals={6}, deleted={(6, 7)}
    )
    assert "def helper():" in part.text


@pytest.mark.parametrize(
    "data",
    [
        b"x = MockCircuitBreaker()\n",
        b"x = 9MockBreaker + y\n",
        b"fakebreaker = 1\n",
        b"a = '\xc3\xa4MockBreaker'\n",
        b"NoOpBreaker2 = None\n",
        b"# breaker everywhere, breakers, circuit_breaker\nx = real_breaker\n",
        b"Simulated = 1; SimulatedPaymentGateway = 2\n",
    ],
)
@pytest.mark.parametrize("extra", [(), ("Simulated*",), ("*Gateway",), ("x*y",)])
def test_the_prefilter_finds_what_an_identifier_scan_finds(
    data: bytes, extra: tuple[str, ...]
) -> None:
    """Looking only around the needles finds the same mock names as scanning every identifier."""
    import re

    names = MockNames(extra=extra)
    idents = {m.group(0).decode() for m in re.finditer(rb"[A-Za-z_][A-Za-z0-9_]*", data)}
    expected = names.may_mention(data.lower()) and any(names.matches(i) for i in idents)
    assert _mentions_mock(data, names) == expected


def test_one_job_means_one_process() -> None:
    """`--jobs 1` never starts a worker, whatever the number of candidates."""
    rewriters = _Rewriters(1)
    rewriters.start(1000, MockNames())
    assert rewriters.pool is None


SVC = """\
    from app.cb import MockCircuitBreaker


    def make(name):
        return MockCircuitBreaker(name)
"""

SYNC_MOCK = """\
    class MockCircuitBreaker:
        def __init__(self, name):
            self.name = name

        def call(self, func, *args, **kwargs):
            return func(*args, **kwargs)
"""


def test_rewrite_workers_give_what_one_process_gives(tmp_path: Path) -> None:
    """With rewrite workers (`--jobs 2`) the result is the same as in one process."""
    tree = {
        "app/__init__.py": "",
        "app/cb.py": SYNC_MOCK,
        **{f"app/svc{i}.py": SVC for i in range(4)},
    }
    outcomes = []
    for jobs in (1, 2):
        root = tmp_path / f"j{jobs}"
        write_tree(root, tree)
        result = migrate(root, jobs=jobs)
        outcomes.append((result.files, result.manual, [r.path for r in result.report.changed]))
    assert outcomes[0] == outcomes[1]
    assert "get_breaker(name)" in outcomes[0][0]["app/svc0.py"].decode()


def test_libcst_is_imported_only_when_a_file_is_rewritten(tmp_path: Path) -> None:
    """A run with nothing to rewrite (here: only a manual site) never loads LibCST."""
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/svc.py": "from elsewhere import MockCircuitBreaker\n\nB = MockCircuitBreaker('x')\n",
            "app/plain.py": "x = 1\n",
        },
    )
    code = textwrap.dedent(
        """
        import sys
        from resilient.migration._cli import main
        code = main(["migrate", "--jobs", "1", "."])
        print("libcst" in sys.modules, code)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.stdout.split() == ["False", "0"], proc.stderr


_SLICE_SOURCES = [
    APPLY_SOURCE,
    APPLY_SOURCE.replace("\n", "\r\n"),
    "import os\nx = 1; y = 2\nz = 3\n\n@decorate\nclass A:\n    pass\n# tail comment\n",
    '"""Doc."""\nfrom app.cb import MockBreaker\n\n\ndef f():\n    return 1\n\n\n'
    "CB = MockBreaker\nw = 'caf\u00e9'\nlast = 2",
    "if TYPE_CHECKING:\n    from x import Y\nvalue = (\n    1,\n    2,\n)\nb = Manager()\n",
]


@pytest.mark.parametrize("source", _SLICE_SOURCES)
@pytest.mark.parametrize("interesting", [(), ("Manager",), ("A", "f", "value")])
def test_the_slice_tree_is_what_parsing_the_slice_gives(
    source: str, interesting: tuple[str, ...]
) -> None:
    """The analysis uses the tree the slice carries instead of parsing it: they are equal."""
    part = slice_source(source, interesting, MockNames())
    assert part.tree is not None
    expected = ast.dump(ast.parse(part.text), include_attributes=True)
    assert ast.dump(part.tree, include_attributes=True) == expected


def test_the_slice_tree_matches_on_a_generated_tree(tmp_path: Path) -> None:
    """Every file of a generated service tree (benchmarks/gen_tree.py): the same equality."""
    script = Path(__file__).parents[2] / "benchmarks" / "gen_tree.py"
    subprocess.run(
        [sys.executable, str(script), str(tmp_path), "--files", "300", "--mock-rate", "0.05"],
        check=True,
        capture_output=True,
    )
    checked = blanked = 0
    for path in sorted(tmp_path.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for interesting in ((), ("BreakerManager", "get_breaker_manager")):
            part = slice_source(text, interesting, MockNames())
            if part.tree is None:
                continue
            expected = ast.dump(ast.parse(part.text), include_attributes=True)
            assert ast.dump(part.tree, include_attributes=True) == expected, path
            checked += 1
            blanked += bool(part.stand_ins)
    assert checked > 300
    assert blanked > 100  # placeholders were built, not only whole modules handed back


# -- the rewrite's position table -----------------------------------------------------------

SPAN_SOURCES = [
    SCOPES,
    "@deco(1)\n@other\nclass A(B, metaclass=M):\n    x: int = (1 +\n         2)\n",
    "async def f(a, /, b=1, *c, d: 'T' = 2, **e) -> None:\n    async with x as (y, z):\n        await g()\n",
    "x = [i for i in range(3) if i]; y = {k: v for k, v in z}\nlambda a, *b: (a, b)\n",
    "s = f'{a!r:>{w}} {b}'  # comment\nt = '''multi\nline''' \\\n    'more'\n",
    "if (n := len(a)) > 10:\n\tpass\nelif x:\n\tpass\nelse:\n\tpass\n",
    "match p:\n    case [x, *rest] if x:\n        pass\n    case {'k': v, **kw}:\n        pass\n    case Point(x=0) | None:\n        pass\n",
    "try:\n    import a.b as c\nexcept (E, F) as e:\n    raise X from e\nfinally:\n    del q[1:2, ::3]\n",
    "x = 1\r\ny = (\r\n    2,\r\n)\r\n",
    "global_ = not -a ** b @ c // d if e else f\nwith (open(a) as b, open(c) as d):\n    pass\n",
]


@pytest.mark.parametrize("source", SPAN_SOURCES)
def test_the_span_table_equals_libcst_positions_for_every_node(source: str) -> None:
    """The rewrite's SpanProvider records exactly PositionProvider's range for each node."""
    from resilient.migration._codemod_apply import SpanProvider

    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    spans = wrapper.resolve(SpanProvider)
    assert set(spans) == set(positions)
    for node, where in positions.items():
        expected = (where.start.line, where.start.column, where.end.line, where.end.column)
        assert spans[node] == expected, (type(node).__name__, expected)


def test_the_span_table_equals_libcst_positions_on_this_codebase() -> None:
    """The same on real code: the codemod's own modules."""
    from resilient.migration import _codemod_apply, _codemod_scope, _migrate_run

    for module in (_codemod_apply, _codemod_scope, _migrate_run):
        source = Path(str(module.__file__)).read_text()
        wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
        positions = wrapper.resolve(PositionProvider)
        spans = wrapper.resolve(_codemod_apply.SpanProvider)
        assert {
            node: (w.start.line, w.start.column, w.end.line, w.end.column)
            for node, w in positions.items()
        } == dict(spans)
