"""The store: schema, idempotent saves, identity by shared identifiers, trial snapshots."""

from __future__ import annotations

import pytest
import sqlite_utils

from crawler import clock, store
from crawler.records import Record
from tests.conftest import rows


def make_record(source, source_id, title="Ketamine for depression", **ids):
    record = Record(source=source, source_id=source_id, record_type="article", title=title)
    for scheme, value in ids.items():
        record.add_id(scheme, value)
    return record


def live_works(db):
    return rows(db, "SELECT * FROM works WHERE merged_into IS NULL ORDER BY id")


def test_schema_is_migrated_once_and_uses_wal(tmp_path):
    path = tmp_path / "x.db"
    db = store.open_db(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    db = store.open_db(path)  # reopening applies nothing twice
    applied = rows(db, "SELECT name FROM _sqlite_migrations")
    assert [r["name"] for r in applied] == [
        "m001_initial",
        "m002_dedup",
        "m003_classify",
        "m004_digest_recipients",
        "m005_structured_authors",
        "m006_sqlite_timestamps",
        "m007_source_runs_kept",
        "m008_source_runs_skipped",
        "m009_bounded_blocking_keys",
        "m010_work_summaries",
        "m011_page_item_ids",
        "m012_record_data_without_abstract",
        "m013_match_keys_year",
        "m014_fts_update_trigger_on_indexed_columns",
        "m015_classification_queues_its_summaries",
        "m016_store_queues_new_rows",
        "m017_search_index_merges_fewer_segments",
        "m018_match_keys_hashed",
    ]
    assert {
        "works",
        "records",
        "identifiers",
        "record_links",
        "trial_snapshots",
        "crawl_runs",
        "source_runs",
        "source_queries",
        "source_states",
        "digests",
        "digest_items",
        "digest_deliveries",
    } <= set(db.table_names())


def test_the_temporary_staging_pages_are_not_zeroed_but_the_files_pages_keep_sqlites_setting(tmp_path):
    """secure_delete off for the temporary database only (the store's staging rows, emptied every batch): the
    database file keeps the setting SQLite was built with (Debian's zeroes freed pages), also after staging rows."""
    import sqlite3

    built_with = sqlite3.connect(":memory:").execute("PRAGMA main.secure_delete").fetchone()[0]
    db = store.open_db(tmp_path / "x.db")
    store.save_records(db, [make_record("pubmed", "1", pmid="1")])  # stages rows in temporary tables
    assert db.execute("SELECT COUNT(*) FROM temp.sqlite_master WHERE type = 'table'").fetchone()[0] > 0
    assert db.execute("PRAGMA temp.secure_delete").fetchone()[0] == 0
    assert db.execute("PRAGMA main.secure_delete").fetchone()[0] == built_with
    db.close()


def test_a_new_file_has_16_kib_pages_and_an_existing_file_keeps_its_own(tmp_path):
    """New files are made with SQLite pages of PAGE_SIZE (a record's row fits in one); a file made before, with 4 KiB
    pages, keeps them (the size of a written file cannot change in WAL mode) and is read and written as before."""
    import sqlite3

    assert store.schema.PAGE_SIZE == 16384
    db = store.open_db(tmp_path / "new.db")
    store.save_records(db, [make_record("pubmed", "1", pmid="1")])
    assert db.execute("PRAGMA page_size").fetchone()[0] == 16384
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    db = store.open_db(tmp_path / "new.db")
    assert db.execute("PRAGMA page_size").fetchone()[0] == 16384
    db.close()

    old = sqlite3.connect(tmp_path / "old.db")  # a file of an earlier litmon: SQLite's default page size
    old.execute("PRAGMA page_size = 4096")
    old.execute("CREATE TABLE before_litmon (x)")
    old.commit()
    old.close()
    db = store.open_db(tmp_path / "old.db")
    store.save_records(db, [make_record("pubmed", "1", pmid="1"), make_record("pubmed", "2", pmid="2")])
    assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert rows(db, "SELECT source_id FROM records ORDER BY id") == [{"source_id": "1"}, {"source_id": "2"}]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


#: Run in a fresh interpreter: opens a database file with a page cache of 2 MiB, writes ~24 MB to it (or reads
#: them back from an existing file) and prints the bytes SQLite's own allocator holds then (its page cache included)
CACHE_BOUND_SCRIPT = """
import ctypes, sqlite3, sys
from crawler.store import schema
schema.CACHE_KIB = 2048
db = schema.connect(sys.argv[1])
libs = {line.split()[-1] for line in open("/proc/self/maps") if "libsqlite3" in line}
if len(libs) != 1:
    print("unknown")
    raise SystemExit
sqlite = ctypes.CDLL(libs.pop())
sqlite.sqlite3_memory_used.restype = ctypes.c_int64
if sys.argv[2] == "write":
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    for batch in range(16):
        with db.conn:
            db.conn.executemany("INSERT INTO t (body) VALUES (?)", ((f"{batch:02} {i:03} " * 400,) for i in range(500)))
else:
    assert sum(len(body) for (body,) in db.execute("SELECT body FROM t")) > 20_000_000
print(db.execute("PRAGMA page_size").fetchone()[0], sqlite.sqlite3_memory_used())
"""


def test_the_page_cache_stays_within_its_size_in_kib_in_a_new_file_of_16_kib_pages(tmp_path):
    """The cache's size is given in KiB (CACHE_KIB). SQLite turns it into a number of pages at the page size of the
    moment and keeps that number when a new file's page size is set later: set before the page size, a cache of
    64 MiB held 16,000 pages of 16 KiB (256 MiB: a 100k backfill's writing process at 374 MB of memory). Here with a
    cache of 2 MiB: after writing 24 MB, SQLite holds less than 4 MiB in all (it held 8 MiB of pages with the pragmas
    in the other order); a file reopened (its page size read at opening) is bounded too."""
    import subprocess
    import sys

    for step in ("write", "read"):
        run = subprocess.run(
            [sys.executable, "-c", CACHE_BOUND_SCRIPT, str(tmp_path / "big.db"), step],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        if run.stdout.strip() == "unknown":
            pytest.skip("SQLite is not a shared library of its own here: its memory use cannot be read")
        page_size, used = map(int, run.stdout.split())
        assert page_size == 16384
        assert used < 4 * 1024 * 1024, f"{step}: SQLite holds {used} bytes with a cache of 2 MiB"


def test_saving_the_same_records_twice_changes_nothing(db):
    batch = [make_record("pubmed", "1", pmid="1", doi="10.1000/A"), make_record("pubmed", "2", pmid="2")]
    assert store.save_records(db, batch) == {"new": 2, "updated": 0, "unchanged": 0}
    before = rows(db, "SELECT id, work_id, content_hash, changed_at FROM records ORDER BY id")
    assert store.save_records(db, batch) == {"new": 0, "updated": 0, "unchanged": 2}
    assert rows(db, "SELECT id, work_id, content_hash, changed_at FROM records ORDER BY id") == before
    assert len(live_works(db)) == 2
    assert rows(db, "SELECT COUNT(*) AS n FROM identifiers") == [{"n": 3}]


def test_changed_record_is_updated_in_place(db):
    store.save_records(db, [make_record("pubmed", "1", title="Old title", pmid="1")])
    counts = store.save_records(db, [make_record("pubmed", "1", title="New title", pmid="1")])
    assert counts == {"new": 0, "updated": 1, "unchanged": 0}
    assert rows(db, "SELECT title FROM records") == [{"title": "New title"}]
    assert [w["title"] for w in live_works(db)] == ["New title"]


def test_records_sharing_a_doi_in_any_form_are_one_work(db):
    store.save_records(db, [make_record("pubmed", "38011560", pmid="38011560", doi="10.1073/PNAS.2305772120")])
    store.save_records(db, [make_record("crossref", "10.1073/pnas.2305772120", doi="https://doi.org/10.1073/pnas.2305772120")])
    store.save_records(db, [make_record("europepmc", "MED:38011560", doi="doi:10.1073%2Fpnas.2305772120")])
    works = live_works(db)
    assert len(works) == 1
    assert rows(db, "SELECT DISTINCT work_id FROM records") == [{"work_id": works[0]["id"]}]


def test_transitive_identity_merges_works_and_repoints_history(db):
    # A (doi X) and C (pmid 7) arrive first as separate works; B shares X with A and 7 with C.
    store.save_records(db, [make_record("crossref", "A", title="Crossref title", doi="10.5555/x")])
    store.save_records(db, [make_record("feed:jad", "C", title="Feed title", pmid="7")])
    first_ids = [w["id"] for w in live_works(db)]
    digest_id = store.save_digest(
        db,
        period_start="2026-01-01 00:00:00",
        period_end="2026-01-08 00:00:00",
        subject="s",
        text_body="t",
        html_body="h",
        items=[(first_ids[1], "article")],
    )
    store.save_records(db, [make_record("pubmed", "7", title="PubMed title", pmid="7", doi="10.5555/X")])

    works = live_works(db)
    assert len(works) == 1
    survivor = works[0]
    assert survivor["id"] == min(first_ids)
    assert survivor["title"] == "PubMed title"  # best source wins
    merged = rows(db, "SELECT id, merged_into FROM works WHERE merged_into IS NOT NULL")
    assert merged == [{"id": max(first_ids), "merged_into": survivor["id"]}]
    assert rows(db, "SELECT DISTINCT work_id FROM records") == [{"work_id": survivor["id"]}]
    assert rows(db, "SELECT work_id FROM digest_items WHERE digest_id = ?", [digest_id]) == [{"work_id": survivor["id"]}]


def test_links_to_other_works_do_not_merge(db):
    article = make_record("pubmed", "1", pmid="1")
    article.add_link("registered_as", "nct", "NCT03113968")
    trial = Record(source="clinicaltrials", source_id="NCT03113968", record_type="trial_registration", title="ELEKT-D")
    trial.add_id("nct", "NCT03113968")
    store.save_records(db, [article, trial])
    assert len(live_works(db)) == 2
    assert rows(db, "SELECT relation, scheme, value FROM record_links") == [
        {"relation": "registered_as", "scheme": "nct", "value": "NCT03113968"}
    ]


def test_trial_snapshots_only_when_a_tracked_field_changes(db):
    def trial(status, enrollment, updated):
        record = Record(source="clinicaltrials", source_id="NCT01", record_type="trial_registration", title="T")
        record.add_id("nct", "NCT00000001")
        record.trial = {
            "overall_status": status,
            "enrollment": enrollment,
            "phases": ["PHASE2", "PHASE3"],
            "has_results": False,
            "last_update_posted_on": updated,
        }
        return record

    store.save_records(db, [trial("RECRUITING", 60, "2026-01-01")])
    store.save_records(db, [trial("RECRUITING", 60, "2026-01-01")])
    store.save_records(db, [trial("COMPLETED", 120, "2026-03-01")])
    snapshots = rows(db, "SELECT overall_status, enrollment, phases, has_results FROM trial_snapshots ORDER BY id")
    assert snapshots == [
        {"overall_status": "RECRUITING", "enrollment": 60, "phases": "PHASE2, PHASE3", "has_results": 0},
        {"overall_status": "COMPLETED", "enrollment": 120, "phases": "PHASE2, PHASE3", "has_results": 0},
    ]


def test_a_failing_batch_rolls_back_entirely(db):
    good = make_record("pubmed", "1", pmid="1")
    bad = make_record("pubmed", "2", pmid="2")
    bad.title = None  # violates NOT NULL
    try:
        store.save_records(db, [good, bad])
    except Exception:
        pass
    else:  # pragma: no cover
        raise AssertionError("a record without title must be rejected")
    assert rows(db, "SELECT COUNT(*) AS n FROM records") == [{"n": 0}]
    assert rows(db, "SELECT COUNT(*) AS n FROM works") == [{"n": 0}]


def test_timestamps_are_stored_as_sqlite_datetime_compares_them(db):
    store.save_records(db, [make_record("pubmed", "1", pmid="1")])
    (seen,) = db.execute("SELECT first_seen_at FROM records").fetchone()
    assert seen == "2026-11-23 09:00:00" == clock.stamp()
    assert clock.parse_stamp(seen) == clock.now() == clock.parse_stamp("2026-11-23T09:00:00Z")
    # SQLite's own functions produce the same form, so comparisons with them are right
    since = db.execute("SELECT COUNT(*) FROM records WHERE first_seen_at >= datetime(?, '-7 days')", [seen]).fetchone()[0]
    later = db.execute("SELECT COUNT(*) FROM records WHERE first_seen_at > datetime(?, '+1 second')", [seen]).fetchone()[0]
    assert (since, later) == (1, 0)


def test_migration_rewrites_iso_timestamps_of_an_older_file(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    store.migrations.apply(old, stop_before="m006_sqlite_timestamps")
    old.execute(
        "INSERT INTO crawl_runs (started_at, finished_at, status, trigger) VALUES (?, ?, 'ok', 'run')",
        ["2026-11-28T22:13:25Z", None],
    )
    old.execute(
        "INSERT INTO digests (created_at, period_start, period_end, subject, item_count, text_body, html_body)"
        " VALUES ('2026-11-28T22:13:25Z', '2026-11-21T22:13:25Z', '2026-11-28T22:13:25Z', 's', 0, 't', 'h')"
    )
    old.execute(
        "INSERT INTO source_states (source, watermark, updated_at) VALUES ('pubmed', '2026-11-28', '2026-11-28T23:59:59+01:00')"
    )
    old.conn.commit()
    old.close()
    db = store.open_db(path)
    assert rows(db, "SELECT started_at, finished_at FROM crawl_runs") == [
        {"started_at": "2026-11-28 22:13:25", "finished_at": None}
    ]
    assert rows(db, "SELECT created_at, period_start, period_end FROM digests") == [
        {"created_at": "2026-11-28 22:13:25", "period_start": "2026-11-21 22:13:25", "period_end": "2026-11-28 22:13:25"}
    ]
    # an offset is converted to UTC; a date (not a timestamp column) is left alone
    assert rows(db, "SELECT watermark, updated_at FROM source_states") == [
        {"watermark": "2026-11-28", "updated_at": "2026-11-28 22:59:59"}
    ]
    assert ("records", "first_seen_at") in store.timestamp_columns(db)


def test_a_batch_saved_at_once_is_stored_as_if_saved_record_by_record(tmp_path):
    """Saving reads a batch's look-ups once (store.SaveBatch) and queues some writes: records joining by an
    identifier within the batch, a record given twice, an update and unchanged records end up exactly as
    when each record is saved in a batch of its own."""
    from tests.helpers.records import article

    def batch():
        first = article("41000001", "Ketamine for depression", "2026-11-01")
        same_work = article("41000009", "Ketamine for depression (corrected)", "2026-11-01", doi="10.1176/appi.ajp.2026.1")
        same_work.identifiers.append(("pmid", "41000001"))  # shares first's PMID: one work
        again = article("41000001", "Ketamine for depression", "2026-11-01")  # given twice
        changed = article("41000002", "Esketamine", "2026-11-02")
        later = article("41000003", "Racemic ketamine", "2026-11-03", doi="10.1176/appi.ajp.2026.1")  # joins by DOI
        return [first, same_work, again, changed, later, article("41000004", "Arketamine", "2026-11-04")]

    def saved(db):
        return (
            rows(db, "SELECT source_id, work_id, title, content_hash, last_seen_at FROM records ORDER BY source_id"),
            rows(db, "SELECT record_id, work_id, scheme, value FROM identifiers ORDER BY record_id, scheme, value"),
            rows(db, "SELECT id, merged_into, title FROM works ORDER BY id"),
        )

    at_once, one_by_one = store.open_db(tmp_path / "a.db"), store.open_db(tmp_path / "b.db")
    store.save_records(at_once, [article("41000002", "Esketamine (old title)", "2026-11-02")], "2026-11-20 06:00:00")
    store.save_records(one_by_one, [article("41000002", "Esketamine (old title)", "2026-11-02")], "2026-11-20 06:00:00")
    assert store.save_records(at_once, batch(), "2026-11-21 06:00:00") == {"new": 4, "updated": 1, "unchanged": 1}
    for record in batch():
        store.save_records(one_by_one, [record], "2026-11-21 06:00:00")
    assert saved(at_once) == saved(one_by_one)
    records, identifiers, works = saved(at_once)
    assert len({r["work_id"] for r in records if r["source_id"] in ("41000001", "41000009", "41000003")}) == 1
    assert [r["last_seen_at"] for r in records] == ["2026-11-21 06:00:00"] * 5


def _row_by_row(db, table, columns, rows, *, verb="INSERT", tail=""):
    """What store.insert_rows replaced: one run of the statement per row."""
    names = ", ".join(columns)
    db.conn.executemany(f"{verb} INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) {tail}", list(rows))


def test_rows_written_in_one_statement_are_those_written_row_by_row(tmp_path, make_config, monkeypatch):
    """Summaries, relevance rows and tags are written by one INSERT … SELECT each (the summaries computed in it, the
    classification's rows by store.insert_rows): every row (ids included), the summary queue and the search index are
    as when each row was its own statement (the summaries' rows computed in Python, as before), through
    new works, classified batches, a merge, a changed record and a reclassification that replaces tags."""
    from pathlib import Path

    from crawler import ingest
    from crawler.sources.pubmed import parse_efetch
    from crawler.store import classification, summaries
    from tests.helpers import summaries_reference, viewdb

    config = make_config()
    fixtures = Path(__file__).parent / "fixtures" / "pubmed"

    def build(name):
        db = ingest.open_db(tmp_path / f"{name}.db")
        viewdb.build(db)
        first = parse_efetch((fixtures / "efetch_batch1.xml").read_bytes())
        second = parse_efetch((fixtures / "efetch_batch2.xml").read_bytes())
        ingest.save_batch(db, first, config=config)
        ingest.save_batch(db, second, config=config)
        first = first + second
        first[0].title = "Esketamine nasal spray for treatment-resistant depression: a randomised controlled trial"
        first[1].add_id("doi", "10.1000/one-work")
        first[2].add_id("doi", "10.1000/one-work")
        ingest.save_batch(db, first, config=config)
        work = viewdb.work_of(db, first[0].source, first[0].source_id)
        viewdb.classify(db, work, "relevant", [("trd", "topic"), ("rct", "evidence"), ("trd", "topic")])
        tables = {
            t: rows(db, f"SELECT * FROM {t} ORDER BY rowid")
            for t in ("works", "work_relevance", "work_tags", "work_summaries", "work_summary_queue")
        }
        ranked = [
            rows(
                db,
                "SELECT rowid, bm25(work_summaries_fts) AS r FROM work_summaries_fts WHERE work_summaries_fts MATCH ? ORDER BY r, rowid",
                [q],
            )
            for q in ("ketamine", "depression", "esketamine OR trial", "retraction")
        ]
        db.execute("INSERT INTO work_summaries_fts (work_summaries_fts, rank) VALUES ('integrity-check', 1)")
        db.close()
        return tables, ranked

    tables, ranked = build("one_statement")
    assert tables["work_tags"] and tables["work_relevance"] and ranked[0]
    monkeypatch.setattr(summaries, "write_summaries", summaries_reference.write_summaries_row_by_row)
    monkeypatch.setattr(classification, "insert_rows", _row_by_row)
    assert build("row_by_row") == (tables, ranked)


@pytest.mark.parametrize("count", [0, 1, 2, 63, 64, 65, 128, 129, 300])
def test_rows_written_many_to_a_statement_are_those_an_executemany_writes(count):
    """store.common.insert_values (64 rows per statement, the rest one by one) writes what an executemany of the same
    statement writes, in the same order: row ids, ignored duplicates, and upserts of a row an earlier row of the same
    statement wrote (or one written before)."""
    import random
    import sqlite3

    from crawler.store.common import insert_values

    random.seed(count)
    rows = [(random.randrange(40), random.choice(["a", "b", None, "é", "x" * 300]), random.random()) for _ in range(count)]
    statements = [
        ("INSERT INTO t (k, v, f)", ""),
        ("INSERT OR IGNORE INTO u (k, v, f)", ""),
        ("INSERT OR REPLACE INTO u (k, v, f)", ""),
        ("INSERT INTO u (k, v, f)", "ON CONFLICT(k) DO UPDATE SET v = excluded.v || '+' || u.v, f = excluded.f"),
    ]

    def written(write):
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k, v, f)")
        conn.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, k UNIQUE, v, f)")
        found = []
        for head, tail in statements:
            conn.execute("INSERT INTO u (k, v, f) VALUES (3, 'before', 0.5)")
            write(conn, head, tail)
            found.append([list(conn.execute(f"SELECT * FROM {table} ORDER BY id")) for table in ("t", "u")])
            conn.execute("DELETE FROM u")
        return found

    expected = written(lambda conn, head, tail: conn.executemany(f"{head} VALUES (?, ?, ?) {tail}", rows))
    assert written(lambda conn, head, tail: insert_values(conn, head, rows, tail)) == expected
    assert count < 40 or any(len(tables[1]) < count for tables in expected)  # duplicates were met


def test_rows_written_many_to_a_statement_stay_within_the_connections_limit_on_bound_values():
    """insert_values puts fewer rows in a statement when 64 of them would bind more values than the connection allows
    (SQLite before 3.32 allows 999): 100 rows of 20 columns are all written, in order."""
    import sqlite3

    from crawler.store.common import insert_values

    columns = [f"c{i}" for i in range(20)]
    rows = [tuple(r * 100 + i for i in range(20)) for r in range(100)]
    conn = sqlite3.connect(":memory:")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    conn.execute(f"CREATE TABLE w (id INTEGER PRIMARY KEY, {', '.join(columns)})")
    insert_values(conn, f"INSERT INTO w ({', '.join(columns)})", rows)
    assert conn.execute(f"SELECT {', '.join(columns)} FROM w ORDER BY id").fetchall() == rows
    with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):  # what 64 rows a statement would do
        conn.execute(
            f"INSERT INTO w ({', '.join(columns)}) VALUES " + ", ".join(["(" + ", ".join("?" * 20) + ")"] * 64), [0] * 1280
        )


