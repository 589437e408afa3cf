"""Crawl bookkeeping: ``crawl_runs``, ``source_runs`` (with their ``source_queries``) and ``source_states``."""

from __future__ import annotations

import json
from typing import Any

from crawler import clock
from crawler.store.common import dumps


def start_crawl_run(db, trigger: str) -> int:
    with db.atomic():
        return db.execute(
            "INSERT INTO crawl_runs (started_at, status, trigger) VALUES (?, 'running', ?)", [clock.stamp(), trigger]
        ).lastrowid


def finish_crawl_run(db, run_id: int, status: str) -> None:
    with db.atomic():
        db.execute("UPDATE crawl_runs SET finished_at = ?, status = ? WHERE id = ?", [clock.stamp(), status, run_id])


def start_source_run(db, crawl_run_id: int, source: str, window_from: str | None, window_to: str | None) -> int:
    with db.atomic():
        return db.execute(
            "INSERT INTO source_runs (crawl_run_id, source, started_at, status, window_from, window_to) VALUES (?, ?, ?, 'running', ?, ?)",
            [crawl_run_id, source, clock.stamp(), window_from, window_to],
        ).lastrowid


def finish_source_run(
    db,
    source_run_id: int,
    *,
    status: str,
    counts: dict[str, int],
    requests: int,
    warnings: list[str],
    error: str | None,
    queries: list[Any],
    skipped: list[str] | None = None,
) -> None:
    now = clock.stamp()
    with db.atomic():
        db.execute(
            """UPDATE source_runs SET finished_at = ?, status = ?, requests = ?, fetched = ?, kept = ?, new = ?,
               updated = ?, unchanged = ?, skipped = ?, skipped_reasons = ?, warnings = ?, error = ? WHERE id = ?""",
            [
                now,
                status,
                requests,
                counts.get("fetched", 0),
                counts.get("kept", counts.get("fetched", 0)),
                counts.get("new", 0),
                counts.get("updated", 0),
                counts.get("unchanged", 0),
                counts.get("skipped", 0),
                dumps(skipped or []),
                dumps(warnings),
                error,
                source_run_id,
            ],
        )
        source = db.execute("SELECT source FROM source_runs WHERE id = ?", [source_run_id]).fetchone()[0]
        for q in queries:
            db.execute(
                "INSERT INTO source_queries (source_run_id, source, query, window_from, window_to, hits, params, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [source_run_id, source, q.query, q.window_from, q.window_to, q.hits, dumps(q.params), now],
            )


def load_source_state(db, source: str) -> dict[str, Any]:
    row = db.execute("SELECT watermark, state, consecutive_failures FROM source_states WHERE source = ?", [source]).fetchone()
    if row is None:
        return {"watermark": None, "state": {}, "consecutive_failures": 0}
    return {"watermark": row[0], "state": json.loads(row[1]), "consecutive_failures": row[2]}


def save_source_success(db, source: str, watermark: str | None, state: dict[str, Any]) -> None:
    now = clock.stamp()
    with db.atomic():
        db.execute(
            """INSERT INTO source_states (source, watermark, state, last_success_at, consecutive_failures, updated_at)
               VALUES (?, ?, ?, ?, 0, ?)
               ON CONFLICT(source) DO UPDATE SET watermark = excluded.watermark, state = excluded.state,
               last_success_at = excluded.last_success_at, consecutive_failures = 0, updated_at = excluded.updated_at""",
            [source, watermark, dumps(state), now, now],
        )


def save_source_failure(db, source: str, error: str) -> None:
    now = clock.stamp()
    with db.atomic():
        db.execute(
            """INSERT INTO source_states (source, state, last_failure_at, last_error, consecutive_failures, updated_at)
               VALUES (?, '{}', ?, ?, 1, ?)
               ON CONFLICT(source) DO UPDATE SET last_failure_at = excluded.last_failure_at, last_error = excluded.last_error,
               consecutive_failures = source_states.consecutive_failures + 1, updated_at = excluded.updated_at""",
            [source, now, error, now],
        )


def load_source_beginnings(db) -> dict[str, tuple[str, str | None]]:
    """source -> (when its first run started, whatever its outcome; when its first successful run started)."""
    return {
        row[0]: (row[1], row[2])
        for row in db.execute(
            "SELECT source, MIN(started_at), MIN(CASE WHEN status = 'ok' THEN started_at END) FROM source_runs GROUP BY source"
        )
    }


def load_source_run_totals(db, since: str, until: str) -> list[tuple]:
    """Per source, its finished runs started in (since, until]: (source, runs, failures, fetched, new, last error)."""
    return db.execute(
        """SELECT source, COUNT(*), SUM(status = 'failed'), SUM(fetched), SUM(new),
                  (SELECT error FROM source_runs e WHERE e.source = r.source AND e.status = 'failed'
                     AND e.started_at > ? AND e.started_at <= ? ORDER BY e.id DESC LIMIT 1)
           FROM source_runs r WHERE started_at > ? AND started_at <= ? AND status != 'running'
           GROUP BY source ORDER BY source""",
        [since, until, since, until],
    ).fetchall()


def load_usual_fetched(db, source: str, until: str) -> float | None:
    """The mean ``fetched`` of the source's last 10 successful runs started up to ``until``."""
    return db.execute(
        """SELECT AVG(fetched) FROM (SELECT fetched FROM source_runs WHERE source = ? AND status = 'ok'
           AND started_at <= ? ORDER BY id DESC LIMIT 10)""",
        [source, until],
    ).fetchone()[0]


# --------------------------------------------------------------------------- reads of status, the scheduler and recovery


def load_source_states(db) -> dict[str, dict]:
    """source -> its ``source_states`` row."""
    return {r["source"]: r for r in db.query("SELECT * FROM source_states")}


def load_last_source_runs(db) -> dict[str, dict]:
    """source -> its newest ``source_runs`` row."""
    return {
        r["source"]: r
        for r in db.query("SELECT * FROM source_runs WHERE id IN (SELECT MAX(id) FROM source_runs GROUP BY source)")
    }


def load_last_crawl_run(db) -> dict | None:
    """The newest crawl run: id, started_at, finished_at, status, trigger."""
    return next(
        iter(db.query("SELECT id, started_at, finished_at, status, trigger FROM crawl_runs ORDER BY id DESC LIMIT 1")), None
    )


def load_first_crawl_started_at(db) -> str | None:
    """When the first crawl of this database started (status: a digest is overdue after it)."""
    return db.execute("SELECT MIN(started_at) FROM crawl_runs").fetchone()[0]


def load_last_crawl_started_at(db) -> str | None:
    return db.execute("SELECT MAX(started_at) FROM crawl_runs").fetchone()[0]


def load_running_source_runs(db) -> list[dict]:
    """Source runs still marked ``running`` (``id``, ``source``)."""
    return list(db.query("SELECT id, source FROM source_runs WHERE status = 'running'"))


def load_running_crawl_run_ids(db) -> list[int]:
    return [r["id"] for r in db.query("SELECT id FROM crawl_runs WHERE status = 'running'")]
