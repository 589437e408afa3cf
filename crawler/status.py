"""What `litmon status` reports: per source health, counts and lag; database size and counts; the
next scheduled runs; the last digest and the last delivery per recipient; and the reasons that make
``litmon status`` unhealthy (exit 4). Unhealthy when:

- an enabled source has never succeeded after its first attempt, has failed ``fail_after`` runs in a
  row, or has not succeeded for ``max_lag_hours``;
- the last delivery to a recipient failed (and no later one succeeded), or its outcome is unknown;
- a recipient's digest is overdue by more than a day (``[digest] period_days`` + 1 day since the last
  digest that reached it, or since the first crawl when none did);
- the database check (``PRAGMA quick_check`` and litmon's consistency rules) fails;
- a source skipped items and holds its watermark to read them again.

Items skipped where re-reading cannot help (a feed or page entry without a title, an item that can never
be identified: docs/reliability.md) are ``notices``: shown, but the verdict stays healthy.

Without a live lock holder nothing is "running": a run left ``running`` by a killed process is shown
as ``interrupted``."""

from __future__ import annotations

import datetime as dt
import json
import os

from crawler import clock, cron, dbguard, lock, store
from crawler.digest import recipients_of
from crawler.errors import short_error
from crawler.logs import mask_secrets
from crawler.sources import source_instances


def utcnow() -> dt.datetime:
    return clock.now()


def _parse(ts: str | None) -> dt.datetime | None:
    if not ts:
        return None
    return clock.parse_stamp(ts)


def _source_entry(instance, st: dict, run: dict, records: int, now: dt.datetime) -> dict:
    """A source's part of the status: its state, its records and its last run."""
    success = _parse(st.get("last_success_at"))
    return {
        "source": instance.name,
        "enabled": instance.enabled,
        "watermark": st.get("watermark"),
        "last_success_at": st.get("last_success_at"),
        "last_failure_at": st.get("last_failure_at"),
        "last_error": mask_secrets(st["last_error"]) if st.get("last_error") else None,
        "consecutive_failures": st.get("consecutive_failures", 0),
        "lag_seconds": int((now - success).total_seconds()) if success else None,
        "records": records,
        "last_run": {k: run.get(k) for k in _LAST_RUN_KEYS} if run else None,
    }


#: What the status shows of a source's last run.
_LAST_RUN_KEYS = ("status", "started_at", "finished_at", "fetched", "kept", "new", "updated", "unchanged", "skipped", "requests")


def _failure_alerts(entry: dict, st: dict, *, fail_after: int, max_lag_hours: int) -> list[str]:
    """An enabled source's alert, if any: never succeeded, failed ``fail_after`` runs in a row, or no success for more
    than ``max_lag_hours``."""
    name, failures, lag = entry["source"], entry["consecutive_failures"], entry["lag_seconds"]
    error = short_error(entry["last_error"])
    if failures and not st.get("last_success_at"):
        return [f"{name}: has never succeeded ({failures} attempt(s); last error: {error})"]
    if fail_after and failures >= fail_after:
        return [f"{name}: failed {failures} runs in a row (last error: {error})"]
    if max_lag_hours and lag is not None and lag > max_lag_hours * 3600:
        return [f"{name}: no successful crawl for {_duration(lag)} (limit {max_lag_hours} h)"]
    return []


def _skipped_items(entry: dict, st: dict, run: dict, alerts: list[str], notices: list[str]) -> None:
    """Items the source's last run skipped: an alert when its watermark is held for them, else a notice."""
    if not (run and run.get("skipped")):
        return
    reasons = json.loads(run.get("skipped_reasons") or "[]")
    # a held watermark stayed below the run's window end: the source reads the window again until the
    # items come back whole, and says so until then (an alert). A feed or page (read whole every run)
    # and items that can never be read (docs/reliability.md) let it move on: nothing is at risk that a
    # re-read could save, so they are shown as a notice and the verdict stays healthy (no daily page
    # for a feed that always carries one untitled entry)
    held = run.get("status") == "ok" and (st.get("watermark") or "") < (run.get("window_to") or "")
    what = f"{entry['source']}: {run['skipped']} item(s) skipped in the last run ({'; '.join(reasons[:3])}); "
    if held:
        alerts.append(what + "the watermark is held, so the next run reads them again")
    else:
        notices.append(what + "re-reading cannot recover them (see the reason); fix them at the source, or ignore")


