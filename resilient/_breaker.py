"""CircuitBreaker: the state machine and its two drivers (sync and async).

The state machine answers "may this call go ahead?" (:meth:`CircuitBreaker._admit`)
and takes outcomes (``_record_success``, ``_record_failure``, ``_record_neutral``).
It does no I/O and never awaits; its lock guards counters and state only, never the
user's call.  ``call``/``__enter__`` and ``acall``/``__aenter__`` add the call itself,
awaiting, timeouts and cancellation.

Time is ``time.monotonic()``, looked up at call time (freezegun and time-machine
can drive it).  Counters that the healthy path bumps are ``itertools.count``
objects: ``next()`` on them is atomic under the GIL, so no update is lost and no
lock is taken.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from . import _defaults
from ._config import BreakerConfig, check_setting_names
from ._errors import CallTimeoutError, CircuitOpenError, ConfigError
from ._events import BreakerEvent, Listener, dispatch, logger
from ._state import State

if TYPE_CHECKING:
    import random

    from .stores import FleetLink, FleetVerdict, Store

R = TypeVar("R")
P = ParamSpec("P")

#: How a decorator hands its fallback to the drivers: ``(args, kwargs, error) -> value``.
Fallback = Callable[[tuple[Any, ...], dict[str, Any], BaseException], Any]

#: The call-duration hook that resilient.contrib installs: ``(seconds, outcome) -> None``,
#: outcome ``"success"``, ``"failure"`` or ``"ignored"``.  Without one, no clock is read.
Observer = Callable[[float, str], object]

#: One open ``with breaker:`` block: (token, start time, duration hook if this call is sampled).
_Block = tuple[Any, float, Observer | None]

__all__ = ["BreakerMetrics", "CircuitBreaker"]

_CLOSED = State.CLOSED
_OPEN = State.OPEN
_HALF_OPEN = State.HALF_OPEN
_FORCED_OPEN = State.FORCED_OPEN
_DISABLED = State.DISABLED

_ERROR_REPR_LIMIT = 200

#: A closed-state token that matches no epoch: a failure the fleet took charge of
#: is counted in the metrics, not toward this process's own opening.
_STALE = -1

# How restrictive a state is, to combine a process's state with its fleet's.
_RANK = {_DISABLED: 0, _CLOSED: 1, _HALF_OPEN: 2, _OPEN: 3, _FORCED_OPEN: 4}


def _count_value(counter: itertools.count[int]) -> int:
    # itertools.count has no public read; its repr is "count(N)" on every version.
    return int(repr(counter)[6:-1])


def _short_repr(exc: BaseException) -> str:
    text = repr(exc)
    if len(text) > _ERROR_REPR_LIMIT:
        text = text[: _ERROR_REPR_LIMIT - 3] + "..."
    return text


class _Lease:
    """A half-open trial permit.  It expires at ``deadline`` (half_open_max_wait)."""

    __slots__ = ("active", "deadline", "epoch")

    def __init__(self, epoch: int, deadline: float) -> None:
        self.epoch = epoch
        self.deadline = deadline
        self.active = True


class _Ticket:
    """An admission with a shared store: the local token plus the fleet's lease."""

    __slots__ = ("fleet_lease", "local")

    def __init__(self, local: int | _Lease, fleet_lease: str | None) -> None:
        self.local = local
        self.fleet_lease = fleet_lease


class _TimedOut(Exception):
    """Raised inside the async driver when call_timeout expires (private)."""


