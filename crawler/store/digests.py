"""Digests: ``digests`` per recipient, their ``digest_items`` and ``digest_deliveries``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawler import clock
from crawler.store.common import chunks, dumps, marks


def save_digest(
    db,
    *,
    period_start: str,
    period_end: str,
    subject: str,
    text_body: str,
    html_body: str,
    items: list,
    recipient: str = "outbox",
) -> int:
    """Store a rendered digest for one recipient with its items: (work_id, section) or
    (work_id, section, kind, detail) where kind is new | update and detail is JSON-able."""
    with db.atomic():
        digest_id = db.execute(
            "INSERT INTO digests (created_at, period_start, period_end, subject, item_count, text_body, html_body, recipient)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [clock.stamp(), period_start, period_end, subject, len(items), text_body, html_body, recipient],
        ).lastrowid
        for position, item in enumerate(items):
            work_id, section, kind, detail = (tuple(item) + ("new", None))[:4]
            db.execute(
                "INSERT INTO digest_items (digest_id, work_id, section, position, kind, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [digest_id, work_id, section, position, kind, dumps(detail) if detail is not None else None],
            )
    return digest_id


def save_delivery(
    db,
    digest_id: int,
    recipient: str,
    *,
    transport: str,
    status: str,
    message_id: str | None = None,
    path: str | None = None,
    error: str | None = None,
) -> int:
    now = clock.stamp()
    with db.atomic():
        return db.execute(
            "INSERT INTO digest_deliveries (digest_id, recipient, transport, status, attempted_at, delivered_at, message_id, path, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                digest_id,
                recipient,
                transport,
                status,
                now,
                now if status in ("sent", "written") else None,
                message_id,
                path,
                error,
            ],
        ).lastrowid


#: Delivery statuses that count as having reached the recipient. ``unknown``: the process died between
#: handing the message over and recording the answer; it is never sent again automatically (at most
#: once), and `litmon status` asks the operator to check the mailbox for its Message-ID.
REACHED_STATUSES = ("sent", "written", "unknown")


def start_delivery(db, digest_id: int, recipient: str, *, transport: str, message_id: str | None, path: str | None = None) -> int:
    """Record, before handing a digest over (SMTP DATA, writing the outbox file), that it is being sent."""
    return save_delivery(db, digest_id, recipient, transport=transport, status="sending", message_id=message_id, path=path)


def update_delivery(db, delivery_id: int, *, status: str, error: str | None = None) -> None:
    """The outcome of a delivery recorded by :func:`start_delivery` (committed at once)."""
    now = clock.stamp()
    with db.atomic():
        db.execute(
            "UPDATE digest_deliveries SET status = ?, attempted_at = ?, delivered_at = ?, error = ? WHERE id = ?",
            # an unknown delivery is dated like a sent one: its items count as reached (never resent)
            [status, now, now if status in REACHED_STATUSES else None, error, delivery_id],
        )


def recover_pending_deliveries(db) -> list[dict[str, Any]]:
    """Settle deliveries left ``sending``/``retrying`` by a killed process (call under the run lock).

    An outbox file that exists was written (the file is renamed into place whole); an SMTP message
    may or may not have been accepted: it becomes ``unknown`` and is not sent again. ``retrying`` means
    the server had refused it: ``failed``, sent again by the next digest run.
    """
    settled = []
    for row in db.query(
        "SELECT id, digest_id, recipient, transport, status, message_id, path FROM digest_deliveries WHERE status IN ('sending', 'retrying')"
    ):
        error: str | None
        if row["status"] == "retrying":
            status, error = "failed", "the process was killed while retrying this delivery; the next digest run sends it"
        elif row["transport"] == "outbox":
            written = bool(row["path"]) and Path(row["path"]).exists()
            status, error = ("written", None) if written else ("failed", "the process was killed before the file was written")
        else:
            status = "unknown"
            error = (
                f"the process was killed while the mail server was receiving it: check the mailbox for Message-ID "
                f"{row['message_id']}; it is not sent again (`litmon digest --resend {row['digest_id']}` sends it)"
            )
        update_delivery(db, row["id"], status=status, error=error)
        settled.append({**row, "status": status})
    return settled


def load_last_delivered_digest(db, recipient: str) -> dict | None:
    """The newest digest that reached ``recipient`` (sent, or written to the outbox)."""
    rows = list(
        db.query(
            """SELECT d.* FROM digests d JOIN digest_deliveries x ON x.digest_id = d.id
           WHERE d.recipient = ? AND x.recipient = ? AND x.status IN ('sent', 'written', 'unknown')
           ORDER BY d.period_end DESC, d.id DESC LIMIT 1""",
            [recipient, recipient],
        )
    )
    return rows[0] if rows else None


def load_first_delivered_period_start(db, recipient: str) -> str | None:
    """Where the digests that reached ``recipient`` begin: the period start of the first one (None: none yet)."""
    return db.execute(
        """SELECT MIN(d.period_start) FROM digests d JOIN digest_deliveries x ON x.digest_id = d.id
           WHERE d.recipient = ? AND x.recipient = ? AND x.status IN ('sent', 'written', 'unknown')""",
        [recipient, recipient],
    ).fetchone()[0]


def load_failed_since(db, recipient: str, since: str | None) -> int:
    """Failed deliveries to ``recipient`` after the digest period ``since`` (None: ever)."""
    return db.execute(
        """SELECT COUNT(*) FROM digests d JOIN digest_deliveries x ON x.digest_id = d.id
           WHERE d.recipient = ? AND x.status = 'failed' AND d.period_end > COALESCE(?, '')""",
        [recipient, since],
    ).fetchone()[0]


def load_delivered_work_ids(db, recipient: str, work_ids: list[int]) -> dict[int, str]:
    """Which of ``work_ids`` reached ``recipient`` in an earlier digest, with the date it was sent."""
    found: dict[int, str] = {}
    for chunk in chunks(work_ids):
        for row in db.query(
            f"""SELECT i.work_id, MIN(x.delivered_at) AS at FROM digest_items i
                    JOIN digests d ON d.id = i.digest_id JOIN digest_deliveries x ON x.digest_id = d.id
                    WHERE d.recipient = ? AND x.status IN ('sent', 'written', 'unknown') AND i.work_id IN ({marks(chunk)})
                    GROUP BY i.work_id""",
            [recipient, *chunk],
        ):
            found[row["work_id"]] = row["at"]
    return found


def load_digest(db, digest_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM digests WHERE id = ?", [digest_id]))
    return rows[0] if rows else None


def load_digest_work_ids(db, digest_id: int) -> list[int]:
    """The works a digest listed, in the order it listed them (each once)."""
    rows = db.execute("SELECT work_id FROM digest_items WHERE digest_id = ? ORDER BY position", [digest_id]).fetchall()
    return list(dict.fromkeys(row[0] for row in rows))


# --------------------------------------------------------------------------- reads of status and the scheduler


def load_last_digest(db) -> dict | None:
    """The newest digest: id, created_at, period_start, period_end, item_count."""
    return next(
        iter(db.query("SELECT id, created_at, period_start, period_end, item_count FROM digests ORDER BY id DESC LIMIT 1")), None
    )


def load_last_digest_created_at(db) -> str | None:
    return db.execute("SELECT MAX(created_at) FROM digests").fetchone()[0]


def load_deliveries_of_digest(db, digest_id: int) -> list[dict]:
    """recipient, status, attempted_at, path, error of each delivery of a digest."""
    return list(
        db.query("SELECT recipient, status, attempted_at, path, error FROM digest_deliveries WHERE digest_id = ?", [digest_id])
    )


def load_last_delivery_per_recipient(db) -> list[dict]:
    """Per recipient: the last delivery (digest id, status, attempt, error) and when one last reached them."""
    return list(
        db.query(
            """SELECT d.recipient, d.digest_id AS last_digest_id, d.status AS last_status, d.attempted_at AS last_attempt_at,
                      (SELECT MAX(delivered_at) FROM digest_deliveries ok WHERE ok.recipient = d.recipient
                       AND ok.status IN ('sent', 'written')) AS last_delivered_at, d.error
               FROM digest_deliveries d WHERE d.id IN (SELECT MAX(id) FROM digest_deliveries GROUP BY recipient)
               ORDER BY d.recipient"""
        )
    )
