"""``resilient check`` end to end: the real CLI in a subprocess, as pre-commit and CI run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import CheckRun, Project

INCIDENT_MOCK = """\
class MockCircuitBreaker:
    def __init__(self, name, failure_threshold=5, recovery_timeout=60):
        self.name = name
        self.is_open = False
        self.recovery_timeout = recovery_timeout

    async def call(self, func, *args, **kwargs):
        if self.is_open:
            raise RuntimeError(f"Circuit breaker {self.name} is open")
        try:
            return await func(*args, **kwargs)
        except Exception:
            self.is_open = True
            raise
"""

Snippet = Callable[..., CheckRun]


# -- output shape and exit codes -------------------------------------------------------


def test_clean_tree_exits_zero_and_says_so(project: Project) -> None:
    """A tree with no mock breaker exits 0 and prints ruff's "All checks passed!"."""
    project.write("app/svc.py", "from resilient import get_breaker\nb = get_breaker('x')\n")
    run = project.check()
    assert run.code == 0, run.out + run.err
    assert run.out.strip() == "All checks passed!"


def test_text_output_is_ruff_style_with_help_and_tally(project: Project) -> None:
    """Each finding is `path:line:col: CODE message`, then a help line; the tally is last."""
    project.write("app/cb.py", INCIDENT_MOCK)
    run = project.check()
    assert run.code == 1
    out = run.out.splitlines()
    assert out[0] == "app/cb.py:1:1: RES001 mock breaker class `MockCircuitBreaker` defined"
    assert out[1].startswith("  help: Use a real breaker: `resilient.get_breaker(")
    assert out[-1] == "Found 1 error and 1 warning (warnings fail the check under --strict)."


def test_columns_are_one_based_and_count_characters(check_snippet: Snippet) -> None:
    """Columns start at 1 and count characters, not UTF-8 bytes, after non-ASCII text."""
    run = check_snippet("x = ('héllo', MockCircuitBreaker('a'))\n")
    assert run.lines == ["app/mod.py:1:15: RES002 mock breaker `MockCircuitBreaker` instantiated"]


def test_warnings_alone_exit_zero_and_strict_makes_them_errors(project: Project) -> None:
    """RES004 is a warning (exit 0) unless --strict, which makes it an error (exit 1)."""
    project.write(
        "app/cb.py",
        """\
        class AuthGuard:
            def __init__(self):
                self.open = False

            def call(self, fn):
                if self.open:
                    raise RuntimeError("open")
                try:
                    return fn()
                except Exception:
                    self.open = True
                    raise
        """,
    )
    lenient = project.check()
    assert lenient.code == 0
    assert lenient.codes() == ["RES004"]
    assert "[warning]" in lenient.lines[0]
    strict = project.check("--strict")
    assert strict.code == 1
    assert strict.codes() == ["RES004"]
    assert "[warning]" not in strict.lines[0]


def test_json_format_uses_ruff_field_names(project: Project) -> None:
    """`--format json` prints an array with code, name, message, filename, location."""
    project.write("app/x.py", "from app.cb import MockCircuitBreaker as CB\n")
    run = project.check("--format", "json")
    assert run.code == 1
    (item,) = run.json()
    assert item == {
        "code": "RES002",
        "name": "mock-breaker-usage",
        "message": "mock breaker `MockCircuitBreaker` imported from `app.cb` as `CB`",
        "help": item["help"],
        "severity": "error",
        "filename": "app/x.py",
        "location": {"row": 1, "column": 20},
        "end_location": {"row": 1, "column": 44},
    }
    assert "get_breaker" in item["help"]


def test_github_format_emits_annotations(project: Project) -> None:
    """`--format github` prints one ::error/::warning workflow command per finding."""
    project.write("app/cb.py", INCIDENT_MOCK)
    run = project.check("--format", "github")
    lines = run.out.splitlines()
    assert lines[0].startswith(
        "::error title=resilient (RES001),file=app/cb.py,line=1,col=1,endLine=1,endColumn=25::"
        "app/cb.py:1:1: RES001 mock breaker class `MockCircuitBreaker` defined%0Ahelp: "
    )
    assert lines[1].startswith("::warning title=resilient (RES004),file=app/cb.py,line=1,")
    assert len(lines) == 2


def test_missing_path_is_a_usage_error(project: Project) -> None:
    """A path that does not exist exits 2 with a message naming it."""
    run = project.check("nope/")
    assert run.code == 2
    assert "nope/: no such file or folder" in run.err


