"""The tree-wide decisions of ``resilient migrate`` (no LibCST).

Given every file's :class:`~._codemod_model.FileFacts`, decide:

1. which constructions can become ``get_breaker(...)`` (their own reason, the
   file being in the paths given, one breaker name never built with two
   configurations);
2. which mock classes are *migrated*: a class is blocked when any value that
   may be one of its breakers is used in a way a resilient breaker does not
   support (``b.get_status()``, ``b.failure_count = 0`` on its own, a value that
   may be either a mock or a migrated breaker...), in production code or in
   test code the run rewrites.  A blocked class is left byte-identical
   everywhere, and its blockers are listed;
3. which migrated classes are *deleted*: defined at top level in a file being
   rewritten, and every reference to them, in any file scanned (tests
   included), goes away with the rewrite;
4. the edits and imports per file, and the manual sites.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._codemod_model import (
    ClassInfo,
    Construction,
    Edit,
    FileFacts,
    FilePlan,
    ImportOf,
    ImportSpec,
    ManualSite,
    Reference,
    ReplaceCall,
    ReplaceName,
    ReplaceString,
    SiteId,
    Use,
)
from ._record import record

__all__ = ["FileRole", "Plan", "make_plan"]


@record
class FileRole:
    """How the run treats a file.

    Attributes:
        rewrite: the run may change it (production code under the paths given,
            or test code with ``--include-tests``).
        is_test: test code.
    """

    rewrite: bool
    is_test: bool


@dataclass
class Plan:
    """The outcome of :func:`make_plan`.

    Attributes:
        files: what to do to each file with edits.
        manual: manual sites, lines as in the files before the rewrite.
        migrated: mock classes whose breakers are rewritten.
        deleted: mock classes whose definitions are removed.
        blocked: mock classes left alone, with the first reason.
        counts: rewrites by kind, per file.
    """

    files: dict[str, FilePlan] = field(default_factory=dict)
    manual: list[ManualSite] = field(default_factory=list)
    migrated: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    blocked: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _short(cls: str) -> str:
    return cls.rpartition(".")[2]


def _where(path: str, line: int) -> str:
    return f"{path}:{line}"


class _Planner:
    def __init__(
        self,
        facts: Mapping[str, FileFacts],
        roles: Mapping[str, FileRole],
        classes: Mapping[str, ClassInfo],
        keep: Mapping[str, str],
        block: Mapping[str, tuple[str, str]],
    ) -> None:
        self.facts = facts
        self.roles = roles
        self.classes = classes
        self.keep = dict(keep)
        self.sites: dict[SiteId, list[tuple[str, Construction]]] = {}
        for path, f in facts.items():
            for c in f.constructions:
                self.sites.setdefault(c.site, []).append((path, c))
        self.demoted: dict[tuple[SiteId, str], str] = {}
        self.blocked: dict[str, list[tuple[str, int, str]]] = {
            cls: [(path, 1, reason)] for cls, (path, reason) in block.items()
        }

    def role(self, path: str) -> FileRole:
        return self.roles.get(path, FileRole(rewrite=False, is_test=False))

    # -- constructions -------------------------------------------------------------

    def demote(self) -> None:
        by_name: dict[str, list[tuple[str, Construction]]] = {}
        for path, f in self.facts.items():
            role = self.role(path)
            for c in f.constructions:
                if c.reason is not None:
                    self.demoted[(c.site, c.cls)] = c.reason
                elif not role.rewrite:
                    self.demoted[(c.site, c.cls)] = (
                        "test code (run with --include-tests to rewrite it)"
                        if role.is_test
                        else "outside the paths given"
                    )
                elif c.name is not None:
                    by_name.setdefault(c.name, []).append((path, c))
        for name, group in by_name.items():
            configs = {c.config for _, c in group}
            if len(configs) > 1:
                places = ", ".join(_where(p, c.site[1]) for p, c in group)
                for _, c in group:
                    self.demoted[(c.site, c.cls)] = (
                        f"breaker {name!r} is built with different settings at {places}; "
                        "get_breaker() would raise ConfigError: give them one configuration "
                        "or different names"
                    )

    def site_ok(self, site: SiteId | None, cls: str) -> bool:
        if site is None:
            return True  # known by annotation only: follows its class
        entries = self.sites.get(site)
        if not entries:
            return False
        return any(c.cls == cls and (site, cls) not in self.demoted for _, c in entries)

    def migrating(self, use: Use) -> tuple[set[tuple[str, SiteId | None]], bool]:
        """(the values that would be migrated, whether other mock values are mixed in)."""
        mig = {
            (c, s)
            for c, s in use.values
            if c in self.classes and c not in self.blocked and self.site_ok(s, c)
        }
        return mig, len(mig) < len(use.values)

    # -- blocking ----------------------------------------------------------------------

    def block(self, cls: str, path: str, line: int, reason: str) -> bool:
        if cls in self.blocked:
            if (path, line, reason) not in self.blocked[cls]:
                self.blocked[cls].append((path, line, reason))
            return False
        self.blocked[cls] = [(path, line, reason)]
        return True

    def settle_blocks(self) -> None:
        changed = True
        while changed:
            changed = False
            for path, f in self.facts.items():
                role = self.role(path)
                for use in f.uses:
                    # every class this value may belong to, blocked or not, so that
                    # each unsafe use is listed, not only the first one found
                    candidates = {
                        (c, s) for c, s in use.values if c in self.classes and self.site_ok(s, c)
                    }
                    mig, mixed = self.migrating(use)
                    targets = candidates
                    reason: str | None = None
                    if use.action == "unsafe" and (role.rewrite or not role.is_test):
                        reason = use.reason
                    elif mixed and mig:
                        targets = mig
                        others = sorted({_short(c) for c, _ in use.values - mig})
                        reason = (
                            "this value may be a migrated breaker or a mock that stays "
                            f"({', '.join(others)}): both cannot be served by one rewrite"
                        )
                    elif use.action == "edit" and not role.rewrite and not role.is_test:
                        reason = f"outside the paths given, needs: {use.reason}"
                    if reason is not None:
                        for cls, _ in sorted(targets, key=lambda v: v[0]):
                            changed |= self.block(cls, path, use.line, reason)
                for ref in f.references:
                    if ref.kind == "isinstance" and (role.rewrite or not role.is_test):
                        changed |= self.block(
                            ref.cls,
                            path,
                            ref.line,
                            f"`{ref.text}` in isinstance()/issubclass() would be False for "
                            "resilient breakers",
                        )

    # -- deletion --------------------------------------------------------------------------

    def ref_removed(self, path: str, ref: Reference, deleted: set[str]) -> bool:
        role = self.role(path)
        if not role.rewrite or ref.cls in self.blocked:
            return False
        if ref.kind == "construction":
            return self.site_ok(ref.site, ref.cls)
        if ref.kind == "annotation":
            return ref.edit is not None
        if ref.kind == "all":
            return ref.cls in deleted
        if ref.kind == "inside":
            return ref.owner in deleted
        return False

    def import_removed(self, path: str, imp: ImportOf, deleted: set[str]) -> bool:
        if not self.role(path).rewrite:
            return False
        f = self.facts[path]
        for ref in f.references:
            if ref.binding == imp.local and (
                ref.kind == "reexport" or not self.ref_removed(path, ref, deleted)
            ):
                return False
        return all(
            self.site_ok(c.site, c.cls) and c.cls not in self.blocked
            for c in f.constructions
            if c.binding == imp.local
        )

    def remaining(self, cls: str, deleted: set[str]) -> list[tuple[str, int, str]]:
        out: set[tuple[str, int, str]] = set()
        for path, f in self.facts.items():
            out.update(
                (path, ref.line, ref.kind)
                for ref in f.references
                if ref.cls == cls and not self.ref_removed(path, ref, deleted)
            )
            out.update(
                (path, imp.line, "import")
                for imp in f.imports
                if imp.cls == cls and not self.import_removed(path, imp, deleted)
            )
        return sorted(out)

    def deletions(self) -> set[str]:
        deleted: set[str] = set()
        for path, f in self.facts.items():
            if not self.role(path).rewrite:
                continue
            for d in f.classes:
                if d.edit is not None and d.cls not in self.blocked and d.cls not in self.keep:
                    deleted.add(d.cls)
        changed = True
        while changed:
            changed = False
            for cls in sorted(deleted):
                if self.remaining(cls, deleted):
                    deleted.discard(cls)
                    changed = True
        return deleted

    # -- output ----------------------------------------------------------------------------

    def build(self) -> Plan:
        self.demote()
        self.settle_blocks()
        deleted = self.deletions()
        plan = Plan(
            migrated={c for c, i in self.classes.items() if i.is_mock and c not in self.blocked},
            deleted=deleted,
            blocked={c: f"{_where(p, ln)}: {r}" for c, [(p, ln, r), *_] in self.blocked.items()},
        )
        manual: list[ManualSite] = []
        for cls, blockers in self.blocked.items():
            for path, line, reason in blockers:
                manual.append(
                    ManualSite(path, line, f"{reason} (blocks the migration of {_short(cls)})")
                )
        for path in sorted(self.facts):
            self.plan_file(path, plan, manual, deleted)
        seen: set[tuple[str, int, str]] = set()
        for site in sorted(manual, key=lambda s: (s.path, s.line, s.reason)):
            key = (site.path, site.line, site.reason)
            if key not in seen:
                seen.add(key)
                plan.manual.append(site)
        return plan

    def plan_file(self, path: str, plan: Plan, manual: list[ManualSite], deleted: set[str]) -> None:
        f = self.facts[path]
        role = self.role(path)
        edits: list[Edit] = []
        counts: dict[str, int] = {}
        removed_bindings: set[str] = set()

        def count(what: str, n: int = 1) -> None:
            counts[what] = counts.get(what, 0) + n

        # constructions
        for c in f.constructions:
            reason = self.demoted.get((c.site, c.cls))
            if c.cls in self.blocked:
                if role.rewrite:
                    why = (
                        reason
                        if reason is not None and c.reason is not None
                        else self.blocked_reason(c.cls, "construction")
                    )
                    manual.append(ManualSite(path, c.site[1], why))
                continue
            if reason is None and c.edit is not None:
                edits.append(c.edit)
                count("get_breaker")
                if c.binding:
                    removed_bindings.add(c.binding)
            elif role.rewrite or (not role.is_test and reason != "outside the paths given"):
                manual.append(ManualSite(path, c.site[1], reason or "cannot be rewritten"))
        # uses
        for use in f.uses:
            mig, mixed = self.migrating(use)
            if not mig or mixed:
                continue
            if use.action == "edit":
                if role.rewrite:
                    edits.extend(use.edits)
                    count(use.what)
                elif role.is_test:
                    manual.append(
                        ManualSite(
                            path,
                            use.line,
                            f"test code needs {use.reason} once the breaker is migrated "
                            "(run with --include-tests to rewrite it)",
                        )
                    )
            elif use.action == "unsafe" and role.is_test and not role.rewrite:
                manual.append(
                    ManualSite(
                        path,
                        use.line,
                        f"test code: {use.reason}; it breaks once the breaker is migrated",
                    )
                )
        # references
        for ref in f.references:
            if self.ref_removed(path, ref, deleted):
                if ref.edit is not None and ref.edit not in edits:
                    edits.append(ref.edit)
                    count("annotation" if ref.kind == "annotation" else "__all__")
                if ref.binding:
                    removed_bindings.add(ref.binding)
            elif role.rewrite and ref.kind not in {"inside", "construction"}:
                manual.append(ManualSite(path, ref.line, self.ref_reason(ref)))
        # imports of mock classes that stay
        for imp in f.imports:
            if imp.cls is None or not role.rewrite:
                continue
            if not self.import_removed(path, imp, deleted):
                if any(
                    r.kind == "reexport" and r.line == imp.line and r.binding == imp.local
                    for r in f.references
                ):
                    continue  # listed once, as a re-export
                if imp.cls in self.blocked:
                    why = self.blocked_reason(imp.cls, "import")
                elif any(r.kind == "reexport" and r.binding == imp.local for r in f.references):
                    why = f"import of mock `{_short(imp.cls)}` kept: re-exported in __all__"
                else:
                    why = f"import of mock `{_short(imp.cls)}` kept: still used in this file"
                manual.append(ManualSite(path, imp.line, why))
        # class definitions
        for d in f.classes:
            if d.cls in deleted and d.edit is not None and role.rewrite:
                edits.append(d.edit)
                count("class removed")
            elif role.rewrite:
                manual.append(ManualSite(path, d.line, self.kept_reason(d.cls, deleted)))
        if not role.rewrite:
            return
        remove = [
            imp.spec
            for imp in f.imports
            if imp.local in removed_bindings
            or (imp.cls is not None and (imp.cls in deleted or imp.cls in plan.migrated))
        ]
        if not edits and not remove:
            return
        add: list[ImportSpec] = []
        if any(isinstance(e, ReplaceCall) for e in edits) and f.get_breaker_name:
            alias = None if f.get_breaker_name == "get_breaker" else f.get_breaker_name
            add.append(ImportSpec("resilient", "get_breaker", alias))
        if any(isinstance(e, (ReplaceName, ReplaceString)) for e in edits) and f.breaker_type_name:
            alias = None if f.breaker_type_name == "CircuitBreaker" else f.breaker_type_name
            add.append(ImportSpec("resilient", "CircuitBreaker", alias))
        plan.files[path] = FilePlan(
            path=path,
            edits=tuple(edits),
            add_imports=tuple(add),
            remove_imports=tuple(dict.fromkeys(remove)),
        )
        plan.counts[path] = counts

    # -- reasons -----------------------------------------------------------------------------

    def blocked_reason(self, cls: str, what: str) -> str:
        blockers = self.blocked.get(cls, [])
        first = ", ".join(_where(p, ln) for p, ln, _ in blockers[:3])
        more = f" and {len(blockers) - 3} more" if len(blockers) > 3 else ""
        return (
            f"{what} of `{_short(cls)}` not migrated: first change by hand the use(s) at "
            f"{first}{more}"
        )

    def ref_reason(self, ref: Reference) -> str:
        name = _short(ref.cls)
        if ref.cls in self.blocked:
            return self.blocked_reason(ref.cls, "reference")
        if ref.kind == "reexport":
            return (
                f"`{name}` is re-exported ({ref.text}): public API, so remove it by hand "
                "once nothing imports it"
            )
        if ref.kind == "all":
            return f"`{name}` stays in __all__ because the class is kept"
        if ref.kind == "base":
            return f"subclasses the mock `{name}`"
        if ref.kind == "isinstance":
            return f"isinstance()/issubclass() against the mock `{name}`"
        if ref.kind == "string":
            return f"names the mock `{name}` in a string ({ref.text})"
        if ref.kind == "annotation":
            return f"annotation `{ref.text}` names the mock `{name}`, which is kept"
        return f"`{ref.text}` refers to the mock class `{name}` (not a construction or annotation)"

    def kept_reason(self, cls: str, deleted: set[str]) -> str:
        name = _short(cls)
        if cls in self.blocked:
            return self.blocked_reason(cls, "class")
        if cls in self.keep:
            return f"mock class `{name}` kept: {self.keep[cls]}"
        # what keeps it; its own __all__ entry would go with it, so is not a reason
        rest = [r for r in self.remaining(cls, deleted) if r[2] != "all"]
        if not rest:
            return f"mock class `{name}` kept: it is not defined at module level"
        tests = [r for r in rest if self.role(r[0]).is_test]
        shown = ", ".join(f"{_where(p, ln)} ({kind})" for p, ln, kind in rest[:3])
        more = f" and {len(rest) - 3} more" if len(rest) > 3 else ""
        if tests and len(tests) == len(rest):
            return (
                f"mock class `{name}` kept: tests still use it ({shown}{more}); move it into "
                "the tests or delete it when they stop using it"
            )
        return f"mock class `{name}` kept: still referenced at {shown}{more}"


def make_plan(
    facts: Mapping[str, FileFacts],
    roles: Mapping[str, FileRole],
    classes: Mapping[str, ClassInfo],
    *,
    keep: Mapping[str, str] | None = None,
    block: Mapping[str, tuple[str, str]] | None = None,
) -> Plan:
    """Decide the whole run (see the module doc).

    Args:
        facts: pass 2's results by path.
        roles: how each path is treated; paths missing here count as
            production code outside the paths given (read, never written).
        classes: every indexed class.
        keep: mock classes not to delete, with the reason (the run's safety net
            puts a class here when deleting it would leave its name behind).
        block: mock classes not to migrate at all, with ``(path, reason)`` (what
            a file that could not be processed may use).
    """
    return _Planner(facts, roles, classes, keep or {}, block or {}).build()
