"""bioRxiv and medRxiv preprints from the CSHL API (``api.biorxiv.org``).

Queries
    For each server in ``servers`` (default ``["medrxiv", "biorxiv"]``) two page chains are read:

    ``details/<server>/<since>/<until>/<cursor>/json[?category=...]``
        every version *posted* in the window. Each version is its own record
        (``source_id = "<doi>v<version>"``, ``version`` set); all versions carry the same normalised
        DOI (:func:`crawler.identifiers.normalize_doi` drops the ``vN`` suffix), so they join one
        work. ``published`` other than ``"NA"`` becomes a ``preprint_of`` link to the journal DOI.

    ``pubs/<server>/<since>/<until>/<cursor>``
        preprints whose journal version was *published* in the window. This catches old preprints
        (posted long before the window, so absent from ``details``) that have just appeared in a
        journal. A pubs entry does not carry the preprint version, so it is stored under its own
        ``source_id = "pubs:<doi>"`` with the preprint's title/authors/abstract, the preprint DOI as
        identifier and the ``preprint_of`` link: it joins the same work as the version records
        without overwriting any of them. Entries are kept when they match the topic or when their
        DOI was kept from ``details`` in this run.

No search
    The API has no keyword search, so every posting of the window is read and filtered locally
    with ``ctx.matches_topic(title, abstract)`` (after the abstract is cleaned); the search log
    records for each chain how many entries were read and how many kept. An optional ``category``
    (sent with underscores for spaces, as the API documents) narrows ``details`` on the server
    side and is applied locally to ``pubs`` entries.

Window, incremental strategy, state
    The window is the pipeline's ``ctx.since``..``ctx.until`` (posting date of a version for
    ``details``, publication date for ``pubs``); incremental runs restart at watermark − overlap
    and already stored versions are recognised by ``source_id`` and content hash. The **first**
    run reads at most ``max_backfill_days`` (default 30) before ``ctx.until`` instead of
    ``crawl.backfill_from``: without search a backfill means downloading every posting
    (bioRxiv alone posts ~100 preprints a day, i.e. thousands of pages for a few years), while the
    preprint history is searchable through Europe PMC (``SRC:PPR``), which covers both servers.
    An explicit ``--since`` is honoured as given. No ``ctx.state`` is needed.

Paging
    ``cursor`` starts at 0 and advances by the number of records actually returned: the page size
    is documented as 100 but ``details`` was observed serving 30, and stepping by a fixed size
    silently skips records. A chain stops when the cursor reaches ``messages[0].total`` (a string)
    or on an empty page (``total`` has been seen to overstate the real count; the page past the
    end answers ``"no posts found"``). ``max_pages`` (default 1000) caps one chain as a guard
    against an API ignoring the cursor; hitting it is reported as a warning.

Errors and gotchas
    * errors arrive as HTTP 200 with ``messages[0].status`` other than ``"ok"`` → SourceError;
      ``"no posts found"`` (details) and the free-text ``"no articles found ..."`` (pubs) are
      empty results, not errors;
    * an empty HTTP 200 body was observed on ``details`` (Sept 2026) → SourceError with a hint;
    * DOIs have the prefix ``10.1101`` or, since December 2025, ``10.64898``: nothing here
      hard-codes a prefix;
    * abstracts contain flattening tokens of the JATS conversion (``O_SCPCAP…C_SCPCAP`` small
      caps, ``O_LI``/``C_LIO_LI``/``C_LI`` list items, ``O_ST_ABS…C_ST_ABS`` headings,
      ``O_FIG…C_FIG`` and ``O_TBL…C_TBL`` blocks) and headings glued to the text
      (``BackgroundAs we…``): :func:`clean_abstract` repairs them;
    * ``authors`` is one ``"Last, F.; Last2, G."`` string (sometimes ``"First Last; …"``) →
      a list in the PubMed style ``"Last F."``.

Etiquette
    No published rate limit or terms; the shipped config spaces requests 1 s apart
    (``min_interval``), one connection, the shared User-Agent with the contact address.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.records import Author, Record, parse_authors
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import TAG_RE, decode_json, parse_date
from crawler.sources.settings.biorxiv import DEFAULT_MAX_BACKFILL_DAYS, DEFAULT_MAX_PAGES, DEFAULT_SERVERS
from crawler.sources.settings.biorxiv import Settings as Settings  # the keys of its table, declared apart

NAME = "biorxiv"
CORPUS_DIR = "biorxiv"
SERVERS = ("biorxiv", "medrxiv")
SERVER_LABELS = {"biorxiv": "bioRxiv", "medrxiv": "medRxiv"}

#: ``messages[0].status`` values meaning "nothing in this window / past the end", not an error.
_EMPTY_STATUS_RE = re.compile(r"^\s*no\s+(?:posts|articles|papers|records|results)\s+found", re.I)


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    servers = read_servers(ctx)
    category = read_category(ctx)
    since = build_since(ctx)
    max_pages = read_int_setting(ctx, "max_pages", DEFAULT_MAX_PAGES)
    for server in servers:
        kept_dois: set[str | None] = set()
        yield from fetch_details(ctx, server, since, category, max_pages, kept_dois)
        yield from fetch_pubs(ctx, server, since, category, max_pages, kept_dois)


def fetch_details(
    ctx: CrawlContext, server: str, since: dt.date, category: str, max_pages: int, kept_dois: set[str | None]
) -> Iterator[list[Record]]:
    """Every version posted in the window on ``server``, filtered on the topic."""
    url_base = f"{ctx.base_url}details/{server}/{since.isoformat()}/{ctx.until.isoformat()}/"
    params = {"category": category_param(category)} if category else None
    entry = ctx.log_query(
        f"details/{server}", since, ctx.until, hits=0, read=0, kept=0, pages=0, **({"category": category} if category else {})
    )
    for page in fetch_chain(ctx, url_base, "/json", params, max_pages, entry):
        records = build_records(ctx, page, build_details_record, server)
        ctx.count_downloaded(len(page))
        kept = [r for r in records if ctx.matches_topic(r.title, r.abstract)]
        kept_dois.update(r.first_id("doi") for r in kept)
        entry.params["read"] += len(page)
        entry.params["kept"] += len(kept)
        entry.hits = entry.params["kept"]
        if kept:
            yield kept


def fetch_pubs(
    ctx: CrawlContext, server: str, since: dt.date, category: str, max_pages: int, kept_dois: set[str | None]
) -> Iterator[list[Record]]:
    """Preprints of ``server`` whose journal version was published in the window."""
    url_base = f"{ctx.base_url}pubs/{server}/{since.isoformat()}/{ctx.until.isoformat()}/"
    entry = ctx.log_query(
        f"pubs/{server}", since, ctx.until, hits=0, read=0, kept=0, pages=0, **({"category": category} if category else {})
    )
    for page in fetch_chain(ctx, url_base, "", None, max_pages, entry):
        records = build_records(ctx, page, build_pubs_record, server)
        ctx.count_downloaded(len(page))
        kept = [
            r
            for r in records
            if in_category(r, category) and (ctx.matches_topic(r.title, r.abstract) or r.first_id("doi") in kept_dois)
        ]
        entry.params["read"] += len(page)
        entry.params["kept"] += len(kept)
        entry.hits = entry.params["kept"]
        if kept:
            yield kept


def fetch_chain(
    ctx: CrawlContext, url_base: str, suffix: str, params: dict | None, max_pages: int, entry
) -> Iterator[list[dict]]:
    """Yield the ``collection`` of each page, advancing the cursor by the records returned."""
    cursor = 0
    for _ in range(max_pages):
        url = f"{url_base}{cursor}{suffix}"
        entry.params["pages"] += 1
        response = ctx.http.get(url, source=ctx.name, params=params)
        collection, total = parse_envelope(response.content, url=response.url)
        if total is not None:
            entry.params["total"] = total
        if not collection:
            return
        yield collection
        cursor += len(collection)
        if total is not None and cursor >= total:
            return
    ctx.warn(
        f"stopped after {max_pages} pages (max_pages) at cursor {cursor} of {url_base}; "
        "the rest of the window was not read — narrow the window or raise max_pages"
    )


def build_records(ctx: CrawlContext, page: list[dict], builder, server: str) -> list[Record]:
    records = []
    for item in page:
        record = builder(item, server)
        if record is None:
            ctx.skip(f"an entry without a usable DOI or title: {describe_item(item)}")
        else:
            records.append(record)
    return records


def build_since(ctx: CrawlContext) -> dt.date:
    """The window start: on the first run at most ``max_backfill_days`` before ``ctx.until``."""
    if not ctx.first_run:
        return ctx.since
    days = read_int_setting(ctx, "max_backfill_days", DEFAULT_MAX_BACKFILL_DAYS)
    return max(ctx.since, ctx.until - dt.timedelta(days=days))


def read_servers(ctx: CrawlContext) -> list[str]:
    value = ctx.settings.get("servers", DEFAULT_SERVERS)
    servers = [value] if isinstance(value, str) else list(value or [])
    servers = [str(s).strip().lower() for s in servers if str(s).strip()]
    bad = [s for s in servers if s not in SERVERS]
    if bad or not servers:
        raise SourceError(
            ctx.name,
            f"invalid servers setting {value!r}",
            hint=f"[sources.{ctx.name}].servers: a list drawn from {', '.join(SERVERS)}",
        )
    return list(dict.fromkeys(servers))


def read_category(ctx: CrawlContext) -> str:
    value = ctx.settings.get("category") or ""
    if not isinstance(value, str):
        raise SourceError(
            ctx.name,
            f"invalid category setting {value!r}",
            hint=f"[sources.{ctx.name}].category: one subject category name, or empty",
        )
    return " ".join(value.replace("_", " ").split()).lower()


def read_int_setting(ctx: CrawlContext, key: str, default: int) -> int:
    value = ctx.settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SourceError(
            ctx.name, f"invalid {key} setting {value!r}", hint=f"[sources.{ctx.name}].{key}: a whole number of at least 1"
        )
    return value


def category_param(category: str) -> str:
    """The API accepts underscores for spaces ("psychiatry_and_clinical_psychology")."""
    return category.replace(" ", "_")


def in_category(record: Record, category: str) -> bool:
    if not category:
        return True
    return (record.extra.get("category") or "").lower() == category


def describe_item(item: Any) -> str:
    if not isinstance(item, dict):
        return repr(item)[:80]
    doi = item.get("doi") or item.get("preprint_doi") or item.get("biorxiv_doi")
    title = item.get("title") or item.get("preprint_title")
    return f"doi={doi!r} title={str(title)[:60]!r}"


# --------------------------------------------------------------------------- parsing


@dataclass
class Envelope:
    status: str
    collection: list[dict]
    total: int | None


def parse_envelope(body: bytes, url: str | None = None) -> tuple[list[dict], int | None]:
    """The ``collection`` and ``total`` of one answer; raise SourceError for error answers.

    ``"no posts found"`` / ``"no articles found …"`` give an empty collection, not an error.
    """
    envelope = read_envelope(body, url)
    return envelope.collection, envelope.total


def read_envelope(body: bytes, url: str | None = None) -> Envelope:
    if not body or not body.strip():
        raise SourceError(
            NAME,
            "empty answer (HTTP 200 with no body)",
            hint="whether api.biorxiv.org is degraded (an empty body was seen on /details "
            "in Sept 2026); it is retried on the next run",
            url=url,
        )
    data = decode_json(body, NAME, url=url)
    if not isinstance(data, dict):
        raise SourceError(
            NAME,
            f"expected a JSON object with 'messages' and 'collection', got {type(data).__name__}",
            hint="the base_url in the config",
            url=url,
        )
    message = first_message(data, url)
    status = str((message or {}).get("status") or "ok").strip()
    collection = data.get("collection")
    if status.lower() != "ok" and not _EMPTY_STATUS_RE.match(status):
        raise SourceError(
            NAME,
            f"the API answered status {status!r}",
            hint="the servers, category and dates of the request; the API reports errors inside HTTP 200 answers",
            url=url,
        )
    if collection is None:
        collection = []
    if not isinstance(collection, list):
        raise SourceError(
            NAME,
            f"'collection' is a {type(collection).__name__}, expected a list",
            hint="whether the API format changed",
            url=url,
        )
    return Envelope(status, [c for c in collection if isinstance(c, dict)], parse_total(message))


def first_message(data: dict, url: str | None) -> dict | None:
    messages = data.get("messages")
    if messages is None:
        if "collection" in data:
            return None
        raise SourceError(
            NAME,
            "the answer has neither 'messages' nor 'collection'",
            hint="the base_url in the config and whether the API format changed",
            url=url,
        )
    if isinstance(messages, dict):
        return messages
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return messages[0]
    raise SourceError(
        NAME, f"unexpected 'messages' block: {str(messages)[:100]!r}", hint="whether the API format changed", url=url
    )


def parse_total(message: dict | None) -> int | None:
    """``messages[0].total`` is a string ("109") or a number; None when absent or unusable."""
    if not message:
        return None
    value = message.get("total")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def parse_details(body: bytes, server: str = "") -> list[Record]:
    """All records of a ``details`` answer (no topic filter)."""
    collection, _ = parse_envelope(body)
    return [r for r in (build_details_record(item, server) for item in collection) if r is not None]


def parse_pubs(body: bytes, server: str = "") -> list[Record]:
    """All records of a ``pubs`` answer (no topic filter)."""
    collection, _ = parse_envelope(body)
    return [r for r in (build_pubs_record(item, server) for item in collection) if r is not None]


def parse_file(body: bytes, filename: str) -> list[Record]:
    """Parse any recorded answer of this API: ``details`` or ``pubs``, by its entries' fields."""
    collection, _ = parse_envelope(body, url=filename)
    server = next((s for s in SERVERS if s in filename.lower()), "")
    records = []
    for item in collection:
        is_pubs = "preprint_doi" in item or "biorxiv_doi" in item or "published_doi" in item
        record = (build_pubs_record if is_pubs else build_details_record)(item, server)
        if record is not None:
            records.append(record)
    return records


