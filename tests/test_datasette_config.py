"""config/datasette.yml names only what the schema has, and its canned queries answer on a real database."""

from __future__ import annotations

from pathlib import Path

import yaml

from crawler import ingest
from tests.conftest import rows
from tests.helpers import viewdb

ROOT = Path(__file__).resolve().parent.parent
METADATA = yaml.safe_load((ROOT / "config" / "datasette.yml").read_text(encoding="utf-8"))
DATABASE = METADATA["databases"]["litmon"]


def test_every_table_facet_column_and_search_index_named_exists():
    db = ingest.memory_db()
    names = set(db.table_names()) | set(db.view_names())
    for table, meta in DATABASE["tables"].items():
        assert table in names, f"{table} is not in the schema"
        columns = {c[1] for c in db.execute(f"PRAGMA table_xinfo([{table}])").fetchall()}
        for facet in meta.get("facets", []):
            column = facet["array"] if isinstance(facet, dict) else facet
            assert column in columns, f"facet {table}.{column} is not a column"
        assert set(meta.get("columns", {})) <= columns, f"{table}: described columns missing"
        if "fts_table" in meta:
            assert meta["fts_table"] in names and meta["fts_pk"] in columns
    facets = {f["array"] if isinstance(f, dict) else f for f in DATABASE["tables"]["work_summaries"]["facets"]}
    assert {"tags", "sources", "evidence_types", "trial_status"} <= facets


def test_canned_queries_answer_this_weeks_works_recruiting_trials_and_retractions(db):
    ids = viewdb.build(db)
    queries = DATABASE["queries"]
    # SQLite's 'now' is the wall clock; the fixture is pinned at 2026-11-23 09:00
    new = rows(db, queries["new_this_week"]["sql"].replace("'now'", "'2026-11-23 09:00:00'"))
    assert {r["work_id"] for r in new} == {ids["rct"], ids["review"], ids["notice"], ids["preprint"]}
    assert new[0]["work_id"] == ids["review"]  # relevant and best ranked first
    assert [(r["trial_id"], r["status"]) for r in rows(db, queries["recruiting_trials"]["sql"])] == [
        ("NCT05000001", "recruiting")
    ]
    retractions = rows(db, queries["retractions"]["sql"])
    assert [(r["work_id"], r["notice_title"]) for r in retractions] == [
        (ids["retracted"], "Retraction: Oral ketamine maintenance in bipolar depression")
    ]
