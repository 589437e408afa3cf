"""The one pipeline that the CLI, cron and the scheduler all call: crawl → store → digest."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from crawler import store
from crawler.errors import LitmonError, SourceError
from crawler.http import HttpClient
from crawler.sources import SourceInstance, source_instances
from crawler.sources.base import CrawlContext

log = logging.getLogger("crawler.pipeline")


@dataclass
class SourceReport:
    name: str
    status: str  # ok | failed | disabled | skipped
    counts: dict[str, int] = field(default_factory=lambda: {"fetched": 0, "new": 0, "updated": 0, "unchanged": 0})
    requests: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    window: tuple[str | None, str | None] = (None, None)
    seconds: float = 0.0

    def summary(self) -> str:
        if self.status == "disabled":
            return f"[{self.name}] disabled: {self.error}"
        c = self.counts
        line = (f"[{self.name}] {self.status}: {c['fetched']} fetched, {c['new']} new, {c['updated']} updated, "
                f"{c['unchanged']} unchanged, {self.requests} requests, window {self.window[0]}..{self.window[1]}, "
                f"{self.seconds:.1f}s")
        if self.warnings:
            line += f", {len(self.warnings)} warning(s)"
        if self.error:
            line += f" — {self.error}"
        return line


@dataclass
class CrawlReport:
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "failed"]


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def select_sources(config, only: list[str] | None = None) -> list[SourceInstance]:
    instances = source_instances(config)
    if not only:
        return [i for i in instances if i.enabled]
    names = {i.name for i in instances}
    chosen = []
    for name in only:
        matches = [i for i in instances if i.name == name or (name in ("feed", "feeds") and i.kind == "feed")
                   or (name in ("page", "pages") and i.kind == "page")]
        if not matches:
            raise LitmonError(f"unknown source {name!r}; configured sources: {', '.join(sorted(names))}")
        chosen.extend(matches)
    return chosen


def crawl(config, db, *, http: HttpClient | None = None, only: list[str] | None = None, since: dt.date | None = None,
          dry_run: bool = False, trigger: str = "cli", progress: Any = None) -> CrawlReport:
    """Crawl the enabled (or named) sources into ``db``; one failing source never stops the others."""
    http = http or HttpClient.from_config(config)
    report = CrawlReport()
    run_id = None if dry_run else store.start_crawl_run(db, trigger)
    for instance in select_sources(config, only):
        report.sources.append(crawl_source(config, db, http, instance, run_id=run_id, since=since, dry_run=dry_run, progress=progress))
    if run_id is not None:
        store.finish_crawl_run(db, run_id, "failed" if report.failed else "ok")
    return report


def crawl_source(config, db, http: HttpClient, instance: SourceInstance, *, run_id: int | None, since: dt.date | None = None,
                 dry_run: bool = False, progress: Any = None) -> SourceReport:
    started = time.monotonic()
    report = SourceReport(instance.name, "ok")
    try:
        module = instance.module()
    except ImportError as exc:
        report.status, report.error = "failed", f"source module unavailable: {exc}"
        log.error(report.summary())
        return report
    check = getattr(module, "check_enabled", None)
    reason = check(instance.settings, config) if check else None
    if reason:
        report.status, report.error = "disabled", reason
        log.info(report.summary())
        return report

    saved = store.load_source_state(db, instance.name)
    until = today_utc()
    first_run = saved["watermark"] is None
    if since is not None:
        window_from = since
    elif first_run:
        window_from = config.backfill_from
        cap = instance.settings.get("max_backfill_days")
        if cap:  # sources without search (bioRxiv) cap their backfill
            window_from = max(window_from, until - dt.timedelta(days=int(cap)))
    else:
        window_from = dt.date.fromisoformat(saved["watermark"][:10]) - dt.timedelta(days=config.overlap_days)
    window_from = min(window_from, until)
    report.window = (window_from.isoformat(), until.isoformat())
    ctx = CrawlContext(
        name=instance.name, settings=instance.settings, config=config, http=http, since=window_from, until=until,
        first_run=first_run and since is None, state=dict(saved["state"]), progress=progress,
    )
    if instance.settings.get("min_interval") is not None and instance.settings.get("base_url"):
        http.set_min_interval(instance.settings["base_url"], float(instance.settings["min_interval"]))
    source_run_id = None if dry_run else store.start_source_run(db, run_id, instance.name, *report.window)
    requests_before = http.request_count
    try:
        for batch in module.fetch_records(ctx):
            report.counts["fetched"] += len(batch)
            if dry_run:
                known = store.known_source_ids(db, batch[0].source, [r.source_id for r in batch]) if batch else set()
                report.counts["new"] += sum(1 for r in batch if r.source_id not in known)
                report.counts["unchanged"] += sum(1 for r in batch if r.source_id in known)
            elif batch:
                for key, value in store.save_records(db, batch).items():
                    report.counts[key] += value
            if progress:
                progress(instance.name, report.counts)
    except SourceError as exc:
        report.status, report.error = "failed", str(exc)
    except Exception as exc:  # a parser bug must not stop the other sources
        log.debug("unexpected error in %s", instance.name, exc_info=True)
        report.status, report.error = "failed", f"[{instance.name}] unexpected {type(exc).__name__}: {exc} — check: report this as a bug with the log (-v)"
    report.requests = http.request_count - requests_before
    report.warnings = ctx.warnings
    report.seconds = time.monotonic() - started
    if not dry_run:
        store.finish_source_run(db, source_run_id, status=report.status, counts=report.counts, requests=report.requests,
                                warnings=report.warnings, error=report.error, queries=ctx.queries)
        if report.status == "ok":
            store.save_source_success(db, instance.name, until.isoformat(), ctx.state)
        else:
            store.save_source_failure(db, instance.name, report.error or "unknown error")
    (log.error if report.status == "failed" else log.info)(report.summary())
    return report