def build_details_record(item: dict, server: str = "") -> Record | None:
    """One version of a preprint from a ``details`` entry; None without DOI or title."""
    doi = ids.normalize_doi(text(item.get("doi")))
    title = clean_title(item.get("title"))
    if not doi or not title:
        return None
    version = text(item.get("version")) or version_from_doi(item.get("doi"))
    server_key = server_of(item.get("server"), server)
    record = Record(
        source=NAME,
        source_id=f"{doi}v{version}" if version else doi,
        record_type="preprint",
        title=title,
        url=content_url(server_key, doi, version),
        abstract=clean_abstract(item.get("abstract")),
        authors=split_authors(item.get("authors")),
        structured_authors=structured_authors(item.get("authors")),
        journal=SERVER_LABELS.get(server_key) or text(item.get("server")),
        published_on=parse_date(item.get("date")),
        entered_on=parse_date(item.get("date")),
        version=version,
    )
    record.add_id("doi", doi)
    add_published_link(record, item.get("published"))
    category = clean_category(item.get("category"))
    if category:
        record.keywords.append(category)
    record.extra = compact(
        {
            "server": server_key or None,
            "category": category,
            "type": text(item.get("type")),
            "license": text(item.get("license")),
            "jatsxml": text(item.get("jatsxml")),
            "author_corresponding": collapse(text(item.get("author_corresponding"))),
            "author_corresponding_institution": collapse(text(item.get("author_corresponding_institution"))),
            "funder": item.get("funder") if item.get("funder") not in (None, "", "NA") else None,
        }
    )
    return record


