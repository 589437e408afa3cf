"""CTIS (EU Clinical Trials Information System): the real pipeline against a loopback server speaking the
portal's JSON API (POST search, GET retrieve/<ct number>)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from conftest import FIXTURES, fixture_bytes, rows
from werkzeug import Response

from crawler import changes, store
from crawler.config import load_config
from crawler.errors import ConfigError
from crawler.sources import ctis

JSON = "application/json"
QUERY = "ketamine esketamine"
T1, T2, T3 = "2024-512345-21-00", "2023-509876-34-00", "2025-520111-42-00"


@pytest.fixture
def config(make_config, httpserver):
    def _config(**extra):
        settings = {"enabled": True, "base_url": httpserver.url_for("/ctis-public-api/"), "query": QUERY, "min_interval": 0}
        settings.update(extra)
        return make_config("\n[sources.ctis]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))

    return _config


def serve(httpserver, pages=("search_page1.json", "search_page2.json"), retrieve=None, search_status=200):
    """Answer search by the body's page number, and retrieve/<ct> from the fixtures (or ``retrieve``)."""
    retrieve = retrieve or {}

    def search(request):
        page = json.loads(request.data)["pagination"]["page"]
        body = fixture_bytes("ctis", pages[page - 1]) if page <= len(pages) else b'{"data": []}'
        return Response(body, status=search_status, content_type=JSON)

    def detail(request):
        number = request.path.rsplit("/", 1)[1]
        answer = retrieve.get(number, f"retrieve_{number}.json")
        if isinstance(answer, Response):
            return answer
        return Response(fixture_bytes("ctis", answer), content_type=JSON)

    httpserver.expect_request("/ctis-public-api/search", method="POST").respond_with_handler(search)
    httpserver.expect_request(re.compile(r"^/ctis-public-api/retrieve/.+$"), method="GET").respond_with_handler(detail)


def requests_made(httpserver):
    return [(r.method, r.path, json.loads(r.data) if r.data else None) for r, _ in httpserver.log]


# --------------------------------------------------------------------------- crawls


def test_first_crawl_reads_every_page_and_retrieves_each_trial(config, httpserver, run_crawl, db, today):
    serve(httpserver)
    report = run_crawl(config(page_size=2), only=["ctis"])

    assert report.sources[0].status == "ok", report.sources[0].error
    made = requests_made(httpserver)
    assert made[0] == (
        "POST",
        "/ctis-public-api/search",
        {
            "pagination": {"page": 1, "size": 2},
            "sort": {"property": "decisionDate", "direction": "DESC"},
            "searchCriteria": {"containAny": QUERY},
        },
    )
    assert made[1][2]["pagination"] == {"page": 2, "size": 2}
    assert sorted(path for method, path, _ in made if method == "GET") == [f"/ctis-public-api/retrieve/{n}" for n in (T2, T1, T3)]
    assert httpserver.log[0][0].headers["Content-Type"].startswith("application/json")

    records = {r["source_id"]: r for r in rows(db, "SELECT * FROM records")}
    assert set(records) == {T1, T2, T3}
    first = records[T1]
    assert first["record_type"] == "trial_registration" and first["source"] == "ctis"
    assert first["title"].startswith("A randomised, double-blind, placebo-controlled, multicentre phase III study of esketamine")
    assert first["url"] == f"https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={T1}"
    assert (first["published_on"], first["entered_on"], first["updated_on"]) == ("2024-03-18", "2024-03-25", "2026-11-14")
    extra = json.loads(first["data"])["extra"]
    ids = {(r["scheme"], r["value"]) for r in rows(db, "SELECT scheme, value FROM identifiers")}
    assert {("euct", T1), ("nct", "NCT06234567"), ("euct", T2), ("eudract", "2019-004321-18"), ("euct", T3)} <= ids

    snaps = {s["trial_id"]: s for s in rows(db, "SELECT * FROM trial_snapshots")}
    assert snaps[T1]["overall_status"] == "Ongoing, recruiting"
    assert (snaps[T1]["phases"], snaps[T1]["enrollment"], snaps[T1]["start_date"]) == (
        "Therapeutic confirmatory (Phase III)",
        180,
        "2024-05-02",
    )
    assert snaps[T1]["completion_date"] == "2027-12-31" and snaps[T1]["has_results"] == 0
    assert snaps[T2]["overall_status"] == "Ongoing, recruitment ended"
    assert snaps[T3]["overall_status"] == "Authorised, recruitment pending"
    assert extra["member_states"] == ["Germany", "Spain", "Poland"] and extra["status_code"] == 4
    assert extra["sponsors"] == ["Universitaetsklinikum Beispielstadt"] and extra["decision_date"] == "2024-03-18"

    (query,) = rows(db, "SELECT query, hits, params FROM source_queries")
    assert query["query"] == QUERY and query["hits"] == 3
    assert json.loads(query["params"]) == {"total": 3, "pages": 2, "in_window": 3, "retrieved": 3}
    (run,) = rows(db, "SELECT status, fetched, kept, new FROM source_runs")
    assert run == {"status": "ok", "fetched": 3, "kept": 3, "new": 3}


