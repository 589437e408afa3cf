"""Records and works: saving parsed records, joining works that share an identifier, merging works.

A record is one source's view of a work (``records``, with its ``identifiers``, ``record_links`` and
``trial_snapshots``); a work is the real-world study they describe (``works``), summarised from its
records, best source first (:data:`crawler.records.SOURCE_PRIORITY`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crawler import clock
from crawler.records import (
    CITATION_FIELDS,
    TRIAL_FIELDS,
    Record,
    authors_json,
    join_json_parts,
    json_parts,
    normalise_trial_status,
    source_rank,
)
from crawler.store.candidates import repoint_work_links
from crawler.store.common import chunks, loads, marks, source_rank_sql
from crawler.store.summaries import queue_summaries, refresh_work_summaries

if TYPE_CHECKING:  # (imported where a connection is made: not before the fetch worker's fork)
    import sqlite_utils

log = logging.getLogger("crawler.store")

#: a work's title when none of its records has one
UNTITLED = "(untitled)"

#: Required fields a source answer may lack (Record.missing) whose stored value is then kept.
KEEPABLE_FIELDS = ("title", "abstract", "journal", "published_on", "entered_on")


def save_records(db: sqlite_utils.Database, records: Iterable[Record], now: str | None = None) -> dict[str, int]:
    """Store a batch of records in one transaction; return counts of new/updated/unchanged.

    Only the rows and the joins by shared identifier: :func:`crawler.ingest.save_batch` adds fuzzy
    identity, links between works and classification.
    """
    now = now or clock.stamp()
    counts = {"new": 0, "updated": 0, "unchanged": 0}
    records = list(records)
    with db.atomic():
        batch = SaveBatch(db, records)
        for record in records:
            counts[save_record(db, record, now, batch=batch)[0]] += 1
        batch.flush()
        refresh_work_summaries(db)
    return counts


class SaveBatch:
    """What saving a batch of records looks up, read for the whole batch in a few queries: the stored
    row of each record (by source and id) and the works holding each of the batch's identifiers.

    Kept exact while records are saved through it: a new record on a work of its own, or an unchanged
    record, adds what it wrote. Anything else (an updated record, a join of works by identifier) drops
    the look-ups, and the rest of the batch queries per record as without it. Identifier, link and
    ``last_seen_at`` writes of those records are queued and written together (:meth:`flush`: before
    anything reads them, and at the end of the batch, in its transaction)."""

    def __init__(self, db, records: list[Record]):
        self.db = db
        self.valid = True
        self.rows: dict[tuple[str, str], tuple[int, int, str]] = {}
        self.works: dict[tuple[str, str], set[int]] = {}
        self._identifiers: list[tuple] = []
        self._links: list[tuple] = []
        self._seen: list[tuple[str, int]] = []
        self._queued: list[int] = []  # the works of new records saved alone, whose summaries are queued at flush
        by_source: dict[str, set[str]] = {}
        by_scheme: dict[str, set[str]] = {}
        for record in records:
            by_source.setdefault(record.source, set()).add(record.source_id)
            for scheme, value in record.identifiers:
                by_scheme.setdefault(scheme, set()).add(value)
        for source, source_ids in by_source.items():
            for chunk in chunks(sorted(source_ids)):
                for record_id, source_id, work_id, digest in db.conn.execute(
                    f"SELECT id, source_id, work_id, content_hash FROM records WHERE source = ? AND source_id IN ({marks(chunk)})",
                    [source, *chunk],
                ):
                    self.rows[(source, source_id)] = (record_id, work_id, digest)
        for scheme, values in by_scheme.items():
            for chunk in chunks(sorted(values)):
                for value, work_id in db.conn.execute(
                    f"SELECT value, work_id FROM identifiers WHERE scheme = ? AND value IN ({marks(chunk)})", [scheme, *chunk]
                ):
                    self.works.setdefault((scheme, value), set()).add(work_id)

    def row_of(self, record: Record) -> tuple[int, int, str] | None:
        if not self.valid:
            return _stored_row(self.db, record)
        return self.rows.get((record.source, record.source_id))

    def works_with(self, identifiers: list[tuple[str, str]]) -> list[int]:
        if not self.valid:
            return _works_with_identifiers(self.db, identifiers)
        return sorted({w for pair in identifiers for w in self.works.get(tuple(pair), ())})  # type: ignore[arg-type]

    def saved_alone(self, record: Record, record_id: int, work_id: int, digest: str) -> None:
        """A new record on a new work of its own: remember it; queue its identifiers, links and summary."""
        self.rows[(record.source, record.source_id)] = (record_id, work_id, digest)
        self._queued.append(work_id)
        for scheme, value in record.identifiers:
            self.works.setdefault((scheme, value), set()).add(work_id)
        self._identifiers.extend((record_id, work_id, scheme, value) for scheme, value in record.identifiers)
        self._links.extend((record_id, link.relation, link.scheme, link.value, link.note) for link in record.links)

    def seen(self, record_id: int, now: str) -> None:
        self._seen.append((now, record_id))

    def drop(self) -> None:
        """Stop using the look-ups (something changed that they do not follow); write what is queued."""
        self.flush()
        self.valid = False

    def flush(self) -> None:
        if self._identifiers:
            # one run per row, as the blocking keys (store.candidates.save_fingerprints): values all over the index
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO identifiers (record_id, work_id, scheme, value) VALUES (?, ?, ?, ?)", self._identifiers
            )
        if self._links:
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO record_links (record_id, relation, scheme, value, note) VALUES (?, ?, ?, ?, ?)",
                self._links,
            )
        if self._seen:
            self.db.conn.executemany("UPDATE records SET last_seen_at = ? WHERE id = ?", self._seen)
        if self._queued:
            queue_summaries(self.db, self._queued)
        self._identifiers, self._links, self._seen, self._queued = [], [], [], []


def _stored_row(db, record: Record) -> tuple[int, int, str] | None:
    return db.conn.execute(
        "SELECT id, work_id, content_hash FROM records WHERE source = ? AND source_id = ?",
        [record.source, record.source_id],
    ).fetchone()


class WrittenRecords(dict):
    """record id -> the record as written (its ``to_dict()``: ``records.data`` with its abstract), for
    :func:`save_record`'s ``stored``. A record saved from prepared values is kept as it is and made into its dict
    when first read (a new record whose work takes a classification computed ahead is never read)."""

    def __getitem__(self, record_id: int) -> dict[str, Any]:
        value = dict.__getitem__(self, record_id)
        if type(value) is not dict:
            value = value.to_dict()
            dict.__setitem__(self, record_id, value)
        return value

    def get(self, record_id, default=None):
        return self[record_id] if record_id in self else default

    def values(self):
        return [self[record_id] for record_id in self]

    def items(self):
        return [(record_id, self[record_id]) for record_id in self]


#: The ``records`` columns :func:`save_record` writes from the record alone, in the order of :func:`record_values`.
RECORD_COLUMNS = (
    "record_type",
    "title",
    "abstract",
    "authors",
    "structured_authors",
    "journal",
    *CITATION_FIELDS,
    "published_on",
    "entered_on",
    "updated_on",
    "url",
    "publication_types",
    "mesh_terms",
    "keywords",
    "language",
    "version",
    "data",
    "content_hash",
)
_STRUCTURED_AUTHORS = RECORD_COLUMNS.index("structured_authors")
_INSERT_RECORD = (
    f"INSERT INTO records (source, source_id, work_id, first_seen_at, last_seen_at, changed_at, {', '.join(RECORD_COLUMNS)})"
    f" VALUES (?, ?, ?, ?, ?, ?, {marks(RECORD_COLUMNS)})"
)
_UPDATE_RECORD = (
    f"UPDATE records SET {', '.join(f'{k} = ?' for k in RECORD_COLUMNS)}, last_seen_at = ?, changed_at = ? WHERE id = ?"
)

#: What :func:`prepare_record` computes: (content hash, the values of :data:`RECORD_COLUMNS`).
PreparedRow = tuple[str, tuple]


def prepare_record(record: Record, data: dict[str, Any] | None = None) -> PreparedRow:
    """The record's content hash and ``records`` row values (:data:`RECORD_COLUMNS`): everything saving it
    computes without the database, so that it can be computed ahead (in the fetch worker) and handed to
    :func:`save_record` as ``prepared``. Valid while the record is not changed (a record with
    ``missing`` fields may take stored values: :func:`save_record` recomputes it then). ``data``: the
    record's :meth:`~crawler.records.Record.to_dict`, when the caller has it."""
    data = data if data is not None else record.to_dict()
    parts = json_parts(data)
    digest = record.content_hash(data, parts)
    return digest, record_values(record, parts, digest)


