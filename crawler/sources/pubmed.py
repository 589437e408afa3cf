"""PubMed through NCBI E-utilities (esearch + efetch).

Incremental strategy
    Pass 1 ("new"): ``esearch`` with ``datetype=crdt`` (record create date) over
    ``since``..``until``. ``crdt`` is used instead of ``edat`` because NLM back-dates the Entrez
    date of records added more than a year after publication, so they would fall outside an
    ``edat`` window. Pass 2 ("changed", every run but the first): the same query with
    ``datetype=mdat`` refreshes records that were modified (MeSH added, retraction or erratum
    linked) since the watermark.
Paging and caps
    ``esearch`` runs with ``usehistory=y`` (the query is POSTed: it is long) and ``retmax=0``;
    ``efetch`` then reads the History server in batches of ``batch_size`` PMIDs
    (``WebEnv``/``query_key``/``retstart``/``retmax``, XML). PubMed's esearch never returns more
    than 9,999 records of one query, so a window whose count exceeds that is split in halves,
    recursively, until every piece fits (a single day over the cap is fetched up to the cap with
    a warning). While one efetch page is parsed and saved, the next is fetched in a background
    thread (one page ahead, same client and limits); its failure surfaces after the page before it
    is saved. In a fetch worker the first answer's first records come as a batch of their own
    (``CrawlContext.first_batch``), the rest of it as the next.
Etiquette
    ``tool``, ``email`` (the configured contact address) and, when ``$<api_key_env>`` is set,
    ``api_key`` go with every request; requests are spaced 0.34 s apart (3/s), 0.1 s with a key
    (10/s). 429s and 5xx are retried by the shared HTTP client, honouring Retry-After.
Parsing
    Safe lxml (no entities, no DTD fetch), incremental: the streamed body is parsed in runs of whole
    articles (lxml's ``iterparse`` for an answer that cannot be cut so), each run freed once its
    articles are Records, so memory does not grow with the answer; each article is read in one pass
    over the elements kept. Mixed content (``<i>``, ``<sup>``, MathML) in titles
    and abstracts is flattened without losing text; structured abstracts keep their labels;
    ``MedlineDate`` ("2024 Jan-Feb") and ``Season`` give partial dates.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import itertools
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from lxml import etree

from crawler import abstracts
from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.http import Response
from crawler.records import Author, Record, make_author
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import decode_json, earliest_date, parse_date
from crawler.sources.settings.pubmed import DEFAULT_BATCH
from crawler.sources.settings.pubmed import Settings as Settings  # the keys of its table, declared apart
from crawler.xmlsafe import HEAD_BYTES, fold_space, iterparse_safe, safe_parser, text_of, xml_error

NAME = "pubmed"
CORPUS_DIR = "pubmed"
ESEARCH_CAP = 9999


#: CommentsCorrections RefType -> link relation (RefTypes not listed, e.g. Cites, are ignored)
REF_TYPES = {
    "RetractionIn": "retraction_in",
    "RetractionOf": "retraction_of",
    "RetractedandRepublishedIn": "republished_in",
    "RetractedandRepublishedFrom": "republished_from",
    "ErratumIn": "erratum_in",
    "ErratumFor": "erratum_for",
    "CorrectedandRepublishedIn": "republished_in",
    "CorrectedandRepublishedFrom": "republished_from",
    "ExpressionOfConcernIn": "expression_of_concern_in",
    "ExpressionOfConcernFor": "expression_of_concern_for",
    "CommentIn": "comment_in",
    "CommentOn": "comment_on",
    "UpdateIn": "update_in",
    "UpdateOf": "update_of",
}
NOTICE_TYPES = {"retraction of publication", "published erratum", "expression of concern", "retraction notice"}


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    params = _common_params(ctx)
    if "min_interval" not in ctx.settings:
        ctx.http.set_min_interval(ctx.base_url, 0.1 if "api_key" in params else 0.34)
    batch_size = int(ctx.settings.get("batch_size", DEFAULT_BATCH))
    query = ctx.settings.get("query")
    if not query:
        raise SourceError(ctx.name, "no query configured", hint="[sources.pubmed] query in the config")
    passes = [("crdt", ctx.since)]
    if not ctx.first_run:
        passes.append(("mdat", ctx.since))

    def pages() -> Iterator[tuple[dict, int]]:
        """(search, start) of every efetch page, window after window; each window's esearch when it comes."""
        for datetype, since in passes:
            for _window_from, _window_to, search in _search_windows(ctx, params, query, datetype, since, ctx.until):
                for start in range(0, min(search["count"], ESEARCH_CAP), batch_size):
                    yield search, start

    yield from _fetch_pages(ctx, params, pages(), batch_size)


