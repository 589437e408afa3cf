"""PubMed client against a real local HTTP server serving esearch/efetch in NCBI's wire format."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import random
import threading
from types import SimpleNamespace

import pytest
from lxml import etree
from werkzeug import Response

from crawler import clock, store
from crawler.config import Topic
from crawler.errors import Interrupted, SourceError
from crawler.http import HttpClient
from crawler.pipeline import crawl
from crawler.sources import pubmed
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import parse_date
from crawler.xmlsafe import parse_xml
from tests.conftest import fixture_bytes, rows
from tests.helpers.ncbi import FakeNcbi, esearch_body
from tests.helpers.ops import wait_for
from tests.helpers.pubmed_reference import reference_record

QUERY = "ketamine[tiab] AND depress*[tiab]"


def pubmed_config(make_config, httpserver, extra=""):
    return make_config(f"""
[sources.pubmed]
enabled = true
base_url = "{httpserver.url_for("/")}"
query = '{QUERY}'
batch_size = 2
min_interval = 0
{extra}
""")


def requests_to(httpserver, path):
    return [req for req, _ in httpserver.log if req.path == path]


def test_first_run_backfills_and_stores_records(httpserver, make_config, run_crawl, db, today):
    FakeNcbi(
        {"crdt": 3}, {0: fixture_bytes("pubmed", "efetch_batch1.xml"), 2: fixture_bytes("pubmed", "efetch_batch2.xml")}
    ).install(httpserver)
    config = pubmed_config(make_config, httpserver)

    report = run_crawl(config, only=["pubmed"])

    assert report.sources[0].status == "ok", report.sources[0].error
    searches = requests_to(httpserver, "/esearch.fcgi")
    assert len(searches) == 1  # first run: no mdat pass
    form = searches[0].form
    assert form["term"] == QUERY
    assert form["datetype"] == "crdt"
    assert form["mindate"] == "2024/01/01"  # backfill_from
    assert form["maxdate"] == today.strftime("%Y/%m/%d")
    assert form["usehistory"] == "y" and form["db"] == "pubmed"
    assert form["tool"] == "litmon" and form["email"] == "tester@example.org"
    assert "api_key" not in form
    fetches = requests_to(httpserver, "/efetch.fcgi")
    assert [(r.args["retstart"], r.args["retmax"]) for r in fetches] == [("0", "2"), ("2", "2")]
    for request in fetches:
        assert request.args["WebEnv"] == "MCID_6745a0f1c2b1a04e5b0e1f2a"
        assert request.args["query_key"] == "1"
        assert request.args["retmode"] == "xml"
        assert request.args["email"] == "tester@example.org"
        assert (
            request.headers["User-Agent"].startswith("litmon/") and "mailto:tester@example.org" in request.headers["User-Agent"]
        )

    records = {r["source_id"]: r for r in rows(db, "SELECT * FROM records WHERE source = 'pubmed'")}
    assert set(records) == {"39000001", "39000002", "39000003"}
    rct = records["39000001"]
    assert rct["title"] == (
        "Intravenous R,S-ketamine vs electroconvulsive therapy in treatment-resistant depression: a randomized clinical trial."
    )
    assert rct["published_on"] == "2024-05-22"  # electronic date precedes the Jul-Aug issue
    assert rct["entered_on"] == "2024-05-22"
    assert "DESIGN: Open-label noninferiority trial (NCT03113968) in 403 adults." in rct["abstract"]
    assert "CO2 levels unchanged" in rct["abstract"]
    assert json.loads(rct["authors"]) == ["Anand Amit", "Mathew Sanjay J", "ELEKT-D Study Group"]
    assert json.loads(rct["publication_types"]) == ["Randomized Controlled Trial", "Journal Article"]
    assert json.loads(rct["mesh_terms"]) == ["Ketamine", "Depressive Disorder, Treatment-Resistant"]
    assert records["39000003"]["record_type"] == "notice"
    assert records["39000002"]["title"] == "Esketamine nasal spray in suicidal ideation: a case series"
    assert records["39000002"]["published_on"] == "2024-03"  # Season Spring

    identifiers = {
        (r["scheme"], r["value"])
        for r in rows(
            db, "SELECT scheme, value FROM identifiers i JOIN records r ON r.id = i.record_id WHERE r.source_id = '39000001'"
        )
    }
    assert identifiers == {("pmid", "39000001"), ("doi", "10.1001/jamapsychiatry.2024.0001"), ("pmcid", "PMC11100001")}
    links = {(r["relation"], r["scheme"], r["value"]) for r in rows(db, "SELECT relation, scheme, value FROM record_links")}
    assert ("registered_as", "nct", "NCT03113968") in links
    assert ("comment_in", "pmid", "39000009") in links
    assert ("retraction_in", "pmid", "39000002") not in links
    assert ("retraction_in", "pmid", "39000003") in links
    assert ("retraction_of", "pmid", "39000002") in links
    assert not any(rel == "comment_in" and value == "37224232" for rel, _, value in links)  # Cites are not links

    queries = rows(db, "SELECT * FROM source_queries")
    assert [(q["query"], q["hits"], json.loads(q["params"])["datetype"]) for q in queries] == [(QUERY, 3, "crdt")]
    state = rows(db, "SELECT * FROM source_states WHERE source = 'pubmed'")[0]
    assert state["watermark"] == today.isoformat()
    assert rows(db, "SELECT status, fetched, new FROM source_runs") == [{"status": "ok", "fetched": 3, "new": 3}]


def test_second_run_is_incremental_and_refreshes_modified(httpserver, make_config, run_crawl, db, today):
    config = pubmed_config(make_config, httpserver)
    FakeNcbi(
        {"crdt": 3}, {0: fixture_bytes("pubmed", "efetch_batch1.xml"), 2: fixture_bytes("pubmed", "efetch_batch2.xml")}
    ).install(httpserver)
    run_crawl(config, only=["pubmed"])
    httpserver.clear()

    FakeNcbi({"crdt": 1, "mdat": 2}, {0: fixture_bytes("pubmed", "efetch_new.xml")}).install(httpserver)
    # the mdat pass gets the first batch again: unchanged records must not be duplicated
    pages_by_datetype = {"crdt": fixture_bytes("pubmed", "efetch_new.xml"), "mdat": fixture_bytes("pubmed", "efetch_batch1.xml")}
    state = {"datetype": None}

    def esearch(request):
        state["datetype"] = request.form["datetype"]
        return Response(esearch_body({"crdt": 1, "mdat": 2}[state["datetype"]]), content_type="application/json")

    httpserver.clear_all_handlers()
    httpserver.expect_request("/esearch.fcgi", method="POST").respond_with_handler(esearch)
    httpserver.expect_request("/efetch.fcgi").respond_with_handler(
        lambda r: Response(pages_by_datetype[state["datetype"]], content_type="text/xml")
    )

    report = run_crawl(config, only=["pubmed"])

    assert report.sources[0].status == "ok", report.sources[0].error
    searches = requests_to(httpserver, "/esearch.fcgi")
    window_start = (today - dt.timedelta(days=3)).strftime("%Y/%m/%d")
    assert [(s.form["datetype"], s.form["mindate"], s.form["maxdate"]) for s in searches] == [
        ("crdt", window_start, today.strftime("%Y/%m/%d")),
        ("mdat", window_start, today.strftime("%Y/%m/%d")),
    ]
    assert report.sources[0].counts == {"fetched": 3, "new": 1, "updated": 0, "unchanged": 2}
    assert rows(db, "SELECT COUNT(*) AS n FROM records") == [{"n": 4}]
    assert rows(db, "SELECT COUNT(*) AS n FROM works WHERE merged_into IS NULL") == [{"n": 4}]


def test_failure_midway_keeps_complete_batches_and_watermark(httpserver, make_config, run_crawl, db, today):
    config = pubmed_config(make_config, httpserver)
    FakeNcbi({"crdt": 3}, {0: fixture_bytes("pubmed", "efetch_batch1.xml")}, fail_at=2).install(httpserver)

    report = run_crawl(config, only=["pubmed"])

    source = report.sources[0]
    assert source.status == "failed"
    assert "[pubmed] HTTP 502" in source.error
    assert len([r for r in requests_to(httpserver, "/efetch.fcgi") if r.args["retstart"] == "2"]) == 3  # retried twice
    assert sorted(r["source_id"] for r in rows(db, "SELECT source_id FROM records")) == ["39000001", "39000002"]
    state = rows(db, "SELECT * FROM source_states")[0]
    assert state["watermark"] is None and state["consecutive_failures"] == 1
    assert "HTTP 502" in state["last_error"]

    # the next run starts again from the backfill date and completes the set without duplicates
    httpserver.clear()
    FakeNcbi(
        {"crdt": 3}, {0: fixture_bytes("pubmed", "efetch_batch1.xml"), 2: fixture_bytes("pubmed", "efetch_batch2.xml")}
    ).install(httpserver)
    report = run_crawl(config, only=["pubmed"])
    assert report.sources[0].status == "ok"
    assert requests_to(httpserver, "/esearch.fcgi")[0].form["mindate"] == "2024/01/01"
    assert rows(db, "SELECT COUNT(*) AS n FROM records") == [{"n": 3}]
    assert rows(db, "SELECT watermark, consecutive_failures FROM source_states") == [
        {"watermark": today.isoformat(), "consecutive_failures": 0}
    ]


def test_windows_over_the_esearch_cap_are_split(httpserver, make_config, run_crawl, db):
    def esearch(request):
        start = dt.datetime.strptime(request.form["mindate"], "%Y/%m/%d").date()
        end = dt.datetime.strptime(request.form["maxdate"], "%Y/%m/%d").date()
        return Response(esearch_body(12000 if (end - start).days > 60 else 0), content_type="application/json")

    httpserver.expect_request("/esearch.fcgi", method="POST").respond_with_handler(esearch)
    config = pubmed_config(make_config, httpserver)

    report = run_crawl(config, only=["pubmed"])

    assert report.sources[0].status == "ok"
    logged = rows(db, "SELECT window_from, window_to, hits FROM source_queries ORDER BY id")
    assert logged[0]["window_from"] == "2024-01-01"
    for previous, current in zip(logged, logged[1:]):
        assert dt.date.fromisoformat(current["window_from"]) == dt.date.fromisoformat(previous["window_to"]) + dt.timedelta(
            days=1
        )
    assert all((dt.date.fromisoformat(q["window_to"]) - dt.date.fromisoformat(q["window_from"])).days <= 60 for q in logged)
    assert logged[-1]["window_to"] == clock.today().isoformat()


def test_api_key_is_sent_and_spacing_follows_ncbi_limits(httpserver, make_config, db, monkeypatch):
    FakeNcbi(
        {"crdt": 3}, {0: fixture_bytes("pubmed", "efetch_batch1.xml"), 2: fixture_bytes("pubmed", "efetch_batch2.xml")}
    ).install(httpserver)
    config = make_config(f"""
