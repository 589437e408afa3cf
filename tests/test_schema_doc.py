"""docs/schema.md describes every table, view and column of the live schema, and is up to date."""

from __future__ import annotations

from pathlib import Path

from crawler import ingest
from crawler.store import schema_doc

ROOT = Path(__file__).resolve().parent.parent


def test_every_table_view_and_column_has_a_description_and_none_is_stale():
    db = ingest.memory_db()
    assert schema_doc.problems(db) == []
    names = {name for name, _, _ in schema_doc.schema_of(db)}
    assert {"works", "work_summaries", "works_view", "trials_view", "search_log", "work_summaries_fts"} <= names


def test_docs_schema_md_is_what_the_generator_makes_now():
    expected = schema_doc.render(ingest.memory_db())
    assert (ROOT / "docs" / "schema.md").read_text(encoding="utf-8") == expected, (
        "docs/schema.md is out of date: python -m crawler.store.schema_doc > docs/schema.md"
    )


def test_a_new_column_without_a_description_is_reported():
    db = ingest.memory_db()
    db.execute("ALTER TABLE works ADD COLUMN mystery TEXT")
    db.execute("CREATE TABLE scratch (x INTEGER)")
    assert sorted(schema_doc.problems(db)) == [
        "scratch: no description in crawler/store/schema_doc.py TABLES",
        "works.mystery: no description",
    ]