def test_a_one_record_works_lists_are_those_the_subqueries_over_its_records_give(db):
    """A work of one record takes its keywords, MeSH terms and publication types from Python (list_columns: the
    distinct values in the order they first come), or from SQL where a list holds JSON escapes or anything but texts:
    every summary column equals what the subqueries over all of a work's records give, for lists with repeats, empty
    texts, quotes, backslashes, controls, non-ASCII, numbers, nulls, nesting, an object, a text and spaces."""
    from crawler.store import summaries
    from tests.helpers.summaries_reference import summary_rows

    lists = [
        '["b", "a", "", "b", "c", "a"]',
        "[]",
        ' [ "x" , "y" ] ',
        "null",
        '[""]',
        '["", ""]',
        '["été", "naïve", "été", "日本"]',
        '["say \\"hi\\"", "back\\\\slash", "tab\\there", "\\u00e9", "é"]',
        '[1, "1", 2.5, null, true, "x"]',
        '{"a": "b"}',
        '"text"',
        '[["nested"], "x"]',
        '["a; b", "a", "a; b"]',
    ]
    store.save_records(db, [make_record("pubmed", str(i), pmid=str(i)) for i in range(len(lists))])
    for i, text in enumerate(lists):
        values = [text, lists[(i + 1) % len(lists)], lists[(i + 2) % len(lists)]]
        db.execute(
            "UPDATE records SET keywords = ?, mesh_terms = ?, publication_types = ? WHERE source_id = ?", [*values, str(i)]
        )
    db.execute("INSERT OR IGNORE INTO work_summary_queue (work_id) SELECT id FROM works")
    expected = summary_rows(db, summaries._summary_select(None), [10**9])
    assert store.refresh_work_summaries(db) == len(lists)
    found = [list(row) for row in db.execute("SELECT * FROM work_summaries ORDER BY work_id")]
    assert found == sorted(expected)
    assert [row[summaries._SUMMARY_COLUMNS.index("keywords")] for row in found[:3]] == ["b; a; c", None, "x; y"]
    assert summaries.list_columns(*lists[:3]) == (1, "b; a; c", None, '["x","y"]')
    assert summaries.list_columns(lists[6], lists[4], lists[5]) == (1, "été; naïve; 日本", None, '[""]')
    assert summaries.list_columns(lists[7], "[]", "[]")[0] == 0  # JSON escapes: SQL reads them
    assert summaries.list_columns("[]", lists[3], "[]")[0] == 0  # not a list of texts


