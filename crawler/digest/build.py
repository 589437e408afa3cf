"""Build: digest items from the selected works, sections, highlights and the subject. No database, no I/O."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from crawler import citations
from crawler import identifiers as ids
from crawler.abstracts import make_snippet
from crawler.config import DIGEST_SECTIONS
from crawler.digest.selection import Selection, WorkData
from crawler.records import source_rank

SECTION_TITLES = {
    "highlights": "Highlights",
    "notices": "Retractions and corrections of items you were sent",
    "clinical": "New clinical studies",
    "reviews": "Systematic reviews and meta-analyses",
    "trials": "Clinical trials: new registrations and changes",
    "preprints": "Preprints",
    "preclinical": "Preclinical",
    "news": "Regulatory and news",
    "uncertain": "Uncertain relevance (check before relying on these)",
    "health": "Source health",
}
#: evidence tag -> label, in the order "New clinical studies" lists them
CLINICAL_ORDER = {
    "rct": "Randomised controlled trials",
    "clinical_trial": "Other clinical trials",
    "observational": "Observational studies",
    "case_report": "Case reports",
    "guideline": "Guidelines",
    "review": "Narrative reviews",
    "protocol": "Protocols",
    "commentary": "Commentary",
    "": "Other",
}
ID_LABELS = {
    "doi": "DOI",
    "pmid": "PubMed",
    "pmcid": "PMC",
    "nct": "ClinicalTrials.gov",
    "isrctn": "ISRCTN",
    "eudract": "EudraCT",
    "euct": "EU CTIS",
    "ppr": "Europe PMC",
    "openalex": "OpenAlex",
}
#: (link type, whether this work is the link's source) -> label of the other work in a digest.
#: A preprint and its journal version are two works (each listed when it appears): the link says which is which.
RELATED_LABELS = {
    ("retraction_of", False): "Retracted by",
    ("expression_of_concern_of", False): "Expression of concern",
    ("correction_of", False): "Corrected by",
    ("retraction_of", True): "Retracts",
    ("expression_of_concern_of", True): "Expression of concern about",
    ("correction_of", True): "Corrects",
    ("preprint_of", True): "Published version",
    ("preprint_of", False): "Preprint",
    ("registered_as", True): "Trial registration",
    ("registered_as", False): "Publication",
    ("republication_of", True): "Republishes",
    ("republication_of", False): "Republished as",
    ("comment_on", True): "Comments on",
    ("comment_on", False): "Commented by",
    ("update_of", True): "Updates",
    ("update_of", False): "Updated by",
}
RELATED_MAX = 6
_URL_SCHEMES = ("doi", "pmid", "nct", "isrctn", "pmcid", "ppr", "euct", "eudract", "openalex")


@dataclass
class DigestItem:
    work_id: int
    section: str
    title: str
    url: str | None
    authors: str
    journal: str | None
    date: str | None
    snippet: str | None
    links: list[tuple[str, str]]
    sources: list[str]
    tags: list[str] = field(default_factory=list)
    evidence: str = ""
    rank: float = 0.0
    relevance: str | None = None
    kind: str = "new"  # new | update
    notes: list[str] = field(default_factory=list)  # "status: RECRUITING → COMPLETED", "Now published: …"
    flag: str | None = None  # "concerns an item sent on 2026-11-02"
    detail: dict = field(default_factory=dict)
    related: list[tuple[str, str, str | None]] = field(default_factory=list)  # (label, title, url): linked works
    citation: citations.Citation | None = None
    details: str = ""  # "2024;81(7):1298-1309" when volume or pages are known
    free_full_text: str | None = None
    tag_labels: list[str] = field(default_factory=list)  # human labels of ``tags`` (set when rendered)
    record_type: str = "article"
    links_to: list[tuple[str, int, bool]] = field(default_factory=list)  # (link type, other work, outgoing)
    folded: list[int] = field(default_factory=list)  # other versions of the study said on this item


@dataclass
class Digest:
    recipient: str
    period_start: str
    period_end: str
    subject: str
    sections: list[tuple[str, str, list]]  # (key, title, items); health holds SourceHealth rows
    first: bool = False
    text: str = ""
    html: str = ""
    shown: dict[str, int] = field(default_factory=dict)  # section -> items shown in the body (the rest: attachment)
    #: sources that failed in the period and still fail: said at the top and in the subject (an outage is
    #: never a quiet week), whatever sections the recipient chose
    failed_sources: list = field(default_factory=list)
    operator: bool = False  # the recipient also gets the full diagnostics (URLs, what to check)
    #: per source, older works stored in the period and not listed as new (a backfill): said, never silent
    caught_up: list = field(default_factory=list)

    @property
    def items(self) -> list[DigestItem]:
        return [item for key, _, items in self.sections if key != "health" for item in items]

    def count(self, kind: str) -> int:
        return sum(1 for item in self.items if item.kind == kind)


def build(selection: Selection, config, recipient: dict) -> Digest:
    """The digest of one recipient (not rendered yet): new works and updates, in sections."""
    new_items = [build_item(data) for data in selection.new]
    update_items = trial_change_items(selection) + published_preprint_items(selection)
    notice_items = notice_items_of(selection)
    # a notice whose work is listed (flagged) is said once, on that work
    new_items = [item for item in new_items if item.work_id not in selection.stated_by]
    # a notice about a work this recipient never got (or that is not stored) is not news: it stays queryable
    new_items = [item for item in new_items if item.record_type != "notice"]
    listed = {item.work_id for item in new_items}
    # an update about a work that is new in this digest is said on the new item, not twice
    for item in update_items + notice_items:
        target = next((n for n in new_items if n.work_id == item.work_id), None)
        if target is not None:
            if item.section == "notices":  # a new work already retracted or corrected: said on it, in its section
                target.flag = target.flag or item.flag or "; ".join(item.notes)
            else:
                target.notes.extend(item.notes)
                target.flag = target.flag or item.flag
    # a sent preprint's "Now published" update whose journal version is new here: one item, the journal version
    for item in list(update_items):
        target = next((n for n in new_items if n.work_id == (item.detail or {}).get("published_work_id")), None)
        if target is not None and item.work_id not in listed:
            note = f"Published version of a preprint (posted {item.date or 'date unknown'})"
            if note not in target.notes:
                target.notes.insert(0, note)
            target.folded.append(item.work_id)
            update_items.remove(item)
    updates = [i for i in update_items + notice_items if i.work_id not in listed]
    items = [i for i in new_items + updates if i.relevance != "not_relevant"]
    items = fold_versions(items)
    items = [i for i in items if wanted(recipient, i)]

    grouped: dict[str, list] = {key: [] for key in DIGEST_SECTIONS}
    ranked = sorted(items, key=lambda i: (-i.rank, i.date or "", i.work_id))
    highlight_ids = {
        i.work_id
        for i in ranked
        if i.kind == "new"
        and i.relevance == "relevant"
        and i.section != "notices"
        and i.rank >= config.digest.get("highlight_min_score", 0)
    }
    highlight_ids = set(
        list(dict.fromkeys(i.work_id for i in ranked if i.work_id in highlight_ids))[: config.digest.get("highlights", 3)]
    )
    for item in ranked:
        if item.work_id in highlight_ids and item.kind == "new":
            item.section = "highlights"
        grouped[item.section].append(item)
    grouped["clinical"].sort(
        key=lambda i: (list(CLINICAL_ORDER).index(i.evidence if i.evidence in CLINICAL_ORDER else ""), -i.rank)
    )
    grouped["health"] = selection.health
    wanted_sections = recipient.get("sections") or DIGEST_SECTIONS
    sections = [(key, SECTION_TITLES[key], grouped[key]) for key in DIGEST_SECTIONS if grouped[key] and key in wanted_sections]

    period = selection.period
    digest = Digest(recipient["address"], period.start, period.end, "", sections, first=period.first)
    digest.failed_sources = [h for h in selection.health if h.status == "failed" and h.still_failing]
    digest.operator = bool(recipient.get("operator"))
    digest.caught_up = selection.caught_up
    cap = config.digest.get("section_cap", 15)
    digest.shown = {key: cap for key, _, items in sections if key not in ("highlights", "health") and len(items) > cap}
    new, upd = digest.count("new"), digest.count("update")
    failed = len(digest.failed_sources)
    outage = f" — {failed} source{'s' if failed != 1 else ''} failed" if failed else ""
    digest.subject = (
        f"{config.digest['subject_prefix']} {config.topic.name}: {new} new"
        f"{f', {upd} update(s)' if upd else ''}{outage} ({period.start[:10]} to {period.end[:10]})"
    ).strip()
    return digest


def fold_versions(items: list[DigestItem]) -> list[DigestItem]:
    """One item per study: a preprint whose journal version, or a registration whose results
    publication, is also in this digest is said on that item ("Published version of a preprint (posted
    …)", "Results of NCT…") and not listed again; a "Now published" update is dropped then."""
    by_id: dict[int, DigestItem] = {}
    for item in items:
        by_id.setdefault(item.work_id, item)
    dropped: set[int] = set()
    for item in items:
        for link_type, other, outgoing in item.links_to:
            if not outgoing or other not in by_id or item.work_id in dropped or other in dropped:
                continue
            if link_type == "preprint_of":  # this preprint was published as the other work
                keep, fold = by_id[other], item
                if keep.record_type == "preprint":
                    continue
                note = f"Published version of a preprint (posted {fold.date or 'date unknown'})"
            elif link_type == "registered_as":  # this publication reports the other (a registration)
                keep, fold = item, by_id[other]
                if fold.record_type != "trial_registration" or keep.record_type == "trial_registration":
                    continue
                numbers = [label.split(": ", 1) for label, _ in fold.links if ": " in label]
                order = ["ClinicalTrials.gov", "ISRCTN", "EU CTIS", "EudraCT"]
                numbers.sort(key=lambda n: order.index(n[0]) if n[0] in order else len(order))
                number = numbers[0][1] if numbers else fold.title
                note = f"Results of {number}"
                keep.notes.extend(n for n in fold.notes if n not in keep.notes)  # registry changes stay told
            else:
                continue
            if note not in keep.notes:
                keep.notes.insert(0, note)
            keep.folded.append(fold.work_id)
            keep.flag = keep.flag or fold.flag
            dropped.add(fold.work_id)
    return [i for i in items if i.work_id not in dropped]


