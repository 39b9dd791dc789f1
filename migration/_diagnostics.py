"""The rules of ``resilient check``, its findings, and the three output formats.

Output copies ruff: ``path:line:col: CODE message`` with 1-based line and
column, a ``help:`` line saying what to do instead, and a tally last.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._record import Frozen

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Final, Literal

    Severity = Literal["error", "warning"]

else:

    def __getattr__(name: str) -> object:
        """``Severity`` (a ``typing.Literal``) at run time, made only when asked for."""
        if name == "Severity":
            from typing import Literal

            return Literal["error", "warning"]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RULES",
    "Finding",
    "Rule",
    "Severity",
    "format_github",
    "format_json",
    "format_text",
    "tally",
]

_USE_RESILIENT: Final = (
    "Use a real breaker: `resilient.get_breaker(name, failure_threshold=..., "
    "recovery_timeout=...)`; keep mocks in tests"
)


# ``Rule`` and ``Finding`` are records (:mod:`._record`), not dataclasses: they
# behave as the frozen, slotted dataclasses did, without the import's cost.


class Rule(Frozen):
    """One rule: its code, kebab-case name, default severity and help text."""

    __slots__ = ("code", "help", "name", "severity")
    __match_args__ = _fields = ("code", "name", "severity", "help")

    code: str
    name: str
    severity: Severity
    help: str

    def __init__(self, code: str, name: str, severity: Severity, help: str) -> None:
        _set = object.__setattr__
        _set(self, "code", code)
        _set(self, "name", name)
        _set(self, "severity", severity)
        _set(self, "help", help)


RULES: Final[dict[str, Rule]] = {
    rule.code: rule
    for rule in (
        Rule(
            "RES000",
            "unparsable-file",
            "error",
            "Fix the file so Python can read it, or add it to `exclude` in [tool.resilient]",
        ),
        Rule("RES001", "mock-breaker-class", "error", _USE_RESILIENT),
        Rule("RES002", "mock-breaker-usage", "error", _USE_RESILIENT),
        Rule(
            "RES003",
            "unittest-mock-breaker",
            "error",
            "Pass a real breaker (`resilient.get_breaker(name)`); mock it only in tests",
        ),
        Rule(
            "RES004",
            "breaker-without-recovery",
            "warning",
            "Use `resilient.get_breaker(name, recovery_timeout=...)`: it half-opens after "
            "`recovery_timeout` seconds and closes when a trial call succeeds",
        ),
        Rule(
            "RES005",
            "unused-suppression",
            "error",
            "Remove the code from the `# resilient: ignore[...]` comment",
        ),
        Rule(
            "RES006",
            "pass-through-breaker",
            "warning",
            "Depend on `resilient` (or the breaker library) unconditionally, so a missing "
            "package fails loudly at start-up instead of silently removing protection",
        ),
    )
}


class Finding(Frozen):
    """One diagnostic.  Lines and columns are 1-based; columns count characters."""

    __slots__ = (
        "code",
        "col",
        "end_col",
        "end_line",
        "help",
        "line",
        "message",
        "path",
        "severity",
    )
    __match_args__ = _fields = (
        "path",
        "line",
        "col",
        "code",
        "message",
        "end_line",
        "end_col",
        "severity",
        "help",
    )

    path: str
    line: int
    col: int
    code: str
    message: str
    end_line: int
    end_col: int
    severity: Severity
    help: str

    def __init__(  # noqa: PLR0917 - positional too, as the dataclass took them
        self,
        path: str,
        line: int,
        col: int,
        code: str,
        message: str,
        end_line: int = 0,
        end_col: int = 0,
        severity: Severity = "error",
        help: str = "",
    ) -> None:
        _set = object.__setattr__
        _set(self, "path", path)
        _set(self, "line", line)
        _set(self, "col", col)
        _set(self, "code", code)
        _set(self, "message", message)
        _set(self, "end_line", end_line)
        _set(self, "end_col", end_col)
        _set(self, "severity", severity)
        _set(self, "help", help)

    @property
    def name(self) -> str:
        """The rule's kebab-case name."""
        return RULES[self.code].name

    def sort_key(self) -> tuple[str, int, int, str]:
        """Order by file, position, then code."""
        return (self.path, self.line, self.col, self.code)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def tally(findings: Sequence[Finding]) -> str:
    """The closing line of the text output."""
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if not findings:
        return "All checks passed!"
    if not warnings:
        return f"Found {_plural(errors, 'error')}."
    if not errors:
        return f"Found {_plural(warnings, 'warning')} (warnings fail the check under --strict)."
    return (
        f"Found {_plural(errors, 'error')} and {_plural(warnings, 'warning')} "
        "(warnings fail the check under --strict)."
    )


def format_text(findings: Iterable[Finding]) -> str:
    """ruff-style lines, one ``help:`` line under each, and the tally last."""
    findings = list(findings)
    out: list[str] = []
    for f in findings:
        label = " [warning]" if f.severity == "warning" else ""
        out.append(f"{f.path}:{f.line}:{f.col}: {f.code}{label} {f.message}")
        if f.help:
            out.append(f"  help: {f.help}")
    out.append(tally(findings))
    return "\n".join(out) + "\n"


def format_json(findings: Iterable[Finding]) -> str:
    """A JSON array with ruff's field names, plus ``severity`` and ``help``."""
    import json  # only --format json needs it

    items = [
        {
            "code": f.code,
            "name": f.name,
            "message": f.message,
            "help": f.help,
            "severity": f.severity,
            "filename": f.path,
            "location": {"row": f.line, "column": f.col},
            "end_location": {"row": f.end_line or f.line, "column": f.end_col or f.col},
        }
        for f in findings
    ]
    return json.dumps(items, indent=2, ensure_ascii=False) + "\n"


def _gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: Iterable[Finding]) -> str:
    """GitHub Actions workflow commands: one ``::error`` / ``::warning`` per finding."""
    out: list[str] = []
    for f in findings:
        props = ",".join(
            (
                f"title={_gh_prop(f'resilient ({f.code})')}",
                f"file={_gh_prop(f.path)}",
                f"line={f.line}",
                f"col={f.col}",
                f"endLine={f.end_line or f.line}",
                f"endColumn={f.end_col or f.col}",
            )
        )
        text = f"{f.path}:{f.line}:{f.col}: {f.code} {f.message}"
        if f.help:
            text += f"\nhelp: {f.help}"
        out.append(f"::{f.severity} {props}::{_gh_data(text)}")
    return "\n".join(out) + ("\n" if out else "")
