"""Integrity first, and local-state errors that name the path and the fix (#16): litmon refuses to write
into a damaged database (run exits 1, status unhealthy, backup advice only then); a write lock held by
another program is waited for, then named; permissions, disk space and paths are said plainly."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from crawler import dbguard, ingest
from crawler.sources import pubmed
from tests.conftest import BASE_CONFIG, fixture_bytes, skip_subprocess_when_travelling
from tests.helpers.cli import litmon, litmon_env
from tests.helpers.ops import PubMedServer, pubmed_section, write_config


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

    for command in (["crawl"], ["digest"], ["reclassify"]):  # every command that writes refuses it, exit 1
        refused = litmon("--config", config, *command, cwd=tmp_path)
        assert refused.returncode == 1, (command, refused.stderr)
        assert f"the database {database} is damaged" in refused.stderr and "Traceback" not in refused.stderr
    assert digest_of(database) == before

    # status judges, so it answers with its own "unhealthy" code (4), as for every other reason
    status = litmon("--config", config, "status", "--json", cwd=tmp_path)
    assert status.returncode == 4, status.stdout + status.stderr
    info = json.loads(status.stdout)
    assert info["healthy"] is False and "is damaged" in info["alerts"][0]
    text = litmon("--config", config, "status", cwd=tmp_path)
    assert text.returncode == 4 and text.stdout.startswith(f"UNHEALTHY: the database {database} is damaged")


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


# --------------------------------------------------------------------------- the machine's faults, for real
#
# The suite usually runs as root, whom permissions do not bind: litmon then runs as an unprivileged user
# (``nobody``, set in the child before exec). A full disk is a real small filesystem: a tmpfs mounted
# with ``size=`` (ENOSPC, the error path of a full disk; RLIMIT_FSIZE gives EFBIG/SIGXFSZ instead).


def unprivileged_user() -> list[str] | None:
    """The command prefix that runs litmon as an unprivileged user (None: this process is one), or skip.

    ``setpriv`` (util-linux) when present, else ``runuser``: both switch user, group and groups before exec."""
    if os.geteuid() != 0:
        return None  # permissions already bind this process and its children
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("the tests run as root and no unprivileged user (nobody) exists to run litmon as")
    if shutil.which("setpriv"):
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    elif shutil.which("runuser"):
        prefix = ["runuser", "-u", "nobody", "--"]
    else:
        pytest.skip("the tests run as root and neither setpriv nor runuser is installed to run litmon as nobody")
    probe = subprocess.run([*prefix, sys.executable, "-c", "import crawler"], env=litmon_env(), capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot run this checkout's Python: {probe.stderr.strip()[-200:]}")
    return prefix


def nobody_ids() -> tuple[int, int]:
    user = pwd.getpwnam("nobody")
    return user.pw_uid, user.pw_gid


def litmon_as(prefix, *args, cwd):
    skip_subprocess_when_travelling()
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "crawler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=litmon_env(),
    )


def give(prefix, *paths: Path) -> None:
    """Make ``paths`` belong to the user litmon runs as."""
    owner = nobody_ids() if prefix else (os.getuid(), os.getgid())
    for path in paths:
        os.chown(path, *owner)


@pytest.fixture
def shared_dir():
    """A directory every user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="litmon-perm-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def config_in(folder: Path, database: Path, outbox: Path) -> str:
    text = BASE_CONFIG.format(db=database, outbox=outbox)
    path = folder / "litmon.toml"
    path.write_text(text)
    path.chmod(0o644)
    return str(path)