def wanted(recipient: dict, item: DigestItem) -> bool:
    if (
        recipient.get("sections")
        and item.section not in recipient["sections"]
        and not ("highlights" in recipient["sections"] and item.kind == "new")
    ):
        return False
    if recipient.get("tags") and not set(recipient["tags"]) & set(item.tags):
        return False
    if recipient.get("min_score") is not None and item.rank < recipient["min_score"]:
        return False
    return True


def trial_change_items(selection: Selection) -> list[DigestItem]:
    result = []
    for change, data in selection.trial_changes:
        item = build_item(data, kind="update")
        item.section = "trials"
        item.notes = change.describe()
        item.detail = {"trial_id": change.trial_id, "captured_at": change.captured_at}
        result.append(item)
    return merge_same_work(result)


def published_preprint_items(selection: Selection) -> list[DigestItem]:
    result = []
    for data, doi, article in selection.published_preprints:
        item = build_item(data, kind="update")
        item.section = "preprints"
        where = f"{article['title']}" if article else f"https://doi.org/{doi}"
        item.notes = [f"Now published: {where} (doi:{doi})"]
        item.detail = {"published_doi": doi, "published_work_id": article["id"] if article else None}
        result.append(item)
    return merge_same_work(result)


def notice_items_of(selection: Selection) -> list[DigestItem]:
    result = []
    for data, kinds, sent_on in selection.notices:
        item = build_item(data, kind="update")
        item.section = "notices"
        item.notes = [f"{kind} issued for this work" for kind in kinds]
        if sent_on:
            item.flag = f"concerns an item sent to you on {sent_on[:10]}"
        item.detail = {"notices": kinds}
        result.append(item)
    return result


