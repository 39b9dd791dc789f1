"""Finding the Python files to look at, and telling test code from production code.

Shared by ``resilient check`` and ``resilient migrate`` so both agree on what is
a test.  Standard library only.

Rules:

- Test code: any folder named ``tests``, ``test`` or ``testing``; files named
  ``test_*.py``, ``*_test.py`` or ``conftest.py``; plus ``test-paths`` globs from
  ``[tool.resilient]``.  Paths are judged relative to the project root (the
  folder holding the configuration), so a checkout that itself lives under a
  folder called ``tests`` is not all test code.
- Walking a folder skips hidden entries (``.git``, ``.tox``, ``.venv``...),
  virtual environments (any folder holding ``pyvenv.cfg``, and folders named
  ``venv``/``virtualenv``), ``site-packages``, ``__pycache__``, ``build``,
  ``dist`` and ``node_modules``, and does not follow symbolic links to folders
  (so a symlink loop cannot trap it).  It picks ``*.py`` and ``*.pyi``.
- A file named on the command line is taken as it is (whatever its name or
  folder; pre-commit passes files this way), but is still classified as test or
  production code, and ``exclude`` globs still apply to it.

Globs: ``*`` matches within one path part, ``**`` across parts, ``?`` one
character.  A glob without ``/`` matches any single path part (``generated``,
``*_pb2.py``); a glob with ``/`` is anchored at the project root
(``src/legacy/**``, ``qa/*.py``).  A glob that matches a folder covers
everything inside it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import attrgetter

from ._record import Frozen

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = [
    "SKIP_DIR_NAMES",
    "TEST_DIR_NAMES",
    "Discovery",
    "Found",
    "PathMatcher",
    "SourceFile",
    "discover",
    "find_files",
    "is_test_path",
]

TEST_DIR_NAMES: Final = frozenset({"tests", "test", "testing"})
SKIP_DIR_NAMES: Final = frozenset(
    {
        "site-packages",
        "__pycache__",
        "__pypackages__",
        "build",
        "dist",
        "node_modules",
        "venv",
        "virtualenv",
    }
)
PYTHON_SUFFIXES: Final = (".py", ".pyi")


@lru_cache(maxsize=256)
def _glob_to_regex(glob: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


# The classes below are written out rather than made with ``dataclasses``:
# importing it (and ``inspect``) would cost the pre-commit hook some 10 ms.  They
# behave as the dataclasses did (the same constructors, equality, hash and repr;
# the frozen ones refuse assignment).


class PathMatcher(Frozen):
    """Matches project-relative POSIX paths against a list of globs (see module doc).

    Immutable; equal (and hashed) by ``globs``.
    """

    _fields = ("globs",)
    globs: tuple[str, ...]
    _anchored: tuple[re.Pattern[str], ...]
    _parts: tuple[re.Pattern[str], ...]

    def __init__(self, globs: tuple[str, ...] = ()) -> None:
        anchored: list[re.Pattern[str]] = []
        parts: list[re.Pattern[str]] = []
        for raw in globs:
            g = raw.strip().replace("\\", "/")
            g = g.removeprefix("./").rstrip("/")
            if not g:
                continue
            if "/" in g.lstrip("/"):
                anchored.append(_glob_to_regex(g.lstrip("/")))
            else:
                parts.append(_glob_to_regex(g.lstrip("/")))
        _set = object.__setattr__
        _set(self, "globs", globs)
        _set(self, "_anchored", tuple(anchored))
        _set(self, "_parts", tuple(parts))

    def __bool__(self) -> bool:
        return bool(self._anchored or self._parts)

    def matches(self, rel_posix: str) -> bool:
        """Return True when the path, or a folder above it, matches one of the globs."""
        if not (self._anchored or self._parts):
            return False
        pieces = [p for p in rel_posix.split("/") if p and p != "."]
        if self._parts and any(r.fullmatch(p) for r in self._parts for p in pieces):
            return True
        for n in range(len(pieces), 0, -1):
            prefix = "/".join(pieces[:n])
            if any(r.fullmatch(prefix) for r in self._anchored):
                return True
        return False


def _test_file_name(name: str) -> bool:
    stem = name.rsplit(".", 1)[0] if name.endswith(PYTHON_SUFFIXES) else name
    return name == "conftest.py" or stem.startswith("test_") or stem.endswith("_test")


def _default_test_path(pieces: Sequence[str]) -> bool:
    if not pieces:
        return False
    if any(p in TEST_DIR_NAMES for p in pieces[:-1]):
        return True
    return _test_file_name(pieces[-1])


def relative_posix(path: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> str:
    """The path relative to ``root`` when it is inside it, else as given; POSIX separators."""
    if os.name == "nt":
        return _relative_posix_pathlib(path, root)
    # What the pathlib version does, on strings: ``pathlib`` would cost the
    # pre-commit hook milliseconds to import (a test compares the two).
    given = os.fspath(path)
    if root is not None:
        absolute = given if given[:1] == "/" else os.path.join(os.getcwd(), given)
        anchor, parts = _posix_parts(os.path.normpath(absolute))
        root_anchor, root_parts = _posix_parts(os.fspath(root))
        n = len(root_parts)
        if root_anchor and root_anchor == anchor and parts[:n] == root_parts:
            return "/".join(parts[n:])
    anchor, parts = _posix_parts(os.path.normpath(given))
    if anchor:
        parts.insert(0, anchor)
    while parts and parts[0] in {"..", ".", "/"}:
        parts.pop(0)
    return "/".join(parts)


def _posix_parts(path: str) -> tuple[str, list[str]]:
    """``PurePosixPath(path)``'s anchor (``""``, ``"/"`` or ``"//"``) and names."""
    names = path.lstrip("/")
    slashes = len(path) - len(names)
    anchor = "//" if slashes == 2 else "/" if slashes else ""
    return anchor, [name for name in names.split("/") if name and name != "."]


