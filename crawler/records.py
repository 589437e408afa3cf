"""The normalised record every source module produces.

A source parses its API's answer into :class:`Record` objects and nothing else; the store turns
them into rows. Field conventions:

* dates are ISO-8601 strings and may be partial (``2024``, ``2024-03``, ``2024-03-05``);
* ``identifiers`` are the work's *own* identifiers (normalised with :mod:`crawler.identifiers`):
  records sharing one are the same work. A trial number mentioned by an article is **not** the
  article's identifier: it goes to ``links`` as ``registered_as``;
* ``links`` point from this record to another work, by identifier, with a relation from
  :data:`LINK_RELATIONS`;
* ``trial`` holds the tracked registry fields of a trial registration (see :data:`TRIAL_FIELDS`);
  the store snapshots them whenever one changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from crawler import identifiers as ids

RECORD_TYPES = ("article", "preprint", "trial_registration", "notice", "news", "other")

#: relation -> meaning (from this record to the work the link names)
LINK_RELATIONS = {
    "retraction_in": "this work is retracted by the linked notice",
    "retraction_of": "this notice retracts the linked work",
    "erratum_in": "this work is corrected by the linked erratum",
    "erratum_for": "this erratum corrects the linked work",
    "correction_in": "this work is corrected by the linked correction",
    "correction_for": "this correction corrects the linked work",
    "expression_of_concern_in": "an expression of concern about this work",
    "expression_of_concern_for": "this notice expresses concern about the linked work",
    "republished_in": "this work was retracted/corrected and republished as the linked work",
    "republished_from": "this work republishes the linked work",
    "comment_in": "the linked work comments on this one",
    "comment_on": "this work comments on the linked one",
    "update_in": "the linked work updates this one",
    "update_of": "this work updates the linked one",
    "preprint_of": "this preprint was published as the linked article",
    "has_preprint": "this article has the linked preprint",
    "version_of": "this record is another version of the linked work",
    "registered_as": "this publication reports the linked trial registration",
    "reference": "this trial registration cites the linked publication",
    "result_publication": "this trial registration lists the linked publication as its results",
    "same_trial": "this registration is the same trial in another registry",
}

#: Tracked trial fields; a change in any of them is stored as a new trial snapshot.
TRIAL_FIELDS = (
    "overall_status",
    "why_stopped",
    "phases",
    "study_type",
    "enrollment",
    "enrollment_type",
    "start_date",
    "primary_completion_date",
    "completion_date",
    "first_posted_on",
    "last_update_posted_on",
    "results_first_posted_on",
    "has_results",
)


@dataclass
class Link:
    relation: str
    scheme: str
    value: str
    note: str | None = None

    def __post_init__(self):
        if self.relation not in LINK_RELATIONS:
            raise ValueError(f"unknown link relation {self.relation!r}")


@dataclass
class Record:
    source: str
    source_id: str
    record_type: str
    title: str
    url: str | None = None
    abstract: str | None = None
    authors: list[str] = field(default_factory=list)
    journal: str | None = None
    published_on: str | None = None
    entered_on: str | None = None
    updated_on: str | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    publication_types: list[str] = field(default_factory=list)
    mesh_terms: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    language: str | None = None
    version: str | None = None
    links: list[Link] = field(default_factory=list)
    trial: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.record_type not in RECORD_TYPES:
            raise ValueError(f"unknown record_type {self.record_type!r}")
        self.source_id = str(self.source_id)

    def add_id(self, scheme: str, value) -> str | None:
        """Normalise and add an identifier of this work; return it (None if invalid)."""
        norm = ids.normalize(scheme, value)
        if norm and (scheme, norm) not in self.identifiers:
            self.identifiers.append((scheme, norm))
        return norm

    def add_link(self, relation: str, scheme: str, value, note: str | None = None) -> None:
        norm = ids.normalize(scheme, value)
        if not norm:
            return
        link = Link(relation, scheme, norm, note)
        if all((l.relation, l.scheme, l.value) != (relation, scheme, norm) for l in self.links):
            self.links.append(link)

    def first_id(self, scheme: str) -> str | None:
        return next((v for s, v in self.identifiers if s == scheme), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def content_hash(self) -> str:
        """A stable hash of everything parsed, used to tell whether a record changed."""
        payload = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
