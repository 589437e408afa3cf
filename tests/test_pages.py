"""HTML listing pages ([[pages]]): pipeline runs against pytest-httpserver, and parser unit tests."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import FIXTURES, fixture_bytes, rows

from crawler.config import load_config
from crawler.errors import ConfigError, SourceError
from crawler.sources import pages

FDA = {"name": "fda-dsc", "item": "table tbody tr", "title": "td a", "link": "td a", "date": "td:first-child", "kind": "news"}
EMA = {"name": "ema", "item": "div.views-row", "title": "h3", "link": "h3 a", "date": "time, .date", "summary": "p.teaser"}
ETAG = 'W/"dsc-1"'


def page_config(make_config, httpserver, *entries: dict):
    text = ""
    for entry in entries:
        text += "\n[[pages]]\n"
        for key, value in entry.items():
            if key == "path":
                text += f'url = "{httpserver.url_for(value)}"\n'
            elif isinstance(value, bool):
                text += f"{key} = {'true' if value else 'false'}\n"
            else:
                text += f"{key} = {json.dumps(value)}\n"
    return make_config(text)


def serve(httpserver, path, name, status=200, headers=None, content_type="text/html; charset=utf-8"):
    httpserver.expect_request(path).respond_with_data(
        fixture_bytes("pages", name), status=status, headers=headers or {}, content_type=content_type
    )


def state(db, source):
    row = rows(db, "SELECT * FROM source_states WHERE source = ?", [source])[0]
    row["state"] = json.loads(row["state"])
    return row


# --------------------------------------------------------------------------- pipeline


def test_first_run_selects_items_resolves_links_and_filters(make_config, httpserver, run_crawl, db, today):
    serve(httpserver, "/dsc", "fda_dsc_listing.html", headers={"ETag": ETAG})
    config = page_config(make_config, httpserver, {**FDA, "path": "/dsc"})

    report = run_crawl(config, only=["page:fda-dsc"])

    assert report.sources[0].status == "ok", report.sources[0].error
    assert "If-None-Match" not in httpserver.log[0][0].headers
    records = {r["title"]: r for r in rows(db, "SELECT * FROM records")}
    # the clozapine row has no match term and is filtered out
    assert sorted(records) == [
        "FDA modifies the Spravato (esketamine) REMS to simplify monitoring requirements",
        "FDA warns patients and health care providers about potential risks associated with compounded ketamine products",
        "Ketamine abuse in compounded oral products: update in preparation",
    ]
    warns = records[
        "FDA warns patients and health care providers about potential risks associated with compounded ketamine products"
    ]
    # relative href resolved against the page URL (here the test server)
    expected = httpserver.url_for(
        "/drugs/drug-safety-and-availability/fda-warns-patients-and-health-care-providers-about-potential-risks-associated-compounded-ketamine"
    )
    assert warns["url"] == expected  # the id leaves out scheme, host and port (#16: a new base URL must not duplicate)
    assert warns["source_id"] == expected.split(httpserver.url_for("/"), 1)[1].join(["/", ""])
    assert (warns["published_on"], warns["entered_on"], warns["record_type"]) == ("2024-03-05", "2024-03-05", "news")
    spravato = records["FDA modifies the Spravato (esketamine) REMS to simplify monitoring requirements"]
    assert spravato["url"] == "https://www.fda.gov/drugs/drug-safety-and-availability/spravato-esketamine-rems-modification"
    assert spravato["published_on"] == "2025-01-21"  # 01/21/2025, US month first
    pending = records["Ketamine abuse in compounded oral products: update in preparation"]
    # javascript: link -> no URL, source_id from the title; "Pending" -> no date, entered_on = fetch date
    assert pending["url"] is None and pending["source_id"].startswith("sha1:")
    assert pending["published_on"] is None and pending["entered_on"] == today.isoformat()

    saved = state(db, "page:fda-dsc")
    assert saved["state"]["etag"] == ETAG
    assert saved["state"]["first_seen"] == {pending["source_id"]: today.isoformat()}
    query = rows(db, "SELECT * FROM source_queries")[0]
    assert query["query"] == httpserver.url_for("/dsc")
    assert query["hits"] == 3 and json.loads(query["params"]) == {"status": 200, "read": 4, "filtered": True}


def test_second_run_is_conditional_and_304_keeps_everything(make_config, httpserver, run_crawl, db, today):
    serve(httpserver, "/dsc", "fda_dsc_listing.html", headers={"ETag": ETAG, "Last-Modified": "Tue, 05 Mar 2024 14:00:00 GMT"})
    config = page_config(make_config, httpserver, {**FDA, "path": "/dsc"})
    run_crawl(config, only=["page:fda-dsc"])
    before = rows(db, "SELECT * FROM records ORDER BY id")

    httpserver.clear_all_handlers()
    httpserver.expect_request("/dsc", headers={"If-None-Match": ETAG}).respond_with_data(b"", status=304)
    report = run_crawl(config, only=["page:fda-dsc"])

    assert report.sources[0].status == "ok", report.sources[0].error
    request = httpserver.log[-1][0]
    assert request.headers["If-None-Match"] == ETAG
    assert request.headers["If-Modified-Since"] == "Tue, 05 Mar 2024 14:00:00 GMT"
    assert rows(db, "SELECT * FROM records ORDER BY id") == before
    run = rows(db, "SELECT * FROM source_runs ORDER BY id")[-1]
    assert (run["status"], run["fetched"], run["window_from"]) == ("ok", 0, (today - dt.timedelta(days=3)).isoformat())
    assert state(db, "page:fda-dsc")["state"]["etag"] == ETAG


def test_changed_page_adds_the_new_row_only(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/dsc", "fda_dsc_listing.html")
    config = page_config(make_config, httpserver, {**FDA, "path": "/dsc"})
    run_crawl(config, only=["page:fda-dsc"])

    httpserver.clear_all_handlers()
    serve(httpserver, "/dsc", "fda_dsc_listing_next.html")
    report = run_crawl(config, only=["page:fda-dsc"])

    assert report.sources[0].counts == {"fetched": 5, "kept": 4, "new": 1, "updated": 0, "unchanged": 3}
    assert rows(db, "SELECT count(*) AS n FROM records")[0]["n"] == 4
    new = rows(db, "SELECT * FROM records ORDER BY id")[-1]
    assert new["title"].startswith("FDA reminds prescribers of sedation and dissociation monitoring")
    assert new["published_on"] == "2024-03-12"


def test_layout_change_fails_with_a_clear_message_and_loses_nothing(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/dsc", "fda_dsc_listing.html")
    config = page_config(make_config, httpserver, {**FDA, "path": "/dsc"})
    run_crawl(config, only=["page:fda-dsc"])
    db.execute("UPDATE source_states SET watermark = '2024-05-01' WHERE source = 'page:fda-dsc'")
    db.conn.commit()

    httpserver.clear_all_handlers()
    serve(httpserver, "/dsc", "fda_dsc_redesigned.html")
    report = run_crawl(config, only=["page:fda-dsc"])

    assert report.sources[0].status == "failed"
    error = report.sources[0].error
    assert error.startswith("[page:fda-dsc] the selectors in [[pages]] fda-dsc matched nothing: item = 'table tbody tr'")
    assert "the page layout may have changed" in error and "Drug Safety Communications | FDA" in error
    assert rows(db, "SELECT count(*) AS n FROM records")[0]["n"] == 3
    saved = state(db, "page:fda-dsc")
    assert saved["watermark"] == "2024-05-01" and saved["consecutive_failures"] == 1
    assert rows(db, "SELECT status, error FROM source_runs ORDER BY id")[-1] == {"status": "failed", "error": error}


def test_http_error_fails_only_that_page(make_config, httpserver, run_crawl, db):
    httpserver.expect_request("/gone").respond_with_data(b"Not Found", status=404)
    serve(httpserver, "/news", "ema_news_cards.html", content_type="text/html")
    config = page_config(make_config, httpserver, {**FDA, "path": "/gone"}, {**EMA, "path": "/news"})

    report = run_crawl(config, only=["pages"])

    status = {s.name: s for s in report.sources}
    assert status["page:fda-dsc"].status == "failed"
    assert status["page:fda-dsc"].error.startswith("[page:fda-dsc] HTTP 404")
    assert status["page:ema"].status == "ok"
    assert {r["source"] for r in rows(db, "SELECT source FROM records")} == {"page:ema"}
    assert state(db, "page:fda-dsc")["watermark"] is None


def test_base_href_time_element_summary_and_declared_charset(make_config, httpserver, run_crawl, db):
    # served without a charset: the page's own <meta> (iso-8859-1) must be honoured
    serve(httpserver, "/news", "ema_news_cards.html", content_type="text/html")
    config = page_config(make_config, httpserver, {**EMA, "path": "/news", "filter": False})

    run_crawl(config, only=["page:ema"])

    records = rows(db, "SELECT * FROM records ORDER BY id")
    assert [r["url"] for r in records] == [
        "https://www.ema.europa.eu/en/news/meeting-highlights-chmp-march-2024",  # resolved against <base href>
        "https://www.ema.europa.eu/en/news/new-guidance-depression-trials",
        None,  # mailto: ignored
    ]
    assert [r["published_on"] for r in records] == ["2024-03-22", "2024-03-05", None]
    assert records[0]["record_type"] == "article"
    assert records[0]["abstract"].endswith("(Comité des médicaments à usage humain).")
    assert records[2]["title"] == "Press contact for journalists (Café briefing)"


# --------------------------------------------------------------------------- parser


def test_title_selector_matching_nothing_is_an_error():
    settings = {**FDA, "url": "https://www.fda.gov/dsc", "title": "td strong"}
    with pytest.raises(SourceError, match=r"title = 'td strong' finds no text in any of the 4 element\(s\)"):
        pages.parse_page(fixture_bytes("pages", "fda_dsc_listing.html"), "page:fda-dsc", settings)


def test_invalid_selector_is_a_config_problem_not_a_traceback():
    settings = {**FDA, "url": "https://www.fda.gov/dsc", "item": "table tbody tr[", "title": "td a"}
    with pytest.raises(SourceError, match=r"item = 'table tbody tr\[' in \[\[pages\]\] fda-dsc is not a valid CSS selector"):
        pages.parse_page(fixture_bytes("pages", "fda_dsc_listing.html"), "page:fda-dsc", settings)


def test_bot_page_or_empty_body_names_the_page():
    settings = {**FDA, "url": "https://www.fda.gov/dsc"}
    with pytest.raises(SourceError, match=r"titled 'Just a moment...'"):
        pages.parse_page(fixture_bytes("feeds", "bot_check.html"), "page:fda-dsc", settings)
    with pytest.raises(SourceError, match=r"^\[page:fda-dsc\] the selectors in \[\[pages\]\] fda-dsc matched nothing"):
        pages.parse_page(b"", "page:fda-dsc", settings)


def test_a_feed_where_the_page_should_be_is_one_error_naming_the_page_and_no_library_warning():
    """A [[pages]] url that answers with XML (here a real feed) fails with the selectors' error, which names the page;
    BeautifulSoup's XMLParsedAsHTMLWarning (a stderr line naming no source) is not let out."""
    import warnings

    settings = {**FDA, "url": "https://www.fda.gov/dsc"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SourceError, match=r"^\[page:fda-dsc\] the selectors in \[\[pages\]\] fda-dsc matched nothing"):
            pages.parse_page(fixture_bytes("feeds", "fda_press_rss2.xml"), "page:fda-dsc", settings)
    assert [str(w.message) for w in caught] == []


