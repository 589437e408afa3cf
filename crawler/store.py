"""The SQLite store: schema, migrations and every write. No other module writes SQL.

The schema is a public interface (documented in README.md, "Database schema"): tables are plural
snake_case, timestamps are UTC ``YYYY-MM-DD HH:MM:SS`` strings (:func:`crawler.clock.stamp`, the form
of SQLite's ``datetime()``) in ``*_at`` columns, dates in ``*_on`` columns.
Migrations are applied with ``sqlite_utils.migrations.Migrations`` and recorded in
``_sqlite_migrations``; add a new function, never edit an applied one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from crawler import clock
from crawler.records import CITATION_FIELDS, TRIAL_FIELDS, Record, parse_authors

migrations = Migrations("litmon")

#: Which source's value wins for a work's title and dates (first = best). Documented in README.
SOURCE_PRIORITY = ("pubmed", "europepmc", "crossref", "clinicaltrials", "isrctn", "biorxiv", "openalex", "feed", "page")


def utcnow() -> str:
    """Now as stored in SQLite (see :mod:`crawler.clock`)."""
    return clock.stamp()


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE works (
            id INTEGER PRIMARY KEY,
            record_type TEXT NOT NULL,
            title TEXT NOT NULL,
            published_on TEXT,
            entered_on TEXT,
            first_seen_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            merged_into INTEGER REFERENCES works(id)
        );
        CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            work_id INTEGER NOT NULL REFERENCES works(id),
            record_type TEXT NOT NULL,
            title TEXT NOT NULL,
            abstract TEXT,
            authors TEXT NOT NULL DEFAULT '[]',
            journal TEXT,
            published_on TEXT,
            entered_on TEXT,
            updated_on TEXT,
            url TEXT,
            publication_types TEXT NOT NULL DEFAULT '[]',
            mesh_terms TEXT NOT NULL DEFAULT '[]',
            keywords TEXT NOT NULL DEFAULT '[]',
            language TEXT,
            version TEXT,
            data TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            UNIQUE (source, source_id)
        );
        CREATE INDEX records_work_id ON records(work_id);
        CREATE TABLE identifiers (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            work_id INTEGER NOT NULL REFERENCES works(id),
            scheme TEXT NOT NULL,
            value TEXT NOT NULL,
            UNIQUE (record_id, scheme, value)
        );
        CREATE INDEX identifiers_scheme_value ON identifiers(scheme, value);
        CREATE INDEX identifiers_work_id ON identifiers(work_id);
        CREATE TABLE record_links (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            relation TEXT NOT NULL,
            scheme TEXT NOT NULL,
            value TEXT NOT NULL,
            note TEXT,
            UNIQUE (record_id, relation, scheme, value)
        );
        CREATE INDEX record_links_scheme_value ON record_links(scheme, value);
        CREATE TABLE trial_snapshots (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            source TEXT NOT NULL,
            trial_id TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            overall_status TEXT,
            why_stopped TEXT,
            phases TEXT,
            study_type TEXT,
            enrollment INTEGER,
            enrollment_type TEXT,
            start_date TEXT,
            primary_completion_date TEXT,
            completion_date TEXT,
            first_posted_on TEXT,
            last_update_posted_on TEXT,
            results_first_posted_on TEXT,
            has_results INTEGER
        );
        CREATE INDEX trial_snapshots_trial ON trial_snapshots(source, trial_id, id);
        CREATE TABLE crawl_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            trigger TEXT NOT NULL
        );
        CREATE TABLE source_runs (
            id INTEGER PRIMARY KEY,
            crawl_run_id INTEGER NOT NULL REFERENCES crawl_runs(id),
            source TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            window_from TEXT,
            window_to TEXT,
            requests INTEGER NOT NULL DEFAULT 0,
            fetched INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            warnings TEXT NOT NULL DEFAULT '[]',
            error TEXT
        );
        CREATE INDEX source_runs_source ON source_runs(source, id);
        CREATE TABLE source_queries (
            id INTEGER PRIMARY KEY,
            source_run_id INTEGER NOT NULL REFERENCES source_runs(id),
            source TEXT NOT NULL,
            query TEXT NOT NULL,
            window_from TEXT,
            window_to TEXT,
            hits INTEGER,
            params TEXT NOT NULL DEFAULT '{}',
            sent_at TEXT NOT NULL
        );
        CREATE TABLE source_states (
            source TEXT PRIMARY KEY,
            watermark TEXT,
            state TEXT NOT NULL DEFAULT '{}',
            last_success_at TEXT,
            last_failure_at TEXT,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            period_start TEXT NOT NULL,
            period_end TEXT NOT NULL,
            subject TEXT NOT NULL,
            item_count INTEGER NOT NULL,
            text_body TEXT NOT NULL,
            html_body TEXT NOT NULL
        );
        CREATE TABLE digest_items (
            id INTEGER PRIMARY KEY,
            digest_id INTEGER NOT NULL REFERENCES digests(id),
            work_id INTEGER NOT NULL REFERENCES works(id),
            section TEXT NOT NULL,
            position INTEGER NOT NULL
        );
        CREATE INDEX digest_items_work ON digest_items(work_id);
        CREATE TABLE digest_deliveries (
            id INTEGER PRIMARY KEY,
            digest_id INTEGER NOT NULL REFERENCES digests(id),
            recipient TEXT NOT NULL,
            transport TEXT NOT NULL,
            status TEXT NOT NULL,
            attempted_at TEXT NOT NULL,
            delivered_at TEXT,
            message_id TEXT,
            path TEXT,
            error TEXT
        );
        """
    )


def _source_rank_sql(column: str) -> str:
    """SQL ranking a ``records.source`` value by SOURCE_PRIORITY (``feed:x`` ranks as ``feed``)."""
    kind = f"substr({column}, 1, instr({column} || ':', ':') - 1)"
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SOURCE_PRIORITY))
    return f"(CASE {kind} {whens} ELSE {len(SOURCE_PRIORITY)} END)"


