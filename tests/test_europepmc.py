"""Europe PMC source: the real pipeline against pytest-httpserver, plus parser unit tests."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from werkzeug import Response

from crawler import store
from crawler.errors import SourceError
from crawler.sources import europepmc
from tests.conftest import fixture_bytes, rows

C1 = "AoIIP4ZawSg0Mzc5MjYxMw=="
RECHECK = 'PUB_TYPE:"retracted publication"'


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes("europepmc", name))


def epmc_config(make_config, httpserver, **settings):
    values = {
        "enabled": True,
        "base_url": httpserver.url_for("/rest/"),
        "query": "ketamine AND depression",
        "page_size": 3,
        "min_interval": 0,
        **settings,
    }
    lines = ["[sources.europepmc]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return make_config("\n".join(lines) + "\n")


def serve(httpserver, pages: dict, recheck=None):
    """Answer /rest/search by cursorMark (window pass) or with ``recheck`` (recheck pass)."""

    def handler(request):
        if RECHECK in request.args["query"]:
            body = recheck
        else:
            body = pages[request.args["cursorMark"]]
        if isinstance(body, Response):
            return body
        if isinstance(body, dict):
            body = json.dumps(body)
        return Response(body, status=200, content_type="application/json;charset=UTF-8")

    httpserver.expect_request("/rest/search").respond_with_handler(handler)


def standard_pages():
    return {"*": fixture_bytes("europepmc", "core_page1.json"), C1: fixture_bytes("europepmc", "core_page2.json")}


def sent(httpserver) -> list[dict]:
    return [dict(request.args) for request, _ in httpserver.log]


def last_run(db) -> dict:
    return rows(db, "SELECT * FROM source_runs WHERE source = 'europepmc' ORDER BY id DESC LIMIT 1")[0]


def state(db) -> dict:
    return rows(db, "SELECT * FROM source_states WHERE source = 'europepmc'")[0]


# --------------------------------------------------------------------------- pipeline


def test_first_run_follows_the_cursor_chain_and_stores_everything(make_config, httpserver, run_crawl, db, today):
    serve(httpserver, standard_pages())
    report = run_crawl(epmc_config(make_config, httpserver), only=["europepmc"])

    assert report.sources[0].status == "ok", report.sources[0].error
    requests = sent(httpserver)
    assert [r["cursorMark"] for r in requests] == ["*", C1]  # page 2 repeats its cursor: the end
    window = f"(ketamine AND depression) AND (FIRST_IDATE:[2024-01-01 TO {today.isoformat()}])"
    for params in requests:
        assert params["query"] == window
        assert params["resultType"] == "core"
        assert params["format"] == "json"
        assert params["pageSize"] == "3"
        assert params["email"] == "tester@example.org"
        assert "synonym" not in params
    # first run: the window already covers backfill_from, so no recheck pass
    assert not any(RECHECK in r["query"] for r in requests)

    run = last_run(db)
    assert (run["status"], run["fetched"], run["new"], run["window_from"]) == ("ok", 5, 5, "2024-01-01")
    queries = rows(db, "SELECT * FROM source_queries WHERE source = 'europepmc'")
    assert len(queries) == 1
    assert (queries[0]["query"], queries[0]["hits"], queries[0]["window_from"]) == (window, 5, "2024-01-01")
    assert json.loads(queries[0]["params"])["pages"] == 2
    assert state(db)["watermark"] == today.isoformat()

    records = {r["source_id"]: r for r in rows(db, "SELECT * FROM records WHERE source = 'europepmc'")}
    assert set(records) == {"MED/37792613", "PPR/PPR700123", "MED/38100001", "MED/30000001", "PMC/PMC10999999"}
    assert records["PPR/PPR700123"]["record_type"] == "preprint"
    assert records["MED/38100001"]["record_type"] == "notice"
    # the preprint and its journal article are two works, linked, sharing no identifier
    assert records["PPR/PPR700123"]["work_id"] != records["MED/37792613"]["work_id"]
    ids = {
        (r["source_id"], r["scheme"], r["value"])
        for r in rows(db, "SELECT records.source_id, scheme, value FROM identifiers JOIN records ON records.id = record_id")
    }
    assert ("MED/37792613", "doi", "10.1056/nejmoa2304145") in ids
    assert ("PPR/PPR700123", "doi", "10.1101/2023.06.20.23291634") in ids
    assert ("PPR/PPR700123", "ppr", "PPR700123") in ids
    assert not any(s == "PPR/PPR700123" and v == "10.1056/nejmoa2304145" for s, _, v in ids)
    assert ("MED/30000001", "pmcid", "PMC6400001") in ids
    links = {
        (r["source_id"], r["relation"], r["scheme"], r["value"])
        for r in rows(
            db, "SELECT records.source_id, relation, scheme, value FROM record_links JOIN records ON records.id = record_id"
        )
    }
    assert ("MED/37792613", "has_preprint", "ppr", "PPR700123") in links
    assert ("PPR/PPR700123", "preprint_of", "pmid", "37792613") in links
    assert ("MED/38100001", "retraction_of", "pmid", "30000001") in links
    assert ("MED/30000001", "retraction_in", "pmid", "38100001") in links
    assert ("MED/37792613", "registered_as", "nct", "NCT04338321") in links


def test_empty_answer_is_a_successful_run(make_config, httpserver, run_crawl, db, today):
    serve(httpserver, {"*": fixture_bytes("europepmc", "core_empty.json")})
    report = run_crawl(epmc_config(make_config, httpserver, page_size=5000), only=["europepmc"])

    assert report.sources[0].status == "ok"
    requests = sent(httpserver)
    assert len(requests) == 1
    assert requests[0]["pageSize"] == "1000"  # Europe PMC's maximum
    run = last_run(db)
    assert (run["fetched"], run["new"]) == (0, 0)
    assert "page_size 5000" in run["warnings"]
    assert rows(db, "SELECT hits FROM source_queries")[0]["hits"] == 0
    assert state(db)["watermark"] == today.isoformat()


def test_an_empty_page_ends_the_chain_even_with_a_fresh_cursor(make_config, httpserver, run_crawl, db):
    page = fixture_json("core_empty.json")
    page.update(hitCount=7, nextCursorMark="AoIIP4ZawSg0NEW=")
    serve(httpserver, {"*": page})
    report = run_crawl(epmc_config(make_config, httpserver), only=["europepmc"])

    assert report.sources[0].status == "ok"
    assert len(httpserver.log) == 1


def test_http_error_fails_the_run_and_keeps_data_and_watermark(make_config, httpserver, run_crawl, db):
    config = epmc_config(make_config, httpserver)
    serve(httpserver, standard_pages())
    run_crawl(config, only=["europepmc"])
    store.save_source_success(db, "europepmc", "2024-05-01", {})  # as if the last success was then
    httpserver.clear()
    httpserver.expect_request("/rest/search").respond_with_data("upstream timeout", status=500)

    report = run_crawl(config, only=["europepmc"])

    assert report.sources[0].status == "failed"
    assert len(httpserver.log) == 3  # one try + max_retries = 2
    run = last_run(db)
    assert run["status"] == "failed"
    assert run["window_from"] == "2024-04-28"  # watermark − overlap_days
    assert run["error"].startswith("[europepmc] HTTP 500")
    assert state(db)["watermark"] == "2024-05-01"
    assert state(db)["consecutive_failures"] == 1
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 5


def test_html_page_midway_fails_and_keeps_the_pages_already_stored(make_config, httpserver, run_crawl, db):
    pages = standard_pages()
    pages[C1] = Response(fixture_bytes("europepmc", "error.html"), status=200, content_type="text/html")
    serve(httpserver, pages)
    report = run_crawl(epmc_config(make_config, httpserver), only=["europepmc"])

    assert report.sources[0].status == "failed"
    error = last_run(db)["error"]
    assert error.startswith("[europepmc]") and "HTML page" in error
    stored = {r["source_id"] for r in rows(db, "SELECT source_id FROM records")}
    assert stored == {"MED/37792613", "PPR/PPR700123", "MED/38100001"}  # page 1 only
    assert state(db)["watermark"] is None


def test_json_error_answer_fails_with_its_message(make_config, httpserver, run_crawl, db):
    serve(httpserver, {"*": {"version": "6.9", "errMsg": "Invalid query: unbalanced parentheses"}})
    report = run_crawl(epmc_config(make_config, httpserver), only=["europepmc"])

    assert report.sources[0].status == "failed"
    assert "Invalid query: unbalanced parentheses" in last_run(db)["error"]
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 0


def test_too_many_hits_fail_before_storing(make_config, httpserver, run_crawl, db):
    serve(httpserver, standard_pages())
    report = run_crawl(epmc_config(make_config, httpserver, max_records=4), only=["europepmc"])

    assert report.sources[0].status == "failed"
    assert "max_records=4" in last_run(db)["error"]
    assert len(httpserver.log) == 1
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 0


def test_incremental_run_uses_the_watermark_and_rechecks_retractions(make_config, httpserver, run_crawl, db, today):
    config = epmc_config(make_config, httpserver)
    serve(httpserver, standard_pages())
    run_crawl(config, only=["europepmc"])
    httpserver.clear()
    # the same records again; only their citation counts moved (not part of a record)
    page1, page2 = fixture_json("core_page1.json"), fixture_json("core_page2.json")
    for item in page1["resultList"]["result"] + page2["resultList"]["result"]:
        item["citedByCount"] += 10
    serve(httpserver, {"*": page1, C1: page2}, recheck=fixture_bytes("europepmc", "core_recheck.json"))

    report = run_crawl(config, only=["europepmc"])

    assert report.sources[0].status == "ok", report.sources[0].error
    since = (today - dt.timedelta(days=3)).isoformat()
    queries = [r["query"] for r in sent(httpserver)]
    assert queries == [
        f"(ketamine AND depression) AND (FIRST_IDATE:[{since} TO {today.isoformat()}])",
        f"(ketamine AND depression) AND (FIRST_IDATE:[{since} TO {today.isoformat()}])",
        f"(ketamine AND depression) AND ({RECHECK}) AND (FIRST_IDATE:[2024-01-01 TO {today.isoformat()}])",
    ]
    run = last_run(db)
    assert (run["window_from"], run["fetched"], run["new"], run["updated"], run["unchanged"]) == (since, 5, 0, 0, 5)
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 5
    logged = rows(db, "SELECT query, hits, window_from, params FROM source_queries WHERE source_run_id = ?", [run["id"]])
    assert [(q["hits"], q["window_from"], json.loads(q["params"])["pass"]) for q in logged] == [
        (5, since, "window"),
        (1, "2024-01-01", "recheck"),
    ]


def test_recheck_pass_picks_up_a_retraction_added_later(make_config, httpserver, run_crawl, db):
    config = epmc_config(make_config, httpserver)
    before = fixture_json("core_page2.json")
    article = before["resultList"]["result"][0]
    article["pubTypeList"]["pubType"].remove("Retracted Publication")
    article["commentCorrectionList"]["commentCorrection"].pop()  # no "Retraction in" yet
    serve(httpserver, {"*": fixture_bytes("europepmc", "core_page1.json"), C1: before})
    run_crawl(config, only=["europepmc"])
    httpserver.clear()
    serve(
        httpserver, {"*": fixture_bytes("europepmc", "core_empty.json")}, recheck=fixture_bytes("europepmc", "core_recheck.json")
    )

    run_crawl(config, only=["europepmc"])

    run = last_run(db)
    assert (run["status"], run["fetched"], run["updated"]) == ("ok", 1, 1)
    links = rows(
        db,
        """SELECT relation, value FROM record_links JOIN records ON records.id = record_id
                        WHERE records.source_id = 'MED/30000001' AND relation = 'retraction_in'""",
    )
    assert links == [{"relation": "retraction_in", "value": "38100001"}]


def test_recheck_can_be_switched_off(make_config, httpserver, run_crawl, db):
    config = epmc_config(make_config, httpserver, recheck_filter="", synonym=True)
    serve(httpserver, {"*": fixture_bytes("europepmc", "core_empty.json")})
    run_crawl(config, only=["europepmc"])
    run_crawl(config, only=["europepmc"])

    requests = sent(httpserver)
    assert len(requests) == 2
    assert not any(RECHECK in r["query"] for r in requests)
    assert all(r["synonym"] == "true" for r in requests)


# --------------------------------------------------------------------------- parsing


def core_records() -> dict:
    records = europepmc.parse_search(fixture_bytes("europepmc", "core_page1.json"))
    records += europepmc.parse_search(fixture_bytes("europepmc", "core_page2.json"))
    return {r.source_id: r for r in records}


def test_parse_core_article():
    r = core_records()["MED/37792613"]
    assert r.source == "europepmc"
    assert r.record_type == "article"
    assert r.title == "Esketamine Nasal Spray versus Quetiapine for Treatment-Resistant Depression."
    assert r.url == "https://europepmc.org/article/MED/37792613"
    paragraphs = r.abstract.split("\n\n")
    assert [p.split(":")[0] for p in paragraphs] == ["Background", "Methods", "Results", "Conclusions"]
    assert "adults with treatment-resistant depression" in r.abstract  # <i> removed
    assert "(27.1% vs. 17.6%; P = 0.003)" in r.abstract  # &nbsp; decoded and folded
    assert "(P < 0.05)" in r.abstract  # a bare "<" is not a tag
    assert r.authors == ["Reif A", "Bitter I", "Buyze J", "Cebulla K", "ESCAPE-TRD Investigators"]
    assert r.journal == "The New England journal of medicine"
    assert (r.published_on, r.entered_on, r.updated_on) == ("2023-10-05", "2023-10-05", "2024-01-10")
    assert r.publication_types == ["Randomized Controlled Trial", "Comparative Study", "Journal Article"]
    assert r.mesh_terms == [
        "Humans",
        "Depressive Disorder, Treatment-Resistant",
        "Ketamine",
        "Quetiapine Fumarate",
        "Administration, Intranasal",
    ]
    assert r.keywords == ["esketamine", "treatment-resistant depression", "Esketamine"]
    assert r.language == "eng"
    assert r.identifiers == [("pmid", "37792613"), ("doi", "10.1056/nejmoa2304145")]
    links = {(l.relation, l.scheme, l.value) for l in r.links}
    assert links == {
        ("comment_in", "pmid", "37792620"),
        ("has_preprint", "ppr", "PPR700123"),
        ("erratum_in", "doi", "10.1056/nejmx230016"),  # no id: the DOI of the reference
        ("registered_as", "nct", "NCT04338321"),
        ("registered_as", "eudract", "2019-002992-33"),
    }
    comment = next(l for l in r.links if l.relation == "comment_in")
    assert comment.note.startswith("Comment in: N Engl J Med. 2023 Oct 5")
    assert r.extra["other_relations"] == [
        {"type": "Summary for patients in", "id": "37800001", "source": "MED", "reference": "N Engl J Med. 2023;389(14):e30."}
    ]
    assert "citedByCount" not in json.dumps(r.extra) and 112 not in r.extra.values()
    assert (r.extra["volume"], r.extra["issue"], r.extra["pages"]) == ("389", "14", "1298-1309")


def test_parse_preprint():
    r = core_records()["PPR/PPR700123"]
    assert r.record_type == "preprint"
    assert r.title.startswith("S-ketamine nasal spray versus quetiapine XR")
    assert r.identifiers == [("ppr", "PPR700123"), ("doi", "10.1101/2023.06.20.23291634")]
    assert r.journal == "medRxiv"
    assert r.version == "2"
    assert [(l.relation, l.scheme, l.value) for l in r.links] == [("preprint_of", "pmid", "37792613")]
    assert r.url == "https://europepmc.org/article/PPR/PPR700123"


def test_parse_notice_and_retracted_article():
    records = core_records()
    notice = records["MED/38100001"]
    assert notice.record_type == "notice"
    assert notice.abstract is None and notice.authors == []
    assert [(l.relation, l.value) for l in notice.links] == [("retraction_of", "30000001")]
    # a print date after the e-publication date: the earlier one is the publication date
    assert notice.published_on == "2023-12-13"
    assert notice.extra["print_publication_date"] == "2024-02-01"

    retracted = records["MED/30000001"]
    assert retracted.record_type == "article"
    assert "Retracted Publication" in retracted.publication_types
    assert {(l.relation, l.scheme, l.value) for l in retracted.links} == {
        ("expression_of_concern_in", "pmid", "35000001"),
        ("retraction_in", "pmid", "38100001"),
        ("registered_as", "isrctn", "ISRCTN12345678"),
    }
    assert retracted.identifiers == [("pmid", "30000001"), ("pmcid", "PMC6400001"), ("doi", "10.1016/j.jad.2019.01.001")]
    assert retracted.abstract.startswith("Background: Suicidal ideation")  # no "Background::"
    assert "(p<0.01)" in retracted.abstract


def test_parse_pmc_only_record():
    r = core_records()["PMC/PMC10999999"]
    assert r.title == "Arketamine for bipolar depression: an open pilot study"
    assert r.identifiers == [("pmcid", "PMC10999999"), ("doi", "10.3389/fpsyt.2024.1300001")]
    assert r.published_on == "2024-02-01"


def test_parse_lite_json_and_xml_alike():
    from_json = europepmc.parse_file(fixture_bytes("europepmc", "lite_page.json"), "lite_page.json")
    from_xml = europepmc.parse_file(fixture_bytes("europepmc", "lite_page.xml"), "lite_page.xml")
    assert [r.to_dict() for r in from_xml] == [r.to_dict() for r in from_json]
    erratum, preprint = from_json
    assert erratum.record_type == "notice"
    assert erratum.publication_types == ["published erratum", "correction"]
    assert erratum.journal == "Am J Psychiatry"
    assert erratum.identifiers == [("pmid", "38200002"), ("pmcid", "PMC10800002"), ("doi", "10.1176/appi.ajp.2024.18000002")]
    assert (erratum.abstract, erratum.updated_on, erratum.published_on) == (None, None, "2024-03-01")
    assert erratum.extra["issn"] == "0002-953X; 1535-7228"
    assert preprint.record_type == "preprint"
    assert preprint.authors == ["Rossi L", "Bianchi M", "Esketamine Italian Network"]
    assert preprint.journal == "Research Square"
    assert preprint.identifiers == [("ppr", "PPR800456"), ("doi", "10.21203/rs.3.rs-4000456/v1")]


def test_xml_titles_with_inline_markup():
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><responseWrapper><hitCount>1</hitCount><resultList><result>'
        b"<id>1</id><source>MED</source><pmid>1</pmid><title><i>R</i>-ketamine in depression: 10<sup>3</sup> cells</title>"
        b"<abstractText>&lt;h4&gt;Aim&lt;/h4&gt;Test.<b>Bold</b> end</abstractText>"
        b"<pubTypeList><pubType>Journal Article</pubType></pubTypeList></result></resultList></responseWrapper>"
    )
    (record,) = europepmc.parse_file(body, "inline.xml")
    assert record.title == "R-ketamine in depression: 103 cells"
    assert record.abstract == "Aim: Test.Bold end"
    assert record.publication_types == ["Journal Article"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("dc.xml", "Dublin Core"),
        ("idlist.json", "resultType=idlist"),
        ("error.html", "HTML page"),
    ],
)
def test_parse_file_refuses_unusable_answers(name, message):
    with pytest.raises(SourceError, match=message) as info:
        europepmc.parse_file(fixture_bytes("europepmc", name), name)
    assert str(info.value).startswith("[europepmc]")


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty body"),
        (b"[1, 2]", "JSON list"),
        (b'{"version": "6.9", "hitCount": 3}', "no resultList"),
        (b'{"hitCount": 1, "resultList": {"result": [{"id": "1", "source": "MED"', "malformed JSON"),
        (b"<notEuropePMC/>", "expected <responseWrapper>"),
        (b"<responseWrapper><unclosed></responseWrapper>", "malformed XML"),
    ],
)
def test_parse_file_bad_bodies(body, message):
    with pytest.raises(SourceError, match=message):
        europepmc.parse_file(body, "bad")


def test_results_without_title_are_skipped_with_a_reason():
    data = fixture_json("core_page1.json")
    data["resultList"]["result"][1]["title"] = "<i></i>"
    page = europepmc.parse_search_page(data)
    assert [r.source_id for r in page.records] == ["MED/37792613", "MED/38100001"]
    assert page.skipped == ["result PPR/PPR700123 has no source, id or title; skipped"]
    assert page.result_count == 3 and page.hit_count == 5 and page.next_cursor == C1


def test_unknown_sources_and_types_in_corrections_are_kept_aside():
    item = copy.deepcopy(fixture_json("core_page1.json")["resultList"]["result"][2])
    item["commentCorrectionList"]["commentCorrection"] = [
        {"id": "IND123", "source": "AGR", "type": "Retraction of"},  # no scheme, no DOI
        {"id": "PPR9", "source": "PPR", "type": "Reprint of"},  # relation not modelled
        {"id": "PMC777", "source": "PMC", "type": "RetractionOf"},  # PubMed's spelling
    ]
    record = europepmc.parse_result(item)
    assert [(l.relation, l.scheme, l.value) for l in record.links] == [("retraction_of", "pmcid", "PMC777")]
    assert [o["type"] for o in record.extra["other_relations"]] == ["Retraction of", "Reprint of"]


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("H<sub>2</sub>O &amp; NMDA", "H2O & NMDA"),
        ("x<y and y>z", "x<y and y>z"),
        ('<span class="a">ket</span>amine', "ketamine"),
        ("<p>one</p><p>two</p>", "one two"),
        (None, ""),
    ],
)
def test_clean_html(raw, clean):
    assert europepmc.clean_html(raw) == clean


def test_query_builders():
    assert europepmc.build_topic_query({"query": ["ketamine", "esketamine"]}) == "(ketamine) OR (esketamine)"
    with pytest.raises(SourceError, match="no query configured"):
        europepmc.build_topic_query({"query": "  "})
    start, end = dt.date(2024, 1, 1), dt.date(2024, 6, 30)
    assert europepmc.build_window_query("k", start, end) == "(k) AND (FIRST_IDATE:[2024-01-01 TO 2024-06-30])"
    assert europepmc.build_recheck_query("k", {}, start, start, end) is None  # first run covers it
    assert europepmc.build_recheck_query("k", {"recheck_filter": ""}, start, end, end) is None
    assert europepmc.build_recheck_query("k", {}, start, end, end) == (
        f"(k) AND ({RECHECK}) AND (FIRST_IDATE:[2024-01-01 TO 2024-06-30])"
    )
