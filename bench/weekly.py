#!/usr/bin/env python3
"""A weekly `litmon run` over every shipped source: is it bounded by the rate-limit floor, not by CPU?

    python bench/weekly.py                # on a database of 20,000 works
    python bench/weekly.py --works 100000 # on a larger one (built first: takes a few minutes)

Every source of the shipped ``config/litmon.toml`` (the APIs, the feeds and the page) is served on
loopback from the recorded wire fixtures of ``tests/fixtures`` (``tests/helpers/upstream.py``), each
on an address of its own (127.0.0.2, 127.0.0.3, …) so that the HTTP client's per-host spacing applies
as against the real hosts. Rate limits are the shipped ones (no API keys: PubMed 0.34 s, Crossref
1/3 s in the polite pool, ClinicalTrials.gov 1.2 s, …).

A database of ``--works`` synthetic works (``bench/query_scale.py``'s builder) stands in for a year of
use. A first ``litmon run`` sets every source's watermark; the measured one runs seven days later
(``LITMON_NOW``), crawls every source's week (the fixtures of a later edition where a source has them:
new articles, a trial whose status changed, revised records) and makes the weekly digest (into an
outbox folder), as cron would. Each runs as the real console entry point in a child process that only times what the
HTTP client waits for (rate-limit spacing and backoff pauses).

Printed for the weekly run: wall seconds; CPU seconds of the process; requests per host with each
host's spacing; the rate-limit floor (the sum over hosts of (requests - 1) x spacing, as sources
run one after another); the time actually spent in rate-limit pauses; and what is left over
(wall - pauses: CPU, network on loopback and start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from crawler import http
from urllib.parse import urlsplit

out_path, argv = sys.argv[1], sys.argv[2:]
paused = {"rate_limit": 0.0, "backoff": 0.0}
spacing = {}
real_wait, real_backoff, real_pause = http.HttpClient._wait_for_host, http.HttpClient._backoff, http.HttpClient._pause
where = []

def wait_for_host(self, host):
    spacing[host] = self.min_intervals.get(host, self.default_min_interval)
    where.append("rate_limit")
    try:
        return real_wait(self, host)
    finally:
        where.pop()

def backoff(self, *args, **kwargs):
    where.append("backoff")
    try:
        return real_backoff(self, *args, **kwargs)
    finally:
        where.pop()

def pause(self, seconds):
    started = time.perf_counter()
    try:
        return real_pause(self, seconds)
    finally:
        paused[where[-1] if where else "backoff"] += time.perf_counter() - started

http.HttpClient._wait_for_host, http.HttpClient._backoff, http.HttpClient._pause = wait_for_host, backoff, pause
from crawler.cli import main
started, cpu = time.perf_counter(), time.process_time()
code = 0
try:
    main(argv)
except SystemExit as exc:
    code = exc.code or 0
report = {"exit": code, "wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "paused": paused,
          "spacing": spacing, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
open(out_path, "w").write(json.dumps(report))
"""


def shipped_config() -> dict:
    return tomllib.loads((ROOT / "config" / "litmon.toml").read_text(encoding="utf-8"))


