"""Trial changes and source health read from real rows written by the store and the pipeline."""

from __future__ import annotations

from crawler import store
from crawler.changes import source_health, trial_changes
from crawler.records import Record


def trial(status, enrollment, primary, has_results=False, results_on=None):
    record = Record(source="clinicaltrials", source_id="NCT04338321", record_type="trial_registration", title="ESCAPE-TRD")
    record.add_id("nct", "NCT04338321")
    record.trial = {
        "overall_status": status,
        "enrollment": enrollment,
        "primary_completion_date": primary,
        "has_results": has_results,
        "results_first_posted_on": results_on,
        "last_update_posted_on": primary,
    }
    return record


def test_changes_between_snapshots_are_described(db):
    store.save_records(db, [trial("RECRUITING", 60, "2026-06")], now="2026-11-01 00:00:00")
    store.save_records(db, [trial("COMPLETED", 120, "2027-06", True, "2026-11-20")], now="2026-11-21 00:00:00")

    changes = trial_changes(db, "2026-11-16 00:00:00", "2026-11-23 00:00:00")

    assert len(changes) == 1
    assert changes[0].trial_id == "NCT04338321"
    assert changes[0].describe() == [
        "status: RECRUITING → COMPLETED",
        "enrollment: 60 → 120",
        "primary completion: 2026-06 → 2027-06",
        "results first posted 2026-11-20",
    ]
    # the first snapshot is a registration, not a change; nothing in an earlier window
    assert trial_changes(db, "2026-10-01 00:00:00", "2026-11-02 00:00:00") == []


def _run(db, source, status, fetched, started_at, error=None):
    db.execute("INSERT INTO crawl_runs (started_at, status, trigger) VALUES (?, 'ok', 'test')", [started_at])
    run_id = db.execute("SELECT MAX(id) FROM crawl_runs").fetchone()[0]
    db.execute(
        "INSERT INTO source_runs (crawl_run_id, source, started_at, status, fetched, new, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [run_id, source, started_at, status, fetched, fetched, error],
    )


def test_source_health_ok_failed_and_silent(db):
    for day in range(1, 8):
        _run(db, "pubmed", "ok", 20, f"2026-11-0{day} 05:30:00")
    _run(db, "pubmed", "ok", 0, "2026-11-20 05:30:00")
    _run(db, "europepmc", "ok", 12, "2026-11-20 05:30:00")
    _run(db, "crossref", "failed", 0, "2026-11-20 05:30:00", error="[crossref] HTTP 503")
    _run(db, "crossref", "ok", 3, "2026-11-21 05:30:00")
    _run(db, "feed:ema-news", "ok", 0, "2026-11-21 05:30:00")  # never had results: not silent

    health = {h.source: h for h in source_health(db, "2026-11-16 00:00:00", "2026-11-23 00:00:00")}

    assert health["pubmed"].status == "silent"
    assert health["europepmc"].status == "ok" and health["europepmc"].describe() == "ok: 1 run(s), 12 fetched, 12 new"
    assert (
        health["crossref"].status == "failed"
        and health["crossref"].describe() == "failed in 1 of 2 run(s), recovered since: HTTP 503"
    )
    assert health["feed:ema-news"].status == "ok"
