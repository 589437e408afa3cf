"""`litmon backup` (SQLite online backup) and `litmon check` against real database files."""

from __future__ import annotations

import sqlite3

from tests.helpers.cli import litmon
from tests.helpers.ops import PubMedServer, pubmed_section, write_config


def crawled(tmp_path, httpserver) -> str:
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver))
    assert litmon("--config", config, "crawl", cwd=tmp_path).returncode == 0
    return config


def test_backup_is_a_consistent_online_copy_while_a_writer_holds_a_transaction(tmp_path, httpserver):
    config = crawled(tmp_path, httpserver)
    writer = sqlite3.connect(tmp_path / "litmon.db")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO crawl_runs (started_at, status, trigger) VALUES ('2030-01-01 00:00:00', 'running', 'uncommitted')"
    )
    backups = tmp_path / "backups"
    backups.mkdir()
    try:
        result = litmon("--config", config, "backup", str(backups), cwd=tmp_path)
    finally:
        writer.rollback()
        writer.close()

    assert result.returncode == 0, result.stderr
    copies = list(backups.glob("litmon-*.db"))
    assert len(copies) == 1 and f"copied to {copies[0]}" in result.stdout and "integrity ok" in result.stdout
    assert not list(backups.glob("*.partial")) and not list(backups.glob("*-wal"))
    copy = sqlite3.connect(copies[0])
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
    assert copy.execute("SELECT COUNT(*) FROM works").fetchone() == (3,)
    assert copy.execute("SELECT trigger FROM crawl_runs").fetchall() == [("crawl",)]  # committed rows only


def test_backup_refuses_to_overwrite_unless_forced_and_dry_run_copies_nothing(tmp_path, httpserver):
    config = crawled(tmp_path, httpserver)
    target = tmp_path / "copy.db"
    dry = litmon("--config", config, "backup", str(target), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "would be copied to" in dry.stdout and not target.exists()

    assert litmon("--config", config, "backup", str(target), cwd=tmp_path).returncode == 0
    again = litmon("--config", config, "backup", str(target), cwd=tmp_path)
    assert again.returncode == 1 and f"{target} exists" in again.stderr and "--force" in again.stderr
    assert litmon("--config", config, "backup", str(target), "--force", cwd=tmp_path).returncode == 0
    missing_dir = litmon("--config", config, "backup", str(tmp_path / "nowhere" / "x.db"), cwd=tmp_path)
    assert missing_dir.returncode == 1 and "does not exist" in missing_dir.stderr


def test_check_passes_a_sound_database_and_names_what_is_wrong(tmp_path, httpserver):
    config = crawled(tmp_path, httpserver)
    good = litmon("--config", config, "check", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "integrity_check: ok" in good.stdout and "is consistent" in good.stdout

    raw = sqlite3.connect(tmp_path / "litmon.db")  # foreign keys off: what a buggy tool could do
    raw.execute("UPDATE records SET work_id = 999 WHERE id = (SELECT MIN(id) FROM records)")
    raw.commit()
    raw.close()
    bad = litmon("--config", config, "check", "--quick", cwd=tmp_path)
    assert bad.returncode == 1
    assert "PROBLEM: foreign_key_check: 1 row(s) point at missing rows (tables: records)" in bad.stderr
    assert "PROBLEM: 1 records whose work does not exist" in bad.stderr
    assert "PROBLEM: 1 current works without any record" in bad.stderr


def test_check_detects_a_damaged_file(tmp_path, httpserver):
    config = crawled(tmp_path, httpserver)
    conn = sqlite3.connect(tmp_path / "litmon.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'records'").fetchone()[0]
    conn.close()
    with open(tmp_path / "litmon.db", "r+b") as handle:  # scribble over the records table's root page
        handle.seek((root - 1) * page_size + 8)
        handle.write(b"\xff" * 64)
    result = litmon("--config", config, "check", cwd=tmp_path)
    assert result.returncode == 1
    assert "PROBLEM:" in result.stderr and "restore a backup" in result.stderr


def test_quick_check_passes_a_sound_database_with_every_table_populated(tmp_path, httpserver, make_config, run_crawl, db):
    """SQLite 3.40–3.41 quick_check falsely reports NULLs in the WITHOUT ROWID table match_keys (issue #10)."""
    from crawler import classify
    from crawler.digest import run_digest
    from crawler.maintenance import check_database
    from tests.helpers import dedup_corpus

    PubMedServer(httpserver)
    # the whole corpus is listed (notices of old papers nobody was sent are no longer news: issue #13)
    config = make_config(pubmed_section(httpserver) + "\n[digest]\nfirst_digest_days = 3660\n")
    assert not run_crawl(config).failed
    dedup_corpus.load(db)  # every source kind: links, merges, trial snapshots, match keys
    classify.reclassify(db, config)
    run_digest(config, db)
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    empty = [t for t in tables if not db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]]
    assert "match_keys" in tables and empty == ["work_summary_queue"]  # the queue is empty between transactions

    for quick in (True, False):
        result = check_database(tmp_path / "litmon.db", quick=quick)
        assert result.problems == [], result.problems
    cli = litmon("--config", write_config(tmp_path), "check", "--quick", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert "quick_check: ok" in cli.stdout and "is consistent" in cli.stdout


def test_a_null_report_that_the_data_confirms_is_kept():
    from crawler.maintenance import CheckResult, _drop_false_null_reports

    conn = sqlite3.connect(":memory:")
    conn.executescript("CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, NULL), (2, 'x');")
    result = CheckResult()
    kept = _drop_false_null_reports(conn, ["NULL value in t.b", "NULL value in t.a", "row 3 missing from index t_b"], result)
    assert kept == ["NULL value in t.b", "row 3 missing from index t_b"]
    assert "t.a" in result.notes[0] and "ignored" in result.notes[0]
