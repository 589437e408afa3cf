"""The schema: every migration, in order, and opening the database.

The schema is a public interface (documented in README.md, "Database schema"): tables are plural
snake_case, timestamps are UTC ``YYYY-MM-DD HH:MM:SS`` strings (:func:`crawler.clock.stamp`, the form
of SQLite's ``datetime()``) in ``*_at`` columns, dates in ``*_on`` columns.
Migrations are applied with ``sqlite_utils.migrations.Migrations`` and recorded in
``_sqlite_migrations``: add a new function at the end (the next number), never edit an applied one.
A migration that needs a data backfill computed by a later stage (m002: fuzzy identity) gets it from
:data:`crawler.ingest.BACKFILLS`, run by :func:`crawler.ingest.open_db` in the same transaction.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from crawler.records import CITATION_FIELDS, NAME_ORDER, normalise_trial_status, parse_authors
from crawler.store.candidates import key_hash
from crawler.store.common import dumps, source_rank_sql
from crawler.store.runs import load_source_state
from crawler.store.summaries import FTS_COLUMNS, VIEWS, queue_triggers
from crawler.store.works import citation_value, refresh_work_authors

if TYPE_CHECKING:  # (imported where a connection is made: not before the fetch worker's fork)
    import sqlite_utils
    from sqlite_utils.migrations import Migrations

_Migration = TypeVar("_Migration", bound=Callable[..., None])


class _LitmonMigrations:
    """litmon's migrations: sqlite_utils' ``Migrations("litmon")``, made when first used (``pending``, ``apply``,
    ``applied``: :meth:`__getattr__`). Registering one (``@migrations()``) imports nothing: importing the store does
    not import sqlite_utils (~0.2 G instructions, with dateutil), which the first source's fetch worker never uses:
    a run imports it where it connects to the database, after that worker's fork (:class:`crawler.pipeline.FirstSource`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.functions: list[Callable[..., None]] = []
        self._made: Migrations | None = None

    def __call__(self) -> Callable[[_Migration], _Migration]:
        def register(function: _Migration) -> _Migration:
            self.functions.append(function)
            if self._made is not None:
                self._made()(function)
            return function

        return register

    def names(self) -> list[str]:
        """Every migration's name, in order."""
        return [function.__name__ for function in self.functions]

    def __getattr__(self, attribute: str) -> Any:
        if self._made is None:
            from sqlite_utils.migrations import Migrations

            made = Migrations(self.name)
            for function in self.functions:
                made()(function)
            self._made = made
        return getattr(self._made, attribute)


migrations = _LitmonMigrations("litmon")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """Works and their records, identifiers, stated links and trial snapshots; crawl bookkeeping; digests."""
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


@migrations()
def m002_dedup(db: sqlite_utils.Database) -> None:
    """Fuzzy-match keys, links between works, the merge log and the merged views (crawler.dedup).

    Creates tables and views only; :data:`crawler.ingest.BACKFILLS` fills them for records stored before.
    """
    rank = source_rank_sql("r.source")

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


@migrations()
def m003_classify(db: sqlite_utils.Database) -> None:
    """Relevance, score and rank of each work (``work_relevance``) and its tags (``work_tags``), from crawler.classify."""
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
        people = parse_authors(json.loads(authors or "[]"), order=NAME_ORDER.get(source.split(":")[0]))
        db.execute(
            f"UPDATE records SET structured_authors = ?, {', '.join(f'{c} = ?' for c in CITATION_FIELDS)} WHERE id = ?",
            [dumps([a.to_dict() for a in people]), *(citation_value(extra.get(c)) for c in CITATION_FIELDS), record_id],
        )
    for (work_id,) in db.execute("SELECT id FROM works WHERE merged_into IS NULL").fetchall():
        refresh_work_authors(db, work_id)


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


@migrations()
def m008_source_runs_skipped(db: sqlite_utils.Database) -> None:
    """``skipped``: items of a source's answer that could not be stored (no identifier, unreadable),
    with their reasons in ``skipped_reasons`` (a JSON list); such a run holds the source's watermark."""
    db.executescript(
        """
        ALTER TABLE source_runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE source_runs ADD COLUMN skipped_reasons TEXT NOT NULL DEFAULT '[]';
        """
    )


