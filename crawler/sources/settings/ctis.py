"""The keys of ``[sources.ctis]``, declared apart from :mod:`crawler.sources.ctis`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_RESULTS = 5000


@dataclass
class Settings(SourceSettings):
    """``[sources.ctis]``: checked when the config is loaded (crawler.settings)."""

    query: str | list[str] = setting("", 'Words of the portal\'s "contain any of these terms" search.')
    page_size: int = setting(DEFAULT_PAGE_SIZE, "Trials per search page.", minimum=1)
    max_results: int = setting(
        DEFAULT_MAX_RESULTS, "A query matching more trials than this fails instead (too broad).", minimum=1
    )
