"""ClinicalTrials.gov API v2: the real pipeline against a loopback server, and the parser."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import fixture_bytes, rows
from werkzeug import Response

from crawler import store
from crawler.errors import SourceError
from crawler.records import TRIAL_FIELDS
from crawler.sources import clinicaltrials as ct
from tests.helpers.sources import CONDITIONS, INTERVENTIONS, STUDIES, serve_pages, source_config

NAME = "clinicaltrials"


def fixture(name: str) -> bytes:
    return fixture_bytes(NAME, name)


def study_requests(httpserver):
    return [request for request, _ in httpserver.log if request.path == STUDIES]


def source_run(db):
    return rows(db, "SELECT * FROM source_runs WHERE source = ? ORDER BY id DESC LIMIT 1", [NAME])[0]


def watermark(db):
    return store.load_source_state(db, NAME)["watermark"]


# --------------------------------------------------------------------------- crawling


def test_two_pages_are_read_with_the_page_token_and_stored(make_config, httpserver, run_crawl, db, today):
    serve_pages(httpserver, {None: fixture("studies_page1.json"), "NF0g5JGBlPMuwQYkpq": fixture("studies_page2.json")})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "ok", report.sources[0].error
    first, second = study_requests(httpserver)
    for request in (first, second):
        assert request.args["query.cond"] == CONDITIONS
        assert request.args["query.intr"] == INTERVENTIONS
        assert request.args["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2024-01-01,MAX]"
        assert request.args["pageSize"] == "1000"
        assert request.args["format"] == "json"
        assert request.args["fields"].split("|") == list(ct.DEFAULT_FIELDS)
        assert "sort" not in request.args
    assert first.args["countTotal"] == "true" and "pageToken" not in first.args
    assert second.args["pageToken"] == "NF0g5JGBlPMuwQYkpq" and "countTotal" not in second.args

    records = rows(db, "SELECT source_id, record_type, title, url, entered_on, updated_on FROM records ORDER BY source_id")
    assert [r["source_id"] for r in records] == ["NCT04345678", "NCT05123456", "NCT06234567"]
    assert {r["record_type"] for r in records} == {"trial_registration"}
    assert records[1]["url"] == "https://clinicaltrials.gov/study/NCT05123456"
    assert records[1]["entered_on"] == "2021-09-14" and records[1]["updated_on"] == "2025-04-22"

    idents = rows(
        db,
        """SELECT r.source_id, i.scheme, i.value FROM identifiers i JOIN records r ON r.id = i.record_id
                         WHERE r.source_id = 'NCT05123456' ORDER BY i.scheme, i.value""",
    )
    assert [(i["scheme"], i["value"]) for i in idents] == [
        ("euct", "2023-501234-12-00"),
        ("eudract", "2021-001234-56"),
        ("isrctn", "ISRCTN12345678"),
        ("nct", "NCT05123400"),
        ("nct", "NCT05123456"),
    ]
    links = rows(db, "SELECT relation, scheme, value, note FROM record_links ORDER BY value")
    assert [(l["relation"], l["scheme"], l["value"], l["note"]) for l in links] == [
        ("reference", "doi", "10.1000/example.2020.42", "BACKGROUND"),
        ("reference", "pmid", "16894061", "BACKGROUND"),
        ("result_publication", "pmid", "38011560", "RESULT"),
        ("reference", "pmid", "39000001", "DERIVED"),
    ]
    snapshots = rows(
        db, "SELECT trial_id, overall_status, why_stopped, phases, has_results FROM trial_snapshots ORDER BY trial_id"
    )
    assert [(s["trial_id"], s["overall_status"], s["phases"], s["has_results"]) for s in snapshots] == [
        ("NCT04345678", "TERMINATED", "", 0),
        ("NCT05123456", "COMPLETED", "PHASE2, PHASE3", 1),
        ("NCT06234567", "RECRUITING", "PHASE2", 0),
    ]
    assert snapshots[0]["why_stopped"] == "Slow recruitment during the COVID-19 pandemic"

    run = source_run(db)
    assert (run["status"], run["fetched"], run["new"], run["requests"]) == ("ok", 3, 3, 2)
    queries = rows(db, "SELECT * FROM source_queries")
    assert len(queries) == 1
    assert queries[0]["hits"] == 3 and queries[0]["window_from"] == "2024-01-01" and queries[0]["window_to"] == today.isoformat()
    assert "query.intr=ketamine OR esketamine" in queries[0]["query"]
    assert json.loads(queries[0]["params"])["pages"] == 2
    assert watermark(db) == today.isoformat()


def test_empty_answer_succeeds_and_moves_the_watermark(make_config, httpserver, run_crawl, db, today):
    serve_pages(httpserver, {None: fixture("studies_empty.json")})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "ok"
    assert len(study_requests(httpserver)) == 1
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 0
    assert rows(db, "SELECT hits FROM source_queries")[0]["hits"] == 0
    assert source_run(db)["fetched"] == 0
    assert watermark(db) == today.isoformat()


def test_incremental_run_starts_at_watermark_minus_overlap_and_does_not_duplicate(make_config, httpserver, run_crawl, db, today):
    serve_pages(httpserver, {None: fixture("studies_page1.json"), "NF0g5JGBlPMuwQYkpq": fixture("studies_page2.json")})
    config = source_config(make_config, httpserver)
    run_crawl(config, only=[NAME])
    report = run_crawl(config, only=[NAME])

    assert report.sources[0].status == "ok"
    second_run_first_page = study_requests(httpserver)[2]
    since = (today - dt.timedelta(days=3)).isoformat()
    assert second_run_first_page.args["filter.advanced"] == f"AREA[LastUpdatePostDate]RANGE[{since},MAX]"
    assert second_run_first_page.args["countTotal"] == "true"
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    assert rows(db, "SELECT COUNT(*) AS n FROM works")[0]["n"] == 3
    assert rows(db, "SELECT COUNT(*) AS n FROM trial_snapshots")[0]["n"] == 3
    run = source_run(db)
    assert (run["new"], run["updated"], run["unchanged"]) == (0, 0, 3)
    assert rows(db, "SELECT window_from FROM source_queries ORDER BY id DESC LIMIT 1")[0]["window_from"] == since


def test_changed_trial_fields_give_a_second_snapshot(make_config, httpserver, run_crawl, db):
    answers = iter([fixture("snapshot_before.json"), fixture("snapshot_after.json")])
    httpserver.expect_request(STUDIES).respond_with_handler(
        lambda request: Response(next(answers), content_type="application/json")
    )
    config = source_config(make_config, httpserver)
    run_crawl(config, only=[NAME])
    run_crawl(config, only=[NAME])

    snapshots = rows(db, f"SELECT {', '.join(TRIAL_FIELDS)} FROM trial_snapshots WHERE trial_id = 'NCT05765432' ORDER BY id")
    assert len(snapshots) == 2
    before, after = snapshots
    assert (before["overall_status"], before["enrollment"], before["enrollment_type"]) == ("RECRUITING", 60, "ESTIMATED")
    assert (before["primary_completion_date"], before["results_first_posted_on"], before["has_results"]) == ("2025-06", None, 0)
    assert (after["overall_status"], after["enrollment"], after["enrollment_type"]) == ("COMPLETED", 120, "ACTUAL")
    assert (after["primary_completion_date"], after["results_first_posted_on"], after["has_results"]) == (
        "2025-09-30",
        "2026-02-17",
        1,
    )
    assert before["start_date"] == after["start_date"] == "2023-05-02"
    assert source_run(db)["updated"] == 1
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 1


def test_http_error_fails_the_source_without_moving_the_watermark(make_config, httpserver, run_crawl, db):
    store.save_source_success(db, NAME, "2025-01-10", {})
    serve_pages(httpserver, {None: (b"upstream timeout", 503, "text/plain")})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "failed"
    run = source_run(db)
    assert run["status"] == "failed" and run["error"].startswith("[clinicaltrials] HTTP 503")
    assert len(study_requests(httpserver)) == 3  # the shared client retried twice (max_retries = 2)
    assert study_requests(httpserver)[0].args["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2025-01-07,MAX]"
    assert watermark(db) == "2025-01-10"


def test_html_page_midway_keeps_stored_pages_and_the_watermark(make_config, httpserver, run_crawl, db):
    store.save_source_success(db, NAME, "2025-01-10", {})
    serve_pages(
        httpserver, {None: fixture("studies_page1.json"), "NF0g5JGBlPMuwQYkpq": (fixture("error.html"), 200, "text/html")}
    )
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "failed"
    error = source_run(db)["error"]
    assert error.startswith("[clinicaltrials] expected JSON but got an HTML page") and "Service Temporarily Unavailable" in error
    assert [r["source_id"] for r in rows(db, "SELECT source_id FROM records ORDER BY source_id")] == [
        "NCT05123456",
        "NCT06234567",
    ]
    assert watermark(db) == "2025-01-10"
    assert rows(db, "SELECT consecutive_failures FROM source_states")[0]["consecutive_failures"] == 1


def test_malformed_json_fails_with_a_clear_message(make_config, httpserver, run_crawl, db):
    serve_pages(httpserver, {None: b'{"studies": [{"protocolSection": '})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "failed"
    # a body that stops mid-document is a cut-off answer: retried like a 5xx (max_retries = 2), then failed
    assert source_run(db)["error"].startswith("[clinicaltrials] the JSON answer is cut off (33 bytes")
    assert len(httpserver.log) == 3
    assert watermark(db) is None


def test_rate_limit_429_is_retried_by_the_shared_client(make_config, httpserver, run_crawl, db):
    httpserver.expect_oneshot_request(STUDIES).respond_with_data("Too Many Requests", status=429, headers={"Retry-After": "0"})
    httpserver.expect_request(STUDIES).respond_with_data(fixture("snapshot_before.json"), content_type="application/json")
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "ok"
    assert len(study_requests(httpserver)) == 2
    assert source_run(db)["requests"] == 2
    assert rows(db, "SELECT source_id FROM records")[0]["source_id"] == "NCT05765432"


def test_legacy_v1_answer_fails_saying_v2_is_needed(make_config, httpserver, run_crawl, db):
    serve_pages(httpserver, {None: fixture("legacy_v1.json")})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "failed"
    error = source_run(db)["error"]
    assert "retired on 2024-06-25" in error and "use API v2" in error


def test_v1_base_url_is_refused_before_any_request(make_config, httpserver, run_crawl, db):
    config = source_config(make_config, httpserver, base_url=httpserver.url_for("/api/query/"))
    report = run_crawl(config, only=[NAME])

    assert report.sources[0].status == "failed"
    assert "classic (v1) API, retired on 2024-06-25" in source_run(db)["error"]
    assert httpserver.log == []


def test_repeated_page_token_stops_instead_of_looping(make_config, httpserver, run_crawl, db):
    looping = json.loads(fixture("studies_page1.json"))
    serve_pages(httpserver, {None: json.dumps(looping), looping["nextPageToken"]: json.dumps(looping)})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "failed"
    assert "page token" in source_run(db)["error"]
    assert len(study_requests(httpserver)) == 2
    assert watermark(db) is None


def test_study_without_nct_id_is_skipped_with_a_warning(make_config, httpserver, run_crawl, db):
    page = json.loads(fixture("studies_page2.json"))
    page["studies"].insert(0, {"protocolSection": {"identificationModule": {"briefTitle": "No id here"}}})
    serve_pages(httpserver, {None: json.dumps(page)})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "ok"
    assert [r["source_id"] for r in rows(db, "SELECT source_id FROM records")] == ["NCT04345678"]
    warnings = json.loads(source_run(db)["warnings"])
    assert len(warnings) == 1 and "nctId" in warnings[0]


def test_query_options_lists_page_size_cap_sort_and_all_fields(make_config, httpserver, run_crawl, db):
    serve_pages(httpserver, {None: fixture("studies_empty.json")})
    config = source_config(
        make_config,
        httpserver,
        conditions=["depression", "bipolar depression"],
        interventions="",
        page_size=5000,
        sort="LastUpdatePostDate:asc",
        fields="",
    )
    run_crawl(config, only=[NAME])

    (request,) = study_requests(httpserver)
    assert request.args["query.cond"] == "depression OR (bipolar depression)"
    assert "query.intr" not in request.args and "fields" not in request.args
    assert request.args["pageSize"] == "1000"
    assert request.args["sort"] == "LastUpdatePostDate:asc"


def test_empty_page_with_a_token_stops_paging_with_a_warning(make_config, httpserver, run_crawl, db):
    serve_pages(httpserver, {None: json.dumps({"studies": [], "totalCount": 0, "nextPageToken": "again"})})
    report = run_crawl(source_config(make_config, httpserver), only=[NAME])

    assert report.sources[0].status == "ok"
    assert len(study_requests(httpserver)) == 1
    assert "empty but carried a nextPageToken" in json.loads(source_run(db)["warnings"])[0]


def test_no_search_configured_fails_with_a_hint(make_config, httpserver, run_crawl, db):
    report = run_crawl(source_config(make_config, httpserver, conditions="", interventions=" "), only=[NAME])

    assert report.sources[0].status == "failed"
    assert "conditions / interventions" in source_run(db)["error"]
    assert httpserver.log == []


# --------------------------------------------------------------------------- parser


def parse_first(name: str):
    return ct.parse_file(fixture(name), name)


def test_parse_study_maps_every_field():
    record = parse_first("studies_page1.json")[0]

    assert (record.source, record.source_id, record.record_type) == ("clinicaltrials", "NCT05123456", "trial_registration")
    assert record.title == "Intravenous Ketamine Versus Midazolam in Treatment-Resistant Depression"
    assert record.abstract.startswith("This trial compares six **intravenous ketamine** infusions")
    assert (record.published_on, record.entered_on, record.updated_on) == ("2021-09-14", "2021-09-14", "2025-04-22")
    assert record.keywords == ["ketamine", "rapid-acting antidepressant", "NMDA receptor antagonist"]
    assert record.mesh_terms == ["Depressive Disorder", "Depressive Disorder, Treatment-Resistant", "Ketamine", "Midazolam"]
    assert record.trial == {
        "overall_status": "COMPLETED",
        "why_stopped": None,
        "phases": ["PHASE2", "PHASE3"],
        "study_type": "INTERVENTIONAL",
        "enrollment": 96,
        "enrollment_type": "ACTUAL",
        "start_date": "2021-09",
        "primary_completion_date": "2023-11-30",
        "completion_date": "2024-02",
        "first_posted_on": "2021-09-14",
        "last_update_posted_on": "2025-04-22",
        "results_first_posted_on": "2025-04-22",
        "has_results": True,
    }
    assert tuple(record.trial) == TRIAL_FIELDS
    extra = record.extra
    assert extra["official_title"].startswith("A Randomised, Active-Controlled Trial")
    assert extra["acronym"] == "KETAMIND"
    assert extra["conditions"] == ["Treatment Resistant Depression", "Major Depressive Disorder"]
    assert extra["interventions"] == [
        {"name": "Ketamine", "type": "DRUG", "other_names": ["Ketalar", "Ketamine hydrochloride"]},
        {"name": "Midazolam", "type": "DRUG"},
    ]
    assert extra["lead_sponsor"] == {"name": "University Hospital Example", "class": "OTHER"}
    assert extra["collaborators"] == ["National Institute of Mental Health (NIMH)", "Example Depression Foundation"]
    assert extra["nct_aliases"] == ["NCT05123400"]
    assert extra["date_types"]["primary_completion_date"] == "ACTUAL"
    assert extra["see_also"] == [{"label": "Study website", "url": "https://example.org/ketamind"}]
    assert "versionHolder" not in json.dumps(record.to_dict())


def test_secondary_ids_keep_only_the_same_trial_in_other_registries():
    record = parse_first("studies_page1.json")[0]

    assert sorted(record.identifiers) == [
        ("euct", "2023-501234-12-00"),
        ("eudract", "2021-001234-56"),
        ("isrctn", "ISRCTN12345678"),
        ("nct", "NCT05123400"),
        ("nct", "NCT05123456"),
    ]
    # the NIH grant, the other NCT study and the DRKS id stay in extra only
    kept = {s["id"] for s in record.extra["secondary_ids"]}
    assert {"R01MH123456", "NCT04999999", "DRKS00012345"} <= kept


@pytest.mark.parametrize(
    "info, expected",
    [
        ({"id": "2021-001234-56", "type": "EUDRACT_NUMBER"}, [("eudract", "2021-001234-56")]),
        ({"id": "EudraCT 2024-512345-22-00", "type": "EUDRACT_NUMBER"}, [("euct", "2024-512345-22-00")]),
        ({"id": "2023-501234-12-00", "type": "CTIS"}, [("euct", "2023-501234-12-00")]),
        ({"id": "2019-004321-11", "type": "OTHER", "domain": "EudraCT"}, [("eudract", "2019-004321-11")]),
        ({"id": "12345678", "type": "REGISTRY", "domain": "ISRCTN registry"}, [("isrctn", "ISRCTN12345678")]),
        ({"id": "2019-004321-11", "type": "OTHER", "domain": "Sponsor protocol number"}, []),
        ({"id": "2019-004321-11", "type": "OTHER_GRANT", "domain": "EudraCT"}, []),
        ({"id": "NCT04999999", "type": "REGISTRY", "domain": "ClinicalTrials.gov"}, []),
        ({"id": "", "type": "EUDRACT_NUMBER"}, []),
    ],
)
def test_parse_secondary_ids(info, expected):
    assert ct.parse_secondary_ids([info]) == expected


def test_terminated_observational_study_without_phases():
    record = parse_first("studies_page2.json")[0]

    assert record.trial["why_stopped"] == "Slow recruitment during the COVID-19 pandemic"
    assert record.trial["phases"] == [] and record.trial["study_type"] == "OBSERVATIONAL"
    assert record.trial["has_results"] is False
    assert ("eudract", "2019-004321-11") in record.identifiers
    assert record.abstract is None and record.links == []


def test_single_study_file_is_one_record():
    (record,) = parse_first("study_single.json")

    assert record.source_id == "NCT05999001"
    assert record.title == "Arketamine in Bipolar Depression"
    assert ("euct", "2024-512345-22-00") in record.identifiers
    assert record.trial["start_date"] == "2026-01" and record.trial["enrollment_type"] == "ESTIMATED"


def test_page_fields_are_parsed():
    page = ct.parse_studies(fixture("studies_page1.json"))
    assert (page.total, page.next_page_token, len(page.records), page.problems) == (3, "NF0g5JGBlPMuwQYkpq", 2, [])
    last = ct.parse_studies(fixture("studies_page2.json"))
    assert (last.total, last.next_page_token) == (None, None)


def test_title_falls_back_to_official_title_then_nct():
    study = json.loads(fixture("study_single.json"))
    del study["protocolSection"]["identificationModule"]["briefTitle"]
    assert ct.parse_study(study).title.startswith("A Phase 2 Study of Arketamine")
    del study["protocolSection"]["identificationModule"]["officialTitle"]
    assert ct.parse_study(study).title == "NCT05999001"
    assert ct.parse_study(study).missing == ["title"]  # the store keeps a stored title (#16)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024", "2024"),
        ("2024-03", "2024-03"),
        ("2024-03-05", "2024-03-05"),
        ("2024-13", None),
        ("March 2024", "2024-03"),  # the one date parser reads month names too (was None)
        ("", None),
        (None, None),
        (20240305, None),
    ],
)
def test_parse_date(value, expected):
    assert ct.parse_date(value) == expected


@pytest.mark.parametrize(
    "body, message",
    [
        (b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "expected JSON but got an HTML page"),
        (b"not json", "expected JSON but got malformed JSON"),
        (b'{"error": "invalid"}', "unexpected JSON"),
        (b'{"studies": {"a": 1}}', "not a list"),
        (b"null", "unexpected JSON"),
    ],
)
def test_unusable_files_raise_source_error(body, message):
    with pytest.raises(SourceError) as info:
        ct.parse_file(body, "answer.json")
    assert str(info.value).startswith("[clinicaltrials]") and message in str(info.value)


def test_legacy_v1_file_raises_source_error():
    with pytest.raises(SourceError, match=r"classic \(v1\) API, which was retired on 2024-06-25; use API v2"):
        ct.parse_file(fixture("legacy_v1.json"), "legacy_v1.json")


def test_unchanged_study_has_a_stable_hash_across_nightly_versions():
    first = json.loads(fixture("study_single.json"))
    second = json.loads(fixture("study_single.json"))
    second["derivedSection"]["miscInfoModule"]["versionHolder"] = "2025-08-03"
    assert ct.parse_study(first).content_hash() == ct.parse_study(second).content_hash()
