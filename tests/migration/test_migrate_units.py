"""The codemod's building blocks: its tables against the real runtime, and its helpers."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import given
from hypothesis import strategies as st
from libcst.metadata import FullyQualifiedNameProvider, MetadataWrapper
from resilient.migration._codemod import _Parsed, _Walker
from resilient.migration._codemod_model import (
    Arg,
    Attr,
    CallOf,
    ClassInfo,
    DefClass,
    DefFunc,
    Item,
    Param,
    Ref,
    SelfOf,
)
from resilient.migration._codemod_resolve import Resolver, VBreaker
from resilient.migration._codemod_rules import (
    BREAKER_API,
    CONFIG_FIELDS,
    KEYWORD_ALIASES,
    map_arguments,
    setting_for,
)
from resilient.migration._migrate_io import (
    SourceError,
    decode_source,
    encode_source,
    module_name,
    write_atomic,
)
from resilient.migration._migrate_slice import slice_source, split_lines
from resilient.migration._names import MockNames

import resilient
from resilient import BreakerConfig, CircuitBreaker

# -- the tables match the runtime ------------------------------------------------------


def test_breaker_api_is_exactly_what_circuit_breaker_offers() -> None:
    """Uses the codemod keeps as they are must exist on resilient.CircuitBreaker."""
    public = {n for n in dir(CircuitBreaker) if not n.startswith("_")}
    assert public == BREAKER_API


def test_config_fields_are_breaker_config_fields() -> None:
    """Keywords passed through unchanged are exactly BreakerConfig's fields."""
    assert {f.name for f in dataclasses.fields(BreakerConfig)} == CONFIG_FIELDS
    assert set(KEYWORD_ALIASES.values()) <= CONFIG_FIELDS


@pytest.mark.parametrize("keyword", sorted(KEYWORD_ALIASES))
def test_every_mapped_keyword_is_accepted_by_get_breaker(keyword: str) -> None:
    """A mock keyword mapped by the codemod is a setting get_breaker() accepts."""
    setting = setting_for(keyword)
    assert setting is not None
    breaker = resilient.get_breaker(f"mapped-{keyword}", **{setting: 3})
    assert getattr(breaker.config, setting) == 3


# -- argument mapping ------------------------------------------------------------------

INIT = (
    Param("name", "positional", has_default=False),
    Param("failure_threshold", "positional", has_default=True),
    Param("recovery_timeout", "positional", has_default=True),
    Param("timeout_seconds", "positional", has_default=True),
)


def _args(*spec: str) -> tuple[Arg, ...]:
    out = []
    for item in spec:
        keyword, _, code = item.rpartition("=")
        literal = code.strip("'") if code.startswith("'") else None
        out.append(Arg(keyword or None, code, literal, star=code.startswith("*")))
    return tuple(out)


@pytest.mark.parametrize(
    ("args", "init", "expected"),
    [
        (("'a'",), INIT, ((0, None),)),
        (("'a'", "3", "5"), INIT, ((0, None), (1, "failure_threshold"), (2, "recovery_timeout"))),
        (("timeout_seconds=2", "name='a'"), INIT, ((1, None), (0, "call_timeout"))),
        (("'a'", "reset_timeout=9"), None, ((0, None), (1, "recovery_timeout"))),
        (("'a'", "half_open_max_calls=2"), None, ((0, None), (1, "half_open_max_calls"))),
    ],
)
def test_arguments_map_to_get_breaker(
    args: tuple[str, ...], init: tuple[Param, ...] | None, expected: tuple[object, ...]
) -> None:
    """The name goes first; positional settings become keywords with resilient's names."""
    mapping = map_arguments(_args(*args), init)
    assert mapping.reason is None
    assert mapping.args == expected


@pytest.mark.parametrize(
    ("args", "init", "reason"),
    [
        ((), INIT, "no breaker name"),
        (("'a'", "timeout=1"), None, "`timeout` is ambiguous"),
        (("'a'", "expected_exception=KeyError"), None, "no resilient equivalent"),
        (("'a'", "1", "2", "3", "4"), INIT, "no known parameter name"),
        (("*opts",), INIT, "`*args`/`**kwargs`"),
        (("'a'", "fail_max=1", "failure_threshold=2"), None, "two arguments set"),
        (("'a'", "colour=1"), INIT, "not a parameter of the mock"),
    ],
)
def test_arguments_without_a_safe_mapping_give_a_reason(
    args: tuple[str, ...], init: tuple[Param, ...] | None, reason: str
) -> None:
    """Anything without a known meaning makes the construction manual, with a reason."""
    mapping = map_arguments(_args(*args), init)
    assert mapping.reason is not None
    assert reason in mapping.reason


# -- names resolve like FullyQualifiedNameProvider ---------------------------------------