[sources.pubmed]
enabled = true
base_url = "{httpserver.url_for("/")}"
query = '{QUERY}'
batch_size = 2
api_key_env = "TEST_NCBI_KEY"
""")
    sleeps: list[float] = []
    http = HttpClient("tester@example.org", default_min_interval=0, sleep=sleeps.append)

    crawl(config, db, http=http, only=["pubmed"])
    # 3 requests per second without a key: a pause before every request but the first (esearch, efetch ×2)
    assert len(httpserver.log) == 3 and sleeps == [0.34, 0.34]

    monkeypatch.setenv("TEST_NCBI_KEY", "secret-key-123")
    sleeps.clear()
    httpserver.clear_log()
    crawl(config, db, http=HttpClient("tester@example.org", default_min_interval=0, sleep=sleeps.append), only=["pubmed"])
    assert len(httpserver.log) >= 3 and sleeps == [0.1] * (len(httpserver.log) - 1)  # 10 per second with a key
    for request, _ in httpserver.log:
        params = request.form if request.method == "POST" else request.args
        assert params["api_key"] == "secret-key-123"


@pytest.mark.parametrize(
    "body, content_type, expected",
    [
        (fixture_bytes("pubmed", "esearch_rate_limit.json"), "application/json", "esearch error: API rate limit exceeded"),
        (b"<!DOCTYPE html><html><body>Service unavailable</body></html>", "text/html", "expected JSON but got an HTML page"),
        (b'{"esearchresult": {"ERROR": "Invalid query"}}', "application/json", "esearch error: Invalid query"),
    ],
)
def test_esearch_errors_are_reported_clearly(httpserver, make_config, run_crawl, db, body, content_type, expected):
    httpserver.expect_request("/esearch.fcgi").respond_with_data(body, content_type=content_type)
    report = run_crawl(pubmed_config(make_config, httpserver), only=["pubmed"])
    assert report.sources[0].status == "failed"
    assert expected in report.sources[0].error
    assert report.sources[0].error.startswith("[pubmed]")


def test_malformed_efetch_fails_without_storing(httpserver, make_config, run_crawl, db):
    httpserver.expect_request("/esearch.fcgi").respond_with_data(esearch_body(1), content_type="application/json")
    httpserver.expect_request("/efetch.fcgi").respond_with_data(
        b"<PubmedArticleSet><PubmedArticle><Medline", content_type="text/xml"
    )
    report = run_crawl(pubmed_config(make_config, httpserver), only=["pubmed"])
    assert report.sources[0].status == "failed"
    # the efetch answer stops mid-document: retried like a 5xx, then the source fails naming the cut
    assert "the XML answer is cut off" in report.sources[0].error
    assert rows(db, "SELECT COUNT(*) AS n FROM records") == [{"n": 0}]


# --------------------------------------------------------------------------- parser details


def test_medline_dates_and_seasons():
    assert parse_date("2024 Jan-Feb") == "2024-01"
    assert parse_date("2023 Winter") == "2023-12"
    assert parse_date("1998 Dec-1999 Jan") == "1998-12"
    assert parse_date("2019-2020") == "2019"
    assert parse_date("Spring 2020") is None


def test_unresolved_corrections_are_kept():
    records = pubmed.parse_efetch(fixture_bytes("pubmed", "efetch_batch1.xml"))
    case_series = records[1]
    assert case_series.extra["unresolved_comments_corrections"] == [
        {"relation": "erratum_in", "ref_source": "Z Psychiatr. 2024;12:98"}
    ]
    assert case_series.language == "ger"


def test_xml_entities_are_not_expanded_and_no_external_fetch(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = f"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [<!ENTITY boom "BOOMBOOMBOOMBOOM"><!ENTITY leak SYSTEM "file://{secret}">]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article><ArticleTitle>A &boom; B &leak;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>""".encode()
    record = pubmed.parse_efetch(body)[0]
    assert "BOOM" not in record.title and "TOP-SECRET" not in record.title