def _relative_posix_pathlib(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None
) -> str:
    """:func:`relative_posix` with ``pathlib`` (Windows paths)."""
    from pathlib import Path, PurePosixPath

    p = Path(path)
    if root is not None:
        try:
            absolute = p if p.is_absolute() else Path.cwd() / p
            rel = Path(os.path.normpath(absolute)).relative_to(root).as_posix()
            return "" if rel == "." else rel
        except ValueError:
            pass
    parts = list(PurePosixPath(Path(os.path.normpath(p)).as_posix()).parts)
    while parts and parts[0] in {"..", ".", "/"}:
        parts.pop(0)
    return "/".join(parts)


def is_test_path(
    path: str | os.PathLike[str],
    test_paths: Iterable[str] | PathMatcher = (),
    root: str | os.PathLike[str] | None = None,
) -> bool:
    """Return True when ``path`` is test code (see the module doc for the rules).

    Args:
        path: the file, absolute or relative to the current folder.
        test_paths: extra globs (``test-paths`` in ``[tool.resilient]``).
        root: the project root the globs are relative to; defaults to the
            current folder.
    """
    matcher = test_paths if isinstance(test_paths, PathMatcher) else PathMatcher(tuple(test_paths))
    rel = relative_posix(path, root if root is not None else os.getcwd())
    pieces = rel.split("/")
    return _default_test_path(pieces) or matcher.matches(rel)


class SourceFile(Frozen):
    """One file to look at.

    Attributes:
        path: the path to open and to show in messages (relative when it was given so).
        is_test: whether it is test code.
        explicit: whether it was named on the command line (not found by walking).

    Immutable; equal (and hashed) on all three.
    """

    _fields = ("path", "is_test", "explicit")
    path: str
    is_test: bool
    explicit: bool

    def __init__(self, path: str, is_test: bool, explicit: bool = False) -> None:
        _set = object.__setattr__
        _set(self, "path", path)
        _set(self, "is_test", is_test)
        _set(self, "explicit", explicit)


