"""What changed in a period: trial registration changes and the health of each source.

Both read the store (named queries of :mod:`crawler.store`; no writes) and feed the digest's "Clinical trials" and "Source health" sections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crawler import store
from crawler.errors import short_error
from crawler.records import TRIAL_FIELDS

#: Fields whose change is worth telling a reader, with a label. Others (e.g. last_update_posted_on)
#: change on every edit and are stored but not reported.
REPORTED_TRIAL_FIELDS = {
    "overall_status": "status",
    "why_stopped": "why stopped",
    "phases": "phase",
    "enrollment": "enrollment",
    "primary_completion_date": "primary completion",
    "completion_date": "completion",
    "results_first_posted_on": "results posted",
    "has_results": "results",
}


@dataclass
class FieldChange:
    field: str
    label: str
    before: object
    after: object

    def describe(self) -> str:
        if self.field == "has_results":
            return "results posted" if self.after else "results withdrawn"
        if self.field == "results_first_posted_on" and not self.before:
            return f"results first posted {self.after}"
        return f"{self.label}: {_show(self.before)} → {_show(self.after)}"


@dataclass
class TrialChange:
    work_id: int
    source: str
    trial_id: str
    captured_at: str
    changes: list[FieldChange] = field(default_factory=list)

    def describe(self) -> list[str]:
        texts = [c.describe() for c in self.changes]
        # "results posted" and "results first posted DATE" say the same thing twice
        if any(t.startswith("results first posted") for t in texts):
            texts = [t for t in texts if t != "results posted"]
        return texts


def _show(value) -> str:
    return "—" if value in (None, "") else str(value)


def trial_changes(db, since: str, until: str) -> list[TrialChange]:
    """Changes of reported trial fields captured in (since, until], one entry per trial and snapshot."""
    result = []
    for row in store.load_trial_snapshots_between(db, since, until):
        snap_id, source, trial_id, captured_at, work_id, *values = row
        previous = store.load_previous_trial_snapshot(db, source, trial_id, snap_id)
        if previous is None:
            continue  # the first snapshot is the registration itself, not a change
        after = dict(zip(TRIAL_FIELDS, values))
        before = dict(zip(TRIAL_FIELDS, previous))
        changes = [
            FieldChange(name, label, before[name], after[name])
            for name, label in REPORTED_TRIAL_FIELDS.items()
            if before[name] != after[name]
        ]
        if changes:
            result.append(TrialChange(work_id, source, trial_id, captured_at, changes))
    return result


@dataclass
class SourceHealth:
    source: str
    status: str  # ok | failed | silent
    runs: int
    failures: int
    fetched: int
    new: int
    last_error: str | None  # the full diagnosis: reason, URL, what to check (operators and the log)
    still_failing: bool = False  # its latest run failed: what it would have found is missing so far
    failures_in_a_row: int = 0

    @property
    def reason(self) -> str:
        """Why it failed, in one short line: no URL, no hint (those are for operators)."""
        text = short_error(self.last_error) or "unknown error"
        text = re.sub(r"^\[[^\]]+\]\s*", "", text)
        return text.split(" — check:")[0].strip()

    def describe(self) -> str:
        if self.status == "failed":
            state = f", still failing ({self.failures_in_a_row} run(s) in a row)" if self.still_failing else ", recovered since"
            return f"failed in {self.failures} of {self.runs} run(s){state}: {self.reason}"
        if self.status == "silent":
            return f"no results in {self.runs} run(s), although it usually has some"
        return f"ok: {self.runs} run(s), {self.fetched} fetched, {self.new} new"


def source_health(db, since: str, until: str) -> list[SourceHealth]:
    """Each source's runs in (since, until]: ok, failed (with the last error) or silent (zero results
    where earlier runs usually had some)."""
    result = []
    states = store.load_source_states(db)
    for source, runs, failures, fetched, new, last_error in store.load_source_run_totals(db, since, until):
        status = "failed" if failures else "ok"
        in_a_row = (states.get(source) or {}).get("consecutive_failures") or 0
        if status == "ok" and not fetched:
            usual = store.load_usual_fetched(db, source, since)
            if usual and usual >= 1:
                status = "silent"
        result.append(
            SourceHealth(
                source, status, runs, failures or 0, fetched or 0, new or 0, last_error, bool(failures and in_a_row), in_a_row
            )
        )
    return result
