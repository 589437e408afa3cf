"""Europe PMC through its REST ``search`` endpoint (JSON, ``resultType=core``).

Europe PMC indexes all of PubMed (``SRC:MED``), PMC-only articles (``SRC:PMC``) and preprints
from bioRxiv, medRxiv, Research Square, SSRN… (``SRC:PPR``, ids ``PPR…``). For this monitor it
adds preprints, MeSH-less early records and Europe PMC's own preprint↔article links to PubMed.

Incremental strategy
    Pass 1 ("window"): ``(<query>) AND (FIRST_IDATE:[since TO until])``. ``FIRST_IDATE`` is the
    date a record first entered Europe PMC and never moves, so every record is seen once, when
    it appears, whatever its publication date says. We deliberately do *not* OR ``FIRST_PDATE``
    as some public crawlers do: a record published long ago but indexed late is already caught
    by its index date, while the OR would re-send every record a second time when its print
    issue date (often months after indexing, sometimes in the future) falls into a window –
    extra traffic for nothing new, since ``FIRST_PDATE`` does not move on revision either.
    Pass 2 ("recheck", every run whose window starts after ``crawl.backfill_from``):
    ``FIRST_IDATE`` does not move when a record is revised, so a retraction added later to an
    article already stored would be missed. The same query AND ``recheck_filter`` (default
    ``PUB_TYPE:"retracted publication"``) over ``backfill_from``..``until`` re-reads the few
    retracted works of the topic each run; unchanged ones are stored as "unchanged". Notices
    (retractions, errata, expressions of concern) are their own records and arrive through
    pass 1 when they mention the topic. Set ``recheck_filter = ""`` to switch pass 2 off.
Paging and caps
    ``cursorMark`` paging: ``*`` first, then ``nextCursorMark``, until it is absent, repeats a
    cursor already sent, or a page comes back empty. ``pageSize`` is ``page_size`` (max 1000,
    larger values are lowered). A query matching more than ``max_records`` (default 100,000)
    records fails before fetching anything: that is a mis-typed query, not a literature stream.
    One search-log entry per page chain, with Europe PMC's ``hitCount``.
Etiquette
    No published rate limit (a third-party guide claims 10 requests/s per IP, unverified):
    requests are spaced by the client default (``http.default_min_interval``) or by the
    source's ``min_interval``; the contact address goes out in the User-Agent and as the
    ``email`` parameter. 429/5xx are retried by the shared client, honouring Retry-After.
Parsing
    Titles and abstracts carry inline HTML (``<i>``, ``<sub>``, ``<h4>`` section labels) and
    bare ``<`` in statistics ("P < .001"): only well-formed tags are removed, ``<h4>`` labels
    become "Label: text" paragraphs. ``commentCorrectionList`` gives retraction, erratum,
    expression-of-concern, comment, update, republication and preprint links (MED→pmid,
    PPR→ppr, PMC→pmcid; a DOI in the reference text when there is no usable id); types we do
    not model are kept in ``extra["other_relations"]``. Trial numbers in title/abstract become
    ``registered_as`` links. ``published_on`` is the earliest of firstPublicationDate,
    electronicPublicationDate and firstIndexDate (Europe PMC's firstPublicationDate is often a
    print issue date months after the record appeared). ``parse_file`` also reads the lite
    result type and the XML format (same element names as the JSON keys); Dublin Core
    (``format=dc``) and ``resultType=idlist`` answers carry neither index dates nor links and
    are refused with a SourceError saying what to request instead.
Settings ([sources.europepmc])
    ``query`` (string, or a list OR-ed together), ``page_size``, ``min_interval``, and optional
    ``recheck_filter``, ``max_records``, ``synonym`` (true sends ``synonym=true``: MeSH expansion).
    ``ctx.state`` is not used: a cursor is only valid within one query, so nothing carries over.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from lxml import etree

from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.records import Author, Record, make_author
from crawler.records import parse_authors as parse_names
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import (
    STREAM_BATCH,
    JsonStream,
    batched,
    earliest_date,
    looks_like_html,
    parse_date,
    parse_int,
    strip_tags,
)
from crawler.sources.settings.europepmc import (
    DEFAULT_MAX_RECORDS,
    DEFAULT_PAGE_SIZE,
    DEFAULT_RECHECK_FILTER,
    MAX_PAGE_SIZE,
)
from crawler.sources.settings.europepmc import Settings as Settings  # the keys of its table, declared apart
from crawler.xmlsafe import parse_xml

NAME = "europepmc"
CORPUS_DIR = "europepmc"
ARTICLE_URL = "https://europepmc.org/article/{src}/{id}"

#: Europe PMC record source -> identifier scheme of its id
ID_SCHEMES = {"MED": "pmid", "PMC": "pmcid", "PPR": "ppr"}

#: commentCorrection type, lower-cased with everything but letters removed -> link relation
LINK_TYPES = {
    "retractionin": "retraction_in",
    "retractionof": "retraction_of",
    "partialretractionin": "retraction_in",
    "partialretractionof": "retraction_of",
    "erratumin": "erratum_in",
    "erratumfor": "erratum_for",
    "correctionin": "correction_in",
    "correctionfor": "correction_for",
    "expressionofconcernin": "expression_of_concern_in",
    "expressionofconcernfor": "expression_of_concern_for",
    "commentin": "comment_in",
    "commenton": "comment_on",
    "updatein": "update_in",
    "updateof": "update_of",
    "republishedin": "republished_in",
    "republishedfrom": "republished_from",
    "correctedandrepublishedin": "republished_in",
    "correctedandrepublishedfrom": "republished_from",
    "retractedandrepublishedin": "republished_in",
    "retractedandrepublishedfrom": "republished_from",
    "preprintin": "has_preprint",
    "preprintof": "preprint_of",
}

#: publication types of notices about another work (compared lower-cased)
NOTICE_TYPES = {
    "retraction of publication",
    "retraction notice",
    "retraction",
    "published erratum",
    "correction",
    "expression of concern",
    "expression-of-concern",
}

# A well-formed start/end tag: a name, then only name="value" attributes. "P < .001" and
# "x<y and y>z" do not match, so statistics survive the stripping.
#: XML elements whose content is text with inline markup, not structure
_MIXED_TEXT_TAGS = {"title", "abstractText"}


@dataclass
class SearchPage:
    """One parsed answer of the search endpoint."""

    hit_count: int | None
    next_cursor: str | None
    records: list[Record] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    result_count: int = 0
    #: the records not read yet, when the results are read one at a time from a stream
    pending: Iterator[Record] = field(default_factory=lambda: iter(()))


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    topic = build_topic_query(ctx.settings, ctx.name)
    page_size = build_page_size(ctx)
    seen: set[str] = set()
    window_query = build_window_query(topic, ctx.since, ctx.until)
    yield from fetch_chain(ctx, window_query, ctx.since, ctx.until, page_size, seen, "window")
    recheck = build_recheck_query(topic, ctx.settings, ctx.config.backfill_from, ctx.since, ctx.until)
    if recheck:
        yield from fetch_chain(ctx, recheck, ctx.config.backfill_from, ctx.until, page_size, seen, "recheck")


def build_topic_query(settings: dict[str, Any], source: str = NAME) -> str:
    query = settings.get("query")
    if isinstance(query, list):
        parts = [q.strip() for q in query if isinstance(q, str) and q.strip()]
        query = " OR ".join(f"({q})" for q in parts)
    if not isinstance(query, str) or not query.strip():
        raise SourceError(source, "no query configured", hint="[sources.europepmc] query in the config")
    return query.strip()


def build_window_query(topic: str, since: dt.date, until: dt.date) -> str:
    return f"({topic}) AND (FIRST_IDATE:[{since.isoformat()} TO {until.isoformat()}])"


def build_recheck_query(
    topic: str, settings: dict[str, Any], backfill_from: dt.date, since: dt.date, until: dt.date
) -> str | None:
    """The second pass, or None when it is off or the window already covers the tracked range."""
    recheck = settings.get("recheck_filter", DEFAULT_RECHECK_FILTER)
    if not isinstance(recheck, str) or not recheck.strip() or since <= backfill_from:
        return None
    return f"({topic}) AND ({recheck.strip()}) AND (FIRST_IDATE:[{backfill_from.isoformat()} TO {until.isoformat()}])"


def build_page_size(ctx: CrawlContext) -> int:
    size = int(ctx.settings.get("page_size", DEFAULT_PAGE_SIZE))
    if size > MAX_PAGE_SIZE:
        ctx.warn(f"page_size {size} is above Europe PMC's maximum; using {MAX_PAGE_SIZE}")
        size = MAX_PAGE_SIZE
    return max(1, size)


def build_params(ctx: CrawlContext, query: str, cursor: str, page_size: int) -> dict[str, str]:
    params = {
        "query": query,
        "resultType": "core",
        "format": "json",
        "pageSize": str(page_size),
        "cursorMark": cursor,
        "email": ctx.contact_email,
    }
    if ctx.settings.get("synonym"):
        params["synonym"] = "true"
    return params


def fetch_chain(
    ctx: CrawlContext, query: str, window_from: dt.date, window_to: dt.date, page_size: int, seen: set[str], label: str
) -> Iterator[list[Record]]:
    """Follow one cursorMark chain, yielding each page's new records as one batch."""
    entry = ctx.log_query(
        query, window_from, window_to, None, **{"pass": label, "resultType": "core", "pageSize": page_size, "pages": 0}
    )
    max_records = int(ctx.settings.get("max_records", DEFAULT_MAX_RECORDS))
    cursor, sent = "*", set()
    while True:
        sent.add(cursor)
        response = ctx.http.get(ctx.base_url + "search", source=ctx.name, params=build_params(ctx, query, cursor, page_size))
        page = read_search_stream(response.stream(), ctx.name, url=response.url, content_type=response.content_type)
        entry.params["pages"] += 1
        if entry.hits is None:
            entry.hits = page.hit_count
            if page.hit_count is not None and page.hit_count > max_records:
                raise SourceError(
                    ctx.name,
                    f"the {label} query matches {page.hit_count} records, more than max_records={max_records}",
                    hint="the query in [sources.europepmc] (or raise max_records)",
                    url=response.url,
                )
        # a large page is yielded in batches as its results are read (the whole answer was read and
        # checked first: no batch comes from a broken page)
        for records in batched(page.pending, STREAM_BATCH):
            batch = [r for r in records if r.source_id not in seen]
            seen.update(r.source_id for r in batch)
            if batch:
                yield batch
        for problem in page.skipped:
            ctx.skip(problem)
        if not page.result_count or not page.next_cursor or page.next_cursor in sent:
            return
        cursor = page.next_cursor


