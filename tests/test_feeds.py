"""Journal and news feeds: pipeline runs against pytest-httpserver, and parser unit tests."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import FIXTURES, fixture_bytes, rows

from crawler.errors import SourceError
from crawler.sources import feeds
from crawler.sources.parsing import parse_date

ETAG = '"mp-2024-03-07"'
LAST_MODIFIED = "Thu, 07 Mar 2024 10:00:00 GMT"


def feed_config(make_config, httpserver, *entries: dict) -> object:
    """One [[feeds]] table per entry (name, path and optional kind/filter)."""
    text = ""
    for entry in entries:
        text += f'\n[[feeds]]\nname = "{entry["name"]}"\nurl = "{httpserver.url_for(entry["path"])}"\n'
        if "kind" in entry:
            text += f'kind = "{entry["kind"]}"\n'
        if "filter" in entry:
            text += f"filter = {'true' if entry['filter'] else 'false'}\n"
    return make_config(text)


def serve(httpserver, path, name, status=200, headers=None, content_type="application/rss+xml"):
    httpserver.expect_request(path).respond_with_data(
        fixture_bytes("feeds", name) if name else b"", status=status, headers=headers or {}, content_type=content_type
    )


def runs(db, source):
    return rows(db, "SELECT * FROM source_runs WHERE source = ? ORDER BY id", [source])


def state(db, source):
    row = rows(db, "SELECT * FROM source_states WHERE source = ?", [source])[0]
    row["state"] = json.loads(row["state"])
    return row


# --------------------------------------------------------------------------- pipeline


def test_first_run_keeps_topic_entries_and_stores_validators(make_config, httpserver, run_crawl, db, today):
    serve(httpserver, "/mp.rss", "nature_mp_rss10.xml", headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED})
    config = feed_config(make_config, httpserver, {"name": "mp", "path": "/mp.rss"})

    report = run_crawl(config, only=["feed:mp"])

    assert report.sources[0].status == "ok", report.sources[0].error
    request = httpserver.log[0][0]
    assert request.path == "/mp.rss"
    assert "If-None-Match" not in request.headers and "If-Modified-Since" not in request.headers
    assert "mailto:tester@example.org" in request.headers["User-Agent"]

    records = rows(db, "SELECT * FROM records ORDER BY source_id")
    # the lithium item does not mention a match term and is filtered out
    assert [r["title"] for r in records] == [
        "Esketamine nasal spray versus quetiapine in treatment-resistant depression: a secondary analysis",
        "Synaptic potentiation after a single subanesthetic dose: hydroxynorketamine metabolites in mice",
    ]
    first = records[0]
    assert first["source"] == "feed:mp"
    assert first["source_id"] == "https://www.nature.com/articles/s41380-024-02451-8"
    assert first["record_type"] == "article"
    assert first["journal"] == "Molecular Psychiatry"
    assert json.loads(first["authors"]) == ["Andrea Fagiolini", "Vanina Popova"]
    assert first["published_on"] == "2024-03-05" and first["entered_on"] == "2024-03-05"
    assert (
        first["abstract"]
        == "Remission with esketamine was sustained through week 32 in adults with treatment-resistant depression."
    )
    # prism:doi is upper case in the feed; identifiers are lower-cased
    ids = rows(db, "SELECT scheme, value FROM identifiers ORDER BY value")
    assert ids == [
        {"scheme": "doi", "value": "10.1038/s41380-024-02451-8"},
        {"scheme": "doi", "value": "10.1038/s41380-024-02472-3"},
    ]

    saved = state(db, "feed:mp")
    assert saved["state"] == {"etag": ETAG, "last_modified": LAST_MODIFIED}
    assert saved["watermark"] == today.isoformat()
    query = rows(db, "SELECT * FROM source_queries")
    assert len(query) == 1
    assert query[0]["query"] == httpserver.url_for("/mp.rss")
    assert query[0]["hits"] == 2
    assert json.loads(query[0]["params"]) == {"status": 200, "read": 3, "filtered": True}


def test_second_run_sends_conditional_get_and_304_changes_nothing(make_config, httpserver, run_crawl, db, today):
    serve(httpserver, "/mp.rss", "nature_mp_rss10.xml", headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED})
    config = feed_config(make_config, httpserver, {"name": "mp", "path": "/mp.rss"})
    run_crawl(config, only=["feed:mp"])
    before = rows(db, "SELECT id, content_hash, last_seen_at FROM records ORDER BY id")

    httpserver.clear_all_handlers()
    httpserver.expect_request("/mp.rss", headers={"If-None-Match": ETAG, "If-Modified-Since": LAST_MODIFIED}).respond_with_data(
        b"", status=304
    )
    report = run_crawl(config, only=["feed:mp"])

    assert report.sources[0].status == "ok", report.sources[0].error
    second = httpserver.log[-1][0]
    assert second.headers["If-None-Match"] == ETAG
    assert second.headers["If-Modified-Since"] == LAST_MODIFIED
    assert rows(db, "SELECT id, content_hash, last_seen_at FROM records ORDER BY id") == before
    run = runs(db, "feed:mp")[-1]
    assert (run["status"], run["fetched"], run["new"]) == ("ok", 0, 0)
    # the incremental window starts at watermark - overlap_days
    assert run["window_from"] == (today - dt.timedelta(days=3)).isoformat()
    assert state(db, "feed:mp")["state"] == {"etag": ETAG, "last_modified": LAST_MODIFIED}
    query = rows(db, "SELECT hits, params FROM source_queries ORDER BY id")[-1]
    assert query["hits"] == 0 and json.loads(query["params"])["status"] == 304


def test_changed_feed_adds_new_entries_without_duplicating_known_ones(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/jama.xml", "jama_psychiatry_rss2.xml", headers={"ETag": '"v1"'})
    config = feed_config(make_config, httpserver, {"name": "jama", "path": "/jama.xml"})
    run_crawl(config, only=["feed:jama"])
    assert rows(db, "SELECT count(*) AS n FROM records")[0]["n"] == 2

    httpserver.clear_all_handlers()
    serve(httpserver, "/jama.xml", "jama_psychiatry_rss2_next.xml", headers={"Last-Modified": LAST_MODIFIED})
    report = run_crawl(config, only=["feed:jama"])

    assert report.sources[0].counts == {"fetched": 4, "kept": 3, "new": 1, "updated": 0, "unchanged": 2}
    assert httpserver.log[-1][0].headers["If-None-Match"] == '"v1"'
    assert [r["source_id"] for r in rows(db, "SELECT source_id FROM records ORDER BY id")] == [
        "jamapsychiatry.2024.0123",
        "jamapsychiatry.2024.0150",
        "jamapsychiatry.2024.0201",
    ]
    assert rows(db, "SELECT count(*) AS n FROM works")[0]["n"] == 3
    # the 200 sent no ETag this time: the stale one is dropped, the new Last-Modified kept
    assert state(db, "feed:jama")["state"] == {"last_modified": LAST_MODIFIED}
    new = rows(db, "SELECT * FROM records WHERE source_id = 'jamapsychiatry.2024.0201'")[0]
    assert new["url"] == "https://jamanetwork.com/journals/jamapsychiatry/fullarticle/2816003"  # utm_* removed


def test_one_bad_feed_fails_alone(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/mp.rss", "nature_mp_rss10.xml")
    serve(httpserver, "/ajp.xml", "bot_check.html", content_type="text/html")
    serve(httpserver, "/fda.xml", "fda_press_rss2.xml")
    config = feed_config(
        make_config,
        httpserver,
        {"name": "mp", "path": "/mp.rss"},
        {"name": "ajp", "path": "/ajp.xml"},
        {"name": "fda", "path": "/fda.xml", "kind": "news"},
    )

    report = run_crawl(config, only=["feeds"])

    status = {s.name: (s.status, s.error) for s in report.sources}
    assert status["feed:mp"] == ("ok", None) and status["feed:fda"] == ("ok", None)
    assert status["feed:ajp"][0] == "failed"
    assert status["feed:ajp"][1].startswith("[feed:ajp] got an HTML page instead of a feed (page title 'Just a moment...')")
    assert "[[feeds]] ajp" in status["feed:ajp"][1]
    by_source = {r["source"]: r for r in rows(db, "SELECT source, record_type, title, journal FROM records")}
    assert set(by_source) == {"feed:mp", "feed:fda"}
    assert by_source["feed:fda"]["record_type"] == "news"
    assert by_source["feed:fda"]["title"].startswith("FDA Approves Spravato (esketamine)")
    failed = state(db, "feed:ajp")
    assert failed["watermark"] is None and failed["consecutive_failures"] == 1
    assert state(db, "feed:mp")["watermark"] is not None


def test_http_error_fails_the_run_and_keeps_records_state_and_watermark(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/mp.rss", "nature_mp_rss10.xml", headers={"ETag": ETAG})
    config = feed_config(make_config, httpserver, {"name": "mp", "path": "/mp.rss"})
    run_crawl(config, only=["feed:mp"])
    db.execute("UPDATE source_states SET watermark = '2024-05-01' WHERE source = 'feed:mp'")
    db.conn.commit()

    httpserver.clear_all_handlers()
    httpserver.expect_request("/mp.rss").respond_with_data(
        b"<html><body>Service Unavailable</body></html>", status=503, content_type="text/html"
    )
    report = run_crawl(config, only=["feed:mp"])

    assert report.sources[0].status == "failed"
    assert report.sources[0].error.startswith("[feed:mp] HTTP 503")
    assert len(httpserver.log) == 1 + 3  # the client retried the 503 twice
    assert rows(db, "SELECT count(*) AS n FROM records WHERE source = 'feed:mp'")[0]["n"] == 2
    saved = state(db, "feed:mp")
    assert saved["watermark"] == "2024-05-01"
    assert saved["state"] == {"etag": ETAG}
    assert "HTTP 503" in saved["last_error"]
    run = runs(db, "feed:mp")[-1]
    assert run["status"] == "failed" and run["window_from"] == "2024-04-28"


def test_truncated_feed_without_entries_fails(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/lancet.xml", "truncated_rss2.xml")
    config = feed_config(make_config, httpserver, {"name": "lancet", "path": "/lancet.xml"})

    report = run_crawl(config, only=["feed:lancet"])

    assert report.sources[0].status == "failed"
    # cut off before the root closes: retried like a 5xx (max_retries = 2), then failed
    assert report.sources[0].error.startswith("[feed:lancet] the XML answer is cut off (230 bytes")
    assert len(httpserver.log) == 3
    assert state(db, "feed:lancet")["watermark"] is None


def test_damaged_feed_with_entries_is_parsed_with_a_warning(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/ajp.xml", "damaged_rss2.xml")
    config = feed_config(make_config, httpserver, {"name": "ajp", "path": "/ajp.xml"})

    report = run_crawl(config, only=["feed:ajp"])

    assert report.sources[0].status == "ok"
    assert report.sources[0].warnings and "malformed" in report.sources[0].warnings[0]
    assert json.loads(runs(db, "feed:ajp")[0]["warnings"]) == report.sources[0].warnings
    record = rows(db, "SELECT * FROM records")[0]
    assert record["journal"] == "American Journal of Psychiatry"
    assert rows(db, "SELECT value FROM identifiers")[0]["value"] == "10.1176/appi.ajp.20230512"


def test_empty_feed_is_a_successful_run(make_config, httpserver, run_crawl, db, today):
    serve(httpserver, "/bp.xml", "empty_feed_atom.xml", content_type="application/atom+xml")
    config = feed_config(make_config, httpserver, {"name": "bp", "path": "/bp.xml"})

    report = run_crawl(config, only=["feed:bp"])

    assert report.sources[0].status == "ok" and report.sources[0].warnings == []
    assert rows(db, "SELECT count(*) AS n FROM records")[0]["n"] == 0
    assert state(db, "feed:bp")["watermark"] == today.isoformat()
    assert rows(db, "SELECT hits, params FROM source_queries")[0]["hits"] == 0


def test_filter_false_keeps_every_entry(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/mp.rss", "nature_mp_rss10.xml")
    config = feed_config(make_config, httpserver, {"name": "mp", "path": "/mp.rss", "filter": False})

    run_crawl(config, only=["feed:mp"])

    assert rows(db, "SELECT count(*) AS n FROM records")[0]["n"] == 3
    assert json.loads(rows(db, "SELECT params FROM source_queries")[0]["params"])["filtered"] is False


def test_undated_entries_keep_their_first_seen_date(make_config, httpserver, run_crawl, db, today, monkeypatch):
    serve(httpserver, "/jad.xml", "sciencedirect_jad_rss2.xml")
    config = feed_config(make_config, httpserver, {"name": "jad", "path": "/jad.xml"})
    week_ago = today - dt.timedelta(days=7)
    monkeypatch.setattr("crawler.pipeline.today_utc", lambda: week_ago)
    run_crawl(config, only=["feed:jad"])
    assert state(db, "feed:jad")["state"]["first_seen"] == {
        "https://www.sciencedirect.com/science/article/pii/S0165032724003987": week_ago.isoformat(),
        "https://www.sciencedirect.com/science/article/pii/S0165032724004002": week_ago.isoformat(),
    }

    monkeypatch.undo()
    report = run_crawl(config, only=["feed:jad"])

    # a week later the same entries are unchanged (not "updated" with a new entered_on)
    assert report.sources[0].counts == {"fetched": 3, "kept": 2, "new": 0, "updated": 0, "unchanged": 2}
    assert {r["entered_on"] for r in rows(db, "SELECT entered_on FROM records")} == {week_ago.isoformat()}
    assert set(state(db, "feed:jad")["state"]["first_seen"].values()) == {week_ago.isoformat()}


# --------------------------------------------------------------------------- parser


def test_pubmed_feed_gives_pmid_doi_and_the_full_abstract():
    [record] = feeds.parse_feed(fixture_bytes("feeds", "pubmed_search_rss2.xml"), "feed:pubmed-rss")
    # feedparser keeps only the last dc:identifier (doi:); the PMID comes from the guid
    assert sorted(record.identifiers) == [("doi", "10.1016/j.jad.2024.03.012"), ("pmid", "38451234")]
    assert record.source_id == "pubmed:38451234"
    assert record.url == "https://pubmed.ncbi.nlm.nih.gov/38451234/"
    assert record.journal == "Journal of affective disorders"  # not the feed title, which is the query
    # the description is truncated ("..."); content:encoded holds it whole, citation and PMID lines cut
    assert record.abstract.endswith("Effects persisted for four weeks.")
    assert record.abstract.startswith("Suicidal ideation fell")
    assert record.authors == ["Jane Doe", "Richard Roe"]


def test_sciencedirect_description_gives_date_journal_and_authors_not_an_abstract():
    records = feeds.parse_feed(fixture_bytes("feeds", "sciencedirect_jad_rss2.xml"), "feed:jad", fetched_on="2024-03-09")
    first, second, third = records
    assert first.abstract is None and first.identifiers == []
    assert first.journal == "Journal of Affective Disorders"
    assert first.authors == ["Li Wei", "Maria Rossi", "J.H. van Dijk"]
    assert (first.published_on, first.entered_on) == ("2024-05-15", "2024-03-09")
    assert second.published_on == "2024-03-04"  # "Available online 4 March 2024"
    assert third.published_on == "2024-05"
    assert first.url == "https://www.sciencedirect.com/science/article/pii/S0165032724003987"  # dgcid removed


def test_atom_entry_with_doi_link_html_summary_and_non_ascii_authors():
    [record] = feeds.parse_feed(fixture_bytes("feeds", "psychiatry_journal_atom.xml"), "feed:rpc")
    assert record.title == "Ketamina intranasal en la depresión resistente: revisión sistemática"
    assert record.abstract == "Revisamos los ensayos de ketamina y esketamina intranasal."
    assert record.authors == ["María José Núñez", "Jörg Müller"]
    assert record.identifiers == [("doi", "10.5555/rpc.2024.812")]
    assert (record.published_on, record.updated_on) == ("2024-03-01", "2024-03-04")
    assert record.journal == "Revista de Psiquiatría Clínica"


def test_rss2_html_title_notice_and_comma_separated_authors():
    records = feeds.parse_feed(fixture_bytes("feeds", "jama_psychiatry_rss2.xml"), "feed:jama")
    assert records[0].title == "Ketamine vs Electroconvulsive Therapy for Nonpsychotic Treatment-Resistant Depression"
    assert records[0].authors == ["Anand A", "Mathew SJ", "Sanacora G"]
    assert records[0].keywords == ["Original Investigation"]
    assert records[1].record_type == "notice"
    assert records[0].journal == "JAMA Psychiatry"  # "Online First" dropped from the feed title


def test_kind_news_and_preprint_dois():
    news = feeds.parse_feed(fixture_bytes("feeds", "fda_press_rss2.xml"), "feed:fda", kind="news")
    assert {r.record_type for r in news} == {"news"}
    body = (
        b'<rss version="2.0"><channel><title>medRxiv Psychiatry</title><item><title>Ketamine preprint</title>'
        b"<link>https://www.medrxiv.org/content/10.1101/2024.03.01.24303555v2?rss=1</link></item></channel></rss>"
    )
    [preprint] = feeds.parse_feed(body, "feed:medrxiv")
    assert preprint.record_type == "preprint"
    assert preprint.identifiers == [("doi", "10.1101/2024.03.01.24303555")]


def test_bot_page_and_non_feeds_raise_source_errors_naming_the_feed():
    with pytest.raises(SourceError, match=r"^\[feed:x\] got an HTML page instead of a feed \(page title 'Just a moment...'\)"):
        feeds.parse_feed(fixture_bytes("feeds", "bot_check.html"), "feed:x")
    with pytest.raises(SourceError, match=r"not an RSS or Atom feed"):
        feeds.parse_feed(b'{"error": "rate limited"}', "feed:x")
    with pytest.raises(SourceError, match=r"empty body"):
        feeds.parse_feed(b"  \n", "feed:x")


def test_body_is_never_opened_as_a_path(tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_bytes(fixture_bytes("feeds", "fda_press_rss2.xml"))
    with pytest.raises(SourceError):
        feeds.parse_feed(str(secret).encode(), "feed:x")


def test_entries_without_id_or_link_get_a_stable_hash_id():
    body = (
        b'<rss version="0.91"><channel><title>T</title><item><title>Ketamine news</title>'
        b"<pubDate>Tue, 05 Mar 2024 10:00:00 GMT</pubDate></item>"
        b"<item><title>Ketamine news</title><pubDate>Tue, 05 Mar 2024 10:00:00 GMT</pubDate></item></channel></rss>"
    )
    first = feeds.parse_feed(body, "feed:x")
    again = feeds.parse_feed(body, "feed:x")
    assert len(first) == 1  # the duplicate entry is dropped
    assert first[0].source_id.startswith("sha1:") and first[0].source_id == again[0].source_id


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Kaur, M., Shukla, A., Bhati, K. K., Pandey, A. K.", ["Kaur, M.", "Shukla, A.", "Bhati, K. K.", "Pandey, A. K."]),
        ("Rose, Jeffrey P.", ["Rose, Jeffrey P."]),
        ("Brandão S, Saeedi H, Brandt A. ", ["Brandão S", "Saeedi H", "Brandt A."]),
        ("Chen C, Zhou Y, et al.", ["Chen C", "Zhou Y"]),
        (
            "Rachel M. Binks, \nMargaret Heslewood and Peter G. Wilson",
            ["Rachel M. Binks", "Margaret Heslewood", "Peter G. Wilson"],
        ),
        ("Doan-Nhu, Hai; Nguyen-Ngoc, Lam", ["Doan-Nhu, Hai", "Nguyen-Ngoc, Lam"]),
        ("Heinrich Meybohm (hmeybohm@example.org)", ["Heinrich Meybohm"]),
    ],
)
def test_split_authors(text, expected):
    assert feeds.split_authors(text) == expected


@pytest.mark.parametrize(
    "url, doi",
    [
        ("https://dx.doi.org/10.4039/tce.2021.38?rft_dat=source%3Ddrss", "10.4039/tce.2021.38"),
        ("https://www.tandfonline.com/doi/full/10.1080/09397140.2021.1992835?af=R", "10.1080/09397140.2021.1992835"),
        ("https://onlinelibrary.wiley.com/doi/abs/10.1002/tax.12650", "10.1002/tax.12650"),
        ("https://www.frontiersin.org/articles/10.3389/fpsyt.2024.1234567/full", "10.3389/fpsyt.2024.1234567"),
        ("https://www.nature.com/articles/s41380-024-02451-8", None),
        ("https://www.sciencedirect.com/science/article/pii/S0165032724003987", None),
    ],
)
def test_doi_from_url(url, doi):
    assert feeds.doi_from_url(url) == doi


@pytest.mark.parametrize(
    "value, doi",
    [
        ("doi:10.1038/S41380-024-02451-8", "10.1038/s41380-024-02451-8"),
        ("info:doi/10.1176/appi.ajp.20230512", "10.1176/appi.ajp.20230512"),
        ("10.1002/tax.12650", "10.1002/tax.12650"),
        ("http://doi.org/10.1093/zoolinnean/zlab078", "10.1093/zoolinnean/zlab078"),
        ("pmid:38451234", None),
        ("paper:100635", None),
    ],
)
def test_doi_from_identifier(value, doi):
    assert feeds.doi_from_identifier(value) == doi


@pytest.mark.parametrize(
    "text, iso",
    [
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05T07:00:00Z", "2024-03-05"),
        ("03/05/2024", "2024-03-05"),
        ("25/03/2024", "2024-03-25"),
        ("08-28-2025", "2025-08-28"),  # FDA: MM-DD-YYYY with hyphens
        ("11/28/2023 FDA warns of rare", "2023-11-28"),
        ("6/30/2022", "2022-06-30"),
        ("6-1-2022", "2022-06-01"),
        ("03-05-2024", "2024-03-05"),  # ambiguous: read US month first
        ("28-08-2025", "2025-08-28"),  # first number > 12: only a day
        ("13-13-2025", None),
        ("08-28/2025", None),  # mixed separators are no date
        ("March 5, 2024", "2024-03-05"),
        ("Mar. 5 2024", "2024-03-05"),
        ("5 March 2024", "2024-03-05"),
        ("Sun, 12 Sep 2021 11:07:48 -0700", "2021-09-12"),
        ("February 2022", "2022-02"),
        ("Posted 31 February 2024", None),
        ("last Tuesday", None),
        ("", None),
    ],
)
def test_parse_date_text(text, iso):
    assert parse_date(text) == iso


def test_clean_url_drops_only_tracking_parameters():
    assert feeds.clean_url("https://a.org/x?id=5&utm_source=rss&af=R") == "https://a.org/x?id=5"
    assert feeds.clean_url("https://a.org/x?b=2&a=1") == "https://a.org/x?b=2&a=1"
    assert feeds.clean_url("https://pubmed.ncbi.nlm.nih.gov/1/?fc=1&v=2") == "https://pubmed.ncbi.nlm.nih.gov/1/"


def test_news_links_to_papers_give_no_identifier():
    body = (
        b'<rss version="2.0"><channel><title>EMA news</title><item><title>Esketamine study published</title>'
        b"<link>https://doi.org/10.1176/appi.ajp.20230512</link><guid>ema-1</guid></item></channel></rss>"
    )
    [news] = feeds.parse_feed(body, "feed:ema", kind="news")
    [article] = feeds.parse_feed(body, "feed:ajp")
    assert news.identifiers == [] and news.record_type == "news"
    assert article.identifiers == [("doi", "10.1176/appi.ajp.20230512")]


def test_atypon_citation_line_is_not_an_abstract():
    body = (
        b'<rss version="2.0"><channel><title>tandf: Journal of Psychopharmacology: Table of Contents</title><item>'
        b"<title>Ketamine and memory</title><link>https://www.tandfonline.com/doi/full/10.1080/1234.2024.1?af=R</link>"
        b"<description>Volume 67, Issue 4, December 2021, Page 283-289&lt;br/&gt;. &lt;br/&gt;</description>"
        b"</item></channel></rss>"
    )
    [record] = feeds.parse_feed(body, "feed:jp")
    assert record.abstract is None
    assert record.journal == "Journal of Psychopharmacology"
    assert record.identifiers == [("doi", "10.1080/1234.2024.1")]


# --------------------------------------------------------------------------- every shipped entry (issue #12)

#: Each shipped [[feeds]]/[[pages]] entry -> a fixture in the structure that platform serves (see
#: tests/fixtures/feeds/README.md). A new shipped entry needs one here.
SHIPPED_FIXTURES = {
    "feed:jama-psychiatry": ("feeds", "jama_psychiatry_rss2.xml"),
    "feed:am-j-psychiatry": ("feeds", "ajp_atypon_rdf.xml"),
    "feed:lancet-psychiatry": ("feeds", "lancet_psychiatry_online_rss2.xml"),
    "feed:biological-psychiatry": ("feeds", "sciencedirect_jad_rss2.xml"),  # the same ScienceDirect feed format
    "feed:molecular-psychiatry": ("feeds", "nature_mp_rss10.xml"),
    "feed:neuropsychopharmacology": ("feeds", "nature_mp_rss10.xml"),  # the same nature.com RSS 1.0 format
    "feed:j-affective-disorders": ("feeds", "sciencedirect_jad_rss2.xml"),
    "feed:fda-press-releases": ("feeds", "fda_press_rss2.xml"),
    "feed:ema-news": ("feeds", "ema_news_rss2.xml"),
    "page:fda-drug-safety-communications": ("pages", "fda_dsc_current.html"),
}


def test_every_shipped_feed_and_page_parses_its_platforms_real_structure(make_config, httpserver, run_crawl, db):
    from crawler.config import load_config
    from crawler.sources import source_instances

    shipped = load_config(str(FIXTURES.parent.parent / "config" / "litmon.toml"))
    names = {i.name for i in source_instances(shipped) if i.kind in ("feed", "page")}
    assert names == set(SHIPPED_FIXTURES), "every shipped [[feeds]]/[[pages]] entry needs a fixture"

    text = ""
    for instance in source_instances(shipped):
        if instance.kind not in ("feed", "page"):
            continue
        folder, name = SHIPPED_FIXTURES[instance.name]
        path = "/" + instance.name.replace(":", "_")
        ctype = "text/html; charset=utf-8" if folder == "pages" else "application/xml"
        httpserver.expect_request(path).respond_with_data(fixture_bytes(folder, name), content_type=ctype)
        entry = {k: v for k, v in instance.settings.items() if k not in ("url", "enabled", "filter")}
        text += f"\n[[{instance.kind}s]]\nurl = {json.dumps(httpserver.url_for(path))}\nfilter = false\n"
        text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in entry.items())
    report = run_crawl(make_config(text), only=["feeds", "pages"])

    assert {s.name: s.status for s in report.sources} == {n: "ok" for n in SHIPPED_FIXTURES}, [
        s.error for s in report.sources if s.error
    ]
    stored = {r["source"]: r["n"] for r in rows(db, "SELECT source, COUNT(*) AS n FROM records GROUP BY source")}
    assert set(stored) == set(SHIPPED_FIXTURES) and all(n >= 2 for n in stored.values())
    dated = rows(db, "SELECT source FROM records WHERE published_on IS NULL")
    assert dated == [], "every entry of these fixtures carries a date"


def test_fetched_and_kept_reach_the_log_line_its_json_fields_and_status(make_config, httpserver, run_crawl, db, caplog):
    import logging

    from crawler.status import collect_status, render_status

    serve(httpserver, "/jama.xml", "jama_psychiatry_rss2_next.xml")
    config = feed_config(make_config, httpserver, {"name": "jama", "path": "/jama.xml"})
    with caplog.at_level(logging.INFO, logger="crawler.pipeline"):
        run_crawl(config, only=["feed:jama"])

    [line] = [r for r in caplog.records if r.getMessage().startswith("[feed:jama] ok")]
    assert line.getMessage().startswith("[feed:jama] ok: 4 fetched, 3 kept, 3 new, 0 updated, 0 unchanged")
    assert (line.fields["fetched"], line.fields["kept"]) == (4, 3)
    info = collect_status(config, db)
    jama = next(s for s in info["sources"] if s["source"] == "feed:jama")
    assert (jama["last_run"]["fetched"], jama["last_run"]["kept"]) == (4, 3)
    row = next(l for l in render_status(info).splitlines() if l.startswith("feed:jama"))
    assert " 4/3 " in row
