"""One work per real-world study: fuzzy identity and links between works.

The store joins records that share a normalised identifier (DOI, PMID, PMCID, NCT, ISRCTN,
EudraCT/CTIS, PPR, OpenAlex) into one work, transitively, as it saves them. This module adds
what identifiers cannot decide, and is run by :func:`crawler.ingest.save_batch` on every batch,
in the batch's transaction (:func:`resolve_records`). The rules themselves are pure functions in
:mod:`crawler.matching`; this module applies them to stored rows through :mod:`crawler.store`:

Fuzzy identity
    A record without a shared identifier (a feed item without DOI, a PubMed record before its DOI
    is deposited) joins an existing work when a record of that work has

    * the same *kind* (article, preprint, comment, protocol; notices, trial registrations and
      news are never matched on titles: errata and notices often repeat their article's title,
      and registries always carry numbers),
    * a near-identical normalised title (:func:`normalize_title`: case, HTML tags and entities,
      Greek letters, accents, Unicode dashes and quotes, punctuation, trailing period): the
      titles may differ only in spacing/hyphenation (``treatment-resistant`` = ``treatment
      resistant``), articles (a, an, the), spelling variants of long words (``randomised``/``randomized``,
      ``trial``/``trials``) or a dropped subtitle; any other differing word, number or
      numeral (``Part 1``/``Part 2``, ``6-month``/``12-month``, ``R``/``S``-ketamine,
      ``ketamine``/``esketamine``) keeps them apart; and rapidfuzz's ratio must reach
      :data:`TITLE_MIN_RATIO` unless only a subtitle was dropped,
    * the same first-author surname (:func:`author_surnames`), no contradicting given-name
      initial ("Grace Anderson" is not "Anderson C"), and a year within ±1,
    * and when the two works carry no conflicting identifier (two different DOIs, PMIDs, … are
      two works, whatever their titles say) and no record of one states a link to the other
      (a reply, an erratum, a preprint names another work).

    The first author is the first *person* (a collective "… Study Group" listed first by one
    source is skipped). A record without authors matches only a title of at least
    :data:`MIN_TOKENS_WITHOUT_AUTHOR` content words, with no dropped subtitle, and a known year
    within ±1. A record matching two works that cannot be one is merged with neither.
    Candidates come from indexed blocking keys (:func:`crawler.matching.blocking_keys`: first
    author with the title's start or end, and the whole title), never from all pairs; each key's
    group stays small as the corpus grows and is read with a limit (a cut group is logged), and
    candidates whose work has a conflicting identifier are left out by the query, before any
    comparison. Every merge is written to ``work_merges`` with its evidence.

Links between works
    Records state links to other works by identifier (``record_links``). Whenever a record is
    saved, the links of its work are resolved against the identifiers of stored works, in both
    directions (a link stated before its target arrived resolves when the target does), and kept
    in ``work_links`` with a canonical type and direction (:data:`LINK_TYPES`): ``preprint_of``
    (preprint → published version), ``registered_as`` (publication → trial registration),
    ``retraction_of`` / ``correction_of`` / ``expression_of_concern_of`` (notice → work
    concerned; errata and corrections are one family), ``comment_on``, ``update_of``,
    ``republication_of``, ``version_of``, ``same_trial`` and ``references`` (registration →
    background publication). A preprint and an article with matching titles and authors
    (same rules as above, but no dropped subtitle; years within ±2) are linked ``preprint_of`` with evidence
    ``title+authors``; they are never merged: a preprint and its journal version stay two works.

Everything is recomputed from stored rows, so saving the same data twice changes nothing and new
evidence (a DOI arriving later) heals earlier decisions: the store merges the works, and their
links, digest items and identifiers follow the surviving work.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable

from crawler import clock, store
from crawler.matching import (
    LINK_YEAR_WINDOW,
    MAX_BLOCK,
    MAX_CANDIDATES,
    MERGE_YEAR_WINDOW,
    Fingerprint,
    Match,
    MatchInputs,
    blocking_keys,
    citation_keys,
    compare,
    dates_agree,
    identifiers_conflict,
    link_type_of,
    lookup_keys,
    match_inputs,
    numbers_differ,
    year_window,
)

log = logging.getLogger("crawler.dedup")

# --------------------------------------------------------------------------- orchestration


def resolve_records(db, record_ids: Iterable[int], now: str, inputs: dict[int, MatchInputs] | None = None) -> set[int]:
    """Fingerprint the saved records, merge works they match, re-resolve the links of every work
    they touch; return the affected (surviving) work ids. Runs in the caller's transaction.

    ``inputs``: record id -> :func:`crawler.matching.record_match_inputs` of the record as just saved (the
    same values as from its stored row, which is then not read)."""
    record_ids = list(dict.fromkeys(record_ids))
    if not record_ids:
        return set()
    inputs = inputs or {}
    unread = [record_id for record_id in record_ids if record_id not in inputs]
    read = {
        row["id"]: match_inputs(
            row["source"],
            row["record_type"],
            row["title"],
            row["authors"],
            row["published_on"],
            row["entered_on"],
            row["publication_types"],
            row["relations"],
            row["journal"],
            row["issn"],
            json.loads(row["structured_authors"] or "[]"),
        )
        for row in (store.load_match_records(db, unread) if unread else [])
    }
    prints, cites, keys, hashes = {}, {}, {}, {}
    for record_id in record_ids:
        found = inputs.get(record_id) or read.get(record_id)
        if found is not None:
            prints[record_id] = found.fingerprint
            cites[record_id] = (found.cite_keys, found.published_on)
            keys[record_id] = found.keys
            hashes[record_id] = found.key_hashes  # (hashed where the inputs were made: the fetch worker, for most)
    store.save_fingerprints(db, [(record_id, fp, hashes[record_id]) for record_id, fp in prints.items()])
    # one query for the batch: which records have another record under their keys and years at all, and
    # which have one the look-up could keep (a backfill's records mostly have neither: their neighbours
    # carry other PMIDs); the others are looked up and compared one by one, as before
    any_row, kept = store.key_neighbours(
        db,
        [
            (record_id, hashes[record_id], *_key_years(fp), fp.kind, LINK_KINDS.get(fp.kind, []))
            for record_id, fp in prints.items()
        ],
        MAX_BLOCK,
    )
    # each record's link candidates come with its merge candidates; a merge changes works, and drops them all
    link_candidates: dict[int, tuple[list[dict], list[str]]] | None = {}
    for record_id, fp in prints.items():
        # after a merge, works and their identifiers changed: only "no row at all" still tells
        if record_id not in (kept if link_candidates is not None else any_row):
            # no candidate the look-up would keep: nothing to merge, no preprint link to find
            if link_candidates is not None and LINK_KINDS.get(fp.kind):
                link_candidates[record_id] = ([], [])
            continue
        hashed = dict(zip(keys[record_id], hashes[record_id]))
        if merge_fuzzy_matches(db, record_id, fp, now, cites.get(record_id), link_candidates, hashed):
            link_candidates = None
    affected = store.current_work_ids(db, record_ids)
    resolve_links_of_works(db, sorted(affected), now, link_candidates or {})
    return affected


def _key_years(fp: Fingerprint) -> tuple[int, int]:
    """The years (``match_keys.year``) a candidate of ``fp`` may have, for a merge or a link: the widest window."""
    if fp.year is None:
        return 0, 0
    window = max(MERGE_YEAR_WINDOW, LINK_YEAR_WINDOW)
    return fp.year - window, fp.year + window


def find_matches(
    db,
    record_id: int,
    fp: Fingerprint,
    action: str = "merge",
    *,
    skip_conflicting: bool = True,
    candidates_read: tuple[list[dict], list[str]] | None = None,
) -> list[tuple[dict, Match]]:
    """Stored records that ``fp`` matches for ``action`` (merge: same kind; link: preprint <-> article), best first.

    Candidates come from the record's blocking keys (bounded groups, read with a limit); for a
    merge, those whose work has a conflicting identifier are left out by the query unless
    ``skip_conflicting`` is false (the ambiguity check needs every work a record matches).
    ``candidates_read``: the candidates and cut keys, when a query already read them.
    """
    if action == "merge":
        kinds = [fp.kind]
    else:
        kinds = LINK_KINDS.get(fp.kind, [])
    keys = lookup_keys(fp)
    if not keys or not kinds:
        return []
    if candidates_read is not None:
        for key in candidates_read[1]:
            _log_oversized(key)
        return _compared(fp, candidates_read[0], action)
    candidates, oversized = store.find_candidates(
        db,
        keys,
        kinds=kinds,
        record_id=record_id,
        years=year_window(fp, action),
        skip_conflicting=skip_conflicting and action == "merge",
        limit=MAX_CANDIDATES,
        block_limit=MAX_BLOCK,
    )
    for key in oversized:
        _log_oversized(key)
    return _compared(fp, candidates, action)


def _compared(fp: Fingerprint, candidates: list[dict], action: str) -> list[tuple[dict, Match]]:
    found = []
    for cand in candidates:
        other = Fingerprint.from_row(cand)
        match = compare(fp, other)
        if match and match.action == action:
            found.append((cand, match))
    found.sort(key=lambda item: (-item[1].score, item[0]["work_id"]))
    return found


def find_citation_matches(
    db, record_id: int, fp: Fingerprint, keys: list[str], published_on: str | None
) -> list[tuple[dict, Match]]:
    """Records of the same kind with the same journal (or ISSN) and ordered author list (family names
    and initials) published within a few days: one work even when the titles differ (a translated
    title, a reworded subtitle). Never when the journal, the date or an author differs, nor across
    conflicting identifiers (left out by the query), nor when the titles carry different numbers
    (part 1 / part 2 of one series, by one group, in one issue)."""
    if not keys or not published_on:
        return []
    candidates, _ = store.find_candidates(
        db,
        keys,
        kinds=[fp.kind],
        record_id=record_id,
        years=year_window(fp, "merge"),
        skip_conflicting=True,
        limit=MAX_CANDIDATES,
        block_limit=MAX_BLOCK,
    )
    return _citation_matched(db, fp, candidates, published_on)


def _citation_matched(db, fp: Fingerprint, candidates: list[dict], published_on: str) -> list[tuple[dict, Match]]:
    dates = {row["id"]: row["published_on"] for row in store.load_match_records(db, [c["record_id"] for c in candidates])}
    found = []
    for cand in candidates:
        if dates_agree(published_on, dates.get(cand["record_id"])) and not numbers_differ(fp.title_key, cand["title_key"]):
            found.append((cand, Match("merge", 100, "journal+date+ordered authors (titles differ)")))
    return found


#: link kinds: a preprint is linked to an article and an article to a preprint
LINK_KINDS = {"preprint": ["article"], "article": ["preprint"]}


def find_merge_matches(
    db,
    record_id: int,
    fp: Fingerprint,
    cite: tuple[list[str], str | None] | None,
    link_candidates: dict[int, tuple[list[dict], list[str]]] | None = None,
    hashed: dict[str, int] | None = None,
) -> list[tuple[dict, Match]]:
    """:func:`find_matches` for a merge followed by :func:`find_citation_matches`, with the candidates of
    both read in one query (the same candidates, limits and order as two queries). With
    ``link_candidates``, the record's candidates for a preprint link (:func:`find_matches` with "link")
    are read by the same query and put there under its id (valid until a work is merged). ``hashed``: each of
    the record's keys -> its hash (:attr:`crawler.matching.MatchInputs.key_hashes`), when the caller has them."""
    keys = lookup_keys(fp)
    cite_keys, published_on = cite if cite else ([], None)
    cite_keys = cite_keys if published_on else []
    link_kinds = LINK_KINDS.get(fp.kind, []) if link_candidates is not None else []
    groups, filters = [keys, cite_keys], [([fp.kind], year_window(fp, "merge"), True)] * 2
    if link_kinds:
        groups.append(keys)
        filters.append((link_kinds, year_window(fp, "link"), False))
    results = store.find_candidate_groups(
        db,
        groups,
        kinds=[fp.kind],
        record_id=record_id,
        years=None,
        skip_conflicting=True,
        limit=MAX_CANDIDATES,
        block_limit=MAX_BLOCK,
        filters=filters,
        hashed=hashed,
    )
    (by_title, oversized), (by_citation, _) = results[0], results[1]
    if link_kinds and link_candidates is not None:
        link_candidates[record_id] = results[2]
    for key in oversized:
        _log_oversized(key)
    found = _compared(fp, by_title, "merge")
    if cite_keys and published_on:
        found += _citation_matched(db, fp, by_citation, published_on)
    return found