TRICKY = """\
import os.path
import app.cb as cbmod
from . import sibling
from .cb import MockCircuitBreaker as CB
from ..top import thing

VALUE = CB("x")


class Manager:
    attr = thing

    def get(self, name, *args, key=None, **kw):
        local = [n for n in name if n]
        inner = lambda v: v + len(local)
        return cbmod.MockCircuitBreaker(name), inner, os.path.join(name), sibling


def outer():
    x = 1

    def inner():
        nonlocal x
        global VALUE
        return x, VALUE, print

    return inner
"""


def test_qualified_names_match_fully_qualified_name_provider() -> None:
    """Names asked of the scope on demand equal what FullyQualifiedNameProvider gives."""
    parsed = _Parsed(TRICKY, "pkg/sub/mod.py", "pkg.sub.mod", "pkg.sub")
    parsed.tree.visit(_Walker(parsed))
    wrapper = MetadataWrapper(
        cst.parse_module(TRICKY),
        cache={FullyQualifiedNameProvider: _module_name_and_package("pkg.sub.mod", "pkg.sub")},
    )
    expected = wrapper.resolve(FullyQualifiedNameProvider)
    ours: list[list[str]] = []
    theirs: list[list[str]] = []

    class _Names(cst.CSTVisitor):
        def __init__(self, sink: list[list[str]], lookup: object) -> None:
            super().__init__()
            self.sink = sink
            self.lookup = lookup

        def visit_Name(self, node: cst.Name) -> None:
            if callable(self.lookup):
                self.sink.append(self.lookup(node))

    parsed.tree.visit(_Names(ours, parsed.fqn_names))
    wrapper.module.visit(_Names(theirs, lambda n: sorted(q.name for q in expected.get(n, ()))))
    assert ours == theirs
    assert ["pkg.sub.cb.MockCircuitBreaker"] in ours
    assert ["pkg.top.thing"] in ours


def _module_name_and_package(name: str, package: str) -> object:
    from libcst.helpers import ModuleNameAndPackage

    return ModuleNameAndPackage(name, package)


# -- the resolver -----------------------------------------------------------------------


def _mock(fqn: str) -> ClassInfo:
    return ClassInfo(fqn, "m.py", 1, fqn.rpartition(".")[2], is_mock=True, top_level=True)


@pytest.mark.parametrize("first", ["slot", "local"])
def test_values_through_a_cycle_do_not_depend_on_the_order_asked(first: str) -> None:
    """`b = self.b; self.b = b` plus `self.b = Mock()`: both ends see the breaker."""
    site = ("m.py", 3, 4)
    bindings = {
        "m.Svc.run.<locals>.self": (SelfOf("m.Svc"),),
        "m.Svc.run.<locals>.b": (Attr(Ref("m.Svc.run.<locals>.self"), "b"),),
        "m.Svc#b": (Ref("m.Svc.run.<locals>.b"), CallOf(Ref("m.Mock"), site)),
        "m.Mock": (DefClass("m.Mock"),),
    }
    resolver = Resolver(bindings, {"m.Mock": _mock("m.Mock")})
    order = (
        [Ref("m.Svc#b"), Ref("m.Svc.run.<locals>.b")]
        if first == "slot"
        else [Ref("m.Svc.run.<locals>.b"), Ref("m.Svc#b")]
    )
    for sym in order:
        assert VBreaker("m.Mock", site) in resolver.values(sym)


def test_manager_slot_items_reach_callers() -> None:
    """`self._breakers[name] = Mock(name)` then `return self._breakers[name]`."""
    site = ("m.py", 9, 12)
    bindings = {
        "m.Mock": (DefClass("m.Mock"),),
        "m.Manager": (DefClass("m.Manager"),),
        "m.Manager.get": (DefFunc("m.Manager.get"),),
        "m.Manager.get.<locals>.self": (SelfOf("m.Manager"),),
        "m.Manager#_breakers[]": (CallOf(Ref("m.Mock"), site),),
        "m.Manager#_breakers": (),
        "m.Manager.get()": (Item(Attr(Ref("m.Manager.get.<locals>.self"), "_breakers")),),
        "m.manager": (CallOf(Ref("m.Manager"), ("m.py", 20, 10)),),
    }
    manager = ClassInfo("m.Manager", "m.py", 5, "Manager", is_mock=False, top_level=True)
    resolver = Resolver(bindings, {"m.Mock": _mock("m.Mock"), "m.Manager": manager})
    call = CallOf(Attr(Ref("m.manager"), "get"), ("c.py", 1, 1))
    assert resolver.breakers(call) == {("m.Mock", site)}
    assert resolver.carriers() == {"Mock": {"m.Mock"}, "Manager": {"m.Mock"}, "manager": {"m.Mock"}}


