"""``resilient migrate`` end to end: the real CLI in a subprocess on a temporary tree."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .fixtures_migrate import read_tree, run_cli, write_tree
from .test_migrate import AUTH_CLIENT, MOCK_MODULE, PACKAGES, SYNC_MOCK

INCIDENT = {
    **PACKAGES,
    "app/core/circuit_breaker.py": MOCK_MODULE,
    "app/auth/client.py": AUTH_CLIENT,
}

SVC = """\
    from app.cb import MockCircuitBreaker


    def run(func):
        breaker = MockCircuitBreaker("svc", 3, 5)
        return breaker.call(func)
"""


def test_dry_run_prints_the_diff_on_stdout_and_the_summary_on_stderr(tmp_path: Path) -> None:
    """Default is a dry run: a unified diff on stdout, a summary on stderr, nothing written."""
    write_tree(tmp_path, INCIDENT)
    before = read_tree(tmp_path)
    run = run_cli(tmp_path)
    assert run.code == 0, run.err
    assert read_tree(tmp_path) == before
    assert run.out.startswith("--- a/app/auth/client.py\n+++ b/app/auth/client.py\n")
    assert "-            return await self._breaker.call(self._validate_token_remote, token)\n" in (
        run.out
    )
    assert (
        "+            return await self._breaker.acall(self._validate_token_remote, token)\n"
        in (run.out)
    )
    assert "--- a/app/core/circuit_breaker.py\n" in run.out
    assert "-class MockCircuitBreaker:\n" in run.out
    assert "resilient migrate: would change 2 files" in run.err
    assert "run `resilient migrate --write` to apply" in run.err
    assert "---" not in run.err


def test_diff_applies_with_git_apply(tmp_path: Path) -> None:
    """The dry-run output is a patch `git apply` accepts, giving the same tree as --write."""
    write_tree(tmp_path / "a", INCIDENT)
    write_tree(tmp_path / "b", INCIDENT)
    patch = run_cli(tmp_path / "a").out
    (tmp_path / "changes.patch").write_text(patch)
    subprocess.run(
        ["git", "apply", str(tmp_path / "changes.patch")], cwd=tmp_path / "a", check=True
    )
    assert run_cli(tmp_path / "b", "--write").code == 0
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")


def test_write_applies_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    """--write applies the diff; then --check passes and a dry run prints no diff."""
    write_tree(tmp_path, INCIDENT)
    run = run_cli(tmp_path, "--write")
    assert run.code == 0, run.err
    assert run.out == ""
    assert "resilient migrate: changed 2 files" in run.err
    text = (tmp_path / "app/core/circuit_breaker.py").read_text()
    assert "get_breaker(name)" in text
    assert "class MockCircuitBreaker" not in text
    after = read_tree(tmp_path)
    again = run_cli(tmp_path, "--check")
    assert (again.code, again.out) == (0, "")
    assert "would change 0 files" in again.err
    assert read_tree(tmp_path) == after


def test_check_exits_one_when_something_would_change(tmp_path: Path) -> None:
    """--check prints the diff, writes nothing and exits 1 while a mock is left to migrate."""
    write_tree(tmp_path, INCIDENT)
    before = read_tree(tmp_path)
    run = run_cli(tmp_path, "--check")
    assert run.code == 1
    assert "+++ b/app/auth/client.py" in run.out
    assert read_tree(tmp_path) == before


def test_check_exits_zero_with_only_manual_sites(tmp_path: Path) -> None:
    """Manual sites alone change nothing, so --check passes; they are still listed."""
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": SYNC_MOCK,
            "app/svc.py": (
                "from app.cb import MockCircuitBreaker\n\nshared = MockCircuitBreaker('s')\n"
            ),
        },
    )
    run = run_cli(tmp_path, "--check")
    assert run.code == 0, run.err
    assert run.out == ""
    assert "app/svc.py:3: manual: module-level singleton" in run.err


def test_manual_sites_are_listed_as_path_line_manual_reason(tmp_path: Path) -> None:
    """Every manual site is one `path:line: manual: reason` line on stderr."""
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": SYNC_MOCK,
            "app/svc.py": """\
                import os

                from app.cb import MockCircuitBreaker


                def make(name):
                    if os.environ.get("SIMULATION_MODE"):
                        return MockCircuitBreaker(name)
                    return None
                """,
        },
    )
    run = run_cli(tmp_path, "--write")
    assert run.code == 0, run.err
    assert all(re.fullmatch(r"[\w/.]+:\d+: manual: .+", ln) for ln in run.manual)
    assert any(ln.startswith("app/svc.py:8: manual: chosen on purpose") for ln in run.manual)
    assert (tmp_path / "app/svc.py").read_text().count("MockCircuitBreaker(name)") == 1


def test_crlf_bom_encoding_and_mode_are_kept(tmp_path: Path) -> None:
    """CRLF endings (also on added lines), a BOM, a latin-1 cookie and the mode survive."""
    crlf = (
        "\ufeff# caf\u00e9\r\nfrom app.cb import MockCircuitBreaker\r\n\r\n\r\n"
        "def run(func):\r\n    breaker = MockCircuitBreaker('crlf')\r\n"
        "    return breaker.call(func)\r\n"
    ).encode("utf-8")
    latin = (
        "# -*- coding: latin-1 -*-\n# d\u00e9j\u00e0 vu\nfrom app.cb import MockCircuitBreaker\n\n"
        "B = 'na\u00efve'\n\n\ndef run(func):\n    return MockCircuitBreaker('latin').call(func)\n"
    ).encode("latin-1")
    write_tree(
        tmp_path,
        {"app/__init__.py": "", "app/cb.py": SYNC_MOCK, "app/crlf.py": crlf, "app/latin.py": latin},
    )
    os.chmod(tmp_path / "app/crlf.py", 0o755)
    os.chmod(tmp_path / "app/latin.py", 0o640)
    run = run_cli(tmp_path, "--write")
    assert run.code == 0, run.err
    new_crlf = (tmp_path / "app/crlf.py").read_bytes()
    assert new_crlf == (
        "\ufeff# caf\u00e9\r\nfrom resilient import get_breaker\r\n\r\n\r\n"
        "def run(func):\r\n    breaker = get_breaker('crlf')\r\n"
        "    return breaker.call(func)\r\n"
    ).encode("utf-8")
    new_latin = (tmp_path / "app/latin.py").read_bytes()
    assert new_latin == (
        "# -*- coding: latin-1 -*-\n# d\u00e9j\u00e0 vu\nfrom resilient import get_breaker\n\n"
        "B = 'na\u00efve'\n\n\ndef run(func):\n    return get_breaker('latin').call(func)\n"
    ).encode("latin-1")
    assert stat.S_IMODE((tmp_path / "app/crlf.py").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "app/latin.py").stat().st_mode) == 0o640
    assert not list(tmp_path.rglob("*.resilient-tmp"))


def test_unparsable_file_is_reported_and_left_untouched(tmp_path: Path) -> None:
    """A file that does not parse is reported, never written; the rest is migrated."""
    broken = b"from app.cb import MockCircuitBreaker\n\ndef broken(:\n    MockCircuitBreaker('x')\n"
    undecodable = b"from app.cb import MockCircuitBreaker\nx = '\xff\xfe'\n"
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": SYNC_MOCK,
            "app/broken.py": broken,
            "app/undecodable.py": undecodable,
            "app/svc.py": SVC,
        },
    )
    run = run_cli(tmp_path, "--write")
    assert run.code == 1
    assert "app/broken.py: error: cannot parse (line 3" in run.err
    assert "app/undecodable.py: error: cannot decode as utf-8: byte 0xff" in run.err
    assert "2 files failed" in run.err
    assert (tmp_path / "app/broken.py").read_bytes() == broken
    assert (tmp_path / "app/undecodable.py").read_bytes() == undecodable
    # what the broken files name is not deleted under them
    assert "class MockCircuitBreaker" in (tmp_path / "app/cb.py").read_text()
    assert any(
        ln.startswith("app/cb.py:1: manual: mock class `MockCircuitBreaker` kept: app/")
        and "could not be processed" in ln
        for ln in run.manual
    ), run.err
    assert (
        'get_breaker("svc", failure_threshold=3, recovery_timeout=5)'
        in (tmp_path / "app/svc.py").read_text()
    )


def test_files_without_matching_text_are_not_parsed(tmp_path: Path) -> None:
    """A broken file that names no mock breaker is skipped unparsed: no error for it."""
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/cb.py": SYNC_MOCK,
            "app/svc.py": SVC,
            "app/unrelated.py": "def broken(:\n    pass\n",
            "app/other.py": "x = 1\n",
        },
    )
    run = run_cli(tmp_path)
    assert run.code == 0, run.err
    assert "error" not in run.err
    assert "5 scanned, 3 skipped without parsing" in run.err


def test_jobs_runs_in_parallel_with_the_same_result(tmp_path: Path) -> None:
    """--jobs 2 produces the same diff and manual sites as --jobs 1."""
    files: dict[str, str] = {"app/__init__.py": "", "app/cb.py": SYNC_MOCK}
    for i in range(12):
        files[f"app/svc{i}.py"] = SVC.replace('"svc"', f'"svc{i}"')
    files["app/single.py"] = (
        "from app.cb import MockCircuitBreaker\n\nS = MockCircuitBreaker('s')\n"
    )
    write_tree(tmp_path, files)
    one = run_cli(tmp_path, "--jobs", "1")
    two = run_cli(tmp_path, "--jobs", "2")
    assert one.code == two.code == 0, one.err + two.err
    assert one.out == two.out
    assert one.out.count("+++ b/app/svc") == 12
    assert one.manual == two.manual


def test_symlinked_file_is_written_through_the_link(tmp_path: Path) -> None:
    """A symlink to a module stays a symlink; the file it points to is migrated once."""
    write_tree(tmp_path, {"app/__init__.py": "", "app/cb.py": SYNC_MOCK, "app/svc.py": SVC})
    (tmp_path / "app/alias.py").symlink_to("svc.py")
    run = run_cli(tmp_path, "--write")
    assert run.code == 0, run.err
    assert (tmp_path / "app/alias.py").is_symlink()
    assert "get_breaker(" in (tmp_path / "app/svc.py").read_text()


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    """A path that does not exist exits 2 and says so."""
    run = run_cli(tmp_path, "nope/")
    assert run.code == 2
    assert "nope/: no such file or folder" in run.err


def test_without_libcst_it_says_how_to_install_it(tmp_path: Path) -> None:
    """Without the `migrate` extra the command prints the pip command and exits 2."""
    code = (
        "import sys; sys.modules['libcst'] = None\n"
        "from resilient.migration._cli import main\n"
        "sys.exit(main(['migrate', '.']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "pip install 'resilient[migrate]'" in proc.stderr


def test_tests_are_skipped_unless_included(tmp_path: Path) -> None:
    """Test code is not rewritten by default, and is with --include-tests."""
    test_file = (
        "from app.cb import MockCircuitBreaker\n\n\ndef test_x():\n    MockCircuitBreaker('t')\n"
    )
    write_tree(
        tmp_path, {"app/__init__.py": "", "app/cb.py": SYNC_MOCK, "tests/test_x.py": test_file}
    )
    run = run_cli(tmp_path, "--write")
    assert run.code == 0, run.err
    assert (tmp_path / "tests/test_x.py").read_text() == test_file
    assert "class MockCircuitBreaker" in (tmp_path / "app/cb.py").read_text()
    run = run_cli(tmp_path, "--write", "--include-tests")
    assert run.code == 0, run.err
    assert "get_breaker('t')" in (tmp_path / "tests/test_x.py").read_text()
    assert (tmp_path / "app/cb.py").read_text() == ""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_check_is_clean_after_migrate_except_the_manual_sites(tmp_path: Path, jobs: str) -> None:
    """After `migrate --write`, every `resilient check` finding is a listed manual site."""
    write_tree(
        tmp_path,
        {
            **INCIDENT,
            "app/cb.py": SYNC_MOCK,
            "app/svc.py": SVC,
            "app/sim.py": """\
                import os

                from app.cb import MockCircuitBreaker

                shared = MockCircuitBreaker("shared")


                def make(name):
                    if os.environ.get("SIMULATION_MODE"):
                        return MockCircuitBreaker(name)
                    return None
                """,
            "app/fallback.py": """\
                try:
                    import pybreaker
                except ImportError:
                    class CircuitBreaker:
                        def call(self, func, *args, **kwargs):
                            return func(*args, **kwargs)
                """,
            "app/mockobj.py": """\
                from unittest.mock import MagicMock

                payments_breaker = MagicMock()
                """,
            "app/handrolled.py": """\
                class AuthBreaker:
                    def __init__(self):
                        self.open = False

                    def call(self, func):
                        try:
                            return func()
                        except Exception:
                            self.open = True
                            raise
                """,
            "tests/test_cb.py": "from app.cb import MockCircuitBreaker\n",
        },
    )
    migrated = run_cli(tmp_path, "--write", "--jobs", jobs)
    assert migrated.code == 0, migrated.err
    listed = {ln.split(": manual: ")[0] for ln in migrated.manual}
    check = subprocess.run(
        [sys.executable, "-m", "resilient.migration", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    findings = [ln for ln in check.stdout.splitlines() if re.match(r"[\w/.]+:\d+:\d+: RES", ln)]
    assert findings, check.stdout  # the manual sites are real findings
    places = {":".join(ln.split(":")[:2]) for ln in findings}
    assert places <= listed, (sorted(places - listed), migrated.err)
    assert "app/auth/client.py" not in check.stdout
    assert "app/core/circuit_breaker.py" not in check.stdout
    assert "app/svc.py" not in check.stdout


# -- git grep rules out files: the same result as reading them all --------------------------

GUARDS = """\
    class MockCircuitBreaker:
        def __init__(self, name):
            self.name = name
            self.is_open = False

        async def call(self, func, *args, **kwargs):
            if self.is_open:
                raise RuntimeError("open")
            try:
                return await func(*args, **kwargs)
            except Exception:
                self.is_open = True
                raise


    class Registry:
        def __init__(self):
            self._items = {}

        def get(self, name):
            if name not in self._items:
                self._items[name] = MockCircuitBreaker(name)
            return self._items[name]


    registry = Registry()