def test_products_sponsor_conditions_and_member_states_are_stored(config, httpserver, run_crawl, db):
    serve(httpserver)
    run_crawl(config(), only=["ctis"])
    (record,) = [r for r in ctis.parse_file(fixture_bytes("ctis", f"retrieve_{T1}.json"))]
    assert record.extra["sponsors"] == ["Universitaetsklinikum Beispielstadt"]
    assert record.extra["member_states"] == ["Germany", "Spain", "Poland"]
    assert record.extra["interventions"] == [{"name": "Spravato 28 mg nasal spray, solution", "type": "DRUG"}]
    assert "Suicidal ideation" in record.extra["conditions"]
    stored = rows(db, "SELECT abstract, keywords FROM records WHERE source_id = ?", [T1])[0]
    assert "Medicinal products: Spravato 28 mg nasal spray, solution." in stored["abstract"]
    assert "Member states: Germany, Spain, Poland." in stored["abstract"]
    assert "Spravato 28 mg nasal spray, solution" in json.loads(stored["keywords"])


def test_same_trial_in_ctis_and_clinicaltrials_is_one_work(config, make_config, httpserver, run_crawl, db):
    serve(httpserver)

    def studies(request):  # ClinicalTrials.gov v2: page 1, then page 2 by its nextPageToken
        name = "studies_page2.json" if request.args.get("pageToken") else "studies_page1.json"
        return Response(fixture_bytes("clinicaltrials", name), content_type=JSON)

    httpserver.expect_request("/api/v2/studies").respond_with_handler(studies)
    cfg = config()
    cfg.sources["clinicaltrials"] = make_config(
        f'\n[sources.clinicaltrials]\nenabled = true\nbase_url = "{httpserver.url_for("/api/v2/")}"\n'
        'conditions = "depression"\ninterventions = "esketamine"\nmin_interval = 0\n'
    ).sources["clinicaltrials"]
    report = run_crawl(cfg, only=["ctis", "clinicaltrials"])
    assert [s.status for s in report.sources] == ["ok", "ok"], [s.error for s in report.sources]

    works = rows(
        db,
        "SELECT DISTINCT work_id FROM identifiers WHERE (scheme, value) IN (VALUES ('euct', ?), ('nct', 'NCT06234567'))",
        [T1],
    )
    assert len(works) == 1
    sources = rows(db, "SELECT DISTINCT source FROM records WHERE work_id = ? ORDER BY source", [works[0]["work_id"]])
    assert [s["source"] for s in sources] == ["clinicaltrials", "ctis"]


def test_incremental_run_retrieves_only_trials_updated_in_the_window_and_snapshots_the_change(config, httpserver, run_crawl, db):
    serve(httpserver)
    run_crawl(config(), only=["ctis"])
    store.save_source_success(db, "ctis", "2026-11-20", {})
    httpserver.clear()
    serve(httpserver, pages=("search_after_status_change.json",), retrieve={T1: f"retrieve_{T1}_ended.json"})

    report = run_crawl(config(), only=["ctis"])

    assert report.sources[0].status == "ok", report.sources[0].error
    # window from 2026-11-17: only T1 (updated 20/11/2026) is retrieved; T2 and T3 are older
    assert [path for method, path, _ in requests_made(httpserver) if method == "GET"] == [f"/ctis-public-api/retrieve/{T1}"]
    assert report.sources[0].counts == {"fetched": 3, "kept": 1, "new": 0, "updated": 1, "unchanged": 0}
    snaps = rows(
        db, "SELECT overall_status, completion_date, has_results FROM trial_snapshots WHERE trial_id = ? ORDER BY id", [T1]
    )
    assert snaps == [
        {"overall_status": "Ongoing, recruiting", "completion_date": "2027-12-31", "has_results": 0},
        {"overall_status": "Ended", "completion_date": "2026-11-15", "has_results": 1},
    ]
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    # the digest's "what changed" reads the snapshots: the status change of T1 is reported
    [change] = changes.trial_changes(db, "2000-01-01 00:00:00", "2100-01-01 00:00:00")
    assert (change.source, change.trial_id) == ("ctis", T1)
    fields = {c.field: (c.before, c.after) for c in change.changes}
    assert fields["overall_status"] == ("Ongoing, recruiting", "Ended")


