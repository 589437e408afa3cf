"""Never skip silently (#16): an item that cannot be identified is counted as ``skipped`` with its reason
in the log line, ``source_runs`` and ``litmon status``, and the watermark does not move past a window
containing one, so that a clean run later stores it."""

from __future__ import annotations

import json
import logging

from werkzeug import Response

from crawler import clock, store
from crawler.status import collect_status, render_status
from tests.conftest import fixture_bytes, rows
from tests.helpers.sources import crossref_config, serve_pages
from tests.helpers.sources import source_config as ct_config


def test_a_study_without_nct_id_is_counted_skipped_and_holds_the_watermark(make_config, httpserver, run_crawl, db, caplog):
    config = ct_config(make_config, httpserver)
    good = fixture_bytes("clinicaltrials", "studies_page2.json")
    serve_pages(httpserver, {None: good})
    run_crawl(config, only=["clinicaltrials"])
    first_mark = store.load_source_state(db, "clinicaltrials")["watermark"]

    clock.advance(days=3)
    broken = json.loads(good)
    broken["studies"].insert(0, {"protocolSection": {"identificationModule": {"briefTitle": "Ketamine study, id lost"}}})
    httpserver.clear()
    serve_pages(httpserver, {None: json.dumps(broken)})
    with caplog.at_level(logging.INFO):
        report = run_crawl(config, only=["clinicaltrials"])

    [source] = report.sources
    assert source.status == "ok" and source.counts["skipped"] == 1 and source.watermark_held
    assert "1 skipped (study #1: no valid protocolSection.identificationModule.nctId (None)), watermark held" in caplog.text
    run = rows(db, "SELECT skipped, skipped_reasons FROM source_runs ORDER BY id DESC LIMIT 1")[0]
    assert run["skipped"] == 1 and "nctId" in json.loads(run["skipped_reasons"])[0]
    assert store.load_source_state(db, "clinicaltrials")["watermark"] == first_mark  # not moved past the window
    info = collect_status(config, db)
    assert not info["healthy"]
    assert any(a.startswith("clinicaltrials: 1 item(s) skipped in the last run (study #1: no valid") for a in info["alerts"])
    [entry] = [s for s in info["sources"] if s["source"] == "clinicaltrials"]
    assert entry["last_run"]["skipped"] == 1

    httpserver.clear()  # the registry fixes its answer: the next run reads the held window again
    serve_pages(httpserver, {None: good})
    report = run_crawl(config, only=["clinicaltrials"])
    assert report.sources[0].counts.get("skipped", 0) == 0
    assert store.load_source_state(db, "clinicaltrials")["watermark"] == clock.today().isoformat()
    assert collect_status(config, db)["healthy"]


def test_a_crossref_item_without_doi_on_the_topic_is_reported_not_dropped(make_config, httpserver, run_crawl, db):
    page = json.loads(fixture_bytes("crossref", "works_created_page1.json"))
    lost = dict(page["message"]["items"][0])
    lost.pop("DOI")
    lost["title"] = ["Esketamine nasal spray in treatment-resistant depression (DOI lost)"]
    page["message"]["items"].append(lost)

    def handler(request):
        if request.args.get("cursor") == "*" and "from-created-date" in request.args["filter"]:
            return Response(json.dumps(page), content_type="application/json")
        return Response(fixture_bytes("crossref", "works_empty.json"), content_type="application/json")

    httpserver.expect_request("/works").respond_with_handler(handler)
    report = run_crawl(crossref_config(make_config, httpserver), only=["crossref"])

    [source] = report.sources
    assert source.status == "ok", source.error
    assert source.counts["skipped"] == 1 and source.watermark_held
    assert "an item without a DOI ('Esketamine nasal spray in treatment-resistant depression (DOI lost)')" in source.skipped[0]
    assert store.load_source_state(db, "crossref")["watermark"] is None  # the first window is read again


