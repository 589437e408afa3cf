"""The one pipeline that the CLI, cron and the scheduler all call: crawl → store → digest."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
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
    first: FirstSource | None = None,
) -> CrawlReport:
    """Crawl the enabled (or named) sources into ``db``; one failing source never stops the others.

    When ``stop`` is set (SIGTERM/SIGINT) the source being crawled ends after its current batch
    (every stored batch is committed; the watermark does not move) and the others are not started.
    ``first``: the first source's fetch worker, forked before ``db`` was opened (:class:`FirstSource`; made with the
    same ``only`` and ``since``), taken by that source; stopped when this ends if it was not.
    """
    register_config_secrets(config)  # API keys never reach a log line or the database
    if getattr(config, "placeholder_contact", False):
        from crawler.configshow import placeholder_warning

        log.warning("%s", placeholder_warning(config))
    if first is not None and first.http is not None:
        http = first.http  # (the one the worker was forked with: its requests and pauses are counted in it)
    http = http or HttpClient(config.contact_email, **config.http)
    if stop is not None:
        http.stop = stop  # every pause and network wait ends at once on SIGTERM/SIGINT
    report = CrawlReport()
    instances = select_sources(config, only)
    run_id = None if dry_run else store.start_crawl_run(db, trigger)
    for instance in instances:
        # (a source whose worker was forked before the database was opened has started: it ends as interrupted)
        if stop is not None and stop.is_set() and not (first is not None and first.forked_for(instance.name)):
            skipped = SourceReport(instance.name, "interrupted", error="not started: stop requested")
            skipped.log()
            report.sources.append(skipped)
            continue
        report.sources.append(
            crawl_source(
                config, db, http, instance, run_id=run_id, since=since, dry_run=dry_run, progress=progress, stop=stop, first=first
            )
        )
    if first is not None:
        first.close()  # a worker that no source took (a stop before the first source): stopped and reaped
    if run_id is not None:
        store.finish_crawl_run(db, run_id, "interrupted" if report.interrupted else "failed" if report.failed else "ok")
    return report


class FirstSource:
    """A run's first source fetched in its worker process from before the database is opened (``litmon crawl`` and
    ``litmon run``, when that source gets a worker: :func:`crawler.fetch_worker.wanted`).

    Until the worker's fork the crawling process runs alone; the worker needs only the configuration, the HTTP
    client and the source's saved state (watermark, state), which :func:`crawler.store.peek_source_state` reads
    before the file is opened for writing (none when the file does not exist: a first run). So the worker is forked
    first (:meth:`running`, after the run lock is taken and the file found sound), and this process opens and
    migrates the database, recovers interrupted runs and records the crawl run while the worker sends its first
    requests. The first source takes the worker (:meth:`take`) only if the state it then reads from the opened
    database is the one the worker was given; else the worker is stopped and the source forks its own, as without
    this. One that no source takes (the database could not be opened, a stop before the first source) is stopped and
    reaped (:meth:`close`, and when :meth:`running`'s block ends, however it ends). Nothing is forked when the saved
    state cannot be read so (a migration pending, a lock, an unreadable file): the run goes as without this.
    """

    def __init__(self, config, *, only: list[str] | None = None, since: dt.date | None = None, progress: Any = None):
        self.config = config
        self.only = only
        self.since = since
        self.progress = progress
        #: the HTTP client the worker was forked with (None: no worker was forked); the run's client
        self.http: HttpClient | None = None
        self._forked: _Forked | None = None
        self._stack: contextlib.ExitStack | None = None

    @contextlib.contextmanager
    def running(self, stop: threading.Event | None):
        """Within the block, the first source's worker forked, if that source gets one and its saved state can be
        read; stopped and reaped when the block ends unless a source took it."""
        with contextlib.ExitStack() as stack:
            self._stack = stack
            try:
                self._fork(stop)
                yield self
            finally:
                self._forked = self._stack = None

    def _fork(self, stop: threading.Event | None) -> None:
        config = self.config
        if stop is not None and stop.is_set():
            return
        instances = select_sources(config, self.only)
        if not instances:
            return
        instance = instances[0]
        try:
            module = instance.module()
        except ImportError:
            return  # (the source reports it)
        check = getattr(module, "check_enabled", None)
        if check is not None and check(instance.settings, config):
            return
        saved = store.peek_source_state(config.database_path, instance.name)
        if saved is None:
            return
        http = HttpClient(config.contact_email, **config.http)
        http.stop = stop
        ctx = _context(config, http, instance, saved, since=self.since, progress=self.progress)
        if not fetch_worker.wanted(getattr(config, "fetch_worker", "auto"), instance.kind, (ctx.since, ctx.until)):
            return
        requests_before = _begin_source(http, instance)
        assert self._stack is not None
        batches = self._stack.enter_context(
            fetch_worker.batches_in_worker(module, ctx, topic=config.topic, stop=stop, prepare=True)
        )
        self.http = http
        self._forked = _Forked(instance.name, saved, ctx, requests_before, batches)

    def forked_for(self, name: str) -> bool:
        """Whether a worker of source ``name`` was forked and no source has taken it yet."""
        return self._forked is not None and self._forked.name == name

    def take(self, name: str, saved: dict[str, Any]) -> _Forked | None:
        """The worker forked for source ``name``, if it was given the state ``saved`` (read from the opened database);
        else None (a worker given another state is stopped and reaped first). Its batches: :meth:`batches`."""
        forked = self._forked
        if forked is None or forked.name != name:
            return None
        if forked.saved != saved:
            log.debug("[%s] the state read before opening the database differs: the worker forked first is stopped", name)
            self.close()
            return None
        return forked

    @contextlib.contextmanager
    def batches(self):
        """The taken worker's batches (as :func:`crawler.fetch_worker.batches_in_worker` yields them), the worker
        stopped and reaped when the block ends, however it ends."""
        assert self._forked is not None and self._stack is not None
        forked, self._forked = self._forked, None
        with self._stack.pop_all():
            yield forked.batches

    def close(self) -> None:
        """Stop and reap a worker that no source took."""
        if self._forked is not None and self._stack is not None:
            self._forked = None
            self._stack.close()


@dataclass
class _Forked:
    """The first source's worker as :class:`FirstSource` forked it."""

    name: str
    saved: dict[str, Any]  # the state it was given
    ctx: CrawlContext
    requests_before: int  # the HTTP client's request count before it
    batches: Any  # :func:`crawler.fetch_worker.batches_in_worker`'s iterator


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


def _context(config, http: HttpClient, instance: SourceInstance, saved: dict[str, Any], *, since, progress) -> CrawlContext:
    """The source's context for this run: its window (from ``since``, else the backfill's start on a first run, else
    the saved watermark less the overlap, until today) and its saved state."""
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
    return CrawlContext(
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


def _begin_source(http: HttpClient, instance: SourceInstance) -> int:
    """The source's rate limit set and its time budget started in the client; returns the request count before it."""
    if instance.settings.get("min_interval") is not None and instance.settings.get("base_url"):
        http.set_min_interval(instance.settings["base_url"], float(instance.settings["min_interval"]))
    requests_before = http.request_count
    http.begin_source()
    return requests_before


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
    first: FirstSource | None = None,
) -> SourceReport:
    """Crawl one source: its window read (by the worker forked first when it was given this state), each batch saved
    (counted only in a dry run), the run's outcome recorded in its source run and its state; never raises for the
    source's own failures (the report says them), only for the database's."""
    started = time.monotonic()
    report = SourceReport(instance.name, "ok")
    module = _module_to_crawl(config, instance, report)
    if module is None:
        report.log()
        return report

    saved = store.load_source_state(db, instance.name)
    forked = None if first is None or dry_run else first.take(instance.name, saved)
    if forked is not None:  # its worker, forked with this state before the database was opened
        ctx, requests_before = forked.ctx, forked.requests_before
    else:
        ctx = _context(config, http, instance, saved, since=since, progress=progress)
    report.window = (ctx.since.isoformat(), ctx.until.isoformat())
    source_run_id = None if dry_run or run_id is None else store.start_source_run(db, run_id, instance.name, *report.window)
    if forked is None:
        requests_before = _begin_source(http, instance)
    if first is not None and forked is not None:
        open_batches = first.batches
    else:
        open_batches = functools.partial(_batches, config, module, instance, ctx, dry_run=dry_run, stop=stop)
    kept = _read_batches(config, db, instance, ctx, open_batches, report, dry_run=dry_run, progress=progress, stop=stop)
    _sum_up(report, ctx, saved, kept=kept, requests=http.request_count - requests_before, seconds=time.monotonic() - started)
    if source_run_id is not None:  # None only in a dry run
        _record_outcome(db, instance, ctx, saved, report, source_run_id)
    report.log()
    return report


def _module_to_crawl(config, instance: SourceInstance, report: SourceReport):
    """The source's module, or None with ``report`` saying why it is not crawled (failed: not importable; disabled:
    its ``check_enabled`` gave a reason)."""
    try:
        module = instance.module()
    except ImportError as exc:
        report.status, report.error = "failed", f"source module unavailable: {exc}"
        return None
    check = getattr(module, "check_enabled", None)
    reason = check(instance.settings, config) if check else None
    if reason:
        report.status, report.error = "disabled", reason
        return None
    return module


def _read_batches(
    config, db, instance: SourceInstance, ctx: CrawlContext, open_batches, report: SourceReport, *, dry_run: bool, progress, stop
) -> int:
    """Each batch saved, or counted in a dry run, until the last or a stop; how the source failed, if it did, in
    ``report``. Returns the records read. ``open_batches()`` gives the context manager of the batches: it is called
    and entered here, so a source that fails to start fails as a source, as one failing mid-way."""
    kept = 0
    try:
        with open_batches() as each:
            for batch, ahead, prepared, late in each:
                kept += len(batch)
                report.counts["fetched"] = kept if ctx.downloaded is None else ctx.downloaded
                _take_batch(config, db, batch, report, ahead=ahead, prepared=prepared, late=late, dry_run=dry_run)
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
        _report_a_bug(report, instance, exc)
    return kept


def _take_batch(config, db, batch: list, report: SourceReport, *, ahead, prepared, late, dry_run: bool) -> None:
    """One batch saved and its counts added to ``report``'s; in a dry run only counted (new or unchanged)."""
    if dry_run:
        known = store.known_source_ids(db, batch[0].source, [r.source_id for r in batch]) if batch else set()
        report.counts["new"] += sum(1 for r in batch if r.source_id not in known)
        report.counts["unchanged"] += sum(1 for r in batch if r.source_id in known)
    elif batch:
        counts = ingest.save_batch(db, batch, config=config, ahead=ahead, prepared=prepared, more_ahead=late)
        for key, value in counts.items():
            report.counts[key] += value
        failpoints.hit("between_batches")


def _report_a_bug(report: SourceReport, instance: SourceInstance, exc: Exception) -> None:
    """An unexpected error of the source's code: failed, asking for a bug report."""
    report.status, report.error = (
        "failed",
        mask_secrets(f"[{instance.name}] unexpected {type(exc).__name__}: {exc} — check: report this as a bug with the log (-v)"),
    )
    report.reason, report.hint = (
        mask_secrets(f"unexpected {type(exc).__name__}: {exc}"),
        "report this as a bug with the log (-v)",
    )


def _sum_up(report: SourceReport, ctx: CrawlContext, saved: dict[str, Any], *, kept: int, requests: int, seconds: float) -> None:
    """What the report says beside the batches' counts: failures in a row, items skipped, pages read, requests,
    warnings and time."""
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
    report.requests = requests
    report.warnings = ctx.warnings
    report.seconds = seconds


def _record_outcome(
    db, instance: SourceInstance, ctx: CrawlContext, saved: dict[str, Any], report: SourceReport, source_run_id: int
) -> None:
    """The source run finished with the report's outcome; the source's state: on success the window's end as its
    watermark (kept as it was when items were skipped that may be readable next time), on failure the error."""
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
        store.save_source_success(db, instance.name, ctx.until.isoformat(), ctx.state)
    elif report.status == "failed":
        store.save_source_failure(db, instance.name, report.error or "unknown error")