def test_other_answers_are_rejected_with_a_hint():
    with pytest.raises(SourceError, match="expected <PubmedArticleSet>"):
        pubmed.parse_efetch(b"<pmc-articleset><article/></pmc-articleset>")
    with pytest.raises(SourceError, match="empty efetch answer"):
        pubmed.parse_efetch(b"")


# --------------------------------------------------------------------------- the single pass agrees with the plain reading

#: Every efetch answer of the fixtures: PubMed's own fixtures and the labelled sets' wire files (~300 articles).
PUBMED_WIRE = [
    ("pubmed", "efetch_batch1.xml"),
    ("pubmed", "efetch_batch2.xml"),
    ("pubmed", "efetch_new.xml"),
    ("classify/wire", "pubmed_efetch.xml"),
    ("dedup", "pubmed_efetch.xml"),
]


def fixture_articles() -> list:
    return [a for folder, name in PUBMED_WIRE for a in parse_xml(fixture_bytes(folder, name), "test") if a.tag == "PubmedArticle"]


def outcome(parse, article):
    """Every field of the Record (types included: a tuple is no list), or that parsing raised."""
    try:
        return vars(parse(article))
    except Exception as exc:  # an article without <Article> raises in both readings
        return f"raises {type(exc).__name__}"


def test_the_single_pass_reads_every_fixture_article_as_the_plain_reading_does():
    articles = fixture_articles()
    assert len(articles) >= 300
    for article in articles:
        assert outcome(pubmed.parse_article, article) == outcome(reference_record, article)
    body = b"<PubmedArticleSet>" + b"".join(etree.tostring(a) for a in articles) + b"</PubmedArticleSet>"
    assert [vars(r) for r in pubmed.parse_efetch(body)] == [vars(reference_record(a)) for a in articles]


#: Values a variant puts into name, date, identifier and title fields: odd but possible wire values.
ODD_VALUES = {
    "Month": ["01", "1", "12", "13", "0", "Jan", "jan", "March", "Sept.", "Winter", "Fall", "xx", "", " 3 "],
    "Day": ["1", "01", "31", "30", "29", "32", "0", "x", "", " 7 "],
    "Year": ["2024", "1799", "2199", "2200", "20x4", "", " 2021 ", "99"],
    "MedlineDate": ["2024 Jan-Feb", "2023 Winter", "1998 Dec-1999 Jan", "2024 Jan 5", "2019-2020", "Spring 2020", "junk"],
    "name": [
        "Smith",
        "van der Berg",
        "  Jean-Paul ",
        "J.-P.",
        "A. B.",
        "HK",
        " ",
        "Jr",
        "María\u00a0José",
        "Osei, H.",
        "Study Group",
        "",
    ],
    "id": ["10.1000/XYZ.1", " doi:10.1/a ", "PMC123", "pmc 99", "", "junk", "https://doi.org/10.5/B"],
    "title": ["[Ketamine in depression].", "[x]", "", "  ", "[a] b."],
    "abstract": [" NCT01234567", " ISRCTN12345678", " EudraCT 2010-012345-12", " 2023-501234-12-00", ""],
    "type": ["Retraction of Publication", "Preprint", "Published Erratum", "Review", ""],
}


#: The elements litmon reads (those a variant drops or repeats).
READ_TAGS = frozenset(
    "PMID DateRevised Journal JournalIssue Volume Issue PubDate Title ISOAbbreviation ISSN ArticleTitle VernacularTitle "
    "Pagination MedlinePgn ELocationID Abstract AbstractText AuthorList Author LastName ForeName Initials CollectiveName "
    "Suffix Language PublicationTypeList PublicationType ArticleDate Year Month Day Season MedlineDate MeshHeadingList "
    "MeshHeading DescriptorName KeywordList Keyword CommentsCorrectionsList CommentsCorrections RefSource PubmedData "
    "History PubMedPubDate ArticleIdList ArticleId PublicationStatus DataBankList DataBank AccessionNumber".split()
)


