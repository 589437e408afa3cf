"""Evaluate relevance and tags on the labelled set (tests/fixtures/classify) and print the figures.

    python bench/classify_eval.py [--config PATH] [--split dev|holdout|holdout2|holdout3|heldout|all] [--errors] [--db N [--workers N]]
                                  [--synth N]

Relevance: a work "reaches the digest" when it is judged relevant or uncertain; precision and
recall are computed for that decision (and, stricter, for ``relevant`` alone). Noise classes: how
many of each were kept out. Tags: precision / recall / F1 per tag; evidence-type tags over every
work, topic tags (drug, indication, safety) over the works labelled relevant. Targets (issue #5):
relevance recall >= 0.99 at precision >= 0.95; F1 >= 0.9 for every evidence-type tag.
With ``--db N``, also times ``litmon reclassify`` on a temporary database of N works (copies of the set; each
copy is its own work, and nothing is cached across works): with one worker per core, in one process, and in
one process again when nothing changes. Target (issue #15): >= 5,000 works/s.
With ``--synth N``, also the CPU time of classifying N synthetic PubMed records (``bench/pubmed_synth.py``: every
abstract names the drug, the indication, safety terms and a design), per record and per stage, the fastest of
five passes. Goal (issue #15): <= 0.4 ms per record (what 5,000 works/s of `litmon reclassify` needs on two cores).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler import clock, ingest, store  # noqa: E402
from crawler.classify import build_facts, build_vocabulary, classify_records, judge_relevance, reclassify, topic_tags  # noqa: E402
from crawler.config import load_config  # noqa: E402
from crawler.evidence import EVIDENCE_TAGS, evidence_tags, rank_score  # noqa: E402
from tests.helpers.classify_corpus import NOISE_CLASSES, load_corpus  # noqa: E402


def ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(works, vocabulary, show_errors: bool, title: str) -> dict:
    started = time.perf_counter()
    results = {w.key: classify_records(w.records, vocabulary) for w in works}
    seconds = time.perf_counter() - started
    print(
        f"\n=== {title}: {len(works)} works ({sum(w.relevant for w in works)} relevant), {len(works) / seconds:.0f} works/s ==="
    )

    tp = sum(1 for w in works if w.relevant and results[w.key].label != "not_relevant")
    fp = sum(1 for w in works if not w.relevant and results[w.key].label != "not_relevant")
    fn = sum(1 for w in works if w.relevant and results[w.key].label == "not_relevant")
    strict_tp = sum(1 for w in works if w.relevant and results[w.key].label == "relevant")
    strict_fp = sum(1 for w in works if not w.relevant and results[w.key].label == "relevant")
    labels = Counter(r.label for r in results.values())
    p, r = ratio(tp, tp + fp), ratio(tp, tp + fn)
    sp, sr = ratio(strict_tp, strict_tp + strict_fp), ratio(strict_tp, sum(w.relevant for w in works))
    print(
        f"relevance (relevant or uncertain reach the digest): precision {p:.3f}  recall {r:.3f}  F1 {f1(p, r):.3f}"
        f"   [tp {tp}, fp {fp}, fn {fn}]"
    )
    print(f"relevance (relevant only):                          precision {sp:.3f}  recall {sr:.3f}  F1 {f1(sp, sr):.3f}")
    print(
        f"labels given: {dict(labels)}; uncertain among truly relevant {sum(1 for w in works if w.relevant and results[w.key].label == 'uncertain')},"
        f" among not relevant {sum(1 for w in works if not w.relevant and results[w.key].label == 'uncertain')}"
    )

    print("\nnoise class          n  not_relevant  uncertain  relevant")
    for noise in NOISE_CLASSES:
        group = [w for w in works if w.noise == noise]
        if group:
            c = Counter(results[w.key].label for w in group)
            print(f"{noise:<18} {len(group):>3}  {c['not_relevant']:>12}  {c['uncertain']:>9}  {c['relevant']:>8}")

    all_tags = sorted({t for w in works for t in w.tags} | {t.tag for r in results.values() for t in r.tags})
    evidence = [t for t in EVIDENCE_TAGS if t in all_tags]
    topic = [t for t in all_tags if t not in EVIDENCE_TAGS]
    figures = {"relevance": (p, r), "tags": {}}
    for heading, names, population in (
        ("evidence type (all works)", evidence, works),
        ("topic tags (works labelled relevant)", topic, [w for w in works if w.relevant]),
    ):
        print(f"\n{heading:<38} support   tp   fp   fn  precision  recall     F1")
        for name in names:
            t_p = sum(1 for w in population if name in w.tags and name in results[w.key].tag_names)
            f_p = sum(1 for w in population if name not in w.tags and name in results[w.key].tag_names)
            f_n = sum(1 for w in population if name in w.tags and name not in results[w.key].tag_names)
            tp_ = ratio(t_p, t_p + f_p)
            tr_ = ratio(t_p, t_p + f_n)
            figures["tags"][name] = (tp_, tr_, f1(tp_, tr_) if t_p else 0.0)
            print(
                f"{name:<38} {t_p + f_n:>7} {t_p:>4} {f_p:>4} {f_n:>4}  {tp_:>9.3f} {tr_:>7.3f} {figures['tags'][name][2]:>6.3f}"
            )
    if show_errors:
        print("\nerrors:")
        for w in works:
            result = results[w.key]
            got = set(result.tag_names)
            wrong_label = w.relevant != (result.label != "not_relevant")
            scope = set(EVIDENCE_TAGS) if not w.relevant else None
            expected = w.tags if scope is None else w.tags & scope
            predicted = got if scope is None else got & scope
            if wrong_label or expected != predicted or (w.relevant and result.label == "uncertain"):
                print(
                    f"- {w.key} [{w.split}]: expected {'relevant' if w.relevant else 'not relevant (' + str(w.noise) + ')'}, got {result.label}"
                    f" (score {result.score})"
                )
                if expected - predicted:
                    print(f"    missing tags: {sorted(expected - predicted)}")
                if predicted - expected:
                    print(
                        f"    extra tags:   {sorted(predicted - expected)}  "
                        + "; ".join(f"{t.tag}: {t.evidence}" for t in result.tags if t.tag in predicted - expected)
                    )
                if wrong_label or result.label == "uncertain":
                    for reason in result.reasons:
                        print(f"    {reason}")
    return figures


def _children_cpu() -> float:
    """CPU seconds of the worker processes that have ended (reclassify's pool ends with it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_database(works, config, count: int, workers: int | None) -> None:
    """Store ``count`` works (copies of the labelled records) in a fresh SQLite file and reclassify them: first
    with the default workers (one per core) on a fresh file, then in one process on a fresh copy, then again
    with nothing to change. Wall and process time, with the load average: the machine may be shared."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db = store.open_db(path)
        batch = []
        for n in range(count):
            record = copy.deepcopy(works[n % len(works)].records[0])
            # each copy is its own work: a PMID of its own keeps it apart from the other copies of
            # the same title and authors (two PMIDs are two works), and no identifier it shared
            record.source_id, record.identifiers = f"{record.source_id}-{n}", []
            record.add_id("pmid", str(90_000_000 + n))
            batch.append(record)
        for start in range(0, len(batch), 1000):
            ingest.save_batch(db, batch[start : start + 1000])
        works_stored = db.execute("SELECT COUNT(*) FROM works WHERE merged_into IS NULL").fetchone()[0]
        if works_stored != count:
            print(f"\nwarning: {count} records made {works_stored} works (copies merged)")
        db.close()
        shutil.copy(path, Path(folder) / "fresh.db")
        print(f"\nreclassify on SQLite ({os.cpu_count()} cores):")
        for title, workers_, file in (
            (f"{workers or os.cpu_count()} worker(s), first classification", workers, path),
            ("one process, first classification", 1, Path(folder) / "fresh.db"),
            ("one process, again: nothing changes", 1, Path(folder) / "fresh.db"),
        ):
            db = store.open_db(file)
            load = os.getloadavg()[0]
            started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
            report = reclassify(db, config, workers=workers_)
            seconds, cpu, children = time.perf_counter() - started, time.process_time() - cpu, _children_cpu() - children
            db.close()
            print(
                f"  {title}: {report.works} works in {seconds:.2f}s, **{report.works / seconds:.0f} works/s**"
                f" (CPU: this process {cpu:.2f}s, workers {children:.2f}s; {report.works / (cpu + children):.0f} works per"
                f" CPU second; load {load:.1f}); {report.labels}"
            )
        print(f"  database {path.stat().st_size / 1e6:.1f} MB")


def time_synthetic(vocabulary, count: int) -> None:
    """CPU time of classifying ``count`` synthetic PubMed records (as a backfill hands them over: ``records.data``
    with the abstract), per record, whole and stage by stage; the fastest of five passes (the machine may be shared)."""
    from bench.pubmed_synth import efetch_body
    from crawler.sources import pubmed

    works = [[record.to_dict()] for record in pubmed.parse_efetch(efetch_body(0, count, max(count, 10_000)))]
    today_date = clock.today()
    for records in works[:50]:  # compiled expressions and the automaton built before timing
        classify_records(records, vocabulary, today_date)
    stages = ("facts", "relevance and every rule", "evidence types", "topic tags", "rank")
    best = {name: float("inf") for name in ("whole", *stages)}
    for _ in range(5):
        started = time.process_time()
        for records in works:
            classify_records(records, vocabulary, today_date)
        best["whole"] = min(best["whole"], time.process_time() - started)
        spent = dict.fromkeys(stages, 0.0)
        for records in works:  # the steps of classify_facts, each timed
            mark = time.process_time()
            facts = build_facts(records)
            now = time.process_time()
            spent["facts"] += now - mark
            label, _, _ = judge_relevance(facts, vocabulary)
            mark, now = now, time.process_time()
            spent["relevance and every rule"] += now - mark
            tags = evidence_tags(facts)
            mark, now = now, time.process_time()
            spent["evidence types"] += now - mark
            tags += topic_tags(facts, vocabulary)
            mark, now = now, time.process_time()
            spent["topic tags"] += now - mark
            rank_score(facts, tags, label, today_date)
            spent["rank"] += time.process_time() - now
        for name in stages:
            best[name] = min(best[name], spent[name])
    per = {name: seconds / len(works) * 1000 for name, seconds in best.items()}
    print(
        f"\nclassification of {len(works)} synthetic PubMed records (CPU, fastest of 5; load {os.getloadavg()[0]:.1f}):"
        f" **{per['whole']:.3f} ms per record** ({len(works) / best['whole']:.0f} records per CPU second); by stage: "
        + ", ".join(f"{name} {per[name]:.3f}" for name in stages)
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", default=str(ROOT / "config" / "litmon.toml"), help="config whose [topic] vocabulary is evaluated"
    )
    parser.add_argument(
        "--split",
        choices=("dev", "holdout", "holdout2", "holdout3", "heldout", "all"),
        default=None,
        help="evaluate one split (default: each split, then all)",
    )
    parser.add_argument("--errors", action="store_true", help="list every misclassified work with its reasons")
    parser.add_argument("--db", type=int, metavar="N", help="also time reclassify on a temporary database of N works")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes of the first --db run (default: one per core)")
    parser.add_argument("--synth", type=int, metavar="N", help="also time classifying N synthetic PubMed records, by stage")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    vocabulary = build_vocabulary(config.topic)
    works = load_corpus()
    print(f"labelled set: {len(works)} works from tests/fixtures/classify (vocabulary {vocabulary.hash}, config {args.config})")
    splits = [args.split] if args.split else sorted({w.split for w in works}) + ["heldout", "all"]
    for split in splits:
        if split == "all":
            chosen = works
        elif split == "heldout":  # every held-out file together: the figures the targets are read on
            chosen = [w for w in works if w.split.startswith("holdout")]
        else:
            chosen = [w for w in works if w.split == split]
        if chosen:
            evaluate(chosen, vocabulary, args.errors, split)
    if args.synth:
        time_synthetic(vocabulary, args.synth)
    if args.db:
        time_database(works, config, args.db, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