def test_unknown_format_is_a_usage_error(project: Project) -> None:
    """A bad option value exits 2 (argparse's usage error)."""
    run = project.check("--format", "xml")
    assert run.code == 2
    assert "invalid choice: 'xml'" in run.err


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool.resilient\nmock-names = 1\n", "invalid TOML"),
        ('[tool.resilient]\nmock_names = ["X"]\n', "unknown key `mock_names`"),
        ("[tool.resilient]\nmock-names = 3\n", "`mock-names` must be a list of strings"),
    ],
)
def test_bad_configuration_is_a_config_error(
    project: Project, pyproject: str, message: str
) -> None:
    """A broken [tool.resilient] exits 2 and says what is wrong, before checking anything."""
    project.write("pyproject.toml", pyproject)
    project.write("app/x.py", "x = 1\n")
    run = project.check()
    assert run.code == 2
    assert message in run.err
    assert run.out == ""


def test_check_never_imports_libcst_redis_or_httpx(project: Project) -> None:
    """The guard stays light: running it loads none of libcst, redis, httpx."""
    project.write("app/cb.py", INCIDENT_MOCK)
    code = (
        "import sys\n"
        "from resilient.migration._cli import main\n"
        "rc = main(['check', '.'])\n"
        "heavy = {'libcst', 'redis', 'httpx'}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


# -- RES001 / RES002: mock breakers by name ---------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "MockCircuitBreaker",
        "MockBreaker",
        "FakeBreaker",
        "FakeCircuitBreaker",
        "DummyAuthBreaker",
        "StubCircuitBreaker",
        "NoOpBreaker",
        "NoopCircuitBreaker",
        "NullBreaker",
        "mock_circuit_breaker",
        "MOCK_BREAKER",
    ],
)
def test_mock_names_in_any_case_are_found(check_snippet: Snippet, name: str) -> None:
    """Every built-in pattern, in any case, with or without `Circuit`, is a mock breaker."""
    run = check_snippet(f"class {name}:\n    pass\n")
    assert run.codes() == ["RES001"]
    assert f"`{name}`" in run.lines[0]


@pytest.mark.parametrize(
    "name", ["CircuitBreaker", "BreakerMockery", "MockClient", "Breaker", "mockingbird"]
)
def test_ordinary_names_are_not_mock_breakers(check_snippet: Snippet, name: str) -> None:
    """Names that are not Mock*/Fake*/... *Breaker are left alone."""
    run = check_snippet(f"class {name}:\n    pass\n\nx = {name}()\n")
    assert run.code == 0, run.out


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "from app.cb import MockCircuitBreaker\n",
            ["1:20: RES002 mock breaker `MockCircuitBreaker` imported from `app.cb`"],
            id="from-import",
        ),
        pytest.param(
            "from .cb import MockCircuitBreaker as CB\nb = CB('x')\n",
            [
                "1:17: RES002 mock breaker `MockCircuitBreaker` imported from `.cb` as `CB`",
                "2:5: RES002 mock breaker `MockCircuitBreaker` (as `CB`) instantiated",
            ],
            id="relative-alias",
        ),
        pytest.param(
            "import app.cb as m\nb = m.MockCircuitBreaker('y')\n",
            [
                "2:5: RES002 mock breaker `MockCircuitBreaker` (as `m.MockCircuitBreaker`)"
                " instantiated"
            ],
            id="module-alias",
        ),
        pytest.param(
            "from app.cb import FakeBreaker as FB\nX = FB\ny = X()\n",
            [
                "1:20: RES002 mock breaker `FakeBreaker` imported from `app.cb` as `FB`",
                "2:5: RES002 mock breaker `FakeBreaker` (as `FB`) referenced",
                "3:5: RES002 mock breaker `FakeBreaker` (as `X`) instantiated",
            ],
            id="alias-chain",
        ),
        pytest.param(
            "import app.cb\nb = getattr(app.cb, 'MockCircuitBreaker')\n",
            ["2:5: RES002 mock breaker `MockCircuitBreaker` looked up with `getattr()`"],
            id="getattr",
        ),
        pytest.param(
            "from unittest.mock import patch\n"
            "with patch('app.cb.CircuitBreaker', new=1):\n"
            "    pass\n"
            "p = patch('app.cb.MockCircuitBreaker')\n",
            [
                "2:6: RES003 `patch('app.cb.CircuitBreaker')` replaces breaker `CircuitBreaker`"
                " with a mock",
                "4:5: RES002 mock breaker `MockCircuitBreaker` patched in with `patch()`",
            ],
            id="patch-string",
        ),
        pytest.param(
            "from app.cb import MockCircuitBreaker as CB\ndef f(b: CB) -> None: ...\n",
            [
                "1:20: RES002 mock breaker `MockCircuitBreaker` imported from `app.cb` as `CB`",
                "2:10: RES002 mock breaker `MockCircuitBreaker` (as `CB`) referenced in an"
                " annotation",
            ],
            id="annotation",
        ),
        pytest.param(
            "def f(b: 'app.cb.MockCircuitBreaker | None') -> 'list[NullBreaker]': ...\n",
            [
                "1:10: RES002 mock breaker `MockCircuitBreaker` referenced in a string annotation",
                "1:49: RES002 mock breaker `NullBreaker` referenced in a string annotation",
            ],
            id="string-annotation",
        ),
        pytest.param(
            "__all__ = ['get_breaker', 'MockCircuitBreaker']\n",
            ["1:27: RES002 mock breaker `MockCircuitBreaker` re-exported in `__all__`"],
            id="dunder-all",
        ),
        pytest.param(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from app.cb import MockCircuitBreaker\n",
            ["3:24: RES002 mock breaker `MockCircuitBreaker` imported from `app.cb`"],
            id="type-checking-import",
        ),
        pytest.param(
            "import importlib\ncls = importlib.import_module('app.cb.StubBreaker')\n",
            ["2:7: RES002 mock breaker `StubBreaker` imported by name"],
            id="import-by-name",
        ),
    ],
)
def test_mock_breaker_usage_is_found(
    check_snippet: Snippet, source: str, expected: list[str]
) -> None:
    """Imports, aliases, getattr, patch targets, annotations and `__all__` are RES002."""
    run = check_snippet(source)
    assert [ln.removeprefix("app/mod.py:") for ln in run.lines] == expected
    assert run.code == 1