# --------------------------------------------------------------------------- parsing: envelopes


def parse_file(body: bytes, filename: str) -> list[Record]:
    """Parse a recorded search answer: JSON (core or lite) or XML (core or lite)."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"<":
        return parse_search_xml(body).records
    return parse_search(body)


def parse_search(body: bytes, source: str = NAME) -> list[Record]:
    """Records of a JSON search answer (``format=json``)."""
    return parse_search_stream(body, source).records


def parse_search_stream(
    body: bytes | IO[bytes], source: str = NAME, url: str | None = None, content_type: str | None = None
) -> SearchPage:
    """A JSON search answer read item by item (a large page never exists as one parsed tree)."""
    page = read_search_stream(body, source, url=url, content_type=content_type)
    page.records = list(page.pending)
    return page


def read_search_stream(
    body: bytes | IO[bytes], source: str = NAME, url: str | None = None, content_type: str | None = None
) -> SearchPage:
    """Like :func:`parse_search_stream`, but the records are left in ``page.pending``, to be read one at a
    time (``page.records`` stays empty; counts and skipped results are complete once it is exhausted)."""
    stream = JsonStream(
        body, source, "resultList.result", url=url, hint="the base_url and whether the service is up", content_type=content_type
    )
    data = stream.envelope
    result_list = data.get("resultList") if isinstance(data, dict) else None
    streamed = isinstance(result_list, dict) and isinstance(result_list.get("result"), list)
    page = parse_search_page(data, source, url=url, items=stream.items() if streamed else None)
    if not streamed:  # the results were in the envelope (a single object, or none): already parsed
        page.pending, page.records = iter(page.records), []
    return page


def parse_search_xml(body: bytes, source: str = NAME) -> SearchPage:
    """An XML search answer (``format=xml``): converted to the JSON shape, then parsed alike."""
    if looks_like_html(body):
        snippet = " ".join(body[:100].decode("utf-8", "replace").split())
        raise SourceError(
            source, f"search answer is an HTML page: {snippet!r}", hint="the base_url and whether the service is up"
        )
    root = parse_xml(body, source, "search answer")
    if root.find("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF") is not None:
        raise SourceError(
            source,
            "search answer is Dublin Core (format=dc), which has no index dates or correction links",
            hint="request format=json (or xml) with resultType=core",
        )
    if _local(root.tag) != "responseWrapper":
        raise SourceError(
            source, f"search answer is <{_local(root.tag)}>, expected <responseWrapper>", hint="the base_url in the config"
        )
    return parse_search_page(xml_to_data(root), source)


def xml_to_data(element) -> Any:
    """Europe PMC XML -> the structure of its JSON: ``<xList><x/>…`` becomes ``{"x": [...]}``."""
    tag = _local(element.tag)
    children = [c for c in element if isinstance(c.tag, str)]
    if tag in _MIXED_TEXT_TAGS:
        return _inner_markup(element)
    if not children:
        return (element.text or "").strip()
    data: dict[str, Any] = {}
    for child in children:
        value = xml_to_data(child)
        if tag.endswith("List"):
            data.setdefault(_local(child.tag), []).append(value)
        else:
            data[_local(child.tag)] = value
    return data


def _inner_markup(element) -> str:
    parts = [element.text or ""]
    for child in element:
        parts.append(etree.tostring(child, encoding="unicode", with_tail=True))
    return "".join(parts)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_search_page(data: Any, source: str = NAME, url: str | None = None, items: Iterable[Any] | None = None) -> SearchPage:
    """The hit count, next cursor and records of one decoded search answer (its results from ``items``
    when they are read one at a time from a stream)."""
    if not isinstance(data, dict):
        raise SourceError(
            source,
            f"search answer is a JSON {type(data).__name__}, expected an object",
            url=url,
            hint="the base_url in the config",
        )
    result_list = data.get("resultList")
    if not isinstance(result_list, dict):
        message = data.get("errMsg") or data.get("message") or data.get("error")
        detail = f": {message}" if message else f" (keys: {', '.join(sorted(data)) or 'none'})"
        raise SourceError(
            source, f"search answer has no resultList{detail}", url=url, hint="the query in [sources.europepmc] and the base_url"
        )
    results = _as_list(result_list.get("result")) if items is None else items
    request: dict[str, Any] = data["request"] if isinstance(data.get("request"), dict) else {}
    idlist = str(request.get("resultType", "")).lower() == "idlist"
    page = SearchPage(
        hit_count=parse_int(data.get("hitCount")),
        next_cursor=(str(data.get("nextCursorMark") or "") or None),
    )
    page.pending = parse_results(page, results, idlist, source, url)
    if items is None:
        page.records = list(page.pending)
    return page


def parse_results(page: SearchPage, results: Iterable[Any], idlist: bool, source: str, url: str | None) -> Iterator[Record]:
    """The page's records as its results are read, counting them and noting the skipped ones on ``page``."""
    for item in results:
        if idlist:
            raise SourceError(
                source,
                "search answer is resultType=idlist, which carries no titles or dates",
                url=url,
                hint="request resultType=core",
            )
        page.result_count += 1
        if not isinstance(item, dict):
            page.skipped.append(f"search result of type {type(item).__name__} skipped")
            continue
        record = parse_result(item, source)
        if record is None:
            page.skipped.append(f"result {item.get('source')}/{item.get('id')} has no source, id or title; skipped")
        else:
            yield record


