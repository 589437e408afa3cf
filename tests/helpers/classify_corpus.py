"""The labelled classification set: wire-format fixtures parsed with litmon's own source parsers.

``tests/fixtures/classify/items/*.toml`` hold each work's text and its expected labels;
``tests/fixtures/classify/wire/`` the same works in each source's wire format (made by
``tests/fixtures/classify/build.py``). :func:`load_corpus` parses the wire files with the real
parsers and pairs every parsed record with its labels. Used by the tests and by
``bench/classify_eval.py``.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from crawler.config import shipped_config_text
from crawler.records import Record
from crawler.sources import biorxiv, clinicaltrials, europepmc, pubmed

HERE = Path(__file__).resolve().parent.parent / "fixtures" / "classify"
WIRE = HERE / "wire"

#: The noise classes of the labels (what a broad query also catches).
NOISE_CLASSES = ("anaesthesia", "pain_only", "healthy_volunteers", "recreational", "ssri_only", "passing_mention", "other")


def _load_build():
    spec = importlib.util.spec_from_file_location("classify_fixture_build", HERE / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


@dataclass
class LabelledWork:
    key: str
    item: dict
    records: list[Record]

    @property
    def relevant(self) -> bool:
        return bool(self.item["relevant"])

    @property
    def tags(self) -> set[str]:
        return set(self.item.get("tags", []))

    @property
    def noise(self) -> str | None:
        return self.item.get("noise")

    @property
    def split(self) -> str:
        return self.item["split"]


def parse_feed_file(body: bytes, name: str, kind: str | None) -> list[Record]:
    """The feeds source's parser when present; until then the same fields read with feedparser."""
    try:
        from crawler.sources import feeds  # noqa: PLC0415 - optional until the feeds source lands
    except ImportError:
        feeds = None
    if feeds is not None:
        return feeds.parse_feed(body, f"feed:{name}", kind=kind)
    import io

    import feedparser

    parsed = feedparser.parse(io.BytesIO(body))
    records = []
    for entry in parsed.entries:
        date = entry.get("published_parsed")
        day = f"{date.tm_year:04d}-{date.tm_mon:02d}-{date.tm_mday:02d}" if date else None
        summary = re.sub(r"<[^>]+>", " ", entry.get("summary", "") or "").strip() or None
        records.append(
            Record(
                source=f"feed:{name}",
                source_id=entry.get("id") or entry.get("link"),
                title=entry.get("title", ""),
                record_type="news" if kind == "news" else "article",
                url=entry.get("link"),
                abstract=summary,
                published_on=day,
                entered_on=day,
                keywords=[t.get("term") for t in entry.get("tags", []) if t.get("term")],
            )
        )
    return records


def parse_wire() -> dict[tuple[str, str], Record]:
    """(source kind, wire id) -> the parsed record."""
    found: dict[tuple[str, str], Record] = {}
    for record in pubmed.parse_efetch((WIRE / "pubmed_efetch.xml").read_bytes()):
        found[("pubmed", record.source_id)] = record
    for record in clinicaltrials.parse_studies((WIRE / "clinicaltrials_studies.json").read_bytes()).records:
        found[("clinicaltrials", record.source_id)] = record
    for server in ("medrxiv", "biorxiv"):
        for record in biorxiv.parse_details((WIRE / f"{server}_details.json").read_bytes(), server):
            found[(server, record.first_id("doi"))] = record
    for record in europepmc.parse_search((WIRE / "europepmc_core.json").read_bytes()):
        found[("europepmc", record.source_id.split("/", 1)[1])] = record
    kinds = {i["feed"]: i.get("kind") for i in build.load_items() if i["source"] == "feed"}
    for path in sorted(WIRE.glob("feed_*.xml")):
        name = path.stem[len("feed_") :]
        for record in parse_feed_file(path.read_bytes(), name, kinds.get(name)):
            found[("feed", record.url)] = record
    return found


def load_corpus(split: str | None = None) -> list[LabelledWork]:
    """Every labelled work (or those of one split: ``dev`` or ``holdout``) with its parsed record."""
    parsed = parse_wire()
    works = []
    for item in build.load_items():
        if split and item["split"] != split:
            continue
        wire_id = item["wire_id"].lower() if item["source"] in ("medrxiv", "biorxiv") else item["wire_id"]
        record = parsed.get((item["source"], wire_id))
        if record is None:
            raise LookupError(
                f"{item['key']}: no parsed record for {item['source']} {item['wire_id']} — run tests/fixtures/classify/build.py"
            )
        works.append(LabelledWork(item["key"], item, [record]))
    return works


# --------------------------------------------------------------------------- helpers for database tests


def shipped_vocabulary() -> str:
    """The [topic.*] tables of the shipped configuration, to append to a test config."""
    text = shipped_config_text()
    return text[text.index("[topic.relevance]") : text.index("[sources.pubmed]")]


def article(source_id: str, title: str, abstract: str, entered_on: str = "2026-11-20", **extra) -> Record:
    """A PubMed article record with its PMID."""
    record = Record(
        source="pubmed",
        source_id=source_id,
        record_type="article",
        title=title,
        abstract=abstract,
        entered_on=entered_on,
        published_on=entered_on,
        **extra,
    )
    record.add_id("pmid", source_id)
    return record