def _delivery_alerts(config, recipients: list[dict], *, running: bool) -> list[str]:
    """The configured recipients' last deliveries that need a look; one left sending or retrying while no process
    runs (``running``: the run lock is held) is marked interrupted in ``recipients``."""
    alerts = []
    configured = {r["address"] for r in recipients_of(config)}
    for r in recipients:
        if r["recipient"] not in configured:
            continue  # a former recipient: its old failures no longer page anyone
        if r["last_status"] in ("sending", "retrying") and not running:  # left by a killed process
            r["last_status"] = "interrupted"
            alerts.append(
                f"digest #{r['last_digest_id']} to {r['recipient']}: the process was killed while delivering it — the next "
                "run settles it (an outbox file that exists counts as written; an SMTP message becomes unknown)"
            )
        elif r["last_status"] == "unknown":
            alerts.append(f"digest #{r['last_digest_id']} to {r['recipient']}: delivery unknown — {r['error']}")
        elif r["last_status"] == "failed":
            alerts.append(
                f"digest #{r['last_digest_id']} to {r['recipient']}: the last delivery failed ({r['last_attempt_at']}) "
                f"and was not retried successfully — {short_error(r['error'])}"
            )
    return alerts


def _interrupted_if_running(last_crawl: dict | None, sources: list[dict]) -> dict | None:
    """While no process runs: the last crawl run, and the sources' last runs (in ``sources``), still marked running
    shown as interrupted (left by a killed process)."""
    if last_crawl and last_crawl["status"] == "running":
        last_crawl = dict(last_crawl, status="interrupted", note="left 'running' by a process that no longer runs")
    for entry in sources:
        if entry["last_run"] and entry["last_run"]["status"] == "running":
            entry["last_run"]["status"] = "interrupted"
    return last_crawl


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def collect_status(
    config,
    db,
    *,
    fail_after: int | None = None,
    max_lag_hours: int | None = None,
    now: dt.datetime | None = None,
    storage_checked: bool = False,
) -> dict:
    """Everything ``litmon status`` reports (see the module docstring). ``storage_checked``: the caller ran
    :func:`crawler.dbguard.check_integrity` on the file just before, so the database check skips its own
    ``PRAGMA quick_check`` and runs only the consistency rules."""
    now = now or utcnow()
    fail_after = config.status["fail_after"] if fail_after is None else fail_after
    max_lag_hours = config.status["max_lag_hours"] if max_lag_hours is None else max_lag_hours
    sources: list[dict] = []
    alerts: list[str] = []
    notices: list[str] = []
    states = store.load_source_states(db)
    counts = store.count_records_by_source(db)
    last_runs = store.load_last_source_runs(db)
    for instance in source_instances(config):
        st = states.get(instance.name, {})
        run = last_runs.get(instance.name, {})
        entry = _source_entry(instance, st, run, counts.get(instance.name, 0), now)
        sources.append(entry)
        if instance.enabled:
            alerts.extend(_failure_alerts(entry, st, fail_after=fail_after, max_lag_hours=max_lag_hours))
            _skipped_items(entry, st, run, alerts, notices)

    path = str(config.database_path)
    last_digest = store.load_last_digest(db)
    deliveries = store.load_deliveries_of_digest(db, last_digest["id"]) if last_digest else []
    recipients = [
        dict(r, error=mask_secrets(r["error"]) if r["error"] else None) for r in store.load_last_delivery_per_recipient(db)
    ]
    failure = dbguard.load_failure(config.database_path)
    if failure:  # a run that could not write into the database (locked, disk full, read-only) left this
        alerts.append(
            f"`litmon {failure.get('command')}` at {failure.get('at')} failed: {mask_secrets(failure.get('error') or '')}"
        )
    holder = lock.probe(lock.lock_path(config.database_path))
    alerts.extend(_delivery_alerts(config, recipients, running=holder is not None))
    alerts.extend(_overdue_digests(config, db, now))
    last_crawl = store.load_last_crawl_run(db)
    if holder is None:  # nothing runs: a run still marked running was left by a killed process
        last_crawl = _interrupted_if_running(last_crawl, sources)
    db_problems = _database_problems(config, holder is not None, storage_checked)
    alerts.extend(f"database check failed: {p} — run `litmon check` for details" for p in db_problems[:3])
    alerts.extend(dbguard.unwritable(config.database_path))
    return {
        "checked_at": _iso(now),
        "verdict": "unhealthy" if alerts else "healthy",
        "reasons": alerts,
        "healthy": not alerts,
        "alerts": alerts,
        "notices": notices,
        "thresholds": {"fail_after": fail_after, "max_lag_hours": max_lag_hours},
        "database": {
            "path": path,
            "size_bytes": sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)),
            **store.count_rows(db),
        },
        "running": {"pid": holder.pid, "command": holder.command, "since": holder.since} if holder else None,
        "last_crawl": last_crawl,
        "schedule": next_runs(config, now),
        "sources": sources,
        "last_digest": dict(last_digest, deliveries=deliveries) if last_digest else None,
        "recipients": recipients,
    }


