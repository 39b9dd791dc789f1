"""Runs ``resilient migrate`` over a tree: discovery, prefilter, the three passes, writing.

Which files are read:

- the *rewrite set*: Python files under the paths given, production code only
  unless ``--include-tests`` (discovery and test classification come from
  :mod:`._files` and ``[tool.resilient]``, shared with ``resilient check``);
- the *reference set*: every Python file of the project the paths belong to
  (the folder of the ``pyproject.toml``/``setup.py``/``.git`` above them),
  tests included, read but never written, so that a mock a test still imports,
  or a caller outside the paths, is seen before anything is deleted or changed.

Only files whose bytes name a mock breaker (or, in later rounds, a manager or
factory that hands one out) are parsed; the others are read once (and kept in
memory for the later passes) and skipped.  Passes 1 and 2 read modules with
``ast`` in this process; LibCST, which takes longer to import than they take to
run, is imported only for pass 3, by the files that change: in a worker process
started as soon as the prefilter has found many candidates (it loads LibCST
while this process analyses), or here.
Every per-file step catches its own exceptions: a file that fails is reported
and the run goes on without touching it.
"""

from __future__ import annotations

import ast
import difflib
import gc
import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from ._check import CheckOptions, check_source, needs_parse, read_bytes
from ._codemod_model import (
    ClassInfo,
    DeleteClass,
    DropStatement,
    FileFacts,
    FilePlan,
    FileResult,
    ImportRef,
    ManualSite,
    ModuleSummary,
    NodeKey,
    Sym,
)
from ._codemod_plan import FileRole, Plan, make_plan
from ._codemod_resolve import Resolver
from ._codemod_scope import cst_names
from ._config import Config
from ._diagnostics import RULES, Finding
from ._files import SourceFile, discover
from ._fork import fork_map
from ._migrate_git import GitFilter, project_folder
from ._migrate_io import (
    SourceError,
    decode_source,
    encode_source,
    module_name,
    write_atomic,
)
from ._migrate_slice import ALWAYS_KEPT, Slice, parse_cached, slice_source, split_lines
from ._names import MockNames
from ._record import record

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

__all__ = ["MigrateOptions", "RunReport", "run_migrate"]

_T = TypeVar("_T")
_R = TypeVar("_R")
_IDENT_RE: Final = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_STR_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_BYTES: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
#: Candidate files from which a rewrite worker is started without ``--jobs``, and how
#: many at most: one hides LibCST's import behind the analysis; more compete with the
#: analysis for the CPUs while LibCST loads in each (measured slower on two CPUs).
_AUTO_REWRITERS_MIN: Final = 8
# With this many files to rewrite (a large tree, not a pre-commit file list), the
# rewrite workers start before the prefilter has run.
_EARLY_REWRITERS_FILES: Final = 2000
_AUTO_REWRITERS_MAX: Final = 1
# A rewrite worker forks a second rewriter (LibCST already loaded) for this many files.
_FORK_MIN_ITEMS: Final = 4


@dataclass(frozen=True)
class MigrateOptions:
    """What to migrate and how.

    Attributes:
        paths: files and folders (default: the current folder).
        config: ``[tool.resilient]`` settings.
        write: apply the changes (default: dry run).
        include_tests: rewrite test code too.
        jobs: worker processes for the rewrite (pass 3); 0 starts one when there
            are enough candidate files and more than one CPU, 1 runs in one process.
        use_git: inside a git checkout, let ``git grep`` rule out files that cannot
            matter instead of reading them (the outcome is the same; see
            :mod:`._migrate_git`).
    """

    paths: tuple[str, ...]
    config: Config
    write: bool = False
    include_tests: bool = False
    jobs: int = 0
    use_git: bool = True


@dataclass
class RunReport:
    """Everything a run found and did.

    Attributes:
        results: one entry per file that changed, would change, or failed,
            sorted by path.
        manual: sites left for a human (lines as the files end up).
        missing: paths given that do not exist.
        scanned: Python files read in the rewrite set.
        parsed: files parsed with LibCST (all sets).
        skipped: files in the rewrite set never parsed (no matching text).
    """

    results: list[FileResult] = field(default_factory=list)
    manual: list[ManualSite] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    scanned: int = 0
    parsed: int = 0
    skipped: int = 0
    written: bool = False

    @property
    def changed(self) -> list[FileResult]:
        """Files that changed (or would change)."""
        return [r for r in self.results if r.status == "changed"]

    @property
    def failed(self) -> list[FileResult]:
        """Files that could not be processed; never written."""
        return [r for r in self.results if r.status == "failed"]

    def totals(self) -> dict[str, int]:
        """Rewrites by kind over all files."""
        out: dict[str, int] = {}
        for r in self.results:
            for what, n in r.counts:
                out[what] = out.get(what, 0) + n
        return out


# -- files ------------------------------------------------------------------------------


