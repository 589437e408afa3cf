"""The labelled deduplication corpus (tests/fixtures/dedup): parse, load in a chosen order, score.

Shared by tests/test_dedup.py and bench/dedup_eval.py (and ``merge_candidates`` by bench/dedup_scale.py). Every fixture file is a wire-format answer
parsed by the source's own parser; each file is one batch given to ``ingest.save_batch``, as the
pipeline does, unless an order splits them into single records.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import re
from collections import defaultdict
from pathlib import Path

from crawler import identifiers as ids
from crawler import ingest, matching, store
from crawler.records import Record
from crawler.sources import biorxiv, clinicaltrials, crossref, europepmc, isrctn, openalex, pubmed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dedup"
TODAY = __import__("datetime").date(2026, 11, 23)


def corpus_files() -> dict[str, bytes]:
    """The committed corpus: file name -> bytes (``generate.build()`` returns the same shape)."""
    return {p.name: p.read_bytes() for p in sorted(FIXTURES.iterdir()) if p.suffix in (".xml", ".json")}


def merge_candidates(
    db,
    record_id: int,
    *,
    skip_conflicting: bool = True,
    limit: int = matching.MAX_CANDIDATES,
    block_limit: int = matching.MAX_BLOCK,
) -> tuple[list[dict], list]:
    """What dedup's candidate query returns for a stored record's merge action: (candidate rows, oversized keys)."""
    fingerprint = matching.Fingerprint.from_row(
        next(iter(db.query("SELECT * FROM record_fingerprints WHERE record_id = ?", [record_id])))
    )
    return store.find_candidates(
        db,
        matching.lookup_keys(fingerprint),
        kinds=[fingerprint.kind],
        record_id=record_id,
        years=matching.year_window(fingerprint, "merge"),
        skip_conflicting=skip_conflicting,
        limit=limit,
        block_limit=block_limit,
    )


def load_labels(files: dict[str, bytes] | None = None) -> dict:
    return json.loads((files or corpus_files())["labels.json"])


def parse_feed(body: bytes, source: str) -> list[Record]:
    """The feed source's parser (crawler.sources.feeds) when present, else a minimal RSS reading of
    the same fields: guid as source_id, title, link, dc:creator, pubDate, DOI from prism:doi /
    dc:identifier / a doi.org or /doi/ link, PMID from a ``pubmed:N`` guid."""
    try:
        from crawler.sources import feeds  # noqa: PLC0415 (added by the feeds source)
    except ImportError:
        feeds = None
    if feeds is not None:
        return feeds.parse_feed(body, source, fetched_on=TODAY.isoformat())
    import feedparser  # noqa: PLC0415

    records = []
    for entry in feedparser.parse(io.BytesIO(body)).entries:
        title = re.sub(r"<[^>]+>", "", entry.get("title", "")).strip()
        link = entry.get("link")
        published = entry.get("published_parsed")
        date = f"{published.tm_year:04d}-{published.tm_mon:02d}-{published.tm_mday:02d}" if published else None
        record = Record(
            source=source,
            source_id=entry.get("id") or link,
            record_type="article",
            title=title,
            url=link,
            abstract=entry.get("summary") or None,
            published_on=date,
            entered_on=date,
            authors=[a.get("name") for a in entry.get("authors", []) if a.get("name")],
        )
        doi = None
        for value in (entry.get("prism_doi"), entry.get("dc_identifier")):
            if value and (value.lower().startswith(("doi:", "10.", "info:doi/"))):
                doi = ids.normalize_doi(value.replace("info:doi/", ""))
        if not doi and link and ("doi.org/" in link or "/doi/" in link):
            doi = ids.normalize_doi(link.split("doi.org/")[-1] if "doi.org/" in link else link.split("/doi/")[-1])
        if doi:
            record.add_id("doi", doi)
        match = re.fullmatch(r"pubmed:(\d+)", record.source_id or "")
        if match:
            record.add_id("pmid", match.group(1))
        records.append(record)
    return records


def parse_file(name: str, body: bytes) -> list[Record]:
    if name.startswith("pubmed_"):
        return pubmed.parse_efetch(body)
    if name.startswith("crossref_"):
        return crossref.parse_works(body)
    if name.startswith("europepmc_"):
        return europepmc.parse_search(body)
    if name.startswith("biorxiv_details_"):
        return biorxiv.parse_details(body, "medrxiv")
    if name.startswith("biorxiv_pubs_"):
        return biorxiv.parse_pubs(body, "medrxiv")
    if name.startswith("clinicaltrials_"):
        return clinicaltrials.parse_studies(body).records
    if name.startswith("isrctn_"):
        return isrctn.parse_trials(body, TODAY)
    if name.startswith("openalex_"):
        return openalex.parse_works(openalex.parse_page(body))
    if name.startswith("feed_"):
        return parse_feed(body, "feed:" + name[len("feed_") : -len(".xml")])
    raise ValueError(f"no parser for fixture {name}")


def parse_batches(files: dict[str, bytes] | None = None) -> list[tuple[str, list[Record]]]:
    """Every corpus file's records, files in name order."""
    files = files or corpus_files()
    return [(name, parse_file(name, files[name])) for name in sorted(files) if name != "labels.json"]