def record_values(record: Record, parts: dict[str, str], digest: str) -> tuple:
    """The values of :data:`RECORD_COLUMNS` (``parts``: the record's :func:`json_parts`, ``digest`` its hash)."""
    return (
        record.record_type,
        record.title,
        record.abstract,
        parts["authors"],
        authors_json(record.structured_authors),
        record.journal,
        *[citation_value(record.extra.get(name)) for name in CITATION_FIELDS],
        record.published_on,
        record.entered_on,
        record.updated_on,
        record.url,
        parts["publication_types"],
        parts["mesh_terms"],
        parts["keywords"],
        record.language,
        record.version,
        join_json_parts(parts, [k for k in parts if k != "abstract"]),  # data: the abstract has its own column
        digest,
    )


def save_record(
    db,
    record: Record,
    now: str,
    *,
    stored: dict[int, dict[str, Any]] | None = None,
    batch: SaveBatch | None = None,
    prepared: PreparedRow | None = None,
    written: Any = None,
) -> tuple[str, int]:
    """Insert or update one record (its identifiers, links, trial snapshot, work): (new|updated|unchanged, record id).

    A record whose answer lacked a required field (``record.missing``) never overwrites the stored
    value of that field: the stored one is kept, and a warning names the record. With ``stored``, a
    new or updated record as written (``records.data`` with its abstract, stored values included) is put there
    under its id (in a :class:`WrittenRecords`, when read), so the batch can be classified without reading it back. With ``batch``
    (:class:`SaveBatch`, made for the records being saved), look-ups come from it and some writes are
    queued in it: call its ``flush`` before reading the rows. ``prepared``: :func:`prepare_record` of this
    record, computed ahead (not computed again; ignored when stored fields are kept); ``written``: with it, the
    record's ``to_dict()`` made ahead too (what ``stored`` gets, instead of making it again), or an object whose
    ``to_dict()`` makes it (a :class:`WrittenRecords` keeps it as it is: made if read)."""
    row = batch.row_of(record) if batch is not None else _stored_row(db, record)
    if row is not None and record.missing:
        _keep_stored_fields(db, row[0], record)
        prepared = None  # the record may have changed since
    data: Any = None
    if prepared is not None:
        digest, values = prepared
        data = written
    else:
        data = record.to_dict()
        parts = json_parts(data)  # each field encoded once, for records.data, the hash and the JSON columns
        digest = record.content_hash(data, parts)
    if row is not None and row[2] == digest:
        record_id = row[0]
        if batch is not None:
            batch.seen(record_id, now)
        else:
            db.conn.execute("UPDATE records SET last_seen_at = ? WHERE id = ?", [now, record_id])
        _save_trial_snapshot(db, record_id, record, now)
        return "unchanged", record_id
    if prepared is None:
        values = record_values(record, parts, digest)
    alone = False  # a new record on a work of its own, sharing no identifier with any stored work
    if row is None:
        existing = batch.works_with(record.identifiers) if batch is not None else _works_with_identifiers(db, record.identifiers)
        alone = not existing
        if batch is not None and not alone:
            batch.drop()
        work_id = existing[0] if existing else _create_work(db, record, values[_STRUCTURED_AUTHORS] or "[]", now)
        cursor = db.conn.execute(_INSERT_RECORD, [record.source, record.source_id, work_id, now, now, now, *values])
        record_id, status = cursor.lastrowid, "new"
    else:
        if batch is not None:
            batch.drop()
        record_id, work_id, _ = row
        db.conn.execute(_UPDATE_RECORD, [*values, now, now, record_id])
        status = "updated"
    if stored is not None:
        if data is not None:  # (a WrittenRecords makes a dict of what is not one when read)
            stored[record_id] = data if type(data) is dict or isinstance(stored, WrittenRecords) else data.to_dict()
        elif isinstance(stored, WrittenRecords):
            dict.__setitem__(stored, record_id, record)  # made into its dict if read
        else:
            stored[record_id] = record.to_dict()
    if alone and batch is not None and batch.valid:
        batch.saved_alone(record, record_id, work_id, digest)
        _save_trial_snapshot(db, record_id, record, now)
        return status, record_id
    _write_record_rows(db, record, record_id, work_id, status, now, alone)
    return status, record_id