def serve(answers: dict[str, object]) -> tuple[dict[str, str], dict[str, list], list]:
    """One threaded WSGI server per source on 127.0.0.k; returns each source's base URL and request log."""
    import logging

    from werkzeug.serving import make_server

    from tests.helpers.upstream import application

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    urls, logs, servers = {}, {}, []
    for k, (name, answer) in enumerate(answers.items(), start=2):
        logs[name] = []
        server = make_server(f"127.0.0.{k}", 0, application(answer, logs[name], time.monotonic), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.{k}:{server.server_port}/"
    return urls, logs, servers


def user_config(shipped: dict, urls: dict[str, str], db: Path, outbox: Path) -> str:
    """The operator's file: the shipped config with every source pointed at its loopback server."""
    lines = [
        'contact_email = "bench@example.org"',
        f'[database]\npath = "{db}"',
        f'[outbox]\ndir = "{outbox}"',
    ]
    paths = {"europepmc": "rest/", "clinicaltrials": "api/v2/", "isrctn": "api/", "ctis": "ctis-public-api/"}
    for name in shipped["sources"]:
        lines.append(f'[sources.{name}]\nbase_url = "{urls[name]}{paths.get(name, "")}"')
        if name == "openalex":
            lines.append("api_key_env = 'LITMON_BENCH_OPENALEX_KEY'")
    text = "\n".join(lines) + "\n"
    # [[feeds]] and [[pages]] are arrays: the user's list replaces the shipped one, so restate each entry
    for kind in ("feeds", "pages"):
        for entry in shipped.get(kind, []):
            entry = dict(entry, url=urls[f"{kind}:{entry['name']}"] + "listing")
            text += f"\n[[{kind}]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in entry.items())
    return text


def build_database(path: Path, works: int) -> float:
    from bench.query_scale import build
    from crawler import ingest

    started = time.perf_counter()
    db = ingest.open_db(path)
    build(db, works)
    db.close()
    return time.perf_counter() - started


def run_litmon(config_path: Path, now: str, work: Path) -> dict:
    out = work / "child.json"
    env = dict(os.environ, LITMON_NOW=now, LITMON_BENCH_OPENALEX_KEY="bench-key", PYTHONPATH=str(ROOT))
    env.pop("NCBI_API_KEY", None)
    command = [sys.executable, "-c", CHILD, str(out), "--config", str(config_path), "run"]
    finished = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    if not out.exists():
        raise SystemExit(f"litmon run did not finish:\n{finished.stderr[-3000:]}")
    report = json.loads(out.read_text())
    report["log"] = finished.stderr
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--works", type=int, default=20000, help="works in the database before the week (default 20000)")
    parser.add_argument("--verbose", action="store_true", help="print the weekly run's log")
    args = parser.parse_args(argv)

    from tests.helpers import upstream

    shipped = shipped_config()
    answers: dict[str, object] = {name: upstream.APIS[name] for name in shipped["sources"]}
    for entry in shipped.get("feeds", []):
        answers[f"feeds:{entry['name']}"] = upstream.feed(entry["name"])
    for entry in shipped.get("pages", []):
        answers[f"pages:{entry['name']}"] = upstream.page(entry["name"])
    urls, logs, _servers = serve(answers)

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        db = work / "litmon.db"
        config_path = work / "litmon.toml"
        config_path.write_text(user_config(shipped, urls, db, work / "outbox"), encoding="utf-8")
        if args.works:
            seconds = build_database(db, args.works)
            print(f"database: {args.works} works built in {seconds:.0f}s, {db.stat().st_size / 1e6:.0f} MB")
        first = run_litmon(config_path, "2026-11-16T06:00:00Z", work)
        print(f"first run (sets the watermarks): exit {first['exit']}, {first['wall']:.1f}s")
        if first["exit"] not in (0, 1):
            raise SystemExit(first["log"][-3000:])
        for log in logs.values():
            log.clear()
        upstream.WEEK[0] = 2  # the week after: new articles, a trial's new status, revised records
        week = run_litmon(config_path, "2026-11-23T06:00:00Z", work)
        if args.verbose:
            print(week["log"])

    floor = 0.0
    for line in week["log"].splitlines():
        if "] ok:" in line or "] failed" in line or "digest" in line:
            print("  " + line.split(" ", 2)[-1])
    print(
        f"\nweekly run: exit {week['exit']}, wall {week['wall']:.1f}s, CPU {week['cpu']:.1f}s, peak RSS {week['rss_mb']:.0f} MB"
    )
    print(f"  {'host':<42} {'requests':>8} {'spacing':>8} {'floor':>7}")
    for name, log in logs.items():
        host = urls[name].split("//")[1].rstrip("/")
        spacing = week["spacing"].get(host, 0.0)
        host_floor = max(len(log) - 1, 0) * spacing
        floor += host_floor
        print(f"  {name:<42} {len(log):>8} {spacing:>7.2f}s {host_floor:>6.1f}s")
    paused = week["paused"]
    print(f"  requests {sum(len(log) for log in logs.values())}; rate-limit floor {floor:.1f}s")
    print(f"  spent in rate-limit pauses {paused['rate_limit']:.1f}s, in backoff {paused['backoff']:.1f}s")
    rest = week["wall"] - paused["rate_limit"] - paused["backoff"]
    print(f"  the rest (CPU, loopback network, start-up): {rest:.1f}s = {rest / week['wall']:.0%} of the run")
    return 0 if week["exit"] in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
