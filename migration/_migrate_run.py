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
factory that hands one out) are parsed; the others are read once and skipped.
LibCST itself is imported only once a file needs parsing, and its codemod
machinery only once a file needs rewriting.
Every per-file step catches its own exceptions: a file that fails is reported
and the run goes on without touching it.
"""

from __future__ import annotations

import ast
import difflib
import io
import os
import re
import tokenize
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias, TypeVar

from ._check import CheckOptions, check_source, needs_parse
from ._codemod_model import (
    ClassInfo,
    DeleteClass,
    FileFacts,
    FilePlan,
    FileResult,
    ImportRef,
    ManualSite,
    ModuleSummary,
    Sym,
)
from ._codemod_plan import FileRole, Plan, make_plan
from ._codemod_resolve import Resolver
from ._config import Config
from ._diagnostics import RULES
from ._files import discover
from ._migrate_io import (
    SourceError,
    decode_source,
    encode_source,
    module_name,
    write_atomic,
)
from ._migrate_slice import Slice, slice_source, split_lines
from ._names import MockNames

__all__ = ["MigrateOptions", "RunReport", "run_migrate"]

_T = TypeVar("_T")
_R = TypeVar("_R")
_InitArgs: TypeAlias = tuple[
    MockNames, "dict[str, tuple[Sym, ...]] | None", "dict[str, ClassInfo] | None"
]
_IDENT_RE: Final = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_STR_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROJECT_MARKERS: Final = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_AUTO_PARALLEL_MIN: Final = 24


@dataclass(frozen=True)
class MigrateOptions:
    """What to migrate and how.

    Attributes:
        paths: files and folders (default: the current folder).
        config: ``[tool.resilient]`` settings.
        write: apply the changes (default: dry run).
        include_tests: rewrite test code too.
        jobs: worker processes; 0 picks one per CPU when there are enough files.
    """

    paths: tuple[str, ...]
    config: Config
    write: bool = False
    include_tests: bool = False
    jobs: int = 0


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


@dataclass(frozen=True, slots=True)
class _File:
    """One file of the run: where to read it, how to show it, what it is."""

    real: str
    display: str
    module: str
    package: str
    role: FileRole


def _display(path: str) -> str:
    absolute = os.path.abspath(path)
    try:
        rel = os.path.relpath(absolute)
    except ValueError:
        return absolute
    return absolute if rel.startswith("..") else rel


def _project_root(paths: Sequence[str], config: Config) -> Path | None:
    if config.path is not None:
        return config.root
    try:
        common = Path(os.path.commonpath([os.path.abspath(p) for p in paths or ["."]]))
    except ValueError:
        return None
    folder = common if common.is_dir() else common.parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in _PROJECT_MARKERS):
            return candidate
    return None


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

    def add(path: str, role: FileRole) -> None:
        real = os.path.realpath(path)
        if real in files and not role.rewrite:
            return
        name, package = module_name(path)
        files[real] = _File(real, _display(path), name, package, role)

    for source in found.files:
        add(
            source.path,
            FileRole(rewrite=options.include_tests or not source.is_test, is_test=source.is_test),
        )
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
            add(source.path, FileRole(rewrite=False, is_test=source.is_test))
    return files, found.missing, failures


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _mentions_mock(data: bytes, names: MockNames) -> bool:
    lowered = data.lower()
    if not names.may_mention(lowered):
        return False
    idents = {m.group(0) for m in _IDENT_RE.finditer(data)}
    return any(names.matches(i.decode("ascii")) for i in idents)


# -- workers (run in this process or in a pool) -------------------------------------------

_NAMES: MockNames = MockNames()
_RESOLVER: Resolver | None = None


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
    data = _read(f.real)
    return data, decode_source(data).text


def _sliced(f: _File, interesting: frozenset[str]) -> Slice:
    _, text = _load(f)
    return slice_source(text, interesting, _NAMES)


def _describe(exc: BaseException, text: str | None = None) -> str:
    from libcst import ParserSyntaxError

    if isinstance(exc, ParserSyntaxError):
        if text is not None:
            try:
                ast.parse(text)
            except SyntaxError as err:  # Python's own message points at the right place
                where = (
                    f"line {err.lineno}, column {err.offset}"
                    if err.offset
                    else f"line {err.lineno}"
                )
                return f"cannot parse ({where}): {err.msg}"
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


def _job_key(job: tuple[_File, object] | tuple[_File, object, object]) -> str:
    return job[0].real


def _index_task(
    job: tuple[_File, frozenset[str]],
) -> tuple[str, ModuleSummary | None, str | None, frozenset[str]]:
    f, interesting = job
    text: str | None = None
    try:
        part = _sliced(f, interesting)
        text = part.text
        from ._codemod import index_module

        summary = index_module(part.text, f.display, f.module, f.package, _NAMES)
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
            part.text, f.display, f.module, f.package, resolver=_RESOLVER, names=_NAMES
        )
        return f.real, facts, None
    except Exception as exc:
        return f.real, None, _describe(exc)


def _apply_task(
    job: tuple[_File, FilePlan, frozenset[str]],
) -> tuple[str, bytes, str | None, str | None]:
    f, plan, interesting = job
    data = b""
    try:
        data = _read(f.real)
        text = decode_source(data).text
        return f.real, data, _apply_sliced(text, f, plan, interesting), None
    except Exception as exc:
        return f.real, data, None, _describe(exc)


def _apply_sliced(text: str, f: _File, plan: FilePlan, interesting: frozenset[str]) -> str:
    """Apply ``plan`` to a slice of ``text`` and put the untouched statements back.

    The slice keeps every statement an edit touches and every statement naming an
    import the rewrite may remove (so ``RemoveImportsVisitor`` sees all its uses);
    the rest become placeholders over the same lines.  When the placeholders do
    not come back intact, the whole file is rewritten instead.
    """
    from ._codemod_apply import apply_edits  # LibCST's codemod machinery: only when needed

    lines = {ln for e in plan.edits for ln in range(e.key[1], e.key[3] + 1)}
    wanted = set(interesting) | {"TYPE_CHECKING", "typing", "typing_extensions"}
    for spec in plan.remove_imports:
        wanted.add(spec.asname or spec.obj or spec.module.split(".")[0])
    protect: set[str] = set()
    deleted = [e for e in plan.edits if isinstance(e, DeleteClass)]
    if deleted:
        # An import a removed class used goes only if nothing else names it, even
        # in a comment or string (decided here on the text, so the statements
        # using it need not be in the slice).
        imported, import_lines = _imported_names(text)
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
    part = slice_source(text, wanted, _NAMES, force_lines=lines)
    if part.stand_ins:
        new = apply_edits(part.text, f.display, f.module, f.package, plan, protect=protect)
        restored = part.restore(new)
        if restored is not None:
            return restored
    return apply_edits(text, f.display, f.module, f.package, plan, protect=protect)


def _imported_names(text: str) -> tuple[set[str], set[int]]:
    """Names bound by imports outside functions and classes, and the lines of those imports."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), set()  # the slice is then the whole file: nothing to decide here
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


