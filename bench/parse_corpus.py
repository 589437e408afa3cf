#!/usr/bin/env python3
"""Parse every recorded API response in ../shared/corpus with litmon's parsers and print what came out.

Outside the test suite on purpose: ../shared is not part of the project. Usage:

    python bench/parse_corpus.py [--corpus ../shared/corpus] [--source pubmed] [--details]

For each source module that declares ``CORPUS_DIR``, every file of that folder goes through the
module's ``parse_file``. A file either parses (records with ids / titles / dates are counted) or is
rejected with a SourceError (an error page, an unusable answer: its message is printed). Anything
else is a parser bug: it is printed with its traceback and the script exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.errors import SourceError  # noqa: E402
from crawler.sources import MODULES  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", default=str(ROOT.parent / "shared" / "corpus"), help="corpus folder (default: ../shared/corpus)"
    )
    parser.add_argument("--source", action="append", help="only this source module key (repeatable)")
    parser.add_argument("--details", action="store_true", help="print the first records of every file")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"corpus folder not found: {corpus}", file=sys.stderr)
        return 2
    bugs = 0
    for key, module_name in MODULES.items():
        if args.source and key not in args.source:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            print(f"== {key}: module not available ({exc})")
            continue
        folder = getattr(module, "CORPUS_DIR", None)
        if not folder:
            print(f"== {key}: no corpus folder")
            continue
        files = sorted(p for p in (corpus / folder).iterdir() if p.is_file())
        totals = {"files": 0, "parsed": 0, "rejected": 0, "records": 0, "ids": 0, "titles": 0, "dates": 0}
        print(f"== {key} ({corpus / folder}): {len(files)} files")
        started = time.perf_counter()
        for path in files:
            totals["files"] += 1
            try:
                records = module.parse_file(path.read_bytes(), path.name)
            except SourceError as exc:
                totals["rejected"] += 1
                print(f"  rejected  {path.name}: {exc}")
                continue
            except Exception:  # a parser bug
                bugs += 1
                print(f"  BUG       {path.name}:\n{traceback.format_exc()}")
                continue
            totals["parsed"] += 1
            counts = {
                "records": len(records),
                "ids": sum(1 for r in records if r.identifiers),
                "titles": sum(1 for r in records if r.title and r.title != "(untitled)"),
                "dates": sum(1 for r in records if r.published_on or r.entered_on),
            }
            for k, v in counts.items():
                totals[k] += v
            print(
                f"  parsed    {path.name}: {counts['records']} records, {counts['ids']} with ids, "
                f"{counts['titles']} with titles, {counts['dates']} with dates"
            )
            if args.details:
                for record in records[:3]:
                    print(
                        f"            {record.source_id} {record.record_type} {record.published_on} "
                        f"{record.identifiers[:3]} {len(record.links)} links | {record.title[:70]}"
                    )
        seconds = time.perf_counter() - started
        print(
            f"  total: {totals['files']} files, {totals['parsed']} parsed, {totals['rejected']} rejected with a clear error; "
            f"{totals['records']} records, {totals['ids']} with ids, {totals['titles']} with titles, "
            f"{totals['dates']} with dates ({seconds:.2f}s)"
        )
    if bugs:
        print(f"{bugs} file(s) raised something other than SourceError", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