def _write_record_rows(db, record: Record, record_id: int, work_id: int, status: str, now: str, alone: bool) -> None:
    """What :func:`save_record` writes after a record's row when no :class:`SaveBatch` queues it (a record that joins a
    work, an updated one, or one saved without a batch): its identifiers and links (an updated record's replace its
    old ones), its trial snapshot, its work's summary queued; then, unless it is a new record on a work of its own,
    the works sharing its identifiers joined and the work refreshed. (Apart from :func:`save_record`: a backfill's new
    records on works of their own take the batch's path and never call it.)"""
    if status == "new" or record.identifiers:  # the summary of a work gaining rows (no insert trigger queues it: m016)
        queue_summaries(db, [work_id])
    if status != "new":  # a new record's id has no rows yet (foreign keys: none are left behind)
        db.conn.execute("DELETE FROM identifiers WHERE record_id = ?", [record_id])
        db.conn.execute("DELETE FROM record_links WHERE record_id = ?", [record_id])
    if record.identifiers:
        db.conn.executemany(
            "INSERT OR IGNORE INTO identifiers (record_id, work_id, scheme, value) VALUES (?, ?, ?, ?)",
            [(record_id, work_id, scheme, value) for scheme, value in record.identifiers],
        )
    if record.links:
        db.conn.executemany(
            "INSERT OR IGNORE INTO record_links (record_id, relation, scheme, value, note) VALUES (?, ?, ?, ?, ?)",
            [(record_id, link.relation, link.scheme, link.value, link.note) for link in record.links],
        )
    _save_trial_snapshot(db, record_id, record, now)
    if alone:
        # its work was created from it with the summary refresh_work would compute, and no stored
        # work shares its identifiers: nothing to join, nothing to refresh
        return
    work_id = _join_works_sharing_identifiers(db, record_id, now, work_id)
    refresh_work(db, work_id, now)