def build_pubs_record(item: dict, server: str = "") -> Record | None:
    """A preprint → journal link from a ``pubs`` entry (``source_id = "pubs:<doi>"``)."""
    raw_doi = item.get("preprint_doi") or item.get("biorxiv_doi")
    doi = ids.normalize_doi(text(raw_doi))
    title = clean_title(item.get("preprint_title"))
    if not doi or not title:
        return None
    server_key = server_of(item.get("preprint_platform"), server)
    record = Record(
        source=NAME,
        source_id=f"pubs:{doi}",
        record_type="preprint",
        title=title,
        url=content_url(server_key, doi, None),
        abstract=clean_abstract(item.get("preprint_abstract")),
        authors=split_authors(item.get("preprint_authors")),
        structured_authors=structured_authors(item.get("preprint_authors")),
        journal=SERVER_LABELS.get(server_key) or text(item.get("preprint_platform")),
        published_on=parse_date(item.get("preprint_date")),
        entered_on=parse_date(item.get("preprint_date")),
    )
    record.add_id("doi", doi)
    add_published_link(record, item.get("published_doi"), note=text(item.get("published_journal")))
    category = clean_category(item.get("preprint_category"))
    if category:
        record.keywords.append(category)
    record.extra = compact(
        {
            "server": server_key or None,
            "category": category,
            "published_journal": collapse(text(item.get("published_journal"))),
            "published_date": parse_date(item.get("published_date")),
            "author_corresponding": collapse(text(item.get("preprint_author_corresponding"))),
            "author_corresponding_institution": collapse(text(item.get("preprint_author_corresponding_institution"))),
        }
    )
    return record


