"""Shared test fixtures: a real SQLite file, a real HTTP client, configs pointing at loopback servers."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

from crawler import clock, store
from crawler.config import parse_config
from crawler.http import HttpClient
from crawler.pipeline import crawl
from tests.helpers.smtp import Recorder

FIXTURES = Path(__file__).parent / "fixtures"

BASE_CONFIG = """
contact_email = "tester@example.org"
extends = "none"
[database]
path = "{db}"
[outbox]
dir = "{outbox}"
[crawl]
backfill_from = 2024-01-01
overlap_days = 3
[topic]
match_terms = ["ketamin", "esketamin", "arketamin", "spravato"]
[http]
max_retries = 2
backoff_seconds = 0.01
default_min_interval = 0
"""


def fixture_bytes(source: str, name: str) -> bytes:
    return (FIXTURES / source / name).read_bytes()


@pytest.fixture
def make_config(tmp_path):
    """Build a Config from the base text plus extra TOML (e.g. one source pointing at httpserver)."""

    def _make(extra: str = ""):
        text = BASE_CONFIG.format(db=tmp_path / "litmon.db", outbox=tmp_path / "outbox") + extra
        return parse_config(text, str(tmp_path / "litmon.toml"))

    return _make


@pytest.fixture
def db(tmp_path):
    database = store.open_db(tmp_path / "litmon.db")
    yield database
    database.close()


@pytest.fixture
def http_client():
    return HttpClient("tester@example.org", max_retries=2, backoff_seconds=0.01, default_min_interval=0, read_timeout=10)


@pytest.fixture
def run_crawl(db, http_client):
    """Crawl with the pipeline into the test database; returns the CrawlReport."""

    def _run(config, only=None, since=None, dry_run=False):
        return crawl(config, db, http=http_client, only=only, since=since, dry_run=dry_run)

    return _run


def rows(db, sql, params=()):
    return [dict(r) for r in db.query(sql, params)]


def dump_tables(db) -> dict[str, list]:
    """Every row of every table, in rowid order (but the migrations' own log, stamped with the wall clock)."""
    tables = [
        r["name"]
        for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        if r["name"] != "_sqlite_migrations"
    ]
    found = {}
    for table in tables:
        try:
            found[table] = [tuple(r) for r in db.conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
        except sqlite3.OperationalError:  # WITHOUT ROWID tables and FTS shadow tables
            found[table] = sorted(tuple(r) for r in db.conn.execute(f"SELECT * FROM {table}"))
    return found


#: The instant every test runs at unless it moves the clock itself (``clock.pin``/``clock.advance``).
PINNED_NOW = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.UTC)


#: The loopback servers (pytest_httpserver's werkzeug) log each request they answer. Left to itself, werkzeug gives its
#: logger a handler bound to the ``sys.stderr`` of the moment it first logs (a stream pytest captures and later closes),
#: and a request answered after that (a held request released as its test ends, a worker's prefetch cut short) printed
#: a "--- Logging error ---" traceback into CI's output. With a handler of its own, werkzeug adds none: its records go to
#: the root logger, which pytest captures (shown with a failing test's log).
logging.getLogger("werkzeug").addHandler(logging.NullHandler())


@pytest.fixture
def httpserver(make_httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """pytest_httpserver's loopback server (one for the session, cleared for each test), done with every request of
    the test before the next test starts. A request a test held in its handler (a page that takes long, released as
    the test ends) was otherwise answered while the next test ran: added to that test's ``httpserver.log`` after its
    clear (an efetch page 2 among the next test's requests) and logged outside any test. The server answers one
    request at a time, so its answer to one more request means it is done with those before."""
    server = make_httpserver
    server.clear()
    yield server
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # (never through a proxy of the environment)
    with contextlib.suppress(urllib.error.HTTPError):  # (no handler for it: a 500)
        direct.open(server.url_for("/settled"), timeout=60).close()


#: ``LITMON_TEST_TRAVEL_DAYS=N`` moves the machine's wall clock N days ahead for the whole session
#: (time-machine): CI runs the in-process tests again at +400 and +1200 days, so that code reading the
#: wall clock instead of crawler.clock, or a test that only passes near today, fails now rather than
#: next year. Tests that run litmon in a subprocess are skipped then (the travel does not reach a
#: subprocess; they see LITMON_NOW like every day).
TRAVEL_DAYS = int(os.environ.get("LITMON_TEST_TRAVEL_DAYS") or 0)


@pytest.fixture(autouse=True, scope="session")
def travelled_wall_clock():
    if not TRAVEL_DAYS:
        yield None
        return
    import time_machine

    destination = dt.datetime.now(dt.UTC) + dt.timedelta(days=TRAVEL_DAYS)
    with time_machine.travel(destination, tick=True):
        yield destination


def skip_subprocess_when_travelling() -> None:
    """Called by the helpers that start litmon as a subprocess."""
    if TRAVEL_DAYS:
        pytest.skip(f"runs litmon in a subprocess, which the wall-clock travel (+{TRAVEL_DAYS} days) cannot reach")


def pytest_report_header(config):
    return f"wall clock travelled +{TRAVEL_DAYS} days (LITMON_TEST_TRAVEL_DAYS)" if TRAVEL_DAYS else None


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    """Pin litmon's one clock (crawler.clock) for every test: the suite passes on any date.

    Subprocesses (CLI tests) see the same instant through ``LITMON_NOW``. Yields the pinned
    instant; a test moves it with ``clock.pin(...)`` or ``clock.advance(days=...)``.
    """
    clock.pin(PINNED_NOW)
    monkeypatch.setenv("LITMON_NOW", clock.stamp(PINNED_NOW))
    yield PINNED_NOW
    clock.pin(None)


@pytest.fixture
def real_clock(pinned_clock, monkeypatch):
    """Unpin the clock, for tests of real-time behaviour (``litmon serve`` under APScheduler)."""
    clock.pin(None)
    monkeypatch.delenv("LITMON_NOW", raising=False)


@pytest.fixture
def today(pinned_clock):
    return clock.today()


@pytest.fixture
def smtp_server():
    """Start real SMTP servers (aiosmtpd) on loopback: ``handler, port = smtp_server(reject=…, …)``.

    By default the handler is a ``Recorder``; ``handler=`` serves another one (e.g. one that misbehaves after the 250)."""
    servers = []

    def _start(reject=False, transient_failures=0, handler=None, **controller_options):
        if handler is None:
            handler = Recorder(reject, transient_failures)
        if controller_options.pop("auth", False):
            controller_options.update(authenticator=handler.authenticate, auth_require_tls=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(handler, hostname="127.0.0.1", port=port, **controller_options)
        controller.start()
        servers.append(controller)
        return handler, port

    yield _start
    for controller in servers:
        controller.stop()
