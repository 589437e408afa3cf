"""Structured abstracts (issue #13, item 1): sections from every source's wire format, and the snippet.

Sections are read by the real parsers from the wire-format fixtures (PubMed ``AbstractText@Label`` and
``@NlmCategory``, Europe PMC ``<h4>`` labels, Crossref JATS ``<jats:sec>`` titles, ClinicalTrials.gov's
brief summary); the snippet is the conclusions (or results) section, else the last finding sentences,
at most 300 characters, never with a section label inside.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler import abstracts, store
from crawler.abstracts import SNIPPET_CHARS, category_of, make_snippet, sections_from_text
from crawler.sources import clinicaltrials, crossref, europepmc, pubmed

FIXTURES = Path(__file__).parent / "fixtures"


def labels(sections):
    return [(s["label"], s["category"]) for s in sections]


def test_pubmed_sections_keep_label_and_nlm_category():
    records = {r.source_id: r for r in pubmed.parse_efetch((FIXTURES / "pubmed" / "efetch_batch1.xml").read_bytes())}
    record = records["39000001"]
    assert labels(record.abstract_sections) == [("IMPORTANCE", "BACKGROUND"), ("DESIGN", "METHODS"), ("RESULTS", "RESULTS")]
    assert record.abstract.startswith("IMPORTANCE: ")  # the flattened abstract is unchanged
    assert make_snippet(record.abstract_sections) == "Response rate 55.4% with ketamine vs 41.2% with ECT; CO2 levels unchanged."


def test_pubmed_unassigned_category_is_read_from_the_label():
    xml = b"""<?xml version="1.0"?><PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
    <PMID Version="1">1</PMID><Article><Journal><Title>J</Title></Journal><ArticleTitle>Ketamine</ArticleTitle>
    <Abstract><AbstractText Label="CONCLUSIONS AND RELEVANCE" NlmCategory="UNASSIGNED">Ketamine helped.</AbstractText>
    <AbstractText Label="TRIAL REGISTRATION" NlmCategory="UNASSIGNED">NCT01234567</AbstractText></Abstract>
    </Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"""
    record = pubmed.parse_efetch(xml)[0]
    assert labels(record.abstract_sections) == [("CONCLUSIONS AND RELEVANCE", "CONCLUSIONS"), ("TRIAL REGISTRATION", None)]
    assert make_snippet(record.abstract_sections) == "Ketamine helped."


def test_europepmc_h4_labels_become_sections():
    records = {r.source_id: r for r in europepmc.parse_search((FIXTURES / "europepmc" / "core_page1.json").read_bytes())}
    sections = records["MED/37792613"].to_dict()["abstract_sections"]
    assert [c for _, c in labels(sections)] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert make_snippet(sections) == "Esketamine nasal spray led to remission more often than quetiapine at week 8."


def test_crossref_jats_sections():
    data = json.loads((FIXTURES / "crossref" / "works_created_page1.json").read_text())
    records = {r.source_id: r for r in (crossref.parse_item(i) for i in data["message"]["items"]) if r}
    record = records["10.1176/appi.ajp.2019.19020172"]
    assert labels(record.abstract_sections) == [
        ("Objective", "OBJECTIVE"),
        ("Methods", "METHODS"),
        ("Conclusions", "CONCLUSIONS"),
    ]
    assert record.to_dict()["abstract_sections"] == record.abstract_sections
    snippet = make_snippet(record.abstract_sections)
    assert snippet.startswith("Esketamine plus a new antidepressant improved") and "Conclusions" not in snippet


def test_clinicaltrials_brief_summary_is_a_section():
    page = clinicaltrials.parse_studies((FIXTURES / "clinicaltrials" / "studies_page1.json").read_bytes())
    record = next(r for r in page.records if r.abstract)
    assert labels(record.abstract_sections) == [("Brief summary", "BACKGROUND")]
    assert record.abstract_sections[0]["text"] == " ".join(record.abstract.split())
    assert make_snippet(record.abstract_sections)


def test_sections_are_stored_with_the_record(db):
    records = pubmed.parse_efetch((FIXTURES / "pubmed" / "efetch_batch1.xml").read_bytes())
    store.save_records(db, records, now="2026-11-23 06:00:00")
    row = db.execute("SELECT data FROM records WHERE source_id = '39000001'").fetchone()
    assert [s["category"] for s in json.loads(row[0])["abstract_sections"]] == ["BACKGROUND", "METHODS", "RESULTS"]
    # queryable with SQLite's JSON functions
    found = db.execute(
        "SELECT json_extract(j.value, '$.text') FROM records, json_each(records.data, '$.abstract_sections') j "
        "WHERE source_id = '39000001' AND json_extract(j.value, '$.category') = 'RESULTS'"
    ).fetchone()
    assert found[0].startswith("Response rate 55.4%")


def test_snippet_prefers_conclusions_then_results_and_fits_300_characters():
    long_results = " ".join(f"Secondary outcome {i} improved by {i}% with ketamine." for i in range(30))
    sections = sections_from_text(
        "BACKGROUND: Depression is common.\n\nMETHODS: We randomised 80 adults.\n\n"
        f"RESULTS: {long_results}\n\nCONCLUSIONS: Ketamine was superior to midazolam at 24 hours."
    )
    assert make_snippet(sections) == "Ketamine was superior to midazolam at 24 hours."
    without_conclusion = [s for s in sections if s["category"] != "CONCLUSIONS"]
    snippet = make_snippet(without_conclusion)
    assert snippet.startswith("Secondary outcome 0 improved") and len(snippet) <= SNIPPET_CHARS and snippet.endswith(".")


def test_unlabelled_abstract_gives_its_last_finding_sentences():
    text = (
        "Ketamine is a rapid-acting antidepressant. Its effects in older adults are unclear. "
        "We treated 30 inpatients aged over 65 with six infusions. Remission occurred in 40% of patients. "
        "Blood pressure rose transiently. Larger trials are needed."
    )
    snippet = make_snippet(None, text)
    assert snippet == "Remission occurred in 40% of patients. Blood pressure rose transiently."


def test_no_section_label_inside_a_snippet():
    flattened = "Results: Response was 50%. CONCLUSIONS: Ketamine helped; METHODS: none. Limitations: small sample."
    snippet = make_snippet(None, flattened)
    for label in ("CONCLUSIONS:", "METHODS:", "Results:", "Limitations:"):
        assert label not in snippet
    very_long = "Conclusions: " + "ketamine " * 80 + "helped."
    snippet = make_snippet(None, very_long)
    assert len(snippet) <= SNIPPET_CHARS and snippet.endswith("…") and not snippet.startswith("Conclusions")


@pytest.mark.parametrize(
    "label, category",
    [
        ("Conclusions and Relevance", "CONCLUSIONS"),
        ("MAIN OUTCOMES AND MEASURES", "METHODS"),
        ("Aims", "OBJECTIVE"),
        ("Note", None),
    ],
)
def test_category_of_labels(label, category):
    assert category_of(label) == category


def test_flatten_round_trip():
    sections = [abstracts.section("Results", "A."), abstracts.section(None, "B.")]
    assert abstracts.flatten(sections) == "Results: A.\n\nB."


def test_digest_item_shows_the_finding_not_the_background(make_config, db):
    import datetime as dt

    from crawler.digest import run_digest
    from tests.helpers.classify_corpus import shipped_vocabulary

    config = make_config("[digest]\nfirst_digest_days = 3660\n" + shipped_vocabulary())
    records = pubmed.parse_efetch((FIXTURES / "pubmed" / "efetch_batch1.xml").read_bytes())
    store.save_records(db, records, now="2026-11-23 06:00:00")
    result = run_digest(config, db, now=dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC))
    items = [item for _, _, group in result.digest.sections for item in group]
    item = next(i for i in items if i.work_id and "ECT" in (i.snippet or ""))
    assert item.kind == "new" and item.snippet == "Response rate 55.4% with ketamine vs 41.2% with ECT; CO2 levels unchanged."
    text, html = " ".join(result.digest.text.split()), result.digest.html
    assert item.snippet in text and item.snippet in html
    assert "IMPORTANCE:" not in text and "DESIGN:" not in text


def test_snippet_skips_an_inline_highlights_list_after_the_prose():
    abstract = (
        "Ketamine produces rapid antidepressant effects in mice. Here we show that ketamine increased synaptic"
        " potentiation in the hippocampus of stressed mice, and this effect was blocked by an mTOR inhibitor. These"
        " results suggest that mTOR signalling mediates the sustained effects of ketamine. Highlights - Ketamine"
        " increased synaptic potentiation in stressed mice - The effect required mTOR signalling"
    )
    snippet = make_snippet(None, abstract)
    assert snippet.endswith("mediates the sustained effects of ketamine.")
    assert "Highlights" not in snippet and " - " not in snippet
