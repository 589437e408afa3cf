"""Classification: ``work_relevance`` (label, score, rank) and ``work_tags`` of each work (computed by
:mod:`crawler.classify`)."""

from __future__ import annotations

from crawler import clock
from crawler.store.common import chunks, dumps, marks
from crawler.store.summaries import refresh_work_summaries


def save_classifications(db, classifications, now: str | None = None) -> None:
    """Replace the relevance row and the tags of each classified work (one transaction).

    Rows of works that have since been merged into another are removed: the survivor carries the
    classification.
    """
    now = now or clock.stamp()
    latest = {c.work_id: c for c in classifications}  # one row per work: the last classification given
    with db.atomic():
        db.conn.executemany(
            """INSERT INTO work_relevance (work_id, label, score, reasons, rank_score, rank_reasons, vocabulary_hash, classified_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(work_id) DO UPDATE SET label = excluded.label, score = excluded.score, reasons = excluded.reasons,
               rank_score = excluded.rank_score, rank_reasons = excluded.rank_reasons,
               vocabulary_hash = excluded.vocabulary_hash, classified_at = excluded.classified_at""",
            [
                (c.work_id, c.label, c.score, dumps(c.reasons), c.rank_score, dumps(c.rank_reasons), c.vocabulary_hash, now)
                for c in latest.values()
            ],
        )
        for chunk in chunks(list(latest)):
            db.conn.execute(f"DELETE FROM work_tags WHERE work_id IN ({marks(chunk)})", chunk)
        db.conn.executemany(
            "INSERT OR REPLACE INTO work_tags (work_id, tag, category, evidence) VALUES (?, ?, ?, ?)",
            [(c.work_id, tag.tag, tag.category, tag.evidence) for c in latest.values() for tag in c.tags],
        )
        for table in ("work_relevance", "work_tags"):
            db.conn.execute(f"DELETE FROM {table} WHERE work_id IN (SELECT id FROM works WHERE merged_into IS NOT NULL)")
        refresh_work_summaries(db)


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
