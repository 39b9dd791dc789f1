"""Start a program with its output on pipes, without importing ``subprocess``.

``resilient check`` starts ``git`` first thing (see :func:`._check_git.prefetch`),
before anything else is imported; ``subprocess`` alone (with ``threading``,
``selectors``, ``signal`` and ``locale``) would cost that moment several
milliseconds.  :func:`spawn` uses ``os.posix_spawnp`` instead and returns the
part of :class:`subprocess.Popen` the git scans use.  Where there is no
``posix_spawnp`` (Windows), :func:`spawn` is None and callers use
``subprocess``; :func:`wait` and :func:`communicate` take either kind.

Standard library only.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # (``typing`` would cost the pre-commit hook its start-up time)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["Spawned", "communicate", "spawn", "wait"]


class Spawned:
    """A program started by :func:`spawn`: ``pid``, its pipes, ``poll``/``wait``/``kill``."""

    def __init__(self, pid: int, stdout: int, stderr: int | None) -> None:
        self.pid = pid
        self.stdout = open(stdout, "rb", buffering=0)  # noqa: SIM115 - closed by the owner
        self.stderr = (
            open(stderr, "rb", buffering=0)  # noqa: SIM115 - closed by the owner
            if stderr is not None
            else None
        )
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status if it has ended (negative: the signal that ended it), else None."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to end; :class:`TimeoutError` after ``timeout`` seconds."""
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.returncode = -1
            else:
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while (code := self.poll()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"process {self.pid} still running after {timeout} s")
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
        return code

    def kill(self) -> None:
        """SIGKILL it (nothing if it has already ended)."""
        if self.poll() is None:
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Read both pipes to their end, then wait; :class:`TimeoutError` after ``timeout``."""
        import select

        deadline = None if timeout is None else time.monotonic() + timeout
        chunks: dict[int, list[bytes]] = {}
        streams = [s for s in (self.stdout, self.stderr) if s is not None and not s.closed]
        poller = select.poll()
        for stream in streams:
            chunks[stream.fileno()] = []
            poller.register(stream.fileno(), select.POLLIN)
        open_fds = set(chunks)
        while open_fds:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"process {self.pid} still writing after {timeout} s")
            for fd, _event in poller.poll(None if left is None else left * 1000):
                data = os.read(fd, 1 << 16)
                if data:
                    chunks[fd].append(data)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
        out = b"".join(chunks[self.stdout.fileno()]) if self.stdout in streams else b""
        err = (
            b"".join(chunks[self.stderr.fileno()])
            if self.stderr is not None and self.stderr in streams
            else b""
        )
        for stream in streams:
            stream.close()
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return out, err


def _spawn(argv: Sequence[str], *, env: Mapping[str, str], stderr: bool = True) -> Spawned:
    """Start ``argv`` (looked up on PATH) with stdin from the null device.

    Its output goes to a pipe (:attr:`Spawned.stdout`), and so does its error
    output when ``stderr`` (else to the null device).  Signals this process
    ignores (``SIGPIPE``: Python ignores it) are reset to their defaults in the
    program, as ``subprocess`` does.  Raises :class:`OSError` when it cannot start.
    """
    import signal

    out_read, out_write = os.pipe()  # (not inherited: only the dup2 copies are)
    err_read, err_write = os.pipe() if stderr else (None, None)
    actions: list[tuple[Any, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out_write, 1),
        (os.POSIX_SPAWN_DUP2, err_write, 2)
        if err_write is not None
        else (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    reset = [s for s in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None)) if s is not None]
    try:
        pid = os.posix_spawnp(argv[0], list(argv), dict(env), file_actions=actions, setsigdef=reset)
    except BaseException:
        for fd in (out_read, out_write, err_read, err_write):
            if fd is not None:
                os.close(fd)
        raise
    os.close(out_write)
    if err_write is not None:
        os.close(err_write)
    return Spawned(pid, out_read, err_read)


spawn = _spawn if hasattr(os, "posix_spawnp") else None


def _timed(proc: Any, method: str, timeout: float | None) -> Any:
    """``proc.<method>(timeout=...)`` for a :class:`Spawned` or a ``subprocess.Popen``.

    None when it timed out (:class:`TimeoutError`, ``subprocess.TimeoutExpired``).
    """
    expired: tuple[type[BaseException], ...] = (TimeoutError,)
    if not isinstance(proc, Spawned):
        import subprocess

        expired = (subprocess.TimeoutExpired,)
    try:
        return getattr(proc, method)(timeout=timeout)
    except expired:
        return None


def wait(proc: Any, timeout: float | None) -> int | None:
    """``proc.wait(timeout=...)``; None on time-out."""
    code: int | None = _timed(proc, "wait", timeout)
    return code


def communicate(proc: Any, timeout: float | None) -> tuple[bytes, bytes] | None:
    """``proc.communicate(timeout=...)``; None on time-out."""
    got = _timed(proc, "communicate", timeout)
    if got is None:
        return None
    out, err = got
    return out or b"", err or b""
