"""Digest periods across runs: nothing lost, nothing repeated except as an update, per recipient."""

from __future__ import annotations

import datetime as dt
import email
import os
import re
from email import policy
from pathlib import Path

from crawler import clock, store
from crawler.digest import digest_due, run_digest
from crawler.records import Record
from tests.conftest import FIXTURES, rows
from tests.helpers.smtp import email_section

T1 = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(days=7)
T3 = T2 + dt.timedelta(days=7)


def stamp(moment: dt.datetime, hours_before: int = 1) -> str:
    return clock.stamp(moment - dt.timedelta(hours=hours_before))


def article(pmid, title, entered_on="2026-11-21", **extra):
    record = Record(
        source="pubmed",
        source_id=pmid,
        record_type=extra.pop("record_type", "article"),
        title=title,
        entered_on=entered_on,
        published_on=entered_on,
        journal="JAMA psychiatry",
        authors=["Anand A", "Mathew SJ"],
        publication_types=extra.pop("publication_types", ["Randomized Controlled Trial"]),
        abstract=extra.pop(
            "abstract", "Adults with treatment-resistant depression received ketamine infusions. Response was 55%."
        ),
    )
    record.add_id("pmid", pmid)
    return record


def trial(status, enrollment, primary, has_results=False):
    record = Record(
        source="clinicaltrials",
        source_id="NCT04338321",
        record_type="trial_registration",
        title="Esketamine nasal spray versus quetiapine in treatment-resistant depression (ESCAPE-TRD)",
        entered_on="2026-11-20",
        abstract="A randomised trial of esketamine nasal spray in depression.",
    )
    record.add_id("nct", "NCT04338321")
    record.trial = {
        "overall_status": status,
        "enrollment": enrollment,
        "primary_completion_date": primary,
        "has_results": has_results,
        "results_first_posted_on": "2027-01-10" if has_results else None,
    }
    return record


def titles(result, section=None):
    return [i.title for i in result.digest.items if section is None or i.section == section]


def test_consecutive_periods_repeat_nothing_except_as_update(make_config, db):
    config = make_config()
    store.save_records(
        db, [article("1", "Ketamine vs ECT in treatment-resistant depression"), trial("RECRUITING", 60, "2026-06")], now=stamp(T1)
    )
    first = run_digest(config, db, now=T1)
    assert sorted(titles(first)) == [
        "Esketamine nasal spray versus quetiapine in treatment-resistant depression (ESCAPE-TRD)",
        "Ketamine vs ECT in treatment-resistant depression",
    ]

    # a week later: one new article, the trial completed with more patients; the first article seen again
    store.save_records(
        db,
        [
            article("1", "Ketamine vs ECT in treatment-resistant depression"),
            article(
                "2", "Esketamine and suicidal ideation: a cohort study", "2026-11-28", publication_types=["Observational Study"]
            ),
            trial("COMPLETED", 120, "2027-06", has_results=True),
        ],
        now=stamp(T2),
    )
    second = run_digest(config, db, now=T2)

    assert second.digest.period_start == "2026-11-23 07:00:00"
    assert [(i.title, i.kind) for i in second.digest.items if i.kind == "new"] == [
        ("Esketamine and suicidal ideation: a cohort study", "new")
    ]
    update = next(i for i in second.digest.items if i.kind == "update")
    assert update.section == "trials"
    assert update.notes == [
        "status: RECRUITING → COMPLETED",
        "enrollment: 60 → 120",
        "primary completion: 2026-06 → 2027-06",
        "results first posted 2027-01-10",
    ]
    assert "  > status: RECRUITING → COMPLETED" in second.digest.text
    assert "1 new, 1 update(s)" in second.digest.subject
    stored = rows(db, "SELECT kind, section, detail FROM digest_items WHERE digest_id = ? ORDER BY position", [second.digest_id])
    assert {r["kind"] for r in stored} == {"new", "update"}
    assert any(r["detail"] and "RECRUITING" in r["detail"] for r in stored)

    third = run_digest(config, db, now=T3)
    assert third.digest.items == []


