#!/usr/bin/env python3
"""PubMed efetch parsing: litmon's parser vs Biopython's Entrez.read vs a bare lxml iterparse, on the same file.

    python bench/parse_pubmed.py                 # 2000 and 10000 records
    python bench/parse_pubmed.py 5000 20000

The file is synthetic efetch XML of one topic (``bench/pubmed_synth.py``: structured abstracts,
authors with affiliations, MeSH, half the records with a reference list, as efetch returns them).
Each parser runs in its own process (so its peak RSS is its own) over the whole file:

- ``litmon``: ``crawler.sources.pubmed.iter_efetch`` reading the file as a stream (as the crawl reads
  a spooled efetch body) → normalized ``Record`` objects (every field litmon stores: ids, title,
  structured abstract, authors, journal, dates, types, MeSH, keywords, trial numbers, links), each
  counted and dropped (the crawl saves them per efetch page); ``litmon/500``: ``parse_efetch`` on
  500-record bodies, as the crawl fetches them (each page's records kept until the next page);
- ``biopython``: ``Bio.Entrez.read`` → nested dicts of every element (Biopython is installed for this
  bench only: ``pip install biopython``; skipped when missing);
- ``lxml``: ``lxml.etree.iterparse`` pulling four fields (PMID, title, abstract, DOI) per article and
  clearing each one (the floor for any parser of this format in Python).

Printed: records/s, seconds, CPU seconds (the ratios use CPU time, which the load of a shared
machine moves least) and the parser's peak RSS growth above the interpreter's (imports done;
VmHWM, the child's own peak) per size, then each parser's memory growth from the smaller file to the
larger: a streaming parser's stays flat (memory that grows with the file size is memory a streaming
parser would not need).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARSERS = ("litmon", "litmon/500", "biopython", "lxml")


def rss_mb() -> float:
    """This process's peak resident set in MB (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_parser(name: str, path: str) -> dict:
    body = Path(path).read_bytes() if name != "litmon" else b""  # the streaming parser reads the file itself
    cpu = time.process_time()
    if name.startswith("litmon"):
        from crawler.sources import pubmed

        if name == "litmon/500":
            # cut the file into 500-article bodies beforehand (the crawl gets them from efetch)
            head, _, rest = body.partition(b"<PubmedArticle>")
            articles = [b"<PubmedArticle>" + a for a in rest.split(b"<PubmedArticle>")]
            articles[-1] = articles[-1].replace(b"</PubmedArticleSet>", b"")
            bodies = [head + b"".join(articles[i : i + 500]) + b"</PubmedArticleSet>" for i in range(0, len(articles), 500)]
            del articles, body
            base = rss_mb()
            started, cpu = time.perf_counter(), time.process_time()
            count = 0
            for chunk in bodies:
                count += len(pubmed.parse_efetch(chunk))
        else:
            base = rss_mb()
            started, cpu = time.perf_counter(), time.process_time()
            count = 0
            with open(path, "rb") as stream:
                for _record in pubmed.iter_efetch(stream):
                    count += 1
    elif name == "biopython":
        from Bio import Entrez

        base = rss_mb()
        started, cpu = time.perf_counter(), time.process_time()
        result = Entrez.read(io.BytesIO(body), validate=False)
        count = len(result["PubmedArticle"]) + len(result["PubmedBookArticle"])
    else:
        from lxml import etree

        base = rss_mb()
        started, cpu = time.perf_counter(), time.process_time()
        out = []
        for _, el in etree.iterparse(io.BytesIO(body), tag="PubmedArticle", resolve_entities=False, no_network=True):
            out.append(
                (
                    el.findtext("MedlineCitation/PMID"),
                    "".join(el.find("MedlineCitation/Article/ArticleTitle").itertext()),
                    " ".join("".join(t.itertext()) for t in el.iterfind("MedlineCitation/Article/Abstract/AbstractText")),
                    next((i.text for i in el.iterfind("PubmedData/ArticleIdList/ArticleId") if i.get("IdType") == "doi"), None),
                )
            )
            el.clear(keep_tail=True)
            while el.getprevious() is not None:
                del el.getparent()[0]
        count = len(out)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"count": count, "seconds": seconds, "cpu": cpu, "rss_mb": rss_mb() - base}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[2000, 10000], help="records per file (default 2000 10000)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_parser(*args.child)))
        return 0
    from bench.pubmed_synth import efetch_body

    try:
        import Bio  # noqa: F401

        parsers = PARSERS
    except ImportError:
        print("biopython is not installed (pip install biopython): its column is skipped")
        parsers = tuple(p for p in PARSERS if p != "biopython")
    print(
        f"machine: {os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; python {sys.version.split()[0]}"
    )
    growth: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="litmon-parse-") as folder:
        for n in args.sizes:
            path = Path(folder) / f"efetch-{n}.xml"
            path.write_bytes(efetch_body(0, n, n))
            print(f"\n{n} records, {path.stat().st_size / 2**20:.1f} MB of efetch XML")
            results = {}
            for name in parsers:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", name, str(path)], capture_output=True, text=True, check=True
                ).stdout
                results[name] = r = json.loads(out.strip().splitlines()[-1])
                print(
                    f"  {name:<11} {r['count'] / r['seconds']:8.0f} records/s  {r['seconds']:6.2f}s"
                    f"  (CPU {r['cpu']:6.2f}s = {r['count'] / r['cpu']:5.0f} records/s)  peak RSS +{r['rss_mb']:.0f} MB"
                )

            # records per CPU second: what the load of a shared machine moves least
            speed = {name: r["count"] / r["cpu"] for name, r in results.items()}
            ratios = []
            if "biopython" in results:
                ratios.append(f"{speed['litmon'] / speed['biopython']:.1f}x Biopython")
            ratios.append(f"{speed['lxml'] / speed['litmon']:.1f}x slower than bare lxml")
            print("  litmon (CPU time): " + ", ".join(ratios))
            growth[n] = {name: r["rss_mb"] for name, r in results.items()}
    if len(growth) >= 2:
        small, large = min(growth), max(growth)
        print(f"\nmemory growth from {small} to {large} records ({large / small:.0f}x the file):")
        for name in parsers:
            print(f"  {name:<11} +{growth[small][name]:.0f} MB -> +{growth[large][name]:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
