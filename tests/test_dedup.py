"""Deduplication across sources: identity, fuzzy matching, links between works, merged views.

Most tests load the labelled corpus (tests/fixtures/dedup, written by its generate.py): wire-format
answers of PubMed, Crossref, Europe PMC, bioRxiv, ClinicalTrials.gov, ISRCTN, OpenAlex and RSS
feeds, parsed by litmon's own parsers and saved in several arrival orders.
"""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest
import sqlite_utils
from werkzeug import Response

from crawler import dedup, ingest, matching, store
from crawler import identifiers as ids
from crawler.digest import run_digest
from crawler.records import Record
from tests.conftest import rows
from tests.helpers import dedup_corpus as corpus

LABELS = corpus.load_labels()
HARD_CASES = sorted(c for c in LABELS["cases"] if not c.startswith("ordinary"))


# --------------------------------------------------------------------------- the rules, one by one


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Ketamine for Depression.", "ketamine for depression"),
        ("<i>R,S</i>-ketamine in <b>TRD</b>", "r s ketamine in trd"),
        ("TNF-&alpha; and IL-6", "tnf alpha and il 6"),
        ("TNF-&amp;alpha; levels", "tnf alpha levels"),
        ("Plasma TNF-α, β-endorphin and μ-opioid", "plasma tnf alpha beta endorphin and mu opioid"),
        ("Treatment\u2010resistant depression \u2013 a review", "treatment resistant depression | a review"),
        ("\u201cI felt lighter\u201d: patients\u2019 experiences", "i felt lighter | patients experiences"),
        ("Anxiety & depression in Montréal", "anxiety and depression in montreal"),
        ("RETRACTED: Ketamine and BDNF", "ketamine and bdnf"),
        ("Ketamine vs. ECT", "ketamine versus ect"),
        ("Ketamine vs ECT", "ketamine versus ect"),
        ("&lt;i&gt;Ketamine&lt;/i&gt; vs. ECT", "ketamine versus ect"),  # markup written as entities
        ("Ketamine &amp;lt;b&amp;gt;and&amp;lt;/b&amp;gt; ECT", "ketamine and ect"),  # markup escaped twice
    ],
)
def test_titles_normalise_case_markup_entities_greek_dashes_quotes_and_trailing_period(raw, expected):
    assert matching.normalize_title(raw) == expected


def test_journal_keys_are_memoised_as_new_lists_with_the_same_keys():
    """A topic's records share journals: the keys are remembered, and each caller gets a list of its own."""

    class Text(str):
        pass

    cases = [
        ("The Lancet. Psychiatry", "2215-0366; 2215-0374"),
        ("J Affect Disord", "0165-0327"),
        (None, "0165-0327"),
        ("Journal of Psychopharmacology (Oxford, England)", None),
        (Text("The lancet Psychiatry"), Text("2215-0366")),
        ("", ""),
    ]
    for journal, issn in cases * 2:
        keys = matching.journal_keys(journal, issn)
        assert keys == list(matching._journal_keys.__wrapped__(journal, issn))
        keys.append("changed by a caller")
        assert "changed by a caller" not in matching.journal_keys(journal, issn)
    assert matching.journal_keys("The Lancet. Psychiatry", "2215-0366; 2215-0374") == [
        "issn 22150366",
        "issn 22150374",
        "title lancet psychiatry",
    ]
    with pytest.raises(TypeError):
        matching.journal_keys("J Affect Disord", ["0165-0327"])  # not text: as before, not remembered


def test_every_doi_form_normalises_to_one_value():
    forms = [
        "10.1001/JAMAPSYCHIATRY.2024.0101",
        "doi:10.1001/jamapsychiatry.2024.0101",
        "https://doi.org/10.1001/jamapsychiatry.2024.0101",
        "http://dx.doi.org/10.1001/jamapsychiatry.2024.0101",
        "10.1001%2Fjamapsychiatry.2024.0101",
        "https://doi.org/10.1001%2Fjamapsychiatry.2024.0101.",
    ]
    assert {ids.normalize_doi(f) for f in forms} == {"10.1001/jamapsychiatry.2024.0101"}
    assert ids.normalize_doi("10.1101/2024.02.08.24302501v2") == ids.normalize_doi("10.1101/2024.02.08.24302501")


@pytest.mark.parametrize(
    "name, source, expected",
    [
        ("Anand Amit", "pubmed", ("anand",)),
        ("Anand A", "europepmc", ("anand",)),
        ("Anand A.", "biorxiv", ("anand",)),
        ("Amit Anand", "crossref", ("anand",)),
        ("Amit Anand", "feed:jama", ("amit", "anand")),
        ("Anand, Amit", "feed:jama", ("anand",)),
        ("J. A. Smith", "feed:x", ("smith",)),
        ("De Giorgi Riccardo", "pubmed", ("giorgi",)),
        ("Acevedo-Diaz Elia E", "pubmed", ("acevedo", "diaz")),
        ("Mu-Hong Chen", "feed:jad", ("mu", "hong", "chen")),
        ("García-López M", "europepmc", ("garcia", "lopez")),
        ("O'Brien H.", "biorxiv", ("brien",)),
    ],
)
def test_first_author_surname_from_every_source_format(name, source, expected):
    assert matching.author_surnames(name, source) == expected


def test_blocking_keys_pair_each_possible_surname_with_the_other_initial():
    feed = matching.fingerprint("feed:jad", "article", "Ketamine", ["Anna Kasul"], "2024")
    pubmed = matching.fingerprint("pubmed", "article", "Ketamine", ["Kasul Anna"], "2024")
    assert matching.author_keys(feed.surnames, feed.author_words) == ["anna:k", "kasul:a"]
    assert set(matching.blocking_keys(pubmed)) & set(matching.lookup_keys(feed)) >= {"a:kasul:a:ketamine"}


def test_a_collective_author_listed_first_is_skipped():
    fp = matching.fingerprint("pubmed", "article", "T", ["KETAMINE-DEP Study Group", "Ito Hugo"], "2024")
    assert fp.surnames == ("ito",)