def test_mentions_in_comments_docstrings_and_prose_are_not_findings(
    check_snippet: Snippet,
) -> None:
    """Only code counts: comments, docstrings and unrelated strings name no breaker."""
    run = check_snippet(
        '''\
        """Replaces MockCircuitBreaker (see docs/mock-breakers.md)."""
        # MockCircuitBreaker used to live here
        import logging


        def f():
            """Was `FakeBreaker()` before the migration."""
            logging.info("MockCircuitBreaker removed; use get_breaker")
            return "the FakeBreaker class is gone"
        '''
    )
    assert run.code == 0, run.out
    assert run.out.strip() == "All checks passed!"


# -- RES003: unittest.mock standing in for a breaker -------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "from unittest.mock import MagicMock\nbreaker = MagicMock()\n",
            ["2:11: RES003 `MagicMock()` assigned to breaker `breaker`"],
            id="module-level",
        ),
        pytest.param(
            "from unittest import mock\n"
            "class Svc:\n"
            "    def __init__(self):\n"
            "        self._circuit = mock.AsyncMock()\n",
            ["4:25: RES003 `AsyncMock()` assigned to breaker `_circuit`"],
            id="attribute",
        ),
        pytest.param(
            "import unittest.mock as um\nsvc = Service(breaker=um.MagicMock())\n",
            ["2:23: RES003 `MagicMock()` passed as `breaker=`"],
            id="keyword",
        ),
        pytest.param(
            "from unittest.mock import MagicMock as MM\ndef get_breaker(name):\n    return MM()\n",
            ["3:12: RES003 `MagicMock()` returned as a breaker from `get_breaker()`"],
            id="factory-return",
        ),
        pytest.param(
            "from unittest.mock import create_autospec\n"
            "from resilient import CircuitBreaker\n"
            "b = create_autospec(CircuitBreaker)\n",
            ["3:5: RES003 `create_autospec()` specced as breaker `CircuitBreaker`"],
            id="autospec",
        ),
        pytest.param(
            "from unittest.mock import MagicMock\n"
            "breakers = {'auth': MagicMock()}\n"
            "pool = {'payments_breaker': MagicMock()}\n",
            [
                "2:21: RES003 `MagicMock()` stored in breaker `breakers`",
                "3:29: RES003 `MagicMock()` stored as breaker `'payments_breaker'`",
            ],
            id="dict-value",
        ),
        pytest.param(
            "from unittest.mock import patch\np = patch('app.auth.breaker')\n",
            ["2:5: RES003 `patch('app.auth.breaker')` replaces breaker `breaker` with a mock"],
            id="patch-breaker",
        ),
    ],
)
def test_unittest_mock_breakers_are_found(
    check_snippet: Snippet, source: str, expected: list[str]
) -> None:
    """A MagicMock/AsyncMock placed where a breaker goes, in production code, is RES003."""
    run = check_snippet(source)
    assert [ln.removeprefix("app/mod.py:") for ln in run.lines] == expected


def test_mocks_that_are_not_breakers_are_left_alone(check_snippet: Snippet) -> None:
    """A MagicMock for something else (a client, a clock) is not this guard's business."""
    run = check_snippet(
        "from unittest.mock import MagicMock\nclient = MagicMock()\nsvc = Svc(http=MagicMock())\n"
    )
    assert run.code == 0, run.out


# -- RES004: the incident's shape, under any name ----------------------------------------


def test_incident_shape_is_found_under_any_name(check_snippet: Snippet) -> None:
    """A class that opens on failure and never looks at the clock is RES004."""
    run = check_snippet(INCIDENT_MOCK.replace("MockCircuitBreaker", "TokenGuard"))
    assert run.lines == [
        "app/mod.py:1:1: RES004 [warning] `TokenGuard` opens when a call fails "
        "(`self.is_open = True`) but has no time-based way back to closed"
    ]


