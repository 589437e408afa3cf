"""The views of the stable interface, the summaries behind them, and readers beside a writing crawl."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from crawler import ingest, store
from crawler.records import Record, normalise_trial_status
from tests.conftest import rows
from tests.helpers import viewdb


@pytest.fixture
def built(db):
    return db, viewdb.build(db)


def test_works_view_has_best_fields_identifiers_tags_relevance_and_flags(built):
    db, ids = built
    view = {r["work_id"]: r for r in rows(db, "SELECT * FROM works_view")}
    assert set(view) == {r["id"] for r in rows(db, "SELECT id FROM works WHERE merged_into IS NULL")}
    rct = view[ids["rct"]]
    assert (
        rct["authors"] == "Osei H, Chen W, ESCAPE Investigators" and rct["first_author"] == "Osei H" and rct["author_count"] == 3
    )
    assert (rct["journal_abbreviation"], rct["volume"], rct["issue"], rct["pages"], rct["year"]) == (
        "N Engl J Med",
        "389",
        "14",
        "1298-1309",
        2023,
    )
    assert (rct["doi"], rct["pmid"], rct["relevance"], rct["rank_score"]) == ("10.1056/nejmoa2304145", "39000001", "relevant", 50)
    assert json.loads(rct["tags"]) == ["intranasal_esketamine", "rct"] and json.loads(rct["evidence_types"]) == ["rct"]
    assert rct["keywords"] == "esketamine; treatment-resistant depression" and rct["mesh_terms"].startswith("Ketamine; ")
    assert view[ids["retracted"]]["is_retracted"] == 1 and rct["is_retracted"] == 0
    assert view[ids["preprint"]]["is_preprint"] == 1
    assert view[ids["trial"]]["trial_status"] == "recruiting" and view[ids["trial"]]["has_results"] == 1  # the RCT reports it
    assert rows(db, "SELECT COUNT(*) AS n FROM work_summary_queue") == [{"n": 0}]


def test_summaries_follow_later_changes_of_tags_links_and_merges(built):
    db, ids = built
    viewdb.classify(db, ids["rct"], "uncertain", [("commentary", "evidence")], rank=1)
    assert rows(db, "SELECT relevance, tags FROM work_summaries WHERE work_id = ?", [ids["rct"]]) == [
        {"relevance": "uncertain", "tags": '["commentary"]'}
    ]
    # a feed item without identifiers, then its DOI: the two works merge and the summary row of the loser goes
    feed = Record(source="feed:nejm", source_id="x1", record_type="article", title="A different editorial on ketamine")
    ingest.save_batch(db, [feed])
    loser = viewdb.work_of(db, "feed:nejm", "x1")
    assert rows(db, "SELECT COUNT(*) AS n FROM work_summaries WHERE work_id = ?", [loser]) == [{"n": 1}]
    feed.add_id("doi", "10.1056/NEJMoa2304145")
    ingest.save_batch(db, [feed])
    assert rows(db, "SELECT COUNT(*) AS n FROM work_summaries WHERE work_id = ?", [loser]) == [{"n": 0}]
    assert rows(db, "SELECT sources, record_count FROM work_summaries WHERE work_id = ?", [ids["rct"]]) == [
        {"sources": "feed:nejm,pubmed", "record_count": 2}
    ]


def _consistent(db) -> dict[int, dict]:
    """The summaries, by work id, after checking that nothing waits in the queue and that recomputing all changes none."""
    assert rows(db, "SELECT COUNT(*) AS n FROM work_summary_queue") == [{"n": 0}]
    before = rows(db, "SELECT * FROM work_summaries ORDER BY work_id")
    store.rebuild_work_summaries(db)
    assert rows(db, "SELECT * FROM work_summaries ORDER BY work_id") == before
    return {r["work_id"]: r for r in before}


def test_every_classification_leaves_each_summary_as_a_full_recomputation_makes_it(built, make_config):
    """No trigger queues a work whose relevance or tags change (m015): save_classifications updates its summary, or
    queues it when it has none or other changes wait. After each way, every summary equals what recomputing all gives."""
    db, ids = built

    viewdb.classify(db, ids["review"], "uncertain", [("commentary", "evidence"), ("ptsd", "indication")], rank=2)
    assert _consistent(db)[ids["review"]]["tags"] == '["commentary","ptsd"]'  # a summary brought up to date in place
    viewdb.classify(db, ids["review"], "uncertain", [("commentary", "evidence"), ("ptsd", "indication")], rank=2)
    viewdb.classify(db, ids["review"], "relevant", [], rank=3)  # tags removed
    assert _consistent(db)[ids["review"]]["evidence_types"] == "[]"
    db.execute("DELETE FROM work_summaries WHERE work_id = ?", [ids["notice"]])  # a work without a summary yet
    viewdb.classify(db, ids["notice"], "not_relevant", [("notice", "evidence")], rank=-5)
    assert _consistent(db)[ids["notice"]]["relevance"] == "not_relevant"
    changed = viewdb.article("39000002", "Ketamine for depression: a meta-analysis of suicidal ideation outcomes, updated")
    ingest.save_batch(db, [changed], config=make_config())  # a work whose summary waits for its new title
    assert _consistent(db)[ids["review"]]["title"].endswith("updated")
    feed = Record(source="feed:nejm", source_id="x1", record_type="article", title="Ketamine editorial")
    ingest.save_batch(db, [feed], config=make_config())
    loser = viewdb.work_of(db, "feed:nejm", "x1")
    feed.add_id("doi", "10.1056/NEJMoa2304145")
    ingest.save_batch(db, [feed], config=make_config())  # merged: the loser's classification and summary go
    assert loser not in _consistent(db)
    assert rows(db, "SELECT COUNT(*) AS n FROM work_relevance WHERE work_id = ?", [loser]) == [{"n": 0}]


def test_every_save_leaves_each_summary_as_a_full_recomputation_makes_it(built, make_config, tmp_path):
    """No insert trigger queues the work of a new work, record or identifier row (m016): the store queues it. After
    each way of saving (new records alone in a batch and one by one, a record joining a work by identifier, an updated
    record with a new identifier, a trial record, a merge), every summary equals what recomputing all gives; a file
    of the schema before m016, with its triggers, saves the same summaries."""
    db, ids = built
    assert not rows(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_queue_insert'"
        " AND tbl_name IN ('works', 'records', 'identifiers')",
    )

    def saves(target, config):
        fresh = [viewdb.article(str(40000000 + i), f"Ketamine infusion study {i}", authors=[f"Okafor C{i}"]) for i in range(3)]
        ingest.save_batch(target, fresh, config=config)  # new works of their own, queued at the batch's flush
        store.save_records(target, [viewdb.article("40000009", "Esketamine and sleep", authors=["Lind M"])])
        joined = Record(source="europepmc", source_id="MED/40000001", record_type="article", title="Ketamine infusion study 1")
        joined.add_id("pmid", "40000001")
        joined.add_id("doi", "10.1000/joined")
        after = viewdb.article("40000010", "Ketamine and anhedonia", authors=["Berg A"])
        ingest.save_batch(target, [joined, after])  # a new record on a stored work, then one of its own (unclassified)
        updated = viewdb.article("40000002", "Ketamine infusion study 2, corrected", authors=["Okafor C2"])
        updated.add_id("doi", "10.1000/updated")
        ingest.save_batch(target, [updated], config=config)  # an updated record with a new identifier
        ingest.save_batch(target, [viewdb.trial("completed", 80)], config=config)
        feed = Record(source="feed:nejm", source_id="x9", record_type="article", title="Ketamine editorial")
        ingest.save_batch(target, [feed], config=config)
        feed.add_id("doi", "10.1000/updated")
        ingest.save_batch(target, [feed], config=config)  # joins, and merges, the updated record's work

    saves(db, make_config())
    summaries = _consistent(db)
    assert summaries[viewdb.work_of(db, "pubmed", "40000001")]["sources"] == "europepmc,pubmed"
    assert summaries[viewdb.work_of(db, "pubmed", "40000002")]["doi"] == "10.1000/updated"
    assert summaries[viewdb.work_of(db, "pubmed", "40000002")]["record_count"] == 2
    assert summaries[viewdb.work_of(db, "pubmed", "40000009")]["title"] == "Esketamine and sleep"
    assert summaries[viewdb.work_of(db, "pubmed", "40000010")]["title"] == "Ketamine and anhedonia"
    # the same saves on a file migrated only to m015 (the insert triggers queue too): the same summaries
    old = store.connect(tmp_path / "m015.db")
    store.migrations.apply(old, stop_before="m016_store_queues_new_rows")
    viewdb.build(old)
    saves(old, make_config())
    assert rows(old, "SELECT * FROM work_summaries ORDER BY work_id") == list(summaries.values())


def test_trials_view_gives_the_latest_normalised_status_and_history_its_changes(built):
    db, ids = built
    (trial,) = rows(db, "SELECT * FROM trials_view")
    assert (trial["work_id"], trial["registry"], trial["trial_id"]) == (ids["trial"], "clinicaltrials", "NCT05000001")
    assert (trial["status"], trial["registry_status"], trial["enrollment"], trial["phases"]) == (
        "recruiting",
        "RECRUITING",
        120,
        "PHASE3",
    )
    assert trial["status_since"] == trial["last_changed_at"] == "2026-11-23 09:00:00"
    assert rows(db, "SELECT captured_at, status, previous_status FROM trial_status_history ORDER BY captured_at") == [
        {"captured_at": "2026-10-24 09:00:00", "status": "not_yet_recruiting", "previous_status": None},
        {"captured_at": "2026-11-23 09:00:00", "status": "recruiting", "previous_status": "not_yet_recruiting"},
    ]


@pytest.mark.parametrize(
    "registry_status, status",
    [
        ("RECRUITING", "recruiting"),
        ("Recruiting", "recruiting"),
        ("ACTIVE_NOT_RECRUITING", "active_not_recruiting"),
        ("No longer recruiting", "active_not_recruiting"),
        ("Ongoing, recruiting", "recruiting"),
        ("Stopped", "terminated"),
        ("Ended", "completed"),
        ("Temporarily halted", "suspended"),
        ("Authorised, recruiting", "recruiting"),
        ("Expired", "withdrawn"),
        ("AVAILABLE", "other"),
        ("", None),
    ],
)
def test_trial_statuses_of_every_registry_map_to_one_vocabulary(registry_status, status):
    assert normalise_trial_status(registry_status) == status


def test_preprint_pairs_and_notices_name_both_works(built):
    db, ids = built
    (pair,) = rows(db, "SELECT * FROM preprint_pairs")
    assert (pair["preprint_work_id"], pair["published_work_id"]) == (ids["preprint"], ids["rct"])
    assert (pair["preprint_server"], pair["published_doi"], pair["days_to_publication"]) == (
        "medRxiv",
        "10.1056/nejmoa2304145",
        276,
    )
    (notice,) = rows(db, "SELECT * FROM notices_view")
    assert (notice["notice_type"], notice["notice_work_id"], notice["work_id"]) == ("retraction", ids["notice"], ids["retracted"])
    assert notice["title"] == "Oral ketamine maintenance in bipolar depression" and notice["relevance"] == "uncertain"


def test_a_work_a_source_marks_retracted_without_a_notice_is_listed_too(built):
    db, _ = built
    marked = Record(
        source="openalex",
        source_id="W1",
        record_type="article",
        title="Ketamine and sleep",
        publication_types=["Retracted Publication"],
    )
    ingest.save_batch(db, [marked])
    listed = rows(db, "SELECT notice_type, notice_work_id, evidence FROM notices_view WHERE title = 'Ketamine and sleep'")
    assert listed == [{"notice_type": "retraction", "notice_work_id": None, "evidence": "marked retracted by openalex"}]


def test_digest_history_says_who_got_what(built):
    db, ids = built
    assert rows(db, "SELECT recipient, delivery_status, section, work_id, doi FROM digest_history ORDER BY position") == [
        {
            "recipient": "ana@example.org",
            "delivery_status": "sent",
            "section": "highlights",
            "work_id": ids["review"],
            "doi": None,
        },
        {
            "recipient": "ana@example.org",
            "delivery_status": "sent",
            "section": "clinical",
            "work_id": ids["rct"],
            "doi": "10.1056/nejmoa2304145",
        },
    ]


def test_search_log_lists_each_query_with_window_hits_and_counts(built):
    db, _ = built
    assert rows(db, "SELECT source, query, window_from, window_to, hits, new, updated, status, sent_at FROM search_log") == [
        {
            "source": "pubmed",
            "query": "ketamine[tiab] AND depress*[tiab]",
            "window_from": "2026-11-16",
            "window_to": "2026-11-23",
            "hits": 5,
            "new": 4,
            "updated": 1,
            "status": "ok",
            "sent_at": "2026-11-23 09:00:00",
        }
    ]


def test_views_and_summaries_of_an_upgraded_file_are_filled_by_the_backfill(tmp_path):
    path = tmp_path / "old.db"
    old = store.connect(path)
    store.migrations.apply(old, stop_before="m010_work_summaries")
    store.save_records(old, [viewdb.article("1", "Ketamine for depression", authors=["Osei Hannah"])])
    old.close()
    db = ingest.open_db(path)
    assert rows(db, "SELECT title, authors FROM works_view") == [{"title": "Ketamine for depression", "authors": "Osei H"}]
    assert rows(db, "SELECT rowid FROM work_summaries_fts WHERE work_summaries_fts MATCH 'osei'") == [{"rowid": 1}]


def test_a_reader_holding_a_read_transaction_never_blocks_a_crawl_commit(tmp_path):
    path = tmp_path / "litmon.db"
    writer = ingest.open_db(path)
    ingest.save_batch(writer, [viewdb.article("1", "Ketamine for depression")])
    reader = sqlite3.connect(path, timeout=0.1)  # a reader that would fail fast if it had to wait
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM work_summaries").fetchone() == (1,)
    done = threading.Event()

    def crawl():  # the crawler's own connection, in its own thread
        crawler = ingest.open_db(path)
        ingest.save_batch(crawler, [viewdb.article("2", "Esketamine for depression")])
        crawler.close()
        done.set()

    thread = threading.Thread(target=crawl)
    thread.start()
    thread.join(timeout=10)
    assert done.is_set(), "the crawl's commit waited for the reader"
    # the reader keeps its snapshot until its transaction ends, then sees the new work
    assert reader.execute("SELECT COUNT(*) FROM work_summaries").fetchone() == (1,)
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM work_summaries").fetchone() == (2,)
    # and a write transaction in progress does not block a reader either
    with writer.atomic():
        writer.execute("UPDATE works SET title = 'x' WHERE id = 1")
        assert reader.execute("SELECT title FROM works WHERE id = 1").fetchone() == ("Ketamine for depression",)
    reader.close()
    writer.close()


def test_a_batch_classified_as_it_is_saved_has_its_relevance_and_tags_in_the_summary(db, make_config):
    record = viewdb.article(
        "9",
        "Esketamine nasal spray for treatment-resistant depression: a randomised controlled trial",
        abstract="Adults with treatment-resistant depression were randomised to esketamine nasal spray or placebo.",
        publication_types=["Randomized Controlled Trial"],
    )
    ingest.save_batch(db, [record], config=make_config())
    (summary,) = rows(db, "SELECT relevance, tags FROM work_summaries")
    assert summary["relevance"] == "relevant" and "rct" in json.loads(summary["tags"])
    assert rows(db, "SELECT COUNT(*) AS n FROM work_summary_queue") == [{"n": 0}]


def _odd_records() -> list[Record]:
    """Records whose lists repeat and hold empty values, and whose flags come from their own rows (publication type,
    stated links, trial snapshots): each alone on its work, where its summary is read from that one record."""
    twice = viewdb.article(
        "39000101",
        "Ketamine twice listed",
        keywords=["ketamine", "", "depression", "ketamine"],
        mesh_terms=["Ketamine", "Ketamine", ""],
        publication_types=["Journal Article", "Retracted Publication", "Journal Article", ""],
        journal="",
        language="",
        extra={"volume": "", "pages": "12"},
    )
    corrected = viewdb.article("39000102", "Esketamine with an erratum", abstract="")
    corrected.add_link("erratum_in", "pmid", "39000199")
    concern = viewdb.article("39000103", "Esketamine under concern")
    concern.add_link("expression_of_concern_in", "pmid", "39000198")
    withdrawn = viewdb.article("39000104", "Ketamine withdrawn by its authors")
    withdrawn.add_link("retraction_in", "pmid", "39000197")
    done = Record(source="clinicaltrials", source_id="NCT05000002", record_type="trial_registration", title="Ketamine trial done")
    done.add_id("nct", "NCT05000002")
    done.trial = {"overall_status": "COMPLETED", "enrollment": 80, "has_results": True}
    return [twice, corrected, concern, withdrawn, done]


def _summaries_of(db, one: bool | None) -> list[list]:
    from crawler.store import summaries
    from tests.helpers.summaries_reference import summary_rows

    return summary_rows(db, summaries._summary_select(one), [10**9])


@pytest.mark.parametrize("corpus", ["views", "dedup", "classify"])
def test_a_work_of_one_record_is_summarised_as_the_subqueries_over_its_records_would(db, make_config, corpus):
    """A queued work of exactly one record (most new works) is summarised from that record's row; every column equals
    what the subqueries over all of a work's records give (the other works' way), on the views' database, the dedup
    corpus (works merged from several sources) and the labelled set's records, classified with the shipped vocabulary."""
    from tests.helpers import classify_corpus, dedup_corpus

    config = make_config(classify_corpus.shipped_vocabulary())
    if corpus == "views":
        viewdb.build(db)
        ingest.save_batch(db, _odd_records(), config=config)
    elif corpus == "dedup":
        for batch in dedup_corpus.ordered_batches("by_file"):
            ingest.save_batch(db, batch, config=config)
    else:
        ingest.save_batch(db, list(classify_corpus.parse_wire().values()), config=config)
    db.execute("INSERT OR IGNORE INTO work_summary_queue (work_id) SELECT id FROM works")
    alone, others, reference = _summaries_of(db, True), _summaries_of(db, False), _summaries_of(db, None)
    assert sorted(alone + others) == sorted(reference)
    assert len(alone) >= 10 and (len(others) >= 5 or corpus != "dedup")
    if corpus == "views":  # each flag and a trial status read from the one record's own rows
        assert all(any(row[i] for row in alone) for i in range(-6, 0))
    db.execute("DELETE FROM work_summary_queue")
    assert [list(r.values()) for r in rows(db, "SELECT * FROM work_summaries ORDER BY work_id")] == sorted(reference)


