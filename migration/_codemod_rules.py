"""What maps onto ``resilient`` and what does not: the codemod's tables (no LibCST).

Kept apart from the LibCST code so the rules read as data and are tested as
such (``tests/migration/test_migrate_rules.py`` checks them against the real
``resilient.CircuitBreaker`` and ``BreakerConfig``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from ._codemod_model import Arg, Param
from ._record import record

__all__ = [
    "BREAKER_API",
    "CONFIG_FIELDS",
    "COUNTER_ATTRS",
    "KEYWORD_ALIASES",
    "MODE_RE",
    "NAME_PARAMS",
    "ArgumentMapping",
    "map_arguments",
    "unsupported_attribute",
]

#: ``BreakerConfig`` fields: passed through to ``get_breaker`` unchanged.
CONFIG_FIELDS: Final = frozenset(
    {
        "failure_threshold",
        "success_threshold",
        "recovery_timeout",
        "half_open_max_calls",
        "half_open_max_wait",
        "call_timeout",
        "failure_rate_threshold",
        "window_size",
        "window_seconds",
        "minimum_calls",
        "slow_call_duration",
        "slow_call_rate_threshold",
        "recovery_backoff",
        "max_recovery_timeout",
        "jitter",
        "failure_on",
        "ignore",
        "is_failure",
        "is_failure_result",
    }
)

#: Other spellings of a setting seen in hand-rolled breakers (and pybreaker), mapped to
#: the ``BreakerConfig`` field with the same meaning.
KEYWORD_ALIASES: Final[dict[str, str]] = {
    "timeout_seconds": "call_timeout",
    "call_timeout_seconds": "call_timeout",
    "recovery_timeout_seconds": "recovery_timeout",
    "recovery_time": "recovery_timeout",
    "reset_timeout": "recovery_timeout",
    "reset_timeout_seconds": "recovery_timeout",
    "fail_max": "failure_threshold",
    "max_failures": "failure_threshold",
    "failure_limit": "failure_threshold",
    "success_limit": "success_threshold",
}

#: Keywords that name the breaker.
NAME_PARAMS: Final = frozenset({"name", "breaker_name", "circuit_name", "service_name"})

#: Keywords with more than one plausible meaning: left for a human to decide.
_AMBIGUOUS: Final[dict[str, str]] = {
    "timeout": "`timeout` is ambiguous: pass `call_timeout=` (limit per call) or "
    "`recovery_timeout=` (seconds open before a trial call)",
}

#: The public attributes of ``resilient.CircuitBreaker``: code using only these on a
#: migrated breaker keeps working.
BREAKER_API: Final = frozenset(
    {
        "acall",
        "add_listener",
        "call",
        "config",
        "disable",
        "is_closed",
        "is_half_open",
        "is_open",
        "metrics",
        "name",
        "remove_listener",
        "reset",
        "state",
        "store",
        "trip",
    }
)

#: Counters a mock exposes; writing 0/None to them next to ``is_open = False`` is part
#: of a reset, which ``reset()`` does whole.
COUNTER_ATTRS: Final = frozenset(
    {
        "failure_count",
        "failures",
        "consecutive_failures",
        "success_count",
        "successes",
        "last_failure",
        "last_failure_time",
        "last_failure_at",
        "opened_at",
        "half_open_calls",
    }
)

#: A condition that selects a mode on purpose: a mock built under it is left alone.
MODE_RE: Final = re.compile(
    r"simulat|mock|fake|dummy|stub|offline|sandbox|dry_?run|\btest|testing|demo|noop|no_op",
    re.IGNORECASE,
)

_UNSUPPORTED: Final[dict[str, str]] = {
    "record_failure": "`{attr}()` has no resilient equivalent: a resilient breaker counts "
    "the outcome of every call it runs (`call()`, `acall()`, `with`); run the work "
    "through it instead",
    "record_success": "`{attr}()` has no resilient equivalent: a resilient breaker counts "
    "the outcome of every call it runs (`call()`, `acall()`, `with`); run the work "
    "through it instead",
    "get_status": "`{attr}()` has no resilient equivalent: use `metrics()` (a snapshot "
    "with `state`, `consecutive_failures`, `retry_after`...) or `resilient.health()`",
    "failure_count": "`{attr}` is not an attribute of a resilient breaker: read "
    "`metrics().consecutive_failures`",
    "failures": "`{attr}` is not an attribute of a resilient breaker: read `metrics().failures`",
    "last_failure_time": "`{attr}` is not an attribute of a resilient breaker: read "
    "`metrics().opened_at` / `metrics().last_error`",
    "opened_at": "`{attr}` is not an attribute of a resilient breaker: read `metrics().opened_at`",
}


def unsupported_attribute(attr: str, *, write: bool = False) -> str:
    """Why ``breaker.<attr>`` (read or written) does not carry over to resilient."""
    if write:
        if attr in {"is_open", "is_closed", "state"}:
            return (
                f"`{attr}` is read-only on a resilient breaker and this value is not a "
                "plain open/closed literal: call `trip()` or `reset()`"
            )
        if attr in COUNTER_ATTRS:
            return (
                f"`{attr}` cannot be written on a resilient breaker; `reset()` clears "
                "counters but also closes the breaker, so decide by hand"
            )
        return f"`{attr}` cannot be set on a resilient breaker (it has fixed attributes)"
    template = _UNSUPPORTED.get(attr)
    if template is not None:
        return template.format(attr=attr)
    return f"`{attr}` is not an attribute of resilient.CircuitBreaker"


def setting_for(keyword: str) -> str | None:
    """The ``BreakerConfig`` field a mock's keyword means, or None."""
    if keyword in CONFIG_FIELDS or keyword == "store":
        return keyword
    return KEYWORD_ALIASES.get(keyword)