def vary(article, rng: random.Random):
    """A copy of an article with one to six random edits (elements dropped or repeated with other text, whitespace and
    inline markup added, authors made invalid, odd dates, names, identifiers, titles, types, links)."""
    article = copy.deepcopy(article)
    for _ in range(rng.randint(1, 6)):
        elements = [e for e in article.iter() if isinstance(e.tag, str)]
        leaves = [e for e in elements if len(e) == 0]
        read = [e for e in elements if e.tag in READ_TAGS] or elements[1:]
        edit = rng.randrange(10)
        if edit == 0:
            element = rng.choice(read)
            if element.tag not in ("MedlineCitation", "Article"):
                element.getparent().remove(element)
        elif edit == 1:
            element = rng.choice(read)
            twin = copy.deepcopy(element)  # a second element of the same name, told apart from the first
            for leaf in twin.iter():
                if leaf.text and rng.random() < 0.5:
                    leaf.text = rng.choice(["2", "Jan", leaf.text + " 2"])
            element.addnext(twin)
        elif edit == 2:
            leaf = rng.choice(leaves)
            leaf.text = rng.choice(["  ", "\n", "\t "]) + (leaf.text or "") + rng.choice(["", " \n  ", "\u00a0"])
        elif edit == 3:
            leaf = rng.choice(leaves)
            text, cut = leaf.text or "", rng.randrange(len(leaf.text or "") + 1)
            leaf.text = text[:cut]
            inline = etree.SubElement(leaf, rng.choice(["i", "sup", "b"]))
            inline.text, inline.tail = rng.choice(["R", " x ", "2", ""]), text[cut:]
        elif edit == 4:
            for author in article.iter("Author"):
                if rng.random() < 0.3:
                    author.set("ValidYN", rng.choice(["N", "Y", "n"]))
        elif edit == 5:
            for tag in ("Year", "Month", "Day"):
                for element in article.iter(tag):
                    if rng.random() < 0.4:
                        element.text = rng.choice(ODD_VALUES[tag])
            dates = list(article.iter("PubDate", "ArticleDate", "DateRevised", "PubMedPubDate"))
            if dates:
                date = rng.choice(dates)
                etree.SubElement(date, rng.choice(["MedlineDate", "Season"])).text = rng.choice(ODD_VALUES["MedlineDate"])
        elif edit == 6:
            for element in article.iter("LastName", "ForeName", "Initials", "CollectiveName", "Suffix"):
                if rng.random() < 0.3:
                    element.text = rng.choice(ODD_VALUES["name"])
            for authors in article.iter("AuthorList"):
                person = etree.SubElement(authors, "Author")
                for tag in rng.sample(
                    ["LastName", "ForeName", "Initials", "CollectiveName", "Suffix", "LastName"], rng.randint(0, 4)
                ):
                    etree.SubElement(person, tag).text = rng.choice(ODD_VALUES["name"])
        elif edit == 7:
            for element in article.iter("ArticleId", "ELocationID"):
                if rng.random() < 0.4:
                    element.text = rng.choice(ODD_VALUES["id"])
                if rng.random() < 0.2:
                    element.set("IdType" if element.tag == "ArticleId" else "EIdType", rng.choice(["doi", "pmc", "pii"]))
                if rng.random() < 0.2:
                    element.set("ValidYN", rng.choice(["N", "Y"]))
        elif edit == 8:
            for element in article.iter("AbstractText"):
                if rng.random() < 0.3:
                    element.set("NlmCategory", rng.choice(["UNASSIGNED", "RESULTS", ""]))
                if rng.random() < 0.3:
                    element.set("Label", rng.choice(["", "Conclusions", "TRIAL REGISTRATION"]))
                element.text = (element.text or "") + rng.choice(ODD_VALUES["abstract"])
        else:
            for element in article.iter("CommentsCorrections"):
                element.set("RefType", rng.choice(["RetractionIn", "ErratumFor", "Cites", "CommentOn", ""]))
            for element in article.iter("PublicationType"):
                if rng.random() < 0.3:
                    element.text = rng.choice(ODD_VALUES["type"])
            for element in article.iter("ArticleTitle", "VernacularTitle", "Title"):
                if rng.random() < 0.3:
                    element.text = rng.choice(ODD_VALUES["title"])
    return article


def index_path(root, element) -> list[int]:
    """Where an element is below ``root``: its index among its parent's children, then its parent's, ...."""
    place = []
    while element is not root:
        place.append(element.getparent().index(element))
        element = element.getparent()
    return place


def at_index_path(root, place: list[int]):
    for index in reversed(place):
        root = root[index]
    return root


def test_the_single_pass_reads_repeated_and_missing_elements_as_the_plain_reading_does():
    # each element litmon reads, in a few articles: dropped, and repeated with other text (the first one counts)
    articles = fixture_articles()
    for tag in sorted(READ_TAGS):
        for article in [a for a in articles if next(a.iter(tag), None) is not None][:4]:
            for place in [index_path(article, e) for e in article.iter(tag)]:
                dropped, repeated = copy.deepcopy(article), copy.deepcopy(article)
                element = at_index_path(dropped, place)
                element.getparent().remove(element)
                element = at_index_path(repeated, place)
                twin = copy.deepcopy(element)
                for leaf in twin.iter():
                    leaf.text = leaf.text[::-1] if leaf.text and len(leaf.text.strip()) > 1 else "9"
                element.addnext(twin)
                for variant in (dropped, repeated):
                    assert outcome(pubmed.parse_article, variant) == outcome(reference_record, variant), (tag, place)


def test_the_single_pass_reads_varied_articles_as_the_plain_reading_does():
    rng = random.Random(15)
    articles = fixture_articles()
    for article in [vary(rng.choice(articles), rng) for _ in range(800)]:
        assert outcome(pubmed.parse_article, article) == outcome(reference_record, article), etree.tostring(article)[:3000]


# --------------------------------------------------------------------------- streaming and prefetch


def article(pmid: int) -> bytes:
    return (
        f"<PubmedArticle><MedlineCitation Status='MEDLINE'><PMID Version='1'>{pmid}</PMID><Article>"
        f"<ArticleTitle>Ketamine for depression: report {pmid}</ArticleTitle></Article></MedlineCitation>"
        f"</PubmedArticle>\n"
    ).encode()


def article_set(*articles: bytes) -> bytes:
    return b'<?xml version="1.0"?>\n<PubmedArticleSet>\n' + b"".join(articles) + b"</PubmedArticleSet>\n"


def test_an_answer_malformed_after_many_good_articles_fails_and_saves_nothing_of_it(httpserver, make_config, run_crawl, db):
    # page 2 is well-formed for 60 articles, then broken, then closed again (so it is no cut-off answer)
    broken = article_set(*(article(38000000 + i) for i in range(60)), b"<PubmedArticle><MedlineCitation <</PubmedArticle>")
    FakeNcbi({"crdt": 4}, {0: fixture_bytes("pubmed", "efetch_batch1.xml"), 2: broken}).install(httpserver)
    report = run_crawl(pubmed_config(make_config, httpserver), only=["pubmed"]).sources[0]
    assert report.status == "failed"
    assert report.error.startswith("[pubmed] efetch answer is malformed XML"), report.error
    assert sorted(r["source_id"] for r in rows(db, "SELECT source_id FROM records")) == ["39000001", "39000002"]


def test_iter_efetch_reads_a_stream_article_by_article():
    body = article_set(*(article(38000000 + i) for i in range(5)))
    records = pubmed.iter_efetch(io.BytesIO(body))
    assert next(records).source_id == "38000000"
    assert [r.source_id for r in records] == [f"3800000{i}" for i in range(1, 5)]
    assert [r.title for r in pubmed.parse_efetch(body)][:1] == ["Ketamine for depression: report 38000000"]


def read_through(records) -> tuple[list, str | None]:
    """The records an iterator yields (every field) and the error it ends with, if any."""
    got = []
    try:
        for record in records:
            got.append(vars(record))
    except SourceError as exc:
        return got, str(exc)
    return got, None


