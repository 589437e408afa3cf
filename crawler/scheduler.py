"""`litmon serve`: the long-running service (APScheduler 3 BlockingScheduler).

* Two cron jobs from ``[schedule]``: ``crawl`` (default daily 05:30) and ``digest`` (default Mondays
  07:00), in ``[schedule] timezone``. Both run in one worker thread, so they never overlap; each
  takes the run lock (``<database>.lock``) like ``litmon run``. ``coalesce`` (missed runs collapse
  into one), ``max_instances = 1``, and ``misfire_grace_time = [schedule] misfire_grace_seconds``.
* At start (unless ``--no-catch-up``) a crawl the schedule missed while the service was down (or
  the very first crawl) runs at once, then a digest the schedule missed (the last digest is older
  than the digest expression's previous time). The crawl job also makes a missed digest afterwards.
* The digest job makes the digest at its cron time whatever ``[digest] period_days`` says (unless
  one was already made since that time).
* ``--dry-run``: the same schedule, but each job crawls and builds the digest without writing
  anything (no rows, no digest, no lock), to try the schedule and the sources.
* SIGTERM or SIGINT: the source being crawled stops after its current batch (committed; its
  watermark does not move), nothing new starts, the lock is released and the process exits 0. A
  second signal exits at once (code 1); SQLite rolls back the unfinished batch.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from crawler import clock, cron, ingest, store
from crawler.errors import LockedError
from crawler.lock import RunLock, lock_path, probe

log = logging.getLogger("crawler.serve")

#: How long the digest job waits for a lock held by another run (a crawl job skips at once).
DIGEST_LOCK_WAIT = 3600.0


def utcnow() -> dt.datetime:
    return clock.now()


def _parse(ts: str) -> dt.datetime:
    return clock.parse_stamp(ts)


def triggers(config):
    tz = cron.parse_timezone(config.schedule["timezone"])
    return cron.parse_cron(config.schedule["crawl"], tz), cron.parse_cron(config.schedule["digest"], tz)


def crawl_missed(db, config, now: dt.datetime | None = None) -> bool:
    """No crawl ever ran, or none started since the crawl expression last fired."""
    now = now or utcnow()
    previous = cron.previous_fire_time(triggers(config)[0], now)
    last = store.load_last_crawl_started_at(db)
    if last is None:
        return True
    return previous is not None and _parse(last) < previous


def digest_missed(db, config, now: dt.datetime | None = None) -> bool:
    """The digest expression fired since the last digest was made (or no digest was ever made)."""
    now = now or utcnow()
    previous = cron.previous_fire_time(triggers(config)[1], now)
    if previous is None:
        return False
    last = store.load_last_digest_created_at(db)
    return last is None or _parse(last) < previous


class Service:
    def __init__(self, config, *, catch_up: bool = True, dry_run: bool = False):
        self.config = config
        self.catch_up = catch_up
        self.dry_run = dry_run
        self.stop = threading.Event()
        self.lock_path = lock_path(config.database_path)
        self.tz = cron.parse_timezone(config.schedule["timezone"])
        self.crawl_trigger, self.digest_trigger = triggers(config)
        self.scheduler = BlockingScheduler(
            timezone=self.tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": config.schedule["misfire_grace_seconds"]},
        )
        self._started = threading.Event()
        self._start_returned = threading.Event()
        self._stopper: threading.Thread | None = None
        self.failed_jobs = 0

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.scheduler.add_listener(lambda event: self._started.set(), EVENT_SCHEDULER_STARTED)
            self.scheduler.add_job(self._job, self.crawl_trigger, args=["crawl", self.crawl_job], id="crawl", name="crawl")
            self.scheduler.add_job(self._job, self.digest_trigger, args=["digest", self.digest_job], id="digest", name="digest")
            if self.catch_up:
                self.scheduler.add_job(
                    self._job, "date", run_date=utcnow(), args=["catch-up", self.catch_up_job], id="catch-up", name="catch-up"
                )
            now = utcnow()
            log.info(
                "serve: started (pid %d); crawl '%s' next %s, digest '%s' next %s (%s); lock %s",
                os.getpid(),
                self.config.schedule["crawl"],
                _local(cron.next_fire_time(self.crawl_trigger, now)),
                self.config.schedule["digest"],
                _local(cron.next_fire_time(self.digest_trigger, now)),
                self.config.schedule["timezone"],
                self.lock_path,
                extra={"fields": {"event": "serve_started", "pid": os.getpid()}},
            )
            if not self.stop.is_set():
                self.scheduler.start()  # blocks until the stopper thread shuts it down
        finally:
            self._start_returned.set()
            if self._stopper is not None:
                self._stopper.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("serve: stopped cleanly", extra={"fields": {"event": "serve_stopped"}})
        return 0

    def _on_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            log.error("serve: second %s — exiting now; SQLite rolls back the unfinished batch", name)
            os._exit(1)
        self.stop.set()
        log.info("serve: %s received — finishing the current step, then stopping", name)
        self._stopper = threading.Thread(target=self._shutdown, name="litmon-stopper")
        self._stopper.start()

    def _shutdown(self) -> None:
        while not self._start_returned.is_set():
            if self._started.is_set():
                try:
                    self.scheduler.pause()  # submit nothing new ...
                    self.scheduler.remove_all_jobs()  # ... not even once the main loop wakes up
                    self.scheduler.shutdown(wait=True)  # waits for the running job, which sees self.stop
                except SchedulerNotRunningError:
                    pass
                return
            self._start_returned.wait(0.05)

    # ------------------------------------------------------------------ jobs

    def _job(self, name: str, work) -> None:
        if self.stop.is_set():
            log.info("serve: %s not started: stopping", name)
            return
        if self.dry_run:
            self._dry_job(name, work)
            return
        lock = RunLock(self.lock_path, f"serve ({name})")
        wait = DIGEST_LOCK_WAIT if name == "digest" else 0
        holder = probe(self.lock_path) if wait else None
        if holder:
            log.info("serve: %s waits up to %d min for the lock held by %s", name, wait // 60, holder.describe())
        try:
            lock.acquire(wait=wait, stop=self.stop)
        except LockedError as exc:
            log.warning("serve: %s skipped: %s", name, exc)
            return
        try:
            db = ingest.open_db(self.config.database_path)
            try:
                from crawler.pipeline import recover_interrupted_runs

                recover_interrupted_runs(db)
                work(db)
            finally:
                db.close()
        except Exception:  # a job's failure is logged; the service keeps running
            self.failed_jobs += 1
            log.exception("serve: %s job failed", name)
        finally:
            lock.release()

    def _dry_job(self, name: str, work) -> None:
        """--dry-run: the job reads the database (if any) and writes nothing, without the lock."""
        path = self.config.database_path
        db = ingest.open_db(path) if path.exists() else ingest.memory_db()
        try:
            work(db)
        except Exception:
            self.failed_jobs += 1
            log.exception("serve: %s job failed (dry run)", name)
        finally:
            db.close()

    def crawl_job(self, db) -> None:
        self._crawl(db)
        if not self.stop.is_set() and digest_missed(db, self.config):
            log.info("serve: the digest scheduled '%s' was missed: making it now", self.config.schedule["digest"])
            self._digest(db)

    def digest_job(self, db) -> None:
        # the crawl job (or catch-up) may already have made this slot's digest, e.g. when both fire at once
        if not digest_missed(db, self.config):
            log.info("serve: digest already made since the schedule fired; nothing to do")
            return
        self._digest(db)

    def catch_up_job(self, db) -> None:
        if crawl_missed(db, self.config):
            log.info("serve: catching up the crawl the schedule missed while the service was down")
            self._crawl(db)
        if not self.stop.is_set() and digest_missed(db, self.config):
            log.info("serve: catching up the digest the schedule missed while the service was down")
            self._digest(db)

    def _crawl(self, db) -> None:
        from crawler import pipeline

        report = pipeline.crawl(self.config, db, trigger="serve", stop=self.stop, dry_run=self.dry_run)
        ok = sum(1 for s in report.sources if s.status == "ok")
        log.info(
            "serve: crawl finished: %d ok, %d failed, %d interrupted",
            ok,
            len(report.failed),
            len(report.interrupted),
            extra={
                "fields": {
                    "event": "crawl_finished",
                    "ok": ok,
                    "failed": len(report.failed),
                    "interrupted": len(report.interrupted),
                }
            },
        )

    def _digest(self, db) -> None:
        from crawler import digest

        result = digest.run_digest(self.config, db, dry_run=self.dry_run)
        for reason in result.skipped:
            log.info("serve: digest skipped (%s)", reason)
        if self.dry_run:
            for _, made in result.digests:
                log.info(
                    "serve: digest (dry run) would list %d item(s) for %s: %s", len(made.items), made.recipient, made.subject
                )
            return
        for (digest_id, made), delivery in zip(result.digests, result.deliveries):
            (log.error if delivery.status == "failed" else log.info)(
                "serve: digest %s made, %d item(s): %s %s",
                digest_id,
                len(made.items),
                delivery.recipient,
                delivery.status,
                extra={
                    "fields": {
                        "event": "digest_made",
                        "digest_id": digest_id,
                        "items": len(made.items),
                        "recipient": delivery.recipient,
                        "status": delivery.status,
                    }
                },
            )


def _local(moment: dt.datetime | None) -> str:
    return moment.isoformat() if moment else "never"
