"""Classification in the running system: after each crawled batch, stored for SQL.

Real SQLite files and the real pipeline against a loopback PubMed serving efetch XML of the
labelled set.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import sqlite_utils

from crawler import classify, clock, store
from crawler.records import Record
from tests.conftest import rows
from tests.helpers.classify_corpus import article, build, shipped_vocabulary
from tests.helpers.ncbi import FakeNcbi
from tests.helpers.ops import pubmed_section

ROOT = Path(__file__).resolve().parent.parent
ITEMS = {item["key"]: item for item in build.load_items()}


def efetch(*keys: str) -> bytes:
    return build.build_pubmed([ITEMS[key] for key in keys])


def pmid(key: str) -> str:
    return ITEMS[key]["wire_id"]


@pytest.fixture
def vocabulary_config(make_config):
    def _make(extra: str = ""):
        return make_config(extra + "\n" + shipped_vocabulary())

    return _make


def work_id_of(db, source_id: str) -> int:
    return rows(db, "SELECT work_id FROM records WHERE source_id = ?", [source_id])[0]["work_id"]


def relevance(db):
    return {
        r["source_id"]: r["label"]
        for r in rows(db, "SELECT rec.source_id, r.label FROM records rec JOIN work_relevance r ON r.work_id = rec.work_id")
    }


# --------------------------------------------------------------------------- crawl


def test_each_crawled_batch_is_classified(httpserver, vocabulary_config, run_crawl, db):
    keys = ["rct_iv_vs_ect", "noise_gastroscopy_sedation", "noise_dxm_bupropion", "ma_iv_trd"]
    FakeNcbi({"crdt": 4}, {0: efetch(*keys[:2]), 2: efetch(*keys[2:])}).install(httpserver)
    config = vocabulary_config(pubmed_section(httpserver))

    report = run_crawl(config, only=["pubmed"])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert relevance(db) == {
        pmid("rct_iv_vs_ect"): "relevant",
        pmid("noise_gastroscopy_sedation"): "not_relevant",
        pmid("noise_dxm_bupropion"): "not_relevant",  # issue #13: a passing mention is not relevant
        pmid("ma_iv_trd"): "relevant",
    }
    trial = work_id_of(db, pmid("rct_iv_vs_ect"))
    stored = rows(db, "SELECT * FROM work_relevance WHERE work_id = ?", [trial])[0]
    assert stored["score"] == 4 and stored["vocabulary_hash"] == classify.build_vocabulary(config.topic).hash
    assert stored["classified_at"] == clock.stamp() and stored["rank_score"] > 0
    reasons = [
        r["value"] for r in rows(db, "SELECT j.value FROM work_relevance, json_each(reasons) j WHERE work_id = ?", [trial])
    ]
    assert any(r.startswith("concept drug = 3: 'ketamine' in title") for r in reasons)
    assert reasons[0].startswith("concept drug: passing mention set aside (background sentence:")  # issue #13: said, not counted
    assert reasons[-1] == "score 4 (relevant >= 2, uncertain >= 1): relevant"
    assert json.loads(stored["rank_reasons"])[0] == "evidence rct +30"
    tags = {r["tag"]: (r["category"], r["evidence"]) for r in rows(db, "SELECT * FROM work_tags WHERE work_id = ?", [trial])}
    assert tags["rct"] == ("evidence", "publication type 'randomized controlled trial'")
    assert tags["iv_ketamine"][0] == "drug" and tags["trd"][0] == "indication" and tags["dissociation"][0] == "safety"
    noise = rows(db, "SELECT j.value FROM work_relevance r, json_each(r.reasons) j WHERE r.label = 'not_relevant'")
    assert any(r["value"].startswith("noise anaesthesia (penalty 2)") for r in noise)


def test_a_dry_run_crawl_classifies_nothing(httpserver, vocabulary_config, run_crawl, db):
    FakeNcbi({"crdt": 1}, {0: efetch("rct_iv_vs_ect")}).install(httpserver)
    config = vocabulary_config(f"""
