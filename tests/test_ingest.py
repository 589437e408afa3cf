"""The ingest stage: save → dedup → classify, one transaction per batch, on a real SQLite file."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest
import sqlite_utils

from crawler import classify, clock, dedup, ingest, store
from crawler.matching import record_match_inputs
from crawler.records import Record
from tests.conftest import dump_tables, rows
from tests.helpers.records import INGEST_TITLE as TITLE
from tests.helpers.records import edge_batches
from tests.helpers.records import sourced_article as article


def test_a_batch_is_saved_deduplicated_and_classified(db, make_config):
    pubmed = article("pubmed", "41000001", ["Ito Hugo"], pmid="41000001")
    feed = article("feed:jad", "S0165-1", ["Hugo Ito"])  # no identifier: joins on title, author and year
    counts = ingest.save_batch(db, [pubmed, feed], "2026-11-20 06:00:00", config=make_config())
    assert counts == {"new": 2, "updated": 0, "unchanged": 0}
    assert len(rows(db, "SELECT id FROM works WHERE merged_into IS NULL")) == 1
    assert [r["reason"].split(" score")[0] for r in rows(db, "SELECT reason FROM work_merges")] == ["title+author+year"]
    assert rows(db, "SELECT COUNT(*) AS n FROM record_fingerprints") == [{"n": 2}]
    assert rows(
        db, "SELECT w.id, r.label FROM works w JOIN work_relevance r ON r.work_id = w.id WHERE w.merged_into IS NULL"
    ) == [{"id": 1, "label": "relevant"}]
    again = ingest.save_batch(db, [pubmed, feed], "2026-11-21 06:00:00", config=make_config())
    assert again == {"new": 0, "updated": 0, "unchanged": 2}
    assert (
        rows(db, "SELECT first_seen_at, last_seen_at, changed_at FROM records ORDER BY id")
        == [{"first_seen_at": "2026-11-20 06:00:00", "last_seen_at": "2026-11-21 06:00:00", "changed_at": "2026-11-20 06:00:00"}]
        * 2
    )


def test_without_config_nothing_is_classified(db):
    ingest.save_batch(db, [article("pubmed", "41000001", ["Ito Hugo"], pmid="41000001")])
    assert rows(db, "SELECT COUNT(*) AS n FROM records") == [{"n": 1}]
    assert rows(db, "SELECT COUNT(*) AS n FROM work_relevance") == [{"n": 0}]


def test_the_store_alone_saves_without_fuzzy_identity(db):
    store.save_records(db, [article("pubmed", "41000001", ["Ito Hugo"]), article("feed:jad", "S0165-1", ["Hugo Ito"])])
    assert len(rows(db, "SELECT id FROM works")) == 2
    assert rows(db, "SELECT COUNT(*) AS n FROM record_fingerprints") == [{"n": 0}]


def test_a_failure_in_dedup_rolls_the_whole_batch_back(db, monkeypatch):
    ingest.save_batch(db, [article("pubmed", "41000001", ["Ito Hugo"], pmid="41000001")], "2026-11-20 06:00:00")

    def broken(*args, **kwargs):
        raise RuntimeError("resolver bug")

    monkeypatch.setattr(dedup, "resolve_records", broken)
    with pytest.raises(RuntimeError, match="resolver bug"):
        ingest.save_batch(db, [article("crossref", "10.1/x", ["Hugo Ito"], doi="10.1/x")], "2026-11-21 06:00:00")
    assert [r["source"] for r in rows(db, "SELECT source FROM records")] == ["pubmed"]
    assert len(rows(db, "SELECT id FROM works")) == 1


def test_a_failed_classification_keeps_the_saved_batch(db, make_config, monkeypatch, caplog):
    from crawler import classify

    def broken(*args, **kwargs):
        raise ValueError("bad vocabulary")

    monkeypatch.setattr(classify, "classify_works", broken)
    with caplog.at_level(logging.ERROR, logger="crawler.classify"):
        counts = ingest.save_batch(db, [article("pubmed", "41000001", ["Ito Hugo"], pmid="41000001")], config=make_config())
    assert counts["new"] == 1 and rows(db, "SELECT source_id FROM records") == [{"source_id": "41000001"}]
    assert rows(db, "SELECT COUNT(*) AS n FROM record_fingerprints") == [{"n": 1}]
    assert "classification of 1 record(s) failed: ValueError: bad vocabulary" in caplog.text


def test_opening_an_older_file_runs_the_migrations_and_their_backfill_together(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    store.migrations.apply(old, stop_before="m002_dedup")
    old.close()
    db = store.connect(path)
    applied = ingest.upgrade(db)
    assert applied[0] == "m002_dedup" and applied == [m.name for m in store.migrations.applied(db)][1:]
    assert ingest.upgrade(db) == []
    db.close()


def test_a_failing_backfill_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    store.migrations.apply(old, stop_before="m002_dedup")
    old.close()

    def broken(db):
        raise RuntimeError("backfill bug")

    monkeypatch.setitem(ingest.BACKFILLS, "m002_dedup", broken)
    with pytest.raises(RuntimeError, match="backfill bug"):
        ingest.open_db(path)
    db = store.connect(path)
    assert [r["name"] for r in rows(db, "SELECT name FROM _sqlite_migrations")] == ["m001_initial"]
    assert not db["record_fingerprints"].exists()
    db.close()


def stored_classifications(db) -> dict:
    """work id -> (label, score, reasons, rank, tags with evidence) as stored."""
    tags: dict[int, list] = {}
    for row in rows(db, "SELECT work_id, tag, category, evidence FROM work_tags ORDER BY work_id, tag"):
        tags.setdefault(row["work_id"], []).append((row["tag"], row["category"], row["evidence"]))
    return {
        r["work_id"]: (
            r["label"],
            r["score"],
            json.loads(r["reasons"]),
            r["rank_score"],
            json.loads(r["rank_reasons"]),
            tags.get(r["work_id"], []),
        )
        for r in rows(db, "SELECT * FROM work_relevance ORDER BY work_id")
    }


def reclassified_from_stored(db, config) -> dict:
    """What classifying every work from its stored records (records.data read back) gives."""
    from crawler import classify

    results = classify.classify_works(db, config, store.load_current_work_ids(db), dry_run=True)
    return {
        c.work_id: (
            c.label,
            c.score,
            c.reasons,
            c.rank_score,
            c.rank_reasons,
            sorted((t.tag, t.category, t.evidence) for t in c.tags),
        )
        for c in results
    }


def test_a_batch_is_classified_from_exactly_what_was_stored_even_when_the_answer_lacked_a_field(db, make_config, monkeypatch):
    """The batch's works are classified from the records in memory, not read back; an answer lacking
    its title (Record.missing) keeps the stored title, and classification sees that title, not the gap."""
    config = make_config()
    read_back: list[int] = []
    real_load = store.load_work_records

    def load_work_records(db, work_ids):
        read_back.extend(work_ids)
        return real_load(db, work_ids)

    monkeypatch.setattr(store, "load_work_records", load_work_records)
    good = article("pubmed", "41000001", ["Ito Hugo"], pmid="41000001")
    alone = article("pubmed", "41000002", ["Ode Ana"], pmid="41000002")
    alone.title = "Esketamine for depression with suicidal ideation"
    ingest.save_batch(db, [good, alone], "2026-11-20 06:00:00", config=config)
    first = stored_classifications(db)
    assert read_back == []  # two new works of one record each: classified from memory
    assert first == reclassified_from_stored(db, config) and len(first) == 2

    lacking = article("pubmed", "41000001", ["Ito Hugo"], pmid="41000001")
    lacking.title, lacking.missing = "", ["title"]  # what a parser gives for an answer without ArticleTitle
    lacking.abstract = "A changed abstract: the record is updated, its title is kept from the store."
    joining = article("feed:jad", "S0165-2", ["Ode Ana"])  # no identifier: merges with 41000002 by title
    joining.title = alone.title
    counts = ingest.save_batch(db, [lacking, joining], "2026-11-21 06:00:00", config=config)
    assert counts == {"new": 1, "updated": 1, "unchanged": 0}
    assert read_back[-1:] == [2]  # the merged work also holds a record of an earlier batch: read from the store
    assert rows(db, "SELECT title FROM records WHERE source_id = '41000001'") == [{"title": TITLE}]
    after = stored_classifications(db)
    assert after == reclassified_from_stored(db, config)
    assert "'esketamine' in title" in after[1][2][0]  # the stored title, although the answer had none
    assert len(after) == 2 and after[1] != first[1]  # the new abstract was classified, with the kept title


def test_records_data_holds_the_abstract_once_and_older_files_drop_their_copy(tmp_path, make_config):
    """records.data leaves the abstract to its column (m012 drops the copy from rows stored before), without
    touching work summaries; classification and readers still get the whole record."""
    path = tmp_path / "old.db"
    old = ingest.open_db(path)
    old.execute("DELETE FROM _sqlite_migrations WHERE name = 'm012_record_data_without_abstract'")
    ingest.save_batch(old, [article("pubmed", "41000001", ["Ito Hugo"], pmid="41000001")], "2026-11-20 06:00:00")
    record = article("pubmed", "41000002", ["Ode Ana"], pmid="41000002")
    old.execute(  # a row as stored before m012: the abstract in data too
        "UPDATE records SET data = json_set(data, '$.abstract', abstract)"
    )
    assert rows(old, "SELECT COUNT(*) AS n FROM records WHERE json_type(data, '$.abstract') = 'text'") == [{"n": 1}]
    store.refresh_work_summaries(old)  # as every write of the store ends
    summaries = rows(old, "SELECT * FROM work_summaries")
    old.conn.commit()
    old.close()

    db = ingest.open_db(path)
    assert rows(db, "SELECT json_type(data, '$.abstract') AS t, abstract FROM records") == [
        {"t": None, "abstract": article("pubmed", "1", []).abstract}
    ]
    assert rows(db, "SELECT work_id FROM work_summary_queue") == []
    assert rows(db, "SELECT * FROM work_summaries") == summaries
    ingest.save_batch(db, [record], "2026-11-21 06:00:00", config=make_config())
    assert rows(db, "SELECT COUNT(*) AS n FROM records WHERE json_type(data, '$.abstract') IS NULL") == [{"n": 2}]
    (stored,) = store.load_work_records(db, [2])[2]
    assert stored == json.loads(json.dumps(record.to_dict()))  # the whole record, abstract included
    assert stored_classifications(db)[2] == reclassified_from_stored(db, make_config())[2]  # (work 1 saved without config)


# --------------------------------------------------------------------------- records prepared ahead (the fetch worker)


def save_both_ways(batches: list[list[Record]], first, second, config) -> int:
    """Save ``batches`` into ``first`` computing everything from the records and rows as before (dedup reads
    each record's stored row), and into ``second`` with each record prepared ahead on a copy that crossed a
    pickle, and every other one classified ahead (as the fetch worker's); return how many records went to
    dedup with prepared inputs."""
    for batch in copy.deepcopy(batches):
        ingest.save_batch(first, batch, "2026-11-20 06:00:00", config=config)
    used = 0
    vocabulary = classify.build_vocabulary(config.topic)
    for batch in batches:
        batch = pickle.loads(pickle.dumps(batch))
        prepared = [ingest.prepare_record(record) for record in pickle.loads(pickle.dumps(batch))]
        used += sum(1 for p, r in zip(prepared, batch, strict=True) if p[1] is not None and not r.missing)
        assert [p[1] for p in prepared] == [record_match_inputs(r) for r in batch]
        # and classified ahead, as the worker does: such a record's data is then never made
        ahead = {i: classify.classify_records([r], vocabulary, clock.today()) for i, r in enumerate(batch) if i % 2}
        ingest.save_batch(second, batch, "2026-11-20 06:00:00", config=config, prepared=prepared, ahead=ahead)
    return used


def test_records_prepared_ahead_are_stored_as_records_saved_without(tmp_path, make_config):
    """Every row of every table is the same whether a record's row values, hash, fingerprint and keys were
    computed ahead (on a copy, in another process) or by the writer from the record and its stored row: the
    dedup corpus in each arrival order, and records whose preparation must be redone or read back."""
    from tests.helpers import dedup_corpus

    config = make_config()
    cases = {order: dedup_corpus.ordered_batches(order) for order in dedup_corpus.ORDERS}
    cases["edge"] = edge_batches()
    for name, batches in cases.items():
        first, second = store.open_db(tmp_path / f"{name}-1.db"), store.open_db(tmp_path / f"{name}-2.db")
        used = save_both_ways(batches, first, second, config)
        assert used >= sum(map(len, batches)) // 2, name  # most records took the prepared values
        before, after = dump_tables(first), dump_tables(second)
        assert after.keys() == before.keys()
        for table in before:
            assert after[table] == before[table], (name, table)
        assert before["record_fingerprints"] and before["match_keys"]
        if name == "edge":  # what it covers: the stored title kept, an update within a batch, a notice
            assert rows(second, "SELECT title FROM records WHERE source_id = '41000101'") == [{"title": TITLE}]
            assert rows(second, "SELECT title FROM records WHERE source_id = 'S0165-9'") == [{"title": TITLE}]  # changed back
            assert rows(second, "SELECT kind FROM record_fingerprints ORDER BY record_id")[2] == {"kind": "notice"}
        first.close()
        second.close()


def test_the_keys_of_records_prepared_ahead_are_not_hashed_again_by_the_writer(tmp_path, monkeypatch):
    """A record prepared ahead (in the fetch worker's process) brings its keys' hashes, each its key's
    ``store.key_hash``: the writing process saves those keys and looks up their neighbours and candidates without
    hashing one of them (only a candidate's keys, to check whether it matches other works too), and stores the
    same rows as a writer that hashes every key (the dedup corpus: merges, candidates looked up)."""
    from crawler.store import candidates
    from tests.helpers import dedup_corpus

    batches = dedup_corpus.ordered_batches(dedup_corpus.ORDERS[0])
    first, second = store.open_db(tmp_path / "1.db"), store.open_db(tmp_path / "2.db")
    for batch in copy.deepcopy(batches):
        ingest.save_batch(first, batch, "2026-11-20 06:00:00")
    prepared = [[ingest.prepare_record(record) for record in pickle.loads(pickle.dumps(batch))] for batch in batches]
    inputs = [ready[1] for ready_batch in prepared for ready in ready_batch if ready[1] is not None]
    assert all(found.key_hashes == [store.key_hash(key) for key in found.keys] for found in inputs)
    shipped = {key for found in inputs for key in found.keys}
    assert len(shipped) > 100
    hashed: list[str] = []  # the keys the writer hashes

    class Hashing:
        def __init__(self, hasher) -> None:
            self.hasher = hasher

        def copy(self):
            return Hashing(self.hasher.copy())

        def update(self, data: bytes) -> None:
            hashed.append(data.decode())
            self.hasher.update(data)

        def digest(self) -> bytes:
            return self.hasher.digest()

    ambiguity_checked: set[str] = set()  # the keys of candidates checked for other matches (dedup._is_ambiguous)
    find_matches = dedup.find_matches

    def checking(db, record_id, fp, *args, **kwargs):
        ambiguity_checked.update(dedup.lookup_keys(fp))
        return find_matches(db, record_id, fp, *args, **kwargs)

    monkeypatch.setattr(dedup, "find_matches", checking)
    monkeypatch.setattr(candidates, "_BLAKE2B_8", Hashing(candidates._BLAKE2B_8))
    store.key_hash.cache_clear()  # the writer's memo holds none of the keys hashed ahead
    try:
        for batch, ready_batch in zip(batches, prepared, strict=True):
            ingest.save_batch(second, pickle.loads(pickle.dumps(batch)), "2026-11-20 06:00:00", prepared=ready_batch)
    finally:
        store.key_hash.cache_clear()
    assert shipped & set(hashed) <= ambiguity_checked
    assert len(shipped - ambiguity_checked) > 100
    assert dump_tables(second) == dump_tables(first)
    first.close()
    second.close()


def test_the_classified_corpus_is_stored_alike_prepared_ahead(tmp_path, make_config):
    """The classification corpus's records (every source's wire format) in one batch each source."""
    from tests.helpers.classify_corpus import parse_wire

    by_source: dict[str, list[Record]] = {}
    for (kind, _), record in parse_wire().items():
        by_source.setdefault(kind, []).append(record)
    batches = list(by_source.values())
    first, second = store.open_db(tmp_path / "1.db"), store.open_db(tmp_path / "2.db")
    used = save_both_ways(batches, first, second, make_config())
    assert used >= sum(map(len, batches)) // 2
    assert dump_tables(second) == dump_tables(first)
    first.close()
    second.close()
