"""Peak memory of one large JSON answer on the real source path: litmon's HTTP client fetches it and
the Crossref source turns it into records (#16: a 95 MB answer under the 100 MB cap must peak under
2x its size).

A loopback HTTP server serves a Crossref works list of about ``--mb`` MB (abstracts, authors, dates:
the bulk of a real answer is text); a fresh Python process runs ``crossref.fetch_records`` against it
(the body is spooled to a temporary file and read item by item, each item normalised to a Record as
it arrives) and reports the growth of its peak resident set (VmHWM) over its baseline after imports,
against the body size. The batches are taken as the pipeline takes them: each one is dropped (saved,
in the pipeline) before the next is made. ``--decode`` measures the old path for comparison: the
whole body in memory, decoded at once with json.loads, then the records made from the tree.
``--tracemalloc`` adds the peak of Python allocations (several times slower). Figures are recorded
in docs/reliability.md.

    python bench/json_memory.py [--mb 95] [--decode] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

CHILD = r"""
import datetime as dt, gc, sys, time, tracemalloc
from types import SimpleNamespace
from crawler.http import HttpClient
from crawler.sources import crossref
from crawler.sources.base import CrawlContext
import json


def high_water_mark():
    # this process's own peak resident set (VmHWM is per address space: unlike ru_maxrss, it does not
    # carry the parent's peak over through fork and exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


url, mode, traced = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
client = HttpClient("bench@example.org", max_response_mb=100, default_min_interval=0, response_timeout=600)
config = SimpleNamespace(contact_email="bench@example.org", topic=SimpleNamespace(match_terms=("ketamine",)))
day = dt.date(2026, 11, 20)
ctx = CrawlContext(
    name="crossref", settings={"base_url": url, "query": "ketamine", "page_size": 1000, "min_interval": 0},
    config=config, http=client, since=day, until=day, first_run=True,
)
gc.collect()
base = high_water_mark()
if traced:
    tracemalloc.start()
started, cpu = time.perf_counter(), time.process_time()
records = largest = 0
if mode == "source":
    for batch in crossref.fetch_records(ctx):  # as the pipeline takes them: each batch saved, then dropped
        records, largest = records + len(batch), max(largest, len(batch))
        del batch
else:
    response = client.get(url + "works", source="crossref")
    data = json.loads(response.content)
    batch = [r for r in (crossref.parse_item(i) for i in data["message"]["items"]) if r is not None]
    records = largest = len(batch)
    del batch, data, response
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
peak = tracemalloc.get_traced_memory()[1] if traced else 0
print(records, largest, peak, high_water_mark() - base, seconds, cpu, base)
"""


def make_body(target_mb: float) -> bytes:
    rng = random.Random(16)
    words = "ketamine esketamine depression randomized trial patients infusion placebo response remission".split()
    items, size = [], 0
    n = 0
    while size < target_mb * 1024 * 1024:
        n += 1
        item = {
            "DOI": f"10.1000/bench.{n}",
            "title": [" ".join(rng.choice(words) for _ in range(14))],
            "abstract": "<jats:p>" + " ".join(rng.choice(words) for _ in range(260)) + "</jats:p>",
            "author": [{"given": f"Given{i}", "family": f"Family{n % 97}{i}", "sequence": "additional"} for i in range(6)],
            "container-title": ["Journal of Affective Disorders"],
            "issued": {"date-parts": [[2026, 1 + n % 12, 1 + n % 28]]},
            "created": {"date-time": "2026-11-20T10:00:00Z", "timestamp": 1795000000000},
            "type": "journal-article",
            "subject": ["Psychiatry and Mental health"],
        }
        text = json.dumps(item)
        size += len(text) + 1
        items.append(text)
    return (
        f'{{"status":"ok","message-type":"work-list","message":{{"total-results":{n},"items":[' + ",".join(items) + "]}}"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=95.0, help="size of the JSON answer in MB (default 95)")
    parser.add_argument("--decode", action="store_true", help="the old path: whole body in memory, json.loads, then records")
    parser.add_argument("--tracemalloc", action="store_true", help="also the peak of Python allocations (several times slower)")
    args = parser.parse_args()
    body = make_body(args.mb)
    size = len(body)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        handle.write(body)
        path = Path(handle.name)
    del body

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with path.open("rb") as data:
                while chunk := data.read(1 << 20):
                    self.wfile.write(chunk)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = Path(__file__).resolve().parent.parent
    url = f"http://127.0.0.1:{server.server_port}/"
    command = [sys.executable, "-c", CHILD, url, "decode" if args.decode else "source", "1" if args.tracemalloc else "0"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, cwd=root, check=True).stdout.split()
    finally:
        server.shutdown()
        path.unlink()
    records, largest, peak, rss, base = (int(v) for v in (out[0], out[1], out[2], out[3], out[6]))
    seconds, cpu = float(out[4]), float(out[5])
    mb = 1024 * 1024
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"path: {'whole body + json.loads (old path)' if args.decode else 'crossref.fetch_records, streamed (real source path)'}"
    )
    traced = ", under tracemalloc" if args.tracemalloc else ""
    print(f"body: {size / mb:.1f} MB -> {records} records (largest batch {largest}) in {seconds:.1f}s ({cpu:.1f}s CPU{traced})")
    print(
        f"peak resident set growth (VmHWM): {rss / mb:.1f} MB = {rss / size:.2f}x the body (from {base / mb:.0f} MB after imports)"
    )
    if args.tracemalloc:
        print(f"peak Python allocations (tracemalloc): {peak / mb:.1f} MB = {peak / size:.2f}x the body")


if __name__ == "__main__":
    main()
