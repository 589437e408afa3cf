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
    is saved.
Etiquette
    ``tool``, ``email`` (the configured contact address) and, when ``$<api_key_env>`` is set,
    ``api_key`` go with every request; requests are spaced 0.34 s apart (3/s), 0.1 s with a key
    (10/s). 429s and 5xx are retried by the shared HTTP client, honouring Retry-After.
Parsing
    Safe lxml (no entities, no DTD fetch), incremental: ``iterparse`` over the streamed body, each
    article freed once it is a Record, so memory does not grow with the answer. Mixed content (``<i>``, ``<sup>``, MathML) in titles
    and abstracts is flattened without losing text; structured abstracts keep their labels;
    ``MedlineDate`` ("2024 Jan-Feb") and ``Season`` give partial dates.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from lxml import etree

from crawler import abstracts
from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.http import Response
from crawler.records import Author, Record, make_author
from crawler.settings import SourceSettings, setting
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import decode_json, earliest_date, parse_date
from crawler.xmlsafe import HEAD_BYTES, iterparse_safe, text_of, xml_error

NAME = "pubmed"
CORPUS_DIR = "pubmed"
ESEARCH_CAP = 9999
DEFAULT_BATCH = 500


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
    for datetype, since in passes:
        for _window_from, _window_to, search in _search_windows(ctx, params, query, datetype, since, ctx.until):
            starts = range(0, min(search["count"], ESEARCH_CAP), batch_size)
            yield from _fetch_pages(ctx, params, search, starts, batch_size)


def _fetch_pages(ctx: CrawlContext, params, search, starts: range, batch_size: int) -> Iterator[list[Record]]:
    """The efetch pages of one search, in order, one batch each. While a page is parsed and saved, the
    next one is already being fetched in a background thread (through the same client: its per-host
    spacing, deadlines and stop request apply). A failure of that next page surfaces when the crawl
    asks for it, after the current page was saved; a page no longer wanted (the crawl stopped) is
    cancelled at once."""
    if not starts:
        return
    cancel = threading.Event()

    def fetch(start: int) -> Response:
        with ctx.http.cancellable(cancel):
            return _efetch(ctx, params, search, start, batch_size)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litmon-prefetch")
    try:
        pending = pool.submit(fetch, starts[0])
        for index in range(len(starts)):
            response = _await_page(pending)
            if index + 1 < len(starts):
                pending = pool.submit(fetch, starts[index + 1])
            problems: list[str] = []
            records = parse_efetch(response.stream(), source=ctx.name, problems=problems)
            response.close()
            for problem in problems:
                ctx.skip(problem)
            yield records
    finally:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _await_page(pending: Future) -> Response:
    """The prefetched efetch answer (its error, if it failed, is raised here: in order)."""
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
    """The articles of an efetch answer; one without a PMID cannot be identified: it is left out and
    described in ``problems`` (the crawl counts it as skipped), or raises when no list is given."""
    return list(iter_efetch(body, source, problems))


#: The children of <PubmedArticleSet> (PubMed's DTD): articles, book articles and deletions.
ARTICLE_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation")


def iter_efetch(body: bytes | IO[bytes], source: str = NAME, problems: list[str] | None = None) -> Iterator[Record]:
    """The records of an efetch answer, parsed one article at a time as the XML is read (lxml
    iterparse, with the safe parser's options): each article's elements are freed as soon as it is a
    Record, so the parser's memory does not grow with the answer. Malformed XML raises a SourceError
    where it is found (callers that save per answer take the whole list first: nothing of a broken
    answer is saved)."""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    if not head.strip() and len(head) < HEAD_BYTES:
        raise SourceError(source, "empty efetch answer: expected XML", hint="whether the service is up")
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
            record = _article_record(element, index, source, problems)
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
    if article.tag == "DeleteCitation":
        return None
    pmid = (article.findtext("MedlineCitation/PMID") or article.findtext("BookDocument/PMID") or "").strip()
    if not pmid:
        problem = f"article #{index} of the efetch answer has no PMID"
        if problems is None:
            raise SourceError(source, problem, hint="whether the service is up; it is retried on the next run")
        problems.append(problem)
        return None
    if article.tag == "PubmedArticle":
        return parse_article(article, source)
    return parse_book_article(article, source)