def test_links_relative_to_the_page_url_and_stable_ids():
    settings = {**FDA, "url": "https://www.fda.gov/drugs/drug-safety-and-availability/drug-safety-communications"}
    first = pages.parse_page(fixture_bytes("pages", "fda_dsc_listing.html"), "page:fda-dsc", settings, fetched_on="2024-03-09")
    again = pages.parse_page(
        fixture_bytes("pages", "fda_dsc_listing.html"),
        "page:fda-dsc",
        settings,
        fetched_on="2024-03-20",
        first_seen={first[3].source_id: "2024-03-09"},
    )
    assert first[0].url == (
        "https://www.fda.gov/drugs/drug-safety-and-availability/"
        "fda-warns-patients-and-health-care-providers-about-potential-risks-associated-compounded-ketamine"
    )
    assert [r.source_id for r in first] == [r.source_id for r in again]
    assert [r.content_hash() for r in first] == [r.content_hash() for r in again]


def test_item_that_is_itself_the_link_and_unparseable_dates():
    body = (
        b'<ul><li><a class="x" href="a.html">Ketamine story</a> <em>sometime in spring</em></li>'
        b'<li><a class="x" href="#top">Esketamine story</a> <em>2024-13-45</em></li></ul>'
    )
    settings = {"name": "n", "url": "https://example.org/news/", "item": "li", "title": "a", "link": "a.x", "date": "em"}
    first, second = pages.parse_page(body, "page:n", settings, fetched_on="2024-03-09")
    assert first.url == "https://example.org/news/a.html" and first.published_on is None
    assert second.url is None and second.published_on is None and second.entered_on == "2024-03-09"


