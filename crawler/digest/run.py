"""Run: select → build → render → store → deliver, once per recipient (``litmon digest``, cron, serve)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from crawler import classify, clock, export, failpoints, store
from crawler.digest.build import Digest, build
from crawler.digest.deliver import Delivery, deliver, write_atomic
from crawler.digest.render import render
from crawler.digest.selection import recipient_due, recipients_of, select

log = logging.getLogger("crawler.digest")


@dataclass
class DigestResult:
    digests: list[tuple[int | None, Digest]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(d.status == "failed" for d in self.deliveries)

    @property
    def digest(self) -> Digest | None:
        """The first digest (most runs have one recipient)."""
        return self.digests[0][1] if self.digests else None

    @property
    def digest_id(self) -> int | None:
        return self.digests[0][0] if self.digests else None


def build_digest(db, config, now: dt.datetime | None = None, recipient: dict | None = None) -> Digest:
    """Select, build and render the digest for one recipient (the first configured one by default)."""
    now = now or clock.now()
    recipient = recipient or recipients_of(config)[0]
    digest = build(select(db, config, recipient["address"], now), config, recipient)
    render(digest, config)
    return digest


def run_digest(config, db, *, dry_run: bool = False, now: dt.datetime | None = None, only_due: bool = False) -> DigestResult:
    """Build, store and deliver one digest per recipient (with ``only_due``, only to recipients whose
    digest is due). ``dry_run`` builds and reports without writing, sending or recording anything."""
    now = now or clock.now()
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
        failpoints.hit("render")  # built and rendered, not stored yet
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
        # every item (also those beyond a section's cap), as `litmon export --format ris` writes them
        ris = export.render(store.load_export_works(db, work_ids=[i.work_id for i in digest.items]), "ris")
        result.deliveries.append(deliver(config, db, digest_id, address, digest.subject, digest.text, digest.html, ris))
    return result


def write_preview(config, db, now: dt.datetime | None = None) -> tuple[Path, Digest]:
    """Render the next digest of the first recipient to an HTML file; record and send nothing."""
    digest = build_digest(db, config, now)
    outbox = Path(config.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"preview-{digest.period_end[:10]}.html"
    write_atomic(path, digest.html.encode("utf-8"))
    return path.resolve(), digest