def streamed(body: bytes, problems: list[str]):
    """The answer read article by article by lxml's iterparse alone (what iter_efetch falls back to)."""
    return pubmed._iter_efetch_streaming(io.BytesIO(body), body[:65536], "pubmed", problems)


def fixture_article_bytes() -> list[bytes]:
    return [etree.tostring(a) for a in fixture_articles()[:40]]


#: A reference list as PubMed sends one (litmon reads nothing of it: its DOI is not the article's).
REFERENCES = (
    b"<ReferenceList><Title>References</Title><Reference><Citation>Osei H. A cited trial. 2020.</Citation>"
    b'<ArticleIdList><ArticleId IdType="doi">10.1000/cited.1</ArticleId></ArticleIdList></Reference></ReferenceList>'
)


def with_references(art: bytes, lists: bytes) -> bytes:
    """An article with ``lists`` at the end of its ``<PubmedData>``."""
    assert art.count(b"</PubmedData>") == 1
    return art.replace(b"</PubmedData>", lists + b"</PubmedData>")


def reference_answers() -> dict[str, bytes]:
    """Answers with reference lists: where runs leave them out of the bytes they parse ("reference lists …
    cut") and where they must not ("… kept": the articles would not be read as they are without them)."""
    arts = [a for a in fixture_article_bytes() if b"</PubmedData>" in a and b"<ReferenceList" not in a]
    book = (
        b"<PubmedBookArticle><BookDocument><PMID>7</PMID><ArticleTitle>A chapter</ArticleTitle>" + REFERENCES + b"\n"
        b"</BookDocument><PubmedBookData><History><PubMedPubDate PubStatus='entrez'><Year>2020</Year></PubMedPubDate>"
        b"</History></PubmedBookData></PubmedBookArticle>"
    )
    spaced = b"\n    " + REFERENCES + b"\n  "
    mark = b"<ArticleTitle>"
    assert all(mark in a for a in arts)
    return {
        "reference lists cut": article_set(
            *(with_references(a, [REFERENCES, spaced, REFERENCES + spaced + REFERENCES, b""][i % 4]) for i, a in enumerate(arts)),
            book,
        ),
        "reference lists kept: nested": article_set(
            *(with_references(a, REFERENCES.replace(b"</ReferenceList>", REFERENCES + b"</ReferenceList>")) for a in arts)
        ),
        "reference lists kept: with attributes, a space in the end tag": article_set(
            *(with_references(a, REFERENCES.replace(b"<ReferenceList>", b'<ReferenceList Type="cited">')) for a in arts[:5]),
            *(with_references(a, REFERENCES.replace(b"</ReferenceList>", b"</ReferenceList >")) for a in arts[5:]),
        ),
        "reference lists kept: another element after them": article_set(
            *(with_references(a, REFERENCES + b"<ObjectList><Object Type='x'/></ObjectList>") for a in arts)
        ),
        "reference lists kept: inside an abstract and a title": article_set(
            *(a.replace(mark, mark + b"Before " + REFERENCES + b" after") for a in arts)
        ),
        "reference lists kept: a <PubmedData> inside a title": article_set(
            *(a.replace(mark, mark + b"T <PubmedData>" + REFERENCES + b"</PubmedData> ") for a in arts)
        ),
        "reference lists kept: their tags in CDATA": article_set(
            *(a.replace(mark, mark + b"<![CDATA[<ReferenceList>x</ReferenceList></PubmedData>]]> T") for a in arts[:3]),
            *(with_references(a, REFERENCES) for a in arts[3:]),
        ),
        "reference lists kept: their tags in comments": article_set(
            *(a.replace(mark, mark + b"T<!-- <ReferenceList> --> real <!-- </ReferenceList></PubmedData> -->") for a in arts[:3]),
            *(with_references(a, REFERENCES) for a in arts[3:]),
        ),
        "reference lists kept: their tags in processing instructions": article_set(
            *(a.replace(mark, mark + b"T<?x <ReferenceList> ?> real <?x </ReferenceList></PubmedData> ?>") for a in arts[:3]),
            *(with_references(a, REFERENCES) for a in arts[3:]),
        ),
    }


def cut_off_answers() -> dict[str, bytes]:
    """An answer with reference lists cut off inside its last article: in a list (of a book, of an article before the
    book's place), after one, after the <PubmedData> holding them."""
    body = reference_answers()["reference lists cut"]
    last = body.rindex(b"<ReferenceList>", 0, body.index(b"<PubmedBookArticle>"))
    return {
        "cut off inside a book's reference list": body[: body.rindex(b"<ReferenceList>") + 40],
        "cut off inside a reference list": body[: last + 40],
        "cut off after a reference list": body[: body.index(b"</ReferenceList>", last) + len(b"</ReferenceList>")],
        "cut off after the reference lists' <PubmedData>": body[: body.index(b"</PubmedData>", last) + len(b"</PubmedData>")],
    }