def test_doi_links_identify_articles_but_not_news():
    body = b'<div class="r"><a href="https://doi.org/10.1176/appi.ajp.20230512">Ketamine in late life</a></div>'
    settings = {"name": "n", "url": "https://example.org/", "item": "div.r", "title": "a", "link": "a"}
    [article] = pages.parse_page(body, "page:n", settings)
    [news] = pages.parse_page(body, "page:n", {**settings, "kind": "news"})
    assert article.identifiers == [("doi", "10.1176/appi.ajp.20230512")] and article.record_type == "article"
    assert news.identifiers == [] and news.record_type == "news"


# --------------------------------------------------------------------------- the shipped FDA entry (issue #12)

#: The selectors shipped before issue #12, written for a table the FDA page does not have.
OLD_SHIPPED_FDA = {"item": "table tbody tr", "title": "td a", "link": "td a", "date": "td:first-child"}


def shipped_page(name: str) -> dict:
    config = load_config(str(FIXTURES.parent.parent / "config" / "litmon.toml"))
    return next(p for p in config.pages if p["name"] == name)


def test_shipped_fda_selectors_read_the_real_layout(make_config, httpserver, run_crawl, db):
    shipped = shipped_page("fda-drug-safety-communications")
    entry = {k: v for k, v in shipped.items() if k not in ("url", "enabled", "filter")}
    serve(httpserver, "/drugs/drug-safety-and-availability/drug-safety-communications", "fda_dsc_current.html")
    config = page_config(
        make_config, httpserver, {**entry, "path": "/drugs/drug-safety-and-availability/drug-safety-communications"}
    )

    report = run_crawl(config, only=["page:fda-drug-safety-communications"])

    assert report.sources[0].status == "ok", report.sources[0].error
    records = rows(db, "SELECT title, url, published_on, record_type FROM records ORDER BY published_on DESC")
    # only the two entries naming the topic are kept; nothing from the nav, breadcrumbs, "Previous" or
    # "Additional Resources" lists (whose ketamine link is not a communication)
    assert records == [
        {
            "title": "FDA modifies the Spravato (esketamine) REMS to remove the requirement for a two-hour in-office "
            "monitoring period",
            "url": httpserver.url_for(
                "/drugs/drug-safety-and-availability/fda-removes-spravato-esketamine-rems-monitoring-requirement"
            ),
            "published_on": "2025-01-21",
            "record_type": "news",
        },
        {
            "title": "FDA warns patients about risks associated with compounded ketamine products, including oral "
            "formulations, for the treatment of psychiatric disorders",
            "url": httpserver.url_for(
                "/drugs/human-drug-compounding/fda-warns-patients-about-risks-associated-compounded-ketamine-products-including-oral-formulations"
            ),
            "published_on": "2023-10-10",
            "record_type": "news",
        },
    ]
    run = rows(db, "SELECT fetched FROM source_runs")[0]
    assert run["fetched"] >= 2


