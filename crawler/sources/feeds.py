"""Journal table-of-contents feeds and regulatory news feeds (RSS 0.9x/1.0/2.0, Atom).

One instance per ``[[feeds]]`` entry, named ``feed:<name>``; each keeps its own state, so one
broken feed fails only its own source run.

Incremental strategy
    A feed shows only its current window (an issue, the online-first list, the latest press
    releases): there is no date query and no paging. Each run sends ONE conditional GET of
    ``url`` (``If-None-Match`` from the stored ETag, ``If-Modified-Since`` from the stored
    Last-Modified). ``304 Not Modified`` yields nothing and keeps the state; a ``200`` is parsed
    in full and its validators replace the stored ones (a 200 without them clears them).
    Entries are stored under a source_id that is stable across runs (entry id/guid, else the
    link without tracking parameters, else a hash of title and date, as rss2email does), so an
    entry seen again is recognised as unchanged. The pipeline's date window is not applied to
    entries: the feed itself is the window, and an item posted late with an old date must still
    be kept. Poll often enough that items do not scroll out of the feed between runs.
Filtering
    Entries are kept when [topic].match_terms occur in the title or abstract, unless the entry
    sets ``filter = false``; the search log records entries read vs kept for each fetch.
Dates
    published_on = published, else updated (dc:date), else prism:coverDate /
    prism:publicationDate, else the date in a ScienceDirect description. entered_on = the
    entry's own date; entries without one (ScienceDirect) get the date the feed first showed
    them, remembered in the state for entries still in the feed (so the record does not change
    on every run).
Identifiers
    DOI from prism:doi, dc:identifier (``doi:``, ``info:doi/`` or bare), a DOI-like guid, or the
    link (doi.org links, ``/doi/10.…`` and other paths ending in a DOI), lower-cased; links of
    ``kind = "news"`` feeds give no identifier (a press release linking to a paper is not it).
    PubMed search feeds: the PMID from the guid (``pubmed:N``), dc:identifier (``pmid:N``) or
    the pubmed.ncbi.nlm.nih.gov link. DOIs in free text (summaries) are never used: they often
    name another work.
Gotchas handled (sources.md §8–9)
    * The body is parsed with feedparser from an in-memory stream: feedparser given ``bytes``
      would try to open them as a file name or URL.
    * Bot-check / WAF pages served with HTTP 200 (OUP "Validate User", Cloudflare) are detected
      and fail the run with the page title; an unreadable feed without entries fails the run;
      a malformed feed that still yields entries is parsed with a warning.
    * feedparser keeps only the last of repeated ``dc:identifier`` elements (PubMed sends
      ``pmid:`` then ``doi:``), hence the guid/link fallbacks for the PMID.
    * Nature's prism:doi can be upper case (DOIs are lower-cased); Taylor & Francis puts the
      article title in the item's prism:publicationName (ignored when equal to the title).
    * ScienceDirect items carry no DOI and no date; their description is only
      "Publication date / Source / Author(s)", which is parsed into date, journal and authors
      instead of being stored as an abstract.
    * Titles may carry HTML or a byte-order mark (Pensoft); authors may come as one
      comma-separated string ("Kaur, M., Shukla, A.") and are split into names.
Etiquette
    One request per feed and run, conditional; the shared client spaces requests to one host
    (several feeds on nature.com / rss.sciencedirect.com) and retries 429/5xx.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from crawler import clock
from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.http import Response
from crawler.records import Record
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import has_tags, looks_like_html, mentions_notice, notice_kind, parse_date, strip_tags
from crawler.sources.settings.feeds import Settings as Settings  # the keys of its table, declared apart

CORPUS_DIR = "feeds"

#: feedparser exceptions that do not make a feed unreadable (encoding guesses, content type).
BENIGN_BOZO = ("CharacterEncodingOverride", "CharacterEncodingUnknown", "NonXMLContentType")

#: Query parameters that only track where a click came from; removed from stored links.
TRACKING_PARAMS = {"af", "rss", "dgcid", "track", "rft_dat", "cmpid"}


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    url = ctx.settings["url"]
    response = fetch_conditional(ctx, url)
    if response is None:
        ctx.log_query(url, hits=0, status=304, read=0)
        return
    result = read_feed(
        response.content,
        ctx.name,
        kind=ctx.settings.get("kind"),
        fetched_on=ctx.until.isoformat(),
        first_seen=ctx.state.get("first_seen") or {},
        url=response.url,
        warn=ctx.warn,
        skip=lambda reason: ctx.skip(reason, permanent=True),  # a feed is read whole every run: see skip()
    )
    kept = filter_records(ctx, result.records)
    ctx.log_query(
        url,
        hits=len(kept),
        status=response.status,
        read=len(result.records),
        filtered=ctx.settings.get("filter", True) is not False,
    )
    remember_validators(ctx, response)
    remember_first_seen(ctx, kept, result.undated)
    if kept:
        yield kept


def fetch_conditional(ctx: CrawlContext, url: str) -> Response | None:
    """GET ``url`` with the stored validators; None when the server answers 304 Not Modified."""
    headers = {}
    if ctx.state.get("etag"):
        headers["If-None-Match"] = ctx.state["etag"]
    if ctx.state.get("last_modified"):
        headers["If-Modified-Since"] = ctx.state["last_modified"]
    response = ctx.http.get(url, source=ctx.name, headers=headers or None, ok_statuses=(200, 304))
    return None if response.status == 304 else response


def remember_validators(ctx: CrawlContext, response: Response) -> None:
    """Store the ETag / Last-Modified of a 200 answer (dropping stale ones it did not send)."""
    for key, header in (("etag", "ETag"), ("last_modified", "Last-Modified")):
        value = response.headers.get(header)
        if value:
            ctx.state[key] = value
        else:
            ctx.state.pop(key, None)


def remember_first_seen(ctx: CrawlContext, records: list[Record], undated: set[str]) -> None:
    """Keep the first-seen date of undated entries still listed, so their entered_on is stable."""
    seen = {r.source_id: r.entered_on for r in records if r.source_id in undated and r.entered_on}
    if seen:
        ctx.state["first_seen"] = seen
    else:
        ctx.state.pop("first_seen", None)


def filter_records(ctx: CrawlContext, records: list[Record]) -> list[Record]:
    ctx.count_downloaded(len(records))
    if ctx.settings.get("filter", True) is False:
        return records
    return [r for r in records if ctx.matches_topic(r.title, r.abstract)]


# --------------------------------------------------------------------------- parsing


@dataclass
class FeedResult:
    records: list[Record] = field(default_factory=list)
    undated: set[str] = field(default_factory=set)  # source_ids whose entered_on is a first-seen date
    title: str | None = None


def parse_file(body: bytes, filename: str) -> list[Record]:
    return parse_feed(body, f"feed:{filename}")


def parse_feed(
    body: bytes,
    source: str,
    *,
    kind: str | None = None,
    fetched_on: str | None = None,
    first_seen: dict[str, str] | None = None,
    url: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Record]:
    """Parse a feed (any RSS/Atom flavour) into records; SourceError for pages that are no feed."""
    return read_feed(body, source, kind=kind, fetched_on=fetched_on, first_seen=first_seen, url=url, warn=warn).records


def read_feed(
    body: bytes,
    source: str,
    *,
    kind: str | None = None,
    fetched_on: str | None = None,
    first_seen: dict[str, str] | None = None,
    url: str | None = None,
    warn: Callable[[str], None] | None = None,
    skip: Callable[[str], None] | None = None,
) -> FeedResult:
    """Parse a feed. An entry that cannot be stored (no title, unreadable) goes to ``skip`` (the crawl
    counts it as skipped), else to ``warn``."""
    import feedparser  # here, not at the top: ~0.1 s of imports that every command would pay for, feeds or not

    report = skip or warn
    parsed = feedparser.parse(io.BytesIO(body))  # never the bytes themselves: feedparser would try them as a path
    problem = check_feed(parsed, body, source, url)
    if problem and warn:
        warn(problem)
    fetched_on = fetched_on or clock.today().isoformat()
    first_seen = first_seen or {}
    feed = parsed.feed
    result = FeedResult(title=clean_text(feed.get("title")) or None)
    journal = feed_journal(parsed)
    seen_ids: set[str] = set()
    for index, entry in enumerate(parsed.entries):
        try:
            record, undated = parse_entry(entry, source, journal=journal, kind=kind, fetched_on=fetched_on, first_seen=first_seen)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # one odd entry must not sink the feed
            if report:
                report(f"entry {index + 1} of the feed: unreadable ({type(exc).__name__}: {exc}){entry_hint(entry)}")
            continue
        if record is None:
            if report:
                report(f"entry {index + 1} of the feed: no title{entry_hint(entry)}")
            continue
        if record.source_id in seen_ids:
            continue
        seen_ids.add(record.source_id)
        result.records.append(record)
        if undated:
            result.undated.add(record.source_id)
    return result


def entry_hint(entry) -> str:
    """How a skipped entry can be found in the feed: its link or id."""
    try:
        where = dict.get(entry, "link") or dict.get(entry, "id")
    except TypeError:
        return ""
    return f" ({str(where)[:120]})" if where else ""


def check_feed(parsed, body: bytes, source: str, url: str | None = None) -> str | None:
    """Raise SourceError when the body is not a usable feed; return a warning for a damaged one."""
    where = f"[[feeds]] {source.split(':', 1)[-1]}"
    if not body or not body.strip():
        raise SourceError(
            source, "the feed URL returned an empty body", hint=f"the url of {where} and whether the site is up", url=url
        )
    exc = parsed.get("bozo_exception")
    reason = f"{type(exc).__name__}: {exc}" if exc is not None else "not recognised as RSS or Atom"
    if not parsed.get("version"):
        if looks_like_html(body):
            title = html_title(body)
            raise SourceError(
                source,
                f"got an HTML page instead of a feed{f' (page title {title!r})' if title else ''}",
                hint=f"the url of {where}; the site may be showing a bot check or login page to litmon (it is retried on the next run)",
                url=url,
            )
        raise SourceError(
            source, f"the response is not an RSS or Atom feed ({reason}): {snippet(body)!r}", hint=f"the url of {where}", url=url
        )
    benign = exc is None or type(exc).__name__ in BENIGN_BOZO
    if parsed.get("bozo") and not benign:
        if not parsed.entries:
            raise SourceError(
                source,
                f"the feed is malformed and has no readable entries ({reason})",
                hint=f"the url of {where}; the feed may be truncated or broken (it is retried on the next run)",
                url=url,
            )
        return f"the feed is malformed ({reason}); parsed its {len(parsed.entries)} readable entries anyway"
    return None


def parse_entry(
    entry, source: str, *, journal: str | None, kind: str | None, fetched_on: str, first_seen: dict[str, str]
) -> tuple[Record | None, bool]:
    """One feed entry -> (Record, whether entered_on is a first-seen date); (None, False) without a title."""
    title = entry_text(entry, "title")
    if not title:
        return None, False
    link = clean_url(entry.get("link"))
    sd = parse_sciencedirect_summary(entry_text(entry, "summary"))
    # dict.get: feedparser's own get() answers "updated" with "published" when there is no update
    published, updated = dict.get(entry, "published_parsed"), dict.get(entry, "updated_parsed")
    entry_date = parse_date(published) or parse_date(updated)
    raw_date = dict.get(entry, "published") or dict.get(entry, "updated") or entry.get("prism_coverdate") or ""
    source_id = build_source_id(entry.get("id"), link, title, raw_date)
    undated = entry_date is None
    record = Record(
        source=source,
        source_id=source_id,
        record_type="article",
        title=title,
        url=link,
        abstract=None if sd else pick_abstract(entry),
        authors=(sd or {}).get("authors") or entry_authors(entry),
        journal=entry_journal(entry, title) or (sd or {}).get("journal") or journal,
        published_on=entry_date
        or parse_date(entry.get("prism_coverdate"))
        or parse_date(entry.get("prism_publicationdate"))
        or (sd or {}).get("date"),
        entered_on=entry_date or first_seen.get(source_id) or fetched_on,
    )
    if published and updated:
        changed = parse_date(updated)
        record.updated_on = changed if changed != record.published_on else None
    sections = [s for s in [clean_text(entry.get("prism_section"))] if s]
    record.publication_types = sections
    record.keywords = list(
        dict.fromkeys(t for t in (clean_text(tag.get("term")) for tag in entry.get("tags") or []) if t and t not in sections)
    )
    # a news item linking to an article is not that article: no identifiers from news links
    id_link = None if kind == "news" else link
    doi = entry_doi(entry, id_link)
    if doi:
        record.add_id("doi", doi)
    pmid = entry_pmid(entry, id_link)
    if pmid:
        record.add_id("pmid", pmid)
    record.record_type = classify(record, kind, doi)
    return record, undated


def classify(record: Record, kind: str | None, doi: str | None) -> str:
    if kind == "news":
        return "news"
    if notice_kind(record.title) or any(mentions_notice(s) for s in record.publication_types):
        return "notice"
    if ids.is_preprint_doi(doi):
        return "preprint"
    return "article"


# --------------------------------------------------------------------------- fields


def entry_text(entry, key: str) -> str:
    """An entry's title/summary as plain text (HTML stripped when typed as HTML or visibly tagged)."""
    value = entry.get(key)
    if not value:
        return ""
    detail = entry.get(f"{key}_detail") or {}
    if "html" in (detail.get("type") or "text/html") or has_tags(value):
        return strip_tags(value)
    return clean_text(value)


