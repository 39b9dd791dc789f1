"""Redis fixtures for the RedisStore and operator-CLI tests (real servers only).

Import the fixtures you use from here in a test module.

* ``redis_url``: the shared test Redis: ``$RESILIENT_TEST_REDIS_URL`` (default
  redis://127.0.0.1:6379/15), else a ``redis-server`` this session starts on a
  free port.  Without either the tests skip with the reason, or fail when
  ``RESILIENT_REQUIRE_REDIS=1`` (set by .ci/run).
* ``prefix``: a key prefix of the test's own; its keys are deleted afterwards.
* ``make_store``: builds ``RedisStore``s on ``redis_url`` under ``prefix``, closed
  afterwards.
* ``own_redis``: a private ``redis-server`` on a free port, for the fault tests
  (killed, paused, restarted, answering errors); never the shared one.
* ``workers``: starts :class:`Worker` processes, each running one breaker on a
  ``RedisStore`` of its own and driven over JSON lines (see :func:`worker_main`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "redis://127.0.0.1:6379/15"
REQUIRED = os.environ.get("RESILIENT_REQUIRE_REDIS") == "1"


def missing(reason: str) -> None:
    """Skip (or, under RESILIENT_REQUIRE_REDIS=1, fail) a test that needs Redis."""
    if REQUIRED:
        pytest.fail(f"{reason} (RESILIENT_REQUIRE_REDIS=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, every: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded); return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


def _pings(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def _server_major(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    for part in out.split():
        if part.startswith("v="):
            return int(part[2:].split(".")[0])
    return 0


class RedisServer:
    """A ``redis-server`` process of the test's own, on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server is not on PATH")
        self.workdir.mkdir(parents=True, exist_ok=True)
        extra = ["--enable-debug-command", "local"] if _server_major(binary) >= 7 else []
        self.proc = subprocess.Popen(
            [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_until(lambda: _pings(self.url), timeout=10, every=0.05):
            self.kill()
            pytest.fail(f"redis-server on port {self.port} did not start")
        return self

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def kill(self) -> None:
        """SIGKILL the server (its data is gone; ``start()`` brings it back empty)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def redis_py() -> Any:
    """The redis module (tests that build a RedisStore need redis-py, not a server)."""
    try:
        import redis
    except ImportError:
        missing("redis-py is not installed (pip install 'resilient[redis]')")
    return redis


@pytest.fixture(scope="session")
def redis_url(redis_py: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared test Redis (see the module docstring)."""
    url = os.environ.get("RESILIENT_TEST_REDIS_URL") or DEFAULT_URL
    if _pings(url):
        yield url
        return
    if shutil.which("redis-server") is None:
        missing(f"no Redis answers at {url} and redis-server is not on PATH")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A plain client on the shared test Redis, for assertions."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    value = f"rt-{uuid.uuid4().hex[:12]}"
    yield value
    keys = list(redis_client.scan_iter(match=f"{value}:*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def make_store(redis_url: str, prefix: str) -> Iterator[Callable[..., Any]]:
    """``make_store(**options)``: a RedisStore on the shared Redis under ``prefix``."""
    from resilient.stores import RedisStore

    stores: list[Any] = []

    def make(url: str | None = None, **options: Any) -> Any:
        options.setdefault("prefix", prefix)
        options.setdefault("sync_interval", 0.2)
        # Room for a loaded CI machine: these tests are about the fleet, not about
        # timeouts (test_stores_redis_faults.py runs the default 50 ms).
        options.setdefault("timeout", 0.25)
        store = RedisStore.from_url(url or redis_url, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def own_redis(redis_py: Any, tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for fault tests (killed, paused, restarted...)."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def workers(redis_url: str, prefix: str) -> Iterator[Callable[..., list[Worker]]]:
    """``workers(n, name, settings=..., store=..., url=...)``: n worker processes,
    each with one breaker ``name`` on a RedisStore of its own, set up and ready."""
    started: list[Worker] = []

    def start(
        n: int,
        name: str,
        *,
        settings: dict[str, Any] | None = None,
        store: dict[str, Any] | None = None,
        url: str | None = None,
        skews: list[float | None] | None = None,
    ) -> list[Worker]:
        batch = [Worker() for _ in range(n)]
        started.extend(batch)
        for i, worker in enumerate(batch):
            worker.send_only(
                "setup",
                url=url or redis_url,
                name=name,
                settings=settings or {},
                store={"prefix": prefix, "sync_interval": 0.5, "timeout": 0.25, **(store or {})},
                skew=skews[i] if skews else None,
            )
        for worker in batch:
            worker.receive(timeout=30)
        return batch

    yield start
    for worker in started:
        worker.stop()


# --------------------------------------------------------------------------- worker processes


_WORKER = "from tests.resilient.conftest_redis import worker_main; worker_main()"


class WorkerError(AssertionError):
    """A worker process answered with an error or not at all."""


class Worker:
    """A separate Python process running one breaker (see :func:`worker_main`)."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send_only(self, op: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = 15) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise WorkerError(f"worker {self.pid} did not answer in {timeout} s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise WorkerError(f"worker {self.pid} exited: {self._stderr()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"worker {self.pid}: {reply['error']}")
        return reply

    def ask(self, op: str, timeout: float = 15, **fields: Any) -> dict[str, Any]:
        self.send_only(op, **fields)
        return self.receive(timeout)

    def kill(self) -> None:
        """SIGKILL: the process dies without reporting anything."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.send_only("exit")
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def _stderr(self) -> str:
        with contextlib.suppress(Exception):
            self.proc.wait(2)
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-3000:]


class _Down(Exception):
    """The failure a worker's protected call raises."""


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def worker_main() -> None:  # pragma: no cover - runs in worker processes
    """A worker process: one breaker on a RedisStore, driven over JSON lines.

    ``setup`` builds it (``skew`` moves this process's clock with freezegun);
    ``call`` makes one call (``outcome`` ok or fail, optionally at a given
    ``time.monotonic()``); ``until`` calls until a result (``rejected`` or ``ok``)
    shows up; ``hold_trial`` starts a call that never returns; ``report`` gives
    the events and log lines seen; ``exit`` ends the process.
    """
    from datetime import datetime, timedelta, timezone

    from resilient import CircuitBreaker, CircuitOpenError
    from resilient.stores import RedisStore

    breaker: Any = None
    events: list[list[str]] = []
    recorder = _Recorder()
    logger = logging.getLogger("resilient")
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    held = threading.Event()
    hold_result: list[str] = []

    def once(outcome: str) -> str:
        def fn() -> str:
            if outcome == "fail":
                raise _Down("dependency down")
            return "ok"

        try:
            breaker.call(fn)
        except CircuitOpenError:
            return "rejected"
        except _Down:
            return "failed"
        return "ok"

    def hold() -> None:
        def fn() -> None:
            hold_result.append("admitted")
            held.set()
            time.sleep(3600)

        try:
            breaker.call(fn)
        except CircuitOpenError:
            hold_result.append("rejected")
            held.set()

    def handle(msg: dict[str, Any]) -> dict[str, Any]:
        nonlocal breaker
        op = msg["op"]
        if op == "setup":
            if msg.get("skew"):
                import freezegun

                moved = datetime.now(timezone.utc) + timedelta(seconds=msg["skew"])
                freezegun.freeze_time(moved, tick=True).start()
            store = RedisStore.from_url(msg["url"], **msg["store"])
            breaker = CircuitBreaker(msg["name"], store=store, **msg["settings"])
            breaker.add_listener(
                lambda e: events.append([e.old_state.value, e.new_state.value, e.source, e.reason])
            )
            return {"instance": store.instance_id, "clock": time.time()}
        if op == "call":
            at = msg.get("at")
            if at is not None:
                while time.monotonic() < at:
                    pass
            result = once(msg["outcome"])
            return {"result": result, "t": time.monotonic()}
        if op == "until":
            deadline = time.monotonic() + msg["within"]
            calls = 0
            while True:
                calls += 1
                result = once(msg.get("outcome", "ok"))
                if result == msg["want"] or time.monotonic() >= deadline:
                    return {"result": result, "t": time.monotonic(), "calls": calls}
                time.sleep(msg.get("every", 0.002))
        if op == "hold_trial":
            held.clear()
            hold_result.clear()
            threading.Thread(target=hold, daemon=True).start()
            held.wait(msg.get("within", 5.0))
            return {"admitted": hold_result == ["admitted"], "t": time.monotonic()}
        if op == "report":
            metrics = breaker.metrics().as_dict()
            return {
                "events": events,
                "logs": recorder.lines,
                "state": breaker.state.value,
                "metrics": metrics,
            }
        raise ValueError(f"unknown op {op!r}")

    for line in sys.stdin:
        msg = json.loads(line)
        if msg["op"] == "exit":
            break
        try:
            reply = handle(msg)
        except Exception as exc:
            reply = {"error": repr(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    os._exit(0)  # do not wait for a trial call that never returns
