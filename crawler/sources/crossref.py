"""Crossref REST API: journal articles and preprints (posted content), with Crossmark updates.

Endpoint: ``GET <base_url>works`` with ``query.bibliographic`` (settings ``query``), a ``filter`` of
date window and work types, ``rows`` (settings ``page_size``, at most 1000), ``cursor=*`` then the
answer's ``next-cursor``, ``select=`` (only the fields parsed here) and ``mailto=<contact_email>``
(the polite pool; the shared client also puts the address in the User-Agent).

Incremental strategy
    Two passes over the window ``ctx.since``..``ctx.until`` (inclusive dates):

    1. ``from-created-date``/``until-created-date`` — works first deposited in the window;
    2. ``from-update-date``/``until-update-date`` — works whose metadata the member changed in the
       window: retractions, corrections and ``updated-by`` entries deposited (or merged in from
       Retraction Watch) after the article itself. Skipped on a source's first run, where it would
       mostly repeat pass 1 (a work's update date is never before its creation date).

    ``from-index-date`` is deliberately not used: it moves on every re-index (citation counts) and
    returns several times more works. Long windows (the first backfill) are cut into slices of
    ``slice_days`` days (default 365) so that each slice gets its own page budget. A work seen twice
    in one run (both passes) is yielded once. Nothing is kept in ``ctx.state``: cursors expire after
    five minutes, so an interrupted crawl simply redoes its window (the watermark does not move).

Paging and caps
    Crossref ranks ``query.bibliographic`` by relevance over *any* word instead of filtering, so a
    query matches a large part of the literature and paging to the end is never an option. Every
    item is filtered locally with ``ctx.matches_topic`` (title, abstract, container title, subjects,
    group title), results keep the default relevance order, and a chain of pages stops at the first
    of: ``max_pages`` pages (a warning when that page still held matches: raise ``max_pages`` or
    tighten the query), a page without any matching item, a page with fewer than ``rows`` items, or
    no ``next-cursor``. Each chain (pass × slice) is one ``source_queries`` row: ``hits`` is the
    number of items kept; ``params`` holds the filter, pages, items read, items kept, Crossref's
    ``total-results`` and why paging stopped.

Etiquette
    Since December 2025 Crossref allows 3 requests/s (3 concurrent) for list queries in the polite
    pool — requests that carry a contact address (``mailto=``) — and 1 request/s (1 concurrent) in
    the public pool; a live answer in 2026 carried ``x-rate-limit-limit: 3``. litmon sends one
    request at a time, spaced 1/3 s apart with a contact address and 1 s apart without one (an
    empty ``contact_email`` or the shipped placeholder; then no ``mailto=`` is sent either). An
    explicit ``min_interval`` replaces that default. Crossref advertises its current limit in
    ``X-Rate-Limit-Limit`` (requests) per ``X-Rate-Limit-Interval`` (e.g. ``1s``); when that allows
    fewer requests than our spacing, the host's interval in the shared client is widened to
    ``interval / limit`` for the rest of the process (never narrowed). 429/5xx are retried by the
    shared client (Retry-After honoured).

Select fields
    ``select=`` names only fields parsed here. Crossref answers an unknown name with HTTP 400
    ``{"status": "failed", "message": [{"type": "select-not-available", "value": "<field>", …}]}``
    for every request; litmon then drops the named field for the rest of the run, logs a warning
    naming it, and retries the page once. ``published`` is listed in the works route's select
    fields of Crossref's Swagger documentation (added there in 2021), but not in older lists.

Errors
    Crossref answers errors in several shapes, each turned into a SourceError naming the problem:
    ``{"status": "failed", "message": [{"type", "value", "message"}]}`` (validation failures,
    ``cursor-invalid``), ``{"status": "error", "message-type": "exception"}`` (a 500, also seen for
    stale cursors), nginx HTML pages (504 Gateway Time-out) and the plain text ``Resource not
    found.`` of a wrong route (404).

Parsing gotchas handled
    ``title``/``container-title`` are arrays with JATS/HTML tags and entities; ``date-parts`` may be
    partial (``[[2019, 4]]``) or ``[[null]]``; abstracts are JATS XML strings (``jats:`` prefix
    without a namespace declaration, MathML, HTML ``<p>``/``<sub>``), flattened with their section
    titles kept; ``relation`` ids may be other id types (only DOIs are linked); ``is-preprint-of``
    is asserted on the preprint, the article's ``has-preprint`` is often missing; ``update-to``
    entries can point at the work itself (in-place corrections, ignored); ``clinical-trial-number``
    values come in any case and without prefix (``isrctn75784880``; registry DOI tells the scheme).
"""

from __future__ import annotations

import datetime as dt
import html
import html.entities
import logging
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import urlsplit

from lxml import etree