[sources.pubmed]
enabled = true
base_url = "{httpserver.url_for("/")}"
query = "ketamine"
min_interval = 0
""")
    run_crawl(config, only=["pubmed"], dry_run=True)
    assert rows(db, "SELECT COUNT(*) AS n FROM work_relevance") == [{"n": 0}]


def test_a_changed_record_is_classified_again(vocabulary_config, db):
    config = vocabulary_config()
    first = article("1", "Ketamine and mood", "Ketamine improved mood in volunteers.")
    store.save_records(db, [first])
    classify.classify_batch(db, config, [first])
    assert relevance(db) == {"1": "not_relevant"}

    revised = article("1", "Ketamine and mood", "Ketamine improved mood in patients with treatment-resistant depression.")
    store.save_records(db, [revised])
    classify.classify_batch(db, config, [revised])

    assert relevance(db) == {"1": "relevant"}
    assert {r["tag"] for r in rows(db, "SELECT tag FROM work_tags")} == {"trd"}


def test_merged_works_keep_one_classification(vocabulary_config, db):
    config = vocabulary_config()
    pubmed = article("10", "Ketamine for depression", "Ketamine reduced depression.")
    crossref = Record(
        source="crossref",
        source_id="10.1000/xyz1",
        record_type="article",
        title="Ketamine for depression",
        abstract="A randomized trial of ketamine in depression.",
    )
    crossref.add_id("doi", "10.1000/xyz1")
    store.save_records(db, [pubmed, crossref])
    classify.classify_batch(db, config, [pubmed, crossref])
    assert len(rows(db, "SELECT * FROM work_relevance")) == 2

    pubmed.add_id("doi", "10.1000/xyz1")  # the PubMed record now names the DOI: the two works are one
    store.save_records(db, [pubmed])
    classify.classify_batch(db, config, [pubmed])

    survivor = rows(db, "SELECT id FROM works WHERE merged_into IS NULL")
    assert rows(db, "SELECT work_id FROM work_relevance") == [{"work_id": survivor[0]["id"]}]
    assert {r["work_id"] for r in rows(db, "SELECT work_id FROM work_tags")} == {survivor[0]["id"]}
    assert {r["tag"] for r in rows(db, "SELECT tag FROM work_tags")} == {"rct"}  # from the Crossref abstract


def test_a_classification_error_does_not_fail_the_crawl(vocabulary_config, db, caplog):
    config = vocabulary_config()
    record = article("1", "Ketamine for depression", "Ketamine reduced depression.")
    store.save_records(db, [record])
    db.execute("DROP TABLE work_tags")  # a damaged database: classification cannot be stored
    with caplog.at_level(logging.ERROR):
        classify.classify_batch(db, config, [record])
    assert "classification of 1 record(s) failed: OperationalError: no such table: work_tags" in caplog.text
    assert "litmon -v reclassify" in caplog.text
    assert rows(db, "SELECT COUNT(*) AS n FROM records") == [{"n": 1}]
    assert rows(db, "SELECT COUNT(*) AS n FROM work_relevance") == [{"n": 0}]  # the transaction was rolled back


def test_readme_sql_examples_run(vocabulary_config, db):
    config = vocabulary_config()
    records = [
        article(
            "1",
            "Esketamine nasal spray versus placebo in treatment-resistant depression: a randomized trial",
            "Adults were randomly assigned to esketamine nasal spray or placebo.",
        ),
        article("2", "Esketamine for sedation in gastroscopy", "Less respiratory depression with esketamine sedation."),
    ]
    store.save_records(db, records)
    classify.classify_batch(db, config, records)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Relevance, tags and rank", 1)[1].split("\n## ", 1)[0]
    sql = "\n".join(re.findall(r"```sql\n(.*?)```", section, re.S))
    work = work_id_of(db, "1")
    results = []
    for statement in [s.strip() for s in sql.replace(" 42", f" {work}").split(";") if s.strip()]:
        statement = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        results.append(rows(db, statement))
    assert [r["id"] for r in results[0]] == [work]
    assert results[1][-1]["reason"].endswith(": relevant")
    assert {r["tag"] for r in results[2]} >= {"rct", "intranasal_esketamine", "trd"}
    assert results[3] == [{"noise_class": "anaesthesia", "works": 1}]


# --------------------------------------------------------------------------- reclassify


def test_reclassify_stores_what_the_backfill_path_stores(tmp_path, monkeypatch):
    """``litmon reclassify`` stores rows encoded where the work is classified (in worker processes:
    ``store.classification_row``); the crawl's path stores ``Classification`` objects. On the labelled set, first
    classified, then with a changed vocabulary (labels and tags change), then again with nothing changed, one process,
    workers and the crawl's path leave every table identical (the search index's included), give the same searches,
    and the two reclassify runs the same reports."""
    import shutil

    from crawler.config import parse_config, shipped_config_text
    from crawler.store.search import search_works
    from tests.conftest import dump_tables
    from tests.helpers.classify_corpus import load_corpus

    db = store.open_db(tmp_path / "crawl.db")
    store.save_records(db, [record for work in load_corpus() for record in work.records])
    works = len(store.load_current_work_ids(db))
    db.close()
    for name in ("one.db", "workers.db"):
        shutil.copy(tmp_path / "crawl.db", tmp_path / name)
    shipped = parse_config(shipped_config_text(), "shipped")
    changed = parse_config(
        shipped_config_text()
        .replace("exclude_terms = []", 'exclude_terms = ["randomized"]')
        .replace('terms = ["dissociat*", "cadss",', 'terms = ["cadss",'),
        "changed",
    )
    assert changed.topic != shipped.topic
    monkeypatch.setattr(classify, "CHUNK", 7)
    monkeypatch.setattr(classify, "PARALLEL_MIN_WORKS", 0)

    def run(name, config, workers):
        db = store.open_db(tmp_path / name)
        if workers is None:  # the crawl's path
            report = None
            classify.classify_works(db, config, store.load_current_work_ids(db))
        else:
            report = classify.reclassify(db, config, workers=workers)
        found = (
            dump_tables(db),
            [
                [(r["work_id"], r["relevance"], r["snippet"]) for r in search_works(db, q, limit=None)]
                for q in ("ketamine", "suicid*")
            ],
        )
        db.close()
        return report, found

    reports = []
    for config in (shipped, changed, changed):
        crawl = run("crawl.db", config, None)[1]
        alone, one = run("one.db", config, 1)
        together, workers = run("workers.db", config, 2)
        assert one == crawl and workers == crawl
        assert together == alone and alone is not None and alone.works == works
        reports.append(alone)
    assert reports[0].tags_changed == works and reports[1].changed and reports[1].tags_changed  # all new, then changes
    assert reports[2].changed == [] and reports[2].tags_changed == 0  # the last run changed nothing
    assert crawl[0]["work_tags"] and crawl[1][0]


def test_a_changed_summary_lists_tag_names_as_a_full_summary_does(tmp_path):
    """A changed work's summary columns are written from its classification; tag names that JSON must escape (a quote,
    a backslash, control characters: the SQL writes those) and names outside ASCII read as a full summary writes them,
    in the same order."""
    import json

    from crawler.evidence import Tag
    from crawler.store.summaries import rebuild_work_summaries

    db = store.open_db(tmp_path / "odd.db")
    store.save_records(db, [article(str(n), f"Ketamine for depression {n}", "Patients were randomly assigned.") for n in (1, 2)])
    names = {1: ["rct", "ké", "z_plain", "dissociation"], 2: ['quo"te', "back\\slash", "tab\there", "nul\x00", "rct"]}
    results = [
        classify.Classification(
            work_id, "relevant", 3, ["r"], [Tag(n, "evidence" if n == "rct" else "drug", "e") for n in tags], 7, [], "h"
        )
        for work_id, tags in names.items()
    ]
    assert store.save_classifications(db, results) == 2

    def summaries():
        return db.execute("SELECT work_id, relevance, rank_score, tags, evidence_types FROM work_summaries ORDER BY 1").fetchall()

    written = summaries()
    assert [sorted(json.loads(row[3])) for row in written] == [sorted(names[1]), sorted(names[2])]
    assert [json.loads(row[4]) for row in written] == [["rct"], ["rct"]]
    assert rebuild_work_summaries(db) == 2
    assert summaries() == written


def test_reclassify_restores_the_garbage_collector(tmp_path, monkeypatch):
    """reclassify tunes the collector while it classifies (one process or workers) and leaves it as it found it: a
    long-running service collects as before."""
    import gc

    from crawler.config import parse_config, shipped_config_text

    db = store.open_db(tmp_path / "gc.db")
    store.save_records(db, [article(str(n), f"Ketamine for depression {n}", "An open-label study.") for n in range(4)])
    config = parse_config(shipped_config_text(), "shipped")
    monkeypatch.setattr(classify, "CHUNK", 1)
    monkeypatch.setattr(classify, "PARALLEL_MIN_WORKS", 0)
    before = gc.get_threshold(), gc.get_freeze_count()
    seen = []
    monkeypatch.setattr(store, "save_classification_rows", lambda db, rows: seen.append(gc.get_threshold()))
    for workers in (1, 2):
        assert classify.reclassify(db, config, workers=workers).works == 4
        assert (gc.get_threshold(), gc.get_freeze_count()) == before
    assert seen and all(threshold[0] == classify.GC_THRESHOLD for threshold in seen)


class _Plugin:
    """An installed sqlite_utils plugin that adds an SQL function to every connection sqlite_utils prepares."""

    @sqlite_utils.hookimpl
    def prepare_connection(self, conn):
        conn.create_function("from_a_plugin", 0, lambda: 1)


def test_reclassify_workers_read_without_sqlite_utils_plugins(tmp_path, monkeypatch):
    """A reclassify worker's read-only connection (``store.open_reader``) neither looks for sqlite_utils plugins
    (every installed distribution's entry points, in each worker process) nor lets one prepare it."""
    import sqlite3

    import sqlite_utils.db
    import sqlite_utils.plugins

    store.open_db(tmp_path / "litmon.db").close()

    def refuse() -> None:
        raise AssertionError("sqlite_utils looked for plugins")

    plugin = _Plugin()
    sqlite_utils.plugins.pm.register(plugin)
    try:
        assert sqlite_utils.Database(memory=True).execute("SELECT from_a_plugin()").fetchone() == (1,)
        monkeypatch.setattr(sqlite_utils.db, "ensure_plugins_loaded", refuse)
        reader = store.open_reader(str(tmp_path / "litmon.db"))
        with pytest.raises(sqlite3.OperationalError, match="no such function"):
            reader.execute("SELECT from_a_plugin()")
        assert reader.execute("SELECT COUNT(*) FROM works").fetchone() == (0,)
    finally:
        sqlite_utils.plugins.pm.unregister(plugin)