@pytest.mark.parametrize(
    "title, types, kind",
    [
        ("Erratum: Ketamine for depression", [], "notice"),
        ("Correction to: Ketamine for depression", [], "notice"),
        ("Retraction Note: Ketamine for depression", [], "notice"),
        ("Expression of concern: Ketamine microdosing", [], "notice"),
        ("RETRACTED: Ketamine for depression", [], "article"),
        ("Reply to: Ketamine versus midazolam", [], "comment"),
        ("Comment on: Ketamine versus midazolam", [], "comment"),
        ("Ketamine versus midazolam", ["Letter", "Comment"], "comment"),
        ("Oral ketamine in primary care: protocol for a randomised controlled trial", [], "protocol"),
        ("Oral ketamine in primary care", ["Clinical Trial Protocol"], "protocol"),
        ("Oral ketamine in primary care: a randomised controlled trial", ["Journal Article"], "article"),
    ],
)
def test_record_kinds_keep_notices_comments_and_protocols_apart(title, types, kind):
    assert matching.record_kind("article", title, types) == kind


@pytest.mark.parametrize(
    "a, b",
    [
        (
            "Low-dose ketamine for depression: a randomized controlled trial.",
            "Low\u2010dose <i>ketamine</i> for depression: A randomised controlled trial",
        ),
        (
            "Ketamine for treatment-resistant depression: a multicenter study",
            "Ketamine for treatmentresistant depression: a multicentre study",
        ),
        (
            "Plasma TNF-α predicts ketamine response in bipolar depression: a cohort",
            "Plasma TNF-alpha predicts ketamine response in bipolar depression",
        ),
        ("A randomized trial of esketamine in older adults", "Randomized trial of esketamine in older adults"),
        ("Behaviour after ketamine infusions in adolescents", "Behavior after ketamine infusion in adolescents"),
    ],
)
def test_titles_of_one_work_match(a, b):
    same, _, _ = matching.compare_titles(matching.normalize_title(a), matching.normalize_title(b))
    assert same


@pytest.mark.parametrize(
    "a, b",
    [
        ("Ketamine in clinical practice, part 1: indications", "Ketamine in clinical practice, part 2: indications"),
        ("Esketamine for depression: an expert review. Part I", "Esketamine for depression: an expert review. Part II"),
        ("Ketamine for TRD in adolescents: a crossover trial", "Esketamine for TRD in adolescents: a crossover trial"),
        ("(R)-ketamine as a rapid-acting antidepressant", "(S)-ketamine as a rapid-acting antidepressant"),
        ("Repeated ketamine infusions and 6-month relapse", "Repeated ketamine infusions and 12-month relapse"),
        (
            "Ketamine with and without psychotherapy for alcohol use disorder",
            "Ketamine without psychotherapy for alcohol use disorder",
        ),
        (
            "Esketamine in adults with depression: 12-month outcomes",
            "Esketamine in older adults with depression: 12-month outcomes",
        ),
        ("Oral ketamine in primary care: protocol for a randomised trial", "Oral ketamine in primary care: a randomised trial"),
    ],
)
def test_titles_of_different_works_do_not_match(a, b):
    same, _, _ = matching.compare_titles(matching.normalize_title(a), matching.normalize_title(b))
    assert not same


def fp(title, authors=("Anand Amit",), year="2024", kind="article", source="pubmed", types=()):
    return matching.fingerprint(source, kind, title, list(authors), year, None, list(types))


def test_a_match_needs_the_first_author_and_a_year_within_one():
    title = "Intravenous ketamine versus electroconvulsive therapy in treatment-resistant depression"
    assert matching.compare(fp(title), fp(title, ["Amit Anand"], "2025", source="crossref")).action == "merge"
    assert matching.compare(fp(title), fp(title, year="2026")) is None
    assert matching.compare(fp(title), fp(title, ["Jane Smith"], source="crossref")) is None
    assert matching.compare(fp(title), fp(title, ["Bilal Anand"], source="crossref")) is None  # same surname, another initial
    assert (
        matching.compare(fp(title, ["Anand A"], source="europepmc"), fp(title, ["Amit Anand"], source="feed:jama")).action
        == "merge"
    )
    assert matching.compare(fp(title), fp(title, kind="notice", types=["Published Erratum"])) is None
    assert matching.compare(fp(title), fp(title, kind="preprint", year="2023", source="biorxiv")).action == "link"
    assert (
        matching.compare(fp("Ketamine for depression", authors=()), fp("Ketamine for depression")) is None
    )  # short title, no authors


def test_a_record_matching_two_different_works_joins_neither(db):
    def crossref(doi, subtitle):
        record = article(
            "crossref", doi, f"Esketamine nasal spray in Dutch primary care settings: {subtitle}", ["Mu-Hong Chen"], "2025-02-01"
        )
        record.add_id("doi", doi)
        return record

    feed = article("feed:jad", "S0165-1", "Esketamine nasal spray in Dutch primary care settings", ["Mu-Hong Chen"], "2025-02-03")
    ingest.save_batch(
        db,
        [
            crossref("10.1016/j.jad.2025.1", "a cost-effectiveness analysis"),
            crossref("10.1016/j.jad.2025.2", "a budget impact analysis"),
            feed,
        ],
    )
    assert len(rows(db, "SELECT id FROM works WHERE merged_into IS NULL")) == 3
    assert rows(db, "SELECT * FROM work_merges") == []

    alone = store.memory_db()  # with only one of them stored, the same feed item joins it
    ingest.save_batch(alone, [crossref("10.1016/j.jad.2025.1", "a cost-effectiveness analysis"), feed])
    assert [r["reason"].split(" (")[0] for r in rows(alone, "SELECT reason FROM work_merges")] == ["title+author+year score=77"]


# --------------------------------------------------------------------------- candidate selection stays bounded


def candidates(db, source_id, *, skip_conflicting=True, block_limit=matching.MAX_BLOCK):
    """What the candidate query returns for a stored record (merge action)."""
    record_id = db.execute("SELECT id FROM records WHERE source_id = ?", [source_id]).fetchone()[0]
    found, oversized = corpus.merge_candidates(db, record_id, skip_conflicting=skip_conflicting, block_limit=block_limit)
    source_ids = {r[0]: r[1] for r in db.execute("SELECT id, source_id FROM records")}
    return sorted(source_ids[c["record_id"]] for c in found), oversized


