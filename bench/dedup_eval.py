#!/usr/bin/env python3
"""Pairwise precision, recall and F1 of litmon's merges and of each link type on the labelled corpus.

    python bench/dedup_eval.py                       # the committed corpus (tests/fixtures/dedup), every arrival order
    python bench/dedup_eval.py --order by_file -v    # one order, listing every wrong pair and link
    python bench/dedup_eval.py --seed 7 --articles 300 --preprints 60
                                                     # a fresh corpus: the same hard cases plus 360 random works

The corpus is wire-format answers of every source (see tests/fixtures/dedup/generate.py), parsed by
litmon's parsers and saved batch by batch through ``ingest.save_batch`` into a fresh SQLite file, as
a crawl does. Merge metrics count every pair of labelled records (same gold work = positive); link
metrics compare the links between current works (``work_links_view``) with the labelled links.
Targets: merge precision >= 0.995, recall >= 0.98.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler import store  # noqa: E402
from tests.helpers import dedup_corpus as corpus  # noqa: E402


def load_generator():
    spec = importlib.util.spec_from_file_location("dedup_generate", corpus.FIXTURES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fmt(m: dict) -> str:
    return f"P={m['precision']:.4f} R={m['recall']:.4f} F1={m['f1']:.4f} (tp={m['tp']} fp={m['fp']} fn={m['fn']})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", action="append", choices=corpus.ORDERS, help="arrival order (repeatable; default: all)")
    parser.add_argument("--seed", type=int, help="generate a fresh corpus with this seed instead of the committed one")
    parser.add_argument("--articles", type=int, default=56, help="ordinary articles of a generated corpus (default 56)")
    parser.add_argument("--preprints", type=int, default=10, help="ordinary preprints of a generated corpus (default 10)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every false/missed merge and link")
    args = parser.parse_args()

    files = None
    if args.seed is not None:
        files = load_generator().build(seed=args.seed, n_articles=args.articles, n_preprints=args.preprints)
    labels = corpus.load_labels(files)
    hard = corpus.hard_negative_pairs(labels)
    print(
        f"corpus: {'seed ' + str(args.seed) if files else 'tests/fixtures/dedup'}; {len(labels['records'])} records, "
        f"{len(set(labels['records'].values()))} gold works, {len(labels['links'])} gold links, "
        f"{len(hard)} hard-negative pairs in {sum(1 for c in labels['cases'] if not c.startswith('ordinary'))} hard cases"
    )
    worst = 0
    for order in args.order or corpus.ORDERS:
        with tempfile.TemporaryDirectory() as tmp:
            db = store.open_db(Path(tmp) / "eval.db")
            started = time.perf_counter()
            corpus.load(db, order, files)
            seconds = time.perf_counter() - started
            result = corpus.score(db, labels)
            db.close()
        merge = result["merge"]
        print(f"\norder {order}: loaded in {seconds:.2f}s; {result['positive_pairs']} positive pairs")
        print(f"  merges            {fmt(merge)}")
        hard_wrong = sorted(set(hard) & set(result["false_merges"]))
        print(f"  hard negatives    {len(hard) - len(hard_wrong)}/{len(hard)} kept apart")
        for link_type, m in result["links"].items():
            print(f"  link {link_type:<24} {fmt(m)}")
        print(f"  links (all types) {fmt(result['links_all'])}")
        if result["missing_records"]:
            print(f"  records not stored: {result['missing_records']}")
        if args.verbose:
            for a, b in result["false_merges"]:
                print(f"    false merge: {a} ({labels['records'][a]}) + {b} ({labels['records'][b]})")
            for a, b in result["missed_merges"]:
                print(f"    missed merge: {a} + {b} ({labels['records'][a]})")
            for _link_type, m in result["links"].items():
                for link in m["extra"]:
                    print(f"    extra link: {link}")
                for link in m["missed"]:
                    print(f"    missed link: {link}")
        if merge["precision"] < 0.995 or merge["recall"] < 0.98:
            worst = 1
    print("\ntargets (merge precision >= 0.995, recall >= 0.98):", "met" if not worst else "NOT met")
    return worst


if __name__ == "__main__":
    sys.exit(main())
