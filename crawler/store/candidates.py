"""Dedup candidates: the SQL of :mod:`crawler.dedup`: fingerprints and blocking keys
(``record_fingerprints``, ``match_keys``), candidate look-ups, stated links and ``work_links``."""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterable, Sequence
from hashlib import blake2b
from typing import Any

from crawler.store.common import chunks, insert_values, marks


def _rows(db, sql: str, params=()) -> list[dict[str, Any]]:
    """Rows as dicts, on the raw connection (``db.query`` wraps every read in SAVEPOINT/RELEASE)."""
    cursor = db.conn.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, values)) for values in cursor]


@functools.lru_cache(maxsize=16384)
def key_hash(key: str) -> int:
    """``match_keys.key`` of a blocking key: the 8-byte BLAKE2b digest (``digest_size=8``) of the key's UTF-8 bytes,
    read as a signed big-endian 64-bit integer (SQLite's INTEGER; the same in every process, machine and Python
    version, unlike ``hash()``). Two keys sharing a hash only bring a record a candidate that the comparison rejects.

    Memoised: a batch hashes a record's keys when it saves them, then again to find their neighbours and candidates
    (~1.2 µs a hash, ~0.1 µs a hit)."""
    hasher = _BLAKE2B_8.copy()
    hasher.update(key.encode())
    return _INT64(hasher.digest())[0]


#: An 8-byte BLAKE2b hasher fed nothing, copied for each key, and a big-endian int64 reader: the same value as
#: ``int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)`` for 4.9k instructions a key
#: instead of 6.8k (callgrind, 2,000 keys): ``blake2b()`` parses its twelve keyword parameters at every call.
_BLAKE2B_8 = blake2b(digest_size=8)
_INT64 = struct.Struct(">q").unpack


def all_record_ids(db) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM records ORDER BY id")]


def load_match_records(db, record_ids: list[int]) -> list[dict[str, Any]]:
    """The fields fuzzy matching reads, for each record id (in the order given)."""
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks(record_ids):
        for row in _rows(
            db,
            f"""SELECT id, work_id, source, record_type, title, authors, published_on, entered_on, publication_types,
                    journal, structured_authors, json_extract(data, '$.extra.issn') AS issn,
                    (SELECT group_concat(relation) FROM record_links rl WHERE rl.record_id = records.id) AS relations
                    FROM records WHERE id IN ({marks(chunk)})""",
            chunk,
        ):
            found[row["id"]] = row
    return [found[i] for i in record_ids if i in found]


def save_fingerprint(db, record_id: int, fp, keys: list[str]) -> None:
    """Replace a record's fingerprint (``record_fingerprints``) and blocking keys (``match_keys``)."""
    save_fingerprints(db, [(record_id, fp, list(map(key_hash, keys)))])


def save_fingerprints(db, items: list[tuple[int, Any, list[int]]]) -> None:
    """Replace the fingerprints and blocking keys of records: ``(record_id, fingerprint, key hashes)`` each (the
    :func:`key_hash` of each key: :attr:`crawler.matching.MatchInputs.key_hashes`, made where the keys are)."""
    insert_values(
        db.conn,
        "INSERT INTO record_fingerprints (record_id, kind, title_key, first_author, author_words, year)",
        [(record_id, fp.kind, fp.title_key, fp.first_author, " ".join(fp.author_words), fp.year) for record_id, fp, _ in items],
        """ON CONFLICT(record_id) DO UPDATE SET kind = excluded.kind, title_key = excluded.title_key,
           first_author = excluded.first_author, author_words = excluded.author_words, year = excluded.year""",
    )
    for chunk in chunks([record_id for record_id, _, _ in items]):
        db.conn.execute(f"DELETE FROM match_keys WHERE record_id IN ({marks(chunk)})", chunk)
    # one run per row: a statement of many rows that may abort (foreign keys) saves each page it changes first, and
    # a batch's keys land on pages all over the key's index (64 rows: ~64 pages of 16 KiB, spilled to a temporary file)
    db.conn.executemany(
        "INSERT OR IGNORE INTO match_keys (key, year, record_id) VALUES (?, ?, ?)",
        [(key, fp.year or 0, record_id) for record_id, fp, hashes in items for key in hashes],
    )


