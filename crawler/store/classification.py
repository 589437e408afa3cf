"""Classification: ``work_relevance`` (label, score, rank) and ``work_tags`` of each work (computed by
:mod:`crawler.classify`)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from crawler import clock
from crawler.store.common import chunks, dumps_texts, insert_rows, insert_values, marks
from crawler.store.summaries import refresh_work_summaries

if TYPE_CHECKING:  # (imported where a connection is made: not before the fetch worker's fork)
    import sqlite_utils

_SUMMARY_COLUMNS = """relevance = (SELECT label FROM work_relevance r WHERE r.work_id = work_summaries.work_id),
    rank_score = (SELECT rank_score FROM work_relevance r WHERE r.work_id = work_summaries.work_id),
    tags = (SELECT json_group_array(tag) FROM (SELECT t.tag FROM work_tags t WHERE t.work_id = work_summaries.work_id ORDER BY t.tag)),
    evidence_types = (SELECT json_group_array(tag) FROM (SELECT t.tag FROM work_tags t
                      WHERE t.work_id = work_summaries.work_id AND t.category = 'evidence' ORDER BY t.tag))"""


_RELEVANCE_COLUMNS = ("work_id", "label", "score", "reasons", "rank_score", "rank_reasons", "vocabulary_hash", "classified_at")
#: The relevance rows' upsert (:func:`~crawler.store.common.insert_values`: the statement's start and its conflict clause).
_UPSERT_RELEVANCE = (
    f"INSERT INTO work_relevance ({', '.join(_RELEVANCE_COLUMNS)})",
    f"ON CONFLICT(work_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _RELEVANCE_COLUMNS[1:])}",
)


def _stored(db, work_ids: list[int]) -> dict[int, tuple]:
    """work_id -> (label, score, reasons, rank_score, rank_reasons, vocabulary_hash, {tag: (category, evidence)}) as stored."""
    stored: dict[int, tuple] = {}
    for chunk in chunks(work_ids):
        for row in db.conn.execute(
            f"SELECT work_id, label, score, reasons, rank_score, rank_reasons, vocabulary_hash FROM work_relevance"
            f" WHERE work_id IN ({marks(chunk)})",
            chunk,
        ):
            stored[row[0]] = (*row[1:], {})
        for work_id, tag, category, evidence in db.conn.execute(
            f"SELECT work_id, tag, category, evidence FROM work_tags WHERE work_id IN ({marks(chunk)}) ORDER BY id", chunk
        ):
            if work_id in stored:
                stored[work_id][-1][tag] = (category, evidence)
    return stored


def classification_row(classification) -> tuple:
    """A classification as ``save_classification_rows`` stores it, encoded (the work made this in a worker process, the
    writing process only runs the SQL): (work_id, label, score, reasons JSON, rank_score, rank_reasons JSON,
    vocabulary_hash, {tag: (category, evidence)} in the classification's order)."""
    c = classification
    return (
        c.work_id,
        c.label,
        c.score,
        dumps_texts(c.reasons),
        c.rank_score,
        dumps_texts(c.rank_reasons),
        c.vocabulary_hash,
        {t.tag: (t.category, t.evidence) for t in c.tags},
    )


def save_classifications(db, classifications, now: str | None = None) -> int:
    """Store the relevance row and the tags of each classified work whose classification changed (one transaction);
    return how many changed. See :func:`save_classification_rows`."""
    return save_classification_rows(db, [classification_row(c) for c in classifications], now)


def save_classification_rows(db, classification_rows: Iterable[tuple], now: str | None = None) -> int:
    """Store the relevance row and the tags of each classified work (:func:`classification_row`) whose classification
    changed (one transaction); return how many changed.

    A work classified as it is stored keeps its rows as they are (``classified_at`` included) and its summary.
    A changed work's summary gets its new relevance, rank and tags; a work whose summary was already waiting
    for other changes is summarised in full. Rows of works that have since been merged into another are
    removed: the survivor carries the classification.
    """
    now = now or clock.stamp()
    rows = {row[0]: row[1:] for row in classification_rows}  # one row per work: the last classification given
    with db.atomic():
        stored = _stored(db, list(rows))
        changed = [work_id for work_id, row in rows.items() if stored.get(work_id) != row]
        waiting: set[int] = set()
        for chunk in chunks(changed):
            waiting.update(
                r[0] for r in db.conn.execute(f"SELECT work_id FROM work_summary_queue WHERE work_id IN ({marks(chunk)})", chunk)
            )
        direct = [work_id for work_id in changed if work_id not in waiting]  # the others are summarised in full
        # the relevance rows by statements of many rows each (no trigger, one index: less than staging them), the tags
        # by one statement (three indexes: a statement run per row costs more than the row)
        head, tail = _UPSERT_RELEVANCE
        insert_values(db.conn, head, [(work_id, *rows[work_id][:6], now) for work_id in changed], tail)
        retagged = [work_id for work_id in changed if (stored.get(work_id) or (None,) * 7)[6] != rows[work_id][6]]
        for chunk in chunks(retagged):
            db.conn.execute(f"DELETE FROM work_tags WHERE work_id IN ({marks(chunk)})", chunk)
        insert_rows(
            db,
            "work_tags",
            ("work_id", "tag", "category", "evidence"),
            [
                (work_id, tag, category, evidence)
                for work_id in retagged
                for tag, (category, evidence) in rows[work_id][6].items()
            ],
            verb="INSERT OR REPLACE",
        )
        # the summaries (no trigger queues them, m015): only the classification's columns of a summary that was up
        # to date change; a work without a summary row (none made yet) is queued for the full one
        shown = [work_id for work_id in direct if not _shows_same(stored.get(work_id), rows[work_id])]
        values = [(*_summary_values(rows[work_id]), work_id) for work_id in shown]
        _update_summaries(db, [v for v in values if v[2] is not None])
        for chunk in chunks([v[-1] for v in values if v[2] is None]):
            db.conn.execute(f"UPDATE work_summaries SET {_SUMMARY_COLUMNS} WHERE work_id IN ({marks(chunk)})", chunk)
        for chunk in chunks(direct):
            db.conn.execute(
                f"INSERT INTO work_summary_queue (work_id) SELECT id FROM works WHERE id IN ({marks(chunk)})"
                " AND id NOT IN (SELECT work_id FROM work_summaries)",
                chunk,
            )
        for table in ("work_relevance", "work_tags"):
            db.conn.execute(f"DELETE FROM {table} WHERE work_id IN (SELECT id FROM works WHERE merged_into IS NOT NULL)")

        def tags(work_id: int) -> tuple[str, str] | None:
            """A classified work's tag columns, from its row: its ``work_tags`` rows are those now (written above, or
            equal to them); None for the others, and where a name needs escapes (the SQL reads those)."""
            row = rows.get(work_id)
            values = _summary_values(row) if row is not None else None
            return None if values is None or values[2] is None else (values[2], values[3])

        refresh_work_summaries(db, tags=tags)  # the queued works' summaries in full (those of works waiting among them)
    return len(changed)


#: The staged summary columns of changed works written into their summaries, in one statement.
_SUMMARIES_FROM_STAGING = """UPDATE work_summaries SET (relevance, rank_score, tags, evidence_types) =
    (SELECT s.relevance, s.rank_score, s.tags, s.evidence_types FROM temp.work_summary_columns s WHERE s.work_id = work_summaries.work_id)
    WHERE work_id IN (SELECT work_id FROM temp.work_summary_columns)"""


def _update_summaries(db, values: list[tuple]) -> None:
    """Write (relevance, rank_score, tags, evidence_types, work_id) into each work's summary: the rows staged in a
    temporary table keyed by work, then one UPDATE (an UPDATE run per work costs more than the row it writes)."""
    if not values:
        return
    db.conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS work_summary_columns (work_id INTEGER PRIMARY KEY, relevance, rank_score, tags, evidence_types)"
    )
    db.conn.execute("DELETE FROM temp.work_summary_columns")
    insert_values(
        db.conn, "INSERT OR REPLACE INTO temp.work_summary_columns (relevance, rank_score, tags, evidence_types, work_id)", values
    )
    db.conn.execute(_SUMMARIES_FROM_STAGING)
    db.conn.execute("DELETE FROM temp.work_summary_columns")


