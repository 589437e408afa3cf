"""Source modules: one per service. See :mod:`crawler.sources.base` for the contract."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: config name -> module. Feeds and pages are lists in the config, one instance each.
MODULES = {
    "pubmed": "crawler.sources.pubmed",
    "europepmc": "crawler.sources.europepmc",
    "clinicaltrials": "crawler.sources.clinicaltrials",
    "biorxiv": "crawler.sources.biorxiv",
    "crossref": "crawler.sources.crossref",
    "isrctn": "crawler.sources.isrctn",
    "ctis": "crawler.sources.ctis",
    "openalex": "crawler.sources.openalex",
    "feed": "crawler.sources.feeds",
    "page": "crawler.sources.pages",
}

#: config name -> the module declaring the keys of its table (``Settings``), importable without the source's module.
SETTINGS = {kind: module.replace("crawler.sources.", "crawler.sources.settings.", 1) for kind, module in MODULES.items()}


@dataclass
class SourceInstance:
    name: str  # e.g. "pubmed", "feed:jama-psychiatry", "page:fda-news"
    kind: str  # key of MODULES
    settings: dict[str, Any]

    @property
    def enabled(self) -> bool:
        return bool(self.settings.get("enabled", False))

    def module(self) -> ModuleType:
        return importlib.import_module(MODULES[self.kind])


def source_instances(config) -> list[SourceInstance]:
    """Every configured source, enabled or not, in a stable order."""
    result = [SourceInstance(name, name, settings) for name, settings in config.sources.items()]
    result += [SourceInstance(f"feed:{f['name']}", "feed", f) for f in config.feeds]
    result += [SourceInstance(f"page:{p['name']}", "page", p) for p in config.pages]
    return result
