"""Let ``git grep`` rule out files for ``resilient migrate`` inside a git checkout.

``migrate`` reads every Python file of the project: the files it may rewrite,
and all the others (tests included) for what they reference.  Most of them never
mention a mock breaker, and reading them into Python only to find that out was
most of a dry run's time on a large tree.  As for ``resilient check`` (see
:mod:`._check_git`, whose :class:`~._check_git.GitScan` this uses), ``git grep``
searches the tree instead, and a file is left unread only when git searched it
(a tracked regular file whose work-tree copy git reads) and did not list it.
Every file git did not search (untracked, ignored, a symbolic link, through a
symbolic link, assume-unchanged...), and every file of a folder whose search
failed in any way, is read by Python as without git, so the outcome is the same
by construction:

- the first search runs the guard's patterns (:func:`._check_git.git_pattern`),
  a superset of both of the run's text tests (``needs_parse`` for the guard and
  ``_mentions_mock`` for the codemod: every mock name holds a needle the
  patterns search for); it starts before the folders are walked and runs while
  they are;
- later searches look for the names of managers and factories that hand out
  mock breakers (*carriers*), as literal text, a superset of the word match the
  run applies to what git lists.  A name that holds one of the first search's
  words (``BreakerManager`` holds "breaker") needs no search of its own: a file
  the first search did not list cannot mention it.

Standard library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

from ._check_git import GitScan, cpus, git_pattern, guess_arguments, prefetch_scan
from ._names import MockNames

__all__ = ["GitFilter", "prefetch", "project_folder"]

# What marks the folder of a project (the nearest one above the paths given).
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_folder(paths: Sequence[str]) -> str | None:
    """The project the paths belong to: the nearest folder above them holding a
    ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git`` (absolute); None if none."""
    try:
        common = os.path.commonpath([os.path.abspath(p) for p in paths or ["."]])
    except ValueError:  # different drives
        return None
    folder = common if os.path.isdir(common) else os.path.dirname(common)
    while True:
        if any(os.path.exists(os.path.join(folder, marker)) for marker in _PROJECT_MARKERS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def prefetch(args: Sequence[str]) -> None:
    """Start the first search for ``resilient migrate ARGS`` before the command is parsed.

    The console script calls this first thing (see :func:`._check_git.prefetch`,
    its twin for ``check``): git searches the project folder the paths belong to
    while Python imports the codemod.  :meth:`GitFilter.start` claims the scan
    when the run wants the same one (no ``[tool.resilient]`` names of its own,
    the same folder); otherwise it is stopped unused.
    """
    guessed = guess_arguments(args)
    if guessed is None:
        return
    top = project_folder(guessed[0])
    if top is not None and not os.path.islink(top):
        prefetch_scan(top, skip_tests=False)  # migrate reads test code too


class GitFilter:
    """``git grep`` searches over some folders, and the files they ruled out.

    Paths are absolute, as ``os.path.abspath`` gives them for a file found by
    walking a folder (no symbolic link resolved).
    """

    def __init__(
        self, tops: Sequence[str], first: list[tuple[str, GitScan]], words: Sequence[str] = ()
    ) -> None:
        self._tops = list(tops)
        self._first = first
        self._searched: dict[str, set[str]] = {}  # top -> paths git searched (relative)
        # literal words the first search looks for (any case): a file it did not list
        # holds none of them, nor any name containing one
        self._words = tuple(words)
        self._first_unread: set[str] | None = None

    @classmethod
    def start(cls, tops: Iterable[str], names: MockNames) -> GitFilter | None:
        """Start the first search (the guard's patterns) in each folder; None if it cannot run."""
        pattern = git_pattern(names)
        if not pattern:
            return None
        started: list[tuple[str, GitScan]] = []
        for top in dict.fromkeys(os.path.abspath(t) for t in tops):
            if not os.path.isdir(top) or os.path.islink(top):
                continue
            scan = GitScan.start(top, pattern)
            if scan is not None:
                started.append((top, scan))
        if not started:
            return None
        words = ["breaker", "circuit", "resilient"]
        words.extend(n.decode("ascii").lower() for n in names.needles() if n.isascii())
        return cls([top for top, _ in started], started, words)

    def ruled_out(self) -> set[str]:
        """Waits for the first search: the files it searched and did not list."""
        first, self._first = self._first, []
        self._first_unread = self._collect(first)
        return set(self._first_unread)

    def without(self, words: Iterable[str]) -> set[str]:
        """Searches again: the files git searched that hold none of ``words`` (case-sensitive).

        Nothing is ruled out in a folder whose first search failed.
        """
        literals = sorted({w for w in words if w and "\n" not in w and "\0" not in w})
        if not literals:
            return set()
        first = self._first_unread
        if first is not None:  # names the first search covers need no search of their own
            literals = [w for w in literals if not self._covered(w)]
            if not literals:
                return set(first)
        patterns = [re.escape(w) for w in literals]
        started: list[tuple[str, GitScan]] = []
        for top in self._tops:
            if top not in self._searched:
                continue
            # the run waits for this one: git may take every CPU
            scan = GitScan.start(top, patterns, threads=cpus())
            if scan is not None:
                started.append((top, scan))
        unread = self._collect(started)
        return unread if first is None else unread & first

    def _covered(self, word: str) -> bool:
        """Whether every text holding ``word`` matches one of the first search's words."""
        lowered = word.lower()
        return word.isascii() and any(w in lowered for w in self._words if w)

    def close(self) -> None:
        """Stop a search still running (the run ended early)."""
        for _, scan in self._first:
            scan.close()
        self._first = []

    def _collect(self, scans: list[tuple[str, GitScan]]) -> set[str]:
        out: set[str] = set()
        for top, scan in scans:
            try:
                outcome = scan.result()
            except (OSError, ValueError):  # a pipe that failed: as if git could not run
                outcome = None
            finally:
                scan.close()
            if outcome is None:
                self._tops = [t for t in self._tops if t != top]
                self._searched.pop(top, None)
                continue
            searched, listed = outcome
            self._searched.setdefault(top, searched)
            # a later search counts only files the first one searched as well
            unlisted = (searched & self._searched[top]) - listed
            if os.sep == "/":
                prefix = os.path.join(top, "")
                out.update(prefix + rel for rel in unlisted)
            else:  # pragma: no cover - Windows
                out.update(os.path.normpath(os.path.join(top, rel)) for rel in unlisted)
        return out
