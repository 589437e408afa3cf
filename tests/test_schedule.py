"""[schedule]: crontab expressions (5 fields, or 6 with seconds) and the time zone, checked at load."""

from __future__ import annotations

import datetime as dt

import pytest

from crawler import cron
from crawler.config import ScheduleSettings, parse_config
from crawler.errors import ConfigError
from tests.conftest import BASE_CONFIG
from tests.helpers.cli import litmon


def _config(tmp_path, schedule: str):
    text = BASE_CONFIG.format(db=tmp_path / "litmon.db", outbox=tmp_path / "outbox") + schedule
    return parse_config(text, "test.toml")


def write_config(tmp_path, extra: str) -> str:
    path = tmp_path / "litmon.toml"
    path.write_text(BASE_CONFIG.format(db=tmp_path / "litmon.db", outbox=tmp_path / "outbox") + extra)
    return str(path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("crawl", "61 5 * * *", "schedule.crawl: invalid cron expression '61 5 * * *'"),
        ("digest", "0 7 * *", "schedule.digest: expected 5 fields"),
        ("digest", "0 7 * * funday", "invalid day of week 'funday'"),
        ("timezone", "Mars/Olympus", "schedule.timezone: unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_schedule_is_a_config_error(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace("(", r"\(")):
        _config(tmp_path, f'[schedule]\n{key} = "{value}"\n')


def test_bad_schedule_exits_2_from_any_command(tmp_path):
    config = write_config(tmp_path, '[schedule]\ncrawl = "every day"\n')
    result = litmon("--config", config, "run", cwd=tmp_path)
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "schedule.crawl" in result.stderr
    assert not (tmp_path / "litmon.db").exists()


def test_crontab_weekday_numbers_mean_what_cron_means():
    monday_morning = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)  # a Monday
    assert cron.next_fire_time(cron.parse_cron("0 7 * * 1", "UTC"), monday_morning).strftime("%a %H:%M") == "Mon 07:00"
    assert cron.next_fire_time(cron.parse_cron("0 7 * * 0", "UTC"), monday_morning).strftime("%a") == "Sun"
    assert cron.next_fire_time(cron.parse_cron("0 7 * * 7", "UTC"), monday_morning).strftime("%a") == "Sun"
    assert cron.next_fire_time(cron.parse_cron("0 7 * * 5-7", "UTC"), monday_morning).strftime("%a") == "Fri"
    assert cron.crontab_weekdays("1-5") == "mon,tue,wed,thu,fri" and cron.crontab_weekdays("*/2") == "sun,tue,thu,sat"
    seconds = cron.parse_cron("*/10 * * * * *", "UTC")
    assert cron.next_fire_time(seconds, monday_morning + dt.timedelta(seconds=1)) == monday_morning + dt.timedelta(seconds=10)
    assert cron.previous_fire_time(seconds, monday_morning + dt.timedelta(seconds=25)) == monday_morning + dt.timedelta(
        seconds=20
    )
    weekly = cron.parse_cron("0 7 * * mon", "UTC")
    assert cron.previous_fire_time(weekly, monday_morning) == dt.datetime(2026, 2, 23, 7, 0, tzinfo=dt.UTC)


def test_the_declared_defaults_are_valid_schedules():
    """The config does not re-read a schedule left at its declared defaults (it would import APScheduler at every
    start): they must parse."""
    defaults = ScheduleSettings()
    tz = cron.parse_timezone(defaults.timezone)
    for key in ("crawl", "digest"):
        trigger = cron.parse_cron(getattr(defaults, key), tz)
        assert cron.next_fire_time(trigger, dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)) is not None