def test_records_with_different_pmids_are_left_out_by_the_query_before_any_comparison(db):
    title = "Intravenous ketamine versus electroconvulsive therapy in treatment-resistant depression"
    ingest.save_batch(
        db,
        [
            article("pubmed", "111", title, ["Anand Amit"], "2024-05-01", pmid="111"),
            article("pubmed", "222", title, ["Anand Amit"], "2024-06-01", pmid="222"),
            article("feed:jad", "jad-1", title, ["Amit Anand"], "2024-06-02"),  # no identifier: no conflict
        ],
    )
    assert candidates(db, "111") == (["jad-1"], [])
    assert candidates(db, "111", skip_conflicting=False) == (["222", "jad-1"], [])
    assert len(rows(db, "SELECT id FROM works WHERE merged_into IS NULL")) == 3  # the feed item matches two works: neither


SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vor", "pel"]


def test_a_title_ending_shared_by_many_works_does_not_make_them_candidates(db):
    names = ["".join(p).capitalize() for p in itertools.product(SYLLABLES, repeat=3)][:300]
    batch = [
        article(
            "pubmed",
            str(1000 + i),
            f"Esketamine and {name.lower()} in treatment-resistant depression",
            [f"{name} Anna"],
            "2024-03-01",
        )
        for i, name in enumerate(names)
    ]
    ingest.save_batch(db, batch)
    ingest.save_batch(
        db, [article("pubmed", "new", "Ketamine and sleep in treatment-resistant depression", ["Newman Ben"], "2024-04-01")]
    )
    assert candidates(db, "new") == ([], [])
    largest = db.execute("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM match_keys GROUP BY key)").fetchone()[0]
    assert largest <= 2  # a key groups one author's titles, not the topic's


def anand_articles(first: int, count: int, title: str, date: str) -> list[Record]:
    """PubMed articles of one prolific first author, each with its own PMID (``title`` formatted with the number)."""
    return [article("pubmed", str(first + i), title.format(i), ["Anand Amit"], date, pmid=str(first + i)) for i in range(count)]


def test_an_oversized_block_is_cut_and_logged(db, caplog, monkeypatch):
    batch = anand_articles(2000, 25, "Ketamine and outcome number {} in depression", "2024-03-01")
    ingest.save_batch(db, batch)
    found, oversized = candidates(db, "2000", skip_conflicting=False, block_limit=10)
    assert oversized and all(key.startswith("a:anand:a:") for key in oversized)
    assert 10 <= len(found) <= 10 * len(oversized)
    monkeypatch.setattr(dedup, "MAX_BLOCK", 10)
    caplog.set_level("WARNING", logger="crawler.dedup")
    ingest.save_batch(
        db, [article("feed:jad", "late", "Ketamine and outcome number 3 in depression", ["Amit Anand"], "2024-03-02")]
    )
    assert any("holds more than 10 records" in r.getMessage() for r in caplog.records)


def test_rebuilding_the_keys_gives_the_same_keys(db):
    corpus.load(db, "by_file")
    before = rows(db, "SELECT * FROM match_keys ORDER BY record_id, key")
    with db.atomic():
        db.execute("DELETE FROM match_keys")
        assert dedup.rebuild_keys(db) == len(before)
    assert rows(db, "SELECT * FROM match_keys ORDER BY record_id, key") == before


# --------------------------------------------------------------------------- the labelled corpus


@pytest.fixture(scope="module", params=corpus.ORDERS)
def loaded(request, tmp_path_factory):
    db = store.open_db(tmp_path_factory.mktemp("dedup") / "litmon.db")
    corpus.load(db, request.param)
    yield request.param, db, corpus.score(db, LABELS)
    db.close()


def test_links_resolved_per_batch_are_those_each_work_resolves_alone(loaded):
    """Links are resolved for a whole batch at once (inputs read together, link candidates read with the
    merge candidates): resolving every work again on its own, with fresh queries, changes nothing."""
    _, db, _ = loaded
    columns = "from_work_id, to_work_id, link_type, evidence, record_id, created_at"
    before = rows(db, f"SELECT {columns} FROM work_links ORDER BY from_work_id, to_work_id, link_type, evidence")
    assert any(r["link_type"] == "preprint_of" for r in before)
    with db.atomic():
        for work_id in store.load_current_work_ids(db):
            dedup.resolve_work_links(db, work_id, "2026-11-30 00:00:00")
    assert rows(db, f"SELECT {columns} FROM work_links ORDER BY from_work_id, to_work_id, link_type, evidence") == before


def test_the_labelled_set_covers_every_hard_case_with_enough_pairs():
    pairs = list(itertools.combinations(sorted(LABELS["records"]), 2))
    positive = [(a, b) for a, b in pairs if LABELS["records"][a] == LABELS["records"][b]]
    across_sources = [(a, b) for a, b in positive if a.split("/")[0] != b.split("/")[0]]
    assert len(across_sources) >= 150
    assert len(corpus.hard_negative_pairs(LABELS)) >= 50
    assert {
        "doi_forms",
        "transitive",
        "pmcid",
        "preprint_versions",
        "registries",
        "pubmed_before_doi",
        "feed_no_doi",
        "year_off_by_one",
        "erratum_same_title",
        "retraction_notice",
        "part1_part2",
        "protocol_results",
        "comment_reply",
        "same_group",
        "generic_title",
        "two_dois",
        "republished",
        "preprint_biorxiv_pubs",
        "preprint_biorxiv_published",
        "preprint_crossref_relation",
        "preprint_europepmc",
        "preprint_title_authors",
        "preprint_openalex",
        "registration_links",
        "notice_links",
    } <= set(HARD_CASES)
    sources = {key.split("/")[0].split(":")[0] for key in LABELS["records"]}
    assert sources == {"pubmed", "crossref", "europepmc", "biorxiv", "clinicaltrials", "isrctn", "openalex", "feed"}


def test_every_record_of_the_corpus_is_stored(loaded):
    _, _, result = loaded
    assert result["missing_records"] == []


@pytest.mark.parametrize("case", HARD_CASES)
def test_each_hard_case_gives_exactly_the_labelled_works(loaded, case):
    order, db, _ = loaded
    works = corpus.record_works(db)
    wrong = []
    for a, b in itertools.combinations(sorted(set(LABELS["cases"][case])), 2):
        same_gold = LABELS["records"][a] == LABELS["records"][b]
        if same_gold != (works[a] == works[b]):
            wrong.append(("should be one work" if same_gold else "must stay apart", a, b))
    assert wrong == [], f"{case} ({order})"


