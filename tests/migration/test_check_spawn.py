"""git is started without ``subprocess`` (``_spawn``), and before the guard is imported (``prefetch``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from resilient.migration import _check_git
from resilient.migration._check_git import GitScan, git_pattern, prefetch, release_prefetched
from resilient.migration._names import MockNames
from resilient.migration._spawn import Spawned, communicate, spawn, wait

pytestmark = pytest.mark.skipif(spawn is None, reason="needs os.posix_spawnp (POSIX)")

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _spawn(code: str, *, stderr: bool = True, env: dict[str, str] | None = None) -> Spawned:
    assert spawn is not None
    return spawn([sys.executable, "-c", code], env=env or dict(os.environ), stderr=stderr)


def _close(proc: Spawned) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_output_error_output_and_exit_status() -> None:
    proc = _spawn(
        "import sys, os; sys.stdout.write('out'); sys.stderr.write(os.environ['X']); "
        "sys.exit(sys.stdin.read() == '' and 3)",
        env=dict(os.environ, X="from env"),
    )
    assert proc.communicate(10) == (b"out", b"from env")
    assert proc.returncode == 3  # and stdin was empty (the null device)


def test_error_output_can_go_to_the_null_device() -> None:
    proc = _spawn("import sys; sys.stderr.write('noise'); print('ok')", stderr=False)
    assert proc.stderr is None
    assert communicate(proc, 10) == (b"ok\n", b"")


def test_wait_times_out_and_kill_stops_it() -> None:
    proc = _spawn("import time; time.sleep(60)")
    assert wait(proc, 0.05) is None
    assert proc.poll() is None
    proc.kill()
    assert proc.wait(10) == -9  # the signal that ended it, as subprocess says
    _close(proc)


def test_communicate_times_out_on_a_program_that_keeps_its_pipe_open() -> None:
    proc = _spawn("import time; time.sleep(60)")
    assert communicate(proc, 0.05) is None
    proc.kill()
    proc.wait()
    _close(proc)


def test_a_missing_program_raises_and_leaks_no_descriptor() -> None:
    assert spawn is not None
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with pytest.raises(OSError):
        spawn(["resilient-no-such-program-xyz"], env=dict(os.environ))
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_sigpipe_is_back_to_its_default_in_the_program() -> None:
    """Python ignores SIGPIPE; git must not inherit that (as with subprocess)."""
    assert spawn is not None
    proc = spawn(["cat", "/proc/self/status"], env=dict(os.environ))
    out, _ = proc.communicate(10)
    line = next(ln for ln in out.decode().splitlines() if ln.startswith("SigIgn:"))
    ignored = int(line.split()[1], 16)
    assert not ignored & (1 << 12)  # SIGPIPE is signal 13: bit 12


# -- prefetch ----------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "cb.py").write_text("b = MockCircuitBreaker()\n")
    (tmp_path / "app" / "plain.py").write_text("x = 1\n")
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    release_prefetched()


@needs_git
def test_a_prefetched_scan_is_handed_to_the_run_that_asks_for_it(repo: Path) -> None:
    prefetch([])
    early = _check_git._PREFETCHED[(".", tuple(git_pattern(MockNames())), True)]
    scan = GitScan.start(".", git_pattern(MockNames()), skip_tests=True)
    assert scan is early
    assert not _check_git._PREFETCHED
    assert scan is not None
    assert scan.result() == ({"app/cb.py", "app/plain.py"}, {"app/cb.py"})


@needs_git
def test_a_prefetch_with_other_settings_is_not_handed_over_and_is_stopped(repo: Path) -> None:
    prefetch(["--format", "json", "app", "--strict"])  # "json" is a value, not a folder
    assert list(_check_git._PREFETCHED) == [("app", tuple(git_pattern(MockNames())), True)]
    early = _check_git._PREFETCHED[("app", tuple(git_pattern(MockNames())), True)]
    # the run's configuration names more mocks: other patterns, so a scan of its own
    names = MockNames(extra=("LegacyGuard",))
    scan = GitScan.start("app", git_pattern(names), skip_tests=True)
    assert scan is not early
    assert scan is not None
    scan.close()
    release_prefetched()
    assert not _check_git._PREFETCHED
    assert early.done  # stopped


@needs_git
@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (["--include-tests"], [(".", False)]),
        (["--no-git"], []),
        (["-j", "app"], [(".", True)]),  # "app" is -j's value
        (["--", "--strict"], []),  # a folder named --strict does not exist
        (["app", "app"], [("app", True)]),
        (["app/cb.py"], []),  # files are read by Python anyway
    ],
)
def test_prefetch_guesses_the_folders_and_settings(
    repo: Path, args: list[str], keys: list[tuple[str, bool]]
) -> None:
    prefetch(args)
    assert sorted((top, skip) for top, _, skip in _check_git._PREFETCHED) == keys


def _with_and_without_git(command: str) -> list[subprocess.CompletedProcess[str]]:
    """``python -m resilient.migration COMMAND``: as is, with ``--no-git``, and on ``app``."""
    return [
        subprocess.run(
            [sys.executable, "-m", "resilient.migration", command, *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        for extra in ([], ["--no-git"], ["app"])
    ]


@needs_git
def test_the_command_finds_the_same_with_and_without_the_early_scan(repo: Path) -> None:
    """``python -m resilient.migration check`` prefetches; ``--no-git`` never runs git."""
    runs = _with_and_without_git("check")
    assert [r.returncode for r in runs] == [1, 1, 1]
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert "app/cb.py:1:5: RES002" in runs[0].stdout


# -- prefetch for migrate ---------------------------------------------------------------


@needs_git
def test_migrate_prefetches_the_project_folder_and_its_run_claims_it(repo: Path) -> None:
    """From a sub-folder, the search starts in the project folder, tests included."""
    from resilient.migration import _migrate_git
    from resilient.migration._migrate_git import GitFilter

    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    os.chdir(repo / "app")
    _migrate_git.prefetch(["--jobs", "2", "."])  # "2" is a value, not a folder
    assert list(_check_git._PREFETCHED) == [
        (_migrate_git.project_folder(["."]), tuple(git_pattern(MockNames())), False)
    ]
    assert _migrate_git.project_folder(["."]) == os.path.abspath("..")
    early = next(iter(_check_git._PREFETCHED.values()))
    git = GitFilter.start([os.path.abspath("..")], MockNames())
    assert git is not None
    assert not _check_git._PREFETCHED  # claimed
    assert git._first[0][1] is early
    assert git.ruled_out() == {os.path.join(os.path.abspath(".."), "app", "plain.py")}
    git.close()


@needs_git
def test_migrate_prefetch_with_configured_names_is_not_claimed(repo: Path) -> None:
    from resilient.migration import _migrate_git
    from resilient.migration._migrate_git import GitFilter

    _migrate_git.prefetch([])
    early = next(iter(_check_git._PREFETCHED.values()))
    git = GitFilter.start([str(repo)], MockNames(extra=("LegacyGuard",)))
    assert git is not None
    assert git._first[0][1] is not early
    git.close()
    release_prefetched()
    assert early.done


@pytest.mark.parametrize(
    ("layout", "start", "expected"),
    [
        (["p/pyproject.toml", "p/src/app/m.py"], "p/src/app", "p"),
        (["p/.git/HEAD", "p/sub/setup.cfg", "p/sub/m.py"], "p/sub/m.py", "p/sub"),
        (["p/m.py"], "p", None),
    ],
)
def test_the_project_folder_is_the_nearest_with_a_marker(
    tmp_path: Path, layout: list[str], start: str, expected: str | None
) -> None:
    from resilient.migration._migrate_git import project_folder

    for rel in layout:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    found = project_folder([str(tmp_path / start)])
    if expected is None:  # (unless a folder above tmp_path has one)
        assert found is None or not found.startswith(str(tmp_path))
    else:
        assert found == str(tmp_path / expected)


@needs_git
def test_migrate_finds_the_same_with_and_without_the_early_scan(repo: Path) -> None:
    """``python -m resilient.migration migrate`` prefetches; the result is the same without git."""
    runs = _with_and_without_git("migrate")
    assert [r.returncode for r in runs] == [0, 0, 0]
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert runs[0].stderr == runs[1].stderr
    assert "app/cb.py" in runs[0].stderr  # listed: a mock built from nowhere is manual