def merge_same_work(items: list[DigestItem]) -> list[DigestItem]:
    merged: dict[int, DigestItem] = {}
    for item in items:
        if item.work_id in merged:
            merged[item.work_id].notes.extend(n for n in item.notes if n not in merged[item.work_id].notes)
        else:
            merged[item.work_id] = item
    return list(merged.values())


def build_item(data: WorkData, kind: str = "new") -> DigestItem:
    """One work as a digest item, with its classification (a new item goes to the section its evidence says)."""
    work = data.work
    records = sorted(data.records, key=lambda r: source_rank(r["source"]))
    best = records[0] if records else {"url": None}
    date = work["published_on"] or work["entered_on"]
    citation = citations.citation_of(records, date)
    with_abstract = next((r for r in records if r["abstract"]), None)
    sections = json.loads(with_abstract["data"] or "{}").get("abstract_sections") if with_abstract else None
    links: list[tuple[str, str]] = []
    seen = set()
    for row in data.identifiers:
        key = (row["scheme"], row["value"])
        url = ids.url_for(*key)
        if url and key not in seen:
            seen.add(key)
            links.append((f"{ID_LABELS.get(row['scheme'], row['scheme'])}: {row['value']}", url))
    for record in records:  # preprint servers' own pages
        if record["source"] == "biorxiv" and safe_url(record["url"]) and ("medRxiv/bioRxiv", record["url"]) not in links:
            links.append(("medRxiv/bioRxiv", record["url"]))
            break
    url = (
        next((u for _, u in links if u.startswith("https://doi.org/")), None)
        or safe_url(best["url"])
        or (links[0][1] if links else None)
    )
    journal = citation.journal
    if work["record_type"] == "trial_registration" and not journal:
        journal = ", ".join(
            sorted({"ClinicalTrials.gov" if r["source"] == "clinicaltrials" else r["source"].upper() for r in records})
        )
    item = DigestItem(
        work_id=work["id"],
        section=work["record_type"],
        title=work["title"],
        url=url,
        authors=citation.authors,
        journal=journal,
        date=date,
        snippet=make_snippet(sections, with_abstract["abstract"] if with_abstract else None),
        links=links,
        sources=sorted({r["source"] for r in records}),
        kind=kind,
        related=related_works(data),
        citation=citation,
        details=citation.details if (citation.volume or citation.pages) else "",
        free_full_text=citations.free_full_text(records, sorted(seen)),
        record_type=work["record_type"],
        links_to=[(row["link_type"], row["other"], bool(row["outgoing"])) for row, _ in data.linked],
    )
    attach_classification(item, data)
    return item


