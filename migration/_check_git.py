"""Let ``git grep`` do the guard's text prefilter inside a git checkout.

Reading every file into Python only to find that it never mentions a breaker is
most of ``resilient check``'s time on a large tree.  Inside a git work tree,
``git grep`` (C) finds the candidate files instead, and Python reads only those.
git starts as soon as the configuration is read (before the checker is even
imported and the folders walked), and its output is read as it comes: each
candidate is checked while git is still searching the rest of the tree.

The result is the same as without git, by construction:

- ``git ls-files -s -v`` says which files git searched: tracked regular files
  (mode 100644 or 100755, stage 0) whose work-tree copy git reads.  Entries
  marked assume-unchanged or skip-worktree (git searches their indexed copy),
  symbolic links, submodules and unmerged paths are left to Python, and so is
  every file git does not track (untracked, ignored, in a submodule) and every
  file the walk found through a symbolic link;
- the ``git grep -P`` patterns are a superset of :func:`._check.needs_parse`:
  ``breaker``, ``circuit``, ``resilient`` (every suppression comment names it),
  the "open" assignments (the same regular expression, one pattern per leading
  word so that PCRE can search for a literal), and the configured mock names.
  They run in the C locale, so that ``(?i)``, ``\\w``, ``\\s`` and ``\\b`` mean for
  git exactly what they mean for Python's ``bytes`` patterns, byte by byte; every
  candidate is filtered again in Python;
- any failure (no git, not a checkout, git without PCRE, an error exit, any
  message on git's error output such as a file it could not read, a time-out)
  sends every file of that folder through the Python prefilter.

Standard library only; git is started with ``os.posix_spawnp`` (:mod:`._spawn`),
and ``subprocess`` is imported only where there is none (Windows).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence

from ._spawn import communicate, spawn, wait

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Any

    from ._names import MockNames

__all__ = [
    "GitScan",
    "cpus",
    "folder_prefix",
    "git_pattern",
    "grep_threads",
    "prefetch",
    "pump",
    "relative_in",
    "release_prefetched",
    "select",
]

# The part of ``_check._OPENING_RE`` after its leading word (kept equal by a test).
OPENING_TAIL = r"""\s*(?::[^=\n]*)?=\s*(?:true\b|[\w.]*open(?:ed)?\b|[\"']open)"""
# One ``-e`` per pattern, each starting with a literal word: git tries each on its
# own, and PCRE then searches for that literal (an alternation of leading words,
# or of ``breaker|circuit``, makes it test every position instead).
_BASE_PATTERNS = (
    r"(?i)breaker",
    r"(?i)circuit",
    # A suppression comment (``_check._SUPPRESSION_BYTES_RE``) may span lines; the
    # word itself cannot, and git matches line by line.
    r"(?i)resilient",
    r"(?i)open\w*" + OPENING_TAIL,
    r"(?i)stat(?:e|us)" + OPENING_TAIL,
    r"(?i)mode" + OPENING_TAIL,
)
_TIMEOUT = 120.0
_MAX_ERRORS = 1 << 16  # git's error output kept (the end of it)
_GREP_OPTIONS = ("-l", "-z", "--no-color", "-P")
# Entries of ``ls-files -s -v`` ("TAG MODE OID STAGE\tPATH") whose work-tree file
# git grep reads: tracked regular files, not assume-unchanged ("h") or
# skip-worktree ("S", both searched in the index), not unmerged ("M").
_SEARCHED_HEADS = (b"H 100644 ", b"H 100755 ")
# Files the guard always counts as test code (``_files``: test folders below the
# folder walked, test file names): without ``--include-tests`` git need not
# read them.  ``ls-files`` still lists them as searched, which is harmless as
# the guard never checks such a file unless it is named on the command line
# (those are always read by Python).
_TEST_CODE = tuple(
    ":(exclude,glob)" + glob
    for glob in (
        "**/tests/**",
        "**/test/**",
        "**/testing/**",
        "**/test_*.py",
        "**/test_*.pyi",
        "**/*_test.py",
        "**/*_test.pyi",
        "**/conftest.py",
    )
)
# The files the guard and the codemod look at (``_files.PYTHON_SUFFIXES``).
_PYTHON_FILES = (":(glob)**/*.py", ":(glob)**/*.pyi")
# Environment that would change what git reads or how it matches.
_GIT_ENV_DROP = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_ICASE_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_LITERAL_PATHSPECS",
)


def git_pattern(names: MockNames) -> list[str]:
    """The PCREs ``git grep`` runs (any may match): a superset of ``needs_parse``.

    Empty when no line-by-line text search can stand in for ``needs_parse``
    (a configured name whose literal part is empty or holds a line break).
    """
    needles = names.needles()
    if any(not n or b"\n" in n or b"\0" in n for n in needles):
        return []
    extra = sorted({n.decode("utf-8", "replace") for n in needles} - {"breaker"})
    return [*_BASE_PATTERNS, *("(?i)" + re.escape(n) for n in extra)]


class GitScan:
    """``git ls-files`` and ``git grep`` running in one folder.

    Call :meth:`searched` for what git searches, then :func:`pump` (or
    :meth:`result`) for the candidates as git finds them; :attr:`ok` tells,
    once :attr:`done`, whether git finished cleanly.
    """

    def __init__(self, top: str, procs: tuple[Any, Any]) -> None:
        self.top = top
        self._procs = procs
        self._ls_files, self._grep = procs
        self._searched: set[str] | None = None
        self._searched_read = False
        self._out = self._grep.stdout.fileno()
        self._open = [self._out, self._grep.stderr.fileno()]  # pipes not at their end
        self._partial = b""  # a name not yet NUL-terminated
        self._errors = b""  # what git wrote on its error output
        self._found: set[str] = set()
        self._deadline = time.monotonic() + _TIMEOUT
        self.done = False
        self.ok = False

    @classmethod
    def start(
        cls,
        top: str,
        pattern: str | list[str],
        *,
        skip_tests: bool = False,
        threads: int | None = None,
    ) -> GitScan | None:
        """Start both commands in ``top``; None when git cannot be used here.

        ``skip_tests``: git need not read test code (the guard skips it).
        ``threads``: git grep's threads (default :func:`grep_threads`).
        A scan :func:`prefetch` started with these very arguments is handed over.
        """
        if threads is None:
            early = _PREFETCHED.pop(_prefetch_key(top, pattern, skip_tests), None)
            if early is not None:
                return early
        patterns = _each(pattern)
        if not patterns or not os.path.isdir(top):
            return None
        env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
        for var in _GIT_ENV_DROP:
            env.pop(var, None)
        common = [
            "git",
            "-C",  # (``posix_spawn`` has no working-folder argument)
            top,
            "-c",
            "core.quotepath=off",
            "-c",
            "grep.fallbackToNoIndex=false",
            "-c",
            "grep.fullName=false",  # names relative to ``top``, as ls-files gives them
        ]
        # Python files only (the walk finds no others; a file named on the command
        # line is read by Python whatever it is called)
        where = ["--", *_PYTHON_FILES, *(_TEST_CODE if skip_tests else ())]
        threading = ["--threads", str(threads or grep_threads())]
        # git writes its list through a 4 KB buffer; ``stdbuf`` (GNU coreutils),
        # where there is one, makes it hand over each name as soon as found.
        stdbuf = _find_program("stdbuf")
        unbuffered = [stdbuf, "-o0"] if stdbuf is not None else []
        try:
            grep = _start(
                [*unbuffered, *common, "grep", *_GREP_OPTIONS, *threading, *patterns, *where],
                env,
                stderr=True,
            )
        except (OSError, ValueError):  # no git; a NUL in a pattern
            return None
        try:
            ls_files = _start(
                [*common, "ls-files", "-z", "-s", "-v", "--", *_PYTHON_FILES], env, stderr=False
            )
        except OSError:
            _stop(grep)
            for stream in (grep.stdout, grep.stderr):
                if stream is not None:
                    stream.close()
            return None
        return cls(top, (ls_files, grep))

    def searched(self) -> set[str] | None:
        """The files git searches (POSIX paths relative to ``top``); None on failure."""
        if self._searched_read:
            return self._searched
        self._searched_read = True
        proc = self._ls_files
        got = communicate(proc, self.seconds_left())
        if got is None:  # timed out
            _stop(proc)
            return None
        out, _ = got
        if proc.returncode == 0:
            self._searched = _searched_paths(out)
        return self._searched

    def fds(self) -> list[int]:
        """git grep's pipes still open (to wait on with ``poll``)."""
        return list(self._open)

    def read(self, fd: int) -> list[str]:
        """Read once from ``fd`` (ready to read); returns the new candidates."""
        chunk = os.read(fd, 1 << 16)
        if not chunk:  # the end of this pipe
            self._open.remove(fd)
            if not self._open:
                self._finish()
            return []
        if fd != self._out:
            self._errors = (self._errors + chunk)[-_MAX_ERRORS:]
            return []
        data = self._partial + chunk
        end = data.rfind(b"\0") + 1
        self._partial = data[end:]
        return self._add(data[:end])

    def drain(self) -> list[str]:
        """Wait for git to finish; returns the candidates not read yet (no ``poll``)."""
        got = communicate(self._grep, self.seconds_left())
        if got is None:  # timed out
            self.abandon()
            return []
        out, err = got
        self._open.clear()
        self._errors += err
        data = self._partial + out
        end = data.rfind(b"\0") + 1
        self._partial = data[end:]
        new = self._add(data[:end])
        self._finish()
        return new

    def _add(self, names: bytes) -> list[str]:
        new = os.fsdecode(names).split("\0")[:-1] if names else []
        self._found.update(new)
        return new

    def _finish(self) -> None:
        code = wait(self._grep, self.seconds_left())
        if code is None:  # timed out
            _stop(self._grep)
            code = -1
        self._close_pipes()
        self.done = True
        # Trust the list only when git finished, said nothing, and ended each name.
        self.ok = code in (0, 1) and not self._partial and not _complaints(self._errors)

    def abandon(self) -> None:
        """Give up on the search (time-out, or nothing left to learn from it)."""
        if not self.done:
            _stop(self._grep)
            self._close_pipes()
            self.done = True
            self.ok = False

    def timed_out(self) -> bool:
        return time.monotonic() >= self._deadline

    def seconds_left(self) -> float:
        return max(self._deadline - time.monotonic(), 0.0)

    def result(self) -> tuple[set[str], set[str]] | None:
        """``(searched, candidates)``: POSIX paths relative to ``top``; None on any failure."""
        searched = self.searched()
        while not self.done:
            pump([self], block=True)
        if searched is None or not self.ok:
            return None
        return searched, set(self._found)

    def close(self) -> None:
        """Stop the commands if they still run (used when the run is abandoned)."""
        for proc in self._procs:
            _stop(proc)
        self._close_pipes()
        self.done = True

    def _close_pipes(self) -> None:
        self._open.clear()
        for proc in self._procs:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


# Scans started by :func:`prefetch`, until :meth:`GitScan.start` claims them.
_PREFETCHED: dict[tuple[str, tuple[str, ...], bool], GitScan] = {}
# ``resilient check`` options that take a value (the value is not a path).
_VALUE_OPTIONS = frozenset({"--format", "--config", "--jobs", "-j"})  # (check and migrate)


def _prefetch_key(
    top: str, pattern: str | list[str] | tuple[str, ...], skip_tests: bool
) -> tuple[str, tuple[str, ...], bool]:
    return (top, (pattern,) if isinstance(pattern, str) else tuple(pattern), skip_tests)


def guess_arguments(args: Sequence[str]) -> tuple[list[str], bool] | None:
    """``(paths, --include-tests given)`` of a ``check``/``migrate`` command line, guessed
    before it is parsed; None with ``--no-git``."""
    paths: list[str] = []
    include_tests = False
    options = True
    expect_value = False
    for arg in args:
        if expect_value:
            expect_value = False
        elif options and arg == "--":
            options = False
        elif options and arg.startswith("-"):
            if arg == "--no-git":
                return None
            if arg == "--include-tests":
                include_tests = True
            expect_value = arg in _VALUE_OPTIONS
        else:
            paths.append(arg)
    return paths, include_tests


def prefetch_scan(top: str, skip_tests: bool) -> None:
    """Start ``git grep`` with the default patterns in ``top`` for a run to claim later."""
    key = _prefetch_key(top, _BASE_PATTERNS, skip_tests)
    if key not in _PREFETCHED:
        scan = GitScan.start(top, list(_BASE_PATTERNS), skip_tests=skip_tests)
        if scan is not None:
            _PREFETCHED[key] = scan


def prefetch(args: Sequence[str]) -> None:
    """Start ``git grep`` for ``resilient check ARGS`` before the command is even parsed.

    The console script calls this first thing, so git searches while Python
    imports the guard, parses the arguments and reads the configuration.  The
    arguments are only guessed at here (the folders named, ``--include-tests``,
    ``--no-git``) and the patterns are those of the default mock names: the run
    itself asks :meth:`GitScan.start` for the scans it needs, which hands over a
    prefetched one only when folder, patterns and test skipping are the same.
    :func:`release_prefetched` stops the ones nobody claimed.
    """
    guessed = guess_arguments(args)
    if guessed is None:
        return
    paths, include_tests = guessed
    for top in paths or ["."]:
        if os.path.isdir(top) and not os.path.islink(top):
            prefetch_scan(top, skip_tests=not include_tests)


def release_prefetched() -> None:
    """Stop the prefetched scans no run claimed (other patterns, a wrong guess)."""
    while _PREFETCHED:
        _, scan = _PREFETCHED.popitem()
        scan.close()


def pump(scans: Sequence[GitScan], *, block: bool) -> list[tuple[GitScan, str]]:
    """New candidates from the scans still running: ``(scan, relative path)``.

    With ``block``, waits until at least one scan has output (or ends);
    otherwise returns at once with whatever has already arrived.  A scan past
    its time limit is abandoned (``done`` and not ``ok``).
    """
    live = [s for s in scans if not s.done]
    if not live:
        return []
    import select

    if not hasattr(select, "poll"):  # Windows: no waiting on pipes; read each to its end
        return [(s, rel) for s in live for rel in s.drain()] if block else []
    owners = {fd: s for s in live for fd in s.fds()}
    poller = select.poll()
    for fd in owners:
        poller.register(fd, select.POLLIN)
    timeout = min(s.seconds_left() for s in live) if block else 0.0
    ready = poller.poll(timeout * 1000)
    if block and not ready:
        for s in live:
            if s.timed_out():
                s.abandon()
    out: list[tuple[GitScan, str]] = []
    for fd, _event in ready:
        scan = owners[fd]
        out.extend((scan, rel) for rel in scan.read(fd))
    return out


# A missing or foreign ``stdbuf`` library: the loader says so, and git runs as usual.
_PRELOAD_NOTICE = re.compile(rb"ERROR: ld\.so: object .* from LD_PRELOAD cannot be preloaded.*")


def _complaints(errors: bytes) -> bool:
    """Whether git's error output says anything beyond a harmless loader notice."""
    return any(
        line.strip() and _PRELOAD_NOTICE.fullmatch(line.strip()) is None
        for line in errors.splitlines()
    )


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def grep_threads() -> int:
    """git grep's threads: half the CPUs, at least one.

    The guard checks candidates on the other half meanwhile; and git's extra
    threads cost more CPU time than they save wall time when no CPU is idle.
    """
    return max(1, cpus() // 2)


def _find_program(name: str) -> str | None:
    """``shutil.which`` for a POSIX program (absolute PATH entries only), without ``shutil``."""
    if os.name != "posix":
        return None
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        if not os.path.isabs(folder):
            continue  # never a program found relative to the folder checked
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    return None


def _start(argv: list[str], env: dict[str, str], *, stderr: bool) -> Any:
    """Start a git command, output on a pipe (and its errors, with ``stderr``)."""
    if spawn is not None:
        return spawn(argv, env=env, stderr=stderr)
    import subprocess

    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def _stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _searched_paths(output: bytes) -> set[str]:
    """The paths of ``ls-files -s -v`` entries that ``git grep`` reads from the work tree."""
    heads = _SEARCHED_HEADS
    paths = [e.partition(b"\t")[2] for e in output.split(b"\0") if e[:9] in heads]
    return set(os.fsdecode(b"\0".join(paths)).split("\0")) if paths else set()


def relative_in(path: str, prefix: str) -> str | None:
    """``path`` relative to a walked folder's display ``prefix``, POSIX style, or None."""
    if not path.startswith(prefix):
        return None
    rel = path[len(prefix) :]
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


def folder_prefix(arg: str) -> str:
    """The prefix that paths found by walking ``arg`` are shown with."""
    joined = os.path.join(arg, "")
    return joined[2:] if joined.startswith("./") else joined


def select(
    paths: Iterable[str],
    scans: list[tuple[str, GitScan]],
    *,
    skip: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Keep the paths that need a look: git candidates, and whatever git did not search.

    Waits for git to finish; ``resilient check`` itself reads the candidates as
    they come instead (see ``_check_cli``), with the same outcome.
    """
    ready: list[tuple[str, set[str], set[str]]] = []
    for prefix, scan in scans:
        outcome = scan.result()
        if outcome is not None:
            ready.append((prefix, *outcome))
    if not ready:
        return list(paths)
    keep: list[str] = []
    for path in paths:
        if path in skip:
            keep.append(path)
            continue
        for prefix, searched, candidates in ready:
            rel = relative_in(path, prefix)
            if rel is not None and rel in searched:
                if rel in candidates:
                    keep.append(path)
                break
        else:
            keep.append(path)
    return keep


def _each(pattern: str | list[str]) -> list[str]:
    patterns = [pattern] if isinstance(pattern, str) else pattern
    return [arg for p in patterns for arg in ("-e", p)]
