"""``RedisStore``: breaker state, counters and half-open permits shared by a fleet.

How it fits the runtime (see :mod:`resilient.stores._base`): every process keeps
its own state machine, and each breaker gets a :class:`_RedisLink` that adds the
fleet's state on top.

* **Healthy calls cost no round trip.**  Each link keeps a *view* of the fleet
  state, refreshed by one background thread per store every ``sync_interval``
  (one pipelined round trip for all the breakers in use).  While the view says
  "closed, no failures recorded", the breaker runs its in-memory fast path and
  the store is not consulted at all.  Failures, half-open trials and
  transitions go to Redis; a success is written only when the fleet had
  failures recorded.
* **One atomic script per transition** (:mod:`._redis_scripts`), with Redis
  server time; the caller whose script made a transition "wins" it and is the
  only one that logs it and tells listeners (``event.source == "store"``).
* **Async callers never block the event loop**: the few calls that need Redis
  run the sync client in a small worker-thread pool and are awaited.  This was
  chosen over ``redis.asyncio`` clients because those are bound to the loop that
  created them (rule 5: a breaker may serve any number of loops, created and
  closed at any time), and because one sync client, one connection pool and one
  view then serve both kinds of callers.  The thread hop costs tens of
  microseconds, and only on the rare calls that reach Redis.
* **Faults never reach the caller.**  Socket timeouts are short (50 ms by
  default) and redis-py's retries are off, so a store call is bounded by them.
  The first error (connection refused, timeout, a paused server, an error
  reply) marks the store *down*: calls go on with per-process state and no I/O,
  one warning is logged (at most one per ``warn_interval``), the background
  thread probes every ``reconnect_interval``, and the views resync when Redis
  answers again.

``redis`` is imported when a store is built, never by ``import resilient``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import secrets
import socket
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .._errors import ConfigError
from .._events import logger
from .._state import State
from ._base import FleetVerdict, Outcome
from ._redis_scripts import ADMIT, COMMAND, RECORD, SNAPSHOT_FIELDS, SYNC, breaker_keys, key_pattern

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from .._breaker import CircuitBreaker

__all__ = ["RedisStore"]

T = TypeVar("T")

_CLOSED = State.CLOSED
_OPEN = State.OPEN
_HALF_OPEN = State.HALF_OPEN
_FORCED_OPEN = State.FORCED_OPEN
_DISABLED = State.DISABLED
_PASSING = (_CLOSED, _DISABLED)

_ALLOW = {
    _CLOSED: FleetVerdict(allowed=True, state=_CLOSED),
    _DISABLED: FleetVerdict(allowed=True, state=_DISABLED),
}

#: A breaker with no calls for this long stops being synced in the background;
#: its next call refreshes its view first.
_IDLE_AFTER = 60.0
#: Socket timeouts above this (seconds) could hold protected calls noticeably.
_SLOW_TIMEOUT = 0.25
#: Worker threads for async callers' Redis calls (per store and process).
_ASYNC_WORKERS = 4

_INSTALL_HINT = (
    "RedisStore needs the redis package (redis-py); install it with: pip install 'resilient[redis]'"
)


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return redis


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _state(value: Any) -> State:
    try:
        return State(_text(value))
    except ValueError:
        return _CLOSED


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<unparseable URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _Snapshot:
    """One script reply (see ``SNAPSHOT_FIELDS``)."""

    __slots__ = SNAPSHOT_FIELDS

    def __init__(self, raw: Sequence[Any]) -> None:
        values = list(raw)
        self.state = _state(values[0])
        self.epoch = int(values[1])
        self.ver = int(values[2])
        self.failures = int(values[3])
        self.retry_in_ms = int(values[4])
        self.reason = _text(values[5])
        self.cmd_id = _text(values[6])
        self.cmd_state = _text(values[7])
        self.inc = _text(values[8])
        self.in_flight = int(values[9])
        self.won_old = _text(values[10])
        self.won_new = _text(values[11])
        self.won_reason = _text(values[12])
        self.lease = _text(values[13])
        self.allowed = int(values[14]) == 1
        self.expired = int(values[15])


class _View:
    """What a process last saw of the fleet.  Replaced whole, never mutated, except
    ``full_until`` (a half-open fleet whose permits are all taken)."""

    __slots__ = (
        "failures",
        "fresh_until",
        "full_until",
        "gen",
        "inc",
        "reason",
        "retry_at",
        "state",
        "ver",
    )

    def __init__(self, snap: _Snapshot, now: float, fresh_for: float, gen: int) -> None:
        self.state = snap.state
        self.failures = snap.failures
        self.reason = snap.reason
        self.ver = snap.ver
        self.inc = snap.inc
        self.retry_at = now + snap.retry_in_ms / 1000.0 if snap.state is _OPEN else 0.0
        self.fresh_until = now + fresh_for
        self.full_until = 0.0
        self.gen = gen

    def opened_until(self, deadline: float) -> _View:
        """This view as a plain opening that ends at ``deadline`` (monotonic)."""
        view = object.__new__(_View)
        for field in _View.__slots__:
            setattr(view, field, getattr(self, field))
        view.state = _OPEN
        view.retry_at = deadline
        return view


class RedisStore:
    """Share breaker state across processes and hosts through Redis.

    With this store, a breaker's state, consecutive-failure count and half-open
    trial permits are fleet-wide: failures reported by every instance count
    toward one opening, every instance rejects calls once it is open, and only
    ``half_open_max_calls`` trial calls run across the fleet.  Each process still
    runs its own breaker too, so it protects itself when the fleet does not
    open (see ``quorum``) or when Redis cannot be reached.

    Build it with :meth:`from_url` (or from a ``redis.Redis`` client) and pass
    it as ``store=`` to a breaker, or once to :func:`resilient.configure`.

    Args:
        client: a sync ``redis.Redis`` client.  Give it short timeouts
            (``socket_timeout=0.05``) and no retries: a store call is bounded by
            them.  :meth:`from_url` does this for you.
        prefix: the first part of every key, so several services or
            environments can share one Redis.
        sync_interval: seconds between refreshes of each process's view of the
            fleet; a fleet-wide opening, trip or reset reaches every process
            within about this long.
        quorum: a fleet-wide opening needs failures reported by at least this
            many distinct instances (processes), so one instance with a broken
            network cannot open the breaker for everyone.  It still opens its own.
        key_ttl: seconds after which a breaker's keys expire when no instance
            uses it (its state is kept at least twice its recovery timeout).
        reconnect_interval: seconds between attempts to reach Redis again after
            an error.
        warn_interval: at most one "Redis unreachable" warning per this many
            seconds.
        instance_id: this process's identity for ``quorum`` (default: host name,
            process id and a random suffix).

    Raises:
        ImportError: redis-py is not installed (``pip install 'resilient[redis]'``).
        ConfigError: a setting is invalid.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "resilient",
        sync_interval: float = 0.5,
        quorum: int = 1,
        key_ttl: float = 3600.0,
        reconnect_interval: float = 1.0,
        warn_interval: float = 60.0,
        instance_id: str | None = None,
    ) -> None:
        self._setup(
            client,
            prefix=prefix,
            sync_interval=sync_interval,
            quorum=quorum,
            key_ttl=key_ttl,
            reconnect_interval=reconnect_interval,
            warn_interval=warn_interval,
            instance_id=instance_id,
        )
        _warn_about_client(client)

    def _setup(
        self,
        client: Any,
        *,
        prefix: str,
        sync_interval: float,
        quorum: int,
        key_ttl: float,
        reconnect_interval: float,
        warn_interval: float,
        instance_id: str | None,
    ) -> None:
        redis = _import_redis()
        _check_number("sync_interval", sync_interval, minimum=0.01)
        _check_number("key_ttl", key_ttl, minimum=0.1)
        _check_number("reconnect_interval", reconnect_interval, minimum=0.01)
        _check_number("warn_interval", warn_interval, minimum=0.0)
        if not _positive_int(quorum):
            raise ConfigError(f"RedisStore: quorum must be an integer >= 1, got {quorum!r}")
        if not _nonempty_str(prefix):
            raise ConfigError(f"RedisStore: prefix must be a non-empty string, got {prefix!r}")
        if instance_id is not None and not _nonempty_str(instance_id):
            raise ConfigError(
                f"RedisStore: instance_id must be a non-empty string, got {instance_id!r}"
            )
        if not hasattr(client, "evalsha"):
            raise ConfigError(f"RedisStore: client must be a redis.Redis client, got {client!r}")
        self._client = client
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        self.prefix = prefix
        self.sync_interval = float(sync_interval)
        self.quorum = quorum
        self.key_ttl = float(key_ttl)
        self.reconnect_interval = float(reconnect_interval)
        self.warn_interval = float(warn_interval)
        self._fixed_instance = instance_id
        self.instance_id = instance_id or _default_instance_id()
        self._where = _describe_client(client)
        self._owns_client = False
        # Redis names scripts by their SHA-1 (not a security use).
        self._shas = {s: _sha1(s) for s in (SYNC, ADMIT, RECORD, COMMAND)}
        self._lock = threading.Lock()
        self._links: weakref.WeakSet[_RedisLink] = weakref.WeakSet()
        self._down = False
        self._down_until = 0.0
        self._warned_since_up = False
        self._gen = 0
        self._closed = False
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        _STORES.add(self)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "resilient",
        timeout: float = 0.05,
        sync_interval: float = 0.5,
        quorum: int = 1,
        key_ttl: float = 3600.0,
        reconnect_interval: float = 1.0,
        warn_interval: float = 60.0,
        instance_id: str | None = None,
        **redis_options: Any,
    ) -> RedisStore:
        """Build a store from a Redis URL, e.g. ``redis://localhost:6379/0``.

        No connection is made here: a server that cannot be reached is reported
        (as a warning) when breakers first use it, and they go on in-process.

        Args:
            url: ``redis://``, ``rediss://`` or ``unix://`` URL.
            prefix: see :class:`RedisStore`.
            timeout: seconds for connecting and for each reply; a store call
                never holds a protected call longer than this (per phase).
            sync_interval, quorum, key_ttl, reconnect_interval, warn_interval,
                instance_id: see :class:`RedisStore`.
            **redis_options: passed to ``redis.Redis.from_url``.

        Raises:
            ImportError: redis-py is not installed.
            ConfigError: ``url`` is not a Redis URL, or a setting is invalid.
        """
        redis = _import_redis()
        _check_number("timeout", timeout, minimum=0.001)
        if not _nonempty_str(url):
            raise ConfigError(f"RedisStore: url must be a non-empty string, got {url!r}")
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        redis_options.setdefault("socket_timeout", timeout)
        redis_options.setdefault("socket_connect_timeout", timeout)
        redis_options.setdefault("retry", Retry(NoBackoff(), 0))
        try:
            client = redis.Redis.from_url(url, **redis_options)
        except ValueError as exc:
            raise ConfigError(
                f"RedisStore: {redact(url)!r} is not a usable Redis URL ({exc}); "
                "expected something like redis://localhost:6379/0"
            ) from exc
        if timeout > _SLOW_TIMEOUT:
            warnings.warn(
                f"RedisStore.from_url: timeout={timeout:g} s; a slow or paused Redis would hold "
                "protected calls that long (the default, 0.05 s, keeps them short)",
                stacklevel=2,
            )
        store = cls.__new__(cls)
        store._setup(
            client,
            prefix=prefix,
            sync_interval=sync_interval,
            quorum=quorum,
            key_ttl=key_ttl,
            reconnect_interval=reconnect_interval,
            warn_interval=warn_interval,
            instance_id=instance_id,
        )
        store._owns_client = True
        store._where = redact(url)
        return store

    def __repr__(self) -> str:
        return (
            f"RedisStore({self._where!r}, prefix={self.prefix!r}, "
            f"sync_interval={self.sync_interval:g}, quorum={self.quorum})"
        )

    @property
    def client(self) -> Any:
        """The sync ``redis.Redis`` client this store uses."""
        return self._client

    # -- the seam -----------------------------------------------------------------

    def attach(self, breaker: CircuitBreaker) -> _RedisLink:
        """Connect ``breaker`` to the fleet (called by the breaker on first use)."""
        link = _RedisLink(self, breaker)
        with self._lock:
            self._links.add(link)
            down = self._down
        if down:
            link._store_down()  # no opinion until Redis answers: run as in memory
        self._ensure_ticker()
        return link

    def close(self) -> None:
        """Stop the background thread and worker pool; close the client if this
        store created it.  Breakers attached to it go on with in-process state."""
        with self._lock:
            self._closed = True
            self._stop.set()
            pool, self._pool = self._pool, None
            links = list(self._links)
            self._links.clear()
        for link in links:
            link._detached()
        if pool is not None:
            pool.shutdown(wait=False)
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()

    # -- operator actions (used by the ``resilient`` CLI) ----------------------------

    def status(self) -> list[dict[str, Any]]:
        """Every breaker under this prefix as Redis sees it, sorted by name.

        Each entry has ``name``, ``state`` (time-aware: an open breaker whose
        recovery timeout has passed reads ``half_open``), ``stored_state``,
        ``failures`` (consecutive, fleet-wide), ``failure_threshold``,
        ``total_failures``, ``failing_instances``, ``retry_after`` (seconds, or
        ``None``), ``half_open_in_flight``, ``reason``, ``last_error`` and
        ``updated_ago`` (seconds).

        Raises:
            redis.exceptions.RedisError: Redis could not be reached or answered
                with an error.
        """
        client = self._client
        keys = sorted(
            {_text(k) for k in client.scan_iter(match=key_pattern(self.prefix), count=500)}
        )
        pipe = client.pipeline(transaction=False)
        pipe.time()
        for key in keys:
            pipe.hgetall(key)
            pipe.zcard(f"{key}:leases")
            pipe.hlen(f"{key}:inst")
        replies = pipe.execute()
        seconds, micros = replies[0]
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        out = []
        for i, key in enumerate(keys):
            raw, in_flight, instances = replies[1 + 3 * i : 4 + 3 * i]
            fields = {_text(k): _text(v) for k, v in raw.items()}
            name = fields.get("name")
            if name is None or breaker_keys(self.prefix, name)[0] != key:
                continue
            out.append(_status_entry(name, fields, int(in_flight), int(instances), now_ms))
        return sorted(out, key=lambda e: e["name"])

    def trip(self, name: str, *, hold: bool = False, reason: str | None = None) -> dict[str, Any]:
        """Open breaker ``name`` for the whole fleet.

        Every instance rejects its calls within ``sync_interval``.  Without
        ``hold`` the breaker recovers as usual after its recovery timeout (as
        the instances last reported it, else 30 s); with ``hold`` it stays
        FORCED_OPEN until :meth:`reset`.

        Returns:
            ``{"name", "old_state", "new_state", "retry_after"}``.

        Raises:
            redis.exceptions.RedisError: Redis could not be reached or answered
                with an error.
        """
        state = _FORCED_OPEN if hold else _OPEN
        why = reason or ("held open by an operator" if hold else "tripped by an operator")
        return self._operator(name, state, why)

    def reset(self, name: str) -> dict[str, Any]:
        """Close breaker ``name`` for the whole fleet and clear its counters.

        Every instance follows within ``sync_interval``, including its own
        in-process breaker (as if ``breaker.reset()`` had been called there).

        Returns:
            ``{"name", "old_state", "new_state", "retry_after"}``.

        Raises:
            redis.exceptions.RedisError: Redis could not be reached or answered
                with an error.
        """
        return self._operator(name, _CLOSED, "reset by an operator")

    def _operator(self, name: str, state: State, reason: str) -> dict[str, Any]:
        if not _nonempty_str(name):
            raise ConfigError(f"a breaker name must be a non-empty string, got {name!r}")
        args = [name, "", "", "", "", "", "", "", "", "", "1", f"operator@{socket.gethostname()}"]
        raw = self._eval(
            COMMAND,
            breaker_keys(self.prefix, name),
            [*args, state.value, reason, secrets.token_hex(8)],
        )
        snap = _Snapshot(raw)
        return {
            "name": name,
            "old_state": snap.won_old,
            "new_state": snap.state.value,
            "retry_after": snap.retry_in_ms / 1000.0 if snap.state is _OPEN else None,
        }

    # -- I/O and health --------------------------------------------------------------

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = self._client
        try:
            return client.evalsha(self._shas[script], len(keys), *keys, *args)
        except self._no_script:
            client.script_load(script)
            return client.evalsha(self._shas[script], len(keys), *keys, *args)

    def _sync_many(self, links: Sequence[_RedisLink], touches: Sequence[bool]) -> list[Any]:
        """One round trip: the SYNC script for every link (NOSCRIPT: load and redo)."""
        sha = self._shas[SYNC]
        for attempt in (1, 2):
            pipe = self._client.pipeline(transaction=False)
            for link, touch in zip(links, touches, strict=True):
                pipe.evalsha(sha, 3, *link.keys, *link.args("1" if touch else "0"))
            replies: list[Any] = pipe.execute(raise_on_error=False)
            errors = [r for r in replies if isinstance(r, Exception)]
            if not errors:
                return replies
            if attempt == 1 and all(isinstance(e, self._no_script) for e in errors):
                self._client.script_load(SYNC)
                continue
            raise errors[0]
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, exc: BaseException) -> None:
        """A Redis call failed: go per-process until Redis answers again."""
        if self._closed:
            return  # the client was closed under a call in flight
        now = time.monotonic()
        with self._lock:
            was_down = self._down
            self._down = True
            self._down_until = now + self.reconnect_interval
            if not was_down:
                self._gen += 1
            # One warning per Redis server and process (all its stores) per interval.
            last = _WARNED_AT.get(self._where)
            warn = last is None or now - last >= self.warn_interval
            if warn:
                _WARNED_AT[self._where] = now
                self._warned_since_up = True
            links = [] if was_down else list(self._links)
        if warn:
            logger.warning(
                "Redis store at %s failed (%s); breakers go on with per-process state "
                "and resync when it answers again (retrying every %g s)",
                self._where,
                _describe_error(exc),
                self.reconnect_interval,
                extra={"resilient.store": self._where},
            )
        for link in links:
            link._store_down()

    def _recovered(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
            # One "answers again" line per warning (a flapping server logs little).
            tell, self._warned_since_up = self._warned_since_up and was_down, False
        if not tell:
            return
        logger.info(
            "Redis store at %s answers again; breakers resync with the fleet",
            self._where,
            extra={"resilient.store": self._where},
        )

    def _usable(self) -> bool:
        """Whether a call may do I/O now (not closed, not marked down)."""
        if self._closed:
            return False
        if self._down:
            self._ensure_ticker()  # it probes; callers never wait for a dead server
            return False
        return True

    # -- background sync ------------------------------------------------------------

    def _ensure_ticker(self) -> None:
        ticker = self._ticker
        if ticker is not None and ticker.is_alive():
            return
        with self._lock:
            if self._closed or not self._links:
                return
            ticker = self._ticker
            if ticker is not None and ticker.is_alive():
                return
            ticker = threading.Thread(
                target=_tick_loop,
                args=(weakref.ref(self), self._stop, self.sync_interval),
                name="resilient-redis-sync",
                daemon=True,
            )
            self._ticker = ticker
            ticker.start()

    def _tick(self) -> bool:
        """One background round: refresh the views of breakers in use.  Returns
        False when there is nothing left to sync (the thread then ends)."""
        now = time.monotonic()
        with self._lock:
            links = list(self._links)
            if not links or self._closed:
                self._ticker = None
                return False
        if self._down and now < self._down_until:
            return True
        due: list[_RedisLink] = []
        touches: list[bool] = []
        for link in links:
            touch = link._plan(now)
            if touch is not None:
                due.append(link)
                touches.append(touch)
        try:
            if due:
                replies = self._sync_many(due, touches)
            elif self._down:
                self._client.ping()
                replies = []
            else:
                return True
        except Exception as exc:
            self._failed(exc)
            return True
        self._recovered()
        for link, raw in zip(due, replies, strict=True):
            try:
                link._apply(raw, fresh_for=self.sync_interval * 2)
            except Exception:
                logger.debug("Redis store: applying a sync reply failed", exc_info=True)
        return True

    # -- async callers: worker threads --------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            with self._lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool = ThreadPoolExecutor(
                        max_workers=_ASYNC_WORKERS, thread_name_prefix="resilient-redis"
                    )
        return pool

    async def _offload(
        self, fn: Callable[[], T], on_cancel: Callable[[Future[T]], object] | None = None
    ) -> T:
        """Run ``fn`` (blocking Redis I/O) in a worker thread and await it."""
        import asyncio

        future = self._executor().submit(fn)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if on_cancel is not None:
                future.add_done_callback(on_cancel)
            raise

    def _after_fork(self) -> None:
        # The child has one thread: locks may be held by threads that are gone,
        # and the background thread and worker pool did not survive the fork.
        self._lock = threading.Lock()
        self._ticker = None
        self._pool = None
        self._stop = threading.Event()
        if self._closed:
            self._stop.set()
        self._gen += 1
        if self._fixed_instance is None:
            self.instance_id = _default_instance_id()
        for link in list(self._links):
            link._after_fork()