#: Nature's "Molecular Psychiatry, Published online: 05 March 2024; doi:10.1038/…" lead-in.
_CITATION_PREFIX_RE = re.compile(r"^[^;]{2,120}, Published online: [^;]{6,30}; doi:\s*\S+\s*", re.I)
_CITATION_ONLY_RE = re.compile(
    r"^(?:[^,]{1,80}, )?(?:Volume|Vol\.) \S+, (?:Issue|No\.) \S+,[^.]{0,60}(?:Pages?|pp?\.) ?[\d\-–e]+[\s.]*$", re.I
)
_PUBMED_TRAILER_RE = re.compile(r"\s*PMID:\s*\d+\s*(?:\|\s*DOI:\s*\S+)?\s*$")


def pick_abstract(entry) -> str | None:
    """The summary, unless a content:encoded body holds more: Wiley puts the abstract there, and
    PubMed truncates the summary ("…") while its content holds the whole abstract between a
    citation line and a "PMID: … | DOI: …" line, which are cut off."""
    summary = entry_text(entry, "summary")
    best = summary
    core = summary.rstrip(".… ")[:200]
    for content in entry.get("content") or []:
        value = content.get("value") or ""
        text = strip_tags(value) if "html" in (content.get("type") or "text/html") else clean_text(value)
        if core and core in text:
            text = _PUBMED_TRAILER_RE.sub("", text[text.index(core) :])
        if len(text) > len(best):
            best = text
    best = _CITATION_PREFIX_RE.sub("", best)
    best = re.sub(r"^(?:abstract)\s*[:.]?\s+", "", best, flags=re.I)
    if _CITATION_ONLY_RE.match(best) or not re.search(r"\w\w", best):
        return None  # Atypon's "Volume 67, Issue 4, December 2021, Page 283-289" is no abstract
    return best or None


