"""Which names are mock breakers: the patterns shared by ``resilient check`` and ``migrate``.

A mock breaker is any identifier that starts with ``Mock``, ``Fake``, ``Dummy``,
``Stub``, ``NoOp`` (or ``Noop``/``No_Op``) or ``Null`` and ends with ``Breaker``,
in any case and with anything in between (``MockCircuitBreaker``,
``FakeBreaker``, ``dummy_auth_breaker``, ``NULL_CIRCUIT_BREAKER``), plus the names
or glob patterns listed under ``mock-names`` in ``[tool.resilient]``.

Standard library only: the guard must stay light.

Example::

    names = MockNames(extra=("LegacyBreaker", "Sim*Breaker"))
    names.matches("MockCircuitBreaker")          # True
    names.matches("SimPaymentsBreaker")          # True
    names.string_reference("app.cb.FakeBreaker")  # "FakeBreaker"
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from ._record import Frozen

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "DEFAULT_MOCK_PATTERNS",
    "MockNames",
    "is_mock_breaker_name",
]

#: The built-in patterns, as users read them in the docs (any case; ``*`` is anything).
DEFAULT_MOCK_PATTERNS: Final[tuple[str, ...]] = (
    "Mock*Breaker",
    "Fake*Breaker",
    "Dummy*Breaker",
    "Stub*Breaker",
    "NoOp*Breaker",
    "Null*Breaker",
)

# One regex for the defaults: a prefix word, anything, then "breaker" at the end.
_DEFAULT_RE: Final = re.compile(
    r"_*(?:mock|fake|dummy|stub|no_?op|null)\w*breaker",
    re.IGNORECASE | re.ASCII,
)
# Cheap text prefilter: every default pattern ends with "breaker".
_DEFAULT_NEEDLE: Final = b"breaker"
_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _needle(pattern: str) -> bytes:
    """The longest literal run of a glob, lower-cased, for a substring prefilter."""
    parts = re.split(r"[*?\[\]]+", pattern)
    best = max(parts, key=len) if parts else ""
    return best.lower().encode("utf-8")


class MockNames(Frozen):
    """Decides whether an identifier names a mock breaker.

    Args:
        extra: additional names or glob patterns (``*``, ``?``), matched in any
            case, typically ``mock-names`` from ``[tool.resilient]``.

    Immutable; equal (and hashed) by ``extra``.  (Written out rather than a frozen
    dataclass: ``dataclasses`` would cost the pre-commit hook ~10 ms to import.)
    """

    _fields = ("extra",)
    extra: tuple[str, ...]
    _extra_res: tuple[re.Pattern[str], ...]
    _needles: tuple[bytes, ...]

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        extra = tuple(extra)
        _set = object.__setattr__
        _set(self, "extra", extra)
        _set(self, "_extra_res", tuple(_glob_regex(p) for p in extra))
        needles = {_DEFAULT_NEEDLE, *(_needle(p) for p in extra)}
        _set(self, "_needles", tuple(sorted(needles)))

    def matches(self, name: str) -> bool:
        """Return True when the identifier ``name`` is a mock breaker's name."""
        if _DEFAULT_RE.fullmatch(name):
            return True
        return any(r.fullmatch(name) for r in self._extra_res)

    def string_reference(self, value: str) -> str | None:
        """Return the mock name a string refers to, or None.

        Accepts a bare name (``"MockCircuitBreaker"``) or a dotted path whose
        last part is one (``"app.cb.MockCircuitBreaker"``, ``"app.cb:MockBreaker"``);
        prose that merely mentions a mock is not a reference.
        """
        value = value.strip()
        if not value or len(value) > 300:
            return None
        last = re.split(r"[.:]", value)[-1]
        if not _IDENT_RE.fullmatch(last):
            return None
        if not all(_IDENT_RE.fullmatch(p) for p in re.split(r"[.:]", value)):
            return None
        return last if self.matches(last) else None

    def needles(self) -> tuple[bytes, ...]:
        """Lower-cased substrings, one of which every matching name contains."""
        return self._needles

    def may_mention(self, lowered: bytes) -> bool:
        """Cheap prefilter: can this source text (lower-cased bytes) name a mock breaker?

        A False answer is definitive; True only means the file is worth parsing.
        """
        return any(n in lowered for n in self._needles)


_DEFAULT_NAMES: Final = MockNames()


def is_mock_breaker_name(name: str, extra: Iterable[str] = ()) -> bool:
    """Return True when ``name`` matches the default patterns or one of ``extra``."""
    extra = tuple(extra)
    if not extra:
        return _DEFAULT_NAMES.matches(name)
    return MockNames(extra=extra).matches(name)
