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
class CaughtUp:
    """Older works a source brought in this period and the digest does not list as new (they stay queryable)."""

    source: str
    works: int
    before: str  # they entered the source before this date (the reader's news horizon for the source)
    backfill: bool  # the source's first successful crawl was in this period

    def describe(self) -> str:
        why = "backfill" if self.backfill else "a re-read window or newly matching"
        return f"{self.works:,} older work{'s' if self.works != 1 else ''} caught up from {self.source} ({why}; entered before {self.before}), not listed"


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
    caught_up: list[CaughtUp] = field(default_factory=list)  # older works stored in the period, not listed as new


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
    selection.new, selection.caught_up = select_new_works(db, config, address, period)
    selection.trial_changes = select_trial_changes(db, period)
    selection.published_preprints = select_published_preprints(db, address, period)
    new_ids = {data.work["id"] for data in selection.new}
    selection.notices, selection.stated_by = select_notices(db, address, period, new_ids)
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


def select_new_works(db, config, address: str, period: Period) -> tuple[list[WorkData], list[CaughtUp]]:
    """Works first seen in the period, never sent to ``address``, that entered their source recently;
    and, per source, how many older ones were caught up instead.

    litmon seeing a work late does not make it news: a source's backfill (its first successful crawl,
    also after failing for a while; a source or feed added to the config later), a window re-read with
    ``crawl --since``, or an old registration that newly matches all store works that entered their
    source long ago. A work is news when it entered its source (PubMed's entry date, a registry's first
    posted date, Crossref's created date: ``works.entered_on``, else its published date) on or after
    the reader's *news horizon*: the start of the reader's first digest (a first digest: the last
    ``first_digest_days``), and for a source added after that, ``first_digest_days`` before its first
    crawl attempt. What entered after the horizon but arrived late (a source failing for weeks) is
    still news: nothing the reader was promised is lost. Older works are counted per source
    (:class:`CaughtUp`), said in the digest, and stay in the database."""
    days = dt.timedelta(days=config.digest["first_digest_days"])
    reader_since = (store.load_first_delivered_period_start(db, address) or period.start)[:10]
    beginnings = store.load_source_beginnings(db)
    source_since = {
        source: (clock.parse_stamp(first_run) - days).date().isoformat() for source, (first_run, _) in beginnings.items()
    }
    entered: dict[int, str] = {}
    sources: dict[int, set[str]] = {}
    for row in store.load_arrivals(db, until=period.end, after=None if period.first else period.start):
        entered[row["work_id"]] = row["entered"]
        sources.setdefault(row["work_id"], set()).add(row["source"])
    # a first digest: nothing reached this recipient yet (after a large backfill, skip asking about every work)
    delivered = {} if period.first else store.load_delivered_work_ids(db, address, list(entered))
    news: list[int] = []
    older: dict[str, int] = {}
    horizons: dict[str, str] = {}
    for work_id, date in entered.items():
        if work_id in delivered:
            continue
        horizon = max(reader_since, min((source_since.get(s, reader_since) for s in sources[work_id]), default=reader_since))
        if date >= horizon:
            news.append(work_id)
            continue
        for source in sources[work_id]:
            older[source] = older.get(source, 0) + 1
            horizons[source] = max(reader_since, source_since.get(source, reader_since))
    works = [store.load_work(db, work_id) for work_id in sorted(news)]
    caught_up = [
        CaughtUp(
            source,
            count,
            horizons[source],
            backfill=period.start < ((beginnings.get(source) or ("", None))[1] or "") <= period.end,
        )
        for source, count in sorted(older.items(), key=lambda item: (-item[1], item[0]))
    ]
    return [load_work_data(db, work) for work in works if work is not None], caught_up


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


def select_notices(
    db, address: str, period: Period, new_ids: set[int]
) -> tuple[list[tuple[WorkData, list[str], str | None]], set[int]]:
    """Works concerned by retractions, corrections and expressions of concern stated in this period, by
    either side: (work, kinds, date it was sent to ``address``); and the notice works told on them.

    Only works this recipient was sent, or that this digest lists as new (``new_ids``): corrections to old papers the
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
        if work_id not in delivered and work_id not in new_ids:
            stated_by |= notices_of.get(work_id, set())  # the notice itself is not news either
            continue
        result.append((load_work_data(db, work), sorted(set(labels)), delivered.get(work_id)))
        stated_by |= notices_of.get(work_id, set())
    return result, stated_by