def citation_value(value) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _works_with_identifiers(db, identifiers: list[tuple[str, str]]) -> list[int]:
    if not identifiers:
        return []
    condition = " OR ".join("(scheme = ? AND value = ?)" for _ in identifiers)
    params = [part for pair in identifiers for part in pair]
    return sorted(r[0] for r in db.conn.execute(f"SELECT DISTINCT work_id FROM identifiers WHERE {condition}", params))


def _create_work(db, record: Record, structured_authors: str, now: str) -> int:
    """A work for a record of its own, with the summary :func:`refresh_work` computes from that one record."""
    cursor = db.conn.execute(
        "INSERT INTO works (record_type, title, published_on, entered_on, first_seen_at, updated_at, authors) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            record.record_type,
            record.title if record.title and record.title.strip() else UNTITLED,
            record.published_on or None,
            record.entered_on or None,
            now,
            now,
            structured_authors,
        ],
    )
    return cursor.lastrowid


def _join_works_sharing_identifiers(db, record_id: int, now: str, work_id: int | None = None) -> int:
    """Records sharing a normalised identifier belong to one work (transitively).

    When the record's identifiers reach several works they are merged into the oldest one;
    the others keep their row with ``merged_into`` set so that old references still resolve.
    """
    if work_id is None:
        work_id = db.execute("SELECT work_id FROM records WHERE id = ?", [record_id]).fetchone()[0]
    shared: dict[int, str] = {}
    for other, scheme, value in db.execute(
        """SELECT other.work_id, mine.scheme, mine.value FROM identifiers AS mine
               JOIN identifiers AS other ON other.scheme = mine.scheme AND other.value = mine.value
               WHERE mine.record_id = ? AND other.work_id != ? ORDER BY other.work_id, mine.scheme, mine.value""",
        [record_id, work_id],
    ):
        shared.setdefault(other, f"identifier {scheme}:{value}")
    if not shared:
        return work_id
    group = sorted({work_id, *shared})
    survivor = group[0]
    for other in group[1:]:
        reason = shared.get(other) or shared[survivor]
        merge_works(db, survivor, [other], now, reason=reason, record_id=record_id)
    return survivor