from crawler import abstracts
from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.http import Response
from crawler.records import Author, Record, make_author
from crawler.sources.parsing import (
    STREAM_BATCH,
    TAG_RE,
    JsonStream,
    batched,
    decode_json,
    has_retraction_mark,
    looks_like_html,
    notice_kind,
    parse_date,
    strip_tags,
    tidy_spacing,
)
from crawler.sources.settings.crossref import DEFAULT_MAX_PAGES, DEFAULT_PAGE_SIZE, DEFAULT_SLICE_DAYS, DEFAULT_TYPES
from crawler.sources.settings.crossref import Settings as Settings  # the keys of its table, declared apart

log = logging.getLogger(__name__)

NAME = "crossref"
CORPUS_DIR = "crossref"

MAX_ROWS = 1000

#: Fields requested with ``select=`` (all in Crossref's list of selectable fields; ``subtype``,
#: ``institution`` and ``language`` are not selectable, so they are only read when present).
SELECT_FIELDS = (
    "DOI",
    "type",
    "title",
    "subtitle",
    "container-title",
    "short-container-title",
    "group-title",
    "author",
    "issued",
    "published",
    "published-online",
    "published-print",
    "posted",
    "created",
    "deposited",
    "abstract",
    "subject",
    "relation",
    "update-to",
    "updated-by",
    "clinical-trial-number",
    "publisher",
)

#: Request spacing by pool (seconds): polite = 3 requests/s, public = 1 request/s (Crossref, Dec 2025).
POLITE_INTERVAL = 1 / 3
PUBLIC_INTERVAL = 1.0

#: HTTP statuses whose body is read here (after the shared client's retries) for a clear message.
ANSWER_STATUSES = (200, 400, 404, 500, 502, 503, 504)

CROSSREF_TYPES = {"journal-article": "article", "posted-content": "preprint"}

#: ``update-to`` type (on the notice) -> relation to the updated work.
NOTICE_RELATIONS = {
    "retraction": "retraction_of",
    "partial_retraction": "retraction_of",
    "withdrawal": "retraction_of",
    "removal": "retraction_of",
    "correction": "correction_for",
    "corrigendum": "correction_for",
    "erratum": "correction_for",
    "expression_of_concern": "expression_of_concern_for",
}
#: ``updated-by`` type (on the updated work) -> relation to the notice.
UPDATED_BY_RELATIONS = {
    "retraction": "retraction_in",
    "partial_retraction": "retraction_in",
    "withdrawal": "retraction_in",
    "removal": "retraction_in",
    "correction": "correction_in",
    "corrigendum": "correction_in",
    "erratum": "correction_in",
    "expression_of_concern": "expression_of_concern_in",
}
#: ``relation`` key -> link relation (only DOI ids are linked).
RELATION_LINKS = {
    "is-preprint-of": "preprint_of",
    "has-preprint": "has_preprint",
    "is-version-of": "version_of",
    "has-version": "version_of",
    "is-replaced-by": "version_of",
    "replaces": "version_of",
    "is-comment-on": "comment_on",
    "has-comment": "comment_in",
}
#: Trial registry DOIs used in ``clinical-trial-number[].registry`` -> identifier scheme.
TRIAL_REGISTRIES = {
    "10.18810/clinical-trials-gov": "nct",
    "10.18810/isrctn": "isrctn",
    "10.18810/euctr": "eudract",
    "10.18810/ctis": "euct",
}

_ENTITY_RE = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}
_NAMESPACES = {
    "jats": "http://www.ncbi.nlm.nih.gov/JATS1",
    "mml": "http://www.w3.org/1998/Math/MathML",
    "xlink": "http://www.w3.org/1999/xlink",
    "ali": "http://www.niso.org/schemas/ali/1.0/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
_BLOCK_TAGS = {
    "p",
    "list",
    "list-item",
    "disp-quote",
    "statement",
    "table-wrap",
    "fig",
    "boxed-text",
    "def-list",
    "div",
    "li",
    "ul",
    "ol",
}
_MATH_CONTEXT_RE = re.compile(r"\d\s*[×x]\s*10$")
_RATE_INTERVAL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.I)


# --------------------------------------------------------------------------------------- fetching


def fetch_records(ctx) -> Iterator[list[Record]]:
    """Yield the topic-matching works created, then updated, in the window (see module doc)."""
    settings = build_settings(ctx)
    apply_pool_spacing(ctx)
    seen: set[str] = set()
    passes = [("created", "created-date")]
    if not ctx.first_run:
        passes.append(("updated", "update-date"))
    for pass_name, date_field in passes:
        for start, end in build_slices(ctx.since, ctx.until, settings["slice_days"]):
            yield from fetch_chain(ctx, settings, pass_name, date_field, start, end, seen)


