"""Helpers for the tests of unattended operation: litmon subprocesses, a PubMed server that can hold
a request open, and waiting for conditions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from werkzeug import Response

from tests.conftest import fixture_bytes, skip_subprocess_when_travelling
from tests.helpers.cli import litmon_env
from tests.helpers.cli import write_config as write_config  # the ops tests import it from here too
from tests.helpers.ncbi import esearch_body


def pubmed_section(httpserver, extra: str = "") -> str:
    return f"""
[sources.pubmed]
enabled = true
base_url = "{httpserver.url_for("/")}"
query = "ketamine"
batch_size = 2
min_interval = 0
{extra}
"""


class PubMedServer:
    """Serves 3 PubMed records (esearch + 2 efetch batches). ``hold()`` makes esearch wait until
    ``release()``, so that a litmon process stays inside a crawl for as long as a test needs."""

    def __init__(self, httpserver):
        self.httpserver = httpserver
        self.entered = threading.Event()
        self._released = threading.Event()
        self._released.set()
        pages = {"0": fixture_bytes("pubmed", "efetch_batch1.xml"), "2": fixture_bytes("pubmed", "efetch_batch2.xml")}
        httpserver.expect_request("/esearch.fcgi").respond_with_handler(self._esearch)
        httpserver.expect_request("/efetch.fcgi").respond_with_handler(
            lambda r: Response(pages[r.args["retstart"]], content_type="text/xml")
        )

    def hold(self):
        self._released.clear()
        self.entered.clear()

    def release(self):
        self._released.set()

    def _esearch(self, request):
        self.entered.set()
        self._released.wait(30)
        return Response(esearch_body(3 if request.form["datetype"] == "crdt" else 0), content_type="application/json")


def start_litmon(*args, cwd, env=None, log_file: Path | None = None) -> subprocess.Popen:
    """Start litmon; with ``log_file`` its stderr goes there, so a test can watch it while it runs."""
    skip_subprocess_when_travelling()
    stderr = open(log_file, "w") if log_file else subprocess.PIPE
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "crawler", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env or litmon_env(),
        )
    finally:
        if log_file:
            stderr.close()


def log_text(log_file: Path) -> str:
    return Path(log_file).read_text() if Path(log_file).exists() else ""


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def query(db_path: Path, sql: str, params=()) -> list[tuple]:
    """Read the database as an outside reader would (WAL: safe while litmon writes)."""
    if not Path(db_path).exists():
        return []
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()
