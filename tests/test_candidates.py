"""The dedup stage's SQL (crawler/store/candidates.py), against the previous implementation of each restructured query
(tests/helpers/dedup_reference.py) on the labelled dedup corpus in every arrival order, and on hand-made cases."""

from __future__ import annotations

import pytest

from crawler import ingest, store
from crawler.records import Record
from tests.helpers import dedup_corpus as corpus
from tests.helpers import dedup_reference as reference


def saved_answering(db, batch, monkeypatch, limits=(200, 1)) -> list[dict[int, tuple[set[int], set[int]]]]:
    """Save ``batch``; for each ``store.key_neighbours`` call the save made, its answer for each block limit in
    ``limits``, when it was called (checked against the previous query's)."""
    answers: list[dict[int, tuple[set[int], set[int]]]] = []
    real = store.key_neighbours

    def answering(db, wanted, block_limit):
        answers.append({limit: real(db, wanted, limit) for limit in limits})
        for limit, answer in answers[-1].items():
            assert answer == reference.key_neighbours(db, wanted, limit)
        return real(db, wanted, block_limit)

    monkeypatch.setattr(store, "key_neighbours", answering)
    ingest.save_batch(db, batch, now="2026-11-23 09:00:00")
    monkeypatch.setattr(store, "key_neighbours", real)
    return answers


@pytest.mark.parametrize("order", [*corpus.ORDERS, "single_records_shuffled:5"])
def test_key_neighbours_answers_as_the_previous_query_on_the_dedup_corpus(order, monkeypatch):
    """Every batch of the corpus: the same records with a neighbour and with a keepable one, for the real block limit
    and for small ones (oversized groups)."""
    real = store.key_neighbours
    seen = {"any": 0, "kept": 0, "oversized": 0}

    def compared(db, wanted, block_limit):
        answer = real(db, wanted, block_limit)
        assert answer == reference.key_neighbours(db, wanted, block_limit)
        for small in (1, 2):
            cut = real(db, wanted, small)
            assert cut == reference.key_neighbours(db, wanted, small)
            seen["oversized"] += len(cut[1] - answer[1])
        seen["any"] += len(answer[0])
        seen["kept"] += len(answer[1])
        return answer

    monkeypatch.setattr(store, "key_neighbours", compared)
    db = store.memory_db()
    corpus.load(db, order)
    assert seen["any"] > seen["kept"] > 0 and seen["oversized"] > 0, seen


def paper(source: str, source_id: str, title: str, date: str, *, kind: str = "article", authors=None, **identifiers) -> Record:
    """An article (or ``kind``) of one journal and year, by two authors unless ``authors``, with ``identifiers``."""
    dates = {"published_on": date, "entered_on": date}
    record = Record(
        source, source_id, kind, title, authors=authors or ["Anand Amit", "Osei Hana"], journal="JAMA psychiatry", **dates
    )
    for scheme, value in identifiers.items():
        record.add_id(scheme, value)
    return record


def record_id(db, source: str, source_id: str) -> int:
    return db.conn.execute("SELECT id FROM records WHERE source = ? AND source_id = ?", [source, source_id]).fetchone()[0]


def test_key_neighbours_keeps_a_record_whose_neighbour_the_look_up_could_keep_and_no_other(db, monkeypatch):
    title = "Ketamine infusion for treatment-resistant depression: cohort {}"
    ingest.save_batch(
        db,
        [
            paper("pubmed", "1", title.format("one"), "2024-01-10", pmid="1"),
            paper("pubmed", "2", title.format("two"), "2024-03-10", pmid="2"),
        ],
    )
    # another PMID: its neighbours' works carry other PMIDs (conflict); an unrelated record has no neighbour
    (answer,) = saved_answering(
        db,
        [
            paper("pubmed", "3", title.format("three"), "2024-05-10", pmid="3"),
            paper("pubmed", "4", "Sleep and esketamine nasal spray", "2024-05-10", authors=["Ito Hugo", "Chen Wei"], pmid="4"),
        ],
        monkeypatch,
    )
    third = record_id(db, "pubmed", "3")
    assert answer[200] == ({third}, set())
    # a group over the block limit is kept (the look-up cuts and logs it)
    assert answer[1] == ({third}, {third})
    # a DOI only (no scheme in common with a PubMed work: no conflict) and a preprint (a link kind) are kept
    (answer,) = saved_answering(
        db,
        [
            paper("crossref", "10.1001/x.1", title.format("one"), "2024-01-12", authors=["Amit Anand"], doi="10.1001/x.1"),
            paper("biorxiv", "10.1101/x.1", title.format("one"), "2023-11-02", kind="preprint", doi="10.1101/x.1"),
        ],
        monkeypatch,
    )
    doi, preprint = record_id(db, "crossref", "10.1001/x.1"), record_id(db, "biorxiv", "10.1101/x.1")
    assert answer[200][1] == {doi, preprint}


@pytest.mark.parametrize("order", corpus.ORDERS)
def test_fingerprints_of_works_of_some_kinds_leave_out_exactly_the_other_kinds_and_the_skipped_records(order, monkeypatch):
    """Dedup's link resolution reads only the preprint and article fingerprints it compares, without the records whose
    candidates it read as none: the same rows, in the same order, as filtering every fingerprint of the works. Checked
    at each call the corpus makes, and on every work with a third of its records skipped."""
    real = store.load_fingerprints_of_works
    calls = {"n": 0, "skipped": 0}

    def compared(db, work_ids, kinds=None, skip=()):
        answer = real(db, work_ids, kinds, skip)
        full, left = real(db, work_ids), set(skip)
        expected = {w: [r for r in rows if r["kind"] in kinds and r["record_id"] not in left] for w, rows in full.items()}
        assert answer == {w: rows for w, rows in expected.items() if rows}
        calls["n"] += 1
        calls["skipped"] += sum(len(rows) for rows in full.values()) - sum(len(rows) for rows in answer.values())
        return answer

    monkeypatch.setattr(store, "load_fingerprints_of_works", compared)
    db = store.memory_db()
    corpus.load(db, order)
    assert calls["n"] > 0 and calls["skipped"] > 0, calls
    works = [r[0] for r in db.conn.execute("SELECT id FROM works ORDER BY id")]
    every = real(db, works)
    assert {row["kind"] for rows in every.values() for row in rows} > {"preprint", "article"}
    skip = [row["record_id"] for rows in every.values() for row in rows[::3]]
    answer = real(db, works, ("preprint", "article"), skip)
    assert answer == {
        w: kept
        for w, rows in every.items()
        if (kept := [r for r in rows if r["kind"] in ("preprint", "article") and r["record_id"] not in set(skip)])
    }
    assert 0 < sum(map(len, answer.values())) < sum(map(len, every.values()))
