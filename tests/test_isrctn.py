"""ISRCTN: the real pipeline against a loopback server speaking the registry's XML query API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import fixture_bytes, rows
from werkzeug import Response

from crawler import store
from crawler.errors import ConfigError, SourceError
from crawler.http import HttpClient
from crawler.sources import isrctn
from crawler.sources.base import CrawlContext

PATH = "/api/query/format/default"
XML = "application/xml;charset=UTF-8"
QUERY = "ketamine OR esketamine"


@pytest.fixture
def config(make_config, httpserver):
    def _config(page_size=2, query=QUERY):
        return make_config(f"""
[sources.isrctn]
enabled = true
base_url = "{httpserver.url_for("/api/")}"
query = "{query}"
page_size = {page_size}
min_interval = 0
""")

    return _config


def full_trials(*names: str) -> list[bytes]:
    """The <fullTrial> elements of fixture answers, as they appear in the file."""
    trials = []
    for name in names:
        body = fixture_bytes("isrctn", name)
        for part in body.split(b"<fullTrial>")[1:]:
            trials.append(b"<fullTrial>" + part.split(b"</fullTrial>")[0] + b"</fullTrial>")
    return trials


def answer(trials: list[bytes], total: int | None = None) -> bytes:
    total = len(trials) if total is None else total
    return (
        f'<allTrials xmlns="http://www.67bricks.com/isrctn" totalCount="{total}">'.encode() + b"\n".join(trials) + b"</allTrials>"
    )


def serve_registry(httpserver, trials: list[bytes]):
    """Answer like the ISRCTN query API: totalCount always, then ``limit`` trials from ``offset``."""

    def handler(request):
        limit = int(request.args.get("limit", "10"))
        offset = int(request.args.get("offset", "0"))
        return Response(answer(trials[offset : offset + limit], total=len(trials)), content_type=XML)

    httpserver.expect_request(PATH).respond_with_handler(handler)


def serve_pages(httpserver, pages: dict[int, bytes]):
    """Answer by offset, like an API that honours offset."""

    def handler(request):
        offset = int(request.args.get("offset", "0"))
        return Response(pages.get(offset, fixture_bytes("isrctn", "search_empty.xml")), content_type=XML)

    httpserver.expect_request(PATH).respond_with_handler(handler)


def sent(httpserver) -> list[dict]:
    return [dict(req.args) for req, _ in httpserver.log]


def window_clause(day: dt.date) -> str:
    return f"({QUERY}) AND lastEdited GE {day.isoformat()}T00:00:00.000Z"


# --------------------------------------------------------------------------- crawls


def all_three(httpserver):
    serve_registry(httpserver, full_trials("search_page1.xml", "search_page2.xml"))


def test_first_crawl_counts_then_fetches_everything_at_once_and_stores_trials(config, httpserver, run_crawl, db, today):
    all_three(httpserver)
    report = run_crawl(config(), only=["isrctn"])

    assert report.sources[0].status == "ok", report.sources[0].error
    # as ctrdata does: count with limit=0, then one request of limit=totalCount (no offset paging)
    assert sent(httpserver) == [
        {"q": window_clause(dt.date(2024, 1, 1)), "limit": "0"},
        {"q": window_clause(dt.date(2024, 1, 1)), "limit": "3"},
    ]
    records = rows(db, "SELECT source_id, record_type, title, entered_on, updated_on, url FROM records ORDER BY source_id")
    assert [r["source_id"] for r in records] == ["ISRCTN14689382", "ISRCTN52841370", "ISRCTN73019256"]
    assert {r["record_type"] for r in records} == {"trial_registration"}
    assert records[0] == {
        "source_id": "ISRCTN14689382",
        "record_type": "trial_registration",
        "title": "Ketamine added to electroconvulsive therapy for severe depression",
        "entered_on": "2016-03-08",
        "updated_on": "2024-02-12",
        "url": "https://www.isrctn.com/ISRCTN14689382",
    }
    ids = {(r["scheme"], r["value"]) for r in rows(db, "SELECT scheme, value FROM identifiers")}
    assert {
        ("isrctn", "ISRCTN14689382"),
        ("nct", "NCT02639312"),
        ("eudract", "2015-004563-21"),
        ("doi", "10.1186/isrctn14689382"),
        ("euct", "2023-503456-21-00"),
        ("isrctn", "ISRCTN73019256"),
    } <= ids
    # "Nil known" in clinicalTrialsGovNumber is not an identifier
    assert not any(s == "nct" and v != "NCT02639312" for s, v in ids)

    links = rows(db, "SELECT relation, scheme, value FROM record_links ORDER BY value")
    assert links == [
        {"relation": "result_publication", "scheme": "doi", "value": "10.1016/s2215-0366(19)30361-0"},
        {"relation": "reference", "scheme": "doi", "value": "10.1186/s13063-017-1815-6"},
        {"relation": "result_publication", "scheme": "pmid", "value": "31668066"},
    ]
    snaps = {r["trial_id"]: r for r in rows(db, "SELECT * FROM trial_snapshots")}
    assert snaps["ISRCTN14689382"]["overall_status"] == "Completed"
    assert snaps["ISRCTN14689382"]["enrollment"] == 160 and snaps["ISRCTN14689382"]["enrollment_type"] == "ACTUAL"
    assert snaps["ISRCTN14689382"]["has_results"] == 1
    assert snaps["ISRCTN52841370"]["overall_status"] == "Recruiting"
    assert snaps["ISRCTN52841370"]["enrollment"] == 402 and snaps["ISRCTN52841370"]["enrollment_type"] == "ESTIMATED"
    assert snaps["ISRCTN52841370"]["phases"] == "Phase III"
    assert snaps["ISRCTN52841370"]["completion_date"] == "2091-03-31"
    assert snaps["ISRCTN73019256"]["overall_status"] == "Not yet recruiting"

    (query,) = rows(db, "SELECT query, window_from, window_to, hits, params FROM source_queries")
    assert query["query"] == window_clause(dt.date(2024, 1, 1))
    assert (query["window_from"], query["window_to"], query["hits"]) == ("2024-01-01", today.isoformat(), 3)
    assert json.loads(query["params"]) == {"count": 3, "requests": 2}
    (state,) = rows(db, "SELECT watermark FROM source_states WHERE source = 'isrctn'")
    assert state["watermark"] == today.isoformat()
    (run,) = rows(db, "SELECT status, fetched, new, requests FROM source_runs")
    assert run == {"status": "ok", "fetched": 3, "new": 3, "requests": 2}


def test_same_trial_in_clinicaltrials_joins_the_same_work(config, httpserver, run_crawl, db):
    all_three(httpserver)
    run_crawl(config(), only=["isrctn"])
    works = rows(
        db,
        """SELECT DISTINCT work_id FROM identifiers WHERE (scheme, value) IN
                        (VALUES ('isrctn', 'ISRCTN14689382'), ('nct', 'NCT02639312'), ('eudract', '2015-004563-21'))""",
    )
    assert len(works) == 1


def test_empty_answer_is_a_successful_crawl(config, httpserver, run_crawl, db, today):
    serve_pages(httpserver, {0: fixture_bytes("isrctn", "search_empty.xml")})
    report = run_crawl(config(), only=["isrctn"])

    assert report.sources[0].status == "ok"
    assert len(httpserver.log) == 1
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 0
    assert rows(db, "SELECT hits FROM source_queries")[0]["hits"] == 0
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] == today.isoformat()


def test_incremental_run_starts_at_watermark_minus_overlap_and_does_not_duplicate(config, httpserver, run_crawl, db):
    all_three(httpserver)
    run_crawl(config(), only=["isrctn"])
    store.save_source_success(db, "isrctn", "2026-01-07", {})
    httpserver.clear()
    serve_registry(httpserver, full_trials("search_since_update.xml"))

    report = run_crawl(config(), only=["isrctn"])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert sent(httpserver) == [
        {"q": window_clause(dt.date(2026, 1, 4)), "limit": "0"},
        {"q": window_clause(dt.date(2026, 1, 4)), "limit": "2"},
    ]
    assert report.sources[0].counts == {"fetched": 2, "new": 0, "updated": 1, "unchanged": 1}
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    assert rows(db, "SELECT COUNT(*) AS n FROM identifiers WHERE value = 'NCT02639312'")[0]["n"] == 1
    snaps = rows(
        db,
        "SELECT overall_status, enrollment, enrollment_type FROM trial_snapshots WHERE trial_id = 'ISRCTN52841370' ORDER BY id",
    )
    assert snaps == [
        {"overall_status": "Recruiting", "enrollment": 402, "enrollment_type": "ESTIMATED"},
        {"overall_status": "Stopped", "enrollment": 388, "enrollment_type": "ACTUAL"},
    ]
    assert rows(db, "SELECT COUNT(*) AS n FROM trial_snapshots WHERE trial_id = 'ISRCTN14689382'")[0]["n"] == 1
    assert rows(db, "SELECT updated_on FROM records WHERE source_id = 'ISRCTN52841370'")[0]["updated_on"] == "2026-01-09"


def test_window_over_max_results_fails_clearly_without_fetching(make_config, httpserver, run_crawl, db):
    all_three(httpserver)
    config = make_config(f"""