# -- slicing ------------------------------------------------------------------------------

BIG = """\
\"\"\"Doc.\"\"\"
import json
from app.cb import MockCircuitBreaker as CB

_BREAKERS = {}
a = 1; b = 2


def unrelated(x,
              y):
    return json.dumps(x)


def breaker_for(name):
    if name not in _BREAKERS:
        _BREAKERS[name] = CB(name)
    return _BREAKERS[name]


def user():
    return breaker_for("u")


class Other:
    pass
"""


def test_slice_keeps_positions_and_what_can_matter() -> None:
    """Kept statements keep their lines; aliases, users and filled dicts are kept."""
    part = slice_source(BIG, (), MockNames())
    assert len(split_lines(part.text)) == len(split_lines(BIG))
    kept = part.text
    assert "_BREAKERS = {}" in kept
    assert "def breaker_for(name):" in kept
    assert "return breaker_for" in kept  # uses a name a kept statement binds
    assert "def unrelated" not in kept
    assert "class Other" not in kept
    assert "a = 1; b = 2" not in kept
    for line_no, line in enumerate(split_lines(BIG), 1):
        if line.strip() and line in kept:
            assert split_lines(kept)[line_no - 1] == line
    assert part.restore(part.text) == BIG
    cst.parse_module(part.text)


def test_slice_is_the_whole_text_when_ast_cannot_parse() -> None:
    """An unparsable module is not sliced; LibCST reports the error itself."""
    text = "def broken(:\n    MockCircuitBreaker()\n"
    assert slice_source(text, (), MockNames()).text == text


def test_slice_restore_refuses_a_lost_placeholder() -> None:
    """If a placeholder does not come back exactly once, restore gives None."""
    part = slice_source(BIG, (), MockNames())
    placeholder = part.stand_ins[0][0]
    assert part.restore(part.text.replace(placeholder, "")) is None


# -- reading and writing files ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"x = 1\r\ny = 2\r\n",
        "\ufeff# caf\u00e9\nx = 1\n".encode(),
        "# -*- coding: latin-1 -*-\ns = 'd\u00e9j\u00e0'\n".encode("latin-1"),
        b"x = 1\ry = 2\r",
        b"no_newline = True",
    ],
)
def test_decode_then_encode_gives_the_same_bytes(data: bytes) -> None:
    """BOM, encoding cookie and newlines survive a round trip untouched."""
    assert encode_source(decode_source(data).text, decode_source(data)) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x = 1\n\x00\n", "line 2: file contains null bytes"),
        (b"x = '\xff'\n", "cannot decode as utf-8: byte 0xff at offset 5"),
        (b"# -*- coding: nope -*-\n", "cannot decode"),
    ],
)
def test_undecodable_sources_say_why(data: bytes, message: str) -> None:
    """Bad bytes raise SourceError with a message naming the problem."""
    with pytest.raises(SourceError, match=message.replace("(", r"\(")):
        decode_source(data)