def tricky_answers() -> dict[str, bytes]:
    """Answers that runs of whole articles cannot all read as they are, and some that they can."""
    arts = fixture_article_bytes()
    no_pmid = b"<PubmedArticle><MedlineCitation><Article><ArticleTitle>No PMID</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
    book = (
        b"<PubmedBookArticle><BookDocument><PMID>7</PMID><ArticleTitle>A chapter</ArticleTitle></BookDocument>"
        b'<PubmedBookData><History><PubMedPubDate PubStatus="entrez"><Year>2020</Year></PubMedPubDate></History>'
        b"</PubmedBookData></PubmedBookArticle>"
    )
    deleted = b"<DeleteCitation><PMID>1</PMID></DeleteCitation>"
    return {
        "plain": article_set(*arts),
        "empty set": b'<?xml version="1.0"?><PubmedArticleSet></PubmedArticleSet>',
        "self-closed set": b"<PubmedArticleSet/>",
        "closing tag in a comment": article_set(*arts[:10], b"<!-- </PubmedArticle> -->", *arts[10:]),
        "closing tag in CDATA": article_set(
            *arts[:10], arts[10].replace(b"<ArticleTitle>", b"<ArticleTitle><![CDATA[a </PubmedArticle> b]]>"), *arts[11:]
        ),
        "malformed in the middle": article_set(*arts[:25], b"<PubmedArticle><MedlineCitation <</PubmedArticle>", *arts[25:]),
        "cut off": article_set(*arts)[:-40],
        "text after the end": article_set(*arts) + b"junk",
        "another root": b"<Other>" + b"".join(arts) + b"</Other>",
        "articles in a wrapper": b"<PubmedArticleSet><Wrapper>"
        + b"".join(arts[:5])
        + b"</Wrapper>"
        + b"".join(arts[5:9])
        + b"</PubmedArticleSet>",
        "nested set": b"<PubmedArticleSet>"
        + arts[0]
        + b"<PubmedArticleSet>"
        + arts[1]
        + b"</PubmedArticleSet>"
        + arts[2]
        + b"</PubmedArticleSet>",
        "articles without a PMID": article_set(no_pmid, *arts[:20], no_pmid, *arts[20:], no_pmid),
        "no PMID, then malformed": article_set(no_pmid, *arts[:20], no_pmid, b"<PubmedArticle><", *arts[20:]),
        "deleted citations": article_set(
            arts[0], b"<DeleteCitation><PMID>1</PMID></DeleteCitation>", arts[1], b"<DeleteCitation/>"
        ),
        # a run ends after whichever of the three closing tags comes last in its bytes
        "books and deletions between the articles": article_set(
            *(
                part
                for index, art in enumerate(arts)
                for part in (art, [book, deleted, book + deleted, deleted + book, b""][index % 5])
            )
        ),
        "namespace on the root": article_set(*arts[:8])
        .replace(b"<PubmedArticleSet>", b'<PubmedArticleSet xmlns:mml="http://www.w3.org/1998/Math/MathML">')
        .replace(b"<ArticleTitle>", b"<ArticleTitle><mml:mi>x</mml:mi> "),
        "entities declared in the DOCTYPE": b'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ENTITY k "ketamine">]>'
        + article_set(*arts[:8]).replace(b"<ArticleTitle>", b"<ArticleTitle>&k; ").split(b"?>", 1)[1],
        "closing tag with a space": article_set(*(a.replace(b"</PubmedArticle>", b"</PubmedArticle >") for a in arts)),
        "Latin-1": b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        + article_set(*arts[:8]).split(b"?>", 1)[1].replace(b"<ArticleTitle>", "<ArticleTitle>Ætiology ".encode("latin-1")),
        "UTF-16": article_set(*arts[:4])
        .replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
        .decode()
        .encode("utf-16"),
        **reference_answers(),
        **cut_off_answers(),
    }


@pytest.mark.parametrize("name", sorted(tricky_answers()))
@pytest.mark.parametrize("with_problems", [True, False])
def test_runs_of_whole_articles_read_every_answer_as_iterparse_does(name, with_problems, monkeypatch):
    monkeypatch.setattr(pubmed, "RUN_BYTES", 3000)  # many runs of a few articles
    body = tricky_answers()[name]
    problems, expected_problems = ([], []) if with_problems else (None, None)
    records, error = read_through(pubmed.iter_efetch(io.BytesIO(body), problems=problems))
    expected, expected_error = read_through(streamed(body, expected_problems))
    assert error == expected_error
    if error is None:
        assert (records, problems) == (expected, expected_problems)
    else:  # both stop where the XML breaks (iterparse drops the articles of the buffer it was reading then)
        assert records[: len(expected)] == expected
        assert (problems or [])[: len(expected_problems or [])] == (expected_problems or [])


@pytest.mark.parametrize("name", sorted(reference_answers()))
@pytest.mark.parametrize("run_bytes", [3000, pubmed.RUN_BYTES])
def test_runs_leave_out_the_reference_lists_that_end_an_article_s_pubmed_data(name, run_bytes, monkeypatch):
    """The reference lists at the end of a <PubmedData> or <BookDocument> are not parsed (litmon reads nothing of
    them; the records are iterparse's, test above); every other one is, and every one of a run that holds a comment,
    CDATA or a processing instruction."""
    monkeypatch.setattr(pubmed, "RUN_BYTES", run_bytes)
    parsed: list[bytes] = []
    run_articles = pubmed._run_articles
    monkeypatch.setattr(
        pubmed, "_run_articles", lambda document, parser: parsed.append(document) or run_articles(document, parser)
    )
    body = reference_answers()[name]
    records = pubmed.parse_efetch(body)
    assert len(records) == body.count(b"<PubmedArticle>") + body.count(b"<PubmedBookArticle>")
    assert b"<PubmedArticleSet>" not in parsed[0][200:]  # (each document one run)
    lists = sum(document.count(b"<ReferenceList") for document in parsed)
    if name.endswith(" cut"):
        assert lists == 0 and b"<ReferenceList" in body
    elif name.endswith("processing instructions") or name.endswith("comments") or name.endswith("CDATA"):
        assert lists > 0  # (some runs hold none of those: their lists are cut)
    else:
        assert lists == body.count(b"<ReferenceList")


@pytest.mark.parametrize("name", sorted(cut_off_answers()))
@pytest.mark.parametrize("run_bytes", [3000, pubmed.RUN_BYTES])
def test_an_answer_cut_off_in_or_after_a_reference_list_is_malformed(name, run_bytes, monkeypatch):
    monkeypatch.setattr(pubmed, "RUN_BYTES", run_bytes)
    body = cut_off_answers()[name]
    assert b"</ReferenceList>" in body
    with pytest.raises(SourceError, match="efetch answer is malformed XML"):
        pubmed.parse_efetch(body)


def test_xml_broken_inside_a_reference_list_that_is_left_out_is_not_seen():
    """The price of not parsing reference lists: XML broken inside one is read as if the list were not there
    (iterparse, which reads every element, finds it), where it is left out (at the end of a <PubmedData>)."""
    arts = [a for a in fixture_article_bytes() if b"</PubmedData>" in a]
    broken = REFERENCES.replace(b"A cited trial", b"A < B trial")
    body = article_set(*arts[:5], with_references(arts[5], broken), *arts[6:])
    assert [vars(r) for r in pubmed.parse_efetch(body)] == [vars(r) for r in pubmed.parse_efetch(article_set(*arts))]
    assert read_through(streamed(body, []))[1].startswith("[pubmed] efetch answer is malformed XML")
    inside = article_set(*arts[:5], arts[5].replace(b"<ArticleTitle>", b"<ArticleTitle>" + broken), *arts[6:])
    with pytest.raises(SourceError, match="malformed XML"):  # a list elsewhere is parsed
        pubmed.parse_efetch(inside)


def test_a_well_formed_answer_is_read_in_runs_and_a_broken_one_again_by_iterparse(monkeypatch):
    monkeypatch.setattr(pubmed, "RUN_BYTES", 3000)
    skipped = []
    monkeypatch.setattr(pubmed, "_iter_efetch_streaming", lambda *args, skip: skipped.append(skip) or iter(()))
    arts = fixture_article_bytes()
    assert len(pubmed.parse_efetch(article_set(*arts))) == 40
    assert skipped == []
    assert len(pubmed.parse_efetch(article_set(*arts[:10], b"<!-- </PubmedArticle> -->", *arts[10:]))) == 9
    assert skipped == [9]  # the runs read the first nine, iterparse the rest


