"""The keys of ``[[feeds]]``, declared apart from :mod:`crawler.sources.feeds`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import Section, setting


@dataclass
class Settings(Section):
    """One ``[[feeds]]`` table: checked when the config is loaded (crawler.settings)."""

    name: str = setting("", "Short name: letters, digits, '-', '_', '.'; the source is called feed:<name>.", required=True)
    url: str = setting("", "The RSS 1.0/2.0 or Atom feed; fetched with conditional GET.", kind="url", required=True)
    enabled: bool = setting(True, "false skips this feed.")
    filter: bool = setting(True, "Keep only entries matching [topic] match_terms (false keeps every entry).")
    kind: str = setting(
        "article", "news: regulatory or press items (no identifier taken from their links).", choices=("article", "news")
    )
