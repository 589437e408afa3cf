"""The one pipeline that the CLI, cron and the scheduler all call: crawl → store → digest."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from crawler import clock, failpoints, fetch_worker, ingest, store
from crawler.errors import Interrupted, SourceError, UsageError
from crawler.http import HttpClient
from crawler.logs import mask_secrets, register_config_secrets
from crawler.sources import SourceInstance, source_instances
from crawler.sources.base import CrawlContext

log = logging.getLogger("crawler.pipeline")


@dataclass
class SourceReport:
    name: str
    status: str  # ok | failed | disabled | interrupted
    #: fetched = items downloaded; for sources that filter locally (feeds, pages, bioRxiv, Crossref) also
    #: kept = records that passed the topic filter. new + updated + unchanged = kept (else fetched).
    counts: dict[str, int] = field(default_factory=lambda: {"fetched": 0, "new": 0, "updated": 0, "unchanged": 0})
    requests: int = 0
    error: str | None = None  # the full diagnosis: reason, URL and what to check (log, database, operators)
    warnings: list[str] = field(default_factory=list)
    window: tuple[str | None, str | None] = (None, None)
    seconds: float = 0.0
    reason: str | None = None  # why it failed, in one short phrase (no URL)
    hint: str | None = None  # what to check
    failures_in_a_row: int = 0  # after this run
    skipped: list[str] = field(default_factory=list)  # items that could not be stored, with the reason
    watermark_held: bool = False  # skipped items may be readable later: the next run re-reads the window
    never_succeeded: bool = False  # no successful run yet, this one included

    def crossed(self, fail_after: int) -> bool:
        """Whether this failure should page someone: the source has failed ``fail_after`` runs in a
        row (0 = never), or has never succeeded at all (a source that never worked is a setup problem)."""
        if self.status != "failed":
            return False
        return self.never_succeeded or bool(fail_after and self.failures_in_a_row >= fail_after)

    def summary(self) -> str:
        if self.status == "disabled":
            return f"[{self.name}] disabled: {self.error}"
        c = self.counts
        kept = f", {c['kept']} kept" if "kept" in c else ""
        if self.status == "failed" and self.reason:
            # one short line: the URL is in the -v log, the JSON fields, the database and operators' digests
            line = f"[{self.name}] failed: {self.reason}"
            if self.hint:
                line += f" — check: {self.hint}"
            done = f"{c['fetched']} fetched{kept}, {c['new']} new, " if c["fetched"] else ""
            return line + f" ({done}{self.requests} request(s), {self.seconds:.1f}s)"
        line = (
            f"[{self.name}] {self.status}: {c['fetched']} fetched{kept}, {c['new']} new, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {self.requests} requests, window {self.window[0]}..{self.window[1]}, "
            f"{self.seconds:.1f}s"
        )
        if self.skipped:
            line += (
                f", {len(self.skipped)} skipped ({self.skipped[0]}"
                + (f"; and {len(self.skipped) - 1} more" if len(self.skipped) > 1 else "")
                + ")"
            )
            if self.watermark_held:
                line += ", watermark held"
        if self.warnings:
            line += f", {len(self.warnings)} warning(s)"
        if self.error:
            line += f" — {self.error}"
        return line

    def log_fields(self) -> dict[str, Any]:
        """The summary as structured fields (JSON log lines)."""
        return {
            "event": "source_run",
            "source": self.name,
            "status": self.status,
            **self.counts,
            "kept": self.counts.get("kept", self.counts["fetched"]),
            "skipped": len(self.skipped),
            "skipped_reasons": self.skipped[:20],
            "watermark_held": self.watermark_held,
            "requests": self.requests,
            "window_from": self.window[0],
            "window_to": self.window[1],
            "seconds": round(self.seconds, 3),
            "warnings": len(self.warnings),
            "error": self.error,
        }

    def log(self) -> None:
        level = {"failed": logging.ERROR, "interrupted": logging.WARNING}.get(self.status, logging.INFO)
        log.log(level, self.summary(), extra={"fields": self.log_fields()})
        if self.status == "failed" and self.error:
            log.debug("[%s] full error: %s", self.name, self.error)


@dataclass
class CrawlReport:
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "failed"]

    @property
    def interrupted(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "interrupted"]

    def crossed(self, fail_after: int) -> list[SourceReport]:
        """The failed sources that should page someone (see :meth:`SourceReport.crossed`)."""
        return [s for s in self.failed if s.crossed(fail_after)]


def today_utc() -> dt.date:
    return clock.today()


def select_sources(config, only: list[str] | None = None) -> list[SourceInstance]:
    instances = source_instances(config)
    if not only:
        return [i for i in instances if i.enabled]
    names = {i.name for i in instances}
    chosen = []
    for name in only:
        matches = [
            i
            for i in instances
            if i.name == name
            or (name in ("feed", "feeds") and i.kind == "feed")
            or (name in ("page", "pages") and i.kind == "page")
        ]
        if not matches:
            from crawler.settings import suggestion

            raise UsageError(
                f"unknown source {name!r}{suggestion(name, sorted(names))}; configured sources: {', '.join(sorted(names))}"
                " (or feeds, pages)"
            )
        chosen.extend(matches)
    return chosen


def crawl(
    config,
    db,
    *,
    http: HttpClient | None = None,
    only: list[str] | None = None,
    since: dt.date | None = None,
    dry_run: bool = False,
    trigger: str = "cli",
    progress: Any = None,
    stop: threading.Event | None = None,
) -> CrawlReport:
    """Crawl the enabled (or named) sources into ``db``; one failing source never stops the others.

    When ``stop`` is set (SIGTERM/SIGINT) the source being crawled ends after its current batch
    (every stored batch is committed; the watermark does not move) and the others are not started.
    """
    register_config_secrets(config)  # API keys never reach a log line or the database
    if getattr(config, "placeholder_contact", False):
        from crawler.configshow import placeholder_warning

        log.warning("%s", placeholder_warning(config))
    http = http or HttpClient(config.contact_email, **config.http)
    if stop is not None:
        http.stop = stop  # every pause and network wait ends at once on SIGTERM/SIGINT
    report = CrawlReport()
    instances = select_sources(config, only)
    run_id = None if dry_run else store.start_crawl_run(db, trigger)
    for instance in instances:
        if stop is not None and stop.is_set():
            skipped = SourceReport(instance.name, "interrupted", error="not started: stop requested")
            skipped.log()
            report.sources.append(skipped)
            continue
        report.sources.append(
            crawl_source(config, db, http, instance, run_id=run_id, since=since, dry_run=dry_run, progress=progress, stop=stop)
        )
    if run_id is not None:
        store.finish_crawl_run(db, run_id, "interrupted" if report.interrupted else "failed" if report.failed else "ok")
    return report


def recover_interrupted_runs(db) -> int:
    """Mark crawl and source runs left 'running' by a killed process as 'interrupted'.

    Call only while holding the run lock: then no other process can be running them.
    """
    stale = store.load_running_source_runs(db)
    for row in stale:
        store.finish_source_run(
            db,
            row["id"],
            status="interrupted",
            counts={},
            requests=0,
            warnings=[],
            error="the process was killed before it finished; the next run re-reads this window",
            queries=[],
        )
    for delivery in store.recover_pending_deliveries(db):
        log.warning(
            "digest %d to %s was being delivered (%s) when a process was killed: recorded as %s",
            delivery["digest_id"],
            delivery["recipient"],
            delivery["transport"],
            delivery["status"],
        )
    runs = store.load_running_crawl_run_ids(db)
    for run_id in runs:
        store.finish_crawl_run(db, run_id, "interrupted")
    if runs or stale:
        log.warning(
            "marked %d crawl run(s) and %d source run(s) left 'running' by a killed process as interrupted "
            "(their stored batches are kept; the watermarks did not move)",
            len(runs),
            len(stale),
        )
    return len(runs)


def _batches(config, module, instance: SourceInstance, ctx: CrawlContext, *, dry_run: bool, stop: threading.Event | None):
    """The source's batches, each with its records classified ahead as works of their own and prepared for saving,
    and the callable that gives those classified later (or None, None, None: :func:`crawler.ingest.save_batch`'s
    ``ahead``, ``prepared`` and ``more_ahead``): from a
    worker process beside this one where that pays (:mod:`crawler.fetch_worker`), else fetched here in turn (the
    garbage collector tuned for the batches as in both processes of the worker path)."""
    if fetch_worker.wanted(getattr(config, "fetch_worker", "auto"), instance.kind, (ctx.since, ctx.until)):
        topic = None if dry_run else config.topic
        return fetch_worker.batches_in_worker(module, ctx, topic=topic, stop=stop, prepare=not dry_run)
    return _batches_here(module, ctx)


@contextlib.contextmanager
def _batches_here(module, ctx: CrawlContext):
    with fetch_worker.collector_for_batches():
        yield ((batch, None, None, None) for batch in module.fetch_records(ctx))


def crawl_source(
    config,
    db,
    http: HttpClient,
    instance: SourceInstance,
    *,
    run_id: int | None,
    since: dt.date | None = None,
    dry_run: bool = False,
    progress: Any = None,
    stop: threading.Event | None = None,
) -> SourceReport:
    started = time.monotonic()
    report = SourceReport(instance.name, "ok")
    try:
        module = instance.module()
    except ImportError as exc:
        report.status, report.error = "failed", f"source module unavailable: {exc}"
        report.log()
        return report
    check = getattr(module, "check_enabled", None)
    reason = check(instance.settings, config) if check else None
    if reason:
        report.status, report.error = "disabled", reason
        report.log()
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
        name=instance.name,
        settings=instance.settings,
        config=config,
        http=http,
        since=window_from,
        until=until,
        first_run=first_run and since is None,
        state=dict(saved["state"]),
        progress=progress,
    )
    if instance.settings.get("min_interval") is not None and instance.settings.get("base_url"):
        http.set_min_interval(instance.settings["base_url"], float(instance.settings["min_interval"]))
    source_run_id = None if dry_run or run_id is None else store.start_source_run(db, run_id, instance.name, *report.window)
    requests_before = http.request_count
    http.begin_source()
    kept = 0
    try:
        with _batches(config, module, instance, ctx, dry_run=dry_run, stop=stop) as batches:
            for batch, ahead, prepared, late in batches:
                kept += len(batch)
                report.counts["fetched"] = kept if ctx.downloaded is None else ctx.downloaded
                if dry_run:
                    known = store.known_source_ids(db, batch[0].source, [r.source_id for r in batch]) if batch else set()
                    report.counts["new"] += sum(1 for r in batch if r.source_id not in known)
                    report.counts["unchanged"] += sum(1 for r in batch if r.source_id in known)
                elif batch:
                    counts = ingest.save_batch(db, batch, config=config, ahead=ahead, prepared=prepared, more_ahead=late)
                    for key, value in counts.items():
                        report.counts[key] += value
                    failpoints.hit("between_batches")
                if progress:
                    progress(instance.name, report.counts)
                if stop is not None and stop.is_set():
                    raise Interrupted("stop requested")
    except Interrupted:
        report.status = "interrupted"
        report.error = "stopped by a signal after a committed batch; the next run re-reads this window"
    except sqlite3.Error:
        raise  # the database cannot be written (locked, full, read-only): a local problem, not this source's
    except RecursionError:  # json/XML nested thousands deep: a hostile or broken answer, not a parser bug
        report.status = "failed"
        report.reason = "the answer is nested too deeply to read (a broken or hostile answer)"
        report.hint = "whether the service is up; it is retried on the next run"
        report.error = f"[{instance.name}] {report.reason} — check: {report.hint}"
    except SourceError as exc:
        report.status, report.error = "failed", mask_secrets(str(exc))
        report.reason, report.hint = mask_secrets(exc.reason), exc.hint
    except Exception as exc:  # a parser bug must not stop the other sources
        log.debug("unexpected error in %s", instance.name, exc_info=True)
        report.status, report.error = (
            "failed",
            mask_secrets(
                f"[{instance.name}] unexpected {type(exc).__name__}: {exc} — check: report this as a bug with the log (-v)"
            ),
        )
        report.reason, report.hint = (
            mask_secrets(f"unexpected {type(exc).__name__}: {exc}"),
            "report this as a bug with the log (-v)",
        )
    if report.status == "failed":
        report.failures_in_a_row = saved["consecutive_failures"] + 1
        report.never_succeeded = saved["watermark"] is None
    if ctx.skipped:
        report.counts["skipped"] = len(ctx.skipped)
        report.skipped = list(ctx.skipped)
        report.watermark_held = ctx.holds_watermark and report.status == "ok"
    if ctx.downloaded is not None:  # pages read that yielded nothing still count as fetched
        report.counts["fetched"] = ctx.downloaded
        report.counts["kept"] = kept
    report.requests = http.request_count - requests_before
    report.warnings = ctx.warnings
    report.seconds = time.monotonic() - started
    if source_run_id is not None:  # None only in a dry run
        store.finish_source_run(
            db,
            source_run_id,
            status=report.status,
            counts=report.counts,
            requests=report.requests,
            warnings=report.warnings,
            error=report.error,
            queries=ctx.queries,
            skipped=report.skipped,
        )
        if report.status == "ok" and report.watermark_held:
            # skipped items may be readable next time: record the success but keep the watermark and state
            store.save_source_success(db, instance.name, saved["watermark"], saved["state"])
        elif report.status == "ok":
            store.save_source_success(db, instance.name, until.isoformat(), ctx.state)
        elif report.status == "failed":
            store.save_source_failure(db, instance.name, report.error or "unknown error")
    report.log()
    return report