def build_settings(ctx) -> dict[str, Any]:
    s = ctx.settings
    query = s.get("query")
    if isinstance(query, list):
        query = " ".join(query)
    if not query or not str(query).strip():
        raise SourceError(
            ctx.name, "no query configured", hint="[sources.crossref].query in the config (words for query.bibliographic)"
        )
    types = s.get("types", list(DEFAULT_TYPES))
    if isinstance(types, str):
        types = [types]
    return {
        "query": str(query).strip(),
        "types": [str(t).strip() for t in types if str(t).strip()],
        "rows": min(read_positive_int(ctx, "page_size", DEFAULT_PAGE_SIZE), MAX_ROWS),
        "max_pages": read_positive_int(ctx, "max_pages", DEFAULT_MAX_PAGES),
        "slice_days": read_positive_int(ctx, "slice_days", DEFAULT_SLICE_DAYS),
        "select": list(SELECT_FIELDS),  # a field Crossref rejects is dropped for the rest of the run
    }


def apply_pool_spacing(ctx) -> None:
    """Space requests for Crossref's polite pool (3/s) or, without a contact address, its public pool (1/s)."""
    if ctx.settings.get("min_interval") is not None:
        return  # the operator's choice (the pipeline has applied it)
    interval = POLITE_INTERVAL if ctx.has_contact_address else PUBLIC_INTERVAL
    ctx.http.set_min_interval(ctx.base_url, interval)
    log.info(
        "[%s] %s pool: spacing requests by %.2fs",
        ctx.name,
        "polite" if ctx.has_contact_address else "public (no contact_email configured)",
        interval,
    )


def read_positive_int(ctx, key: str, default: int) -> int:
    value = ctx.settings.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1:
        raise SourceError(
            ctx.name, f"{key} = {value!r} is not a positive whole number", hint=f"[sources.crossref].{key} in the config"
        )
    return number


def build_slices(since: dt.date, until: dt.date, slice_days: int) -> list[tuple[dt.date, dt.date]]:
    """Cut the inclusive window into consecutive inclusive slices of at most ``slice_days`` days."""
    slices = []
    start = since
    while start <= until:
        end = min(until, start + dt.timedelta(days=slice_days - 1))
        slices.append((start, end))
        start = end + dt.timedelta(days=1)
    return slices or [(until, until)]


def build_filter(date_field: str, start: dt.date, end: dt.date, types: list[str]) -> str:
    parts = [f"from-{date_field}:{start.isoformat()}", f"until-{date_field}:{end.isoformat()}"]
    parts += [f"type:{t}" for t in types]
    return ",".join(parts)


def build_params(ctx, settings: dict[str, Any], filter_: str, cursor: str) -> dict[str, Any]:
    return {
        "query.bibliographic": settings["query"],
        "filter": filter_,
        "rows": settings["rows"],
        "cursor": cursor,
        "select": ",".join(settings["select"]),
        **({"mailto": ctx.contact_email} if ctx.has_contact_address else {}),
    }


def fetch_chain(ctx, settings, pass_name, date_field, start, end, seen: set[str]) -> Iterator[list[Record]]:
    """Page through one filter with a cursor, keeping the matching works, until a stop rule fires."""
    filter_ = build_filter(date_field, start, end, settings["types"])
    entry = ctx.log_query(
        settings["query"], start, end, hits=0, **{"pass": pass_name, "filter": filter_, "rows": settings["rows"]}
    )
    stats: dict[str, Any] = {"pages": 0, "read": 0, "kept": 0, "total_results": None, "stopped": None}
    entry.params.update(stats)
    cursor = "*"
    while not stats["stopped"]:
        try:
            message, items = fetch_page(ctx, settings, filter_, cursor)
        except SourceError:
            entry.params.update(stats, stopped="error")
            raise
        counted, matched = [0], 0
        # a large page is yielded in batches as its items are read, never held whole (the answer
        # was read in full, and checked, before the first item: no batch comes from a broken page)
        for matching in batched(select_matching(ctx, _counting(items, counted)), STREAM_BATCH):
            matched += len(matching)
            batch = select_unseen(matching, seen)
            if batch:
                yield batch
        n_items = counted[0]
        ctx.count_downloaded(n_items)
        stats["pages"] += 1
        stats["read"] += n_items
        stats["kept"] += matched
        if stats["total_results"] is None:
            stats["total_results"] = message.get("total-results")
        cursor = message.get("next-cursor") or ""  # none: the last page (decide_stop ends the chain)
        stats["stopped"] = decide_stop(stats["pages"], settings, n_items, matched, cursor)
        entry.hits = stats["kept"]
        entry.params.update(stats)
        if stats["stopped"] == "max_pages" and matched:
            ctx.warn(
                f"{pass_name} pass {start}..{end}: stopped after max_pages={settings['max_pages']} pages although the "
                f"last page still had {matched} matching item(s); raise max_pages or tighten the query"
            )


def _counting(items: Iterable[dict[str, Any]], counter: list[int]) -> Iterator[dict[str, Any]]:
    for item in items:
        counter[0] += 1
        yield item


