"""Every shipped source's clean answers, from the recorded wire fixtures, as one WSGI application per source.

Each source of ``config/litmon.toml`` (APIs, feeds, pages) gets an application that answers its requests
the way the real service does, from the fixture answers of ``tests/fixtures/<source>/``: ``WEEK[0] = 1``
the answers of a first crawl, ``WEEK[0] = 2`` those of the week after where a source has them (new
articles, a trial whose status changed, revised records), the first week's elsewhere.
``bench/weekly.py`` serves them on loopback, one address per source (127.0.0.k), so that the HTTP
client's per-host rate limits apply as they do against the real hosts.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from werkzeug import Request, Response

from tests.conftest import fixture_bytes
from tests.helpers.ncbi import esearch_body

JSON = "application/json"
EPMC_C1 = "AoIIP4ZawSg0Mzc5MjYxMw=="
#: which week the upstream services answer for (1: a first crawl; 2: the week after)
WEEK = [1]

#: feed name in config/litmon.toml -> the recorded fixture of that publisher's format
FEED_FIXTURES = {
    "jama-psychiatry": "jama_psychiatry_rss2.xml",
    "am-j-psychiatry": "ajp_atypon_rdf.xml",
    "lancet-psychiatry": "lancet_psychiatry_online_rss2.xml",
    "biological-psychiatry": "sciencedirect_jad_rss2.xml",
    "molecular-psychiatry": "nature_mp_rss10.xml",
    "neuropsychopharmacology": "nature_mp_rss10.xml",
    "j-affective-disorders": "sciencedirect_jad_rss2.xml",
    "fda-press-releases": "fda_press_rss2.xml",
    "ema-news": "ema_news_rss2.xml",
}
#: page name in config/litmon.toml -> its recorded fixture
PAGE_FIXTURES = {"fda-drug-safety-communications": "fda_dsc_current.html"}


def _json(body: bytes) -> Response:
    return Response(body, content_type=JSON)


def pubmed(request: Request) -> Response:
    if request.path.endswith("esearch.fcgi"):
        return _json(esearch_body(2))
    name = "efetch_new.xml" if WEEK[0] == 2 else "efetch_batch1.xml"
    return Response(fixture_bytes("pubmed", name), content_type="text/xml")


def europepmc(request: Request) -> Response:
    if "retracted publication" in request.args.get("query", ""):
        return _json(fixture_bytes("europepmc", "core_empty.json"))
    pages = {"*": "core_page1.json", EPMC_C1: "core_page2.json"}
    return _json(fixture_bytes("europepmc", pages.get(request.args.get("cursorMark", ""), "core_empty.json")))


def clinicaltrials(request: Request) -> Response:
    body = json.loads(fixture_bytes("clinicaltrials", "studies_page2.json"))
    if WEEK[0] == 2:  # a trial registered in the week joins the one of the first crawl
        body["studies"] += json.loads(fixture_bytes("clinicaltrials", "snapshot_after.json"))["studies"]
        body["totalCount"] = len(body["studies"])
        return _json(json.dumps(body).encode())
    return _json(fixture_bytes("clinicaltrials", "studies_page2.json"))


def biorxiv(request: Request) -> Response:
    parts = request.path.strip("/").split("/")
    name = "empty.json"
    if len(parts) > 4 and parts[0] == "details" and parts[1] == "medrxiv":
        name = {"0": "details_medrxiv_page1.json", "3": "details_medrxiv_page2.json"}.get(parts[4], "empty.json")
    elif len(parts) > 4 and parts[0] == "pubs" and parts[1] == "medrxiv" and parts[4] == "0":
        name = "pubs_medrxiv.json"
    return _json(fixture_bytes("biorxiv", name))


def crossref(request: Request) -> Response:
    if request.args.get("cursor") != "*":
        return _json(fixture_bytes("crossref", "works_empty.json"))
    if "from-created-date" in request.args.get("filter", ""):
        return _json(fixture_bytes("crossref", "works_created_page1.json"))
    return _json(fixture_bytes("crossref", "works_updated_page1.json" if WEEK[0] == 2 else "works_empty.json"))


def full_trials(*names: str) -> list[bytes]:
    """The ``<fullTrial>`` elements of ISRCTN fixture answers."""
    trials = []
    for name in names:
        for part in fixture_bytes("isrctn", name).split(b"<fullTrial>")[1:]:
            trials.append(b"<fullTrial>" + part.split(b"</fullTrial>")[0] + b"</fullTrial>")
    return trials


def isrctn_answer(trials: list[bytes], total: int) -> bytes:
    """An ISRCTN ``/api/query/format/default`` answer holding ``trials`` of ``total``."""
    head = f'<allTrials xmlns="http://www.67bricks.com/isrctn" totalCount="{total}">'.encode()
    return head + b"\n".join(trials) + b"</allTrials>"


def isrctn(request: Request) -> Response:
    trials = full_trials(*(("search_since_update.xml",) if WEEK[0] == 2 else ("search_page1.xml", "search_page2.xml")))
    limit, offset = int(request.args.get("limit", "10")), int(request.args.get("offset", "0"))
    return Response(isrctn_answer(trials[offset : offset + limit], total=len(trials)), content_type="application/xml")


def ctis(request: Request) -> Response:
    if request.path.endswith("/search"):
        page = json.loads(request.get_data())["pagination"]["page"]
        pages = ("search_after_status_change.json",) if WEEK[0] == 2 else ("search_page1.json", "search_page2.json")
        return _json(fixture_bytes("ctis", pages[page - 1]) if page <= len(pages) else b'{"data": []}')
    number = request.path.rsplit("/", 1)[1]
    try:
        if WEEK[0] == 2 and number == "2024-512345-21-00":
            return _json(fixture_bytes("ctis", f"retrieve_{number}_ended.json"))
        return _json(fixture_bytes("ctis", f"retrieve_{number}.json"))
    except FileNotFoundError:
        return Response("Not Found", status=404)


def openalex(request: Request) -> Response:
    if WEEK[0] == 2:
        since = {"*": "works_since_update.json"}
        return _json(fixture_bytes("openalex", since.get(request.args.get("cursor", ""), "works_empty.json")))
    first = json.loads(fixture_bytes("openalex", "works_page1.json"))["meta"]["next_cursor"]
    pages = {"*": "works_page1.json", first: "works_page2.json"}
    return _json(fixture_bytes("openalex", pages.get(request.args.get("cursor", ""), "works_empty.json")))


#: feeds with a recorded later edition: the week after answers with it
FEED_NEXT = {"jama_psychiatry_rss2.xml": "jama_psychiatry_rss2_next.xml"}


def feed(name: str) -> Callable[[Request], Response]:
    first = FEED_FIXTURES[name]

    def answer(request: Request) -> Response:
        name = FEED_NEXT.get(first, first) if WEEK[0] == 2 else first
        return Response(fixture_bytes("feeds", name), content_type="application/rss+xml")

    return answer


def page(name: str) -> Callable[[Request], Response]:
    body = fixture_bytes("pages", PAGE_FIXTURES[name])
    return lambda request: Response(body, content_type="text/html; charset=utf-8")


APIS: dict[str, Callable[[Request], Response]] = {
    "pubmed": pubmed,
    "europepmc": europepmc,
    "clinicaltrials": clinicaltrials,
    "biorxiv": biorxiv,
    "crossref": crossref,
    "isrctn": isrctn,
    "ctis": ctis,
    "openalex": openalex,
}


def application(answer: Callable[[Request], Response], log: list[tuple[float, str]], clock: Callable[[], float]):
    """A WSGI application answering with ``answer`` and logging (time, path) of every request."""

    @Request.application
    def app(request: Request) -> Response:
        log.append((clock(), request.path))
        return answer(request)

    return app
