"""Unit tests for the guard's building blocks: names, files, configuration, prefilter, workers."""

from __future__ import annotations

import bisect
import errno
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from resilient.migration import _check, _config
from resilient.migration._check import CheckOptions, check_file, check_files, check_source
from resilient.migration._check_git import GitScan, git_pattern, select
from resilient.migration._config import ConfigFileError, load_config, parse_tool_table
from resilient.migration._files import PathMatcher, discover, is_test_path
from resilient.migration._names import DEFAULT_MOCK_PATTERNS, MockNames, is_mock_breaker_name

from .test_check import INCIDENT_MOCK, SIMULATION_FACTORY

# -- names -------------------------------------------------------------------------------


def test_default_patterns_are_documented_and_matched() -> None:
    """Each documented pattern matches a name built from it, in any case."""
    for pattern in DEFAULT_MOCK_PATTERNS:
        name = pattern.replace("*", "Circuit")
        assert is_mock_breaker_name(name), name
        assert is_mock_breaker_name(name.upper()), name
        assert is_mock_breaker_name(pattern.replace("*", "")), pattern


def test_extra_names_are_globs_in_any_case() -> None:
    """`mock-names` entries are exact names or globs, matched in any case."""
    names = MockNames(extra=("LegacyBreaker", "Sim*Guard"))
    assert names.matches("legacybreaker")
    assert names.matches("SimPaymentsGuard")
    assert not names.matches("PaymentsGuard")
    assert names.may_mention(b"x = simfooguard()")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MockCircuitBreaker", "MockCircuitBreaker"),
        ("app.cb.FakeBreaker", "FakeBreaker"),
        ("app.cb:NullBreaker", "NullBreaker"),
        ("the MockCircuitBreaker class", None),
        ("app/cb/MockBreaker", None),
        ("app.cb.CircuitBreaker", None),
    ],
)
def test_string_references_are_dotted_names_only(text: str, expected: str | None) -> None:
    """Only a bare or dotted name refers to a mock; prose that mentions one does not."""
    assert MockNames().string_reference(text) == expected


# -- files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("tests/unit/x.py", True),
        ("pkg/test/x.py", True),
        ("pkg/testing/x.py", True),
        ("pkg/test_x.py", True),
        ("pkg/x_test.py", True),
        ("pkg/conftest.py", True),
        ("pkg/testament.py", False),
        ("pkg/contest.py", False),
        ("pkg/latest/x.py", False),
        ("tests.py", False),
    ],
)
def test_test_code_rules(rel: str, expected: bool) -> None:
    """DESIGN's default test paths, and nothing that merely looks similar."""
    assert is_test_path(rel, root=Path.cwd()) is expected


def test_test_paths_are_relative_to_the_project_root(tmp_path: Path) -> None:
    """A checkout that lives under a folder named `tests` is not all test code."""
    root = tmp_path / "tests" / "checkout"
    assert not is_test_path(root / "app" / "x.py", root=root)
    assert is_test_path(root / "qa" / "x.py", ["qa/**"], root=root)


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("generated", "app/generated/x.py", True),
        ("*_pb2.py", "app/api/thing_pb2.py", True),
        ("src/legacy/**", "src/legacy/a/b.py", True),
        ("src/legacy/**", "other/src/legacy/b.py", False),
        ("qa/*.py", "qa/x.py", True),
        ("qa/*.py", "qa/sub/x.py", False),
        ("**/fixtures", "a/b/fixtures/x.py", True),
    ],
)
def test_glob_semantics(glob: str, path: str, expected: bool) -> None:
    """Globs without `/` match any path part; with `/` they are anchored at the root."""
    assert PathMatcher((glob,)).matches(path) is expected


def test_discover_reports_missing_paths_and_keeps_explicit_files(tmp_path: Path) -> None:
    """Missing arguments are listed; explicit files are taken whatever their name."""
    script = tmp_path / "deploy"
    script.write_text("x = 1\n")
    found = discover([str(script), str(tmp_path / "nope")], root=tmp_path)
    assert [f.path for f in found.files] == [str(script)]
    assert found.files[0].explicit
    assert found.missing == [str(tmp_path / "nope")]