def entry_authors(entry) -> list[str]:
    names: list[str] = [a["name"] for a in entry.get("authors") or [] if isinstance(a, dict) and a.get("name")]
    names = names or ([entry["author"]] if entry.get("author") else [])
    result: list[str] = []
    for name in names:
        for part in split_authors(name):
            if part not in result:
                result.append(part)
    return result


_INITIALS_RE = re.compile(r"^(?:[A-Z]{1,3}\.?[\s\-]*)+$")


def split_authors(text: str) -> list[str]:
    """Split an author string that lists several people ("Kaur, M., Shukla, A.", "A B, C D and E F").

    A lone "Surname, Given names" is kept as one name."""
    text = clean_text(re.sub(r"\([^()]*@[^()]*\)", "", text or ""))
    text = re.sub(r"\s*<?[\w.+-]+@[\w-]+\.[\w.-]+>?", "", text).strip(" ,;")
    if not text:
        return []
    if ";" in text:
        parts = text.split(";")
    elif "," not in text:
        parts = re.split(r"\s+(?:and|&)\s+", text)
    elif text.count(",") == 1 and " " not in text.split(",")[0].strip():
        parts = [text]  # "Rose, Jeffrey P."
    else:
        parts = []
        for token in (t.strip() for t in text.split(",")):
            if not token:
                continue
            if parts and _INITIALS_RE.match(token) and "," not in parts[-1]:
                parts[-1] = f"{parts[-1]}, {token}"
            else:
                parts.extend(p for p in re.split(r"^(?:and|&)\s+|\s+(?:and|&)\s+", token) if p)
    names = (clean_text(p).strip(" ,") for p in parts)
    return [n for n in names if n and n.lower().rstrip(".") not in ("et al", "others")]


