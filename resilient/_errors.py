"""Exceptions raised by resilient.

::

    Exception
     +-- ResilientError                base of everything resilient raises
          +-- CircuitOpenError         a call was rejected: the breaker is open
          +-- CallTimeoutError         a call took longer than call_timeout (also a TimeoutError)
          +-- ConfigError              a setting is invalid or conflicts (also a ValueError)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._state import State


#: How reasons for opening on counted failures start (see CircuitOpenError.__str__).
_FAILURE_REASONS = ("failure rate", "slow-call rate", "trial call failed", "failures across")


class ResilientError(Exception):
    """Base class of every exception resilient raises."""


class CircuitOpenError(ResilientError):
    """A call was rejected because its circuit breaker is open.

    Attributes:
        name: the breaker's name (one name is one protected dependency).
        retry_after: seconds until the breaker admits a trial call, or ``None``
            when an operator holds it open (``trip(hold=True)``) until ``reset()``.
        state: the breaker's state when the call was rejected.
        reason: why it is open, e.g. ``"5 consecutive failures (last: ConnectError(...))"``.
    """

    # Rejections are the open-state hot path and most are caught or answered by
    # a fallback, never printed: slots (no instance dict), and the message is
    # built on demand in __str__.
    __slots__ = ("name", "reason", "retry_after", "state")

    def __init__(
        self,
        name: str,
        retry_after: float | None,
        state: State | None = None,
        reason: str = "",
    ) -> None:
        self.name = name
        self.retry_after = retry_after
        self.state = state
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_open_error, (self.name, self.retry_after, self.state, self.reason))

    def __str__(self) -> str:
        state = self.state.value if self.state is not None else "open"
        reason = self.reason
        if state == "forced_open":
            head = f"circuit breaker {self.name!r} is held open by an operator"
            if reason.startswith("held open"):
                reason = ""
        elif state == "half_open":
            head = f"circuit breaker {self.name!r} is half-open and its trial calls are in flight"
        else:
            head = f"circuit breaker {self.name!r} is open"
        if reason:
            # Counted failures read "open after 5 consecutive failures (...)";
            # anything else (an operator's words) is quoted in parentheses.
            after = reason[:1].isdigit() or reason.startswith(_FAILURE_REASONS)
            head += f" after {reason}" if after else f" ({reason})"
        if self.retry_after is None:
            return f"{head}; it stays open until reset() (resilient reset {self.name!r})"
        return f"{head}; next trial in {self.retry_after:.1f} s"


def _rebuild_open_error(
    name: str, retry_after: float | None, state: State | None, reason: str
) -> CircuitOpenError:
    return CircuitOpenError(name, retry_after, state=state, reason=reason)


class CallTimeoutError(ResilientError, TimeoutError):
    """A protected call took longer than the breaker's ``call_timeout``.

    Async calls are cancelled when the timeout passes and this error is raised
    (and counted as a failure).  Sync calls cannot be interrupted: they run to
    the end, their result is returned, and the overrun is counted as a failure.

    Attributes:
        name: the breaker's name.
        timeout: the ``call_timeout`` that was exceeded, in seconds.
    """

    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(f"call through circuit breaker {name!r} timed out after {timeout:g} s")
        self.name = name
        self.timeout = timeout

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name, self.timeout))


class ConfigError(ResilientError, ValueError):
    """A breaker setting is invalid, or conflicts with an existing breaker's settings."""


# Public under `resilient`: tracebacks and pickles name resilient.X.
for _cls in (ResilientError, CircuitOpenError, CallTimeoutError, ConfigError):
    _cls.__module__ = "resilient"
del _cls
