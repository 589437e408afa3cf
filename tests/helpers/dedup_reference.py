"""The dedup SQL as it was before a restructuring, kept to check that the new code gives the same answers.

:func:`key_neighbours` is ``crawler.store.candidates.key_neighbours`` of session 4 (one statement per
chunk: two ``EXISTS`` and a bounded ``COUNT`` per record and key, the identifier test per row in SQL).
"""

from __future__ import annotations

import json

from crawler.store.candidates import key_hash
from crawler.store.common import chunks


def key_neighbours(
    db, wanted: list[tuple[int, list[str] | list[int], int, int, str, list[str]]], block_limit: int
) -> tuple[set[int], set[int]]:
    """For a whole batch in one statement, which records have other records under their blocking keys:
    ``wanted`` holds ``(record_id, keys, first year, last year, kind, link kinds)`` each (keys as texts, or as
    stored: their hashes, as the current function takes them; year 0: records without a year). Returns two sets of record ids:

    * those sharing a key with any other record within the years (an ``EXISTS`` that stops at the
      first row of the key's group, however large the group);
    * those of them with a row that :func:`find_candidate_groups` could keep: of the record's kind on a
      work that is not the record's own and carries no conflicting identifier (two PMIDs, two DOIs…), or
      of one of its link kinds; and those with a key group over ``block_limit`` rows (cut and logged).

    A record outside the first set has no candidate at all; outside the second, none that the look-up
    would keep, while the works stay as they are (a merge changes works and identifiers: only the
    first set holds after one)."""
    pairs = [
        [record_id, key if type(key) is int else key_hash(key), first, last, kind, "," + ",".join(links) + ","]
        for record_id, keys, first, last, kind, links in wanted
        for key in dict.fromkeys(keys)
    ]
    any_row: set[int] = set()
    kept: set[int] = set()
    window = "m.key = q.key AND m.year BETWEEN q.lo AND q.hi AND m.record_id != q.rid"
    for chunk in chunks(pairs, 2000):
        for record_id, found, eligible, size in db.conn.execute(
            f"""WITH p AS (SELECT json_extract(value, '$[0]') AS rid, json_extract(value, '$[1]') AS key,
                                  json_extract(value, '$[2]') AS lo, json_extract(value, '$[3]') AS hi,
                                  json_extract(value, '$[4]') AS kind, json_extract(value, '$[5]') AS links FROM json_each(?)),
                     q AS (SELECT p.*, (SELECT work_id FROM records WHERE id = p.rid) AS mine FROM p)
                SELECT q.rid, EXISTS (SELECT 1 FROM match_keys m WHERE {window}),
                       EXISTS (SELECT 1 FROM match_keys m JOIN record_fingerprints f ON f.record_id = m.record_id
                               JOIN records r ON r.id = m.record_id
                               WHERE {window} AND r.work_id != q.mine
                                 AND (instr(q.links, ',' || f.kind || ',') > 0
                                      OR (f.kind = q.kind AND NOT EXISTS (
                                          SELECT 1 FROM identifiers ci JOIN identifiers mi ON mi.scheme = ci.scheme AND mi.work_id = q.mine
                                          WHERE ci.work_id = r.work_id
                                            AND NOT EXISTS (SELECT 1 FROM identifiers cj JOIN identifiers m2
                                                            ON m2.scheme = cj.scheme AND m2.value = cj.value
                                                            WHERE cj.work_id = r.work_id AND m2.work_id = q.mine))))),
                       (SELECT COUNT(*) FROM (SELECT 1 FROM match_keys m WHERE {window} LIMIT ?))
                FROM q""",
            [json.dumps(chunk), block_limit + 1],
        ):
            if found:
                any_row.add(record_id)
            if eligible or size > block_limit:
                kept.add(record_id)
    return any_row, kept