def parse_article(article, source: str = NAME) -> Record:
    citation = article.find("MedlineCitation")
    art = citation.find("Article")
    pmid = citation.findtext("PMID", "").strip()
    record = Record(
        source=source, source_id=pmid, record_type="article", title=_title(art), url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
    )
    if not record.title:
        record.missing.append("title")
    record.add_id("pmid", pmid)
    for aid in article.findall("PubmedData/ArticleIdList/ArticleId"):
        kind = aid.get("IdType")
        if kind == "doi":
            record.add_id("doi", aid.text)
        elif kind == "pmc":
            record.add_id("pmcid", aid.text)
    for loc in art.findall("ELocationID"):
        if loc.get("EIdType") == "doi" and loc.get("ValidYN", "Y") == "Y":
            record.add_id("doi", loc.text)
    record.abstract_sections = _abstract_sections(art)
    record.abstract = abstracts.flatten(record.abstract_sections)
    people = _author_fields(art)
    record.authors = _authors(people)
    record.structured_authors = _structured_authors(people)
    record.journal = text_of(art.find("Journal/Title")) or None
    record.language = art.findtext("Language")
    record.publication_types = [text_of(p) for p in art.findall("PublicationTypeList/PublicationType")]
    record.mesh_terms = [text_of(d) for d in citation.findall("MeshHeadingList/MeshHeading/DescriptorName")]
    record.keywords = [text_of(k) for k in citation.findall("KeywordList/Keyword") if text_of(k)]
    record.published_on = _publication_date(art)
    record.entered_on = _history_date(article, "entrez") or _history_date(article, "pubmed")
    record.updated_on = _date_element(citation.find("DateRevised"))
    types = {t.lower() for t in record.publication_types}
    if types & NOTICE_TYPES:
        record.record_type = "notice"
    elif "preprint" in types:
        record.record_type = "preprint"
    for bank in art.findall("DataBankList/DataBank"):
        for number in bank.findall("AccessionNumberList/AccessionNumber"):
            for scheme, value in ids.find_trial_ids(number.text):
                record.add_link("registered_as", scheme, value, note=f"DataBankList {bank.findtext('DataBankName')}")
    for scheme, value in ids.find_trial_ids(record.abstract):
        record.add_link("registered_as", scheme, value, note="abstract")
    unresolved = []
    for cc in citation.findall("CommentsCorrectionsList/CommentsCorrections"):
        relation = REF_TYPES.get(cc.get("RefType", ""))
        if not relation:
            continue
        ref_pmid = cc.findtext("PMID")
        if ref_pmid:
            record.add_link(relation, "pmid", ref_pmid, note=text_of(cc.find("RefSource")) or None)
        else:
            unresolved.append({"relation": relation, "ref_source": text_of(cc.find("RefSource"))})
    if unresolved:
        record.extra["unresolved_comments_corrections"] = unresolved
    record.extra.update(
        {
            "status": citation.get("Status"),
            "journal_abbreviation": art.findtext("Journal/ISOAbbreviation"),
            "issn": art.findtext("Journal/ISSN"),
            "volume": art.findtext("Journal/JournalIssue/Volume"),
            "issue": art.findtext("Journal/JournalIssue/Issue"),
            "pages": art.findtext("Pagination/MedlinePgn"),
            "publication_status": article.findtext("PubmedData/PublicationStatus"),
            "pmid_version": citation.find("PMID").get("Version"),
        }
    )
    return record


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
    record.abstract_sections = _abstract_sections(doc)
    record.abstract = abstracts.flatten(record.abstract_sections)
    people = _author_fields(doc)
    record.authors = _authors(people)
    record.structured_authors = _structured_authors(people)
    record.journal = text_of(doc.find("Book/BookTitle")) or None
    record.published_on = _date_element(doc.find("Book/PubDate"))
    record.entered_on = _history_date(article, "entrez", "PubmedBookData")
    record.publication_types = [text_of(p) for p in doc.findall("PublicationType")]
    return record