def test_every_item_of_the_real_fda_list_gets_its_leading_date():
    settings = {**shipped_page("fda-drug-safety-communications")}
    records = pages.parse_page(fixture_bytes("pages", "fda_dsc_current.html"), "page:fda", settings)
    assert [(r.published_on, r.title.split(" ")[0]) for r in records] == [
        ("2025-08-28", "FDA"),
        ("2025-08-27", "FDA"),
        ("2025-07-31", "FDA"),
        ("2025-01-21", "FDA"),
        ("2023-11-28", "FDA"),  # 11/28/2023: the older slash form on the same page
        ("2023-10-10", "FDA"),
        ("2022-06-30", "FDA"),  # 6/30/2022: no leading zero
    ]
    assert all(r.url.startswith("https://www.fda.gov/drugs/") for r in records)
    assert not any(r.title[0].isdigit() for r in records)  # the date is not part of the title


def test_the_old_shipped_fda_selectors_match_nothing_on_the_real_layout():
    settings = {**shipped_page("fda-drug-safety-communications"), **OLD_SHIPPED_FDA}
    settings.pop("date_pattern")
    with pytest.raises(SourceError, match=r"item = 'table tbody tr' selects no element"):
        pages.parse_page(fixture_bytes("pages", "fda_dsc_current.html"), "page:fda", settings)


def test_date_pattern_reads_dates_from_running_text_of_the_date_element():
    body = (
        b'<div class="n"><h3><a href="/a">Ketamine notice</a></h3><p class="m">Posted on 03-05-2024 by the agency</p></div>'
        b'<div class="n"><h3><a href="/b">Esketamine notice</a></h3><p class="m">No date here</p></div>'
    )
    settings = {
        "name": "n",
        "url": "https://example.org/",
        "item": "div.n",
        "title": "h3",
        "link": "a",
        "date": "p.m",
        "date_pattern": r"Posted on (\S+)",
    }
    first, second = pages.parse_page(body, "page:n", settings, fetched_on="2024-03-09")
    assert (first.published_on, second.published_on, second.entered_on) == ("2024-03-05", None, "2024-03-09")
    with pytest.raises(SourceError, match=r"date_pattern = '\(' in \[\[pages\]\] n is not a valid regular expression"):
        pages.parse_page(body, "page:n", {**settings, "date_pattern": "("})


def test_invalid_date_pattern_is_a_config_error(make_config):
    with pytest.raises(ConfigError, match=r"pages\[0\]\.date_pattern"):
        make_config(
            '[[pages]]\nname = "x"\nurl = "https://example.org/"\nitem = "li"\ntitle = "a"\nlink = "a"\ndate_pattern = "("\n'
        )
