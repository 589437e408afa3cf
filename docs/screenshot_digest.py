#!/usr/bin/env python3
"""Render a sample digest in headless Chromium and save it as docs/digest.png (shown in the README).

The sample is built the way litmon builds a real one: the test fixtures (real wire formats of
PubMed, ClinicalTrials.gov, medRxiv and a journal feed) go through the source parsers into a
fresh SQLite file, then the digest is rendered. Needs Debian's chromium package
(`apt-get install chromium`).

    python docs/screenshot_digest.py [--out docs/digest.png] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler import classify, clock, ingest, store  # noqa: E402
from crawler.config import parse_config, shipped_config_text  # noqa: E402
from crawler.digest import build_digest  # noqa: E402
from crawler.sources import biorxiv, clinicaltrials, feeds, pubmed  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def load_sample(db, now: dt.datetime) -> None:
    stamp = clock.stamp(now - dt.timedelta(hours=2))
    batches = [
        pubmed.parse_efetch((FIXTURES / "pubmed" / name).read_bytes())
        for name in ("efetch_batch1.xml", "efetch_batch2.xml", "efetch_new.xml")
    ]
    batches.append(
        clinicaltrials.parse_file((FIXTURES / "clinicaltrials" / "studies_page1.json").read_bytes(), "studies_page1.json")
    )
    batches.append(
        biorxiv.parse_file((FIXTURES / "biorxiv" / "details_medrxiv_page1.json").read_bytes(), "details_medrxiv_page1.json")
    )
    batches.append(feeds.parse_file((FIXTURES / "feeds" / "jama_psychiatry_rss2.xml").read_bytes(), "jama_psychiatry_rss2.xml"))
    for records in batches:
        # make the sample look recent, as a weekly digest would
        for record in records:
            record.entered_on = (now - dt.timedelta(days=2)).date().isoformat()
        ingest.save_batch(db, records, now=stamp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "digest.png"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=900)
    parser.add_argument("--height", type=int, default=2200)
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        print(f"chromium not found at {args.chromium}: apt-get install chromium", file=sys.stderr)
        return 2
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(shipped_config_text(), "shipped")
        db = store.open_db(Path(tmp) / "sample.db")
        load_sample(db, now)
        classify.classify_unclassified(db, config)
        digest = build_digest(db, config, now)
        html = Path(tmp) / "digest.html"
        html.write_text(digest.html, encoding="utf-8")
        profile = Path(tmp) / "profile"
        command = [
            args.chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={args.width},{args.height}",
            f"--screenshot={args.out}",
            html.as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0 or not Path(args.out).exists():
            print(result.stderr[-2000:], file=sys.stderr)
            return 1
    print(f"{args.out}: {len(digest.items)} items rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
