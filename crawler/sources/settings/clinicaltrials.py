"""The keys of ``[sources.clinicaltrials]``, declared apart from :mod:`crawler.sources.clinicaltrials`: loading the configuration
checks them without importing the source's fetching and parsing code (its module re-exports ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.settings import SourceSettings, setting

MAX_PAGE_SIZE = 1000

#: Pieces requested with ``fields`` (module and field piece names of the v2 data structure).
DEFAULT_FIELDS = (
    "NCTId",
    "HasResults",
    "IdentificationModule",
    "StatusModule",
    "SponsorCollaboratorsModule",
    "BriefSummary",
    "ConditionsModule",
    "DesignModule",
    "ArmsInterventionsModule",
    "ReferencesModule",
    "ConditionBrowseModule",
    "InterventionBrowseModule",
)


@dataclass
class Settings(SourceSettings):
    """``[sources.clinicaltrials]``: checked when the config is loaded (crawler.settings)."""

    conditions: str | list[str] = setting(
        [], "Terms for the condition search area (Essie syntax); a list is joined with OR, a string is sent as it is."
    )
    interventions: str | list[str] = setting([], "Terms for the intervention search area, as for `conditions`.")
    page_size: int = setting(MAX_PAGE_SIZE, "Studies per request.", minimum=1)
    fields: str | list[str] = setting(
        list(DEFAULT_FIELDS), 'Fields to request ("" = everything, results included).', shown="the modules litmon parses"
    )
    sort: str = setting("", 'Sort order, e.g. "LastUpdatePostDate:asc" (empty: unsorted).')
