"""HTML listing pages without a feed (e.g. FDA Drug Safety Communications): one instance per ``[[pages]]``.

Each instance is named ``page:<name>`` and configured with the page ``url`` and CSS selectors:
``item`` selects each entry of the listing; inside it ``title`` (its text), ``link`` (an element
with ``href``, or one containing an ``<a href>``), and the optional ``date`` (its text, or the
``datetime`` attribute of a ``<time>``) and ``summary``. ``date_pattern`` (a regular expression)
reads the date out of running text: it is searched in the text of the ``date`` element, or of the
whole item when there is no ``date`` selector, and its first group (else the whole match) is the
date — e.g. FDA's list items that start with the date as plain text ("08-28-2025 FDA to …").

Incremental strategy
    Like a feed, a listing page shows its own window (the latest entries), so there is no date
    query and no paging: each run sends ONE conditional GET (``If-None-Match`` /
    ``If-Modified-Since`` from the stored ETag / Last-Modified; ``304`` yields nothing and keeps
    the state). Entries are stored under a stable source_id — the resolved link, else a hash of
    the title — so an entry seen again is recognised as unchanged.
Parsing
    BeautifulSoup with the lxml backend (the page's declared charset is honoured). Links are
    resolved with ``urljoin`` against the page URL (after redirects, and a ``<base href>``);
    ``javascript:`` and ``mailto:`` links are ignored (the entry is kept without a URL). A link
    to a DOI (doi.org, ``/doi/10.…``) gives the entry that DOI, except on ``kind = "news"``
    pages. Dates in common formats (2024-03-05, 03/05/2024 and 03-05-2024 — US month first —,
    March 5, 2024, 5 March 2024) become ISO dates; anything else gives no date, never an error. entered_on is
    the entry's date, else the date the page first listed it (remembered in the state while it
    is listed).
Failures
    An ``item`` selector that matches nothing, or a ``title`` selector that matches inside no
    item, fails the run with a message naming ``[[pages]] <name>``: the page layout has most
    likely changed (or a bot-check page was served; its title is quoted).
Filtering and types
    Entries are kept when [topic].match_terms occur in the title or summary, unless the entry sets
    ``filter = false``. ``kind = "news"`` stores them as news, otherwise as articles.
Etiquette
    One request per page and run, conditional; the shared client spaces requests per host.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from crawler import clock
from crawler.errors import SourceError
from crawler.records import Record
from crawler.sources.base import CrawlContext
from crawler.sources.feeds import (
    clean_text,
    clean_url,
    doi_from_url,
    fetch_conditional,
    filter_records,
    remember_first_seen,
    remember_validators,
)
from crawler.sources.parsing import parse_date
from crawler.sources.settings.pages import Settings as Settings  # the keys of its table, declared apart

#: No recorded corpus exists for configured pages (each site's markup differs); see tests/fixtures/pages.
CORPUS_DIR = None

IGNORED_SCHEMES = ("javascript:", "mailto:", "tel:", "data:")


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    url = ctx.settings["url"]
    response = fetch_conditional(ctx, url)
    if response is None:
        ctx.log_query(url, hits=0, status=304, read=0)
        return
    undated: set[str] = set()
    records = parse_page(
        response.content,
        ctx.name,
        ctx.settings,
        page_url=response.url or url,
        fetched_on=ctx.until.isoformat(),
        first_seen=ctx.state.get("first_seen") or {},
        undated=undated,
        warn=ctx.warn,
        skip=lambda reason: ctx.skip(reason, permanent=True),  # a page is read whole every run: see skip()
    )
    kept = filter_records(ctx, records)
    ctx.log_query(
        url, hits=len(kept), status=response.status, read=len(records), filtered=ctx.settings.get("filter", True) is not False
    )
    remember_validators(ctx, response)
    remember_first_seen(ctx, kept, undated)
    if kept:
        yield kept


# --------------------------------------------------------------------------- parsing


def parse_page(
    body: bytes,
    source: str,
    settings: dict[str, Any],
    *,
    page_url: str | None = None,
    fetched_on: str | None = None,
    first_seen: dict[str, str] | None = None,
    undated: set[str] | None = None,
    warn: Callable[[str], None] | None = None,
    skip: Callable[[str], None] | None = None,
) -> list[Record]:
    """Parse a listing page with the selectors of one ``[[pages]]`` entry.

    ``undated`` (if given) receives the source_ids whose entered_on is a first-seen date. Each selected
    item without a title goes to ``skip`` (the crawl counts it as skipped, naming the item)."""
    # here, not at the top: ~0.2 s of imports (BeautifulSoup, soupsieve) that every command would pay for, pages or not
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    page_url = page_url or settings["url"]
    fetched_on = fetched_on or clock.today().isoformat()
    first_seen = first_seen or {}
    where = f"[[pages]] {settings.get('name') or source.split(':', 1)[-1]}"
    with warnings.catch_warnings():
        # a page that answers with an XML document (a feed, an error document) is read as HTML like any other: its
        # selectors then match nothing and the source fails with an error naming the page; BeautifulSoup's own
        # warning would only add a line naming no source to the operator's log
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(body or b"", "lxml")
    base = page_base(soup, page_url)
    items = select(soup, settings["item"], "item", source, where, page_url)
    if not items:
        raise SourceError(
            source,
            f"the selectors in {where} matched nothing: item = {settings['item']!r} selects no element"
            f"{page_title_note(soup)}; the page layout may have changed",
            hint=f"open the page in a browser and update item/title/link in {where}",
            url=page_url,
        )
    records: list[Record] = []
    seen: set[str] = set()
    untitled: list[str] = []
    for number, item in enumerate(items, 1):
        record = parse_item(item, source, settings, base=base, where=where, page_url=page_url)
        if record is None:
            text = clean_text(item.get_text(" "))[:80]
            untitled.append(
                f"item {number} of {len(items)} on the page: no title (selector {settings['title']!r})"
                + (f" ({text!r})" if text else "")
            )
            continue
        if record.source_id in seen:
            continue
        seen.add(record.source_id)
        if record.entered_on is None:
            record.entered_on = first_seen.get(record.source_id) or fetched_on
            if undated is not None:
                undated.add(record.source_id)
        records.append(record)
    if not records:
        raise SourceError(
            source,
            f"the selectors in {where} matched nothing: title = {settings['title']!r} finds no text in any of "
            f"the {len(items)} element(s) selected by item = {settings['item']!r}{page_title_note(soup)}; "
            "the page layout may have changed",
            hint=f"open the page in a browser and update item/title/link in {where}",
            url=page_url,
        )
    if skip is not None:
        for reason in untitled:
            skip(reason)
    if untitled and warn and len(untitled) > len(items) // 2:
        warn(f"{len(untitled)} of {len(items)} items on the page have no title (selector {settings['title']!r}); skipped")
    return records


def parse_item(item, source: str, settings: dict[str, Any], *, base: str, where: str, page_url: str) -> Record | None:
    """One selected element -> Record; None when the title selector finds no text in it."""
    title_el = select_one(item, settings["title"], "title", source, where, page_url)
    title = clean_text(title_el.get_text(" ")) if title_el is not None else ""
    if not title:
        return None
    link = item_link(select_one(item, settings["link"], "link", source, where, page_url), base)
    date = None
    pattern = date_pattern(settings, source, where, page_url)
    if settings.get("date"):
        date = item_date(select_one(item, settings["date"], "date", source, where, page_url), pattern)
    elif pattern is not None:
        date = item_date(item, pattern)
    summary = None
    if settings.get("summary"):
        summary_el = select_one(item, settings["summary"], "summary", source, where, page_url)
        summary = clean_text(summary_el.get_text(" ")) if summary_el is not None else None
    record = Record(
        source=source,
        source_id=item_id(link) if link else "sha1:" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:20],
        record_type="news" if settings.get("kind") == "news" else "article",
        title=title,
        url=link,
        abstract=summary or None,
        published_on=date,
        entered_on=date,
    )
    doi = doi_from_url(link) if settings.get("kind") != "news" else None
    if doi:
        record.add_id("doi", doi)
    return record


def item_id(link: str) -> str:
    """An entry's stable id: its link without scheme, host and port (``/news/2026/ketamine?x=1``), so
    that moving the page to another host or port (a new base URL, a proxy) does not duplicate its
    entries. Stored ids of the older form are rewritten by migration m009."""
    parts = urlsplit(link)
    if not parts.scheme or not parts.netloc:
        return link
    return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))


def item_link(element, base: str) -> str | None:
    """The absolute href of the element (or of the first <a href> inside it); None for javascript:/mailto:."""
    if element is None:
        return None
    href = element.get("href")
    if not href:
        anchor = element.find("a", href=True)
        href = anchor.get("href") if anchor is not None else None
    href = (href or "").strip()
    if not href or href.startswith("#") or href.lower().startswith(IGNORED_SCHEMES):
        return None
    return clean_url(urljoin(base, href))


def date_pattern(settings: dict[str, Any], source: str, where: str, url: str) -> re.Pattern | None:
    text = settings.get("date_pattern")
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise SourceError(
            source,
            f"date_pattern = {text!r} in {where} is not a valid regular expression: {exc}",
            hint=f"the date_pattern in {where}",
            url=url,
        ) from None


def item_date(element, pattern: re.Pattern | None = None) -> str | None:
    if element is None:
        return None
    if pattern is not None:
        match = pattern.search(clean_text(element.get_text(" ")))
        if match is None:
            return None
        return parse_date(match.group(1) if pattern.groups else match.group(0))
    for candidate in (element.get("datetime"), element.get("content"), element.get_text(" ")):
        date = parse_date(candidate) if candidate else None
        if date:
            return date
    time_el = element.find("time")
    if time_el is not None and time_el.get("datetime"):
        return parse_date(time_el["datetime"])
    return None


# --------------------------------------------------------------------------- helpers


def select(node, selector: str, key: str, source: str, where: str, url: str) -> list:
    from soupsieve import SelectorSyntaxError  # (imported with BeautifulSoup by parse_page)

    try:
        return node.select(selector)
    except (SelectorSyntaxError, ValueError, NotImplementedError) as exc:
        raise SourceError(
            source,
            f"{key} = {selector!r} in {where} is not a valid CSS selector: {exc}",
            hint=f"the {key} selector in {where}",
            url=url,
        ) from None


def select_one(node, selector: str, key: str, source: str, where: str, url: str):
    found = select(node, selector, key, source, where, url)
    return found[0] if found else None


def page_base(soup, page_url: str) -> str:
    base = soup.find("base", href=True)
    return urljoin(page_url, base["href"].strip()) if base is not None else page_url


def page_title_note(soup) -> str:
    title = clean_text(soup.title.get_text()) if soup.title is not None else ""
    return f" (the page served is titled {title[:80]!r})" if title else ""