def _overdue_digests(config, db, now: dt.datetime) -> list[str]:
    """A recipient whose digest is more than a day late: ``period_days`` + 1 day since the last digest
    that reached it, or since the first crawl when none ever did."""
    period = dt.timedelta(days=config.digest["period_days"])
    first_crawl = store.load_first_crawl_started_at(db)
    reasons = []
    for recipient in recipients_of(config):
        last = store.load_last_delivered_digest(db, recipient["address"])
        since = _parse(last["period_end"]) if last else _parse(first_crawl)
        if since is None or now - since <= period + dt.timedelta(days=1):
            continue
        late = int((now - since - period).total_seconds())
        what = f"the last one reached it {_iso(since)}" if last else f"none has reached it since the first crawl {_iso(since)}"
        reasons.append(
            f"digest for {recipient['address']}: overdue by {_duration(late)} ({what}; due every {config.digest['period_days']} "
            "days) — check that `litmon run` or `litmon serve` runs"
        )
    return reasons


def _database_problems(config, lock_held: bool, storage_checked: bool = False) -> list[str]:
    from crawler.errors import LitmonError
    from crawler.maintenance import check_database

    try:
        return check_database(config.database_path, quick=True, lock_held=lock_held, storage_checked=storage_checked).problems
    except LitmonError as exc:
        return [str(exc)]


def next_runs(config, now: dt.datetime) -> dict:
    """When `litmon serve` runs next, in UTC and in the configured time zone."""
    tz = cron.parse_timezone(config.schedule["timezone"])
    result = {"timezone": config.schedule["timezone"]}
    for job in ("crawl", "digest"):
        fire = cron.next_fire_time(cron.parse_cron(config.schedule[job], tz), now)
        result[job] = {
            "cron": config.schedule[job],
            "next_at": _iso(fire.astimezone(dt.UTC)) if fire else None,
            "next_local": fire.isoformat() if fire else None,
        }
    return result


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def render_status(info: dict) -> str:
    db = info["database"]
    lines = [
        f"database: {db['path']} ({db['size_bytes'] / 1e6:.1f} MB), {db['works']} works, {db['records']} records, "
        f"{db['digests']} digests, {db['crawl_runs']} crawl runs"
    ]
    running = info["running"]
    lines.append(
        f"running now: pid {running['pid']} (litmon {running['command']}, since {running['since']})"
        if running
        else "running now: nothing"
    )
    crawl = info["last_crawl"]
    if crawl:
        lines.append(
            f"last crawl: #{crawl['id']} {crawl['status']} ({crawl['trigger']}), started {crawl['started_at']}"
            + (f" — {crawl['note']}" if crawl.get("note") else "")
        )
    sched = info["schedule"]
    lines.append(
        f"next scheduled (litmon serve, {sched['timezone']}): crawl {sched['crawl']['next_local']}, digest {sched['digest']['next_local']}"
    )
    lines.append("")
    lines.append(
        f"{'source':34} {'on':3} {'records':>8}  {'fetched/kept':>13}  {'last success':20}  {'lag':>7}  {'last failure':20}  "
        f"{'fails':>5}  last error"
    )
    for s in info["sources"]:
        error = (s["last_error"] or "")[:80] if s["consecutive_failures"] else ""
        run = s["last_run"]
        last = f"{run['fetched']}/{run['kept']}" if run and run.get("kept") is not None else "-"
        lines.append(
            f"{s['source'][:34]:34} {'yes' if s['enabled'] else 'no':3} {s['records']:>8}  {last:>13}  "
            f"{s['last_success_at'] or '-':20}  {_duration(s['lag_seconds']):>7}  {s['last_failure_at'] or '-':20}  "
            f"{s['consecutive_failures']:>5}  {error}"
        )
    lines.append("")
    d = info["last_digest"]
    if d:
        lines.append(
            f"last digest: #{d['id']} made {d['created_at']}, {d['item_count']} item(s), period {d['period_start'][:10]} to {d['period_end'][:10]}"
        )
    else:
        lines.append("last digest: none yet")
    for r in info["recipients"]:
        lines.append(
            f"  {r['recipient']}: last {r['last_status']} {r['last_attempt_at']} (digest #{r['last_digest_id']}), "
            f"last delivered {r['last_delivered_at'] or 'never'}" + (f" — {r['error']}" if r["error"] else "")
        )
    lines.append("")
    if info["notices"]:
        lines.append(f"notices ({len(info['notices'])}; they do not make status unhealthy):")
        lines.extend(f"  {notice}" for notice in info["notices"])
    if info["alerts"]:
        lines.append(f"UNHEALTHY ({len(info['alerts'])} alert(s)):")
        lines.extend(f"  {alert}" for alert in info["alerts"])
    else:
        t = info["thresholds"]
        lines.append(
            f"healthy (alerts at {t['fail_after'] or 'no'} failures in a row, {t['max_lag_hours'] or 'no'} h without success)"
        )
    return "\n".join(lines)