def test_retraction_of_an_item_sent_earlier_is_flagged_in_the_next_digest(make_config, db):
    config = make_config()
    store.save_records(
        db,
        [article("10", "Esketamine nasal spray in suicidal ideation: a case series", publication_types=["Case Reports"])],
        now=stamp(T1),
    )
    run_digest(config, db, now=T1)

    notice = article(
        "11",
        "Retraction notice: Esketamine nasal spray in suicidal ideation",
        "2026-11-27",
        record_type="notice",
        publication_types=["Retraction of Publication"],
        abstract="This article has been retracted.",
    )
    notice.add_link("retraction_of", "pmid", "10")
    store.save_records(db, [notice], now=stamp(T2))
    second = run_digest(config, db, now=T2)

    [item] = second.digest.items  # the notice is told on the work it concerns, once
    assert item.title == "Esketamine nasal spray in suicidal ideation: a case series"
    assert item.section == "notices" and item.kind == "update"
    assert item.notes == ["Retraction issued for this work"]
    assert item.flag == "concerns an item sent to you on 2026-11-23"
    assert "[!] [update] Esketamine nasal spray in suicidal ideation: a case series" in second.digest.text
    assert "!! concerns an item sent to you on 2026-11-23" in second.digest.text
    assert "concerns an item sent to you on 2026-11-23" in second.digest.html


def test_preprint_sent_earlier_is_announced_when_published(make_config, db):
    config = make_config()
    preprint = Record(
        source="biorxiv",
        source_id="10.1101/2026.10.01.26300001v1",
        record_type="preprint",
        title="Ketamine and sleep in depression",
        entered_on="2026-11-20",
        abstract="Ketamine improved sleep.",
        url="https://www.medrxiv.org/content/10.1101/2026.10.01.26300001v1",
    )
    preprint.add_id("doi", "10.1101/2026.10.01.26300001")
    store.save_records(db, [preprint], now=stamp(T1))
    run_digest(config, db, now=T1)

    preprint.add_link("preprint_of", "doi", "10.1016/j.jad.2026.12.001")
    store.save_records(db, [preprint], now=stamp(T2))
    second = run_digest(config, db, now=T2)

    [item] = second.digest.items
    assert item.section == "preprints" and item.kind == "update"
    assert item.notes == ["Now published: https://doi.org/10.1016/j.jad.2026.12.001 (doi:10.1016/j.jad.2026.12.001)"]


def test_now_published_update_and_its_journal_article_in_one_digest_make_one_item(make_config, db):
    config = make_config()
    preprint = Record(
        source="medrxiv",
        source_id="10.1101/2026.10.01.26300002v1",
        record_type="preprint",
        title="Ketamine infusions and sleep in treatment-resistant depression",
        entered_on="2026-11-20",
        abstract="Adults with treatment-resistant depression received ketamine infusions. Sleep improved.",
        url="https://www.medrxiv.org/content/10.1101/2026.10.01.26300002v1",
    )
    preprint.add_id("doi", "10.1101/2026.10.01.26300002")
    store.save_records(db, [preprint], now=stamp(T1))
    run_digest(config, db, now=T1)  # the preprint is sent

    journal = article("20", "Ketamine infusions and sleep in treatment-resistant depression: a cohort study", "2026-11-27")
    journal.add_id("doi", "10.1016/j.jad.2026.12.002")
    preprint.add_link("preprint_of", "doi", "10.1016/j.jad.2026.12.002")
    store.save_records(db, [journal, preprint], now=stamp(T2))
    second = run_digest(config, db, now=T2)

    # the journal version is new and the preprint's "Now published" update is due: the reader sees one item
    [item] = second.digest.items
    assert item.title == "Ketamine infusions and sleep in treatment-resistant depression: a cohort study"
    assert item.kind == "new" and item.section != "preprints"
    assert item.notes[0].startswith("Published version of a preprint (posted 2026-")
    assert "Now published" not in second.digest.text and "Now published" not in second.digest.html
    assert second.digest.text.count("Ketamine infusions and sleep in treatment-resistant depression") == 1