def _fetch_pages(ctx: CrawlContext, params, pages: Iterator[tuple[dict, int]], batch_size: int) -> Iterator[list[Record]]:
    """The efetch pages of every search, in order, one batch each. While a page is parsed and saved, the
    next one is already being fetched in a background thread (through the same client: its per-host
    spacing, deadlines and stop request apply), and so is the next window's esearch before it, when the
    page was its window's last (``pages`` is advanced in that thread only). A failure of that next page
    (or search) surfaces when the crawl asks for it, after the current page was saved; a page no longer
    wanted (the crawl stopped) is cancelled at once."""
    cancel = threading.Event()

    def fetch() -> Response | None:
        with ctx.http.cancellable(cancel):
            page = next(pages, None)
            if page is None:
                return None
            return _efetch(ctx, params, page[0], page[1], batch_size)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litmon-prefetch")
    first = ctx.first_batch
    try:
        pending = pool.submit(fetch)
        while True:
            response = _await_page(pending)
            if response is None:
                return
            pending = pool.submit(fetch)
            if first is not None:
                limit, first = first, None
                yield from _answer_in_two(ctx, response, limit)
                continue
            problems: list[str] = []
            records = parse_efetch(response.stream(), source=ctx.name, problems=problems)
            response.close()
            for problem in problems:
                ctx.skip(problem)
            yield records
    finally:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _answer_in_two(ctx: CrawlContext, response: Response, limit: int) -> Iterator[list[Record]]:
    """The run's first answer as two batches (:attr:`~crawler.sources.base.CrawlContext.first_batch`): its first
    ``limit`` records as soon as they are read, then the rest (one batch, as any answer, when it holds no more). An
    answer that breaks after its first ``limit`` records keeps them: they were read whole, and are saved as the batches
    before a broken answer are."""
    problems: list[str] = []
    reading = iter_efetch(response.stream(), source=ctx.name, problems=problems)
    records = _read(reading, limit)
    whole = len(records) < limit  # (else more may follow)
    if not whole:
        for problem in problems:
            ctx.skip(problem)
        problems.clear()
        yield records
        records = _read(reading)
    response.close()
    for problem in problems:
        ctx.skip(problem)
    if whole or records:
        yield records


def _read(reading: Iterator[Record], limit: int | None = None) -> list[Record]:
    """The next ``limit`` records (all of them with None) of an answer being read (:func:`iter_efetch`)."""
    return list(itertools.islice(reading, limit))


def _await_page(pending: Future) -> Response | None:
    """The prefetched efetch answer, None after the last (its error, if it failed, is raised here: in order)."""
    return pending.result()


def _common_params(ctx: CrawlContext) -> dict[str, str]:
    params = {"tool": ctx.settings.get("tool", "litmon"), "email": ctx.contact_email}
    key_env = ctx.settings.get("api_key_env")
    if key_env and os.environ.get(key_env):
        params["api_key"] = os.environ[key_env]
    return params


def _esearch(ctx, params, query, datetype, window_from: dt.date, window_to: dt.date) -> dict:
    data = {
        **params,
        "db": "pubmed",
        "term": query,
        "datetype": datetype,
        "mindate": window_from.strftime("%Y/%m/%d"),
        "maxdate": window_to.strftime("%Y/%m/%d"),
        "usehistory": "y",
        "retmax": "0",
        "retmode": "json",
    }
    response = ctx.http.post(ctx.base_url + "esearch.fcgi", source=ctx.name, data=data)
    payload = response.json()
    return parse_esearch(payload, ctx.name, url=response.url)


def parse_esearch(payload: dict, source: str = NAME, url: str | None = None, require_history: bool = True) -> dict:
    if isinstance(payload, dict) and "error" in payload and "esearchresult" not in payload:
        raise SourceError(source, f"esearch error: {payload['error']}", hint="the API key and request rate", url=url)
    result = payload.get("esearchresult") if isinstance(payload, dict) else None
    if not isinstance(result, dict):
        raise SourceError(source, "esearch answer has no 'esearchresult'", hint="the base_url in the config", url=url)
    if "ERROR" in result:
        raise SourceError(source, f"esearch error: {result['ERROR']}", hint="the query in [sources.pubmed]", url=url)
    try:
        count = int(result.get("count", "0"))
    except ValueError:
        raise SourceError(source, f"esearch count is not a number: {result.get('count')!r}", url=url) from None
    if require_history and count and not (result.get("webenv") and result.get("querykey")):
        raise SourceError(source, "esearch answer lacks WebEnv/query_key although usehistory=y was sent", url=url)
    return {
        "count": count,
        "webenv": result.get("webenv"),
        "query_key": result.get("querykey"),
        "translation": result.get("querytranslation"),
    }


