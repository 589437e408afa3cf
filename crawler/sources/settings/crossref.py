"""The keys of ``[sources.crossref]``, declared apart from :mod:`crawler.sources.crossref`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

DEFAULT_PAGE_SIZE = 1000
DEFAULT_MAX_PAGES = 5
DEFAULT_SLICE_DAYS = 365
DEFAULT_TYPES = ("journal-article", "posted-content")


@dataclass
class Settings(SourceSettings):
    """``[sources.crossref]``: checked when the config is loaded (crawler.settings)."""

    query: str | list[str] = setting("", "Words for query.bibliographic; results are filtered locally with [topic] match_terms.")
    types: str | list[str] = setting(DEFAULT_TYPES, "Crossref work types to read.")
    page_size: int = setting(DEFAULT_PAGE_SIZE, "Rows per request.", minimum=1)
    max_pages: int = setting(DEFAULT_MAX_PAGES, "Pages read per window slice at most.", minimum=1)
    slice_days: int = setting(DEFAULT_SLICE_DAYS, "Long windows are cut into slices of this many days.", minimum=1)
