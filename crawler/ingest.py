"""Ingest: what happens to a batch of parsed records, in one transaction: save → dedup → classify.

1. :func:`crawler.store.save_record` stores each record (new, updated or unchanged), its
   identifiers, links and trial snapshot, and joins works that share an identifier;
2. :func:`crawler.dedup.resolve_records` fingerprints the new and changed records, merges works
   they match on title, authors and year, and resolves the links between works;
3. :func:`crawler.classify.classify_batch` (re)classifies the works the batch touched (with a
   ``config``; a failed classification is logged and never loses the batch), from the records as
   they were just written (``records.data``, stored values of fields an answer lacked included)
   when a work holds only records of this batch, otherwise from the stored records; a work that is
   exactly one brand-new record takes the classification :mod:`crawler.fetch_worker` computed ahead
   for that record alone, when there is one (the same result, computed in the other process).

The store never calls dedup or classification: this module is the one place that orders them.
It also opens the database for the application (:func:`open_db`): migrations, then the data
backfills that a migration needs (:data:`BACKFILLS`), all in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler import classify, clock, dedup, failpoints, store
from crawler.matching import MatchInputs, record_match_inputs
from crawler.records import Record

if TYPE_CHECKING:  # (imported where a connection is made: not before the fetch worker's fork)
    import sqlite_utils

#: migration name -> the backfill it needs, run after the migrations of that open, in their transaction
#: (m002_dedup: fingerprint and resolve records stored before fuzzy identity existed; m009: recompute
#: the blocking keys in their bounded form; m010: summarise every work, on the newest schema).
BACKFILLS: dict[str, Callable[[sqlite_utils.Database], object]] = {
    "m002_dedup": dedup.rebuild,
    "m009_bounded_blocking_keys": dedup.rebuild_keys,
    "m010_work_summaries": store.rebuild_work_summaries,
}


#: A record's :func:`prepare_record`: its row (:func:`crawler.store.prepare_record`), dedup's inputs and its
#: ``to_dict()`` (the record as written, which classifying it reads), or an object whose ``to_dict()`` makes it when
#: read (:mod:`crawler.fetch_worker`'s received records: :func:`crawler.store.save_record`'s ``written``).
Prepared = tuple[store.PreparedRow, MatchInputs | None, Any]


def prepare_record(record: Record, data: dict | None = None) -> Prepared:
    """What saving and deduplicating ``record`` computes without the database, computed ahead (the fetch
    worker does, for :func:`save_batch`'s ``prepared``): its ``records`` row, its fingerprint and keys, and its
    ``to_dict()`` (``data``, when the caller has it)."""
    data = data if data is not None else record.to_dict()
    return store.prepare_record(record, data), record_match_inputs(record, data["structured_authors"]), data


def save_batch(
    db: sqlite_utils.Database,
    records: Iterable[Record],
    now: str | None = None,
    *,
    config=None,
    ahead: dict[int, classify.Classification] | None = None,
    prepared: list[Prepared | None] | None = None,
    more_ahead: Callable[[], dict[int, classify.Classification]] | None = None,
) -> dict[str, int]:
    """Save, deduplicate and (with ``config``) classify one batch in one transaction.

    Returns the counts of new, updated and unchanged records. Unchanged records change no work,
    so only new and changed ones are resolved again; every work of the batch is classified.
    ``ahead``: position in ``records`` -> that record classified as a work of its own, computed ahead
    (:mod:`crawler.fetch_worker`); used only where it is exactly that: a brand-new record (no stored row)
    that ends the batch as the only record of its work (no join, no merge). Any other work is classified
    from its records, as without it. ``more_ahead``: called once, after the batch is saved and deduplicated, before
    it is classified: more such classifications (by position), computed while the batch was saved. ``prepared``:
    position in ``records`` -> :func:`prepare_record` of that record, computed ahead (or None); not used for a
    record with ``missing`` fields (it may take stored values).
    """
    now = now or clock.stamp()
    records = list(records)
    counts = {"new": 0, "updated": 0, "unchanged": 0}
    changed: list[int] = []
    stored = store.WrittenRecords()  # record id -> the record as written (new and updated records)
    new_at: dict[int, int] = {}  # record id -> its position in the batch, for the brand-new records
    track = bool(ahead) or more_ahead is not None  # whether classifications computed ahead can be used
    inputs: dict[int, MatchInputs] = {}  # record id -> dedup's inputs, prepared ahead from the record as saved
    with db.atomic():
        batch = store.SaveBatch(db, records)  # the batch's look-ups in a few queries, not several per record
        for index, record in enumerate(records):
            ready = prepared[index] if prepared is not None and not record.missing else None
            status, record_id = store.save_record(
                db,
                record,
                now,
                stored=stored,
                batch=batch,
                prepared=ready[0] if ready is not None else None,
                written=ready[2] if ready is not None else None,
            )
            counts[status] += 1
            if status != "unchanged":
                changed.append(record_id)
                if ready is not None and ready[1] is not None:
                    inputs[record_id] = ready[1]
                else:  # dedup reads it from the row
                    inputs.pop(record_id, None)
            if track and status == "new":
                new_at[record_id] = index
            elif track:
                new_at.pop(record_id, None)  # the same record again in this batch: classified from what is stored
        batch.flush()
        failpoints.hit("batch")  # inside the batch's transaction
        dedup.resolve_records(db, changed, now, inputs)
        if config is not None and records:
            if more_ahead is not None:
                ahead = {**(ahead or {}), **more_ahead()}
            # record id -> its classification computed ahead
            alone = {record_id: ahead[index] for record_id, index in new_at.items() if index in ahead} if ahead else {}
            classify.classify_batch(db, config, records, stored=stored, alone=alone)
        store.refresh_work_summaries(db)
    return counts


def open_db(path: str | Path, *, create: bool = True, busy_timeout: float = 30.0) -> sqlite_utils.Database:
    """Open the database file for the application: :func:`crawler.store.open_db`, plus the backfills."""
    db = store.connect(path, create=create, busy_timeout=busy_timeout)
    upgrade(db)
    return db


def memory_db() -> sqlite_utils.Database:
    db = store.connect(None)
    upgrade(db)
    return db


def upgrade(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations and the backfills they need, all or nothing; return the migrations applied."""
    with db.atomic():
        applied = store.migrate(db)
        for name in applied:
            if name in BACKFILLS:
                BACKFILLS[name](db)
    return applied
