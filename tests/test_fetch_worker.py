"""The fetch worker (crawler/fetch_worker.py): a source's fetch and parsing in a second process.

Every outcome is compared with the same crawl in one process: the stored rows (every table), the
classifications, the digest, the run's counts, errors and log lines. Faults, signals and a killed
writer are tested against real loopback servers and real litmon processes.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import gc
import json
import logging
import multiprocessing as mp
import os
import pickle
import re
import signal
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from crawler import classify, clock, fetch_worker, ingest, store
from crawler.config import parse_config
from crawler.digest import build_digest
from crawler.http import HttpClient
from crawler.pipeline import FirstSource, crawl
from crawler.records import Record
from tests.conftest import PINNED_NOW, fixture_bytes, rows
from tests.conftest import dump_tables as dump
from tests.helpers import upstream
from tests.helpers.classify_corpus import shipped_vocabulary
from tests.helpers.cli import litmon, litmon_env, write_config
from tests.helpers.ncbi import FakeNcbi, esearch_body
from tests.helpers.ops import PubMedServer, log_text, pubmed_section, query, start_litmon, wait_for
from tests.helpers.records import article as pubmed_article


@pytest.fixture(autouse=True)
def two_cores(monkeypatch):
    """The worker runs on any test machine (on one core, litmon itself falls back to one process)."""
    monkeypatch.setattr(fetch_worker, "cores", lambda: 2)


def config_text(folder: Path, worker: str, sources: str) -> str:
    return f"""
contact_email = "tester@example.org"
extends = "none"
[database]
path = "{folder / "litmon.db"}"
[outbox]
dir = "{folder / "outbox"}"
[crawl]
backfill_from = 2024-01-01
fetch_worker = "{worker}"
[http]
max_retries = 1
backoff_seconds = 0.01
default_min_interval = 0
{sources}
[topic]
match_terms = ["ketamin", "esketamin", "arketamin", "spravato"]
{shipped_vocabulary()}
"""


def _efetches(httpserver) -> int:
    """efetch requests the loopback PubMed has had."""
    return sum(1 for request, _ in httpserver.log if request.path.endswith("efetch.fcgi"))


def make(folder: Path, worker: str, sources: str):
    folder.mkdir(parents=True, exist_ok=True)
    return parse_config(config_text(folder, worker, sources), str(folder / "litmon.toml"))


class PubMed:
    """Three records in two efetch pages (batch_size 2); ``week = 2``: the first answer lacks its title
    (the stored one is kept) and the second has a new abstract (an update); ``fail``: a fault on page 2."""

    def __init__(self):
        self.week, self.fail = 1, None

    def __call__(self, request):
        if request.path.endswith("esearch.fcgi"):
            return Response(esearch_body(3 if request.form["datetype"] == "crdt" else 0), content_type="application/json")
        start = request.args["retstart"]
        if start == "2" and self.fail == "502":
            return Response("<html><body>502 Bad Gateway</body></html>", status=502, content_type="text/html")
        if start == "2" and self.fail == "malformed":
            return Response(b"<?xml version='1.0'?><PubmedArticleSet><PubmedArticle><MedlineCitation>", content_type="text/xml")
        body = fixture_bytes("pubmed", "efetch_batch1.xml" if start == "0" else "efetch_batch2.xml")
        if self.week == 2 and start == "0":
            body = re.sub(rb"<ArticleTitle>Intravenous .*?</ArticleTitle>", b"<ArticleTitle></ArticleTitle>", body, flags=re.S)
            body = body.replace(b"<AbstractText>", b"<AbstractText>Updated: esketamine in adults with depression. ", 1)
        return Response(body, content_type="text/xml")


#: a journal feed item without identifiers: it merges (title, author, year) with the article other sources brought
FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Journal</title><link>https://journal.example.org/</link>
<description>Latest articles</description>
<item><title>Esketamine nasal spray versus quetiapine for treatment-resistant depression</title>
<link>https://journal.example.org/articles/escape-trd</link><dc:creator>Andreas Reif</dc:creator>
<pubDate>Thu, 05 Oct 2023 00:00:00 GMT</pubDate><description>Esketamine or quetiapine in treatment-resistant depression.</description></item>
</channel></rss>"""


@pytest.fixture
def world():
    """One loopback server per source, answering as upstream does (tests/helpers/upstream)."""
    pubmed = PubMed()
    apps = {
        "pubmed": pubmed,
        "europepmc": upstream.europepmc,
        "crossref": upstream.crossref,
        "clinicaltrials": upstream.clinicaltrials,
        "isrctn": upstream.isrctn,
        "biorxiv": upstream.biorxiv,
        "feed": lambda request: Response(FEED, content_type="application/rss+xml"),
    }
    servers = {}
    for name, app in apps.items():
        server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        server.start()
        server.expect_request(re.compile(".*")).respond_with_handler(app)
        servers[name] = server
    url = {name: server.url_for("/") for name, server in servers.items()}
    sources = f"""
[sources.pubmed]
enabled = true
base_url = "{url["pubmed"]}"
query = "ketamine"
batch_size = 2
min_interval = 0
[sources.europepmc]
enabled = true
base_url = "{url["europepmc"]}rest/"
query = "ketamine AND depression"
page_size = 3
min_interval = 0
[sources.crossref]
enabled = true
base_url = "{url["crossref"]}"
query = "ketamine esketamine depression"
page_size = 3
slice_days = 3650
min_interval = 0
[sources.clinicaltrials]
enabled = true
base_url = "{url["clinicaltrials"]}api/v2/"
conditions = "depression"
interventions = "ketamine"
min_interval = 0
[sources.isrctn]
enabled = true
base_url = "{url["isrctn"]}api/"
query = "ketamine OR esketamine"
page_size = 2
min_interval = 0
[sources.biorxiv]
enabled = true
base_url = "{url["biorxiv"]}"
servers = ["medrxiv"]
category = ""
max_backfill_days = 30
min_interval = 0
[[feeds]]
name = "journal"
url = "{url["feed"]}journal.rss"
"""
    yield pubmed, sources
    upstream.WEEK[0] = 1
    for server in servers.values():
        server.clear()
        server.stop()


def _crawl_pubmed_saving_with(save_batch, httpserver, monkeypatch, tmp_path: Path, worker: str, sources: str, total: int):
    """A PubMed crawl of a fresh file with ``[crawl] fetch_worker = worker``, each batch saved by ``save_batch``: its
    report and every table (all ``total`` records new)."""
    httpserver.clear_log()
    monkeypatch.setattr(ingest, "save_batch", save_batch)
    config = make(tmp_path / worker, worker, sources)
    db = ingest.open_db(config.database_path)
    report = crawl(config, db, http=HttpClient.from_config(config), only=["pubmed"])
    outcome = (report_of(report), dump(db))
    db.close()
    assert report.sources[0].status == "ok" and report.sources[0].counts["new"] == total, report.sources[0].error
    return outcome


