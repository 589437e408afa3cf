#!/usr/bin/env python3
"""End-to-end PubMed backfill: the real `litmon crawl --source pubmed` against a loopback E-utilities server.

    python bench/pipeline.py                     # 10000 and 100000 records
    python bench/pipeline.py 20000 --keep        # one size; keep the SQLite file
    python bench/pipeline.py 10000 --plain       # the `litmon` console script itself, no instrumentation
    python bench/pipeline.py 10000 --worker off  # one path only ([crawl] fetch_worker); default: off, then auto
    python bench/pipeline.py 10000 --first-of 100000 --worker auto  # the first tenth of a 100k backfill alone

A local server (``bench/pubmed_synth.py``) answers ``esearch``/``efetch`` in NCBI's wire format with N
records of one topic (realistic titles: many share an ending or an opening, as a real topic corpus
does), created evenly from 2000 to 2026, so the first crawl backfills all of them, splitting windows
over esearch's 9,999 cap exactly as against NCBI. The records are rendered into a file before the crawl
starts (not timed), and the server sends their bytes: NCBI's servers run on machines of their own, while
generating the XML on each request (``--live-server``, as before session 11) took ~0.4 ms of CPU per record
from the same cores as the crawl. Each size crawls a fresh SQLite file in a child
process running ``litmon --config … crawl --source pubmed`` (the CLI's own entry point, so the run
lock, the pipeline, the store, dedup and classification all run as in production). The pubmed
source uses ``batch_size`` from ``--batch`` (default: the shipped default) and ``min_interval``
0.1 s (NCBI's 10 requests/s with an API key); ``--min-interval`` changes it.

With ``--first-of T``, the server holds only the first N records of a T-record corpus, with their create dates in it
(T/N times as many records per year as an N-record corpus, as dedup's year windows see them): the start of a T-record
backfill, to compare with an N-record one without running T.

Printed per size: records/s overall and per tenth of the run (flat = linear), wall seconds, peak
RSS of the crawling process, database size, SQL statements per record (calls into SQLite:
``execute``/``executemany``/``executescript`` each count once, ``db.query``'s SAVEPOINT/RELEASE
included) and statement executions per record (every row of an ``executemany`` counts; the programs
triggers run do not: counting them took SQLite's trace callback, which in CPython expands the whole
statement's SQL with its bound values at every row and trigger program, and so inflated the stages that
bind long texts or fire triggers, "summaries" most), candidates compared per record (calls of ``dedup.compare``), and a per-stage breakdown
(exclusive wall seconds, CPU (process) time per record, which the load of a shared machine moves far
less, and statements of HTTP incl. rate-limit waits, parsing, saving, dedup, classification, the
work_summaries refresh; with the fetch worker, the hand-over too: the worker's "prepare" (each
record's row values and dedup's inputs) and "send" (pickling and writing each batch), the writer's "receive";
"other" is the rest), and the cyclic garbage collector's CPU time within them. ``--sql-top N`` adds the statements with most time in
``execute``; ``--worker`` sets ``[crawl] fetch_worker`` (default ``both``: one process, then the fetch worker
beside the writer, back to back; each run prints which path ran, and with the worker its CPU and
stages apart from the writing process's, a ``waits`` line and an ``idle`` line: the two cores' idle time by interval,
the writer alone before the worker starts, waiting for the first batch after its warm-up and for the later ones, the
worker waiting for asks before its last batch, the writer alone at the end; calls made in a thread, such as the
prefetch's searches, are not timed as stages); ``--profile FILE`` writes a cProfile of the crawl (and of the fetch worker to FILE.worker). Each process's work
per record by tenth of the run follows (the writer's by batch saved, the worker's by batch prepared; the first tenth
holds the start): CPU ms of user and system time and of each stage, and the reads and writes the system counted for
it (``/proc/self/io``: system calls and KiB, files and pipes alike), which show the SQLite pages each batch writes
growing with the file. Instrumentation costs a few percent; ``--plain`` runs the
console script bare and prints only time, peak RSS and size.
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: (module, function, stage) wrapped in the child; missing ones are skipped (modules move).
STAGES = [
    # efetch runs in a prefetch thread while the previous page is parsed and saved: "http" is the time
    # the crawl waits for a page (_await_page), not the thread's request time (it overlaps the others)
    ("crawler.sources.pubmed", "_await_page", "http"),
    ("crawler.sources.pubmed", "_esearch", "http"),
    ("crawler.sources.pubmed", "parse_efetch", "parse"),
    ("crawler.sources.pubmed", "_read", "parse"),  # the first answer, read in two parts by the fetch worker
    ("crawler.ingest", "save_batch", "save"),
    ("crawler.dedup", "resolve_records", "dedup"),
    ("crawler.classify", "classify_batch", "classify"),
    # work_summaries (the search index): refreshed per batch by ingest and by save_classifications
    ("crawler.store", "refresh_work_summaries", "summaries"),
    ("crawler.store.works", "refresh_work_summaries", "summaries"),
    ("crawler.store.classification", "refresh_work_summaries", "summaries"),
    ("crawler.classify", "classify_records_batch", "classify"),
    # the fetch worker's classification of each record as a work of its own (in the worker process)
    ("crawler.fetch_worker", "_classify_alone", "classify"),
    # the hand-over: the worker prepares each record's row and dedup's inputs, and pickles and sends each batch;
    # the writer receives (unpickles) it and makes its objects back
    ("crawler.fetch_worker", "_prepare", "prepare"),
    ("multiprocessing.connection", "Connection.send", "send"),
    ("multiprocessing.connection", "Connection.send_bytes", "send"),
    ("crawler.fetch_worker", "_packed", "send"),
    ("multiprocessing.connection", "Connection.recv", "receive"),
    ("multiprocessing.connection", "Connection.recv_bytes", "receive"),
    ("crawler.fetch_worker", "_unpacked", "receive"),
    ("crawler.fetch_worker", "receive_batch", "receive"),
    # the writing process waiting for the worker's next batch (in the worker, "receive" is its wait for the writer's ask)
    ("crawler.fetch_worker", "_Worker._answer", "wait"),
    # the worker waiting for the writer to ask for the batch a thread of its own holds, with the next one ready too
    ("crawler.fetch_worker", "_Answering.result", "receive"),
    # when the writer started the worker (the span's end)
    ("crawler.fetch_worker", "_Worker.__init__", "start"),
]
#: modules of STAGES instrumented when litmon imports them, not before: importing one here would put it before the fetch
#: worker's fork whatever litmon does (a litmon that imports it after the fork is then measured as it runs)
LATE_MODULES = ("crawler.classify",)
#: stages whose spans (start, end) are kept: the waits of both processes, for the report's idle figures
SPANS = ("wait", "receive", "http", "start")

CONFIG = """
contact_email = "bench@example.org"
[database]
path = "{db}"
[outbox]
dir = "{outbox}"
[crawl]
backfill_from = 2000-01-01
fetch_worker = "{worker}"
[sources.pubmed]
enabled = true
base_url = "{url}"
query = '(ketamine[tiab] OR esketamine[tiab]) AND depress*[tiab]'
min_interval = {interval}
{batch}