# --------------------------------------------------------------------------- parsing: one result


def parse_result(item: dict[str, Any], source: str = NAME) -> Record | None:
    """One ``resultList.result`` entry (core or lite) as a Record; None if it has no id or title."""
    src = str(item.get("source") or "").strip().upper()
    ext_id = str(item.get("id") or "").strip()
    title = parse_title(item.get("title"))
    if not src or not ext_id or not title:
        return None
    pub_types = parse_pub_types(item)
    record = Record(
        source=source,
        source_id=f"{src}/{ext_id}",
        record_type=classify_record(src, pub_types, item),
        title=title,
        url=ARTICLE_URL.format(src=src, id=ext_id),
        abstract=clean_html(item.get("abstractText"), paragraphs=True) or None,
        authors=parse_authors(item),
        structured_authors=parse_structured_authors(item),
        journal=parse_journal(item, src),
        published_on=parse_published_on(item),
        entered_on=parse_date(item.get("firstIndexDate")),
        updated_on=parse_date(item.get("dateOfRevision")),
        publication_types=pub_types,
        mesh_terms=_unique(
            _text(h.get("descriptorName")) for h in _items(item, "meshHeadingList", "meshHeading") if isinstance(h, dict)
        ),
        keywords=_unique(_text(k) for k in _items(item, "keywordList", "keyword")),
        language=_text(item.get("language")) or None,
        version=_text(item.get("versionNumber")) or None,
    )
    add_identifiers(record, item, src, ext_id)
    other = add_relation_links(record, item)
    for scheme, value in ids.find_trial_ids(title):
        record.add_link("registered_as", scheme, value, note="title")
    for scheme, value in ids.find_trial_ids(record.abstract):
        record.add_link("registered_as", scheme, value, note="abstract")
    record.extra = build_extra(item, src, other)
    return record