class _RedisLink:
    """One breaker's connection to a :class:`RedisStore` (a ``FleetLink``)."""

    __slots__ = (
        "__weakref__",
        "_breaker",
        "_clearing",
        "_closed",
        "_last_active",
        "_last_sig",
        "_lease_ids",
        "_lock",
        "_own_cmd",
        "_recovery",
        "_refreshing",
        "_seen_cmd",
        "_settings",
        "_store",
        "_touch_due",
        "_touched",
        "_view",
        "hwait",
        "jitter",
        "keys",
        "name",
    )

    def __init__(self, store: RedisStore, breaker: CircuitBreaker) -> None:
        cfg = breaker.config
        self._store = store
        self._breaker = breaker
        self.name = breaker.name
        self.keys = breaker_keys(store.prefix, breaker.name)
        self.hwait = cfg.effective_half_open_max_wait
        self._recovery = cfg.recovery_timeout
        self.jitter = cfg.jitter
        max_recovery = cfg.max_recovery_timeout
        self._settings = (
            breaker.name,
            str(cfg.failure_threshold),
            str(cfg.success_threshold),
            str(_ms(cfg.recovery_timeout)),
            str(cfg.half_open_max_calls),
            str(_ms(self.hwait)),
            str(store.quorum),
            repr(float(cfg.recovery_backoff)),
            str(_ms(max_recovery)) if max_recovery is not None else "-1",
            str(_ms(store.key_ttl)),
        )
        self._lock = threading.Lock()
        self._view: _View | None = None
        self._seen_cmd: str | None = None
        self._own_cmd = ""
        self._refreshing = False
        self._clearing = False
        self._closed = False
        self._lease_ids = itertools.count()
        self._last_sig = -1
        self._last_active = time.monotonic()
        self._touched = True
        self._touch_due = 0.0

    def __repr__(self) -> str:
        view = self._view
        seen = view.state.value if view is not None else "unknown"
        return f"<RedisLink {self.name!r} fleet={seen} store={self._store!r}>"

    def args(self, *extra: str) -> list[str]:
        """The ARGV of a script call (see :mod:`._redis_scripts`)."""
        jitter = self.jitter
        factor = repr(1.0 + random.uniform(-jitter, jitter)) if jitter else "1"
        return [*self._settings, factor, self._store.instance_id, *extra]

    # -- FleetLink ----------------------------------------------------------------

    def admit(self) -> FleetVerdict | None:
        """Ask the fleet before a sync call (blocking at most the store's timeout)."""
        try:
            return self._admit()
        except Exception as exc:  # never into the caller: treat it as a store failure
            self._store._failed(exc)
            return None

    async def aadmit(self) -> FleetVerdict | None:
        """Async twin of :meth:`admit`: Redis is only reached from a worker thread."""
        try:
            return await self._aadmit()
        except Exception as exc:
            self._store._failed(exc)
            return None

    def _admit(self) -> FleetVerdict | None:
        store = self._store
        if not store._usable():
            return self._verdict_while_down()
        self._touched = True
        view, refresh = self._to_refresh()
        if refresh:
            try:
                raw = self._io(self._sync_call)
            finally:
                if view is not None:
                    self._refreshing = False
            if raw is None:
                return None
            view = self._apply(raw)[1]
        if view is None:
            return None
        verdict = self._verdict(view)
        if verdict is not None:
            return verdict
        lease = self._lease_id()
        raw = self._io(lambda: store._eval(ADMIT, self.keys, self.args(lease)))
        if raw is None:
            return None
        return self._admitted(raw)

    async def _aadmit(self) -> FleetVerdict | None:
        store = self._store
        if not store._usable():
            return self._verdict_while_down()
        self._touched = True
        view, refresh = self._to_refresh()
        if refresh:
            try:
                raw = await store._offload(lambda: self._io(self._sync_call))
            finally:
                if view is not None:
                    self._refreshing = False
            if raw is None:
                return None
            view = self._apply(raw)[1]
        if view is None:
            return None
        verdict = self._verdict(view)
        if verdict is not None:
            return verdict
        lease = self._lease_id()
        raw = await store._offload(
            lambda: self._io(lambda: store._eval(ADMIT, self.keys, self.args(lease))),
            on_cancel=lambda done: self._release_if_granted(done, lease),
        )
        if raw is None:
            return None
        return self._admitted(raw)

    def record(self, outcome: Outcome, lease: str | None, error: str | None) -> bool:
        """Report a sync call's outcome.  Returns True when the fleet is open after
        a failure (the fleet took charge of it: this process does not count it
        toward its own opening)."""
        if not self._worth_writing(outcome, lease):
            return False
        try:
            raw = self._io(
                lambda: self._store._eval(
                    RECORD, self.keys, self.args(outcome, lease or "", error or "")
                )
            )
        finally:
            if lease is None and outcome == "success":
                self._clearing = False
        return self._recorded(raw, outcome)

    async def arecord(self, outcome: Outcome, lease: str | None, error: str | None) -> bool:
        """Async twin of :meth:`record` (the write runs in a worker thread)."""
        if not self._worth_writing(outcome, lease):
            return False
        store = self._store
        try:
            raw = await store._offload(
                lambda: self._io(
                    lambda: store._eval(
                        RECORD, self.keys, self.args(outcome, lease or "", error or "")
                    )
                )
            )
        finally:
            if lease is None and outcome == "success":
                self._clearing = False
        return self._recorded(raw, outcome)

    def command(self, state: State, reason: str) -> None:
        """Apply an operator action (trip, hold, reset, disable) fleet-wide."""
        store = self._store
        if store._closed:
            return
        cmd = secrets.token_hex(8)
        self._own_cmd = cmd
        try:
            raw = store._eval(COMMAND, self.keys, self.args(state.value, reason, cmd))
        except Exception as exc:
            store._failed(exc)
            logger.warning(
                "circuit breaker '%s': %s applied to this process only; "
                "the Redis store could not be told",
                self.name,
                reason,
                extra={"resilient.breaker": self.name},
            )
            return
        store._recovered()
        self._apply(raw, announce=False)

    def fleet_state(self) -> tuple[State, float | None] | None:
        """The fleet state from the local view (no I/O); ``None`` when unknown."""
        view = self._view
        store = self._store
        if view is None or self._closed or store._closed:
            return None
        if store._down:
            held = self._verdict_while_down()
            return (_OPEN, held.retry_after) if held is not None else None
        if view.gen != store._gen:
            return None
        if view.state is _OPEN:
            return _OPEN, view.retry_at - time.monotonic()
        return view.state, None

    def offload(self, job: Callable[[], object]) -> bool:
        """Run ``job`` (which reports to Redis) in a worker thread when the caller is
        an event loop; returns False when the caller should run it itself."""
        asyncio = sys.modules.get("asyncio")
        if asyncio is None or not self._store._usable():
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False

        def run() -> None:
            try:
                job()
            except Exception:
                logger.debug(
                    "circuit breaker '%s': deferred store report failed", self.name, exc_info=True
                )

        try:
            self._store._executor().submit(run)
        except RuntimeError:  # the pool is shut down
            return False
        return True

    def close(self) -> None:
        """Detach from the store (the breaker was dropped from its registry)."""
        self._closed = True
        with self._store._lock:
            self._store._links.discard(self)

    # -- internals --------------------------------------------------------------------

    def _to_refresh(self) -> tuple[_View | None, bool]:
        """The view to decide on, and whether this caller must refresh it first.

        With no view of the current connection, every caller refreshes (nothing
        else to go on).  A stale view is refreshed by one caller at a time (it
        then holds ``_refreshing``); the others decide on the last view meanwhile.
        A view from another clock domain (a test that moved the clock) is stale.
        """
        view = self._view
        if view is None or view.gen != self._store._gen:
            return None, True
        now = time.monotonic()
        if now < view.fresh_until < now + 10 * self._store.sync_interval:
            return view, False
        with self._lock:
            if self._refreshing:
                return view, False
            self._refreshing = True
            return view, True

    def _sync_call(self) -> Any:
        return self._store._eval(SYNC, self.keys, self.args("0"))

    def _io(self, call: Callable[[], Any]) -> Any:
        """Run one Redis call; on any error mark the store down and return None.
        Calls queued for a worker thread while the store went down are skipped."""
        store = self._store
        if store._down or store._closed:
            return None
        try:
            raw = call()
        except Exception as exc:
            store._failed(exc)
            return None
        store._recovered()
        return raw

    def _verdict(self, view: _View) -> FleetVerdict | None:
        """Decide from the view alone; ``None`` means "ask Redis" (open past its
        retry time, or half-open)."""
        state = view.state
        allow = _ALLOW.get(state)
        if allow is not None:
            return allow
        if state is _FORCED_OPEN:
            return FleetVerdict(allowed=False, state=_FORCED_OPEN, reason=view.reason)
        now = time.monotonic()
        if state is _OPEN and now < view.retry_at:
            return FleetVerdict(
                allowed=False, state=_OPEN, retry_after=view.retry_at - now, reason=view.reason
            )
        if state is _HALF_OPEN and now < view.full_until:
            return FleetVerdict(
                allowed=False,
                state=_HALF_OPEN,
                retry_after=view.full_until - now,
                reason=view.reason,
            )
        return None

    def _admitted(self, raw: Any) -> FleetVerdict:
        snap, view = self._apply(raw)
        if snap.allowed:
            if snap.lease:
                return FleetVerdict(allowed=True, state=snap.state, lease=snap.lease)
            return _ALLOW.get(snap.state) or FleetVerdict(allowed=True, state=snap.state)
        retry_after = snap.retry_in_ms / 1000.0 if snap.state is not _FORCED_OPEN else None
        if snap.state is _HALF_OPEN and view is self._view:
            # Every permit is taken: ask again when the first one is due back, or
            # after a sync interval (a finished trial frees one sooner).
            wait = min(self._store.sync_interval, retry_after or 0.0)
            view.full_until = time.monotonic() + wait
        return FleetVerdict(
            allowed=False, state=snap.state, retry_after=retry_after, reason=snap.reason
        )

    def _release_if_granted(self, done: Future[Any], lease: str) -> None:
        """An async caller was cancelled while its admission was in flight: give
        back any permit Redis granted it (runs in the worker thread)."""
        if done.cancelled() or done.exception() is not None:
            return
        raw = done.result()
        if raw is not None and _Snapshot(raw).lease == lease:
            self._io(lambda: self._store._eval(RECORD, self.keys, self.args("neutral", lease, "")))

    def _worth_writing(self, outcome: Outcome, lease: str | None) -> bool:
        if not self._store._usable():
            return False
        if lease is not None or outcome == "failure":
            return True
        if outcome != "success":
            return False
        view = self._view
        if view is None or view.failures == 0 or view.state not in _PASSING:
            return False
        # A success clears the fleet's failures; one write at a time is enough.
        with self._lock:
            if self._clearing:
                return False
            self._clearing = True
            return True

    def _recorded(self, raw: Any, outcome: Outcome) -> bool:
        if raw is None:
            return False
        snap = self._apply(raw)[0]
        return outcome == "failure" and snap.state not in _PASSING

    def _lease_id(self) -> str:
        return f"{self._store.instance_id}:{next(self._lease_ids)}"

    def _apply(
        self, raw: Any, *, fresh_for: float | None = None, announce: bool = True
    ) -> tuple[_Snapshot, _View]:
        """Take a script reply: update the view (newer replies only), let the
        breaker's fast path run or not, then announce a transition this process
        won and follow an operator reset or disable it has not seen yet."""
        snap = _Snapshot(raw)
        store = self._store
        now = time.monotonic()
        view = _View(
            snap, now, store.sync_interval * 1.5 if fresh_for is None else fresh_for, store._gen
        )
        follow: State | None = None
        with self._lock:
            current = self._view
            if current is None or current.inc != view.inc or view.ver >= current.ver:
                self._view = view
                if not self._closed:
                    # Every reply says it again: a fast-path failure switches the
                    # fast path off in the breaker itself, and the next reply decides.
                    ok = view.state is _CLOSED and view.failures == 0
                    self._breaker._set_fleet_ok(ok=ok)
                follow = self._command_to_follow(snap)
            else:
                view = current
        if announce and snap.won_new:
            self._breaker._apply_fleet_transition(
                _state(snap.won_old), _state(snap.won_new), snap.won_reason
            )
        if follow is not None:
            why = "reset by an operator" if follow is _CLOSED else "disabled by an operator"
            self._breaker._follow_fleet(follow, f"{why} (fleet-wide)")
        if snap.expired:
            logger.warning(
                "circuit breaker '%s': %d half-open trial call%s held a fleet-wide permit past "
                "half_open_max_wait (%g s); the permit goes to the next caller",
                self.name,
                snap.expired,
                "" if snap.expired == 1 else "s",
                self.hwait,
                extra={"resilient.breaker": self.name},
            )
        return snap, view

    def _command_to_follow(self, snap: _Snapshot) -> State | None:
        """(Link lock held.)  The operator command this process must follow, if any."""
        cmd = snap.cmd_id
        seen = self._seen_cmd
        if cmd == seen:
            return None
        self._seen_cmd = cmd
        if not cmd or cmd == self._own_cmd:
            return None
        target = _state(snap.cmd_state)
        if seen is None:
            # The first look at the fleet: an old reset is history, but a fleet
            # that is still disabled (shadow mode) applies to newcomers too.
            return _DISABLED if target is _DISABLED and snap.state is _DISABLED else None
        return target if target in _PASSING else None

    def _plan(self, now: float) -> bool | None:
        """(Background thread.)  Whether to sync this breaker now: ``None`` for no
        (idle: its next call refreshes first), else whether to also refresh the
        keys' expiry (the breaker was used since the last time)."""
        breaker = self._breaker
        sig = (
            _count(breaker._n_successes)
            + _count(breaker._n_rejected)
            + _count(breaker._n_ignored)
            + breaker._n_failures
        )
        used = sig != self._last_sig or self._touched
        self._last_sig = sig
        self._touched = False
        if used:
            self._last_active = now
        elif now - self._last_active > _IDLE_AFTER:
            self._idle()
            return None
        touch = used and now >= self._touch_due
        if touch:
            self._touch_due = now + self._store.key_ttl / 10.0
        return touch

    def _idle(self) -> None:
        if self._breaker._fleet_ok:
            with self._lock:
                self._breaker._set_fleet_ok(ok=False)

    def _store_down(self) -> None:
        """Redis failed: this process keeps honouring an opening it saw until its
        retry time (an operator's hold: for one recovery timeout); otherwise the
        fleet has no opinion and the breaker runs as in memory."""
        with self._lock:
            view = self._view
            if view is not None and view.state is _FORCED_OPEN:
                view = self._view = view.opened_until(time.monotonic() + self._recovery)
            held = view is not None and view.state is _OPEN
            self._breaker._set_fleet_ok(ok=not held)

    def _verdict_while_down(self) -> FleetVerdict | None:
        view = self._view
        if view is None or view.state is not _OPEN or self._closed or self._store._closed:
            return None
        now = time.monotonic()
        if now >= view.retry_at:
            return None
        return FleetVerdict(
            allowed=False, state=_OPEN, retry_after=view.retry_at - now, reason=view.reason
        )

    def _detached(self) -> None:
        """The store was closed: the breaker goes on in-process, as in memory."""
        self._closed = True
        with self._lock:
            self._breaker._set_fleet_ok(ok=True)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._view = None
        self._refreshing = False
        self._clearing = False
        # Single-threaded child: set the breaker's flags directly (its lock may be
        # held by a thread that did not survive the fork).
        self._breaker._fleet_ok = False
        self._breaker._fast = False