def test_every_labelled_link_is_found_and_no_other(loaded):
    order, _, result = loaded
    problems = {t: {"missed": v["missed"], "extra": v["extra"]} for t, v in result["links"].items() if v["missed"] or v["extra"]}
    assert problems == {}, order
    assert {
        "preprint_of",
        "registered_as",
        "references",
        "retraction_of",
        "correction_of",
        "expression_of_concern_of",
        "comment_on",
    } <= set(result["links"])


def test_merge_precision_and_recall_reach_the_targets(loaded):
    order, _, result = loaded
    assert result["merge"]["precision"] >= 0.995, (order, result["false_merges"])
    assert result["merge"]["recall"] >= 0.98, (order, result["missed_merges"])
    for a, b in corpus.hard_negative_pairs(LABELS):
        assert (a, b) not in set(result["false_merges"])


def canonical(db):
    works = corpus.record_works(db)
    groups: dict[int, set[str]] = {}
    for key, work_id in works.items():
        groups.setdefault(work_id, set()).add(key)
    return {frozenset(g) for g in groups.values()}, corpus.predicted_links(db, LABELS)


def test_arrival_order_changes_neither_works_nor_links():
    results = []
    for order in [*corpus.ORDERS, "single_records_shuffled:99"]:
        db = store.memory_db()
        corpus.load(db, order)
        results.append(canonical(db))
    assert all(r == results[0] for r in results[1:])


# --------------------------------------------------------------------------- idempotent, auditable, self-healing

SNAPSHOT = {
    "works": "SELECT * FROM works ORDER BY id",
    "records": "SELECT id, source, source_id, work_id, content_hash, first_seen_at, changed_at FROM records ORDER BY id",
    "identifiers": "SELECT * FROM identifiers ORDER BY id",
    "work_links": "SELECT * FROM work_links ORDER BY id",
    "work_merges": "SELECT * FROM work_merges ORDER BY id",
    "record_fingerprints": "SELECT * FROM record_fingerprints ORDER BY record_id",
    "match_keys": "SELECT * FROM match_keys ORDER BY record_id, key",
}


def snapshot(db):
    return {name: rows(db, sql) for name, sql in SNAPSHOT.items()}


def test_crawling_the_same_data_twice_changes_nothing(db):
    corpus.load(db, "by_file")
    before = snapshot(db)
    corpus.load(db, "reversed")
    assert snapshot(db) == before


@pytest.mark.parametrize("order", [*corpus.ORDERS, "single_records_shuffled:5"])
def test_records_without_a_keepable_key_neighbour_skip_their_look_up_and_nothing_changes(order, monkeypatch):
    """One query per batch tells which records share a blocking key with another record in their years, and
    with one the look-up could keep (own kind on another work without conflicting identifiers, or a link
    kind); the others are not looked up one by one. Every table dedup writes is as when every record is."""
    searched: list[int] = []
    real = store.key_neighbours

    def counting(db, wanted, block_limit):
        any_row, kept = real(db, wanted, block_limit)
        assert kept <= any_row | {record_id for record_id, *_ in wanted}
        searched.extend(record_id for record_id, *_ in wanted if record_id in kept)
        return any_row, kept

    monkeypatch.setattr(store, "key_neighbours", counting)
    db = store.memory_db()
    corpus.load(db, order)
    skipped = rows(db, "SELECT COUNT(*) AS n FROM records")[0]["n"] - len(set(searched))
    assert searched and skipped > 0
    monkeypatch.setattr(store, "key_neighbours", lambda db, wanted, block_limit: ({w[0] for w in wanted},) * 2)
    every = store.memory_db()
    corpus.load(every, order)
    assert snapshot(db) == snapshot(every)


def test_a_backfill_of_records_whose_neighbours_carry_other_pmids_looks_none_of_them_up(db, monkeypatch):
    """Records of one prolific author with the same title opening share blocking keys, but their works carry
    different PMIDs (two works): the batch query finds that no look-up would keep anything."""
    looked_up: list[int] = []
    real = store.find_candidate_groups

    def counting(db, groups, **kwargs):
        looked_up.append(kwargs["record_id"])
        return real(db, groups, **kwargs)

    monkeypatch.setattr(store, "find_candidate_groups", counting)
    batch = anand_articles(100, 6, "Ketamine infusion for treatment-resistant depression, cohort {}", "2024-01-01")
    ingest.save_batch(db, batch[:3])
    ingest.save_batch(db, batch[3:])
    anand = {
        store.key_hash(key)
        for row in store.load_fingerprint_rows(db)
        for key in matching.blocking_keys(matching.Fingerprint.from_row(row))
        if key.startswith("a:anand")
    }
    assert rows(db, f"SELECT COUNT(*) AS n FROM match_keys WHERE key IN ({','.join(map(str, anand))})")[0]["n"] > 6
    assert looked_up == []
    assert rows(db, "SELECT COUNT(DISTINCT work_id) AS n FROM records")[0]["n"] == 6


def test_rebuild_recomputes_the_same_keys_and_links(db):
    corpus.load(db, "by_file")
    before = snapshot(db)
    with db.atomic():
        for table in ("work_links", "match_keys", "record_fingerprints"):
            db.execute(f"DELETE FROM {table}")
        dedup.rebuild(db, now=before["work_links"][0]["created_at"])
    after = snapshot(db)
    key = lambda link: (link["from_work_id"], link["to_work_id"], link["link_type"], link["evidence"])  # noqa: E731
    assert sorted(map(key, after.pop("work_links"))) == sorted(map(key, before.pop("work_links")))
    assert after == before


def test_merges_are_logged_with_their_evidence(loaded):
    _, db, _ = loaded
    reasons = [r["reason"] for r in rows(db, "SELECT reason FROM work_merges")]
    assert any(r.startswith("title+author+year score=") for r in reasons)
    merged = rows(db, "SELECT m.survivor_id, m.merged_id, w.merged_into FROM work_merges m JOIN works w ON w.id = m.merged_id")
    assert merged and all(m["merged_into"] is not None for m in merged)
    assert all(r.startswith(("identifier ", "title+", "journal+date+ordered authors")) for r in reasons)
    # issue #13: the translated title (PubMed's English title, Crossref's German one) merged by its citation
    assert any(r.startswith("journal+date+ordered authors (titles differ)") for r in reasons)


