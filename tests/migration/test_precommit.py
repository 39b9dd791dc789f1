"""The `resilient-check` pre-commit hook, run by the real `pre-commit` in a throwaway repository.

`pre-commit try-repo` installs a hook repository the way users get it: it clones
the repository at a commit and pip-installs it into an isolated environment.
A plain `try-repo` of this checkout would only see committed files plus changes
to tracked ones, so the tests first snapshot the working tree (tracked and
untracked, minus .gitignore'd files) into a temporary repository with one
commit; that works the same in a fresh CI clone and in a work tree with
uncommitted files.  The hook environment is installed once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GIT = shutil.which("git")
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(GIT is None, reason="pre-commit needs git, which is not installed"),
]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A one-commit copy of this working tree, as a hook repository; returns (path, sha)."""
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    snapshot = tmp_path_factory.mktemp("hook-repo")
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if not src.is_file():
            continue  # deleted in the work tree
        dst = snapshot / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    assert (snapshot / ".pre-commit-hooks.yaml").is_file()
    _git("init", "-q", cwd=snapshot)
    _git("add", "-A", cwd=snapshot)
    _git("commit", "-q", "-m", "snapshot", cwd=snapshot)
    return snapshot, _git("rev-parse", "HEAD", cwd=snapshot).strip()


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache of hook environments, shared by the tests of this session."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A user's repository with a production mock, a clean module and a test using a mock."""
    repo = tmp_path / "user"
    (repo / "app").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "app" / "auth.py").write_text(
        "from app.breakers import MockCircuitBreaker\n\n"
        "breaker = MockCircuitBreaker('auth.validate_token')\n"
    )
    (repo / "app" / "clean.py").write_text(
        "from resilient import get_breaker\n\nbreaker = get_breaker('auth.validate_token')\n"
    )
    (repo / "tests" / "test_auth.py").write_text(
        "from unittest.mock import MagicMock\n\nbreaker = MagicMock()\n"
    )
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    return repo


def _try_repo(
    hook_repo: tuple[Path, str], home: Path, repo: Path, *files: str
) -> subprocess.CompletedProcess[str]:
    path, sha = hook_repo
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), PRE_COMMIT_COLOR="never")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(
        [
            *PRE_COMMIT,
            "try-repo",
            str(path),
            "resilient-check",
            "--ref",
            sha,
            "--verbose",
            "--files",
            *files,
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )


def test_hook_fails_on_a_production_mock(
    hook_repo: tuple[Path, str], pre_commit_home: Path, user_repo: Path
) -> None:
    """The hook fails the commit and shows the finding when production code builds a mock."""
    proc = _try_repo(hook_repo, pre_commit_home, user_repo, "app/auth.py", "app/clean.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Failed" in out
    assert (
        "app/auth.py:1:26: RES002 mock breaker `MockCircuitBreaker` imported from `app.breakers`"
        in out
    )
    assert "app/auth.py:3:11: RES002 mock breaker `MockCircuitBreaker` instantiated" in out
    assert "app/clean.py:" not in out


def test_hook_passes_on_clean_files_and_tests(
    hook_repo: tuple[Path, str], pre_commit_home: Path, user_repo: Path
) -> None:
    """Clean production code passes, and a test file's mock is left alone."""
    proc = _try_repo(hook_repo, pre_commit_home, user_repo, "app/clean.py", "tests/test_auth.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Passed" in out
    assert "RES0" not in out