def fetch_page(ctx, settings, filter_: str, cursor: str) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """One GET of ``works``: the checked message (without its items) and its items, read one at a time
    from the answer (a large page is never in memory as one parsed tree)."""
    url = ctx.base_url + "works"
    for attempt in range(2):
        response = ctx.http.get(
            url, source=ctx.name, params=build_params(ctx, settings, filter_, cursor), ok_statuses=ANSWER_STATUSES
        )
        apply_rate_limit(ctx, response)
        rejected = rejected_select_fields(response, settings["select"]) if attempt == 0 else []
        if not rejected:
            break
        for name in rejected:
            settings["select"].remove(name)
        ctx.warn(
            f"Crossref does not accept the select field(s) {', '.join(repr(n) for n in rejected)} "
            "(400 select-not-available); retrying without them: those fields stay empty this run"
        )
    stream = read_answer(response.stream(), ctx.name, url=response.url, status=response.status)
    message = stream.envelope["message"]
    return message, read_items(message, ctx.name, url=response.url, stream=stream)


def rejected_select_fields(response: Response, selected: list[str]) -> list[str]:
    """The selected fields a 400 ``select-not-available`` answer names (empty for any other answer)."""
    if response.status != 400:
        return []
    try:
        data = decode_json(response.content, NAME)
    except SourceError:
        return []
    problems = data.get("message") if isinstance(data, dict) else None
    names: list[str] = []
    for problem in problems if isinstance(problems, list) else []:
        if not isinstance(problem, dict) or problem.get("type") != "select-not-available":
            continue
        values = [v.strip() for v in str(problem.get("value") or "").split(",")]
        quoted = re.findall(r"[Ss]elect '([^']+)'", str(problem.get("message") or ""))
        for value in values + quoted:
            if value in selected and value not in names:
                names.append(value)
    return names


def select_matching(ctx, items: Iterable[dict[str, Any]]) -> Iterator[Record]:
    """Parse the page's items (as they are read) and keep those mentioning the topic."""
    records = (parse_item_safely(ctx, item) for item in items)
    return (r for r in records if r is not None and record_matches(ctx, r))


def select_unseen(records: list[Record], seen: set[str]) -> list[Record]:
    """Records whose DOI was not yielded yet in this run (both passes can return a work)."""
    batch = []
    for record in records:
        if record.source_id not in seen:
            seen.add(record.source_id)
            batch.append(record)
    return batch


def decide_stop(pages: int, settings: dict[str, Any], n_items: int, matched: int, next_cursor) -> str | None:
    """Why paging stops after this page, or None to continue."""
    if n_items == 0:
        return "empty_page"
    if n_items < settings["rows"]:
        return "last_page"
    if matched == 0:
        return "no_match_on_page"
    if not next_cursor:
        return "no_next_cursor"
    if pages >= settings["max_pages"]:
        return "max_pages"
    return None


def parse_item_safely(ctx, item) -> Record | None:
    try:
        record = parse_item(item, ctx.name)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        doi = item.get("DOI") if isinstance(item, dict) else None
        ctx.skip(f"an unreadable item {doi or ''}: {type(exc).__name__}: {exc}")
        return None
    if record is None and isinstance(item, dict):
        # every Crossref work has a DOI: an item without one is a broken answer. Off-topic ones would be
        # left out by the filter anyway; on-topic ones are reported and the window is read again.
        title = parse_title(item)
        if ctx.matches_topic(title, parse_abstract(item.get("abstract"))):
            ctx.skip(f"an item without a DOI ({title[:80]!r})")
    return record


def record_matches(ctx, record: Record) -> bool:
    return ctx.matches_topic(record.title, record.abstract, record.journal, *record.keywords)


def apply_rate_limit(ctx, response: Response) -> None:
    """Widen the host's request spacing when Crossref's advertised limit is stricter than ours."""
    spacing = parse_rate_limit(response.headers.get("X-Rate-Limit-Limit"), response.headers.get("X-Rate-Limit-Interval"))
    if spacing is None:
        return
    host = urlsplit(ctx.base_url).netloc
    current = ctx.http.min_intervals.get(host, ctx.http.default_min_interval)
    if spacing > current:
        ctx.http.set_min_interval(ctx.base_url, spacing)
        log.info(
            "[%s] Crossref advertises %s requests per %s: spacing requests to %s by %.3fs (was %.3fs)",
            ctx.name,
            response.headers.get("X-Rate-Limit-Limit"),
            response.headers.get("X-Rate-Limit-Interval"),
            host,
            spacing,
            current,
        )


def parse_rate_limit(limit: str | None, interval: str | None) -> float | None:
    """Seconds per request allowed by ``X-Rate-Limit-Limit``/``X-Rate-Limit-Interval`` (None if unusable)."""
    if not limit or not interval:
        return None
    try:
        count = float(str(limit).strip())
    except ValueError:
        return None
    match = _RATE_INTERVAL_RE.match(str(interval))
    if not match or count <= 0:
        return None
    seconds = float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[(match.group(2) or "s").lower()]
    return seconds / count if seconds > 0 else None


# ------------------------------------------------------------------------------- answer checking