def stored(database: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT source, source_id, content_hash FROM records ORDER BY id").fetchall()
    finally:
        conn.close()


def test_a_read_only_database_directory_is_named_with_its_fix_and_nothing_is_lost(shared_dir):
    demote = unprivileged_user()
    data = shared_dir / "data"
    data.mkdir()
    database = data / "litmon.db"
    make_database(database, copies=2)
    (data / "litmon.db.lock").touch()
    (data / "litmon.db.lock").chmod(0o666)  # so that the database itself, not the run lock, meets the permission
    data.chmod(0o555)  # read-only for everyone but root: SQLite cannot create litmon.db-wal and -shm
    config = config_in(shared_dir, database, shared_dir / "outbox")
    before, records = digest_of(database), stored(database)

    run = litmon_as(demote, "--config", config, "run", cwd=shared_dir)
    assert run.returncode == 1, run.stderr
    assert f"cannot write the database {database}: the file or its directory {data} is read-only" in run.stderr
    assert f"`ls -ld {data} {database}`" in run.stderr  # the fix: the permissions of both
    assert "Traceback" not in run.stderr and "backup" not in run.stderr and "damaged" not in run.stderr
    assert digest_of(database) == before and stored(database) == records

    # status says so, whether SQLite can still read the file (no -wal left) or not
    status = litmon_as(demote, "--config", config, "status", cwd=shared_dir)
    assert status.returncode == 4, status.stdout + status.stderr
    assert f"cannot write the database {database}" in status.stdout and f"`ls -ld {data}" in status.stdout
    assert "backup" not in status.stdout and "damaged" not in status.stdout

    data.chmod(0o755)
    (shared_dir / "outbox").mkdir()
    give(demote, data, *data.iterdir(), shared_dir / "outbox")
    again = litmon_as(demote, "--config", config, "run", cwd=shared_dir)  # fixed: the next run works
    assert again.returncode == 0, again.stderr
    assert stored(database) == records


def test_an_unwritable_outbox_is_a_failed_delivery_naming_the_folder(shared_dir):
    demote = unprivileged_user()
    data, outbox = shared_dir / "data", shared_dir / "outbox"
    data.mkdir()
    outbox.mkdir()
    database = data / "litmon.db"
    make_database(database, copies=2)
    give(demote, data, database)
    outbox.chmod(0o555)
    config = config_in(shared_dir, database, outbox)
    records = stored(database)

    run = litmon_as(demote, "--config", config, "run", "--force-digest", cwd=shared_dir)
    assert run.returncode == 1, run.stderr
    assert f"cannot write {outbox}/litmon-digest-00001.html.tmp: permission denied" in run.stderr
    assert f"`ls -ld {outbox}`" in run.stderr
    assert "Traceback" not in run.stderr and "backup" not in run.stderr and "damaged" not in run.stderr
    assert list(outbox.iterdir()) == []
    assert stored(database) == records  # the crawl's data is kept
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("SELECT status FROM digest_deliveries").fetchall() == [("failed",)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()

    status = litmon_as(demote, "--config", config, "status", cwd=shared_dir)
    assert status.returncode == 4
    assert "the last delivery failed" in status.stdout and f"cannot write {outbox}" in status.stdout

    outbox.chmod(0o777)  # fixed: the next run delivers the digest
    again = litmon_as(demote, "--config", config, "run", cwd=shared_dir)
    assert again.returncode == 0, again.stderr
    assert any(p.suffix == ".eml" for p in outbox.iterdir())


@pytest.fixture
def small_disk():
    """An 8 MB tmpfs (really full when full; room for a small database of 16 KiB pages and its WAL), or skip when this
    machine does not let us mount one."""
    mountpoint = Path(tempfile.mkdtemp(prefix="litmon-full-", dir="/tmp"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(
            f"a full disk needs a small filesystem: mounting a tmpfs failed (needs root with CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)
    mountpoint.rmdir()


def fill(folder: Path) -> Path:
    """Take every free byte of the filesystem holding ``folder``."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_named_with_its_fix_and_the_next_run_continues(tmp_path, small_disk, httpserver):
    PubMedServer(httpserver)
    database = small_disk / "litmon.db"
    make_database(database, copies=2)
    config = write_config(tmp_path, pubmed_section(httpserver))
    text = open(config).read().replace(f'path = "{tmp_path / "litmon.db"}"', f'path = "{database}"')
    open(config, "w").write(text)
    records = stored(database)
    filler = fill(small_disk)

    run = litmon("--config", config, "crawl", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert f"the disk holding {database} is full — check: free space on it (`df -h {small_disk}`)" in run.stderr
    assert "Traceback" not in run.stderr and "backup" not in run.stderr and "damaged" not in run.stderr
    assert stored(database) == records  # nothing stored was lost
    assert dbguard.check_integrity(database) == []

    filler.unlink()  # space freed: the next run stores the crawl
    again = litmon("--config", config, "crawl", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert set(records) < set(stored(database))