def _search_windows(ctx, params, query, datetype, window_from, window_to):
    """Yield (from, to, search) windows whose hit count fits under the esearch cap."""
    search = _esearch(ctx, params, query, datetype, window_from, window_to)
    if search["count"] > ESEARCH_CAP and window_from < window_to:
        middle = window_from + (window_to - window_from) // 2
        yield from _search_windows(ctx, params, query, datetype, window_from, middle)
        yield from _search_windows(ctx, params, query, datetype, middle + dt.timedelta(days=1), window_to)
        return
    if search["count"] > ESEARCH_CAP:
        ctx.warn(f"{search['count']} records created on {window_from} exceed PubMed's esearch cap; only {ESEARCH_CAP} fetched")
    ctx.log_query(query, window_from, window_to, hits=search["count"], datetype=datetype)
    yield window_from, window_to, search


def _efetch(ctx, params, search, start, batch_size) -> Response:
    response = ctx.http.get(
        ctx.base_url + "efetch.fcgi",
        source=ctx.name,
        params={
            **params,
            "db": "pubmed",
            "WebEnv": search["webenv"],
            "query_key": search["query_key"],
            "retstart": str(start),
            "retmax": str(min(batch_size, ESEARCH_CAP - start)),
            "retmode": "xml",
        },
    )
    return response


# --------------------------------------------------------------------------- parsing


def parse_file(body: bytes, filename: str) -> list[Record]:
    """Parse a recorded efetch answer (used by bench/parse_corpus.py)."""
    if filename.endswith(".json"):
        parse_esearch(decode_json(body, NAME, url=filename), require_history=False)
        return []
    return parse_efetch(body)


def parse_efetch(body: bytes | IO[bytes], source: str = NAME, problems: list[str] | None = None) -> list[Record]:
    """The articles of an efetch answer; one that cannot be identified or read (no ``<MedlineCitation>``, no PMID or
    no ``<Article>`` in its first one) is left out and described in ``problems`` (the crawl counts it as skipped),
    or raises a SourceError naming it when no list is given."""
    return list(iter_efetch(body, source, problems))


#: The children of <PubmedArticleSet> (PubMed's DTD): articles, book articles and deletions.
ARTICLE_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation")


def iter_efetch(body: bytes | IO[bytes], source: str = NAME, problems: list[str] | None = None) -> Iterator[Record]:
    """The records of an efetch answer, parsed a few hundred kilobytes at a time as the XML is read:
    the parser's memory does not grow with the answer. Malformed XML raises a SourceError where it is
    found (callers that save per answer take the whole list first: nothing of a broken answer is saved).

    The body is cut after an article's closing tag into runs of whole articles, and each run is parsed
    as a document of its own, with the answer's own beginning (XML declaration, DOCTYPE and the
    ``<PubmedArticleSet>`` start tag) before it: one lxml call per run builds its elements without a
    Python callback per element (lxml's iterparse costs about a third more). An answer this cannot
    read as it is (malformed, a closing tag inside a comment, articles deeper in the tree, another
    root) is read again from its start by lxml's iterparse, article by article, which gives the
    articles after those already read and the error where the XML breaks."""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    if not head.strip() and len(head) < HEAD_BYTES:
        raise SourceError(source, "empty efetch answer: expected XML", hint="whether the service is up")
    done = [0]  # articles read so far
    try:
        for article in _articles_in_runs(stream, head):
            done[0] += 1
            record = _article_record(article, done[0], source, problems)
            if record is not None:
                yield record
        return
    except _NotInRuns:
        pass
    stream.seek(0)
    yield from _iter_efetch_streaming(stream, head, source, problems, skip=done[0])


#: Bytes of efetch XML read and parsed at once (about 25 articles); the elements of one run are all
#: the parser holds.
RUN_BYTES = 256 * 1024
#: The start of the first article: what comes before it (declaration, DOCTYPE, root start tag) begins every run.
_FIRST_ARTICLE = re.compile(rb"<(?:PubmedArticle|PubmedBookArticle|DeleteCitation)[\s/>]")
_ARTICLE_ENDS = (b"</PubmedArticle>", b"</PubmedBookArticle>", b"</DeleteCitation>")
_ROOT_END = b"</PubmedArticleSet>"


class _NotInRuns(Exception):
    """The answer cannot be read in runs of whole articles (see :func:`iter_efetch`)."""