@pytest.mark.parametrize("status", [200, 403])
def test_firewall_html_page_fails_with_the_reason_and_keeps_data(config, httpserver, run_crawl, db, status):
    serve(httpserver)
    run_crawl(config(), only=["ctis"])
    store.save_source_success(db, "ctis", "2026-11-01", {})
    httpserver.clear()
    httpserver.expect_request("/ctis-public-api/search").respond_with_data(
        fixture_bytes("ctis", "waf_block.html"), status=status, content_type="text/html"
    )

    report = run_crawl(config(), only=["ctis"])

    result = report.sources[0]
    assert result.status == "failed"
    assert result.error.startswith(f"[ctis] CTIS answered HTTP {status} with an HTML page titled 'Request Rejected'")
    assert "web application firewall" in result.error
    assert rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] == 3
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] == "2026-11-01"


def test_retrieve_404_stores_the_overview_with_a_warning(config, httpserver, run_crawl, db):
    serve(httpserver, retrieve={T3: Response("Not Found", status=404)})
    report = run_crawl(config(), only=["ctis"])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert any(T3 in w and "404" in w for w in report.sources[0].warnings)
    third = rows(db, "SELECT title, published_on, updated_on FROM records WHERE source_id = ?", [T3])[0]
    assert third["title"].startswith("Oral esketamine tablets for depressive episodes of bipolar I disorder")
    assert (third["published_on"], third["updated_on"]) == ("2026-10-21", "2026-10-21")
    snap = rows(db, "SELECT overall_status, has_results FROM trial_snapshots WHERE trial_id = ?", [T3])[0]
    assert snap == {"overall_status": "Authorised, recruitment pending", "has_results": None}


def test_a_query_matching_more_than_max_results_fails_without_retrieving(config, httpserver, run_crawl, db):
    serve(httpserver)
    report = run_crawl(config(max_results=2), only=["ctis"])
    assert report.sources[0].status == "failed"
    assert "matches 3 trials, more than max_results=2" in report.sources[0].error
    assert [m for m, _, _ in requests_made(httpserver)] == ["POST"]


def test_no_match_is_a_successful_empty_crawl(config, httpserver, run_crawl, db, today):
    serve(httpserver, pages=("search_empty.json",))
    report = run_crawl(config(), only=["ctis"])
    assert report.sources[0].status == "ok" and len(httpserver.log) == 1
    assert rows(db, "SELECT watermark FROM source_states")[0]["watermark"] == today.isoformat()


def test_missing_query_is_a_clear_failure_at_startup(config, httpserver):
    """Checked when the config is loaded, not mid-crawl (issue #10)."""
    with pytest.raises(ConfigError) as info:
        config(query=" ")
    assert info.value.key == "sources.ctis.query" and "no query configured" in str(info.value)
    assert len(httpserver.log) == 0


# --------------------------------------------------------------------------- parser and config


@pytest.mark.parametrize(
    "value, iso",
    [
        ("14/11/2026", "2026-11-14"),  # search lists: day first (European)
        ("3/4/2025", "2025-04-03"),
        ("2024-03-18", "2024-03-18"),  # retrieve: ISO
        ("2024-03-18T10:15:00", "2024-03-18"),
        ("07/11/2023, 21/11/2023", "2023-11-07"),
        ("31/02/2024", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value, iso):
    assert ctis.parse_date(value) == iso


def test_parse_file_reads_every_fixture():
    for path in sorted((FIXTURES / "ctis").glob("*.json")):
        records = ctis.parse_file(path.read_bytes(), path.name)
        assert all(r.source_id and r.identifiers[0][0] == "euct" for r in records), path.name


def test_shipped_config_enables_ctis_with_the_portal_api():
    config = load_config(str(FIXTURES.parent.parent / "config" / "litmon.toml"))
    settings = config.sources["ctis"]
    assert settings["enabled"] is True
    assert settings["base_url"] == "https://euclinicaltrials.eu/ctis-public-api/"
    assert "esketamine" in settings["query"]


def test_window_uses_the_last_update_date():
    assert ctis.in_window({"lastUpdated": "17/11/2026"}, dt.date(2026, 11, 17))
    assert not ctis.in_window({"lastUpdated": "16/11/2026"}, dt.date(2026, 11, 17))
    assert ctis.in_window({}, dt.date(2026, 11, 17))  # no date: retrieved, never skipped
