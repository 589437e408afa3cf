"""Records to save in tests (real-looking PubMed articles)."""

from __future__ import annotations

from crawler.records import Record


def article(source_id, title, entered_on, **ids):
    record = Record(
        source="pubmed",
        source_id=source_id,
        record_type="article",
        title=title,
        entered_on=entered_on,
        published_on=entered_on,
        journal="JAMA psychiatry",
        authors=["Anand A", "Mathew SJ", "Murrough JW", "Charney DS"],
        abstract="Ketamine infusions reduced depressive symptoms within 24 hours in adults with treatment-resistant depression.",
    )
    record.add_id("pmid", source_id)
    for scheme, value in ids.items():
        record.add_id(scheme, value)
    return record
