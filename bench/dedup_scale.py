#!/usr/bin/env python3
"""Time and peak memory of saving (and deduplicating) 10k and 100k synthetic records.

    python bench/dedup_scale.py                  # 10000 and 100000 records
    python bench/dedup_scale.py 5000 --keep      # one size; keep the SQLite file for a look

Each size runs in its own process (so peak memory is its own) against a fresh SQLite file on disk,
saving batches of ``--batch`` records with ``ingest.save_batch`` exactly as a crawl does: identity
joins, fingerprints and blocking keys, fuzzy candidates, merges and links, all in the batch's
transaction. The synthetic works have the titles of a single-topic corpus (common openings and
endings such as "Esketamine nasal spray … in treatment-resistant depression", shared by many works as
in a real topic, around a specific middle drawn from a large vocabulary), first authors from a
pool of surnames, and appear in one to three sources with the variations the matcher must absorb
(no DOI in PubMed, feed items without identifiers, dropped subtitles, case and punctuation); a few
are preprints or trial registrations linked to articles. Sources arrive one after the other.

Printed: records/s overall and per tenth of the run (flat = no all-pairs growth), peak RSS (it
includes the synthetic records, all built before the run), the tracemalloc peak of Python objects
allocated while saving (with ``--tracemalloc``, about four times slower), works/merges/links made, the
size of the candidate blocks, and the database size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pubmed_synth import ENDINGS, MIDDLES, OPENINGS  # noqa: E402
from crawler import ingest, store  # noqa: E402
from crawler.records import Record  # noqa: E402
from tests.helpers.dedup_corpus import merge_candidates  # noqa: E402

SYLLABLES = [
    "ka",
    "ta",
    "mi",
    "ne",
    "ro",
    "sul",
    "ver",
    "dan",
    "pho",
    "lin",
    "gre",
    "tor",
    "mas",
    "el",
    "vi",
    "qua",
    "zen",
    "bor",
    "cal",
    "dri",
    "fen",
    "hol",
    "jas",
    "kel",
    "lum",
    "mor",
    "nix",
    "pal",
    "rin",
    "sed",
    "tum",
    "wal",
]
TOPIC = [
    "ketamine",
    "esketamine",
    "depression",
    "treatment-resistant",
    "suicidal",
    "ideation",
    "randomized",
    "trial",
    "cohort",
    "adolescents",
    "adults",
    "infusion",
    "nasal",
    "spray",
    "bipolar",
    "anhedonia",
    "PTSD",
    "remission",
    "relapse",
    "cognition",
]
SOURCES = ["pubmed", "crossref", "europepmc", "openalex", "feed:jad"]


def topic_title(rng: random.Random, words: list[str]) -> str:
    """A title of a single-topic corpus: a common opening and ending (shared by many works, which is
    what makes real blocking groups large), a specific middle, sometimes a subtitle."""
    middle = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
    title = f"{rng.choice(OPENINGS)} {rng.choice(MIDDLES) + ' ' if rng.random() < 0.6 else ''}and {middle} {rng.choice(ENDINGS)}"
    if ": " not in title and rng.random() < 0.2:
        title += ": " + " ".join(rng.choice(words) for _ in range(rng.randint(3, 6)))
    return title


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words) + TOPIC * 20


def synthetic_records(n: int, seed: int = 1) -> list[list[Record]]:
    """About ``n`` records, grouped per source (sources arrive one after the other)."""
    rng = random.Random(seed)
    words = vocabulary(rng, 6000)
    surnames = [w.capitalize() for w in vocabulary(rng, 20000)[:20000]]
    given = ["Anna", "Ben", "Clara", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Leo", "Maya", "Nils"]
    per_source: dict[str, list[Record]] = {s: [] for s in ["clinicaltrials", "biorxiv", *SOURCES]}
    count, work, trials = 0, 0, []
    while count < n:
        work += 1
        year = rng.randint(2005, 2026)
        date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        title = topic_title(rng, words)
        people = [(rng.choice(given), rng.choice(surnames)) for _ in range(rng.randint(1, 6))]
        doi, pmid = f"10.5555/syn.{work}", str(30000000 + work) if rng.random() < 0.7 else None
        kind = rng.random()
        if kind < 0.03:  # a trial registration, reported by the next article
            record = Record(
                source="clinicaltrials",
                source_id=f"NCT{work:08d}",
                record_type="trial_registration",
                title=title,
                published_on=date,
                entered_on=date,
            )
            record.add_id("nct", f"NCT{work:08d}")
            per_source["clinicaltrials"].append(record)
            trials.append(record.source_id)
            count += 1
            continue
        preprint = kind < 0.08
        for source in rng.sample(SOURCES, rng.choice([1, 1, 2, 2, 3])) if not preprint else ["biorxiv"]:
            t = title
            if source == "pubmed":
                t += "."
            elif source == "crossref" and rng.random() < 0.3:
                t = t.replace(" ", " <i>", 1).replace(" ", "</i> ", 2).replace("<i></i>", "")
            elif source.startswith("feed") and ": " in t and rng.random() < 0.3:
                t = t.split(": ")[0]
            authors = (
                [f"{f} {g}" for g, f in people]
                if source in ("pubmed",)
                else [f"{f} {g[0]}" for g, f in people]
                if source in ("europepmc", "biorxiv")
                else [f"{g} {f}" for g, f in people]
            )
            if source.startswith("feed") and rng.random() < 0.2:
                authors = []
            record = Record(
                source=source,
                source_id=f"{source}-{work}",
                record_type="preprint" if preprint else "article",
                title=t,
                authors=authors,
                published_on=date,
                entered_on=date,
            )
            if preprint:
                record.add_id("doi", f"10.1101/syn.{work}")
                if rng.random() < 0.6:  # published later: the article is one of the next works
                    record.add_link("preprint_of", "doi", f"10.5555/syn.{work + rng.randint(1, 20)}")
            else:
                if not (source == "pubmed" and rng.random() < 0.2) and not source.startswith("feed"):
                    record.add_id("doi", doi)
                if pmid and source in ("pubmed", "europepmc"):
                    record.add_id("pmid", pmid)
                if trials and rng.random() < 0.05:
                    record.add_link("registered_as", "nct", rng.choice(trials[-50:]))
            per_source[source].append(record)
            count += 1
    return [records for records in per_source.values() if records]


def run_one(n: int, batch: int, keep: bool, trace: bool) -> dict:
    sources = synthetic_records(n)
    total = sum(len(r) for r in sources)
    batches = [records[i : i + batch] for records in sources for i in range(0, len(records), batch)]
    tmp = tempfile.mkdtemp(prefix="litmon-scale-")
    path = Path(tmp) / "scale.db"
    db = store.open_db(path)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    tenths, done, mark, mark_time = [], 0, total / 10, started
    for records in batches:
        ingest.save_batch(db, records)
        done += len(records)
        while done >= mark and len(tenths) < 10:
            now = time.perf_counter()
            tenths.append(round((total / 10) / (now - mark_time)))
            mark_time, mark = now, mark + total / 10
    seconds = time.perf_counter() - started
    if len(tenths) < 10:
        tenths.append(round((done - (mark - total / 10)) / max(time.perf_counter() - mark_time, 1e-9)))
    traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    sample = [r[0] for r in db.execute("SELECT record_id FROM record_fingerprints ORDER BY random() LIMIT 300")]
    blocks = []
    for record_id in sample:
        found, _ = merge_candidates(db, record_id, limit=10**6)  # the whole block, not the first MAX_CANDIDATES
        blocks.append(len(found))
    stats = {
        "records": total,
        "batches": len(batches),
        "seconds": round(seconds, 1),
        "records_per_s": round(total / seconds),
        "records_per_s_by_tenth": tenths,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "tracemalloc_peak_mb": round(traced_peak / 2**20, 1) if traced_peak is not None else None,
        "works": db.execute("SELECT COUNT(*) FROM works WHERE merged_into IS NULL").fetchone()[0],
        "merges_identifier": db.execute("SELECT COUNT(*) FROM work_merges WHERE reason LIKE 'identifier %'").fetchone()[0],
        "merges_fuzzy": db.execute("SELECT COUNT(*) FROM work_merges WHERE reason LIKE 'title%'").fetchone()[0],
        "links": db.execute("SELECT COUNT(*) FROM work_links_view").fetchone()[0],
        "candidates_per_record_mean": round(sum(blocks) / len(blocks), 1) if blocks else 0,
        "candidates_per_record_max": max(blocks) if blocks else 0,
        "db_mb": round(sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20, 1),
        "db_path": str(path) if keep else None,
    }
    db.close()
    if not keep:
        for p in Path(tmp).iterdir():
            p.unlink()
        os.rmdir(tmp)
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000], help="record counts (default 10000 100000)")
    parser.add_argument("--batch", type=int, default=500, help="records per save_records batch (default 500)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python allocation peak (slower)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # run a single size in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.sizes[0], args.batch, args.keep, args.tracemalloc)))
        return 0
    for size in args.sizes:
        command = [sys.executable, __file__, str(size), "--one", "--batch", str(args.batch)]
        command += ["--keep"] * args.keep + ["--tracemalloc"] * args.tracemalloc
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        s = json.loads(out.strip().splitlines()[-1])
        print(
            f"{s['records']:>7} records in {s['batches']} batches: {s['seconds']}s, {s['records_per_s']} records/s "
            f"(by tenth: {' '.join(map(str, s['records_per_s_by_tenth']))}), peak RSS {s['peak_rss_mb']} MB"
            + (f", tracemalloc peak {s['tracemalloc_peak_mb']} MB" if s["tracemalloc_peak_mb"] is not None else "")
        )
        print(
            f"        {s['works']} works, {s['merges_identifier']} identifier merges, {s['merges_fuzzy']} fuzzy merges, "
            f"{s['links']} links; candidates per record mean {s['candidates_per_record_mean']}, max {s['candidates_per_record_max']}; "
            f"database {s['db_mb']} MB" + (f" ({s['db_path']})" if s["db_path"] else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
