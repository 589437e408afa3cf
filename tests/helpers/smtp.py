"""The handler of the loopback SMTP server (the ``smtp_server`` fixture in conftest.py): records, rejects or fails."""

from __future__ import annotations

from aiosmtpd.smtp import AuthResult


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
