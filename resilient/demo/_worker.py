"""A demo client process for ``resilient demo --redis`` (``python -m resilient.demo._worker``).

Speaks JSON lines: standard input gets ``{"op": "start", ...config}`` first, then
``{"op": "validate", "token": ...}``, ``{"op": "metrics"}`` or ``{"op": "close"}``;
each gets one reply line on standard output carrying the breaker transitions this
process saw since its last reply.  Its breaker shares its state with the other
client process through ``resilient.stores.RedisStore``.  Not a public interface.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ._channel import event_to_transition, outcome_dict, validate_once
from ._run import configure_runtime
from ._scenario import Transition

if TYPE_CHECKING:
    from resilient.stores import RedisStore

    from ._client import AuthClient


class _Worker:
    def __init__(self) -> None:
        self.client: AuthClient | None = None
        self.store: RedisStore | None = None
        self.pending: deque[Transition] = deque()

    def start(self, config: dict[str, Any]) -> None:
        from resilient.stores import RedisStore  # extra: redis

        label = str(config["label"])
        store = RedisStore.from_url(
            str(config["redis_url"]),
            prefix=str(config["prefix"]),
            # Scaled with --speed, so a fleet-wide change reaches the other process
            # before its next request.
            sync_interval=float(config["sync_interval"]),
            instance_id=f"resilient-demo-{label}",
            key_ttl=60.0,
        )
        self.store = store
        configure_runtime(
            recovery_timeout=float(config["recovery_timeout"]),
            call_timeout=float(config["call_timeout"]),
            store=store,
        )
        # After configure(), so the breaker is created with the shared store.
        from ._client import AuthClient

        self.client = AuthClient(
            str(config["service_url"]),
            str(config["secret"]),
            broken_fallback=bool(config["broken_fallback"]),
        )
        self.client.validate_token.breaker.add_listener(
            lambda event: self.pending.append(event_to_transition(event, label=label))
        )

    async def handle(self, message: dict[str, Any]) -> dict[str, Any] | None:
        op = message.get("op")
        if op == "start":
            self.start(message)
            return {"ready": True}
        if op == "close":
            return None
        if self.client is None:
            return {"error": "not started"}
        if op == "validate":
            outcome = await validate_once(self.client, str(message["token"]))
            return {"outcome": outcome_dict(outcome)}
        if op == "metrics":
            return {"metrics": self.client.validate_token.breaker.metrics().as_dict()}
        return {"error": f"unknown op {op!r}"}


async def _serve() -> int:
    worker = _Worker()
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return 0
            try:
                reply = await worker.handle(json.loads(line))
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            if reply is None:
                return 0
            transitions = []
            while worker.pending:
                transitions.append(asdict(worker.pending.popleft()))
            reply["transitions"] = transitions
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        if worker.client is not None:
            await worker.client.aclose()
        if worker.store is not None:
            worker.store.close()


def main() -> int:
    """Serve the parent's requests until it closes standard input."""
    return asyncio.run(_serve())


if __name__ == "__main__":
    raise SystemExit(main())