def article(source, source_id, title, authors, date, **identifiers):
    record = Record(
        source=source,
        source_id=source_id,
        record_type="article",
        title=title,
        authors=authors,
        published_on=date,
        entered_on=date,
        journal="JAMA psychiatry",
    )
    for scheme, value in identifiers.items():
        record.add_id(scheme, value)
    return record


def test_a_doi_arriving_later_merges_works_and_moves_digest_history_and_links(db, make_config):
    import datetime as dt

    # PubMed without DOI and a feed item without authors: too little to match on titles
    pubmed = article("pubmed", "41000001", "Ketamine and sleep: a pilot study.", ["Ito Hugo"], "2026-11-18", pmid="41000001")
    feed = article("feed:jama", "jama-1", "Ketamine and sleep", [], "2026-11-18", doi="10.1001/jamapsychiatry.2026.1")
    notice = Record(
        source="crossref",
        source_id="10.1001/jamapsychiatry.2026.9",
        record_type="notice",
        title="Correction to: Ketamine and sleep",
        published_on="2026-11-20",
    )
    notice.add_id("doi", "10.1001/jamapsychiatry.2026.9")
    notice.add_link("correction_for", "doi", "10.1001/jamapsychiatry.2026.1")
    ingest.save_batch(db, [pubmed, feed, notice], now="2026-11-20 06:00:00")
    assert len(rows(db, "SELECT id FROM works WHERE merged_into IS NULL")) == 3
    feed_work = rows(db, "SELECT work_id FROM records WHERE source = 'feed:jama'")[0]["work_id"]
    pubmed_work = rows(db, "SELECT work_id FROM records WHERE source = 'pubmed'")[0]["work_id"]
    assert rows(db, "SELECT from_work_id, to_work_id, link_type FROM work_links_view") == [
        {"from_work_id": 3, "to_work_id": feed_work, "link_type": "correction_of"}
    ]
    run_digest(make_config(), db, now=dt.datetime(2026, 11, 21, 7, tzinfo=dt.UTC))
    # the correction notice is told on the work it concerns (README, "Digest"), not listed apart
    assert {r["work_id"] for r in rows(db, "SELECT work_id FROM digest_items")} == {1, 2}

    # the publisher deposits the DOI: PubMed's record now carries it
    pubmed.add_id("doi", "https://doi.org/10.1001/JAMAPSYCHIATRY.2026.1")
    ingest.save_batch(db, [pubmed], now="2026-11-22 06:00:00")

    survivor = min(feed_work, pubmed_work)
    assert rows(db, "SELECT id FROM works WHERE merged_into IS NULL ORDER BY id") == [{"id": survivor}, {"id": 3}]
    assert rows(db, "SELECT merged_into FROM works WHERE id = ?", [max(feed_work, pubmed_work)]) == [{"merged_into": survivor}]
    assert rows(db, "SELECT survivor_id, merged_id, reason FROM work_merges") == [
        {
            "survivor_id": survivor,
            "merged_id": max(feed_work, pubmed_work),
            "reason": "identifier doi:10.1001/jamapsychiatry.2026.1",
        }
    ]
    assert sorted(r["work_id"] for r in rows(db, "SELECT work_id FROM digest_items")) == [survivor, survivor]
    assert rows(db, "SELECT from_work_id, to_work_id, link_type FROM work_links_view") == [
        {"from_work_id": 3, "to_work_id": survivor, "link_type": "correction_of"}
    ]
    assert rows(db, "SELECT is_corrected, sources FROM works_view WHERE work_id = ?", [survivor]) == [
        {"is_corrected": 1, "sources": "feed:jama,pubmed"}
    ]
    # the survivor was listed already: the next digest does not list it again
    result = run_digest(make_config(), db, now=dt.datetime(2026, 11, 28, 7, tzinfo=dt.UTC))
    assert [item.work_id for item in result.digest.items] == []


def test_a_link_stated_before_its_target_arrives_resolves_when_it_does(db):
    article_ = article(
        "pubmed", "41000002", "Esketamine in older adults: a randomised trial.", ["Ueda Leo"], "2026-01-10", pmid="41000002"
    )
    article_.add_link("registered_as", "nct", "NCT05000002", note="DataBankList ClinicalTrials.gov")
    ingest.save_batch(db, [article_])
    assert rows(db, "SELECT * FROM work_links") == []
    trial = Record(
        source="clinicaltrials",
        source_id="NCT05000002",
        record_type="trial_registration",
        title="Esketamine in Older Adults",
        published_on="2024-01-01",
    )
    trial.add_id("nct", "NCT05000002")
    ingest.save_batch(db, [trial])
    assert rows(db, "SELECT from_work_id, link_type, to_work_id, evidence FROM work_links") == [
        {
            "from_work_id": 1,
            "link_type": "registered_as",
            "to_work_id": 2,
            "evidence": "pubmed:41000002 registered_as nct:NCT05000002",
        }
    ]
    assert rows(db, "SELECT has_results FROM works_view WHERE work_id = 2") == [{"has_results": 1}]


