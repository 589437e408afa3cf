"""The loopback SMTP server's side of the tests (the ``smtp_server`` fixture in conftest.py starts it): the handler
that records, rejects or fails, and the ``[email]`` table of a config that delivers to it."""

from __future__ import annotations

import json

from aiosmtpd.smtp import AuthResult


def email_section(port: int, *, recipients: tuple[str, ...] = ("clinician@example.org",), **settings: object) -> str:
    """The ``[email]`` table that delivers in clear text to the loopback SMTP server on ``port``.

    ``settings`` add keys of the table (``attempts=1``, ``timeout=5``, ``sender="…"``), written in order."""
    lines = [
        "[email]",
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {port}",
        'security = "none"',
        f"recipients = {json.dumps(list(recipients))}",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n" + "\n".join(lines) + "\n"


class Recorder:
    """An SMTP handler that records messages; it can reject, or fail transiently N times first."""

    def __init__(self, reject=False, transient_failures=0):
        self.messages, self.reject, self.transient_failures = [], reject, transient_failures
        self.attempts = 0
        self.logins: list[tuple[bytes, bytes]] = []
        self.mechanisms: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.reject:
            return "554 5.7.1 Message rejected"
        if self.attempts <= self.transient_failures:
            return "451 4.3.0 Temporary failure, try again"
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        self.mechanisms.append(mechanism)
        # handled=False: let the server answer 535 itself
        return AuthResult(success=auth_data.login == b"digest-bot" and auth_data.password == b"s3cret", handled=False)