@pytest.mark.parametrize(
    "opening",
    [
        "self.state = 'open'",
        "self._state = State.OPEN",
        "self.circuit_open: bool = True",
    ],
)
def test_open_state_assignments_count_as_opening(check_snippet: Snippet, opening: str) -> None:
    """Setting a state to OPEN, or any *open* flag to True, after failures is opening."""
    run = check_snippet(
        f"""\
        class Guard:
            def record_failure(self):
                self.failures += 1
                if self.failures >= self.threshold:
                    {opening}
        """
    )
    assert run.codes() == ["RES004"]


@pytest.mark.parametrize(
    "recovery",
    [
        "if time.monotonic() - self.opened_at > self.recovery_timeout: self.is_open = False",
        "if self.elapsed() >= self.recovery_timeout: self.is_open = False",
        "asyncio.get_running_loop().call_later(30, self.reset)",
    ],
)
def test_breakers_with_a_time_based_way_back_are_fine(
    check_snippet: Snippet, recovery: str
) -> None:
    """A clock read, a timeout comparison or a scheduled reset is a way back to closed."""
    run = check_snippet(
        f"""\
        import asyncio
        import time


        class Guard:
            def call(self, fn):
                {recovery}
                try:
                    return fn()
                except Exception:
                    self.is_open = True
                    raise
        """
    )
    assert run.code == 0, run.out


def test_manual_switch_without_failure_is_not_the_incident_shape(check_snippet: Snippet) -> None:
    """Opening only on an operator's request (no failure path) is not RES004."""
    run = check_snippet(
        """\
        class Valve:
            def trip(self):
                self.is_open = True

            def reset(self):
                self.is_open = False
        """
    )
    assert run.code == 0, run.out


# -- RES006: pass-through stand-ins -----------------------------------------------------


def test_pass_through_in_except_import_error_is_found(check_snippet: Snippet) -> None:
    """A breaker class defined when the import fails silently removes protection."""
    run = check_snippet(
        """\
        try:
            from pybreaker import CircuitBreaker
        except ImportError:
            class CircuitBreaker:
                def __init__(self, *args, **kwargs):
                    pass

                def __call__(self, func):
                    return func
        """
    )
    assert run.lines == [
        "app/mod.py:4:5: RES006 [warning] stand-in breaker class `CircuitBreaker` defined when "
        "the import fails: protection silently becomes a pass-through"
    ]
    assert run.code == 0  # a warning unless --strict


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            """\
            try:
                import pybreaker
                HAS_PYBREAKER = True
            except ImportError:
                HAS_PYBREAKER = False

            if not HAS_PYBREAKER:
                def circuit(*args, **kwargs):
                    return lambda func: func
            """,
            id="flag-function",
        ),
        pytest.param(
            """\
            class _PassThroughBreaker:
                def call(self, func, *args, **kwargs):
                    return func(*args, **kwargs)

            breaker = pybreaker.CircuitBreaker() if PYBREAKER_AVAILABLE else _PassThroughBreaker()
            """,
            id="flag-ifexp",
        ),
        pytest.param(
            """\
            if pybreaker is None:
                breaker = contextlib.nullcontext()
            """,
            id="is-none-nullcontext",
        ),
    ],
)
def test_pass_through_behind_an_availability_flag_is_found(
    check_snippet: Snippet, source: str
) -> None:
    """A stand-in chosen when a flag says the library is missing is RES006."""
    run = check_snippet(source)
    assert run.codes() == ["RES006"], run.out


def test_optional_import_set_to_none_is_not_a_pass_through(check_snippet: Snippet) -> None:
    """`CircuitBreaker = None` on ImportError is an ordinary optional dependency."""
    run = check_snippet(
        "try:\n    from pybreaker import CircuitBreaker\nexcept ImportError:\n"
        "    CircuitBreaker = None\n"
    )
    assert run.code == 0, run.out


# -- suppressions ----------------------------------------------------------------------

SIMULATION_FACTORY = """\
from resilient import get_breaker
from app.cb import MockCircuitBreaker  # resilient: ignore[RES002] simulation mode only


def make_breaker(name, settings):
    if settings.simulation:
        return MockCircuitBreaker(name)  {comment}
    return get_breaker(name)
"""


def test_simulation_factory_is_flagged(check_snippet: Snippet) -> None:
    """A factory that picks the mock in a simulation mode is still a finding."""
    run = check_snippet(SIMULATION_FACTORY.format(comment=""))
    assert run.lines == ["app/mod.py:7:16: RES002 mock breaker `MockCircuitBreaker` instantiated"]


def test_suppression_with_a_reason_allows_it(check_snippet: Snippet) -> None:
    """`# resilient: ignore[RES002] reason` on the line silences that finding."""
    run = check_snippet(
        SIMULATION_FACTORY.format(comment="# resilient: ignore[RES002] simulation is deliberate")
    )
    assert run.code == 0, run.out


