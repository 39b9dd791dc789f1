"""The data the codemod's passes hand to each other (no LibCST here).

``resilient migrate`` works in three passes over the files that can matter:

1. *index* (:func:`~._codemod.index_module`): each module's bindings as
   symbolic expressions (:data:`Sym`), and the classes it defines;
2. *analyse* (:func:`~._codemod.analyze_module`): with every module's bindings
   merged, where mock breakers are built, used and referenced, and the edit
   each site needs (:class:`FileFacts`);
3. *apply* (:func:`~._codemod.apply_edits`): the edits the tree-wide plan
   (:mod:`._codemod_plan`) kept.

Everything here is a frozen record (:func:`._record.record`), so results cross
process boundaries (``--jobs``) and compare by value.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from ._record import record

# -- symbolic expressions -------------------------------------------------------------
#
# The index records what each name, attribute slot and function return may hold as
# a small expression over other names; the resolver (._codemod_resolve) evaluates
# them once every module is indexed, so a breaker handed out by a manager in one
# module is recognised where another module awaits ``breaker.call(...)``.

#: A call site: (path, line, column) of the call, 1-based line, 0-based column.
SiteId: TypeAlias = tuple[str, int, int]


@record
class Ref:
    """Whatever the fully qualified name ``fqn`` is bound to."""

    fqn: str


@record
class ImportRef:
    """An import binding: the name is ``fqn`` in another module."""

    fqn: str


@record
class DefClass:
    """A class statement."""

    fqn: str


@record
class DefFunc:
    """A ``def`` statement (function or method)."""

    fqn: str


@record
class SelfOf:
    """``self`` inside a method of ``cls``."""

    cls: str


@record
class Attr:
    """``base.name``."""

    base: Sym
    name: str


@record
class Item:
    """``base[...]``."""

    base: Sym


@record
class CallOf:
    """``func(...)`` at ``site``."""

    func: Sym
    site: SiteId


@record
class IterOf:
    """An element of ``for x in base``."""

    base: Sym


@record
class ElemOf:
    """Element ``index`` of a tuple unpacked from ``base``."""

    base: Sym
    index: int


@record
class AnyOf:
    """Any of several expressions (``a or b``, ``a if c else b``)."""

    items: tuple[Sym, ...]


@record
class Annotated:
    """A value declared by an annotation naming ``items`` (``x: MockBreaker | None``)."""

    items: tuple[Sym, ...]


@record
class Opaque:
    """Anything the index does not follow (literals, arithmetic, lambdas...)."""


OPAQUE = Opaque()

Sym: TypeAlias = (
    Ref
    | ImportRef
    | DefClass
    | DefFunc
    | SelfOf
    | Attr
    | Item
    | CallOf
    | IterOf
    | ElemOf
    | AnyOf
    | Annotated
    | Opaque
)

# -- what the index knows about a class ----------------------------------------------

ParamKind: TypeAlias = Literal["positional", "keyword", "var_positional", "var_keyword"]


@record
class Param:
    """One ``__init__`` parameter (``self`` excluded)."""

    name: str
    kind: ParamKind
    has_default: bool


@record
class ClassInfo:
    """A class statement, as the index saw it.

    Attributes:
        fqn: fully qualified name (``app.cb.MockCircuitBreaker``).
        is_mock: the name matches the mock-breaker patterns (``_names``).
        top_level: defined directly in the module body (only those are deleted).
        init: the ``__init__`` parameters, or None when the class has none.
        methods: every function defined in the body (properties included).
        async_methods: those defined with ``async def``.
        properties: those decorated with ``@property``.
        fallback: when the class is a stand-in defined because an import failed
            or a dependency is unavailable, a short description of that branch.
    """

    fqn: str
    path: str
    line: int
    name: str
    is_mock: bool
    top_level: bool
    bases: tuple[Sym, ...] = ()
    init: tuple[Param, ...] | None = None
    methods: frozenset[str] = frozenset()
    async_methods: frozenset[str] = frozenset()
    properties: frozenset[str] = frozenset()
    fallback: str | None = None


@record
class ModuleSummary:
    """Pass 1's result for one module: its bindings and classes."""

    path: str
    module: str
    bindings: tuple[tuple[str, tuple[Sym, ...]], ...]
    classes: tuple[ClassInfo, ...]


# -- edits ---------------------------------------------------------------------------

#: Identifies a node in a file: (node type, start line, start column, end line, end column).
NodeKey: TypeAlias = tuple[str, int, int, int, int]


@record
class RenameAttr:
    """``b.call`` -> ``b.acall`` (``key`` is the Attribute node)."""

    key: NodeKey
    new: str


@record
class ReplaceCall:
    """``MockBreaker("x", 3)`` -> ``get_breaker("x", failure_threshold=3)``.

    ``args`` lists, in the new order, ``(index of the original argument, keyword or
    None for positional)``.
    """

    key: NodeKey
    func: str
    args: tuple[tuple[int, str | None], ...]


@record
class AssignToCall:
    """``b.is_open = True`` -> ``b.trip()`` (``key`` is the Assign node)."""

    key: NodeKey
    method: str


@record
class DropStatement:
    """Remove a small statement (``b.failure_count = 0`` next to ``b.reset()``)."""

    key: NodeKey


@record
class CallToAttr:
    """``b.is_open()`` -> ``b.is_open`` (``key`` is the Call node)."""

    key: NodeKey


