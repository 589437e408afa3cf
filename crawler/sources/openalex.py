"""OpenAlex: works matching a full-text search, windowed on publication date.

Endpoint
    ``GET <base_url>works`` (base_url ``https://api.openalex.org/``) with ``search=`` (the
    ``query`` setting; AND/OR/NOT and parentheses work), ``filter=``, ``per_page``, ``cursor`` and
    ``api_key``. The answer is ``{"meta": {"count", "per_page", "next_cursor", …}, "results": [work…]}``.

Key and cost
    An API key is required since 2026-02-13: :func:`check_enabled` switches the source off (one log
    line) while the environment variable named by ``api_key_env`` is empty. A free key buys $1 a day;
    a ``search=`` page costs $0.001, so a daily crawl of a few pages costs almost nothing, while a
    backfill from 2000 may take a few hundred pages (``max_pages``, default 200, caps one run and
    says so). The key is sent as ``api_key=`` and masked in every error message and log line.

Incremental strategy
    ``filter=from_publication_date:<since − publication_lookback_days>,to_publication_date:<until>``.
    The filters on ``created_date``/``updated_date`` that would fit a crawler are plan-gated: free keys
    get ``{"error": "Plan upgrade required"}``. Publication date is not the date a work reaches
    OpenAlex (works are added days to months after they appear), so the window reaches back
    ``publication_lookback_days`` (default 90) before the watermark-minus-overlap; works already
    stored with the same content are recognised by the store and counted as unchanged. Set
    ``window_filter = "created"`` (or ``"updated"``) with a paid key to window on those dates
    instead, without the look-back. Nothing is kept in ``ctx.state``.

Paging
    ``cursor=*`` then ``meta.next_cursor`` until it is null/empty or a page is empty (the documented
    terminator); ``per_page`` is ``page_size`` capped at 100 (the current maximum).

Gotchas handled
    * Abstracts come only as ``abstract_inverted_index`` (word → positions): rebuilt by position.
    * ``doi``, ``ids.pmid`` and ``ids.pmcid`` are URLs (``https://doi.org/…``,
      ``https://pubmed.ncbi.nlm.nih.gov/123``, ``https://www.ncbi.nlm.nih.gov/pmc/articles/456``).
    * ``type`` ``preprint`` (or a bioRxiv/medRxiv DOI) → record_type ``preprint``; a journal version
      listed among the preprint's ``locations`` becomes a ``preprint_of`` link and a preprint DOI
      among an article's locations a ``has_preprint`` link — never an identifier.
    * ``is_retracted`` → ``extra["is_retracted"]`` and publication type "Retracted Publication";
      works typed ``retraction``/``erratum`` are notices.
    * A 404 for an unknown work is an HTML page; error bodies are JSON ``{"error", "message"}``.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.records import Record, parse_author
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import JsonStream, decode_json, parse_date, parse_int, strip_tags
from crawler.sources.settings.openalex import DEFAULT_LOOKBACK_DAYS, DEFAULT_MAX_PAGES, MAX_PER_PAGE, WINDOW_FILTERS
from crawler.sources.settings.openalex import Settings as Settings  # the keys of its table, declared apart

NAME = "openalex"
CORPUS_DIR = "openalex"

RECORD_TYPES = {
    "preprint": "preprint",
    "retraction": "notice",
    "erratum": "notice",
    "article": "article",
    "review": "article",
    "letter": "article",
    "editorial": "article",
    "book-chapter": "article",
}
_TRAILING_NUMBER_RE = re.compile(r"(\d+)/?\s*$")


def check_enabled(settings: dict, config) -> str | None:
    """A reason to switch the source off, or None when an API key is available."""
    env = settings.get("api_key_env") or "OPENALEX_API_KEY"
    if not os.environ.get(env, "").strip():
        return f"no API key: set ${env} (OpenAlex requires a key since 2026-02-13)"
    return None


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    api_key = os.environ.get(ctx.settings.get("api_key_env") or "OPENALEX_API_KEY", "").strip()
    query = str(ctx.settings.get("query") or "").strip()
    if not query:
        raise SourceError(NAME, "no query configured", hint="set query in [sources.openalex]")
    per_page = min(_setting_int(ctx, "page_size", MAX_PER_PAGE), MAX_PER_PAGE)
    max_pages = _setting_int(ctx, "max_pages", DEFAULT_MAX_PAGES)
    window = build_filter(ctx)
    params = {"search": query, "filter": window, "per_page": per_page, "cursor": "*", "api_key": api_key}
    entry = ctx.log_query(query, ctx.since, ctx.until, hits=None, filter=window, per_page=per_page, pages=0)
    seen: set[str] = set()
    while True:
        page = fetch_page(ctx, params, api_key)
        entry.params["pages"] += 1
        if entry.hits is None:
            entry.hits = parse_int(page["meta"].get("count"))
        records = [r for r in parse_works(page, skip=ctx.skip) if r.source_id not in seen]
        seen.update(r.source_id for r in records)
        if records:
            yield records
        cursor = page["meta"].get("next_cursor")
        if not page["results"].count or not cursor or cursor == params["cursor"]:
            return
        if entry.params["pages"] >= max_pages:
            ctx.warn(
                f"stopped after max_pages={max_pages} pages ({len(seen)} of {entry.hits} works); "
                f"raise [sources.openalex].max_pages or narrow the query to read the rest"
            )
            return
        params["cursor"] = cursor


def build_filter(ctx: CrawlContext) -> str:
    kind = str(ctx.settings.get("window_filter", "publication"))
    if kind not in WINDOW_FILTERS:
        raise SourceError(
            NAME,
            f"window_filter must be one of {', '.join(WINDOW_FILTERS)}, got {kind!r}",
            hint="[sources.openalex].window_filter",
        )
    since = ctx.since
    if kind == "publication":
        since -= dt.timedelta(days=_setting_int(ctx, "publication_lookback_days", DEFAULT_LOOKBACK_DAYS, minimum=0))
    field = WINDOW_FILTERS[kind]
    return f"from_{field}:{since.isoformat()},to_{field}:{ctx.until.isoformat()}"


def fetch_page(ctx: CrawlContext, params: dict, api_key: str) -> dict:
    try:
        response = ctx.http.get(ctx.base_url + "works", source=ctx.name, params=params)
        return parse_page(response.stream())
    except SourceError as exc:
        raise _masked(exc, api_key) from None


def _masked(exc: SourceError, secret: str) -> SourceError:
    """The same error with the API key replaced (URLs in messages carry it as api_key=…)."""
    if secret:
        exc.args = tuple(str(a).replace(secret, "***") for a in exc.args)
        exc.url = exc.url.replace(secret, "***") if exc.url else exc.url
    if "plan upgrade" in str(exc).lower():
        exc.args = (
            str(exc) + ' — created/updated date filters need a paid plan: set [sources.openalex].window_filter = "publication"',
        )
    return exc


def _setting_int(ctx: CrawlContext, key: str, default: int, minimum: int = 1) -> int:
    value = ctx.settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SourceError(NAME, f"{key} must be an integer ≥ {minimum}, got {value!r}", hint=f"[sources.openalex].{key}")
    return value


# --------------------------------------------------------------------------- parsing


def parse_file(body: bytes, filename: str = "") -> list[Record]:
    """A saved answer: a works list (``meta`` + ``results``) or a single work object."""
    data = decode_json(body, NAME, hint="the base_url and whether the service is up")
    if isinstance(data, dict) and ("results" in data or data.get("error")):
        return parse_works(parse_page(body, data))
    if isinstance(data, dict) and data.get("id"):
        record = parse_work(data)
        if record is None:
            raise SourceError(NAME, f"single work {data.get('id')!r} could not be parsed (no title or id)")
        return [record]
    raise SourceError(
        NAME,
        "JSON is neither a works list nor a work with an id (a select= answer?)",
        hint="request whole works, without select=",
    )


def parse_page(body: bytes | IO[bytes], data: Any = None) -> dict:
    """Check a works-list answer: a dict with ``meta`` and a ``results`` list. Unless the answer is
    already decoded (``data``), ``results`` is read one work at a time from the body: a
    :class:`JsonStream` whose ``count`` says how many were read."""
    stream = None
    if data is None:
        stream = JsonStream(body, NAME, "results", hint="the base_url and whether the service is up")
        data = stream.envelope
    if isinstance(data, dict) and data.get("error"):
        raise SourceError(
            NAME,
            f"API error: {data.get('error')}: {data.get('message') or ''}".rstrip(": "),
            hint="the query and filter in [sources.openalex]",
        )
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) or not isinstance(data.get("meta"), dict):
        raise SourceError(NAME, "answer is not a works list (no meta/results)", hint="the base_url (…/works is appended)")
    if stream is not None:
        data["results"] = stream
    return data


def parse_works(page: dict, skip: Callable[..., None] | None = None) -> list[Record]:
    """The records of a works list; a result that cannot be stored is reported to ``skip`` with the reason.

    A work without an id (a broken answer) holds the watermark: re-reading the window may get it whole.
    A work whose title is empty is ``permanent``: OpenAlex has works without a title, and re-reading
    the window would return it untitled again, holding the watermark for ever."""
    records = []
    results = page["results"]
    for index, work in enumerate(results.items() if isinstance(results, JsonStream) else results):
        record = parse_work(work) if isinstance(work, dict) else None
        if record is not None:
            records.append(record)
        elif skip is not None:
            if not isinstance(work, dict):
                skip(f"result #{index + 1}: a {type(work).__name__}, not a work object")
            elif not ids.normalize_openalex(work.get("id")):
                skip(f"result #{index + 1}: no valid OpenAlex id ({str(work.get('id'))[:60]!r}, doi {work.get('doi')!r})")
            else:
                skip(f"result #{index + 1}: {work.get('id')} has no title in OpenAlex", permanent=True)
    return records


def parse_work(work: dict) -> Record | None:
    openalex_id = ids.normalize_openalex(work.get("id"))
    title = " ".join(str(work.get("title") or work.get("display_name") or "").split())
    if not openalex_id or not title:
        return None
    raw_type = work.get("type") or ""
    doi = ids.normalize_doi(work.get("doi"))
    record_type = RECORD_TYPES.get(raw_type, "other")
    if ids.is_preprint_doi(doi):
        record_type = "preprint"
    retracted = bool(work.get("is_retracted"))
    record = Record(
        source=NAME,
        source_id=openalex_id,
        record_type=record_type,
        title=title,
        url=ids.url_for("doi", doi) if doi else ids.url_for("openalex", openalex_id),
        abstract=rebuild_abstract(work.get("abstract_inverted_index")),
        authors=parse_authors(work.get("authorships")),
        structured_authors=[
            a for a in (parse_author(n, order="given_first") for n in parse_authors(work.get("authorships"))) if a
        ],
        journal=_source_name(work.get("primary_location")),
        published_on=parse_date(work.get("publication_date"))
        or (str(work["publication_year"]) if work.get("publication_year") else None),
        entered_on=parse_date(work.get("created_date")),
        updated_on=parse_date(work.get("updated_date")),
        publication_types=[t for t in (raw_type, "Retracted Publication" if retracted else None) if t],
        language=work.get("language") or None,
        extra={"openalex_type": raw_type or None, "is_retracted": retracted, **_citation(work.get("biblio"))},
    )
    record.add_id("openalex", openalex_id)
    record.add_id("doi", doi)
    work_ids = work.get("ids") or {}
    record.add_id("pmid", _trailing_number(work_ids.get("pmid")))
    record.add_id("pmcid", _trailing_number(work_ids.get("pmcid")))
    add_version_links(record, work, doi)
    return record


def _citation(biblio) -> dict[str, str]:
    """``biblio``: volume, issue, first_page–last_page."""
    if not isinstance(biblio, dict):
        return {}
    first, last = (str(biblio.get(k) or "").strip() for k in ("first_page", "last_page"))
    values = {
        "volume": str(biblio.get("volume") or "").strip(),
        "issue": str(biblio.get("issue") or "").strip(),
        "pages": f"{first}-{last}" if first and last and last != first else first,
    }
    return {k: v for k, v in values.items() if v}


def rebuild_abstract(index: dict | None) -> str | None:
    """Words placed back at their positions (the inverted index loses original spacing)."""
    if not isinstance(index, dict) or not index:
        return None
    positions: dict[int, str] = {}
    for word, places in index.items():
        for place in places or []:
            if isinstance(place, int):
                positions[place] = word
    text = " ".join(positions[i] for i in sorted(positions))
    text = strip_tags(html.unescape(text))  # JATS tags (<sec>, <title>) survive indexing, some escaped (&lt;i&gt;)
    return text or None


def parse_authors(authorships) -> list[str]:
    names = []
    for authorship in authorships or []:
        author = authorship.get("author") or {}
        name = author.get("display_name") or authorship.get("raw_author_name")
        if name:
            names.append(" ".join(name.split()))
    return names


def add_version_links(record: Record, work: dict, own_doi: str | None) -> None:
    """Other versions listed as locations: a preprint's journal article, an article's preprint."""
    for location in work.get("locations") or []:
        if not isinstance(location, dict):
            continue
        doi = _location_doi(location)
        if not doi or doi == own_doi:
            continue
        if record.record_type == "preprint" and not ids.is_preprint_doi(doi) and location.get("version") == "publishedVersion":
            record.add_link("preprint_of", "doi", doi)
        elif record.record_type == "article" and ids.is_preprint_doi(doi):
            record.add_link("has_preprint", "doi", doi)


def _location_doi(location: dict) -> str | None:
    raw_id = str(location.get("id") or "")
    if raw_id.startswith("doi:"):
        return ids.normalize_doi(raw_id[4:])
    landing = str(location.get("landing_page_url") or "")
    return ids.normalize_doi(landing) if "doi.org/" in landing else None


def _source_name(location) -> str | None:
    source = (location or {}).get("source") or {}
    return source.get("display_name") or None


def _trailing_number(value) -> str | None:
    match = _TRAILING_NUMBER_RE.search(str(value or ""))
    return match.group(1) if match else None
