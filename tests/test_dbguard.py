"""Integrity first, and local-state errors that name the path and the fix (#16): litmon refuses to write
into a damaged database (run exits 1, status unhealthy, backup advice only then); a write lock held by
another program is waited for, then named; permissions, disk space and paths are said plainly."""

from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
import subprocess
import sys

import pytest

from crawler import dbguard, ingest
from crawler.sources import pubmed
from tests.conftest import fixture_bytes
from tests.helpers.cli import litmon
from tests.helpers.ops import write_config


def make_database(path, copies=40):
    db = ingest.open_db(path)
    records = pubmed.parse_efetch(fixture_bytes("pubmed", "efetch_batch1.xml"))
    for n in range(copies):
        batch = []
        for r in records:
            r.source_id = f"{r.source_id.split('-')[0]}-{n}"
            r.identifiers = [("pmid", r.source_id)]
            r.abstract = (r.abstract or "") + " padding" * 50
            batch.append(r)
        ingest.save_batch(db, batch, now="2026-11-20 06:00:00")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def corrupt(path):
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    middle = (len(data) // page // 2) * page
    noise = hashlib.sha256(b"litmon").digest() * (page // 32)  # "random bytes written into the middle"
    data[middle : middle + page] = noise[:page]
    path.write_bytes(bytes(data))


def digest_of(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_database_is_never_written_and_status_says_unhealthy(tmp_path):
    config = write_config(tmp_path)
    database = tmp_path / "litmon.db"
    make_database(database)
    assert dbguard.check_integrity(database) == []
    corrupt(database)
    before = digest_of(database)

    run = litmon("--config", config, "run", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert f"the database {database} is damaged" in run.stderr and "litmon backup" in run.stderr
    assert "Traceback" not in run.stderr
    assert digest_of(database) == before  # nothing written into it
    assert not (tmp_path / "outbox").exists()

    status = litmon("--config", config, "status", "--json", cwd=tmp_path)
    assert status.returncode == 4, status.stdout + status.stderr
    info = json.loads(status.stdout)
    assert info["healthy"] is False and "is damaged" in info["alerts"][0]


def test_a_sound_database_gets_no_backup_advice_on_a_local_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the outbox directory should be")
    config = write_config(tmp_path, "")
    text = open(config).read().replace(f'dir = "{tmp_path / "outbox"}"', f'dir = "{blocker}"')
    open(config, "w").write(text)

    run = litmon("--config", config, "run", "--force-digest", cwd=tmp_path)
    assert run.returncode == 1
    assert f"cannot write {blocker}" in run.stderr and "[outbox] dir" in run.stderr
    assert "Traceback" not in run.stderr and "backup" not in run.stderr and "damaged" not in run.stderr


def test_a_database_path_under_a_file_names_the_path(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("x")
    config = write_config(tmp_path)
    text = open(config).read().replace(f'path = "{tmp_path / "litmon.db"}"', f'path = "{blocker / "litmon.db"}"')
    open(config, "w").write(text)

    run = litmon("--config", config, "run", cwd=tmp_path)
    assert run.returncode == 1
    assert str(blocker) in run.stderr and "check:" in run.stderr
    assert "Traceback" not in run.stderr and "backup" not in run.stderr


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def hold_write_lock(database, seconds):
    """An analyst's sqlite3 session holding BEGIN IMMEDIATE for ``seconds`` (a separate process)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(database), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_write_lock_held_by_another_program_is_waited_for(tmp_path):
    config = write_config(tmp_path)
    make_database(tmp_path / "litmon.db", copies=1)
    holder = hold_write_lock(tmp_path / "litmon.db", 1.5)
    try:
        run = litmon("--config", config, "crawl", cwd=tmp_path)
    finally:
        holder.wait(timeout=30)
    assert run.returncode == 0, run.stderr  # waited (default busy_timeout 60 s), then wrote


def test_a_write_lock_that_persists_fails_the_run_naming_the_holder_and_status_shows_it(tmp_path):
    config = write_config(tmp_path)
    text = open(config).read().replace("[database]\n", "[database]\nbusy_timeout = 1\n")
    open(config, "w").write(text)
    make_database(tmp_path / "litmon.db", copies=1)
    holder = hold_write_lock(tmp_path / "litmon.db", 30)
    try:
        run = litmon("--config", config, "crawl", cwd=tmp_path)
        assert run.returncode == 1
        assert "stayed locked for 1s ([database] busy_timeout)" in run.stderr
        assert f"held by pid {holder.pid} (" in run.stderr and "COMMIT or ROLLBACK" in run.stderr
        assert "Traceback" not in run.stderr and "backup" not in run.stderr
    finally:
        holder.kill()
        holder.wait(timeout=30)
    status = litmon("--config", config, "status", "--json", cwd=tmp_path)
    assert status.returncode == 4
    alerts = json.loads(status.stdout)["alerts"]
    assert any(a.startswith("`litmon crawl` at ") and "stayed locked" in a for a in alerts), alerts

    again = litmon("--config", config, "crawl", cwd=tmp_path)  # the lock is gone: the next run clears the alert
    assert again.returncode == 0, again.stderr
    assert json.loads(litmon("--config", config, "status", "--json", cwd=tmp_path).stdout)["healthy"] is True


@pytest.mark.parametrize(
    "error, expected",
    [
        (sqlite3.OperationalError("attempt to write a readonly database"), "is read-only (SQLite needs to create litmon.db-wal"),
        (sqlite3.OperationalError("database or disk is full"), "the disk holding"),
        (OSError(errno.ENOSPC, "No space left on device", "/srv/outbox/x.eml"), "the disk holding /srv/outbox/x.eml is full"),
        (
            PermissionError(errno.EACCES, "Permission denied", "/srv/outbox/x.eml"),
            "cannot write /srv/outbox/x.eml: permission denied",
        ),
        (sqlite3.OperationalError("unable to open database file"), "the directory"),
    ],
)
def test_local_state_errors_name_the_path_and_the_fix_without_backup_advice(tmp_path, error, expected):
    message = str(dbguard.explain(error, tmp_path / "missing" / "litmon.db"))
    assert expected in message and "check:" in message
    assert "backup" not in message and "damaged" not in message


def test_only_real_damage_gets_the_backup_advice(tmp_path):
    error = dbguard.explain(sqlite3.DatabaseError("database disk image is malformed"), tmp_path / "litmon.db")
    assert isinstance(error, dbguard.DamagedDatabase) and "litmon backup" in str(error)