#: A tag name that SQLite's ``json_group_array`` writes as it is, between quotes.
_PLAIN_JSON = re.compile(r'[^"\\\x00-\x1f]*')
#: Tag names seen to match :data:`_PLAIN_JSON` (the vocabulary's few names, checked once each rather than at every work).
_PLAIN_NAMES: set[str] = set()


def _summary_values(row: tuple) -> tuple:
    """A changed work's summary columns (relevance, rank_score, tags, evidence_types) from its classification, as
    ``_SUMMARY_COLUMNS`` reads them back from the rows just written: the tag names sorted, in ``json_group_array``'s
    JSON. Tags and evidence types are None where a name needs escapes in JSON (the SQL writes those)."""
    label, _, _, rank_score, _, _, tags = row
    names = sorted(tags)
    if not _PLAIN_NAMES.issuperset(names):
        if not all(_PLAIN_JSON.fullmatch(name) for name in names):
            return label, rank_score, None, None
        _PLAIN_NAMES.update(names)
    evidence = [name for name in names if tags[name][0] == "evidence"]
    return label, rank_score, _json_array(names), _json_array(evidence)


def _json_array(names: list[str]) -> str:
    return '["' + '","'.join(names) + '"]' if names else "[]"


def _shows_same(stored: tuple | None, row: tuple) -> bool:
    """Whether a work's summary shows the same of its stored classification as of ``row``: label, rank score, tag
    names and evidence types (the same names, each an evidence type in both or in neither; nothing sorted)."""
    if stored is None or stored[0] != row[0] or stored[3] != row[3]:
        return False
    old, new = stored[6], row[6]
    return old.keys() == new.keys() and all(
        (old[tag][0] == "evidence") == (category == "evidence") for tag, (category, _) in new.items()
    )


