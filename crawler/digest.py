"""The digest: what is new and what changed since each recipient's last digest, rendered and delivered.

Period
    Per recipient, from the end of the last digest that reached them (sent, or written to the outbox)
    to now: a missed week is covered by the next digest, and a failed delivery is covered again by
    the next run, so nothing is lost and nothing is sent twice. A recipient's first digest (typically
    right after a backfill) lists only works entered in the last ``[digest] first_digest_days`` days.
Content
    New works (never sent to this recipient before) and updates: trial registration changes
    (before → after), preprints now published, and retractions / corrections / expressions of
    concern — flagged when they concern a work sent in an earlier digest. Works classified
    ``not_relevant`` (:mod:`crawler.classify`) never appear; ``uncertain`` ones have their own
    section. Items are ordered by ``work_relevance.rank_score``; the best ``[digest] highlights``
    relevant works open the digest. The last section reports each source's health in the period.
Sections (keys usable in ``[[recipients]] sections``)
    highlights, notices, clinical, reviews, trials, preprints, preclinical, news, uncertain, health.
Delivery
    With ``[email].smtp_host`` empty, each digest is written to ``[outbox].dir`` as ``.eml`` and
    ``.html``. Otherwise it is sent over SMTP (none / STARTTLS / SSL, AUTH with the password from
    ``$<password_env>``) to its recipient and recorded as sent only after the server accepted it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from crawler import changes, classify, clock, store
from crawler import identifiers as ids
from crawler.abstracts import make_snippet
from crawler.config import DIGEST_SECTIONS
from crawler.errors import DeliveryError, LitmonError
from crawler.records import source_rank

log = logging.getLogger("crawler.digest")

SECTION_TITLES = {
    "highlights": "Highlights",
    "notices": "Retractions, corrections and expressions of concern",
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
NOTICE_RELATIONS = {  # relation stated by a record -> (what it means for the work concerned, its own side)
    "retraction_of": "Retraction",
    "retraction_in": "Retraction",
    "erratum_for": "Correction",
    "erratum_in": "Correction",
    "correction_for": "Correction",
    "correction_in": "Correction",
    "expression_of_concern_for": "Expression of concern",
    "expression_of_concern_in": "Expression of concern",
}


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

    @property
    def items(self) -> list[DigestItem]:
        return [item for key, _, items in self.sections if key != "health" for item in items]

    def count(self, kind: str) -> int:
        return sum(1 for item in self.items if item.kind == kind)


@dataclass
class DigestResult:
    digests: list[tuple[int | None, Digest]] = field(default_factory=list)
    deliveries: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(d["status"] == "failed" for d in self.deliveries)

    @property
    def digest(self) -> Digest | None:
        """The first digest (most runs have one recipient)."""
        return self.digests[0][1] if self.digests else None

    @property
    def digest_id(self) -> int | None:
        return self.digests[0][0] if self.digests else None


def utcnow() -> dt.datetime:
    return clock.now()


def _iso(moment: dt.datetime) -> str:
    return clock.stamp(moment)


def _parse(stamp: str) -> dt.datetime:
    return clock.parse_stamp(stamp)


# --------------------------------------------------------------------------- recipients and periods


def recipients_of(config) -> list[dict]:
    """Every recipient; with no SMTP server and none configured, the outbox itself."""
    recipients = config.digest.get("recipients") or []
    if not recipients:
        return [{"address": "outbox", "sections": [], "tags": [], "min_score": None}]
    return recipients


def recipient_due(db, config, address: str, now: dt.datetime) -> bool:
    """Due when nothing reached the recipient yet, ``period_days`` passed since the last digest that
    did, or a delivery after it failed (the next run retries)."""
    last = store.load_last_delivered_digest(db, address)
    if last is None:
        return True
    if store.load_failed_since(db, address, last["period_end"]):
        return True
    return now - _parse(last["period_end"]) >= dt.timedelta(days=config.digest["period_days"]) - dt.timedelta(minutes=5)


def digest_due(db, config, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return any(recipient_due(db, config, r["address"], now) for r in recipients_of(config))


# --------------------------------------------------------------------------- selection


def build_digest(db, config, now: dt.datetime | None = None, recipient: dict | None = None) -> Digest:
    """Select and render the digest for one recipient (the first configured one by default)."""
    now = now or utcnow()
    recipient = recipient or recipients_of(config)[0]
    address = recipient["address"]
    last = store.load_last_delivered_digest(db, address)
    first = last is None
    period_start = _iso(now - dt.timedelta(days=config.digest["first_digest_days"])) if first else last["period_end"]
    period_end = _iso(now)

    new_items = _new_work_items(db, config, address, period_start, period_end, first, now)
    update_items = _trial_change_items(db, period_start, period_end) + _published_preprint_items(
        db, address, period_start, period_end
    )
    notice_items, stated_by = _notice_items(db, address, period_start, period_end)
    # a notice whose work is listed (flagged) is said once, on that work
    new_items = [item for item in new_items if item.work_id not in stated_by]
    listed = {item.work_id for item in new_items}
    # an update about a work that is new in this digest is said on the new item, not twice
    for item in update_items + notice_items:
        target = next((n for n in new_items if n.work_id == item.work_id), None)
        if target is not None:
            target.notes.extend(item.notes)
            target.flag = target.flag or item.flag
            if item.section == "notices":
                target.section = "notices"  # a new work that is already retracted or corrected
    updates = [i for i in update_items + notice_items if i.work_id not in listed]
    _attach_classification(db, updates)
    items = [i for i in new_items + updates if i.relevance != "not_relevant"]
    items = [i for i in items if _wanted(recipient, i)]

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
    grouped["health"] = changes.source_health(db, period_start, period_end)
    wanted_sections = recipient.get("sections") or DIGEST_SECTIONS
    sections = [(key, SECTION_TITLES[key], grouped[key]) for key in DIGEST_SECTIONS if grouped[key] and key in wanted_sections]

    digest = Digest(address, period_start, period_end, "", sections, first=first)
    new, upd = digest.count("new"), digest.count("update")
    digest.subject = (
        f"{config.digest['subject_prefix']} {config.topic['name']}: {new} new"
        f"{f', {upd} update(s)' if upd else ''} ({period_start[:10]} to {period_end[:10]})"
    ).strip()
    render(digest, config)
    return digest


def _wanted(recipient: dict, item: DigestItem) -> bool:
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


def _new_work_items(db, config, address, period_start, period_end, first, now) -> list[DigestItem]:
    params: list = [period_end]
    where = ["w.merged_into IS NULL", "w.first_seen_at <= ?"]
    if first:
        cutoff = (now - dt.timedelta(days=config.digest["first_digest_days"])).date().isoformat()
        where.append("COALESCE(w.entered_on, substr(w.first_seen_at, 1, 10)) >= ?")
        params.append(cutoff)
    else:
        where.append("w.first_seen_at > ?")
        params.append(period_start)
    works = list(db.query(f"SELECT w.* FROM works w WHERE {' AND '.join(where)}", params))
    delivered = store.load_delivered_work_ids(db, address, [w["id"] for w in works])
    items = [_build_item(db, work) for work in works if work["id"] not in delivered]
    _attach_classification(db, items)
    return items


def _trial_change_items(db, period_start, period_end) -> list[DigestItem]:
    result = []
    for change in changes.trial_changes(db, period_start, period_end):
        work = _current_work(db, change.work_id)
        if work is None:
            continue
        item = _build_item(db, work, kind="update")
        item.section = "trials"
        item.notes = change.describe()
        item.detail = {"trial_id": change.trial_id, "captured_at": change.captured_at}
        result.append(item)
    return _merge_same_work(result)


def _published_preprint_items(db, address, period_start, period_end) -> list[DigestItem]:
    """Preprints sent earlier whose journal version became known in this period."""
    rows = list(
        db.query(
            """SELECT DISTINCT r.work_id, l.value FROM record_links l JOIN records r ON r.id = l.record_id
           WHERE l.relation = 'preprint_of' AND l.scheme = 'doi' AND r.changed_at > ? AND r.changed_at <= ?""",
            [period_start, period_end],
        )
    )
    delivered = store.load_delivered_work_ids(db, address, [r["work_id"] for r in rows])
    result = []
    for row in rows:
        if row["work_id"] not in delivered:
            continue  # a preprint never sent is simply a preprint with a link
        work = _current_work(db, row["work_id"])
        if work is None:
            continue
        item = _build_item(db, work, kind="update")
        item.section = "preprints"
        article = _work_by_identifier(db, "doi", row["value"])
        where = f"{article['title']}" if article else f"https://doi.org/{row['value']}"
        item.notes = [f"Now published: {where} (doi:{row['value']})"]
        item.detail = {"published_doi": row["value"]}
        result.append(item)
    return _merge_same_work(result)


def _notice_items(db, address, period_start, period_end) -> tuple[list[DigestItem], set[int]]:
    """Retractions, corrections and expressions of concern stated in this period, by either side;
    also the notice works whose concerned work is known (they are shown on that work)."""
    rows = list(
        db.query(
            f"""SELECT r.work_id, l.relation, l.scheme, l.value FROM record_links l JOIN records r ON r.id = l.record_id
            WHERE l.relation IN ({", ".join("?" * len(NOTICE_RELATIONS))}) AND r.changed_at > ? AND r.changed_at <= ?""",
            [*NOTICE_RELATIONS, period_start, period_end],
        )
    )
    concerned: dict[int, list[str]] = {}
    notices_of: dict[int, set[int]] = {}
    for row in rows:
        stating = _current_work_id(db, row["work_id"])
        other = _work_by_identifier(db, row["scheme"], row["value"])
        label = NOTICE_RELATIONS[row["relation"]]
        if row["relation"].endswith(("_of", "_for")):  # a notice names the work it concerns
            target_id = other["id"] if other else None
        else:  # a work names its notice
            target_id = stating
        if target_id is not None:
            concerned.setdefault(target_id, []).append(label)
            if row["relation"].endswith(("_of", "_for")):
                notices_of.setdefault(target_id, set()).add(stating)
    delivered = store.load_delivered_work_ids(db, address, list(concerned))
    result, stated_by = [], set()
    for work_id, labels in concerned.items():
        work = _current_work(db, work_id)
        if work is None or work["record_type"] == "notice":
            continue
        item = _build_item(db, work, kind="update")
        item.section = "notices"
        kinds = sorted(set(labels))
        item.notes = [f"{kind} issued for this work" for kind in kinds]
        if work_id in delivered:
            item.flag = f"concerns an item sent to you on {delivered[work_id][:10]}"
        item.detail = {"notices": kinds}
        result.append(item)
        stated_by |= notices_of.get(work_id, set())
    return result, stated_by


def _merge_same_work(items: list[DigestItem]) -> list[DigestItem]:
    merged: dict[int, DigestItem] = {}
    for item in items:
        if item.work_id in merged:
            merged[item.work_id].notes.extend(n for n in item.notes if n not in merged[item.work_id].notes)
        else:
            merged[item.work_id] = item
    return list(merged.values())


def _current_work_id(db, work_id: int) -> int:
    """The work that ``work_id`` was merged into, if it was (store.load_current_work_ids follows the chain)."""
    current = store.load_current_work_ids(db, [work_id])
    return current[0] if current else work_id


def _current_work(db, work_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM works WHERE id = ?", [_current_work_id(db, work_id)]))
    return rows[0] if rows else None


def _work_by_identifier(db, scheme: str, value: str) -> dict | None:
    row = db.execute("SELECT work_id FROM identifiers WHERE scheme = ? AND value = ? LIMIT 1", [scheme, value]).fetchone()
    return _current_work(db, row[0]) if row else None


def _attach_classification(db, items: list[DigestItem]) -> None:
    for item in items:
        rel = db.execute("SELECT label, rank_score FROM work_relevance WHERE work_id = ?", [item.work_id]).fetchone()
        item.relevance, item.rank = (rel[0], rel[1] or 0.0) if rel else (None, 0.0)
        tags = list(
            db.query(
                "SELECT tag, category FROM work_tags WHERE work_id = ? ORDER BY category != 'evidence', category, tag",
                [item.work_id],
            )
        )
        item.tags = [t["tag"] for t in tags]
        evidence = [t["tag"] for t in tags if t["category"] == "evidence"]
        item.evidence = next((e for e in CLINICAL_ORDER if e in evidence), evidence[0] if evidence else "")
        if item.kind == "new":
            item.section = _section_for(item, evidence)


def _section_for(item: DigestItem, evidence: list[str]) -> str:
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


def _build_item(db, work: dict, kind: str = "new") -> DigestItem:
    records = list(db.query("SELECT * FROM records WHERE work_id = ?", [work["id"]]))
    records.sort(key=lambda r: source_rank(r["source"]))
    best = records[0] if records else {"url": None}
    authors = next((json.loads(r["authors"]) for r in records if json.loads(r["authors"])), [])
    author_text = ", ".join(authors[:3]) + (" et al." if len(authors) > 3 else "")
    with_abstract = next((r for r in records if r["abstract"]), None)
    sections = json.loads(with_abstract["data"] or "{}").get("abstract_sections") if with_abstract else None
    links, seen = [], set()
    for row in db.query("SELECT scheme, value FROM identifiers WHERE work_id = ? ORDER BY scheme, value", [work["id"]]):
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
    journal = next((r["journal"] for r in records if r["journal"]), None)
    if work["record_type"] == "trial_registration" and not journal:
        journal = ", ".join(
            sorted({"ClinicalTrials.gov" if r["source"] == "clinicaltrials" else r["source"].upper() for r in records})
        )
    return DigestItem(
        work_id=work["id"],
        section=work["record_type"],
        title=work["title"],
        url=url,
        authors=author_text,
        journal=journal,
        date=work["published_on"] or work["entered_on"],
        snippet=make_snippet(sections, with_abstract["abstract"] if with_abstract else None),
        links=links,
        sources=sorted({r["source"] for r in records}),
        kind=kind,
        related=related_works(db, work["id"]),
    )


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


def related_works(db, work_id: int) -> list[tuple[str, str, str | None]]:
    """Works linked to this one (work_links_view), labelled from this work's side, in RELATED_LABELS order."""
    order = list(RELATED_LABELS)
    found = []
    for row in db.query(
        """SELECT link_type, to_work_id AS other, to_title AS title, 1 AS outgoing FROM work_links_view WHERE from_work_id = ?
               UNION SELECT link_type, from_work_id, from_title, 0 FROM work_links_view WHERE to_work_id = ?""",
        [work_id, work_id],
    ):
        key = (row["link_type"], bool(row["outgoing"]))
        if key in RELATED_LABELS:
            found.append((order.index(key), RELATED_LABELS[key], row["title"], row["other"]))
    result = []
    for _, label, title, other in sorted(found, key=lambda f: (f[0], f[3])):
        ids_by_scheme = {
            r["scheme"]: r["value"]
            for r in db.query("SELECT scheme, value FROM work_identifiers WHERE work_id = ? ORDER BY value DESC", [other])
        }
        url = next((ids.url_for(s, ids_by_scheme[s]) for s in _URL_SCHEMES if s in ids_by_scheme), None)
        result.append((label, title, url))
    return result[:RELATED_MAX]


