"""Citations a reader can use: uniform authors, journal abbreviation, volume/issue/pages, free full text, RIS.

Pure helpers over stored rows (``records`` rows as dicts, best source first), used by the digest:

* :func:`citation_of` — authors as "Osei H, Chen W, Castillo R et al." (from the structured authors of
  :mod:`crawler.records`, whatever order the source wrote names in), the journal's ISO/NLM abbreviation,
  and "2024;81(7):1298-1309";
* :func:`free_full_text` — a PubMed Central copy, or an open-access location Europe PMC reported;
* :func:`tag_label` — the human label of a tag ("Intranasal esketamine"), from ``[topic.tags.*] label``.

A digest's RIS attachment is written by :mod:`crawler.export` (the same records as ``litmon export``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crawler import identifiers as ids
from crawler.records import Author, format_authors, parse_authors

if TYPE_CHECKING:
    from crawler.config import Topic

#: Labels of litmon's own evidence-type tags.
EVIDENCE_LABELS = {
    "rct": "RCT",
    "clinical_trial": "Clinical trial",
    "observational": "Observational",
    "case_report": "Case report",
    "meta_analysis": "Meta-analysis",
    "systematic_review": "Systematic review",
    "review": "Review",
    "protocol": "Protocol",
    "trial_registration": "Trial registration",
    "preprint": "Preprint",
    "preclinical": "Preclinical",
    "commentary": "Commentary",
    "guideline": "Guideline",
    "news": "News",
}
#: RIS reference types by litmon record type.
RIS_TYPES = {
    "article": "JOUR",
    "preprint": "JOUR",
    "notice": "JOUR",
    "trial_registration": "DBASE",
    "news": "NEWS",
    "other": "GEN",
}


@dataclass
class Citation:
    authors: str = ""  # "Osei H, Chen W, Castillo R et al."
    people: list[Author] = field(default_factory=list)  # every author, for RIS
    journal: str | None = None  # the abbreviation when known
    journal_full: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    year: str | None = None

    @property
    def details(self) -> str:
        """ "2024;81(7):1298-1309" (what is known of it)."""
        text = self.year or ""
        if self.volume:
            text += f";{self.volume}" if text else self.volume
            if self.issue:
                text += f"({self.issue})"
        if self.pages:
            text += f":{self.pages}"
        return text


def _loads(value, default):
    if value in (None, ""):
        return default
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def citation_of(records: list[dict], date: str | None = None) -> Citation:
    """The citation of a work from its records (best source first)."""
    people: list[Author] = []
    for record in records:
        structured = _loads(record.get("structured_authors"), [])
        if structured:
            people = [Author.from_dict(a) for a in structured if isinstance(a, dict)]
            break
    if not people:  # records stored before structured authors: the names through the one parser
        names: list[str] = next((n for n in (_loads(r.get("authors"), []) for r in records) if n), [])
        people = parse_authors(names)

    def first(column: str) -> str | None:
        for record in records:
            value = record.get(column)
            if value in (None, ""):
                value = _loads(record.get("data"), {}).get("extra", {}).get(column) if record.get("data") else None
            if value not in (None, ""):
                return str(value).strip()
        return None

    full = next((r.get("journal") for r in records if r.get("journal")), None)
    return Citation(
        authors=format_authors(people),
        people=people,
        journal=first("journal_abbreviation") or full,
        journal_full=full,
        volume=first("volume"),
        issue=first("issue"),
        pages=first("pages"),
        year=(date or "")[:4] or None,
    )


def free_full_text(records: list[dict], identifiers: list[tuple[str, str]]) -> str | None:
    """A free full-text URL: PubMed Central first, then an open-access location reported by Europe PMC."""
    pmcid = next((value for scheme, value in identifiers if scheme == "pmcid"), None)
    if pmcid:
        return ids.url_for("pmcid", pmcid)
    for record in records:
        extra = _loads(record.get("data"), {}).get("extra", {}) if record.get("data") else {}
        url = extra.get("free_full_text_url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return url
    return None


def tag_label(tag: str, topic: Topic | None = None) -> str:
    """The human label of a tag: ``[topic.tags.<tag>] label``, litmon's evidence labels, else the key in words."""
    rule = topic.tags.get(tag) if topic is not None else None
    if rule is not None and rule.label:
        return rule.label
    if tag in EVIDENCE_LABELS:
        return EVIDENCE_LABELS[tag]
    words = tag.replace("_", " ")
    return words[:1].upper() + words[1:]
