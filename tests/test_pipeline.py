"""End to end: every source at once against one loopback server, one study seen by many sources.

The ESCAPE-TRD-like study below is served by PubMed, Europe PMC, Crossref and a journal feed (one work),
its registration by ClinicalTrials.gov and ISRCTN (another work, dual-registered), and its preprint by
medRxiv (a third work, linked to the article). The digest lists each work once.
"""

from __future__ import annotations

import datetime as dt
import json

from pytest_httpserver import URIPattern
from werkzeug import Response

from crawler.digest import run_digest
from crawler.pipeline import crawl
from tests.conftest import PINNED_NOW, rows

DOI = "10.1056/NEJMoa2304145"
PMID = "37792613"
NCT = "NCT04338321"
ISRCTN = "ISRCTN11111111"
PREPRINT = "10.1101/2023.05.01.23289301"
TITLE = "Esketamine nasal spray versus quetiapine for treatment-resistant depression"
TODAY = PINNED_NOW.date()
DAY = (TODAY - dt.timedelta(days=1)).isoformat()

EFETCH = f"""<?xml version="1.0" ?>
<PubmedArticleSet><PubmedArticle>
<MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{PMID}</PMID>
<Article PubModel="Print-Electronic"><Journal><JournalIssue><PubDate><Year>{TODAY.year}</Year></PubDate></JournalIssue>
<Title>The New England journal of medicine</Title></Journal><ArticleTitle>{TITLE}.</ArticleTitle>
<Abstract><AbstractText Label="METHODS">Randomized trial ({NCT}) of esketamine in 676 patients.</AbstractText></Abstract>
<AuthorList><Author><LastName>Reif</LastName><ForeName>Andreas</ForeName></Author></AuthorList>
<DataBankList><DataBank><DataBankName>ClinicalTrials.gov</DataBankName><AccessionNumberList><AccessionNumber>{NCT}</AccessionNumber></AccessionNumberList></DataBank></DataBankList>
<PublicationTypeList><PublicationType UI="D016449">Randomized Controlled Trial</PublicationType></PublicationTypeList></Article></MedlineCitation>
<PubmedData><History><PubMedPubDate PubStatus="entrez"><Year>{TODAY.year}</Year><Month>{TODAY.month}</Month><Day>{TODAY.day}</Day></PubMedPubDate></History>
<ArticleIdList><ArticleId IdType="pubmed">{PMID}</ArticleId><ArticleId IdType="doi">{DOI}</ArticleId></ArticleIdList></PubmedData>
</PubmedArticle></PubmedArticleSet>"""

EPMC = {
    "version": "6.9",
    "hitCount": 1,
    "request": {},
    "resultList": {
        "result": [
            {
                "id": PMID,
                "source": "MED",
                "pmid": PMID,
                "doi": DOI.lower(),
                "title": TITLE + ".",
                "authorString": "Reif A.",
                "pubYear": str(TODAY.year),
                "abstractText": "Esketamine or quetiapine.",
                "journalInfo": {"journal": {"title": "The New England journal of medicine"}},
                "firstIndexDate": DAY,
                "firstPublicationDate": DAY,
                "pubTypeList": {"pubType": ["Randomized Controlled Trial"]},
            }
        ]
    },
}

CROSSREF = {
    "status": "ok",
    "message-type": "work-list",
    "message": {
        "total-results": 1,
        "items-per-page": 1000,
        "next-cursor": "c2",
        "items": [
            {
                "DOI": DOI.lower(),
                "type": "journal-article",
                "title": [TITLE],
                "container-title": ["New England Journal of Medicine"],
                "author": [{"given": "Andreas", "family": "Reif", "sequence": "first"}],
                "issued": {"date-parts": [[TODAY.year, TODAY.month]]},
                "created": {"date-parts": [[TODAY.year, TODAY.month, TODAY.day]], "date-time": f"{DAY}T10:00:00Z"},
                "deposited": {"date-parts": [[TODAY.year, TODAY.month, TODAY.day]], "date-time": f"{DAY}T10:00:00Z"},
                "clinical-trial-number": [{"clinical-trial-number": NCT.lower(), "registry": "10.18810/clinical-trials-gov"}],
                "relation": {"has-preprint": [{"id-type": "doi", "id": PREPRINT, "asserted-by": "subject"}]},
            }
        ],
    },
}

