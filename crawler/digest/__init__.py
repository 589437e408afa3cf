"""The digest: what is new and what changed since each recipient's last digest, rendered and delivered.

Period
    Per recipient, from the end of the last digest that reached them (sent, or written to the outbox)
    to now: a missed week is covered by the next digest, and a failed delivery is covered again by
    the next run, so nothing is lost and nothing is sent twice. A recipient's first digest (typically
    right after a backfill) lists only works entered in the last ``[digest] first_digest_days`` days.
    Works a source brings late (its backfill, a re-read window) are news only if they entered the source
    since the reader's digests began (or since the source was added); older ones are counted, not listed.
Content
    New works (never sent to this recipient before) and updates: trial registration changes
    (before → after), preprints now published, and retractions / corrections / expressions of
    concern about works sent in an earlier digest (flagged) or new in this one. One item per study: a
    preprint or registration due with its journal version is told on that item. Each section shows at
    most ``[digest] section_cap`` items (fewer if the HTML would pass 95 KB); every item is in the
    attached RIS file, with ``List-Id``, ``List-Unsubscribe`` and ``Auto-Submitted`` headers. Works classified
    ``not_relevant`` (:mod:`crawler.classify`) never appear; ``uncertain`` ones have their own
    section. Items are ordered by ``work_relevance.rank_score``; the best ``[digest] highlights``
    relevant works open the digest. The last section reports each source's health in the period.
Sections (keys usable in ``[[recipients]] sections``)
    highlights, notices, clinical, reviews, trials, preprints, preclinical, news, uncertain, health.
Delivery
    With ``[email].smtp_host`` empty, each digest is written to ``[outbox].dir`` as ``.eml`` and
    ``.html``. Otherwise it is sent over SMTP (none / STARTTLS / SSL, AUTH with the password from
    ``$<password_env>``) to its recipient and recorded as sent only after the server accepted it.
Steps (one module each)
    :mod:`~crawler.digest.selection` (who is due, the period, the store's reads) →
    :mod:`~crawler.digest.build` (items, sections, subject) → :mod:`~crawler.digest.render` (templates) →
    :mod:`~crawler.digest.deliver` (one function per transport, a :class:`Delivery`), run by :mod:`~crawler.digest.run`.
"""

from __future__ import annotations

from crawler.digest.build import CLINICAL_ORDER, SECTION_TITLES, Digest, DigestItem, build, build_item
from crawler.digest.deliver import Delivery, build_message, deliver, resend, send_smtp, write_outbox
from crawler.digest.render import render
from crawler.digest.run import DigestResult, build_digest, run_digest, write_preview
from crawler.digest.selection import Selection, digest_due, period_of, recipient_due, recipients_of, select

__all__ = [
    "CLINICAL_ORDER",
    "SECTION_TITLES",
    "Delivery",
    "Digest",
    "DigestItem",
    "DigestResult",
    "Selection",
    "build",
    "build_digest",
    "build_item",
    "build_message",
    "deliver",
    "digest_due",
    "period_of",
    "recipient_due",
    "recipients_of",
    "render",
    "resend",
    "run_digest",
    "select",
    "send_smtp",
    "write_outbox",
    "write_preview",
]
