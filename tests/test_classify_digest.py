"""The digest with classified works: noise left out, uncertain works apart, highlights first."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from crawler import classify, store
from crawler.digest import run_digest
from tests.conftest import rows
from tests.helpers.classify_corpus import article, shipped_vocabulary

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


@pytest.fixture
def vocabulary_config(make_config):
    def _make(extra: str = ""):
        return make_config(extra + "\n" + shipped_vocabulary())

    return _make


def test_digest_leaves_out_noise_labels_uncertain_and_opens_with_highlights(vocabulary_config, db):
    config = vocabulary_config("[digest]\nhighlights = 1\nhighlight_min_score = 30\n")
    records = [
        article(
            "1",
            "Esketamine nasal spray versus quetiapine for treatment-resistant depression",
            "We randomly assigned 676 patients with treatment-resistant depression to esketamine nasal spray or quetiapine.",
        ),
        article(
            "2",
            "Ketamine infusions in treatment-resistant depression: a case report",
            "We describe a 40-year-old man with treatment-resistant depression treated with ketamine infusions.",
        ),
        article(
            "3",
            "Ketamine for depression in older adults: a randomised trial",
            "We randomly assigned 60 older adults with major depression to ketamine or midazolam.",
        ),
        article(
            "4",
            "Esketamine combined with propofol for sedation in gastroscopy",
            "Esketamine reduced respiratory depression and hypotension during propofol sedation for gastroscopy.",
        ),
        article(
            "5",
            "Dextromethorphan-bupropion in major depressive disorder",
            "Dextromethorphan-bupropion, like ketamine, targets the NMDA receptor; it reduced depressive symptoms.",
        ),
        article(
            "6",
            "Prescribing audit in a tertiary hospital",
            "We audited all ketamine prescriptions in 2025. Of 210 ketamine courses, 12 were given for depression.",
        ),
    ]
    store.save_records(db, records, now="2026-11-23 06:00:00")  # not classified yet: the digest does it

    result = run_digest(config, db, now=NOW)

    sections = [(title, [item.title for item in items]) for _, title, items in result.digest.sections]
    assert sections == [
        ("Highlights", ["Esketamine nasal spray versus quetiapine for treatment-resistant depression"]),
        (
            "New clinical studies",
            [
                "Ketamine for depression in older adults: a randomised trial",
                "Ketamine infusions in treatment-resistant depression: a case report",
            ],
        ),
        # issue #13: a passing mention ("like ketamine", work 5) is not relevant, not even uncertain
        ("Uncertain relevance (check before relying on these)", ["Prescribing audit in a tertiary hospital"]),
    ]
    text = result.digest.text
    assert "== Highlights (1) ==" in text and "== Uncertain relevance (check before relying on these) (1) ==" in text
    assert "gastroscopy" not in text and "gastroscopy" not in result.digest.html
    assert "Dextromethorphan" not in text and "Dextromethorphan" not in result.digest.html
    assert "Tags: RCT, Intranasal esketamine, TRD" in text  # issue #13: human labels ([topic.tags.*] label)
    html = result.digest.html
    assert all(f'">{tag}</span>' in html for tag in ("Case report", "IV ketamine", "TRD"))  # badges
    listed = rows(db, "SELECT w.title, di.section FROM digest_items di JOIN works w ON w.id = di.work_id ORDER BY di.position")
    assert [r["section"] for r in listed] == ["highlights", "clinical", "clinical", "uncertain"]
    assert rows(
        db, "SELECT label FROM work_relevance r JOIN records rec ON rec.work_id = r.work_id WHERE rec.source_id = '4'"
    ) == [{"label": "not_relevant"}]


def test_no_highlights_when_nothing_ranks_high_enough(vocabulary_config, db):
    config = vocabulary_config("[digest]\nhighlight_min_score = 90\n")
    store.save_records(
        db,
        [article("1", "Ketamine for depression: a randomised trial", "We randomly assigned 20 patients.")],
        now="2026-11-23 06:00:00",
    )
    result = run_digest(config, db, now=NOW)
    assert [title for _, title, _ in result.digest.sections] == ["New clinical studies"]


def test_digest_warns_when_works_were_classified_with_another_vocabulary(vocabulary_config, db, caplog):
    store.save_records(db, [article("1", "Ketamine for depression", "Ketamine reduced depression.")], now="2026-11-23 06:00:00")
    classify.classify_unclassified(db, vocabulary_config())
    changed = vocabulary_config('[topic.noise.extra]\nterms = ["mood"]\n')
    with caplog.at_level(logging.WARNING):
        run_digest(changed, db, now=NOW)
    assert "1 work(s) were classified with another [topic] vocabulary — run `litmon reclassify`" in caplog.text