class Discovery:  # noqa: PLW1641 - unhashable (mutable), as the dataclass was
    """The outcome of :func:`discover`.

    Attributes:
        files: every Python file found, tests included (check ``is_test``), in a
            stable order, without duplicates.
        missing: command-line paths that do not exist.
        unreadable: ``(path, reason)`` for folders or file links that could not be
            read (permission denied, a symlink loop); files among them are also
            in ``files`` so a reader reports them in its own output.
        symlinks: paths in ``files`` that were found by walking and are symbolic
            links (their content is the target's, which text search tools such
            as ``git grep`` do not look at).

    Each defaults to a new empty list (set); equal when all four are (not hashable).
    """

    def __init__(
        self,
        files: list[SourceFile] | None = None,
        missing: list[str] | None = None,
        unreadable: list[tuple[str, str]] | None = None,
        symlinks: set[str] | None = None,
    ) -> None:
        self.files: list[SourceFile] = [] if files is None else files
        self.missing: list[str] = [] if missing is None else missing
        self.unreadable: list[tuple[str, str]] = [] if unreadable is None else unreadable
        self.symlinks: set[str] = set() if symlinks is None else symlinks

    def _values(self) -> tuple[Any, ...]:
        return (self.files, self.missing, self.unreadable, self.symlinks)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Discovery) and other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__qualname__}(files={self.files!r}, missing={self.missing!r}, "
            f"unreadable={self.unreadable!r}, symlinks={self.symlinks!r})"
        )


