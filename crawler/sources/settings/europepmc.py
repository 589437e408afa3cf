"""The keys of ``[sources.europepmc]``, declared apart from :mod:`crawler.sources.europepmc`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 1000
DEFAULT_MAX_RECORDS = 100_000
DEFAULT_RECHECK_FILTER = 'PUB_TYPE:"retracted publication"'


@dataclass
class Settings(SourceSettings):
    """``[sources.europepmc]``: checked when the config is loaded (crawler.settings)."""

    query: str = setting("", "Europe PMC query syntax; the crawler adds the FIRST_IDATE window. Includes preprints (SRC:PPR).")
    page_size: int = setting(DEFAULT_PAGE_SIZE, f"Results per request (at most {MAX_PAGE_SIZE} are asked for).", minimum=1)
    recheck_filter: str = setting(
        DEFAULT_RECHECK_FILTER, 'Second pass each run re-reading the topic\'s works of this filter ("" = off).'
    )
    max_records: int = setting(
        DEFAULT_MAX_RECORDS, "Fail instead of crawling when the query matches more than this (a mistyped query).", minimum=1
    )
    synonym: bool = setting(False, "Send synonym=true: Europe PMC expands the query with MeSH synonyms.")
