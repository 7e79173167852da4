"""Locks that hold on NFS: a lock file created with ``O_CREAT | O_EXCL``, the mechanism the claims
of balanced shards use (``snakebatch.infer.claims``), never ``flock``.

Of any number of processes creating the same file with ``O_EXCL`` exactly one succeeds, also over
NFS v3 and later, where ``flock`` is emulated per client (or not at all) and may let two holders in.
The lock file names its holder (JSON: host, pid, time); the holder removes it on release. A holder
that died leaves its file behind, so a waiter **breaks** a lock when

1. its holder ran on this host and that process has exited (or its pid now names a process
   started after the lock was taken: the pid was reused);
2. its holder ran on another host and it is stale: its mtime (the holder's heartbeat, refreshed by
   ``FileLock.refresh``) is older than ``stale_after_s`` - a holder on another node that was killed
   or lost its node (a live holder on this host is never broken by age: it may be stopped or
   slow, and would go on writing after a breaker took the lock). ``None``:
   never by age (a lock whose holders all run on this host, as the GPU locks);
3. it cannot be read (its holder died between creating and writing it, or an older snakebatch
   left an empty ``flock`` file there) and is older than ``UNREADABLE_GRACE_S``.

Two waiters breaking the same dead lock at once must not remove a fresh lock the faster one took
meanwhile: a breaker first creates ``{path}.break`` (again ``O_EXCL``), checks the lock file is
still the one it judged (same inode and text), removes it and removes ``{path}.break``. A
``.break`` file older than ``BREAK_STALE_S`` was left by a breaker that died and is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass

UNREADABLE_GRACE_S = 5.0  # an unreadable lock file older than this is broken (writing it takes microseconds)
BREAK_STALE_S = 10.0  # a ``.break`` file older than this was left by a breaker that died


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: ``host`` name, ``pid`` there, ``at`` (``time.time()`` when taken, s)."""

    host: str
    pid: int
    at: float

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "at": self.at})

    @classmethod
    def from_json(cls, text: str) -> LockHolder:
        """Raises ValueError, KeyError or TypeError for text that is not a holder record."""
        data = json.loads(text)
        return cls(str(data["host"]), int(data["pid"]), float(data["at"]))


def process_gone(pid: int, since: float) -> bool:
    """True when no process ``pid`` runs on this host, or the one that does is a zombie or
    started after ``since`` (``time.time()`` seconds: its pid was reused)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() == psutil.STATUS_ZOMBIE or process.create_time() > since + 1.0
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # AccessDenied: it exists
        return False


def _create(path: str, text: str) -> bool:
    """Create ``path`` holding ``text``; False when it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)
    return True


def _read(path: str) -> tuple[int, str] | None:
    """``(inode, text)`` of the lock file ``path``; None when it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return os.fstat(handle.fileno()).st_ino, handle.read()
    except FileNotFoundError:
        return None


class FileLock:
    """An exclusive lock on ``path`` (the lock file itself; its folder is created) that holds on
    NFS (see the module doc). ``stale_after_s``: seconds without a heartbeat after which a holder
    on another host is presumed dead (None: never); ``poll_s``: seconds between tries while
    waiting. ``host`` and ``pid`` default to this process's. Not reentrant.

    ``with FileLock(path):`` waits for the lock; ``try_acquire()`` takes it only if free now."""

    def __init__(self, path: str, stale_after_s: float | None = 60.0, poll_s: float = 0.02,
                 host: str | None = None, pid: int | None = None) -> None:
        self.path = path
        self.stale_after_s = stale_after_s
        self.poll_s = poll_s
        self.holder = LockHolder(host if host is not None else socket.gethostname(),
                                 pid if pid is not None else os.getpid(), 0.0)
        self.held = False
        self.broke: str | None = None  # why the last lock this one broke was void

    def try_acquire(self) -> bool:
        """Take the lock if it is free or void (then ``broke`` says why); False when a live
        holder has it. Raises OSError when the lock file cannot be created (a missing permission)."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        for _ in range(3):  # free, or void and broken: try again; a live holder: give up
            self.holder = LockHolder(self.holder.host, self.holder.pid, time.time())
            if _create(self.path, self.holder.to_json()):
                self.held = True
                return True
            seen = _read(self.path)
            if seen is None:
                continue  # released meanwhile
            reason = self.void_reason(seen[1])
            if reason is None or not self._break(seen):
                return False
            self.broke = reason
        return False

    def acquire(self, timeout_s: float | None = None) -> None:
        """Wait for the lock; raises TimeoutError after ``timeout_s`` seconds (None: no limit)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"lock {self.path!r} is held by {self.read_holder()}")
            time.sleep(self.poll_s)

    def release(self) -> None:
        """Remove the lock file if it still names this holder (a lock broken as stale and taken by
        another is left to that one)."""
        if not self.held:
            return
        self.held = False
        seen = _read(self.path)
        if seen is not None and seen[1] == self.holder.to_json():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def refresh(self) -> None:
        """The holder's heartbeat: refresh the lock file's mtime (a long holder calls it well
        within ``stale_after_s``)."""
        with contextlib.suppress(OSError):
            os.utime(self.path)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def read_holder(self) -> LockHolder | None:
        """The current holder, or None when the lock is free or its file cannot be read."""
        seen = _read(self.path)
        try:
            return None if seen is None else LockHolder.from_json(seen[1])
        except (ValueError, KeyError, TypeError):
            return None

    def void_reason(self, text: str, now: float | None = None) -> str | None:
        """Why the lock whose file holds ``text`` is void (rules in the module doc), or None."""
        now = time.time() if now is None else now
        try:
            holder = LockHolder.from_json(text)
        except (ValueError, KeyError, TypeError):
            holder = None
        if holder is not None and holder.host == self.holder.host:  # rule 1; a live one here is never stale
            return f"its holder (pid {holder.pid}) has exited" if process_gone(holder.pid, holder.at) else None
        try:
            age = now - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return "it was released"
        if holder is None:
            return f"it cannot be read and is {age:.0f} s old" if age > UNREADABLE_GRACE_S else None
        if self.stale_after_s is not None and age > self.stale_after_s:
            return f"its holder (pid {holder.pid} on {holder.host}) gave no sign of life for {age:.0f} s"
        return None

    def _break(self, seen: tuple[int, str]) -> bool:
        """Remove the lock file if it is still ``seen`` (inode, text), under ``{path}.break``;
        False when another breaker is at work (or the file changed)."""
        guard = self.path + ".break"
        if not _create(guard, self.holder.to_json()):
            with contextlib.suppress(FileNotFoundError):
                if time.time() - os.stat(guard).st_mtime > BREAK_STALE_S:
                    os.unlink(guard)  # its breaker died; the next try breaks again
            return False
        try:
            if _read(self.path) != seen:
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(guard)