def read_message(body: bytes, source: str = NAME, url: str | None = None, status: int = 200) -> dict[str, Any]:
    """The ``message`` of an ``ok`` answer (items included), or a SourceError explaining Crossref's error shape."""
    stream = read_answer(body, source, url=url, status=status)
    message = stream.envelope["message"]
    if isinstance(message.get("items"), list):
        message["items"] = list(stream.items())
    return message


def read_answer(body: bytes | IO[bytes], source: str = NAME, url: str | None = None, status: int = 200) -> JsonStream:
    """The answer read as a stream whose envelope holds an ``ok`` message (its item list left to
    :func:`read_items`), or a SourceError explaining Crossref's error shape."""
    prefix = f"HTTP {status}: " if status != 200 else ""
    head = body[: JsonStream.HEAD] if isinstance(body, bytes) else body.read(JsonStream.HEAD)
    if status == 404:
        hint = "the base_url in the config (the route does not exist)"
    elif not head.strip() or looks_like_html(head):
        hint = "whether Crossref is up (504 = its search timed out; a smaller page_size helps); retried on the next run"
    else:
        hint = "the base_url and whether Crossref is up"
    stream = JsonStream(body, source, "message.items", url=url, hint=hint, status=status)
    data = stream.envelope
    if not isinstance(data, dict):
        raise SourceError(
            source,
            f"{prefix}unexpected JSON ({type(data).__name__}) instead of a Crossref message",
            hint="the base_url in the config",
            url=url,
        )
    outcome = data.get("status")
    message = data.get("message")
    if outcome == "ok" and isinstance(message, dict) and status == 200:
        return stream
    if outcome == "failed" and isinstance(message, list):
        problems = [p for p in message if isinstance(p, dict)]
        text = "; ".join(f"{p.get('type')}: {p.get('message')} (value {p.get('value')!r})" for p in problems) or "no details"
        if any(p.get("type") == "cursor-invalid" for p in problems):
            hint = "the paging cursor expired or was rejected (cursors expire after 5 minutes unused); the next run redoes the window"
        else:
            hint = "the query, types and page_size in [sources.crossref] (Crossref rejected a parameter)"
        raise SourceError(source, f"{prefix}Crossref rejected the request: {text}", hint=hint, url=url)
    if outcome == "error" or data.get("message-type") == "exception":
        detail = message if isinstance(message, dict) else {}
        text = detail.get("message") or detail.get("name") or "no details"
        raise SourceError(
            source,
            f"{prefix}Crossref internal error: {text}",
            hint="whether Crossref is up; a stale cursor can cause this too. The next run redoes the window",
            url=url,
        )
    raise SourceError(
        source,
        f"{prefix}unexpected answer (status {outcome!r}, message-type {data.get('message-type')!r})",
        hint="the base_url in the config and whether Crossref is up",
        url=url,
    )


def read_items(
    message: dict[str, Any], source: str = NAME, url: str | None = None, stream: JsonStream | None = None
) -> Iterator[dict[str, Any]]:
    """The work-list's items (from ``stream``, one at a time, when the message came from one)."""
    items = message.get("items")
    if not isinstance(items, list):
        raise SourceError(
            source,
            "the answer has no list of items (expected a work-list)",
            hint="the base_url in the config (it must point at the REST API root)",
            url=url,
        )
    return (i for i in (stream.items() if stream is not None else items) if isinstance(i, dict))


# ---------------------------------------------------------------------------------------- parsing


def parse_works(body: bytes, source: str = NAME) -> list[Record]:
    """Parse a ``/works`` answer (work-list) into records (every item with a DOI, unfiltered)."""
    stream = read_answer(body, source)
    items = read_items(stream.envelope["message"], source, stream=stream)
    return [r for r in (parse_item(i, source) for i in items) if r is not None]


def parse_work(body: bytes, source: str = NAME) -> list[Record]:
    """Parse a ``/works/{doi}`` answer (a single work)."""
    message = read_message(body, source)
    record = parse_item(message, source)
    return [record] if record else []


def parse_file(body: bytes, filename: str) -> list[Record]:
    """Parse any response file of the corpus folder (work-list or single work)."""
    stream = read_answer(body, NAME, url=filename)
    message = stream.envelope["message"]
    if "items" in message:
        items = read_items(message, NAME, url=filename, stream=stream)
        return [r for r in (parse_item(i, NAME) for i in items) if r is not None]
    if "DOI" in message:
        record = parse_item(message, NAME)
        return [record] if record else []
    raise SourceError(
        NAME, "the answer is neither a work-list nor a work", hint="the route the file was fetched from", url=filename
    )


