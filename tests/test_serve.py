"""`litmon serve` (APScheduler) run for real in a subprocess, its catch-up rules, and [schedule] parsing."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import time

from crawler import clock, cron, store
from crawler.config import parse_config
from crawler.lock import RunLock, probe
from crawler.scheduler import crawl_missed, digest_missed
from tests.conftest import BASE_CONFIG
from tests.helpers.cli import litmon
from tests.helpers.ops import PubMedServer, log_text, pubmed_section, query, start_litmon, wait_for, write_config

FAST = """
[schedule]
crawl = "*/2 * * * * *"
digest = "1-59/3 * * * * *"
"""


def test_serve_crawls_and_digests_on_schedule_and_stops_cleanly_on_sigterm(tmp_path, httpserver, real_clock):
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver) + FAST)
    db = tmp_path / "litmon.db"
    service = start_litmon("--config", config, "--log-format", "json", "serve", cwd=tmp_path)
    try:
        # catch-up at start (first crawl, missed digest), then at least one crawl and one digest from the cron
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM crawl_runs WHERE status = 'ok'") >= [(3,)], what="three crawls")
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM digests") >= [(2,)], what="two digests")
    finally:
        service.send_signal(signal.SIGTERM)
    out, err = service.communicate(timeout=60)

    assert service.returncode == 0, err
    events = [json.loads(line) for line in err.splitlines()]
    messages = [e["message"] for e in events]
    assert events[0]["event"] == "serve_started"
    assert "serve: catching up the crawl the schedule missed while the service was down" in messages
    assert "serve: catching up the digest the schedule missed while the service was down" in messages
    assert any(m.startswith("serve: SIGTERM received") for m in messages)
    assert events[-1]["event"] == "serve_stopped" and messages[-1] == "serve: stopped cleanly"
    assert not [e for e in events if e["level"] in ("error", "critical")]
    source_runs = [e for e in events if e.get("event") == "source_run"]
    assert source_runs[0]["source"] == "pubmed" and source_runs[0]["new"] == 3 and source_runs[0]["status"] == "ok"
    assert all(e["status"] == "ok" for e in source_runs) and source_runs[1]["unchanged"] == 3

    # consistent state: nothing left running, every digest delivered, the lock free, the file intact
    assert query(db, "SELECT COUNT(*) FROM crawl_runs WHERE status != 'ok'") == [(0,)]
    assert query(db, "SELECT COUNT(*) FROM source_runs WHERE status != 'ok'") == [(0,)]
    assert query(db, "SELECT DISTINCT trigger FROM crawl_runs") == [("serve",)]
    assert query(db, "SELECT COUNT(*) FROM works") == [(3,)]
    periods = query(db, "SELECT period_start, period_end FROM digests ORDER BY id")
    assert all(later[0] == earlier[1] for earlier, later in zip(periods, periods[1:]))  # no gap, no overlap
    assert query(
        db,
        "SELECT COUNT(*) FROM digests d WHERE NOT EXISTS (SELECT 1 FROM digest_deliveries x WHERE x.digest_id = d.id AND x.status = 'written')",
    ) == [(0,)]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == query(db, "SELECT COUNT(*) FROM digests")[0][0]
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert probe(tmp_path / "litmon.db.lock") is None and (tmp_path / "litmon.db.lock").read_text() == ""
    status = litmon("--config", config, "status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["healthy"] is True


def test_sigterm_during_a_network_wait_ends_it_at_once_and_exits_0(tmp_path, httpserver, real_clock):
    server = PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver) + FAST)
    server.hold()
    log = tmp_path / "serve.log"
    service = start_litmon("--config", config, "serve", cwd=tmp_path, log_file=log)
    try:
        wait_for(server.entered.is_set, what="the first crawl to reach the server")
        service.send_signal(signal.SIGTERM)
        # the handler runs in the main thread at once; the crawl thread is still inside the request
        wait_for(lambda: "SIGTERM received" in log_text(log), what="the signal to be handled")
        # the held request is cut while the server still holds it (#16: SIGTERM is honoured during any network wait):
        # releasing it before the cut (the HTTP watchdog looks every 0.1 s) would let a loaded machine fetch the pages
        wait_for(lambda: "[pubmed] interrupted" in log_text(log), what="the held request to be cut")
    finally:
        server.release()
    service.communicate(timeout=60)
    err = log_text(log)

    assert service.returncode == 0, err
    assert "serve: SIGTERM received — finishing the current step, then stopping" in err
    assert "[pubmed] interrupted: 0 fetched, 0 new" in err
    assert "serve: stopped cleanly" in err
    db = tmp_path / "litmon.db"
    assert query(db, "SELECT status FROM crawl_runs") == [("interrupted",)]
    assert query(db, "SELECT COUNT(*) FROM records") == [(0,)]
    assert query(db, "SELECT COUNT(*) FROM source_states") == [(0,)]  # the watermark did not move
    assert query(db, "SELECT COUNT(*) FROM digests") == [(0,)]  # nothing new started after the signal
    assert probe(tmp_path / "litmon.db.lock") is None


def test_serve_skips_a_crawl_while_another_run_holds_the_lock(tmp_path, httpserver, real_clock):
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver) + '[schedule]\ncrawl = "*/2 * * * * *"\ndigest = "0 0 1 1 *"\n')
    log = tmp_path / "serve.log"
    with RunLock(tmp_path / "litmon.db.lock", "run"):
        service = start_litmon("--config", config, "serve", "--no-catch-up", cwd=tmp_path, log_file=log)
        try:  # the crawl expression fires every 2 seconds
            wait_for(lambda: "serve: crawl skipped" in log_text(log), what="a skipped crawl")
        finally:
            service.send_signal(signal.SIGTERM)
        service.communicate(timeout=60)
    err = log_text(log)
    assert service.returncode == 0, err
    assert f"serve: crawl skipped: another litmon run is in progress (pid {os.getpid()}, `litmon run`" in err
    assert query(tmp_path / "litmon.db", "SELECT COUNT(*) FROM crawl_runs") in ([], [(0,)])


def test_serve_digest_waits_for_a_lock_held_by_another_run(tmp_path, real_clock):
    config = write_config(tmp_path, '[schedule]\ncrawl = "0 0 1 1 *"\ndigest = "*/2 * * * * *"\n')
    db = tmp_path / "litmon.db"
    lock = RunLock(tmp_path / "litmon.db.lock", "run").acquire()
    log = tmp_path / "serve.log"
    service = start_litmon("--config", config, "serve", "--no-catch-up", cwd=tmp_path, log_file=log)
    try:
        wait_for(
            lambda: f"serve: digest waits up to 60 min for the lock held by pid {os.getpid()}" in log_text(log),
            what="the digest job to wait",
        )
        time.sleep(0.5)
        assert query(db, "SELECT COUNT(*) FROM digests") in ([], [(0,)])
        lock.release()
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM digests") >= [(1,)], what="the digest after the lock was released")
    finally:
        lock.release()
        service.send_signal(signal.SIGTERM)
    service.communicate(timeout=60)
    err = log_text(log)
    assert service.returncode == 0, err
    assert "serve: digest skipped" not in err  # later firings are skipped while it waits (max_instances = 1)


def test_serve_dry_run_keeps_the_schedule_and_writes_nothing(tmp_path, httpserver, real_clock):
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver) + FAST)
    log = tmp_path / "serve.log"
    service = start_litmon("--config", config, "serve", "--dry-run", cwd=tmp_path, log_file=log)
    try:  # catch-up, then the schedule: every crawl finds the same 3 records "new"
        wait_for(lambda: log_text(log).count("[pubmed] ok: 3 fetched, 3 new") >= 2, what="two dry-run crawls")
    finally:
        service.send_signal(signal.SIGTERM)
    service.communicate(timeout=60)
    err = log_text(log)
    assert service.returncode == 0, err
    assert "serve: digest (dry run) would list 0 item(s)" in err
    assert not (tmp_path / "litmon.db").exists() and not (tmp_path / "outbox").exists()
    assert not (tmp_path / "litmon.db.lock").exists()


# --------------------------------------------------------------------------- catch-up rules


def _config(tmp_path, schedule: str):
    text = BASE_CONFIG.format(db=tmp_path / "litmon.db", outbox=tmp_path / "outbox") + schedule
    return parse_config(text, "test.toml")


def test_missed_crawl_and_digest_follow_the_schedule_and_the_database(tmp_path):
    config = _config(tmp_path, '[schedule]\ncrawl = "30 5 * * *"\ndigest = "0 7 * * mon"\ntimezone = "Europe/Berlin"\n')
    db = store.open_db(tmp_path / "litmon.db")
    now = clock.now()
    assert crawl_missed(db, config, now)  # never crawled: the first crawl is due at once
    assert digest_missed(db, config, now)  # never made one and a Monday 07:00 has passed

    store.finish_crawl_run(db, store.start_crawl_run(db, "serve"), "ok")
    store.save_digest(
        db, period_start="2024-01-01 00:00:00", period_end=clock.stamp(), subject="s", text_body="t", html_body="h", items=[]
    )
    later = now + dt.timedelta(seconds=5)
    crawl_trigger = cron.parse_cron("30 5 * * *", "Europe/Berlin")
    digest_trigger = cron.parse_cron("0 7 * * mon", "Europe/Berlin")
    next_crawl = cron.next_fire_time(crawl_trigger, later)
    next_digest = cron.next_fire_time(digest_trigger, later)
    if next_crawl > later + dt.timedelta(seconds=1):  # (unless the test runs at 05:30 Berlin time)
        assert not crawl_missed(db, config, later)
    if next_digest > later + dt.timedelta(seconds=1):
        assert not digest_missed(db, config, later)
    # the service was down when the expressions fired next
    assert crawl_missed(db, config, next_crawl + dt.timedelta(minutes=1))
    assert digest_missed(db, config, next_digest + dt.timedelta(hours=3))
    assert next_digest.astimezone(cron.parse_timezone("Europe/Berlin")).strftime("%a %H:%M") == "Mon 07:00"
