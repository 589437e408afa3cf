"""bioRxiv/medRxiv: the real pipeline against pytest-httpserver, plus parser unit tests."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import fixture_bytes, rows

from crawler.errors import SourceError
from crawler.sources import biorxiv

SRC = "biorxiv"


def config_for(make_config, httpserver, **settings):
    extra = {"servers": ["medrxiv", "biorxiv"], "category": "", "max_backfill_days": 30, **settings}
    lines = [f"[sources.{SRC}]", "enabled = true", f'base_url = "{httpserver.url_for("/")}"', "min_interval = 0"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return make_config("\n".join(lines) + "\n")


def serve(httpserver, path, name=None, *, body=None, status=200, content_type="application/json"):
    data = fixture_bytes(SRC, name) if name else body
    httpserver.expect_request(path).respond_with_data(data, status=status, content_type=content_type)


def window(today, days):
    return (today - dt.timedelta(days=days)).isoformat(), today.isoformat()


def serve_full_window(httpserver, since, until):
    serve(httpserver, f"/details/medrxiv/{since}/{until}/0/json", "details_medrxiv_page1.json")
    serve(httpserver, f"/details/medrxiv/{since}/{until}/3/json", "details_medrxiv_page2.json")
    serve(httpserver, f"/pubs/medrxiv/{since}/{until}/0", "pubs_medrxiv.json")
    serve(httpserver, f"/details/biorxiv/{since}/{until}/0/json", "empty.json")
    serve(httpserver, f"/pubs/biorxiv/{since}/{until}/0", "pubs_not_found.json")


def paths(httpserver):
    return [req.path for req, _ in httpserver.log]


def last_run(db):
    return rows(db, "SELECT * FROM source_runs WHERE source = ? ORDER BY id DESC LIMIT 1", [SRC])[0]


def state(db):
    return rows(db, "SELECT * FROM source_states WHERE source = ?", [SRC])[0]


def test_first_run_reads_every_page_filters_locally_and_caps_the_backfill(httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 30)  # backfill_from = 2024-01-01 in the test config, capped to 30 days
    serve_full_window(httpserver, since, until)

    report = run_crawl(config_for(make_config, httpserver), only=[SRC])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert paths(httpserver) == [
        f"/details/medrxiv/{since}/{until}/0/json",
        f"/details/medrxiv/{since}/{until}/3/json",  # cursor advanced by the 3 records returned
        f"/pubs/medrxiv/{since}/{until}/0",
        f"/details/biorxiv/{since}/{until}/0/json",
        f"/pubs/biorxiv/{since}/{until}/0",
    ]
    assert all(req.query_string == b"" for req, _ in httpserver.log)

    records = {r["source_id"]: r for r in rows(db, "SELECT * FROM records WHERE source = ?", [SRC])}
    assert sorted(records) == [
        "10.1101/2025.11.20.25340002v2",
        "10.1101/2026.01.05.26300001v1",
        "10.64898/2026.01.20.26301234v1",
        "10.64898/2026.01.22.26301300v1",  # "ketamine" only inside O_SCPCAP tokens of the abstract
        "pubs:10.1101/2024.03.01.24303600",
        "pubs:10.1101/2025.11.20.25340002",  # off-topic title, but its DOI was kept from details
    ]
    esk = records["10.1101/2026.01.05.26300001v1"]
    assert esk["record_type"] == "preprint"
    assert esk["version"] == "1"
    assert esk["journal"] == "medRxiv"
    assert esk["published_on"] == "2026-01-07"
    assert esk["url"] == "https://www.medrxiv.org/content/10.1101/2026.01.05.26300001v1"
    assert json.loads(esk["authors"]) == ["Smith J. A.", "Garcia M.", "van der Berg P.-J."]
    assert esk["abstract"].startswith("Background: Esketamine nasal spray")
    assert "Methods: Adults" in esk["abstract"] and "remission on the madrs at week 8" in esk["abstract"]
    assert "O_" not in esk["abstract"] and "C_" not in esk["abstract"]

    ids = rows(db, "SELECT r.source_id, i.value FROM identifiers i JOIN records r ON r.id = i.record_id WHERE i.scheme = 'doi'")
    assert {(r["source_id"], r["value"]) for r in ids} >= {
        ("10.1101/2026.01.05.26300001v1", "10.1101/2026.01.05.26300001"),
        ("10.64898/2026.01.20.26301234v1", "10.64898/2026.01.20.26301234"),
        ("pubs:10.1101/2025.11.20.25340002", "10.1101/2025.11.20.25340002"),
    }
    assert not any("v" in r["value"].split("/")[-1] for r in ids)

    links = rows(
        db, "SELECT r.source_id, l.relation, l.scheme, l.value, l.note FROM record_links l JOIN records r ON r.id = l.record_id"
    )
    assert {(l["source_id"], l["relation"], l["value"]) for l in links} == {
        ("10.1101/2025.11.20.25340002v2", "preprint_of", "10.1001/jamapsychiatry.2026.0123"),
        ("pubs:10.1101/2025.11.20.25340002", "preprint_of", "10.1001/jamapsychiatry.2026.0123"),
        ("pubs:10.1101/2024.03.01.24303600", "preprint_of", "10.1016/j.jad.2026.01.001"),
    }
    # the version record and the pubs record of one preprint are one work
    assert records["10.1101/2025.11.20.25340002v2"]["work_id"] == records["pubs:10.1101/2025.11.20.25340002"]["work_id"]
    assert len({r["work_id"] for r in records.values()}) == 5

    queries = {q["query"]: q for q in rows(db, "SELECT * FROM source_queries WHERE source = ?", [SRC])}
    assert set(queries) == {"details/medrxiv", "pubs/medrxiv", "details/biorxiv", "pubs/biorxiv"}
    details = queries["details/medrxiv"]
    assert (details["window_from"], details["window_to"], details["hits"]) == (since, until, 4)
    assert json.loads(details["params"]) == {"read": 5, "kept": 4, "pages": 2, "total": 5}
    assert queries["pubs/medrxiv"]["hits"] == 2
    assert json.loads(queries["pubs/medrxiv"]["params"])["read"] == 3
    assert queries["details/biorxiv"]["hits"] == 0 and queries["pubs/biorxiv"]["hits"] == 0

    run = last_run(db)  # (source_runs.window_from is the pipeline's window; the capped one is in source_queries)
    # fetched = every posting downloaded (5 details + 3 pubs), kept = the 6 that passed the topic filter
    assert (run["status"], run["fetched"], run["kept"], run["new"]) == ("ok", 8, 6, 6)
    assert state(db)["watermark"] == until


def test_empty_window_is_not_an_error(httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 30)
    for server in ("medrxiv", "biorxiv"):
        serve(httpserver, f"/details/{server}/{since}/{until}/0/json", "empty.json")
        serve(httpserver, f"/pubs/{server}/{since}/{until}/0", "empty.json")

    report = run_crawl(config_for(make_config, httpserver), only=[SRC])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert len(httpserver.log) == 4
    assert rows(db, "SELECT * FROM records") == []
    queries = rows(db, "SELECT query, hits, params FROM source_queries")
    assert [(q["query"], q["hits"], json.loads(q["params"])["read"]) for q in queries] == [
        ("details/medrxiv", 0, 0),
        ("pubs/medrxiv", 0, 0),
        ("details/biorxiv", 0, 0),
        ("pubs/biorxiv", 0, 0),
    ]
    assert state(db)["watermark"] == until


def test_incremental_run_starts_at_watermark_minus_overlap_and_does_not_duplicate(httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 30)
    serve_full_window(httpserver, since, until)
    config = config_for(make_config, httpserver)
    assert run_crawl(config, only=[SRC]).sources[0].status == "ok"
    before = rows(db, "SELECT id, source_id FROM records ORDER BY id")

    # second run: watermark = today, overlap 3 days; one version gained its journal DOI
    since2, _ = window(today, 3)
    httpserver.clear_log()
    serve(httpserver, f"/details/medrxiv/{since2}/{until}/0/json", "details_medrxiv_updated.json")
    serve(httpserver, f"/pubs/medrxiv/{since2}/{until}/0", "empty.json")
    serve(httpserver, f"/details/biorxiv/{since2}/{until}/0/json", "empty.json")
    serve(httpserver, f"/pubs/biorxiv/{since2}/{until}/0", "empty.json")

    report = run_crawl(config, only=[SRC])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert paths(httpserver) == [
        f"/details/medrxiv/{since2}/{until}/0/json",  # total 3 reached after one page
        f"/pubs/medrxiv/{since2}/{until}/0",
        f"/details/biorxiv/{since2}/{until}/0/json",
        f"/pubs/biorxiv/{since2}/{until}/0",
    ]
    assert rows(db, "SELECT id, source_id FROM records ORDER BY id") == before
    run = last_run(db)
    assert (run["window_from"], run["fetched"], run["kept"], run["new"], run["updated"], run["unchanged"]) == (
        since2,
        3,
        2,
        0,
        1,
        1,
    )
    link = rows(
        db,
        """SELECT l.value FROM record_links l JOIN records r ON r.id = l.record_id
                       WHERE r.source_id = '10.1101/2026.01.05.26300001v1'""",
    )
    assert link == [{"value": "10.1176/appi.ajp.2026.20260001"}]


ERRORS = {
    "http-500": dict(body=b"Internal Server Error", status=500, content_type="text/plain"),
    "status-error": dict(name="status_error.json"),
    "empty-body": dict(body=b""),
    "html-page": dict(body=b"<!DOCTYPE html><html><body>Service unavailable</body></html>", content_type="text/html"),
}
EXPECTED = {
    "http-500": "HTTP 500",
    "status-error": "status 'error: interval end date precedes start date'",
    "empty-body": "empty answer",
    "html-page": "an HTML page",
}


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_error_answer_fails_the_source_and_keeps_what_was_stored(kind, httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 30)
    serve_full_window(httpserver, since, until)
    config = config_for(make_config, httpserver)
    assert run_crawl(config, only=[SRC]).sources[0].status == "ok"
    stored = rows(db, "SELECT source_id, content_hash FROM records ORDER BY id")
    old_mark = (today - dt.timedelta(days=10)).isoformat()
    db.execute("UPDATE source_states SET watermark = ? WHERE source = ?", [old_mark, SRC])
    db.conn.commit()

    since2 = (today - dt.timedelta(days=13)).isoformat()
    serve(httpserver, f"/details/medrxiv/{since2}/{until}/0/json", **ERRORS[kind])
    report = run_crawl(config, only=[SRC])

    assert report.sources[0].status == "failed"
    run = last_run(db)
    assert run["status"] == "failed"
    assert run["error"].startswith(f"[{SRC}]") and EXPECTED[kind] in run["error"], run["error"]
    assert "check:" in run["error"]
    assert rows(db, "SELECT source_id, content_hash FROM records ORDER BY id") == stored
    st = state(db)
    assert st["watermark"] == old_mark
    assert st["consecutive_failures"] == 1 and EXPECTED[kind] in st["last_error"]


def test_failure_on_a_later_page_keeps_earlier_pages_and_the_watermark(httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 30)
    serve(httpserver, f"/details/medrxiv/{since}/{until}/0/json", "details_medrxiv_page1.json")
    serve(httpserver, f"/details/medrxiv/{since}/{until}/3/json", "status_error.json")

    report = run_crawl(config_for(make_config, httpserver), only=[SRC])

    assert report.sources[0].status == "failed"
    assert paths(httpserver) == [f"/details/medrxiv/{since}/{until}/0/json", f"/details/medrxiv/{since}/{until}/3/json"]
    assert sorted(r["source_id"] for r in rows(db, "SELECT source_id FROM records")) == [
        "10.1101/2025.11.20.25340002v2",
        "10.1101/2026.01.05.26300001v1",
    ]
    assert state(db)["watermark"] is None
    query = rows(db, "SELECT query, hits, params FROM source_queries")[0]
    assert query["query"] == "details/medrxiv" and json.loads(query["params"])["pages"] == 2


def test_overstated_total_stops_on_the_empty_page(httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 30)
    serve(httpserver, f"/details/medrxiv/{since}/{until}/0/json", "details_medrxiv_page1.json")  # total "5"
    serve(httpserver, f"/details/medrxiv/{since}/{until}/3/json", "empty.json")  # "no posts found"
    serve(httpserver, f"/pubs/medrxiv/{since}/{until}/0", "empty.json")

    report = run_crawl(config_for(make_config, httpserver, servers=["medrxiv"]), only=[SRC])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert len(httpserver.log) == 3
    assert rows(db, "SELECT COUNT(*) AS n FROM records") == [{"n": 2}]


def test_max_pages_caps_a_chain_with_a_warning(httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 30)
    serve(httpserver, f"/details/medrxiv/{since}/{until}/0/json", "details_medrxiv_page1.json")
    serve(httpserver, f"/pubs/medrxiv/{since}/{until}/0", "empty.json")

    report = run_crawl(config_for(make_config, httpserver, servers=["medrxiv"], max_pages=1), only=[SRC])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert paths(httpserver) == [f"/details/medrxiv/{since}/{until}/0/json", f"/pubs/medrxiv/{since}/{until}/0"]
    warnings = json.loads(last_run(db)["warnings"])
    assert len(warnings) == 1 and "max_pages" in warnings[0] and "cursor 3" in warnings[0]


def test_category_is_sent_on_details_and_applied_locally_to_pubs(httpserver, make_config, run_crawl, db, today):
    since, until = window(today, 5)
    serve(httpserver, f"/details/medrxiv/{since}/{until}/0/json", "empty.json")
    serve(httpserver, f"/pubs/medrxiv/{since}/{until}/0", "pubs_medrxiv.json")
    config = config_for(
        make_config, httpserver, servers=["medrxiv"], category="Psychiatry and clinical psychology", max_backfill_days=5
    )

    report = run_crawl(config, only=[SRC])

    assert report.sources[0].status == "ok", report.sources[0].error
    details, pubs = [req for req, _ in httpserver.log]
    assert details.path == f"/details/medrxiv/{since}/{until}/0/json"
    assert details.args.to_dict() == {"category": "psychiatry_and_clinical_psychology"}
    assert pubs.args.to_dict() == {}
    assert [r["source_id"] for r in rows(db, "SELECT source_id FROM records")] == ["pubs:10.1101/2024.03.01.24303600"]


def test_explicit_since_is_honoured_beyond_the_backfill_cap(httpserver, make_config, run_crawl, db, today):
    since = today - dt.timedelta(days=90)
    serve(httpserver, f"/details/biorxiv/{since}/{today}/0/json", "empty.json")
    serve(httpserver, f"/pubs/biorxiv/{since}/{today}/0", "empty.json")
    report = run_crawl(config_for(make_config, httpserver, servers=["biorxiv"]), only=[SRC], since=since)
    assert report.sources[0].status == "ok", report.sources[0].error
    assert len(httpserver.log) == 2


def test_invalid_servers_setting_fails_with_a_hint(httpserver, make_config, run_crawl, db):
    report = run_crawl(config_for(make_config, httpserver, servers=["arxiv"]), only=[SRC])
    assert report.sources[0].status == "failed"
    assert "servers" in report.sources[0].error and "check:" in report.sources[0].error
    assert len(httpserver.log) == 0


# --------------------------------------------------------------------------- parsers


def test_parse_details_versions_prefixes_and_links():
    records = biorxiv.parse_details(fixture_bytes(SRC, "details_medrxiv_page1.json"), "medrxiv")
    records += biorxiv.parse_details(fixture_bytes(SRC, "details_medrxiv_page2.json"), "medrxiv")
    by_id = {r.source_id: r for r in records}
    ketamine = by_id["10.1101/2025.11.20.25340002v2"]
    assert ketamine.version == "2"
    assert ketamine.identifiers == [("doi", "10.1101/2025.11.20.25340002")]
    assert [(l.relation, l.scheme, l.value) for l in ketamine.links] == [
        ("preprint_of", "doi", "10.1001/jamapsychiatry.2026.0123")
    ]
    assert ketamine.keywords == ["psychiatry and clinical psychology"]
    assert ketamine.abstract == (
        "Background: Suicidal ideation often responds to ketamine within hours.\n\n"
        "Highlights\n- Six infusions reduced ideation scores by 40%.\n"
        "- Effects persisted at day 28 → day 56 in responders."
    )
    new_prefix = by_id["10.64898/2026.01.20.26301234v1"]
    assert new_prefix.identifiers == [("doi", "10.64898/2026.01.20.26301234")]
    assert new_prefix.url == "https://www.medrxiv.org/content/10.64898/2026.01.20.26301234v1"
    assert new_prefix.links == []  # published = "NA"
    # the trial number in the abstract is not this preprint's identifier
    assert by_id["10.1101/2026.01.05.26300001v1"].identifiers == [("doi", "10.1101/2026.01.05.26300001")]


def test_parse_pubs_uses_a_separate_source_id():
    records = biorxiv.parse_pubs(fixture_bytes(SRC, "pubs_medrxiv.json"), "medrxiv")
    first = records[0]
    assert first.source_id == "pubs:10.1101/2024.03.01.24303600"
    assert first.version is None and first.record_type == "preprint"
    assert first.published_on == "2024-03-04"
    assert first.authors == ["Rossi L.", "Meyer A. B."]
    assert [(l.relation, l.value, l.note) for l in first.links] == [
        ("preprint_of", "10.1016/j.jad.2026.01.001", "Journal of Affective Disorders"),
    ]
    assert first.extra["published_date"] == "2026-01-15"
    assert records[2].links[0].value == "10.1056/nejmoa2600001"


def test_doi_with_version_suffix_and_new_prefix_normalise_to_one_work():
    item = {
        "doi": "10.64898/2026.02.01.26309999v3",
        "title": "Ketamine",
        "version": "",
        "published": "NA",
        "server": "bioRxiv",
        "authors": "Doe, J.",
    }
    record = biorxiv.build_details_record(item)
    assert record.source_id == "10.64898/2026.02.01.26309999v3"
    assert record.identifiers == [("doi", "10.64898/2026.02.01.26309999")]
    assert record.url == "https://www.biorxiv.org/content/10.64898/2026.02.01.26309999v3"
    assert biorxiv.build_details_record({"doi": "", "title": "x"}) is None
    assert biorxiv.build_details_record({"doi": "10.1101/123456", "title": " "}) is None


def test_published_pointing_to_the_preprint_itself_is_not_a_link():
    item = {"doi": "10.1101/2026.01.01.000001", "version": "1", "title": "Ketamine", "published": "10.1101/2026.01.01.000001v2"}
    assert biorxiv.build_details_record(item).links == []


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Smith, J. A.; Garcia, M.", ["Smith J. A.", "Garcia M."]),
        ("Piotr Tynecki; Arkadiusz  Guzinski;", ["Piotr Tynecki", "Arkadiusz Guzinski"]),
        ("dhurandhar, a.; Cecchi, G.", ["dhurandhar a.", "Cecchi G."]),
        ("COVID-19 Consortium", ["COVID-19 Consortium"]),
        ("", []),
        (None, []),
    ],
)
def test_split_authors(raw, expected):
    assert biorxiv.split_authors(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("AO_SCPCAPBSTRACTC_SCPCAP Ketamine works.", "ABSTRACT Ketamine works."),
        ("SummaryManually assessing", "Summary: Manually assessing"),
        ("Abstract/SummaryO_ST_ABSBackgroundC_ST_ABSKetamine is", "Abstract/Summary\nBackground: Ketamine is"),
        ("Key pointsO_ST_ABSWhat is new?C_ST_ABSRapid onset.", "Key points\nWhat is new? Rapid onset."),
        ('Text.\n\nO_FIG O_LINKSMALLFIG WIDTH=200 SRC="x.gif"> M_FIG C_FIG\n\nMore text.', "Text.\n\nMore text."),
        ("Ketamine &amp; <i>esketamine</i>  reduce   scores", "Ketamine & esketamine reduce scores"),
        ("Response rate [&ge;] 50% [-&gt;] remission", "Response rate ≥ 50% → remission"),
        ("Background10 patients", "Background10 patients"),  # a heading is only split before a capital
        ("NA", None),
        ("", None),
    ],
)
def test_clean_abstract(raw, expected):
    assert biorxiv.clean_abstract(raw) == expected


@pytest.mark.parametrize(
    "body, collection_len, total",
    [
        (b'{"messages":[{"status":"ok","cursor":0,"count":1,"total":"7"}],"collection":[{"doi":"10.1101/1"}]}', 1, 7),
        (b'{"messages":[{"status":"ok","total":12}],"collection":[]}', 0, 12),
        (b'{"messages":[{"status":"no posts found"}],"collection":[]}', 0, None),
        (b'{"messages":[{"status":"No posts found"}]}', 0, None),
        (b'{"messages":[{"status":"no articles found for published version of "}],"collection":[]}', 0, None),
        (b'{"collection":[{"preprint_doi":"10.1101/1"}]}', 1, None),
    ],
)
def test_parse_envelope_empty_and_ok(body, collection_len, total):
    collection, got_total = biorxiv.parse_envelope(body)
    assert (len(collection), got_total) == (collection_len, total)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty answer"),
        (b"   \n", "empty answer"),
        (b"<html><head><title>502</title></head></html>", "an HTML page"),
        (b'{"messages":[{"status":"error"}],"collection":[]}', "status 'error'"),
        (b'{"messages":[{"status":"invalid server"}]}', "status 'invalid server'"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"foo": 1}', "neither 'messages' nor 'collection'"),
        (b'{"messages":[{"status":"ok"}],"collection":{"a":1}}', "'collection' is a dict"),
        (b'{"messages":[{"status":"ok"', "malformed JSON"),
    ],
)
def test_parse_envelope_errors(body, message):
    with pytest.raises(SourceError) as exc:
        biorxiv.parse_envelope(body, url="http://x/details")
    assert str(exc.value).startswith(f"[{SRC}]") and message in str(exc.value)


def test_parse_file_handles_details_pubs_and_errors():
    assert len(biorxiv.parse_file(fixture_bytes(SRC, "details_medrxiv_page1.json"), "details_medrxiv_page1.json")) == 3
    pubs = biorxiv.parse_file(fixture_bytes(SRC, "pubs_medrxiv.json"), "pubs_medrxiv.json")
    assert [r.source_id for r in pubs][0] == "pubs:10.1101/2024.03.01.24303600"
    assert biorxiv.parse_file(fixture_bytes(SRC, "empty.json"), "empty.json") == []
    with pytest.raises(SourceError):
        biorxiv.parse_file(fixture_bytes(SRC, "status_error.json"), "status_error.json")
