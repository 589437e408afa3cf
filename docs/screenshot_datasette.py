#!/usr/bin/env python3
"""Serve a sample database with Datasette and config/datasette.yml, and save its works page as
docs/datasette.png (shown in the README).

The sample is built as litmon builds a real one: the test fixtures (real wire formats of PubMed,
Europe PMC, Crossref, ClinicalTrials.gov, medRxiv and a journal feed) go through the source parsers
and ingest (save, dedup, classification) into a fresh litmon.db. Needs Datasette (`pip install
datasette`) and Debian's chromium package.

    python docs/screenshot_datasette.py [--out docs/datasette.png] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler import classify, clock, ingest  # noqa: E402
from crawler.config import parse_config, shipped_config_text  # noqa: E402
from crawler.sources import biorxiv, clinicaltrials, crossref, europepmc, feeds, pubmed  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE = [
    (pubmed, "pubmed", "efetch_batch1.xml"),
    (pubmed, "pubmed", "efetch_batch2.xml"),
    (pubmed, "pubmed", "efetch_new.xml"),
    (europepmc, "europepmc", "core_page1.json"),
    (crossref, "crossref", "works_created_page1.json"),
    (clinicaltrials, "clinicaltrials", "studies_page1.json"),
    (biorxiv, "biorxiv", "details_medrxiv_page1.json"),
    (feeds, "feeds", "jama_psychiatry_rss2.xml"),
]


def build_sample(path: Path) -> None:
    clock.pin(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2))  # "this week" in the canned query
    config = parse_config(shipped_config_text(), "shipped")
    db = ingest.open_db(path)
    for module, folder, name in SAMPLE:
        records = module.parse_file((FIXTURES / folder / name).read_bytes(), name)
        ingest.save_batch(db, records, config=config)
    classify.reclassify(db, config)
    db.close()
    clock.pin(None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "datasette.png"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium")
    parser.add_argument("--page", default="/litmon/work_summaries?_sort_desc=rank_score")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    datasette = shutil.which("datasette")
    if not datasette or not Path(args.chromium).exists():
        print("needs `datasette` (pip install datasette) and chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "litmon.db"
        build_sample(path)
        port = free_port()
        server = subprocess.Popen(
            [datasette, str(path), "-m", str(ROOT / "config" / "datasette.yml"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(url + "/-/versions.json", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.2)
            subprocess.run(
                [
                    args.chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--hide-scrollbars",
                    f"--window-size={args.width},{args.height}",
                    f"--screenshot={Path(args.out).resolve()}",
                    url + args.page,
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