def key_neighbours(
    db, wanted: list[tuple[int, list[int], int, int, str, list[str]]], block_limit: int
) -> tuple[set[int], set[int]]:
    """For a whole batch in a few statements, which records have other records under their blocking keys:
    ``wanted`` holds ``(record_id, key hashes, first year, last year, kind, link kinds)`` each (the :func:`key_hash`
    of each key; year 0: records without a year). Returns two sets of record ids:

    * those sharing a key with any other record within the years;
    * those of them with a row that :func:`find_candidate_groups` could keep: of the record's kind on a
      work that is not the record's own and carries no conflicting identifier (two PMIDs, two DOIs…), or
      of one of its link kinds; and those with a key group over ``block_limit`` rows (cut and logged).

    A record outside the first set has no candidate at all; outside the second, none that the look-up
    would keep, while the works stay as they are (a merge changes works and identifiers: only the
    first set holds after one).

    Each key's group is read once, within the years and up to ``block_limit + 1`` rows (its record ids);
    the works and kinds of the distinct neighbours, then the identifiers of the works to compare, are read
    with one query per chunk each, and the identifier test (a scheme both works carry, no identifier in
    common: the look-up's) is made here, once per pair of works rather than once per key and row."""
    conn = db.conn
    any_row: set[int] = set()
    kept: set[int] = set()
    near: dict[int, set[str]] = {}
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS key_neighbour_pairs (record_id, key, first_year, last_year)")
    conn.execute("DELETE FROM temp.key_neighbour_pairs")
    insert_values(
        conn,
        "INSERT INTO temp.key_neighbour_pairs",
        [(record_id, key, first, last) for record_id, hashes, first, last, _, _ in wanted for key in dict.fromkeys(hashes)],
    )
    # only the pairs with a neighbour come back (a backfill's keys mostly have none): a row fetched costs a few thousand
    # instructions. The inner query's LIMIT keeps SQLite from flattening it, which would run the correlated subquery
    # twice per row kept (once in the WHERE, once in the result).
    for record_id, found in conn.execute(
        """SELECT record_id, found FROM (
               SELECT p.record_id, (SELECT group_concat(record_id) FROM (SELECT m.record_id FROM match_keys m
                      WHERE m.key = p.key AND m.year BETWEEN p.first_year AND p.last_year AND m.record_id != p.record_id
                      LIMIT ?)) AS found
               FROM temp.key_neighbour_pairs p LIMIT -1)
           WHERE found IS NOT NULL""",
        [block_limit + 1],
    ):
        any_row.add(record_id)
        ids = found.split(",")
        if len(ids) > block_limit:
            kept.add(record_id)
        else:
            near.setdefault(record_id, set()).update(ids)
    conn.execute("DELETE FROM temp.key_neighbour_pairs")
    near = {record_id: ids for record_id, ids in near.items() if record_id not in kept}
    if near:
        _keep_neighbours_the_look_up_would(db, wanted, near, kept)
    return any_row, kept