def report_of(report) -> list:
    return [(s.name, s.status, s.counts, s.requests, s.error, s.warnings, s.skipped, s.watermark_held) for s in report.sources]


def run_weeks(tmp_path, name: str, worker: str, world, change_state=None):
    """A first crawl (backfill), a digest, then the week after (updates, a missing title, new records);
    ``change_state(db)`` before the second week's crawl, if given."""
    pubmed, sources = world
    pubmed.week, upstream.WEEK[0] = 1, 1
    config = make(tmp_path / name, worker, sources)
    db = ingest.open_db(config.database_path)
    try:
        reports = [report_of(crawl(config, db, http=HttpClient.from_config(config)))]
        digests = [build_digest(db, config).text]
        clock.advance(days=7)
        pubmed.week, upstream.WEEK[0] = 2, 2
        if change_state is not None:
            change_state(db)
        reports.append(report_of(crawl(config, db, http=HttpClient.from_config(config))))
        digests.append(build_digest(db, config).text)
        return reports, digests, dump(db)
    finally:
        clock.pin(PINNED_NOW)
        db.close()


def test_a_crawl_with_the_worker_stores_exactly_what_one_process_stores(tmp_path, world, monkeypatch):
    """Two weeks of every paged source: merges across sources and batches, updated records, an answer
    lacking its title (the stored one is kept); every table, every report and both digests are equal."""
    alone_reports, alone_digests, alone_rows = run_weeks(tmp_path, "alone", "off", world)

    used: list[int] = []  # records whose classification the worker computed ahead, per batch
    prepared_ahead: list[int] = []  # records the worker prepared for saving, per batch
    real_save = ingest.save_batch

    def save_batch(db, records, now=None, *, config=None, ahead=None, prepared=None, more_ahead=None):
        used.append(len(ahead or {}))
        prepared_ahead.append(sum(1 for p in prepared or [] if p is not None))
        time.sleep(0.2)  # a slow writer: the worker classifies the whole next batch meanwhile
        return real_save(db, records, now, config=config, ahead=ahead, prepared=prepared, more_ahead=more_ahead)

    monkeypatch.setattr(ingest, "save_batch", save_batch)
    worker_reports, worker_digests, worker_rows = run_weeks(tmp_path, "worker", "on", world)

    assert sum(used) > 0, "the worker classified nothing ahead: the comparison would not test it"
    assert sum(prepared_ahead) > 0, "the worker prepared nothing: the comparison would not test it"
    assert worker_reports == alone_reports
    assert worker_digests == alone_digests
    assert worker_rows.keys() == alone_rows.keys()
    for table in alone_rows:
        assert worker_rows[table] == alone_rows[table], table
    # what the comparison covers: merges, updates in the second week, the title kept from the store
    assert alone_rows["work_merges"]  # the feed item, without identifiers, merged into a work of earlier batches
    assert sum(counts["updated"] for _, _, counts, *_ in alone_reports[1]) >= 2
    kept = [
        r for r in alone_rows["records"] if "39000001" in r and any(isinstance(v, str) and v.startswith("Intravenous") for v in r)
    ]
    assert kept, "the record whose second answer lacks its title keeps the stored title"


def test_the_last_batch_classified_late_by_the_worker_stores_what_one_process_stores(tmp_path, world, monkeypatch):
    """The writer asks at once and saves slowly: each source's last batch reaches it unclassified, and the worker,
    with no batch left, classifies it while the writer saves; the writer takes those classifications ("late")
    before classifying the batch. Every table, every report and both digests are those of one process."""
    alone_reports, alone_digests, alone_rows = run_weeks(tmp_path, "alone", "off", world)

    late: list[int] = []  # records classified late by the worker, per batch
    real_save = ingest.save_batch

    def save_batch(db, records, now=None, *, config=None, ahead=None, prepared=None, more_ahead=None):
        def slow_then_late():
            time.sleep(0.3)  # saving takes a while: the worker classifies the rest of the batch meanwhile
            more = more_ahead()
            late.append(len(more))
            return more

        later = slow_then_late if more_ahead is not None else None
        return real_save(db, records, now, config=config, ahead=ahead, prepared=prepared, more_ahead=later)

    monkeypatch.setattr(ingest, "save_batch", save_batch)
    worker_reports, worker_digests, worker_rows = run_weeks(tmp_path, "worker", "on", world)

    assert sum(late) > 0, "the worker classified nothing late: the comparison would not test it"
    assert worker_reports == alone_reports
    assert worker_digests == alone_digests
    assert worker_rows.keys() == alone_rows.keys()
    for table in alone_rows:
        assert worker_rows[table] == alone_rows[table], table


def test_the_first_answer_handed_over_in_two_batches_stores_what_one_process_stores(tmp_path, world, monkeypatch):
    """The worker hands the first answer's first records over as a batch of their own (the writer starts sooner), the
    rest of that answer as the next: other transactions than one process's, the same rows. Every table, every report
    and both digests are those of one process (merges across sources and batches, updates, a title kept)."""
    alone_reports, alone_digests, alone_rows = run_weeks(tmp_path, "alone", "off", world)

    sizes: list[tuple[str, int]] = []  # each batch saved: its source and size
    real_save = ingest.save_batch

    def save_batch(db, records, now=None, **kwargs):
        sizes.append((records[0].source, len(records)))
        return real_save(db, records, now, **kwargs)

    monkeypatch.setattr(ingest, "save_batch", save_batch)
    monkeypatch.setattr(fetch_worker, "FIRST_BATCH", 1)  # PubMed's answers hold two records here
    worker_reports, worker_digests, worker_rows = run_weeks(tmp_path, "worker", "on", world)

    pubmed = [size for source, size in sizes if source == "pubmed"]
    assert pubmed == [1, 1, 1, 1, 1, 1], pubmed  # each week: the first answer in two, then the second (one record)
    assert worker_reports == alone_reports
    assert worker_digests == alone_digests
    assert worker_rows.keys() == alone_rows.keys()
    segments = ("work_summaries_fts_data", "work_summaries_fts_idx")  # how FTS5 splits its index: by transaction
    for table in alone_rows:
        if table not in segments:
            assert worker_rows[table] == alone_rows[table], table
    # the search index itself: every term's every occurrence, and what a search finds, in bm25's order
    assert search_index(tmp_path / "worker") == search_index(tmp_path / "alone")


def search_index(folder: Path) -> tuple[list, list]:
    conn = sqlite3.connect(folder / "litmon.db")
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.instances USING fts5vocab(main, work_summaries_fts, instance)")
        instances = conn.execute("SELECT * FROM temp.instances ORDER BY 1, 2, 3, 4").fetchall()
        found = [
            conn.execute(
                "SELECT rowid, bm25(work_summaries_fts) FROM work_summaries_fts WHERE work_summaries_fts MATCH ? "
                "ORDER BY bm25(work_summaries_fts), rowid",
                (query,),
            ).fetchall()
            for query in ("ketamine", "esketamine OR depression", "title:ketamine")
        ]
    finally:
        conn.close()
    assert instances and all(found)
    return instances, found