def safe_url(url: str | None) -> str | None:
    """Only http(s) links reach a digest."""
    return url if url and re.match(r"^https?://", url, re.I) else None


# --------------------------------------------------------------------------- rendering

_env = Environment(
    loader=PackageLoader("crawler", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_text_env = Environment(loader=PackageLoader("crawler", "templates"), autoescape=False, trim_blocks=True, lstrip_blocks=True)


def render(digest: Digest, config) -> None:
    """HTML (CSS inlined with premailer, so Gmail and Outlook keep the styles) and plain text."""
    counts = [(title, len(items)) for key, title, items in digest.sections if key != "health"]
    context = {
        "digest": digest,
        "topic": config.topic["name"],
        "counts": counts,
        "count": len(digest.items),
        "clinical_labels": CLINICAL_ORDER,
    }
    html = _env.get_template("digest.html.j2").render(**context)
    digest.html = inline_css(html)
    digest.text = _text_env.get_template("digest.txt.j2").render(**context)


def inline_css(html: str) -> str:
    import logging as _logging

    from premailer import Premailer

    _logging.getLogger("cssutils").setLevel(_logging.CRITICAL)
    return Premailer(
        html, remove_classes=False, keep_style_tags=False, strip_important=False, allow_network=False, disable_validation=True
    ).transform()


def build_message(config, digest_subject: str, text: str, html: str, recipient: str | None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = digest_subject
    message["From"] = config.email.sender
    if recipient and recipient != "outbox":
        message["To"] = recipient
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = config.email.sender.rsplit("@", 1)[-1].strip("> ") or "litmon.local"
    message["Message-ID"] = make_msgid("litmon", domain=domain)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


# --------------------------------------------------------------------------- running and delivery


def run_digest(config, db, *, dry_run: bool = False, now: dt.datetime | None = None, only_due: bool = False) -> DigestResult:
    """Build, store and deliver one digest per recipient (with ``only_due``, only to recipients whose
    digest is due). ``dry_run`` builds and reports without writing, sending or recording anything."""
    now = now or utcnow()
    if not dry_run:
        classified, stale = classify.classify_unclassified(db, config)
        if classified:
            log.info("classified %d work(s) that had no relevance yet", classified)
        if stale:
            log.warning("%d work(s) were classified with another [topic] vocabulary — run `litmon reclassify`", stale)
    result = DigestResult()
    for recipient in recipients_of(config):
        address = recipient["address"]
        if only_due and not recipient_due(db, config, address, now):
            result.skipped.append(f"{address}: not due yet")
            continue
        digest = build_digest(db, config, now, recipient)
        if not digest.items and config.digest["when_empty"] == "skip":
            result.skipped.append(f'{address}: nothing new and [digest] when_empty = "skip"')
            continue
        if dry_run:
            result.digests.append((None, digest))
            continue
        items = [
            (i.work_id, i.section, i.kind, {"notes": i.notes, **i.detail} if (i.notes or i.detail) else None)
            for i in digest.items
        ]
        digest_id = store.save_digest(
            db,
            period_start=digest.period_start,
            period_end=digest.period_end,
            subject=digest.subject,
            text_body=digest.text,
            html_body=digest.html,
            items=items,
            recipient=address,
        )
        result.digests.append((digest_id, digest))
        result.deliveries.append(deliver(config, db, digest_id, address, digest.subject, digest.text, digest.html))
    return result


def deliver(config, db, digest_id: int, address: str, subject: str, text: str, html: str) -> dict:
    if not config.email.smtp_host:
        return write_outbox(config, db, digest_id, address, subject, text, html)
    return send_smtp(config, db, digest_id, address, subject, text, html)


def resend(config, db, digest_id: int, *, dry_run: bool = False) -> dict:
    """Deliver a stored digest again, to the recipient it was made for."""
    row = store.load_digest(db, digest_id)
    if row is None:
        raise LitmonError(f"no digest with id {digest_id} — `litmon status` shows the last one")
    if dry_run:
        return {"recipient": row["recipient"], "status": "dry run"}
    return deliver(config, db, digest_id, row["recipient"], row["subject"], row["text_body"], row["html_body"])


def write_preview(config, db, now: dt.datetime | None = None) -> tuple[Path, Digest]:
    """Render the next digest of the first recipient to an HTML file; record and send nothing."""
    digest = build_digest(db, config, now)
    outbox = Path(config.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"preview-{digest.period_end[:10]}.html"
    _write_atomic(path, digest.html.encode("utf-8"))
    return path.resolve(), digest


def write_outbox(config, db, digest_id: int, address: str, subject: str, text: str, html: str) -> dict:
    outbox = Path(config.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    who = "" if address == "outbox" else "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", address)
    stem = f"litmon-digest-{digest_id:05d}{who}"
    message = build_message(config, subject, text, html, address)
    eml, html_path = outbox / f"{stem}.eml", outbox / f"{stem}.html"
    # recorded first: a run killed before the file is in place settles it by whether the file exists
    delivery_id = store.start_delivery(
        db, digest_id, address, transport="outbox", message_id=message["Message-ID"], path=str(eml)
    )
    _write_atomic(html_path, html.encode("utf-8"))
    _write_atomic(eml, bytes(message))
    store.update_delivery(db, delivery_id, status="written")
    log.info("digest %d for %s written to %s", digest_id, address, eml)
    return {"recipient": address, "status": "written", "path": str(eml), "html_path": str(html_path)}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def send_smtp(config, db, digest_id: int, recipient: str, subject: str, text: str, html: str) -> dict:
    """Send to one recipient, at most once: transient failures (4xx replies, dropped connections before
    the server accepted the message) are retried with exponential backoff.

    A ``250`` after DATA is success, whatever QUIT answers afterwards: the delivery is recorded as sent
    (with its Message-ID) at once, before anything else can fail. Just before DATA the delivery is
    recorded as ``sending``; if the process dies before the server's answer is recorded, the next run
    marks it ``unknown`` and does not send it again (see :func:`crawler.store.recover_pending_deliveries`).
    """
    settings = config.email
    message = build_message(config, subject, text, html, recipient)
    message_id = message["Message-ID"]
    error = None
    delivery_id: int | None = None

    def before_data() -> None:
        nonlocal delivery_id
        if delivery_id is None:
            delivery_id = store.start_delivery(db, digest_id, recipient, transport="smtp", message_id=message_id)
        else:
            store.update_delivery(db, delivery_id, status="sending")

    def accepted() -> None:
        store.update_delivery(db, delivery_id, status="sent")

    for attempt in range(settings.attempts):
        try:
            _smtp_send(settings, message, recipient, before_data=before_data, accepted=accepted)
            log.info("digest %d sent to %s (%s)", digest_id, recipient, message_id)
            return {"recipient": recipient, "status": "sent", "message_id": message_id}
        except smtplib.SMTPResponseException as exc:
            detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            error = f"SMTP {exc.smtp_code}: {detail}"
            if not 400 <= exc.smtp_code < 500:
                break  # permanent: retrying will not help
        except smtplib.SMTPRecipientsRefused as exc:
            error = f"recipient refused: {exc.recipients}"
            break
        except DeliveryError as exc:
            error = str(exc)
            break
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if delivery_id is not None:  # the server answered DATA with an error, or none: it did not accept it
            store.update_delivery(db, delivery_id, status="retrying", error=error)
        if attempt < settings.attempts - 1:
            delay = settings.retry_backoff_seconds * (2**attempt)
            log.info(
                "digest %d to %s: %s; retry %d/%d in %.1fs",
                digest_id,
                recipient,
                error,
                attempt + 1,
                settings.attempts - 1,
                delay,
            )
            time.sleep(delay)
    if delivery_id is None:
        store.save_delivery(db, digest_id, recipient, transport="smtp", status="failed", error=error)
    else:
        store.update_delivery(db, delivery_id, status="failed", error=error)
    log.error(
        "digest %d to %s failed: %s — check: [email] smtp_host, smtp_port, security, username and $%s; the next run retries it",
        digest_id,
        recipient,
        error,
        settings.password_env or "password_env",
    )
    return {"recipient": recipient, "status": "failed", "error": error}


def _tls_context(settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(Path(settings.ca_file).expanduser()) if settings.ca_file else None)


def _smtp_send(settings, message: EmailMessage, recipient: str, *, before_data=None, accepted=None) -> None:
    """One SMTP session: MAIL, RCPT, then DATA; ``before_data()`` runs just before DATA and ``accepted()``
    right after the server's 250. QUIT is a courtesy: whatever it answers (421, a dropped connection),
    an accepted message stays accepted."""
    password = os.environ.get(settings.password_env, "") if settings.password_env else ""
    if settings.username and not password:
        raise DeliveryError(f"[email] username is set but ${settings.password_env} is empty")
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=settings.timeout, context=_tls_context(settings)
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)
    try:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=_tls_context(settings))
            client.ehlo()
        if settings.username:
            client.login(settings.username, password)
        sender = parseaddr(str(message["From"]))[1]
        payload = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        options = ["SMTPUTF8", "BODY=8BITMIME"] if not (sender + recipient).isascii() and client.has_extn("smtputf8") else []
        code, reply = client.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        if before_data:
            before_data()
        code, reply = client.data(payload)
        if code != 250:  # smtplib raises SMTPDataError itself; kept for clarity
            raise smtplib.SMTPDataError(code, reply)
        if accepted:
            accepted()
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError) as exc:
            log.debug("SMTP QUIT after the message: %s (ignored)", exc)
        client.close()
