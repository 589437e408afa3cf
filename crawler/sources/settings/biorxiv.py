"""The keys of ``[sources.biorxiv]``, declared apart from :mod:`crawler.sources.biorxiv`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

DEFAULT_SERVERS = ["medrxiv", "biorxiv"]
DEFAULT_MAX_BACKFILL_DAYS = 30
DEFAULT_MAX_PAGES = 1000


@dataclass
class Settings(SourceSettings):
    """``[sources.biorxiv]``: checked when the config is loaded (crawler.settings)."""

    servers: str | list[str] = setting(DEFAULT_SERVERS, "Servers to read (medrxiv, biorxiv); postings are filtered locally.")
    category: str = setting("", 'Category filter, e.g. "psychiatry and clinical psychology" (empty = all).')
    max_backfill_days: int = setting(DEFAULT_MAX_BACKFILL_DAYS, "The first crawl reads at most this many days back.", minimum=1)
    max_pages: int = setting(DEFAULT_MAX_PAGES, "Safety cap on pages read per server and endpoint in one run.", minimum=1)