CTGOV = {
    "totalCount": 1,
    "studies": [
        {
            "protocolSection": {
                "identificationModule": {
                    "nctId": NCT,
                    "briefTitle": "ESCAPE-TRD: esketamine vs quetiapine",
                    "secondaryIdInfos": [{"id": ISRCTN, "type": "REGISTRY", "domain": "ISRCTN"}],
                },
                "statusModule": {
                    "overallStatus": "COMPLETED",
                    "studyFirstPostDateStruct": {"date": "2020-04-07"},
                    "lastUpdatePostDateStruct": {"date": DAY},
                },
                "conditionsModule": {"conditions": ["Treatment-resistant Depression"]},
                "referencesModule": {"references": [{"pmid": PMID, "type": "RESULT", "citation": "Reif A. N Engl J Med."}]},
            },
            "hasResults": False,
        }
    ],
}

ISRCTN_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<allTrials xmlns="http://www.67bricks.com/isrctn" totalCount="1"><fullTrial>
<trial lastUpdated="{DAY}T09:00:00.000Z" version="1">
<isrctn dateAssigned="2020-04-01T00:00:00.000Z">{ISRCTN[6:]}</isrctn>
<trialDescription><title>Esketamine versus quetiapine in treatment-resistant depression</title><scientificTitle>ESCAPE-TRD</scientificTitle></trialDescription>
<externalRefs><clinicalTrialsGovNumber>{NCT}</clinicalTrialsGovNumber></externalRefs>
<participants><recruitmentStart>2020-08-01T00:00:00.000Z</recruitmentStart><recruitmentEnd>2022-06-30T00:00:00.000Z</recruitmentEnd></participants>
</trial></fullTrial></allTrials>"""

MEDRXIV = {
    "messages": [{"status": "ok", "count": 1, "total": "1", "cursor": 0}],
    "collection": [
        {
            "doi": PREPRINT,
            "title": "Esketamine or quetiapine in TRD: a randomised trial",
            "authors": "Reif, A.; Bitter, I.",
            "date": DAY,
            "version": "1",
            "type": "new results",
            "category": "psychiatry and clinical psychology",
            "abstract": "Ketamine enantiomer esketamine compared with quetiapine.",
            "published": DOI.lower(),
            "server": "medrxiv",
        }
    ],
}
EMPTY_BIORXIV = {"messages": [{"status": "no posts found"}], "collection": []}

RSS = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/"><channel><title>NEJM</title>
<item><title>{TITLE}</title><link>https://www.nejm.org/doi/full/{DOI}</link><guid>{DOI}</guid>
<prism:doi>{DOI}</prism:doi><description>Esketamine nasal spray was compared with quetiapine.</description></item>
<item><title>Semaglutide and kidney outcomes</title><link>https://www.nejm.org/doi/full/10.1056/NEJMoa2403347</link></item>
</channel></rss>"""


class Prefix(URIPattern):
    def __init__(self, prefix):
        self.prefix = prefix

    def match(self, uri):
        return uri.startswith(self.prefix)


def json_response(payload):
    return Response(json.dumps(payload), content_type="application/json")


def serve_everything(httpserver):
    esearch = {"header": {}, "esearchresult": {"count": "1", "querykey": "1", "webenv": "W1", "idlist": []}}
    httpserver.expect_request("/pubmed/esearch.fcgi").respond_with_handler(lambda r: json_response(esearch))
    httpserver.expect_request("/pubmed/efetch.fcgi").respond_with_data(EFETCH, content_type="text/xml")
    httpserver.expect_request("/epmc/search").respond_with_handler(
        lambda r: json_response(EPMC if "retracted" not in r.args["query"] else {"hitCount": 0, "resultList": {"result": []}})
    )
    httpserver.expect_request("/crossref/works").respond_with_handler(
        lambda r: json_response(
            CROSSREF if r.args["cursor"] == "*" else {"status": "ok", "message": {"items": [], "total-results": 1}}
        )
    )
    httpserver.expect_request("/ctgov/studies").respond_with_handler(lambda r: json_response(CTGOV))
    httpserver.expect_request("/isrctn/query/format/default").respond_with_data(ISRCTN_XML, content_type="application/xml")

    def biorxiv(request):
        if request.path.startswith("/biorxiv/details/medrxiv/") and request.path.endswith("/0/json"):
            return json_response(MEDRXIV)
        return json_response(EMPTY_BIORXIV)

    httpserver.expect_request(Prefix("/biorxiv/")).respond_with_handler(biorxiv)
    httpserver.expect_request("/feeds/nejm.xml").respond_with_data(RSS, content_type="application/rss+xml")