def _title(art) -> str:
    title = text_of(art.find("ArticleTitle"))
    if not title:
        title = text_of(art.find("VernacularTitle"))
    # NLM brackets titles translated into English: "[Ketamine in depression]."
    match = re.fullmatch(r"\[(.+)\]\.?", title)
    if match:
        title = match.group(1)
    return title


def _abstract_sections(art) -> list[dict]:
    """``AbstractText`` elements: their ``Label`` and ``NlmCategory`` (UNASSIGNED: from the label)."""
    found = []
    for node in art.findall("Abstract/AbstractText"):
        category = node.get("NlmCategory")
        found.append(abstracts.section(node.get("Label"), text_of(node), None if category == "UNASSIGNED" else category))
    return [s for s in found if s]


_AUTHOR_FIELDS = ("LastName", "ForeName", "Initials", "CollectiveName", "Suffix")


def _author_fields(art) -> list[dict[str, str]]:
    """Each valid author's name fields (text of the first element of each tag), read once for both
    the display names and the structured authors."""
    people = []
    for author in art.iterfind("AuthorList/Author"):
        if author.get("ValidYN", "Y") == "N":
            continue
        fields: dict[str, str] = {}
        for child in author:
            if child.tag in _AUTHOR_FIELDS and child.tag not in fields:
                fields[child.tag] = text_of(child)
        people.append(fields)
    return people


def _authors(people: list[dict[str, str]]) -> list[str]:
    names = []
    for fields in people:
        collective = fields.get("CollectiveName", "")
        if collective:
            names.append(collective)
            continue
        last = fields.get("LastName", "")
        first = fields.get("ForeName", "") or fields.get("Initials", "")
        if last:
            names.append(f"{last} {first}".strip())
    return names


def _structured_authors(people: list[dict[str, str]]) -> list[Author]:
    """``LastName``/``ForeName``/``Initials``/``Suffix`` or ``CollectiveName`` of each valid author."""
    found = []
    for fields in people:
        person = make_author(
            family=fields.get("LastName", ""),
            given=fields.get("ForeName", ""),
            initials=fields.get("Initials", ""),
            collective=fields.get("CollectiveName", ""),
            suffix=fields.get("Suffix", ""),
        )
        if person:
            found.append(person)
    return found


def _publication_date(art) -> str | None:
    """The earlier of the electronic date (ArticleDate) and the issue date (PubDate)."""
    return earliest_date(_date_element(art.find("Journal/JournalIssue/PubDate")), _date_element(art.find("ArticleDate")))


def _date_element(node) -> str | None:
    """A PubMed date element: Year/Month/Day (Month a number or a name; a Season instead) or MedlineDate."""
    if node is None:
        return None
    medline = node.findtext("MedlineDate")
    if medline:
        return parse_date(medline)
    return parse_date((node.findtext("Year"), node.findtext("Month") or node.findtext("Season"), node.findtext("Day")))


def _history_date(article, status: str, data_tag: str = "PubmedData") -> str | None:
    for node in article.findall(f"{data_tag}/History/PubMedPubDate"):
        if node.get("PubStatus") == status:
            return _date_element(node)
    return None


# --------------------------------------------------------------------------- settings ([sources.pubmed])


@dataclass
class Settings(SourceSettings):
    """``[sources.pubmed]``: checked when the config is loaded (crawler.settings)."""

    query: str = setting("", "PubMed query syntax; the crawler adds the date window (crdt for new records, mdat for changes).")
    api_key_env: str = setting(
        "NCBI_API_KEY", "Name of the environment variable holding an NCBI API key (10 requests/s instead of 3)."
    )
    tool: str = setting("litmon", "E-utilities `tool` parameter (no spaces).")
    batch_size: int = setting(DEFAULT_BATCH, "PMIDs per efetch request.", minimum=1, maximum=10000)