# -- configuration ---------------------------------------------------------------------

PYPROJECT = """\
[project]
name = "x"  # not ours

[tool.ruff]
line-length = 100

[tool.resilient]
mock-names = ["LegacyBreaker", 'Sim*Breaker',  # comment
  "Other",
]
test-paths = ["qa/**"]
exclude = "generated"

[tool.resilient.migrate]
write = true
"""


def test_python310_reader_agrees_with_tomllib() -> None:
    """The 3.10 fallback reads [tool.resilient] exactly as tomllib does."""
    expected = {
        "mock-names": ["LegacyBreaker", "Sim*Breaker", "Other"],
        "test-paths": ["qa/**"],
        "exclude": "generated",
        "migrate": {"write": True},
    }
    assert parse_tool_table(PYPROJECT) == expected
    assert _config._mini_tool_table(PYPROJECT, "pyproject.toml") == expected


def test_python310_reader_refuses_what_it_cannot_read() -> None:
    """Values outside the supported subset are an error, never a guess."""
    with pytest.raises(ConfigFileError, match="cannot read this value"):
        _config._mini_tool_table("[tool.resilient]\nmock-names = {a = 1}\n", "pyproject.toml")


def test_python310_reader_reads_numbers_and_rejects_open_headers() -> None:
    """Numbers are read (so validation can name the key); an unclosed header is invalid TOML."""
    table = _config._mini_tool_table("[tool.resilient]\nmock-names = 3\n", "pyproject.toml")
    assert table == {"mock-names": 3}
    with pytest.raises(ConfigFileError, match="invalid TOML"):
        _config._mini_tool_table("[tool.resilient\nmock-names = 1\n", "pyproject.toml")