def parse_title(value: Any) -> str:
    """The title without HTML; NLM's brackets around translated titles ("[Ketamine …].") removed."""
    title = clean_html(value)
    match = re.fullmatch(r"\[(.+)\]\.?", title)
    return match.group(1) if match else title


def classify_record(src: str, pub_types: list[str], item: dict[str, Any]) -> str:
    types = {t.lower() for t in pub_types}
    if src == "PPR":
        return "preprint"
    if types & NOTICE_TYPES:
        return "notice"
    if "preprint" in types:
        return "preprint"
    has_journal = bool(item.get("journalInfo") or item.get("journalTitle"))
    if not has_journal and (item.get("bookOrReportDetails") or "book" in types):
        return "other"
    return "article"


def add_identifiers(record: Record, item: dict[str, Any], src: str, ext_id: str) -> None:
    """The work's own ids. A PPR record's DOI is the preprint's own (never the journal's)."""
    scheme = ID_SCHEMES.get(src)
    if scheme:
        record.add_id(scheme, ext_id)
    record.add_id("pmid", item.get("pmid"))
    record.add_id("pmcid", item.get("pmcid"))
    record.add_id("doi", item.get("doi"))


def add_relation_links(record: Record, item: dict[str, Any]) -> list[dict[str, Any]]:
    """Links from ``commentCorrectionList``; returns the entries that could not be modelled."""
    other = []
    for entry in _items(item, "commentCorrectionList", "commentCorrection"):
        if not isinstance(entry, dict):
            continue
        label = _text(entry.get("type"))
        relation = LINK_TYPES.get(re.sub(r"[^a-z]", "", label.lower()))
        target = parse_link_target(entry)
        if relation is None or target is None:
            other.append({k: entry.get(k) for k in ("type", "id", "source", "reference") if entry.get(k) not in (None, "")})
            continue
        reference = _text(entry.get("reference"))
        record.add_link(relation, *target, note=f"{label}: {reference}" if reference else label)
    return other


