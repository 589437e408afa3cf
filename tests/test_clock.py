"""crawler.clock: the one place litmon reads the time; pinned in tests, travelled in CI."""

from __future__ import annotations

import datetime as dt

import pytest

from crawler import clock
from tests.conftest import PINNED_NOW, TRAVEL_DAYS


def test_every_test_runs_at_the_pinned_instant_whatever_the_wall_clock_says():
    assert clock.now() == PINNED_NOW and clock.today() == PINNED_NOW.date()
    assert clock.stamp() == "2026-11-23 09:00:00"


def test_advance_moves_a_pinned_clock():
    assert clock.advance(days=400) == PINNED_NOW + dt.timedelta(days=400)
    assert clock.today() == dt.date(2027, 12, 28)


def test_litmon_now_pins_a_process_and_rejects_what_is_not_iso(monkeypatch):
    clock.pin(None)
    monkeypatch.setenv("LITMON_NOW", "2031-02-03T04:05:06+02:00")
    assert clock.now() == dt.datetime(2031, 2, 3, 2, 5, 6, tzinfo=dt.UTC)
    monkeypatch.setenv("LITMON_NOW", "next tuesday")
    with pytest.raises(ValueError, match="LITMON_NOW='next tuesday' is not an ISO 8601 time"):
        clock.now()


@pytest.mark.skipif(not TRAVEL_DAYS, reason="only when CI moves the wall clock (LITMON_TEST_TRAVEL_DAYS)")
def test_the_wall_clock_travels_and_the_unpinned_clock_follows_it(travelled_wall_clock, monkeypatch):
    assert dt.datetime.now(dt.UTC) >= travelled_wall_clock - dt.timedelta(seconds=1)
    clock.pin(None)
    monkeypatch.delenv("LITMON_NOW")
    assert abs(clock.now() - travelled_wall_clock) < dt.timedelta(minutes=5)
