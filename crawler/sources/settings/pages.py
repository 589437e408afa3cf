"""The keys of ``[[pages]]``, declared apart from :mod:`crawler.sources.pages`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import Section, setting


@dataclass
class Settings(Section):
    """One ``[[pages]]`` table: checked when the config is loaded (crawler.settings)."""

    name: str = setting("", "Short name: letters, digits, '-', '_', '.'; the source is called page:<name>.", required=True)
    url: str = setting("", "The listing page; relative links are resolved against it.", kind="url", required=True)
    item: str = setting("", "CSS selector of each entry on the page.", required=True)
    title: str = setting("", "CSS selector of the title inside an entry.", required=True)
    link: str = setting("", "CSS selector, inside an entry, of the element with the href.", required=True)
    date: str = setting("", "CSS selector of the date inside an entry (optional).")
    date_pattern: str = setting("", "Regular expression picking the date out of the selected text (optional).", kind="regex")
    summary: str = setting("", "CSS selector of a summary inside an entry (optional).")
    enabled: bool = setting(True, "false skips this page.")
    filter: bool = setting(True, "Keep only entries matching [topic] match_terms (false keeps every entry).")
    kind: str = setting("article", "news: regulatory or press items.", choices=("article", "news"))