#: name -> how the batches arrive (every order must give the same works and links)
ORDERS = ("by_file", "reversed", "feeds_and_crossref_first", "single_records_shuffled")


def ordered_batches(order: str, files: dict[str, bytes] | None = None) -> list[list[Record]]:
    batches = parse_batches(files)
    if order == "by_file":
        return [records for _, records in batches]
    if order == "reversed":
        return [list(reversed(records)) for _, records in reversed(batches)]
    if order == "feeds_and_crossref_first":
        first = [r for n, r in batches if n.startswith(("feed_", "crossref_", "openalex_"))]
        rest = [r for n, r in batches if not n.startswith(("feed_", "crossref_", "openalex_"))]
        return first + list(reversed(rest))
    if order.startswith("single_records_shuffled"):
        seed = int(order.split(":")[1]) if ":" in order else 7
        records = [r for _, batch in batches for r in batch]
        random.Random(seed).shuffle(records)
        return [[r] for r in records]
    raise ValueError(order)


def load(db, order: str = "by_file", files: dict[str, bytes] | None = None) -> None:
    for batch in ordered_batches(order, files):
        ingest.save_batch(db, batch)


def record_works(db) -> dict[str, int]:
    """``source/source_id`` -> current work id."""
    return {f"{r['source']}/{r['source_id']}": r["work_id"] for r in db.query("SELECT source, source_id, work_id FROM records")}


def predicted_links(db, labels: dict) -> set[tuple[str, str, str]]:
    """Links between current works, in gold work keys (a wrongly merged work stands for all its gold works)."""
    gold_of_work: dict[int, set[str]] = defaultdict(set)
    for key, work_id in record_works(db).items():
        if key in labels["records"]:
            gold_of_work[work_id].add(labels["records"][key])
    found = set()
    for row in db.query("SELECT from_work_id, link_type, to_work_id FROM work_links_view"):
        for a, b in itertools.product(gold_of_work[row["from_work_id"]], gold_of_work[row["to_work_id"]]):
            if a != b:
                found.add((a, row["link_type"], b))
    return found


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def score(db, labels: dict) -> dict:
    """Pairwise merge precision/recall/F1 over every pair of labelled records, and per link type."""
    works = record_works(db)
    missing = sorted(set(labels["records"]) - set(works))
    keys = sorted(labels["records"])
    tp = fp = fn = 0
    false_merges, missed_merges = [], []
    for a, b in itertools.combinations(keys, 2):
        same_gold = labels["records"][a] == labels["records"][b]
        same_pred = a in works and b in works and works[a] == works[b]
        if same_gold and same_pred:
            tp += 1
        elif same_pred:
            fp += 1
            false_merges.append((a, b))
        elif same_gold:
            fn += 1
            missed_merges.append((a, b))
    result = {
        "records": len(keys),
        "gold_works": len(set(labels["records"].values())),
        "missing_records": missing,
        "positive_pairs": tp + fn,
        "merge": _prf(tp, fp, fn),
        "false_merges": false_merges,
        "missed_merges": missed_merges,
        "links": {},
    }
    gold = {tuple(link) for link in labels["links"]}
    predicted = predicted_links(db, labels)
    for link_type in sorted({t for _, t, _ in gold | predicted}):
        g = {link for link in gold if link[1] == link_type}
        p = {link for link in predicted if link[1] == link_type}
        result["links"][link_type] = {**_prf(len(g & p), len(p - g), len(g - p)), "extra": sorted(p - g), "missed": sorted(g - p)}
    result["links_all"] = _prf(len(gold & predicted), len(predicted - gold), len(gold - predicted))
    return result


def hard_negative_pairs(labels: dict) -> list[tuple[str, str]]:
    """Record pairs of different gold works within one hard case (the "must not merge" pairs)."""
    pairs = []
    for case, records in labels["cases"].items():
        if case.startswith("ordinary"):
            continue
        for a, b in itertools.combinations(sorted(set(records)), 2):
            if labels["records"][a] != labels["records"][b]:
                pairs.append((a, b))
    return pairs