def add_published_link(record: Record, value: Any, note: str | None = None) -> None:
    """``published`` is "NA" or the journal DOI; never link a preprint to its own DOI."""
    published = ids.normalize_doi(text(value)) if text(value).upper() not in ("", "NA", "N/A") else None
    if published and published != record.first_id("doi"):
        record.add_link("preprint_of", "doi", published, note=collapse(note) or None)


def server_of(label: Any, fallback: str) -> str:
    value = text(label).lower()
    return value if value in SERVERS else fallback


def content_url(server: str, doi: str, version: str | None) -> str | None:
    if server not in SERVERS:
        return ids.url_for("doi", doi)
    return f"https://www.{server}.org/content/{doi}" + (f"v{version}" if version else "")


def version_from_doi(value: Any) -> str | None:
    match = re.search(r"v(\d+)$", text(value))
    return match.group(1) if match else None


# --------------------------------------------------------------------------- text cleanup


_BLOCK_RE = re.compile(r"O_(FIG|TBL|TABLE)(?![A-Z]).*?C_\1(?![A-Z])", re.S)
_HEADING_RE = re.compile(r"O_ST_ABS\s*(.*?)\s*C_ST_ABS", re.S)
_GLUED_HEADINGS = (
    "Abstract",
    "Summary",
    "Background",
    "Backgrounds",
    "Introduction",
    "Context",
    "Rationale",
    "Objective",
    "Objectives",
    "Aim",
    "Aims",
    "Purpose",
    "Importance",
    "Significance",
    "Methods",
    "Method",
    "Design",
    "Setting",
    "Settings",
    "Participants",
    "Interventions",
    "Measurements",
    "Results",
    "Findings",
    "Discussion",
    "Conclusion",
    "Conclusions",
    "Interpretation",
    "Limitations",
    "Funding",
    "Highlights",
    "Key points",
)
_GLUED_HEADING_RE = re.compile(r"(?m)^(" + "|".join(sorted(_GLUED_HEADINGS, key=len, reverse=True)) + r")(?=[A-Z])")