def test_records_are_read_back_as_json_reads_them(tmp_path):
    """load_work_records reads ``records.data`` with orjson where it reads as json does: an integer beyond 64 bits
    stays an exact int, NaN, infinities and a lone surrogate escape (which orjson refuses) read as json reads them."""
    import json
    import math

    from crawler.store.common import loads

    texts = [
        '{"a": 1, "b": [1.5, -0.0, 5e-324, "\\u00e9\\ud83d\\ude00", null, true], "c": {"d": "x\\ty"}}',
        '{"n": 123456789012345678901234567890, "m": -18446744073709551617, "k": 18446744073709551615}',
        '{"nan": NaN, "inf": Infinity, "ninf": -Infinity, "big": 1e400}',
        '{"s": "\\ud800", "t": "ok"}',
        '{"id": "12345678901234567890123"}',
        '{"low": -9223372036854775809, "least": -9223372036854775808, "most": 9999999999999999999}',
    ]
    for text in texts:
        expected, found = json.loads(text), loads(text.encode())
        assert repr(found) == repr(expected)
        assert [type(v) for v in found.values()] == [type(v) for v in expected.values()]
    assert loads(texts[1].encode())["n"] == 123456789012345678901234567890
    assert math.isnan(loads(texts[2].encode())["nan"])

    db = store.open_db(tmp_path / "x.db")
    record = Record(source="pubmed", source_id="1", record_type="article", title="Ketamine", abstract="An abstract.")
    record.extra["enrollment"] = 10**30
    store.save_records(db, [record])
    (work_id,) = store.load_current_work_ids(db)
    (read,) = store.load_work_records(db, [work_id])[work_id]
    assert read["extra"]["enrollment"] == 10**30 and read["title"] == "Ketamine" and read["abstract"] == "An abstract."
    assert read == {**json.loads(db.execute("SELECT data FROM records").fetchone()[0]), "abstract": "An abstract."}