class _Workers:
    """Worker processes for ``--jobs``, each keeping the files it was given.

    A file always goes to the same process (by a hash of its path), so the module
    it parsed for pass 1 is still parsed, in that process, for pass 2.  Without
    ``--jobs`` the work runs in this process unless there are many files to parse.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pools: list[ProcessPoolExecutor] = []

    def _start(self, count: int) -> bool:
        if self.pools:
            return True
        workers = self.jobs if self.jobs > 0 else (os.cpu_count() or 1)
        wanted = self.jobs > 1 or (self.jobs == 0 and count >= _AUTO_PARALLEL_MIN)
        if workers < 2 or count < 2 or not wanted:
            return False
        self.pools = [ProcessPoolExecutor(max_workers=1) for _ in range(min(workers, count))]
        return True

    def map(
        self,
        fn: Callable[[_T], _R],
        items: Sequence[_T],
        key: Callable[[_T], str],
        initargs: _InitArgs,
    ) -> list[_R]:
        if not self._start(len(items)):
            _init_worker(*initargs)
            return [fn(item) for item in items]
        for ready in [pool.submit(_init_worker, *initargs) for pool in self.pools]:
            ready.result()
        futures = [
            self.pools[zlib.crc32(key(item).encode()) % len(self.pools)].submit(fn, item)
            for item in items
        ]
        return [f.result() for f in futures]

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(cancel_futures=True)
        self.pools = []


# -- the run ----------------------------------------------------------------------------


class _Run:
    def __init__(self, options: MigrateOptions) -> None:
        self.options = options
        self.names = MockNames(extra=options.config.mock_names)
        self.report = RunReport()
        self.workers = _Workers(options.jobs)
        self.files: dict[str, _File] = {}
        self.failures: dict[str, str] = {}  # reported: files of the rewrite set
        self.broken: dict[str, str] = {}  # any file read that could not be processed
        self.summaries: dict[str, ModuleSummary] = {}
        self.facts: dict[str, FileFacts] = {}
        self.guard: set[str] = set()
        self.scanned_names: set[str] = set()
        self.interesting: frozenset[str] = frozenset()  # carrier names so far
        self.blanked: dict[str, frozenset[str]] = {}  # names in each file's blanked statements

    def fail(self, real: str, error: str) -> None:
        """Record that a file could not be processed (reported if it is ours to rewrite)."""
        self.broken.setdefault(real, error)
        if self.files[real].role.rewrite:
            self.failures.setdefault(real, error)

    def run(self) -> RunReport:
        try:
            return self._run()
        finally:
            self.workers.close()

    def _run(self) -> RunReport:
        files, missing, failures = _collect(self.options)
        self.report.missing = missing
        self.report.results.extend(failures)
        if missing:
            return self.report
        self.files = files
        candidates = self.prefilter()
        self.index(candidates)
        resolver = self.resolver()
        self.analyze(resolver)
        plan, new_texts, originals = self.rewrite(resolver)
        self.finish(plan, new_texts, originals)
        return self.report

    # stage 0: read everything once, keep the few files worth parsing

    def prefilter(self) -> list[_File]:
        candidates: list[_File] = []
        for f in self.files.values():
            if f.role.rewrite:
                self.report.scanned += 1
            try:
                data = _read(f.real)
            except OSError as exc:
                self.fail(f.real, _describe(exc))
                continue
            lowered = data.lower()
            if f.role.rewrite and needs_parse(lowered, self.names):
                self.guard.add(f.real)
            if _mentions_mock(data, self.names):
                candidates.append(f)
        return candidates

    def expand(self, names: Iterable[str]) -> list[_File]:
        new = sorted(set(names) - self.scanned_names)
        if not new:
            return []
        self.scanned_names.update(new)
        pattern = re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in new) + rb")\b")
        found: list[_File] = []
        for real, f in self.files.items():
            if real in self.summaries or real in self.broken:
                continue
            try:
                data = _read(real)
            except OSError:
                continue
            if pattern.search(data):
                found.append(f)
        return found

    # pass 1

    def index(self, candidates: list[_File]) -> None:
        batch = candidates
        for _ in range(10):
            if not batch:
                return
            jobs = [(f, self.interesting) for f in batch]
            for real, summary, error, blanked in self.workers.map(
                _index_task, jobs, _job_key, (self.names, None, None)
            ):
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
        items = [(self.files[real], self.interesting) for real in sorted(self.summaries)]
        bindings = dict(resolver.bindings)
        classes = dict(resolver.classes)
        results = self.workers.map(_analyze_task, items, _job_key, (self.names, bindings, classes))
        for real, facts, error in results:
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
            jobs = [
                (self.files[by_display[p]], fp, self.interesting)
                for p, fp in sorted(plan.files.items())
            ]
            new_texts.clear()
            originals.clear()
            failed_now = False
            for real, data, new, error in self.workers.map(
                _apply_task, jobs, _job_key, (self.names, None, None)
            ):
                originals[real] = data
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
                idents = {m.decode("ascii") for m in _IDENT_RE.findall(_read(real))}
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
        by_display = {f.display: real for real, f in self.files.items()}
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
            if old_new is not None:
                data = encode_source(old_new[1], decode_source(_read(f.real)))
            else:
                data = _read(f.real)
        except (OSError, SourceError):
            return sites
        options = CheckOptions(names=self.names)
        covered = {s.line for s in sites}
        out = list(sites)
        for finding in check_source(data, f.display, options):
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
    return _Run(options).run()