def entry_journal(entry, title: str) -> str | None:
    """The journal named on the entry (Taylor & Francis puts the article title in prism:publicationName)."""
    for key in ("prism_publicationname", "prism_publicationtitle", "dc_source"):
        value = clean_text(entry.get(key))
        if value and value.casefold() != title.casefold():
            return value
    return None


_FEED_TITLE_CLEANUPS = (
    (re.compile(r"^ScienceDirect Publication:\s*", re.I), ""),
    (re.compile(r"^Latest (?:Articles|Issue|Results)(?: \d+ Articles)? (?:from|of|in)\s+", re.I), ""),
    (re.compile(r"^[^:]{1,40}:\s*(.+?):\s*Table of Contents\s*$", re.I), r"\1"),
    (
        re.compile(
            r"\s*(?:[:|\-–]\s*)?(?:Table of Contents|Current Issue|Latest Issue|Most Recent Articles|"
            r"Advance Access|Online First|Latest Articles|Latest Results)\s*$",
            re.I,
        ),
        "",
    ),
)


def feed_journal(parsed) -> str | None:
    """The journal a whole feed belongs to: prism:publicationName, else the cleaned feed title.
    PubMed search feeds are titled with their query, which is no journal."""
    feed = parsed.feed
    value = clean_text(feed.get("prism_publicationname"))
    if value:
        return value
    if "pubmed" in (feed.get("generator") or "").lower():
        return None
    title = clean_text(feed.get("title"))
    for pattern, replacement in _FEED_TITLE_CLEANUPS:
        title = pattern.sub(replacement, title).strip()
    return title or None