def _keep_neighbours_the_look_up_would(
    db, wanted: list[tuple[int, list[int], int, int, str, list[str]]], near: dict[int, set[str]], kept: set[int]
) -> None:
    """:func:`key_neighbours`' second set: add to ``kept`` each record of ``near`` (record id -> its neighbours' ids)
    with a neighbour :func:`find_candidate_groups` could keep: of one of its link kinds, or of its own kind on
    another work that carries no conflicting identifier (the works and kinds read in one query per chunk, then the
    identifiers of the works to compare)."""
    conn = db.conn
    work: dict[int, int] = {}
    kind: dict[int, str] = {}
    for chunk in chunks(sorted({int(i) for ids in near.values() for i in ids} | set(near))):
        for record_id, work_id, record_kind in conn.execute(
            f"""SELECT r.id, r.work_id, f.kind FROM records r LEFT JOIN record_fingerprints f ON f.record_id = r.id
                WHERE r.id IN ({marks(chunk)})""",
            chunk,
        ):
            work[record_id] = work_id
            if record_kind is not None:
                kind[record_id] = record_kind
    # the neighbour's work, when only the identifier test can tell whether the look-up keeps it
    to_test: dict[int, set[int]] = {}
    wanted_of = {record_id: (own_kind, "," + ",".join(links) + ",") for record_id, _, _, _, own_kind, links in wanted}
    for record_id, ids in near.items():
        mine = work.get(record_id)
        own_kind, links = wanted_of[record_id]
        for other in map(int, ids):
            other_kind, other_work = kind.get(other), work.get(other)
            if other_kind is None or other_work is None or mine is None or other_work == mine:
                continue
            if f",{other_kind}," in links:
                kept.add(record_id)
                break
            if other_kind == own_kind:
                to_test.setdefault(record_id, set()).add(other_work)
    to_test = {record_id: works for record_id, works in to_test.items() if record_id not in kept}
    if to_test:
        identifiers = _work_identifiers(db, {w for works in to_test.values() for w in works} | {work[r] for r in to_test})
        none: frozenset = frozenset()
        for record_id, works in to_test.items():
            mine_ids = identifiers.get(work[record_id], none)
            mine_schemes = {scheme for scheme, _ in mine_ids}
            for other_work in works:
                other_ids = identifiers.get(other_work, none)
                # kept unless a conflict: a scheme both carry, and no identifier in common
                if not any(scheme in mine_schemes for scheme, _ in other_ids) or not mine_ids.isdisjoint(other_ids):
                    kept.add(record_id)
                    break


def _work_identifiers(db, work_ids: set[int]) -> dict[int, frozenset[tuple[str, str]]]:
    """Each work's identifiers as ``(scheme, value)`` pairs (a work without any is left out)."""
    found: dict[int, set[tuple[str, str]]] = {}
    for chunk in chunks(sorted(work_ids)):
        for work_id, scheme, value in db.conn.execute(
            f"SELECT work_id, scheme, value FROM identifiers WHERE work_id IN ({marks(chunk)})", chunk
        ):
            found.setdefault(work_id, set()).add((scheme, value))
    return {work_id: frozenset(pairs) for work_id, pairs in found.items()}