def merge_works(
    db, survivor: int, merged: list[int], now: str | None = None, *, reason: str = "manual", record_id: int | None = None
) -> int:
    """Point every record, identifier, digest item and link of ``merged`` works at ``survivor``.

    Each merge is logged in ``work_merges`` with its ``reason`` (the shared identifier, or the
    fuzzy evidence) and the record that brought the evidence.
    """
    now = now or clock.stamp()
    with db.atomic():
        for work_id in merged:
            if work_id == survivor:
                continue
            for table in ("records", "identifiers", "digest_items"):
                db.execute(f"UPDATE {table} SET work_id = ? WHERE work_id = ?", [survivor, work_id])
            db.execute("UPDATE works SET merged_into = ?, updated_at = ? WHERE id = ?", [survivor, now, work_id])
            db.execute("UPDATE works SET merged_into = ? WHERE merged_into = ?", [survivor, work_id])
            repoint_work_links(db, work_id, survivor)
            db.execute(
                "INSERT INTO work_merges (survivor_id, merged_id, reason, record_id, merged_at) VALUES (?, ?, ?, ?, ?)",
                [survivor, work_id, reason, record_id, now],
            )
        refresh_work(db, survivor, now)
    return survivor


def _keep_stored_fields(db, record_id: int, record: Record) -> None:
    fields = [f for f in record.missing if f in KEEPABLE_FIELDS]
    if not fields:
        return
    stored = db.execute(f"SELECT {', '.join(fields)} FROM records WHERE id = ?", [record_id]).fetchone()
    kept = []
    for name, value in zip(fields, stored, strict=True):
        if value:
            setattr(record, name, value)
            kept.append(name)
    if kept:
        log.warning(
            "[%s] %s: the answer lacks %s; kept the stored value (a source-side omission must not erase good data)",
            record.source,
            record.source_id,
            ", ".join(kept),
        )


def refresh_work(db, work_id: int, now: str) -> None:
    """Recompute a work's summary columns from its records, best source first."""
    rows = db.execute(
        "SELECT source, record_type, title, published_on, entered_on, first_seen_at FROM records WHERE work_id = ?",
        [work_id],
    ).fetchall()
    if not rows:
        return

    def rank(row):
        return source_rank(row[0])

    best = min(rows, key=rank)
    # display fields come from the best source that has them: a record without a title never blanks the work's
    title = next((r[2] for r in sorted(rows, key=rank) if r[2] and r[2].strip()), None) or UNTITLED
    types = {r[1] for r in rows}
    record_type = next(
        (t for t in ("article", "notice", "trial_registration", "preprint", "news", "other") if t in types), best[1]
    )
    published = next((r[3] for r in sorted(rows, key=rank) if r[3]), None)
    entered = min((r[4] for r in rows if r[4]), default=None)
    first_seen = min(r[5] for r in rows)
    db.execute(
        "UPDATE works SET record_type = ?, title = ?, published_on = ?, entered_on = ?, first_seen_at = MIN(first_seen_at, ?), updated_at = ? WHERE id = ?",
        [record_type, title, published, entered, first_seen, now, work_id],
    )
    refresh_work_authors(db, work_id)