@migrations()
def m002_dedup(db: sqlite_utils.Database) -> None:
    """Fuzzy-match keys, links between works, the merge log and the merged views (crawler.dedup).

    Creates tables and views only; :data:`crawler.ingest.BACKFILLS` fills them for records stored before.
    """
    rank = _source_rank_sql("r.source")

    def best(column: str, empty: str = "''") -> str:
        return (
            f"(SELECT r.{column} FROM records r WHERE r.work_id = w.id AND COALESCE(r.{column}, {empty}) != {empty}"
            f" ORDER BY {rank}, r.id LIMIT 1)"
        )

    # one execute per statement: sqlite_utils' executescript re-scans the script once per line
    script = f"""
        CREATE TABLE record_fingerprints (
            record_id INTEGER PRIMARY KEY REFERENCES records(id),
            kind TEXT NOT NULL,
            title_key TEXT NOT NULL,
            first_author TEXT NOT NULL DEFAULT '',
            author_words TEXT NOT NULL DEFAULT '',
            year INTEGER
        );
        CREATE TABLE match_keys (
            record_id INTEGER NOT NULL REFERENCES records(id),
            key TEXT NOT NULL,
            PRIMARY KEY (key, record_id)
        ) WITHOUT ROWID;
        CREATE INDEX match_keys_record ON match_keys(record_id);
        CREATE TABLE work_links (
            id INTEGER PRIMARY KEY,
            from_work_id INTEGER NOT NULL REFERENCES works(id),
            to_work_id INTEGER NOT NULL REFERENCES works(id),
            link_type TEXT NOT NULL,
            evidence TEXT NOT NULL,
            record_id INTEGER REFERENCES records(id),
            created_at TEXT NOT NULL,
            UNIQUE (from_work_id, to_work_id, link_type, evidence)
        );
        CREATE INDEX work_links_to ON work_links(to_work_id, link_type);
        CREATE TABLE work_merges (
            id INTEGER PRIMARY KEY,
            survivor_id INTEGER NOT NULL REFERENCES works(id),
            merged_id INTEGER NOT NULL REFERENCES works(id),
            reason TEXT NOT NULL,
            record_id INTEGER REFERENCES records(id),
            merged_at TEXT NOT NULL
        );
        CREATE INDEX work_merges_merged ON work_merges(merged_id);
        CREATE INDEX works_merged_into ON works(merged_into);

        CREATE VIEW work_identifiers AS
        SELECT DISTINCT i.work_id, i.scheme, i.value
        FROM identifiers i JOIN works w ON w.id = i.work_id
        WHERE w.merged_into IS NULL;

        CREATE VIEW work_links_view AS
        SELECT l.from_work_id, f.record_type AS from_record_type, f.title AS from_title, l.link_type,
               l.to_work_id, t.record_type AS to_record_type, t.title AS to_title,
               group_concat(l.evidence, '; ') AS evidence, MIN(l.created_at) AS created_at
        FROM work_links l JOIN works f ON f.id = l.from_work_id JOIN works t ON t.id = l.to_work_id
        WHERE f.merged_into IS NULL AND t.merged_into IS NULL
        GROUP BY l.from_work_id, l.link_type, l.to_work_id;

        CREATE VIEW works_view AS
        SELECT w.id AS work_id, w.record_type, w.title,
               {best("abstract")} AS abstract,
               {best("authors", "'[]'")} AS authors,
               {best("journal")} AS journal,
               w.published_on, w.entered_on, w.first_seen_at, w.updated_at,
               (SELECT i.value FROM identifiers i WHERE i.work_id = w.id AND i.scheme = 'doi' ORDER BY i.id LIMIT 1) AS doi,
               (SELECT i.value FROM identifiers i WHERE i.work_id = w.id AND i.scheme = 'pmid' ORDER BY i.id LIMIT 1) AS pmid,
               (SELECT i.value FROM identifiers i WHERE i.work_id = w.id AND i.scheme IN ('nct', 'isrctn', 'euct', 'eudract')
                ORDER BY i.scheme = 'nct' DESC, i.id LIMIT 1) AS trial_id,
               (SELECT group_concat(source, ',') FROM (SELECT DISTINCT r.source FROM records r WHERE r.work_id = w.id ORDER BY r.source)) AS sources,
               (SELECT COUNT(*) FROM records r WHERE r.work_id = w.id) AS record_count,
               w.record_type = 'preprint' AS is_preprint,
               (EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'retraction_of')
                OR EXISTS (SELECT 1 FROM records r WHERE r.work_id = w.id AND (r.publication_types LIKE '%"retracted publication"%'
                           OR EXISTS (SELECT 1 FROM record_links rl WHERE rl.record_id = r.id AND rl.relation = 'retraction_in')))) AS is_retracted,
               (EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'correction_of')
                OR EXISTS (SELECT 1 FROM records r JOIN record_links rl ON rl.record_id = r.id
                           WHERE r.work_id = w.id AND rl.relation IN ('erratum_in', 'correction_in'))) AS is_corrected,
               (EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'expression_of_concern_of')
                OR EXISTS (SELECT 1 FROM records r JOIN record_links rl ON rl.record_id = r.id
                           WHERE r.work_id = w.id AND rl.relation = 'expression_of_concern_in')) AS has_expression_of_concern,
               (EXISTS (SELECT 1 FROM records r JOIN trial_snapshots s ON s.record_id = r.id
                        WHERE r.work_id = w.id AND s.has_results = 1
                          AND s.id = (SELECT MAX(s2.id) FROM trial_snapshots s2 WHERE s2.source = s.source AND s2.trial_id = s.trial_id))
                OR EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'registered_as'
                           AND (l.evidence LIKE '% result_publication %'
                                OR EXISTS (SELECT 1 FROM records r JOIN record_fingerprints f ON f.record_id = r.id
                                           WHERE r.work_id = l.from_work_id AND f.kind = 'article')))) AS has_results
        FROM works w
        WHERE w.merged_into IS NULL;
        """
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)
    # the records of a file created before this migration are fingerprinted and resolved by the
    # ingest layer's backfill (crawler.ingest.BACKFILLS), right after the migrations, in their transaction


