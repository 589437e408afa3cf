#!/usr/bin/env python3
"""Readers at scale: full-text search, the first page of every view, and exports, on N synthetic works.

    python bench/query_scale.py                 # 100000 works
    python bench/query_scale.py 10000 --keep    # a smaller file, kept for a look (sqlite3, Datasette)

The database is built through the store as a crawl writes it (``store.save_records`` in batches:
records, identifiers, works joined by shared identifiers, trial snapshots, the summary rows and the
FTS index kept in step), then classified (``store.save_classifications``: relevance and tags) and
linked (``store.sync_work_links``: preprint → article, notice → retracted work, article → trial).
Works have a title and an abstract of ~120 words from a single-topic vocabulary (core words such as
"ketamine" in nearly every work, specific words Zipf-distributed), 1–8 authors, keywords and MeSH; 15% have a
second source (Crossref, same DOI), 4% are trial registrations with one to three status snapshots,
5% preprints, 0.5% retraction notices.

Printed (median of repeated runs, warm cache): ``store.search_works`` per query (20 queries of 1–3
words, limit 20) and one ``litmon search`` process end to end; the first page (LIMIT 100, as
Datasette shows it) of each view, plus the Datasette-style filtered page and facet counts of
``works_view``; ``litmon export`` of 10,000 works in each format (select + render). Targets: search
< 50 ms, view pages < 100 ms, export of 10k works < 5 s.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler import clock, export, ingest, store  # noqa: E402
from crawler.records import Record  # noqa: E402

#: Words of a single-topic corpus: the core words are in nearly every work (as "ketamine" is in a
#: ketamine monitor), the specific ones follow a Zipf-like law (a few common, most rare).
CORE = ["ketamine", "depression", "esketamine", "treatment-resistant"]
SPECIFIC = (
    "suicidal ideation bipolar ptsd infusion nasal spray oral maintenance remission response relapse psychotherapy anxiety "
    "anhedonia dissociation placebo midazolam electroconvulsive adolescents elderly veterans inflammation glutamate sleep "
    "cognition safety cystitis"
).split()
SPECIFIC += [
    f"{a}{b}{c}"
    for a in ("neuro", "cardio", "hepato", "immuno", "psycho")
    for b in ("plast", "trop", "gen", "lyt")
    for c in ("ic", "in", "osis", "ase", "ism")
]
FILLER = (
    "patients were randomised to receive study drug or comparator and followed for outcomes measured with validated "
    "scales across sites with adverse events recorded and analysed by intention to treat in a prespecified plan"
).split()


ZIPF = list(itertools.accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(SPECIFIC))))


def specific(rng: random.Random) -> str:
    """A specific word: the word of rank r with probability ~ 1/r^1.1 (5 per abstract: the commonest is in
    about half of the works, most in under 2%)."""
    return rng.choices(SPECIFIC, cum_weights=ZIPF)[0]


SURNAMES = [
    f"{a}{b}"
    for a in ("Ka", "Mo", "Ri", "Sa", "Te", "Vu", "Li", "Os", "Ch", "Ne")
    for b in ("ran", "lek", "tos", "mir", "dal", "vik", "sen", "hua", "ei", "ola")
]
GIVEN = ["Anna", "Ben", "Clara", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Wei", "Hannah"]
QUERIES = [
    "ketamine",
    "esketamine nasal spray",
    "suicidal ideation",
    "treatment-resistant depression",
    "bipolar",
    "ptsd ketamine",
    "arketamine",
    "midazolam",
    "electroconvulsive",
    "remission relapse",
    "adolescents",
    "psychotherapy ketamine",
    "cystitis",
    "glutamate",
    "veterans",
    '"nasal spray"',
    "infus*",
    "sleep cognition",
    "anhedonia",
    "oral maintenance",
]
VIEWS = [
    "works_view",
    "trials_view",
    "trial_status_history",
    "preprint_pairs",
    "notices_view",
    "digest_history",
    "search_log",
    "work_links_view",
]


def build(db, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    start = time.perf_counter()
    batch: list[Record] = []
    statuses = ["NOT_YET_RECRUITING", "RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "TERMINATED"]
    for work in range(1, n + 1):
        year = rng.randint(2005, 2026)
        date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        core = rng.choice(CORE[:3]) if rng.random() < 0.9 else specific(rng)
        title = f"{core.capitalize()} and {specific(rng)} in {rng.choice(CORE[1:])}: a study of {specific(rng)}"
        words = (
            [rng.choice(FILLER) for _ in range(110)] + [rng.choice(CORE) for _ in range(5)] + [specific(rng) for _ in range(5)]
        )
        rng.shuffle(words)
        abstract = " ".join(words)
        kind = rng.random()
        people = [f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}" for _ in range(rng.randint(1, 8))]
        if kind < 0.04:
            record = Record(
                source="clinicaltrials",
                source_id=f"NCT{work:08d}",
                record_type="trial_registration",
                title=title,
                abstract=abstract,
                published_on=date,
            )
            record.add_id("nct", f"NCT{work:08d}")
            for status in rng.sample(statuses, rng.randint(1, 3)):
                record.trial = {"overall_status": status, "enrollment": rng.randint(10, 900), "phases": ["PHASE2"]}
                batch.append(record)
                flush_if_full(db, batch, force=True)
            continue
        record_type = "preprint" if kind < 0.09 else "notice" if kind < 0.095 else "article"
        source = "biorxiv" if record_type == "preprint" else "pubmed"
        record = Record(
            source=source,
            source_id=f"{source}-{work}",
            record_type=record_type,
            title=("Retraction: " if record_type == "notice" else "") + title,
            abstract=abstract,
            authors=people,
            journal="medRxiv" if source == "biorxiv" else f"Journal of {specific(rng)} research",
            keywords=[rng.choice(CORE), specific(rng), specific(rng)],
            mesh_terms=["Ketamine", "Depressive Disorder"] if source == "pubmed" else [],
            published_on=date,
            extra={
                "volume": str(rng.randint(1, 400)),
                "issue": str(rng.randint(1, 12)),
                "pages": f"{rng.randint(1, 900)}-{rng.randint(901, 999)}",
            },
        )
        record.add_id("doi", f"10.5555/q.{work}")
        if source == "pubmed":
            record.add_id("pmid", str(30000000 + work))
        batch.append(record)
        if record_type == "article" and rng.random() < 0.15:
            again = Record(
                source="crossref",
                source_id=f"10.5555/q.{work}",
                record_type="article",
                title=title,
                authors=[p.split()[1] + " " + p.split()[0] for p in people],
                published_on=date,
            )
            again.add_id("doi", f"10.5555/q.{work}")
            batch.append(again)
        flush_if_full(db, batch)
    flush_if_full(db, batch, force=True)
    print(f"built {n} works: records saved in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    classify_and_link(db, rng)
    print(f"classified and linked in {time.perf_counter() - start:.0f} s")


def flush_if_full(db, batch: list[Record], force: bool = False) -> None:
    if batch and (force or len(batch) >= 500):
        store.save_records(db, batch)
        batch.clear()


def classify_and_link(db, rng: random.Random) -> None:
    works = db.execute("SELECT id, record_type FROM works WHERE merged_into IS NULL").fetchall()
    tags = [
        ("rct", "evidence"),
        ("meta_analysis", "evidence"),
        ("observational", "evidence"),
        ("intranasal_esketamine", "drug"),
        ("iv_ketamine", "drug"),
        ("trd", "indication"),
    ]
    batch = []
    for work_id, _ in works:
        label = rng.choice(["relevant", "relevant", "uncertain", "not_relevant"])
        chosen = rng.sample(tags, rng.randint(0, 3))
        batch.append(
            SimpleNamespace(
                work_id=work_id,
                label=label,
                score=2,
                reasons=[],
                rank_score=rng.randint(0, 80),
                rank_reasons=[],
                vocabulary_hash="bench",
                tags=[SimpleNamespace(tag=t, category=c, evidence="bench") for t, c in chosen],
            )
        )
        if len(batch) >= 5000:
            store.save_classifications(db, batch)
            batch = []
    store.save_classifications(db, batch)
    by_type: dict[str, list[int]] = {}
    for work_id, record_type in works:
        by_type.setdefault(record_type, []).append(work_id)
    now = clock.stamp()
    with db.atomic():
        for preprint in by_type.get("preprint", []):
            target = rng.choice(by_type["article"])
            store.sync_work_links(db, preprint, {(preprint, target, "preprint_of", f"bench preprint {preprint}"): None}, now)
        for notice in by_type.get("notice", []):
            target = rng.choice(by_type["article"])
            store.sync_work_links(db, notice, {(notice, target, "retraction_of", f"bench notice {notice}"): None}, now)
        for trial in by_type.get("trial_registration", []):
            article = rng.choice(by_type["article"])
            store.sync_work_links(db, trial, {(article, trial, "registered_as", f"bench trial {trial}"): None}, now)
        store.refresh_work_summaries(db)
    run = store.start_crawl_run(db, "run")
    for source in ("pubmed", "europepmc", "crossref", "clinicaltrials", "biorxiv"):
        source_run = store.start_source_run(db, run, source, "2026-11-16", "2026-11-23")
        store.finish_source_run(
            db,
            source_run,
            status="ok",
            counts={"fetched": 50, "new": 40, "updated": 10},
            requests=3,
            warnings=[],
            error=None,
            queries=[
                SimpleNamespace(query=f"{source} ketamine", window_from="2026-11-16", window_to="2026-11-23", hits=50, params={})
            ],
        )
    store.finish_crawl_run(db, run, "ok")
    sample = [w for w, _ in rng.sample(works, 200)]
    for recipient in ("a@example.org", "b@example.org"):
        digest_id = store.save_digest(
            db,
            period_start="2026-11-16 09:00:00",
            period_end="2026-11-23 09:00:00",
            subject="s",
            text_body="t",
            html_body="h",
            items=[(w, "clinical") for w in sample],
            recipient=recipient,
        )
        store.save_delivery(db, digest_id, recipient, transport="smtp", status="sent")


def median_ms(fn, repeat: int = 7) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(db, path: Path) -> None:
    n = db.execute("SELECT COUNT(*) FROM work_summaries").fetchone()[0]
    print(f"\n{n} current works, {path.stat().st_size / 1e6:.0f} MB")
    per_query = [median_ms(lambda q=q: store.search_works(db, q, limit=20), repeat=5) for q in QUERIES]
    print(
        f"search (store.search_works, limit 20): median {statistics.median(per_query):.1f} ms, max {max(per_query):.1f} ms over {len(QUERIES)} queries"
    )
    config = path.with_suffix(".toml")
    config.write_text(f'[database]\npath = "{path}"\n', encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    walls = []
    for q in QUERIES[:5]:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "crawler", "--config", str(config), "search", q], check=True, capture_output=True, env=env
        )
        walls.append((time.perf_counter() - start) * 1000)
    print(f"`litmon search` process end to end (Python start-up included): median {statistics.median(walls):.0f} ms")
    print("\nfirst page (LIMIT 100) of each view:")
    for view in VIEWS:
        print(f"  {view:<22} {median_ms(lambda v=view: db.execute(f'SELECT * FROM {v} LIMIT 100').fetchall()):7.1f} ms")
    datasette_like = {
        "works_view newest first": "SELECT * FROM works_view ORDER BY first_seen_at DESC LIMIT 100",
        "works_view WHERE is_retracted = 1": "SELECT * FROM works_view WHERE is_retracted = 1 LIMIT 100",
        "works_view count(*)": "SELECT COUNT(*) FROM works_view",
        "facet relevance": "SELECT relevance, COUNT(*) FROM works_view GROUP BY relevance",
        "facet record_type": "SELECT record_type, COUNT(*) FROM works_view GROUP BY record_type",
        "facet tags (array)": "SELECT j.value, COUNT(*) FROM works_view, json_each(works_view.tags) j GROUP BY j.value",
        "trials_view WHERE status = 'recruiting'": "SELECT * FROM trials_view WHERE status = 'recruiting' LIMIT 100",
    }
    print("\nDatasette-style pages and facets:")
    for label, sql in datasette_like.items():
        print(f"  {label:<40} {median_ms(lambda s=sql: db.execute(s).fetchall(), repeat=5):7.1f} ms")
    print("\nexport (`litmon export --relevance uncertain --tag rct`: select + render):")
    for fmt in export.FORMATS:
        start = time.perf_counter()
        works = store.load_export_works(db, relevance="uncertain", tag="rct")
        text = export.render(works, fmt)
        print(f"  {fmt:<8} {time.perf_counter() - start:6.2f} s ({len(works)} works, {len(text) / 1e6:.1f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("works", nargs="?", type=int, default=100000)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and print its path")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="litmon-bench-"))
    path = folder / "litmon.db"
    db = ingest.open_db(path)
    build(db, args.works)
    db.execute("ANALYZE")
    measure(db, path)
    db.close()
    if args.keep:
        print(f"\nkept {path}")
    else:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
