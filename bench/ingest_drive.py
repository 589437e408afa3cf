#!/usr/bin/env python3
"""The writing process of a backfill, in process: ``ingest.save_batch`` over N synthetic PubMed records.

    python bench/ingest_drive.py 10000 100000     # each size on a fresh SQLite file
    python bench/ingest_drive.py 20000 --cache /tmp/records-20000.pickle
    python bench/ingest_drive.py 10000 --prepared  # each record prepared ahead, as the fetch worker does

The records are ``bench/pubmed_synth.py``'s (the corpus ``bench/pipeline.py`` serves), parsed by
litmon's efetch parser once, before anything is timed (``--cache`` keeps them in a pickle between
runs), then saved in batches of 500 (efetch's page) with the shipped vocabulary, as a crawl does. No
HTTP, no parsing in the measured part: what is left is the one writing process (save, dedup,
classification, the ``work_summaries`` refresh and its search index), whose cost per record must stay
flat as the tables grow. With ``--prepared``, each record's ``ingest.prepare_record`` (its row values, hash,
fingerprint and keys) is computed before the timed part and handed to ``save_batch``, as the fetch worker's
batches are: what is left is the writing process's own work with the worker.

Printed per size: the load average, CPU (process) time per record of each stage, per tenth of the
run and in all, and the database size. Stages are exclusive (a stage's time excludes the stages it
calls); "summaries" is the ``work_summaries`` refresh with its FTS5 index, wherever it is called.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import STAGES, shipped_topic  # noqa: E402

WRITER_STAGES = ("save", "dedup", "summaries")
SHOWN = ("save", "dedup", "summaries", "classify", "other")
BATCH = 500


def load_records(n: int, cache: str | None) -> list:
    """N parsed records (from the pickle ``cache`` when it holds them)."""
    if cache and Path(cache).exists():
        records = pickle.loads(Path(cache).read_bytes())
        if len(records) >= n:
            return records[:n]
    from bench.pubmed_synth import efetch_body
    from crawler.sources.pubmed import parse_efetch

    records = []
    for start in range(0, n, BATCH):
        records.extend(parse_efetch(efetch_body(start, min(start + BATCH, n), n)))
    if cache:
        Path(cache).write_bytes(pickle.dumps(records))
    return records


def instrument(totals: dict[str, float]) -> None:
    """Wrap each stage's function so that its exclusive CPU time adds to ``totals[stage]``."""
    import importlib

    stack: list[list] = []

    def timed(stage, func):
        def wrapper(*args, **kwargs):
            stack.append([stage, time.process_time(), 0.0])
            try:
                return func(*args, **kwargs)
            finally:
                name, started, nested = stack.pop()
                spent = time.process_time() - started
                totals[name] = totals.get(name, 0.0) + spent - nested
                if stack:
                    stack[-1][2] += spent

        return wrapper

    for module_name, attr, stage in STAGES:
        module = importlib.import_module(module_name)
        if hasattr(module, attr) and stage not in ("http", "parse"):
            setattr(module, attr, timed(stage, getattr(module, attr)))


def drive(n: int, args) -> None:
    from crawler import ingest
    from crawler.config import parse_config

    records = load_records(n, args.cache)
    prepared = [ingest.prepare_record(r) for r in records] if args.prepared else None
    config = parse_config(f'contact_email = "bench@example.org"\n{shipped_topic()}\n')
    totals: dict[str, float] = {}
    instrument(totals)
    with tempfile.TemporaryDirectory(prefix="litmon-drive-") as folder:
        path = Path(args.dir or folder) / f"drive-{n}.db"
        for p in path.parent.glob(path.name + "*"):
            p.unlink()
        db = ingest.open_db(path)
        load = os.getloadavg()
        tenths: list[dict[str, float]] = []
        mark, last, cpu_started = n / 10, dict(totals), time.process_time()
        started, cpu_last = time.perf_counter(), cpu_started
        for start in range(0, n, BATCH):
            batch = records[start : start + BATCH]
            ready = prepared[start : start + BATCH] if prepared is not None else None
            ingest.save_batch(db, batch, now="2026-11-23 09:00:00", config=config, prepared=ready)
            done = start + len(batch)
            if done >= mark or done == n:
                now_cpu = time.process_time()
                part = {k: v - last.get(k, 0.0) for k, v in totals.items()}
                part["all"] = now_cpu - cpu_last
                part["other"] = part["all"] - sum(part.get(s, 0.0) for s in SHOWN[:-1])
                part["n"] = done - (len(tenths) and sum(t["n"] for t in tenths))
                tenths.append(part)
                last, cpu_last, mark = dict(totals), now_cpu, mark + n / 10
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        db.conn.close()
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    end_load = os.getloadavg()
    print(
        f"{n} records: save_batch CPU {cpu:.1f}s = {1000 * cpu / n:.2f} ms/record ({n / cpu:.0f} records per CPU second), "
        f"wall {wall:.1f}s; load {load[0]:.2f} → {end_load[0]:.2f}; database {size:.1f} MB"
        + ("; records prepared ahead" if prepared is not None else "")
    )
    print("        CPU ms per record   " + " ".join(f"{name:>9}" for name in (*SHOWN, "writer", "all")))
    for i, part in enumerate(tenths):
        per = {k: 1000 * v / part["n"] for k, v in part.items() if k != "n"}
        writer = sum(per.get(s, 0.0) for s in WRITER_STAGES)
        label = f"{i * 10}-{(i + 1) * 10}%"
        print(f"        {label:<20}" + " ".join(f"{per.get(s, 0.0):9.3f}" for s in SHOWN) + f" {writer:9.3f} {per['all']:9.3f}")
    per = {k: 1000 * v / n for k, v in totals.items()}
    per["other"] = 1000 * cpu / n - sum(per.get(s, 0.0) for s in SHOWN[:-1])
    writer = sum(per.get(s, 0.0) for s in WRITER_STAGES)
    print(
        f"        {'whole run':<20}"
        + " ".join(f"{per.get(s, 0.0):9.3f}" for s in SHOWN)
        + f" {writer:9.3f} {1000 * cpu / n:9.3f}"
    )
    print("        (writer = save + dedup + summaries: the stages that must stay in the writing process)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000], help="record counts (default 10000 100000)")
    parser.add_argument("--cache", help="pickle of the parsed records, reused between runs (made if missing)")
    parser.add_argument("--dir", help="folder of the database (default: a temporary one, removed)")
    parser.add_argument(
        "--prepared", action="store_true", help="prepare each record before the timed part, as the fetch worker does"
    )
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load {load}; python {sys.version.split()[0]}")
    for size in args.sizes:
        drive(size, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
