"""The fault suite (#16): every source × every upstream fault, against real loopback servers.

For each case: a clean crawl stores the source's answer; then, a day later, every request to that
source meets the fault while a neighbour source (a feed on another server) answers normally. The
crawl must finish in bounded time (small timeouts and backoff from the config), the neighbour must
complete, the failure must be reported (log line, ``source_runs``, ``litmon status``, the digest's
health section), the watermark must hold and the stored data must not change. A clean crawl after
that recovers everything. docs/reliability.md lists the cases and what was observed.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from crawler import clock, ingest, store
from crawler.config import parse_config
from crawler.digest import build_digest
from crawler.http import HttpClient
from crawler.pipeline import crawl
from crawler.status import collect_status
from tests.conftest import BASE_CONFIG, TRAVEL_DAYS, fixture_bytes, rows
from tests.helpers import upstream
from tests.helpers.slowserver import ResetServer

OPENALEX_ENV, OPENALEX_KEY = "LITMON_TEST_OPENALEX_KEY", "test-secret-key-1234"
FDA = {"item": "table tbody tr", "title": "td a", "link": "td a", "date": "td:first-child", "kind": "news"}

#: what each test may spend on one fault run; the config below keeps real runs far under it
HANG_GUARD_SECONDS = 60

FAST = """
[http]
max_retries = 1
backoff_seconds = 0.05
max_backoff_seconds = 2
connect_timeout = 2
read_timeout = 2
response_timeout = 1
source_timeout = 6
max_response_mb = 1
default_min_interval = 0
[status]
fail_after = 1
"""


def _json(body: bytes | str, status: int = 200) -> Response:
    return Response(body, status=status, content_type="application/json")


def _xml(body: bytes) -> Response:
    return Response(body, content_type="text/xml")


class Sources:
    """Clean answers of every source (recorded wire fixtures, shared with bench/weekly.py), and the
    page in the FDA's former layout, which the suite's page config selects."""

    pubmed = staticmethod(upstream.pubmed)
    europepmc = staticmethod(upstream.europepmc)
    clinicaltrials = staticmethod(upstream.clinicaltrials)
    biorxiv = staticmethod(upstream.biorxiv)
    crossref = staticmethod(upstream.crossref)
    isrctn = staticmethod(upstream.isrctn)
    openalex = staticmethod(upstream.openalex)
    feed = staticmethod(upstream.feed("molecular-psychiatry"))  # Nature's RSS 1.0

    @staticmethod
    def page(request):
        return Response(fixture_bytes("pages", "fda_dsc_listing.html"), content_type="text/html; charset=utf-8")


def source_section(kind: str, url: str) -> str:
    """The config of the faulted source (``url``: its server's base URL, ending in /)."""
    if kind == "feed":
        return f'\n[[feeds]]\nname = "faulty"\nurl = "{url}mp.rss"\n'
    if kind == "page":
        lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in FDA.items())
        return f'\n[[pages]]\nname = "faulty"\nurl = "{url}dsc"\n{lines}'
    settings = {
        "pubmed": {"base_url": url, "query": "ketamine", "batch_size": 50},
        "europepmc": {"base_url": url + "rest/", "query": "ketamine AND depression", "page_size": 3},
        "clinicaltrials": {"base_url": url + "api/v2/", "conditions": "depression", "interventions": "ketamine"},
        "biorxiv": {"base_url": url, "servers": ["medrxiv"], "category": "", "max_backfill_days": 30},
        "crossref": {"base_url": url, "query": "ketamine esketamine depression", "page_size": 3, "slice_days": 3650},
        "isrctn": {"base_url": url + "api/", "query": "ketamine OR esketamine", "page_size": 2},
        "openalex": {"base_url": url, "api_key_env": OPENALEX_ENV, "query": "ketamine", "page_size": 2},
    }[kind]
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    return f"\n[sources.{kind}]\nenabled = true\nmin_interval = 0\n{lines}"


SOURCES = ["pubmed", "europepmc", "clinicaltrials", "biorxiv", "crossref", "isrctn", "openalex", "feed", "page"]
XML_SOURCES = {"pubmed", "isrctn", "feed", "page"}


def instance_name(kind: str) -> str:
    return f"{kind}:faulty" if kind in ("feed", "page") else kind


