"""`litmon status` is honest (issue #10): unhealthy, exit 4 with a line saying why, for each condition
that means someone could miss a study; healthy, exit 0, when all is well."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3

import pytest

from crawler import clock, logs
from crawler.cli import main as cli_main
from crawler.digest import run_digest
from crawler.status import collect_status, render_status
from tests.helpers.cli import closed_port, litmon, litmon_env
from tests.helpers.ops import PubMedServer, pubmed_section, write_config
from tests.helpers.smtp import email_section
from tests.helpers.sources import unreachable


def reasons(config, db) -> list[str]:
    info = collect_status(config, db)
    assert info["verdict"] == ("unhealthy" if info["reasons"] else "healthy") and info["healthy"] is (not info["reasons"])
    return info["reasons"]


def cli_status(tmp_path, config_text: str, now: dt.datetime | None = None):
    """`litmon status --json` on the same database, as cron or a HEALTHCHECK runs it."""
    path = write_config(tmp_path, config_text)
    env = litmon_env(LITMON_NOW=clock.stamp(now)) if now else None
    result = litmon("--config", path, "status", "--json", cwd=tmp_path, env=env)
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def healthy(tmp_path, httpserver, make_config, run_crawl, db):
    """A crawl that worked and a digest written to the outbox: nothing to report."""
    PubMedServer(httpserver)
    text = pubmed_section(httpserver)
    config = make_config(text)
    assert not run_crawl(config).failed
    assert not run_digest(config, db).failed
    return config, text


def test_all_is_well_is_healthy_and_exits_0(tmp_path, healthy, db):
    config, text = healthy
    assert reasons(config, db) == []
    code, info = cli_status(tmp_path, text)
    assert code == 0 and info["verdict"] == "healthy" and info["reasons"] == []
    assert render_status(collect_status(config, db)).splitlines()[-1].startswith("healthy")


def test_a_source_that_never_succeeded_is_unhealthy_after_its_first_attempt(tmp_path, make_config, run_crawl, db):
    text = unreachable(closed_port())
    config = make_config(text)
    assert reasons(config, db) == []  # never attempted yet: nothing to say
    assert run_crawl(config).failed

    [reason] = reasons(config, db)
    assert reason.startswith("pubmed: has never succeeded (1 attempt(s); last error: [pubmed] network error")
    assert "url:" not in reason and "connection refused" in reason
    code, info = cli_status(tmp_path, text)
    assert code == 4 and info["reasons"] == [reason]
    result = litmon("--config", write_config(tmp_path, text), "status", cwd=tmp_path)
    assert result.returncode == 4 and f"  {reason}" in result.stdout.splitlines()


def test_a_source_failing_fail_after_runs_in_a_row_is_unhealthy(tmp_path, healthy, make_config, run_crawl, db):
    text = unreachable(closed_port())
    config = make_config(text)
    for _ in range(2):
        run_crawl(config)
    assert reasons(config, db) == []  # below [status] fail_after = 3
    run_crawl(config)

    [reason] = reasons(config, db)
    assert reason.startswith("pubmed: failed 3 runs in a row (last error: [pubmed] network error")
    code, info = cli_status(tmp_path, text)
    assert code == 4 and info["reasons"] == [reason]


def test_a_source_lagging_past_max_lag_hours_is_unhealthy(tmp_path, healthy, db):
    config, text = healthy
    clock.advance(hours=71)
    assert reasons(config, db) == []
    clock.advance(hours=2)

    [reason] = [r for r in reasons(config, db) if r.startswith("pubmed")]
    assert reason == "pubmed: no successful crawl for 3d1h (limit 72 h)"
    code, info = cli_status(tmp_path, text, now=clock.now())
    assert code == 4 and reason in info["reasons"]


def test_a_failed_delivery_is_unhealthy_until_a_retry_succeeds(tmp_path, healthy, make_config, db, smtp_server):  # noqa: F811
    _, text = healthy
    port = closed_port()
    mail = email_section(port, attempts=1, timeout=5)
    config = make_config(text + mail)
    assert run_digest(config, db).failed

    [reason] = reasons(config, db)
    assert reason.startswith("digest #2 to clinician@example.org: the last delivery failed (2026-11-23")
    assert "was not retried successfully" in reason and "connection refused" in reason.lower()
    code, info = cli_status(tmp_path, text + mail)
    assert code == 4 and info["reasons"] == [reason]

    handler, live_port = smtp_server()
    retried = make_config(text + mail.replace(str(port), str(live_port)))
    assert not run_digest(retried, db).failed  # the next run retries the failed delivery
    assert reasons(retried, db) == []


def test_an_overdue_digest_is_unhealthy(tmp_path, healthy, db):
    config, text = healthy
    clock.advance(days=8)  # period_days = 7: one day of grace
    assert [r for r in reasons(config, db) if r.startswith("digest")] == []
    clock.advance(hours=2)

    [reason] = [r for r in reasons(config, db) if r.startswith("digest")]
    assert reason.startswith(
        "digest for outbox: overdue by 26h00m (the last one reached it 2026-11-23T09:00:00Z; due every 7 days)"
    )
    code, info = cli_status(tmp_path, text, now=clock.now())
    assert code == 4 and reason in info["reasons"]


def test_no_digest_ever_made_is_overdue_a_period_and_a_day_after_the_first_crawl(
    tmp_path, httpserver, make_config, run_crawl, db
):
    PubMedServer(httpserver)
    config = make_config(pubmed_section(httpserver))
    run_crawl(config)
    clock.advance(days=8, hours=1)
    assert any(
        r.startswith("digest for outbox: overdue by 25h00m (none has reached it since the first crawl")
        for r in reasons(config, db)
    )


def test_a_failing_database_check_is_unhealthy(tmp_path, healthy, db):
    config, text = healthy
    raw = sqlite3.connect(tmp_path / "litmon.db")  # foreign keys off: what a buggy tool could do
    raw.execute("UPDATE records SET work_id = 999 WHERE id = (SELECT MIN(id) FROM records)")
    raw.commit()
    raw.close()

    found = reasons(config, db)
    assert "database check failed: 1 records whose work does not exist — run `litmon check` for details" in found
    code, info = cli_status(tmp_path, text)
    assert code == 4 and any(r.startswith("database check failed:") for r in info["reasons"])


@pytest.fixture
def logging_put_back(monkeypatch):
    """What the command line's logging set-up changes for the whole process put back once the test ends: the root
    logger's handlers and level, urllib3's and apscheduler's levels, the secrets masked. Left as they were, the root
    logger kept a handler writing to this test's captured stderr, closed when the test ends: every record that reached
    the root logger in a later test (a loopback server's request log) printed "--- Logging error ---" instead."""
    monkeypatch.setattr(logs, "_secret_values", set(logs._secret_values))
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in (None, "urllib3", "apscheduler")}
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_status_reads_every_page_once(tmp_path, healthy, db, monkeypatch, capsys, logging_put_back):
    """`litmon status` checks the file before reading it; its database check then runs only the consistency
    rules: one PRAGMA quick_check per status, not two (each reads every page of a large file)."""
    config, text = healthy
    path = write_config(tmp_path, text)
    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    with pytest.raises(SystemExit) as exited:
        cli_main(["--config", path, "status", "--json"])
    assert exited.value.code == 0 and json.loads(capsys.readouterr().out)["verdict"] == "healthy"
    assert sum("quick_check" in s for s in statements) == 1
    assert any("FROM records" in s and "works" in s for s in statements)  # the consistency rules still ran


def test_after_kill_9_no_run_is_both_running_and_not_running(tmp_path, healthy, db):
    config, text = healthy
    db.execute("INSERT INTO crawl_runs (started_at, status, trigger) VALUES (?, 'running', 'run')", [clock.stamp()])
    db.execute(
        "INSERT INTO source_runs (crawl_run_id, source, started_at, status) VALUES (last_insert_rowid(), 'pubmed', ?, 'running')",
        [clock.stamp()],
    )
    db.conn.commit()

    db.execute("UPDATE digest_deliveries SET status = 'sending', delivered_at = NULL")  # killed while handing it over
    db.conn.commit()

    info = collect_status(config, db)
    assert info["running"] is None
    assert [r["last_status"] for r in info["recipients"]] == ["interrupted"]
    assert any("the process was killed while delivering it" in r for r in info["reasons"])
    assert info["last_crawl"]["status"] == "interrupted" and "no longer runs" in info["last_crawl"]["note"]
    assert next(s for s in info["sources"] if s["source"] == "pubmed")["last_run"]["status"] == "interrupted"
    text_out = render_status(info)
    assert "running now: nothing" in text_out and " running " not in text_out.replace("running now", "")