def load_unclassified_work_ids(db) -> list[int]:
    return [
        r[0]
        for r in db.execute(
            "SELECT w.id FROM works w LEFT JOIN work_relevance r ON r.work_id = w.id"
            " WHERE w.merged_into IS NULL AND r.work_id IS NULL ORDER BY w.id"
        )
    ]


def count_stale_classifications(db, vocabulary_hash: str) -> int:
    return db.execute("SELECT COUNT(*) FROM work_relevance WHERE vocabulary_hash != ?", [vocabulary_hash]).fetchone()[0]


def load_classification_summary(db) -> dict[int, tuple[str, set[str]]]:
    """work_id -> (label, tag names) of what is stored now."""
    result: dict[int, tuple[str, set[str]]] = {
        r[0]: (r[1], set()) for r in db.execute("SELECT work_id, label FROM work_relevance")
    }
    for work_id, tag in db.execute("SELECT work_id, tag FROM work_tags"):
        if work_id in result:
            result[work_id][1].add(tag)
    return result


def load_relevance(db, work_id: int) -> tuple[str, float] | None:
    """(label, rank score) of a classified work."""
    row = db.execute("SELECT label, rank_score FROM work_relevance WHERE work_id = ?", [work_id]).fetchone()
    return (row[0], row[1]) if row else None


def load_tags(db, work_id: int) -> list[dict]:
    """The work's tags (``tag``, ``category``): evidence tags first."""
    return list(
        db.query(
            "SELECT tag, category FROM work_tags WHERE work_id = ? ORDER BY category != 'evidence', category, tag", [work_id]
        )
    )


def database_file(db) -> str:
    """The file of an open database ("" for one in memory)."""
    return db.conn.execute("PRAGMA database_list").fetchone()[2]


def open_reader(path: str) -> sqlite_utils.Database:
    """A read-only connection to a database file, for a worker process that reads records while another writes.
    Without sqlite_utils plugins, as :func:`crawler.store.schema.connect`'s: the worker's first connection does not
    read every installed distribution's entry points, and no plugin prepares it (litmon's SQL uses none)."""
    import sqlite_utils

    return sqlite_utils.Database(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, timeout=60), execute_plugins=False)
