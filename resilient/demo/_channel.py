"""Channels: how the scenario reaches an auth client.

:class:`LocalChannel` drives an :class:`~resilient.demo._client.AuthClient` in this
process; :class:`WorkerChannel` drives one in a worker process (``--redis``), over a
JSON-lines pipe served by :mod:`resilient.demo._worker`.  Both report the same
:class:`~resilient.demo._scenario.Outcome` and breaker transitions.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ._scenario import ACCEPTED, ERROR, REFUSED, REJECTED, Outcome, Transition
from ._tokens import InvalidToken

if TYPE_CHECKING:
    from resilient import BreakerEvent

    from ._client import AuthClient


def event_to_transition(event: BreakerEvent, *, label: str) -> Transition:
    """Turn a breaker event into a :class:`Transition`, still on the raw clock.

    ``event.time`` is ``time.monotonic()``, which is system-wide, so the worker
    processes of ``--redis`` stamp their events on the same clock as the parent;
    the scenario makes them relative to its start.
    """
    return Transition(
        t=event.time,
        client=label,
        old=event.old_state.value,
        new=event.new_state.value,
        reason=event.reason,
        source=event.source,  # "store": won in the shared store, the whole fleet changed
    )


async def validate_once(client: AuthClient, token: str) -> Outcome:
    """Validate one token through the breaker, timing it and classifying the outcome."""
    from ._client import describe  # only after resilient.configure()

    started = time.monotonic()
    try:
        claims = await client.validate_token(token)
    except InvalidToken as exc:
        latency = time.monotonic() - started
        # On the rejected path the line already says the breaker was open.
        show_cause = exc.cause and exc.via != REJECTED
        detail = f"{exc.reason} ({exc.cause})" if show_cause else exc.reason
        path, verdict = exc.via, REFUSED
    except Exception as exc:
        # Anything else reaching the caller is a user turned away for a reason
        # that has nothing to do with their token: exactly what must not happen.
        latency = time.monotonic() - started
        path, verdict, detail = ERROR, REFUSED, describe(exc)
    else:
        latency = time.monotonic() - started
        path, verdict, detail = claims.via, ACCEPTED, claims.cause
    state = client.validate_token.breaker.state.value
    return Outcome(path=path, verdict=verdict, detail=detail, latency=latency, state=state)


class LocalChannel:
    """An auth client in this process."""

    def __init__(self, label: str, client: AuthClient) -> None:
        self.label = label
        self._client = client
        self._pending: deque[Transition] = deque()
        self._breaker = client.validate_token.breaker
        self._breaker.add_listener(self._on_event)

    def _on_event(self, event: BreakerEvent) -> None:
        self._pending.append(event_to_transition(event, label=self.label))

    async def validate(self, token: str) -> Outcome:
        """Validate through the client's breaker."""
        return await validate_once(self._client, token)

    def transitions(self) -> list[Transition]:
        """Transitions since the last call."""
        out = []
        while self._pending:
            out.append(self._pending.popleft())
        return out

    async def metrics(self) -> dict[str, Any]:
        """The breaker's metrics snapshot."""
        return self._breaker.metrics().as_dict()

    async def close(self) -> None:
        """Close the client's HTTP pool."""
        await self._client.aclose()


class WorkerError(RuntimeError):
    """A worker process failed to start or stopped answering."""


class WorkerChannel:
    """An auth client in a worker process (``python -m resilient.demo._worker``)."""

    def __init__(self, label: str, process: asyncio.subprocess.Process) -> None:
        self.label = label
        self._process = process
        self._pending: list[Transition] = []

    @classmethod
    async def start(cls, label: str, config: dict[str, Any]) -> WorkerChannel:
        """Spawn a worker, send it its configuration, and wait until it is ready."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "resilient.demo._worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        channel = cls(label, process)
        await channel._ask({"op": "start", **config, "label": label})
        return channel

    async def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write((json.dumps(message) + "\n").encode())
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            code = await self._process.wait()
            raise WorkerError(f"client process {self.label} exited with status {code}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"client process {self.label}: {reply['error']}")
        self._pending.extend(Transition(**t) for t in reply.get("transitions", ()))
        return reply

    async def validate(self, token: str) -> Outcome:
        """Validate through the worker's breaker."""
        reply = await self._ask({"op": "validate", "token": token})
        return Outcome(**reply["outcome"])

    def transitions(self) -> list[Transition]:
        """Transitions the worker reported since the last call."""
        out, self._pending = self._pending, []
        return out

    async def metrics(self) -> dict[str, Any]:
        """The worker's breaker metrics snapshot."""
        reply = await self._ask({"op": "metrics"})
        metrics: dict[str, Any] = reply["metrics"]
        return metrics

    async def close(self) -> None:
        """Ask the worker to exit, and wait for it (killing it if it does not)."""
        if self._process.returncode is None:
            stdin = self._process.stdin
            if stdin is not None and not stdin.is_closing():
                try:
                    stdin.write(b'{"op": "close"}\n')
                    await stdin.drain()
                    stdin.close()
                except (BrokenPipeError, ConnectionResetError):
                    pass
            try:
                await asyncio.wait_for(self._process.wait(), timeout=10)
            except asyncio.TimeoutError:
                self._process.kill()
                await self._process.wait()


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    """An :class:`Outcome` as JSON-ready data (the worker's reply)."""
    return asdict(outcome)
