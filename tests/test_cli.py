"""The command line, run as a real subprocess (python -m crawler) against loopback servers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import fixture_bytes
from tests.helpers.cli import closed_port, litmon, serve_pubmed, write_config
from tests.helpers.ops import pubmed_section


def test_run_with_unreachable_sources_exits_1_and_still_writes_db_and_digest(tmp_path):
    port = closed_port()
    config = write_config(
        tmp_path,
        f"""
[sources.pubmed]
enabled = true
base_url = "http://127.0.0.1:{port}/entrez/eutils/"
query = "ketamine"
min_interval = 0
""",
    )
    result = litmon("--config", config, "run", cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert "[pubmed] failed: network error" in result.stderr and "check: network access" in result.stderr
    assert "1 source(s) failed: 1 need attention: pubmed (never succeeded)" in result.stderr
    db = sqlite3.connect(tmp_path / "litmon.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT source, status FROM source_runs").fetchall() == [("pubmed", "failed")]
    assert db.execute("SELECT COUNT(*) FROM digests").fetchone() == (1,)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1 and len(list((tmp_path / "outbox").glob("*.html"))) == 1
    assert "digest 1 for outbox: 0 item(s)" in result.stdout


def pubmed_config(tmp_path, httpserver):
    return write_config(tmp_path, pubmed_section(httpserver))


def test_crawl_dry_run_writes_nothing(tmp_path, httpserver):
    serve_pubmed(httpserver)
    result = litmon("--config", pubmed_config(tmp_path, httpserver), "crawl", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[pubmed] ok: 3 fetched, 3 new" in result.stderr
    assert not (tmp_path / "litmon.db").exists()


def test_crawl_then_digest_then_status(tmp_path, httpserver):
    serve_pubmed(httpserver)
    config = pubmed_config(tmp_path, httpserver)

    crawled = litmon("--config", config, "crawl", "--source", "pubmed", cwd=tmp_path)
    assert crawled.returncode == 0, crawled.stderr
    assert "[pubmed] ok: 3 fetched, 3 new, 0 updated, 0 unchanged" in crawled.stderr

    digest = litmon("--config", config, "digest", cwd=tmp_path)
    assert digest.returncode == 0, digest.stderr
    assert "written:" in digest.stdout

    status = litmon("--config", config, "status", "--json", cwd=tmp_path)
    info = json.loads(status.stdout)
    pubmed = next(s for s in info["sources"] if s["source"] == "pubmed")
    assert pubmed["records"] == 3 and pubmed["last_success_at"] and pubmed["last_error"] is None
    assert info["database"]["works"] == 3
    assert info["last_digest"]["deliveries"][0]["status"] == "written"

    human = litmon("--config", config, "status", cwd=tmp_path)
    assert "pubmed" in human.stdout and "last digest: #1" in human.stdout


def test_unknown_source_is_an_error(tmp_path):
    config = write_config(tmp_path, "")
    result = litmon("--config", config, "crawl", "--source", "nosuch", cwd=tmp_path)
    assert result.returncode == 2  # a usage error (issue #10)
    assert "unknown source 'nosuch'" in result.stderr
    typo = litmon("--config", config, "crawl", "--source", "pubmd", cwd=tmp_path)
    assert typo.returncode == 2 and "unknown source 'pubmd'; did you mean `pubmed`?" in typo.stderr
    assert not (tmp_path / "litmon.db").exists()  # refused before anything was opened


@pytest.mark.parametrize("command", [[], ["run"], ["crawl"], ["digest"], ["status"], ["serve"], ["backup"], ["check"]])
def test_every_command_has_help(command, tmp_path):
    result = litmon(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    if command and command[0] in ("run", "crawl", "digest", "serve", "backup"):
        assert "--dry-run" in result.stdout


def test_usage_error_exits_2(tmp_path):
    result = litmon("crawl", "--since", "yesterday", cwd=tmp_path)
    assert result.returncode == 2


def test_digest_preview_and_resend(tmp_path, httpserver):
    serve_pubmed(httpserver)
    config = pubmed_config(tmp_path, httpserver)
    assert litmon("--config", config, "crawl", cwd=tmp_path).returncode == 0

    preview = litmon("--config", config, "digest", "--preview", cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    path = Path(preview.stdout.splitlines()[0])
    assert path.exists() and path.suffix == ".html" and "<html" in path.read_text()
    db = sqlite3.connect(tmp_path / "litmon.db")
    assert db.execute("SELECT COUNT(*) FROM digests").fetchone() == (0,)  # a preview records nothing

    made = litmon("--config", config, "digest", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    resent = litmon("--config", config, "digest", "--resend", "1", cwd=tmp_path)
    assert resent.returncode == 0, resent.stderr
    assert "digest 1: resend to outbox: written" in resent.stdout
    assert db.execute("SELECT digest_id, status FROM digest_deliveries ORDER BY id").fetchall() == [
        (1, "written"),
        (1, "written"),
    ]
    assert db.execute("SELECT COUNT(*) FROM digests").fetchone() == (1,)

    missing = litmon("--config", config, "digest", "--resend", "99", cwd=tmp_path)
    assert missing.returncode == 2 and "no digest with id 99" in missing.stderr  # a usage error (issue #10)


def test_the_placeholder_contact_address_makes_a_crawl_warn_once_naming_the_key(tmp_path, httpserver):
    httpserver.expect_request("/rss.xml").respond_with_data(
        fixture_bytes("feeds", "jama_psychiatry_rss2.xml"), content_type="application/rss+xml"
    )
    config = write_config(tmp_path, f'[[feeds]]\nname = "jama"\nurl = "{httpserver.url_for("/rss.xml")}"\n')
    text = Path(config).read_text().replace("tester@example.org", "litmon-operator@example.org")
    Path(config).write_text(text)

    result = litmon("--config", config, "-q", "crawl", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "placeholder" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert "contact_email is still the shipped placeholder litmon-operator@example.org: set contact_email in" in warnings[0]
