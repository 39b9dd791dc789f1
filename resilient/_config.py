"""BreakerConfig: the validated, frozen settings of one circuit breaker."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import ConfigError

__all__ = ["BreakerConfig"]

ExceptionTypes = tuple[type[BaseException], ...]

#: Window used for rate-based opening when a rate threshold is set without one.
DEFAULT_WINDOW_SIZE = 100
#: Calls a window must hold before a rate is judged, unless minimum_calls says otherwise.
DEFAULT_MINIMUM_CALLS = 10


@dataclasses.dataclass(frozen=True)
class BreakerConfig:
    """The settings of one circuit breaker.  Frozen and validated on creation.

    Every invalid value raises :class:`ConfigError` naming the field, the value and
    what is allowed.  Times are in seconds; rates are fractions (``0.5`` is 50 %).

    Args:
        failure_threshold: consecutive counted failures that open a closed breaker.
        success_threshold: successful trial calls in half-open that close it again.
        recovery_timeout: seconds an open breaker waits before admitting a trial call.
        half_open_max_calls: trial calls allowed in flight at once while half-open.
        half_open_max_wait: seconds a trial call may hold its permit; after that the
            permit is given to the next caller, so a hung call cannot wedge the
            breaker.  Default: ``call_timeout``, else ``recovery_timeout``.
        call_timeout: seconds a call may take.  Async calls are cancelled and count a
            :class:`CallTimeoutError` failure; sync calls cannot be interrupted, so
            they return their result and the overrun counts as a failure.
        failure_rate_threshold: open when the failure rate over the window reaches
            this fraction (after ``minimum_calls``).  Off by default.
        window_size: the rate window, as a number of most recent calls.
        window_seconds: the rate window, as seconds (one-second buckets).
        minimum_calls: calls the window must hold before a rate is judged
            (default 10, or the window size when smaller).
        slow_call_duration: calls taking at least this many seconds count as slow.
        slow_call_rate_threshold: open when the slow-call rate over the window
            reaches this fraction.
        recovery_backoff: multiplier applied to the recovery timeout after each
            failed trial (1 means no backoff).
        max_recovery_timeout: cap on the backed-off recovery timeout.
        jitter: fraction by which each recovery timeout is randomly stretched or
            shrunk, so a fleet does not retry in lockstep (0 to below 1).
        failure_on: exception types that count as failures (default ``Exception``).
        ignore: exception types that never count (business outcomes such as an
            invalid token); they propagate untouched and never reach the fallback.
        is_failure: ``exc -> bool``; when given, decides for exceptions not ignored.
        is_failure_result: ``result -> bool``; a returned value it flags counts as a
            failure (the value is still returned to the caller).
    """

    failure_threshold: int = 5
    success_threshold: int = 2
    recovery_timeout: float = 30.0
    half_open_max_calls: int = 1
    half_open_max_wait: float | None = None
    call_timeout: float | None = None
    failure_rate_threshold: float | None = None
    window_size: int | None = None
    window_seconds: float | None = None
    minimum_calls: int | None = None
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float | None = None
    recovery_backoff: float = 1.0
    max_recovery_timeout: float | None = None
    jitter: float = 0.0
    failure_on: ExceptionTypes = (Exception,)
    ignore: ExceptionTypes = ()
    is_failure: Callable[[BaseException], bool] | None = None
    is_failure_result: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        _int(self, "failure_threshold", minimum=1)
        _int(self, "success_threshold", minimum=1)
        _seconds(self, "recovery_timeout")
        _int(self, "half_open_max_calls", minimum=1)
        _seconds(self, "half_open_max_wait", optional=True)
        _seconds(self, "call_timeout", optional=True)
        _fraction(self, "failure_rate_threshold")
        _int(self, "window_size", minimum=1, optional=True)
        _seconds(self, "window_seconds", optional=True)
        _int(self, "minimum_calls", minimum=1, optional=True)
        _seconds(self, "slow_call_duration", optional=True)
        _fraction(self, "slow_call_rate_threshold")
        _number(self, "recovery_backoff", minimum=1.0, allowed="a number >= 1")
        _seconds(self, "max_recovery_timeout", optional=True)
        _number(self, "jitter", minimum=0.0, below=1.0, allowed="a fraction from 0 to below 1")
        object.__setattr__(self, "failure_on", _exception_types("failure_on", self.failure_on))
        object.__setattr__(self, "ignore", _exception_types("ignore", self.ignore))
        for field in ("is_failure", "is_failure_result"):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise ConfigError(f"{field} must be a callable or None, got {value!r}")

        if self.window_size is not None and self.window_seconds is not None:
            raise ConfigError(
                f"window_size={self.window_size!r} and window_seconds={self.window_seconds!r} "
                "are both set; choose a count-based or a time-based window, not both"
            )
        if self.slow_call_rate_threshold is not None and self.slow_call_duration is None:
            raise ConfigError(
                f"slow_call_rate_threshold={self.slow_call_rate_threshold!r} needs "
                "slow_call_duration (the seconds from which a call counts as slow)"
            )
        if (
            self.window_size is not None
            and self.minimum_calls is not None
            and self.minimum_calls > self.window_size
        ):
            raise ConfigError(
                f"minimum_calls={self.minimum_calls!r} is larger than window_size="
                f"{self.window_size!r}; the rate could never be judged"
            )
        if (
            self.max_recovery_timeout is not None
            and self.max_recovery_timeout < self.recovery_timeout
        ):
            raise ConfigError(
                f"max_recovery_timeout={self.max_recovery_timeout!r} is below "
                f"recovery_timeout={self.recovery_timeout!r}"
            )

    # -- derived values -----------------------------------------------------

    @property
    def uses_window(self) -> bool:
        """Whether outcomes are kept in a rate window (rate or slow-call opening)."""
        return (
            self.failure_rate_threshold is not None
            or self.slow_call_rate_threshold is not None
            or self.window_size is not None
            or self.window_seconds is not None
        )

    @property
    def effective_window_size(self) -> int | None:
        """The count-based window size, or ``None`` for a time-based window."""
        if self.window_seconds is not None:
            return None
        return self.window_size if self.window_size is not None else DEFAULT_WINDOW_SIZE

    @property
    def effective_minimum_calls(self) -> int:
        """Calls the window must hold before rates are judged."""
        if self.minimum_calls is not None:
            return self.minimum_calls
        size = self.effective_window_size
        return min(DEFAULT_MINIMUM_CALLS, size) if size is not None else DEFAULT_MINIMUM_CALLS

    @property
    def effective_half_open_max_wait(self) -> float:
        """Seconds a trial call may hold its half-open permit."""
        if self.half_open_max_wait is not None:
            return self.half_open_max_wait
        if self.call_timeout is not None:
            return self.call_timeout
        return self.recovery_timeout

    # -- construction helpers -------------------------------------------------

    @classmethod
    def from_mapping(
        cls, settings: Mapping[str, Any], *, base: BreakerConfig | None = None
    ) -> BreakerConfig:
        """Build a config from keyword settings, on top of ``base`` (or the defaults).

        Raises:
            ConfigError: a setting is unknown or invalid.
        """
        check_setting_names(settings)
        if base is None:
            return cls(**settings)
        return dataclasses.replace(base, **settings)

    def replace(self, **changes: Any) -> BreakerConfig:
        """Return a copy with ``changes`` applied (validated like a new config)."""
        return self.from_mapping(changes, base=self)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-friendly dict (exception types and callables by name)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in ("failure_on", "ignore"):
                value = [_qualname(t) for t in value]
            elif callable(value):
                value = _qualname(value)
            out[field.name] = value
        return out


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(BreakerConfig))

#: Names users bring from other libraries, mapped to ours for a helpful error.
_ALIASES = {
    "timeout_seconds": "call_timeout",
    "timeout": "call_timeout",
    "fail_max": "failure_threshold",
    "failure_count": "failure_threshold",
    "reset_timeout": "recovery_timeout",
    "timeout_duration": "recovery_timeout",
    "expected_exception": "failure_on",
    "exclude": "ignore",
    "success_count": "success_threshold",
}


def check_setting_names(settings: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for any key that is not a breaker setting."""
    for key in settings:
        if key not in _FIELD_NAMES:
            import difflib

            hint = _ALIASES.get(key) or next(
                iter(difflib.get_close_matches(key, sorted(_FIELD_NAMES), n=1)), None
            )
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            raise ConfigError(f"unknown breaker setting {key!r}{suggestion}")


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or repr(obj)
    return f"{module}.{name}" if module and module != "builtins" else name


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(cfg: BreakerConfig, field: str, *, minimum: int, optional: bool = False) -> None:
    value = getattr(cfg, field)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field} must be an integer >= {minimum}, got {value!r}")


