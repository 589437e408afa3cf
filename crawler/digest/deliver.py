"""Deliver: one function per transport, each returning a :class:`Delivery`.

With ``[email].smtp_host`` empty, each digest is written to ``[outbox].dir`` as ``.eml`` and ``.html``
(:func:`write_outbox`). Otherwise it is sent over SMTP (none / STARTTLS / SSL, AUTH with the password
from ``$<password_env>``) to its recipient, at most once (:func:`send_smtp`).
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from crawler import clock, dbguard, export, failpoints, store
from crawler.digest.render import ATTACHMENT_NAME
from crawler.errors import DeliveryError, UsageError

log = logging.getLogger("crawler.digest")


class EncodedHeader(str):
    """A header value outside ASCII, its text (a subject, or a list's name before its id) folded into
    RFC 2047 encoded words by :mod:`email.header` instead of the default policy's folder. That folder can write an
    empty encoded word (``=?utf-8?q??=``, CPython gh-136052) or two encoded words with no space between them
    (gh-144156) when a fold falls next to a non-ASCII character (the digest subject's dash): some mail clients
    then show the raw text, and Yahoo refuses the message as an invalid header. ``email.header`` writes
    self-contained words of at most 75 characters, each on its own folded line, with only the characters RFC 2047
    allows in a phrase; ``address`` (``<…>``) follows on a line of its own. Readers decode it to the same text,
    which is also this string's value."""

    name: str
    text: str
    address: str

    def __new__(cls, name: str, text: str, address: str = "") -> EncodedHeader:
        value = super().__new__(cls, f"{text} <{address}>" if address else text)
        value.name, value.text, value.address = name, text, address
        return value

    def fold(self, *, policy) -> str:
        encoded = Header(self.text, "utf-8", maxlinelen=min(policy.max_line_length or 78, 78), header_name=self.name)
        tail = f"{policy.linesep} <{self.address}>" if self.address else ""
        return f"{self.name}: {encoded.encode(linesep=policy.linesep)}{tail}{policy.linesep}"


class VerbatimHeader(str):
    """An ASCII header value written as it is, on one line (at most ~170 characters here, within the 998 of
    RFC 5322). The default policy's folder turns a value longer than a line with no space to fold at into RFC 2047
    encoded words: for ``List-Unsubscribe`` (RFC 2369 wants its ``<mailto:…>`` as it is) that hid the
    unsubscribe address from mail clients."""

    name: str

    def __new__(cls, name: str, value: str) -> VerbatimHeader:
        if not value.isascii() or "\n" in value or "\r" in value:
            raise ValueError(f"{name}: a verbatim header value must be ASCII on one line, got {value!r}")
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def header_value(name: str, text: str, address: str = "") -> str:
    """``text`` (with ``<address>`` after it) as a header value: as it is in ASCII, else :class:`EncodedHeader`."""
    if text.isascii():
        return f"{text} <{address}>" if address else text
    return EncodedHeader(name, text, address)


@dataclass
class Delivery:
    """What became of one digest for one recipient."""

    recipient: str
    status: str  # written | sent | failed | dry run
    path: str | None = None  # outbox: the .eml file
    html_path: str | None = None  # outbox: the .html file
    message_id: str | None = None  # smtp: the Message-ID of the sent message
    error: str | None = None


def build_message(
    config, digest_subject: str, text: str, html: str, recipient: str | None, ris: str | None = None
) -> EmailMessage:
    """The digest e-mail: text and HTML alternatives, the items as a RIS attachment, list headers."""
    message = EmailMessage()
    message["Subject"] = header_value("Subject", digest_subject)
    message["From"] = config.email.sender
    if recipient and recipient != "outbox":
        message["To"] = recipient
    message["Date"] = formatdate(clock.now().timestamp(), usegmt=True)  # the one clock, like every stored time
    domain = config.email.sender.rsplit("@", 1)[-1].strip("> ") or "litmon.local"
    message["Message-ID"] = make_msgid("litmon", domain=domain)
    slug = re.sub(r"[^a-z0-9]+", "-", config.topic.name.lower()).strip("-")[:60] or "digest"
    message["List-Id"] = header_value("List-Id", config.topic.name, f"{slug}.litmon.{domain}")
    unsubscribe = f"<mailto:{config.contact_email}?subject=unsubscribe%20{slug}>"
    # as it is: a URL longer than a line must not become encoded words (mail clients would not offer it)
    message["List-Unsubscribe"] = VerbatimHeader("List-Unsubscribe", unsubscribe) if unsubscribe.isascii() else unsubscribe
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if ris:
        message.add_attachment(
            ris.encode("utf-8"), maintype="application", subtype="x-research-info-systems", filename=ATTACHMENT_NAME
        )
    return message


def deliver(config, db, digest_id: int, address: str, subject: str, text: str, html: str, ris: str | None = None) -> Delivery:
    """Through the configured transport: SMTP when ``[email] smtp_host`` is set, else the outbox.

    ``ris``: the digest's items as RIS (made from the stored digest when not given)."""
    if ris is None:
        ris = ris_of_digest(config, db, digest_id)
    if not config.email.smtp_host:
        return write_outbox(config, db, digest_id, address, subject, text, html, ris=ris)
    return send_smtp(config, db, digest_id, address, subject, text, html, ris=ris)


def ris_of_digest(config, db, digest_id: int) -> str:
    """The items a stored digest listed (also those beyond a section's cap), as RIS."""
    return export.render(store.load_export_works(db, work_ids=store.load_digest_work_ids(db, digest_id)), "ris")


def resend(config, db, digest_id: int, *, dry_run: bool = False) -> Delivery:
    """Deliver a stored digest again, to the recipient it was made for."""
    row = store.load_digest(db, digest_id)
    if row is None:
        raise UsageError(f"no digest with id {digest_id} — `litmon status` shows the last one")
    if dry_run:
        return Delivery(row["recipient"], "dry run")
    return deliver(config, db, digest_id, row["recipient"], row["subject"], row["text_body"], row["html_body"])


def write_outbox(
    config, db, digest_id: int, address: str, subject: str, text: str, html: str, ris: str | None = None
) -> Delivery:
    outbox = Path(config.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    who = "" if address == "outbox" else "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", address)
    stem = f"litmon-digest-{digest_id:05d}{who}"
    message = build_message(config, subject, text, html, address, ris)
    eml, html_path = outbox / f"{stem}.eml", outbox / f"{stem}.html"
    # recorded first: a run killed before the file is in place settles it by whether the file exists
    delivery_id = store.start_delivery(
        db, digest_id, address, transport="outbox", message_id=message["Message-ID"], path=str(eml)
    )
    try:
        write_atomic(html_path, html.encode("utf-8"))
        write_atomic(eml, bytes(message))
    except OSError as exc:  # an unwritable outbox or a full disk: a failed delivery (retried next run), not a crash
        error = str(dbguard.explain(exc, config.database_path))
        store.update_delivery(db, delivery_id, status="failed", error=error)
        log.error("digest %d for %s not written: %s", digest_id, address, error)
        return Delivery(address, "failed", path=str(eml), error=error)
    store.update_delivery(db, delivery_id, status="written")
    log.info("digest %d for %s written to %s", digest_id, address, eml)
    return Delivery(address, "written", path=str(eml), html_path=str(html_path))


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a disk that filled up mid-write leaves no half file behind
        raise


def send_smtp(config, db, digest_id: int, recipient: str, subject: str, text: str, html: str, ris: str | None = None) -> Delivery:
    """Send to one recipient, at most once: transient failures (4xx replies, dropped connections before
    the server accepted the message) are retried with exponential backoff.

    A ``250`` after DATA is success, whatever QUIT answers afterwards: the delivery is recorded as sent
    (with its Message-ID) at once, before anything else can fail. Just before DATA the delivery is
    recorded as ``sending``; if the process dies before the server's answer is recorded, the next run
    marks it ``unknown`` and does not send it again (see :func:`crawler.store.recover_pending_deliveries`).
    """
    settings = config.email
    message = build_message(config, subject, text, html, recipient, ris)
    message_id = message["Message-ID"]
    error = None
    delivery_id: int | None = None

    def before_data() -> None:
        nonlocal delivery_id
        if delivery_id is None:
            delivery_id = store.start_delivery(db, digest_id, recipient, transport="smtp", message_id=message_id)
        else:
            store.update_delivery(db, delivery_id, status="sending")

    def accepted() -> None:
        assert delivery_id is not None  # before_data() ran: the server only answers DATA after it
        failpoints.hit("after_smtp_accept")
        store.update_delivery(db, delivery_id, status="sent")

    for attempt in range(settings.attempts):
        try:
            _smtp_send(settings, message, recipient, before_data=before_data, accepted=accepted)
            log.info("digest %d sent to %s (%s)", digest_id, recipient, message_id)
            return Delivery(recipient, "sent", message_id=message_id)
        except (smtplib.SMTPException, OSError, DeliveryError) as exc:
            error, permanent = _describe_failure(exc)
            if permanent:
                break  # retrying will not help
        if delivery_id is not None:  # the server answered DATA with an error, or none: it did not accept it
            store.update_delivery(db, delivery_id, status="retrying", error=error)
        if attempt < settings.attempts - 1:
            delay = settings.retry_backoff_seconds * (2**attempt)
            log.info(
                "digest %d to %s: %s; retry %d/%d in %.1fs",
                digest_id,
                recipient,
                error,
                attempt + 1,
                settings.attempts - 1,
                delay,
            )
            time.sleep(delay)
    _record_failure(db, digest_id, recipient, delivery_id, error)
    log.error(
        "digest %d to %s failed: %s — check: [email] smtp_host, smtp_port, security, username and $%s; the next run retries it",
        digest_id,
        recipient,
        error,
        settings.password_env or "password_env",
    )
    return Delivery(recipient, "failed", error=error)


def _describe_failure(exc: Exception) -> tuple[str, bool]:
    """What went wrong in an SMTP attempt, and whether it is permanent (a 5xx reply, a refused recipient,
    a configuration problem) rather than worth another attempt (a 4xx reply, a dropped connection)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"SMTP {exc.smtp_code}: {detail}", not 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"recipient refused: {exc.recipients}", True
    if isinstance(exc, DeliveryError):
        return str(exc), True
    return f"{type(exc).__name__}: {exc}", False


def _record_failure(db, digest_id: int, recipient: str, delivery_id: int | None, error: str | None) -> None:
    """The delivery failed for this run: update the row started before DATA, or save one if none was."""
    if delivery_id is None:
        store.save_delivery(db, digest_id, recipient, transport="smtp", status="failed", error=error)
    else:
        store.update_delivery(db, delivery_id, status="failed", error=error)


def _tls_context(settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(Path(settings.ca_file).expanduser()) if settings.ca_file else None)


def _smtp_send(settings, message: EmailMessage, recipient: str, *, before_data=None, accepted=None) -> None:
    """One SMTP session: MAIL, RCPT, then DATA; ``before_data()`` runs just before DATA and ``accepted()``
    right after the server's 250. QUIT is a courtesy: whatever it answers (421, a dropped connection),
    an accepted message stays accepted."""
    password = os.environ.get(settings.password_env, "") if settings.password_env else ""
    if settings.username and not password:
        raise DeliveryError(f"[email] username is set but ${settings.password_env} is empty")
    client = _connect(settings)
    try:
        _greet(client, settings, password)
        sender = parseaddr(str(message["From"]))[1]
        payload = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        options = ["SMTPUTF8", "BODY=8BITMIME"] if not (sender + recipient).isascii() and client.has_extn("smtputf8") else []
        code, reply = client.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        if before_data:
            before_data()
        code, reply = client.data(payload)
        if code != 250:  # smtplib raises SMTPDataError itself; kept for clarity
            raise smtplib.SMTPDataError(code, reply)
        if accepted:
            accepted()
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError) as exc:
            log.debug("SMTP QUIT after the message: %s (ignored)", exc)
        client.close()


def _connect(settings) -> smtplib.SMTP:
    """A connection to the server: TLS from the start with ``security = "ssl"``, else plain (for now)."""
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.timeout, context=_tls_context(settings))
    return smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)


def _greet(client: smtplib.SMTP, settings, password: str) -> None:
    """EHLO, STARTTLS (then EHLO again) with ``security = "starttls"``, and AUTH when a username is set."""
    client.ehlo()
    if settings.security == "starttls":
        client.starttls(context=_tls_context(settings))
        client.ehlo()
    if settings.username:
        client.login(settings.username, password)