def _display(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def _skip_dir(name: str) -> bool:
    return name.startswith(".") or name in SKIP_DIR_NAMES


class Found:
    """What :func:`find_files` collects: :class:`Discovery` with plain tuples for files.

    Attributes:
        rows: ``(path, is_test, explicit)`` for every file, as in ``Discovery.files``.
        missing, unreadable, symlinks: as in :class:`Discovery`.
    """

    __slots__ = ("missing", "rows", "symlinks", "unreadable")

    def __init__(self) -> None:
        self.rows: list[tuple[str, bool, bool]] = []
        self.missing: list[str] = []
        self.unreadable: list[tuple[str, str]] = []
        self.symlinks: set[str] = set()


_entry_name: Final = attrgetter("name")


def _walk(
    top: str,
    *,
    top_rel: str,
    top_is_test: bool,
    classify: _Classifier,
    out: Found,
    seen: set[str],
) -> None:
    # Hot loop: thousands of entries; globs are only consulted when configured.
    has_exclude = bool(classify.exclude)
    has_test_globs = bool(classify.test_paths)
    needs_rel = has_exclude or has_test_globs
    add = out.rows.append
    scandir = os.scandir
    skip_dirs = SKIP_DIR_NAMES
    test_dirs = TEST_DIR_NAMES
    stack: list[tuple[str, str, bool]] = [(top, top_rel, top_is_test)]
    while stack:
        current, rel, in_tests = stack.pop()
        try:
            with scandir(current) as it:
                entries = sorted(it, key=_entry_name)
        except OSError as exc:
            out.unreadable.append((_display(current), exc.strerror or str(exc)))
            continue
        if current != top:
            venv = False
            for entry in entries:
                if entry.name == "pyvenv.cfg":
                    venv = True
                    break
            if venv:
                continue  # a virtual environment
        subdirs: list[tuple[str, str, bool]] = []
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                continue
            child_rel = (f"{rel}/{name}" if rel else name) if needs_rel else ""
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                if name in skip_dirs or (has_exclude and classify.excluded(child_rel)):
                    continue
                child_test = (
                    in_tests
                    or name in test_dirs
                    or (has_test_globs and classify.test_glob(child_rel))
                )
                subdirs.append((entry.path, child_rel, child_test))
                continue
            if not name.endswith(PYTHON_SUFFIXES):
                continue
            link = entry.is_symlink()
            if link:
                try:
                    st = os.stat(entry.path)
                except FileNotFoundError:
                    continue  # a dangling link: nothing to check
                except OSError as exc:
                    # A symlink loop named *.py: the reader reports it as a finding.
                    out.unreadable.append((_display(entry.path), exc.strerror or str(exc)))
                    st = None
                if st is not None and not stat.S_ISREG(st.st_mode):
                    continue
                key = os.path.realpath(entry.path) if st is not None else entry.path
                if key in seen:
                    continue
                seen.add(key)
            if has_exclude and classify.excluded(child_rel):
                continue
            is_test = (
                in_tests
                or name.startswith("test_")
                or name.endswith(_TEST_SUFFIXES)
                or name == "conftest.py"
                or (has_test_globs and classify.test_glob(child_rel))
            )
            path = entry.path
            display = path[2:] if path[:2] == "./" else path
            if link:
                out.symlinks.add(display)
            add((display, is_test, False))
        # reversed so that popping visits folders in name order
        stack.extend(reversed(subdirs))


_TEST_SUFFIXES: Final = ("_test.py", "_test.pyi")


class _Classifier:
    __slots__ = ("exclude", "test_paths")

    def __init__(self, test_paths: PathMatcher, exclude: PathMatcher) -> None:
        self.test_paths = test_paths
        self.exclude = exclude

    def excluded(self, rel: str) -> bool:
        return bool(self.exclude) and self.exclude.matches(rel)

    def test_glob(self, rel: str) -> bool:
        return bool(self.test_paths) and self.test_paths.matches(rel)


def discover(
    paths: Sequence[str | os.PathLike[str]],
    *,
    root: str | os.PathLike[str] | None = None,
    test_paths: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> Discovery:
    """Find the Python files under ``paths`` (default: the current folder).

    Args:
        paths: files and folders from the command line.
        root: the project root the globs are relative to (default: the current folder).
        test_paths: extra test globs (``test-paths``).
        exclude: globs of paths never to look at (``exclude``); they apply to
            files named on the command line too.

    Returns:
        A :class:`Discovery`; callers decide whether to keep test files.
    """
    found = find_files(paths, root=root, test_paths=test_paths, exclude=exclude)
    return Discovery(
        files=[SourceFile(path, is_test, explicit) for path, is_test, explicit in found.rows],
        missing=found.missing,
        unreadable=found.unreadable,
        symlinks=found.symlinks,
    )


def find_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    root: str | os.PathLike[str] | None = None,
    test_paths: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> Found:
    """:func:`discover`, with a tuple per file instead of a :class:`SourceFile` (faster)."""
    root = root if root is not None else os.getcwd()
    classify = _Classifier(PathMatcher(tuple(test_paths)), PathMatcher(tuple(exclude)))
    result = Found()
    seen: set[str] = set()
    args = [os.fspath(p) for p in paths] or ["."]
    for arg in args:
        if not os.path.lexists(arg):
            result.missing.append(arg)
            continue
        rel = relative_posix(arg, root)
        if classify.excluded(rel):
            continue
        pieces = [p for p in rel.split("/") if p]
        if not os.path.isdir(arg):
            key = os.path.realpath(arg)
            if key not in seen:
                seen.add(key)
                is_test = _default_test_path(pieces) or classify.test_glob(rel)
                result.rows.append((_display(arg), is_test, True))
            continue
        in_tests = any(p in TEST_DIR_NAMES for p in pieces) or classify.test_glob(rel)
        _walk(
            arg,
            top_rel="/".join(pieces),
            top_is_test=in_tests,
            classify=classify,
            out=result,
            seen=seen,
        )
    if len(args) > 1:
        unique: dict[str, tuple[str, bool, bool]] = {}
        for row in result.rows:
            unique.setdefault(os.path.normpath(row[0]), row)
        result.rows = list(unique.values())
    return result
