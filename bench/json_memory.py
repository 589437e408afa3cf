"""Peak memory of one large JSON answer: fetched by litmon's HTTP client and decoded by the sources'
JSON helper (#16: a 95 MB answer under the 100 MB cap must peak under 2x its size).

A loopback HTTP server serves a Crossref-like works list of about ``--mb`` MB (abstracts, authors,
dates: the bulk of a real answer is text); a fresh Python process fetches and decodes it, and reports
the peak of Python allocations (tracemalloc) and the growth of its resident set (ru_maxrss) over the
baseline, both against the body size. ``--stdlib`` decodes with json.loads directly, for comparison.
Figures are recorded in docs/reliability.md.

    python bench/json_memory.py [--mb 95] [--stdlib]
"""

from __future__ import annotations

import argparse
import http.server
import json
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

CHILD = r"""
import resource, sys, time, tracemalloc
from crawler.http import HttpClient
from crawler.sources.parsing import decode_json
import json
url, stdlib = sys.argv[1], sys.argv[2] == "1"
client = HttpClient("bench@example.org", max_response_mb=100, default_min_interval=0, response_timeout=600)
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
started = time.perf_counter()
response = client.get(url, source="bench")
size = len(response.content)
data = json.loads(response.content) if stdlib else decode_json(response.content, "bench")
items = len(data["message"]["items"])
seconds = time.perf_counter() - started
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
print(size, items, peak, rss * 1024, seconds)
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
    parser.add_argument("--stdlib", action="store_true", help="decode with json.loads, for comparison")
    args = parser.parse_args()
    body = make_body(args.mb)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        handle.write(body)
        path = Path(handle.name)
    del body

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, f"http://127.0.0.1:{server.server_port}/works", "1" if args.stdlib else "0"],
            capture_output=True,
            text=True,
            cwd=root,
            check=True,
        ).stdout.split()
    finally:
        server.shutdown()
        path.unlink()
    size, items, peak, rss, seconds = int(out[0]), int(out[1]), int(out[2]), int(out[3]), float(out[4])
    mb = 1024 * 1024
    print(f"decoder: {'json.loads (stdlib)' if args.stdlib else 'litmon decode_json'}")
    print(f"body: {size / mb:.1f} MB, {items} items, fetched and decoded in {seconds:.1f}s")
    print(f"peak Python allocations (tracemalloc): {peak / mb:.1f} MB = {peak / size:.2f}x the body")
    print(f"resident set growth (ru_maxrss): {rss / mb:.1f} MB = {rss / size:.2f}x the body")


if __name__ == "__main__":
    main()