class _CountWindow:
    """Outcomes of the last ``size`` calls, with running totals."""

    __slots__ = ("_items", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: deque[int] = deque()
        self.failures = 0
        self.slow = 0

    def add(self, failed: bool, slow: bool, now: float) -> None:
        code = (1 if failed else 0) | (2 if slow else 0)
        self._items.append(code)
        self.failures += code & 1
        self.slow += code >> 1
        if len(self._items) > self.size:
            old = self._items.popleft()
            self.failures -= old & 1
            self.slow -= old >> 1

    def totals(self, now: float) -> tuple[int, int, int]:
        return len(self._items), self.failures, self.slow

    def clear(self) -> None:
        self._items.clear()
        self.failures = self.slow = 0

    def describe(self) -> str:
        return f"the last {len(self._items)} calls"


class _TimeWindow:
    """Outcomes of the last ``seconds`` seconds, in one-second buckets."""

    __slots__ = ("_buckets", "calls", "failures", "seconds", "slow")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._buckets: deque[list[int]] = deque()  # [second, calls, failures, slow]
        self.calls = self.failures = self.slow = 0

    def _evict(self, now: float) -> None:
        horizon = int(now - self.seconds)
        buckets = self._buckets
        while buckets and buckets[0][0] <= horizon:
            _, calls, failures, slow = buckets.popleft()
            self.calls -= calls
            self.failures -= failures
            self.slow -= slow

    def add(self, failed: bool, slow: bool, now: float) -> None:
        self._evict(now)
        second = int(now)
        buckets = self._buckets
        if not buckets or buckets[-1][0] != second:
            buckets.append([second, 0, 0, 0])
        bucket = buckets[-1]
        bucket[1] += 1
        self.calls += 1
        if failed:
            bucket[2] += 1
            self.failures += 1
        if slow:
            bucket[3] += 1
            self.slow += 1

    def totals(self, now: float) -> tuple[int, int, int]:
        self._evict(now)
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        self._buckets.clear()
        self.calls = self.failures = self.slow = 0

    def describe(self) -> str:
        return f"the last {self.seconds:g} s"


@dataclasses.dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A snapshot of one breaker, as returned by :meth:`CircuitBreaker.metrics`.

    Counts run since the breaker was created or last ``reset()``.  ``calls`` counts
    calls that ran (successes, failures and ignored outcomes); ``rejections`` the
    calls refused while open; ``fallbacks`` the times a fallback answered.
    ``opened_at`` is ``time.monotonic()`` when it last opened; ``retry_after`` is
    seconds until the next trial call (``None`` unless open).
    """

    name: str
    state: State
    consecutive_failures: int
    calls: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    fallbacks: int
    timeouts: int
    slow_calls: int
    failure_rate: float
    opened_at: float | None
    retry_after: float | None
    last_error: str | None
    half_open_in_flight: int
    fleet_state: State | None = None

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-serialisable dict (states as their string values)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["state"] = self.state.value
        out["fleet_state"] = self.fleet_state.value if self.fleet_state is not None else None
        return out


class CircuitBreaker:
    """A circuit breaker protecting one dependency.

    Use it through :func:`resilient.circuit_breaker` or :func:`resilient.get_breaker`,
    or directly: ``breaker.call(fn, *args)``, ``await breaker.acall(fn, *args)``,
    ``with breaker:`` and ``async with breaker:``.

    Args:
        name: the breaker's name; one name is one protected dependency.
        config: a :class:`BreakerConfig`; settings given as keywords are applied on
            top of it.
        store: where state lives; default: the store given to
            :func:`resilient.configure`, else in-process memory.
        **settings: any :class:`BreakerConfig` field, e.g. ``failure_threshold=5``.

    Settings that are not given explicitly come from :func:`resilient.configure`,
    read when the breaker handles its first call, so ``configure()`` at start-up
    applies even to breakers declared (decorated) at import time.

    Raises:
        ConfigError: a setting is unknown or invalid.
    """

    __slots__ = (
        "__weakref__",
        "_base_config",
        "_cm_stack",
        "_config",
        "_consecutive",
        "_epoch",
        "_explicit_store",
        "_fast",
        "_fleet",
        "_fleet_ok",
        "_jitter_random",
        "_last_error",
        "_leases",
        "_listeners",
        "_lock",
        "_n_failures",
        "_n_fallbacks",
        "_n_ignored",
        "_n_rejected",
        "_n_slow",
        "_n_successes",
        "_n_timeouts",
        "_observe_fast",
        "_observe_sample",
        "_observer",
        "_open_reason",
        "_opened_at",
        "_recovery",
        "_retry_at",
        "_seal_lock",
        "_sealed",
        "_sealing",
        "_settings",
        "_shadow_warned_at",
        "_state",
        "_store",
        "_timed",
        "_trial_successes",
        "_window",
        "name",
    )

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        store: Store | None = None,
        **settings: Any,
    ) -> None:
        given: object = name
        if not isinstance(given, str) or not given:
            raise ConfigError(f"a breaker name must be a non-empty string, got {name!r}")
        if config is not None and not isinstance(config, BreakerConfig):
            raise ConfigError(f"config must be a BreakerConfig, got {config!r}")
        check_setting_names(settings)
        # Validate now, so a bad value fails where it is written, not at first call.
        BreakerConfig.from_mapping(settings, base=config)
        self.name = name
        self._base_config = config
        self._settings = dict(settings)
        self._explicit_store = store
        self._lock = threading.Lock()
        self._listeners: tuple[Listener, ...] = ()
        self._cm_stack: contextvars.ContextVar[tuple[_Block, ...]] | None = None
        self._jitter_random: random.Random | None = None
        self._sealed = False
        # Held through the whole seal, store.attach() included, so no call runs
        # without the fleet link; re-entrant because attach() may read .config.
        self._seal_lock = threading.RLock()
        self._sealing = False
        self._fleet: FleetLink | None = None
        self._fleet_ok = False  # a store link says the fleet lets the fast path run
        self._store: Store | None = None
        self._config = BreakerConfig.from_mapping(settings, base=config)
        self._timed = False
        self._window: _CountWindow | _TimeWindow | None = None
        self._state = _CLOSED
        self._epoch = 0
        self._fast = False  # becomes True once sealed (first use) while CLOSED
        # Duration hook (resilient.contrib): _observe_fast is the observer when the
        # healthy path would be _fast; _observe_sample says which calls are timed.
        self._observer: Observer | None = None
        self._observe_fast: Observer | None = None
        self._observe_sample: Iterator[bool] = itertools.cycle((True,))
        self._leases: list[_Lease] = []
        self._trial_successes = 0
        self._open_reason = ""
        self._opened_at: float | None = None
        self._retry_at = 0.0
        self._shadow_warned_at: float | None = None
        self._clear_counters()
        self._consecutive = 0
        self._last_error: str | None = None
        self._recovery = self._config.recovery_timeout

    # -- set-up ---------------------------------------------------------------

    def _clear_counters(self) -> None:
        self._n_successes = itertools.count()
        self._n_rejected = itertools.count()
        self._n_fallbacks = itertools.count()
        self._n_ignored = itertools.count()
        self._n_failures = 0
        self._n_timeouts = 0
        self._n_slow = 0

    def _seal(self) -> None:
        """Resolve defaults and attach the store; runs once, at first use."""
        with self._seal_lock:
            if self._sealed or self._sealing:
                return  # done, or attach() reading .config while sealing
            self._sealing = True
            try:
                self._seal_once()
            finally:
                self._sealing = False

    def _seal_once(self) -> None:
        fleet: FleetLink | None = None
        with self._lock:
            if self._base_config is not None:
                cfg = BreakerConfig.from_mapping(self._settings, base=self._base_config)
            else:
                cfg, dropped = _defaults.resolve(self._settings)
                if dropped:
                    logger.warning(
                        "circuit breaker '%s': configure() defaults %s contradict its own "
                        "settings (%s); its own settings win",
                        self.name,
                        ", ".join(dropped),
                        ", ".join(f"{k}={v!r}" for k, v in sorted(self._settings.items())),
                        extra={"resilient.breaker": self.name},
                    )
            store = self._explicit_store if self._explicit_store is not None else _defaults.store()
            self._apply_config(cfg)
            self._store = store
        if store is not None:
            try:
                fleet = store.attach(self)
            except Exception as exc:
                logger.warning(
                    "circuit breaker '%s': store %r could not attach (%r); "
                    "going on with in-process state",
                    self.name,
                    store,
                    exc,
                )
                fleet = None
        with self._lock:
            self._fleet = fleet
            self._sealed = True
            self._refresh_fast()

    def _apply_config(self, cfg: BreakerConfig) -> None:
        self._config = cfg
        self._recovery = cfg.recovery_timeout
        self._timed = cfg.call_timeout is not None or cfg.slow_call_duration is not None
        if cfg.uses_window:
            size = cfg.effective_window_size
            self._window = (
                _CountWindow(size) if size is not None else _TimeWindow(cfg.window_seconds or 1.0)
            )
        else:
            self._window = None

    def _refresh_fast(self) -> None:
        # The decorator's inlined healthy path may run only when nothing but a
        # success counter and the consecutive-failure reset are needed.
        cfg = self._config
        healthy = (
            self._sealed
            and self._state is _CLOSED
            and (self._fleet is None or self._fleet_ok)
            and self._window is None
            and not self._timed
            and cfg.is_failure_result is None
        )
        observer = self._observer
        self._fast = healthy and observer is None
        self._observe_fast = observer if healthy else None

    def _set_fleet_ok(self, *, ok: bool) -> None:
        """Called by a store link: whether the fleet, as last seen, needs to hear of
        healthy calls.  While it is closed with no failures recorded (``ok``), the
        decorator's fast path may run; a failure on it still reaches the fleet
        (see :meth:`_fleet_fast_failure`)."""
        with self._lock:
            self._fleet_ok = ok
            self._refresh_fast()

    def _set_observer(self, observer: Observer | None, every: int = 1) -> None:
        """Install (``None``: remove) the call-duration hook of ``resilient.contrib``.

        ``observer(seconds, outcome)`` then runs after one call in ``every`` that
        ran (outcome ``"success"``, ``"failure"`` or ``"ignored"``).
        """
        sample = itertools.cycle((False,) * (every - 1) + (True,))
        with self._lock:
            self._observer = observer
            self._observe_sample = sample
            self._refresh_fast()

    @property
    def config(self) -> BreakerConfig:
        """The breaker's settings (defaults from ``configure()`` resolved)."""
        if not self._sealed:
            self._seal()
        return self._config

    @property
    def store(self) -> Store | None:
        """The store this breaker uses (``None``: in-process memory)."""
        if not self._sealed:
            self._seal()
        return self._store

    def _matches(self, settings: dict[str, Any], store: Store | None) -> bool:
        """Whether a request for this name with these settings describes this breaker."""
        if store is not None and store is not self._explicit_store:
            return False
        if not settings:
            return True
        base = self._base_config or BreakerConfig()
        return BreakerConfig.from_mapping(settings, base=base) == BreakerConfig.from_mapping(
            self._settings, base=base
        )

    def _describe_settings(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(self._settings.items()))
        return f"get_breaker({self.name!r}{', ' if inner else ''}{inner})"

    # -- state ------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state.

        Time-aware: an OPEN breaker whose recovery timeout has passed reads
        HALF_OPEN.  With a shared store, the fleet's state is shown when it is
        more restrictive than this process's own.
        """
        local = self._state
        if local is _OPEN and time.monotonic() >= self._retry_at:
            local = _HALF_OPEN
        fleet = self._fleet
        if fleet is None or local is _DISABLED:
            return local
        seen = fleet.fleet_state()
        if seen is None:
            return local
        remote, retry_after = seen
        if remote is _OPEN and retry_after is not None and retry_after <= 0:
            remote = _HALF_OPEN
        return remote if _RANK[remote] > _RANK[local] else local

    @property
    def is_open(self) -> bool:
        """True when calls are being rejected (OPEN or FORCED_OPEN)."""
        return self.state in (_OPEN, _FORCED_OPEN)

    @property
    def is_closed(self) -> bool:
        """True when calls pass normally (CLOSED)."""
        return self.state is _CLOSED

    @property
    def is_half_open(self) -> bool:
        """True when trial calls decide between closing and reopening."""
        return self.state is _HALF_OPEN

    def __repr__(self) -> str:
        cfg = self._config
        return (
            f"<CircuitBreaker {self.name!r} state={self.state.value} "
            f"failures={self._consecutive}/{cfg.failure_threshold} "
            f"recovery_timeout={cfg.recovery_timeout:g}s>"
        )

    # -- listeners --------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` with a :class:`BreakerEvent` on each transition."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {listener!r}")
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def _emit(self, events: list[BreakerEvent]) -> None:
        listeners = self._listeners
        for event in events:
            dispatch(event, listeners)

    def _event(
        self, old: State, new: State, reason: str, now: float, source: str = "local"
    ) -> BreakerEvent:
        return BreakerEvent(
            name=self.name,
            old_state=old,
            new_state=new,
            reason=reason,
            time=now,
            failures=self._consecutive,
            last_error=self._last_error,
            source=source,
        )

    # -- transitions (caller holds self._lock) ------------------------------------

    def _retry_delay(self) -> float:
        delay = self._recovery
        jitter = self._config.jitter
        if jitter:
            rng = self._jitter_random
            if rng is None:
                import random

                rng = self._jitter_random = random.Random()
            delay *= 1.0 + rng.uniform(-jitter, jitter)
        return delay

    def _drop_leases(self) -> None:
        for lease in self._leases:
            lease.active = False
        self._leases = []

    def _to_open(self, now: float, reason: str) -> BreakerEvent:
        old = self._state
        self._state = _OPEN
        self._epoch += 1
        self._opened_at = now
        self._retry_at = now + self._retry_delay()
        self._open_reason = reason
        self._drop_leases()
        self._trial_successes = 0
        self._fast = False
        self._observe_fast = None
        return self._event(old, _OPEN, reason, now)

    def _to_half_open(self, now: float) -> BreakerEvent:
        old = self._state
        self._state = _HALF_OPEN
        self._epoch += 1
        self._drop_leases()
        self._trial_successes = 0
        self._fast = False
        self._observe_fast = None
        waited = now - self._opened_at if self._opened_at is not None else 0.0
        return self._event(old, _HALF_OPEN, f"recovery timeout passed after {waited:.1f} s", now)

    def _to_closed(self, now: float, reason: str) -> BreakerEvent:
        old = self._state
        self._state = _CLOSED
        self._epoch += 1
        self._consecutive = 0
        self._drop_leases()
        self._trial_successes = 0
        self._recovery = self._config.recovery_timeout
        self._opened_at = None
        self._open_reason = ""
        if self._window is not None:
            self._window.clear()
        self._refresh_fast()
        return self._event(old, _CLOSED, reason, now)

    # -- admission ----------------------------------------------------------------

    def _admit(self) -> int | _Lease | _Ticket:
        """Admit a call (returning its token) or count a rejection and raise
        :class:`CircuitOpenError`.  Sync callers only (the fleet check may block
        for at most the store's own timeout)."""
        if not self._sealed:
            self._seal()
        token = self._admit_local()
        fleet = self._fleet
        if fleet is None:
            return token
        return self._fleet_verdict(token, fleet.admit())

    async def _aadmit(self) -> int | _Lease | _Ticket:
        """Async twin of :meth:`_admit`."""
        if not self._sealed:
            self._seal()
        token = self._admit_local()
        fleet = self._fleet
        if fleet is None:
            return token
        return self._fleet_verdict(token, await fleet.aadmit())

    def _fleet_verdict(
        self, token: int | _Lease, verdict: FleetVerdict | None
    ) -> int | _Lease | _Ticket:
        if verdict is None or verdict.allowed:
            return _Ticket(token, verdict.lease if verdict is not None else None)
        self._record_neutral(token, count=False)
        next(self._n_rejected)
        raise CircuitOpenError(
            self.name,
            verdict.retry_after,
            verdict.state,
            verdict.reason or "failures across the fleet",
        )

    def _admit_local(self) -> int | _Lease:
        state = self._state
        if state is _CLOSED or state is _DISABLED:
            return self._epoch
        if state is _FORCED_OPEN:
            next(self._n_rejected)
            raise CircuitOpenError(self.name, None, _FORCED_OPEN, self._open_reason)
        now = time.monotonic()
        if state is _OPEN and now < self._retry_at:
            # Lock-free rejection: the common open-state path.  A stale read can
            # only reject a call that the locked path below would have admitted
            # a moment later; it can never admit one that should be rejected.
            next(self._n_rejected)
            raise CircuitOpenError(self.name, self._retry_at - now, _OPEN, self._open_reason)
        events: list[BreakerEvent] = []
        try:
            with self._lock:
                state = self._state
                if state is _OPEN:
                    if now < self._retry_at:
                        next(self._n_rejected)
                        raise CircuitOpenError(
                            self.name, self._retry_at - now, _OPEN, self._open_reason
                        )
                    events.append(self._to_half_open(now))
                    state = _HALF_OPEN
                if state is _HALF_OPEN:
                    leases = self._leases
                    limit = self._config.half_open_max_calls
                    if len(leases) >= limit:
                        self._expire_leases(now)
                        leases = self._leases
                    if len(leases) < limit:
                        lease = _Lease(self._epoch, now + self._config.effective_half_open_max_wait)
                        leases.append(lease)
                        return lease
                    next(self._n_rejected)
                    wait = max(0.0, min(lease.deadline for lease in leases) - now)
                    raise CircuitOpenError(self.name, wait, _HALF_OPEN, self._open_reason)
                if state is _FORCED_OPEN:
                    next(self._n_rejected)
                    raise CircuitOpenError(self.name, None, _FORCED_OPEN, self._open_reason)
                return self._epoch
        finally:
            if events:
                self._emit(events)

    def _expire_leases(self, now: float) -> None:
        kept = []
        for lease in self._leases:
            if lease.deadline <= now:
                lease.active = False
                logger.warning(
                    "circuit breaker '%s': a half-open trial call held its permit past "
                    "half_open_max_wait (%g s); the permit goes to the next caller",
                    self.name,
                    self._config.effective_half_open_max_wait,
                    extra={"resilient.breaker": self.name},
                )
            else:
                kept.append(lease)
        self._leases = kept

    # -- outcomes -----------------------------------------------------------------

    def _is_counted(self, exc: BaseException) -> bool:
        """Whether an exception counts as a dependency failure (rule 2)."""
        if not isinstance(exc, Exception):
            return False  # cancellation, exit, keyboard interrupt: neutral
        cfg = self._config
        if cfg.ignore and isinstance(exc, cfg.ignore):
            return False
        if cfg.is_failure is not None:
            try:
                return bool(cfg.is_failure(exc))
            except Exception:
                logger.exception(
                    "circuit breaker '%s': is_failure(%r) raised; counting it as a failure",
                    self.name,
                    exc,
                )
                return True
        return isinstance(exc, cfg.failure_on)

    def _record_exception(
        self, token: int | _Lease | _Ticket, exc: BaseException, duration: float = 0.0
    ) -> bool:
        """Record a call that raised; returns True when it counted as a failure."""
        if self._is_counted(exc):
            fleet = self._fleet
            if fleet is not None and type(token) is int:
                # The decorator's fast path ran (it passes the bare epoch).
                self._fleet_fast_failure(fleet, token, _short_repr(exc), duration)
            else:
                self._record_failure(token, _short_repr(exc), duration)
            return True
        self._record_neutral(token)
        return False

    def _record_success(self, token: int | _Lease | _Ticket, duration: float = 0.0) -> None:
        if type(token) is _Ticket:
            self._fleet_record("success", token, None)
            token = token.local
        next(self._n_successes)
        if isinstance(token, _Lease):
            self._trial_result(token, True, duration)  # noqa: FBT003
            return
        window = self._window
        if not self._consecutive and window is None and not self._timed:
            return
        slow = self._is_slow(duration)
        events: list[BreakerEvent] = []
        with self._lock:
            if slow:
                self._n_slow += 1
            if token != self._epoch:
                return
            self._consecutive = 0
            if window is not None:
                now = time.monotonic()
                window.add(False, slow, now)  # noqa: FBT003
                self._check_window(now, events)
        if events:
            self._emit(events)

    def _record_failure(
        self,
        token: int | _Lease | _Ticket,
        error: str,
        duration: float = 0.0,
        *,
        timeout: bool = False,
    ) -> None:
        if type(token) is _Ticket:
            took = self._fleet_record("failure", token, error)
            token = token.local
            if took and type(token) is int:
                token = _STALE  # the fleet is open: counted, but not toward a local opening
        events: list[BreakerEvent] = []
        with self._lock:
            self._n_failures += 1
            if timeout:
                self._n_timeouts += 1
            slow = self._is_slow(duration)
            if slow:
                self._n_slow += 1
            self._last_error = error
            if type(token) is _Lease:
                self._trial_failed(token, error, events)
            elif token == self._epoch:
                state = self._state
                if state is _CLOSED or state is _DISABLED:
                    self._consecutive += 1
                    now = time.monotonic()
                    if self._consecutive >= self._config.failure_threshold:
                        self._trip_on(
                            now,
                            f"{self._consecutive} consecutive failures (last: {error})",
                            events,
                        )
                    elif self._window is not None:
                        self._window.add(True, slow, now)  # noqa: FBT003
                        self._check_window(now, events)
        if events:
            self._emit(events)

    def _record_neutral(self, token: int | _Lease | _Ticket, *, count: bool = True) -> None:
        """An outcome that is neither success nor failure: give back any permit."""
        if type(token) is _Ticket:
            self._fleet_record("neutral", token, None)
            token = token.local
        if count:
            next(self._n_ignored)
        if type(token) is _Lease:
            with self._lock:
                if token.active:
                    token.active = False
                    self._leases.remove(token)

    def _trial_result(self, lease: _Lease, success: bool, duration: float) -> None:
        events: list[BreakerEvent] = []
        with self._lock:
            if not lease.active:
                return  # expired or superseded: this trial no longer decides anything
            lease.active = False
            self._leases.remove(lease)
            if lease.epoch != self._epoch or self._state is not _HALF_OPEN:
                return
            if success:
                if self._is_slow(duration):
                    self._n_slow += 1
                self._trial_successes += 1
                if self._trial_successes >= self._config.success_threshold:
                    events.append(
                        self._to_closed(
                            time.monotonic(),
                            f"{self._trial_successes} successful trial call"
                            f"{'s' if self._trial_successes != 1 else ''}",
                        )
                    )
        if events:
            self._emit(events)

    def _trial_failed(self, lease: _Lease, error: str, events: list[BreakerEvent]) -> None:
        if not lease.active:
            return
        lease.active = False
        self._leases.remove(lease)
        if lease.epoch != self._epoch or self._state is not _HALF_OPEN:
            return
        cfg = self._config
        backoff = self._recovery * cfg.recovery_backoff
        if cfg.max_recovery_timeout is not None:
            backoff = min(backoff, cfg.max_recovery_timeout)
        self._recovery = backoff
        events.append(self._to_open(time.monotonic(), f"trial call failed (last: {error})"))

    def _clear_consecutive(self, epoch: int) -> None:
        """A success on the decorator's fast path after earlier failures."""
        with self._lock:
            if epoch == self._epoch:
                self._consecutive = 0

    def _is_slow(self, duration: float) -> bool:
        threshold = self._config.slow_call_duration
        return threshold is not None and duration >= threshold

    def _check_window(self, now: float, events: list[BreakerEvent]) -> None:
        window = self._window
        if window is None:
            return
        cfg = self._config
        calls, failures, slow = window.totals(now)
        if calls < cfg.effective_minimum_calls:
            return
        reason = None
        rate = cfg.failure_rate_threshold
        if rate is not None and failures / calls >= rate:
            reason = (
                f"failure rate {failures / calls:.0%} over {window.describe()} "
                f"(threshold {rate:.0%}; last: {self._last_error})"
            )
        slow_rate = cfg.slow_call_rate_threshold
        if reason is None and slow_rate is not None and slow / calls >= slow_rate:
            reason = (
                f"slow-call rate {slow / calls:.0%} over {window.describe()} "
                f"(calls >= {cfg.slow_call_duration:g} s; threshold {slow_rate:.0%})"
            )
        if reason is not None:
            self._trip_on(now, reason, events)

    def _trip_on(self, now: float, reason: str, events: list[BreakerEvent]) -> None:
        """Open because of counted failures, or in DISABLED mode log that it would have."""
        if self._state is _DISABLED:
            last = self._shadow_warned_at
            if last is None or now - last >= self._config.recovery_timeout:
                self._shadow_warned_at = now
                logger.warning(
                    "circuit breaker '%s': disabled; it would have opened (%s)",
                    self.name,
                    reason,
                    extra={"resilient.breaker": self.name, "resilient.reason": reason},
                )
            self._consecutive = 0
            if self._window is not None:
                self._window.clear()
            return
        events.append(self._to_open(now, reason))

    def _fleet_record(self, outcome: str, ticket: _Ticket, error: str | None) -> bool:
        """Tell the fleet; True when it took charge of a failure (it is open)."""
        fleet = self._fleet
        if fleet is None:
            return False
        try:
            return bool(fleet.record(outcome, ticket.fleet_lease, error))  # type: ignore[arg-type]
        except Exception:  # a store must never raise into the caller
            logger.debug("circuit breaker '%s': store record failed", self.name, exc_info=True)
            return False

    def _fleet_fast_failure(
        self, fleet: FleetLink, epoch: int, error: str, duration: float
    ) -> None:
        """A failure on the decorator's fast path while a shared store is attached.

        The fleet hears of it before this process counts it (it may take charge of
        it, see :meth:`_record_failure`), and healthy calls stop skipping the store
        until it says so again.  A sync caller reports from its own thread; on an
        event loop the store runs the report (and the count) in a worker thread.
        """
        with self._lock:
            self._fleet_ok = False
            self._fast = False
            self._observe_fast = None
        ticket = _Ticket(epoch, None)

        def report() -> None:
            self._record_failure(ticket, error, duration)

        try:
            deferred = bool(fleet.offload(report))
        except Exception:
            deferred = False
        if not deferred:
            report()

    # -- operator controls -----------------------------------------------------------

    def trip(self, *, hold: bool = False, reason: str | None = None) -> None:
        """Open the breaker now.

        Args:
            hold: keep it FORCED_OPEN until :meth:`reset` (no recovery trials).
            reason: words for the log line and the rejection message.
        """
        if not self._sealed:
            self._seal()
        target = _FORCED_OPEN if hold else _OPEN
        why = reason or ("held open by an operator" if hold else "tripped by an operator")
        events: list[BreakerEvent] = []
        with self._lock:
            now = time.monotonic()
            if hold:
                old = self._state
                self._state = _FORCED_OPEN
                self._epoch += 1
                self._open_reason = why
                self._opened_at = now
                self._drop_leases()
                self._fast = False
                self._observe_fast = None
                events.append(self._event(old, _FORCED_OPEN, why, now))
            else:
                events.append(self._to_open(now, why))
        self._emit(events)
        self._fleet_command(target, why)

    def reset(self) -> None:
        """Close the breaker and clear its counters and metrics."""
        if not self._sealed:
            self._seal()
        # With a shared store the breaker may read open because the fleet is.
        shown = self.state if self._fleet is not None else _CLOSED
        self._emit(self._reset_local("reset by an operator", shown, "local"))
        self._fleet_command(_CLOSED, "reset by an operator")

    def _reset_local(self, reason: str, shown: State, source: str) -> list[BreakerEvent]:
        with self._lock:
            old = self._state
            now = time.monotonic()
            self._clear_counters()
            self._last_error = None
            self._shadow_warned_at = None
            self._to_closed(now, reason)
            if old is not _CLOSED:
                shown = old
            if shown is _CLOSED:
                return []
            return [self._event(shown, _CLOSED, reason, now, source=source)]

    def disable(self) -> None:
        """Shadow mode: every call passes, outcomes are still counted, and the log
        says when the breaker *would* have opened.  :meth:`reset` ends it."""
        if not self._sealed:
            self._seal()
        self._emit(self._disable_local("disabled by an operator (shadow mode)", "local"))
        self._fleet_command(_DISABLED, "disabled by an operator")

    def _disable_local(self, reason: str, source: str) -> list[BreakerEvent]:
        with self._lock:
            old = self._state
            now = time.monotonic()
            self._state = _DISABLED
            self._epoch += 1
            self._consecutive = 0
            self._drop_leases()
            if self._window is not None:
                self._window.clear()
            self._fast = False
            self._observe_fast = None
            if old is _DISABLED:
                return []
            return [self._event(old, _DISABLED, reason, now, source=source)]

    def _fleet_command(self, state: State, reason: str) -> None:
        fleet = self._fleet
        if fleet is None:
            return
        try:
            fleet.command(state, reason)
        except Exception:
            logger.debug("circuit breaker '%s': store command failed", self.name, exc_info=True)

    def _apply_fleet_transition(self, old: State, new: State, reason: str) -> None:
        """Called by a store link when this process won a fleet-wide transition:
        log it and tell listeners, once for the whole fleet."""
        self._emit([self._event(old, new, reason, time.monotonic(), source="store")])

    def _follow_fleet(self, new: State, reason: str) -> None:
        """Called by a store link when an operator reset (CLOSED) or disabled
        (DISABLED) the breaker fleet-wide from elsewhere: this process's own state
        machine follows, as if ``reset()``/``disable()`` had been called here (an
        event, source "store", only if this process's state changed)."""
        if new is _CLOSED:
            self._emit(self._reset_local(reason, _CLOSED, "store"))
        elif new is _DISABLED:
            self._emit(self._disable_local(reason, "store"))

    # -- metrics ------------------------------------------------------------------

    def metrics(self) -> BreakerMetrics:
        """A snapshot of the breaker's state and counters (see :class:`BreakerMetrics`)."""
        with self._lock:
            now = time.monotonic()
            successes = _count_value(self._n_successes)
            ignored = _count_value(self._n_ignored)
            failures = self._n_failures
            window = self._window
            if window is not None:
                w_calls, w_failures, _ = window.totals(now)
                rate = w_failures / w_calls if w_calls else 0.0
            else:
                counted = successes + failures
                rate = failures / counted if counted else 0.0
            state = self.state
            retry_after: float | None = None
            if self._state is _OPEN:
                retry_after = max(0.0, self._retry_at - now)
            fleet_state = None
            if self._fleet is not None:
                seen = self._fleet.fleet_state()
                if seen is not None:
                    fleet_state = seen[0]
                    if retry_after is None and seen[1] is not None:
                        retry_after = max(0.0, seen[1])
            return BreakerMetrics(
                name=self.name,
                state=state,
                consecutive_failures=self._consecutive,
                calls=successes + failures + ignored,
                successes=successes,
                failures=failures,
                ignored=ignored,
                rejections=_count_value(self._n_rejected),
                fallbacks=_count_value(self._n_fallbacks),
                timeouts=self._n_timeouts,
                slow_calls=self._n_slow,
                failure_rate=rate,
                opened_at=self._opened_at if self._state is not _CLOSED else None,
                retry_after=retry_after,
                last_error=self._last_error,
                half_open_in_flight=len(self._leases),
                fleet_state=fleet_state,
            )

    # -- sync driver ------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: the breaker is open; ``fn`` was not called.
            Exception: whatever ``fn`` raised (counted or not, it propagates).
        """
        return self._call_sync(fn, args, kwargs, None)

    def _call_sync(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Fallback | None,
    ) -> R:
        if fallback is None:
            token = self._admit()
        else:
            try:
                token = self._admit()
            except CircuitOpenError as err:
                return self._run_fallback(fallback, args, kwargs, err)  # type: ignore[no-any-return]
        observer = self._observer
        if observer is not None and not next(self._observe_sample):
            observer = None  # not one of the calls the duration hook samples
        timed = self._timed or observer is not None
        start = time.monotonic() if timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            duration = time.monotonic() - start if timed else 0.0
            counted = self._record_exception(token, exc, duration)
            if observer is not None:
                observer(duration, "failure" if counted else "ignored")
            if not counted or fallback is None:
                raise
            return self._run_fallback(fallback, args, kwargs, exc)  # type: ignore[no-any-return]
        duration = time.monotonic() - start if timed else 0.0
        succeeded = self._record_result(token, result, duration)
        if observer is not None:
            observer(duration, "success" if succeeded else "failure")
        return result

    def _result_failure(
        self, result: object, duration: float, *, sync: bool
    ) -> tuple[str | None, bool]:
        """Classify a returned value: ``(error, is_timeout)``, error ``None`` on success.

        A sync call cannot be interrupted, so one that overran ``call_timeout``
        returns its result and counts as a timeout failure.
        """
        cfg = self._config
        if sync and cfg.call_timeout is not None and duration > cfg.call_timeout:
            return _short_repr(CallTimeoutError(self.name, cfg.call_timeout)), True
        check = cfg.is_failure_result
        if check is not None:
            try:
                failed = bool(check(result))
            except Exception:
                logger.exception(
                    "circuit breaker '%s': is_failure_result raised; counting a failure",
                    self.name,
                )
                failed = True
            if failed:
                return f"failure result: {_short_repr_value(result)}", False
        return None, False

    def _record_result(
        self, token: int | _Lease | _Ticket, result: object, duration: float, *, sync: bool = True
    ) -> bool:
        """Record a call that returned; returns True when it counted as a success."""
        error, timeout = self._result_failure(result, duration, sync=sync)
        return self._record_outcome(token, error, timeout, duration)

    def _record_outcome(
        self, token: int | _Lease | _Ticket, error: str | None, timeout: bool, duration: float
    ) -> bool:
        """Record a classified result (``error`` None: success); True on success."""
        if error is None:
            self._record_success(token, duration)
        else:
            self._record_failure(token, error, duration, timeout=timeout)
        return error is None

    def _run_fallback(
        self,
        fallback: Fallback,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: BaseException,
    ) -> Any:
        """Answer a rejected or failed call with the fallback (rule 3)."""
        next(self._n_fallbacks)
        try:
            return fallback(args, kwargs, error)
        except BaseException as fb_exc:
            if fb_exc is not error and fb_exc.__cause__ is None:
                fb_exc.__cause__ = error
            raise

    def __enter__(self) -> CircuitBreaker:
        token = self._admit()
        self._push(token)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, start, observer = self._pop()
        duration = time.monotonic() - start if self._timed or observer is not None else 0.0
        if exc is None:
            succeeded = self._record_result(token, None, duration, sync=True)
            outcome = "success" if succeeded else "failure"
        else:
            outcome = "failure" if self._record_exception(token, exc, duration) else "ignored"
        if observer is not None:
            observer(duration, outcome)

    def _push(self, token: Any) -> None:
        stack = self._cm_stack
        if stack is None:
            with self._lock:
                if self._cm_stack is None:
                    self._cm_stack = contextvars.ContextVar(
                        f"resilient.{self.name}.blocks", default=()
                    )
                stack = self._cm_stack
        observer = self._observer
        if observer is not None and not next(self._observe_sample):
            observer = None  # not one of the calls the duration hook samples
        start = time.monotonic() if self._timed or observer is not None else 0.0
        stack.set((*stack.get(), (token, start, observer)))

    def _pop(self) -> _Block:
        stack = self._cm_stack
        entries = stack.get() if stack is not None else ()
        if not entries or stack is None:
            raise RuntimeError(
                f"circuit breaker {self.name!r}: __exit__ without a matching __enter__"
            )
        stack.set(entries[:-1])
        return entries[-1]

    # -- async driver -------------------------------------------------------------------

    @overload
    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...
    @overload
    async def acall(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...
    async def acall(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` through the breaker and await it if needed.

        ``fn`` may be a coroutine function or a plain function.  With
        ``call_timeout`` set, the call is cancelled when it runs out of time and
        :class:`CallTimeoutError` is raised (and counted as a failure).

        Raises:
            CircuitOpenError: the breaker is open; ``fn`` was not called.
            CallTimeoutError: the call took longer than ``call_timeout``.
            Exception: whatever ``fn`` raised.
        """
        return await self._call_async(fn, args, kwargs, None)

    async def _call_async(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Fallback | None,
    ) -> Any:
        if fallback is None:
            token = await self._aadmit()
        else:
            try:
                token = await self._aadmit()
            except CircuitOpenError as err:
                return await self._arun_fallback(fallback, args, kwargs, err)
        observer = self._observer
        if observer is not None and not next(self._observe_sample):
            observer = None  # not one of the calls the duration hook samples
        timed = self._timed or observer is not None
        start = time.monotonic() if timed else 0.0
        timeout = self._config.call_timeout
        try:
            if timeout is None:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
            else:
                result = await _with_timeout(timeout, fn, args, kwargs)
        except _TimedOut:
            duration = time.monotonic() - start
            expired = CallTimeoutError(self.name, timeout or 0.0)
            await self._arecord_failure(token, _short_repr(expired), duration, timeout=True)
            if observer is not None:
                observer(duration, "failure")
            if fallback is None:
                raise expired from None
            return await self._arun_fallback(fallback, args, kwargs, expired)
        except BaseException as exc:
            duration = time.monotonic() - start if timed else 0.0
            counted = await self._arecord_exception(token, exc, duration)
            if observer is not None:
                observer(duration, "failure" if counted else "ignored")
            if not counted or fallback is None:
                raise
            return await self._arun_fallback(fallback, args, kwargs, exc)
        duration = time.monotonic() - start if timed else 0.0
        succeeded = await self._arecord_result(token, result, duration)
        if observer is not None:
            observer(duration, "success" if succeeded else "failure")
        return result

    # The async recorders only differ from the sync ones when a shared store must
    # be told: then the store call is awaited instead of blocking the loop.

    async def _afleet_record(
        self, outcome: str, token: int | _Lease | _Ticket, error: str | None
    ) -> int | _Lease:
        if not isinstance(token, _Ticket):
            return token
        fleet = self._fleet
        if fleet is not None:
            try:
                took = await fleet.arecord(outcome, token.fleet_lease, error)  # type: ignore[arg-type]
            except Exception:
                took = False
                logger.debug("circuit breaker '%s': store record failed", self.name, exc_info=True)
            if took and outcome == "failure" and type(token.local) is int:
                return _STALE  # the fleet is open: counted, but not toward a local opening
        return token.local

    async def _arecord_exception(
        self, token: int | _Lease | _Ticket, exc: BaseException, duration: float
    ) -> bool:
        counted = self._is_counted(exc)
        if type(token) is _Ticket:
            token = await self._afleet_record(
                "failure" if counted else "neutral", token, _short_repr(exc) if counted else None
            )
        if counted:
            self._record_failure(token, _short_repr(exc), duration)
        else:
            self._record_neutral(token)
        return counted

    async def _arecord_failure(
        self, token: int | _Lease | _Ticket, error: str, duration: float, *, timeout: bool = False
    ) -> None:
        if type(token) is _Ticket:
            token = await self._afleet_record("failure", token, error)
        self._record_failure(token, error, duration, timeout=timeout)

    async def _arecord_result(
        self, token: int | _Lease | _Ticket, result: object, duration: float, *, sync: bool = False
    ) -> bool:
        error, timeout = self._result_failure(result, duration, sync=sync)
        if type(token) is _Ticket:
            token = await self._afleet_record(
                "success" if error is None else "failure", token, error
            )
        return self._record_outcome(token, error, timeout, duration)

    async def _arun_fallback(
        self,
        fallback: Fallback,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: BaseException,
    ) -> Any:
        next(self._n_fallbacks)
        try:
            result = fallback(args, kwargs, error)
            if inspect.isawaitable(result):
                result = await result
            return result
        except BaseException as fb_exc:
            if fb_exc is not error and fb_exc.__cause__ is None:
                fb_exc.__cause__ = error
            raise

    async def __aenter__(self) -> CircuitBreaker:
        token = await self._aadmit()
        self._push(token)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, start, observer = self._pop()
        duration = time.monotonic() - start if self._timed or observer is not None else 0.0
        if exc is None:
            # The breaker cannot cancel a block: like a sync call, an overrun counts.
            succeeded = await self._arecord_result(token, None, duration, sync=True)
            outcome = "success" if succeeded else "failure"
        else:
            counted = await self._arecord_exception(token, exc, duration)
            outcome = "failure" if counted else "ignored"
        if observer is not None:
            observer(duration, outcome)

    # -- testing support ------------------------------------------------------------------

    def _reset_for_tests(self) -> None:
        """Forget everything, including resolved defaults (``configure()`` applies again)."""
        with self._lock:
            self._sealed = False
            self._fast = False
            self._observe_fast = None
            fleet, self._fleet = self._fleet, None
            self._fleet_ok = False
            self._store = None
            self._config = BreakerConfig.from_mapping(self._settings, base=self._base_config)
            self._apply_config(self._config)
            self._state = _CLOSED
            self._epoch += 1
            self._consecutive = 0
            self._drop_leases()
            self._trial_successes = 0
            self._open_reason = ""
            self._opened_at = None
            self._retry_at = 0.0
            self._last_error = None
            self._shadow_warned_at = None
            self._clear_counters()
            self._cm_stack = None
        if fleet is not None:
            try:
                fleet.close()
            except Exception:
                logger.debug(
                    "circuit breaker '%s': store link close failed", self.name, exc_info=True
                )


def _short_repr_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _ERROR_REPR_LIMIT else text[: _ERROR_REPR_LIMIT - 3] + "..."


if sys.version_info >= (3, 11):

    async def _with_timeout(
        timeout: float, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        import asyncio

        try:
            async with asyncio.timeout(timeout) as scope:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result
        except TimeoutError:
            if scope.expired():
                raise _TimedOut from None
            raise

else:  # pragma: no cover - exercised on Python 3.10 only

    async def _with_timeout(
        timeout: float, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        fired = False

        def _expire() -> None:
            nonlocal fired
            fired = True
            if task is not None:
                task.cancel()

        handle = loop.call_later(timeout, _expire)
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        except asyncio.CancelledError:
            if fired:
                raise _TimedOut from None
            raise
        finally:
            handle.cancel()
