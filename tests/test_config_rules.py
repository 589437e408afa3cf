"""Validation gaps closed by #16: timeouts must be > 0, values that reach mail headers must be one line,
and SMTP credentials over an unencrypted connection are warned about at load."""

from __future__ import annotations

import logging

import pytest

from crawler.config import parse_config
from crawler.errors import ConfigError

BASE = 'contact_email = "tester@example.org"\n[topic]\nmatch_terms = ["ketamine"]\n'


@pytest.mark.parametrize(
    "section, key",
    [
        ("http", "read_timeout"),
        ("http", "connect_timeout"),
        ("http", "response_timeout"),
        ("http", "source_timeout"),
        ("email", "timeout"),
        ("database", "busy_timeout"),
    ],
)
def test_a_zero_timeout_is_rejected_at_load(section, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(f"{BASE}[{section}]\n{key} = 0\n", "litmon.toml")
    assert f"litmon.toml: {section}.{key}: expected a number of seconds > 0, got 0" in str(caught.value)


@pytest.mark.parametrize(
    "text, key",
    [
        (
            'contact_email = "tester@example.org"\n[topic]\nname = "Ketamine\\r\\nBcc: all@example.org"\nmatch_terms = ["ketamine"]\n',
            "topic.name",
        ),
        (BASE + '[digest]\nsubject_prefix = "[x]\\n"\n', "digest.subject_prefix"),
        (BASE + '[email]\nsender = "litmon <a@example.org>\\r\\nX: y"\n', "email.sender"),
    ],
)
def test_control_characters_in_values_that_reach_mail_headers_are_rejected(text, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "litmon.toml")
    assert f"{key}: expected one line without control characters (it goes into mail headers)" in str(caught.value)


def test_smtp_auth_without_encryption_is_warned_about(caplog):
    text = BASE + '[email]\nsmtp_host = "mail.example.org"\nsecurity = "none"\nusername = "bot"\nrecipients = ["a@example.org"]\n'
    with caplog.at_level(logging.WARNING, logger="crawler.config"):
        parse_config(text, "litmon.toml")
    assert 'security = "none" with a username: the SMTP password would travel unencrypted to mail.example.org' in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crawler.config"):
        parse_config(text.replace('security = "none"', 'security = "starttls"'), "litmon.toml")
    assert "unencrypted" not in caplog.text
