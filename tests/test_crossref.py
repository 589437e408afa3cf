"""Crossref source: the real pipeline against a loopback Crossref, plus parser unit tests."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

import pytest
from werkzeug import Response as WResponse

from crawler import store
from crawler.errors import ConfigError, SourceError
from crawler.sources import crossref
from tests.conftest import fixture_bytes, rows
from tests.helpers.sources import crossref_config

PAGE1, PAGE2, PAGE3 = "works_created_page1.json", "works_created_page2.json", "works_created_page3.json"
CURSOR2, CURSOR3, CURSOR4 = "AoJ+c3RhcnQ/page2==", "AoJ+c3RhcnQ/page3==", "AoJ+c3RhcnQ/page4=="


def json_response(name, status=200, headers=None):
    return WResponse(
        fixture_bytes("crossref", name), status=status, headers=headers or {}, content_type="application/json;charset=utf-8"
    )


def serve(httpserver, created=None, updated=None):
    """Answer /works by pass (filter) and cursor; ``created``/``updated`` map cursor -> response."""
    created = created or {"*": PAGE1, CURSOR2: PAGE2, CURSOR3: PAGE3}
    updated = updated or {"*": "works_updated_page1.json"}

    def handler(request):
        table = updated if "from-update-date" in request.args["filter"] else created
        answer = table.get(request.args["cursor"])
        if answer is None:
            return WResponse("unexpected cursor", status=418)
        return answer if isinstance(answer, WResponse) else json_response(answer)

    httpserver.expect_request("/works").respond_with_handler(handler)


def requests_made(httpserver):
    return [request.args.to_dict() for request, _ in httpserver.log]


def source_run(db):
    return rows(db, "SELECT * FROM source_runs ORDER BY id DESC LIMIT 1")[0]


# ------------------------------------------------------------------------------------ pipeline


def test_first_run_pages_with_cursor_and_keeps_matching_works(httpserver, make_config, run_crawl, db, today):
    serve(httpserver)
    report = run_crawl(crossref_config(make_config, httpserver), only=["crossref"])
    assert report.sources[0].status == "ok", report.sources[0].error

    sent = requests_made(httpserver)
    assert [r["cursor"] for r in sent] == ["*", CURSOR2, CURSOR3]  # page 3 has no match: stop, no update pass
    for r in sent:
        assert r["query.bibliographic"] == "ketamine esketamine depression"
        assert r["filter"] == f"from-created-date:2024-01-01,until-created-date:{today},type:journal-article,type:posted-content"
        assert r["rows"] == "3"
        assert r["mailto"] == "tester@example.org"
        assert {"DOI", "abstract", "relation", "update-to", "updated-by", "clinical-trial-number"} <= set(r["select"].split(","))

    records = {r["source_id"]: r for r in rows(db, "SELECT * FROM records")}
    assert set(records) == {
        "10.1176/appi.ajp.2019.19020172",
        "10.1101/2022.12.03.22283062",
        "10.5555/litmon.retraction.2024.007",
        "10.1056/nejmoa2302399",
    }
    assert {r["source"] for r in records.values()} == {"crossref"}
    assert records["10.1101/2022.12.03.22283062"]["record_type"] == "preprint"
    assert records["10.5555/litmon.retraction.2024.007"]["record_type"] == "notice"
    assert records["10.1056/nejmoa2302399"]["record_type"] == "article"
    # preprint and article are distinct works, linked both ways
    assert rows(db, "SELECT COUNT(*) AS n FROM works")[0]["n"] == 4
    ids = rows(db, "SELECT r.source_id, i.scheme, i.value FROM identifiers i JOIN records r ON r.id = i.record_id")
    assert sorted((i["source_id"], i["scheme"], i["value"]) for i in ids) == sorted((k, "doi", k) for k in records)

    links = {
        (r["source_id"], l["relation"], l["scheme"], l["value"])
        for r in records.values()
        for l in rows(db, "SELECT * FROM record_links WHERE record_id = ?", [r["id"]])
    }
    assert links == {
        ("10.1176/appi.ajp.2019.19020172", "registered_as", "nct", "NCT02418585"),
        ("10.1176/appi.ajp.2019.19020172", "correction_in", "doi", "10.5555/litmon.ajp.correction.2019"),
        ("10.1101/2022.12.03.22283062", "preprint_of", "doi", "10.1056/nejmoa2302399"),
        ("10.1101/2022.12.03.22283062", "registered_as", "nct", "NCT03113968"),
        ("10.5555/litmon.retraction.2024.007", "retraction_of", "doi", "10.5555/litmon.ketamine.postpartum.2021"),
        ("10.1056/nejmoa2302399", "has_preprint", "doi", "10.1101/2022.12.03.22283062"),
        ("10.1056/nejmoa2302399", "registered_as", "nct", "NCT03113968"),
    }

    queries = rows(db, "SELECT * FROM source_queries")
    assert len(queries) == 1
    q = queries[0]
    assert (q["query"], q["window_from"], q["window_to"], q["hits"]) == (
        "ketamine esketamine depression",
        "2024-01-01",
        today.isoformat(),
        4,
    )
    params = json.loads(q["params"])
    assert params["pass"] == "created" and params["pages"] == 3 and params["read"] == 9 and params["kept"] == 4
    assert params["stopped"] == "no_match_on_page" and params["total_results"] == 51234

    state = rows(db, "SELECT * FROM source_states WHERE source = 'crossref'")[0]
    assert state["watermark"] == today.isoformat()
    run = source_run(db)
    # fetched = items downloaded on the 3 pages, kept = the 4 that mention the topic
    assert (run["status"], run["fetched"], run["kept"], run["new"], run["requests"]) == ("ok", 9, 4, 4, 3)


def test_incremental_run_adds_update_pass_and_does_not_duplicate(httpserver, make_config, run_crawl, db, today):
    serve(httpserver)
    config = crossref_config(make_config, httpserver)
    assert run_crawl(config, only=["crossref"]).sources[0].status == "ok"
    httpserver.clear_log()

    report = run_crawl(config, only=["crossref"]).sources[0]
    assert report.status == "ok", report.error
    since = (today - dt.timedelta(days=3)).isoformat()
    sent = requests_made(httpserver)
    assert [r["filter"].split(",")[0] for r in sent] == [f"from-created-date:{since}"] * 3 + [f"from-update-date:{since}"]
    assert sent[3]["filter"] == f"from-update-date:{since},until-update-date:{today},type:journal-article,type:posted-content"
    assert sent[3]["cursor"] == "*"  # 2 items < rows: last page, no second request

    assert (report.counts["new"], report.counts["unchanged"], report.counts["updated"]) == (2, 4, 0)
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 6
    assert rows(db, "SELECT COUNT(*) AS n FROM identifiers")[0]["n"] == 6
    retracted = rows(db, "SELECT * FROM records WHERE source_id = '10.5555/litmon.ketamine.postpartum.2021'")[0]
    assert retracted["record_type"] == "article"
    links = rows(db, "SELECT relation, value, note FROM record_links WHERE record_id = ?", [retracted["id"]])
    assert [(l["relation"], l["value"]) for l in links] == [("retraction_in", "10.5555/litmon.retraction.2024.007")]
    assert links[0]["note"] == "publisher; retraction-watch"
    notice = rows(db, "SELECT * FROM records WHERE source_id = '10.5555/litmon.correction.2024.011'")[0]
    assert notice["record_type"] == "notice"
    assert rows(db, "SELECT relation, value FROM record_links WHERE record_id = ?", [notice["id"]]) == [
        {"relation": "correction_for", "value": "10.1056/nejmoa2302399"}
    ]
    # the retraction notice (run 1) and the retracted article (run 2) are linked both ways, not merged
    assert rows(db, "SELECT COUNT(DISTINCT work_id) AS n FROM records")[0]["n"] == 6

    last_queries = rows(db, "SELECT * FROM source_queries WHERE source_run_id = ? ORDER BY id", [source_run(db)["id"]])
    assert [json.loads(q["params"])["pass"] for q in last_queries] == ["created", "updated"]
    assert [q["window_from"] for q in last_queries] == [since, since]
    assert json.loads(last_queries[1]["params"])["stopped"] == "last_page"


def test_empty_answer_and_backfill_slices(httpserver, make_config, run_crawl, db, today):
    serve(httpserver, created={"*": "works_empty.json"})
    report = run_crawl(crossref_config(make_config, httpserver, slice_days=365), only=["crossref"]).sources[0]
    assert report.status == "ok", report.error
    assert report.counts["fetched"] == 0
    filters = [r["filter"] for r in requests_made(httpserver)]
    windows = [(f.split(",")[0].split(":")[1], f.split(",")[1].split(":")[1]) for f in filters]
    assert windows[0] == ("2024-01-01", "2024-12-30") and windows[-1][1] == today.isoformat()
    for (_, end), (start, _) in zip(windows, windows[1:]):  # contiguous, no gap, no overlap
        assert dt.date.fromisoformat(start) == dt.date.fromisoformat(end) + dt.timedelta(days=1)
    queries = rows(db, "SELECT * FROM source_queries")
    assert len(queries) == len(windows)
    assert all(q["hits"] == 0 and json.loads(q["params"])["stopped"] == "empty_page" for q in queries)
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 0
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] == today.isoformat()


def test_max_pages_caps_paging_with_a_warning(httpserver, make_config, run_crawl, db):
    serve(httpserver, created={"*": PAGE1, CURSOR2: PAGE1, CURSOR3: PAGE3})
    report = run_crawl(crossref_config(make_config, httpserver, max_pages=2), only=["crossref"]).sources[0]
    assert report.status == "ok"
    assert [r["cursor"] for r in requests_made(httpserver)] == ["*", CURSOR2]
    assert report.counts["kept"] == 2  # the same page twice: records yielded once
    assert report.counts["fetched"] == 6  # ... but downloaded twice
    assert any("max_pages=2" in w for w in json.loads(source_run(db)["warnings"]))
    assert json.loads(rows(db, "SELECT params FROM source_queries")[0]["params"])["stopped"] == "max_pages"


def seed_previous_success(db, today):
    watermark = (today - dt.timedelta(days=20)).isoformat()
    store.save_source_success(db, "crossref", watermark, {})
    return watermark


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda: json_response("works_cursor_invalid_404.json", status=404), "cursor-invalid"),
        (lambda: json_response("works_exception_500.json", status=500), "Crossref internal error"),
        (
            lambda: WResponse(fixture_bytes("crossref", "gateway_timeout_504.html"), status=504, content_type="text/html"),
            "504 Gateway Time-out",
        ),
        (
            lambda: WResponse(fixture_bytes("crossref", "not_found_404.txt"), status=404, content_type="text/plain"),
            "Resource not found.",
        ),
        (
            lambda: WResponse(fixture_bytes("crossref", PAGE2)[:700], status=200, content_type="application/json"),
            "JSON answer is cut off",
        ),
    ],
)
def test_error_on_second_page_fails_the_run_without_losing_data(httpserver, make_config, run_crawl, db, today, answer, expected):
    # a first, successful run stores records; then an older watermark is put back to see it not move
    serve(httpserver)
    config = crossref_config(make_config, httpserver)
    run_crawl(config, only=["crossref"])
    before = rows(db, "SELECT source_id, content_hash FROM records ORDER BY id")
    watermark = seed_previous_success(db, today)
    httpserver.clear()
    serve(httpserver, created={"*": PAGE1, CURSOR2: answer()})

    report = run_crawl(config, only=["crossref"]).sources[0]
    assert report.status == "failed"
    assert report.error.startswith("[crossref]") and expected in report.error
    assert "check:" in report.error
    run = source_run(db)
    assert run["status"] == "failed" and expected in run["error"]
    assert rows(db, "SELECT source_id, content_hash FROM records ORDER BY id") == before
    state = rows(db, "SELECT * FROM source_states")[0]
    assert state["watermark"] == watermark and state["consecutive_failures"] == 1
    query = rows(db, "SELECT * FROM source_queries WHERE source_run_id = ?", [run["id"]])[0]
    assert json.loads(query["params"])["stopped"] == "error"
    assert query["window_from"] == (today - dt.timedelta(days=23)).isoformat()


def test_server_errors_are_retried_before_failing(httpserver, make_config, run_crawl, db):
    serve(
        httpserver,
        created={"*": WResponse(fixture_bytes("crossref", "gateway_timeout_504.html"), status=504, content_type="text/html")},
    )
    report = run_crawl(crossref_config(make_config, httpserver), only=["crossref"]).sources[0]
    assert report.status == "failed" and "HTTP 504" in report.error
    assert len(httpserver.log) == 3  # the shared client's max_retries = 2 in the test config
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] is None


def test_rejected_parameters_fail_with_the_reason(httpserver, make_config, run_crawl):
    serve(httpserver, created={"*": json_response("works_validation_400.json", status=400)})
    report = run_crawl(crossref_config(make_config, httpserver), only=["crossref"]).sources[0]
    assert report.status == "failed"
    assert "integer-not-valid" in report.error and "page_size" in report.error


def test_rate_limit_headers_widen_the_host_interval(httpserver, make_config, run_crawl, http_client):
    headers = {"X-Rate-Limit-Limit": "50", "X-Rate-Limit-Interval": "1s"}
    serve(httpserver, created={"*": json_response(PAGE1, headers=headers), CURSOR2: PAGE3})
    assert run_crawl(crossref_config(make_config, httpserver), only=["crossref"]).sources[0].status == "ok"
    host = urlsplit(httpserver.url_for("/")).netloc
    assert http_client.min_intervals[host] == pytest.approx(0.02)


def test_rate_limit_headers_never_narrow_a_wider_interval(httpserver, make_config, run_crawl, http_client):
    headers = {"X-Rate-Limit-Limit": "50", "X-Rate-Limit-Interval": "1s"}
    serve(httpserver, created={"*": json_response("works_empty.json", headers=headers)})
    assert run_crawl(crossref_config(make_config, httpserver, min_interval=0.05), only=["crossref"]).sources[0].status == "ok"
    assert http_client.min_intervals[urlsplit(httpserver.url_for("/")).netloc] == pytest.approx(0.05)


def test_default_spacing_is_the_polite_pool_limit_with_a_contact_address(httpserver, make_config, run_crawl, http_client):
    # a live answer in 2026: x-rate-limit-limit 3 per 1s; our default spacing already respects it
    headers = {"X-Rate-Limit-Limit": "3", "X-Rate-Limit-Interval": "1s"}
    serve(httpserver, created={"*": json_response("works_empty.json", headers=headers)})
    assert run_crawl(crossref_config(make_config, httpserver, min_interval=None), only=["crossref"]).sources[0].status == "ok"
    assert http_client.min_intervals[urlsplit(httpserver.url_for("/")).netloc] == pytest.approx(1 / 3)
    assert requests_made(httpserver)[0]["mailto"] == "tester@example.org"


def test_without_a_contact_address_the_public_pool_spacing_and_no_mailto(httpserver, make_config, run_crawl, http_client):
    serve(httpserver, created={"*": "works_empty.json"})
    config = crossref_config(make_config, httpserver, min_interval=None)
    config.contact_email = "litmon-operator@example.org"  # the shipped placeholder: nobody configured one
    assert run_crawl(config, only=["crossref"]).sources[0].status == "ok"
    assert http_client.min_intervals[urlsplit(httpserver.url_for("/")).netloc] == pytest.approx(1.0)
    assert "mailto" not in requests_made(httpserver)[0]


def test_advertised_limit_stricter_than_the_pool_widens_the_default(httpserver, make_config, run_crawl, http_client):
    headers = {"X-Rate-Limit-Limit": "1", "X-Rate-Limit-Interval": "2s"}
    serve(httpserver, created={"*": json_response("works_empty.json", headers=headers)})
    assert run_crawl(crossref_config(make_config, httpserver, min_interval=None), only=["crossref"]).sources[0].status == "ok"
    assert http_client.min_intervals[urlsplit(httpserver.url_for("/")).netloc] == pytest.approx(2.0)


SELECT_NOT_AVAILABLE = {
    "status": "failed",
    "message-type": "validation-failure",
    "message": [
        {
            "type": "select-not-available",
            "value": "published",
            "message": "Select 'published' specified but there is no such select for this route.",
        }
    ],
}


def test_rejected_select_field_is_dropped_with_a_warning_and_the_page_retried(httpserver, make_config, run_crawl, db):
    def handler(request):
        if "published" in request.args["select"].split(","):
            return WResponse(json.dumps(SELECT_NOT_AVAILABLE), status=400, content_type="application/json")
        return json_response({"*": PAGE1, CURSOR2: PAGE2, CURSOR3: PAGE3}[request.args["cursor"]])

    httpserver.expect_request("/works").respond_with_handler(handler)
    report = run_crawl(crossref_config(make_config, httpserver), only=["crossref"]).sources[0]

    assert report.status == "ok", report.error
    sent = requests_made(httpserver)
    # one rejected request, then every page without the field (it is not tried again on later pages)
    assert [(r["cursor"], "published" in r["select"].split(",")) for r in sent] == [
        ("*", True),
        ("*", False),
        (CURSOR2, False),
        (CURSOR3, False),
    ]
    assert "published-online" in sent[1]["select"].split(",")
    [warning] = json.loads(source_run(db)["warnings"])
    assert "'published'" in warning and "select-not-available" in warning
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 4


def test_select_rejected_again_after_the_retry_fails_the_source(httpserver, make_config, run_crawl):
    body = json.dumps(SELECT_NOT_AVAILABLE).replace("published", "abstract")
    calls = []

    def handler(request):
        calls.append(request.args["select"])
        first = json.dumps(SELECT_NOT_AVAILABLE)
        return WResponse(first if len(calls) == 1 else body, status=400, content_type="application/json")

    httpserver.expect_request("/works").respond_with_handler(handler)
    report = run_crawl(crossref_config(make_config, httpserver), only=["crossref"]).sources[0]
    assert report.status == "failed"
    assert "select-not-available" in report.error and "'abstract'" in report.error
    assert len(calls) == 2


def test_missing_query_is_a_clear_error_at_startup(httpserver, make_config):
    """Checked when the config is loaded, not mid-crawl (issue #10)."""
    with pytest.raises(ConfigError) as info:
        crossref_config(make_config, httpserver, query='""')
    assert info.value.key == "sources.crossref.query" and "no query configured" in str(info.value)
    with pytest.raises(ConfigError, match="sources.crossref.max_pages: expected an integer >= 1, got 0"):
        crossref_config(make_config, httpserver, max_pages=0)


# ------------------------------------------------------------------------------------ parsers


def item(**fields):
    base = {"DOI": "10.5555/test.1", "type": "journal-article", "title": ["Ketamine"]}
    base.update(fields)
    return base


def test_parse_page_fields():
    records = {r.source_id: r for r in crossref.parse_works(fixture_bytes("crossref", PAGE1))}
    rct = records["10.1176/appi.ajp.2019.19020172"]
    assert rct.authors == ["Vanina Popova", "Ella J. Daly", "Madhukar Trivedi", "TRANSFORM-2 Study Group"]
    assert rct.journal == "American Journal of Psychiatry"
    assert (rct.published_on, rct.entered_on, rct.updated_on) == ("2019-06-01", "2019-05-21", "2024-03-02")
    assert rct.url == "https://doi.org/10.1176/appi.ajp.2019.19020172"
    assert rct.abstract.split("\n") == [
        "Objective: The authors compared esketamine nasal spray plus a new oral antidepressant with placebo spray plus a new oral antidepressant in adults with treatment-resistant depression.",
        "Methods: A phase 3, double-blind trial (ClinicalTrials.gov NCT02418585) randomised 223 patients; change in MADRS score at day 28 was the primary outcome (p=0.02).",
        "Conclusions: Esketamine plus a new antidepressant improved depressive symptoms more than the antidepressant with placebo.",
    ]
    assert rct.keywords == ["Psychiatry and Mental health"]
    preprint = records["10.1101/2022.12.03.22283062"]
    assert preprint.title.endswith("non-inferiority trial (ELEKT-D) & its safety")
    assert (preprint.journal, preprint.published_on, preprint.record_type) == ("medRxiv", "2022-12-05", "preprint")
    assert preprint.identifiers == [("doi", "10.1101/2022.12.03.22283062")]
    assert [(l.relation, l.value) for l in preprint.links if l.relation == "preprint_of"] == [
        ("preprint_of", "10.1056/nejmoa2302399")
    ]
    assert preprint.publication_types == ["posted-content", "preprint"]


@pytest.mark.parametrize(
    "parts, expected",
    [
        ([[2019, 4, 3]], "2019-04-03"),
        ([[2019, 4]], "2019-04"),
        ([[2025]], "2025"),
        ([[None]], None),
        ([[2021, 2, 30]], "2021-02"),
        ([[2021, 13]], "2021"),
        ([], None),
        ([["2020", "1", "5"]], "2020-01-05"),
    ],
)
def test_partial_dates(parts, expected):
    assert crossref.parse_date_parts({"date-parts": parts}) == expected


def test_published_prefers_posted_for_preprints_and_issued_for_articles():
    assert (
        crossref.parse_published(
            item(type="posted-content", posted={"date-parts": [[2020, 2, 19]]}, issued={"date-parts": [[2020, 3]]})
        )
        == "2020-02-19"
    )
    assert (
        crossref.parse_published(item(issued={"date-parts": [[2019, 4]]}, **{"published-online": {"date-parts": [[2019, 4, 3]]}}))
        == "2019-04"
    )
    assert (
        crossref.parse_published(item(issued={"date-parts": [[None]]}, **{"published-print": {"date-parts": [[2001]]}})) == "2001"
    )


def test_titles_lose_tags_and_entities():
    record = crossref.parse_item(
        item(
            title=["<scp>Ketamine</scp> and <i>N</i>-methyl-<sc>d</sc>-aspartate &amp; mood &#8212; a review"],
            subtitle=["Mechanisms &lt;and&gt; models"],
        )
    )
    assert record.title == "Ketamine and N -methyl- d -aspartate & mood — a review: Mechanisms <and> models"


def test_abstract_with_mathml_entities_and_invalid_xml():
    mathml = (
        '<jats:p>Count (<mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mn>5</mml:mn><mml:mo>×</mml:mo>'
        "<mml:msup><mml:mn>10</mml:mn><mml:mn>9</mml:mn></mml:msup></mml:math>/L) after ketamine&nbsp;infusion.</jats:p>"
    )
    assert crossref.parse_abstract(mathml) == "Count (5×10^9/L) after ketamine infusion."  # &nbsp; folded like any space
    broken = "<jats:sec><jats:title>Results</jats:title><jats:p>p < 0.05 & MADRS fell</jats:p></jats:sec><jats:p>More</jats:p>"
    assert crossref.parse_abstract(broken) == "Results: p < 0.05 & MADRS fell\nMore"
    assert crossref.parse_abstract("<p>Plain <sub>2</sub> HTML</p>") == "Plain 2 HTML"
    assert crossref.parse_abstract("<jats:p />") is None
    assert crossref.parse_abstract("No markup at all.") == "No markup at all."


def test_relations_only_link_dois_and_skip_self_references():
    record = crossref.parse_item(
        item(
            relation={
                "is-preprint-of": [
                    {"id-type": "uri", "id": "https://example.org/x"},
                    {"id-type": "doi", "id": "https://doi.org/10.1000/J.X.1"},
                ],
                "is-version-of": [{"id-type": "doi", "id": "10.5555/test.1"}, {"id-type": "doi", "id": "10.5555/test.0"}],
                "has-review": [{"id-type": "doi", "id": "10.5555/review.1"}],
                "cites": [],
            }
        )
    )
    assert [(l.relation, l.value, l.note) for l in record.links] == [
        ("preprint_of", "10.1000/j.x.1", None),
        ("version_of", "10.5555/test.0", "is-version-of"),
    ]
    assert record.identifiers == [("doi", "10.5555/test.1")]


def test_update_to_makes_a_notice_but_not_when_it_points_at_itself():
    notice = crossref.parse_item(
        item(
            title=["Expression of Concern"],
            **{
                "update-to": [
                    {"DOI": "10.5555/a", "type": "expression_of_concern"},
                    {"DOI": "10.5555/b", "type": "erratum"},
                    {"DOI": "10.5555/c", "type": "addendum"},
                ]
            },
        )
    )
    assert notice.record_type == "notice"
    assert [(l.relation, l.value, l.note) for l in notice.links] == [
        ("expression_of_concern_for", "10.5555/a", None),
        ("correction_for", "10.5555/b", "erratum"),
        ("update_of", "10.5555/c", "addendum"),
    ]
    in_place = crossref.parse_item(
        item(title=["End of aging"], **{"update-to": [{"DOI": "10.5555/TEST.1", "type": "correction"}]})
    )
    assert (in_place.record_type, in_place.links) == ("article", [])


@pytest.mark.parametrize(
    "title, updated_by, expected",
    [
        ("Retraction: Ketamine for depression", None, "notice"),
        ("Retracted: Influence of ketamine on mood in rats", None, "notice"),
        (
            "RETRACTED: Ketamine for depression",
            [{"DOI": "10.5555/n", "type": "retraction", "source": "retraction-watch"}],
            "article",
        ),
        ("Retraction Note to: Esketamine in adolescents", None, "notice"),
        ("Correction to: Esketamine nasal spray", None, "notice"),
        ("Erratum", None, "notice"),
        ("Correction of hyponatraemia after ketamine", None, "article"),
        ("Retraction of the tongue under ketamine anaesthesia", None, "article"),
    ],
)
def test_notice_titles(title, updated_by, expected):
    record = crossref.parse_item(item(title=[title], **({"updated-by": updated_by} if updated_by else {})))
    assert record.record_type == expected


def test_updated_by_links_with_source_notes():
    record = crossref.parse_item(
        item(
            **{
                "updated-by": [
                    {"DOI": "10.5555/r", "type": "retraction", "source": "retraction-watch"},
                    {"DOI": "10.5555/e", "type": "expression_of_concern", "source": "publisher"},
                    {"DOI": "10.5555/c", "type": "corrigendum", "source": "publisher"},
                    {"DOI": "10.5555/v", "type": "new_version"},
                ]
            }
        )
    )
    assert [(l.relation, l.value, l.note) for l in record.links] == [
        ("retraction_in", "10.5555/r", "retraction-watch"),
        ("expression_of_concern_in", "10.5555/e", "publisher"),
        ("correction_in", "10.5555/c", "corrigendum; publisher"),
        ("update_in", "10.5555/v", "new_version"),
    ]


def test_trial_numbers_are_links_not_identifiers():
    record = crossref.parse_item(
        item(
            abstract="<jats:p>Registered as ISRCTN 12345678 and EudraCT 2019-001234-56.</jats:p>",
            **{
                "clinical-trial-number": [
                    {"clinical-trial-number": "nct02418585", "registry": "10.18810/clinical-trials-gov"},
                    {"clinical-trial-number": "03113968", "registry": "10.18810/clinical-trials-gov"},
                    {"clinical-trial-number": "isrctn75784880", "registry": "10.18810/isrctn"},
                    {"clinical-trial-number": "2019-001234-56", "registry": "10.18810/euctr"},
                    {"clinical-trial-number": "ACTRN12615000123456", "registry": "10.18810/anzctr"},
                    {"clinical-trial-number": "12345", "registry": "10.18810/unknown"},
                ]
            },
        )
    )
    assert [(l.scheme, l.value) for l in record.links if l.relation == "registered_as"] == [
        ("nct", "NCT02418585"),
        ("nct", "NCT03113968"),
        ("isrctn", "ISRCTN75784880"),
        ("eudract", "2019-001234-56"),
        ("isrctn", "ISRCTN12345678"),
    ]
    assert record.identifiers == [("doi", "10.5555/test.1")]
    assert record.extra["trial_numbers_unrecognised"] == ["ACTRN12615000123456", "12345"]


def test_items_without_doi_are_skipped_and_types_mapped():
    assert crossref.parse_item({"type": "journal-article", "title": ["Ketamine"]}) is None
    assert crossref.parse_item(item(type="book-chapter")).record_type == "other"


def test_parse_rate_limit():
    assert crossref.parse_rate_limit("50", "1s") == pytest.approx(0.02)
    assert crossref.parse_rate_limit("5", "1s") == pytest.approx(0.2)
    assert crossref.parse_rate_limit("10", "1m") == pytest.approx(6.0)
    assert crossref.parse_rate_limit(None, "1s") is None
    assert crossref.parse_rate_limit("many", "1s") is None
    assert crossref.parse_rate_limit("50", "soon") is None


@pytest.mark.parametrize(
    "name, expected",
    [
        ("works_cursor_invalid_404.json", "cursor-invalid"),
        ("works_exception_500.json", "internal error"),
        ("works_validation_400.json", "integer-not-valid"),
        ("gateway_timeout_504.html", "504 Gateway Time-out"),
        ("not_found_404.txt", "Resource not found."),
    ],
)
def test_parse_file_raises_source_errors(name, expected):
    with pytest.raises(SourceError) as err:
        crossref.parse_file(fixture_bytes("crossref", name), name)
    assert expected in str(err.value) and str(err.value).startswith("[crossref]")


def test_parse_file_reads_lists_and_single_works():
    assert crossref.parse_file(fixture_bytes("crossref", "works_empty.json"), "works_empty.json") == []
    assert len(crossref.parse_file(fixture_bytes("crossref", PAGE2), PAGE2)) == 3
    single = json.loads(fixture_bytes("crossref", PAGE2))
    single["message-type"], single["message"] = "work", single["message"]["items"][1]
    records = crossref.parse_file(json.dumps(single).encode(), "work.json")
    assert [r.source_id for r in records] == ["10.1056/nejmoa2302399"]
    with pytest.raises(SourceError):
        crossref.parse_file(b"[1, 2]", "list.json")
    with pytest.raises(SourceError):
        crossref.parse_file(b"", "empty.json")


def test_bad_slice_days_is_a_config_error(httpserver, make_config):
    with pytest.raises(ConfigError, match=r"sources\.crossref\.slice_days: expected an integer >= 1, got 0"):
        crossref_config(make_config, httpserver, slice_days=0)


# ------------------------------------------------------------------------------- large answers


def large_page(n: int, *, broken_after: int | None = None) -> bytes:
    """A work-list page of ``n`` on-topic items (invented DOIs 10.5555/large.N); ``broken_after``: the
    JSON turns malformed after that many good items (the rest of the body is never valid again)."""
    items = [
        json.dumps(
            {
                "DOI": f"10.5555/large.{i}",
                "type": "journal-article",
                "title": [f"Esketamine nasal spray in treatment-resistant depression: cohort {i}"],
                "container-title": ["Journal of Affective Disorders"],
                "issued": {"date-parts": [[2026, 11, 1 + i % 20]]},
                "created": {"date-parts": [[2026, 11, 20]], "date-time": "2026-11-20T10:00:00Z", "timestamp": 0},
            }
        )
        for i in range(n)
    ]
    if broken_after is not None:
        items = items[:broken_after] + ['{"DOI": "10.5555/large.bad", "title": ["Ketamine" ; ]}'] + items[broken_after:]
    head = '{"status":"ok","message-type":"work-list","message":{"total-results":' + str(n) + ',"items":['
    return (head + ",".join(items) + "]}}").encode()


def test_a_large_page_is_read_item_by_item_and_saved_in_batches(httpserver, make_config, run_crawl, db):
    n = crossref.STREAM_BATCH + 100  # more than one batch from a single answer
    body = large_page(n)
    serve(httpserver, created={"*": WResponse(body, content_type="application/json")})
    report = run_crawl(crossref_config(make_config, httpserver, page_size=1000), only=["crossref"]).sources[0]
    assert report.status == "ok", report.error
    stored = {r["source_id"] for r in rows(db, "SELECT source_id FROM records WHERE source = 'crossref'")}
    assert stored == {f"10.5555/large.{i}" for i in range(n)}
    assert json.loads(rows(db, "SELECT params FROM source_queries")[0]["params"])["read"] == n


def test_a_body_malformed_after_many_good_items_fails_the_source_and_saves_none_of_that_page(
    httpserver, make_config, run_crawl, db
):
    # page 1 is fine; page 2 is a large answer that breaks after 550 good items (more than a batch)
    broken = WResponse(large_page(crossref.STREAM_BATCH + 100, broken_after=550), content_type="application/json")
    serve(httpserver, created={"*": PAGE1, CURSOR2: broken})
    report = run_crawl(crossref_config(make_config, httpserver), only=["crossref"]).sources[0]
    assert report.status == "failed"
    assert report.error.startswith("[crossref]") and "malformed JSON" in report.error, report.error
    stored = [r["source_id"] for r in rows(db, "SELECT source_id FROM records WHERE source = 'crossref'")]
    assert stored and not [s for s in stored if s.startswith("10.5555/")]  # page 1 kept, nothing of page 2
    assert len(httpserver.log) == 2  # malformed (not cut off): not retried