def find_candidates(
    db,
    keys: list[str],
    *,
    kinds: list[str],
    record_id: int,
    years: tuple[int, int] | None,
    skip_conflicting: bool,
    limit: int,
    block_limit: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of ``kinds`` sharing a blocking key with ``record_id``, most shared keys first; and the
    keys whose group was cut at ``block_limit`` records.

    Each key's group is read up to ``block_limit`` records (``LIMIT`` inside the query, never counted
    first). Left out in SQL, before anything is compared: records of the record's own work, records
    whose year is outside ``years`` (None: records without a year only) and, with
    ``skip_conflicting``, records whose work carries an identifier scheme that the record's work
    carries too without sharing a value (two PMIDs, two DOIs, two NCT numbers: two works).
    """
    return find_candidate_groups(
        db,
        [keys],
        kinds=kinds,
        record_id=record_id,
        years=years,
        skip_conflicting=skip_conflicting,
        limit=limit,
        block_limit=block_limit,
    )[0]


def find_candidate_groups(
    db,
    groups: list[list[str]],
    *,
    kinds: list[str],
    record_id: int,
    years: tuple[int, int] | None,
    skip_conflicting: bool,
    limit: int,
    block_limit: int,
    filters: list[tuple[list[str], tuple[int, int] | None, bool]] | None = None,
    hashed: dict[str, int] | None = None,
) -> list[tuple[list[dict[str, Any]], list[str]]]:
    """:func:`find_candidates` for several groups of keys (e.g. title keys and citation keys) in one query:
    each group's candidates (ranked and cut at ``limit`` within the group) and its cut keys, as separate
    calls would give them. ``filters`` gives each group its own ``(kinds, years, skip_conflicting)``
    (default: the ones given for all). Each key's group is read within the year window (``match_keys.year``),
    so its size is that of an author's few years, whatever the corpus spans. ``hashed``: key -> its
    :func:`key_hash`, for every key of ``groups``, when the caller has them (a record's own keys, hashed with them)."""
    filters = filters or [(kinds, years, skip_conflicting)] * len(groups)
    all_keys = list(dict.fromkeys(key for keys, (kinds_i, _, _) in zip(groups, filters, strict=True) if kinds_i for key in keys))
    if not all_keys:
        return [([], []) for _ in groups]
    windows = {years_i for kinds_i, years_i, _ in filters if kinds_i}
    year_params: list[int]
    if windows == {None}:  # a record without a year is compared with records without one (year 0)
        block_years, year_params = "AND year = 0", []
    elif None in windows:
        block_years, year_params = "", []
    else:  # the widest window of the filters: each filter checks its own below
        block_years = "AND year BETWEEN ? AND ?"
        year_params = [min(w[0] for w in windows if w), max(w[1] for w in windows if w)]
    if hashed is None:
        hashed = {key: key_hash(key) for keys in groups for key in keys}  # each key hashed once (a hit costs ~200 instructions)
    key_of: dict[int, str] = {}  # stored key (a hash) -> the key it stands for (the first, should two keys share one)
    for key in all_keys:
        key_of.setdefault(hashed[key], key)
    # each block gives back the hash it was bound (not the column: a file not yet at m018 holds it as text)
    blocks = " UNION ALL ".join(
        f"SELECT * FROM (SELECT ? AS key, record_id FROM match_keys WHERE key = ? {block_years} AND record_id != ? LIMIT ?)"
        for _ in key_of
    )
    params: list[Any] = [record_id]
    for stored in key_of:
        params += [stored, stored, *year_params, record_id, block_limit + 1]
    conflict_sql = """AND NOT EXISTS (
                SELECT 1 FROM identifiers ci JOIN mine ON mine.scheme = ci.scheme WHERE ci.work_id = r.work_id
                AND NOT EXISTS (SELECT 1 FROM identifiers cj JOIN mine m2 ON m2.scheme = cj.scheme AND m2.value = cj.value
                                WHERE cj.work_id = r.work_id))"""
    eligible = []
    for index, (kinds_i, years_i, skip_i) in enumerate(filters):
        if not kinds_i:
            eligible.append(f"0 AS eligible_{index}")
            continue
        year_sql = "f.year BETWEEN ? AND ?" if years_i is not None else "f.year IS NULL"
        eligible.append(
            f"""(f.kind IN ({marks(kinds_i)}) AND {year_sql} AND r.work_id != (SELECT work_id FROM me)
                 {conflict_sql if skip_i else ""}) AS eligible_{index}"""
        )
        params += [*kinds_i, *(years_i or ())]
    sql = f"""WITH me AS (SELECT work_id FROM records WHERE id = ?),
                   mine AS (SELECT scheme, value FROM identifiers WHERE work_id = (SELECT work_id FROM me)),
                   c AS ({blocks})
              SELECT c.key, c.record_id, r.work_id, f.kind, f.title_key, f.first_author, f.author_words, f.year,
                     {", ".join(eligible)}
              FROM c JOIN record_fingerprints f ON f.record_id = c.record_id JOIN records r ON r.id = c.record_id"""
    found, per_key = _candidates_by_group(db.conn.execute(sql, params), groups, hashed, key_of, block_limit)
    results: list[tuple[list[dict[str, Any]], list[str]]] = []
    for index, keys in enumerate(groups):
        if not filters[index][0]:
            results.append(([], []))
            continue
        oversized = [key for key in dict.fromkeys(keys) if per_key.get(hashed[key], 0) > block_limit]
        ranked = sorted(found[index].values(), key=lambda r: (-r["shared"], r["record_id"]))
        results.append((ranked[:limit], oversized))
    return results


def _candidates_by_group(
    cursor, groups: list[list[str]], hashed: dict[str, int], key_of: dict[int, str], block_limit: int
) -> tuple[list[dict[int, dict[str, Any]]], dict[int, int]]:
    """:func:`find_candidate_groups`' rows read: each group's candidates (record id -> the row, its key named,
    ``shared``: how many of the group's keys it came under; rows past a key's ``block_limit`` left out) and the rows
    each key (hash) brought."""
    columns = [d[0] for d in cursor.description]
    flags = [f"eligible_{index}" for index in range(len(groups))]
    group_of: dict[int, list[int]] = {}
    for index, keys in enumerate(groups):
        for stored in dict.fromkeys(map(hashed.__getitem__, keys)):
            group_of.setdefault(stored, []).append(index)
    per_key: dict[int, int] = {}
    found: list[dict[int, dict[str, Any]]] = [{} for _ in groups]
    for values in cursor:
        row = dict(zip(columns, values))
        stored = row["key"]
        row["key"] = key_of[stored]
        per_key[stored] = per_key.get(stored, 0) + 1
        ok = [row.pop(flag) for flag in flags]
        if per_key[stored] > block_limit:
            continue
        for index in group_of.get(stored, ()):
            if not ok[index]:
                continue
            seen = found[index].get(row["record_id"])
            if seen is None:
                found[index][row["record_id"]] = {**row, "shared": 1}
            else:
                seen["shared"] += 1
    return found, per_key


def current_work_ids(db, record_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for chunk in chunks(record_ids):
        found.update(r[0] for r in db.execute(f"SELECT DISTINCT work_id FROM records WHERE id IN ({marks(chunk)})", chunk))
    return found


def work_identifier_sets(db, work_ids: list[int]) -> dict[int, dict[str, set[str]]]:
    result: dict[int, dict[str, set[str]]] = {}
    for chunk in chunks(work_ids):
        for work_id, scheme, value in db.execute(
            f"SELECT work_id, scheme, value FROM identifiers WHERE work_id IN ({marks(chunk)})", chunk
        ):
            result.setdefault(work_id, {}).setdefault(scheme, set()).add(value)
    return result


def work_kinds(db, work_id: int) -> set[str]:
    return {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT f.kind FROM records r JOIN record_fingerprints f ON f.record_id = r.id WHERE r.work_id = ?",
            [work_id],
        )
    }


def load_fingerprints_of_work(db, work_id: int) -> list[dict[str, Any]]:
    return _rows(
        db,
        """SELECT f.record_id, f.kind, f.title_key, f.first_author, f.author_words, f.year FROM records r
           JOIN record_fingerprints f ON f.record_id = r.id WHERE r.work_id = ? ORDER BY f.record_id""",
        [work_id],
    )


_STATED_LINK_COLUMNS = """rl.record_id, r.source, r.source_id, rl.relation, rl.scheme, rl.value, rl.note,
                          r.work_id AS record_work_id, i.work_id AS target_work_id"""


def stated_links_touching(db, work_id: int) -> list[dict[str, Any]]:
    """Record links that resolve to a stored work, stated by a record of ``work_id`` or naming one of its identifiers."""
    return _rows(
        db,
        f"""SELECT * FROM (SELECT DISTINCT {_STATED_LINK_COLUMNS} FROM records r JOIN record_links rl ON rl.record_id = r.id
                JOIN identifiers i ON i.scheme = rl.scheme AND i.value = rl.value WHERE r.work_id = ?)
            UNION ALL
            SELECT * FROM (SELECT DISTINCT {_STATED_LINK_COLUMNS} FROM identifiers i
                JOIN record_links rl ON rl.scheme = i.scheme AND rl.value = i.value
                JOIN records r ON r.id = rl.record_id WHERE i.work_id = ? AND r.work_id != ?)""",
        [work_id, work_id, work_id],
    )


def stated_links_touching_works(db, work_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """:func:`stated_links_touching` for many works at once: work id -> its rows (one query per chunk)."""
    found: dict[int, list[dict[str, Any]]] = {}
    for chunk in chunks(work_ids):
        for row in _rows(
            db,
            f"""SELECT * FROM (SELECT DISTINCT r.work_id AS touching, {_STATED_LINK_COLUMNS} FROM records r
                    JOIN record_links rl ON rl.record_id = r.id
                    JOIN identifiers i ON i.scheme = rl.scheme AND i.value = rl.value WHERE r.work_id IN ({marks(chunk)}))
                UNION ALL
                SELECT * FROM (SELECT DISTINCT i.work_id AS touching, {_STATED_LINK_COLUMNS} FROM identifiers i
                    JOIN record_links rl ON rl.scheme = i.scheme AND rl.value = i.value
                    JOIN records r ON r.id = rl.record_id WHERE i.work_id IN ({marks(chunk)}) AND r.work_id != i.work_id)""",
            [*chunk, *chunk],
        ):
            found.setdefault(row.pop("touching"), []).append(row)
    return found


def works_with_stated_preprint_links(db, work_ids: list[int]) -> set[int]:
    """:func:`has_stated_preprint_link` for many works at once: those that have one."""
    relations = ("preprint_of", "has_preprint")
    found: set[int] = set()
    for chunk in chunks(work_ids):
        found.update(
            row[0]
            for row in db.conn.execute(
                f"""SELECT r.work_id FROM records r JOIN record_links rl ON rl.record_id = r.id
                    WHERE r.work_id IN ({marks(chunk)}) AND rl.relation IN (?, ?)
                    UNION SELECT i.work_id FROM identifiers i JOIN record_links rl ON rl.scheme = i.scheme AND rl.value = i.value
                    WHERE i.work_id IN ({marks(chunk)}) AND rl.relation IN (?, ?)""",
                [*chunk, *relations, *chunk, *relations],
            )
        )
    return found


def load_fingerprints_of_works(
    db, work_ids: list[int], kinds: Sequence[str] | None = None, skip: Iterable[int] = ()
) -> dict[int, list[dict[str, Any]]]:
    """:func:`load_fingerprints_of_work` for many works at once: work id -> its fingerprints (record order); with
    ``kinds``, only fingerprints of those kinds, and none of the records in ``skip``."""
    found: dict[int, list[dict[str, Any]]] = {}
    where, extra = "", []
    if kinds is not None:
        where = f" AND f.kind IN ({marks(kinds)}) AND f.record_id NOT IN (SELECT value FROM json_each(?))"
        extra = [*kinds, json.dumps(sorted(set(skip)))]
    for chunk in chunks(work_ids):
        for row in _rows(
            db,
            f"""SELECT r.work_id, f.record_id, f.kind, f.title_key, f.first_author, f.author_words, f.year FROM records r
                JOIN record_fingerprints f ON f.record_id = r.id WHERE r.work_id IN ({marks(chunk)}){where}
                ORDER BY f.record_id""",
            [*chunk, *extra],
        ):
            found.setdefault(row.pop("work_id"), []).append(row)
    return found


class WorkLinks:
    """The ``work_links`` rows touching a set of works, read once and kept in step with the writes made
    through it, so that links can be re-resolved work after work with one query for the whole set."""

    def __init__(self, db, work_ids: list[int]):
        self.db = db
        self.by_work: dict[int, dict[tuple[int, int, str, str], int]] = {w: {} for w in work_ids}
        for chunk in chunks(work_ids):
            for link_id, *key in db.conn.execute(
                f"""SELECT id, from_work_id, to_work_id, link_type, evidence FROM work_links
                    WHERE from_work_id IN ({marks(chunk)}) UNION
                    SELECT id, from_work_id, to_work_id, link_type, evidence FROM work_links WHERE to_work_id IN ({marks(chunk)})""",
                [*chunk, *chunk],
            ):
                self._add(tuple(key), link_id)

    def _add(self, key: tuple[int, int, str, str], link_id: int) -> None:
        for work_id in {key[0], key[1]}:
            if work_id in self.by_work:
                self.by_work[work_id][key] = link_id

    def sync(self, work_id: int, desired: dict[tuple[int, int, str, str], int | None], now: str) -> None:
        """:func:`sync_work_links` for one of the works."""
        existing = dict(self.by_work[work_id])
        for key, link_id in existing.items():
            if key not in desired:
                self.db.conn.execute("DELETE FROM work_links WHERE id = ?", [link_id])
                for other in {key[0], key[1]}:
                    self.by_work.get(other, {}).pop(key, None)
        for key, record_id in desired.items():
            if key not in existing:
                cursor = self.db.conn.execute(
                    "INSERT OR IGNORE INTO work_links (from_work_id, to_work_id, link_type, evidence, record_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [*key, record_id, now],
                )
                if cursor.rowcount:
                    self._add(key, cursor.lastrowid)
                else:  # already there (not touching this work when read: cannot happen, but stay exact)
                    row = self.db.conn.execute(
                        "SELECT id FROM work_links WHERE from_work_id = ? AND to_work_id = ? AND link_type = ? AND evidence = ?",
                        key,
                    ).fetchone()
                    self._add(key, row[0])


def stated_link_between(db, a: int, b: int) -> bool:
    """Whether a record of one work states any link to an identifier of the other."""
    sql = """SELECT 1 FROM records r JOIN record_links rl ON rl.record_id = r.id
             JOIN identifiers i ON i.scheme = rl.scheme AND i.value = rl.value WHERE r.work_id = ? AND i.work_id = ? LIMIT 1"""
    return any(db.execute(sql, pair).fetchone() is not None for pair in ([a, b], [b, a]))


def has_stated_preprint_link(db, work_id: int) -> bool:
    """Whether a record of the work states a preprint link, or one names the work's identifiers."""
    relations = ("preprint_of", "has_preprint")
    return bool(
        db.conn.execute(
            """SELECT EXISTS (SELECT 1 FROM records r JOIN record_links rl ON rl.record_id = r.id
                              WHERE r.work_id = ? AND rl.relation IN (?, ?))
                   OR EXISTS (SELECT 1 FROM identifiers i JOIN record_links rl ON rl.scheme = i.scheme AND rl.value = i.value
                              WHERE i.work_id = ? AND rl.relation IN (?, ?))""",
            [work_id, *relations, work_id, *relations],
        ).fetchone()[0]
    )


def sync_work_links(db, work_id: int, desired: dict[tuple[int, int, str, str], int | None], now: str) -> None:
    """Make the links touching ``work_id`` exactly ``desired`` ((from, to, type, evidence) -> record id).

    Rows that stay keep their ``created_at``, so re-resolving unchanged data changes nothing.
    """
    existing = {
        (r[1], r[2], r[3], r[4]): r[0]
        for r in db.execute(
            "SELECT id, from_work_id, to_work_id, link_type, evidence FROM work_links WHERE from_work_id = ? OR to_work_id = ?",
            [work_id, work_id],
        )
    }
    for key, link_id in existing.items():
        if key not in desired:
            db.execute("DELETE FROM work_links WHERE id = ?", [link_id])
    for key, record_id in desired.items():
        if key not in existing:
            db.execute(
                "INSERT OR IGNORE INTO work_links (from_work_id, to_work_id, link_type, evidence, record_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [*key, record_id, now],
            )


def repoint_work_links(db, old: int, new: int) -> None:
    """Links of a merged work now belong to its survivor (duplicates and self-links dropped)."""
    for column in ("from_work_id", "to_work_id"):
        db.execute(f"UPDATE OR IGNORE work_links SET {column} = ? WHERE {column} = ?", [new, old])
        db.execute(f"DELETE FROM work_links WHERE {column} = ?", [old])
    db.execute("DELETE FROM work_links WHERE from_work_id = ? AND to_work_id = ?", [new, new])


def load_fingerprint_rows(db) -> list[dict[str, Any]]:
    cursor = db.conn.execute("SELECT record_id, kind, title_key, first_author, author_words, year FROM record_fingerprints")
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, values)) for values in cursor]


def save_match_keys(db, keys: list[tuple[str, int | None, int]]) -> None:
    """Add blocking keys ``(key, year, record_id)`` (year None: unknown), stored as :func:`key_hash`."""
    insert_values(
        db.conn, "INSERT OR IGNORE INTO match_keys (key, year, record_id)", [(key_hash(k), y or 0, r) for k, y, r in keys]
    )
