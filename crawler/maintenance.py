"""Maintenance: an online backup of the database and an integrity check.

``backup`` uses SQLite's online backup API (``sqlite3.Connection.backup``): it copies a consistent
snapshot while litmon may be writing (no lock needed), into ``<dest>.partial``, checks the copy with
``PRAGMA integrity_check``, switches it to a self-contained rollback journal, and renames it into
place. ``check`` runs ``PRAGMA integrity_check`` (or ``quick_check``), ``PRAGMA foreign_key_check``
and litmon's own consistency checks. Neither writes to the database.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from crawler import clock
from crawler.errors import LitmonError


def backup_target(database: Path, dest: str | Path) -> Path:
    """A directory gets ``litmon-<UTC timestamp>.db`` inside; anything else is the file name."""
    dest = Path(dest).expanduser()
    if dest.is_dir():
        stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
        dest = dest / f"{database.stem}-{stamp}.db"
    return dest


def backup_database(database: Path, dest: Path, *, overwrite: bool = False) -> dict:
    database = Path(database)
    if not database.exists():
        raise LitmonError(f"no database at {database} — check [database] path in the config")
    if dest.exists() and not overwrite:
        raise LitmonError(f"{dest} exists; choose another path or pass --force to replace it")
    if dest.exists() and dest.resolve() == database.resolve():
        raise LitmonError(f"{dest} is the database itself; choose another path")
    if not dest.parent.is_dir():
        raise LitmonError(f"directory {dest.parent} does not exist; create it first")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(database, timeout=30)
    target = sqlite3.connect(partial)
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        source.backup(target)  # all pages in one step: a consistent snapshot
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        verdict = target.execute("PRAGMA integrity_check").fetchone()[0]
        pages = target.execute("PRAGMA page_count").fetchone()[0]
    except sqlite3.Error as exc:
        target.close()
        partial.unlink(missing_ok=True)
        raise LitmonError(f"backup of {database} to {dest} failed: {exc}") from None
    finally:
        source.close()
    target.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise LitmonError(f"the backup copy of {database} fails its integrity check ({verdict}); run `litmon check`")
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, dest)
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return {"path": str(dest), "size_bytes": dest.stat().st_size, "pages": pages}


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


#: (what is wrong, SQL counting the rows that show it)
CONSISTENCY_CHECKS = (
    (
        "records whose work does not exist",
        "SELECT COUNT(*) FROM records r LEFT JOIN works w ON w.id = r.work_id WHERE w.id IS NULL",
    ),
    (
        "records attached to a merged work",
        "SELECT COUNT(*) FROM records r JOIN works w ON w.id = r.work_id WHERE w.merged_into IS NOT NULL",
    ),
    (
        "identifiers whose work differs from their record's",
        "SELECT COUNT(*) FROM identifiers i JOIN records r ON r.id = i.record_id WHERE i.work_id != r.work_id",
    ),
    (
        "works merged into a work that is itself merged",
        "SELECT COUNT(*) FROM works a JOIN works b ON b.id = a.merged_into WHERE b.merged_into IS NOT NULL",
    ),
    (
        "current works without any record",
        "SELECT COUNT(*) FROM works w WHERE w.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM records r WHERE r.work_id = w.id)",
    ),
)


_NULL_REPORT_RE = re.compile(r"^NULL value in ([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$")


def _drop_false_null_reports(conn, verdicts: list[str], result: CheckResult) -> list[str]:
    """Confirm quick_check's "NULL value in T.C" reports with a query; drop those the data disproves.

    SQLite 3.40.0–3.41.0 ``quick_check`` mis-reads NOT NULL columns of a WITHOUT ROWID table whose
    PRIMARY KEY lists the columns in another order than the table does (``match_keys``): it reports
    "NULL value in match_keys.record_id" for every row of a sound table, while ``integrity_check``
    says ok. A report is kept when a row really holds a NULL there.
    """
    kept, dropped = [], set()
    for verdict in verdicts:
        match = _NULL_REPORT_RE.match(verdict)
        if match:
            table, column = match.groups()
            try:
                nulls = conn.execute(f'SELECT COUNT(*) FROM "{table}" WHERE "{column}" IS NULL').fetchone()[0]
            except sqlite3.DatabaseError:
                nulls = 1
            if nulls == 0:
                dropped.add(f"{table}.{column}")
                continue
        kept.append(verdict)
    if dropped:
        result.notes.append(
            f"quick_check reported NULL values in {', '.join(sorted(dropped))}, but no row holds one: a known false report "
            f"of SQLite {sqlite3.sqlite_version} on WITHOUT ROWID tables (integrity_check is not affected); ignored"
        )
    return kept or ["ok"]


def _check_consistency(conn: sqlite3.Connection, result: CheckResult, *, lock_held: bool) -> None:
    """Foreign keys, litmon's own consistency checks, and crawl runs left 'running' by a killed process."""
    fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    if fk:
        tables = sorted({row[0] for row in fk})
        result.problems.append(f"foreign_key_check: {len(fk)} row(s) point at missing rows (tables: {', '.join(tables)})")
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if {"works", "records", "identifiers"} <= names:
        for what, sql in CONSISTENCY_CHECKS:
            count = conn.execute(sql).fetchone()[0]
            if count:
                result.problems.append(f"{count} {what}")
    if "crawl_runs" in names:
        running = conn.execute("SELECT COUNT(*) FROM crawl_runs WHERE status = 'running'").fetchone()[0]
        if running and not lock_held:
            result.notes.append(
                f"{running} crawl run(s) still marked 'running' while no litmon process runs: left by a killed "
                "process; the next run marks them interrupted"
            )


def check_database(database: Path, *, quick: bool = False, lock_held: bool = False, storage_checked: bool = False) -> CheckResult:
    """``PRAGMA integrity_check`` (``quick``: ``quick_check``) and litmon's consistency rules.

    ``storage_checked``: the caller has just run :func:`crawler.dbguard.check_integrity` (a quick check)
    and found the file sound: only the consistency rules run (a quick check reads every page: on a large
    file it is the slow part, and once is enough)."""
    database = Path(database)
    if not database.exists():
        raise LitmonError(f"no database at {database} — check [database] path in the config")
    result = CheckResult()
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        pragma = "quick_check" if quick or storage_checked else "integrity_check"
        verdicts = ["ok"] if storage_checked else [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
        if quick and verdicts != ["ok"]:
            verdicts = _drop_false_null_reports(conn, verdicts, result)
        if verdicts != ["ok"]:
            result.problems.extend(f"{pragma}: {v}" for v in verdicts[:20])
        _check_consistency(conn, result, lock_held=lock_held)
        result.notes.append(
            f"{pragma}: {'ok' if verdicts == ['ok'] else 'FAILED'}; "
            f"{conn.execute('PRAGMA page_count').fetchone()[0]} pages of {conn.execute('PRAGMA page_size').fetchone()[0]} bytes"
        )
    except sqlite3.DatabaseError as exc:
        result.problems.append(f"cannot read the database: {exc}")
    finally:
        conn.close()
    return result