class _File:
    """One file of the run: where to read it, how to show it, what it is.

    How to show it (``display``) and its module name are worked out on first use:
    most files of a large tree are only read once by the prefilter.
    """

    __slots__ = ("_display", "_module", "_paths", "path", "real", "role")

    def __init__(self, real: str, path: str, role: FileRole, paths: _Paths) -> None:
        self.real = real
        self.path = path  # absolute, as found (not resolved)
        self.role = role
        self._paths = paths
        self._display: str | None = None
        self._module: tuple[str, str] | None = None

    @property
    def shown(self) -> str | None:
        """``display`` if it was asked for already, else None."""
        return self._display

    @property
    def display(self) -> str:
        if self._display is None:
            self._display = self._paths.display(self.path)
        return self._display

    @property
    def module(self) -> str:
        return self._names()[0]

    @property
    def package(self) -> str:
        return self._names()[1]

    def _names(self) -> tuple[str, str]:
        if self._module is None:
            self._module = module_name(self.path)
        return self._module

    def __reduce__(self) -> tuple[object, ...]:
        # to a worker process: with what it needs worked out, not the caches
        return (_resolved_file, (self.real, self.path, self.role, self.display, self._names()))


def _resolved_file(
    real: str, path: str, role: FileRole, display: str, names: tuple[str, str]
) -> _File:
    f = _File(real, path, role, _Paths())
    f._display = display
    f._module = names
    return f


def _display(path: str) -> str:
    absolute = os.path.abspath(path)
    try:
        rel = os.path.relpath(absolute)
    except ValueError:
        return absolute
    return absolute if rel.startswith("..") else rel


# Paths are plain strings joined by "/" here (no drive, no second separator): the
# file list splits and joins them with string operations (it does so for every file).
_POSIX_PATHS: Final = os.sep == "/" and os.altsep is None


def _split(path: str) -> tuple[str, str]:
    """``os.path.split``."""
    if not _POSIX_PATHS:
        return os.path.split(path)
    cut = path.rfind("/") + 1
    head = path[:cut]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head, path[cut:]


def _join(folder: str, name: str) -> str:
    """``os.path.join(folder, name)`` for a ``name`` with no separator in it."""
    if not _POSIX_PATHS:
        return os.path.join(folder, name)
    return folder + name if not folder or folder.endswith("/") else f"{folder}/{name}"


class _Paths:
    """``realpath``, display path and module name of many files, folder by folder.

    Each of these walks a file's folders (``realpath`` with one ``lstat`` per
    folder); the files of one folder share all of that, so it is done once per
    folder.  The answers equal :func:`os.path.realpath`, :func:`_display` and
    :func:`._migrate_io.module_name` on the file itself.
    """

    def __init__(self) -> None:
        self._folders: dict[str, tuple[str, str]] = {}  # folder -> (absolute, resolved)
        self._shown: dict[str, str | None] = {}

    def locate(self, path: str, *, maybe_link: bool = True) -> tuple[str, str]:
        """``(os.path.abspath(path), os.path.realpath(path))``, each folder looked up once.

        ``maybe_link=False``: the file itself is known not to be a symbolic link
        (the walk saw it), so only its folder needs resolving.
        """
        folder, name = _split(path)
        if not name or name in {".", ".."}:
            absolute = os.path.abspath(path)
            return absolute, os.path.realpath(absolute)
        known = self._folders.get(folder)
        if known is None:
            base = os.path.abspath(folder or os.curdir)
            known = self._folders[folder] = (base, os.path.realpath(base))
        absolute = _join(known[0], name)
        if maybe_link and os.path.islink(absolute):
            return absolute, os.path.realpath(absolute)
        return absolute, _join(known[1], name)

    def display(self, absolute: str) -> str:
        folder, name = _split(absolute)
        if folder not in self._shown:
            try:
                self._shown[folder] = os.path.relpath(folder)
            except ValueError:
                self._shown[folder] = None
        shown = self._shown[folder]
        if shown is None or not name:
            return _display(absolute)
        rel = name if shown == "." else _join(shown, name)
        return absolute if rel.startswith("..") else rel


def _project_root(paths: Sequence[str], config: Config) -> Path | None:
    if config.path is not None:
        return config.root
    folder = project_folder(paths)
    return None if folder is None else Path(folder)


def _git_tops(options: MigrateOptions) -> list[str]:
    """The folders ``git grep`` searches: the project's, and any folder given outside it."""
    root = _project_root(options.paths, options.config)
    tops = [str(root)] if root is not None else []
    for path in options.paths or (".",):
        if os.path.isdir(path) and not os.path.islink(path):
            absolute = os.path.abspath(path)
            if root is None or not _within(absolute, str(root)):
                tops.append(absolute)
    return tops


def _within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, os.path.abspath(folder)]) == os.path.abspath(folder)
    except ValueError:  # different drives
        return False