def test_a_list_of_texts_is_encoded_as_json_value_encodes_it():
    """store.common.dumps_texts (a classification's reasons) writes what json_value writes: texts with and without
    escapes (quotes, backslashes, controls, separators inside a text), non-ASCII, surrogates, values not texts."""
    import random

    from crawler.records import json_value
    from crawler.store.common import dumps_texts

    pieces = ['"', "\\", ",", " ", "a", "é", "\n", "\x00", "\x1f", "\x7f", "\u2028", "日", "😀", '","', '\\"', '", "', "x y"]
    rnd = random.Random(15)
    lists = [
        ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 5))) for _ in range(rnd.randint(0, 4))] for _ in range(20000)
    ]
    lists += [[], [""], ["", ""], ["\ud800"], ["a", "\udfff"], [1, "a"], [None], [["x"]], ("a",), "abc", {"a": "b"}]
    lists += [["concept drug: passing mention set aside (background sentence: 'ketamine...')", "focus: trd"]]
    assert [dumps_texts(values) for values in lists] == [json_value(values) for values in lists]


def test_a_classified_works_summary_takes_its_tags_as_the_rows_just_written_give_them(db, monkeypatch):
    """save_classification_rows hands the summary refresh each classified work's tag columns (made from its row, as
    the work_tags rows just written give them back): equal to what the subqueries over work_tags give, for works
    waiting in the queue and works without a summary yet, with names sorted by code point, names that need JSON
    escapes (left to SQL), evidence and other tags, and works without tags."""
    from crawler.store import classification, summaries
    from tests.helpers.summaries_reference import summary_rows

    store.save_records(db, [make_record("pubmed", str(i), title=f"Ketamine {i}", pmid=str(i)) for i in range(6)])
    work_ids = [row["id"] for row in live_works(db)]
    tags = [
        {"trd": ("topic", "t"), "rct": ("evidence", "r"), "Z": ("topic", "z"), "é": ("evidence", "e"), "日本": ("topic", "j")},
        {'quote"d': ("evidence", "q"), "trd": ("topic", "t")},
        {},
        {"back\\slash": ("topic", "b")},
        {"meta-analysis": ("evidence", "m"), "😀": ("evidence", "s"), "a": ("topic", "a")},
        {"trd": ("topic", "t")},
    ]
    db.execute("INSERT OR IGNORE INTO work_summary_queue (work_id) SELECT id FROM works WHERE id % 2 = 0")
    db.execute("DELETE FROM work_summaries WHERE work_id = ?", [work_ids[1]])  # no summary yet: queued in full
    given = []
    write = summaries.write_summaries

    def spy(db, batch, tags=None):
        given.extend((work_id, tags(work_id)) for work_id in work_ids if tags is not None)
        write(db, batch, tags)

    monkeypatch.setattr(summaries, "write_summaries", spy)
    rows_ = [(w, "relevant", 3, "[]", 2, "[]", "v1", t) for w, t in zip(work_ids, tags)]
    assert classification.save_classification_rows(db, rows_) == 6
    assert dict(given)[work_ids[0]] == ('["Z","rct","trd","é","日本"]', '["rct","é"]')
    assert dict(given)[work_ids[1]] is None and dict(given)[work_ids[3]] is None  # escapes: SQL's
    assert dict(given)[work_ids[2]] == ("[]", "[]")
    found = [list(row) for row in db.execute("SELECT * FROM work_summaries ORDER BY work_id")]
    db.execute("INSERT OR IGNORE INTO work_summary_queue (work_id) SELECT id FROM works")
    assert found == sorted(summary_rows(db, summaries._summary_select(None), [10**9]))
    assert len(found) == 6