def _articles_in_runs(stream: IO[bytes], head: bytes) -> Iterator:
    """The article elements (children of the root of those tags) of an answer, run by run."""
    first = _FIRST_ARTICLE.search(head)
    if first is None:
        raise _NotInRuns()
    opening = head[: first.start()]
    parser = safe_parser()
    stream.seek(first.start())
    data = bytearray()  # what is read and not parsed yet (the bytes after the last article end: its start is dropped
    # in place); each run is copied once, into its document
    while True:
        block = stream.read(RUN_BYTES)
        if not block:  # the rest: the last articles, if any, and the end of the document
            with memoryview(data) as view:
                document = b"".join((opening, *_without_references(data, view, len(data))))
            yield from _run_articles(document, parser)
            return
        data += block
        cut = 0
        for end in _ARTICLE_ENDS:  # only after the last end found so far: each search stops there, not at the start
            at = data.rfind(end, cut)
            if at >= 0:
                cut = at + len(end)
        if cut == 0:
            if len(data) > 8 * RUN_BYTES:  # no article ends here: read it the other way
                raise _NotInRuns()
            continue
        with memoryview(data) as view:
            articles = _run_articles(b"".join((opening, *_without_references(data, view, cut), _ROOT_END)), parser)
        del data[:cut]
        yield from articles


#: A reference list, what litmon never reads of an article, and where one can be left out of a run's bytes (see
#: :func:`_without_references`).
_REFERENCES, _REFERENCES_END = b"<ReferenceList>", b"</ReferenceList>"
_REFERENCES_NAME = b"<ReferenceList"
#: What may follow a reference list (white space first): another one, or the end of the element holding them, and
#: what ends that element's own parent (a ``<PubmedData>`` ends a ``<PubmedArticle>``; a ``<BookDocument>`` is followed
#: by a ``<PubmedBookData>`` or ends a ``<PubmedBookArticle>``).
_AFTER_REFERENCES = re.compile(
    rb"[ \t\r\n]*(?:(<ReferenceList>)|</PubmedData>[ \t\r\n]*</PubmedArticle>"
    rb"|</BookDocument>[ \t\r\n]*(?:<PubmedBookData>|</PubmedBookArticle>))"
)


def _without_references(data: bytearray, view: memoryview, stop: int) -> list:
    """The pieces of ``data[:stop]`` (whole articles; ``view`` is ``data``'s) without their reference lists, which litmon
    never reads: libxml2 then neither tokenises them nor builds and frees their elements (most of a recent article's
    bytes; −143k instructions per synthetic record, −309k on the corpus's PubMed answers: callgrind, session 19).

    Cut: the ``<ReferenceList>`` elements (tag without attributes) that end a ``<PubmedData>`` or ``<BookDocument>``
    (white space, then that element's end tag, after the last one, and what follows it there), where PubMed's DTD puts
    them: the element of that end tag holds them, an article's, and nothing litmon reads is inside one of those two but
    their other children, which the cut leaves as they are. Nothing is cut of a run with a list that is not so (nested in another, not closed, followed
    by anything else), nor of one that holds a comment, a CDATA section or a processing instruction (inside which a
    list's tags would be text, or would hide text between them). An answer well-formed outside its reference lists
    is read into the same records as before; XML broken inside a list that is cut is no longer seen (the answer is
    read, not refused as malformed)."""
    start = data.find(_REFERENCES, 0, stop)
    if start < 0 or _holds_markup(data, stop):
        return [view[:stop]]
    pieces = []
    kept = 0
    while start >= 0:
        opened = start  # the reference list being read
        while True:
            close = data.find(_REFERENCES_END, opened, stop)
            if close < 0 or data.find(_REFERENCES_NAME, opened + 1, close) >= 0:  # not closed, or another one inside
                return [view[:stop]]
            end = close + len(_REFERENCES_END)
            after = _AFTER_REFERENCES.match(data, end, stop)
            if after is None:  # not the last child of one of those elements
                return [view[:stop]]
            if after.start(1) < 0:  # the end of the element holding the lists
                break
            opened = after.start(1)  # the next list of the same element
        pieces.append(view[kept:start])
        kept = end
        start = data.find(_REFERENCES, end, stop)
    pieces.append(view[kept:stop])
    return pieces


def _holds_markup(data: bytearray, stop: int) -> bool:
    """Whether ``data[:stop]`` holds ``<!`` or ``<?`` (a comment, a CDATA section, a processing instruction), found from
    each ``!`` and ``?`` (``memchr``, few in an answer): a search of the two bytes stops at every ``<`` (~16k
    instructions per synthetic record each, callgrind)."""
    for mark in (b"!", b"?"):
        at = data.find(mark, 1, stop)
        while at >= 0:
            if data[at - 1] == 60:  # "<"
                return True
            at = data.find(mark, at + 1, stop)
    return False