def _collect(options: MigrateOptions) -> tuple[dict[str, _File], list[str], list[FileResult]]:
    config = options.config
    found = discover(
        list(options.paths),
        root=config.root,
        test_paths=config.test_paths,
        exclude=config.exclude,
    )
    files: dict[str, _File] = {}
    failures: list[FileResult] = []
    paths = _Paths()
    roles = {
        (rewrite, is_test): FileRole(rewrite=rewrite, is_test=is_test)
        for rewrite in (False, True)
        for is_test in (False, True)
    }

    def add(source: SourceFile, role: FileRole, links: set[str]) -> None:
        # a file the walk found is a link only if it said so; a named one may be
        absolute, real = paths.locate(
            source.path, maybe_link=source.explicit or source.path in links
        )
        if real in files and not role.rewrite:
            return
        files[real] = _File(real, absolute, role, paths)

    for source in found.files:
        role = roles[options.include_tests or not source.is_test, source.is_test]
        add(source, role, found.symlinks)
    for path, reason in found.unreadable:
        if not path.endswith((".py", ".pyi")):
            failures.append(
                FileResult(_display(path), "failed", error=f"cannot read folder: {reason}")
            )
    root = _project_root(options.paths, config)
    given = {os.path.realpath(p) for p in options.paths or ["."]}
    if root is not None and given != {os.path.realpath(root)}:
        universe = discover(
            [str(root)], root=config.root, test_paths=config.test_paths, exclude=config.exclude
        )
        for source in universe.files:
            add(source, roles[False, source.is_test], universe.symlinks)
    return files, found.missing, failures


def _mentions_mock(data: bytes, names: MockNames, lowered: bytes | None = None) -> bool:
    """Whether an identifier in ``data`` names a mock breaker (``_IDENT_RE`` identifiers)."""
    if lowered is None:
        lowered = data.lower()
    if not names.may_mention(lowered):
        return False
    needles = names.needles()
    if not all(needles) or any(set(n) - _IDENT_BYTES for n in needles):
        # a pattern whose literal part is empty or not an identifier's: every identifier
        idents = {m.group(0) for m in _IDENT_RE.finditer(data)}
        return any(names.matches(i.decode("ascii")) for i in idents)
    # every matching name holds a needle: only the identifiers around one need a look
    seen: set[bytes] = set()
    for needle in needles:
        pos = lowered.find(needle)
        while pos != -1:
            start = pos
            while start > 0 and data[start - 1] in _IDENT_BYTES:
                start -= 1
            end = pos + len(needle)
            while end < len(data) and data[end] in _IDENT_BYTES:
                end += 1
            ident = _IDENT_RE.search(data, start, end)  # where the pattern would start it
            if ident is not None and ident.end() > pos:
                word = ident.group(0)
                if word not in seen:
                    seen.add(word)
                    if names.matches(word.decode("ascii")):
                        return True
            pos = lowered.find(needle, end)
    return False


# -- workers (run in this process or in a pool) -------------------------------------------

_NAMES: MockNames = MockNames()
_RESOLVER: Resolver | None = None
#: File contents read by the prefilter, by real path (up to ``_DATA_BUDGET`` bytes in all),
#: so that later passes need not read them again.
_DATA: dict[str, bytes] = {}
_DATA_BUDGET: Final = 256 << 20
_IDENTS: dict[str, frozenset[str]] = {}  # the identifiers in each file (for _sliced)
_SLICES: dict[tuple[str, frozenset[str]], Slice] = {}
#: Each analysed file's whole syntax tree, by real path: the guard reuses it.
_TREES: dict[str, ast.Module] = {}


def _init_worker(
    names: MockNames,
    bindings: dict[str, tuple[Sym, ...]] | None = None,
    classes: dict[str, ClassInfo] | None = None,
) -> None:
    global _NAMES, _RESOLVER
    _NAMES = names
    _RESOLVER = (
        Resolver(bindings, classes) if bindings is not None and classes is not None else None
    )


def _load(f: _File) -> tuple[bytes, str]:
    data = _DATA[f.real] if f.real in _DATA else read_bytes(f.real)
    return data, decode_source(data).text


def _always_kept(name: str) -> bool:
    """A statement naming it is kept whatever the carriers (see ``slice_source``)."""
    return name in ALWAYS_KEPT or (
        (bool(_NAMES.extra) or "breaker" in name.lower()) and _NAMES.matches(name)
    )


def _sliced(f: _File, interesting: frozenset[str]) -> Slice:
    """The file's slice for the analysis; the same as last time unless it names a new carrier."""
    _, text = _load(f)
    idents = _IDENTS.get(f.real)
    if idents is None:
        idents = _IDENTS[f.real] = frozenset(_IDENT_STR_RE.findall(text))
    # names the text never mentions change nothing, nor names slicing keeps anyway
    key = (f.real, frozenset(n for n in interesting & idents if not _always_kept(n)))
    part = _SLICES.get(key)
    if part is None:
        part = _SLICES[key] = slice_source(text, interesting, _NAMES)
        parsed = parse_cached(text)  # (slicing parsed it: a cache hit)
        if parsed is not None:
            _TREES[f.real] = parsed[0]
    return part


