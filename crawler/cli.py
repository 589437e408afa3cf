"""Command line: ``litmon run | crawl | digest | status``.

Exit codes: 0 all good; 1 a source or a delivery failed (the others still ran); 2 usage or
configuration error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

import click

from crawler import __version__, store
from crawler.config import load_config
from crawler.errors import ConfigError, LitmonError

log = logging.getLogger("crawler")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def setup_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S", force=True)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


class State:
    def __init__(self, config_path):
        self.config_path = config_path
        self._config = None

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def open_db(self):
        return store.open_db(self.config.database_path)


def _progress_printer():
    if not sys.stderr.isatty():
        return None

    def show(name, counts):
        sys.stderr.write(f"\r{name}: {counts['fetched']} fetched, {counts['new']} new, {counts['updated']} updated   ")
        sys.stderr.flush()

    return show


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", help="Config file (default: $LITMON_CONFIG, ./litmon.toml, then the shipped default).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Less log output (warnings and errors only).")
@click.version_option(__version__, prog_name="litmon")
@click.pass_context
def cli(ctx, config_path, verbose, quiet):
    """litmon — monitor the literature on a topic (by default ketamine and esketamine for depression).

    Crawls PubMed, Europe PMC, ClinicalTrials.gov, medRxiv/bioRxiv, Crossref, ISRCTN, OpenAlex, journal
    and regulatory feeds and HTML pages into one deduplicated SQLite file, and writes or mails a digest.
    """
    setup_logging(verbose, quiet)
    ctx.obj = State(config_path)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Fetch and report, but write nothing (no database rows, no digest).")
@click.option("--force-digest", is_flag=True, help="Make a digest even if the period has not elapsed.")
@click.pass_obj
def run(state, dry_run, force_digest):
    """Crawl every enabled source, then make the digest if one is due (the cron job)."""
    from crawler import digest as digest_mod
    from crawler import pipeline

    config = state.config
    db = state.open_db() if not dry_run else _open_for_dry_run(config)
    report = pipeline.crawl(config, db, dry_run=dry_run, trigger="run", progress=_progress_printer())
    _print_crawl_report(report)
    failed = bool(report.failed)
    if force_digest or digest_mod.digest_due(db, config):
        result = digest_mod.run_digest(config, db, dry_run=dry_run)
        _print_digest_result(result, dry_run)
        failed = failed or result.failed
    else:
        click.echo("digest: not due yet (see [digest].period_days); use --force-digest to make one now")
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@cli.command()
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only this source (repeatable): pubmed, europepmc, clinicaltrials, biorxiv, crossref, isrctn, openalex, feed:<name>, page:<name>, feeds, pages.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Start the window at this date (YYYY-MM-DD) instead of the watermark.")
@click.option("--dry-run", is_flag=True, help="Fetch and parse, report what would be new, write nothing.")
@click.pass_obj
def crawl(state, sources, since, dry_run):
    """Fetch new and changed records from the sources into the database."""
    from crawler import pipeline

    config = state.config
    db = state.open_db() if not dry_run else _open_for_dry_run(config)
    report = pipeline.crawl(config, db, only=list(sources) or None, since=since.date() if since else None,
                            dry_run=dry_run, trigger="crawl", progress=_progress_printer())
    _print_crawl_report(report)
    sys.exit(EXIT_FAILED if report.failed else EXIT_OK)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Build the digest and print its summary; send, write and record nothing.")
@click.pass_obj
def digest(state, dry_run):
    """Make the digest of everything new since the last one, and send it (or write it to the outbox)."""
    from crawler import digest as digest_mod

    config = state.config
    db = state.open_db() if not dry_run else _open_for_dry_run(config)
    result = digest_mod.run_digest(config, db, dry_run=dry_run)
    _print_digest_result(result, dry_run)
    sys.exit(EXIT_FAILED if result.failed else EXIT_OK)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(state, as_json):
    """Show each source's last success, last error and counts, and the last digest."""
    from crawler import status as status_mod

    config = state.config
    try:
        db = store.open_db(config.database_path, create=False)
    except FileNotFoundError:
        raise LitmonError(f"no database at {config.database_path} yet — run `litmon run` or `litmon crawl` first") from None
    info = status_mod.collect_status(config, db)
    click.echo(json.dumps(info, indent=2) if as_json else status_mod.render_status(info))


def _open_for_dry_run(config):
    """A dry run reads the existing database (to tell new from known) but never writes to it."""
    if config.database_path.exists():
        return store.open_db(config.database_path)
    return store.memory_db()


def _print_crawl_report(report):
    # one summary line per source is already logged by the pipeline
    if report.failed:
        click.echo(f"{len(report.failed)} source(s) failed: {', '.join(s.name for s in report.failed)}", err=True)


def _print_digest_result(result, dry_run):
    d = result.digest
    if result.skipped_reason:
        click.echo(f"digest: skipped ({result.skipped_reason})")
        return
    prefix = "digest (dry run)" if dry_run else f"digest {result.digest_id}"
    click.echo(f"{prefix}: {len(d.items)} item(s), {d.period_start[:10]} to {d.period_end[:10]}: {d.subject}")
    for delivery in result.deliveries:
        where = delivery.get("path") or delivery["recipient"]
        click.echo(f"  {delivery['status']}: {where}" + (f" — {delivery['error']}" if delivery.get("error") else ""))


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="litmon", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILED)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        click.echo(f"litmon: configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except LitmonError as exc:
        click.echo(f"litmon: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(EXIT_OK)