[sources.isrctn]
enabled = true
base_url = "{httpserver.url_for("/api/")}"
query = "{QUERY}"
max_results = 2
min_interval = 0
""")
    report = run_crawl(config, only=["isrctn"])

    assert report.sources[0].status == "failed"
    assert "holds 3 trials, more than max_results=2" in report.sources[0].error
    assert [a["limit"] for a in sent(httpserver)] == ["0"]  # counted, never asked for the 3
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 0


def test_trials_are_yielded_in_batches_of_page_size(config, httpserver):
    all_three(httpserver)
    settings = config(page_size=2)
    ctx = CrawlContext(
        name="isrctn",
        settings=settings.sources["isrctn"],
        config=settings,
        http=HttpClient("tester@example.org", default_min_interval=0),
        since=dt.date(2024, 1, 1),
        until=dt.date(2026, 11, 23),
    )
    batches = [[r.source_id for r in batch] for batch in isrctn.fetch_records(ctx)]
    assert [len(b) for b in batches] == [2, 1] and len(httpserver.log) == 2


def test_failed_count_falls_back_to_offset_paging(config, httpserver, run_crawl, db):
    pages = {0: fixture_bytes("isrctn", "search_page1.xml"), 2: fixture_bytes("isrctn", "search_page2.xml")}

    def handler(request):
        if request.args.get("limit") == "0":
            return Response("count unavailable", status=400)
        return Response(pages.get(int(request.args.get("offset", "0")), b""), content_type=XML)

    httpserver.expect_request(PATH).respond_with_handler(handler)
    report = run_crawl(config(), only=["isrctn"])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert [(a.get("limit"), a.get("offset")) for a in sent(httpserver)] == [("0", None), ("2", "0"), ("2", "2")]
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    [warning] = report.sources[0].warnings
    assert warning.startswith("the count request (limit=0) failed, paging with limit/offset instead") and "HTTP 400" in warning


def test_offset_ignored_falls_back_to_one_request_for_everything(config, httpserver, run_crawl, db):
    everything = fixture_bytes("isrctn", "search_page1.xml").replace(
        b"</allTrials>",
        fixture_bytes("isrctn", "search_page2.xml").split(b'totalCount="3">', 1)[1].replace(b"</allTrials>", b"")
        + b"</allTrials>",
    )

    def handler(request):  # an API that ignores offset, and whose count request fails
        if request.args.get("limit") == "0":
            return Response("upstream failure", status=400)
        body = everything if request.args.get("limit") == "3" else fixture_bytes("isrctn", "search_page1.xml")
        return Response(body, content_type=XML)

    httpserver.expect_request(PATH).respond_with_handler(handler)
    report = run_crawl(config(), only=["isrctn"])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert [(a.get("limit"), a.get("offset")) for a in sent(httpserver)] == [("0", None), ("2", "0"), ("2", "2"), ("3", None)]
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    assert json.loads(rows(db, "SELECT params FROM source_queries")[0]["params"])["offset_ignored"] is True


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda: Response("upstream failure", status=500), "HTTP 500"),
        (lambda: Response(fixture_bytes("isrctn", "error_page.html"), content_type="text/html"), "HTML page"),
        (lambda: Response(fixture_bytes("isrctn", "search_page1.xml")[:3000], content_type=XML), "XML answer is cut off"),
    ],
)
def test_error_answer_fails_the_source_keeps_rows_and_watermark(config, httpserver, run_crawl, db, answer, expected):
    all_three(httpserver)
    run_crawl(config(), only=["isrctn"])
    store.save_source_success(db, "isrctn", "2025-06-01", {})
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_handler(lambda request: answer())

    report = run_crawl(config(), only=["isrctn"])

    result = report.sources[0]
    assert result.status == "failed"
    assert result.error.startswith("[isrctn]") and expected in result.error
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    state = rows(db, "SELECT watermark, last_error, consecutive_failures FROM source_states")[0]
    assert state["watermark"] == "2025-06-01" and expected in state["last_error"] and state["consecutive_failures"] == 1
    assert rows(db, "SELECT status FROM source_runs ORDER BY id DESC LIMIT 1")[0]["status"] == "failed"
    assert all(a["q"] == window_clause(dt.date(2025, 5, 29)) for a in sent(httpserver))


def test_second_page_failure_keeps_first_page_but_not_the_watermark(config, httpserver, run_crawl, db):
    def handler(request):  # counting fails: offset paging, whose second page fails
        if request.args.get("limit") == "0":
            return Response(fixture_bytes("isrctn", "error_page.html"), content_type="text/html")
        if request.args.get("offset") == "0":
            return Response(fixture_bytes("isrctn", "search_page1.xml"), content_type=XML)
        return Response(fixture_bytes("isrctn", "error_page.html"), content_type="text/html")

    httpserver.expect_request(PATH).respond_with_handler(handler)
    report = run_crawl(config(), only=["isrctn"])

    assert report.sources[0].status == "failed"
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 2
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] is None


def test_missing_query_is_a_clear_failure_at_startup(config, httpserver):
    """Checked when the config is loaded, not mid-crawl (issue #10)."""
    with pytest.raises(ConfigError) as info:
        config(query=" ")
    assert info.value.key == "sources.isrctn.query" and "no query configured" in str(info.value)
    with pytest.raises(ConfigError, match="sources.isrctn.page_size: expected an integer >= 1, got 0"):
        config(page_size=0)


# --------------------------------------------------------------------------- parser

TODAY = dt.date(2026, 3, 1)


def one_trial(trial_body: str, extra: str = "") -> bytes:
    return (
        f'<allTrials xmlns="http://www.67bricks.com/isrctn" totalCount="1"><fullTrial>'
        f'<trial lastUpdated="2026-02-01T10:00:00.000Z" publicIdentifierCanonical="ISRCTN11112222">'
        f'<isrctn dateAssigned="2025-01-02T00:00:00.000Z">11112222</isrctn>'
        f"<trialDescription><title>Ketamine trial</title></trialDescription>{trial_body}</trial>{extra}"
        f"</fullTrial></allTrials>"
    ).encode()


def parse_one(trial_body: str) -> isrctn.Record:
    (record,) = isrctn.parse_trials(one_trial(trial_body), today=TODAY)
    return record


@pytest.mark.parametrize(
    "body, status",
    [
        ("<trialDesign><overallEndDate>2025-12-31T00:00:00.000Z</overallEndDate></trialDesign>", "Completed"),
        (
            "<trialDesign><overallEndDate>2027-12-31T00:00:00.000Z</overallEndDate></trialDesign>"
            "<participants><recruitmentStart>2026-06-01T00:00:00.000Z</recruitmentStart>"
            "<recruitmentEnd>2027-06-01T00:00:00.000Z</recruitmentEnd></participants>",
            "Not yet recruiting",
        ),
        (
            "<trialDesign><overallEndDate>2027-12-31T00:00:00.000Z</overallEndDate></trialDesign>"
            "<participants><recruitmentStart>2025-06-01T00:00:00.000Z</recruitmentStart>"
            "<recruitmentEnd>2026-02-01T00:00:00.000Z</recruitmentEnd></participants>",
            "No longer recruiting",
        ),
        (
            "<trialDesign><overallEndDate>2027-12-31T00:00:00.000Z</overallEndDate></trialDesign>"
            "<participants><recruitmentStart>2025-06-01T00:00:00.000Z</recruitmentStart>"
            "<recruitmentEnd>2026-12-01T00:00:00.000Z</recruitmentEnd></participants>",
            "Recruiting",
        ),
        (
            "<trialDesign><overallEndDate>2027-12-31T00:00:00.000Z</overallEndDate></trialDesign>"
            "<participants><recruitmentStart>2025-06-01T00:00:00.000Z</recruitmentStart>"
            "<recruitmentStatusOverride>Suspended</recruitmentStatusOverride></participants>",
            "Suspended",
        ),
        (
            "<trialDesign><overallStatusOverride>Stopped</overallStatusOverride>"
            "<overallEndDate>2025-12-31T00:00:00.000Z</overallEndDate></trialDesign>",
            "Stopped",
        ),
        ("", None),
    ],
)
def test_overall_status_is_computed_from_dates_when_absent(body, status):
    assert parse_one(body).trial["overall_status"] == status


def test_zero_final_enrolment_means_unknown():
    record = parse_one(
        "<participants><targetEnrolment>120</targetEnrolment><totalFinalEnrolment>0</totalFinalEnrolment></participants>"
    )
    assert (record.trial["enrollment"], record.trial["enrollment_type"]) == (120, "ESTIMATED")


def test_external_refs_placeholders_ctis_and_foreign_doi():
    record = parse_one(
        "<externalRefs><doi>10.1186/ISRCTN99998888</doi><eudraCTNumber>Nil known</eudraCTNumber>"
        "<clinicalTrialsGovNumber>N/A</clinicalTrialsGovNumber><secondaryNumbers>"
        '<secondaryNumber numberType="ctis" canonicalSecondaryNumber="CTIS2020-005891-36-00">2020-005891-36</secondaryNumber>'
        '<secondaryNumber numberType="nct" canonicalSecondaryNumber="NCT05057013">NCT05057013</secondaryNumber>'
        "</secondaryNumbers></externalRefs>"
    )
    assert record.identifiers == [("isrctn", "ISRCTN11112222"), ("eudract", "2020-005891-36"), ("nct", "NCT05057013")]
    assert record.extra["registry_doi"] == "10.1186/isrctn99998888"  # not this trial's DOI: not an identifier


def test_publication_details_become_links_not_identifiers():
    record = parse_one(
        "<results><publicationDetails>2024 Protocol article in https://doi.org/10.1186/s13063-024-0001-1 (added 01/02/2024)\n"
        "2025 Results article in https://pubmed.ncbi.nlm.nih.gov/39000001/ (added 03/03/2025)\n"
        "2025 Preprint results in https://doi.org/10.1101/2025.01.02.25300001v2</publicationDetails></results>"
    )
    assert [(l.relation, l.scheme, l.value) for l in record.links] == [
        ("reference", "doi", "10.1186/s13063-024-0001-1"),
        ("result_publication", "pmid", "39000001"),
        ("result_publication", "doi", "10.1101/2025.01.02.25300001"),
    ]
    assert [s for s, _ in record.identifiers] == ["isrctn"]
    assert record.trial["has_results"] is True


def test_title_falls_back_to_scientific_title_and_abstract_skips_placeholders():
    body = one_trial("").replace(
        b"<title>Ketamine trial</title>",
        b"<title /><scientificTitle>A scientific title</scientificTitle>"
        b"<studyHypothesis>Ketamine works.</studyHypothesis>"
        b"<plainEnglishSummary>Not provided at time of registration</plainEnglishSummary>",
    )
    (record,) = isrctn.parse_trials(body, today=TODAY)
    assert record.title == "A scientific title"
    assert record.abstract == "Ketamine works."
    assert (record.entered_on, record.updated_on) == ("2025-01-02", "2026-02-01")


@pytest.mark.parametrize(
    "body, message",
    [
        (b"<root/>", "expected an <allTrials> answer"),
        (b'<allTrials xmlns="http://www.67bricks.com/isrctn"></allTrials>', "totalCount"),
        (b"", "empty ISRCTN answer"),
    ],
)
def test_unusable_answers_raise_source_error(body, message):
    with pytest.raises(SourceError) as info:
        root = isrctn.parse_root(body)
        isrctn.parse_total(root)
    assert message in str(info.value) and "[isrctn]" in str(info.value)


def test_parse_file_reads_every_fixture():
    assert [r.source_id for r in isrctn.parse_file(fixture_bytes("isrctn", "search_page2.xml"), "search_page2.xml")] == [
        "ISRCTN73019256"
    ]
    assert isrctn.parse_file(fixture_bytes("isrctn", "search_empty.xml"), "search_empty.xml") == []
    with pytest.raises(SourceError):
        isrctn.parse_file(fixture_bytes("isrctn", "error_page.html"), "error_page.html")


def test_unreachable_host_fails_without_trying_the_offset_fallback(make_config, run_crawl, db):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = make_config(
        f'\n[sources.isrctn]\nenabled = true\nbase_url = "http://127.0.0.1:{port}/api/"\nquery = "{QUERY}"\nmin_interval = 0\n'
    )
    report = run_crawl(config, only=["isrctn"])
    result = report.sources[0]
    assert result.status == "failed" and "connection refused" in result.error
    assert result.warnings == []  # no "paging with limit/offset instead"
    assert result.requests == 3  # the count request and its 2 retries, nothing more
