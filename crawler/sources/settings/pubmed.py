"""The keys of ``[sources.pubmed]``, declared apart from :mod:`crawler.sources.pubmed`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

DEFAULT_BATCH = 500


@dataclass
class Settings(SourceSettings):
    """``[sources.pubmed]``: checked when the config is loaded (crawler.settings)."""

    query: str = setting("", "PubMed query syntax; the crawler adds the date window (crdt for new records, mdat for changes).")
    api_key_env: str = setting(
        "NCBI_API_KEY", "Name of the environment variable holding an NCBI API key (10 requests/s instead of 3)."
    )
    tool: str = setting("litmon", "E-utilities `tool` parameter (no spaces).")
    batch_size: int = setting(DEFAULT_BATCH, "PMIDs per efetch request.", minimum=1, maximum=10000)