def test_suppression_of_another_code_does_not_silence(check_snippet: Snippet) -> None:
    """A suppression only covers the codes it names; the unused one is RES005."""
    run = check_snippet(SIMULATION_FACTORY.format(comment="# resilient: ignore[RES003]"))
    assert run.codes() == ["RES002", "RES005"]
    assert run.lines[1] == (
        "app/mod.py:7:62: RES005 unused suppression `RES003`: nothing on this line needs it"
    )


def test_unknown_and_blanket_suppressions_are_reported(check_snippet: Snippet) -> None:
    """Stale or malformed suppressions are findings, so they do not pile up."""
    run = check_snippet("x = 1  # resilient: ignore[RES999]\ny = 2  # resilient: ignore\n")
    assert run.lines == [
        "app/mod.py:1:28: RES005 unknown code `RES999` in suppression",
        "app/mod.py:2:8: RES005 suppression `# resilient: ignore` names no code and suppresses "
        "nothing; name the codes, e.g. `# resilient: ignore[RES002]`",
    ]


def test_suppression_inside_a_string_is_not_a_suppression(check_snippet: Snippet) -> None:
    """Only real comments suppress; the same text in a string does nothing."""
    run = check_snippet("b = MockCircuitBreaker('# resilient: ignore[RES002]')\n")
    assert run.codes() == ["RES002"]


# -- which files are checked --------------------------------------------------------------


def _mock_everywhere(project: Project, rels: list[str]) -> None:
    for rel in rels:
        project.write(rel, "from app.cb import MockCircuitBreaker\n")


def test_test_code_is_skipped_by_default(project: Project) -> None:
    """tests/, test/, testing/, test_*.py, *_test.py and conftest.py are test code."""
    tests = [
        "tests/a.py",
        "test/b.py",
        "pkg/testing/c.py",
        "pkg/test_d.py",
        "pkg/e_test.py",
        "pkg/conftest.py",
    ]
    _mock_everywhere(project, [*tests, "pkg/prod.py"])
    run = project.check()
    assert [ln.split(":")[0] for ln in run.lines] == ["pkg/prod.py"]
    everything = project.check("--include-tests")
    assert sorted(ln.split(":")[0] for ln in everything.lines) == sorted([*tests, "pkg/prod.py"])


def test_explicit_files_are_checked_but_tests_stay_tests(project: Project) -> None:
    """Files named on the command line (as pre-commit passes them) keep their classification."""
    _mock_everywhere(project, ["tests/test_x.py", ".github/scripts/tool.py", "bin/deploy"])
    run = project.check("tests/test_x.py", ".github/scripts/tool.py", "bin/deploy")
    assert sorted(ln.split(":")[0] for ln in run.lines) == [
        ".github/scripts/tool.py",
        "bin/deploy",
    ]


@pytest.mark.parametrize(
    "rel",
    [
        ".hidden/x.py",
        "venv/lib/x.py",
        "env2/lib/x.py",
        "lib/site-packages/x.py",
        "build/lib/x.py",
        "dist/x.py",
        "web/node_modules/x.py",
    ],
)
def test_tool_folders_are_skipped_when_walking(project: Project, rel: str) -> None:
    """Hidden folders, virtualenvs, site-packages, build, dist and node_modules are skipped."""
    project.write("env2/pyvenv.cfg", "home = /usr/bin\n")
    _mock_everywhere(project, [rel])
    run = project.check()
    assert run.code == 0, run.out


def test_pyproject_settings_adjust_names_tests_and_excludes(project: Project) -> None:
    """`mock-names`, `test-paths` and `exclude` in [tool.resilient] are honoured."""
    project.write(
        "pyproject.toml",
        """\
        [tool.resilient]
        mock-names = ["LegacyBreaker", "Sim*Guard"]
        test-paths = ["qa/**", "*_spec.py"]
        exclude = ["generated"]
        """,
    )
    project.write("app/a.py", "x = LegacyBreaker()\ny = SimPaymentGuard()\n")
    _mock_everywhere(project, ["qa/deep/x.py", "app/thing_spec.py", "app/generated/y.py"])
    run = project.check()
    assert run.lines == [
        "app/a.py:1:5: RES002 mock breaker `LegacyBreaker` instantiated",
        "app/a.py:2:5: RES002 mock breaker `SimPaymentGuard` instantiated",
    ]
    # the settings are found from a subfolder too, and apply to explicit files
    sub = project.check("generated/y.py", "a.py", cwd=project.root / "app")
    assert [ln.split(":")[0] for ln in sub.lines] == ["a.py", "a.py"]


# -- bad input never crashes it -----------------------------------------------------------


def test_syntax_error_is_one_finding(project: Project) -> None:
    """A file that does not parse is RES000 at the error's position, not a traceback.

    (The guard parses the statements it reads: here the one defining a breaker.
    A syntax error elsewhere is left to Python: see test_check_slice.py.)
    """
    project.write("app/bad.py", "from app.cb import MockCircuitBreaker\ndef breaker(:\n    pass\n")
    run = project.check()
    assert run.codes() == ["RES000"]
    assert run.lines[0].startswith("app/bad.py:2:13: RES000 cannot parse: ")
    assert "Traceback" not in run.err


