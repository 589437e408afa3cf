"""Never skip silently (#16): an item that cannot be identified is counted as ``skipped`` with its reason
in the log line, ``source_runs`` and ``litmon status``, and the watermark does not move past a window
containing one, so that a clean run later stores it."""

from __future__ import annotations

import json
import logging

from werkzeug import Response

from crawler import clock, store
from crawler.status import collect_status
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