# --------------------------------------------------------------------------- faults

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<root><title>&lol9;</title></root>"""

#: keys and elements the parsers treat as required (identity and title); "missing" strips them all
REQUIRED_KEYS = {"title", "briefTitle", "officialTitle", "nctId", "DOI", "doi", "id", "pmid", "display_name"}
REQUIRED_XML = re.compile(rb"<(ArticleTitle|title|dc:title|isrctn|PMID)\b[^>]*>.*?</\1>", re.S)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in REQUIRED_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def missing_field(clean: Response, kind: str) -> Response:
    body = clean.get_data()
    if kind == "page":
        body = re.sub(rb"<a\b[^>]*>.*?</a>", b"", body, flags=re.S)
    elif kind in XML_SOURCES:
        body = REQUIRED_XML.sub(b"", body)
    else:
        body = json.dumps(_strip(json.loads(body))).encode()
    return Response(body, status=clean.status_code, content_type=clean.content_type)


def _drip():
    for _ in range(200):
        time.sleep(0.3)
        yield b" "


def fault_response(fault: str, kind: str, request, clean) -> Response:
    if fault == "timeout":
        time.sleep(1.5)  # past response_timeout (1 s): the client has given up
        return clean(request)
    if fault == "slow_drip":
        return Response(_drip(), content_type="application/json", direct_passthrough=True)
    if fault == "429_retry_after":
        return Response("Too Many Requests", status=429, headers={"Retry-After": "1"})
    if fault == "429_no_retry_after":
        return Response("Too Many Requests", status=429)
    if fault in ("500", "503"):
        return Response("<html><body>Internal error</body></html>", status=int(fault), content_type="text/html")
    if fault == "truncated":
        body = clean(request).get_data()
        response = Response(body[: len(body) // 2], content_type="application/json", direct_passthrough=True)
        response.headers["Content-Length"] = str(len(body))
        return response
    if fault == "html_200":
        return Response("<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>", content_type="text/html")
    if fault == "empty_200":
        return Response(b"", content_type=clean(request).content_type)
    if fault == "malformed":
        if kind in XML_SOURCES:
            return Response(b'<?xml version="1.0"?><root><item><title>Ketamine', content_type=clean(request).content_type)
        return Response(b'{"items": [{"title": "Ketamine', content_type="application/json")
    if fault == "missing_field":
        return missing_field(clean(request), kind)
    if fault == "entity_bomb":
        if kind in XML_SOURCES:
            return Response(BOMB, content_type="text/xml" if kind != "page" else "text/html")
        return Response(b"[" * 200_000 + b"]" * 200_000, content_type="application/json")
    if fault == "oversize":
        return Response(gzip.compress(b" " * 3_000_000), headers={"Content-Encoding": "gzip"}, content_type="application/json")
    raise AssertionError(fault)


FAULTS = [
    "timeout",
    "slow_drip",
    "reset",
    "429_retry_after",
    "429_no_retry_after",
    "500",
    "503",
    "truncated",
    "html_200",
    "empty_200",
    "malformed",
    "missing_field",
    "entity_bomb",
    "oversize",
]

#: faults after which a source may still succeed: what it could read is stored, nothing degraded
TOLERABLE = {"missing_field"}


# --------------------------------------------------------------------------- the harness


@pytest.fixture
def neighbour_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    server.expect_request("/neighbour.rss").respond_with_data(
        fixture_bytes("feeds", "jama_psychiatry_rss2.xml"), content_type="application/rss+xml"
    )
    yield server
    server.clear()
    if server.is_running():
        server.stop()


class Upstream:
    """Answers every request to the faulted source's server: cleanly, or with ``fault``."""

    def __init__(self, httpserver, kind):
        self.kind, self.fault = kind, None
        self.clean = getattr(Sources, kind)
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    def handle(self, request):
        if self.fault is None:
            return self.clean(request)
        return fault_response(self.fault, self.kind, request, self.clean)


def suite_config(tmp_path, kind, url, neighbour_server):
    text = BASE_CONFIG.format(db=tmp_path / "litmon.db", outbox=tmp_path / "outbox").replace(
        "[http]\nmax_retries = 2\nbackoff_seconds = 0.01\ndefault_min_interval = 0\n", FAST
    )
    text += source_section(kind, url)
    text += f'\n[[feeds]]\nname = "neighbour"\nurl = "{neighbour_server.url_for("/neighbour.rss")}"\n'
    return parse_config(text, str(tmp_path / "litmon.toml"))