def _run_articles(document: bytes, parser) -> list:
    try:
        root = etree.fromstring(document, parser=parser)
    except etree.XMLSyntaxError:
        raise _NotInRuns() from None
    if root.tag != "PubmedArticleSet":
        raise _NotInRuns()
    return [element for element in root if element.tag in ARTICLE_TAGS]


def _iter_efetch_streaming(stream: IO[bytes], head: bytes, source: str, problems: list[str] | None, skip: int = 0):
    """:func:`iter_efetch` with lxml's iterparse (the first ``skip`` articles passed over)."""
    events = iterparse_safe(stream, events=("start", "end"), tag=("PubmedArticleSet", *ARTICLE_TAGS))
    root = None
    index = 0
    try:
        for event, element in events:
            if root is None:
                if event != "start" or element.tag != "PubmedArticleSet" or element.getparent() is not None:
                    raise _not_an_article_set(source, element.getroottree().getroot().tag)
                root = element
                continue
            if event == "start" or element.getparent() is not root:
                continue
            index += 1
            record = _article_record(element, index, source, problems) if index > skip else None
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del root[0]
            if record is not None:
                yield record
    except etree.XMLSyntaxError as exc:
        raise xml_error(head, source, "efetch answer", exc) from None
    if root is None:
        raise _not_an_article_set(source, events.root.tag if events.root is not None else "nothing")


def _not_an_article_set(source: str, tag: str) -> SourceError:
    return SourceError(
        source,
        f"efetch answer is <{tag}>, expected <PubmedArticleSet>",
        hint="that efetch is called with db=pubmed and retmode=xml",
    )


def _article_record(article, index: int, source: str, problems: list[str] | None) -> Record | None:
    tag = article.tag
    if tag == "DeleteCitation":
        return None
    if tag == "PubmedArticle":
        if _has_pmid_and_article(article):
            return parse_article(article, source)
        problem = _article_problem(article, index, "MedlineCitation", "Article")
    else:
        problem = _article_problem(article, index, "BookDocument", None)
    if problem:
        if problems is None:
            raise SourceError(source, problem, hint="whether the service is up; it is retried on the next run")
        problems.append(problem)
        return None
    if tag == "PubmedArticle":
        return parse_article(article, source)
    return parse_book_article(article, source)


def _article_problem(article, index: int, citation_tag: str, article_tag: str | None) -> str | None:
    """Why :func:`parse_article` (or :func:`parse_book_article`) cannot read an article, from what it reads: the
    first ``<MedlineCitation>`` (``<BookDocument>``), its first ``<PMID>`` (with text) and its first ``<Article>``;
    None when it can. An article outside PubMed's DTD this way is left out and reported like one without a PMID,
    whatever a later ``<MedlineCitation>`` holds."""
    citations = [child for child in article if child.tag == citation_tag]
    if not citations:
        return f"article #{index} of the efetch answer has no <{citation_tag}> element"
    citation = citations[0]
    where = f" in the first of its {len(citations)} <{citation_tag}> elements" if len(citations) > 1 else ""
    pmid = _first_child(citation, "PMID")
    text = ((pmid.text or "") if pmid is not None else "").strip()
    if not text:
        return f"article #{index} of the efetch answer has no PMID{where}"
    if article_tag is not None and _first_child(citation, article_tag) is None:
        return f"article #{index} of the efetch answer (PMID {text}) has no <{article_tag}> element{where}"
    return None


def _has_pmid_and_article(article) -> bool:
    """Whether the first ``<MedlineCitation>`` of a ``<PubmedArticle>`` has a ``<PMID>`` with text (the first one)
    and then an ``<Article>`` (most articles): then :func:`_article_problem`'s checks would find nothing, and are
    not made."""
    citation = _first_child(article, "MedlineCitation")
    if citation is None:
        return False
    pmid = None
    for child in citation:
        tag = child.tag
        if tag == "PMID":
            if pmid is None:
                pmid = child
        elif tag == "Article":
            return pmid is not None and bool((pmid.text or "").strip())
    return False


def _first_child(element, tag: str):
    """``element.find(tag)`` for a plain tag: its first child of that tag (None without one)."""
    for child in element:
        if child.tag == tag:
            return child
    return None


