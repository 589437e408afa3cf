"""`litmon doctor` as a real subprocess against loopback servers speaking each API's wire format."""

from __future__ import annotations

import json

from werkzeug import Response

from tests.conftest import fixture_bytes
from tests.helpers.cli import closed_port, litmon, serve_pubmed, write_config

PAGE_CONFIG = """
[[pages]]
name = "fda-dsc"
url = "{url}"
item = ':is(h2, h3):-soup-contains("Current Drug Safety Communications") + ul > li'
title = "a"
link = "a"
date_pattern = '^(\\d{{1,2}}[-/]\\d{{1,2}}[-/]\\d{{4}})\\b'
kind = "news"
"""


def sources_config(httpserver, *, isrctn_body: bytes | None = None) -> str:
    base = httpserver.url_for("/")
    return f"""
[sources.pubmed]
enabled = true
base_url = "{base}"
query = "ketamine"
min_interval = 0

[sources.crossref]
enabled = true
base_url = "{base}cr/"
query = "ketamine"
min_interval = 0

[sources.isrctn]
enabled = true
base_url = "{base}isrctn/api/"
query = "ketamine"
min_interval = 0

[sources.openalex]
enabled = true
base_url = "{base}oa/"
api_key_env = "LITMON_TEST_NO_SUCH_KEY"
query = "ketamine"
""" + PAGE_CONFIG.format(url=base + "dsc")


def serve_all(httpserver, isrctn_body: bytes):
    serve_pubmed(httpserver)
    limits = {"X-Rate-Limit-Limit": "3", "X-Rate-Limit-Interval": "1s"}
    httpserver.expect_request("/cr/works").respond_with_data(
        fixture_bytes("crossref", "works_created_page1.json"), content_type="application/json", headers=limits
    )
    httpserver.expect_request("/isrctn/api/query/format/default").respond_with_data(
        isrctn_body, content_type="application/xml;charset=UTF-8"
    )
    httpserver.expect_request("/dsc").respond_with_data(
        fixture_bytes("pages", "fda_dsc_current.html"), content_type="text/html; charset=utf-8"
    )


def test_doctor_reports_each_source_and_fails_on_an_unparseable_answer(tmp_path, httpserver):
    serve_all(httpserver, fixture_bytes("isrctn", "error_page.html"))
    config = write_config(tmp_path, sources_config(httpserver))

    result = litmon("--config", config, "doctor", cwd=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line and not line.startswith(" ")}
    # PubMed: esearch then efetch (two requests), a record with its fields
    assert lines["pubmed"].split()[1:4] == ["yes", "200,200", "ok"]
    assert "title" in lines["pubmed"] and "pmid" in lines["pubmed"] and "abstract" in lines["pubmed"]
    # Crossref: its advertised limit is shown
    assert lines["crossref"].split()[1:4] == ["yes", "200", "ok"]
    assert "[X-Rate-Limit-Limit: 3; X-Rate-Limit-Interval: 1s]" in lines["crossref"]
    assert "doi" in lines["crossref"]
    # the FDA page: the real layout parses, with its leading dates
    assert lines["page:fda-dsc"].split()[1:4] == ["yes", "200", "ok"]
    assert "title, published_on, entered_on, url" in lines["page:fda-dsc"]
    # ISRCTN answered an HTML error page: reachable, HTTP 200, parse FAIL, with the source's own message
    # (the count request failed to parse, so the offset fallback asked once more: two answers)
    assert lines["isrctn"].split()[1:4] == ["yes", "200,200", "FAIL"]
    assert "FAILED: [isrctn]" in result.stdout and "HTML" in result.stdout
    # OpenAlex without a key: disabled, not failed
    assert lines["openalex"].startswith("openalex") and "disabled:" in lines["openalex"]
    assert "1 of 5 source(s) failed: isrctn" in result.stdout
    # tiny requests only, nothing written
    crossref_rows = [r.args["rows"] for r, _ in httpserver.log if r.path == "/cr/works"]
    assert crossref_rows and set(crossref_rows) == {"1"}
    assert sum(1 for r, _ in httpserver.log if r.path.startswith("/isrctn")) <= 2
    assert not (tmp_path / "litmon.db").exists()


def test_doctor_exits_0_when_every_source_answers_and_json_output(tmp_path, httpserver):
    serve_all(httpserver, fixture_bytes("isrctn", "search_page1.xml"))
    config = write_config(tmp_path, sources_config(httpserver))

    result = litmon("--config", config, "doctor", "--json", "--source", "pubmed", "--source", "isrctn", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    report = {r["source"]: r for r in json.loads(result.stdout)}
    assert set(report) == {"pubmed", "isrctn"}
    assert report["isrctn"]["status"] == "ok" and report["isrctn"]["reachable"] is True
    assert report["isrctn"]["parse_ok"] is True and report["isrctn"]["http_statuses"][0] == 200
    assert {"title", "pmid", "doi", "abstract", "authors"} <= set(report["pubmed"]["fields"])
    assert report["pubmed"]["http_statuses"] == [200, 200]  # esearch, then efetch of one record


def ctis_config(tmp_path, base_url: str) -> str:
    """A config file with CTIS alone enabled, at ``base_url``."""
    return write_config(
        tmp_path, f'\n[sources.ctis]\nenabled = true\nbase_url = "{base_url}"\nquery = "ketamine"\nmin_interval = 0\n'
    )


def test_doctor_unreachable_source_fails(tmp_path):
    port = closed_port()
    config = ctis_config(tmp_path, f"http://127.0.0.1:{port}/ctis-public-api/")
    result = litmon("--config", config, "doctor", cwd=tmp_path)
    assert result.returncode == 1
    line = next(l for l in result.stdout.splitlines() if l.startswith("ctis"))
    assert line.split()[1] == "NO" and "connection refused" in result.stdout


def test_doctor_firewall_page_from_ctis_fails_with_the_reason(tmp_path, httpserver):
    httpserver.expect_request("/ctis-public-api/search").respond_with_response(
        Response(fixture_bytes("ctis", "waf_block.html"), status=403, content_type="text/html")
    )
    config = ctis_config(tmp_path, httpserver.url_for("/ctis-public-api/"))
    result = litmon("--config", config, "doctor", cwd=tmp_path)
    assert result.returncode == 1
    line = next(l for l in result.stdout.splitlines() if l.startswith("ctis"))
    assert line.split()[1:3] == ["yes", "403"]
    assert "web application firewall" in result.stdout


def test_doctor_help(tmp_path):
    result = litmon("doctor", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "reachable, HTTP status" in result.stdout and "--source NAME" in result.stdout