def snapshot(db, source):
    records = rows(db, "SELECT source_id, content_hash, title FROM records WHERE source = ? ORDER BY source_id", [source])
    state = store.load_source_state(db, source)
    return records, state["watermark"]


def crawl_bounded(config, db, **kwargs):
    """Crawl in a thread (with its own connection); a run that does not end within the guard is a hang,
    the failure this suite hunts."""
    outcome = {}

    def target():
        own = ingest.open_db(config.database_path)
        try:
            outcome["report"] = crawl(config, own, http=HttpClient.from_config(config), **kwargs)
        except BaseException as exc:  # reported below, with the test's own assertion
            outcome["error"] = exc
        finally:
            own.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    assert not thread.is_alive(), f"the crawl still runs after {HANG_GUARD_SECONDS}s"
    assert "error" not in outcome, repr(outcome.get("error"))
    return outcome["report"]


@pytest.mark.skipif(
    bool(TRAVEL_DAYS), reason="upstream faults do not depend on the date; the suite runs once, not per clock travel (CI time)"
)
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", SOURCES)
def test_fault(kind, fault, httpserver, neighbour_server, db, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(OPENALEX_ENV, OPENALEX_KEY)
    upstream = Upstream(httpserver, kind)
    config = suite_config(tmp_path, kind, httpserver.url_for("/"), neighbour_server)
    name = instance_name(kind)

    first = crawl_bounded(config, db)
    assert [s.status for s in first.sources] == ["ok", "ok"], [s.error for s in first.sources]
    clean_records, clean_mark = snapshot(db, name)
    assert clean_records, "the clean answer must store something for the comparison to mean anything"

    clock.advance(days=1)
    upstream.fault = fault
    with caplog.at_level(logging.INFO), ResetServer() as resetting:
        # a reset: the same source at a server that resets every connection (TCP RST)
        faulty = suite_config(tmp_path, kind, resetting.url, neighbour_server) if fault == "reset" else config
        report = crawl_bounded(faulty, db)
    by_name = {s.name: s for s in report.sources}
    faulted, neighbour = by_name[name], by_name["feed:neighbour"]
    assert neighbour.status == "ok"  # the other source completes
    if os.environ.get("LITMON_FAULT_REPORT"):  # docs/reliability.md's table is made from these lines
        with open(os.environ["LITMON_FAULT_REPORT"], "a", encoding="utf-8") as out:
            outcome = {"source": kind, "fault": fault, "status": faulted.status, "reason": faulted.reason}
            outcome.update(skipped=faulted.skipped[:2], n_skipped=len(faulted.skipped), held=faulted.watermark_held)
            out.write(json.dumps(outcome) + "\n")
    records, mark = snapshot(db, name)
    assert records == clean_records  # stored data unchanged, nothing degraded
    if fault in TOLERABLE and faulted.status == "ok":
        assert mark in (clean_mark, clock.today().isoformat())
        if fault == "missing_field" and kind != "isrctn":  # ISRCTN still names each trial in an attribute
            assert faulted.skipped, f"{name}: items without their identity vanished without being counted as skipped"
    else:
        assert faulted.status == "failed", f"{name} under {fault}: {faulted.status} {faulted.counts}"
        assert mark == clean_mark  # watermark held
        assert f"[{name}] failed" in caplog.text
        run = rows(db, "SELECT status, error FROM source_runs WHERE source = ? ORDER BY id DESC LIMIT 1", [name])[0]
        assert run["status"] == "failed" and run["error"]
        alerts = collect_status(config, db)["alerts"]
        assert any(a.startswith(f"{name}: failed 1 runs in a row") for a in alerts), alerts
        digest = build_digest(db, config)
        assert name in digest.text and "fail" in digest.text.lower()

    clock.advance(days=1)
    upstream.fault = None
    again = crawl_bounded(config, db)
    assert [s.status for s in again.sources] == ["ok", "ok"], [s.error for s in again.sources]
    records, mark = snapshot(db, name)
    assert {r["source_id"] for r in records} >= {r["source_id"] for r in clean_records}
    assert mark == clock.today().isoformat()


def test_every_case_is_listed_in_the_reliability_document():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "reliability.md").read_text()
    for fault in FAULTS:
        assert f"`{fault}`" in doc, fault
    for kind in SOURCES:
        assert f"`{kind}`" in doc, kind