def test_the_worker_reads_the_next_batch_while_the_writer_saves_but_holds_two_at_most(tmp_path, httpserver, monkeypatch):
    """A slow writer: the worker, having classified the whole batch it holds before the writer asks for it, reads and
    classifies the next page meanwhile (a thread of its own answers the ask), but holds two batches at most: while
    the writer saves batch k, no efetch page after k + 3 (k + 1 and k + 2 held, k + 3 prefetched) was asked for.
    Every table and the report are those of one process."""
    from bench.pubmed_synth import efetch_body

    total = 8
    FakeNcbi({"crdt": total}, {i: efetch_body(i, i + 1, total) for i in range(total)}).install(httpserver)
    sources = f"""
[sources.pubmed]
enabled = true
base_url = "{httpserver.url_for("/")}"
query = "ketamine"
batch_size = 1
min_interval = 0
"""

    real_save = ingest.save_batch
    outcomes = []
    for worker in ("off", "on"):
        saved: list[int] = []  # efetch pages asked for while each batch was saved, beyond that batch

        def save_batch(db, records, now=None, *, saved=saved, worker=worker, **kwargs):
            batch = len(saved) + 1
            if worker == "on":
                wait_for(lambda: _efetches(httpserver) >= min(batch + 3, total), 10, f"the worker reading ahead of batch {batch}")
                time.sleep(0.2)  # it would read further now if it did not stop at two batches
            saved.append(_efetches(httpserver) - batch)
            return real_save(db, records, now, **kwargs)

        outcomes.append(_crawl_pubmed_saving_with(save_batch, httpserver, monkeypatch, tmp_path, worker, sources, total))
        if worker == "on":
            assert max(saved) == 3 and all(ahead <= 3 for ahead in saved), saved
    assert outcomes[1] == outcomes[0]


def test_the_worker_holding_two_batches_classifies_the_writer_s_batch_late(tmp_path, httpserver, monkeypatch):
    """A slow writer: the first batch reaches it unclassified (it asks at once); while it saves that batch, the worker
    reads and classifies the next two, and then, with nothing else to do, the rest of the batch the writer holds
    ("late"), which the writer takes after saving and deduplicating it. Every table and the report are one process's."""
    from bench.pubmed_synth import efetch_body

    total = 8
    FakeNcbi({"crdt": total}, {i: efetch_body(i, i + 2, total) for i in range(0, total, 2)}).install(httpserver)
    sources = pubmed_section(httpserver)  # batches of 2

    real_save = ingest.save_batch
    outcomes = []
    for worker in ("off", "on"):
        taken: list[tuple[int, int]] = []  # per batch: classified ahead when received, and late

        def save_batch(db, records, now=None, *, taken=taken, worker=worker, ahead=None, more_ahead=None, **kwargs):
            if worker == "on" and not taken:
                # the worker reads and classifies batches 2 and 3 (and prefetches page 4) while this one waits
                wait_for(lambda: _efetches(httpserver) >= 4, 10, "the worker reading two batches ahead")
                time.sleep(1.0)  # then it classifies this batch's records, having nothing else to do
            late: list[int] = []

            def later():
                more = more_ahead()
                late.append(len(more))
                return more

            counts = real_save(db, records, now, ahead=ahead, more_ahead=later if more_ahead else None, **kwargs)
            taken.append((len(ahead or {}), sum(late)))
            return counts

        outcomes.append(_crawl_pubmed_saving_with(save_batch, httpserver, monkeypatch, tmp_path, worker, sources, total))
        if worker == "on":
            # the first batch: asked for at once, so sent before (most of) it was classified; the rest late
            assert taken[0][1] > 0 and sum(taken[0]) == 2, taken
            assert taken[1] == (2, 0), taken  # the second: classified in full before the writer asked
    assert outcomes[1] == outcomes[0]


def article(source_id: str, title: str, authors: list[str], **identifiers: str) -> Record:
    """A PubMed article (with ``pmid``), else a journal feed item without identifiers."""
    record = pubmed_article(source_id, title, "2025-03-02")
    record.authors = authors
    if "pmid" not in identifiers:
        record.source, record.identifiers = "feed:jad", []
    for scheme, value in identifiers.items():
        record.add_id(scheme, value)
    return record


def marked(record_id: str) -> classify.Classification:
    """A classification no rule gives: where it is stored, the one computed ahead was used."""
    return classify.Classification(None, "uncertain", 99, [f"ahead:{record_id}"], [], 7, [], "marked")


def labels(db) -> dict[str, str]:
    """source id of each record -> the first reason stored for its work."""
    found = rows(
        db,
        """SELECT r.source_id, wr.reasons FROM records r JOIN works w ON w.id = r.work_id
           JOIN work_relevance wr ON wr.work_id = w.id ORDER BY r.source_id""",
    )
    return {r["source_id"]: json.loads(r["reasons"])[0] for r in found}


def test_a_classification_computed_ahead_is_used_only_for_a_new_record_alone_on_its_work(db, make_config):
    config = make_config()
    title = "Esketamine nasal spray for treatment-resistant depression in older adults: a randomized trial"
    first = [
        article("41000001", title, ["Ito Hugo"], pmid="41000001"),  # new, alone: used
        article("41000002", "Ketamine for suicidal ideation", ["Ode Ana"], pmid="41000002"),  # new, then again below
        article("41000002", "Ketamine for suicidal ideation", ["Ode Ana"], pmid="41000002"),
        article("S0165-1", title, ["Hugo Ito"]),  # no identifier: merges with 41000001 in the same batch
    ]
    ingest.save_batch(
        db, first, "2026-11-20 06:00:00", config=config, ahead={i: marked(r.source_id) for i, r in enumerate(first)}
    )
    after_first = labels(db)
    assert not after_first["41000001"].startswith("ahead:")  # merged with the feed item: classified from both
    assert not after_first["41000002"].startswith("ahead:")  # the same record twice in the batch
    assert after_first["41000001"] == after_first["S0165-1"]

    lacking = article("41000003", "", ["Lee Kim"], pmid="41000003")
    lacking.missing = ["title"]
    second = [
        article(
            "41000004",
            "Arketamine nasal spray in bipolar depression: an open-label pilot study over twelve weeks",
            ["Park Min"],
            pmid="41000004",
        ),  # new, alone: used
        lacking,  # new without its title: alone, used (nothing stored to keep)
        article("41000002", "Ketamine for suicidal ideation: a cohort", ["Ode Ana"], pmid="41000002"),  # updated
    ]
    ingest.save_batch(
        db, second, "2026-11-21 06:00:00", config=config, ahead={i: marked(r.source_id) for i, r in enumerate(second)}
    )
    after_second = labels(db)
    assert after_second["41000004"] == "ahead:41000004"
    assert after_second["41000003"] == "ahead:41000003"
    assert not after_second["41000002"].startswith("ahead:")  # an update is classified from what is stored

    joining = dataclasses.replace(second[0], source="europepmc", source_id="MED-41000004")  # the same PMID
    ingest.save_batch(db, [joining], "2026-11-22 06:00:00", config=config, ahead={0: marked("MED-41000004")})
    assert not labels(db)["MED-41000004"].startswith("ahead:")  # joined a work stored before


