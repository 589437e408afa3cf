"""Full-text search: the FTS5 index stays in step with the works, bm25 ranking, `litmon search`."""

from __future__ import annotations

import json

from crawler import ingest, store
from crawler.records import Record
from tests.conftest import rows
from tests.helpers import viewdb
from tests.helpers.cli import litmon, write_config


def hits(db, query, **filters):
    return [r["work_id"] for r in store.search_works(db, query, **filters)]


def test_index_follows_inserts_updates_and_merges(db):
    first = viewdb.article("1", "Ketamine infusion for depression", abstract="Sixty adults received ketamine.")
    ingest.save_batch(db, [first])
    work = viewdb.work_of(db, "pubmed", "1")
    assert hits(db, "infusion") == [work]
    # update: the new title is found, the old word is not
    first.title = "Ketamine tablets for depression"
    ingest.save_batch(db, [first])
    assert hits(db, "infusion") == [] and hits(db, "tablets") == [work]
    # merge: a feed item saved as its own work, then joined by DOI, leaves one indexed row (the survivor)
    feed = Record(source="feed:x", source_id="f1", record_type="article", title="Zanzibar cohort of ketamine users")
    ingest.save_batch(db, [feed])
    other = viewdb.work_of(db, "feed:x", "f1")
    assert hits(db, "zanzibar") == [other]
    first.add_id("doi", "10.1000/k1")
    feed.add_id("doi", "10.1000/k1")
    ingest.save_batch(db, [first, feed])
    survivor = min(work, other)
    assert hits(db, "zanzibar") == []  # the work shows (and indexes) its best source's title
    assert hits(db, "tablets") == [survivor]
    indexed = rows(db, "SELECT COUNT(*) AS n FROM work_summaries_fts")[0]["n"]
    assert indexed == rows(db, "SELECT COUNT(*) AS n FROM works WHERE merged_into IS NULL")[0]["n"] == 1


def test_a_classification_change_leaves_the_index_alone_and_a_title_change_reindexes(db):
    """The index holds titles, abstracts, authors…: an update of a summary's relevance, rank or tags (every
    reclassify, every weekly run) writes nothing to it; an update of an indexed column re-indexes the row."""
    ingest.save_batch(db, [viewdb.article("1", "Ketamine infusion for depression", abstract="Sixty adults received ketamine.")])
    work = viewdb.work_of(db, "pubmed", "1")
    before = db.conn.total_changes  # counts the rows written by triggers too
    db.execute("UPDATE work_summaries SET relevance = 'uncertain', rank_score = 7, tags = '[\"trd\"]' WHERE work_id = ?", [work])
    assert db.conn.total_changes - before == 1  # the summary row alone: no index delete and insert
    assert hits(db, "infusion") == [work]
    before = db.conn.total_changes
    db.execute("UPDATE work_summaries SET title = 'Ketamine tablets for depression' WHERE work_id = ?", [work])
    assert db.conn.total_changes - before > 1  # the trigger re-indexed the row
    assert hits(db, "infusion") == [] and hits(db, "tablets") == [work]
    db.execute("INSERT INTO work_summaries_fts (work_summaries_fts, rank) VALUES ('integrity-check', 1)")  # raises if out of step


def test_fts_index_passes_its_integrity_check_after_changes(db):
    viewdb.build(db)
    db.execute("INSERT INTO work_summaries_fts (work_summaries_fts, rank) VALUES ('integrity-check', 1)")  # raises if out of step


def test_title_matches_rank_above_abstract_matches_and_filters_apply(db):
    ids = viewdb.build(db)
    found = store.search_works(db, "suicidal ideation")
    assert [r["work_id"] for r in found] == [ids["review"]]
    assert "**suicidal** **ideation**" in found[0]["snippet"]
    assert set(hits(db, "esketamine")) == {ids["rct"], ids["preprint"], ids["trial"]}
    # a word in a title outranks the same word in an abstract (which outranks it in the journal name)
    in_abstract = viewdb.article(
        "51", "Sleep after infusions", abstract="Arketamine was compared with placebo in a small cohort."
    )
    in_title = viewdb.article("52", "Arketamine in a small cohort", abstract="Sleep was compared after infusions with placebo.")
    in_journal = viewdb.article("53", "Sleep after placebo infusions", journal="Arketamine reports")
    ingest.save_batch(db, [in_abstract, in_journal, in_title])
    assert hits(db, "arketamine") == [viewdb.work_of(db, "pubmed", n) for n in ("52", "51", "53")]
    assert hits(db, "quetiapine", record_type="preprint") == [ids["preprint"]]
    assert hits(db, "esketamine", tag="rct") == [ids["rct"]]
    assert hits(db, "ketamine", relevance="uncertain") == [ids["retracted"]]
    assert hits(db, "ketamine", since="2026-11-01") and ids["retracted"] not in hits(db, "ketamine", since="2026-11-01")
    # authors, journal, MeSH are indexed; stemming finds "depressive" from "depression"
    assert set(hits(db, "osei")) == {ids["rct"], ids["preprint"]}
    assert hits(db, "journal:affective") == [ids["review"]]
    assert ids["rct"] in hits(db, "depressive")


def test_a_query_that_is_not_fts_syntax_is_searched_as_words(db):
    ids = viewdb.build(db)
    assert set(hits(db, 'treatment-resistant "depression')) == {ids["rct"], ids["preprint"]}
    assert hits(db, "") == []


