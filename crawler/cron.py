"""Cron expressions and time zones of ``[schedule]``, read with crontab semantics.

An expression has 5 fields (``minute hour day month day-of-week``) or 6 with seconds first
(``second minute hour day month day-of-week``; for tests and demos that need a fast schedule).
Day-of-week numbers follow crontab (0 and 7 are Sunday, 1 is Monday); names (``mon``…``sun``)
work too. APScheduler 3 numbers weekdays from Monday, so numbers are translated to names here.
As in APScheduler, when both day-of-month and day-of-week are restricted both must match.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_NUMBERS = {name: i for i, name in enumerate(DAY_NAMES)}
#: How far back previous_fire_time looks (a yearly expression still has a previous run).
LOOKBACK = dt.timedelta(days=400)


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA time zone such as ``Europe/Berlin``; raises ValueError naming what to use instead."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; expected an IANA name such as UTC or Europe/Berlin") from None


def parse_cron(expr: str, timezone: ZoneInfo | str) -> CronTrigger:
    """A CronTrigger for a 5-field (or seconds-first 6-field) crontab expression; ValueError if invalid."""
    tz = parse_timezone(timezone) if isinstance(timezone, str) else timezone
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(
            f"expected 5 fields (minute hour day month day-of-week) or 6 with seconds first, got {len(fields)} in {expr!r}"
        )
    second, minute, hour, day, month, dow = fields
    try:
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=crontab_weekdays(dow), timezone=tz
        )
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from None


def crontab_weekdays(field: str) -> str:
    """Translate a crontab day-of-week field (0/7 = Sunday) into APScheduler day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"invalid step in day-of-week {part!r}")
            step = int(step_text)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _day(a), _day(b)
            if first > last:
                raise ValueError(f"day-of-week range {part!r} runs backwards")
        else:
            first = last = _day(base)
            if step_text:
                last = 6
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _day(text: str) -> int:
    text = text.strip()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    if text in _DAY_NUMBERS:
        return _DAY_NUMBERS[text]
    raise ValueError(f"invalid day of week {text!r}; expected 0-7 (0 and 7 are Sunday) or mon..sun")


def next_fire_time(trigger: CronTrigger, now: dt.datetime) -> dt.datetime | None:
    """The first time at or after ``now`` the expression fires."""
    return trigger.get_next_fire_time(None, now)


def previous_fire_time(trigger: CronTrigger, now: dt.datetime) -> dt.datetime | None:
    """The last time at or before ``now`` the expression fired (within LOOKBACK), by bisection."""
    lo = now - LOOKBACK
    first = trigger.get_next_fire_time(None, lo)
    if first is None or first > now:
        return None
    hi = now
    # invariant: next(lo) <= now; find the latest lo with that property, to one second
    while (hi - lo) > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        fire = trigger.get_next_fire_time(None, mid)
        if fire is not None and fire <= now:
            lo = mid
        else:
            hi = mid
    return trigger.get_next_fire_time(None, lo)