def test_classifications_computed_ahead_equal_those_computed_after_saving(db, make_config, tmp_path):
    """What the worker computes (each record alone, before saving) is what the writer stores without it."""
    config = make_config()
    vocabulary = classify.build_vocabulary(config.topic)
    batch = [
        article("41000011", "Esketamine nasal spray for treatment-resistant depression", ["Ito Hugo"], pmid="41000011"),
        article("41000012", "Ketamine infusion and suicidal ideation in adolescents", ["Ode Ana"], pmid="41000012"),
    ]
    ahead = {i: classify.classify_records([r], vocabulary, clock.today()) for i, r in enumerate(batch)}
    ingest.save_batch(db, batch, "2026-11-20 06:00:00", config=config, ahead=ahead)
    with_ahead = dump(db)
    other = store.open_db(tmp_path / "other.db")
    ingest.save_batch(other, batch, "2026-11-20 06:00:00", config=config)
    assert dump(other) == with_ahead
    other.close()


# --------------------------------------------------------------------------- faults, compared with one process


class Broken(Exception):
    pass


@pytest.mark.parametrize("fault", ["502", "malformed", "parser bug"])
def test_a_fault_gives_the_same_report_rows_and_log_with_the_worker(fault, tmp_path, world, monkeypatch, caplog):
    pubmed, sources = world
    if fault == "parser bug":
        from crawler.sources import pubmed as module

        real = module.parse_article

        def parse_article(article, source="pubmed"):
            record = real(article, source)
            if record.source_id == "39000003":
                raise Broken(f"cannot read {record.source_id}")
            return record

        monkeypatch.setattr(module, "parse_article", parse_article)
    else:
        pubmed.fail = fault
    outcomes = []
    for worker in ("off", "on"):
        config = make(tmp_path / worker, worker, sources)
        db = ingest.open_db(config.database_path)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            report = crawl(config, db, http=HttpClient.from_config(config), only=["pubmed"])
        lines = [
            (r.name, r.levelname, re.sub(r"\d+\.\ds\)", "…s)", r.getMessage()))  # the run's seconds differ
            for r in caplog.records
            if r.name.startswith("crawler")
        ]
        outcomes.append((report_of(report), lines, dump(db), store.load_source_state(db, "pubmed")["watermark"]))
        db.close()
    assert outcomes[1][0] == outcomes[0][0]
    assert outcomes[1][1] == outcomes[0][1]
    assert outcomes[1][2] == outcomes[0][2]
    ((_, status, counts, _, error, *_),) = outcomes[0][0]
    assert status == "failed" and counts["new"] == 2, error  # the first batch is stored ...
    assert outcomes[0][3] is None and outcomes[1][3] is None  # ... and the watermark held
    if fault == "parser bug":
        assert "unexpected Broken: cannot read 39000003" in error


def test_an_interrupt_in_the_writer_rolls_back_like_one_process_and_reaps_the_worker(tmp_path, world):
    """KeyboardInterrupt (a second SIGINT) while the writer works: the batch in progress is rolled back,
    the worker is killed and reaped, the stored rows are those of one process."""
    pubmed, sources = world
    outcomes = []
    for worker in ("off", "on"):
        config = make(tmp_path / worker, worker, sources)
        db = ingest.open_db(config.database_path)

        def progress(name, counts):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            crawl(config, db, http=HttpClient.from_config(config), only=["pubmed"], progress=progress)
        assert not [p for p in mp.active_children() if p.name.startswith("litmon-fetch")]
        outcomes.append(dump(db))
        db.close()
    assert outcomes[1] == outcomes[0]
    assert len(outcomes[0]["records"]) == 2


def test_the_worker_forwards_its_log_lines_and_pauses_to_the_writing_process(tmp_path, world, caplog):
    """A warning the source logs in the worker reaches this process's handlers; an injected sleep sees
    every pause the worker's client took (NCBI's spacing without a key)."""
    pubmed, sources = world
    config = make(tmp_path / "w", "on", sources.replace("min_interval = 0\n", "", 1))
    db = ingest.open_db(config.database_path)
    pauses: list[float] = []
    http = HttpClient("tester@example.org", default_min_interval=0, sleep=pauses.append)
    with caplog.at_level(logging.INFO):
        report = crawl(config, db, http=http, only=["pubmed"])
    db.close()
    assert report.sources[0].status == "ok" and report.sources[0].counts["new"] == 3
    assert report.sources[0].requests == 3 and http.request_count == 3  # esearch, efetch ×2: counted here
    assert pauses == [0.34, 0.34]  # 3 requests per second without a key: a pause before each but the first
    assert any(h.startswith("127.0.0.1:") for h in http._last_request)  # the next source's spacing knows
    assert any(r.name == "crawler.pipeline" and "[pubmed] ok: 3 fetched" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mode", ["on", "off"])
def test_the_garbage_collector_is_tuned_for_a_source_s_batches_only_while_they_are_read(tmp_path, world, monkeypatch, mode):
    """With a worker, the objects both processes hold when it starts are left out of full collections while it runs
    (gc.freeze, Python's advice before a fork), and the youngest generation is collected less often; without one
    (``fetch_worker = "off"``), the crawling process tunes its collector the same way for the source's batches.
    Both are undone when the source ends, however it ends: a long-running service collects as before."""
    pubmed, sources = world
    config = make(tmp_path / mode, mode, sources)
    db = ingest.open_db(config.database_path)
    frozen_before, threshold_before = gc.get_freeze_count(), gc.get_threshold()
    frozen_while: list[int] = []
    threshold_while: set[tuple] = set()
    real_save = ingest.save_batch

    def save_batch(*args, **kwargs):
        frozen_while.append(gc.get_freeze_count())
        threshold_while.add(gc.get_threshold())
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ingest, "save_batch", save_batch)
    report = crawl(config, db, http=HttpClient.from_config(config), only=["pubmed"])
    assert report.sources[0].status == "ok" and report.sources[0].counts["new"] == 3
    assert frozen_while and min(frozen_while) > frozen_before + 1000
    assert threshold_while == {(fetch_worker.GC_THRESHOLD, *threshold_before[1:])}
    assert gc.get_freeze_count() == frozen_before and gc.get_threshold() == threshold_before
    monkeypatch.setattr(ingest, "save_batch", lambda *args, **kwargs: 1 / 0)  # a source that ends in an error
    report = crawl(config, db, http=HttpClient.from_config(config), only=["pubmed"], since=dt.date(2024, 1, 1))
    db.close()
    assert report.sources[0].status == "failed"
    assert gc.get_freeze_count() == frozen_before and gc.get_threshold() == threshold_before