def test_failed_delivery_is_retried_by_the_next_run_without_loss_or_duplicates(make_config, db, smtp_server):
    handler, port = smtp_server(reject=True)
    config = make_config(email_section(port))
    store.save_records(db, [article("1", "Ketamine trial one")], now=stamp(T1))
    failed = run_digest(config, db, now=T1)
    assert failed.failed and handler.messages == []

    # the next day: the digest is due again (its delivery failed), with the old item and the new one
    later = T1 + dt.timedelta(days=1)
    store.save_records(db, [article("2", "Ketamine trial two", "2026-11-23")], now=stamp(later))
    assert digest_due(db, config, later)
    handler.reject = False
    retried = run_digest(config, db, now=later, only_due=True)
    assert not retried.failed
    assert sorted(titles(retried)) == ["Ketamine trial one", "Ketamine trial two"]
    assert len(handler.messages) == 1
    assert not digest_due(db, config, later + dt.timedelta(hours=1))

    again = run_digest(config, db, now=later + dt.timedelta(days=7))
    assert again.digest.items == []
    assert rows(db, "SELECT status FROM digest_deliveries ORDER BY id") == [
        {"status": "failed"},
        {"status": "sent"},
        {"status": "sent"},
    ]


def test_each_recipient_gets_its_own_filtered_digest(make_config, db, tmp_path):
    config = make_config("""
[email]
recipients = ["everything@example.org"]
[[recipients]]
address = "trials@example.org"
sections = ["trials"]
""")
    store.save_records(db, [article("1", "Ketamine vs ECT"), trial("RECRUITING", 60, "2026-06")], now=stamp(T1))

    result = run_digest(config, db, now=T1)

    by_recipient = {d.recipient: d for _, d in result.digests}
    assert sorted(titles_of(by_recipient["everything@example.org"])) == [
        "Esketamine nasal spray versus quetiapine in treatment-resistant depression (ESCAPE-TRD)",
        "Ketamine vs ECT",
    ]
    assert titles_of(by_recipient["trials@example.org"]) == [
        "Esketamine nasal spray versus quetiapine in treatment-resistant depression (ESCAPE-TRD)"
    ]
    files = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    assert files == ["litmon-digest-00001-everything_example.org.eml", "litmon-digest-00002-trials_example.org.eml"]
    message = email.message_from_bytes((tmp_path / "outbox" / files[1]).read_bytes(), policy=policy.default)
    assert message["To"] == "trials@example.org"


def titles_of(digest):
    return [i.title for i in digest.items]


GOLDEN = FIXTURES / "digest" / "golden_digest.txt"


def test_plain_text_digest_matches_the_golden_file(make_config, db, tmp_path):
    """Set LITMON_UPDATE_GOLDEN=1 to rewrite the golden file after an intended change; review the diff."""
    config = make_config()
    store.save_records(
        db,
        [
            article("1", "Ketamine vs ECT in treatment-resistant depression: a randomized clinical trial"),
            article(
                "2",
                "Esketamine nasal spray in adolescents: a case report",
                publication_types=["Case Reports"],
                abstract="A 16-year-old with suicidal ideation received esketamine nasal spray. Ideation resolved within a week.",
            ),
            trial("RECRUITING", 60, "2026-06"),
        ],
        now=stamp(T1),
    )
    result = run_digest(config, db, now=T1)
    message = email.message_from_bytes(Path(result.deliveries[0].path).read_bytes(), policy=policy.default)
    assert message["Message-ID"] and message["Date"]
    text = message.get_body(("plain",)).get_content()
    text = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "<timestamp>", text)
    if os.environ.get("LITMON_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
