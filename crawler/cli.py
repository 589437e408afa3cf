"""Command line: ``litmon run | crawl | digest | serve | status | backup | check | config | reclassify | search | export``.

Exit codes (documented in README.md, "Command line"):

0 all good (`run`: also when every failure is a source below ``[status] fail_after``); 1 `run`: a
source crossed ``fail_after`` or never succeeded, a delivery failed, or the run was interrupted by
SIGTERM/SIGINT (`crawl`/`digest`: any failure; `check`/`backup`: a problem); 2 usage or configuration
error (an unknown key, source name or digest id included); 3 another litmon run holds the lock (this
one did nothing); 4 `status`: unhealthy (see crawler.status).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path

import click

from crawler import __version__, dbguard, ingest
from crawler.config import load_config
from crawler.errors import ConfigError, LitmonError, LockedError, UsageError
from crawler.lock import RunLock, lock_path
from crawler.logs import FORMATS, mask_secrets, register_config_secrets, resolve_format, setup_logging

log = logging.getLogger("crawler")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_UNHEALTHY = 0, 1, 2, 3, 4

#: the configured database path, for error messages outside a command's own handling
_DATABASE_HINT: list[str | Path] = ["litmon.db"]


class State:
    def __init__(self, config_path, quiet=0):
        self.config_path = config_path
        self.quiet = quiet
        self._config = None

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.config_path)
            register_config_secrets(self._config)
            _DATABASE_HINT[0] = self._config.database_path
        return self._config

    def open_db(self):
        return ingest.open_db(self.config.database_path, busy_timeout=self.config.database_busy_timeout)

    def say(self, text: str) -> None:
        """An informational line on stdout, left out with -q (cron mails only what matters)."""
        if not self.quiet:
            click.echo(text)

    @contextlib.contextmanager
    def writing(self, command: str, dry_run: bool = False, first=None):
        """Hold the run lock (unless dry run) and yield (db, stop): stop is set by SIGTERM/SIGINT. ``first`` (a
        :class:`crawler.pipeline.FirstSource`, not in a dry run): the first source's fetch worker forked before the
        database is opened, stopped when the block ends unless the crawl took it."""
        config = self.config
        stop = threading.Event()
        if dry_run:
            db = _open_for_dry_run(config)
            try:
                yield db, stop
            finally:
                db.close()
            return
        lock = RunLock(lock_path(config.database_path), command)
        try:
            lock.acquire()
        except OSError as exc:  # the lock file sits beside the database: a missing or read-only directory
            raise dbguard.explain(exc, config.database_path) from None
        try:
            with _stop_on_signals(stop):
                try:
                    dbguard.ensure_sound(config.database_path)  # never write into a damaged file
                    with first.running(stop) if first is not None else contextlib.nullcontext():
                        db = self.open_db()
                        try:
                            from crawler.pipeline import recover_interrupted_runs

                            recover_interrupted_runs(db)
                            yield db, stop
                        finally:
                            db.close()
                except (sqlite3.Error, OSError) as exc:
                    error = dbguard.explain(exc, config.database_path, busy_seconds=config.database_busy_timeout)
                    dbguard.record_failure(config.database_path, command, str(error))
                    raise error from None
                except (dbguard.DamagedDatabase, dbguard.LocalStateError) as exc:
                    dbguard.record_failure(config.database_path, command, str(exc))
                    raise
                except SystemExit:
                    dbguard.clear_failure(config.database_path)
                    raise
                dbguard.clear_failure(config.database_path)
        finally:
            lock.release()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """The first SIGTERM/SIGINT asks the work to stop at the next safe point; a second one exits now."""

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log.warning(
            "%s received: stopping now (a network wait or pause in progress ends at once; committed batches are kept)", name
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _progress_printer():
    if not sys.stderr.isatty():
        return None

    def show(name, counts):
        sys.stderr.write(f"\r{name}: {counts['fetched']} fetched, {counts['new']} new, {counts['updated']} updated   ")
        sys.stderr.flush()

    return show


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $LITMON_CONFIG, ./litmon.toml, then the shipped default).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Less output: warnings and errors only (and no informational lines on stdout).")
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default=None,
    help="Log lines as human-readable text (default) or JSON lines (default from $LITMON_LOG_FORMAT).",
)
@click.version_option(__version__, prog_name="litmon")
@click.pass_context
def cli(ctx, config_path, verbose, quiet, log_format):
    """litmon — monitor the literature on a topic (by default ketamine and esketamine for depression).

    Crawls PubMed, Europe PMC, ClinicalTrials.gov, medRxiv/bioRxiv, Crossref, ISRCTN, OpenAlex, journal
    and regulatory feeds and HTML pages into one deduplicated SQLite file, and writes or mails a digest.
    """
    try:
        fmt = resolve_format(log_format)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    setup_logging(verbose, quiet, fmt)
    ctx.obj = State(config_path, quiet)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Fetch and report, but write nothing (no database rows, no digest).")
@click.option("--force-digest", is_flag=True, help="Make a digest even if the period has not elapsed.")
@click.pass_obj
def run(state, dry_run, force_digest):
    """Crawl every enabled source, then make the digest if one is due (the cron job).

    The digest is due when [digest] period_days have passed since the last one. Takes the run lock:
    if another litmon run holds it, exits 3 at once without doing anything.

    Exit 0 when every failure is a source below its [status] fail_after threshold (one flaky run of
    one feed pages nobody) and the digest, if due, went out; 1 when a source failed fail_after runs in
    a row or has never succeeded, a delivery failed, or the run was interrupted.
    """
    from crawler import pipeline

    config = state.config
    progress = _progress_printer()
    first = None if dry_run else pipeline.FirstSource(config, progress=progress)
    with state.writing("run", dry_run, first) as (db, stop):
        report = pipeline.crawl(config, db, dry_run=dry_run, trigger="run", progress=progress, stop=stop, first=first)
        # imported after the crawl: the digest's modules (jinja2 among them) are not wanted before the fetch
        # worker's fork, where this process runs alone
        from crawler import digest as digest_mod

        crossed = _print_crawl_report(report, config.status["fail_after"])
        failed = bool(crossed)
        if report.interrupted or stop.is_set():
            click.echo("run interrupted: the digest was not made; the next run resumes from the saved watermarks", err=True)
            sys.exit(EXIT_FAILED)
        if force_digest or digest_mod.digest_due(db, config):
            result = digest_mod.run_digest(config, db, dry_run=dry_run, only_due=not force_digest)
            _print_digest_result(state, result, dry_run)
            failed = failed or result.failed
        else:
            state.say("digest: not due yet (see [digest].period_days); use --force-digest to make one now")
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def sources_option(help_text: str):
    """``--source NAME`` (repeatable), passed to the command as ``sources``."""
    return click.option("--source", "sources", multiple=True, metavar="NAME", help=help_text)


@cli.command()
@sources_option(
    "Only this source (repeatable): pubmed, europepmc, clinicaltrials, biorxiv, crossref, isrctn, ctis, openalex, feed:<name>, page:<name>, feeds, pages."
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Start the window at this date (YYYY-MM-DD) instead of the watermark.",
)
@click.option("--dry-run", is_flag=True, help="Fetch and parse, report what would be new, write nothing.")
@click.pass_obj
def crawl(state, sources, since, dry_run):
    """Fetch new and changed records from the sources into the database (takes the run lock)."""
    from crawler import pipeline

    config = state.config
    only, since = list(sources) or None, since.date() if since else None
    pipeline.select_sources(config, only)  # an unknown name is a usage error (2) before anything
    progress = _progress_printer()
    first = None if dry_run else pipeline.FirstSource(config, only=only, since=since, progress=progress)
    with state.writing("crawl", dry_run, first) as (db, stop):
        report = pipeline.crawl(
            config, db, only=only, since=since, dry_run=dry_run, trigger="crawl", progress=progress, stop=stop, first=first
        )
    _print_crawl_report(report)
    sys.exit(EXIT_FAILED if report.failed or report.interrupted else EXIT_OK)


@cli.command()
@sources_option("Only this source (repeatable), as for `litmon crawl`; default: every enabled source.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.pass_obj
def doctor(state, sources, as_json):
    """Check that every enabled source answers and parses, with one tiny live request each.

    Run it first on a new machine. Each source fetches the current week with one record per request
    (at most two requests: a search and a record where the API needs both), through the same HTTP
    client and parsers as a crawl; nothing is written. Prints per source: reachable, HTTP status,
    parse ok, the record fields present, and the rate-limit headers the service sent. Exits 1 when
    any source is unreachable, answers an HTTP error, or cannot be parsed; 0 otherwise.
    """
    import json as json_mod

    from crawler import doctor as doctor_mod

    results = doctor_mod.run_doctor(state.config, list(sources) or None)
    if as_json:
        click.echo(json_mod.dumps([r.to_dict() for r in results], indent=2))
    else:
        click.echo(mask_secrets(doctor_mod.render(results)))
    sys.exit(EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Build the digests and print their summary; send, write and record nothing.")
@click.option(
    "--preview",
    is_flag=True,
    help="Write the next digest's HTML into the outbox folder and print its path; record and send nothing.",
)
@click.option("--resend", "resend_id", type=int, metavar="ID", help="Deliver the stored digest ID again (ids: `litmon status`).")
@click.pass_obj
def digest(state, dry_run, preview, resend_id):
    """Make the digest of everything new and changed since each recipient's last one, and send it
    (or write it to the outbox).

    Makes it now, whatever [digest] period_days says (takes the run lock).
    """
    from crawler import digest as digest_mod

    config = state.config
    if preview:
        db = _open_for_dry_run(config)
        try:
            path, d = digest_mod.write_preview(config, db)
        finally:
            db.close()
        click.echo(str(path))
        state.say(f"preview for {d.recipient}: {len(d.items)} item(s): {d.subject}")
        return
    with state.writing("digest", dry_run) as (db, stop):
        if resend_id is not None:
            delivery = digest_mod.resend(config, db, resend_id, dry_run=dry_run)
            result = digest_mod.DigestResult(deliveries=[delivery] if not dry_run else [])
            state.say(f"digest {resend_id}: resend to {delivery.recipient}: {delivery.status}")
        else:
            result = digest_mod.run_digest(config, db, dry_run=dry_run)
    _print_digest_result(state, result, dry_run)
    sys.exit(EXIT_FAILED if result.failed else EXIT_OK)


@cli.command()
@click.option(
    "--no-catch-up", is_flag=True, help="Do not run at start the crawl and digest the schedule missed while the service was down."
)
@click.option(
    "--dry-run", is_flag=True, help="Keep the schedule, but each job only fetches and builds the digest: writes nothing."
)
@click.pass_obj
def serve(state, no_catch_up, dry_run):
    """Run as a service: crawl and digest on the [schedule] cron expressions until SIGTERM/SIGINT.

    At start it catches up a crawl and a digest the schedule missed while it was down (the first
    start crawls at once). Each job takes the run lock. SIGTERM/SIGINT: the current batch is
    committed, the lock released, exit 0.
    """
    from crawler.scheduler import Service

    sys.exit(Service(state.config, catch_up=not no_catch_up, dry_run=dry_run).run())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (for monitoring).")
@click.option(
    "--fail-after",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Exit 4 when an enabled source has failed N runs in a row (default [status] fail_after; 0 = never).",
)
@click.option(
    "--max-lag-hours",
    type=click.IntRange(min=0),
    default=None,
    metavar="H",
    help="Exit 4 when an enabled source has not succeeded for H hours (default [status] max_lag_hours; 0 = never).",
)
@click.pass_obj
def status(state, as_json, fail_after, max_lag_hours):
    """Show each source's health (last success, failure, lag, counts), the database, the next
    scheduled runs and the last digest per recipient. Exits 4, with one line per reason, when litmon
    is unhealthy: a source never succeeded, failed [status] fail_after runs in a row or lags past
    max_lag_hours; a delivery failed and was not retried successfully; a digest is overdue by more
    than a day; the database check fails."""
    from crawler import status as status_mod

    config = state.config
    if not config.database_path.exists():
        raise LitmonError(f"no database at {config.database_path} yet — run `litmon run` or `litmon crawl` first")
    try:
        problems = dbguard.check_integrity(config.database_path)
        unreadable: LitmonError | None = dbguard.DamagedDatabase(config.database_path, problems) if problems else None
    except dbguard.LocalStateError as exc:  # e.g. a read-only directory: a WAL database cannot even be read
        unreadable = exc
    if unreadable is not None:  # the file cannot be trusted or read: say so (unhealthy, exit 4), read no further
        info = {
            "verdict": "unhealthy",
            "reasons": [str(unreadable)],
            "healthy": False,
            "alerts": [str(unreadable)],
            "database": {"path": str(config.database_path)},
        }
        click.echo(json.dumps(info, indent=2) if as_json else f"UNHEALTHY: {unreadable}")
        sys.exit(EXIT_UNHEALTHY)
    try:
        db = ingest.open_db(config.database_path, create=False, busy_timeout=config.database_busy_timeout)
    except FileNotFoundError:
        raise LitmonError(f"no database at {config.database_path} yet — run `litmon run` or `litmon crawl` first") from None
    try:
        info = status_mod.collect_status(config, db, fail_after=fail_after, max_lag_hours=max_lag_hours, storage_checked=True)
    finally:
        db.close()
    click.echo(json.dumps(info, indent=2) if as_json else status_mod.render_status(info))
    sys.exit(EXIT_UNHEALTHY if info["alerts"] else EXIT_OK)


@cli.group("config")
def config_group():
    """Show or check the configuration (touches no network, writes nothing).

    Your file is layered over the shipped defaults: tables merge key by key, an array of tables
    ([[feeds]], [[pages]], [[recipients]]) replaces the shipped list. Unknown keys are errors (exit 2).
    """


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def config_show(state, as_json):
    """Print the effective configuration, secrets masked, and where each value came from."""
    from crawler import configshow

    config = state.config
    rows = configshow.effective_config(config)
    if as_json:
        click.echo(json.dumps({"layers": config.layers, "settings": rows}, indent=2, default=str))
    else:
        click.echo(configshow.render_show(config, rows))


@config_group.command("check")
@click.pass_obj
def config_check(state):
    """Validate the configuration (types, ranges, unknown keys, cron expressions) without touching the
    network: exit 0 when it is valid, 2 naming the file, the key and the closest valid key when not."""
    from crawler import configshow

    for line in configshow.check_summary(state.config):
        click.echo(line, err=line.lstrip().startswith("warning:"))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.option("--dry-run", is_flag=True, help="Say where the copy would go; copy nothing.")
@click.pass_obj
def backup(state, path, force, dry_run):
    """Copy the database to PATH (a file, or a directory for a timestamped file) with SQLite's
    online backup API; safe while litmon runs. The copy is integrity-checked before it is renamed
    into place."""
    from crawler import maintenance

    database = state.config.database_path
    target = maintenance.backup_target(database, path)
    if dry_run:
        state.say(f"backup (dry run): {database} would be copied to {target}")
        return
    result = maintenance.backup_database(database, target, overwrite=force)
    state.say(f"backup: {database} copied to {result['path']} ({result['size_bytes'] / 1e6:.1f} MB, integrity ok)")


@cli.command()
@click.option("--quick", is_flag=True, help="PRAGMA quick_check instead of the full integrity_check.")
@click.pass_obj
def check(state, quick):
    """Check the database: SQLite integrity and foreign keys, and litmon's own consistency (records,
    works, identifiers). Reads only; exits 1 when something is wrong."""
    from crawler import lock, maintenance

    database = state.config.database_path
    held = lock.probe(lock_path(database)) is not None
    result = maintenance.check_database(database, quick=quick, lock_held=held)
    for note in result.notes:
        state.say(f"check: {note}")
    for problem in result.problems:
        click.echo(f"check: PROBLEM: {problem}", err=True)
    if not result.ok:
        click.echo(
            "check: the database has problems — restore a backup (litmon backup) or report this with the output above", err=True
        )
        sys.exit(EXIT_FAILED)
    state.say(f"check: {database} is consistent")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Classify and report what would change; write nothing.")
@click.pass_obj
def reclassify(state, dry_run):
    """Recompute relevance, tags and rank of every work (run it after changing the [topic] vocabulary;
    takes the run lock).

    Works are also classified as they are crawled; this redoes all of them with the current
    configuration. Results: tables work_relevance and work_tags (README, "Relevance, tags and rank").
    """
    from crawler import classify

    config = state.config
    if not config.database_path.exists():
        raise LitmonError(f"no database at {config.database_path} yet — run `litmon run` or `litmon crawl` first")
    with state.writing("reclassify", dry_run) as (db, stop):
        report = classify.reclassify(db, config, dry_run=dry_run)
    labels = ", ".join(f"{count} {label.replace('_', ' ')}" for label, count in report.labels.items())
    click.echo(
        f"{'reclassify (dry run, nothing written)' if dry_run else 'reclassified'}: {report.works} work(s): {labels}; "
        f"{len(report.changed)} relevance change(s), {report.tags_changed} work(s) with changed tags"
    )
    for work_id, old, new in report.changed[:20]:
        click.echo(f"  work {work_id}: {old or 'unclassified'} -> {new}")
    if len(report.changed) > 20:
        click.echo(f"  … and {len(report.changed) - 20} more")


RECORD_TYPES_CHOICE = click.Choice(["article", "preprint", "trial_registration", "notice", "news", "other"])


def _date_option(value: str | None) -> str | None:
    """A --since value: YYYY-MM-DD (or a full timestamp) as stored; anything else is a usage error."""
    if value is None:
        return None
    import datetime as dt

    from crawler import clock

    try:
        if len(value.strip()) == 10:
            return dt.date.fromisoformat(value.strip()).isoformat()
        return clock.stamp(clock.parse_stamp(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or a timestamp", param_hint="--since") from None


def _open_for_reading(state):
    try:
        return ingest.open_db(state.config.database_path, create=False)
    except FileNotFoundError:
        raise LitmonError(f"no database at {state.config.database_path} yet — run `litmon run` or `litmon crawl` first") from None


@cli.command()
@click.argument("query")
@click.option("--since", metavar="DATE", help="Only works first seen on or after DATE (YYYY-MM-DD).")
@click.option("--tag", metavar="T", help="Only works with tag T (e.g. rct, meta_analysis, intranasal_esketamine).")
@click.option("--type", "record_type", type=RECORD_TYPES_CHOICE, help="Only works of this record type.")
@click.option(
    "--relevance", type=click.Choice(["relevant", "uncertain", "not_relevant", "all"]), default="all", show_default=True
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, metavar="N", help="At most N results.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result (work fields, score, snippet).")
@click.pass_obj
def search(state, query, since, tag, record_type, relevance, limit, as_json):
    """Full-text search of every current work's title, abstract, authors, journal, keywords and MeSH.

    QUERY uses SQLite FTS5 syntax: words (all must match; English stemming: "depressive" finds
    "depression"), "exact phrases", prefix*, OR, NOT, NEAR(a b), and column filters such as
    title:esketamine. Results are ranked by bm25 (a title match counts most), with a snippet in which
    matches are marked **like this**."""
    from crawler import store

    db = _open_for_reading(state)
    try:
        found = store.search_works(
            db, query, since=_date_option(since), tag=tag, record_type=record_type, relevance=relevance, limit=limit
        )
    finally:
        db.close()
    if as_json:
        for row in found:
            row["tags"] = json.loads(row.get("tags") or "[]")
            row["evidence_types"] = json.loads(row.get("evidence_types") or "[]")
            row["publication_types"] = json.loads(row.get("publication_types") or "[]")
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not found:
        state.say(f"search: nothing matches {query!r}")
        return
    for n, row in enumerate(found, 1):
        ident = next(
            (f"{label}:{row[key]}" for label, key in (("doi", "doi"), ("pmid", "pmid"), ("trial", "trial_id")) if row.get(key)),
            "",
        )
        details = ", ".join(
            p for p in (row.get("first_author"), row.get("journal"), (row.get("published_on") or "")[:10], ident) if p
        )
        click.echo(f"{n:>3}. [{row['work_id']}] {row['title']}")
        click.echo(f"     {row['record_type']}; {details}; relevance {row.get('relevance') or 'unclassified'}")
        snippet = " ".join((row.get("snippet") or "").split())
        if snippet:
            click.echo(f"     {snippet}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["ris", "bibtex", "csv", "json", "csljson"]), required=True)
@click.option("--since", metavar="DATE", help="Only works first seen on or after DATE (YYYY-MM-DD).")
@click.option("--tag", metavar="T", help="Only works with tag T.")
@click.option("--type", "record_type", type=RECORD_TYPES_CHOICE, help="Only works of this record type.")
@click.option("--query", "query", metavar="Q", help="Only works matching the full-text search Q (as `litmon search`).")
@click.option(
    "--relevance",
    type=click.Choice(["relevant", "uncertain", "not_relevant", "all"]),
    default="all",
    show_default=True,
    help="Only works with this relevance label (all: every work, classified or not).",
)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file (default: stdout).")
@click.option("--dry-run", is_flag=True, help="Count what would be exported; write nothing.")
@click.pass_obj
def export(state, fmt, since, tag, record_type, query, relevance, output, dry_run):
    """Export current works for reference managers (RIS for Zotero/EndNote/Rayyan/Covidence, BibTeX,
    CSL-JSON) or analysis (CSV, JSON): structured authors, journal and abbreviation, date, volume, issue,
    pages, DOI, PMID, PMCID, trial number, URL, abstract, keywords, MeSH and litmon's tags."""
    from crawler import export as export_mod
    from crawler import store

    db = _open_for_reading(state)
    try:
        works = store.load_export_works(
            db, since=_date_option(since), tag=tag, query=query, relevance=relevance, record_type=record_type
        )
    finally:
        db.close()
    if dry_run:
        state.say(f"export (dry run): {len(works)} work(s) would be written as {fmt}" + (f" to {output}" if output else ""))
        return
    text = export_mod.render(works, fmt)
    if output:
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text, encoding="utf-8", newline="")
        tmp.replace(output)
        click.echo(f"export: {len(works)} work(s) written to {output} ({fmt})", err=True)
    else:
        click.echo(text, nl=False)