def test_a_worker_that_cannot_start_leaves_the_crawl_to_this_process(tmp_path, world, monkeypatch, caplog):
    """fork() failing (EAGAIN: the user's process limit; ENOMEM) is not a failed source: the same crawl runs
    here, stores what one process stores, and the log says why and what to check; no pipe is left open."""
    alone_reports, alone_digests, alone_rows = run_weeks(tmp_path, "alone", "off", world)

    def no_process(self):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(mp.get_context("fork").Process, "start", no_process)
    open_before, frozen_before, threshold_before = len(os.listdir("/proc/self/fd")), gc.get_freeze_count(), gc.get_threshold()
    with caplog.at_level(logging.WARNING):
        worker_reports, worker_digests, worker_rows = run_weeks(tmp_path, "worker", "on", world)

    assert worker_reports == alone_reports
    assert worker_digests == alone_digests
    assert worker_rows == alone_rows
    warned = [r.getMessage() for r in caplog.records if "could not start the fetch worker" in r.getMessage()]
    assert any(m.startswith("[pubmed] could not start the fetch worker (") and "fetch_worker" in m for m in warned), warned
    assert len(os.listdir("/proc/self/fd")) <= open_before
    assert gc.get_freeze_count() == frozen_before and gc.get_threshold() == threshold_before


def test_the_worker_is_used_only_where_it_pays():
    import datetime as dt

    year = (dt.date(2025, 1, 1), dt.date(2026, 1, 1))
    week = (dt.date(2025, 1, 1), dt.date(2025, 1, 11))
    assert fetch_worker.wanted("auto", "pubmed", year)
    assert not fetch_worker.wanted("auto", "pubmed", week)  # a weekly run: one batch or two
    assert not fetch_worker.wanted("auto", "feed", year)  # one document
    assert fetch_worker.wanted("on", "feed", week)
    assert not fetch_worker.wanted("off", "pubmed", year)


def test_one_core_crawls_in_one_process(monkeypatch):
    import datetime as dt

    monkeypatch.setattr(fetch_worker, "cores", lambda: 1)
    assert not fetch_worker.wanted("on", "pubmed", (dt.date(2020, 1, 1), dt.date(2026, 1, 1)))


#: A run's start in a fresh litmon process, stopped at the worker's fork: prints the modules only the writing process
#: needs after the fork (the digest's, dedup's rapidfuzz, the store's sqlite_utils) that it has imported by then.
START_UNTIL_THE_FORK = """
import json, os, sys
from crawler import cli, fetch_worker
fetch_worker.cores = lambda: 2  # (a worker on any test machine)
def at_fork():
    wanted = ("crawler.digest", "jinja2", "rapidfuzz", "sqlite_utils")
    sys.stdout.write(json.dumps([name for name in wanted if name in sys.modules]))
    sys.stdout.flush()
    os._exit(0)
os.register_at_fork(before=at_fork)
cli.main(["--config", sys.argv[1], "-q", "run"])
"""