_OVERSIZED: set[str] = set()


def _log_oversized(key: str) -> None:
    """Say once per process that a blocking key's group was cut (then at debug level)."""
    if key in _OVERSIZED or len(_OVERSIZED) > 1000:
        log.debug("blocking key %r holds more than %d records; compared the first %d", key, MAX_BLOCK, MAX_BLOCK)
        return
    _OVERSIZED.add(key)
    log.warning(
        "dedup: blocking key %r holds more than %d records; only the first %d are compared with new records "
        "(check for many records with one title and first author)",
        key,
        MAX_BLOCK,
        MAX_BLOCK,
    )


def merge_fuzzy_matches(
    db,
    record_id: int,
    fp: Fingerprint,
    now: str,
    cite: tuple[list[str], str | None] | None = None,
    link_candidates: dict[int, tuple[list[dict], list[str]]] | None = None,
    hashed: dict[str, int] | None = None,
) -> list[int]:
    """Merge the record's work with every work it matches; return the works merged into it.

    A record matching two works that cannot be one (different DOIs, PMIDs, …) is ambiguous
    (typically a feed title without its subtitle): it is merged with neither, whichever of the
    three arrives last. ``cite``: the record's citation keys and publication date, for matches by
    journal, date and ordered authors whatever the titles say (:func:`find_citation_matches`).
    ``hashed``: the record's keys' hashes, by key (:func:`find_merge_matches`).
    """
    found = find_merge_matches(db, record_id, fp, cite, link_candidates, hashed)
    if not found:
        return []
    mine = store.current_work_ids(db, [record_id]).pop()
    best: dict[int, tuple[dict, Match]] = {}
    for cand, match in found:
        if cand["work_id"] != mine:
            best.setdefault(cand["work_id"], (cand, match))
    if not best:
        return []
    id_sets = store.work_identifier_sets(db, [mine, *best])
    eligible = [w for w in best if _may_merge(db, mine, w, id_sets)]
    if _conflicting(eligible, id_sets):
        return []
    merged = []
    for work_id in eligible:
        cand, match = best[work_id]
        if _is_ambiguous(db, cand, exclude=work_id):
            continue
        survivor, other = min(mine, work_id), max(mine, work_id)
        store.merge_works(
            db, survivor, [other], now, reason=f"{match.evidence} (records {record_id}, {cand['record_id']})", record_id=record_id
        )
        merged.append(other)
        mine = survivor
    return merged


