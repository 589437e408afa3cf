"""Digest v1: selection since the last digest, rendering, outbox files and SMTP delivery (aiosmtpd)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import itertools
import re
import ssl
from email import policy

import pytest
import trustme

from crawler import store
from crawler.config import load_config
from crawler.digest import build_message, digest_due, run_digest
from tests.conftest import rows
from tests.helpers.records import article
from tests.helpers.smtp import email_section

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


def parse_eml(path):
    return email.message_from_bytes(open(path, "rb").read(), policy=policy.default)


def test_first_digest_after_backfill_covers_recent_days_only(make_config, db):
    config = make_config()
    store.save_records(
        db,
        [
            article("100", "Old ketamine trial", "2019-05-01"),
            article("101", "Recent esketamine trial", "2026-11-20", doi="10.1001/jamapsychiatry.2026.1"),
        ],
        now="2026-11-23 06:00:00",
    )

    result = run_digest(config, db, now=NOW)

    assert [item.title for item in result.digest.items] == ["Recent esketamine trial"]
    delivery = result.deliveries[0]
    assert delivery.status == "written"
    message = parse_eml(delivery.path)
    assert "1 new" in message["Subject"] and message["Message-ID"]
    assert message["Date"] == "Mon, 23 Nov 2026 09:00:00 +0000"  # the pinned clock, not the wall clock
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Recent esketamine trial" in text and "Old ketamine trial" not in text
    assert "Anand A, Mathew SJ, Murrough JW et al." in text
    assert "https://pubmed.ncbi.nlm.nih.gov/101/" in text and "https://doi.org/10.1001/jamapsychiatry.2026.1" in text
    assert 'href="https://doi.org/10.1001/jamapsychiatry.2026.1"' in html
    assert open(delivery.html_path, encoding="utf-8").read() == result.digest.html
    assert rows(db, "SELECT recipient, transport, status FROM digest_deliveries") == [
        {"recipient": "outbox", "transport": "outbox", "status": "written"}
    ]
    assert rows(db, "SELECT work_id, section, kind FROM digest_items") == [{"work_id": 2, "section": "clinical", "kind": "new"}]


def test_next_digest_lists_only_what_arrived_since(make_config, db):
    config = make_config()
    store.save_records(db, [article("101", "First week item", "2026-11-20")], now="2026-11-20 06:00:00")
    run_digest(config, db, now=NOW)
    assert not digest_due(db, config, NOW + dt.timedelta(days=6))
    assert digest_due(db, config, NOW + dt.timedelta(days=7))

    store.save_records(
        db,
        [
            article("101", "First week item", "2026-11-20"),  # seen again: not repeated
            article("102", "Second week item", "2026-11-27"),
        ],
        now="2026-11-28 06:00:00",
    )
    second = run_digest(config, db, now=NOW + dt.timedelta(days=7))

    assert [item.title for item in second.digest.items] == ["Second week item"]
    assert second.digest.period_start == "2026-11-23 07:00:00"


def test_hostile_titles_are_escaped_and_only_http_links_kept(make_config, db):
    config = make_config()
    hostile = article("103", '<script>alert(1)</script><img src=x onerror="alert(2)"> Ketamine', "2026-11-22")
    hostile.url = "javascript:alert(3)"
    store.save_records(db, [hostile], now="2026-11-23 06:00:00")

    result = run_digest(config, db, now=NOW)

    html = result.digest.html
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/103/"' in html


def test_empty_digest_sends_nothing_new_or_skips(make_config, db):
    result = run_digest(make_config(), db, now=NOW)
    assert "Nothing new this period." in result.digest.text and result.deliveries[0].status == "written"

    skip = make_config('[digest]\nwhen_empty = "skip"\n')
    result = run_digest(skip, db, now=NOW + dt.timedelta(days=7))
    assert result.skipped == ['outbox: nothing new and [digest] when_empty = "skip"'] and result.digests == []


def test_dry_run_writes_and_records_nothing(make_config, db, tmp_path):
    store.save_records(db, [article("101", "Item", "2026-11-22")], now="2026-11-23 06:00:00")
    result = run_digest(make_config(), db, dry_run=True, now=NOW)
    assert len(result.digest.items) == 1
    assert rows(db, "SELECT COUNT(*) AS n FROM digests") == [{"n": 0}]
    assert not (tmp_path / "outbox").exists()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A private CA and a certificate for 127.0.0.1 (trustme), as an operator's internal CA would be."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    return {"ca_file": str(folder / "ca.pem"), "context": server_context}


def test_smtp_delivery_to_each_recipient(make_config, db, smtp_server):
    handler, port = smtp_server()
    config = make_config(email_section(port, recipients=("a@example.org", "b@example.org"), sender="litmon <litmon@example.org>"))
    store.save_records(db, [article("101", "Ketamine & <b>bold</b> claims", "2026-11-22")], now="2026-11-23 06:00:00")

    result = run_digest(config, db, now=NOW)

    assert [d.status for d in result.deliveries] == ["sent", "sent"]
    assert [m.rcpt_tos for m in handler.messages] == [["a@example.org"], ["b@example.org"]]
    received = email.message_from_bytes(handler.messages[0].content, policy=policy.default)
    assert received["To"] == "a@example.org"
    html = received.get_body(("html",)).get_content()
    assert "Ketamine &amp; &lt;b&gt;bold&lt;/b&gt; claims" in html
    assert rows(db, "SELECT recipient, status FROM digest_deliveries ORDER BY id") == [
        {"recipient": "a@example.org", "status": "sent"},
        {"recipient": "b@example.org", "status": "sent"},
    ]


def test_smtp_rejection_is_recorded_as_failed(make_config, db, smtp_server):
    handler, port = smtp_server(reject=True)
    config = make_config(email_section(port, recipients=("a@example.org",)))
    result = run_digest(config, db, now=NOW)
    assert result.failed
    failed = rows(db, "SELECT status, error FROM digest_deliveries")
    assert failed[0]["status"] == "failed" and "554" in failed[0]["error"]


def smtp_config(make_config, port, extra=""):
    return make_config(f"""