def _tick_loop(
    ref: weakref.ReferenceType[RedisStore], stop: threading.Event, interval: float
) -> None:
    while not stop.wait(interval):
        store = ref()
        if store is None:
            return
        try:
            if not store._tick():
                return
        except Exception:
            logger.debug("Redis store: background sync failed", exc_info=True)
        del store


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _count(counter: itertools.count[int]) -> int:
    return int(repr(counter)[6:-1])


def _ms(seconds: float | None) -> int:
    return round((seconds or 0.0) * 1000)


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_number(field: str, value: object, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise ConfigError(
            f"RedisStore: {field} must be a number >= {minimum:g} (seconds), got {value!r}"
        )


def _default_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


def _describe_client(client: Any) -> str:
    try:
        kw = client.connection_pool.connection_kwargs
    except AttributeError:
        return repr(client)
    if kw.get("path"):
        return f"unix://{kw['path']}"
    return f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


def _describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _status_entry(
    name: str, f: dict[str, str], in_flight: int, instances: int, now_ms: int
) -> dict[str, Any]:
    stored = _state(f.get("state", "closed"))
    state = stored
    retry_after: float | None = None
    if stored is _OPEN:
        retry_after = max(0.0, (int(float(f.get("retry_at", now_ms))) - now_ms) / 1000.0)
        if retry_after == 0.0:
            state = _HALF_OPEN
    updated = f.get("updated_at") or f.get("created_at")
    return {
        "name": name,
        "state": state.value,
        "stored_state": stored.value,
        "failures": int(f.get("failures", 0) or 0),
        "failure_threshold": int(f["cfg_threshold"]) if f.get("cfg_threshold") else None,
        "total_failures": int(f.get("total", 0) or 0),
        "failing_instances": instances,
        "retry_after": retry_after,
        "half_open_in_flight": in_flight,
        "reason": f.get("reason", ""),
        "last_error": f.get("last_error") or None,
        "updated_ago": max(0.0, (now_ms - int(float(updated))) / 1000.0) if updated else None,
    }


_STORES: weakref.WeakSet[RedisStore] = weakref.WeakSet()
#: When each Redis server (by redacted URL) was last reported unreachable.
_WARNED_AT: dict[str, float] = {}


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _warn_about_client(client: Any) -> None:
    """Warn (once, at construction) when a given client could block calls for long."""
    try:
        kw = client.connection_pool.connection_kwargs
    except AttributeError:
        return
    problems = []
    timeout = kw.get("socket_timeout")
    if timeout is None or timeout > _SLOW_TIMEOUT:
        problems.append(f"socket_timeout={timeout!r}")
    retry = kw.get("retry")
    retries = retry.get_retries() if retry is not None and hasattr(retry, "get_retries") else 0
    if retries:
        problems.append(f"{retries} retries")
    if problems:
        warnings.warn(
            f"RedisStore: the redis client has {' and '.join(problems)}; a slow or paused Redis "
            "would hold protected calls that long. Build it with socket_timeout=0.05 and "
            "retry=Retry(NoBackoff(), 0), or use RedisStore.from_url(), which does.",
            stacklevel=3,
        )