"""

# Names neither a mock nor "breaker"/"circuit": found only through the carrier `registry`.
USER = """\
    from app.guards import registry


    async def fetch(client):
        return await registry.get("fetch").call(client.fetch)
"""


def _git_repo(root: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_prefilter_gives_the_same_result(tmp_path: Path) -> None:
    """Tracked, untracked, ignored, assume-unchanged and carrier-only files: as without git."""
    files = {
        **PACKAGES,
        "app/guards.py": GUARDS,
        "app/user.py": USER,
        "app/clean.py": "x = 1\n",
        "app/assumed.py": "x = 1\n",
        "tests/test_guards.py": "from app.guards import registry\n",
        ".gitignore": "ignored/\n",
    }
    write_tree(tmp_path, files)
    _git_repo(tmp_path)
    subprocess.run(
        ["git", "update-index", "--assume-unchanged", "app/assumed.py"], cwd=tmp_path, check=True
    )
    write_tree(
        tmp_path,
        {
            # the index still says x = 1: git greps that, Python must read this
            "app/assumed.py": "from app.guards import registry\nregistry.get('a').is_open = False\n",
            "app/untracked.py": "from app.guards import registry\n\n\n"
            "async def go(f):\n    return await registry.get('u').call(f)\n",
            "ignored/hidden.py": "from app.guards import registry\nregistry.get('h').is_open = True\n",
        },
    )
    with_git = run_cli(tmp_path)
    without_git = run_cli(tmp_path, "--no-git")
    assert (with_git.code, with_git.out, with_git.err) == (
        without_git.code,
        without_git.out,
        without_git.err,
    )
    changed = sorted(re.findall(r"^\+\+\+ b/(\S+)$", with_git.out, re.M))
    assert changed == [
        "app/assumed.py",
        "app/guards.py",
        "app/untracked.py",
        "app/user.py",
        "ignored/hidden.py",
    ], with_git.err
    assert '+    return await registry.get("fetch").acall(client.fetch)\n' in with_git.out


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_filter_rules_out_only_what_git_searched(tmp_path: Path) -> None:
    """Unlisted tracked files are ruled out; untracked and assume-unchanged ones never are."""
    from resilient.migration._migrate_git import GitFilter
    from resilient.migration._names import MockNames

    write_tree(
        tmp_path,
        {"a/mock.py": GUARDS, "a/user.py": USER, "a/clean.py": "x = 1\n", "a/odd.py": "y = 2\n"},
    )
    _git_repo(tmp_path)
    subprocess.run(
        ["git", "update-index", "--assume-unchanged", "a/odd.py"], cwd=tmp_path, check=True
    )
    write_tree(tmp_path, {"a/new.py": "z = 3\n"})
    git = GitFilter.start([str(tmp_path)], MockNames())
    assert git is not None
    top = str(tmp_path.resolve()) if str(tmp_path) != os.path.abspath(tmp_path) else str(tmp_path)
    assert git.ruled_out() == {os.path.join(top, "a", n) for n in ("user.py", "clean.py")}
    # the carrier search: only files holding none of the words
    assert git.without(["registry"]) == {os.path.join(top, "a", "clean.py")}
    assert git.without([]) == set()


def test_git_filter_is_not_used_outside_a_checkout(tmp_path: Path) -> None:
    """No git repository: nothing is ruled out, and the run reads every file."""
    from resilient.migration._migrate_git import GitFilter
    from resilient.migration._names import MockNames

    write_tree(tmp_path, {"a/clean.py": "x = 1\n"})
    env_git_dir = os.environ.get("GIT_CEILING_DIRECTORIES")
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path.parent)
    try:
        git = GitFilter.start([str(tmp_path)], MockNames())
        assert git is None or git.ruled_out() == set()
    finally:
        if env_git_dir is None:
            os.environ.pop("GIT_CEILING_DIRECTORIES")
        else:
            os.environ["GIT_CEILING_DIRECTORIES"] = env_git_dir


def test_console_script_flushes_everything_before_its_fast_exit(tmp_path: Path) -> None:
    """`check` and `migrate` skip interpreter teardown: all output still arrives, with the status."""
    many = {f"app/m{i:03}.py": SVC for i in range(120)}
    write_tree(tmp_path, {"app/__init__.py": "", **many, "app/cb.py": SYNC_MOCK})
    run = run_cli(tmp_path)  # python -m resilient.migration: the console script's entry()
    assert run.code == 0, run.err
    assert run.out.count("+++ b/app/m") == 120
    assert "would change 121 files" in run.err
    check = subprocess.run(
        [sys.executable, "-m", "resilient.migration", "check", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert check.returncode == 1
    import json

    findings = json.loads(check.stdout)
    assert {f["filename"] for f in findings} >= {f"app/m{i:03}.py" for i in range(120)}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_carrier_names_holding_a_searched_word_need_no_second_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`BreakerRegistry` holds "breaker": the first search already ruled on every file."""
    from resilient.migration import _migrate_git
    from resilient.migration._names import MockNames

    write_tree(tmp_path, {"a/mock.py": GUARDS, "a/user.py": USER, "a/clean.py": "x = 1\n"})
    _git_repo(tmp_path)
    git = _migrate_git.GitFilter.start([str(tmp_path)], MockNames())
    assert git is not None
    first = git.ruled_out()

    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("a second git grep ran")

    monkeypatch.setattr(_migrate_git.GitScan, "start", no_search)
    assert git.without(["BreakerRegistry", "get_circuit"]) == first
    monkeypatch.undo()
    # a name that holds none of them is searched for
    assert git.without(["registry"]) == {p for p in first if not p.endswith("user.py")}


def test_early_rewrite_workers_give_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers started before the prefilter (large trees) rewrite exactly as one process does."""
    from resilient.migration import _migrate_run

    from .fixtures_migrate import migrate

    files: dict[str, str] = {"app/__init__.py": "", "app/cb.py": SYNC_MOCK}
    for i in range(10):
        files[f"app/svc{i}.py"] = SVC.replace('"svc"', f'"svc{i}"')
    write_tree(tmp_path / "one", files)
    write_tree(tmp_path / "two", files)
    alone = migrate(tmp_path / "one", jobs=1)
    monkeypatch.setattr(_migrate_run, "_EARLY_REWRITERS_FILES", 1)
    asked: list[int] = []
    start = _migrate_run._Rewriters.start

    def record(self: _migrate_run._Rewriters, candidates: int, names: object) -> None:
        asked.append(candidates)
        start(self, candidates, names)  # type: ignore[arg-type]

    monkeypatch.setattr(_migrate_run._Rewriters, "start", record)
    early = migrate(tmp_path / "two", jobs=0)
    assert asked[0] == len(files)  # started on the file count, before the prefilter ran
    assert early.files == alone.files
    assert early.report.manual == alone.report.manual
    assert sum(r.status == "changed" for r in early.report.results) == 11
