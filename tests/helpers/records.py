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


#: The title of :func:`sourced_article`.
INGEST_TITLE = "Esketamine nasal spray for treatment-resistant depression in older adults: a randomized trial"


def sourced_article(source: str, source_id: str, authors: list[str], **identifiers: str) -> Record:
    """An article of ``source`` by ``authors`` with :data:`INGEST_TITLE` (the same work in every source)."""
    record = Record(
        source=source,
        source_id=source_id,
        record_type="article",
        title=INGEST_TITLE,
        abstract="Esketamine nasal spray reduced depressive symptoms in adults with treatment-resistant depression.",
        authors=authors,
        published_on="2025-03-02",
        entered_on="2025-03-02",
    )
    for scheme, value in identifiers.items():
        record.add_id(scheme, value)
    return record


def edge_batches() -> list[list[Record]]:
    """Records whose preparation ahead is not simply valid: stored values kept, a record updated twice in
    one batch, values that do not read back as they are (an ISSN list, a date object), links that make a notice."""
    first = sourced_article("pubmed", "41000101", ["Ito Hugo", "Ode Ana"], pmid="41000101")
    first.journal, first.extra = "J Affect Disord", {"issn": "0165-0327"}
    lacking = sourced_article("pubmed", "41000101", ["Ito Hugo", "Ode Ana"], pmid="41000101")
    lacking.title, lacking.missing, lacking.extra = "(untitled)", ["title"], {"issn": "0165-0327", "volume": "12"}
    twice = sourced_article("feed:jad", "S0165-9", ["Hugo Ito"])
    again = sourced_article("feed:jad", "S0165-9", ["Hugo Ito", "Ana Ode"])
    again.title = INGEST_TITLE + " (corrected)"
    listed = sourced_article("crossref", "10.1000/issn-list", ["Ode Ana", "Ito Hugo"], doi="10.1000/issn-list")
    listed.journal, listed.extra = "J Affect Disord", {"issn": ["0165-0327", "1573-2517"], "volume": 3}
    notice = sourced_article("pubmed", "41000102", ["Ito Hugo"], pmid="41000102")
    notice.title = "Erratum: " + INGEST_TITLE
    notice.add_link("erratum_for", "pmid", "41000101")
    dated = sourced_article("feed:jad", "S0165-10", ["Ana Ode"])
    dated.published_on = __import__("datetime").date(2025, 3, 2)  # stored as its text: read back from the row
    return [[first, twice, notice], [lacking, again, twice, listed, dated]]
