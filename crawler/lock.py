"""The run lock: one litmon process writes to a database at a time.

The lock is ``fcntl.flock`` on ``<database>.lock`` (e.g. ``litmon.db.lock``), with the holder's PID,
command and start time written into the file. The kernel releases a flock when the process that
holds it exits, however it exits (crash, ``kill -9``, power loss of a container), so a lock can never
be left behind: the file may still name a dead PID, but nobody holds it, and the next run takes it
over (and logs that it recovered a stale lock). The file itself is never deleted (deleting a
locked file lets two processes lock two different files); it is emptied on release.

flock works on local file systems and bind mounts; on NFS it depends on the server (use a local disk).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from crawler import clock
from crawler.errors import LockedError

log = logging.getLogger("crawler.lock")

#: seconds a busy lock is retried before giving up, even with wait=0
GRACE = 0.5

#: the locks this process holds: a forked child (crawler.fetch_worker) closes its copies of them
_HELD: weakref.WeakSet[RunLock] = weakref.WeakSet()


def _drop_in_child() -> None:
    """In a forked child: close the inherited descriptors of the held locks, never unlock them (the flock
    belongs to the open file, which the parent keeps), so that the lock ends with the parent alone."""
    for lock in list(_HELD):
        if lock._fd is not None:
            os.close(lock._fd)
            lock._fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_in_child)


def lock_path(database_path: str | Path) -> Path:
    database_path = Path(database_path)
    return database_path.with_name(database_path.name + ".lock")


@dataclass
class Holder:
    pid: int | None
    command: str
    since: str

    def describe(self) -> str:
        parts = [f"pid {self.pid}" if self.pid else "an unknown process"]
        if self.command:
            parts.append(f"`litmon {self.command}`")
        if self.since:
            parts.append(f"since {self.since}")
        return ", ".join(parts)


def read_holder(path: Path) -> Holder | None:
    """What the lock file says (the current holder, or the last one if it died), or None if empty."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return None
    pid = int(lines[0]) if lines[0].strip().isdigit() else None
    fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    return Holder(pid, fields.get("command", ""), fields.get("since", ""))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``with RunLock(path, "run"):`` — raises LockedError when another process holds it."""

    def __init__(self, path: str | Path, command: str):
        self.path = Path(path)
        self.command = command
        self._fd: int | None = None
        #: the holder recorded by a process that died without releasing (set by acquire)
        self.recovered: Holder | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0, stop: threading.Event | None = None, poll: float = 1.0) -> RunLock:
        """Take the lock, waiting up to ``wait`` seconds (0: fail at once); LockedError if still held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # `litmon status` probes the lock with a shared flock for a moment: never give up within GRACE
        deadline = time.monotonic() + max(wait, GRACE)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    os.close(fd)
                    holder = read_holder(self.path)
                    who = holder.describe() if holder else "another litmon process"
                    raise LockedError(f"another litmon run is in progress ({who}) and holds the lock {self.path}") from None
                pause = min(0.05 if wait <= GRACE else poll, max(deadline - time.monotonic(), 0.01))
                if stop is not None:
                    stop.wait(pause)
                else:
                    time.sleep(pause)
        previous = read_holder(self.path)
        if previous:  # a clean release empties the file: whoever wrote this died holding the lock
            self.recovered = previous
            log.warning(
                "recovered a stale lock %s left by %s (that process is gone; the kernel released its lock)",
                self.path,
                previous.describe(),
            )
        since = clock.stamp()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\ncommand={self.command}\nsince={since}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        _HELD.add(self)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            _HELD.discard(self)

    def __enter__(self) -> RunLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def probe(path: str | Path) -> Holder | None:
    """Who holds the lock right now (without taking it), or None when it is free."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(path) or Holder(None, "", "")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