{topic}
"""


def shipped_topic() -> str:
    """The ``[topic…]`` tables of the shipped config/litmon.toml (the vocabulary classified with)."""
    lines, inside = [], False
    for line in (ROOT / "config" / "litmon.toml").read_text().splitlines():
        if line.startswith("["):
            inside = line.startswith("[topic]") or line.startswith("[topic.")
        if inside:
            lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------- child: the instrumented crawl


def run_child(config_path: str, out_path: str) -> int:
    began = time.perf_counter()  # (litmon's modules are imported from here on, before the crawl's start)
    import importlib
    import importlib.abc
    import importlib.util
    import sqlite3

    stats = {
        "stages": {},
        "calls": 0,
        "executions": 0,
        "compares": 0,
        "progress": [],
        "ahead": 0,
        "gc": [0.0, 0, 0],
        "spans": {},
        "late": 0,
    }
    collecting: list[float] = []

    def on_collection(phase, info) -> None:  # the cyclic garbage collector's CPU time (inside the stages)
        if phase == "start":
            collecting[:] = [time.process_time()]
        elif collecting:
            stats["gc"][0] += time.process_time() - collecting[0]
            stats["gc"][1] += 1
            stats["gc"][2] += info["generation"] == 2

    gc.callbacks.append(on_collection)
    stack: list[list] = []  # [stage, started, nested seconds]

    def stage_of() -> str:
        return stack[-1][0] if stack else "other"

    def bump(stage: str, seconds: float = 0.0, calls: int = 0, cpu: float = 0.0, executions: int = 0) -> None:
        entry = stats["stages"].setdefault(stage, {"seconds": 0.0, "cpu": 0.0, "calls": 0, "executions": 0})
        entry["seconds"] += seconds
        entry["cpu"] += cpu
        entry["calls"] += calls
        entry["executions"] += executions

    def many(run, sql, rows, *args, **kwargs):
        """``executemany``: one call, one execution per row (the rows made a list to be counted)."""
        rows = rows if isinstance(rows, (list, tuple)) else list(rows)
        return timed_sql(run, sql, rows, *args, executions=len(rows), **kwargs)

    by_sql: dict[str, list] = {}  # statement (first 100 characters) -> [calls, seconds in execute/executemany]

    def timed_sql(run, sql, *args, executions: int = 1, **kwargs):
        stats["calls"] += 1
        stats["executions"] += executions
        bump(stage_of(), calls=1, executions=executions)
        started = time.perf_counter()
        try:
            return run(sql, *args, **kwargs)
        finally:
            entry = by_sql.setdefault(" ".join(str(sql).split())[:100], [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    class CountingConnection(sqlite3.Connection):
        def execute(self, *args, **kwargs):
            return timed_sql(super().execute, *args, **kwargs)

        def executemany(self, *args, **kwargs):
            return many(super().executemany, *args, **kwargs)

        def executescript(self, *args, **kwargs):
            stats["calls"] += 1
            stats["executions"] += 1
            bump(stage_of(), calls=1, executions=1)
            return super().executescript(*args, **kwargs)

        def cursor(self, *args, **kwargs):
            return super().cursor(CountingCursor)

    class CountingCursor(sqlite3.Cursor):
        def execute(self, *args, **kwargs):
            return timed_sql(super().execute, *args, **kwargs)

        def executemany(self, *args, **kwargs):
            return many(super().executemany, *args, **kwargs)

    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        kwargs.setdefault("factory", CountingConnection)
        return real_connect(*args, **kwargs)

    sqlite3.connect = connect

    def timed(stage, func):
        def wrapper(*args, **kwargs):
            if threading.current_thread() is not threading.main_thread():
                # a thread's calls (the prefetch's searches, the worker's answering thread) overlap the main thread's
                # stages: timed there, they would be nested in them and counted as waits of the process
                return func(*args, **kwargs)
            if stage == "save" and kwargs.get("ahead"):
                stats["ahead"] += len(kwargs["ahead"])  # records the worker classified ahead
            stack.append([stage, time.perf_counter(), 0.0, time.process_time(), 0.0])
            try:
                return func(*args, **kwargs)
            finally:
                name, started, nested, cpu_started, cpu_nested = stack.pop()
                spent, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                bump(name, spent - nested, cpu=cpu - cpu_nested)
                if stack:
                    stack[-1][2] += spent
                    stack[-1][4] += cpu
                if name in SPANS and not any(s[0] == name for s in stack):
                    stats["spans"].setdefault(name, []).append((started, started + spent))
                if name in ("save", "prepare") and not any(s[0] == name for s in stack):
                    # each batch saved (the writer) or prepared (the worker): the time, and the CPU so far in all and
                    # by stage, for the figures by tenth
                    times = os.times()
                    stages = {stage: v["cpu"] for stage, v in stats["stages"].items()}
                    stats["progress"].append((time.perf_counter(), _count(args), times.user, times.system, stages, _io()))

        return wrapper

    def _io() -> dict[str, float]:
        """The process's reads and writes so far, files and pipes alike (Linux's /proc/self/io: system calls and
        KiB); empty elsewhere."""
        try:
            fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        except (OSError, ValueError):
            return {}
        return {
            "reads": int(fields["syscr"]),
            "writes": int(fields["syscw"]),
            "KiB read": int(fields["rchar"]) / 1024,
            "KiB written": int(fields["wchar"]) / 1024,
        }

    def _count(args) -> int:
        for a in args:
            if isinstance(a, list):
                return len(a)
        return 0

    def instrument(module_name: str) -> None:
        for name_of_module, attr, stage in STAGES:
            if name_of_module != module_name:
                continue
            owner = sys.modules[module_name]
            *path, name = attr.split(".")  # a class's method: "Connection.send"
            for part in path:
                owner = getattr(owner, part, None)
            if owner is not None and hasattr(owner, name):
                setattr(owner, name, timed(stage, getattr(owner, name)))

    class InstrumentWhenImported(importlib.abc.MetaPathFinder):
        """The stages of a module of LATE_MODULES wrapped when litmon imports it (before or after the fetch worker's
        fork, wherever litmon does): importing it here would move its import before the fork."""

        def find_spec(self, fullname, path, target=None):
            if fullname not in LATE_MODULES:
                return None
            sys.meta_path.remove(self)  # (the module's own finder answers, once)
            try:
                spec = importlib.util.find_spec(fullname)
            finally:
                sys.meta_path.insert(0, self)
            if spec is not None and spec.loader is not None:
                execute = spec.loader.exec_module

                def exec_module(module) -> None:
                    execute(module)
                    instrument(fullname)

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    for module_name in dict.fromkeys(module for module, _, _ in STAGES):
        if module_name in LATE_MODULES and module_name not in sys.modules:
            continue
        try:
            importlib.import_module(module_name)
        except ImportError:
            continue
        instrument(module_name)
    sys.meta_path.insert(0, InstrumentWhenImported())
    dedup = importlib.import_module("crawler.dedup")
    real_compare = dedup.compare

    def compare(*args, **kwargs):
        stats["compares"] += 1
        return real_compare(*args, **kwargs)

    dedup.compare = compare

    worker_class = getattr(importlib.import_module("crawler.fetch_worker"), "_Worker", None)
    if worker_class is not None and hasattr(worker_class, "_late"):  # classified by the worker after their batch was sent
        real_late = worker_class._late

        def late(self):
            more = real_late(self)
            stats["late"] += len(more)
            return more

        worker_class._late = late
    profiling: list = []  # the writing process's profiler (--profile)
    try:  # the fetch worker (a forked process): its own stages and CPU, written where the parent reads them
        fetch_worker = importlib.import_module("crawler.fetch_worker")
    except ImportError:
        fetch_worker = None
    if fetch_worker is not None and hasattr(fetch_worker, "_work"):
        real_work = fetch_worker._work

        def work(*args, **kwargs):
            stats.update(stages={}, calls=0, executions=0, compares=0, progress=[], ahead=0, gc=[0.0, 0, 0], spans={})
            stack.clear()
            worker_profile = os.environ.get("LITMON_BENCH_PROFILE")
            if worker_profile:  # the writer's profiler, forked with it, would never be written: one of its own
                import cProfile

                if profiling:
                    profiling[0].disable()
                worker_profiler = cProfile.Profile()
                worker_profiler.enable()
            try:
                return real_work(*args, **kwargs)
            finally:
                if worker_profile:
                    worker_profiler.disable()
                    worker_profiler.dump_stats(worker_profile + ".worker")
                stats["cpu"] = time.process_time()
                stats["ended"] = time.perf_counter()
                stats["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                Path(out_path + ".worker").write_text(json.dumps(stats))

        fetch_worker._work = work

    from crawler import cli

    profile_path = os.environ.get("LITMON_BENCH_PROFILE")
    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiling.append(profiler)
        profiler.enable()
    started = time.perf_counter()
    stats["imports"] = started - began  # litmon's modules imported before the crawl's start (the CLI's, the stages')
    try:
        cli.main(["--config", config_path, "-q", "crawl", "--source", "pubmed"])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)
    stats["seconds"] = time.perf_counter() - started
    stats["cpu"] = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats["children_cpu"] = children.ru_utime + children.ru_stime
    stats["started"] = started
    stats["exit"] = code
    stats["sql"] = sorted(([sql, *v] for sql, v in by_sql.items()), key=lambda item: -item[2])[:30]
    stats["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    Path(out_path).write_text(json.dumps(stats))
    return int(code)


# --------------------------------------------------------------------------- parent: server, child, report


def by_tenth(progress: list, started: float, total: int) -> list[int]:
    """Records/s over each tenth of the records saved."""
    rates, done, mark, last_t, last_done = [], 0, total / 10, started, 0
    for t, n, *_ in progress:
        done += n
        if done >= mark or (t, n) == tuple(progress[-1][:2]):
            rates.append(round((done - last_done) / max(t - last_t, 1e-9)))
            last_t, last_done = t, done
            mark = done + total / 10
    return rates


def by_tenth_per_record(progress: list, total: int, stages: tuple[str, ...]) -> list[str]:
    """A process's work per record over each tenth of the records (its batches saved, or prepared by the worker):
    CPU ms of user and system time and of each stage (process time), and its reads and writes (system calls and KiB,
    files and pipes alike, where the system tells); flat = the same work per record along the run."""
    rows: list[tuple[float, float, dict, dict]] = []
    done, mark, last = 0, total / 10, (0, 0.0, 0.0, {}, {})
    for _, n, user, system, cpu, io in progress:
        done += n
        if done >= mark or (user, system) == tuple(progress[-1][2:4]):
            count = max(done - last[0], 1)
            rows.append(
                (
                    1000 * (user - last[1]) / count,
                    1000 * (system - last[2]) / count,
                    {k: 1000 * (v - last[3].get(k, 0.0)) / count for k, v in cpu.items()},
                    {k: (v - last[4].get(k, 0)) / count for k, v in io.items()},
                )
            )
            last = (done, user, system, cpu, io)
            mark = done + total / 10
    lines = [
        "CPU ms: user " + " ".join(f"{row[0]:.2f}" for row in rows),
        "system " + " ".join(f"{row[1]:.2f}" for row in rows),
    ]
    for stage in stages:
        if any(stage in row[2] for row in rows):
            lines.append(f"{stage} " + " ".join(f"{row[2].get(stage, 0.0):.2f}" for row in rows))
    for name in ("reads", "KiB read", "writes", "KiB written"):
        if rows and name in rows[0][3]:
            lines.append(f"{name} " + " ".join(f"{row[3][name]:.1f}" for row in rows))
    return lines


def waits(s: dict, w: dict, records: int) -> str:
    """Where the two processes waited (wall seconds: the host's load lengthens them): the writing process for the
    worker's batches (the first one apart: the worker's start, its first page and parsing), the worker for the
    writer's asks (the last wait apart: after its last batch, until the writer is done) and for efetch pages; and
    how busy the two cores were (both processes' CPU over twice the crawl's wall time)."""
    spans = s["spans"].get("wait", [])
    waited = sum(b - a for a, b in spans)
    first = spans[0][1] - s["started"] if spans else 0.0  # from the crawl's start to the first batch
    asks = w["spans"].get("receive", [])
    asked = sum(b - a for a, b in asks)
    last = asks[-1][1] - asks[-1][0] if asks else 0.0
    pages = sum(b - a for a, b in w["spans"].get("http", []))
    busy = (s["cpu"] + w["cpu"]) / (2 * s["seconds"])
    return (
        f"waits (wall): writer {waited:.2f}s for the worker's batches ({len(spans)} waits; the first batch came "
        f"{first:.2f}s after the start), worker {asked:.2f}s for the writer's asks (the last {last:.2f}s) and "
        f"{pages:.2f}s for pages; both cores busy {100 * busy:.0f} % of the wall time"
    )


def idle(s: dict, w: dict) -> str:
    """The idle time of the two cores by interval (wall seconds): the writer alone before the worker starts; the
    writer waiting for the first batch (after its classifier's warm-up, which is not idle: it is printed apart), without
    its transfer and unpickling; the writer waiting for later batches, likewise
    (the worker then parses or prepares a batch not yet asked for, or pickles one); the worker waiting for the
    writer's asks before its last batch (all of its batch classified ahead); the end, from the worker's last answer
    to the crawl's end (the writer alone)."""
    end = s["started"] + s["seconds"]
    forked = s["spans"].get("start", [(s["started"], s["started"])])[0][1]
    spans = s["spans"].get("wait", [])
    received = s["spans"].get("receive", [])

    def waited(within: list) -> float:
        return sum(b - a for a, b in within) - sum(b - a for a, b in received if any(x <= a and b <= y for x, y in within))

    warm = spans[0][0] - forked if spans else 0.0
    first, later = waited(spans[:1]), waited(spans[1:])
    asks = w["spans"].get("receive", [])
    mid = sum(b - a for a, b in asks[:-1])
    tail = end - w.get("ended", end)
    return (
        f"idle (wall): writer alone before the worker {forked - s['started']:.2f}s (and {s.get('imports', 0.0):.2f}s of imports "
        f"before the crawl's start); writer waiting for the first batch "
        f"{first:.2f}s (after {warm:.2f}s of warm-up), for later ones {later:.2f}s (transfer and unpickling left out); "
        "worker waiting for asks "
        f"before its last batch {mid:.2f}s; writer alone after the worker's end {tail:.2f}s"
    )


def run_size(n: int, args, worker: str) -> None:
    from bench.pubmed_synth import RenderedCorpus, serve_in_thread

    with tempfile.TemporaryDirectory(prefix="litmon-pipeline-") as folder:
        folder = Path(args.dir or folder)
        folder.mkdir(parents=True, exist_ok=True)
        rendered = None
        if not args.live_server:  # the records rendered before the crawl: serving them costs the cores next to nothing
            rendered = RenderedCorpus(n, folder / f"efetch-{n}.xml", dates_of=args.first_of)
        server, url = serve_in_thread(n, rendered, dates_of=args.first_of)
        db = folder / f"pipeline-{n}.db"
        for p in folder.glob(f"pipeline-{n}.db*"):
            p.unlink()
        config = folder / "litmon.toml"
        config.write_text(
            CONFIG.format(
                db=db,
                outbox=folder / "outbox",
                url=url,
                interval=args.min_interval,
                worker=worker,
                batch=f"batch_size = {args.batch}" if args.batch else "",
                topic=shipped_topic(),
            )
        )
        env = {**os.environ, "LITMON_NOW": "2026-11-23T09:00:00Z", "PYTHONPATH": str(ROOT)}
        if args.profile:
            env["LITMON_BENCH_PROFILE"] = str(Path(args.profile).resolve())
        out = folder / "stats.json"
        worker_out = Path(str(out) + ".worker")
        if worker_out.exists():
            worker_out.unlink()
        if args.plain:
            command = [str(Path(sys.executable).parent / "litmon"), "--config", str(config), "-q", "crawl", "--source", "pubmed"]
        else:
            command = [sys.executable, __file__, "--child", str(config), str(out)]
        load = os.getloadavg()
        started, serving = time.perf_counter(), time.process_time()
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        serving = time.process_time() - serving  # this process only serves while the crawl runs: the server's CPU
        rss = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        server.shutdown()
        if rendered is not None:
            rendered.close()
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"crawl of {n} records exited {proc.returncode}")
        size = sum(p.stat().st_size for p in folder.glob(f"pipeline-{n}.db*")) / 2**20
        import sqlite3

        conn = sqlite3.connect(db)
        records = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        works = conn.execute("SELECT COUNT(*) FROM works WHERE merged_into IS NULL").fetchone()[0]
        conn.close()
        head = (
            f"{records:>7} records ({works} works"
            + (f"; the first of {args.first_of}" if args.first_of else "")
            + f"), [crawl] fetch_worker = {worker}, load {load[0]:.2f} before"
            + f"; the server's CPU {1000 * serving / max(records, 1):.2f} ms per record"
            + (" (generating each answer)" if args.live_server else " (sending pre-rendered answers)")
        )
        if args.plain:
            print(f"{head}: {wall:.1f}s, {records / wall:.0f} records/s, peak RSS {rss} MB, database {size:.1f} MB [plain]")
            return
        s = json.loads(out.read_text())
        w = json.loads(worker_out.read_text()) if worker_out.exists() else None
        tenths = by_tenth(s["progress"], s["started"], records)
        print(
            f"{head}: {s['seconds']:.1f}s, {records / s['seconds']:.0f} records/s (by tenth: {' '.join(map(str, tenths))}), "
            f"peak RSS {s['peak_rss_mb']} MB, database {size:.1f} MB"
        )
        if w is None:
            print("        path: one process (fetch, parse, save, dedup, classify in turn)")
        else:
            ahead = s["ahead"] + s.get("late", 0)
            print(
                f"        path: fetch worker process beside the writer; {ahead} of {records} records classified ahead "
                f"by the worker ({100 * ahead / records:.0f} %; {s.get('late', 0)} of them late, while the writer saved "
                "their batch)"
            )
        print(
            f"        SQL statements per record {s['calls'] / records:.1f} (executions {s['executions'] / records:.1f}); "
            f"candidates compared per record {s['compares'] / records:.1f}"
        )
        accounted = sum(v["seconds"] for v in s["stages"].values())
        stages = dict(s["stages"])
        other = stages.setdefault("other", {"seconds": 0.0, "cpu": 0.0, "calls": 0, "executions": 0})
        other["seconds"] += max(s["seconds"] - accounted, 0.0)
        other["cpu"] += max(s["cpu"] - sum(v.get("cpu", 0.0) for v in s["stages"].values()), 0.0)
        print(
            f"        CPU time {s['cpu'] + s['children_cpu']:.1f}s in all, {1000 * (s['cpu'] + s['children_cpu']) / records:.2f} ms "
            f"per record (process time: load-proof)"
            + (f"; writing process {s['cpu']:.1f}s = {1000 * s['cpu'] / records:.2f} ms per record" if w else "")
        )
        for name in ("http", "parse", "receive", "save", "dedup", "classify", "summaries", "other"):
            v = stages.get(name)
            if v:
                print(
                    f"        {name:<9} {v['seconds']:7.2f}s {100 * v['seconds'] / s['seconds']:5.1f}%  "
                    f"CPU {v['cpu']:6.2f}s = {1000 * v['cpu'] / records:5.2f} ms/record  "
                    f"statements/record {v['calls'] / records:5.1f} (executions {v['executions'] / records:5.1f})"
                )
        print(
            f"        garbage collector (inside the stages): CPU {1000 * s['gc'][0] / records:.2f} ms/record in the writing process "
            f"({s['gc'][1]} collections, {s['gc'][2]} full)"
            + (f", {1000 * w['gc'][0] / records:.2f} in the worker ({w['gc'][1]}, {w['gc'][2]} full)" if w else "")
        )
        if w is not None:
            spent = sum(v.get("cpu", 0.0) for v in w["stages"].values())
            w["stages"].setdefault("other", {"seconds": 0.0, "cpu": 0.0, "calls": 0, "executions": 0})["cpu"] += max(
                w["cpu"] - spent, 0.0
            )
            parts = ", ".join(
                f"{name} {1000 * w['stages'][name]['cpu'] / records:.2f}"
                for name in ("http", "parse", "prepare", "classify", "send", "other")
                if name in w["stages"]
            )
            print(
                f"        worker process: CPU {w['cpu']:.1f}s = {1000 * w['cpu'] / records:.2f} ms/record ({parts}); "
                f"peak RSS {w['peak_rss_mb']} MB; the stages above are the writing process's"
            )
        print(
            "        per record by tenth, writing process (the first from the crawl's start): "
            + "; ".join(by_tenth_per_record(s["progress"], records, ("receive", "save", "dedup", "classify", "summaries")))
        )
        if w is not None and w["progress"]:
            print(
                "        per record by tenth, worker (the first from its start): "
                + "; ".join(by_tenth_per_record(w["progress"], records, ("parse", "prepare", "classify", "send")))
            )
        if w is not None:
            print("        " + waits(s, w, records))
            print("        " + idle(s, w))
        for sql, calls, seconds in s["sql"][: args.sql_top]:
            print(f"        {seconds:7.2f}s {calls:7d}x  {sql}")
        if args.keep:
            print(f"        kept {db}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000], help="record counts (default 10000 100000)")
    parser.add_argument("--batch", type=int, default=None, help="[sources.pubmed] batch_size (default: litmon's default)")
    parser.add_argument("--min-interval", type=float, default=0.1, help="seconds between requests (default 0.1: NCBI with a key)")
    parser.add_argument("--plain", action="store_true", help="run the litmon console script without instrumentation")
    parser.add_argument(
        "--worker",
        choices=("auto", "on", "off", "both"),
        default="both",
        help="[crawl] fetch_worker of the crawl; both (default): off, then auto, back to back for each size",
    )
    parser.add_argument(
        "--live-server",
        action="store_true",
        help="the server generates each efetch answer when asked (~0.4 ms of CPU per record on the same cores, as "
        "before session 11) instead of sending the records rendered before the crawl",
    )
    parser.add_argument(
        "--first-of",
        type=int,
        metavar="T",
        help="serve the first N records of a corpus of T (their create dates as in it: T/N times denser), the start of "
        "a T-record backfill",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (with --dir)")
    parser.add_argument("--dir", help="work folder (default: a temporary one)")
    parser.add_argument("--sql-top", type=int, default=0, help="also print the N statements with most time in execute (max 30)")
    parser.add_argument(
        "--profile",
        help="write a cProfile of the crawl (instrumented child) to this file, and of the fetch worker to FILE.worker",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    if args.keep and not args.dir:
        parser.error("--keep needs --dir")
    print(
        f"machine: {os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; python {sys.version.split()[0]}"
    )
    # the crawl imports this tree's crawler/ (PYTHONPATH): its byte code written first, as an installed litmon has it.
    # Without it (PYTHONDONTWRITEBYTECODE set, a fresh clone) every crawl compiled the modules at its start: +52 % of
    # the instructions before the fetch worker's fork, ~0.3 s of one core (docs/performance.md, fifteenth pass)
    compileall.compile_dir(ROOT / "crawler", quiet=1)
    for n in args.sizes:
        for worker in ("off", "auto") if args.worker == "both" else (args.worker,):
            run_size(n, args, worker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
