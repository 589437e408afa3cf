"""Delivery exactly once as far as SMTP allows (#16): a 250 after DATA is success whatever follows;
the delivery is recorded at the 250; a process killed around the hand-over never sends twice.

Real SMTP servers on loopback (aiosmtpd) that misbehave after accepting the message."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from crawler import store
from crawler.digest import digest_due, run_digest
from crawler.pipeline import recover_interrupted_runs
from crawler.status import collect_status
from tests.conftest import rows
from tests.helpers.records import article
from tests.helpers.smtp import email_section

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


class Accepting:
    """Accepts every message; ``quit_reply`` answers QUIT (e.g. 421); ``drop_after_250`` closes the
    connection right after the 250 to DATA."""

    def __init__(self, quit_reply=None, drop_after_250=False):
        self.messages, self.quit_reply, self.drop_after_250 = [], quit_reply, drop_after_250

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        if self.drop_after_250:
            asyncio.get_running_loop().call_later(0.2, server.transport.close)
        return "250 2.0.0 OK queued"

    async def handle_QUIT(self, server, session, envelope):
        return self.quit_reply or "221 Bye"


def smtp_config(make_config, smtp_server, handler):
    """A config that delivers to a loopback SMTP server answering with ``handler``."""
    _, port = smtp_server(handler=handler)
    return make_config(email_section(port, attempts=3, retry_backoff_seconds=0.01, timeout=5))


@pytest.mark.parametrize(
    "handler",
    [Accepting(quit_reply="421 4.3.2 Service shutting down"), Accepting(drop_after_250=True)],
    ids=["quit-answers-421", "drops-after-250"],
)
def test_a_message_accepted_with_250_is_sent_once_whatever_follows(make_config, db, smtp_server, handler):
    config = smtp_config(make_config, smtp_server, handler)
    store.save_records(db, [article("101", "Ketamine trial", "2026-11-22")], now="2026-11-23 06:00:00")

    result = run_digest(config, db, now=NOW)
    assert [d.status for d in result.deliveries] == ["sent"]
    assert not result.failed

    assert len(handler.messages) == 1
    [delivery] = rows(db, "SELECT status, message_id, delivered_at, error FROM digest_deliveries")
    assert delivery["status"] == "sent" and delivery["error"] is None and delivery["delivered_at"]
    sent_id = handler.messages[0].content.decode().split("Message-ID: ", 1)[1].split("\r\n", 1)[0]
    assert delivery["message_id"] == sent_id
    # the next run has nothing to resend: the digest is not due again
    assert not digest_due(db, config, NOW + dt.timedelta(hours=1))
    again = run_digest(config, db, now=NOW + dt.timedelta(hours=1), only_due=True)
    assert again.deliveries == [] and len(handler.messages) == 1


def test_a_process_killed_between_the_250_and_its_record_never_sends_twice(make_config, db, smtp_server, monkeypatch):
    handler = Accepting()
    config = smtp_config(make_config, smtp_server, handler)
    store.save_records(db, [article("101", "Ketamine trial", "2026-11-22")], now="2026-11-23 06:00:00")
    real_update = store.update_delivery

    class Killed(BaseException):
        """Stands for SIGKILL: nothing after it runs (the crash suite kills a real process too)."""

    def die_at_the_record(db_, delivery_id, *, status, error=None):
        if status == "sent":
            raise Killed
        real_update(db_, delivery_id, status=status, error=error)

    monkeypatch.setattr(store, "update_delivery", die_at_the_record)
    with pytest.raises(Killed):
        run_digest(config, db, now=NOW)
    monkeypatch.setattr(store, "update_delivery", real_update)
    assert len(handler.messages) == 1
    assert rows(db, "SELECT status FROM digest_deliveries") == [{"status": "sending"}]

    recover_interrupted_runs(db)  # what the next run does first, under the run lock
    [delivery] = rows(db, "SELECT status, message_id, error FROM digest_deliveries")
    assert delivery["status"] == "unknown" and delivery["message_id"] in delivery["error"]

    later = NOW + dt.timedelta(hours=2)
    alerts = collect_status(config, db, now=later)["alerts"]
    assert any("to clinician@example.org: delivery unknown" in alert and delivery["message_id"] in alert for alert in alerts)
    assert not digest_due(db, config, later)
    run_digest(config, db, now=later, only_due=True)
    run_digest(config, db, now=NOW + dt.timedelta(days=7), only_due=True)
    assert len(handler.messages) == 2  # the next week's digest, not the first one again
    assert "Ketamine trial" not in handler.messages[1].content.decode()


def test_a_refused_data_is_retried_and_recorded_once(make_config, db, smtp_server):
    class RefuseOnce(Accepting):
        async def handle_DATA(self, server, session, envelope):
            if not getattr(self, "refused", False):
                self.refused = True
                return "451 4.3.0 Try again"
            return await super().handle_DATA(server, session, envelope)

    handler = RefuseOnce()
    config = smtp_config(make_config, smtp_server, handler)
    result = run_digest(config, db, now=NOW)
    assert [d.status for d in result.deliveries] == ["sent"] and len(handler.messages) == 1
    assert rows(db, "SELECT status, error FROM digest_deliveries") == [{"status": "sent", "error": None}]


def test_an_outbox_file_written_before_the_kill_counts_as_written(make_config, db, tmp_path, monkeypatch):
    config = make_config()
    real_update = store.update_delivery

    class Killed(BaseException):
        pass

    def die(db_, delivery_id, *, status, error=None):
        raise Killed

    monkeypatch.setattr(store, "update_delivery", die)
    with pytest.raises(Killed):
        run_digest(config, db, now=NOW)
    monkeypatch.setattr(store, "update_delivery", real_update)
    recover_interrupted_runs(db)
    assert rows(db, "SELECT status FROM digest_deliveries") == [{"status": "written"}]
    assert not digest_due(db, config, NOW + dt.timedelta(hours=1))
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