def test_write_atomic_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The file is replaced whole, with its permission bits, and nothing else is left."""
    target = tmp_path / "m.py"
    target.write_bytes(b"old\n")
    os.chmod(target, 0o751)
    write_atomic(str(target), b"new\n", expected=b"old\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]


def test_write_atomic_refuses_a_file_changed_since_it_was_read(tmp_path: Path) -> None:
    """A file edited during the run is not overwritten."""
    target = tmp_path / "m.py"
    target.write_bytes(b"edited meanwhile\n")
    with pytest.raises(SourceError, match="changed on disk"):
        write_atomic(str(target), b"new\n", expected=b"old\n")
    assert target.read_bytes() == b"edited meanwhile\n"


def test_write_atomic_follows_a_symlink(tmp_path: Path) -> None:
    """Writing through a link replaces the target and keeps the link."""
    target = tmp_path / "real.py"
    target.write_bytes(b"old\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    write_atomic(str(link), b"new\n", expected=b"old\n")
    assert link.is_symlink()
    assert target.read_bytes() == b"new\n"


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root can write read-only folders; the mkstemp-refusal test covers it as root",
)
def test_write_atomic_in_a_read_only_folder_fails_cleanly(tmp_path: Path) -> None:
    """A folder that cannot hold the temporary file gives SourceError, file untouched."""
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / "m.py"
    target.write_bytes(b"old\n")
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(SourceError, match="temporary file"):
            write_atomic(str(target), b"new\n", expected=b"old\n")
    finally:
        os.chmod(folder, 0o755)
    assert target.read_bytes() == b"old\n"


def test_write_atomic_when_no_temporary_file_can_be_made(tmp_path: Path, monkeypatch) -> None:
    """If the temporary file cannot be created (as in a read-only folder, which root can
    still write), SourceError says so and the file is untouched; this runs as root too."""
    import tempfile

    target = tmp_path / "m.py"
    target.write_bytes(b"old\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(SourceError, match="temporary file"):
        write_atomic(str(target), b"new\n", expected=b"old\n")
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]


def test_module_names_follow_packages(tmp_path: Path) -> None:
    """Dotted names come from __init__.py parents; a src/ folder is not a package."""
    for rel in ("src/app/__init__.py", "src/app/core/__init__.py", "src/app/core/cb.py", "x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert module_name(str(tmp_path / "src/app/core/cb.py")) == ("app.core.cb", "app.core")
    assert module_name(str(tmp_path / "src/app/core/__init__.py")) == ("app.core", "app.core")
    assert module_name(str(tmp_path / "x.py")) == ("x", "")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_map_keeps_the_order_and_redoes_what_a_child_could_not_deliver() -> None:
    """Results come back in order; a child that dies has its items done here."""
    from resilient.migration._fork import fork_map

    parent = os.getpid()

    def square(x: int) -> int:
        if x == 4 and os.getpid() != parent:  # item 4 goes to the first child: it dies
            os._exit(9)
        return x * x

    assert fork_map(square, list(range(10)), processes=3) == [x * x for x in range(10)]

    def boom(x: int) -> int:
        if x == 1:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError):  # raised again here, as without forking
        fork_map(boom, [0, 1, 2, 3], processes=2)
    assert fork_map(square, [], processes=4) == []

    def fails_here(x: int) -> str:
        if os.getpid() == parent:
            raise ValueError(x)
        return "x" * 200_000  # more than a pipe holds: the child blocks writing it

    children_before = _children()
    with pytest.raises(ValueError):
        fork_map(fails_here, [0, 1], processes=2)
    assert _children() == children_before  # the blocked child was stopped and reaped


def _children() -> set[int]:
    """PIDs of this process's children (Linux /proc), or an empty set elsewhere."""
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    try:
        with open(path) as fh:
            return {int(p) for p in fh.read().split()}
    except OSError:
        return set()


@given(
    st.lists(st.sampled_from(["", "a", "b.py", ".", "..", "/", "//", "x y", "é"]), max_size=6).map(
        "/".join
    ),
    st.sampled_from(["m.py", "a", ".hidden", "é.py"]),
)
def test_path_helpers_of_the_file_list_equal_os_path(path: str, name: str) -> None:
    """The per-file string versions of split and join give os.path's answers."""
    import posixpath

    from resilient.migration._migrate_run import _join, _split

    assert _split(path) == posixpath.split(path)
    assert _join(path, name) == posixpath.join(path, name)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_file_list_paths_equal_os_path_on_a_real_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Absolute, resolved and shown paths of the run's files are os.path's, links included."""
    from resilient.migration._migrate_run import _display, _Paths

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "m.py").write_text("")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "r.py").write_text("")
    (tmp_path / "pkg" / "link").symlink_to(tmp_path / "real")
    (tmp_path / "pkg" / "ln.py").symlink_to(tmp_path / "real" / "r.py")
    monkeypatch.chdir(tmp_path / "pkg")
    paths = _Paths()
    for named in (
        "sub/m.py",
        "sub/../sub/m.py",
        "m.py",
        "./sub/m.py",
        "link/r.py",
        "ln.py",
        "../real/r.py",
        str(tmp_path / "pkg/sub/m.py"),
    ):
        for maybe_link in (True, False):
            if maybe_link or not os.path.islink(named):
                absolute, real = paths.locate(named, maybe_link=maybe_link)
                assert absolute == os.path.abspath(named)
                assert real == os.path.realpath(named)
                assert paths.display(absolute) == _display(named)


@given(
    st.sampled_from(["_resilient_slice_0_", "_x_12_", "a"]),
    st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=500),
)
def test_placeholder_nodes_are_built_as_ast_parses_them(
    name: str, endings: list[str], line: int
) -> None:
    """A placeholder's node, built without the parser, equals the parsed one (positions too)."""
    import ast

    from resilient.migration._migrate_slice import _built_stand_in

    if len(endings) == 1:
        stand_in = f'{name} = ""{endings[0]}'
    else:
        stand_in = f'{name} = """{"".join(endings[:-1])}"""{endings[-1]}'
    built = _built_stand_in(stand_in, line)
    parsed = ast.increment_lineno(ast.parse(stand_in).body[0], line - 1)
    assert built is not None
    assert ast.dump(built, include_attributes=True) == ast.dump(parsed, include_attributes=True)
    assert _built_stand_in("    " + stand_in, line) is None  # indented: parsed instead
    assert _built_stand_in(f"{name} = 1\n", line) is None