def _may_merge(db, a: int, b: int, id_sets: dict[int, dict[str, set[str]]]) -> bool:
    return (
        not identifiers_conflict(id_sets.get(a, {}), id_sets.get(b, {}))
        and _kinds_compatible(store.work_kinds(db, a), store.work_kinds(db, b))
        and not store.stated_link_between(db, a, b)
    )


def _conflicting(works: list[int], id_sets: dict[int, dict[str, set[str]]]) -> bool:
    return any(identifiers_conflict(id_sets.get(a, {}), id_sets.get(b, {})) for a, b in itertools.combinations(works, 2))


def _is_ambiguous(db, cand: dict, exclude: int) -> bool:
    """Whether a matched record also matches works (besides its own) that cannot be one."""
    fp = Fingerprint.from_row(cand)
    matches = find_matches(db, cand["record_id"], fp, "merge", skip_conflicting=False)
    works = {c["work_id"] for c, _ in matches if c["work_id"] != exclude}
    if len(works) < 2:
        return False
    id_sets = store.work_identifier_sets(db, sorted(works))
    return _conflicting(sorted(works), id_sets)


def _kinds_compatible(a: set[str], b: set[str]) -> bool:
    """Two works may merge on titles when neither holds a notice, registration or news item."""
    blocked = {"notice", "trial_registration", "news"}
    return not (a & blocked or b & blocked)