def parse_article(article, source: str = NAME) -> Record:
    """One ``<PubmedArticle>`` as a Record, read in one pass over the elements litmon keeps (each
    element's children once, the reference list never): where PubMed's DTD allows an element more
    than once, the first one counts for a single value and every one for a list, in document order."""
    citation = _first_child(article, "MedlineCitation")
    if citation is None:  # the error that looking up its <Article> in no <MedlineCitation> raised
        raise AttributeError("'NoneType' object has no attribute 'find'")
    cited = _read_citation(citation)
    found = _read_article(cited["article"])
    data = _read_pubmed_data(article)
    pmid_element = cited["pmid"]
    pmid = ((pmid_element.text or "") if pmid_element is not None else "").strip()
    types = found["types"]
    kinds = {t.lower() for t in types}
    record = Record(
        source=source,
        source_id=pmid,
        record_type="notice" if kinds & NOTICE_TYPES else "preprint" if "preprint" in kinds else "article",
        title=_title(found.get("title"), found.get("vernacular")),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
    )
    if not record.title:
        record.missing.append("title")
    record.add_id("pmid", pmid)
    for scheme, value in data["ids"]:
        record.add_id(scheme, value)
    for value in found["elocation_dois"]:
        if ("doi", value) not in data["ids"]:  # else the same text as an ArticleId's (most are): added already
            record.add_id("doi", value)
    record.abstract_sections = found["sections"]
    record.abstract = abstracts.flatten(record.abstract_sections)
    record.authors, record.structured_authors = _people(found["people"])
    record.journal = found.get("journal") or None
    record.language = found.get("language")
    record.publication_types = types
    record.mesh_terms = cited["mesh"]
    record.keywords = cited["keywords"]
    record.published_on = earliest_date(_date_of(found.get("pub_date")), _date_of(found.get("article_date")))
    record.entered_on = _date_of(data.get("entrez")) or _date_of(data.get("pubmed"))
    record.updated_on = _date_of(cited.get("revised"))
    for bank in found["banks"]:
        for number in bank.findall("AccessionNumberList/AccessionNumber"):
            for scheme, value in ids.find_trial_ids(number.text):
                record.add_link("registered_as", scheme, value, note=f"DataBankList {bank.findtext('DataBankName')}")
    for scheme, value in ids.find_trial_ids(record.abstract):
        record.add_link("registered_as", scheme, value, note="abstract")
    unresolved = _add_comments_corrections(record, cited["comments"])
    if unresolved:
        record.extra["unresolved_comments_corrections"] = unresolved
    record.extra.update(
        {
            "status": citation.get("Status"),
            "journal_abbreviation": found.get("journal_abbreviation"),
            "issn": found.get("issn"),
            "volume": found.get("volume"),
            "issue": found.get("issue"),
            "pages": found.get("pages"),
            "publication_status": data.get("publication_status"),
            "pmid_version": pmid_element.get("Version"),
        }
    )
    return record


#: The ``<DescriptorName>`` children of a ``<MeshHeadingList>``'s ``<MeshHeading>`` children, in document order: one
#: call in C (a third fewer instructions than the same walk in Python, which makes each heading's qualifiers too).
_MESH_DESCRIPTORS = etree.XPath("MeshHeading/DescriptorName")


def _read_citation(citation) -> dict[str, Any]:
    """What litmon keeps of ``<MedlineCitation>``: its PMID, Article and DateRevised elements, MeSH descriptors,
    keywords and CommentsCorrections."""
    found: dict[str, Any] = {"pmid": None, "article": None, "mesh": [], "keywords": [], "comments": []}
    for child in citation:
        tag = child.tag
        if tag == "Article":
            if found["article"] is None:
                found["article"] = child
            continue
        if tag == "MeshHeadingList":
            found["mesh"] += [text_of(d) for d in _MESH_DESCRIPTORS(child)]
        elif tag == "KeywordList":
            found["keywords"] += [t for t in (text_of(k) for k in child if k.tag == "Keyword") if t]
        elif tag == "PMID":
            if found["pmid"] is None:
                found["pmid"] = child
        elif tag == "DateRevised":
            found.setdefault("revised", child)
        elif tag == "CommentsCorrectionsList":
            found["comments"] += [cc for cc in child if cc.tag == "CommentsCorrections"]
    return found


def _read_article(art) -> dict[str, Any]:
    """What litmon keeps of ``<Article>`` (or a book's ``<BookDocument>``): journal, title, pages, DOIs,
    abstract sections, authors' name fields, language, publication types, article date, data banks."""
    found: dict[str, Any] = {"elocation_dois": [], "sections": [], "people": [], "types": [], "banks": []}
    for child in art:
        tag = child.tag
        if tag == "Journal":
            _read_journal(child, found)
        elif tag == "AuthorList":
            found["people"] += [_name_fields(a) for a in child if a.tag == "Author" and a.get("ValidYN", "Y") != "N"]
        elif tag == "Abstract":
            found["sections"] += _abstract_sections(child)
        elif tag == "ArticleTitle":
            found.setdefault("title", child)
        elif tag == "ELocationID":
            if child.get("EIdType") == "doi" and child.get("ValidYN", "Y") == "Y":
                found["elocation_dois"].append(child.text)
        elif tag == "PublicationTypeList":
            found["types"] += [text_of(p) for p in child if p.tag == "PublicationType"]
        elif tag == "Pagination":
            for part in child:
                if part.tag == "MedlinePgn":
                    found.setdefault("pages", part.text or "")
        elif tag == "Language":
            found.setdefault("language", child.text or "")
        elif tag == "ArticleDate":
            found.setdefault("article_date", child)
        else:  # (most articles have no other child: no call)
            _read_other_child(child, tag, found)
    return found


