"""Exports round-trip through the readers reference managers use: rispy (RIS), bibtexparser (BibTeX), csv."""

from __future__ import annotations

import csv
import io
import json

import bibtexparser
import rispy

from crawler import export, ingest, store
from tests.helpers import viewdb
from tests.helpers.cli import litmon, write_config


def works(db, **filters):
    return store.load_export_works(db, **filters)


def by_title(entries, key, start):
    return next(e for e in entries if (e.get(key) or "").startswith(start))


def test_ris_round_trips_through_rispy_with_types_authors_and_citation(db):
    viewdb.build(db)
    entries = rispy.loads(export.render(works(db), "ris"))
    rct = by_title(entries, "title", "Esketamine nasal spray versus quetiapine for treatment-resistant depression")
    assert rct["type_of_reference"] == "JOUR"
    assert rct["authors"] == ["Osei, Hannah", "Chen, Wei", "ESCAPE Investigators"]
    assert (rct["secondary_title"], rct["alternate_title1"]) == ("The New England journal of medicine", "N Engl J Med")
    assert (rct["year"], rct["date"], rct["volume"], rct["number"]) == ("2023", "2023/10/05", "389", "14")
    assert (rct["start_page"], rct["end_page"], rct["doi"]) == ("1298", "1309", "10.1056/nejmoa2304145")
    assert rct["accession_number"] == "39000001" and "Ketamine" in rct["keywords"] and "litmon:rct" in rct["keywords"]
    assert rct["abstract"].startswith("In this randomised trial") and rct["language"] == "eng"
    preprint = by_title(entries, "title", "Esketamine nasal spray versus quetiapine for treatment-resistant depression: preprint")
    assert preprint["type_of_reference"] == "UNPB" and preprint["authors"] == ["Osei, H.", "Chen, W."]
    trial = by_title(entries, "title", "Esketamine Nasal Spray in Late-Life")
    assert trial["type_of_reference"] == "DATA" and "Trial: NCT05000001" in trial["notes"][0]
    assert len(entries) == len(works(db))


def test_bibtex_round_trips_through_bibtexparser_with_unique_keys_and_escapes(db):
    ids = viewdb.build(db)
    odd = viewdb.article("77", "Ketamine & mood: 50% {faster}_response", authors=["Osei Hannah"], published_on="2023")
    ingest.save_batch(db, [odd])
    library = bibtexparser.parse_string(export.render(works(db), "bibtex"))
    assert not library.failed_blocks
    entries = {e.key: e for e in library.entries}
    assert len(entries) == len(works(db))
    rct = next(e for e in library.entries if "pmid" in e.fields_dict and e.fields_dict["pmid"].value == "39000001")
    assert rct.entry_type == "article" and rct.key == "osei2023esketamine"
    assert rct.fields_dict["author"].value == "Osei, Hannah and Chen, Wei and {ESCAPE Investigators}"
    assert rct.fields_dict["journal"].value == "The New England journal of medicine"
    assert (rct.fields_dict["pages"].value, rct.fields_dict["volume"].value, rct.fields_dict["number"].value) == (
        "1298--1309",
        "389",
        "14",
    )
    assert rct.fields_dict["doi"].value == "10.1056/nejmoa2304145" and rct.fields_dict["year"].value == "2023"
    assert "osei2023esketamine" in entries and "osei2023ketamine" in entries  # same author and year: distinct keys
    escaped = entries["osei2023ketamine"].fields_dict["title"].value
    assert escaped == r"{Ketamine \& mood: 50\% \{faster\}\_response}"
    preprint = next(e for e in library.entries if e.key.startswith("osei2023esketamine") and e.key != "osei2023esketamine")
    assert preprint.entry_type == "unpublished" and preprint.fields_dict["howpublished"].value == "medRxiv"
    assert ids