def crawl_context(httpserver, http: HttpClient) -> CrawlContext:
    settings = {"base_url": httpserver.url_for("/"), "query": QUERY, "batch_size": 2, "min_interval": 0}
    config = SimpleNamespace(contact_email="tester@example.org", topic=Topic(match_terms=("ketamine",)))
    day = dt.date(2026, 11, 20)
    return CrawlContext(name="pubmed", settings=settings, config=config, http=http, since=day, until=day, first_run=True)


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("litmon-prefetch")]


def test_the_next_page_is_fetched_while_the_current_one_is_processed(httpserver, http_client):
    pages = {0: article_set(article(1), article(2)), 2: article_set(article(3), article(4)), 4: article_set(article(5))}
    requested = {start: threading.Event() for start in pages}

    def efetch(request):
        start = int(request.args["retstart"])
        requested[start].set()
        return Response(pages[start], content_type="text/xml")

    httpserver.expect_request("/esearch.fcgi", method="POST").respond_with_data(esearch_body(5), content_type="application/json")
    httpserver.expect_request("/efetch.fcgi", method="GET").respond_with_handler(efetch)
    batches = pubmed.fetch_records(crawl_context(httpserver, http_client))

    first = next(batches)  # the crawl now holds page 1 (it would be saving it) ...
    assert [r.source_id for r in first] == ["1", "2"]
    assert requested[2].wait(10)  # ... while page 2 is already requested
    assert not requested[4].is_set()  # one page ahead, no more
    assert [[r.source_id for r in batch] for batch in batches] == [["3", "4"], ["5"]]
    assert [int(r.args["retstart"]) for r in requests_to(httpserver, "/efetch.fcgi")] == [0, 2, 4]
    assert prefetch_threads() == []


def serve_two_pages(httpserver, before_second_page) -> None:
    """A search of 4 PMIDs fetched 2 per page; ``before_second_page`` runs in the server before it answers page 2."""

    def efetch(request):
        if request.args["retstart"] == "2":
            before_second_page()
        return Response(article_set(article(1), article(2)), content_type="text/xml")

    httpserver.expect_request("/esearch.fcgi", method="POST").respond_with_data(esearch_body(4), content_type="application/json")
    httpserver.expect_request("/efetch.fcgi", method="GET").respond_with_handler(efetch)


def release_held_page(httpserver, release: threading.Event, held: threading.Event) -> None:
    """Let the server answer the page it holds (if it was asked for it), and wait until it has (logged it): a request
    answered after the test would be logged in the next test's log (the server outlives the test)."""
    release.set()
    if held.is_set():
        wait_for(lambda: len(requests_to(httpserver, "/efetch.fcgi")) >= 2, 30, "the held page answered")


def test_a_prefetch_no_longer_wanted_is_cancelled(httpserver, http_client):
    release, held = threading.Event(), threading.Event()

    # a page that takes long: the crawl stops before it arrives
    serve_two_pages(httpserver, lambda: (held.set(), release.wait(30)))
    batches = pubmed.fetch_records(crawl_context(httpserver, http_client))
    try:
        assert len(next(batches)) == 2
        assert held.wait(10)  # the next page is in flight
        batches.close()  # the crawl stopped (a failure while saving, SIGTERM): the pending page is cut
        assert prefetch_threads() == []
    finally:
        release_held_page(httpserver, release, held)


def test_a_stop_request_interrupts_a_prefetch(httpserver):
    stop = threading.Event()
    http = HttpClient("tester@example.org", max_retries=0, default_min_interval=0, read_timeout=30, stop=stop)
    release = threading.Event()

    def second_page() -> None:
        stop.set()  # SIGTERM arrives while page 2 is in flight
        release.wait(30)

    serve_two_pages(httpserver, second_page)
    batches = pubmed.fetch_records(crawl_context(httpserver, http))
    try:
        assert len(next(batches)) == 2
        with pytest.raises(Interrupted):
            next(batches)
        assert prefetch_threads() == []
    finally:
        release_held_page(httpserver, release, held=stop)  # (set by the server when it holds page 2)


BARE = b"<PubmedArticle><MedlineCitation><PMID Version='1'>{}</PMID></MedlineCitation></PubmedArticle>\n"


def test_the_first_answer_is_handed_on_in_two_batches_when_asked(httpserver, http_client):
    """With ``first_batch`` (the fetch worker's), the run's first answer comes as two batches: its first records as
    soon as they are read, then the rest; the later answers whole. The same records in the same order, the same
    requests, and each skipped article reported with the batch it was read in."""
    pages = {
        0: article_set(article(1), BARE.replace(b"{}", b"91"), article(2), article(3), BARE.replace(b"{}", b"92"), article(4)),
        5: article_set(article(5), article(6)),
    }
    FakeNcbi({"crdt": 7}, pages).install(httpserver)
    ctx = crawl_context(httpserver, http_client)
    ctx.settings["batch_size"] = 5
    ctx.first_batch = 2
    batches = []
    for batch in pubmed.fetch_records(ctx):
        batches.append(([r.source_id for r in batch], len(ctx.skipped)))
    assert batches == [(["1", "2"], 1), (["3", "4"], 2), (["5", "6"], 2)]
    assert [int(r.args["retstart"]) for r in requests_to(httpserver, "/efetch.fcgi")] == [0, 5]
    expected = [vars(r) for page in pages.values() for r in pubmed.parse_efetch(page, problems=[])]
    for first in (None, 2, 3, 4, 9):  # an answer of no more than first_batch records is one batch, as without it
        ctx = crawl_context(httpserver, http_client)
        ctx.settings["batch_size"], ctx.first_batch = 5, first
        read = list(pubmed.fetch_records(ctx))
        assert [vars(r) for batch in read for r in batch] == expected
        assert [len(batch) for batch in read] == ([first, 4 - first, 2] if first in (2, 3) else [4, 2])
        assert len(ctx.skipped) == 2


def test_a_first_answer_broken_after_its_first_batch_fails_after_that_batch(httpserver, http_client, monkeypatch):
    """The first records of the first answer are read whole before the rest: they are handed on, and the answer's
    error comes with the next batch (as a broken answer after a good one)."""
    monkeypatch.setattr(pubmed, "RUN_BYTES", 3000)  # many runs of a few articles: the break is found after the first
    broken = article_set(*(article(38000000 + i) for i in range(60)), b"<PubmedArticle><MedlineCitation <</PubmedArticle>")
    FakeNcbi({"crdt": 61}, {0: broken}).install(httpserver)
    ctx = crawl_context(httpserver, http_client)
    ctx.settings["batch_size"], ctx.first_batch = 100, 3
    batches = pubmed.fetch_records(ctx)
    assert [r.source_id for r in next(batches)] == ["38000000", "38000001", "38000002"]
    with pytest.raises(SourceError, match="efetch answer is malformed XML"):
        next(batches)