def _describe(exc: BaseException, text: str | None = None) -> str:
    if isinstance(exc, SyntaxError):  # from ast: Python's own message
        return _syntax_error(exc)
    libcst = sys.modules.get("libcst")  # only loaded once a file is rewritten
    if libcst is not None and isinstance(exc, libcst.ParserSyntaxError):
        if text is not None:
            try:
                ast.parse(text)
            except SyntaxError as err:  # Python's own message points at the right place
                return _syntax_error(err)
            except (ValueError, RecursionError, MemoryError):
                pass
        return f"cannot parse (line {exc.raw_line}, column {exc.raw_column + 1}): {exc.message}"
    if isinstance(exc, SourceError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    if isinstance(exc, RecursionError):
        return "cannot parse: nested too deeply"
    return f"internal error: {exc!r}"


def _syntax_error(err: SyntaxError) -> str:
    where = f"line {err.lineno}, column {err.offset}" if err.offset else f"line {err.lineno}"
    return f"cannot parse ({where}): {err.msg}"


def _index_task(
    job: tuple[_File, frozenset[str]],
) -> tuple[str, ModuleSummary | None, str | None, frozenset[str]]:
    f, interesting = job
    text: str | None = None
    try:
        part = _sliced(f, interesting)
        text = part.text
        from ._codemod import index_module

        summary = index_module(part.text, f.display, f.module, f.package, _NAMES, tree=part.tree)
        return f.real, summary, None, part.blanked_names
    except Exception as exc:
        return f.real, None, _describe(exc, text), frozenset()


def _analyze_task(job: tuple[_File, frozenset[str]]) -> tuple[str, FileFacts | None, str | None]:
    assert _RESOLVER is not None
    f, interesting = job
    try:
        part = _sliced(f, interesting)
        from ._codemod import analyze_module

        facts = analyze_module(
            part.text,
            f.display,
            f.module,
            f.package,
            resolver=_RESOLVER,
            names=_NAMES,
            tree=part.tree,
        )
        return f.real, facts, None
    except Exception as exc:
        return f.real, None, _describe(exc)


@record
class _Edit:
    """What pass 3 hands to LibCST for one file (prepared where the file was parsed).

    Attributes:
        source: the text to rewrite: the slice, or the whole file.
        protect, class_names: see :func:`._codemod_apply.apply_edits`.
    """

    file: _File
    plan: FilePlan
    source: str
    protect: frozenset[str] = frozenset()
    class_names: tuple[tuple[NodeKey, frozenset[str]], ...] = ()


def _edit_task(edit: _Edit) -> tuple[str | None, str | None]:
    """Run LibCST on one prepared file: ``(new source, None)`` or ``(None, error)``."""
    try:
        from ._codemod_apply import apply_edits  # LibCST: only when a file is rewritten

        f = edit.file
        new = apply_edits(
            edit.source,
            f.package,
            edit.plan,
            protect=edit.protect,
            class_names=dict(edit.class_names),
        )
        return new, None
    except Exception as exc:
        return None, _describe(exc)


def _prepare_edit(
    text: str, f: _File, plan: FilePlan, interesting: frozenset[str]
) -> tuple[_Edit, Slice | None]:
    """Slice ``text`` for the rewrite of ``plan``, and what LibCST needs to know besides.

    The slice keeps every statement an edit touches and every statement naming an
    import the rewrite may remove (so the import removal sees all its uses);
    the rest become placeholders over the same lines.  Without placeholders the
    whole text is rewritten.
    """
    deleted = [e for e in plan.edits if isinstance(e, DeleteClass)]
    # a deleted class: its first line keeps it, its body need not be read (blanked whole)
    lines = {e.key[1] for e in deleted}
    lines.update(
        ln
        for e in plan.edits
        if not isinstance(e, DeleteClass)
        for ln in range(e.key[1], e.key[3] + 1)
    )
    wanted = set(interesting) | {"TYPE_CHECKING", "typing", "typing_extensions"}
    for spec in plan.remove_imports:
        wanted.add(spec.bound)
    protect: set[str] = set()
    class_names: dict[NodeKey, frozenset[str]] = {}
    if deleted:
        # An import a removed class used goes only if nothing else names it, even
        # in a comment or string (decided here on the text, so the statements
        # using it need not be in the slice).
        imported, import_lines = _imported_names(text)
        # the names the class uses, as LibCST would find them in it (its body is
        # blanked in the slice)
        parsed = parse_cached(text)
        if parsed is not None:
            starts = {e.key[1]: e.key for e in deleted}
            for node in parsed[0].body:
                if isinstance(node, ast.ClassDef) and node.lineno in starts:
                    class_names[starts[node.lineno]] = frozenset(cst_names(node))
        split = split_lines(text)
        inside: set[int] = set()
        for e in deleted:
            inside.update(range(e.key[1], e.key[3] + 1))
        used: set[str] = set()
        elsewhere: set[str] = set()
        for number, line in enumerate(split, 1):
            if number in inside:
                used.update(_IDENT_STR_RE.findall(line))
            elif number not in import_lines:
                elsewhere.update(_IDENT_STR_RE.findall(line))
        protect = used & imported & elsewhere
    part = slice_source(
        text,
        wanted,
        _NAMES,
        force_lines=lines,
        follow=False,
        removals={e.key[1] for e in plan.edits if isinstance(e, (DeleteClass, DropStatement))},
        deleted={(e.key[1], e.key[3]) for e in deleted},
    )
    if part.stand_ins:
        edit = _Edit(f, plan, part.text, frozenset(protect), tuple(sorted(class_names.items())))
        return edit, part
    return _Edit(f, plan, text, frozenset(protect)), None


def _imported_names(text: str) -> tuple[set[str], set[int]]:
    """Names bound by imports outside functions and classes, and the lines of those imports."""
    parsed = parse_cached(text)
    if parsed is None:
        return set(), set()  # the slice is then the whole file: nothing to decide here
    tree = parsed[0]
    names: set[str] = set()
    lines: set[int] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for field in ("body", "orelse", "finalbody"):
                stack.extend(getattr(node, field, ()))
            for handler in getattr(node, "handlers", ()):
                stack.extend(handler.body)
    return names, lines


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _start_rewriter(names: MockNames) -> None:
    """A rewrite worker starts: LibCST loads now, while the parent still analyses."""
    global _NAMES
    _NAMES = names
    from ._codemod_apply import warm_up

    warm_up()


def _shared(fn: Callable[[_T], _R], items: list[_T]) -> list[_R]:
    """In a worker: ``fn`` over ``items``, with a fork of the worker taking half on a spare CPU."""
    processes = 2 if len(items) >= _FORK_MIN_ITEMS and _cpus() >= 2 else 1
    return fork_map(fn, items, processes=processes)


def _one(fn: Callable[[_T], _R], item: _T) -> list[_R]:
    """In a worker: ``[fn(item)]`` (results come back as lists, as from :func:`_shared`)."""
    return [fn(item)]


def _ready() -> None:
    """Nothing: submitted so that the pool starts its workers at once."""


class _Rewriters:
    """Worker processes for pass 3, the only one that needs LibCST.

    LibCST takes about 0.4 s to import, and rewriting a file some 25 ms.  The
    workers are started as soon as the prefilter has found files that may need
    rewriting (on a large tree, as soon as the files are listed: reading and
    analysing them takes longer than the import), so they import LibCST while
    this process indexes and analyses; it then checks the files the rewrite
    leaves alone while they rewrite.  With
    ``--jobs 1`` (or one CPU, or only a few candidate files) everything runs in
    this process, and LibCST is imported only if a file is to be rewritten.  If
    nothing is to be rewritten after all, the workers are stopped unused.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: ProcessPoolExecutor | None = None
        self.workers = 0
        self.used = False

    def start(self, candidates: int, names: MockNames) -> None:
        """Start the workers if they are worth it for this many candidate files."""
        if self.pool is not None or self.jobs == 1 or not candidates:
            return
        cpus = _cpus()
        if self.jobs == 0:
            if cpus < 2 or candidates < _AUTO_REWRITERS_MIN:
                return
            count = min(cpus, _AUTO_REWRITERS_MAX)
        else:
            count = min(self.jobs, candidates)
        import multiprocessing  # (and the pool) only when workers are started
        from concurrent.futures import ProcessPoolExecutor

        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.pool = ProcessPoolExecutor(
            max_workers=count, mp_context=context, initializer=_start_rewriter, initargs=(names,)
        )
        self.workers = count
        self.pool.submit(_ready)  # launches the workers now (they load LibCST meanwhile)

    def submit(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> Callable[[], list[_R]]:
        """Start ``fn`` on every item; the returned callable gives the results in order."""
        if self.pool is None:
            results = [fn(item) for item in items]
            return lambda: results
        self.used = self.used or bool(items)
        if self.workers == 1:
            # One task: the worker shares it with a fork of itself (LibCST loaded)
            # when there is a CPU for it; this process meanwhile runs the guard.
            futures = [self.pool.submit(_shared, fn, list(items))]
        else:  # --jobs N: the N workers share the items
            futures = [self.pool.submit(_one, fn, item) for item in items]
        from concurrent.futures.process import BrokenProcessPool

        def collect() -> list[_R]:
            try:
                return [r for f in futures for r in f.result()]
            except BrokenProcessPool:  # a worker died: do it here
                self.close()
                return [fn(item) for item in items]

        return collect

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if not self.used:
            # nothing was rewritten: the workers may still be loading LibCST, for nothing
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(cancel_futures=True)


# -- the run ----------------------------------------------------------------------------


class _Run:
    def __init__(self, options: MigrateOptions) -> None:
        self.options = options
        self.names = MockNames(extra=options.config.mock_names)
        self.report = RunReport()
        self.rewriters = _Rewriters(options.jobs)
        self.findings: dict[str, list[Finding]] = {}  # guard files' findings, checked early
        self.files: dict[str, _File] = {}
        self.failures: dict[str, str] = {}  # reported: files of the rewrite set
        self.broken: dict[str, str] = {}  # any file read that could not be processed
        self.summaries: dict[str, ModuleSummary] = {}
        self.facts: dict[str, FileFacts] = {}
        self.guard: set[str] = set()
        self.scanned_names: set[str] = set()
        self.interesting: frozenset[str] = frozenset()  # carrier names so far
        self.blanked: dict[str, frozenset[str]] = {}  # names in each file's blanked statements
        self.git: GitFilter | None = None

    def fail(self, real: str, error: str) -> None:
        """Record that a file could not be processed (reported if it is ours to rewrite)."""
        self.broken.setdefault(real, error)
        if self.files[real].role.rewrite:
            self.failures.setdefault(real, error)

    def run(self) -> RunReport:
        try:
            return self._run()
        finally:
            if self.git is not None:
                self.git.close()
            self.rewriters.close()
            _DATA.clear()
            _IDENTS.clear()
            _SLICES.clear()
            _TREES.clear()

    def _run(self) -> RunReport:
        if self.options.use_git:  # git searches while the folders are walked
            self.git = GitFilter.start(_git_tops(self.options), self.names)
        files, missing, failures = _collect(self.options)
        rewritable = sum(1 for f in files.values() if f.role.rewrite)
        if rewritable >= _EARLY_REWRITERS_FILES and not missing:
            self.rewriters.start(rewritable, self.names)
        self.report.missing = missing
        self.report.results.extend(failures)
        if missing:
            return self.report
        self.files = files
        candidates = self.prefilter()
        self.rewriters.start(len(candidates), self.names)
        _init_worker(self.names)
        self.index(candidates)
        resolver = self.resolver()
        self.analyze(resolver)
        plan, new_texts, originals = self.rewrite(resolver)
        self.finish(plan, new_texts, originals)
        return self.report

    # stage 0: read everything once, keep the few files worth parsing

    def prefilter(self) -> list[_File]:
        candidates: list[_File] = []
        budget = _DATA_BUDGET
        unread = self.git.ruled_out() if self.git is not None else set()
        for f in self.files.values():
            if f.role.rewrite:
                self.report.scanned += 1
            if f.path in unread:  # git searched it: it mentions nothing that matters
                continue
            try:
                data = read_bytes(f.real)
            except OSError as exc:
                self.fail(f.real, _describe(exc))
                continue
            if len(data) <= budget:  # kept for the later passes, which would read it again
                _DATA[f.real] = data
                budget -= len(data)
            lowered = data.lower()
            if f.role.rewrite and needs_parse(lowered, self.names):
                self.guard.add(f.real)
            if _mentions_mock(data, self.names, lowered):
                candidates.append(f)
        return candidates

    def expand(self, names: Iterable[str]) -> list[_File]:
        new = sorted(set(names) - self.scanned_names)
        if not new:
            return []
        self.scanned_names.update(new)
        needles = [n.encode() for n in new]
        pattern = re.compile(rb"\b(?:" + b"|".join(re.escape(n) for n in needles) + rb")\b")
        found: list[_File] = []
        unread = self.git.without(new) if self.git is not None else set()
        for real, f in self.files.items():
            if real in self.summaries or real in self.broken or f.path in unread:
                continue
            try:
                data = _DATA[real] if real in _DATA else read_bytes(real)
            except OSError:
                continue
            # a plain substring search first: the word-boundary pattern only on hits
            if any(n in data for n in needles) and pattern.search(data):
                found.append(f)
        return found

    # pass 1

    def index(self, candidates: list[_File]) -> None:
        batch = candidates
        for _ in range(10):
            if not batch:
                return
            for real, summary, error, blanked in [
                _index_task((f, self.interesting)) for f in batch
            ]:
                if summary is not None:
                    self.summaries[real] = summary
                    self.blanked[real] = blanked
                elif error is not None:
                    self.fail(real, error)
            carriers = self.resolver().carrier_names()
            fresh = carriers - self.interesting
            self.interesting = self.interesting | carriers
            # files whose slice left out a statement naming a new carrier are read again
            again = [self.files[r] for r, names in self.blanked.items() if names & fresh]
            batch = again + self.expand(carriers)

    def merged(self) -> tuple[dict[str, tuple[Sym, ...]], dict[str, ClassInfo]]:
        bindings: dict[str, list[Sym]] = {}
        classes: dict[str, ClassInfo] = {}
        for summary in self.summaries.values():
            for key, syms in summary.bindings:
                entries = bindings.setdefault(key, [])
                entries.extend(s for s in syms if s not in entries)
            for info in summary.classes:
                classes.setdefault(info.fqn, info)
        return {k: tuple(v) for k, v in bindings.items()}, classes

    def resolver(self) -> Resolver:
        bindings, classes = self.merged()
        return Resolver(bindings, classes)

    # pass 2

    def analyze(self, resolver: Resolver) -> None:
        _init_worker(self.names, dict(resolver.bindings), dict(resolver.classes))
        for path in sorted(self.summaries):
            real, facts, error = _analyze_task((self.files[path], self.interesting))
            if facts is not None:
                self.facts[real] = facts
            elif error is not None:
                self.fail(real, error)
        self.report.parsed = len(self.summaries)

    # pass 3 (with the safety net: a deleted class must not leave its name behind)

    def rewrite(self, resolver: Resolver) -> tuple[Plan, dict[str, str], dict[str, bytes]]:
        by_display = {self.facts[r].path: r for r in self.facts}
        facts = {f.path: f for f in self.facts.values() if f.path}
        roles = {self.files[r].display: self.files[r].role for r in self.facts}
        keep: dict[str, str] = {}
        new_texts: dict[str, str] = {}
        originals: dict[str, bytes] = {}
        for _ in range(5):
            block, keep_broken = self.conservative(resolver)
            plan = make_plan(
                {p: f for p, f in facts.items() if by_display[p] not in self.broken},
                roles,
                resolver.classes,
                keep={**keep_broken, **keep},
                block=block,
            )
            new_texts.clear()
            originals.clear()
            failed_now = False
            edits: list[tuple[str, str, _Edit, Slice | None]] = []
            for p, fp in sorted(plan.files.items()):
                f = self.files[by_display[p]]
                data = b""
                try:
                    data = _DATA[f.real] if f.real in _DATA else read_bytes(f.real)
                    text = decode_source(data).text
                    edits.append((f.real, text, *_prepare_edit(text, f, fp, self.interesting)))
                except Exception as exc:
                    self.fail(f.real, _describe(exc))
                    failed_now = True
                originals[f.real] = data
            results = self.rewriters.submit(_edit_task, [e for _, _, e, _ in edits])
            # meanwhile (when workers rewrite): what `check` says of the files left alone
            self.check_guard(skip={real for real, _, _, _ in edits})
            whole: list[tuple[str, _Edit]] = []
            for (real, text, edit, part), (result, error) in zip(edits, results(), strict=True):
                new = result
                if result is not None and part is not None:
                    new = part.restore(result)
                    if new is None:  # the placeholders did not come back: the whole file
                        whole.append((real, _Edit(edit.file, edit.plan, text, edit.protect)))
                        continue
                if new is not None:
                    new_texts[real] = new
                elif error is not None:
                    self.fail(real, error)
                    failed_now = True
            if whole:
                again = self.rewriters.submit(_edit_task, [e for _, e in whole])
                for (real, _), (new, error) in zip(whole, again(), strict=True):
                    if new is not None:
                        new_texts[real] = new
                    elif error is not None:
                        self.fail(real, error)
                        failed_now = True
            leftovers = self.leftover_names(plan, facts, by_display, new_texts)
            if not leftovers and not failed_now:
                break
            keep.update(leftovers)  # and plan again, without the files that failed
        return plan, new_texts, originals

    def conservative(self, resolver: Resolver) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        """What the files that could not be processed may use, so it is left alone.

        A production file that failed blocks every mock class it names, directly or
        through a manager or factory; a test file that failed keeps them from
        being deleted.  A file that could not even be read is assumed to use all.
        """
        carriers = resolver.carriers()
        mocks = sorted(c for c, info in resolver.classes.items() if info.is_mock)
        block: dict[str, tuple[str, str]] = {}
        keep: dict[str, str] = {}
        for real, error in sorted(self.broken.items()):
            f = self.files[real]
            # (class, what the file names, whether it only names the class itself)
            hits: list[tuple[str, str, bool]] = []
            try:
                idents = {m.decode("ascii") for m in _IDENT_RE.findall(read_bytes(real))}
            except OSError:
                hits = [(cls, "anything", False) for cls in mocks]
            else:
                # names this file defines itself are its own business: what it hands
                # out stays as it is, since the file is not rewritten
                summary = self.summaries.get(real)
                own = set()
                if summary is not None:
                    prefix = f"{summary.module}."
                    own = {
                        k[len(prefix) :]
                        for k, syms in summary.bindings
                        if k.startswith(prefix)
                        and "." not in k[len(prefix) :]
                        and not all(isinstance(sym, ImportRef) for sym in syms)
                    }
                for name in sorted((idents & carriers.keys()) - own):
                    hits.extend(
                        (cls, f"`{name}`", cls.rpartition(".")[2] == name)
                        for cls in sorted(carriers[name])
                    )
            for cls, what, itself in hits:
                reason = (
                    f"{f.display} could not be processed ({error}) and may use {what}: "
                    "fix it and run again"
                )
                if itself or (f.role.is_test and not f.role.rewrite):
                    keep.setdefault(cls, reason)  # its own uses of the class: do not delete
                else:
                    block.setdefault(cls, (f.display, reason))  # it may get migrated breakers
        return block, keep

    def leftover_names(
        self,
        plan: Plan,
        facts: dict[str, FileFacts],
        by_display: dict[str, str],
        new_texts: dict[str, str],
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        for cls in sorted(plan.deleted):
            short = cls.rpartition(".")[2]
            for path, f in facts.items():
                touches = any(r.cls == cls for r in f.references) or any(
                    i.cls == cls for i in f.imports
                )
                if not touches:
                    continue
                text = new_texts.get(by_display[path])
                if text is not None and _names_token(text, short):
                    out[cls] = f"its name is still used in {path} after the rewrite"
                    break
        return out

    # results

    def finish(self, plan: Plan, new_texts: dict[str, str], originals: dict[str, bytes]) -> None:
        report = self.report
        write = self.options.write
        # every path a result or a manual site names is the display of a file used so far
        by_display = {f.shown: real for real, f in self.files.items() if f.shown is not None}
        manual_by_path: dict[str, list[ManualSite]] = {}
        for site in plan.manual:
            manual_by_path.setdefault(site.path, []).append(site)
        changed: dict[str, tuple[str, str]] = {}
        for real, new in new_texts.items():
            if real in self.failures:
                continue
            data = originals[real]
            old = decode_source(data).text
            if new != old:
                changed[real] = (old, new)
        paths = (
            set(manual_by_path)
            | {self.files[r].display for r in changed}
            | {self.files[r].display for r in self.guard}
        )
        results: list[FileResult] = []
        all_manual: list[ManualSite] = []
        for display in sorted(paths):
            file_real = by_display.get(display)
            if file_real is None or file_real in self.failures:
                all_manual.extend(manual_by_path.get(display, ()))
                continue
            f = self.files[file_real]
            old_new = changed.get(file_real)
            sites = manual_by_path.get(display, [])
            mapper = _LineMap(*old_new) if old_new is not None else None
            if mapper is not None and write:
                sites = [ManualSite(s.path, mapper.new_line(s.line), s.reason) for s in sites]
            if file_real in self.guard:
                sites = self.guard_sites(f, old_new, sites, mapper, write)
            all_manual.extend(sites)
            if old_new is None:
                continue
            old, new = old_new
            counts = tuple(sorted(plan.counts.get(display, {}).items()))
            result = FileResult(
                display,
                "changed",
                diff=_unified_diff(old, new, display),
                counts=counts,
                manual=tuple(sites),
            )
            if write:
                try:
                    original = originals[file_real]
                    source = decode_source(original)
                    write_atomic(f.real, encode_source(new, source), expected=original)
                except SourceError as exc:
                    result = FileResult(display, "failed", error=str(exc), manual=tuple(sites))
            results.append(result)
        for real, error in self.failures.items():
            results.append(
                FileResult(
                    self.files[real].display if real in self.files else real, "failed", error=error
                )
            )
        report.results.extend(results)
        report.results.sort(key=lambda r: r.path)
        seen: set[tuple[str, int, str]] = set()
        for site in sorted(all_manual, key=lambda s: (s.path, s.line, s.reason)):
            key = (site.path, site.line, site.reason)
            if key not in seen:
                seen.add(key)
                report.manual.append(site)
        report.skipped = report.scanned - sum(
            1 for r in self.summaries if self.files[r].role.rewrite
        )
        report.written = write

    def check_guard(self, skip: set[str]) -> None:
        """Run the guard now on the files it may flag that the rewrite leaves alone."""
        options = CheckOptions(names=self.names)
        for real in sorted(self.guard - skip - self.findings.keys()):
            try:
                data = _DATA[real] if real in _DATA else read_bytes(real)
            except OSError:
                continue  # guard_sites tries again, and says nothing either
            self.findings[real] = check_source(
                data, self.files[real].display, options, tree=_TREES.get(real)
            )

    def guard_sites(
        self,
        f: _File,
        old_new: tuple[str, str] | None,
        sites: list[ManualSite],
        mapper: _LineMap | None,
        write: bool,
    ) -> list[ManualSite]:
        """Add what ``resilient check`` would still report in this file, if not listed yet."""
        try:
            original = _DATA[f.real] if f.real in _DATA else read_bytes(f.real)
            if old_new is not None:
                data = encode_source(old_new[1], decode_source(original))
            else:
                data = original
        except (OSError, SourceError):
            return sites
        findings = self.findings.get(f.real) if old_new is None else None
        if findings is None:
            findings = check_source(data, f.display, CheckOptions(names=self.names))
        covered = {s.line for s in sites}
        out = list(sites)
        for finding in findings:
            if finding.code == "RES000":
                continue  # unparsable files are reported as failures
            line = finding.line
            if mapper is not None and not write:
                line = mapper.old_line(line)
            if line in covered:
                continue
            covered.add(line)
            out.append(
                ManualSite(
                    f.display,
                    line,
                    f"{finding.code} {RULES[finding.code].name}: {finding.message}",
                )
            )
        return out


def _names_token(text: str, name: str) -> bool:
    if name not in text:
        return False  # no need to tokenize (pure Python, slow) to know
    import tokenize

    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME and tok.string == name:
                return True
    except (tokenize.TokenError, SyntaxError):
        return name in text
    return False


def _split_lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _unified_diff(old: str, new: str, path: str) -> str:
    out: list[str] = []
    for line in difflib.unified_diff(
        _split_lines(old), _split_lines(new), fromfile=f"a/{path}", tofile=f"b/{path}"
    ):
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


class _LineMap:
    """Maps line numbers between a file before and after the rewrite (1-based)."""

    def __init__(self, old: str, new: str) -> None:
        matcher = difflib.SequenceMatcher(
            None, _split_lines(old), _split_lines(new), autojunk=False
        )
        self.opcodes = matcher.get_opcodes()

    def new_line(self, line: int) -> int:
        i = line - 1
        for _tag, i1, i2, j1, j2 in self.opcodes:
            if i1 <= i < i2:
                return j1 + min(i - i1, max(j2 - j1 - 1, 0)) + 1
        return line

    def old_line(self, line: int) -> int:
        j = line - 1
        for _tag, i1, i2, j1, j2 in self.opcodes:
            if j1 <= j < j2:
                return i1 + min(j - j1, max(i2 - i1 - 1, 0)) + 1
        return line


def run_migrate(options: MigrateOptions) -> RunReport:
    """Run the codemod over ``options.paths`` (see the module doc)."""
    # Syntax trees are acyclic (LibCST's leave a few hundred cyclic objects per
    # rewritten file): the cyclic collector would only re-scan them while they are
    # built, a fifth of a run's time.  Worker processes forked meanwhile inherit it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Run(options).run()
    finally:
        if gc_was_enabled:
            gc.enable()