def test_csv_round_trips_through_the_csv_module(db):
    viewdb.build(db)
    text = export.render(works(db, relevance="relevant"), "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == list(export.COLUMNS)
    rct = next(r for r in table if r["pmid"] == "39000001")
    assert rct["authors"] == "Osei, Hannah; Chen, Wei; ESCAPE Investigators" and rct["year"] == "2023"
    assert rct["tags"] == "intranasal_esketamine; rct" and rct["relevance"] == "relevant" and rct["is_retracted"] == "0"
    assert {r["relevance"] for r in table} == {"relevant"} and len(table) == 2


def test_json_and_csl_json_carry_structured_authors_and_types(db):
    ids = viewdb.build(db)
    plain = json.loads(export.render(works(db), "json"))
    rct = next(w for w in plain if w["work_id"] == ids["rct"])
    assert rct["authors"][0] == {"family": "Osei", "given": "Hannah", "initials": "H"} and rct["tags"] == [
        "intranasal_esketamine",
        "rct",
    ]
    items = {i["id"]: i for i in json.loads(export.render(works(db), "csljson"))}
    item = items[f"litmon:{ids['rct']}"]
    assert item["type"] == "article-journal" and item["author"][2] == {"literal": "ESCAPE Investigators"}
    assert item["issued"] == {"date-parts": [[2023, 10, 5]]} and item["page"] == "1298-1309" and item["PMID"] == "39000001"
    assert item["container-title-short"] == "N Engl J Med"
    assert items[f"litmon:{ids['preprint']}"]["type"] == "article" and items[f"litmon:{ids['trial']}"]["type"] == "dataset"
    assert items[f"litmon:{ids['trial']}"]["number"] == "NCT05000001"


def test_filters_select_works_by_date_tag_query_and_relevance(db):
    ids = viewdb.build(db)
    assert {w["work_id"] for w in works(db, tag="meta_analysis")} == {ids["review"]}
    assert {w["work_id"] for w in works(db, query="quetiapine", relevance="relevant")} == {ids["rct"]}
    assert {w["work_id"] for w in works(db, relevance="uncertain")} == {ids["retracted"]}
    assert ids["retracted"] not in {w["work_id"] for w in works(db, since="2026-11-01")}


def test_titles_lose_medlines_closing_period_only():
    assert export.title_of({"title": "Ketamine for depression: a randomized clinical trial."}) == (
        "Ketamine for depression: a randomized clinical trial"
    )
    assert export.title_of({"title": "Does ketamine work?"}) == "Does ketamine work?"
    assert export.title_of({"title": "Ketamine and..."}) == "Ketamine and..."
    entry = rispy.loads(export.render([{"work_id": 1, "record_type": "article", "title": "Esketamine in TRD."}], "ris"))[0]
    assert entry["title"] == "Esketamine in TRD"


def test_medline_short_page_ranges_are_expanded():
    assert export.page_range("123-9") == ("123", "129")
    assert export.page_range("1298–1309") == ("1298", "1309")
    assert export.page_range("e0123") == ("e0123", None)
    assert export.page_range(None) == (None, None)


def test_export_command_writes_a_file_and_dry_run_writes_nothing(tmp_path):
    config = write_config(tmp_path, "")
    db = ingest.open_db(tmp_path / "litmon.db")
    viewdb.build(db)
    db.close()
    out = tmp_path / "refs.ris"
    result = litmon("--config", config, "export", "--format", "ris", "--relevance", "relevant", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(rispy.loads(out.read_text(encoding="utf-8"))) == 2 and "2 work(s) written" in result.stderr
    dry = litmon("--config", config, "export", "--format", "csv", "--dry-run", "-o", str(tmp_path / "x.csv"), cwd=tmp_path)
    assert dry.returncode == 0 and "would be written" in dry.stdout and not (tmp_path / "x.csv").exists()
    bad = litmon("--config", config, "export", "--format", "endnote", cwd=tmp_path)
    assert bad.returncode == 2