def test_search_command_prints_ranked_results_with_snippets_and_json(tmp_path):
    config = write_config(tmp_path, "")
    db = ingest.open_db(tmp_path / "litmon.db")
    ids = viewdb.build(db)
    db.close()
    result = litmon("--config", config, "search", "suicidal ideation", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"[{ids['review']}] Ketamine for depression: a meta-analysis" in result.stdout and "**suicidal**" in result.stdout
    result = litmon("--config", config, "search", "esketamine", "--json", "--limit", "2", "--tag", "rct", cwd=tmp_path)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["work_id"] for r in lines] == [ids["rct"]] and lines[0]["tags"] == ["intranasal_esketamine", "rct"]
    result = litmon("--config", config, "search", "x", "--since", "last week", cwd=tmp_path)
    assert result.returncode == 2 and "--since" in result.stderr


def test_a_batch_written_in_one_statement_indexes_as_a_rebuilt_index_would(db):
    """The summaries of a batch reach the index by one statement (one FTS5 flush, not one per work): the index
    passes its integrity check and ranks every query exactly as an index rebuilt from the table does,
    after new works, updated ones and a merge."""
    titles = ["Ketamine infusion for depression", "Esketamine nasal spray in adolescents", "Ketamine and suicidal ideation"]
    batch = [
        viewdb.article(
            str(n), f"{titles[n % 3]} {n}", abstract=f"Trial {n} of ketamine with {n % 7} arms; depression scores fell."
        )
        for n in range(1, 121)
    ]
    ingest.save_batch(db, batch)
    batch[5].title = "Oral ketamine tablets for depression"
    batch[6].add_id("doi", "10.1000/shared")
    batch[7].add_id("doi", "10.1000/shared")
    ingest.save_batch(db, batch[:60])
    queries = ["ketamine", "infusion", "esketamine OR tablets", '"suicidal ideation"', "depression NOT adolescents", "arms"]

    def ranked():
        return [
            rows(
                db,
                "SELECT rowid, bm25(work_summaries_fts) AS r FROM work_summaries_fts WHERE work_summaries_fts MATCH ? ORDER BY r, rowid",
                [q],
            )
            for q in queries
        ]

    before = ranked()
    assert len(before[0]) == 119 and before[1] and before[2]
    db.execute("INSERT INTO work_summaries_fts (work_summaries_fts, rank) VALUES ('integrity-check', 1)")  # raises if out of step
    db.execute("INSERT INTO work_summaries_fts (work_summaries_fts) VALUES ('rebuild')")
    assert ranked() == before


def test_the_index_merging_16_segments_at_a_time_matches_and_ranks_as_with_4(db, tmp_path):
    """m017 sets the index's FTS5 ``automerge`` to 16 (SQLite's default: 4). The same batches (40 commits: 40 segments,
    merged at different points), new works, updated ones and a merge, saved into a file of the schema before m017 and
    into one of the newest: every query gives the same rows with the same bm25 scores and snippets, and both indexes
    pass their integrity check; the older file, migrated, gets the setting and still ranks the same."""
    old = store.connect(tmp_path / "m016.db")
    store.migrations.apply(old, stop_before="m017_search_index_merges_fewer_segments")
    titles = ["Ketamine infusion for depression", "Esketamine nasal spray in adolescents", "Ketamine and suicidal ideation"]

    def saves(target):
        batch = [
            viewdb.article(str(n), f"{titles[n % 3]} {n}", abstract=f"Trial {n} of ketamine with {n % 7} arms; scores fell.")
            for n in range(1, 121)
        ]
        for start in range(0, 120, 4):
            ingest.save_batch(target, batch[start : start + 4])
        batch[5].title = "Oral ketamine tablets for depression"
        batch[6].add_id("doi", "10.1000/shared")
        batch[7].add_id("doi", "10.1000/shared")
        for start in range(0, 60, 6):
            ingest.save_batch(target, batch[start : start + 6])

    queries = ["ketamine", "infusion", "esketamine OR tablets", '"suicidal ideation"', "depression NOT adolescents", "arms"]

    def ranked(target):
        found = [
            rows(
                target,
                "SELECT rowid, bm25(work_summaries_fts, 10.0, 1.0) AS r, snippet(work_summaries_fts, -1, '[', ']', '…', 12) AS s"
                " FROM work_summaries_fts WHERE work_summaries_fts MATCH ? ORDER BY r, rowid",
                [q],
            )
            for q in queries
        ]
        target.execute("INSERT INTO work_summaries_fts (work_summaries_fts, rank) VALUES ('integrity-check', 1)")  # raises
        return found

    def automerge(target):
        return rows(target, "SELECT v FROM work_summaries_fts_config WHERE k = 'automerge'")

    saves(old)
    saves(db)
    assert automerge(old) == [] and automerge(db) == [{"v": 16}]
    expected = ranked(old)
    assert len(expected[0]) == 119 and expected[2] and expected[3]
    assert ranked(db) == expected
    structure = "SELECT block FROM work_summaries_fts_data WHERE id = 10"  # FTS5's record of the segments
    assert rows(db, structure) != rows(old, structure)  # the indexes are cut differently
    store.migrate(old)
    assert automerge(old) == [{"v": 16}]
    assert ranked(old) == expected