def _seconds(cfg: BreakerConfig, field: str, *, optional: bool = False) -> None:
    value = getattr(cfg, field)
    if value is None and optional:
        return
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        extra = " or None" if optional else ""
        raise ConfigError(f"{field} must be a number of seconds > 0{extra}, got {value!r}")
    object.__setattr__(cfg, field, float(value))


def _fraction(cfg: BreakerConfig, field: str) -> None:
    value = getattr(cfg, field)
    if value is None:
        return
    if not _is_number(value) or not 0 < value <= 1:
        hint = " (a fraction: 0.5 means 50%)" if _is_number(value) and 1 < value <= 100 else ""
        raise ConfigError(f"{field} must be a fraction in (0, 1] or None, got {value!r}{hint}")
    object.__setattr__(cfg, field, float(value))


def _number(
    cfg: BreakerConfig, field: str, *, minimum: float, allowed: str, below: float | None = None
) -> None:
    value = getattr(cfg, field)
    if (
        not _is_number(value)
        or not math.isfinite(value)
        or value < minimum
        or (below is not None and value >= below)
    ):
        raise ConfigError(f"{field} must be {allowed}, got {value!r}")
    object.__setattr__(cfg, field, float(value))


def _exception_types(field: str, value: object) -> ExceptionTypes:
    types = value if isinstance(value, (tuple, list, frozenset, set)) else (value,)
    out: list[type[BaseException]] = []
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigError(
                f"{field} must be an exception class or a tuple of them, got {value!r}"
            )
        out.append(item)
    return tuple(out)