[email]
smtp_host = "127.0.0.1"
smtp_port = {port}
recipients = ["clinician@example.org"]
retry_backoff_seconds = 0.01
timeout = 10
{extra}
""")


def test_starttls_with_auth(make_config, db, smtp_server, tls, monkeypatch):
    handler, port = smtp_server(tls_context=tls["context"], require_starttls=True, auth=True)
    monkeypatch.setenv("LITMON_SMTP_PASSWORD", "s3cret")
    config = smtp_config(
        make_config,
        port,
        f"""security = "starttls"
username = "digest-bot"
password_env = "LITMON_SMTP_PASSWORD"
ca_file = "{tls["ca_file"]}"
""",
    )
    store.save_records(db, [article("101", "Esketamine trial", "2026-11-22")], now="2026-11-23 06:00:00")

    result = run_digest(config, db, now=NOW)

    assert [d.status for d in result.deliveries] == ["sent"]
    assert handler.logins == [(b"digest-bot", b"s3cret")]
    assert [m.rcpt_tos for m in handler.messages] == [["clinician@example.org"]]


def test_wrong_password_fails_without_retry_and_is_recorded(make_config, db, smtp_server, tls, monkeypatch):
    handler, port = smtp_server(tls_context=tls["context"], require_starttls=True, auth=True)
    monkeypatch.setenv("LITMON_SMTP_PASSWORD", "wrong")
    config = smtp_config(
        make_config,
        port,
        f"""security = "starttls"
username = "digest-bot"
ca_file = "{tls["ca_file"]}"
""",
    )
    result = run_digest(config, db, now=NOW)
    assert result.failed and handler.messages == []
    # one delivery attempt (smtplib tries each offered mechanism once); 535 is permanent: no retry
    assert sorted(handler.mechanisms) == ["LOGIN", "PLAIN"]
    error = rows(db, "SELECT error FROM digest_deliveries")[0]["error"]
    assert error.startswith("SMTP 535") and "wrong" not in error


def test_implicit_ssl(make_config, db, smtp_server, tls):
    handler, port = smtp_server(ssl_context=tls["context"])
    config = smtp_config(
        make_config,
        port,
        f"""security = "ssl"