def resolve_work_links(db, work_id: int, now: str) -> None:
    """Recompute every link touching ``work_id`` (stated in either direction, or by title+authors)."""
    resolve_links_of_works(db, [work_id], now)


def resolve_links_of_works(
    db, work_ids: list[int], now: str, link_candidates: dict[int, tuple[list[dict], list[str]]] | None = None
) -> None:
    """:func:`resolve_work_links` for each work, in order, reading what they all need in a few queries
    (stated links, preprint links, fingerprints, current links) instead of several per work.
    ``link_candidates``: record id -> its preprint-link candidates, already read (still valid)."""
    stated = store.stated_links_touching_works(db, work_ids)
    with_preprint_links = store.works_with_stated_preprint_links(db, work_ids)
    # only what _fuzzy_preprint_links compares: preprints and articles, without the records whose candidates read none
    empty = [record_id for record_id, read in (link_candidates or {}).items() if read == ([], [])]
    prints = store.load_fingerprints_of_works(db, work_ids, kinds=("preprint", "article"), skip=empty)
    links = store.WorkLinks(db, work_ids)
    known = set(work_ids)

    def has_preprint_link(work_id: int) -> bool:
        if work_id in known:
            return work_id in with_preprint_links
        return store.has_stated_preprint_link(db, work_id)

    for work_id in work_ids:
        desired = _stated_links(work_id, stated.get(work_id, []))
        if not has_preprint_link(work_id):
            fuzzy = _fuzzy_preprint_links(db, work_id, prints.get(work_id, []), has_preprint_link, link_candidates or {})
            for key, record_id in fuzzy.items():
                desired.setdefault(key, record_id)
        links.sync(work_id, desired, now)


