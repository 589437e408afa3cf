"""Guarding the database file: integrity first, clear local-state errors, and the last failure on record.

* :func:`check_integrity` — a cheap check before any write and in ``litmon status``: the file header,
  the page count against the file size, then ``PRAGMA quick_check`` (its false "NULL value" reports on
  SQLite 3.40 WITHOUT ROWID tables are confirmed against the data, see :mod:`crawler.maintenance`).
  A damaged file raises :class:`DamagedDatabase`; litmon then writes nothing into it.
* :func:`explain` — turns an ``sqlite3``/``OSError`` into a :class:`LocalStateError` that names the
  path and the fix (read-only directory, disk full, missing directory, a lock held by another
  program, named by PID from ``/proc/locks``). Only real damage gets the backup advice.
* :func:`record_failure` / :func:`load_failure` — a run that cannot write into the database (locked,
  disk full, read-only) still leaves its failure where ``litmon status`` finds it: a small JSON file
  beside the database (``<database>.last-failure``), removed by the next run that succeeds.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

from crawler import clock
from crawler.errors import LitmonError

HEADER = b"SQLite format 3\x00"


class DamagedDatabase(LitmonError):
    """The database file fails its integrity check: nothing is written into it."""

    def __init__(self, path: Path, problems: list[str]):
        self.path, self.problems = Path(path), problems
        super().__init__(
            f"the database {path} is damaged ({'; '.join(problems[:3])}); nothing was written into it — check: "
            f"`litmon check` for details; restore the newest copy made by `litmon backup` (or move the file aside "
            f"to start afresh)"
        )


class LocalStateError(LitmonError):
    """A problem of the machine litmon runs on (permissions, disk space, paths, locks), not of the data."""


def check_integrity(path: str | Path) -> list[str]:
    """Problems found by a quick check of the file (empty: sound, or no file yet). A file that cannot be
    read because of the machine (permissions, a lock, a full disk) raises :class:`LocalStateError`."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, "rb") as handle:
        head = handle.read(100)
    if not head.startswith(HEADER):
        return ["the file does not start with the SQLite header"]
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    from crawler.maintenance import CheckResult, _drop_false_null_reports

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        if _not_damage(exc):
            raise explain(exc, path) from None
        return [f"cannot open it: {exc}"]
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        wal = Path(f"{path}-wal")
        if not wal.exists() and pages * page_size > path.stat().st_size:
            return [f"the header counts {pages} pages of {page_size} bytes, but the file is {path.stat().st_size} bytes"]
        verdicts = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if verdicts != ["ok"]:
            verdicts = _drop_false_null_reports(conn, verdicts, CheckResult())
        return [] if verdicts == ["ok"] else [f"quick_check: {v}" for v in verdicts[:20]]
    except sqlite3.DatabaseError as exc:
        if _not_damage(exc):
            raise explain(exc, path) from None
        return [f"cannot read it: {exc}"]
    finally:
        conn.close()


def _not_damage(exc: sqlite3.Error) -> bool:
    """Errors of the machine, not of the file: a read-only directory (a WAL database cannot even be read
    without creating its -shm file), a lock, a full disk. They never get the backup advice."""
    lowered = str(exc).lower()
    return any(word in lowered for word in ("readonly", "read-only", "unable to open", "locked", "busy", "disk is full"))


def ensure_sound(path: str | Path) -> None:
    problems = check_integrity(path)
    if problems:
        raise DamagedDatabase(Path(path), problems)


def unwritable(database: str | Path) -> list[str]:
    """Why the user running this cannot write the database (its directory, the file, or its -wal/-shm):
    ``litmon status`` says so even when a failed run could not leave its failure beside the database."""
    database = Path(database)
    folder = database.parent.resolve() if str(database.parent) else Path.cwd()
    blocked = [
        p
        for p in (folder, database, Path(f"{database}-wal"), Path(f"{database}-shm"))
        if p.exists() and not os.access(p, os.W_OK)
    ]
    if not blocked:
        return []
    names = " ".join(str(p) for p in blocked)
    return [
        f"cannot write the database {database}: {names} {'is' if len(blocked) == 1 else 'are'} not writable by this user "
        f"(uid {os.geteuid()}); runs cannot store anything — check: `ls -ld {names}` (the user running litmon must be "
        "able to write them)"
    ]