def _read_other_child(child, tag: str, found: dict[str, Any]) -> None:
    """:func:`_read_article`'s reading of the children few articles have: a title in the article's own language, data
    banks (trial registrations)."""
    if tag == "VernacularTitle":
        found.setdefault("vernacular", child)
    elif tag == "DataBankList":
        found["banks"] += [bank for bank in child if bank.tag == "DataBank"]


def _read_journal(journal, found: dict[str, Any]) -> None:
    for child in journal:
        tag = child.tag
        if tag == "JournalIssue":
            for part in child:
                tag = part.tag
                if tag == "PubDate":
                    found.setdefault("pub_date", part)
                elif tag == "Volume":
                    found.setdefault("volume", part.text or "")
                elif tag == "Issue":
                    found.setdefault("issue", part.text or "")
        elif tag == "Title":
            found.setdefault("journal", text_of(child))
        elif tag == "ISOAbbreviation":
            found.setdefault("journal_abbreviation", child.text or "")
        elif tag == "ISSN":
            found.setdefault("issn", child.text or "")


def _read_pubmed_data(article, data_tag: str = "PubmedData") -> dict[str, Any]:
    """What litmon keeps of ``<PubmedData>`` (or ``<PubmedBookData>``): the DOI and PMCID, the first
    ``entrez`` and ``pubmed`` history dates, the publication status (the reference list is skipped)."""
    found: dict[str, Any] = {"ids": []}
    for data in article:
        if data.tag != data_tag:
            continue
        for child in data:
            tag = child.tag
            if tag == "History":
                for node in child:
                    if node.tag == "PubMedPubDate":
                        status = node.get("PubStatus")
                        if status == "entrez" or status == "pubmed":
                            found.setdefault(status, node)
            elif tag == "ArticleIdList":
                for aid in child:
                    if aid.tag == "ArticleId":
                        scheme = _ARTICLE_ID_SCHEMES.get(aid.get("IdType"))
                        if scheme:
                            found["ids"].append((scheme, aid.text))
            elif tag == "PublicationStatus":
                found.setdefault("publication_status", child.text or "")
    return found


#: ArticleId IdType -> identifier scheme (the work's own identifiers litmon keeps)
_ARTICLE_ID_SCHEMES = {"doi": "doi", "pmc": "pmcid"}


def _add_comments_corrections(record: Record, comments: list) -> list[dict]:
    """Links for the CommentsCorrections litmon follows (:data:`REF_TYPES`); those without a PMID are returned."""
    unresolved = []
    for cc in comments:
        relation = REF_TYPES.get(cc.get("RefType", ""))
        if not relation:
            continue
        ref_pmid = cc.findtext("PMID")
        if ref_pmid:
            record.add_link(relation, "pmid", ref_pmid, note=text_of(cc.find("RefSource")) or None)
        else:
            unresolved.append({"relation": relation, "ref_source": text_of(cc.find("RefSource"))})
    return unresolved


def parse_book_article(article, source: str = NAME) -> Record:
    doc = article.find("BookDocument")
    pmid = doc.findtext("PMID", "").strip()
    title = text_of(doc.find("ArticleTitle")) or text_of(doc.find("Book/BookTitle"))
    record = Record(
        source=source,
        source_id=pmid,
        record_type="other",
        title=title,
        missing=[] if title else ["title"],
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
    )
    record.add_id("pmid", pmid)
    for aid in doc.findall("ArticleIdList/ArticleId"):
        if aid.get("IdType") == "doi":
            record.add_id("doi", aid.text)
    found = _read_article(doc)
    record.abstract_sections = found["sections"]
    record.abstract = abstracts.flatten(record.abstract_sections)
    record.authors, record.structured_authors = _people(found["people"])
    record.journal = text_of(doc.find("Book/BookTitle")) or None
    record.published_on = _date_of(doc.find("Book/PubDate"))
    record.entered_on = _date_of(_read_pubmed_data(article, "PubmedBookData").get("entrez"))
    record.publication_types = [text_of(p) for p in doc.findall("PublicationType")]
    return record


#: NLM brackets titles translated into English: "[Ketamine in depression]."
_BRACKETED_TITLE = re.compile(r"\[(.+)\]\.?")


