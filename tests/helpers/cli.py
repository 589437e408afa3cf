"""Running litmon as a real subprocess (python -m crawler) against loopback servers, and its config files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from werkzeug import Response

from tests.conftest import BASE_CONFIG, fixture_bytes, skip_subprocess_when_travelling
from tests.helpers.ncbi import esearch_body


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(tmp_path: Path, extra: str = "") -> str:
    """Write litmon.toml into ``tmp_path``: the tests' base config (database and outbox there) plus ``extra``."""
    path = tmp_path / "litmon.toml"
    path.write_text(BASE_CONFIG.format(db=tmp_path / "litmon.db", outbox=tmp_path / "outbox") + extra)
    return str(path)


ROOT = Path(__file__).resolve().parent.parent.parent


def litmon_env(**extra) -> dict:
    """The environment of a litmon subprocess: this checkout's crawler package first on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("LITMON_CONFIG", None)
    env.update(extra)
    return env


def run_script(script: str, *args: str, cwd) -> subprocess.CompletedProcess:
    """``python -c script args…`` in a new process with this checkout's crawler package (skipped when the wall clock
    is moved: a new process does not share the tests' pinned clock)."""
    skip_subprocess_when_travelling()
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=litmon_env()
    )


def litmon(*args, cwd, env=None):
    skip_subprocess_when_travelling()
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env or litmon_env()
    )


def serve_pubmed(httpserver):
    httpserver.expect_request("/esearch.fcgi").respond_with_handler(
        lambda r: Response(esearch_body(3 if r.form["datetype"] == "crdt" else 0), content_type="application/json")
    )
    pages = {"0": fixture_bytes("pubmed", "efetch_batch1.xml"), "2": fixture_bytes("pubmed", "efetch_batch2.xml")}
    httpserver.expect_request("/efetch.fcgi").respond_with_handler(
        lambda r: Response(pages[r.args["retstart"]], content_type="text/xml")
    )
