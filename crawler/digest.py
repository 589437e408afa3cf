"""The digest: select what is new since the last digest, render HTML + plain text, deliver.

Selection
    Works first seen after the end of the previous digest's period and never listed in a digest
    before. The very first digest (typically right after a backfill) lists only works whose
    ``entered_on`` date (when the source first listed them) falls within the last
    ``[digest].first_digest_days`` days, not the whole backlog.
Relevance and order
    Works classified ``not_relevant`` (:mod:`crawler.classify`) are left out; ``uncertain`` ones go
    to their own section at the end. Items are ordered by ``work_relevance.rank_score``; the
    ``[digest].highlights`` best-ranked relevant works scoring at least ``highlight_min_score`` open
    the digest as "Highlights" (and are not repeated in their kind's section).
Delivery
    With ``[email].smtp_host`` empty, the message is written to ``[outbox].dir`` as ``.eml`` and
    ``.html``. Otherwise it is sent over SMTP (none / STARTTLS / SSL, AUTH with the password from
    ``$<password_env>``) to each recipient; a delivery is recorded only after the server accepted it.
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
from email.utils import formatdate, make_msgid
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from crawler import classify
from crawler import identifiers as ids
from crawler import store
from crawler.errors import DeliveryError

log = logging.getLogger("crawler.digest")

#: (record_type or "highlights"/"uncertain", section title) in display order
SECTIONS = (
    ("highlights", "Highlights"),
    ("notice", "Retractions, corrections and expressions of concern"),
    ("article", "New articles"),
    ("preprint", "Preprints"),
    ("trial_registration", "Clinical trial registrations"),
    ("news", "Regulatory and news"),
    ("other", "Other"),
    ("uncertain", "Uncertain relevance (check before relying on these)"),
)
ID_LABELS = {"doi": "DOI", "pmid": "PubMed", "pmcid": "PMC", "nct": "ClinicalTrials.gov", "isrctn": "ISRCTN",
             "eudract": "EudraCT", "euct": "EU CTIS", "ppr": "Europe PMC", "openalex": "OpenAlex"}
SNIPPET_CHARS = 320


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


@dataclass
class Digest:
    period_start: str
    period_end: str
    subject: str
    sections: list[tuple[str, list[DigestItem]]]
    text: str = ""
    html: str = ""
    first: bool = False

    @property
    def items(self) -> list[DigestItem]:
        return [item for _, items in self.sections for item in items]


@dataclass
class DigestResult:
    digest_id: int | None
    digest: Digest | None
    deliveries: list[dict] = field(default_factory=list)
    skipped_reason: str | None = None

    @property
    def failed(self) -> bool:
        return any(d["status"] == "failed" for d in self.deliveries)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def last_digest(db) -> dict | None:
    rows = list(db.query("SELECT * FROM digests ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None


def digest_due(db, config, now: dt.datetime | None = None) -> bool:
    """A digest is due when none was made yet or the last one is ``period_days`` old."""
    now = now or utcnow()
    last = last_digest(db)
    if last is None:
        return True
    end = dt.datetime.fromisoformat(last["period_end"].replace("Z", "+00:00"))
    return now - end >= dt.timedelta(days=config.digest["period_days"]) - dt.timedelta(minutes=5)


def select_items(db, config, now: dt.datetime) -> tuple[str, list[tuple[str, list[DigestItem]]], bool]:
    last = last_digest(db)
    first = last is None
    params: list = [_iso(now)]
    where = ["w.merged_into IS NULL", "w.first_seen_at <= ?",
             "NOT EXISTS (SELECT 1 FROM digest_items di WHERE di.work_id = w.id)"]
    if first:
        cutoff = (now - dt.timedelta(days=config.digest["first_digest_days"])).date().isoformat()
        period_start = _iso(now - dt.timedelta(days=config.digest["first_digest_days"]))
        where.append("COALESCE(w.entered_on, substr(w.first_seen_at, 1, 10)) >= ?")
        params.append(cutoff)
    else:
        period_start = last["period_end"]
        where.append("w.first_seen_at > ?")
        params.append(period_start)
    where.append("COALESCE(r.label, '') != 'not_relevant'")
    works = list(db.query(
        f"SELECT w.*, r.label AS relevance, r.rank_score FROM works w LEFT JOIN work_relevance r ON r.work_id = w.id"
        f" WHERE {' AND '.join(where)} ORDER BY COALESCE(r.rank_score, 0) DESC, COALESCE(w.published_on, w.entered_on) DESC, w.id",
        params))
    grouped: dict[str, list[DigestItem]] = {key: [] for key, _ in SECTIONS}
    for work in works:
        item = _build_item(db, work)
        if work["relevance"] == "uncertain":
            item.section = "uncertain"
        elif (work["relevance"] == "relevant" and len(grouped["highlights"]) < config.digest.get("highlights", 0)
              and work["rank_score"] >= config.digest.get("highlight_min_score", 0)):
            item.section = "highlights"
        grouped.setdefault(item.section, []).append(item)
    sections = [(title, grouped[key]) for key, title in SECTIONS if grouped.get(key)]
    return period_start, sections, first


def _build_item(db, work: dict) -> DigestItem:
    records = list(db.query("SELECT * FROM records WHERE work_id = ? ", [work["id"]]))
    records.sort(key=lambda r: store.SOURCE_PRIORITY.index(r["source"].split(":")[0])
                 if r["source"].split(":")[0] in store.SOURCE_PRIORITY else 99)
    best = records[0]
    authors = next((json.loads(r["authors"]) for r in records if json.loads(r["authors"])), [])
    author_text = ", ".join(authors[:3]) + (" et al." if len(authors) > 3 else "")
    abstract = next((r["abstract"] for r in records if r["abstract"]), None)
    snippet = None
    if abstract:
        flat = " ".join(abstract.split())
        snippet = flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    links = []
    seen = set()
    for row in db.query("SELECT scheme, value FROM identifiers WHERE work_id = ? ORDER BY scheme, value", [work["id"]]):
        key = (row["scheme"], row["value"])
        url = ids.url_for(*key)
        if url and key not in seen:
            seen.add(key)
            links.append((f"{ID_LABELS.get(row['scheme'], row['scheme'])}: {row['value']}", url))
    url = next((u for _, u in links if u.startswith("https://doi.org/")), None) or safe_url(best["url"]) or (links[0][1] if links else None)
    return DigestItem(
        work_id=work["id"], section=work["record_type"], title=work["title"], url=url, authors=author_text,
        journal=next((r["journal"] for r in records if r["journal"]), None),
        date=work["published_on"] or work["entered_on"], snippet=snippet, links=links,
        sources=sorted({r["source"] for r in records}),
        tags=[r["tag"] for r in db.query("SELECT tag FROM work_tags WHERE work_id = ? ORDER BY category != 'evidence', category, tag", [work["id"]])],
    )


def safe_url(url: str | None) -> str | None:
    """Only http(s) links reach a digest."""
    return url if url and re.match(r"^https?://", url, re.I) else None


_env = Environment(loader=PackageLoader("crawler", "templates"), autoescape=select_autoescape(["html", "j2"]),
                   trim_blocks=True, lstrip_blocks=True)
_text_env = Environment(loader=PackageLoader("crawler", "templates"), autoescape=False, trim_blocks=True, lstrip_blocks=True)


def build_digest(db, config, now: dt.datetime | None = None) -> Digest:
    now = now or utcnow()
    period_start, sections, first = select_items(db, config, now)
    count = sum(len(items) for _, items in sections)
    subject = (f"{config.digest['subject_prefix']} {config.topic['name']}: {count} new "
               f"({period_start[:10]} to {_iso(now)[:10]})").strip()
    digest = Digest(period_start=period_start, period_end=_iso(now), subject=subject, sections=sections, first=first)
    context = {"digest": digest, "topic": config.topic["name"], "count": count}
    digest.html = _env.get_template("digest.html.j2").render(**context)
    digest.text = _text_env.get_template("digest.txt.j2").render(**context)
    return digest


def build_message(config, digest: Digest, recipient: str | None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = config.email.sender
    if recipient:
        message["To"] = recipient
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = config.email.sender.rsplit("@", 1)[-1].strip("> ") or "litmon.local"
    message["Message-ID"] = make_msgid("litmon", domain=domain)
    message.set_content(digest.text)
    message.add_alternative(digest.html, subtype="html")
    return message


def run_digest(config, db, *, dry_run: bool = False, now: dt.datetime | None = None) -> DigestResult:
    """Build, store and deliver the digest (or, with dry_run, only build and report it)."""
    if not dry_run:
        classified, stale = classify.classify_unclassified(db, config)
        if classified:
            log.info("classified %d work(s) that had no relevance yet", classified)
        if stale:
            log.warning("%d work(s) were classified with another [topic] vocabulary — run `litmon reclassify`", stale)
    digest = build_digest(db, config, now)
    if not digest.items and config.digest["when_empty"] == "skip":
        return DigestResult(None, digest, skipped_reason="nothing new and [digest].when_empty = \"skip\"")
    if dry_run:
        return DigestResult(None, digest)
    items = [(item.work_id, item.section) for item in digest.items]
    digest_id = store.save_digest(db, period_start=digest.period_start, period_end=digest.period_end,
                                  subject=digest.subject, text_body=digest.text, html_body=digest.html, items=items)
    result = DigestResult(digest_id, digest)
    if not config.email.smtp_host:
        result.deliveries.append(write_outbox(config, db, digest_id, digest))
    else:
        for recipient in config.email.recipients:
            result.deliveries.append(send_smtp(config, db, digest_id, digest, recipient))
    return result


def write_outbox(config, db, digest_id: int, digest: Digest) -> dict:
    outbox = Path(config.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    stem = f"litmon-digest-{digest_id:05d}-{digest.period_end[:10]}"
    message = build_message(config, digest, ", ".join(config.email.recipients) or None)
    eml, html = outbox / f"{stem}.eml", outbox / f"{stem}.html"
    _write_atomic(eml, bytes(message))
    _write_atomic(html, digest.html.encode("utf-8"))
    store.save_delivery(db, digest_id, "outbox", transport="outbox", status="written", message_id=message["Message-ID"], path=str(eml))
    log.info("digest %d written to %s (%d items)", digest_id, eml, len(digest.items))
    return {"recipient": "outbox", "status": "written", "path": str(eml), "html_path": str(html)}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def send_smtp(config, db, digest_id: int, digest: Digest, recipient: str) -> dict:
    """Send to one recipient; transient failures (4xx replies, dropped connections) are retried
    with exponential backoff; the delivery is recorded as sent only after the server accepted it."""
    settings = config.email
    message = build_message(config, digest, recipient)
    error = None
    for attempt in range(settings.attempts):
        try:
            _smtp_send(settings, message, recipient)
            store.save_delivery(db, digest_id, recipient, transport="smtp", status="sent", message_id=message["Message-ID"])
            log.info("digest %d sent to %s", digest_id, recipient)
            return {"recipient": recipient, "status": "sent"}
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            error = f"SMTP {exc.smtp_code}: {text}"
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
        if attempt < settings.attempts - 1:
            delay = settings.retry_backoff_seconds * (2 ** attempt)
            log.info("digest %d to %s: %s; retry %d/%d in %.1fs", digest_id, recipient, error, attempt + 1, settings.attempts - 1, delay)
            time.sleep(delay)
    store.save_delivery(db, digest_id, recipient, transport="smtp", status="failed", error=error)
    log.error("digest %d to %s failed: %s — check: [email] smtp_host, smtp_port, security, username and $%s",
              digest_id, recipient, error, settings.password_env or "password_env")
    return {"recipient": recipient, "status": "failed", "error": error}


def _tls_context(settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(Path(settings.ca_file).expanduser()) if settings.ca_file else None)


def _smtp_send(settings, message: EmailMessage, recipient: str) -> None:
    password = os.environ.get(settings.password_env, "") if settings.password_env else ""
    if settings.username and not password:
        raise DeliveryError(f"[email] username is set but ${settings.password_env} is empty")
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.timeout, context=_tls_context(settings))
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)
    with client:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=_tls_context(settings))
            client.ehlo()
        if settings.username:
            client.login(settings.username, password)
        client.send_message(message, to_addrs=[recipient])
