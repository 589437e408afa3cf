"""The run lock: overlapping runs, stale locks of killed processes, and the lock's own contract."""

from __future__ import annotations

import os
import signal

import pytest

from crawler.errors import LockedError
from crawler.lock import RunLock, lock_path, probe, read_holder
from tests.helpers.cli import litmon
from tests.helpers.ops import PubMedServer, log_text, pubmed_section, query, start_litmon, wait_for, write_config


def test_two_concurrent_runs_one_works_the_other_exits_3(tmp_path, httpserver):
    server = PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver))
    lock_file = tmp_path / "litmon.db.lock"
    server.hold()
    first = start_litmon("--config", config, "run", cwd=tmp_path)
    try:
        wait_for(server.entered.is_set, what="the first run to reach the server")
        holder = read_holder(lock_file)
        assert holder.pid == first.pid and holder.command == "run"

        second = litmon("--config", config, "run", cwd=tmp_path)

        assert second.returncode == 3, second.stderr
        assert f"another litmon run is in progress (pid {first.pid}, `litmon run`, since " in second.stderr
        assert "this run did nothing and exits 3" in second.stderr
        assert "[pubmed]" not in second.stderr  # it crawled nothing
    finally:
        server.release()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "[pubmed] ok: 3 fetched, 3 new" in err
    assert query(tmp_path / "litmon.db", "SELECT trigger, status FROM crawl_runs") == [("run", "ok")]
    assert query(tmp_path / "litmon.db", "SELECT COUNT(*) FROM digests") == [(1,)]
    assert lock_file.read_text() == "" and probe(lock_file) is None


def test_a_killed_run_leaves_a_stale_lock_that_the_next_run_recovers(tmp_path, httpserver):
    server = PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver))
    lock_file = tmp_path / "litmon.db.lock"
    server.hold()
    victim = start_litmon("--config", config, "crawl", cwd=tmp_path)
    try:
        wait_for(server.entered.is_set, what="the crawl to reach the server")
        # (its fetch worker, forked before the database is opened, may reach the server before the run's rows exist)
        wait_for(
            lambda: query(tmp_path / "litmon.db", "SELECT status FROM source_runs") == [("running",)],
            what="the crawl to record its source run",
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        server.release()
    assert read_holder(lock_file).pid == victim.pid  # the file still names the dead process ...
    assert probe(lock_file) is None  # ... but the kernel released its flock
    assert query(tmp_path / "litmon.db", "SELECT status FROM crawl_runs") == [("running",)]

    result = litmon("--config", config, "crawl", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"recovered a stale lock {lock_file} left by pid {victim.pid}" in result.stderr
    assert "marked 1 crawl run(s) and 1 source run(s) left 'running' by a killed process as interrupted" in result.stderr
    assert query(tmp_path / "litmon.db", "SELECT id, status FROM crawl_runs ORDER BY id") == [(1, "interrupted"), (2, "ok")]
    assert query(tmp_path / "litmon.db", "SELECT crawl_run_id, status FROM source_runs ORDER BY id") == [
        (1, "interrupted"),
        (2, "ok"),
    ]
    # the interruption is not counted as a source failure
    assert query(tmp_path / "litmon.db", "SELECT consecutive_failures, last_failure_at FROM source_states") == [(0, None)]
    assert query(tmp_path / "litmon.db", "SELECT COUNT(*) FROM works") == [(3,)]


def test_sigterm_stops_a_run_during_a_network_wait_at_once_and_releases_the_lock(tmp_path, httpserver):
    """#16: the first SIGTERM ends a request the server holds open; the run does not wait for the answer."""
    server = PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver))
    server.hold()
    log = tmp_path / "run.log"
    run = start_litmon("--config", config, "run", cwd=tmp_path, log_file=log)
    try:
        wait_for(server.entered.is_set, what="the run to reach the server")
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=30)  # the server still holds the request: only the cut ends the run
    finally:
        server.release()
    err = log_text(log)

    assert run.returncode == 1, err
    assert "SIGTERM received: stopping now" in err
    assert "[pubmed] interrupted: 0 fetched, 0 new" in err
    assert "run interrupted: the digest was not made" in err
    db = tmp_path / "litmon.db"
    assert query(db, "SELECT status FROM crawl_runs") == [("interrupted",)]
    assert query(db, "SELECT status, new FROM source_runs") == [("interrupted", 0)]
    assert query(db, "SELECT COUNT(*) FROM source_states") == [(0,)]  # no watermark: the next run re-reads the window
    assert query(db, "SELECT COUNT(*) FROM digests") == [(0,)]
    assert probe(tmp_path / "litmon.db.lock") is None


def test_dry_run_does_not_take_the_lock(tmp_path):
    config = write_config(tmp_path)
    with RunLock(tmp_path / "litmon.db.lock", "test"):
        result = litmon("--config", config, "crawl", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_lock_in_process_contract(tmp_path):
    path = lock_path(tmp_path / "data" / "litmon.db")
    assert path.name == "litmon.db.lock"
    first = RunLock(path, "crawl").acquire()
    assert read_holder(path).pid == os.getpid() and read_holder(path).command == "crawl"
    assert probe(path).pid == os.getpid()
    # a second open file description conflicts even inside one process
    with pytest.raises(LockedError, match=rf"pid {os.getpid()}, `litmon crawl`"):
        RunLock(path, "run").acquire(wait=0.2)
    first.release()
    assert path.exists() and path.read_text() == "" and probe(path) is None
    with RunLock(path, "digest") as again:
        assert again.recovered is None  # a clean release is not a stale lock
    assert path.read_text() == ""
