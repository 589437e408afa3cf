"""How the summaries were written before they were computed in one ``INSERT … SELECT`` (session 7), kept as the reference
the store's summaries are compared with: each SELECT's rows through Python (the author columns computed there), then
written (by :func:`write_summaries_row_by_row`: one statement run per row), and the summaries of queued works that are
no longer current removed."""

from __future__ import annotations

import json

from crawler.store import summaries
from crawler.store.common import chunks, marks


def summary_rows(db, select: str, params: list) -> list[list]:
    """The ``work_summaries`` rows (values in column order) of what ``select`` gives (one of ``_SUMMARY_SELECTS``, or
    ``_summary_select(None)``): its columns in that order, with ``authors_json`` where the three author columns go."""
    cursor = db.conn.execute(select, params)
    names = [d[0] for d in cursor.description]
    at = names.index("authors_json")
    if names[:at] + ["authors", "first_author", "author_count"] + names[at + 1 :] != summaries._SUMMARY_COLUMNS:
        raise ValueError(f"the summary SELECT's columns are not those of work_summaries: {names}")
    rows = []
    for values in cursor:
        people = [summaries.short_name(a) for a in json.loads(values[at] or "[]")]
        authors = ", ".join(short for short in people if short) or None
        rows.append([*values[:at], authors, people[0] if people else None, len(people), *values[at + 1 :]])
    return rows


def write_summaries_row_by_row(db, batch: int, tags=None) -> None:
    """:func:`crawler.store.summaries.write_summaries` as it was, each row its own run of the upsert (every column read
    by SQL: ``tags``, the tag columns a caller knows, is not used)."""
    columns = summaries._SUMMARY_COLUMNS
    queued = [r[0] for r in db.conn.execute(summaries._QUEUED, [batch]).fetchall()]
    rows = sorted((row for select in summaries._SUMMARY_SELECTS for row in summary_rows(db, select, [batch])), key=lambda r: r[0])
    upsert = f"ON CONFLICT(work_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns[1:])}"
    db.conn.executemany(f"INSERT INTO work_summaries ({', '.join(columns)}) VALUES ({marks(columns)}) {upsert}", rows)
    found = {row[0] for row in rows}
    for chunk in chunks([w for w in queued if w not in found]):
        db.conn.execute(f"DELETE FROM work_summaries WHERE work_id IN ({marks(chunk)})", chunk)