ca_file = "{tls["ca_file"]}"
""",
    )
    result = run_digest(config, db, now=NOW)
    assert [d.status for d in result.deliveries] == ["sent"] and len(handler.messages) == 1


def test_untrusted_certificate_is_refused(make_config, db, smtp_server, tls):
    handler, port = smtp_server(ssl_context=tls["context"])
    config = smtp_config(make_config, port, 'security = "ssl"\nattempts = 1\n')  # no ca_file: system CAs only
    result = run_digest(config, db, now=NOW)
    assert result.failed and handler.messages == []
    assert "CERTIFICATE_VERIFY_FAILED" in rows(db, "SELECT error FROM digest_deliveries")[0]["error"]


def test_transient_failure_is_retried_then_delivered(make_config, db, smtp_server):
    handler, port = smtp_server(transient_failures=2)
    config = smtp_config(make_config, port, 'security = "none"\nattempts = 3\n')
    result = run_digest(config, db, now=NOW)
    assert [d.status for d in result.deliveries] == ["sent"]
    assert handler.attempts == 3 and len(handler.messages) == 1
    assert rows(db, "SELECT status FROM digest_deliveries") == [{"status": "sent"}]


def _head_lines(wire: bytes) -> list[str]:
    return wire.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii").split("\n")


def _folded(lines: list[str], name: str) -> list[str]:
    """The lines of one header: its own line and the folded lines after it."""
    start = next(index for index, line in enumerate(lines) if line.startswith(f"{name}:"))
    return [lines[start], *itertools.takewhile(lambda line: line.startswith(" "), lines[start + 1 :])]


@pytest.mark.parametrize(
    "subject",
    [
        # the subject of a first run with every source down (the dash fell where Python's folder wrote an empty word)
        "[litmon] Ketamine and esketamine for depression: 0 new — 17 sources failed (2026-11-29 to 2026-12-06)",
        # CPython gh-136052's own example: an empty encoded word before the fold
        "Re: some few filler words here RE: Routeraustausch und übriggebliebene Glasfaser",
        *(f"[litmon] {'x' * n} Ketamine: 3 new — 1 source failed (2026-11-29 to 2026-12-06) élan" for n in range(0, 80, 7)),
    ],
)
def test_non_ascii_subject_and_list_name_are_folded_into_valid_encoded_words(make_config, subject):
    """A subject and a list name (the topic's) outside ASCII are written as self-contained RFC 2047 words (no
    empty one, none glued to the next, every encoded line within 78 characters) in both wire forms, and read back
    as the same text."""
    config = make_config()
    # a topic named outside ASCII: the List-Id's phrase
    config.topic = dataclasses.replace(config.topic, name=subject.removeprefix("[litmon] "))
    message = build_message(config, subject, "text", "<p>html</p>", "a@example.org")
    for wire in (bytes(message), message.as_bytes(policy=message.policy.clone(linesep="\r\n"))):
        lines = _head_lines(wire)
        for name in ("Subject", "List-Id"):
            folded = _folded(lines, name)
            encoded = [line for line in folded if "=?" in line]
            assert encoded and all(len(line) <= 78 for line in encoded), folded
            raw = " ".join(line.strip() for line in folded)
            assert "?q??=" not in raw.lower() and "?b??=" not in raw.lower() and "?==?" not in raw, raw
        received = email.message_from_bytes(wire, policy=policy.default)
        assert received["Subject"] == subject
        assert received["List-Id"].startswith(f"{config.topic.name} <") and received["List-Id"].endswith(".litmon.example.org>")


def test_ascii_subject_is_written_as_it_is(make_config):
    subject = "[litmon] Ketamine and esketamine for depression: 2 new (2026-11-29 to 2026-12-06)"
    message = build_message(make_config(), subject, "text", "<p>html</p>", "a@example.org")
    wire = bytes(message)
    head = wire.split(b"\n\n", 1)[0].decode("ascii")
    assert "Subject: [litmon] Ketamine and esketamine" in head and "=?" not in head  # readable, not encoded
    assert email.message_from_bytes(wire, policy=policy.default)["Subject"] == subject


def test_list_unsubscribe_is_written_as_it_is(make_config, db):
    """RFC 2369's <mailto:…> on its header line, as it is: Python's folder had turned the shipped topic's
    (longer than a line, nothing to fold at) into RFC 2047 encoded words, which mail clients do not offer."""
    config = make_config()
    # the shipped topic's name: its header is longer than a line
    config.topic = dataclasses.replace(config.topic, name=load_config(None).topic.name)
    store.save_records(db, [article("101", "Recent esketamine trial", "2026-11-20")], now="2026-11-23 06:00:00")

    result = run_digest(config, db, now=NOW)

    wire = open(result.deliveries[0].path, "rb").read()
    folded = _folded(_head_lines(wire), "List-Unsubscribe")
    slug = re.sub(r"[^a-z0-9]+", "-", config.topic.name.lower()).strip("-")
    expected = f"<mailto:{config.contact_email}?subject=unsubscribe%20{slug}>"
    assert "".join(folded) == f"List-Unsubscribe: {expected}"  # unfolded: as it is, no encoded word
    assert parse_eml(result.deliveries[0].path)["List-Unsubscribe"] == expected