def refresh_work_authors(db, work_id: int) -> None:
    """``works.authors``: the structured authors of the work's best-ranked record that has any.

    Skipped while an older migration's backfill runs (m002 resolves works before m005 adds the column)."""
    if not any(col[1] == "authors" for col in db.execute("PRAGMA table_info(works)")):
        return
    rank = source_rank_sql("source")
    row = db.execute(
        f"SELECT structured_authors FROM records WHERE work_id = ? AND structured_authors != '[]' ORDER BY {rank}, id LIMIT 1",
        [work_id],
    ).fetchone()
    db.execute("UPDATE works SET authors = ? WHERE id = ?", [row[0] if row else "[]", work_id])


def _save_trial_snapshot(db, record_id: int, record: Record, now: str) -> None:
    if not record.trial:
        return
    fields = {name: record.trial.get(name) for name in TRIAL_FIELDS}
    if isinstance(fields["phases"], list):
        fields["phases"] = ", ".join(fields["phases"])
    if fields["has_results"] is not None:
        fields["has_results"] = int(bool(fields["has_results"]))
    latest = db.execute(
        f"SELECT {', '.join(TRIAL_FIELDS)} FROM trial_snapshots WHERE source = ? AND trial_id = ? ORDER BY id DESC LIMIT 1",
        [record.source, record.source_id],
    ).fetchone()
    if latest is not None and tuple(latest) == tuple(fields.values()):
        return
    db.execute(
        f"INSERT INTO trial_snapshots (record_id, source, trial_id, captured_at, status, {', '.join(TRIAL_FIELDS)})"
        f" VALUES (?, ?, ?, ?, ?, {marks(TRIAL_FIELDS)})",
        [record_id, record.source, record.source_id, now, normalise_trial_status(fields["overall_status"]), *fields.values()],
    )