def test_upgrading_a_database_resolves_what_it_already_holds(tmp_path):
    """A file written before m002_dedup: its records get fingerprints, fuzzy merges and links on open."""
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    store.migrations.apply(old, stop_before="m002_dedup")
    now = "2025-01-01T00:00:00Z"
    rows_ = [  # (work, source, source_id, type, title, authors, date, identifiers, links)
        (
            1,
            "pubmed",
            "41000020",
            "article",
            "Ketamine and sleep architecture in adults with treatment-resistant depression.",
            ["Ito Hugo"],
            "2024-05-02",
            [("pmid", "41000020")],
            [],
        ),
        (
            2,
            "crossref",
            "10.1001/x.2024.1",
            "article",
            "Ketamine and sleep architecture in adults with treatment‐resistant depression",
            ["Hugo Ito"],
            "2024-05-01",
            [("doi", "10.1001/x.2024.1")],
            [],
        ),
        (
            3,
            "crossref",
            "10.1001/x.2024.9",
            "notice",
            "Correction to: Ketamine and sleep architecture",
            [],
            "2024-07-01",
            [("doi", "10.1001/x.2024.9")],
            [("correction_for", "doi", "10.1001/x.2024.1")],
        ),
    ]
    for work_id, source, source_id, kind, title, authors, date, identifiers, links in rows_:
        old.execute(
            "INSERT INTO works (id, record_type, title, published_on, first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [work_id, kind, title, date, now, now],
        )
        record_id = old.execute(
            "INSERT INTO records (source, source_id, work_id, record_type, title, authors, published_on, data, content_hash,"
            " first_seen_at, last_seen_at, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', 'x', ?, ?, ?)",
            [source, source_id, work_id, kind, title, json.dumps(authors), date, now, now, now],
        ).lastrowid
        for scheme, value in identifiers:
            old.execute(
                "INSERT INTO identifiers (record_id, work_id, scheme, value) VALUES (?, ?, ?, ?)",
                [record_id, work_id, scheme, value],
            )
        for relation, scheme, value in links:
            old.execute(
                "INSERT INTO record_links (record_id, relation, scheme, value) VALUES (?, ?, ?, ?)",
                [record_id, relation, scheme, value],
            )
    old.conn.commit()
    old.close()

    db = ingest.open_db(path)
    assert "m002_dedup" in [r["name"] for r in rows(db, "SELECT name FROM _sqlite_migrations")]
    assert rows(db, "SELECT survivor_id, merged_id FROM work_merges") == [{"survivor_id": 1, "merged_id": 2}]
    assert rows(db, "SELECT from_work_id, link_type, to_work_id FROM work_links_view") == [
        {"from_work_id": 3, "link_type": "correction_of", "to_work_id": 1}
    ]
    assert rows(db, "SELECT COUNT(*) AS n FROM record_fingerprints") == [{"n": 3}]
    db.close()


# --------------------------------------------------------------------------- the documented views


def gold_work(db, key):
    """The current work holding the records of gold work ``key``."""
    works = corpus.record_works(db)
    found = {works[r] for r, gold in LABELS["records"].items() if gold == key}
    assert len(found) == 1
    return found.pop()


def test_work_identifiers_lists_every_identifier_of_every_current_work(loaded):
    _, db, _ = loaded
    view = {(r["work_id"], r["scheme"], r["value"]) for r in rows(db, "SELECT * FROM work_identifiers")}
    expected = {
        (r["work_id"], r["scheme"], r["value"])
        for r in rows(
            db,
            "SELECT i.work_id, i.scheme, i.value FROM identifiers i JOIN works w ON w.id = i.work_id WHERE w.merged_into IS NULL",
        )
    }
    assert view == expected
    assert len(view) == len(rows(db, "SELECT * FROM work_identifiers"))  # distinct
    h01 = gold_work(db, "H01")
    assert {(s, v) for w, s, v in view if w == h01} == {
        ("doi", "10.1001/jamapsychiatry.2024.0101"),
        ("pmid", "39100001"),
        ("openalex", "W4390000001"),
    }


def test_works_view_has_one_row_per_current_work_with_best_values_sources_and_flags(loaded):
    _, db, _ = loaded
    view = {r["work_id"]: r for r in rows(db, "SELECT * FROM works_view")}
    assert set(view) == {r["id"] for r in rows(db, "SELECT id FROM works WHERE merged_into IS NULL")}
    h01 = view[gold_work(db, "H01")]
    assert h01["sources"] == "crossref,europepmc,feed:jama,openalex,pubmed"
    assert h01["title"].startswith("Intravenous ketamine versus electroconvulsive therapy")  # PubMed's title (best source)
    assert h01["journal"] == "JAMA psychiatry" and h01["doi"] == "10.1001/jamapsychiatry.2024.0101" and h01["pmid"] == "39100001"
    assert h01["authors"].startswith("Anand A, ") and h01["first_author"] == "Anand A"  # PubMed's authors
    assert h01["first_seen_at"] == min(
        r["first_seen_at"] for r in rows(db, "SELECT first_seen_at FROM records WHERE work_id = ?", [h01["work_id"]])
    )
    flags = ("is_preprint", "is_retracted", "is_corrected", "has_expression_of_concern", "has_results")

    def flagged(key):
        return {f for f in flags if view[gold_work(db, key)][f]}

    assert flagged("H01") == set()
    assert flagged("H04") == {"is_preprint"}
    assert flagged("N03") == {"is_retracted"} and flagged("L24") == {"is_retracted"}
    assert flagged("N01") == {"is_corrected"} and flagged("L22") == {"is_corrected"}
    assert flagged("L20") == {"has_expression_of_concern"}
    assert flagged("L10") == {"has_results"}  # ClinicalTrials.gov hasResults
    assert flagged("N11") == {"has_results"}  # ISRCTN lists a results article
    assert flagged("L15") == {"has_results"}  # an article reports it (registered_as)


def test_work_links_view_names_both_works_and_the_evidence(loaded):
    _, db, _ = loaded
    links = rows(
        db,
        "SELECT * FROM work_links_view WHERE from_work_id = ? AND to_work_id = ?",
        [gold_work(db, "L21"), gold_work(db, "L20")],
    )
    assert len(links) == 1
    link = links[0]
    assert (
        link["link_type"] == "expression_of_concern_of"
        and link["from_record_type"] == "notice"
        and link["to_record_type"] == "article"
    )
    assert set(link["evidence"].split("; ")) == {
        "europepmc:MED/39200020 expression_of_concern_in pmid:39200021",
        "pubmed:39200021 expression_of_concern_for pmid:39200020",
        "crossref:10.1177/0269881122050001 expression_of_concern_in doi:10.1177/0269881123050099",
        "crossref:10.1177/0269881123050099 expression_of_concern_for doi:10.1177/0269881122050001",
    }
    erratum = rows(
        db,
        "SELECT evidence FROM work_links_view WHERE from_work_id = ? AND to_work_id = ? AND link_type = 'correction_of'",
        [gold_work(db, "N02"), gold_work(db, "N01")],
    )
    assert set(erratum[0]["evidence"].split("; ")) == {
        "pubmed:39100011 erratum_in pmid:39100012",
        "pubmed:39100012 erratum_for pmid:39100011",
    }
    guessed = rows(db, "SELECT evidence FROM work_links_view WHERE from_work_id = ?", [gold_work(db, "L05p")])
    assert guessed and guessed[0]["evidence"].startswith("title+authors score=100")


# --------------------------------------------------------------------------- through the real pipeline