def open_db(path: str | Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open and migrate the database (the application opens it with :func:`crawler.ingest.open_db`,
    which also runs the backfills a migration needs)."""
    db = connect(path, create=create)
    migrate(db)
    return db


def connect(path: str | Path | None, *, create: bool = True) -> sqlite_utils.Database:
    """Open the file (None: an in-memory database) without migrating: WAL journal, 30 s busy timeout, foreign keys on."""
    if path is None:
        db = sqlite_utils.Database(memory=True)
        db.conn.execute("PRAGMA foreign_keys = ON")
        return db
    path = Path(path)
    if path.parent and not path.parent.exists():
        if not create:
            raise FileNotFoundError(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    if not create and not path.exists():
        raise FileNotFoundError(path)
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA busy_timeout = 30000")
    db.conn.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        db.enable_wal()
    return db


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the pending migrations, in order; return the names of those applied now."""
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending


def memory_db() -> sqlite_utils.Database:
    db = connect(None)
    migrate(db)
    return db


# --------------------------------------------------------------------------- records and works


def save_records(db: sqlite_utils.Database, records: Iterable[Record], now: str | None = None) -> dict[str, int]:
    """Store a batch of records in one transaction; return counts of new/updated/unchanged.

    Only the rows and the joins by shared identifier: :func:`crawler.ingest.save_batch` adds fuzzy
    identity, links between works and classification.
    """
    now = now or utcnow()
    counts = {"new": 0, "updated": 0, "unchanged": 0}
    with db.atomic():
        for record in records:
            counts[save_record(db, record, now)[0]] += 1
    return counts


def save_record(db, record: Record, now: str) -> tuple[str, int]:
    """Insert or update one record (its identifiers, links, trial snapshot, work): (new|updated|unchanged, record id)."""
    digest = record.content_hash()
    row = db.execute(
        "SELECT id, work_id, content_hash FROM records WHERE source = ? AND source_id = ?",
        [record.source, record.source_id],
    ).fetchone()
    values = {
        "record_type": record.record_type,
        "title": record.title,
        "abstract": record.abstract,
        "authors": _json(record.authors),
        "structured_authors": _json([a.to_dict() for a in record.structured_authors]),
        "journal": record.journal,
        **{name: _citation_value(record.extra.get(name)) for name in CITATION_FIELDS},
        "published_on": record.published_on,
        "entered_on": record.entered_on,
        "updated_on": record.updated_on,
        "url": record.url,
        "publication_types": _json(record.publication_types),
        "mesh_terms": _json(record.mesh_terms),
        "keywords": _json(record.keywords),
        "language": record.language,
        "version": record.version,
        "data": _json(record.to_dict()),
        "content_hash": digest,
    }
    if row is None:
        existing = _works_with_identifiers(db, record.identifiers)
        work_id = existing[0] if existing else _create_work(db, record, now)
        cursor = db.execute(
            f"INSERT INTO records (source, source_id, work_id, first_seen_at, last_seen_at, changed_at, {', '.join(values)})"
            f" VALUES (?, ?, ?, ?, ?, ?, {', '.join('?' * len(values))})",
            [record.source, record.source_id, work_id, now, now, now, *values.values()],
        )
        record_id, status = cursor.lastrowid, "new"
    else:
        record_id, work_id, old_hash = row
        if old_hash == digest:
            db.execute("UPDATE records SET last_seen_at = ? WHERE id = ?", [now, record_id])
            _save_trial_snapshot(db, record_id, record, now)
            return "unchanged", record_id
        sets = ", ".join(f"{k} = ?" for k in values)
        db.execute(
            f"UPDATE records SET {sets}, last_seen_at = ?, changed_at = ? WHERE id = ?", [*values.values(), now, now, record_id]
        )
        status = "updated"
    db.execute("DELETE FROM identifiers WHERE record_id = ?", [record_id])
    for scheme, value in record.identifiers:
        db.execute(
            "INSERT OR IGNORE INTO identifiers (record_id, work_id, scheme, value) VALUES (?, ?, ?, ?)",
            [record_id, work_id, scheme, value],
        )
    db.execute("DELETE FROM record_links WHERE record_id = ?", [record_id])
    for link in record.links:
        db.execute(
            "INSERT OR IGNORE INTO record_links (record_id, relation, scheme, value, note) VALUES (?, ?, ?, ?, ?)",
            [record_id, link.relation, link.scheme, link.value, link.note],
        )
    _save_trial_snapshot(db, record_id, record, now)
    work_id = _join_works_sharing_identifiers(db, record_id, now)
    refresh_work(db, work_id, now)
    return status, record_id


def _citation_value(value) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _works_with_identifiers(db, identifiers: list[tuple[str, str]]) -> list[int]:
    found: set[int] = set()
    for scheme, value in identifiers:
        found.update(r[0] for r in db.execute("SELECT work_id FROM identifiers WHERE scheme = ? AND value = ?", [scheme, value]))
    return sorted(found)


def _create_work(db, record: Record, now: str) -> int:
    cursor = db.execute(
        "INSERT INTO works (record_type, title, published_on, entered_on, first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [record.record_type, record.title, record.published_on, record.entered_on, now, now],
    )
    return cursor.lastrowid


def _join_works_sharing_identifiers(db, record_id: int, now: str) -> int:
    """Records sharing a normalised identifier belong to one work (transitively).

    When the record's identifiers reach several works they are merged into the oldest one;
    the others keep their row with ``merged_into`` set so that old references still resolve.
    """
    work_id = db.execute("SELECT work_id FROM records WHERE id = ?", [record_id]).fetchone()[0]
    shared: dict[int, str] = {}
    for other, scheme, value in db.execute(
        """SELECT other.work_id, mine.scheme, mine.value FROM identifiers AS mine
               JOIN identifiers AS other ON other.scheme = mine.scheme AND other.value = mine.value
               WHERE mine.record_id = ? AND other.work_id != ? ORDER BY other.work_id, mine.scheme, mine.value""",
        [record_id, work_id],
    ):
        shared.setdefault(other, f"identifier {scheme}:{value}")
    if not shared:
        return work_id
    group = sorted({work_id, *shared})
    survivor = group[0]
    for other in group[1:]:
        reason = shared.get(other) or shared[survivor]
        merge_works(db, survivor, [other], now, reason=reason, record_id=record_id)
    return survivor


def merge_works(
    db, survivor: int, merged: list[int], now: str | None = None, *, reason: str = "manual", record_id: int | None = None
) -> int:
    """Point every record, identifier, digest item and link of ``merged`` works at ``survivor``.

    Each merge is logged in ``work_merges`` with its ``reason`` (the shared identifier, or the
    fuzzy evidence) and the record that brought the evidence.
    """
    now = now or utcnow()
    with db.atomic():
        for work_id in merged:
            if work_id == survivor:
                continue
            for table in ("records", "identifiers", "digest_items"):
                db.execute(f"UPDATE {table} SET work_id = ? WHERE work_id = ?", [survivor, work_id])
            db.execute("UPDATE works SET merged_into = ?, updated_at = ? WHERE id = ?", [survivor, now, work_id])
            db.execute("UPDATE works SET merged_into = ? WHERE merged_into = ?", [survivor, work_id])
            _repoint_work_links(db, work_id, survivor)
            db.execute(
                "INSERT INTO work_merges (survivor_id, merged_id, reason, record_id, merged_at) VALUES (?, ?, ?, ?, ?)",
                [survivor, work_id, reason, record_id, now],
            )
        refresh_work(db, survivor, now)
    return survivor


def refresh_work(db, work_id: int, now: str) -> None:
    """Recompute a work's summary columns from its records, best source first."""
    rows = db.execute(
        "SELECT source, record_type, title, published_on, entered_on, first_seen_at FROM records WHERE work_id = ?",
        [work_id],
    ).fetchall()
    if not rows:
        return

    def rank(row):
        kind = row[0].split(":")[0]
        return SOURCE_PRIORITY.index(kind) if kind in SOURCE_PRIORITY else len(SOURCE_PRIORITY)

    best = min(rows, key=rank)
    types = {r[1] for r in rows}
    record_type = next(
        (t for t in ("article", "notice", "trial_registration", "preprint", "news", "other") if t in types), best[1]
    )
    published = next((r[3] for r in sorted(rows, key=rank) if r[3]), None)
    entered = min((r[4] for r in rows if r[4]), default=None)
    first_seen = min(r[5] for r in rows)
    db.execute(
        "UPDATE works SET record_type = ?, title = ?, published_on = ?, entered_on = ?, first_seen_at = MIN(first_seen_at, ?), updated_at = ? WHERE id = ?",
        [record_type, best[2], published, entered, first_seen, now, work_id],
    )
    _refresh_work_authors(db, work_id)


def _save_trial_snapshot(db, record_id: int, record: Record, now: str) -> None:
    if not record.trial:
        return
    fields = {name: record.trial.get(name) for name in TRIAL_FIELDS}
    if isinstance(fields["phases"], list):
        fields["phases"] = ", ".join(fields["phases"])
    if fields["has_results"] is not None:
        fields["has_results"] = int(bool(fields["has_results"]))
    latest = db.execute(
        f"SELECT {', '.join(TRIAL_FIELDS)} FROM trial_snapshots WHERE source = ? AND trial_id = ? ORDER BY id DESC LIMIT 1",
        [record.source, record.source_id],
    ).fetchone()
    if latest is not None and tuple(latest) == tuple(fields.values()):
        return
    db.execute(
        f"INSERT INTO trial_snapshots (record_id, source, trial_id, captured_at, {', '.join(TRIAL_FIELDS)})"
        f" VALUES (?, ?, ?, ?, {', '.join('?' * len(TRIAL_FIELDS))})",
        [record_id, record.source, record.source_id, now, *fields.values()],
    )


def known_source_ids(db, source: str, source_ids: Iterable[str]) -> set[str]:
    ids = list(source_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(
            r[0]
            for r in db.execute(
                f"SELECT source_id FROM records WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})",
                [source, *chunk],
            )
        )
    return found


# --------------------------------------------------------------------------- crawl bookkeeping


def start_crawl_run(db, trigger: str) -> int:
    with db.atomic():
        return db.execute(
            "INSERT INTO crawl_runs (started_at, status, trigger) VALUES (?, 'running', ?)", [utcnow(), trigger]
        ).lastrowid


def finish_crawl_run(db, run_id: int, status: str) -> None:
    with db.atomic():
        db.execute("UPDATE crawl_runs SET finished_at = ?, status = ? WHERE id = ?", [utcnow(), status, run_id])


def start_source_run(db, crawl_run_id: int, source: str, window_from: str | None, window_to: str | None) -> int:
    with db.atomic():
        return db.execute(
            "INSERT INTO source_runs (crawl_run_id, source, started_at, status, window_from, window_to) VALUES (?, ?, ?, 'running', ?, ?)",
            [crawl_run_id, source, utcnow(), window_from, window_to],
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
) -> None:
    now = utcnow()
    with db.atomic():
        db.execute(
            """UPDATE source_runs SET finished_at = ?, status = ?, requests = ?, fetched = ?, kept = ?, new = ?,
               updated = ?, unchanged = ?, warnings = ?, error = ? WHERE id = ?""",
            [
                now,
                status,
                requests,
                counts.get("fetched", 0),
                counts.get("kept", counts.get("fetched", 0)),
                counts.get("new", 0),
                counts.get("updated", 0),
                counts.get("unchanged", 0),
                _json(warnings),
                error,
                source_run_id,
            ],
        )
        source = db.execute("SELECT source FROM source_runs WHERE id = ?", [source_run_id]).fetchone()[0]
        for q in queries:
            db.execute(
                "INSERT INTO source_queries (source_run_id, source, query, window_from, window_to, hits, params, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [source_run_id, source, q.query, q.window_from, q.window_to, q.hits, _json(q.params), now],
            )


def load_source_state(db, source: str) -> dict[str, Any]:
    row = db.execute("SELECT watermark, state, consecutive_failures FROM source_states WHERE source = ?", [source]).fetchone()
    if row is None:
        return {"watermark": None, "state": {}, "consecutive_failures": 0}
    return {"watermark": row[0], "state": json.loads(row[1]), "consecutive_failures": row[2]}


def save_source_success(db, source: str, watermark: str | None, state: dict[str, Any]) -> None:
    now = utcnow()
    with db.atomic():
        db.execute(
            """INSERT INTO source_states (source, watermark, state, last_success_at, consecutive_failures, updated_at)
               VALUES (?, ?, ?, ?, 0, ?)
               ON CONFLICT(source) DO UPDATE SET watermark = excluded.watermark, state = excluded.state,
               last_success_at = excluded.last_success_at, consecutive_failures = 0, updated_at = excluded.updated_at""",
            [source, watermark, _json(state), now, now],
        )


def save_source_failure(db, source: str, error: str) -> None:
    now = utcnow()
    with db.atomic():
        db.execute(
            """INSERT INTO source_states (source, state, last_failure_at, last_error, consecutive_failures, updated_at)
               VALUES (?, '{}', ?, ?, 1, ?)
               ON CONFLICT(source) DO UPDATE SET last_failure_at = excluded.last_failure_at, last_error = excluded.last_error,
               consecutive_failures = source_states.consecutive_failures + 1, updated_at = excluded.updated_at""",
            [source, now, error, now],
        )


# --------------------------------------------------------------------------- digests


def save_digest(
    db,
    *,
    period_start: str,
    period_end: str,
    subject: str,
    text_body: str,
    html_body: str,
    items: list,
    recipient: str = "outbox",
) -> int:
    """Store a rendered digest for one recipient with its items: (work_id, section) or
    (work_id, section, kind, detail) where kind is new | update and detail is JSON-able."""
    with db.atomic():
        digest_id = db.execute(
            "INSERT INTO digests (created_at, period_start, period_end, subject, item_count, text_body, html_body, recipient)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [utcnow(), period_start, period_end, subject, len(items), text_body, html_body, recipient],
        ).lastrowid
        for position, item in enumerate(items):
            work_id, section, kind, detail = (tuple(item) + ("new", None))[:4]
            db.execute(
                "INSERT INTO digest_items (digest_id, work_id, section, position, kind, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [digest_id, work_id, section, position, kind, _json(detail) if detail is not None else None],
            )
    return digest_id


def save_delivery(
    db,
    digest_id: int,
    recipient: str,
    *,
    transport: str,
    status: str,
    message_id: str | None = None,
    path: str | None = None,
    error: str | None = None,
) -> int:
    now = utcnow()
    with db.atomic():
        return db.execute(
            "INSERT INTO digest_deliveries (digest_id, recipient, transport, status, attempted_at, delivered_at, message_id, path, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                digest_id,
                recipient,
                transport,
                status,
                now,
                now if status in ("sent", "written") else None,
                message_id,
                path,
                error,
            ],
        ).lastrowid


#: Delivery statuses that count as having reached the recipient. ``unknown``: the process died between
#: handing the message over and recording the answer; it is never sent again automatically (at most
#: once), and `litmon status` asks the operator to check the mailbox for its Message-ID.
REACHED_STATUSES = ("sent", "written", "unknown")


def start_delivery(db, digest_id: int, recipient: str, *, transport: str, message_id: str | None, path: str | None = None) -> int:
    """Record, before handing a digest over (SMTP DATA, writing the outbox file), that it is being sent."""
    return save_delivery(db, digest_id, recipient, transport=transport, status="sending", message_id=message_id, path=path)


def update_delivery(db, delivery_id: int, *, status: str, error: str | None = None) -> None:
    """The outcome of a delivery recorded by :func:`start_delivery` (committed at once)."""
    now = utcnow()
    with db.atomic():
        db.execute(
            "UPDATE digest_deliveries SET status = ?, attempted_at = ?, delivered_at = ?, error = ? WHERE id = ?",
            # an unknown delivery is dated like a sent one: its items count as reached (never resent)
            [status, now, now if status in REACHED_STATUSES else None, error, delivery_id],
        )


def recover_pending_deliveries(db) -> list[dict[str, Any]]:
    """Settle deliveries left ``sending``/``retrying`` by a killed process (call under the run lock).

    An outbox file that exists was written (the file is renamed into place whole); an SMTP message
    may or may not have been accepted: it becomes ``unknown`` and is not sent again. ``retrying`` means
    the server had refused it: ``failed``, sent again by the next digest run.
    """
    settled = []
    for row in db.query(
        "SELECT id, digest_id, recipient, transport, status, message_id, path FROM digest_deliveries WHERE status IN ('sending', 'retrying')"
    ):
        if row["status"] == "retrying":
            status, error = "failed", "the process was killed while retrying this delivery; the next digest run sends it"
        elif row["transport"] == "outbox":
            written = bool(row["path"]) and Path(row["path"]).exists()
            status, error = ("written", None) if written else ("failed", "the process was killed before the file was written")
        else:
            status = "unknown"
            error = (
                f"the process was killed while the mail server was receiving it: check the mailbox for Message-ID "
                f"{row['message_id']}; it is not sent again (`litmon digest --resend {row['digest_id']}` sends it)"
            )
        update_delivery(db, row["id"], status=status, error=error)
        settled.append({**row, "status": status})
    return settled


# =========================================================================== classification (issue #5)
# Relevance, tags and rank of each work (computed by crawler.classify). Kept in this separate
# section, with its own migration, so that other schema changes merge cleanly.


@migrations()
def m003_classify(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE work_relevance (
            work_id INTEGER PRIMARY KEY REFERENCES works(id),
            label TEXT NOT NULL,
            score INTEGER NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            rank_score INTEGER NOT NULL,
            rank_reasons TEXT NOT NULL DEFAULT '[]',
            vocabulary_hash TEXT NOT NULL,
            classified_at TEXT NOT NULL
        );
        CREATE INDEX work_relevance_label ON work_relevance(label, rank_score);
        CREATE TABLE work_tags (
            id INTEGER PRIMARY KEY,
            work_id INTEGER NOT NULL REFERENCES works(id),
            tag TEXT NOT NULL,
            category TEXT NOT NULL,
            evidence TEXT NOT NULL,
            UNIQUE (work_id, tag)
        );
        CREATE INDEX work_tags_tag ON work_tags(tag, work_id);
        """
    )


def load_current_work_ids(db, work_ids: list[int] | None = None) -> list[int]:
    """Current (not merged) works: all of them, or those given (a merged one stands for its survivor)."""
    if work_ids is None:
        return [r[0] for r in db.execute("SELECT id FROM works WHERE merged_into IS NULL ORDER BY id")]
    result = set()
    for work_id in work_ids:
        row = db.execute("SELECT id, merged_into FROM works WHERE id = ?", [work_id]).fetchone()
        seen = set()
        while row and row[1] is not None and row[1] not in seen:  # merged_into points at the survivor
            seen.add(row[1])
            row = db.execute("SELECT id, merged_into FROM works WHERE id = ?", [row[1]]).fetchone()
        if row:
            result.add(row[0])
    return sorted(result)


def load_work_ids_of_records(db, keys: list[tuple[str, str]]) -> list[int]:
    """The current works that the records (source, source_id) belong to."""
    found = set()
    for source, source_id in keys:
        row = db.execute("SELECT work_id FROM records WHERE source = ? AND source_id = ?", [source, str(source_id)]).fetchone()
        if row:
            found.add(row[0])
    return load_current_work_ids(db, sorted(found))


def load_work_records(db, work_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """work_id -> its records as parsed (``records.data``: Record.to_dict())."""
    result: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(work_ids), 500):
        chunk = work_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for work_id, data in db.execute(f"SELECT work_id, data FROM records WHERE work_id IN ({marks}) ORDER BY id", chunk):
            result.setdefault(work_id, []).append(json.loads(data))
    return result


def save_classifications(db, classifications, now: str | None = None) -> None:
    """Replace the relevance row and the tags of each classified work (one transaction).

    Rows of works that have since been merged into another are removed: the survivor carries the
    classification.
    """
    now = now or utcnow()
    with db.atomic():
        for c in classifications:
            db.execute(
                """INSERT INTO work_relevance (work_id, label, score, reasons, rank_score, rank_reasons, vocabulary_hash, classified_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(work_id) DO UPDATE SET label = excluded.label, score = excluded.score, reasons = excluded.reasons,
                   rank_score = excluded.rank_score, rank_reasons = excluded.rank_reasons,
                   vocabulary_hash = excluded.vocabulary_hash, classified_at = excluded.classified_at""",
                [c.work_id, c.label, c.score, _json(c.reasons), c.rank_score, _json(c.rank_reasons), c.vocabulary_hash, now],
            )
            db.execute("DELETE FROM work_tags WHERE work_id = ?", [c.work_id])
            for tag in c.tags:
                db.execute(
                    "INSERT OR REPLACE INTO work_tags (work_id, tag, category, evidence) VALUES (?, ?, ?, ?)",
                    [c.work_id, tag.tag, tag.category, tag.evidence],
                )
        for table in ("work_relevance", "work_tags"):
            db.execute(f"DELETE FROM {table} WHERE work_id IN (SELECT id FROM works WHERE merged_into IS NOT NULL)")


def load_unclassified_work_ids(db) -> list[int]:
    return [
        r[0]
        for r in db.execute(
            "SELECT w.id FROM works w LEFT JOIN work_relevance r ON r.work_id = w.id"
            " WHERE w.merged_into IS NULL AND r.work_id IS NULL ORDER BY w.id"
        )
    ]


def count_stale_classifications(db, vocabulary_hash: str) -> int:
    return db.execute("SELECT COUNT(*) FROM work_relevance WHERE vocabulary_hash != ?", [vocabulary_hash]).fetchone()[0]


def load_classification_summary(db) -> dict[int, tuple[str, set[str]]]:
    """work_id -> (label, tag names) of what is stored now."""
    result: dict[int, tuple[str, set[str]]] = {
        r[0]: (r[1], set()) for r in db.execute("SELECT work_id, label FROM work_relevance")
    }
    for work_id, tag in db.execute("SELECT work_id, tag FROM work_tags"):
        if work_id in result:
            result[work_id][1].add(tag)
    return result


# --------------------------------------------------------------------------- digests per recipient (m004)


@migrations()
def m004_digest_recipients(db: sqlite_utils.Database) -> None:
    """Digests are made per recipient (filters differ, and so do the periods after a failed delivery);
    items say whether they are new or an update (trial change, now published, retraction)."""
    db.executescript(
        """
        ALTER TABLE digests ADD COLUMN recipient TEXT NOT NULL DEFAULT 'outbox';
        ALTER TABLE digest_items ADD COLUMN kind TEXT NOT NULL DEFAULT 'new';
        ALTER TABLE digest_items ADD COLUMN detail TEXT;
        CREATE INDEX digests_recipient ON digests(recipient, id);
        """
    )


def load_last_delivered_digest(db, recipient: str) -> dict | None:
    """The newest digest that reached ``recipient`` (sent, or written to the outbox)."""
    rows = list(
        db.query(
            """SELECT d.* FROM digests d JOIN digest_deliveries x ON x.digest_id = d.id
           WHERE d.recipient = ? AND x.recipient = ? AND x.status IN ('sent', 'written', 'unknown')
           ORDER BY d.period_end DESC, d.id DESC LIMIT 1""",
            [recipient, recipient],
        )
    )
    return rows[0] if rows else None


def load_failed_since(db, recipient: str, since: str | None) -> int:
    """Failed deliveries to ``recipient`` after the digest period ``since`` (None: ever)."""
    return db.execute(
        """SELECT COUNT(*) FROM digests d JOIN digest_deliveries x ON x.digest_id = d.id
           WHERE d.recipient = ? AND x.status = 'failed' AND d.period_end > COALESCE(?, '')""",
        [recipient, since],
    ).fetchone()[0]


def load_delivered_work_ids(db, recipient: str, work_ids: list[int]) -> dict[int, str]:
    """Which of ``work_ids`` reached ``recipient`` in an earlier digest, with the date it was sent."""
    found: dict[int, str] = {}
    for start in range(0, len(work_ids), 500):
        chunk = work_ids[start : start + 500]
        for row in db.query(
            f"""SELECT i.work_id, MIN(x.delivered_at) AS at FROM digest_items i
                    JOIN digests d ON d.id = i.digest_id JOIN digest_deliveries x ON x.digest_id = d.id
                    WHERE d.recipient = ? AND x.status IN ('sent', 'written', 'unknown') AND i.work_id IN ({", ".join("?" * len(chunk))})
                    GROUP BY i.work_id""",
            [recipient, *chunk],
        ):
            found[row["work_id"]] = row["at"]
    return found


def load_digest(db, digest_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM digests WHERE id = ?", [digest_id]))
    return rows[0] if rows else None


# --------------------------------------------------------------------------- dedup (m002_dedup)
# SQL primitives of crawler.dedup: fingerprints and blocking keys, candidate look-ups, the links
# between works and the merge log.


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def all_record_ids(db) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM records ORDER BY id")]


def load_match_records(db, record_ids: list[int]) -> list[dict[str, Any]]:
    """The fields fuzzy matching reads, for each record id (in the order given)."""
    found: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(list(record_ids)):
        for row in db.query(
            f"""SELECT id, work_id, source, record_type, title, authors, published_on, entered_on, publication_types,
                    (SELECT group_concat(relation) FROM record_links rl WHERE rl.record_id = records.id) AS relations
                    FROM records WHERE id IN ({", ".join("?" * len(chunk))})""",
            chunk,
        ):
            found[row["id"]] = row
    return [found[i] for i in record_ids if i in found]


def save_fingerprint(db, record_id: int, fp, keys: list[str]) -> None:
    """Replace a record's fingerprint (``record_fingerprints``) and blocking keys (``match_keys``)."""
    db.execute(
        """INSERT INTO record_fingerprints (record_id, kind, title_key, first_author, author_words, year) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(record_id) DO UPDATE SET kind = excluded.kind, title_key = excluded.title_key,
           first_author = excluded.first_author, author_words = excluded.author_words, year = excluded.year""",
        [record_id, fp.kind, fp.title_key, fp.first_author, " ".join(fp.author_words), fp.year],
    )
    db.execute("DELETE FROM match_keys WHERE record_id = ?", [record_id])
    db.conn.executemany("INSERT OR IGNORE INTO match_keys (key, record_id) VALUES (?, ?)", [(k, record_id) for k in keys])


def find_candidates(db, keys: list[str], *, kinds: list[str], exclude_record: int, limit: int) -> list[dict[str, Any]]:
    """Records of ``kinds`` sharing a blocking key, most shared keys first, at most ``limit`` of them."""
    if not keys or not kinds:
        return []
    return list(
        db.query(
            f"""SELECT c.record_id, r.work_id, f.kind, f.title_key, f.first_author, f.author_words, f.year, c.shared
            FROM (SELECT record_id, COUNT(*) AS shared FROM match_keys WHERE key IN ({", ".join("?" * len(keys))})
                  AND record_id != ? GROUP BY record_id) AS c
            JOIN record_fingerprints f ON f.record_id = c.record_id JOIN records r ON r.id = c.record_id
            WHERE f.kind IN ({", ".join("?" * len(kinds))})
            ORDER BY c.shared DESC, c.record_id LIMIT ?""",
            [*keys, exclude_record, *kinds, limit],
        )
    )


def current_work_ids(db, record_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(list(record_ids)):
        found.update(
            r[0] for r in db.execute(f"SELECT DISTINCT work_id FROM records WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        )
    return found


def work_identifier_sets(db, work_ids: list[int]) -> dict[int, dict[str, set[str]]]:
    result: dict[int, dict[str, set[str]]] = {}
    for chunk in _chunks(list(work_ids)):
        for work_id, scheme, value in db.execute(
            f"SELECT work_id, scheme, value FROM identifiers WHERE work_id IN ({', '.join('?' * len(chunk))})", chunk
        ):
            result.setdefault(work_id, {}).setdefault(scheme, set()).add(value)
    return result


def work_kinds(db, work_id: int) -> set[str]:
    return {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT f.kind FROM records r JOIN record_fingerprints f ON f.record_id = r.id WHERE r.work_id = ?",
            [work_id],
        )
    }


def load_fingerprints_of_work(db, work_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            """SELECT f.record_id, f.kind, f.title_key, f.first_author, f.author_words, f.year FROM records r
           JOIN record_fingerprints f ON f.record_id = r.id WHERE r.work_id = ? ORDER BY f.record_id""",
            [work_id],
        )
    )


_STATED_LINK_COLUMNS = """rl.record_id, r.source, r.source_id, rl.relation, rl.scheme, rl.value, rl.note,
                          r.work_id AS record_work_id, i.work_id AS target_work_id"""


def stated_links_touching(db, work_id: int) -> list[dict[str, Any]]:
    """Record links that resolve to a stored work, stated by a record of ``work_id`` or naming one of its identifiers."""
    outgoing = db.query(
        f"""SELECT DISTINCT {_STATED_LINK_COLUMNS} FROM records r JOIN record_links rl ON rl.record_id = r.id
            JOIN identifiers i ON i.scheme = rl.scheme AND i.value = rl.value WHERE r.work_id = ?""",
        [work_id],
    )
    incoming = db.query(
        f"""SELECT DISTINCT {_STATED_LINK_COLUMNS} FROM identifiers i
            JOIN record_links rl ON rl.scheme = i.scheme AND rl.value = i.value
            JOIN records r ON r.id = rl.record_id WHERE i.work_id = ? AND r.work_id != ?""",
        [work_id, work_id],
    )
    return [*outgoing, *incoming]


def stated_link_between(db, a: int, b: int) -> bool:
    """Whether a record of one work states any link to an identifier of the other."""
    sql = """SELECT 1 FROM records r JOIN record_links rl ON rl.record_id = r.id
             JOIN identifiers i ON i.scheme = rl.scheme AND i.value = rl.value WHERE r.work_id = ? AND i.work_id = ? LIMIT 1"""
    return any(db.execute(sql, pair).fetchone() is not None for pair in ([a, b], [b, a]))


def has_stated_preprint_link(db, work_id: int) -> bool:
    """Whether a record of the work states a preprint link, or one names the work's identifiers."""
    relations = ("preprint_of", "has_preprint")
    if db.execute(
        "SELECT 1 FROM records r JOIN record_links rl ON rl.record_id = r.id WHERE r.work_id = ? AND rl.relation IN (?, ?) LIMIT 1",
        [work_id, *relations],
    ).fetchone():
        return True
    return (
        db.execute(
            """SELECT 1 FROM identifiers i JOIN record_links rl ON rl.scheme = i.scheme AND rl.value = i.value
           WHERE i.work_id = ? AND rl.relation IN (?, ?) LIMIT 1""",
            [work_id, *relations],
        ).fetchone()
        is not None
    )


def sync_work_links(db, work_id: int, desired: dict[tuple[int, int, str, str], int | None], now: str) -> None:
    """Make the links touching ``work_id`` exactly ``desired`` ((from, to, type, evidence) -> record id).

    Rows that stay keep their ``created_at``, so re-resolving unchanged data changes nothing.
    """
    existing = {
        (r[1], r[2], r[3], r[4]): r[0]
        for r in db.execute(
            "SELECT id, from_work_id, to_work_id, link_type, evidence FROM work_links WHERE from_work_id = ? OR to_work_id = ?",
            [work_id, work_id],
        )
    }
    for key, link_id in existing.items():
        if key not in desired:
            db.execute("DELETE FROM work_links WHERE id = ?", [link_id])
    for key, record_id in desired.items():
        if key not in existing:
            db.execute(
                "INSERT OR IGNORE INTO work_links (from_work_id, to_work_id, link_type, evidence, record_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [*key, record_id, now],
            )


def _repoint_work_links(db, old: int, new: int) -> None:
    """Links of a merged work now belong to its survivor (duplicates and self-links dropped)."""
    for column in ("from_work_id", "to_work_id"):
        db.execute(f"UPDATE OR IGNORE work_links SET {column} = ? WHERE {column} = ?", [new, old])
        db.execute(f"DELETE FROM work_links WHERE {column} = ?", [old])
    db.execute("DELETE FROM work_links WHERE from_work_id = ? AND to_work_id = ?", [new, new])


# =========================================================================== structured authors (issue #14)
# Each record keeps its authors as Author dicts (family, given, initials, collective, suffix) next to
# the names as the source wrote them; a work shows the authors of its best source that has any.

#: Name order of each source's author strings, for parsing records stored before m005.
_NAME_ORDER = {"pubmed": "family_first", "europepmc": "family_first", "biorxiv": "family_first"}


@migrations()
def m005_structured_authors(db: sqlite_utils.Database) -> None:
    """``records.structured_authors`` and the citation columns; ``works.authors`` from the best source."""
    db.executescript(
        """
        ALTER TABLE records ADD COLUMN structured_authors TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE records ADD COLUMN journal_abbreviation TEXT;
        ALTER TABLE records ADD COLUMN volume TEXT;
        ALTER TABLE records ADD COLUMN issue TEXT;
        ALTER TABLE records ADD COLUMN pages TEXT;
        ALTER TABLE works ADD COLUMN authors TEXT NOT NULL DEFAULT '[]';
        """
    )
    for record_id, source, authors, data in db.execute("SELECT id, source, authors, data FROM records").fetchall():
        extra = (json.loads(data or "{}") or {}).get("extra") or {}
        people = parse_authors(json.loads(authors or "[]"), order=_NAME_ORDER.get(source.split(":")[0]))
        db.execute(
            f"UPDATE records SET structured_authors = ?, {', '.join(f'{c} = ?' for c in CITATION_FIELDS)} WHERE id = ?",
            [_json([a.to_dict() for a in people]), *(_citation_value(extra.get(c)) for c in CITATION_FIELDS), record_id],
        )
    for (work_id,) in db.execute("SELECT id FROM works WHERE merged_into IS NULL").fetchall():
        _refresh_work_authors(db, work_id)


def _refresh_work_authors(db, work_id: int) -> None:
    """``works.authors``: the structured authors of the work's best-ranked record that has any.

    Skipped while an older migration's backfill runs (m002 resolves works before m005 adds the column)."""
    if not any(col[1] == "authors" for col in db.execute("PRAGMA table_info(works)")):
        return
    rank = _source_rank_sql("source")
    row = db.execute(
        f"SELECT structured_authors FROM records WHERE work_id = ? AND structured_authors != '[]' ORDER BY {rank}, id LIMIT 1",
        [work_id],
    ).fetchone()
    db.execute("UPDATE works SET authors = ? WHERE id = ?", [row[0] if row else "[]", work_id])


# =========================================================================== timestamps SQLite compares (issue #14)


#: Timestamp columns that are not named ``*_at``.
_OTHER_TIMESTAMP_COLUMNS = {("digests", "period_start"), ("digests", "period_end")}


def timestamp_columns(db) -> list[tuple[str, str]]:
    """Every (table, column) holding a timestamp: the ``*_at`` columns and digest periods."""
    found = []
    for (table,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'"
        " AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
    ).fetchall():
        for column in db.execute(f"PRAGMA table_info([{table}])").fetchall():
            if column[1].endswith("_at") or (table, column[1]) in _OTHER_TIMESTAMP_COLUMNS:
                found.append((table, column[1]))
    return found


@migrations()
def m006_sqlite_timestamps(db: sqlite_utils.Database) -> None:
    """``2026-12-05T22:13:25Z`` → ``2026-12-05 22:13:25``: the form SQLite's ``datetime()`` returns, so that
    ``first_seen_at >= datetime('now', '-7 days')`` compares right (a 'T' sorts after the space)."""
    iso = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*"
    for table, column in timestamp_columns(db):
        db.execute(
            f"UPDATE [{table}] SET [{column}] = datetime([{column}]) WHERE [{column}] GLOB ? AND datetime([{column}]) IS NOT NULL",
            [iso],
        )


# --------------------------------------------------------------------------- fetched vs kept (m007)


@migrations()
def m007_source_runs_kept(db: sqlite_utils.Database) -> None:
    """``fetched`` counts the items a source downloaded and ``kept`` those that passed its local topic
    filter (feeds, pages, bioRxiv, Crossref); before, ``fetched`` held the kept count."""
    db.executescript(
        """
        ALTER TABLE source_runs ADD COLUMN kept INTEGER NOT NULL DEFAULT 0;
        UPDATE source_runs SET kept = fetched;
        """
    )