def _title(title_element, vernacular_element) -> str:
    title = text_of(title_element)
    if not title:
        title = text_of(vernacular_element)
    if title.startswith("["):
        match = _BRACKETED_TITLE.fullmatch(title)
        if match:
            title = match.group(1)
    return title


def _abstract_sections(abstract) -> list[dict]:
    """The sections of an ``<Abstract>``: each ``AbstractText``, its ``Label`` and ``NlmCategory``
    (UNASSIGNED: from the label); empty ones left out. The same as :func:`abstracts.section` of each
    (the text is already folded by text_of), with each distinct heading read once."""
    found = []
    for node in abstract:
        if node.tag == "AbstractText":
            text = text_of(node)
            if text:
                label, category = _section_heading(node.get("Label"), node.get("NlmCategory"))
                found.append({"label": label, "category": category, "text": text})
    return found


@functools.lru_cache(maxsize=1024)
def _section_heading(label: str | None, category: str | None) -> tuple[str | None, str | None]:
    """A section's label and category as :func:`abstracts.section` gives them (UNASSIGNED: from the label)."""
    part = abstracts.section(label, "-", None if category == "UNASSIGNED" else category)
    assert part is not None
    return part["label"], part["category"]


def _name_fields(author) -> tuple[str, ...]:
    """An ``<Author>``'s (LastName, ForeName, Initials, CollectiveName, Suffix): the text of the first
    element of each ("" when absent).

    The five tags' branches are written out on purpose: a loop over a tag -> field dict gave the same fields on 2,001
    authors but took 25-35 % longer (timeit, best of 5, alternated; ~4 authors per record)."""
    last = fore = initials = collective = suffix = None  # None: no such element yet
    for child in author:
        tag = child.tag
        if tag == "LastName":
            if last is None:
                last = _field_text(child)
        elif tag == "ForeName":
            if fore is None:
                fore = _field_text(child)
        elif tag == "Initials":
            if initials is None:
                initials = _field_text(child)
        elif tag == "CollectiveName":
            if collective is None:
                collective = _field_text(child)
        elif tag == "Suffix":
            if suffix is None:
                suffix = _field_text(child)
    return (last or "", fore or "", initials or "", collective or "", suffix or "")


def _field_text(element) -> str:
    """:func:`text_of` an element (its own text folded when it has no children, as most fields)."""
    if len(element):  # mixed content
        return text_of(element)
    text = element.text
    if not text:
        return ""
    # (a short text of letters and digits, as most surnames and initials are, is folded already: fold_space's first
    # test, without a call of it)
    return text if len(text) <= 32 and text.isalnum() else fold_space(text)


def _people(people: list[tuple[str, ...]]) -> tuple[list[str], list[Author]]:
    """The display names ("Family Given", a group's name) and the structured authors of these name fields
    (every record gets Author objects of its own: each a copy of the one :func:`_person` remembers, made without
    running ``Author.__init__`` again)."""
    names: list[str] = []
    authors: list[Author] = []
    for fields in people:
        name, person = _person(fields)
        if name:
            names.append(name)
        if person is not None:
            author = _new_object(Author)
            author.__dict__.update(person.__dict__)
            authors.append(author)
    return names, authors


_new_object = object.__new__


@functools.lru_cache(maxsize=4096)
def _person(fields: tuple[str, ...]) -> tuple[str | None, Author | None]:
    """A person's display name and the Author :func:`make_author` makes of their name fields (kept here to be copied:
    not to be changed or handed out). The same people recur across a topic's articles: the most recent few thousand
    are cleaned and parsed once."""
    last, fore, initials, collective, suffix = fields
    name: str | None = collective or (f"{last} {fore or initials}".strip() if last else None)
    return name, make_author(family=last, given=fore, initials=initials, collective=collective, suffix=suffix)


def _date_of(node) -> str | None:
    """A PubMed date element: Year/Month/Day (Month a number or a name; a Season instead) or MedlineDate
    (the text of the first element of each)."""
    if node is None:
        return None
    year = month = season = day = medline = None  # the text of the first element of each ("" when it has none)
    for child in node:
        tag = child.tag
        if tag == "Year":
            year = (child.text or "") if year is None else year
        elif tag == "Month":
            month = (child.text or "") if month is None else month
        elif tag == "Day":
            day = (child.text or "") if day is None else day
        elif tag == "MedlineDate":
            medline = (child.text or "") if medline is None else medline
        elif tag == "Season":
            season = (child.text or "") if season is None else season
    if medline:
        return _cached_date(medline)
    return _cached_date((year, month or season, day))


@functools.lru_cache(maxsize=1024)
def _cached_date(value: str | tuple) -> str | None:
    """:func:`parse_date`, once per distinct date (the articles of a page share many of their dates)."""
    return parse_date(value)
