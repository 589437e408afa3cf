"""The one place litmon reads the time.

Every timestamp the program writes or compares (deliveries, digests, crawl and source runs,
classification recency, status lag, locks, backups) comes from :func:`now` or from a ``now``
passed down from the command that started the work. No other module calls ``datetime.now``,
``date.today`` or ``time.time`` for a date.

The clock can be pinned:

- in tests, with :func:`pin` (the ``pinned_clock`` fixture in ``tests/conftest.py``);
- for a whole process, with the environment variable ``LITMON_NOW`` set to an ISO 8601 UTC
  time (``2026-11-23T09:00:00Z``) — used by the CLI tests, and handy to replay a past week.

Durations (timeouts, backoff, rate-limit spacing) use ``time.monotonic`` and are not dates: they
are not read from here.
"""

from __future__ import annotations

import datetime as dt
import os

UTC = dt.UTC

_pinned: dt.datetime | None = None


def _parse_env(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"LITMON_NOW={value!r} is not an ISO 8601 time (e.g. 2026-11-23T09:00:00Z)") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def now() -> dt.datetime:
    """The current time: timezone-aware UTC, whole seconds."""
    if _pinned is not None:
        return _pinned
    env = os.environ.get("LITMON_NOW")
    if env:
        return _parse_env(env)
    return dt.datetime.now(UTC).replace(microsecond=0)


def today() -> dt.date:
    """Today's date in UTC."""
    return now().date()


#: How litmon stores a timestamp in SQLite: UTC, the format of SQLite's own ``datetime()``, so that
#: ``WHERE first_seen_at >= datetime('now', '-7 days')`` compares correctly.
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def stamp(when: dt.datetime | None = None) -> str:
    """A timestamp as litmon stores it in SQLite: ``2026-11-23 09:00:00`` (UTC, whole seconds)."""
    when = (when or now()).astimezone(UTC)
    return when.strftime(STAMP_FORMAT)


def parse_stamp(value: str) -> dt.datetime:
    """A stored timestamp back as an aware UTC datetime (also reads the ``2026-11-23T09:00:00Z`` form
    of databases written before migration m006, and offsets)."""
    when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def pin(when: dt.datetime | None) -> None:
    """Pin :func:`now` to ``when`` (aware, or naive meaning UTC); ``None`` unpins."""
    global _pinned
    if when is None:
        _pinned = None
        return
    _pinned = (when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)).replace(microsecond=0)


def advance(**delta: float) -> dt.datetime:
    """Move a pinned clock forward (tests): ``advance(days=7)``."""
    if _pinned is None:
        raise RuntimeError("clock.advance() needs a pinned clock (clock.pin)")
    pin(_pinned + dt.timedelta(**delta))
    assert _pinned is not None
    return _pinned