def parse_item(item: dict[str, Any], source: str = NAME) -> Record | None:
    """One Crossref work -> Record (None when it has no usable DOI)."""
    doi = ids.normalize_doi(item.get("DOI"))
    if not doi:
        return None
    crossref_type = item.get("type") or ""
    title = parse_title(item)
    abstract = parse_abstract(item.get("abstract"))
    sections = parse_abstract_sections(item.get("abstract"))
    record = Record(
        source=source,
        source_id=doi,
        record_type=CROSSREF_TYPES.get(crossref_type, "other"),
        title=title,
        missing=[] if title else ["title"],
        url=ids.url_for("doi", doi),
        abstract=abstract,
        abstract_sections=sections,
        authors=parse_authors(item.get("author")),
        structured_authors=parse_structured_authors(item.get("author")),
        journal=parse_journal(item),
        published_on=parse_published(item),
        entered_on=parse_timestamp(item.get("created")),
        updated_on=parse_timestamp(item.get("deposited")),
        publication_types=[t for t in (crossref_type, item.get("subtype")) if t],
        keywords=parse_keywords(item),
        language=item.get("language") or None,
    )
    record.add_id("doi", doi)
    add_relation_links(record, item.get("relation"))
    notice_types = add_update_to_links(record, item.get("update-to"), doi)
    retracted = add_updated_by_links(record, item.get("updated-by"), doi)
    if notice_types or (is_notice_title(title) and not retracted):
        record.record_type = "notice"
    extra = {
        "crossref_type": crossref_type,
        "publisher": item.get("publisher"),
        "update_types": sorted(notice_types),
        **parse_citation(item),
    }
    record.extra = {k: v for k, v in extra.items() if v}
    add_trial_links(record, item.get("clinical-trial-number"), title, abstract)
    return record


def parse_title(item: dict[str, Any]) -> str:
    titles = [clean_markup(t) for t in item.get("title") or [] if isinstance(t, str)]
    title = next((t for t in titles if t), "")
    subtitles = [clean_markup(t) for t in item.get("subtitle") or [] if isinstance(t, str)]
    subtitle = next((t for t in subtitles if t), "")
    if title and subtitle and subtitle.lower() not in title.lower():
        title = f"{title}: {subtitle}"
    return title


def clean_markup(text: str | None) -> str:
    """Strip JATS/HTML/MathML tags and decode entities from a short string (title, journal)."""
    return strip_tags(text, inline_space=True)


def parse_abstract(raw: str | None) -> str | None:
    """A JATS/HTML abstract string -> plain text; sections become ``Title: text`` lines."""
    return _flatten_blocks(parse_abstract_blocks(raw))


def parse_abstract_sections(raw: str | None) -> list[dict]:
    """A JATS/HTML abstract string -> its sections (``<jats:sec>`` titles as labels)."""
    return abstracts.sections_from_blocks(parse_abstract_blocks(raw))


def parse_abstract_blocks(raw: str | None) -> list[tuple[str, str]]:
    """(heading, text) blocks of a JATS/HTML abstract; the "Abstract" heading dropped."""
    if not raw or not isinstance(raw, str) or not raw.strip():
        return []
    blocks = abstract_blocks_xml(raw)
    if blocks is None:
        blocks = abstract_blocks_regex(raw)
    if blocks and blocks[0][0] and blocks[0][0].strip().lower() == "abstract" and not blocks[0][1]:
        blocks = blocks[1:]
    result = []
    for heading, text in blocks:
        heading = (heading or "").strip().rstrip(":").strip()
        if heading.lower() == "abstract" and text:
            heading = ""
        result.append((heading, text))
    return result


def _flatten_blocks(blocks: list[tuple[str, str]]) -> str | None:
    lines = []
    for heading, text in blocks:
        if heading and text:
            lines.append(f"{heading}: {text}")
        elif text or heading:
            lines.append(text or heading)
    result = "\n".join(line for line in lines if line)
    return result or None


def abstract_blocks_xml(raw: str) -> list[tuple[str, str]] | None:
    """Parse the abstract as XML (undeclared prefixes bound, HTML entities decoded); None if not XML."""
    declared = " ".join(f'xmlns:{p}="{u}"' for p, u in _NAMESPACES.items())
    text = _ENTITY_RE.sub(_xml_entity, raw)
    try:
        root = etree.fromstring(
            f"<abstract {declared}>{text}</abstract>".encode(),
            parser=etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False),
        )
    except etree.XMLSyntaxError:
        return None
    mark_scripts(root)
    blocks: list[tuple[str, str]] = []
    _walk_abstract(root, blocks)
    return blocks


def mark_scripts(root) -> None:
    """MathML/HTML super- and subscripts keep a marker when flattened (``10^9``, not ``109``)."""
    for element in root.iter():
        name = _local(element.tag)
        if name in ("msup", "msub") and len(element) >= 2:
            target = element[1]
            target.text = ("^" if name == "msup" else "_") + (target.text or "")
        elif name == "sup" and _MATH_CONTEXT_RE.search(_text_before(element)):
            element.text = "^" + (element.text or "")


def _text_before(element) -> str:
    previous = element.getprevious()
    if previous is not None:
        return previous.tail or ""
    parent = element.getparent()
    return (parent.text or "") if parent is not None else ""


def _xml_entity(match: re.Match) -> str:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    codepoint = html.entities.name2codepoint.get(name)
    return chr(codepoint) if codepoint else match.group(0)