def test_non_utf8_without_cookie_is_one_finding(project: Project) -> None:
    """Latin-1 bytes without an encoding cookie cannot be decoded: one RES000."""
    project.write("app/l1.py", "s = 'caf\xe9'\nb = MockBreaker()\n".encode("latin-1"))
    run = project.check()
    assert run.lines == [
        "app/l1.py:1:1: RES000 cannot decode as utf-8: byte 0xe9 at offset 8; add an encoding "
        "cookie (`# -*- coding: latin-1 -*-`) or save as UTF-8"
    ]


def test_non_utf8_with_cookie_is_checked_normally(project: Project) -> None:
    """With a latin-1 cookie the file is decoded and checked; columns count characters."""
    source = "# -*- coding: latin-1 -*-\ns = 'caf\xe9'; b = MockBreaker()\n"
    project.write("app/l1.py", source.encode("latin-1"))
    run = project.check()
    assert run.lines == ["app/l1.py:2:17: RES002 mock breaker `MockBreaker` instantiated"]


def test_utf8_bom_is_checked_normally(project: Project) -> None:
    """A UTF-8 byte-order mark does not shift lines or columns."""
    project.write("app/bom.py", b"\xef\xbb\xbfb = MockBreaker()\n")
    run = project.check()
    assert run.lines == ["app/bom.py:1:5: RES002 mock breaker `MockBreaker` instantiated"]


def test_null_bytes_are_one_finding(project: Project) -> None:
    """A file with null bytes is one RES000 naming the problem and its line."""
    project.write("app/nul.py", b"b = MockBreaker()\nx = 1\x00\n")
    run = project.check()
    assert run.lines == ["app/nul.py:2:1: RES000 file contains null bytes; Python cannot parse it"]


def test_five_megabyte_generated_file_is_checked(project: Project) -> None:
    """A 5 MB generated module is parsed and checked, and the finding at its end is found."""
    body = "".join(f"CONST_{i} = {{'key': {i}, 'name': 'value {i}'}}\n" for i in range(120_000))
    assert len(body) > 5_000_000
    project.write("app/gen.py", body + "b = MockBreaker()\n", dedent=False)
    run = project.check()
    assert run.lines == ["app/gen.py:120001:5: RES002 mock breaker `MockBreaker` instantiated"]


def test_deep_nesting_is_one_finding(project: Project) -> None:
    """An expression nested past the parser's limit is RES000, not a crash."""
    project.write("app/deep.py", "b = MockBreaker(" + "(" * 5000 + ")" * 5000 + ")\n")
    run = project.check()
    assert run.codes() == ["RES000"]
    assert "Traceback" not in run.err


def test_symlink_loops_do_not_hang_or_crash(project: Project) -> None:
    """A looping file link is one RES000; a folder link back up is not followed."""
    project.write("app/ok.py", "x = 1\n")
    os.symlink("loop_b.py", project.root / "app" / "loop_a.py")
    os.symlink("loop_a.py", project.root / "app" / "loop_b.py")
    os.symlink("..", project.root / "app" / "up")
    run = project.check()
    assert run.codes() == ["RES000", "RES000"]
    assert run.lines[0].startswith("app/loop_a.py:1:1: RES000 cannot read file: ")
    assert "symbolic links" in run.lines[0]