def _open_for_dry_run(config):
    """A dry run reads the existing database (to tell new from known) but never writes to it."""
    if config.database_path.exists():
        return ingest.open_db(config.database_path)
    return ingest.memory_db()


def _print_crawl_report(report, fail_after: int | None = None) -> list:
    """One line about the failed sources (each has its own log line); with ``fail_after`` (litmon run),
    the ones that crossed the threshold apart from those that did not. Returns the crossed ones."""
    if not report.failed:
        return []
    if fail_after is None:
        click.echo(f"{len(report.failed)} source(s) failed: {', '.join(s.name for s in report.failed)}", err=True)
        return report.failed
    crossed = report.crossed(fail_after)
    below = [s for s in report.failed if s not in crossed]
    if crossed:
        why = ", ".join(
            f"{s.name} ({'never succeeded' if s.never_succeeded else f'{s.failures_in_a_row} runs in a row'})" for s in crossed
        )
        click.echo(f"{len(report.failed)} source(s) failed: {len(crossed)} need attention: {why}", err=True)
    if below:
        click.echo(
            f"{len(below)} source(s) failed below [status] fail_after = {fail_after} (retried next run, not alarming yet): "
            + ", ".join(f"{s.name} ({s.failures_in_a_row} in a row)" for s in below),
            err=True,
        )
    return crossed