_SD_RE = re.compile(
    r"^Publication date:\s*(?P<date>.*?)\s*Source:\s*(?P<source>.*?)\s*(?:Author\(s\):\s*(?P<authors>.*))?$", re.S
)


def parse_sciencedirect_summary(text: str) -> dict[str, Any] | None:
    """ScienceDirect's description: "Publication date: … Source: Journal, Volume N Author(s): …"."""
    match = _SD_RE.match(text or "")
    if not match:
        return None
    date_text = re.sub(r"^Available online\s+", "", match.group("date"), flags=re.I)
    journal = re.split(r",\s*(?:Volume|Vol\.|In press|Article)\b", match.group("source"), maxsplit=1)[0].strip()
    authors = [a.strip() for a in (match.group("authors") or "").split(",") if a.strip()]
    return {"date": parse_date(date_text), "journal": journal or None, "authors": authors}


def entry_doi(entry, link: str | None) -> str | None:
    for value in (entry.get("prism_doi"), entry.get("dc_identifier"), entry.get("id")):
        doi = doi_from_identifier(value)
        if doi:
            return doi
    return doi_from_url(link)


def doi_from_identifier(value) -> str | None:
    """``doi:10.…``, ``info:doi/10.…``, a bare ``10.…`` or a DOI URL; None for anything else."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    low = text.lower()
    if low.startswith(("http://", "https://")):
        return doi_from_url(text)
    if low.startswith("info:doi/"):
        return ids.normalize_doi(text[9:])
    if low.startswith("doi:") or low.startswith("10."):
        return ids.normalize_doi(text)
    return None


_PATH_DOI_RE = re.compile(r"/(10\.\d{4,9}/.+)$")
_PATH_SUFFIX_RE = re.compile(r"/(?:full|abstract|abs|pdf|epdf|pdfdirect|html|fulltext|epub|meta|summary)/?$", re.I)


def doi_from_url(url: str | None) -> str | None:
    """The DOI in a doi.org link or in a path such as ``/doi/full/10.1080/…`` (query ignored)."""
    if not url:
        return None
    parts = urlsplit(url)
    path = unquote(parts.path)
    host = parts.netloc.lower()
    if host.endswith("doi.org"):
        return ids.normalize_doi(path.lstrip("/"))
    match = _PATH_DOI_RE.search(path)
    if not match:
        return None
    doi = match.group(1)
    while _PATH_SUFFIX_RE.search(doi):
        doi = _PATH_SUFFIX_RE.sub("", doi)
    return ids.normalize_doi(doi)


def entry_pmid(entry, link: str | None) -> str | None:
    for value in (entry.get("id"), entry.get("dc_identifier")):
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(?:pubmed:|pmid:|info:pmid/)\s*(\d+)\s*", value, re.I)
            if match:
                return ids.normalize_pmid(match.group(1))
    if link:
        parts = urlsplit(link)
        if parts.netloc.lower().endswith(("pubmed.ncbi.nlm.nih.gov", "ncbi.nlm.nih.gov")):
            match = re.fullmatch(r"/(?:pubmed/)?(\d+)/?", parts.path)
            if match:
                return ids.normalize_pmid(match.group(1))
    return None


def build_source_id(entry_id, link: str | None, title: str, raw_date: str) -> str:
    """Stable per entry: its id/guid, else its cleaned link, else a hash of title and date."""
    if isinstance(entry_id, str) and entry_id.strip():
        return entry_id.strip()
    if link:
        return link
    return "sha1:" + hashlib.sha1(f"{title}\n{raw_date}".encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- helpers shared with pages


def clean_text(value) -> str:
    if not value or not isinstance(value, str):
        return ""
    return " ".join(value.replace("\ufeff", "").split())


def snippet(body: bytes, length: int = 100) -> str:
    return " ".join(body[:length].decode("utf-8", "replace").split())


def html_title(body: bytes) -> str | None:
    match = re.search(rb"<title[^>]*>(.*?)</title>", body[:20000], re.I | re.S)
    return clean_text(match.group(1).decode("utf-8", "replace")) or None if match else None


def clean_url(url: str | None) -> str | None:
    """A link without click-tracking parameters (utm_*, ?rss=1, ?af=R, …); PubMed links lose their query."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url or None
    if parts.netloc.lower().endswith("pubmed.ncbi.nlm.nih.gov"):
        query = ""
    else:
        pairs = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
        ]
        query = urlencode(pairs) if pairs else ""
        if pairs and len(pairs) == len(parse_qsl(parts.query, keep_blank_values=True)):
            query = parts.query  # nothing removed: keep it byte for byte
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
