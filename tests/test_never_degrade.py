"""A source answer that lacks a field its parser treats as required never degrades stored data (#16):
the record keeps its stored value, a warning names it, and the work shows the best title any of its
sources has. One regression test per required field (identity fields are in test_skipped.py)."""

from __future__ import annotations

import copy
import json
import logging
import re

import pytest

from crawler import ingest
from crawler.records import Record
from crawler.sources import clinicaltrials as ct
from crawler.sources import crossref, isrctn, pubmed
from tests.conftest import fixture_bytes, rows


def _pubmed_without_title(body: bytes) -> bytes:
    return re.sub(rb"<ArticleTitle>.*?</ArticleTitle>", b"", body, count=0, flags=re.S)


def _crossref_without_title(body: bytes) -> bytes:
    data = json.loads(body)
    for item in data["message"]["items"]:
        item.pop("title", None)
        item.pop("subtitle", None)
    return json.dumps(data).encode()


def _ctgov_without_title(body: bytes) -> bytes:
    data = json.loads(body)
    for study in data["studies"]:
        ident = study["protocolSection"]["identificationModule"]
        ident.pop("briefTitle", None)
        ident.pop("officialTitle", None)
    return json.dumps(data).encode()


def _isrctn_without_title(body: bytes) -> bytes:
    return re.sub(rb"<(\w+:)?(title|scientificTitle)>.*?</(\w+:)?(title|scientificTitle)>", b"", body, flags=re.S)


def stored_titles(db):
    return [(r["source_id"], r["title"], json.loads(r["data"])["title"]) for r in rows(db, "SELECT * FROM records ORDER BY id")]


CASES = {
    "pubmed ArticleTitle": (lambda b: pubmed.parse_efetch(b), ("pubmed", "efetch_batch1.xml"), _pubmed_without_title),
    "crossref title": (lambda b: crossref.parse_works(b), ("crossref", "works_created_page1.json"), _crossref_without_title),
    "clinicaltrials briefTitle and officialTitle": (
        lambda b: ct.parse_studies(b).records,
        ("clinicaltrials", "studies_page1.json"),
        _ctgov_without_title,
    ),
    "isrctn title and scientificTitle": (
        lambda b: isrctn.parse_trials(b),
        ("isrctn", "search_page1.xml"),
        _isrctn_without_title,
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_an_answer_without_a_required_title_keeps_the_stored_record_and_work(db, case, caplog):
    parse, (source, name), strip = CASES[case]
    body = fixture_bytes(source, name)
    good = parse(body)
    assert good and all(r.title for r in good)
    ingest.save_batch(db, good, now="2026-11-20 06:00:00")
    before_records = stored_titles(db)
    before_works = rows(db, "SELECT id, title FROM works ORDER BY id")

    bad = parse(strip(body))
    assert [r.source_id for r in bad] == [r.source_id for r in good]
    assert all(r.missing == ["title"] for r in bad)
    with caplog.at_level(logging.WARNING, logger="crawler.store"):
        counts = ingest.save_batch(db, bad, now="2026-11-23 06:00:00")

    if source not in ("clinicaltrials", "isrctn"):  # (registries keep the other title apart in extra: that did change)
        assert counts["updated"] == 0 and counts["unchanged"] == len(good)  # not "1 updated"
    assert stored_titles(db) == before_records
    assert rows(db, "SELECT id, title FROM works ORDER BY id") == before_works
    for record in good:
        assert f"[{record.source}] {record.source_id}: the answer lacks title; kept the stored value" in caplog.text


def test_a_work_takes_its_title_from_the_best_source_that_has_one(db):
    untitled = pubmed.parse_efetch(_pubmed_without_title(fixture_bytes("pubmed", "efetch_batch1.xml")))[0]
    pmid = untitled.source_id
    other = Record(source="europepmc", source_id=f"MED/{pmid}", record_type="article", title="The real title from Europe PMC")
    other.add_id("pmid", pmid)
    ingest.save_batch(db, [other], now="2026-11-20 06:00:00")
    ingest.save_batch(db, [copy.deepcopy(untitled)], now="2026-11-21 06:00:00")  # PubMed ranks first, but has no title

    assert rows(db, "SELECT title FROM works WHERE merged_into IS NULL") == [{"title": "The real title from Europe PMC"}]


def test_a_work_no_source_titles_is_shown_untitled(db):
    untitled = pubmed.parse_efetch(_pubmed_without_title(fixture_bytes("pubmed", "efetch_batch1.xml")))[0]
    ingest.save_batch(db, [untitled], now="2026-11-20 06:00:00")
    assert rows(db, "SELECT title FROM works WHERE merged_into IS NULL") == [{"title": "(untitled)"}]