def test_a_crawl_of_two_sources_joins_and_links_their_records(httpserver, make_config, run_crawl, db):
    files = corpus.corpus_files()
    httpserver.expect_request("/works").respond_with_response(
        Response(files["crossref_works.json"], content_type="application/json")
    )
    httpserver.expect_request("/rest/search").respond_with_response(
        Response(files["europepmc_core.json"], content_type="application/json")
    )
    config = make_config(
        f'[sources.crossref]\nenabled = true\nbase_url = "{httpserver.url_for("/")}"\nquery = "ketamine"\n'
        "page_size = 1000\nslice_days = 36500\nmin_interval = 0\n"
        f'[sources.europepmc]\nenabled = true\nbase_url = "{httpserver.url_for("/rest/")}"\nquery = "ketamine"\nmin_interval = 0\n'
    )
    report = run_crawl(config, only=["europepmc", "crossref"])
    assert [s.status for s in report.sources] == ["ok", "ok"], [s.error for s in report.sources]

    works = corpus.record_works(db)
    stored = sorted(works)
    assert len(stored) > 100
    for a, b in itertools.combinations(stored, 2):
        assert (LABELS["records"][a] == LABELS["records"][b]) == (works[a] == works[b]), (a, b)
    assert works["crossref/10.1001/jamapsychiatry.2024.0101"] == works["europepmc/MED/39100001"]
    links = corpus.predicted_links(db, LABELS)
    assert ("L04p", "preprint_of", "L04a") in links
    assert ("L21", "expression_of_concern_of", "L20") in links


# --------------------------------------------------------------------------- the digest follows the same decision


def test_the_digest_lists_a_preprint_and_its_article_as_one_item(db, make_config):
    """Issue #13: one item per study — the journal version, annotated, with its preprint linked."""
    import datetime as dt

    preprint = Record(
        source="biorxiv",
        source_id="10.1101/2026.11.01.26300001v1",
        record_type="preprint",
        version="1",
        title="Ketamine-assisted psychotherapy for major depression: a feasibility study",
        authors=["Rossi L."],
        published_on="2026-11-19",
        entered_on="2026-11-19",
        journal="medRxiv",
    )
    preprint.add_id("doi", "10.1101/2026.11.01.26300001")
    preprint.add_link("preprint_of", "doi", "10.1016/j.jad.2026.11.001")
    paper = article(
        "pubmed",
        "41000010",
        "Ketamine-assisted psychotherapy for major depression: a feasibility study.",
        ["Rossi Laura"],
        "2026-11-20",
        pmid="41000010",
        doi="10.1016/j.jad.2026.11.001",
    )
    notice = Record(
        source="crossref",
        source_id="10.1016/j.jad.2026.11.099",
        record_type="notice",
        published_on="2026-11-21",
        entered_on="2026-11-21",
        title="Correction to “Ketamine-assisted psychotherapy for major depression”",
    )
    notice.add_id("doi", "10.1016/j.jad.2026.11.099")
    notice.add_link("correction_for", "doi", "10.1016/j.jad.2026.11.001")
    ingest.save_batch(db, [preprint, paper, notice], now="2026-11-22 06:00:00")

    digest = run_digest(make_config(), db, now=dt.datetime(2026, 11, 24, 7, tzinfo=dt.UTC)).digest
    by_section = {key: [item.title for item in items] for key, _, items in digest.sections}
    listed = [title for titles in by_section.values() for title in titles]
    # one item: the journal version (new, already corrected: the correction is told on it); no preprint item
    assert listed == ["Ketamine-assisted psychotherapy for major depression: a feasibility study."]
    assert "preprints" not in by_section and "notices" not in by_section
    item = digest.items[0]
    assert item.notes[0] == "Published version of a preprint (posted 2026-11-19)"
    assert item.flag == "Correction issued for this work"
    assert "  > Published version of a preprint (posted 2026-11-19)" in digest.text
    assert (
        "  Preprint: Ketamine-assisted psychotherapy for major depression: a feasibility study <https://doi.org/10.1101/2026.11.01.26300001>"
        in digest.text
    )
    assert (
        "  Corrected by: Correction to “Ketamine-assisted psychotherapy for major depression” <https://doi.org/10.1016/j.jad.2026.11.099>"
        in digest.text
    )
    assert 'Corrected by: <a href="https://doi.org/10.1016/j.jad.2026.11.099"' in digest.html


def test_citation_identity_merges_a_translated_title_and_nothing_that_differs(db):
    """Issue #13: no shared identifier, different titles; same journal, date (± a few days) and ordered authors."""
    from crawler.records import make_author

    people = [make_author("Weber", "Jonas"), make_author("Müller", "Ines"), make_author("Bauer", "Felix")]

    def rec(source, source_id, title, date, journal="Der Nervenarzt", authors=people, **ids_):
        record = Record(
            source=source, source_id=source_id, record_type="article", title=title, published_on=date, journal=journal
        )
        record.structured_authors = list(authors)
        record.authors = [f"{a.family} {a.initials}" for a in authors]
        for scheme, value in ids_.items():
            record.add_id(scheme, value)
        return record

    english = rec(
        "pubmed", "1", "Intravenous ketamine for treatment-resistant depression in routine care", "2025-02-10", pmid="1"
    )
    german = rec(
        "crossref", "10.1007/x1", "Intravenöses Ketamin bei therapieresistenter Depression", "2025-02-12", doi="10.1007/x1"
    )
    other_date = rec("crossref", "10.1007/x2", "Esketamin in der Praxis", "2025-03-30", doi="10.1007/x2")
    other_order = rec(
        "crossref", "10.1007/x3", "Ketamin und EKT", "2025-02-10", authors=[people[1], people[0], people[2]], doi="10.1007/x3"
    )
    other_journal = rec(
        "crossref", "10.1055/x4", "Ketamin: Positionspapier", "2025-02-10", journal="Fortschr Neurol Psychiatr", doi="10.1055/x4"
    )
    part_two = rec("pubmed", "5", "Ketamine in routine care, part 2", "2025-02-10", pmid="5")
    part_one = rec("crossref", "10.1007/x6", "Ketamin in der Routine, Teil 1", "2025-02-10", doi="10.1007/x6")
    ingest.save_batch(db, [english, german, other_date, other_order, other_journal], now="2026-11-22 06:00:00")
    work_of = {r["source_id"]: r["work_id"] for r in rows(db, "SELECT source_id, work_id FROM records")}
    current = {k: store.load_current_work_ids(db, [v])[0] for k, v in work_of.items()}
    assert current["1"] == current["10.1007/x1"]
    assert len({current[k] for k in ("1", "10.1007/x2", "10.1007/x3", "10.1055/x4")}) == 4
    reason = rows(db, "SELECT reason FROM work_merges")[0]["reason"]
    assert reason.startswith("journal+date+ordered authors (titles differ)")
    # a numbered companion (part 1 / part 2) of the same group, journal and day stays apart
    ingest.save_batch(db, [part_two, part_one], now="2026-11-22 07:00:00")
    ids_ = {
        r["source_id"]: r["work_id"]
        for r in rows(db, "SELECT source_id, work_id FROM records WHERE source_id IN ('5', '10.1007/x6')")
    }
    assert store.load_current_work_ids(db, [ids_["5"]]) != store.load_current_work_ids(db, [ids_["10.1007/x6"]])