def parse_link_target(entry: dict[str, Any]) -> tuple[str, str] | None:
    """(scheme, value) of the work a commentCorrection names: its id, else a DOI in its reference."""
    scheme = ID_SCHEMES.get(_text(entry.get("source")).upper())
    if scheme:
        value = ids.normalize(scheme, entry.get("id"))
        if value:
            return scheme, value
    dois = ids.find_dois(_text(entry.get("reference")))
    return ("doi", dois[0]) if dois else None


def parse_pub_types(item: dict[str, Any]) -> list[str]:
    """``pubTypeList.pubType`` (core) or the ``"a; b"`` string ``pubType`` (lite)."""
    values = _items(item, "pubTypeList", "pubType")
    if not values and item.get("pubType"):
        values = str(item["pubType"]).split(";")
    return _unique(_text(v) for v in values)


def parse_authors(item: dict[str, Any]) -> list[str]:
    names = []
    for author in _items(item, "authorList", "author"):
        if not isinstance(author, dict):
            continue
        name = _text(author.get("fullName")) or _text(author.get("collectiveName"))
        if not name:
            name = " ".join(p for p in (_text(author.get("lastName")), _text(author.get("initials"))) if p)
        if name:
            names.append(name)
    if names:
        return _unique(names)
    text = _text(item.get("authorString")).rstrip(".")
    return _unique(n.strip() for n in text.split(",")) if text else []