# --------------------------------------------------------------------------- feeds, pages, ISRCTN, OpenAlex, CTIS


def assert_reported(report, db, config, name: str, reason: str, *, held: bool) -> None:
    """One item skipped with ``reason``: in the report and its log line, ``source_runs`` and ``litmon status``;
    the watermark held (a status alert) or, when a rule says re-reading cannot help, moved to today (a
    status notice: shown, but not unhealthy)."""
    [source] = [s for s in report.sources if s.name == name]
    assert source.status == "ok", source.error
    assert source.counts["skipped"] == 1 and reason in source.skipped[0], source.skipped
    assert f"1 skipped ({source.skipped[0]})" in source.summary()
    assert source.watermark_held is held and ("watermark held" in source.summary()) is held
    run = rows(db, "SELECT skipped, skipped_reasons FROM source_runs WHERE source = ? ORDER BY id DESC LIMIT 1", [name])[0]
    assert run["skipped"] == 1 and reason in json.loads(run["skipped_reasons"])[0]
    mark = store.load_source_state(db, name)["watermark"]
    assert (mark is None) if held else (mark == clock.today().isoformat())
    info = collect_status(config, db)
    # held: an alert until the window is read whole; moved on (nothing a re-read could save): a notice, still healthy
    [said] = [a for a in info["alerts" if held else "notices"] if a.startswith(f"{name}: 1 item(s) skipped")]
    assert not [a for a in info["notices" if held else "alerts"] if a.startswith(f"{name}: 1 item(s) skipped")]
    assert reason in said
    assert ("the watermark is held" in said) is held and ("re-reading cannot recover them" in said) is (not held)
    if not held:
        assert f"  {said}" in render_status(info).split("notices (")[1].split("\n\n")[0]


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Journal of Affective Research</title><link>https://journal.example.org/</link>
<description>Latest articles</description>
<item><title>Ketamine infusions for treatment-resistant depression: a randomised trial</title>
<link>https://journal.example.org/article/1</link><pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>
<item><link>https://journal.example.org/article/2</link><description>Esketamine nasal spray in adolescents</description>
<pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>
<item><title>Esketamine and suicidal ideation: a cohort study</title>
<link>https://journal.example.org/article/3</link><pubDate>Sat, 21 Nov 2026 08:00:00 GMT</pubDate></item>
</channel></rss>"""


def test_a_feed_entry_without_title_is_counted_skipped_and_named(make_config, httpserver, run_crawl, db):
    httpserver.expect_request("/feed.rss").respond_with_data(RSS, content_type="application/rss+xml")
    config = make_config(f'[[feeds]]\nname = "journal"\nurl = "{httpserver.url_for("/feed.rss")}"\n')
    report = run_crawl(config)

    # a feed is read whole every run: holding its watermark would re-read nothing more (docs/reliability.md)
    assert_reported(
        report, db, config, "feed:journal", "entry 2 of the feed: no title (https://journal.example.org/article/2)", held=False
    )
    assert len(rows(db, "SELECT id FROM records WHERE source = 'feed:journal'")) == 2


def test_a_page_item_without_title_is_counted_skipped_and_named(make_config, httpserver, run_crawl, db):
    page = fixture_bytes("pages", "fda_dsc_listing.html").decode()
    row = page.index('<a href="/drugs/drug-safety-and-availability/clozapine-rems-removal">')
    untitled = page[:row] + page[row:].replace("FDA removes the Clozapine REMS to reduce the burden on patients", "", 1)
    httpserver.expect_request("/dsc").respond_with_data(untitled, content_type="text/html; charset=utf-8")
    selectors = {"item": "table tbody tr", "title": "td a", "link": "td a", "date": "td:first-child", "kind": "news"}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in selectors.items())
    config = make_config(f'[[pages]]\nname = "fda"\nurl = "{httpserver.url_for("/dsc")}"\nfilter = false\n{lines}')
    report = run_crawl(config)

    assert_reported(report, db, config, "page:fda", "no title (selector 'td a')", held=False)
    assert not rows(db, "SELECT id FROM records WHERE title LIKE '%Clozapine%'")


def isrctn_trials(strip_number: bool) -> bytes:
    """The recorded answer (its totalCount says 3, it holds 2: the count is set to what it holds)."""
    body = fixture_bytes("isrctn", "search_page1.xml").replace(b'totalCount="3"', b'totalCount="2"', 1)
    if strip_number:
        body = body.replace(b'<isrctn dateAssigned="2016-03-08T00:00:00.000Z">14689382</isrctn>', b"", 1)
        body = body.replace(b' publicIdentifierCanonical="ISRCTN14689382"', b"", 1)
    return body


def test_an_isrctn_trial_without_number_is_counted_skipped_and_holds_the_watermark(make_config, httpserver, run_crawl, db):
    answer = {"body": isrctn_trials(strip_number=True)}
    httpserver.expect_request("/api/query/format/default").respond_with_handler(
        lambda request: Response(answer["body"], content_type="application/xml")
    )
    section = (
        f'[sources.isrctn]\nenabled = true\nmin_interval = 0\nbase_url = "{httpserver.url_for("/api/")}"\nquery = "ketamine"\n'
    )
    config = make_config(section)
    report = run_crawl(config)

    assert_reported(report, db, config, "isrctn", "trial #1: no valid ISRCTN number (None)", held=True)
    assert len(rows(db, "SELECT id FROM records WHERE source = 'isrctn'")) == 1

    clock.advance(days=1)  # the registry answers whole again: the held window is read again and the trial stored
    answer["body"] = isrctn_trials(strip_number=False)
    again = run_crawl(config)
    assert again.sources[0].counts.get("skipped", 0) == 0
    assert {r["source_id"] for r in rows(db, "SELECT source_id FROM records WHERE source = 'isrctn'")} >= {"ISRCTN14689382"}
    assert store.load_source_state(db, "isrctn")["watermark"] == clock.today().isoformat()


def openalex_section(httpserver) -> str:
    return (
        f'[sources.openalex]\nenabled = true\nmin_interval = 0\nbase_url = "{httpserver.url_for("/")}"\n'
        'query = "ketamine"\napi_key_env = "LITMON_TEST_OPENALEX_KEY"\n'
    )


def serve_openalex(httpserver, change) -> None:
    page = json.loads(fixture_bytes("openalex", "works_page1.json"))
    change(page["results"][0])
    page["meta"]["next_cursor"] = None
    httpserver.expect_request("/works").respond_with_handler(
        lambda request: Response(json.dumps(page), content_type="application/json")
    )


def test_an_openalex_work_without_id_is_counted_skipped_and_holds_the_watermark(
    make_config, httpserver, run_crawl, db, monkeypatch
):
    monkeypatch.setenv("LITMON_TEST_OPENALEX_KEY", "key")
    serve_openalex(httpserver, lambda work: work.pop("id"))
    config = make_config(openalex_section(httpserver))
    report = run_crawl(config)

    assert_reported(report, db, config, "openalex", "result #1: no valid OpenAlex id (", held=True)
    assert len(rows(db, "SELECT id FROM records WHERE source = 'openalex'")) == 1


def test_an_openalex_work_without_title_is_counted_but_does_not_hold_the_watermark(
    make_config, httpserver, run_crawl, db, monkeypatch
):
    """OpenAlex has works whose title is empty: re-reading the window returns them untitled again, so
    holding the watermark would re-read that window for ever."""
    monkeypatch.setenv("LITMON_TEST_OPENALEX_KEY", "key")
    serve_openalex(httpserver, lambda work: work.update(title=None, display_name=None))
    config = make_config(openalex_section(httpserver))
    report = run_crawl(config)

    assert_reported(
        report, db, config, "openalex", "result #1: https://openalex.org/W4405123456 has no title in OpenAlex", held=False
    )