def test_summary_names_are_the_authors_short_names():
    """The summary's names (``summaries.short_name``) equal ``Author.from_dict(a).short``: on every author the dedup
    corpus's records store (PubMed, Europe PMC, Crossref, bioRxiv, feeds…) and on every mix of present, empty and
    missing fields, a given name without initials and a group included."""
    import itertools

    from crawler.records import Author
    from crawler.store.summaries import short_name
    from tests.helpers import dedup_corpus

    stored = [a.to_dict() for _, batch in dedup_corpus.parse_batches() for r in batch for a in r.structured_authors]
    assert len(stored) > 500 and any("collective" in a for a in stored)
    keys = ("family", "given", "initials", "collective", "suffix")
    values = (None, "", " ", "Jean-Paul", "van der Berg", "JP")
    mixes = [
        {k: v for k, v in zip(keys, combo, strict=True) if v is not None or k == "given"}
        for combo in itertools.product(values, repeat=len(keys))
    ]
    for author in stored + mixes:
        assert short_name(author) == Author.from_dict(author).short, author
    assert short_name({"family": "Osei", "given": "Hana Kwame"}) == "Osei HK"


def test_summary_author_columns_read_the_column_as_json_loads_does():
    """``author_columns`` reads ``works.authors`` as its UTF-8 bytes (orjson where it reads them as ``json.loads``): the
    same names, first author and count as from ``json.loads`` of the text, for non-ASCII names, escapes, a lone surrogate
    (which orjson refuses), a group, empty fields and an empty or missing column."""
    import json

    from crawler.store.summaries import author_columns, short_name

    texts = [
        None,
        "",
        "[]",
        json.dumps([{"family": "Øster", "initials": "Å"}, {"family": "Osei", "given": "Hana Kwame"}], ensure_ascii=False),
        '[{"family": "O\\u2019Brien", "initials": "K", "suffix": "Jr"}]',
        '[{"family": "X\\ud800", "initials": "A"}, {"collective": "STAR*D Investigators"}]',
        '[{"family": "", "initials": ""}, {"family": "Lee", "initials": "A"}]',
    ]
    for text in texts:
        people = [short_name(a) for a in json.loads(text or "[]")]
        expected = (", ".join(p for p in people if p) or None, people[0] if people else None, len(people))
        assert author_columns(None if text is None else text.encode()) == expected, text