def test_whether_a_summary_shows_the_same_classification_is_read_as_from_the_sorted_names():
    """save_classification_rows rewrites a summary's classification columns when label, rank score, tag names or
    evidence types differ from the stored ones: told without sorting, as the sorted lists tell it, on random pairs of
    stored and new rows (tags added, dropped, moved in or out of the evidence category, reordered) and no stored row."""
    import random

    from crawler.store.classification import _shows_same

    def shown(row):
        tags = row[6]
        return row[0], row[3], sorted(tags), sorted(tag for tag, (category, _) in tags.items() if category == "evidence")

    rnd = random.Random(7)
    names = ["rct", "trd", "mdd", "oral", "é", "a", "b"]

    def row():
        tags = {
            name: (rnd.choice(["evidence", "drug", "topic"]), rnd.choice("xy")) for name in rnd.sample(names, rnd.randint(0, 4))
        }
        return (rnd.choice(["relevant", "uncertain"]), 3, "[]", rnd.choice([1, 2]), "[]", "v", tags)

    pairs = [(row(), row()) for _ in range(20_000)]
    pairs += [(a, (*a[:6], dict(reversed(a[6].items())))) for a, _ in pairs[:2_000]]  # the same tags in another order
    pairs += [(None, b) for _, b in pairs[:100]]
    same = [_shows_same(a, b) for a, b in pairs]
    assert same == [a is not None and shown(a) == shown(b) for a, b in pairs]
    assert 2_000 < sum(same) < len(pairs) - 2_000
