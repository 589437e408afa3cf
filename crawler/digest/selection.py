"""Select: who is due, the period of each recipient's digest, and what the store holds for it.

Only reads, through named :mod:`crawler.store` queries; :mod:`crawler.digest.build` turns the result into items.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from crawler import changes, clock, store
from crawler.changes import SourceHealth, TrialChange

#: relation stated by a record -> what it means for the work concerned (either side states it)
NOTICE_RELATIONS = {
    "retraction_of": "Retraction",
    "retraction_in": "Retraction",
    "erratum_for": "Correction",
    "erratum_in": "Correction",
    "correction_for": "Correction",
    "correction_in": "Correction",
    "expression_of_concern_for": "Expression of concern",
    "expression_of_concern_in": "Expression of concern",
}


@dataclass
class WorkData:
    """One work as the digest shows it: its row, records (best source first), identifiers, classification and links."""

    work: dict
    records: list[dict]
    identifiers: list[dict]
    relevance: tuple[str, float] | None
    tags: list[dict]
    linked: list[tuple[dict, dict[str, str]]]  # (work_links_view row, the other work's identifiers by scheme)


@dataclass
class Period:
    start: str
    end: str
    first: bool  # nothing reached the recipient yet: only works entered in the last first_digest_days


@dataclass
class Selection:
    """Everything one recipient's digest can list, before building items."""

    period: Period
    new: list[WorkData] = field(default_factory=list)
    trial_changes: list[tuple[TrialChange, WorkData]] = field(default_factory=list)
    published_preprints: list[tuple[WorkData, str, dict | None]] = field(default_factory=list)  # (preprint, doi, article)
    notices: list[tuple[WorkData, list[str], str | None]] = field(default_factory=list)  # (work, kinds, sent on)
    stated_by: set[int] = field(default_factory=set)  # notice works told on the work they concern
    health: list[SourceHealth] = field(default_factory=list)


# --------------------------------------------------------------------------- recipients and periods


def recipients_of(config) -> list[dict]:
    """Every recipient; with no SMTP server and none configured, the outbox itself."""
    recipients = config.digest.get("recipients") or []
    if not recipients:
        return [{"address": "outbox", "sections": [], "tags": [], "min_score": None}]
    return recipients


def recipient_due(db, config, address: str, now: dt.datetime) -> bool:
    """Due when nothing reached the recipient yet, ``period_days`` passed since the last digest that
    did, or a delivery after it failed (the next run retries)."""
    last = store.load_last_delivered_digest(db, address)
    if last is None:
        return True
    if store.load_failed_since(db, address, last["period_end"]):
        return True
    elapsed = now - clock.parse_stamp(last["period_end"])
    return elapsed >= dt.timedelta(days=config.digest["period_days"]) - dt.timedelta(minutes=5)


def digest_due(db, config, now: dt.datetime | None = None) -> bool:
    now = now or clock.now()
    return any(recipient_due(db, config, r["address"], now) for r in recipients_of(config))


def period_of(db, config, address: str, now: dt.datetime) -> Period:
    """From the end of the last digest that reached ``address`` (or ``first_digest_days`` ago) to now."""
    last = store.load_last_delivered_digest(db, address)
    if last is None:
        return Period(clock.stamp(now - dt.timedelta(days=config.digest["first_digest_days"])), clock.stamp(now), True)
    return Period(last["period_end"], clock.stamp(now), False)


# --------------------------------------------------------------------------- what the period holds


def select(db, config, address: str, now: dt.datetime) -> Selection:
    period = period_of(db, config, address, now)
    selection = Selection(period)
    selection.new = select_new_works(db, config, address, period, now)
    selection.trial_changes = select_trial_changes(db, period)
    selection.published_preprints = select_published_preprints(db, address, period)
    selection.notices, selection.stated_by = select_notices(db, address, period)
    selection.health = changes.source_health(db, period.start, period.end)
    return selection


