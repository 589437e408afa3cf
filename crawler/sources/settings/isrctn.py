"""The keys of ``[sources.isrctn]``, declared apart from :mod:`crawler.sources.isrctn`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_RESULTS = 5000


@dataclass
class Settings(SourceSettings):
    """``[sources.isrctn]``: checked when the config is loaded (crawler.settings)."""

    query: str = setting("", "ISRCTN search query; the crawler adds `lastEdited GE <since>`.")
    page_size: int = setting(DEFAULT_PAGE_SIZE, "Trials per request; paging stops at totalCount.", minimum=1)
    max_results: int = setting(
        DEFAULT_MAX_RESULTS, "A window with more trials than this fails instead of being stored in part.", minimum=1
    )