def _local(tag) -> str:
    return etree.QName(tag).localname.lower() if isinstance(tag, str) else ""


def _inline_text(element) -> str:
    return tidy_spacing("".join(element.itertext()))


def _walk_abstract(element, blocks: list[tuple[str, str]]) -> None:
    """Collect (heading, text) blocks: ``title`` starts a heading for the next block, ``sec`` recurses."""
    heading = ""
    loose: list[str] = [element.text or ""]

    def flush_loose():
        nonlocal heading
        text = tidy_spacing("".join(loose))
        loose.clear()
        if text:
            blocks.append((heading, text))
            heading = ""

    for child in element:
        name = _local(child.tag)
        if name in ("title", "label") and not tidy_spacing(child.tail or ""):
            flush_loose()
            if heading:
                blocks.append((heading, ""))
            heading = _inline_text(child)
            continue
        if name in ("sec", "abstract", "trans-abstract") or name in _BLOCK_TAGS:
            flush_loose()
            if name in ("sec", "abstract", "trans-abstract", "list", "ul", "ol") and len(child):
                if heading:
                    blocks.append((heading, ""))
                    heading = ""
                _walk_abstract(child, blocks)
            else:
                text = _inline_text(child)
                if text:
                    blocks.append((heading, text))
                    heading = ""
            loose.append(child.tail or "")
            continue
        loose.append("".join(child.itertext()))
        loose.append(child.tail or "")
    flush_loose()
    if heading:
        blocks.append((heading, ""))


def abstract_blocks_regex(raw: str) -> list[tuple[str, str]]:
    """Fallback for abstracts that are not well-formed XML: tags to breaks, entities decoded."""
    text = re.sub(
        r"<(?:jats:)?title[^>]*>(.*?)</(?:jats:)?title>", lambda m: "\n" + m.group(1) + ":\u0000", raw, flags=re.S | re.I
    )
    text = re.sub(r"</?(?:jats:)?(?:p|sec|list-item|li|div|br)\b[^>]*>", "\n", text, flags=re.I)
    text = html.unescape(TAG_RE.sub("", text))
    blocks = []
    pending = ""
    for line in text.split("\n"):
        if "\u0000" in line:
            head, _, rest = line.partition("\u0000")
            pending = tidy_spacing(head).rstrip(":")
            line = rest
        line = tidy_spacing(line)
        if line:
            blocks.append((pending, line))
            pending = ""
    if pending:
        blocks.append((pending, ""))
    return blocks


def parse_authors(authors) -> list[str]:
    names = []
    for author in authors or []:
        if not isinstance(author, dict):
            continue
        given = clean_markup(author.get("given"))
        family = clean_markup(author.get("family"))
        name = " ".join(p for p in (given, family) if p) or clean_markup(author.get("name"))
        if name and name not in names:
            names.append(name)
    return names


def parse_structured_authors(authors) -> list[Author]:
    """``author[]``: ``family``/``given``/``suffix`` of a person, ``name`` of an organisation."""
    people = []
    for author in authors or []:
        if not isinstance(author, dict):
            continue
        person = make_author(
            family=clean_markup(author.get("family")),
            given=clean_markup(author.get("given")),
            collective=clean_markup(author.get("name")),
            suffix=clean_markup(author.get("suffix")),
        )
        if person and person not in people:
            people.append(person)
    return people


def parse_citation(item: dict[str, Any]) -> dict[str, str]:
    """Journal abbreviation, volume, issue and pages (``page`` or ``article-number``) for citations."""
    short = [clean_markup(t) for t in item.get("short-container-title") or [] if isinstance(t, str)]
    values = {
        "journal_abbreviation": next((t for t in short if t), ""),
        "volume": clean_markup(str(item.get("volume") or "")),
        "issue": clean_markup(str(item.get("issue") or "")),
        "pages": clean_markup(str(item.get("page") or item.get("article-number") or "")),
    }
    return {k: v for k, v in values.items() if v}


def parse_journal(item: dict[str, Any]) -> str | None:
    for key in ("container-title", "short-container-title"):
        for value in item.get(key) or []:
            text = clean_markup(value) if isinstance(value, str) else ""
            if text and not text.lower().startswith("http"):
                return text
    institution = item.get("institution")
    if isinstance(institution, dict):
        institution = [institution]
    for inst in institution or []:
        name = clean_markup(inst.get("name")) if isinstance(inst, dict) else ""
        if name and name != "-":
            return name
    return None


def parse_keywords(item: dict[str, Any]) -> list[str]:
    words = [clean_markup(s) for s in item.get("subject") or [] if isinstance(s, str)]
    group = item.get("group-title")
    if isinstance(group, str):
        words.append(clean_markup(group))
    return list(dict.fromkeys(w for w in words if w))