def _print_digest_result(state, result, dry_run):
    for reason in result.skipped:
        state.say(f"digest: skipped {reason}")
    for digest_id, d in result.digests:
        prefix = "digest (dry run)" if dry_run else f"digest {digest_id}"
        state.say(
            f"{prefix} for {d.recipient}: {len(d.items)} item(s), {d.period_start[:10]} to {d.period_end[:10]}: {d.subject}"
        )
    for delivery in result.deliveries:
        where = delivery.path or delivery.recipient
        line = f"  {delivery.status}: {where}" + (f" — {mask_secrets(delivery.error)}" if delivery.error else "")
        click.echo(line, err=True) if delivery.status == "failed" else state.say(line)


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="litmon", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:  # also Ctrl-C / a second SIGTERM
        click.echo("litmon: aborted; SQLite rolled back any unfinished batch and the lock is released", err=True)
        sys.exit(EXIT_FAILED)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        click.echo(f"litmon: configuration error: {mask_secrets(str(exc))}", err=True)
        sys.exit(EXIT_USAGE)
    except UsageError as exc:
        click.echo(f"litmon: {mask_secrets(str(exc))}", err=True)
        sys.exit(EXIT_USAGE)
    except LockedError as exc:
        click.echo(f"litmon: {exc}; this run did nothing and exits {EXIT_LOCKED} (the other run finishes the work)", err=True)
        sys.exit(EXIT_LOCKED)
    except LitmonError as exc:
        click.echo(f"litmon: {mask_secrets(str(exc))}", err=True)
        sys.exit(EXIT_FAILED)
    except (sqlite3.Error, OSError) as exc:
        click.echo(f"litmon: {mask_secrets(str(dbguard.explain(exc, _DATABASE_HINT[0])))}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("litmon: interrupted; SQLite rolled back the unfinished batch, the lock is released", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(EXIT_OK)
