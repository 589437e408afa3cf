"""The contract between the pipeline and a source module.

A source module (``crawler/sources/<service>.py``) provides:

``fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]``
    Fetch everything new or changed in the window ``ctx.since``..``ctx.until`` (inclusive dates)
    and yield it in batches of parsed records. The pipeline stores each batch in one transaction,
    so a failure midway never leaves half a batch; the watermark advances only when the generator
    finishes without an exception. Raise :class:`crawler.errors.SourceError` for anything fatal.
    Call ``ctx.log_query(...)`` once per query sent (the search log), and ``ctx.warn(...)`` for
    problems that do not stop the source (one bad entry). A source that filters what it downloads
    calls ``ctx.count_downloaded(n)`` per page, so the run reports ``fetched`` (downloaded) and
    ``kept`` (yielded) apart.

``parse_*(body: bytes) -> list[Record]`` (one or more)
    Pure parsers used by ``fetch_records``, by the tests and by ``bench/parse_corpus.py``.

Optional ``check_enabled(settings, config) -> str | None``
    Return a reason to switch the source off (logged once), e.g. a missing API key.

Modules never write SQL and never create their own HTTP session: they use ``ctx.http``.
``ctx.state`` is a JSON-able dict persisted per source (ETags, cursors); changes are saved only
when the crawl succeeds.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crawler.http import HttpClient

log = logging.getLogger("crawler.sources")

#: The address in the shipped config/litmon.toml: an operator who left it has configured no contact address.
PLACEHOLDER_CONTACT_EMAIL = "litmon-operator@example.org"


@dataclass
class QueryLog:
    query: str
    window_from: str | None
    window_to: str | None
    hits: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CrawlContext:
    name: str
    settings: dict[str, Any]
    config: Any
    http: HttpClient
    since: dt.date
    until: dt.date
    first_run: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    queries: list[QueryLog] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    progress: Any = None
    #: Items downloaded, for sources that filter locally (None: every yielded record was downloaded).
    downloaded: int | None = None
    #: Items of the answer that could not be identified or read, with the reason (see :meth:`skip`).
    skipped: list[str] = field(default_factory=list)
    #: Whether a skipped item may still be readable on a later run: the watermark is then held.
    holds_watermark: bool = False
    #: Records of the run's first answer that a source reading answers of many records may hand on as a batch of
    #: their own as soon as they are read, the rest of that answer following as the next batch (PubMed does): set
    #: by the fetch worker (:data:`crawler.fetch_worker.FIRST_BATCH`), whose writer has nothing to do until a first
    #: batch comes. None: each answer is one batch.
    first_batch: int | None = None

    @property
    def base_url(self) -> str:
        url = self.settings.get("base_url", "")
        return url if url.endswith("/") else url + "/"

    @property
    def contact_email(self) -> str:
        return self.config.contact_email

    @property
    def has_contact_address(self) -> bool:
        """Whether the operator configured a real contact address (not empty, not the shipped placeholder)."""
        email = (self.config.contact_email or "").strip().lower()
        return bool(email) and email != PLACEHOLDER_CONTACT_EMAIL

    def log_query(self, query: str, window_from=None, window_to=None, hits: int | None = None, **params) -> QueryLog:
        entry = QueryLog(query, _iso(window_from), _iso(window_to), hits, params)
        self.queries.append(entry)
        return entry

    def count_downloaded(self, n: int) -> None:
        """Sources that filter locally report each page's item count here: the run's ``fetched``
        (downloaded) then differs from ``kept`` (records yielded after the filter)."""
        self.downloaded = (self.downloaded or 0) + n

    def skip(self, reason: str, *, permanent: bool = False) -> None:
        """An item of the answer that cannot be stored (no id, unreadable): counted as ``skipped`` with its
        reason in the log line, ``source_runs`` and ``litmon status``. Unless ``permanent`` (a rule says the
        item can never be read, so re-reading the window gains nothing), the watermark does not advance
        past this run's window, so that the next run reads it again."""
        self.skipped.append(reason)
        self.warnings.append(f"skipped {reason}")
        if not permanent:
            self.holds_watermark = True
        log.warning("[%s] skipped %s", self.name, reason)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("[%s] %s", self.name, message)

    def matches_topic(self, *texts: str | None) -> bool:
        """Whether any text mentions one of the topic's match_terms (local filtering)."""
        return matches_terms(self.config.topic.match_terms, *texts)


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


_TERM_CACHE: dict[tuple[str, ...], re.Pattern] = {}


def matches_terms(terms: Sequence[str], *texts: str | None) -> bool:
    """Case-insensitive match of any term at a word start ("ketamin" matches "ketamine";
    "esketamine" does not match "ketamine" unless listed). A trailing ``*`` is explicit."""
    key = tuple(terms)
    pattern = _TERM_CACHE.get(key)
    if pattern is None:
        parts = [re.escape(t.rstrip("*")) + r"\w*" for t in terms if t.strip()]
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")", re.I) if parts else re.compile(r"(?!x)x")
        _TERM_CACHE[key] = pattern
    return any(text and pattern.search(text) for text in texts)