def everything_config(make_config, httpserver):
    url = httpserver.url_for
    return make_config(f"""
[sources.pubmed]
enabled = true
base_url = "{url("/pubmed/")}"
query = "ketamine"
min_interval = 0
[sources.europepmc]
enabled = true
base_url = "{url("/epmc/")}"
query = "ketamine"
[sources.crossref]
enabled = true
base_url = "{url("/crossref/")}"
query = "ketamine"
[sources.clinicaltrials]
enabled = true
base_url = "{url("/ctgov/")}"
conditions = "depression"
interventions = "ketamine"
min_interval = 0
[sources.isrctn]
enabled = true
base_url = "{url("/isrctn/")}"
query = "ketamine"
min_interval = 0
[sources.biorxiv]
enabled = true
base_url = "{url("/biorxiv/")}"
min_interval = 0
[sources.openalex]
enabled = true
base_url = "{url("/openalex/")}"
api_key_env = "LITMON_TEST_NO_SUCH_KEY"
query = "ketamine"
[[feeds]]
name = "nejm"
url = "{url("/feeds/nejm.xml")}"
""")


def test_one_study_from_every_source_is_three_linked_works(httpserver, make_config, db, http_client):
    serve_everything(httpserver)
    config = everything_config(make_config, httpserver)

    report = crawl(config, db, http=http_client)

    statuses = {s.name: s.status for s in report.sources}
    assert statuses == {
        "pubmed": "ok",
        "europepmc": "ok",
        "clinicaltrials": "ok",
        "biorxiv": "ok",
        "crossref": "ok",
        "isrctn": "ok",
        "openalex": "disabled",
        "feed:nejm": "ok",
    }, [s.error for s in report.sources]

    works = rows(
        db,
        """SELECT w.id, w.record_type, w.title, group_concat(r.source) AS sources
                        FROM works w JOIN records r ON r.work_id = w.id WHERE w.merged_into IS NULL
                        GROUP BY w.id ORDER BY w.id""",
    )
    by_type = {w["record_type"]: w for w in works}
    assert len(works) == 3, works
    assert sorted(by_type["article"]["sources"].split(",")) == ["crossref", "europepmc", "feed:nejm", "pubmed"]
    assert by_type["article"]["title"] == TITLE + "."  # PubMed's title wins
    assert sorted(by_type["trial_registration"]["sources"].split(",")) == ["clinicaltrials", "isrctn"]
    assert by_type["preprint"]["sources"].startswith("biorxiv")

    ids = {
        (r["scheme"], r["value"])
        for r in rows(db, "SELECT scheme, value FROM identifiers WHERE work_id = ?", [by_type["article"]["id"]])
    }
    assert {("doi", DOI.lower()), ("pmid", PMID)} <= ids
    links = {(r["relation"], r["value"]) for r in rows(db, "SELECT relation, value FROM record_links")}
    assert ("registered_as", NCT) in links and ("result_publication", PMID) in links
    assert ("preprint_of", DOI.lower()) in links and ("has_preprint", PREPRINT) in links

    # the semaglutide item in the feed is off topic and was filtered out
    assert not rows(db, "SELECT 1 FROM records WHERE title LIKE '%Semaglutide%'")

    digest = run_digest(config, db)
    # the registration dates from 2020: the first digest lists only what entered in the last 7 days
    # issue #13: one item per study — the article, annotated as the published version of its preprint
    assert [item.work_id for item in digest.digest.items] == [by_type["article"]["id"]]
    assert digest.digest.items[0].folded == [by_type["preprint"]["id"]]
    assert digest.digest.text.count(f"* {TITLE}") == 1  # listed once…
    assert "  > Published version of a preprint (posted " in digest.digest.text  # …saying it was a preprint

    # a second crawl of the same answers changes nothing
    before = rows(db, "SELECT id, work_id, content_hash FROM records ORDER BY id")
    again = crawl(config, db, http=http_client)
    assert all(s.counts["new"] == 0 and s.counts["updated"] == 0 for s in again.sources if s.status == "ok"), [
        (s.name, s.counts) for s in again.sources
    ]
    assert rows(db, "SELECT id, work_id, content_hash FROM records ORDER BY id") == before