def clean_abstract(value: Any) -> str | None:
    """Repair the flattening tokens and glued headings of bioRxiv/medRxiv abstracts."""
    raw = text(value)
    if not raw or raw.upper() == "NA":
        return None
    s = html.unescape(raw)
    s = _BLOCK_RE.sub(" ", s)
    s = _HEADING_RE.sub(lambda m: "\n" + heading_label(m.group(1)), s)
    s = re.sub(r"[OC]_SCPCAP", "", s)
    s = re.sub(r"[ \t]*\n?[ \t]*(?:C_LIO_LI|O_LI)[ \t]*", "\n- ", s)
    s = re.sub(r"[ \t]*C_LI", "\n", s)
    s = re.sub(r"[OC]_(?:ST_ABS|FIG|TBL|TABLE)(?![A-Z])", " ", s)
    s = s.replace("[->]", "→").replace("[<-]", "←")
    s = re.sub(r"\[([^\w\s\[\]])\]", r"\1", s)  # flattened symbols: "[&ge;]" → "≥"
    s = TAG_RE.sub("", s)
    s = _GLUED_HEADING_RE.sub(lambda m: m.group(1) + ": ", tidy_lines(s))
    return tidy_lines(s) or None


def heading_label(heading: str) -> str:
    heading = collapse(heading)
    if not heading:
        return ""
    return heading + (" " if heading[-1] in ":?.!" else ": ")


def tidy_lines(s: str) -> str:
    """Collapse spaces inside lines, keep paragraph breaks, drop blank runs."""
    lines = [" ".join(line.split()) for line in s.replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line:
            out.append(line)
        elif out and out[-1] != "":
            out.append("")
    return "\n".join(out).strip()


def clean_title(value: Any) -> str:
    title = TAG_RE.sub("", html.unescape(text(value)))
    title = re.sub(r"[OC]_SCPCAP", "", title)
    return collapse(title)


def clean_category(value: Any) -> str | None:
    return collapse(text(value)).lower() or None


def split_authors(value: Any) -> list[str]:
    """``"Last, F.; Last2, G. H."`` → ``["Last F.", "Last2 G. H."]``; ``"First Last"`` stays as is."""
    names = []
    for part in text(value).split(";"):
        name = collapse(html.unescape(part))
        if not name or name.upper() == "NA":
            continue
        if "," in name:
            last, _, first = name.partition(",")
            name = f"{last.strip()} {first.strip()}".strip()
        names.append(name)
    return names


def structured_authors(value: Any) -> list[Author]:
    """The same ``"Last, F.; Last2, G. H."`` string as :class:`Author` (the comma tells family from given)."""
    parts = (collapse(html.unescape(p)) for p in text(value).split(";"))
    return parse_authors(p for p in parts if p and p.upper() != "NA")


def text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def collapse(value: str | None) -> str:
    return " ".join((value or "").split())


def compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}