def test_an_article_without_its_article_element_is_skipped_with_its_pmid_named():
    """A <PubmedArticle> whose MedlineCitation has a PMID but no <Article> (outside PubMed's DTD) is a
    counted skip naming the PMID, read in runs or by iterparse; the articles around it are kept."""
    arts = fixture_article_bytes()[:12]
    bare = b"<PubmedArticle><MedlineCitation><PMID Version='1'>39999999</PMID></MedlineCitation></PubmedArticle>"
    body = article_set(*arts[:5], bare, *arts[5:])
    expected = [r.source_id for r in pubmed.parse_efetch(article_set(*arts), problems=[])]
    for read in (
        lambda problems: pubmed.iter_efetch(io.BytesIO(body), problems=problems),
        lambda problems: streamed(body, problems),
    ):
        problems: list[str] = []
        assert [r.source_id for r in read(problems)] == expected
        assert problems == ["article #6 of the efetch answer (PMID 39999999) has no <Article> element"]
    with pytest.raises(SourceError, match=r"PMID 39999999\) has no <Article> element"):
        pubmed.parse_efetch(body)


def malformed_answers() -> dict[str, tuple[bytes, str]]:
    """efetch_batch1.xml with an article outside PubMed's DTD between its two (as article #2, PMID 39000005, built
    from the second one in the same wire format), and the problem it is reported as."""
    body = fixture_bytes("pubmed", "efetch_batch1.xml").decode()
    start = body.index("<PubmedArticle>", body.index("</PubmedArticle>"))
    article = body[start : body.index("</PubmedArticle>", start) + len("</PubmedArticle>\n")].replace("39000002", "39000005")
    citation = article[article.index("  <MedlineCitation") : article.index("  <PubmedData>")]
    pmid_line = '    <PMID Version="1">39000005</PMID>\n'
    article_element = citation[citation.index("    <Article") : citation.index("    </Article>\n") + len("    </Article>\n")]
    assert pmid_line in citation and article_element in citation
    variants = {
        "no <MedlineCitation>": (
            article.replace(citation, ""),
            "article #2 of the efetch answer has no <MedlineCitation> element",
        ),
        "two <MedlineCitation>s, no PMID in the first": (
            article.replace(citation, citation.replace(pmid_line, "") + citation),
            "article #2 of the efetch answer has no PMID in the first of its 2 <MedlineCitation> elements",
        ),
        "two <MedlineCitation>s, no <Article> in the first": (
            article.replace(citation, citation.replace(article_element, "") + citation),
            "article #2 of the efetch answer (PMID 39000005) has no <Article> element in the first of its 2 <MedlineCitation> elements",
        ),
    }
    return {name: ((body[:start] + bad + body[start:]).encode(), problem) for name, (bad, problem) in variants.items()}


@pytest.mark.parametrize("name", sorted(malformed_answers()))
def test_an_article_without_a_readable_medline_citation_is_skipped_and_named(name, monkeypatch):
    """A <PubmedArticle> without <MedlineCitation>, or whose first one has no PMID or no <Article> while a second one
    has (outside PubMed's DTD, which allows one), is left out and reported like an article without a PMID: the
    articles around it are read, in runs or by iterparse; without a problems list the answer fails naming it."""
    body, problem = malformed_answers()[name]
    expected = [vars(r) for r in pubmed.parse_efetch(fixture_bytes("pubmed", "efetch_batch1.xml"))]
    assert [r["source_id"] for r in expected] == ["39000001", "39000002"]
    for run_bytes in (pubmed.RUN_BYTES, 1500):  # one run, or a run per article
        monkeypatch.setattr(pubmed, "RUN_BYTES", run_bytes)
        for read in (
            lambda problems: pubmed.iter_efetch(io.BytesIO(body), problems=problems),
            lambda problems: streamed(body, problems),
        ):
            problems: list[str] = []
            assert [vars(r) for r in read(problems)] == expected
            assert problems == [problem]
        with pytest.raises(SourceError) as raised:
            pubmed.parse_efetch(body)
        assert str(raised.value) == f"[pubmed] {problem} — check: whether the service is up; it is retried on the next run"


def test_a_crawl_skips_an_article_with_two_medline_citations_and_keeps_the_others(httpserver, make_config, run_crawl, db):
    body, problem = malformed_answers()["two <MedlineCitation>s, no PMID in the first"]
    FakeNcbi({"crdt": 3}, {0: body, 2: fixture_bytes("pubmed", "efetch_batch2.xml")}).install(httpserver)
    report = run_crawl(pubmed_config(make_config, httpserver), only=["pubmed"])

    [source] = report.sources
    assert source.status == "ok", source.error
    assert source.counts["skipped"] == 1 and source.skipped == [problem]
    assert source.watermark_held and f"1 skipped ({problem})" in source.summary()
    stored = rows(db, "SELECT source_id, title FROM records WHERE source = 'pubmed' ORDER BY source_id")
    assert [r["source_id"] for r in stored] == ["39000001", "39000002", "39000003"]
    run = rows(db, "SELECT status, skipped, skipped_reasons FROM source_runs ORDER BY id DESC LIMIT 1")[0]
    assert (run["status"], run["skipped"], json.loads(run["skipped_reasons"])) == ("ok", 1, [problem])
    assert store.load_source_state(db, "pubmed")["watermark"] is None  # held: the window is read again next run


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("", "article #2 of the efetch answer has no <BookDocument> element"),
        (
            "<BookDocument><ArticleTitle>A</ArticleTitle></BookDocument><BookDocument><PMID>8</PMID></BookDocument>",
            "article #2 of the efetch answer has no PMID in the first of its 2 <BookDocument> elements",
        ),
    ],
)
def test_a_book_article_is_read_from_its_first_book_document(document, problem):
    """A <PubmedBookArticle> without a <BookDocument>, or whose first one has no PMID, is skipped and named (a PMID
    elsewhere in it once let it through: an error, or a record without an id)."""
    body = fixture_bytes("pubmed", "efetch_batch1.xml").decode()
    start = body.index("<PubmedArticle>", body.index("</PubmedArticle>"))
    book = f'<PubmedBookArticle>\n  <MedlineCitation><PMID Version="1">39000006</PMID></MedlineCitation>{document}\n</PubmedBookArticle>\n'
    problems: list[str] = []
    records = pubmed.parse_efetch((body[:start] + book + body[start:]).encode(), problems=problems)
    assert [r.source_id for r in records] == ["39000001", "39000002"] and problems == [problem]
