"""OpenAlex: the real pipeline against a loopback server speaking the works API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import fixture_bytes, rows
from werkzeug import Response

from crawler import store
from crawler.errors import SourceError
from crawler.sources import openalex

KEY = "test-secret-key-1234"
ENV = "LITMON_TEST_OPENALEX_KEY"
QUERY = "(ketamine OR esketamine) AND depression"
JSON = "application/json"


@pytest.fixture
def config(make_config, httpserver, monkeypatch):
    monkeypatch.setenv(ENV, KEY)

    def _config(extra="", page_size=2):
        return make_config(f"""
[sources.openalex]
enabled = true
base_url = "{httpserver.url_for("/")}"
api_key_env = "{ENV}"
query = "{QUERY}"
page_size = {page_size}
min_interval = 0
{extra}
""")

    return _config


def serve_cursor_pages(httpserver, pages: dict[str, bytes]):
    def handler(request):
        return Response(pages[request.args["cursor"]], content_type=JSON)

    httpserver.expect_request("/works").respond_with_handler(handler)


def two_pages(httpserver):
    first = json.loads(fixture_bytes("openalex", "works_page1.json"))["meta"]["next_cursor"]
    serve_cursor_pages(
        httpserver, {"*": fixture_bytes("openalex", "works_page1.json"), first: fixture_bytes("openalex", "works_page2.json")}
    )
    return first


def sent(httpserver) -> list[dict]:
    return [dict(req.args) for req, _ in httpserver.log]


def window(start: dt.date, end: dt.date, field="publication_date") -> str:
    return f"from_{field}:{start.isoformat()},to_{field}:{end.isoformat()}"


# --------------------------------------------------------------------------- switching off


def test_without_api_key_the_source_is_disabled_with_one_reason(config, httpserver, run_crawl, db, monkeypatch):
    cfg = config()
    monkeypatch.setenv(ENV, "")
    report = run_crawl(cfg, only=["openalex"])

    assert report.sources[0].status == "disabled"
    assert report.sources[0].error == f"no API key: set ${ENV} (OpenAlex requires a key since 2026-02-13)"
    assert httpserver.log == []
    assert rows(db, "SELECT COUNT(*) AS n FROM source_runs")[0]["n"] == 0


def test_check_enabled_reads_the_configured_variable(monkeypatch):
    monkeypatch.delenv("SOME_OTHER_KEY", raising=False)
    assert "SOME_OTHER_KEY" in openalex.check_enabled({"api_key_env": "SOME_OTHER_KEY"}, None)
    monkeypatch.setenv("SOME_OTHER_KEY", "abc")
    assert openalex.check_enabled({"api_key_env": "SOME_OTHER_KEY"}, None) is None


# --------------------------------------------------------------------------- crawls


def test_first_crawl_follows_the_cursor_and_stores_works(config, httpserver, run_crawl, db, today):
    first = two_pages(httpserver)
    report = run_crawl(config(), only=["openalex"])

    assert report.sources[0].status == "ok", report.sources[0].error
    expected_window = window(dt.date(2024, 1, 1) - dt.timedelta(days=90), today)
    assert sent(httpserver) == [
        {"search": QUERY, "filter": expected_window, "per_page": "2", "cursor": "*", "api_key": KEY},
        {"search": QUERY, "filter": expected_window, "per_page": "2", "cursor": first, "api_key": KEY},
    ]
    records = {r["source_id"]: r for r in rows(db, "SELECT * FROM records")}
    assert set(records) == {"W4405123456", "W4399876543", "W4387000111"}
    article = records["W4405123456"]
    assert article["record_type"] == "article"
    assert article["journal"] == "Journal of Affective Disorders"
    assert json.loads(article["authors"]) == ["Amelia R. Hart", "Tomás Oliveira"]
    assert (article["published_on"], article["entered_on"], article["updated_on"]) == ("2025-01-14", "2025-01-15", "2025-03-02")
    assert article["abstract"].startswith("Background: Esketamine nasal spray is licensed")
    assert article["url"] == "https://doi.org/10.1016/j.jad.2025.01.042"
    assert records["W4399876543"]["record_type"] == "preprint"
    retracted = records["W4387000111"]
    assert json.loads(retracted["publication_types"]) == ["article", "Retracted Publication"]
    assert json.loads(retracted["data"])["extra"]["is_retracted"] is True
    assert retracted["abstract"] is None and retracted["journal"] is None

    ids = {(r["scheme"], r["value"]) for r in rows(db, "SELECT scheme, value FROM identifiers")}
    assert {
        ("openalex", "W4405123456"),
        ("doi", "10.1016/j.jad.2025.01.042"),
        ("pmid", "39800001"),
        ("pmcid", "PMC11790123"),
        ("doi", "10.1101/2025.02.10.25321987"),
        ("pmid", "37660000"),
    } <= ids
    # versions are links, never identifiers
    assert ("doi", "10.1101/2024.06.03.24308311") not in ids and ("doi", "10.1176/appi.ajp.20250211") not in ids
    links = {(r["relation"], r["value"]) for r in rows(db, "SELECT relation, value FROM record_links")}
    assert links == {("has_preprint", "10.1101/2024.06.03.24308311"), ("preprint_of", "10.1176/appi.ajp.20250211")}

    (query,) = rows(db, "SELECT query, window_from, window_to, hits, params FROM source_queries")
    assert (query["query"], query["hits"]) == (QUERY, 3)
    assert json.loads(query["params"]) == {"filter": expected_window, "per_page": 2, "pages": 2}
    assert KEY not in query["params"]
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] == today.isoformat()
    assert rows(db, "SELECT status, new, requests FROM source_runs")[0] == {"status": "ok", "new": 3, "requests": 2}


def test_empty_answer_is_a_successful_crawl(config, httpserver, run_crawl, db, today):
    serve_cursor_pages(httpserver, {"*": fixture_bytes("openalex", "works_empty.json")})
    report = run_crawl(config(), only=["openalex"])

    assert report.sources[0].status == "ok"
    assert len(httpserver.log) == 1
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 0
    assert rows(db, "SELECT hits FROM source_queries")[0]["hits"] == 0
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] == today.isoformat()


def test_incremental_run_windows_from_watermark_and_does_not_duplicate(config, httpserver, run_crawl, db, today):
    two_pages(httpserver)
    cfg = config("publication_lookback_days = 30")
    run_crawl(cfg, only=["openalex"])
    store.save_source_success(db, "openalex", "2025-09-10", {})
    httpserver.clear()
    serve_cursor_pages(httpserver, {"*": fixture_bytes("openalex", "works_since_update.json")})

    report = run_crawl(cfg, only=["openalex"])

    assert report.sources[0].status == "ok", report.sources[0].error
    # watermark 2025-09-10 − 3 days overlap − 30 days look-back
    assert [a["filter"] for a in sent(httpserver)] == [window(dt.date(2025, 8, 8), today)]
    assert report.sources[0].counts == {"fetched": 2, "new": 0, "updated": 1, "unchanged": 1}
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    assert rows(db, "SELECT COUNT(*) AS n FROM identifiers WHERE value = 'W4405123456'")[0]["n"] == 1
    assert rows(db, "SELECT updated_on FROM records WHERE source_id = 'W4387000111'")[0]["updated_on"] == "2025-09-30"


def test_window_on_created_date_for_paid_plans(config, httpserver, run_crawl, today):
    serve_cursor_pages(httpserver, {"*": fixture_bytes("openalex", "works_empty.json")})
    run_crawl(config('window_filter = "created"'), only=["openalex"])
    assert sent(httpserver)[0]["filter"] == window(dt.date(2024, 1, 1), today, "created_date")


def test_page_size_is_capped_at_100_and_max_pages_stops_with_a_warning(config, httpserver, run_crawl, db):
    two_pages(httpserver)
    report = run_crawl(config("max_pages = 1", page_size=500), only=["openalex"])

    assert report.sources[0].status == "ok"
    assert [a["per_page"] for a in sent(httpserver)] == ["100"]
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 2
    assert "max_pages=1" in report.sources[0].warnings[0] and "2 of 3 works" in report.sources[0].warnings[0]


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda: Response("upstream failure", status=503), "HTTP 503"),
        (
            lambda: Response(fixture_bytes("openalex", "error_plan_upgrade.json"), status=403, content_type=JSON),
            "Plan upgrade required",
        ),
        (
            lambda: Response(fixture_bytes("openalex", "work_notfound_404.html"), status=200, content_type="text/html"),
            "HTML page",
        ),
        (lambda: Response(b'{"meta": {"count": 1}}', content_type=JSON), "not a works list"),
    ],
)
def test_error_answer_fails_the_source_keeps_rows_and_watermark_and_hides_the_key(
    config, httpserver, run_crawl, db, answer, expected
):
    two_pages(httpserver)
    run_crawl(config(), only=["openalex"])
    store.save_source_success(db, "openalex", "2025-06-01", {})
    httpserver.clear()
    httpserver.expect_request("/works").respond_with_handler(lambda request: answer())

    report = run_crawl(config(), only=["openalex"])

    result = report.sources[0]
    assert result.status == "failed"
    assert result.error.startswith("[openalex]") and expected in result.error
    assert KEY not in result.error
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    state = rows(db, "SELECT watermark, last_error FROM source_states")[0]
    assert state["watermark"] == "2025-06-01" and KEY not in state["last_error"]
    assert KEY not in rows(db, "SELECT error FROM source_runs ORDER BY id DESC LIMIT 1")[0]["error"]


def test_failure_on_the_second_page_keeps_the_first_page_but_not_the_watermark(config, httpserver, run_crawl, db):
    def handler(request):
        if request.args["cursor"] == "*":
            return Response(fixture_bytes("openalex", "works_page1.json"), content_type=JSON)
        return Response('{"error":"Invalid cursor","message":"cursor expired"}', status=400, content_type=JSON)

    httpserver.expect_request("/works").respond_with_handler(handler)
    report = run_crawl(config(), only=["openalex"])

    assert report.sources[0].status == "failed" and "Invalid cursor" in report.sources[0].error
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 2
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] is None


# --------------------------------------------------------------------------- parser


def test_abstract_is_rebuilt_by_position_and_markup_dropped():
    index = {"<sec>": [0], "<title>BACKGROUND</title>": [1], "Ketamine": [2], "works": [3, 5], "fast,": [4], "again.": [6]}
    assert openalex.rebuild_abstract(index) == "BACKGROUND Ketamine works fast, works again."
    assert openalex.rebuild_abstract(None) is None and openalex.rebuild_abstract({}) is None


def test_url_forms_of_ids_are_normalised():
    record = openalex.parse_work(
        {
            "id": "https://openalex.org/W123",
            "doi": "https://doi.org/10.1001/JAMAPsychiatry.2025.0001",
            "title": "T",
            "ids": {
                "pmid": "https://pubmed.ncbi.nlm.nih.gov/40000001",
                "pmcid": "https://www.ncbi.nlm.nih.gov/pmc/articles/12345",
            },
            "type": "review",
            "publication_date": "2025-02-03",
            "created_date": "2025-02-05T00:00:00",
            "updated_date": "2025-03-01T12:00:00.1",
        }
    )
    assert record.identifiers == [
        ("openalex", "W123"),
        ("doi", "10.1001/jamapsychiatry.2025.0001"),
        ("pmid", "40000001"),
        ("pmcid", "PMC12345"),
    ]
    assert (record.record_type, record.publication_types, record.entered_on, record.updated_on) == (
        "article",
        ["review"],
        "2025-02-05",
        "2025-03-01",
    )


@pytest.mark.parametrize(
    "work_type, doi, record_type",
    [
        ("preprint", "10.48550/arxiv.2501.00001", "preprint"),
        ("article", "10.1101/2025.01.01.25300000", "preprint"),  # a medRxiv DOI is a preprint whatever the type
        ("retraction", "10.1016/j.jad.2025.02.001", "notice"),
        ("dataset", "10.5281/zenodo.1", "other"),
    ],
)
def test_record_types(work_type, doi, record_type):
    work = {"id": "https://openalex.org/W9", "doi": f"https://doi.org/{doi}", "title": "T", "type": work_type}
    assert openalex.parse_work(work).record_type == record_type


def test_work_without_title_or_id_is_skipped():
    assert openalex.parse_work({"id": "https://openalex.org/W1", "title": None, "display_name": None}) is None
    assert openalex.parse_work({"doi": "https://doi.org/10.1/x", "title": "T"}) is None


def test_parse_file_single_work_list_and_errors():
    (single,) = openalex.parse_file(fixture_bytes("openalex", "work_single.json"), "work_single.json")
    assert single.source_id == "W4405123456"
    assert [r.source_id for r in openalex.parse_file(fixture_bytes("openalex", "works_page2.json"))] == ["W4387000111"]
    for name, message in [("work_notfound_404.html", "HTML page"), ("error_plan_upgrade.json", "Plan upgrade required")]:
        with pytest.raises(SourceError) as info:
            openalex.parse_file(fixture_bytes("openalex", name), name)
        assert message in str(info.value) and "[openalex]" in str(info.value)
    with pytest.raises(SourceError, match="select="):
        openalex.parse_file(b'{"doi": "https://doi.org/10.1/x", "open_access": {"is_oa": true}}')
