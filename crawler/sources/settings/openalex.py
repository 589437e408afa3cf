"""The keys of ``[sources.openalex]``, declared apart from :mod:`crawler.sources.openalex`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

MAX_PER_PAGE = 100
DEFAULT_MAX_PAGES = 200
DEFAULT_LOOKBACK_DAYS = 90
WINDOW_FILTERS = {"publication": "publication_date", "created": "created_date", "updated": "updated_date"}


@dataclass
class Settings(SourceSettings):
    """``[sources.openalex]``: checked when the config is loaded (crawler.settings)."""

    query: str = setting("", "OpenAlex search expression.")
    api_key_env: str = setting("OPENALEX_API_KEY", "Name of the environment variable holding the OpenAlex API key.")
    page_size: int = setting(MAX_PER_PAGE, "Works per request.", minimum=1)
    max_pages: int = setting(
        DEFAULT_MAX_PAGES, "Pages read per run at most (billed against the key's daily allowance).", minimum=1
    )
    window_filter: str = setting(
        "publication", "Date the window applies to (created/updated need a paid plan).", choices=tuple(WINDOW_FILTERS)
    )
    publication_lookback_days: int = setting(
        DEFAULT_LOOKBACK_DAYS, "With window_filter = publication, start the window this many days earlier.", minimum=0
    )