@migrations()
def m009_bounded_blocking_keys(db: sqlite_utils.Database) -> None:
    """Blocking keys whose groups stay small as the corpus grows (crawler.matching.blocking_keys):
    the old keys are dropped here and recomputed from ``record_fingerprints`` by the backfill
    (:data:`crawler.ingest.BACKFILLS`)."""
    db.execute("DELETE FROM match_keys")


@migrations()
def m010_work_summaries(db: sqlite_utils.Database) -> None:
    """work_summaries (+ queue, triggers, FTS5), normalised trial status, the views of the stable interface."""
    statements = [
        """CREATE TABLE work_summaries (
            work_id INTEGER PRIMARY KEY REFERENCES works(id),
            record_type TEXT NOT NULL,
            title TEXT NOT NULL,
            abstract TEXT,
            authors TEXT,
            first_author TEXT,
            author_count INTEGER NOT NULL DEFAULT 0,
            journal TEXT,
            journal_abbreviation TEXT,
            volume TEXT,
            issue TEXT,
            pages TEXT,
            published_on TEXT,
            year INTEGER,
            entered_on TEXT,
            first_seen_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            url TEXT,
            doi TEXT,
            pmid TEXT,
            pmcid TEXT,
            trial_id TEXT,
            keywords TEXT,
            mesh_terms TEXT,
            publication_types TEXT NOT NULL DEFAULT '[]',
            language TEXT,
            sources TEXT NOT NULL DEFAULT '',
            record_count INTEGER NOT NULL DEFAULT 0,
            relevance TEXT,
            rank_score INTEGER,
            tags TEXT NOT NULL DEFAULT '[]',
            evidence_types TEXT NOT NULL DEFAULT '[]',
            trial_status TEXT,
            is_preprint INTEGER NOT NULL DEFAULT 0,
            is_retracted INTEGER NOT NULL DEFAULT 0,
            is_corrected INTEGER NOT NULL DEFAULT 0,
            has_expression_of_concern INTEGER NOT NULL DEFAULT 0,
            has_results INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX work_summaries_first_seen ON work_summaries(first_seen_at)",
        "CREATE INDEX work_summaries_published ON work_summaries(published_on)",
        "CREATE INDEX work_summaries_relevance ON work_summaries(relevance, rank_score)",
        "CREATE INDEX work_summaries_type ON work_summaries(record_type)",
        "CREATE INDEX work_summaries_doi ON work_summaries(doi)",
        "CREATE INDEX work_summaries_pmid ON work_summaries(pmid)",
        "CREATE INDEX work_summaries_trial_status ON work_summaries(trial_status)",
        "CREATE INDEX work_summaries_retracted ON work_summaries(is_retracted)",
        "CREATE TABLE work_summary_queue (work_id INTEGER PRIMARY KEY)",
        "ALTER TABLE trial_snapshots ADD COLUMN status TEXT",
        "CREATE INDEX trial_snapshots_record ON trial_snapshots(record_id, id)",
        "CREATE INDEX work_links_type ON work_links(link_type, from_work_id, to_work_id)",
        "CREATE INDEX source_queries_run ON source_queries(source_run_id)",
        "CREATE INDEX digest_items_digest ON digest_items(digest_id, position)",
        "CREATE INDEX digest_deliveries_digest ON digest_deliveries(digest_id, id)",
        "DROP VIEW works_view",
        "CREATE VIEW works_view AS SELECT * FROM work_summaries",
        *VIEWS.values(),
        *queue_triggers(),
    ]
    for statement in statements:
        db.execute(statement)
    for snapshot_id, status in db.execute("SELECT id, overall_status FROM trial_snapshots").fetchall():
        db.execute("UPDATE trial_snapshots SET status = ? WHERE id = ?", [normalise_trial_status(status), snapshot_id])
    db.table("work_summaries").enable_fts(list(FTS_COLUMNS), fts_version="FTS5", create_triggers=True, tokenize="porter")
    # the rows are computed by crawler.ingest's backfill (rebuild_work_summaries), on the newest schema


@migrations()
def m011_page_item_ids(db: sqlite_utils.Database) -> None:
    """``page:`` entries are stored under their link without scheme, host and port (a new base URL or
    port no longer duplicates them): stored ids and the first-seen dates in ``source_states`` follow."""
    from urllib.parse import urlsplit, urlunsplit

    def item_id(link: str) -> str:
        parts = urlsplit(link)
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment)) if parts.scheme and parts.netloc else link

    rows = db.execute(
        "SELECT id, source, source_id FROM records WHERE source LIKE 'page:%' AND (source_id LIKE 'http://%' OR source_id LIKE 'https://%')"
    ).fetchall()
    for record_id, source, old in rows:
        new = item_id(old)
        taken = db.execute("SELECT 1 FROM records WHERE source = ? AND source_id = ?", [source, new]).fetchone()
        if not taken:
            db.execute("UPDATE records SET source_id = ? WHERE id = ?", [new, record_id])
    for source, state in db.execute("SELECT source, state FROM source_states WHERE source LIKE 'page:%'").fetchall():
        data = json.loads(state or "{}")
        if isinstance(data.get("first_seen"), dict):
            data["first_seen"] = {item_id(k): v for k, v in data["first_seen"].items()}
            db.execute("UPDATE source_states SET state = ? WHERE source = ?", [json.dumps(data, sort_keys=True), source])


def open_db(path: str | Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open and migrate the database (the application opens it with :func:`crawler.ingest.open_db`,
    which also runs the backfills a migration needs)."""
    db = connect(path, create=create)
    migrate(db)
    return db


@migrations()
def m012_record_data_without_abstract(db: sqlite_utils.Database) -> None:
    """``records.data`` no longer repeats the abstract, which is in ``records.abstract``: it is dropped from
    stored rows. The rewrite changes no work's summary: the summary queue is left as it was."""
    queued = {r[0] for r in db.execute("SELECT work_id FROM work_summary_queue")}
    db.execute("UPDATE records SET data = json_remove(data, '$.abstract') WHERE json_type(data, '$.abstract') IS NOT NULL")
    if queued:
        db.execute(
            "DELETE FROM work_summary_queue WHERE work_id NOT IN (SELECT value FROM json_each(?))", [json.dumps(sorted(queued))]
        )
    else:
        db.execute("DELETE FROM work_summary_queue")


@migrations()
def m013_match_keys_year(db: sqlite_utils.Database) -> None:
    """``match_keys.year`` (the record's year, 0 when unknown) leads the key's index after the key, so a
    candidate look-up reads only the records of its year window: an author's blocking group grows with
    the years of a corpus, the part read stays the same size."""
    for statement in (
        """CREATE TABLE match_keys_new (
            record_id INTEGER NOT NULL REFERENCES records(id),
            key TEXT NOT NULL,
            year INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (key, year, record_id)
        ) WITHOUT ROWID""",
        """INSERT OR IGNORE INTO match_keys_new (record_id, key, year)
            SELECT m.record_id, m.key, COALESCE(f.year, 0) FROM match_keys m
            LEFT JOIN record_fingerprints f ON f.record_id = m.record_id""",
        "DROP TABLE match_keys",
        "ALTER TABLE match_keys_new RENAME TO match_keys",
        "CREATE INDEX match_keys_record ON match_keys(record_id)",
    ):
        db.execute(statement)


@migrations()
def m014_fts_update_trigger_on_indexed_columns(db: sqlite_utils.Database) -> None:
    """The search index's update trigger fires only when an indexed column changes. sqlite-utils' trigger
    re-indexed a work's title, abstract, authors… on every update of its ``work_summaries`` row, and a
    classification changes only the relevance, rank and tag columns (``litmon reclassify``, a weekly run)."""
    columns = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
    old = ", ".join(f'old."{c}"' for c in FTS_COLUMNS)
    new = ", ".join(f'new."{c}"' for c in FTS_COLUMNS)
    db.execute('DROP TRIGGER IF EXISTS "work_summaries_au"')
    db.execute(
        f'CREATE TRIGGER "work_summaries_au" AFTER UPDATE OF {columns} ON "work_summaries" BEGIN\n'
        f'  INSERT INTO "work_summaries_fts" ("work_summaries_fts", rowid, {columns}) VALUES(\'delete\', old.rowid, {old});\n'
        f'  INSERT INTO "work_summaries_fts" (rowid, {columns}) VALUES (new.rowid, {new});\n'
        "END"
    )


@migrations()
def m015_classification_queues_its_summaries(db: sqlite_utils.Database) -> None:
    """No queue triggers on ``work_relevance`` and ``work_tags``: the store's one writer of them
    (``save_classifications``) updates or queues the summaries of the works it changes itself. Each tag row's
    trigger cost as much as the row (a backfill writes about eight per work), for works queued already."""
    for table in ("work_relevance", "work_tags"):
        for event in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER IF EXISTS {table}_queue_{event}")


@migrations()
def m016_store_queues_new_rows(db: sqlite_utils.Database) -> None:
    """No queue triggers on inserts into ``works``, ``records`` and ``identifiers``: the store inserts those rows in
    one place each (:func:`crawler.store.save_record`) and queues their work's summary itself, once per work and
    batch. Each row's trigger ran a sub-program (a frame, a cursor, a look-up of the queue) for a work the batch had
    queued already: about five per new record. Their update and delete triggers stay."""
    for table in ("works", "records", "identifiers"):
        db.execute(f"DROP TRIGGER IF EXISTS {table}_queue_insert")


#: FTS5's ``automerge`` for the search index (SQLite's default 4; 16 is the most it takes): how many segments of one size
#: wait before they are merged into one larger segment.
FTS_AUTOMERGE = 16


@migrations()
def m017_search_index_merges_fewer_segments(db: sqlite_utils.Database) -> None:
    """The search index (``work_summaries_fts``) merges its segments 16 at a time instead of 4 (FTS5's ``automerge``).
    Each batch's summaries reach the index as one new segment; with 4, every work's entries were rewritten by a merge
    about every fourth batch again, a third of the index's cost in a backfill. Matches and bm25 ranking do not depend on
    how the index is cut into segments; a search reads a few more segments (at most 15 of each size)."""
    db.execute(f"INSERT INTO work_summaries_fts (work_summaries_fts, rank) VALUES ('automerge', {FTS_AUTOMERGE})")


@migrations()
def m018_match_keys_hashed(db: sqlite_utils.Database) -> None:
    """``match_keys.key`` holds a 64-bit integer, the hash of the blocking key (:func:`crawler.store.key_hash`), instead
    of its text (~20 bytes): the table and its index take 60 % of the pages (a 10k backfill's 118 + 121 → 69 + 74), and
    a batch's keys, which land all over the index, dirty fewer pages for its commit to write. The stored keys are
    hashed as they are (the same rows, each key replaced by its hash)."""
    db.conn.create_function("litmon_key_hash", 1, key_hash, deterministic=True)
    for statement in (
        """CREATE TABLE match_keys_new (
            record_id INTEGER NOT NULL REFERENCES records(id),
            key INTEGER NOT NULL,
            year INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (key, year, record_id)
        ) WITHOUT ROWID""",
        """INSERT OR IGNORE INTO match_keys_new (record_id, key, year)
            SELECT record_id, litmon_key_hash(key), year FROM match_keys ORDER BY 2, 3, 1""",
        "DROP TABLE match_keys",
        "ALTER TABLE match_keys_new RENAME TO match_keys",
        "CREATE INDEX match_keys_record ON match_keys(record_id)",
    ):
        db.execute(statement)


#: SQLite's page cache per connection, in KiB (allocated as pages are read, up to this): SQLite's default of 2 MiB
#: is smaller than one backfill batch's pages once the blocking keys and records of a corpus outgrow it, and each
#: page read again is a system call and a copy (a dirty page evicted mid-transaction is written twice)
CACHE_KIB = 64 * 1024

#: The page size of a new database file, in bytes (SQLite's default 4,096; a file keeps the size it was created with):
#: a record's row (~5 KB with its ``data``) fits in one page instead of a page and an overflow page, and a backfill's
#: commits write a quarter as many pages (each written twice, to the WAL and at its checkpoint, by a system call each)
PAGE_SIZE = 16384


def connect(path: str | Path | None, *, create: bool = True, busy_timeout: float = 30.0) -> sqlite_utils.Database:
    """Open the file (None: an in-memory database) without migrating: WAL journal, foreign keys on, and a
    busy timeout: a write waits up to ``busy_timeout`` seconds for another program's write lock."""
    Database = _database_type()
    # (no sqlite_utils plugins: litmon's SQL uses none, and looking for them reads every installed distribution's entry
    # points, ~35 M instructions per connection)
    if path is None:
        db = Database(memory=True, execute_plugins=False)
        db.conn.execute("PRAGMA foreign_keys = ON")
        return db
    path = Path(path)
    if path.parent and not path.parent.exists():
        if not create:
            raise FileNotFoundError(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    if not create and not path.exists():
        raise FileNotFoundError(path)
    db = Database(path, execute_plugins=False)
    db.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    db.conn.execute("PRAGMA foreign_keys = ON")
    memory = str(path) == ":memory:"
    if not memory:
        # before the cache's size: SQLite (3.40) turns a size in KiB into a number of pages at the page size of the
        # moment, and keeps that number when a new file's page size changes (64 MiB of 4 KiB pages would become
        # 16,000 pages of 16 KiB, 256 MiB); a no-op on a file that has pages already (its size was read at opening)
        db.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    db.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    # the temporary database holds only the store's staging rows, emptied at every batch: SQLite built with
    # SECURE_DELETE (Debian's) zeroes each page freed there, for no reader; the file's own pages keep the setting
    db.conn.execute("PRAGMA temp.secure_delete = OFF")
    if not memory:
        db.enable_wal()
    return db


@functools.cache
def _database_type() -> type[sqlite_utils.Database]:
    """sqlite_utils' ``Database``, whose scripts run inside a transaction (every migration's) are split into their
    statements by :func:`split_statements`. sqlite_utils splits them by joining the script again at each of its
    characters, which is quadratic in a statement's length: ~0.19 G instructions of a new file's 0.36 G opening."""
    import sqlite_utils

    class Database(sqlite_utils.Database):
        def _executescript(self, sql: str) -> sqlite3.Cursor:
            if not self.conn.in_transaction:
                return super()._executescript(sql)  # (sqlite3's own executescript: it commits first)
            cursor = self.conn.cursor()
            for statement in split_statements(sql):
                cursor.execute(statement)
            return cursor

    return Database


def split_statements(sql: str) -> Iterator[str]:
    """The statements of a script, stripped, as sqlite_utils gives them (``_iter_complete_sql_statements``): a
    statement ends at the first ``;`` that makes it complete (``sqlite3.complete_statement``: not one within a
    string, a comment or a trigger's body), which only a ``;`` can; the rest, if any, is the last."""
    start = 0
    end = sql.find(";")
    while end != -1:
        statement = sql[start : end + 1].strip()
        if statement and sqlite3.complete_statement(statement):
            yield statement
            start = end + 1
        end = sql.find(";", end + 1)
    rest = sql[start:].strip()
    if rest:
        yield rest


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the pending migrations, in order; return the names of those applied now."""
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending


def memory_db() -> sqlite_utils.Database:
    db = connect(None)
    migrate(db)
    return db


def peek_source_state(path: str | Path, source: str) -> dict[str, Any] | None:
    """A source's saved state as :func:`crawler.store.load_source_state` gives it, read before the file is opened
    for writing and migrated (a fetch worker forked first: :class:`crawler.pipeline.FirstSource`), through a
    read-only connection that waits for no lock. The state of a source never crawled when the file does not exist (a
    first run: the file is made when opened). None when it cannot tell: the file cannot be read, another program
    holds a lock, or a migration is pending (its tables may not have their current shape: they are not read) — the
    caller then reads the state once the file is opened, as without this."""
    path = Path(path)
    if not path.exists():
        return {"watermark": None, "state": {}, "consecutive_failures": 0}
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0)
    except (sqlite3.Error, OSError, ValueError):
        return None
    try:
        # the migrations applied, as sqlite_utils records them (read here without importing it: the fork comes first)
        applied = {
            name for (name,) in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [migrations.name])
        }
        if not applied.issuperset(migrations.names()):
            return None
        return load_source_state(conn, source)
    except (sqlite3.Error, ValueError):  # (ValueError: a state that is not JSON; opening the file reports it)
        return None
    finally:
        conn.close()