def parse_date_parts(value) -> str | None:
    """``{"date-parts": [[2019, 4, 3]]}`` -> ``2019-04-03`` (partial dates kept: ``2019-04``, ``2019``)."""
    if not isinstance(value, dict):
        return None
    parts = value.get("date-parts")
    if not parts or not isinstance(parts, list) or not isinstance(parts[0], list):
        return None
    return parse_date(parts[0])


def parse_published(item: dict[str, Any]) -> str | None:
    """Posting date for posted content, else ``issued`` (earliest of print/online), else the others."""
    keys = (
        ("posted", "issued", "published-online", "published-print", "published")
        if item.get("type") == "posted-content"
        else ("issued", "published-online", "published-print", "published", "posted")
    )
    return next((d for d in (parse_date_parts(item.get(k)) for k in keys) if d), None)


def parse_timestamp(value) -> str | None:
    """``created``/``deposited`` -> the UTC date of their ``date-time`` (falls back to date-parts)."""
    if not isinstance(value, dict):
        return None
    stamp = value.get("date-time")
    return (parse_date(stamp) if isinstance(stamp, str) and re.match(r"^\d{4}-\d{2}-\d{2}", stamp) else None) or parse_date_parts(
        value
    )


def add_relation_links(record: Record, relation) -> None:
    if not isinstance(relation, dict):
        return
    for key, entries in relation.items():
        link = RELATION_LINKS.get(key)
        if not link or not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict) or str(entry.get("id-type", "")).lower() != "doi":
                continue
            target = ids.normalize_doi(entry.get("id"))
            if target and target != record.source_id:
                record.add_link(link, "doi", target, note=key if link == "version_of" else None)


def add_update_to_links(record: Record, updates, own_doi: str) -> set[str]:
    """Links from a notice to the works it updates; return the notice types found."""
    found = set()
    for update in updates or []:
        if not isinstance(update, dict):
            continue
        target = ids.normalize_doi(update.get("DOI"))
        kind = str(update.get("type") or "").lower().replace("-", "_")
        if not target or target == own_doi:
            continue  # in-place update of the work itself (e.g. APS "Correction" on its own DOI)
        relation = NOTICE_RELATIONS.get(kind)
        if relation:
            found.add(kind)
            record.add_link(
                relation, "doi", target, note=kind if kind not in ("retraction", "correction", "expression_of_concern") else None
            )
        elif kind:
            record.add_link("update_of", "doi", target, note=kind)
    return found


def add_updated_by_links(record: Record, updates, own_doi: str) -> bool:
    """Links from an updated work to its notices; return whether one is a retraction.

    The same notice can be listed twice (deposited by the publisher and merged in from Retraction
    Watch): one link, whose note names every source.
    """
    notes: dict[tuple[str, str], list[str]] = {}
    for update in updates or []:
        if not isinstance(update, dict):
            continue
        target = ids.normalize_doi(update.get("DOI"))
        kind = str(update.get("type") or "").lower().replace("-", "_")
        if not target or target == own_doi:
            continue
        relation = UPDATED_BY_RELATIONS.get(kind, "update_in")
        entry = notes.setdefault((relation, target), [])
        plain = relation != "update_in" and kind in ("retraction", "correction", "expression_of_concern")
        for note in (None if plain else kind, update.get("source")):
            if note and note not in entry:
                entry.append(note)
    for (relation, target), entry in notes.items():
        record.add_link(relation, "doi", target, note="; ".join(entry) or None)
    return any(relation == "retraction_in" for relation, _ in notes)


def is_notice_title(title: str) -> bool:
    """A notice's title, or one marked "Retracted:" (Crossref registers notices so titled; an article that
    is itself marked is told apart by its ``updated-by`` retraction)."""
    return bool(notice_kind(title)) or has_retraction_mark(title)


def add_trial_links(record: Record, numbers, title: str, abstract: str | None) -> None:
    unknown = []
    for entry in numbers or []:
        if not isinstance(entry, dict):
            continue
        value = str(entry.get("clinical-trial-number") or "").strip()
        norm = normalize_trial_number(value, str(entry.get("registry") or ""))
        if norm:
            record.add_link("registered_as", *norm)
        elif value:
            unknown.append(value)
    for scheme, value in ids.find_trial_ids(" ".join(t for t in (title, abstract) if t)):
        record.add_link("registered_as", scheme, value)
    if unknown:
        record.extra["trial_numbers_unrecognised"] = unknown


def normalize_trial_number(value: str, registry: str = "") -> tuple[str, str] | None:
    """A ``clinical-trial-number`` value -> (scheme, normalised id), using the registry DOI as a hint."""
    if not value:
        return None
    scheme = TRIAL_REGISTRIES.get(registry.strip().lower())
    compact = re.sub(r"\s+", "", value)
    if compact.isdigit():
        if scheme == "nct":
            compact = "NCT" + compact
        elif scheme != "isrctn":
            return None  # bare digits name no registry we know
    for candidate in ([scheme] if scheme else []) + ["nct", "isrctn", "euct", "eudract"]:
        norm = ids.normalize(candidate, compact)
        if norm:
            return candidate, norm
    return None
