"""A small database with one of everything the views show, built through the real store and ingest.

Bibliographic facts are invented (titles, people), except where a comment says otherwise.
"""

from __future__ import annotations

from types import SimpleNamespace

from crawler import clock, ingest, store
from crawler.records import Author, Record


def article(source_id: str, title: str, **fields) -> Record:
    record = Record(source="pubmed", source_id=source_id, record_type=fields.pop("record_type", "article"), title=title, **fields)
    record.add_id("pmid", source_id)
    return record


def classify(db, work_id: int, label: str, tags: list[tuple[str, str]], rank: int = 10) -> None:
    store.save_classifications(
        db,
        [
            SimpleNamespace(
                work_id=work_id,
                label=label,
                score=3,
                reasons=["test"],
                rank_score=rank,
                rank_reasons=[],
                vocabulary_hash="v",
                tags=[SimpleNamespace(tag=t, category=c, evidence="test") for t, c in tags],
            )
        ],
    )


def work_of(db, source: str, source_id: str) -> int:
    return db.execute("SELECT work_id FROM records WHERE source = ? AND source_id = ?", [source, source_id]).fetchone()[0]


def trial(status: str, enrollment: int) -> Record:
    record = Record(
        source="clinicaltrials",
        source_id="NCT05000001",
        record_type="trial_registration",
        title="Esketamine Nasal Spray in Late-Life Depression",
        url="https://clinicaltrials.gov/study/NCT05000001",
    )
    record.add_id("nct", "NCT05000001")
    record.trial = {"overall_status": status, "enrollment": enrollment, "phases": ["PHASE3"]}
    return record


def build(db) -> dict[str, int]:
    """Articles, a preprint published as one of them, a retraction notice, a trial whose status changes,
    a digest delivered to one recipient and a crawl with its search log. Returns work ids by name."""
    rct = article(
        "39000001",
        "Esketamine nasal spray versus quetiapine for treatment-resistant depression",
        abstract="In this randomised trial, esketamine nasal spray improved remission compared with quetiapine.",
        authors=["Osei Hannah", "Chen Wei", "ESCAPE Investigators"],
        structured_authors=[
            Author(family="Osei", given="Hannah"),
            Author(family="Chen", given="Wei"),
            Author(collective="ESCAPE Investigators"),
        ],
        journal="The New England journal of medicine",
        keywords=["esketamine", "treatment-resistant depression"],
        mesh_terms=["Ketamine", "Depressive Disorder, Treatment-Resistant"],
        published_on="2023-10-05",
        language="eng",
        extra={"journal_abbreviation": "N Engl J Med", "volume": "389", "issue": "14", "pages": "1298-1309"},
    )
    rct.add_id("doi", "10.1056/NEJMoa2304145")  # real DOI of ESCAPE-TRD (Reif et al., NEJM 2023)
    rct.add_link("registered_as", "nct", "NCT05000001")
    review = article(
        "39000002",
        "Ketamine for depression: a meta-analysis of suicidal ideation outcomes",
        abstract="Ketamine reduced suicidal ideation within 24 hours across trials.",
        authors=["Lee Bo"],
        journal="Journal of affective disorders",
        published_on="2024-02",
    )
    retracted = article(
        "39000003",
        "Oral ketamine maintenance in bipolar depression",
        abstract="An open-label study of oral ketamine.",
        authors=["Smith J"],
        journal="Bipolar disorders",
        published_on="2022-01-10",
    )
    notice = article(
        "39000004",
        "Retraction: Oral ketamine maintenance in bipolar depression",
        record_type="notice",
        published_on="2024-05-01",
        publication_types=["Retraction of Publication"],
    )
    notice.add_link("retraction_of", "pmid", "39000003")
    preprint = Record(
        source="biorxiv",
        source_id="10.1101/2023.01.01.23280001v1",
        record_type="preprint",
        title="Esketamine nasal spray versus quetiapine for treatment-resistant depression: preprint",
        authors=["Osei, H.", "Chen, W."],
        journal="medRxiv",
        published_on="2023-01-02",
    )
    preprint.add_id("doi", "10.1101/2023.01.01.23280001")
    preprint.add_link("preprint_of", "doi", "10.1056/NEJMoa2304145")
    clock.advance(days=-30)  # the trial was registered a month ago, and the retracted article seen then
    ingest.save_batch(db, [trial("NOT_YET_RECRUITING", 0), retracted])
    clock.advance(days=30)
    ingest.save_batch(db, [rct, review, notice, preprint, trial("RECRUITING", 120)])
    ids = {
        "rct": work_of(db, "pubmed", "39000001"),
        "review": work_of(db, "pubmed", "39000002"),
        "retracted": work_of(db, "pubmed", "39000003"),
        "notice": work_of(db, "pubmed", "39000004"),
        "preprint": work_of(db, "biorxiv", "10.1101/2023.01.01.23280001v1"),
        "trial": work_of(db, "clinicaltrials", "NCT05000001"),
    }
    classify(db, ids["rct"], "relevant", [("rct", "evidence"), ("intranasal_esketamine", "drug")], rank=50)
    classify(db, ids["review"], "relevant", [("meta_analysis", "evidence"), ("suicidal_ideation", "indication")], rank=60)
    classify(db, ids["retracted"], "uncertain", [("clinical_trial", "evidence")], rank=5)
    run = store.start_crawl_run(db, "run")
    source_run = store.start_source_run(db, run, "pubmed", "2026-11-16", "2026-11-23")
    store.finish_source_run(
        db,
        source_run,
        status="ok",
        counts={"fetched": 5, "new": 4, "updated": 1, "unchanged": 0},
        requests=3,
        warnings=[],
        error=None,
        queries=[
            SimpleNamespace(
                query="ketamine[tiab] AND depress*[tiab]",
                window_from="2026-11-16",
                window_to="2026-11-23",
                hits=5,
                params={"datetype": "crdt"},
            )
        ],
    )
    store.finish_crawl_run(db, run, "ok")
    digest_id = store.save_digest(
        db,
        period_start="2026-11-16 09:00:00",
        period_end="2026-11-23 09:00:00",
        subject="[litmon] 2 new",
        text_body="t",
        html_body="h",
        items=[(ids["review"], "highlights"), (ids["rct"], "clinical")],
        recipient="ana@example.org",
    )
    store.save_delivery(db, digest_id, "ana@example.org", transport="smtp", status="sent", message_id="<1@x>")
    return ids