def test_an_offline_crawl_fails_each_source_at_its_first_request_with_one_short_line(db, make_config, caplog):
    """A host name that does not resolve is not a transient error: no retry, no backoff (issue #10)."""
    from crawler.http import HttpClient

    sleeps: list[float] = []
    http = HttpClient("tester@example.org", max_retries=4, backoff_seconds=5, default_min_interval=0, sleep=sleeps.append)
    config = make_config(
        """
[sources.pubmed]
enabled = true
base_url = "http://eutils.litmon-test.invalid/entrez/eutils/"
query = "ketamine"
[[feeds]]
name = "journal"
url = "http://feeds.litmon-test.invalid/rss.xml"
"""
    )
    with caplog.at_level("INFO", logger="crawler.pipeline"):
        report = crawl(config, db, http=http)

    assert [(s.name, s.status, s.requests) for s in report.sources] == [("pubmed", "failed", 1), ("feed:journal", "failed", 1)]
    assert sleeps == []
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert lines[0].startswith("[pubmed] failed: network error: cannot resolve host name eutils.litmon-test.invalid (DNS)")
    assert all("\n" not in line and "url:" not in line and len(line) < 220 for line in lines) and len(lines) == 2
    stored = rows(db, "SELECT source, last_error FROM source_states ORDER BY source")
    assert "(url: http://eutils.litmon-test.invalid/entrez/eutils/esearch.fcgi" in stored[1]["last_error"]  # full diagnosis kept


#: A crawl in a new process, its first source fetched by a worker beside it; prints, from this (the writing) process
#: alone, which of requests and urllib3 it imported, the run's exit status and the records stored.
CRAWL_BESIDE_A_WORKER = """
import json, os, sqlite3, sys
from crawler import cli, fetch_worker
fetch_worker.cores = lambda: 2  # (a worker on any test machine)
writer = os.getpid()
try:
    cli.main(["--config", sys.argv[1], "-q", "crawl", "--source", "pubmed"])
except SystemExit as exit:
    status = exit.code
finally:
    if os.getpid() == writer:
        imported = [name for name in ("requests", "urllib3") if name in sys.modules]
        records = sqlite3.connect(sys.argv[2]).execute("SELECT COUNT(*) FROM records").fetchone()[0]
        sys.stdout.write(json.dumps([imported, status, records]))
"""


def test_the_process_writing_beside_a_fetch_worker_never_imports_requests(tmp_path, httpserver):
    """The worker makes every request of its source: the writing process, which makes none, imports neither requests
    nor urllib3 (crawler.http imports them where a client first asks: ~0.3 G instructions)."""
    from tests.helpers.classify_corpus import shipped_vocabulary
    from tests.helpers.cli import run_script, serve_pubmed, write_config

    serve_pubmed(httpserver)
    pubmed = f'[sources.pubmed]\nenabled = true\nbase_url = "{httpserver.url_for("/")}"\nquery = "ketamine"\nbatch_size = 2\nmin_interval = 0\n'
    config = write_config(tmp_path, shipped_vocabulary() + pubmed)
    text = open(config).read().replace("[crawl]\n", '[crawl]\nfetch_worker = "on"\n', 1)
    open(config, "w").write(text)
    result = run_script(CRAWL_BESIDE_A_WORKER, config, str(tmp_path / "litmon.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[], 0, 3]