@record
class ArgumentMapping:
    """How a construction's arguments become ``get_breaker`` arguments.

    Attributes:
        args: ``(index of the original argument, keyword or None)`` in the new
            order: the name first, then the settings in their original order.
        reason: why it cannot be mapped (then ``args`` is empty).
        name: the breaker name when it is a string literal.
        config: ``(setting, source text)`` pairs, sorted.
    """

    args: tuple[tuple[int, str | None], ...] = ()
    reason: str | None = None
    name: str | None = None
    config: tuple[tuple[str, str], ...] = ()


def map_arguments(args: Sequence[Arg], init: Sequence[Param] | None) -> ArgumentMapping:
    """Map ``MockBreaker(...)`` arguments onto ``get_breaker(name, **settings)``.

    Positional arguments are matched to the mock's ``__init__`` parameters and
    passed as keywords; keywords go through :func:`setting_for`.  Anything
    without a known meaning makes the construction manual.
    """
    if any(a.star for a in args):
        return ArgumentMapping(reason="called with `*args`/`**kwargs`: the settings are unknown")
    positional_params: list[str] | None = None
    keyword_params: set[str] = set()
    if init is not None:
        positional_params = [p.name for p in init if p.kind == "positional"]
        keyword_params = {p.name for p in init if p.kind in {"positional", "keyword"}}
    name_param: str | None = None
    if positional_params:
        first = positional_params[0]
        if first in NAME_PARAMS:
            name_param = first
    elif init is None:
        name_param = "name"  # no visible __init__: a first positional argument is the name
    name_index: int | None = None
    settings: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for index, arg in enumerate(args):
        if arg.keyword is None:
            if index == 0 and name_param is not None:
                name_index = index
                continue
            if positional_params is None or index >= len(positional_params):
                return ArgumentMapping(
                    reason=f"positional argument {index + 1} (`{arg.code}`) has no known "
                    "parameter name"
                )
            param = positional_params[index]
        else:
            param = arg.keyword
            if param == name_param or (name_param is None and param in NAME_PARAMS):
                name_index = index
                continue
            if init is not None and param not in keyword_params and not _takes_kwargs(init):
                return ArgumentMapping(reason=f"`{param}=` is not a parameter of the mock")
        if param in _AMBIGUOUS:
            return ArgumentMapping(reason=_AMBIGUOUS[param])
        setting = setting_for(param)
        if setting is None:
            return ArgumentMapping(
                reason=f"`{param}` has no resilient equivalent (get_breaker takes "
                "BreakerConfig fields such as failure_threshold, recovery_timeout, "
                "call_timeout, half_open_max_calls)"
            )
        if setting in seen:
            return ArgumentMapping(reason=f"two arguments set `{setting}`")
        seen[setting] = index
        settings.append((index, setting))
    if name_index is None:
        return ArgumentMapping(
            reason="no breaker name: get_breaker() needs one name per protected dependency"
        )
    out: list[tuple[int, str | None]] = [(name_index, None)]
    out.extend((i, s) for i, s in settings)
    config = tuple(sorted((s, args[i].code) for i, s in settings))
    return ArgumentMapping(args=tuple(out), name=args[name_index].literal, config=config)


def _takes_kwargs(init: Sequence[Param]) -> bool:
    return any(p.kind == "var_keyword" for p in init)