def test_a_looping_link_named_alone_is_a_finding_not_a_crash(project: Project) -> None:
    """pre-commit may pass just that file: the configuration search starts beside it."""
    (project.root / "app").mkdir()
    os.symlink("loop_b.py", project.root / "app" / "loop_a.py")
    os.symlink("loop_a.py", project.root / "app" / "loop_b.py")
    run = project.check("app/loop_a.py")
    assert "Traceback" not in run.err
    assert run.code == 1
    assert run.codes() == ["RES000"]
    migrate = subprocess.run(
        [sys.executable, "-m", "resilient.migration", "migrate", "app/loop_a.py"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in migrate.stderr
    assert "app/loop_a.py: error: cannot read" in migrate.stderr


class Unprivileged:
    """Runs ``resilient check`` as a user who cannot read a mode-000 file.

    That is the current user, unless the tests run as root (who reads any
    file): then it is ``nobody``, with the project handed over to that user,
    and with a Python that user can run (this one when the virtual
    environment is readable, else another one on a readable copy of the
    package: the guard needs only the standard library).
    """

    def __init__(
        self, base: Path, argv: list[str], env: dict[str, str], ids: tuple[int, int] | None
    ):
        self.base = base
        self._argv = argv
        self._env = env
        self._ids = ids

    def project(self) -> Project:
        return Project(Path(tempfile.mkdtemp(prefix="proj-", dir=self.base)))

    def check(self, project: Project, *args: str) -> CheckRun:
        if self._ids is not None:
            uid, gid = self._ids
            for folder, dirs, files in os.walk(project.root):
                for name in (folder, *(os.path.join(folder, n) for n in dirs + files)):
                    os.lchown(name, uid, gid)
        proc = subprocess.run(
            [*self._argv, *args],
            cwd=project.root,
            capture_output=True,
            text=True,
            env=self._env,
            timeout=120,
            check=False,
            **self._as_user(),
        )
        return CheckRun(proc.returncode, proc.stdout, proc.stderr)

    def _as_user(self) -> dict[str, Any]:
        if self._ids is None:
            return {}
        uid, gid = self._ids
        return {"user": uid, "group": gid, "extra_groups": []}


def _nobody() -> tuple[int, int] | None:
    """``(uid, gid)`` of the unprivileged user ``nobody``, or None."""
    try:
        import grp
        import pwd
    except ImportError:
        return None
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None
    for group in ("nogroup", "nobody"):
        try:
            return uid, grp.getgrnam(group).gr_gid
        except KeyError:
            continue
    return None


def _runs_as(ids: tuple[int, int], argv: list[str], env: dict[str, str], cwd: Path) -> bool:
    probe = "import sys; assert sys.version_info >= (3, 10); import resilient.migration._check_cli"
    try:
        proc = subprocess.run(
            [*argv, "-c", probe],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
            user=ids[0],
            group=ids[1],
            extra_groups=[],
        )
    except OSError:
        return False
    return proc.returncode == 0


@pytest.fixture
def unprivileged() -> Iterator[Unprivileged]:
    """A way to run the guard where permissions apply (see :class:`Unprivileged`)."""
    if not hasattr(os, "geteuid"):
        pytest.skip("no POSIX file permissions on this platform")
    base = Path(tempfile.mkdtemp(prefix="resilient-perm-"))
    try:
        base.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "PYTHONPYCACHEPREFIX"}}
        env["HOME"] = str(base)  # no user git config to read
        check = ["-m", "resilient.migration", "check"]
        if os.geteuid() != 0:
            yield Unprivileged(base, [sys.executable, *check], env, None)
            return
        ids = _nobody()
        if ids is None:
            pytest.skip("running as root, and there is no user `nobody` to run the guard as")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if _runs_as(ids, [sys.executable], env, base):
            yield Unprivileged(base, [sys.executable, *check], env, ids)
            return
        # The virtual environment is out of that user's reach (say, under /root):
        # run another Python on a copy of the package.
        import resilient.migration

        src = base / "src"
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(Path(resilient.__file__).parent, src / "resilient", ignore=ignore)
        if not (src / "resilient" / "migration").exists():
            shutil.copytree(
                Path(resilient.migration.__file__).parent,
                src / "resilient" / "migration",
                ignore=ignore,
            )
        for folder, dirs, files in os.walk(src):
            for name in dirs:
                Path(folder, name).chmod(0o755)
            for name in files:
                Path(folder, name).chmod(0o644)
        src.chmod(0o755)
        env["PYTHONPATH"] = str(src)
        tried = []
        for python in dict.fromkeys(
            p for p in (shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3") if p
        ):
            tried.append(python)
            if _runs_as(ids, [python], env, base):
                yield Unprivileged(base, [python, *check], env, ids)
                return
        pytest.skip(
            "running as root, and user `nobody` can run neither this Python "
            f"({sys.executable}) nor another one (tried {', '.join(tried) or 'none'})"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unreadable_file_is_one_finding(unprivileged: Unprivileged) -> None:
    """A file without read permission is one RES000 saying so."""
    project = unprivileged.project()
    project.write("app/ok.py", "x = 1\n")
    project.write("app/secret.py", "b = MockBreaker()\n").chmod(0)
    run = unprivileged.check(project)
    assert run.lines == ["app/secret.py:1:1: RES000 cannot read file: Permission denied"], run.err
    assert run.code == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_unreadable_tracked_file_is_one_finding_with_git(unprivileged: Unprivileged) -> None:
    """git cannot read it either: the git prefilter must not hide the finding."""
    project = unprivileged.project()
    _real_git_repo(project)
    project.write("app/ok.py", "x = 1\n")
    project.write("app/mock.py", "b = MockBreaker()\n")
    secret = project.write("app/secret.py", "b = MockBreaker()\n")
    subprocess.run(["git", "add", "app"], cwd=project.root, check=True)
    secret.chmod(0)
    with_git = unprivileged.check(project)
    without_git = unprivileged.check(project, "--no-git")
    assert with_git.out == without_git.out, with_git.err
    assert [ln.split(": ")[0] for ln in with_git.lines] == ["app/mock.py:1:5", "app/secret.py:1:1"]
    assert with_git.codes() == ["RES002", "RES000"]


def test_json_output_is_valid_even_with_bad_files(project: Project) -> None:
    """Machine-readable output stays machine-readable whatever the input."""
    project.write("app/nul.py", b"\x00MockBreaker")
    project.write("app/bad.py", "MockBreaker(\n")
    run = project.check("--format", "json")
    assert [d["code"] for d in json.loads(run.out)] == ["RES000", "RES000"]


# -- git grep as the prefilter gives the same answers ---------------------------------------


def _real_git_repo(project: Project) -> None:
    (project.root / ".git").rmdir()
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_prefilter_gives_the_same_findings(project: Project, tmp_path: Path) -> None:
    """Tracked, untracked, ignored, linked and odd files: `--no-git` finds exactly the same."""
    _real_git_repo(project)
    outside = tmp_path / "outside.py"
    outside.write_text("b = MockBreaker()\n")
    project.write(".gitignore", "ignored/\n")
    project.write("app/tracked.py", "from app.cb import MockCircuitBreaker\n")
    project.write("app/clean.py", "from resilient import get_breaker\n")
    project.write("app/guard.py", INCIDENT_MOCK.replace("MockCircuitBreaker", "Guard"))
    project.write("app/sup.py", "x = 1  # resilient: ignore[RES002]\n")
    project.write("ignored/hidden_mock.py", "b = FakeBreaker()\n")
    project.write("app/latin.py", "s = 'caf\xe9'\nb = MockBreaker()\n".encode("latin-1"))
    project.write("app/nul.py", b"b = MockBreaker()\x00\n")
    os.symlink(outside, project.root / "app" / "linked.py")
    subprocess.run(["git", "add", "app", ".gitignore"], cwd=project.root, check=True)
    project.write("app/untracked.py", "b = NullBreaker()\n")
    with_git = project.check()
    without_git = project.check("--no-git")
    assert with_git.out == without_git.out
    assert with_git.code == without_git.code == 1
    assert sorted({ln.split(":")[0] for ln in with_git.lines}) == [
        "app/guard.py",
        "app/latin.py",
        "app/linked.py",
        "app/nul.py",
        "app/sup.py",
        "app/tracked.py",
        "app/untracked.py",
        "ignored/hidden_mock.py",
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_prefilter_does_not_trust_what_git_reads_elsewhere(project: Project) -> None:
    """Files git greps in the index, or not at all, are read by Python: same findings."""
    _real_git_repo(project)
    project.write("app/assumed.py", "x = 1\n")
    project.write("app/sparse.py", "x = 1\n")
    os.symlink("assumed.py", project.root / "app" / "was_link.py")
    project.write("app/tests/test_x.py", "b = MockBreaker()\n")
    project.write("app/test_y.py", "b = MockBreaker()\n")
    project.write("lib/ok.py", "b = DummyBreaker()\n")
    subprocess.run(["git", "add", "app", "lib"], cwd=project.root, check=True)
    git = ["git", "update-index"]
    subprocess.run([*git, "--assume-unchanged", "app/assumed.py"], cwd=project.root, check=True)
    subprocess.run([*git, "--skip-worktree", "app/sparse.py"], cwd=project.root, check=True)
    project.write("app/assumed.py", "b = MockBreaker()\n")  # the index still says x = 1
    project.write("app/sparse.py", "b = FakeBreaker()\n")
    (project.root / "app" / "was_link.py").unlink()  # a link in the index, a file here
    project.write("app/was_link.py", "b = StubBreaker()\n")
    runs = [
        (),
        ("--include-tests",),
        ("app", "lib"),
        (".", "app/"),
        ("app/test_y.py", "app/assumed.py"),
        ("--include-tests", "app/tests", "."),
    ]
    for args in runs:
        with_git = project.check(*args)
        without_git = project.check("--no-git", *args)
        assert with_git.out == without_git.out, args
    assert sorted({ln.split(":")[0] for ln in project.check().lines}) == [
        "app/assumed.py",
        "app/sparse.py",
        "app/was_link.py",
        "lib/ok.py",
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_prefilter_ignores_the_users_grep_settings(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``grep.fullName`` and friends in the user's git config change nothing."""
    _real_git_repo(project)
    project.write("app/sub/a.py", "b = MockBreaker()\n")
    project.write("app/sub/b.py", "x = 1\n")
    subprocess.run(["git", "add", "app"], cwd=project.root, check=True)
    settings = {"grep.fullName": "true", "grep.lineNumber": "true", "grep.column": "true"}
    monkeypatch.setenv("GIT_CONFIG_COUNT", str(len(settings)))
    for i, (key, value) in enumerate(settings.items()):
        monkeypatch.setenv(f"GIT_CONFIG_KEY_{i}", key)
        monkeypatch.setenv(f"GIT_CONFIG_VALUE_{i}", value)
    for cwd in (project.root, project.root / "app"):
        with_git = project.check(str(project.root / "app" / "sub"), cwd=cwd)
        without_git = project.check("--no-git", str(project.root / "app" / "sub"), cwd=cwd)
        assert with_git.out == without_git.out
        assert with_git.codes() == ["RES002"]