def test_config_is_found_upwards_and_stops_at_the_checkout(tmp_path: Path) -> None:
    """The nearest pyproject with [tool.resilient] wins; the search stops at `.git`."""
    (tmp_path / "pyproject.toml").write_text('[tool.resilient]\nmock-names = ["Outer"]\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    assert load_config(start=repo / "src").mock_names == ()
    (repo / "pyproject.toml").write_text('[tool.resilient]\nmock-names = ["Inner"]\n')
    config = load_config(start=repo / "src")
    assert config.mock_names == ("Inner",)
    assert config.root == repo.resolve()


# -- the prefilter never hides a finding ----------------------------------------------

CORPUS = [
    INCIDENT_MOCK,
    SIMULATION_FACTORY.format(comment="# resilient: ignore[RES003]"),
    "from unittest.mock import MagicMock\nbreaker = MagicMock()\n",
    "try:\n    import pybreaker\nexcept ImportError:\n    class CircuitBreaker:\n        pass\n",
    "class Guard:\n    def on_error(self):\n        self._state = State.OPEN\n",
    "x = 1  # resilient: ignore[RES002]\n",
    "import app.cb as m\nb = m.MockCircuitBreaker()\n",
    "def f(b: 'FakeBreaker') -> None: ...\n",
]


@pytest.mark.parametrize("source", CORPUS)
def test_prefilter_never_hides_a_finding(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Findings are the same whether or not the cheap text prefilter runs."""
    data = source.encode()
    filtered = check_source(data, "m.py")
    assert filtered, "corpus entries all have findings"
    monkeypatch.setattr(_check, "needs_parse", lambda lowered, names: True)
    assert check_source(data, "m.py") == filtered


def test_files_without_candidate_text_are_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed: a file that cannot hold a finding never reaches the parser."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(_check.ast, "parse", boom)
    source = "import os\n\nclass Files:\n    def read(self):\n        return open('x').read()\n"
    assert check_source(source.encode(), "m.py") == []


# -- reading and workers -------------------------------------------------------------------


def test_unreadable_file_is_one_finding_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OSError path: a file the OS refuses to open is one RES000 (works as root too)."""
    path = tmp_path / "secret.py"
    path.write_text("x = 1\n")
    real_open = os.open

    def refuse(p: str, flags: int, *args: int) -> int:
        if os.fspath(p) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(p, flags, *args)

    monkeypatch.setattr(_check.os, "open", refuse)
    (finding,) = check_file(str(path))
    assert (finding.code, finding.line, finding.col) == ("RES000", 1, 1)
    assert finding.message == "cannot read file: Permission denied"


def test_parallel_workers_give_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forked workers return exactly what one process finds, errors included."""
    paths = []
    for i in range(12):
        body = INCIDENT_MOCK if i % 3 == 0 else f"x = {i}\n"
        if i == 4:
            body = "MockBreaker(\n"
        p = tmp_path / f"m{i}.py"
        p.write_text(textwrap.dedent(body))
        paths.append(str(p))
    options = CheckOptions(strict=True)
    one = sorted(check_files(paths, options, jobs=1), key=lambda f: f.sort_key())
    monkeypatch.setattr(_check, "PARALLEL_MIN_FILES", 1)
    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform: workers are not used there")
    many = sorted(check_files(paths, options, jobs=3), key=lambda f: f.sort_key())
    assert many == one
    assert {f.code for f in one} == {"RES000", "RES001", "RES004"}


# -- the git prefilter -------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_scan_reports_searched_files_and_candidates(tmp_path: Path) -> None:
    """git lists what it read from the work tree, and which of those may hold a finding.

    Searched: tracked regular Python files.  Not searched: other files, ignored and
    untracked files, symbolic links, and entries git greps in the index instead of
    the work tree (assume-unchanged, skip-worktree).
    """
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("gen/\n")
    (tmp_path / "a.py").write_text("b = MockBreaker()\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    (tmp_path / "c.py").write_text(
        "class G:\n    def on_failure(self):\n        self.state = 'OPEN'\n"
    )
    (tmp_path / "h.py").write_text("x = 1\n")
    (tmp_path / "s.py").write_text("x = 1\n")
    os.symlink("a.py", tmp_path / "l.py")
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "d.py").write_text("b = MockBreaker()\n")
    (tmp_path / "notes.md").write_text("MockBreaker\n")
    _git(tmp_path, "add", ".gitignore", "notes.md", "a.py", "b.py", "c.py", "h.py", "s.py", "l.py")
    _git(tmp_path, "update-index", "--assume-unchanged", "h.py")
    _git(tmp_path, "update-index", "--skip-worktree", "s.py")
    (tmp_path / "h.py").write_text("b = MockBreaker()\n")  # git greps the indexed copy
    (tmp_path / "s.py").write_text("b = MockBreaker()\n")
    (tmp_path / "u.py").write_text("b = MockBreaker()\n")  # untracked
    scan = GitScan.start(str(tmp_path), git_pattern(MockNames(extra=("Legacy*",))))
    assert scan is not None
    outcome = scan.result()
    assert outcome is not None
    searched, candidates = outcome
    assert searched == {"a.py", "b.py", "c.py"}
    assert candidates == {"a.py", "c.py"}
    paths = ["a.py", "b.py", "c.py", "gen/d.py", "h.py", "s.py", "l.py", "u.py"]
    kept = select(paths, [("", scan)])
    assert kept == ["a.py", "c.py", "gen/d.py", "h.py", "s.py", "l.py", "u.py"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_scan_can_leave_test_code_unread(tmp_path: Path) -> None:
    """With ``skip_tests``, git does not read test code (the guard skips it anyway)."""
    _git(tmp_path, "init", "-q")
    for rel in ("a.py", "tests/b.py", "pkg/test_c.py", "pkg/d_test.py", "conftest.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("b = MockBreaker()\n")
    _git(tmp_path, "add", ".")
    for skip_tests, expected in ((True, {"a.py"}), (False, None)):
        scan = GitScan.start(str(tmp_path), git_pattern(MockNames()), skip_tests=skip_tests)
        assert scan is not None
        outcome = scan.result()
        assert outcome is not None
        searched, candidates = outcome
        assert len(searched) == 5
        assert candidates == (expected or searched)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_scan_that_complains_is_not_trusted(tmp_path: Path) -> None:
    """Anything on git's error output (a file it could not read...) voids the scan."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    # a pattern git's PCRE rejects: git says so on stderr and exits with an error
    scan = GitScan.start(str(tmp_path), ["(?i)breaker", "(unclosed"])
    assert scan is not None
    assert scan.result() is None
    assert select(["a.py"], [("", scan)]) == ["a.py"]


def test_git_pattern_is_a_superset_of_the_python_prefilter() -> None:
    """The "open" assignment patterns are ``_OPENING_RE``, one per leading word."""
    from resilient.migration._check_git import OPENING_TAIL

    opening = _check._OPENING_RE.pattern.decode()
    lead = "(?:open\\w*|state|status|mode)"
    assert opening == lead + OPENING_TAIL
    patterns = git_pattern(MockNames())
    for word in ("open\\w*", "stat(?:e|us)", "mode"):
        assert f"(?i){word}{OPENING_TAIL}" in patterns
    for word in ("breaker", "circuit", "resilient"):
        assert f"(?i){word}" in patterns


def test_git_is_not_used_when_a_name_has_no_literal_part() -> None:
    """A configured name like ``?`` has no text to search for: every file is parsed."""
    assert git_pattern(MockNames(extra=("?",))) == []
    assert GitScan.start(".", git_pattern(MockNames(extra=("?",)))) is None


def test_git_scan_outside_a_checkout_falls_back(tmp_path: Path) -> None:
    """Not a git checkout: no scan result, so every file goes through the Python prefilter."""
    (tmp_path / "a.py").write_text("x = 1\n")
    scan = GitScan.start(str(tmp_path), git_pattern(MockNames()))
    assert scan is None or scan.result() is None
    if scan is not None:
        assert select(["a.py"], [("", scan)]) == ["a.py"]


def test_git_pattern_covers_configured_names() -> None:
    """Configured mock names join the git pattern, escaped."""
    pattern = "\n".join(git_pattern(MockNames(extra=("Sim.Breaker", "Legacy*Guard"))))
    assert "sim\\.breaker" in pattern
    assert "legacy" in pattern


# -- reading git's candidates as they come, with helpers ----------------------------------


def _repo_with_mocks(root: Path, files: int = 30) -> None:
    _git(root, "init", "-q")
    for i in range(files):
        body = ("b = MockBreaker()\n", "x = 1\n", INCIDENT_MOCK, "MockBreaker(\n")[i % 4]
        path = root / f"pkg{i % 3}" / f"m{i}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
    (root / "tests").mkdir()
    (root / "tests" / "test_a.py").write_text("b = MockBreaker()\n")
    _git(root, "add", ".")
    (root / "pkg0" / "untracked.py").write_text("b = FakeBreaker()\n")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="helpers are forked")
@pytest.mark.parametrize("die", [False, True])
def test_helpers_give_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, die: bool
) -> None:
    """Candidates shared with forked helpers: the findings of one process, even if one dies."""
    from resilient.migration import _check_cli
    from resilient.migration._config import Config

    _repo_with_mocks(tmp_path)
    monkeypatch.chdir(tmp_path)
    config = Config(root=tmp_path)
    alone, missing = _check_cli.run_check(["."], config=config, jobs=1, use_git=False)
    assert not missing
    assert {f.code for f in alone} == {"RES000", "RES001", "RES002", "RES004"}
    monkeypatch.setattr(_check_cli, "GIT_HELPERS_MIN_FILES", 1)
    monkeypatch.setattr(_check_cli, "cpus", lambda: 8)  # CPUs to spare besides git's
    made: list[int] = []
    real_init = _check.Helpers.__init__

    def init(self: _check.Helpers, options: CheckOptions, count: int) -> None:
        made.append(count)
        real_init(self, options, count)

    monkeypatch.setattr(_check.Helpers, "__init__", init)
    if die:
        monkeypatch.setattr(_check, "_serve", lambda *_args: os._exit(3))
    shared, _ = _check_cli.run_check(["."], config=config, jobs=3, use_git=True)
    assert shared == alone
    both, _ = _check_cli.run_check(["pkg0", ".", "pkg1/"], config=config, jobs=3)
    assert both == alone
    assert made == [2, 2]  # helpers did take part


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_failure_halfway_checks_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git failing after some candidates: everything it was to rule on is checked."""
    from resilient.migration import _check_cli, _check_git
    from resilient.migration._config import Config

    _repo_with_mocks(tmp_path)
    monkeypatch.chdir(tmp_path)
    config = Config(root=tmp_path)
    alone, _ = _check_cli.run_check(["."], config=config, jobs=1, use_git=False)
    real_finish = _check_git.GitScan._finish

    def fail(self: _check_git.GitScan) -> None:
        real_finish(self)
        self.ok = False

    monkeypatch.setattr(_check_git.GitScan, "_finish", fail)
    monkeypatch.setattr(_check_cli, "GIT_PARALLEL_MIN_FILES", 2)  # fork for what is left
    for jobs in (1, 2):
        found, _ = _check_cli.run_check(["."], config=config, jobs=jobs)
        assert found == alone


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            (
                *(b"class", b"def", b"breaker", b"circuit", b" ", b"\t", b"\n", b"\x0b"),
                *(b"_", b"x9", b"(", b":", b"\xc3\xa9", b"s", b"d", b"ef", b"cla", b"ss"),
                *(b"break", b"er"),
            )
        ),
        max_size=14,
    )
)
def test_breaker_definition_scan_is_the_pattern(parts: list[bytes]) -> None:
    """The look-back scan gives exactly what the regular expression gives."""
    text = b"".join(parts)
    assert _check._defines_breaker(text) == (_check._BREAKER_DEF_RE.search(text) is not None)


_TEXT_PIECES = st.sampled_from(
    (
        *(b"open", b"opened", b"state", b"status", b"mode", b"stat", b"true", b"True"),
        *(b" ", b"\n", b"\t", b"=", b"==", b":", b"'", b'"', b".", b"x", b"_", b"# "),
        *(b"import", b"mock", b"breaker", b"MockBreaker", b"patch", b"attr(", b"\xc3\xa9"),
    )
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_TEXT_PIECES, max_size=24))
def test_opening_scan_is_finditer(parts: list[bytes]) -> None:
    """Trying the pattern only where it can start finds what ``finditer`` finds."""
    text = b"".join(parts).lower()
    expected = [m.start() for m in _check._OPENING_RE.finditer(text)]
    assert _check._opening_starts(text) == expected


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(_TEXT_PIECES, max_size=24),
    st.lists(st.sampled_from([b"import", b"mock", b"mockbreaker", b"x", b"ock", b"e"]), min_size=1),
)
def test_needle_scan_finds_the_same_lines(parts: list[bytes], needles: list[bytes]) -> None:
    """Lines holding a needle are the lines where the needle alternation matches."""
    text = b"".join(parts).lower()
    starts = _check._line_starts(text)

    def lines(offsets: list[int]) -> set[int]:
        return {bisect.bisect_right(starts, p) for p in offsets}

    pattern = _check._needle_pattern(tuple(needles))
    expected = lines([m.start() for m in pattern.finditer(text)])
    assert lines(_check._needle_lines(text, tuple(needles))) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["check", "--format", "json", "--strict", "--jobs", "3", "a", "b"],
        ["check", "--no-git", "--include-tests", "--config", "pyproject.toml"],
        ["migrate"],
        ["migrate", "--write", "--jobs", "2", "--include-tests", "src"],
        ["migrate", "--check", "--no-git"],
    ],
)
def test_one_command_parser_reads_arguments_as_the_full_one(argv: list[str]) -> None:
    """`resilient check|migrate` parse with only their own sub-command loaded: same result."""
    from resilient.migration._cli import build_parser

    full = vars(build_parser().parse_args(argv))
    alone = vars(build_parser(argv[0]).parse_args(argv))
    assert {k: v for k, v in full.items() if k != "handler"} == {
        k: v for k, v in alone.items() if k != "handler"
    }
    assert full["handler"] is alone["handler"]


@pytest.mark.parametrize("command", ["check", "migrate"])
def test_one_command_parser_helps_and_fails_as_the_full_one(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its --help and its usage errors are the full parser's, word for word."""
    from resilient.migration._cli import build_parser

    outputs = []
    for parser in (build_parser(), build_parser(command)):
        for argv in ([command, "--help"], [command, "--jobs", "x"]):
            with pytest.raises(SystemExit) as exit_info:
                parser.parse_args(argv)
            captured = capsys.readouterr()
            outputs.append((exit_info.value.code, captured.out, captured.err))
    assert outputs[:2] == outputs[2:]
    assert outputs[0][0] == 0
    assert f"usage: resilient {command}" in outputs[0][1]
    assert outputs[1][0] == 2
    assert f"resilient {command}: error:" in outputs[1][2]


