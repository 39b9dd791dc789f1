"""Share a list of tasks with a forked copy of this process (POSIX), results in order.

A fork starts in a millisecond or two with everything already imported (LibCST
in a rewrite worker), where a new process would spend a third of a second
importing it again.  Standard library only.
"""

from __future__ import annotations

import marshal
import os
import signal
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _T = TypeVar("_T")
    _R = TypeVar("_R")

__all__ = ["fork_map"]


def _load(payload: bytes) -> list[Any] | None:
    try:
        got = marshal.loads(payload)  # noqa: S302 - our own child wrote it
    except (EOFError, ValueError, TypeError):
        return None
    return got if isinstance(got, list) else None


def fork_map(fn: Callable[[_T], _R], items: Sequence[_T], *, processes: int) -> list[_R]:
    """``[fn(item) for item in items]``, shared with ``processes - 1`` forked children.

    Results must be ``marshal``-able (strings, numbers, tuples, lists, None...).
    Child ``k`` takes ``items[k::processes]``; what a child could not deliver
    (it died, or ``fn`` raised there) is done again in this process, so an
    exception ``fn`` raises comes from here, as without forking.  Without
    ``os.fork``, or for ``processes <= 1``, everything runs here.
    """
    count = min(processes, len(items))
    if count <= 1 or not hasattr(os, "fork"):
        return [fn(item) for item in items]
    children: list[tuple[int, int]] = []  # (pid, pipe from it), for slices 1..count-1
    for k in range(1, count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(read_end)
            for _pid, fd in children:
                os.close(fd)
            code = 0
            try:
                payload = marshal.dumps([fn(item) for item in items[k::count]])
            except BaseException:
                payload, code = b"", 1
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    try:
        slices: list[list[_R]] = [[fn(item) for item in items[0::count]]]
    except BaseException:
        for pid, read_end in children:  # nobody will read them: stop them, and reap them
            os.close(read_end)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    for k, (pid, read_end) in enumerate(children, 1):
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        got = _load(payload) if status == 0 else None
        slices.append(got if got is not None else [fn(item) for item in items[k::count]])
    return [slices[i % count][i // count] for i in range(len(items))]
