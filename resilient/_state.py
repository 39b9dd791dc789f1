"""The states of a circuit breaker."""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    """The state of a circuit breaker.

    ``CLOSED``: calls pass, failures are counted.  ``OPEN``: calls are rejected
    until the recovery timeout passes.  ``HALF_OPEN``: a few trial calls decide
    between closing and reopening.  ``FORCED_OPEN``: an operator holds the
    breaker open until ``reset()``.  ``DISABLED``: shadow mode; every call
    passes, outcomes are counted, and the log says when it would have opened.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"

    def __str__(self) -> str:
        return self.value


# Public under `resilient`: tracebacks and pickles name resilient.X.
for _cls in (State,):
    _cls.__module__ = "resilient"
del _cls