def known_source_ids(db, source: str, source_ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(source_ids):
        found.update(
            r[0]
            for r in db.execute(
                f"SELECT source_id FROM records WHERE source = ? AND source_id IN ({marks(chunk)})",
                [source, *chunk],
            )
        )
    return found


def load_current_work_ids(db, work_ids: list[int] | None = None) -> list[int]:
    """Current (not merged) works: all of them, or those given (a merged one stands for its survivor)."""
    if work_ids is None:
        return [r[0] for r in db.execute("SELECT id FROM works WHERE merged_into IS NULL ORDER BY id")]
    result: set[int] = set()
    pending, seen = list(dict.fromkeys(work_ids)), set()
    while pending:  # one query per chunk and per step along merged_into (which points at the survivor)
        following = []
        for chunk in chunks(pending):
            for work_id, merged_into in db.conn.execute(f"SELECT id, merged_into FROM works WHERE id IN ({marks(chunk)})", chunk):
                if merged_into is None or merged_into in seen:
                    result.add(work_id)
                else:
                    seen.add(merged_into)
                    following.append(merged_into)
        pending = following
    return sorted(result)


def load_work_ids_of_records(db, keys: list[tuple[str, str]]) -> list[int]:
    """The current works that the records (source, source_id) belong to (sorted, each once)."""
    by_source: dict[str, list[str]] = {}
    for source, source_id in keys:
        by_source.setdefault(source, []).append(str(source_id))
    found: set[int] = set()
    for source, source_ids in by_source.items():
        for chunk in chunks(list(dict.fromkeys(source_ids))):
            found.update(
                r[0]
                for r in db.conn.execute(
                    f"SELECT work_id FROM records WHERE source = ? AND source_id IN ({marks(chunk)})", [source, *chunk]
                )
            )
    return load_current_work_ids(db, sorted(found))


def load_record_works(db, record_ids: list[int]) -> dict[int, tuple[int, int]]:
    """record id -> (its current work, how many records that work has)."""
    found: dict[int, tuple[int, int]] = {}
    for chunk in chunks(record_ids):
        for record_id, work_id, count in db.conn.execute(
            f"""SELECT r.id, r.work_id, (SELECT COUNT(*) FROM records o WHERE o.work_id = r.work_id)
                FROM records r WHERE r.id IN ({marks(chunk)})""",
            chunk,
        ):
            found[record_id] = (work_id, count)
    return found


def load_work_records(db, work_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """work_id -> its records as parsed (Record.to_dict(): ``records.data`` with ``records.abstract``)."""
    result: dict[int, list[dict[str, Any]]] = {}
    for chunk in chunks(work_ids):
        for work_id, data, abstract in db.conn.execute(
            f"SELECT work_id, CAST(data AS BLOB), abstract FROM records WHERE work_id IN ({marks(chunk)}) ORDER BY id", chunk
        ):
            record = loads(data)
            record["abstract"] = abstract
            result.setdefault(work_id, []).append(record)
    return result


# --------------------------------------------------------------------------- reads of the digest


def load_work(db, work_id: int) -> dict | None:
    """The ``works`` row of ``work_id``, or of the work it was merged into."""
    current = load_current_work_ids(db, [work_id])
    rows = list(db.query("SELECT * FROM works WHERE id = ?", [current[0] if current else work_id]))
    return rows[0] if rows else None


def find_work_by_identifier(db, scheme: str, value: str) -> dict | None:
    """The current work holding the identifier ``scheme:value``, if one is stored."""
    row = db.execute("SELECT work_id FROM identifiers WHERE scheme = ? AND value = ? LIMIT 1", [scheme, value]).fetchone()
    return load_work(db, row[0]) if row else None


def load_works_first_seen(db, *, until: str, after: str | None = None, entered_since: str | None = None) -> list[dict]:
    """Current works first seen up to ``until``: after ``after``, or (a first digest) entered since the date ``entered_since``."""
    params: list = [until]
    where = ["w.merged_into IS NULL", "w.first_seen_at <= ?"]
    if entered_since is not None:
        where.append("COALESCE(w.entered_on, substr(w.first_seen_at, 1, 10)) >= ?")
        params.append(entered_since)
    else:
        where.append("w.first_seen_at > ?")
        params.append(after)
    return list(db.query(f"SELECT w.* FROM works w WHERE {' AND '.join(where)}", params))


def load_arrivals(db, *, until: str, after: str | None = None) -> list[dict]:
    """Current works first seen up to ``until`` (and after ``after``), one row per (work, source of its records):
    ``work_id``, ``entered`` (the date it entered its sources: ``entered_on``, else ``published_on``, else the
    day litmon first saw it) and ``source``."""
    where, params = "w.merged_into IS NULL AND w.first_seen_at <= ?", [until]
    if after is not None:
        where += " AND w.first_seen_at > ?"
        params.append(after)
    return list(
        db.query(
            f"""SELECT DISTINCT w.id AS work_id, COALESCE(w.entered_on, w.published_on, substr(w.first_seen_at, 1, 10)) AS entered,
                       r.source FROM works w JOIN records r ON r.work_id = w.id WHERE {where}""",
            params,
        )
    )


def load_records_of_work(db, work_id: int) -> list[dict]:
    """Every ``records`` row of a work (stored order)."""
    return list(db.query("SELECT * FROM records WHERE work_id = ?", [work_id]))


def load_identifiers_of_work(db, work_id: int) -> list[dict]:
    """The work's identifiers (``scheme``, ``value``), sorted."""
    return list(db.query("SELECT scheme, value FROM identifiers WHERE work_id = ? ORDER BY scheme, value", [work_id]))


def load_linked_works(db, work_id: int) -> list[dict]:
    """Links of ``work_links_view`` touching the work: ``link_type``, ``other`` (work id), ``title``, ``outgoing``."""
    return list(
        db.query(
            """SELECT link_type, to_work_id AS other, to_title AS title, 1 AS outgoing FROM work_links_view WHERE from_work_id = ?
               UNION SELECT link_type, from_work_id, from_title, 0 FROM work_links_view WHERE to_work_id = ?""",
            [work_id, work_id],
        )
    )


def load_current_identifiers(db, work_id: int) -> dict[str, str]:
    """scheme -> one identifier of a current work (``work_identifiers``; the smallest value of each scheme)."""
    return {
        r["scheme"]: r["value"]
        for r in db.query("SELECT scheme, value FROM work_identifiers WHERE work_id = ? ORDER BY value DESC", [work_id])
    }


def load_preprint_dois_changed(db, since: str, until: str) -> list[dict]:
    """``work_id``, ``value``: preprint records changed in (since, until] that name their published version's DOI."""
    return list(
        db.query(
            """SELECT DISTINCT r.work_id, l.value FROM record_links l JOIN records r ON r.id = l.record_id
           WHERE l.relation = 'preprint_of' AND l.scheme = 'doi' AND r.changed_at > ? AND r.changed_at <= ?""",
            [since, until],
        )
    )


def load_links_changed(db, relations: Iterable[str], since: str, until: str) -> list[dict]:
    """``work_id``, ``relation``, ``scheme``, ``value``: links of ``relations`` stated by records changed in (since, until]."""
    relations = list(relations)
    return list(
        db.query(
            f"""SELECT r.work_id, l.relation, l.scheme, l.value FROM record_links l JOIN records r ON r.id = l.record_id
            WHERE l.relation IN ({marks(relations)}) AND r.changed_at > ? AND r.changed_at <= ?""",
            [*relations, since, until],
        )
    )


def load_trial_snapshots_between(db, since: str, until: str) -> list[tuple]:
    """Snapshots captured in (since, until]: (id, source, trial_id, captured_at, work_id, *TRIAL_FIELDS), oldest first."""
    return db.execute(
        f"""SELECT s.id, s.source, s.trial_id, s.captured_at, r.work_id, {", ".join("s." + f for f in TRIAL_FIELDS)}
            FROM trial_snapshots s JOIN records r ON r.id = s.record_id
            WHERE s.captured_at > ? AND s.captured_at <= ? ORDER BY s.id""",
        [since, until],
    ).fetchall()


def load_previous_trial_snapshot(db, source: str, trial_id: str, before_id: int) -> tuple | None:
    """The TRIAL_FIELDS of the trial's snapshot before ``before_id`` (None: it is the first)."""
    return db.execute(
        f"SELECT {', '.join(TRIAL_FIELDS)} FROM trial_snapshots WHERE source = ? AND trial_id = ? AND id < ? ORDER BY id DESC LIMIT 1",
        [source, trial_id, before_id],
    ).fetchone()


def count_records_by_source(db) -> dict[str, int]:
    return {r["source"]: r["n"] for r in db.query("SELECT source, COUNT(*) AS n FROM records GROUP BY source")}


def count_rows(db) -> dict[str, int]:
    """What `litmon status` counts: current works, records, identifiers, digests and crawl runs."""
    return {
        "works": db.execute("SELECT COUNT(*) FROM works WHERE merged_into IS NULL").fetchone()[0],
        "records": db.execute("SELECT COUNT(*) FROM records").fetchone()[0],
        "identifiers": db.execute("SELECT COUNT(*) FROM identifiers").fetchone()[0],
        "digests": db.execute("SELECT COUNT(*) FROM digests").fetchone()[0],
        "crawl_runs": db.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()[0],
    }