@record
class ReplaceName:
    """A Name or Attribute in an annotation -> a plain name (``CircuitBreaker``)."""

    key: NodeKey
    new: str


@record
class ReplaceString:
    """A string annotation's literal -> ``new`` (already quoted)."""

    key: NodeKey
    new: str


@record
class DeleteClass:
    """Remove a top-level class statement."""

    key: NodeKey


@record
class DropElement:
    """Remove one string from ``__all__``."""

    key: NodeKey


Edit: TypeAlias = (
    RenameAttr
    | ReplaceCall
    | AssignToCall
    | DropStatement
    | CallToAttr
    | ReplaceName
    | ReplaceString
    | DeleteClass
    | DropElement
)


@record
class ImportSpec:
    """An import to add or (when unused) remove: ``from module import obj as asname``."""

    module: str
    obj: str | None = None
    asname: str | None = None

    @property
    def bound(self) -> str:
        """The name the import binds: ``asname``, else the object, else the module's first part."""
        return self.asname or self.obj or self.module.split(".", maxsplit=1)[0]


# -- pass 2's facts ------------------------------------------------------------------


@record
class Arg:
    """One argument of a construction."""

    keyword: str | None
    code: str
    literal: str | None = None  # the value of a plain string literal
    star: bool = False


@record
class Construction:
    """A mock breaker class instantiated here.

    Attributes:
        reason: why this construction cannot become ``get_breaker(...)`` (its
            position, its arguments, a name clash), or None when it can.
        edit: the rewrite, when ``reason`` is None.
        name: the breaker name when it is a string literal (to spot one name
            built with two configurations, which ``get_breaker`` refuses).
        config: ``(setting, source)`` pairs after mapping.
    """

    cls: str
    site: SiteId
    reason: str | None
    edit: ReplaceCall | None
    name: str | None = None
    config: tuple[tuple[str, str], ...] = ()
    binding: str | None = None


UseAction: TypeAlias = Literal["edit", "keep", "unsafe"]


@record
class Use:
    """Something done to a value that may be a mock breaker.

    Attributes:
        values: ``(mock class, construction site)`` pairs the value may come
            from; the site is None for a value known only by its annotation.
        action: ``edit`` (needs ``edits`` once migrated), ``keep`` (the same code
            works on a resilient breaker), ``unsafe`` (no equivalent: blocks the
            migration of those classes until changed by hand).
        what: a short label for the summary (``acall``, ``trip``...).
        reason: what the edit does, or why it is unsafe.
    """

    line: int
    values: frozenset[tuple[str, SiteId | None]]
    action: UseAction
    what: str
    reason: str
    edits: tuple[Edit, ...] = ()


RefKind: TypeAlias = Literal[
    "construction",
    "annotation",
    "all",
    "reexport",
    "isinstance",
    "base",
    "string",
    "other",
    "inside",
]


@record
class Reference:
    """A place naming a mock class (an import is an :class:`ImportOf`).

    ``edit`` makes the reference go away once the class is migrated
    (annotations), or deleted (``__all__`` of the defining module); a
    construction goes away with its site; ``inside`` references live in the body
    of mock class ``owner`` and go away with it; the rest stay.
    """

    cls: str
    line: int
    kind: RefKind
    text: str
    edit: Edit | None = None
    site: SiteId | None = None
    owner: str | None = None
    binding: str | None = None


@record
class ImportOf:
    """An import binding through which a mock class is reached in this file."""

    cls: str | None
    line: int
    local: str
    spec: ImportSpec
    text: str


@record
class ClassDefinition:
    """A mock class defined in this file; ``edit`` deletes it (top level only)."""

    cls: str
    line: int
    edit: DeleteClass | None


@record
class FileFacts:
    """Pass 2's result for one file."""

    path: str
    module: str
    constructions: tuple[Construction, ...] = ()
    uses: tuple[Use, ...] = ()
    references: tuple[Reference, ...] = ()
    imports: tuple[ImportOf, ...] = ()
    classes: tuple[ClassDefinition, ...] = ()
    get_breaker_name: str | None = "get_breaker"
    breaker_type_name: str | None = "CircuitBreaker"


# -- results -------------------------------------------------------------------------


@record
class ManualSite:
    """A place the codemod left alone: ``path:line: manual: reason``."""

    path: str
    line: int
    reason: str

    def format(self) -> str:
        """The one-line form printed to stderr."""
        return f"{self.path}:{self.line}: manual: {self.reason}"


@record
class FilePlan:
    """What pass 3 does to one file."""

    path: str
    edits: tuple[Edit, ...]
    add_imports: tuple[ImportSpec, ...] = ()
    remove_imports: tuple[ImportSpec, ...] = ()


FileStatus: TypeAlias = Literal["changed", "unchanged", "failed"]


@record
class FileResult:
    """The outcome for one file.

    Attributes:
        status: ``changed`` (a diff; written with ``--write``), ``unchanged``,
            or ``failed`` (``error`` says why; the file was not touched).
        manual: sites left for a human, with lines in the file as it ends up.
        counts: how many rewrites of each kind (``get_breaker``, ``acall``...).
    """

    path: str
    status: FileStatus
    diff: str = ""
    error: str | None = None
    manual: tuple[ManualSite, ...] = ()
    counts: tuple[tuple[str, int], ...] = ()