def test_check_source_uses_a_given_tree_only_for_ascii_text() -> None:
    """A tree handed in saves the parse for an ASCII file; a non-ASCII one is parsed anyway."""
    import ast

    from resilient.migration._check import check_source

    ascii_src = b"from app.cb import MockBreaker\n\nb = MockBreaker('x')\n"
    plain = check_source(ascii_src, "a.py")
    assert [f.code for f in plain] == ["RES002", "RES002"]
    assert check_source(ascii_src, "a.py", tree=ast.parse(ascii_src)) == plain
    # the tree is the caller's word for this text: with an empty one, nothing is found
    assert check_source(ascii_src, "a.py", tree=ast.parse(b"")) == []
    latin = "# -*- coding: latin-1 -*-\ns = 'caf\xe9'\nb = MockBreaker()\n".encode("latin-1")
    expected = check_source(latin, "l.py")
    assert [f.code for f in expected] == ["RES002"]
    assert check_source(latin, "l.py", tree=ast.parse(b"")) == expected


# -- start-up: what the pre-commit hook does not import ------------------------------------


def test_the_guard_starts_without_heavy_standard_modules(tmp_path: Path) -> None:
    """`resilient check` runs without importing dataclasses, inspect, shutil, typing or pathlib.

    Each costs the pre-commit hook milliseconds of start-up.  A fresh interpreter
    imports the guard's modules and checks a file, and reports the modules that
    appeared meanwhile: only those count, since some were imported before any of
    ours (a development install's import hook imports pathlib at start-up, so
    pathlib is tested by a regular install only).
    """
    (tmp_path / "app.py").write_text("class MockBreaker:\n    pass\n")
    script = textwrap.dedent(
        """
        import sys

        before = set(sys.modules)
        from resilient.migration import _check, _check_cli, _cli, _config, _files

        status = _cli.main(["check", "--no-git", "app.py"])
        print(status, *sorted(set(sys.modules) - before))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    status, *imported = run.stdout.splitlines()[-1].split()
    assert status == "1", run.stdout  # the mock breaker was found
    assert "resilient.migration._check" in imported  # (the list is the right one)
    heavy = {"dataclasses", "inspect", "shutil", "typing", "pathlib"}
    assert not heavy & set(imported)


@pytest.mark.parametrize("columns", [None, "", "0", "-5", "wide", "57", " 90 "])
def test_help_is_as_wide_as_argparse_makes_it(
    monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    """The guard's formatters find the width as argparse does (which imports shutil for it)."""
    import argparse

    from resilient.migration._cli import HelpFormatter, RawDescriptionHelpFormatter

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    expected = argparse.HelpFormatter("resilient")._width
    for formatter in (HelpFormatter, RawDescriptionHelpFormatter):
        assert formatter("resilient")._width == expected
    assert HelpFormatter("resilient", width=33)._width == 33


_PATH_PIECES = ("/", "//", "a", "b", ".", "..", "tests", "x.py", "")


@pytest.mark.skipif(os.name == "nt", reason="Windows paths go through pathlib itself")
@settings(max_examples=3000, deadline=None)
@given(
    st.lists(st.sampled_from(_PATH_PIECES), max_size=8),
    st.one_of(st.none(), st.lists(st.sampled_from((*_PATH_PIECES, "CWD")), max_size=6)),
)
def test_relative_paths_are_pathlib_s(path: list[str], root: list[str] | None) -> None:
    """`relative_posix` on strings gives what its pathlib version gives (odd paths too)."""
    from resilient.migration import _files

    given_path = "".join(path)
    given_root = None if root is None else "".join(os.getcwd() if p == "CWD" else p for p in root)
    expected = _files._relative_posix_pathlib(given_path, given_root)
    assert _files.relative_posix(given_path, given_root) == expected
    if given_root is not None:
        assert _files.relative_posix(given_path, Path(given_root)) == expected


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_configuration_search_answers_as_pathlib(tmp_path: Path) -> None:
    """The search for pyproject.toml asks the file system on strings, and gets pathlib's answers."""

    def outcome(question: Callable[[str], object], path: str) -> object:
        try:
            return question(path)
        except Exception as exc:
            return type(exc), str(exc)

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    os.symlink("loop", tmp_path / "loop")
    os.symlink("file", tmp_path / "link")
    os.symlink("nowhere", tmp_path / "dangling")
    names = ("folder", "file", "loop", "link", "dangling", "missing", "file/below", "loop/below")
    for name in (*names, "folder/../file", ".", ""):
        path = os.path.join(tmp_path, name)
        assert outcome(_config._is_dir, path) == outcome(lambda p: Path(p).is_dir(), path)
        assert outcome(_config._exists, path) == outcome(lambda p: Path(p).exists(), path)
        expected = outcome(lambda p: str(Path(p).resolve()), path)
        if isinstance(expected, tuple) and expected[0] is RuntimeError:
            # a symbolic link loop (pathlib before Python 3.13): resolved as far as it goes,
            # so that `resilient check loop.py` reports the file instead of a traceback
            expected = os.path.realpath(path)
        assert outcome(_config._resolve, path) == expected
    for start in (str(tmp_path / "folder"), str(tmp_path / "file"), "a/b", "a", "//a/b", "/"):
        folder = Path(start) if Path(start).is_dir() else Path(start).parent
        expected = [p / "x" for p in (folder, *folder.parents)]
        assert [Path(p, "x") for p in _config._upwards(start)] == expected, start


def test_records_behave_as_their_dataclasses_did() -> None:
    """The guard's records, written out instead of dataclasses: same equality, hash, repr."""
    import copy
    import pickle

    from resilient.migration._config import Config
    from resilient.migration._diagnostics import RULES, Finding
    from resilient.migration._files import Discovery, SourceFile

    row = ("a.py", 1, 2, "RES001", "m", 1, 3, "error", "h")
    finding = Finding(*row)
    assert finding == Finding("a.py", 1, 2, "RES001", "m", end_line=1, end_col=3, help="h")
    assert finding != Finding(*row[:5])
    assert finding != row
    assert hash(finding) == hash(row)
    assert repr(finding) == (
        "Finding(path='a.py', line=1, col=2, code='RES001', message='m', end_line=1, "
        "end_col=3, severity='error', help='h')"
    )
    assert pickle.loads(pickle.dumps(finding)) == finding == copy.copy(finding)
    assert repr(RULES["RES004"]).startswith(
        "Rule(code='RES004', name='breaker-without-recovery', severity='warning', help="
    )
    names = MockNames(extra=["Legacy*"])
    assert names.extra == ("Legacy*",)
    assert names == MockNames(extra=("Legacy*",))
    assert hash(names) == hash((("Legacy*",),))
    assert repr(names) == "MockNames(extra=('Legacy*',))"
    assert CheckOptions() == CheckOptions(MockNames(), strict=False) != CheckOptions(strict=True)
    assert repr(CheckOptions()) == "CheckOptions(names=MockNames(extra=()), strict=False)"
    assert PathMatcher(("a",)) == PathMatcher(("a",)) != PathMatcher(("b",))
    assert repr(PathMatcher(("a",))) == "PathMatcher(globs=('a',))"
    source = SourceFile("a.py", is_test=False)
    assert source == SourceFile("a.py", False, False)
    assert hash(source) == hash(("a.py", False, False))
    assert repr(source) == "SourceFile(path='a.py', is_test=False, explicit=False)"
    for frozen in (finding, RULES["RES001"], names, CheckOptions(), PathMatcher(), source):
        with pytest.raises(AttributeError):
            frozen.path = "b.py"
        with pytest.raises(AttributeError):
            del frozen.path
    found = Discovery()
    assert found == Discovery([], [], [], set())
    assert found.files is not Discovery().files
    assert repr(found) == "Discovery(files=[], missing=[], unreadable=[], symlinks=set())"
    with pytest.raises(TypeError):
        hash(found)
    config = Config(root="/r", path="/r/pyproject.toml", mock_names=("X",))
    assert config.root == Path("/r")
    assert config.path == Path("/r/pyproject.toml")
    assert config == Config(Path("/r"), Path("/r/pyproject.toml"), ("X",), (), (), {})
    assert config.root_dir == "/r"
    assert Config(root=Path("/r")).root_dir == os.fspath(Path("/r"))
    assert repr(config) == (
        f"Config(root={Path('/r')!r}, path={Path('/r/pyproject.toml')!r}, mock_names=('X',), "
        "test_paths=(), exclude=(), extra={})"
    )
    with pytest.raises(TypeError):
        hash(config)  # (``extra`` is a dict)
    with pytest.raises(AttributeError):
        config.root = Path("/s")


def test_the_record_decorator_gives_what_a_frozen_slotted_dataclass_gives() -> None:
    """`@record` (the codemod's records) against `@dataclass(frozen=True, slots=True)`."""
    import copy
    import dataclasses
    import pickle
    from typing import ClassVar

    from resilient.migration._codemod_model import ImportSpec, ManualSite
    from resilient.migration._record import record

    @record
    class Rec:
        a: int
        b: tuple[int, ...] = ()

        def total(self) -> int:
            return self.a + sum(self.b)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Dc:
        a: int
        b: tuple[int, ...] = ()

    for build in (lambda c: c(1), lambda c: c(1, (2, 3)), lambda c: c(a=1, b=(4,))):
        rec, dc = build(Rec), build(Dc)
        assert (rec.a, rec.b) == (dc.a, dc.b)
        assert repr(rec) == f"Rec(a={rec.a!r}, b={rec.b!r})"
        assert repr(dc).endswith(repr(rec).replace("Rec(", "Dc("))
        assert hash(rec) == hash(dc)
        assert rec == build(Rec)
        assert rec != Rec(99)
        assert copy.copy(rec) == rec  # (pickling: a module-level record, below)
        with pytest.raises(AttributeError):
            rec.a = 2
        with pytest.raises(AttributeError):
            del rec.a
        with pytest.raises(AttributeError):
            rec.other = 1  # slots: no new attributes either
    assert Rec.__match_args__ == Dc.__match_args__ == ("a", "b")
    assert Rec(1, (2,)).total() == 3
    assert Rec(1) != Dc(1)  # another class, even with the same values
    with pytest.raises(TypeError, match="follows default"):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))
    # a ClassVar is not a field, written as a string or as typing's object
    for kind in ("ClassVar[str]", ClassVar[str]):
        holder = record(type("Holder", (), {"__annotations__": {"k": kind, "a": int}, "k": "v"}))
        assert holder.__match_args__ == ("a",)
        assert holder(1).k == "v"
    # the codemod's own records cross process boundaries (pickled to the rewrite worker)
    site = ManualSite("a.py", 3, "why")
    assert pickle.loads(pickle.dumps(site)) == site
    assert ImportSpec("m") == ImportSpec("m", None, None) != ImportSpec("m", "x")