def test_a_blocking_key_is_stored_as_its_documented_64_bit_hash():
    """``match_keys.key``: the 8-byte BLAKE2b digest of the key, a signed big-endian integer (docs/schema.md), the same
    in every process and Python version."""
    assert store.key_hash("a:ito:h:k") == -5884880848234054421
    for key in ("a:ito:h:k", "t:0123456789abcdef", "a:müller:j:ketaminedepr", ""):
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        assert store.key_hash(key) == int.from_bytes(digest, "big", signed=True)
        assert -(2**63) <= store.key_hash(key) < 2**63


def test_migration_stores_each_blocking_key_as_its_hash_and_dedup_finds_the_same_candidates(tmp_path, monkeypatch):
    """m018: a file at m017 holds its blocking keys as text. Opened, each row holds its key's hash and is otherwise the
    same row, and every record's candidates (and cut keys) are the ones it had."""
    path = tmp_path / "old.db"
    db = store.open_db(path)
    corpus.load(db, "by_file")
    record_ids = [r["record_id"] for r in rows(db, "SELECT record_id FROM record_fingerprints ORDER BY record_id")]
    before = {record_id: corpus.merge_candidates(db, record_id, skip_conflicting=False) for record_id in record_ids}
    small = {record_id: corpus.merge_candidates(db, record_id, block_limit=1) for record_id in record_ids}
    assert sum(bool(found) for found, _ in before.values()) > 10 and any(cut for _, cut in small.values())
    hashed = rows(db, "SELECT record_id, key, year FROM match_keys ORDER BY record_id, key, year")
    text_keys: list[tuple[str, int | None, int]] = []
    monkeypatch.setattr(store, "save_match_keys", lambda db, keys: text_keys.extend(keys))
    dedup.rebuild_keys(db)
    monkeypatch.undo()
    old_rows = sorted({(record_id, key, year or 0) for key, year, record_id in text_keys})
    assert len(old_rows) == len(hashed)
    with db.atomic():  # the file as m017 left it
        db.execute("DROP TABLE match_keys")
        db.execute(
            """CREATE TABLE match_keys (record_id INTEGER NOT NULL REFERENCES records(id), key TEXT NOT NULL,
               year INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (key, year, record_id)) WITHOUT ROWID"""
        )
        db.execute("CREATE INDEX match_keys_record ON match_keys(record_id)")
        db.conn.executemany("INSERT INTO match_keys (record_id, key, year) VALUES (?, ?, ?)", old_rows)
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm018_match_keys_hashed'")
    assert rows(db, "SELECT typeof(key) AS t FROM match_keys GROUP BY 1") == [{"t": "text"}]
    db.close()
    db = store.open_db(path)
    assert rows(db, "SELECT record_id, key, year FROM match_keys ORDER BY record_id, key, year") == hashed
    assert hashed == sorted(
        ({"record_id": r, "key": store.key_hash(k), "year": y} for r, k, y in old_rows),
        key=lambda row: (row["record_id"], row["key"], row["year"]),
    )
    assert {record_id: corpus.merge_candidates(db, record_id, skip_conflicting=False) for record_id in record_ids} == before
    assert {record_id: corpus.merge_candidates(db, record_id, block_limit=1) for record_id in record_ids} == small


def test_migration_gives_stored_blocking_keys_their_records_year(tmp_path):
    """m013: match_keys rows stored before it take their record's year (0 when unknown), and candidates
    are then read by key and year window."""
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    store.migrations.apply(old, stop_before="m013_match_keys_year")
    for record_id in (1, 2, 3):  # record 3 (work 3) looks for candidates below
        old.execute(
            "INSERT INTO works (id, record_type, title, first_seen_at, updated_at) VALUES (?, 'article', 'K', 'x', 'x')",
            [record_id],
        )
        old.execute(
            "INSERT INTO records (id, source, source_id, work_id, record_type, title, data, content_hash, first_seen_at,"
            " last_seen_at, changed_at) VALUES (?, 'pubmed', ?, ?, 'article', 'K', '{}', 'h', 'x', 'x', 'x')",
            [record_id, str(record_id), record_id],
        )
    old.execute("INSERT INTO record_fingerprints (record_id, kind, title_key, year) VALUES (1, 'article', 'k', 2024)")
    old.execute("INSERT INTO record_fingerprints (record_id, kind, title_key, year) VALUES (2, 'article', 'k', NULL)")
    old.execute("INSERT INTO match_keys (record_id, key) VALUES (1, 'a:ito:h:k'), (2, 'a:ito:h:k')")
    old.conn.commit()
    old.close()
    db = store.open_db(path)
    assert rows(db, "SELECT record_id, key, year FROM match_keys ORDER BY record_id") == [  # m018 then hashed the key
        {"record_id": 1, "key": store.key_hash("a:ito:h:k"), "year": 2024},
        {"record_id": 2, "key": store.key_hash("a:ito:h:k"), "year": 0},
    ]
    found = lambda years: [  # noqa: E731
        c["record_id"]
        for c in store.find_candidates(
            db, ["a:ito:h:k"], kinds=["article"], record_id=3, years=years, skip_conflicting=False, limit=9, block_limit=9
        )[0]
    ]
    assert found((2023, 2025)) == [1] and found((2026, 2027)) == [] and found(None) == [2]