def parse_structured_authors(item: dict[str, Any]) -> list[Author]:
    """``authorList.author[]`` (lastName/firstName/initials or collectiveName); else ``authorString`` ("Anand A, Lee B")."""
    people = []
    for author in _items(item, "authorList", "author"):
        if not isinstance(author, dict):
            continue
        person = make_author(
            family=_text(author.get("lastName")),
            given=_text(author.get("firstName")),
            initials=_text(author.get("initials")),
            collective=_text(author.get("collectiveName")),
        )
        if person is None and _text(author.get("fullName")):
            person = parse_names([_text(author.get("fullName"))], order="family_first")[0]
        if person:
            people.append(person)
    if people:
        return people
    text = _text(item.get("authorString")).rstrip(".")
    return parse_names(_unique(n.strip() for n in text.split(",")), order="family_first") if text else []


def parse_journal(item: dict[str, Any], src: str) -> str | None:
    info: dict[str, Any] = item["journalInfo"] if isinstance(item.get("journalInfo"), dict) else {}
    journal: dict[str, Any] = info["journal"] if isinstance(info.get("journal"), dict) else {}
    title = _text(journal.get("title")) or _text(item.get("journalTitle"))
    if title:
        return title
    book: dict[str, Any] = item["bookOrReportDetails"] if isinstance(item.get("bookOrReportDetails"), dict) else {}
    if src == "PPR":
        return _text(book.get("publisher")) or None  # the preprint server, e.g. "medRxiv"
    return _text(book.get("comprisingTitle")) or _text(book.get("publisher")) or None


def parse_published_on(item: dict[str, Any]) -> str | None:
    """Earliest of first publication, electronic publication and first index date."""
    dates = [parse_date(item.get(k)) for k in ("firstPublicationDate", "electronicPublicationDate", "firstIndexDate")]
    return earliest_date(*dates) or parse_date(item.get("pubYear"))


def build_extra(item: dict[str, Any], src: str, other: list[dict[str, Any]]) -> dict[str, Any]:
    """Stable extra facts (no citation counts: they change daily and would mark records as updated)."""
    info: dict[str, Any] = item["journalInfo"] if isinstance(item.get("journalInfo"), dict) else {}
    journal: dict[str, Any] = info["journal"] if isinstance(info.get("journal"), dict) else {}
    extra = {
        "europepmc_source": src,
        "pub_year": _text(item.get("pubYear")) or None,
        "first_publication_date": parse_date(item.get("firstPublicationDate")),
        "electronic_publication_date": parse_date(item.get("electronicPublicationDate")),
        "print_publication_date": parse_date(info.get("printPublicationDate")),
        "journal_abbreviation": _text(journal.get("isoabbreviation")) or _text(journal.get("medlineAbbreviation")) or None,
        "issn": (_text(journal.get("issn")) or _text(journal.get("essn")) or _text(item.get("journalIssn")).strip("; ") or None),
        "volume": _text(info.get("volume")) or _text(item.get("journalVolume")) or None,
        "issue": _text(info.get("issue")) or _text(item.get("issue")) or None,
        "pages": _text(item.get("pageInfo")) or None,
        "publication_status": _text(item.get("publicationStatus")) or None,
        "other_relations": other or None,
        "open_access": True if _text(item.get("isOpenAccess")) == "Y" else None,
        "free_full_text_url": free_full_text_url(item),
    }
    return {k: v for k, v in extra.items() if v is not None}


def free_full_text_url(item: dict[str, Any]) -> str | None:
    """An open-access or free full-text location from ``fullTextUrlList`` (HTML before PDF), else None."""
    urls = [u for u in _items(item, "fullTextUrlList", "fullTextUrl") if isinstance(u, dict)]
    free = [u for u in urls if _text(u.get("availabilityCode")) in ("OA", "F") and _text(u.get("url")).startswith("https://")]
    free.sort(key=lambda u: _text(u.get("documentStyle")) != "html")
    return _text(free[0].get("url")) if free else None


# --------------------------------------------------------------------------- small helpers


def clean_html(value: Any, paragraphs: bool = False) -> str:
    """Inline HTML removed, entities decoded, whitespace folded; ``<h4>`` labels -> "Label: "."""
    return strip_tags(value, paragraphs=paragraphs, headings=True)


def _as_list(value: Any) -> list:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _items(item: dict[str, Any], container: str, key: str) -> list:
    wrapper = item.get(container)
    return _as_list(wrapper.get(key)) if isinstance(wrapper, dict) else []


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return " ".join(str(value).split())


def _unique(values) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