def test_a_run_imports_the_digest_after_its_crawl_not_before_the_worker_s_fork(tmp_path):
    """Until the worker's fork the writing process runs alone: `litmon run` imports the digest's modules (jinja2 among
    them), which the worker never needs, after its crawl, rapidfuzz where dedup first compares titles, and sqlite_utils
    where the database is opened (the first source's worker is forked before)."""
    from tests.helpers.cli import closed_port, run_script

    pubmed = f'[sources.pubmed]\nenabled = true\nbase_url = "http://127.0.0.1:{closed_port()}/"\nquery = "ketamine"\n'
    config = write_config(tmp_path, shipped_vocabulary() + pubmed)
    result = run_script(START_UNTIL_THE_FORK, config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []  # (no output: no fork)


# --------------------------------------------------------------------------- signals and a killed writer: real processes


def processes_marked(mark: str) -> list[int]:
    """The PIDs of live processes whose environment holds ``mark`` (a litmon run and its worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if mark.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "State:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find processes")


def start_marked(tmp_path, config: str, *args):
    mark = f"LITMON_TEST_MARK={uuid.uuid4().hex}"
    env = litmon_env(LITMON_TEST_MARK=mark.split("=", 1)[1])
    log = tmp_path / "run.log"
    return start_litmon("--config", config, *args, cwd=tmp_path, env=env, log_file=log), mark, log


def with_worker(text: str) -> str:
    return text.replace("[crawl]\n", '[crawl]\nfetch_worker = "on"\n', 1)


@needs_proc
@pytest.mark.parametrize("how", ["sigterm", "sigkill", "sigterm to the worker", "sigkill to the worker"])
def test_a_stopped_or_killed_run_leaves_no_worker_behind(how, tmp_path, httpserver):
    """Signals to the writer, or to the worker alone, while the worker waits on the network: the run ends
    as one litmon process ends on that signal, and no process is left."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("litmon uses no worker on one core")
    server = PubMedServer(httpserver)
    httpserver.expect_request("/journal.rss").respond_with_data(FEED, content_type="application/rss+xml")
    feed = f'[[feeds]]\nname = "journal"\nurl = "{httpserver.url_for("/journal.rss")}"\n'
    config_path = write_config(tmp_path, pubmed_section(httpserver) + feed)
    Path(config_path).write_text(with_worker(Path(config_path).read_text()))
    server.hold()
    run, mark, log = start_marked(tmp_path, config_path, "-v", "crawl")
    try:
        wait_for(server.entered.is_set, what="the worker to reach the server")
        processes = processes_marked(mark)
        assert len(processes) == 2 and run.pid in processes  # the writer and its worker
        assert "fetching in worker process" in log_text(log)
        (worker,) = [pid for pid in processes if pid != run.pid]
        os.kill(worker if "worker" in how else run.pid, signal.SIGTERM if "sigterm" in how else signal.SIGKILL)
        if how == "sigkill to the worker":
            server.release()  # the one-threaded server may answer the feed next
        run.communicate(timeout=30)
    finally:
        server.release()
    err = log_text(log)
    wait_for(lambda: not processes_marked(mark), timeout=10, what="no litmon process to be left")
    db = tmp_path / "litmon.db"
    if how == "sigkill":
        assert run.returncode == -signal.SIGKILL
        result = litmon("--config", config_path, "crawl", cwd=tmp_path)  # the lock is free, the run recovers
        assert result.returncode == 0, result.stderr
        assert "recovered a stale lock" in result.stderr
        assert query(db, "SELECT COUNT(*) FROM records WHERE source = 'pubmed'") == [(3,)]
        return
    assert run.returncode == 1, err
    assert query(db, "SELECT COUNT(*) FROM source_states WHERE source = 'pubmed' AND watermark IS NOT NULL") == [(0,)]
    if how == "sigkill to the worker":  # the source fails (as if its fetch had crashed); the others run
        assert "[pubmed] failed: the fetch worker process ended unexpectedly (killed by SIGKILL)" in err
        assert query(db, "SELECT source, status FROM source_runs ORDER BY id") == [("pubmed", "failed"), ("feed:journal", "ok")]
        return
    if how == "sigterm":
        assert "SIGTERM received: stopping now" in err
    else:
        assert "SIGTERM received by the fetch worker of pubmed: stopping the run" in err
    assert "[pubmed] interrupted: 0 fetched, 0 new" in err
    assert "not started: stop requested" in err  # the feed, as when one litmon process is stopped
    assert query(db, "SELECT source, status FROM source_runs") == [("pubmed", "interrupted")]


@needs_proc
def test_a_writer_killed_inside_a_batch_takes_its_worker_with_it(tmp_path, httpserver):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("litmon uses no worker on one core")
    PubMedServer(httpserver)
    config_path = write_config(tmp_path, pubmed_section(httpserver))
    Path(config_path).write_text(with_worker(Path(config_path).read_text()))
    mark = uuid.uuid4().hex
    killed = litmon(
        "--config", config_path, "crawl", cwd=tmp_path, env=litmon_env(LITMON_FAILPOINT="batch:2", LITMON_TEST_MARK=mark)
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    wait_for(lambda: not processes_marked(mark), timeout=10, what="the worker to die with its writer")
    assert query(tmp_path / "litmon.db", "SELECT COUNT(*) FROM records") == [(2,)]  # batch 1 committed, batch 2 rolled back


# --------------------------------------------------------------------------- a batch as plain values (ship_batch)


class Text(str):
    """A text subclass, as lxml's smart strings are."""


def hostile_records() -> list[Record]:
    """Titles and values a hostile or broken answer carries: markup, controls, bidi marks, astral characters,
    a huge title, a text subclass (what lxml returns), a record lacking its title, nested extra values."""
    marked_up = pubmed_article("41000201", "<script>alert('x')</script> Ketamine &amp; depression\x00\x1b[31m", "2025-03-02")
    bidi = pubmed_article("41000202", "Esketamine \u202eevisserped\u202c \U0001f9e0 nasal spray \ud7ff", "2025-03-02")
    huge = pubmed_article("41000203", "ketamine " * 4000, "2025-03-02")
    huge.abstract = "Depression. " * 2000
    smart = pubmed_article("41000204", Text("Ketamine for depression: a smart string"), "2025-03-02")
    smart.extra = {"issn": "0165-0327", "nested": {"a": [1, 2.5, None, True], "b": ("x", "y")}, "volume": 7}
    lacking = pubmed_article("41000201", "(untitled)", "2025-03-02")
    lacking.missing = ["title"]
    return [marked_up, bidi, huge, smart, lacking]


def batches_to_ship() -> dict[str, list[list[Record]]]:
    """Every source's wire format (trial registrations, notices, preprints), the dedup corpus in two arrival
    orders (merges, retractions), records whose preparation must be redone (tests/test_ingest.py), hostile ones."""
    from tests.helpers import dedup_corpus
    from tests.helpers.classify_corpus import parse_wire
    from tests.helpers.records import edge_batches

    by_source: dict[str, list[Record]] = {}
    for (kind, _), record in parse_wire().items():
        by_source.setdefault(kind, []).append(record)
    cases = {"every source": list(by_source.values()), "edge": edge_batches(), "hostile": [hostile_records()]}
    for order in dedup_corpus.ORDERS[:2]:
        cases[f"dedup corpus {order}"] = dedup_corpus.ordered_batches(order)
    return cases


def through_the_pipe(batch: list[Record], vocabulary) -> fetch_worker.Batch:
    """``batch`` as the worker prepares, classifies (two records of three) and ships it in one pickle, and as the
    writer receives it."""
    copy = pickle.loads(pickle.dumps(batch))  # the worker's own records
    dicts, prepared = fetch_worker._prepare(copy)
    classified = [fetch_worker._classify_alone(d, vocabulary, clock.today()) if i % 3 else None for i, d in enumerate(dicts)]
    shipped, values = pickle.loads(pickle.dumps(fetch_worker.ship_batch(copy, prepared, classified)))
    return fetch_worker.receive_batch(shipped, values)


def test_a_shipped_batch_is_received_as_the_worker_prepared_it(make_config):
    """Records, prepared values and classifications come out of the pipe equal to what they were, as objects of
    their own types (dataclass equality compares them); a record lacking a field travels whole, without prepared values."""
    vocabulary = classify.build_vocabulary(make_config(shipped_vocabulary()).topic)
    rebuilt = 0
    for name, batches in batches_to_ship().items():
        for batch in batches:
            records, ahead, prepared = through_the_pipe(batch, vocabulary)
            assert records == batch, name
            assert [r.to_dict() for r in records] == [r.to_dict() for r in batch]
            alone = {i: fetch_worker._classify_alone(r, vocabulary, clock.today()) for i, r in enumerate(batch) if i % 3}
            assert ahead == {i: c for i, c in alone.items() if c is not None}  # (None: the classification failed)
            assert all(type(c) is classify.Classification for c in ahead.values())
            for record, ready in zip(batch, prepared, strict=True):
                if record.missing:
                    assert ready is None
                else:
                    expected = ingest.prepare_record(record)
                    assert (*ready[:2], written(ready)) == expected, (name, record.source_id)
                    assert exactly(written(ready)) == exactly(expected[2]), (name, record.source_id)  # key order too
                    assert ready[2] is not None and type(ready[1]) is type(ingest.prepare_record(record)[1])
                    rebuilt += 1
            assert [exactly(r) for r in records] == [exactly(r) for r in batch], name
    assert rebuilt > 500


def written(ready: ingest.Prepared) -> dict:
    """A received record's ``to_dict()`` as the writer reads it (:class:`crawler.store.WrittenRecords`)."""
    return ready[2] if type(ready[2]) is dict else ready[2].to_dict()


def exactly(value) -> object:
    """``value`` with the type of everything in it and the order of every dict's keys (what ``==`` does not compare)."""
    if dataclasses.is_dataclass(value):  # (its type once its fields are read: a received record's is then Record)
        fields = [(f.name, exactly(getattr(value, f.name))) for f in dataclasses.fields(value)]
        return (type(value), fields)
    kind = type(value)
    if isinstance(value, dict):
        return (kind, [(exactly(k), exactly(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (kind, [exactly(v) for v in value])
    return (kind, repr(value))


def not_plain_in_json() -> list[Record]:
    """Records whose ``to_dict()`` JSON would not give back as it was, and that marshal does not take (a text subclass
    in a list, a section in a dict subclass) or gives back exactly (an author's field or a section's value that is
    not a text, a section's keys in another order, a lone surrogate, None in a list of texts); and values JSON would
    not give back (NaN, integers beyond 64 bits, a date, a tuple) in the fields sent as they are (``extra``,
    ``trial``)."""
    made = [pubmed_article(str(41000300 + i), f"Ketamine for depression {i}", "2025-03-02") for i in range(9)]
    made[0].keywords = ["ketamine", Text("esketamine")]
    made[1].structured_authors[0].given = 7  # type: ignore[assignment]
    made[2].abstract_sections = [{"text": "Ketamine helped.", "label": "Results", "category": "RESULTS"}]
    made[3].abstract_sections = [{"label": "Results", "category": "RESULTS", "text": "Ketamine helped.", "n": 12}]
    made[4].abstract_sections = [collections.OrderedDict(label="Results", category="RESULTS", text="Ketamine helped.")]
    made[5].abstract_sections = [{"label": "Results \ud800", "category": None, "text": "Ketamine helped."}]
    made[6].extra = {"nan": float("nan"), "big": 2**70, "tuple": (1, "x"), "date": dt.date(2025, 3, 2)}
    made[7].trial = {"overall_status": "RECRUITING", "start_date": dt.date(2025, 3, 2), "enrollment": 10**30}
    made[8].publication_types = ["Journal Article", None]  # type: ignore[list-item]
    return made


def test_a_record_whose_dict_json_would_not_give_back_arrives_as_it_was(make_config):
    """The writer makes a received record's lists and dict from its row and its lists marshalled (most records): a
    record with a value marshal refuses is sent with its dict, and every record arrives equal, of the same types and
    key order, as a record and as written."""
    vocabulary = classify.build_vocabulary(make_config(shipped_vocabulary()).topic)
    batch = not_plain_in_json()
    copy = pickle.loads(pickle.dumps(batch))
    shipped, _ = fetch_worker.ship_batch(copy, fetch_worker._prepare(copy)[1], [])
    sent_whole = [type(item[0]) is dict for item in shipped]
    assert sent_whole == [True, False, False, False, True, False, False, False, False]
    records, _, prepared = through_the_pipe(batch, vocabulary)
    for record, ready in zip(batch, prepared, strict=True):
        expected = ingest.prepare_record(record)
        assert exactly(written(ready)) == exactly(expected[2]), record.source_id
        assert (*ready[:2], written(ready)) == expected or record.source_id == "41000306"  # NaN is not equal to itself
    assert [exactly(r) for r in records] == [exactly(r) for r in batch]


def test_a_received_record_makes_its_lists_from_its_row_only_when_read(make_config):
    """A record received with its row only holds the fields the save reads until another is read: then it makes
    them, and its dict, once (the same dict the writer's classification reads)."""
    vocabulary = classify.build_vocabulary(make_config(shipped_vocabulary()).topic)
    batch = [pubmed_article("41000401", "Ketamine for depression", "2025-03-02", doi="10.1000/k.1")]
    batch[0].keywords = ["ketamine"]
    batch[0].add_link("comment_in", "pmid", "41000402", "a note")
    records, _, prepared = through_the_pipe(batch, vocabulary)
    record = records[0]
    assert "keywords" not in vars(record) and "structured_authors" not in vars(record) and isinstance(record, Record)
    assert record.identifiers == batch[0].identifiers and record.links == batch[0].links and record.missing == []
    data = prepared[0][2].to_dict()
    assert prepared[0][2].to_dict() is data and data == batch[0].to_dict()
    assert record.keywords == ["ketamine"] and record.keywords is data["keywords"]
    assert record.structured_authors == batch[0].structured_authors and record.abstract_sections == []
    assert record == batch[0] and "_written" not in vars(record) and type(record) is Record  # a plain Record now
    assert not hasattr(Record, "__getattr__")  # (a plain Record's attribute reads stay specialised by CPython)
    with pytest.raises(AttributeError):
        record.nothing  # noqa: B018


def test_rows_written_from_a_shipped_batch_equal_the_rows_written_in_one_process(tmp_path, make_config):
    """Every row of every table, saving each batch in one process and as the writer receives it from the worker."""
    config = make_config(shipped_vocabulary())
    vocabulary = classify.build_vocabulary(config.topic)
    for name, batches in batches_to_ship().items():
        alone, received = store.open_db(tmp_path / f"{name}-1.db"), store.open_db(tmp_path / f"{name}-2.db")
        used = {"prepared": 0, "ahead": 0, "whole": 0}
        for batch in batches:
            ingest.save_batch(alone, pickle.loads(pickle.dumps(batch)), "2026-11-20 06:00:00", config=config)
            records, ahead, prepared = through_the_pipe(batch, vocabulary)
            ingest.save_batch(received, records, "2026-11-20 06:00:00", config=config, ahead=ahead, prepared=prepared)
            used["prepared"] += sum(1 for p in prepared if p is not None)
            used["whole"] += sum(1 for p in prepared if p is None)
            used["ahead"] += len(ahead or {})
        assert used["prepared"] and used["ahead"], name
        before, after = dump(alone), dump(received)
        assert after.keys() == before.keys()
        for table in before:
            assert after[table] == before[table], (name, table)
        assert before["records"] and before["work_relevance"]
        if name == "edge":
            assert used["whole"] == 1  # the record lacking its title
        alone.close()
        received.close()


# --------------------------------------------------------------------------- the first source forked before opening


def run_weeks_forked_first(tmp_path, name: str, world, monkeypatch, change_state=None):
    """:func:`run_weeks` as ``litmon crawl`` runs it: the first source's worker forked before the database is opened
    (:class:`crawler.pipeline.FirstSource`), each week. Returns the reports, digests and rows, and the fetch workers
    alive when the database was opened each week. ``change_state(db)``: run after opening, before the crawl."""
    pubmed, sources = world
    pubmed.week, upstream.WEEK[0] = 1, 1
    config = make(tmp_path / name, "on", sources)
    at_open: list[list[str]] = []
    real_open = ingest.open_db

    def open_db(*args, **kwargs):
        at_open.append([process.name for process in mp.active_children()])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(ingest, "open_db", open_db)
    reports, digests = [], []
    try:
        for week in (1, 2):
            if week == 2:
                clock.advance(days=7)
                pubmed.week, upstream.WEEK[0] = 2, 2
            first = FirstSource(config)
            with first.running(None):
                db = ingest.open_db(config.database_path)
                try:
                    if change_state is not None and week == 2:
                        change_state(db)
                    reports.append(report_of(crawl(config, db, first=first)))
                    digests.append(build_digest(db, config).text)
                    rows = dump(db)
                finally:
                    db.close()
            assert not mp.active_children()  # every worker reaped
        return reports, digests, rows, at_open
    finally:
        clock.pin(PINNED_NOW)


def test_the_first_source_forked_before_the_database_is_opened_stores_what_one_process_stores(tmp_path, world, monkeypatch):
    """A backfill of a fresh file (no file: a first run's state) and the week after (the state read read-only from
    the current file): the first source's worker runs while the database is opened; every table, report and digest
    is that of one process."""
    alone_reports, alone_digests, alone_rows = run_weeks(tmp_path, "alone", "off", world)
    reports, digests, rows_, at_open = run_weeks_forked_first(tmp_path, "first", world, monkeypatch)
    assert at_open == [["litmon-fetch-pubmed"], ["litmon-fetch-pubmed"]]
    assert reports == alone_reports
    assert digests == alone_digests
    assert rows_ == alone_rows


def test_a_state_changed_when_the_database_is_opened_stops_the_worker_forked_first(tmp_path, world, monkeypatch):
    """The state the first source reads from the opened database is not the one its worker was forked with: that
    worker is stopped and reaped, and the source crawls with a worker of its own from the state read, as without."""
    moved = "2024-06-01"

    def change_state(db):
        saved = store.load_source_state(db, "pubmed")
        store.save_source_success(db, "pubmed", moved, saved["state"])

    alone_reports, alone_digests, alone_rows = run_weeks(tmp_path, "alone", "off", world, change_state)
    reports, digests, rows_, at_open = run_weeks_forked_first(tmp_path, "first", world, monkeypatch, change_state)
    assert at_open == [["litmon-fetch-pubmed"], ["litmon-fetch-pubmed"]]
    assert reports == alone_reports
    assert digests == alone_digests
    assert rows_ == alone_rows
    windows = [r for r in alone_rows["source_runs"] if "pubmed" in r]
    assert any("2024-05-" in str(r) for r in windows), windows  # the second week's window starts from the moved watermark


def test_the_state_is_read_before_opening_only_from_a_file_of_the_current_schema(tmp_path):
    """:func:`crawler.store.peek_source_state`: a first run's state without a file (none is made); the stored state
    of a current file, read without writing it; nothing (None: the caller reads it once the file is opened and
    migrated) from a file with a migration pending, one that is no database, or one another program locks."""
    import sqlite_utils

    path = tmp_path / "litmon.db"
    assert store.peek_source_state(path, "pubmed") == {"watermark": None, "state": {}, "consecutive_failures": 0}
    assert not path.exists()
    db = ingest.open_db(path)
    store.save_source_success(db, "pubmed", "2026-11-01", {"pass": "mdat"})
    assert store.peek_source_state(path, "pubmed") == store.load_source_state(db, "pubmed")
    assert store.peek_source_state(path, "europepmc") == store.load_source_state(db, "europepmc")
    db.close()
    before = path.read_bytes()
    assert store.peek_source_state(path, "pubmed")["state"] == {"pass": "mdat"}
    assert path.read_bytes() == before

    old = tmp_path / "old.db"
    store.migrations.apply(sqlite_utils.Database(old), stop_before="m011_page_item_ids")
    sqlite3.connect(old).execute(
        "INSERT INTO source_states (source, state, updated_at) VALUES ('pubmed', '{}', 'x')"
    ).connection.commit()
    assert store.peek_source_state(old, "pubmed") is None
    (tmp_path / "junk.db").write_bytes(b"not a database" * 512)
    assert store.peek_source_state(tmp_path / "junk.db", "pubmed") is None
    rollback = tmp_path / "rollback.db"
    db = ingest.open_db(rollback)
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    holder = sqlite3.connect(rollback, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert store.peek_source_state(rollback, "pubmed") is None  # (without waiting)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


#: ``litmon crawl`` in a fresh process that says on stderr when it forks (the fetch worker)
CRAWL_SAYING_FORKS = """
import os, sys
from crawler import cli, fetch_worker
fetch_worker.cores = lambda: 2  # (a worker on any test machine)
os.register_at_fork(before=lambda: (sys.stderr.write("FORKED\\n"), sys.stderr.flush()))
cli.main(["--config", sys.argv[1], "crawl", "--source", "pubmed"])
"""


def crawl_saying_forks(tmp_path, config: str, mark: str):
    import subprocess
    import sys

    from tests.conftest import skip_subprocess_when_travelling

    skip_subprocess_when_travelling()
    return subprocess.run(
        [sys.executable, "-c", CRAWL_SAYING_FORKS, config],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=litmon_env(LITMON_TEST_MARK=mark),
    )


@needs_proc
def test_a_database_that_cannot_be_written_after_the_worker_is_forked_stops_it(tmp_path, httpserver):
    """The file reads (the state is read before opening) but cannot be written: another program holds its write lock
    past ``[database] busy_timeout``. The worker, forked first, is stopped and reaped; the run fails with the error,
    exit code and files of a run that forks nothing (``fetch_worker = "off"``); the database is as it was."""
    PubMedServer(httpserver)
    results = {}
    for worker in ("off", "on"):
        folder = tmp_path / worker
        folder.mkdir()
        config_path = write_config(folder, pubmed_section(httpserver))
        text = Path(config_path).read_text().replace("[crawl]\n", f'[crawl]\nfetch_worker = "{worker}"\n', 1)
        Path(config_path).write_text(text.replace("[database]\n", "[database]\nbusy_timeout = 0.2\n", 1))
        ingest.open_db(folder / "litmon.db").close()  # a current file
        before = dump(ingest.open_db(folder / "litmon.db"))
        holder = sqlite3.connect(folder / "litmon.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program writing
        mark = uuid.uuid4().hex
        try:
            result = crawl_saying_forks(folder, config_path, mark)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_for(lambda mark=mark: not processes_marked(mark), timeout=10, what="no litmon process to be left")
        after = dump(ingest.open_db(folder / "litmon.db"))
        results[worker] = result
        assert after == before
        assert result.returncode == 1, result.stderr
        assert "database is locked" in result.stderr or "locked" in result.stderr
    assert "FORKED" not in results["off"].stderr
    assert "FORKED" in results["on"].stderr  # the worker was forked before the database was opened
    assert results["on"].stderr.replace("FORKED\n", "").replace(str(tmp_path / "on"), "X") == results["off"].stderr.replace(
        str(tmp_path / "off"), "X"
    )


@needs_proc
def test_a_run_that_finds_the_lock_held_forks_nothing(tmp_path, httpserver):
    """Another run holds the run lock: nothing is forked, the same message and exit code 3 as ever."""
    from crawler.lock import RunLock, lock_path

    PubMedServer(httpserver)
    config_path = write_config(tmp_path, pubmed_section(httpserver))
    Path(config_path).write_text(with_worker(Path(config_path).read_text()))
    with RunLock(lock_path(tmp_path / "litmon.db"), "crawl"):
        result = crawl_saying_forks(tmp_path, config_path, uuid.uuid4().hex)
    assert result.returncode == 3, result.stderr
    assert "another litmon run is in progress" in result.stderr
    assert "FORKED" not in result.stderr
    assert not (tmp_path / "litmon.db").exists()