def attach_classification(item: DigestItem, data: WorkData) -> None:
    item.relevance, item.rank = (data.relevance[0], data.relevance[1] or 0.0) if data.relevance else (None, 0.0)
    item.tags = [t["tag"] for t in data.tags]
    evidence = [t["tag"] for t in data.tags if t["category"] == "evidence"]
    item.evidence = next((e for e in CLINICAL_ORDER if e in evidence), evidence[0] if evidence else "")
    if item.kind == "new":
        item.section = section_for(item, evidence)


def section_for(item: DigestItem, evidence: list[str]) -> str:
    if item.relevance == "uncertain":
        return "uncertain"
    if item.section == "notice":
        return "notices"
    if item.section == "preprint" or "preprint" in evidence:
        return "preprints"
    if item.section == "trial_registration" or "trial_registration" in evidence:
        return "trials"
    if item.section == "news" or "news" in evidence:
        return "news"
    if {"meta_analysis", "systematic_review"} & set(evidence):
        return "reviews"
    if "preclinical" in evidence:
        return "preclinical"
    return "clinical"


def related_works(data: WorkData) -> list[tuple[str, str, str | None]]:
    """Works linked to this one (work_links_view), labelled from this work's side, in RELATED_LABELS order."""
    order = list(RELATED_LABELS)
    found = []
    for row, ids_by_scheme in data.linked:
        key = (row["link_type"], bool(row["outgoing"]))
        if key in RELATED_LABELS:
            found.append((order.index(key), RELATED_LABELS[key], row["title"], row["other"], ids_by_scheme))
    result = []
    for _, label, title, _other, ids_by_scheme in sorted(found, key=lambda f: (f[0], f[3])):
        url = next((ids.url_for(s, ids_by_scheme[s]) for s in _URL_SCHEMES if s in ids_by_scheme), None)
        result.append((label, title, url))
    return result[:RELATED_MAX]


def safe_url(url: str | None) -> str | None:
    """Only http(s) links reach a digest."""
    return url if url and re.match(r"^https?://", url, re.I) else None