def load_work_data(db, work: dict) -> WorkData:
    work_id = work["id"]
    linked = [(row, store.load_current_identifiers(db, row["other"])) for row in store.load_linked_works(db, work_id)]
    return WorkData(
        work=work,
        records=store.load_records_of_work(db, work_id),
        identifiers=store.load_identifiers_of_work(db, work_id),
        relevance=store.load_relevance(db, work_id),
        tags=store.load_tags(db, work_id),
        linked=linked,
    )


def select_new_works(db, config, address: str, period: Period, now: dt.datetime) -> list[WorkData]:
    """Works first seen in the period (a first digest: entered in the last ``first_digest_days``) never sent to ``address``."""
    if period.first:
        cutoff = (now - dt.timedelta(days=config.digest["first_digest_days"])).date().isoformat()
        works = store.load_works_first_seen(db, until=period.end, entered_since=cutoff)
    else:
        works = store.load_works_first_seen(db, until=period.end, after=period.start)
    delivered = store.load_delivered_work_ids(db, address, [w["id"] for w in works])
    return [load_work_data(db, work) for work in works if work["id"] not in delivered]


def listed_as_new(work: dict, period: Period) -> bool:
    """Whether this digest lists the work as new (the rule of :func:`select_new_works`)."""
    seen = work["first_seen_at"] or ""
    if seen > period.end:
        return False
    if period.first:  # a first digest after a backfill: only works entered in its recent days
        return (work["entered_on"] or seen[:10]) >= period.start[:10]
    return seen > period.start


def select_trial_changes(db, period: Period) -> list[tuple[TrialChange, WorkData]]:
    result = []
    for change in changes.trial_changes(db, period.start, period.end):
        work = store.load_work(db, change.work_id)
        if work is not None:
            result.append((change, load_work_data(db, work)))
    return result


def select_published_preprints(db, address: str, period: Period) -> list[tuple[WorkData, str, dict | None]]:
    """Preprints sent earlier whose journal version became known in this period: (preprint, DOI, article work)."""
    rows = store.load_preprint_dois_changed(db, period.start, period.end)
    delivered = store.load_delivered_work_ids(db, address, [r["work_id"] for r in rows])
    result = []
    for row in rows:
        if row["work_id"] not in delivered:
            continue  # a preprint never sent is simply a preprint with a link
        work = store.load_work(db, row["work_id"])
        if work is None:
            continue
        result.append((load_work_data(db, work), row["value"], store.find_work_by_identifier(db, "doi", row["value"])))
    return result


def select_notices(db, address: str, period: Period) -> tuple[list[tuple[WorkData, list[str], str | None]], set[int]]:
    """Works concerned by retractions, corrections and expressions of concern stated in this period, by
    either side: (work, kinds, date it was sent to ``address``); and the notice works told on them.

    Only works this recipient was sent, or that this digest lists as new: corrections to old papers the
    reader never saw (after a backfill, say) are not news — they stay queryable, never in a digest."""
    concerned: dict[int, list[str]] = {}
    notices_of: dict[int, set[int]] = {}
    for row in store.load_links_changed(db, NOTICE_RELATIONS, period.start, period.end):
        current = store.load_current_work_ids(db, [row["work_id"]])
        stating = current[0] if current else row["work_id"]
        other = store.find_work_by_identifier(db, row["scheme"], row["value"])
        label = NOTICE_RELATIONS[row["relation"]]
        if row["relation"].endswith(("_of", "_for")):  # a notice names the work it concerns
            target_id = other["id"] if other else None
        else:  # a work names its notice
            target_id = stating
        if target_id is not None:
            concerned.setdefault(target_id, []).append(label)
            if row["relation"].endswith(("_of", "_for")):
                notices_of.setdefault(target_id, set()).add(stating)
    delivered = store.load_delivered_work_ids(db, address, list(concerned))
    result, stated_by = [], set()
    for work_id, labels in concerned.items():
        work = store.load_work(db, work_id)
        if work is None or work["record_type"] == "notice":
            continue
        if work_id not in delivered and not listed_as_new(work, period):
            stated_by |= notices_of.get(work_id, set())  # the notice itself is not news either
            continue
        result.append((load_work_data(db, work), sorted(set(labels)), delivered.get(work_id)))
        stated_by |= notices_of.get(work_id, set())
    return result, stated_by