def _stated_links(work_id: int, rows: list[dict]) -> dict[tuple[int, int, str, str], int | None]:
    desired: dict[tuple[int, int, str, str], int | None] = {}
    for row in rows:
        kind = link_type_of(row["relation"], row["note"])
        if kind is None:
            continue
        link_type, forward = kind
        source, target = row["record_work_id"], row["target_work_id"]
        start, end = (source, target) if forward else (target, source)
        if start == end:
            continue
        evidence = f"{row['source']}:{row['source_id']} {row['relation']} {row['scheme']}:{row['value']}"
        desired[(start, end, link_type, evidence)] = row["record_id"]
    return desired


def fuzzy_preprint_links(db, work_id: int) -> dict[tuple[int, int, str, str], int]:
    """``preprint_of`` links from title+authors between this work and others without stated ones.

    A preprint or article that states (or is named by) any preprint link gets no guessed one:
    the stated link is better evidence, even while its target is not stored yet.
    """
    if store.has_stated_preprint_link(db, work_id):
        return {}
    return _fuzzy_preprint_links(
        db, work_id, store.load_fingerprints_of_work(db, work_id), lambda other: store.has_stated_preprint_link(db, other)
    )


def _fuzzy_preprint_links(
    db, work_id: int, fingerprints: list[dict], has_preprint_link, read: dict[int, tuple[list[dict], list[str]]] | None = None
) -> dict[tuple[int, int, str, str], int]:
    links: dict[tuple[int, int, str, str], int] = {}
    for row in fingerprints:
        if row["kind"] not in ("preprint", "article") or (read or {}).get(row["record_id"]) == ([], []):
            continue  # no link kind, or no candidate read (nothing to compare, no cut group to log)
        fp = Fingerprint.from_row(row)
        for cand, match in find_matches(db, row["record_id"], fp, "link", candidates_read=(read or {}).get(row["record_id"])):
            if cand["work_id"] == work_id:
                continue
            if has_preprint_link(cand["work_id"]):
                continue
            preprint, article = (work_id, cand["work_id"]) if fp.kind == "preprint" else (cand["work_id"], work_id)
            pre_rec, art_rec = (
                (row["record_id"], cand["record_id"]) if fp.kind == "preprint" else (cand["record_id"], row["record_id"])
            )
            if fp.kind == "preprint" and row["year"] and cand["year"] and cand["year"] < row["year"] - 1:
                continue
            if fp.kind == "article" and row["year"] and cand["year"] and row["year"] < cand["year"] - 1:
                continue
            evidence = f"{match.evidence} (records {pre_rec}, {art_rec})"
            links[(preprint, article, "preprint_of", evidence)] = row["record_id"]
    return links


def rebuild_keys(db) -> int:
    """Recompute every record's blocking and citation keys from its stored fingerprint and record
    (after the key scheme changed)."""
    keys: list[tuple[str, int | None, int]] = []
    fingerprints = list(store.load_fingerprint_rows(db))
    records = {row["id"]: row for row in store.load_match_records(db, [f["record_id"] for f in fingerprints])}
    for row in fingerprints:
        fp = Fingerprint.from_row(row)
        record = records.get(row["record_id"])
        cite = (
            citation_keys(fp.kind, record["journal"], record["issn"], json.loads(record["structured_authors"] or "[]"))
            if record
            else []
        )
        keys.extend((key, fp.year, row["record_id"]) for key in blocking_keys(fp) + cite)
    store.save_match_keys(db, keys)
    return len(keys)


def rebuild(db, now: str | None = None) -> set[int]:
    """Fingerprint every record and resolve every work's merges and links (after an upgrade)."""
    now = now or clock.stamp()
    return resolve_records(db, store.all_record_ids(db), now)