def lock_holders(path: str | Path) -> list[str]:
    """The other processes holding a POSIX lock on the database or its -shm/-wal files (Linux /proc/locks)."""
    inodes = set()
    for candidate in (Path(path), Path(f"{path}-shm"), Path(f"{path}-wal")):
        try:
            inodes.add(candidate.stat().st_ino)
        except OSError:
            pass
    holders: dict[int, str] = {}
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] not in ("POSIX", "OFDLCK"):
            continue
        try:
            pid, inode = int(fields[4]), int(fields[5].split(":")[-1])
        except ValueError:
            continue
        if inode in inodes and pid > 0 and pid != os.getpid():
            holders[pid] = _command_of(pid)
    return [f"pid {pid} ({command})" if command else f"pid {pid}" for pid, command in sorted(holders.items())]


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:120]


def explain(exc: BaseException, database: str | Path, *, busy_seconds: float | None = None) -> LitmonError:
    """What an sqlite3 or OS error means for the operator, naming the path and the fix."""
    database = Path(database)
    folder = database.parent.resolve() if str(database.parent) else Path.cwd()
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, sqlite3.Error):
        if "locked" in lowered or "busy" in lowered:
            holders = lock_holders(database)
            who = (
                f"held by {', '.join(holders)}" if holders else "held by another program (an sqlite3 shell, Datasette, a script)"
            )
            waited = f" for {busy_seconds:g}s ([database] busy_timeout)" if busy_seconds else ""
            return LocalStateError(
                f"the database {database} stayed locked{waited}: its write lock is {who} — check: end that program's "
                f"open write transaction (COMMIT or ROLLBACK); litmon wrote nothing it did not commit and the next run "
                f"continues"
            )
        if "readonly" in lowered or "read-only" in lowered:
            return LocalStateError(
                f"cannot write the database {database}: the file or its directory {folder} is read-only (SQLite needs "
                f"to create {database.name}-wal and -shm beside it) — check: permissions and owner of both, e.g. "
                f"`ls -ld {folder} {database}` (the user running litmon must be able to write them)"
            )
        if "disk is full" in lowered or ("disk i/o" in lowered and _disk_full(folder)):
            return _disk_full_error(database, folder)
        if "unable to open" in lowered:
            if not folder.exists():
                return LocalStateError(
                    f"cannot open the database {database}: the directory {folder} does not exist — check: [database] "
                    f"path in the config, or create the directory (`mkdir -p {folder}`)"
                )
            return LocalStateError(
                f"cannot open the database {database}: the directory {folder} is not writable or the file is not "
                f"readable — check: `ls -ld {folder} {database}` (the user running litmon must be able to write them)"
            )
        if "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
            return DamagedDatabase(database, [text])
        return LocalStateError(f"database error on {database}: {text} — check: `litmon check`")
    if isinstance(exc, OSError):
        where = exc.filename or database
        if exc.errno == errno.ENOSPC:
            return _disk_full_error(Path(where), Path(where).parent)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return LocalStateError(
                f"cannot write {where}: permission denied ({exc.strerror}) — check: the owner and permissions of "
                f"{Path(where).parent} (`ls -ld {Path(where).parent}`); the user running litmon must be able to write there"
            )
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            return LocalStateError(
                f"cannot write {where}: {exc.strerror} (a file stands where a directory is expected) — check: the path "
                f"in the config ([database] path, [outbox] dir)"
            )
        if exc.errno == errno.ENOENT:
            return LocalStateError(
                f"cannot write {where}: the directory {Path(where).parent} does not exist — check: the path in the config "
                f"([database] path, [outbox] dir), or create it"
            )
        return LocalStateError(f"cannot write {where}: {exc.strerror or exc} — check: that path and its directory")
    return LitmonError(text)


def _disk_full(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _disk_full_error(path: Path, folder: Path) -> LocalStateError:
    return LocalStateError(
        f"the disk holding {path} is full — check: free space on it (`df -h {folder}`); nothing stored is lost "
        f"(SQLite rolled the unfinished batch back) and the next run continues"
    )


def failure_path(database: str | Path) -> Path:
    database = Path(database)
    return database.with_name(database.name + ".last-failure")


def record_failure(database: str | Path, command: str, message: str) -> None:
    """Leave the failure where `litmon status` finds it, even when the database cannot be written."""
    try:
        failure_path(database).write_text(
            json.dumps({"at": clock.stamp(), "command": command, "error": message}, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
    except OSError:
        pass  # the directory itself is not writable: the error on stderr is all there is


def load_failure(database: str | Path) -> dict | None:
    try:
        return json.loads(failure_path(database).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def clear_failure(database: str | Path) -> None:
    try:
        failure_path(database).unlink(missing_ok=True)
    except OSError:
        pass
