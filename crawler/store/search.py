"""Readers for people: full-text search of the work summaries and the works an export writes."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from crawler.store.common import chunks, marks

#: bm25 weight of each FTS column (FTS_COLUMNS order): a match in the title counts most.
FTS_WEIGHTS = (10.0, 2.0, 4.0, 1.0, 4.0, 4.0)
#: Markers around the matched words in search snippets.
HIGHLIGHT = ("**", "**")


def fts_query(text: str) -> str:
    """A user's search as an FTS5 query that cannot be a syntax error: each word quoted (prefix ``*`` kept)."""
    words = re.findall(r"[^\s\"]+", text or "")
    return " ".join(f'"{w.rstrip("*")}"' + ("*" if w.endswith("*") else "") for w in words if w.rstrip("*"))


def _filters(since: str | None, tag: str | None, record_type: str | None, relevance: str | None) -> tuple[list[str], list]:
    where, params = [], []
    if since:
        where.append("s.first_seen_at >= ?")
        params.append(since)
    if tag:
        where.append("EXISTS (SELECT 1 FROM work_tags t WHERE t.work_id = s.work_id AND t.tag = ?)")
        params.append(tag)
    if record_type:
        where.append("s.record_type = ?")
        params.append(record_type)
    if relevance and relevance != "all":
        where.append("s.relevance = ?")
        params.append(relevance)
    return where, params


def search_works(
    db,
    query: str,
    *,
    since: str | None = None,
    tag: str | None = None,
    record_type: str | None = None,
    relevance: str | None = None,
    limit: int | None = 20,
) -> list[dict[str, Any]]:
    """Current works matching ``query`` (FTS5 syntax: words, "phrases", prefix*, AND/OR/NOT, NEAR, ``title:``),
    best bm25 first, each with a ``snippet`` of the best-matching column (matches between :data:`HIGHLIGHT`).

    A query that is not valid FTS5 syntax (a stray quote or dash) is searched as plain words. The ranking
    reads the index alone; the rows and snippets are fetched for the results kept (``limit``) only."""
    try:
        ranked = _rank(db, query, since, tag, record_type, relevance, limit)
    except sqlite3.OperationalError:  # not FTS5 syntax ("unterminated string", "no such column: resistant")
        query = fts_query(query)
        if not query:
            return []
        ranked = _rank(db, query, since, tag, record_type, relevance, limit)
    found: dict[int, dict[str, Any]] = {}
    snippets: dict[int, str] = {}
    for chunk in chunks([work_id for work_id, _ in ranked]):
        found.update(
            (row["work_id"], row) for row in db.query(f"SELECT * FROM work_summaries WHERE work_id IN ({marks(chunk)})", chunk)
        )
        snippets.update(
            db.execute(
                f"SELECT rowid, snippet(work_summaries_fts, -1, ?, ?, ' … ', 24) FROM work_summaries_fts"
                f" WHERE work_summaries_fts MATCH ? AND rowid IN ({marks(chunk)})",
                [*HIGHLIGHT, query, *chunk],
            ).fetchall()
        )
    return [{**found[work_id], "score": score, "snippet": snippets.get(work_id)} for work_id, score in ranked if work_id in found]


def _rank(db, query, since, tag, record_type, relevance, limit) -> list[tuple[int, float]]:
    """(work_id, bm25 score) of the best matches, best first: computed from the index (and the filters) only."""
    where, params = _filters(since, tag, record_type, relevance)
    weights = ", ".join(str(w) for w in FTS_WEIGHTS)
    filtered = f" AND rowid IN (SELECT s.work_id FROM work_summaries s WHERE {' AND '.join(where)})" if where else ""
    sql = f"""SELECT rowid, bm25(work_summaries_fts, {weights}) AS score FROM work_summaries_fts
              WHERE work_summaries_fts MATCH ?{filtered} ORDER BY score, rowid LIMIT ?"""
    return db.execute(sql, [query, *params, -1 if limit is None else limit]).fetchall()


def load_export_works(
    db,
    *,
    since: str | None = None,
    tag: str | None = None,
    query: str | None = None,
    relevance: str | None = None,
    record_type: str | None = None,
    work_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Current works for an export (best fields, structured ``authors``, lists as lists), oldest first
    (search rank first with ``query``; in the order given with ``work_ids``, e.g. a digest's items)."""
    if work_ids is not None:
        rows = {}
        for chunk in chunks(list(dict.fromkeys(work_ids))):
            for row in db.query(f"SELECT s.* FROM work_summaries s WHERE s.work_id IN ({marks(chunk)})", chunk):
                rows[row["work_id"]] = row
        found = [rows[w] for w in dict.fromkeys(work_ids) if w in rows]
    elif query:
        found = search_works(db, query, since=since, tag=tag, record_type=record_type, relevance=relevance, limit=None)
    else:
        where, params = _filters(since, tag, record_type, relevance)
        found = list(
            db.query(
                f"SELECT s.* FROM work_summaries s {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY s.work_id", params
            )
        )
    authors: dict[int, str] = {}
    ids = [w["work_id"] for w in found]
    for chunk in chunks(ids):
        authors.update(db.execute(f"SELECT id, authors FROM works WHERE id IN ({marks(chunk)})", chunk).fetchall())
    for work in found:
        work["authors"] = json.loads(authors.get(work["work_id"]) or "[]")
        for name in ("keywords", "mesh_terms"):
            work[name] = [v for v in (work.get(name) or "").split("; ") if v]
        for name in ("tags", "evidence_types", "publication_types"):
            work[name] = json.loads(work.get(name) or "[]")
        work.pop("snippet", None)
        work.pop("score", None)
    return found
