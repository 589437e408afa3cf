"""The record model: structured authors (one parser of free-text names, each source's structured fields)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import random
import unicodedata

import pytest
import sqlite_utils

from crawler import records as records_module
from crawler import store
from crawler.abstracts import flatten, sections_from_text
from crawler.records import Author, Record, format_authors, join_json_parts, json_parts, json_value, make_author, parse_author
from crawler.sources import biorxiv, clinicaltrials, crossref, europepmc, feeds, openalex, pubmed
from tests.conftest import fixture_bytes, rows


@pytest.mark.parametrize(
    "text, order, expected",
    [
        ("Osei HK", None, Author(family="Osei", initials="HK")),
        ("Anand, A.", None, Author(family="Anand", initials="A")),
        ("Anand, Amit", None, Author(family="Anand", given="Amit", initials="A")),
        ("Amit Anand", None, Author(family="Anand", given="Amit", initials="A")),
        ("Anand Amit", "family_first", Author(family="Anand", given="Amit", initials="A")),
        ("H. K. Osei", None, Author(family="Osei", initials="HK")),
        ("J.H. van Dijk", None, Author(family="van Dijk", initials="JH")),
        ("van der Berg P.-J.", None, Author(family="van der Berg", initials="PJ")),
        ("Ludwig van Beethoven", None, Author(family="van Beethoven", given="Ludwig", initials="L")),
        ("de la Cruz, María José", None, Author(family="de la Cruz", given="María José", initials="MJ")),
        ("Jean-Paul Sartre", None, Author(family="Sartre", given="Jean-Paul", initials="JP")),
        ("Smith, John, Jr.", None, Author(family="Smith", given="John", initials="J", suffix="Jr.")),
        ("STAR*D Investigators", None, Author(collective="STAR*D Investigators")),
        ("Esketamine Study Group", "family_first", Author(collective="Esketamine Study Group")),
        ("Madonna", None, Author(family="Madonna")),
        ("  ", None, None),
    ],
)
def test_parse_author_reads_every_common_name_form(text, order, expected):
    assert parse_author(text, order=order) == expected


def test_author_renders_short_inverted_and_full_forms():
    person = Author(family="Osei", given="Hannah K.")
    assert (person.initials, person.short, person.inverted, person.full) == ("HK", "Osei HK", "Osei, Hannah K.", "Hannah K. Osei")
    initials_only = Author(family="Chen", initials="WL")
    assert (initials_only.inverted, initials_only.full) == ("Chen, W. L.", "WL Chen")
    group = Author(collective="ELEKT-D Study Group")
    assert group.short == group.inverted == group.full == "ELEKT-D Study Group"


def test_format_authors_cuts_after_the_limit_with_et_al():
    people = [Author(family="Osei", given="Hannah"), Author(family="Chen", initials="W"), {"family": "Smith", "initials": "J"}]
    assert format_authors(people, limit=2) == "Osei H, Chen W et al."
    assert format_authors(people) == "Osei H, Chen W, Smith J"
    assert format_authors([]) == ""


def test_make_author_keeps_collective_names_and_reads_initials_only_given_names():
    assert make_author(collective="TRANSFORM-2 Study Group") == Author(collective="TRANSFORM-2 Study Group")
    assert make_author(family="Daly", given="E. J.") == Author(family="Daly", initials="EJ")
    assert make_author(family="Mathew", given="Sanjay J", initials="SJ") == Author(
        family="Mathew", given="Sanjay J", initials="SJ"
    )
    assert make_author() is None


@pytest.mark.parametrize(
    "given, kept",
    [
        ("H. K.", None),
        ("HK", None),
        ("J.-P.", None),
        ("A B C", None),
        ("Jo.", None),
        ("H.K.  ", None),
        ("Jo", "Jo"),
        ("Sanjay J", "Sanjay J"),
        ("J Sanjay", "J Sanjay"),
        ("ABCD", "ABCD"),
        ("AB-", "AB-"),
        ("Ab. C", None),
        ("A. -", "A. -"),
        ("\u00c9. J.", "\u00c9. J."),
        ("Jon", "Jon"),
        ("Abc.", "Abc."),
        ("HKl", "HKl"),
        ("Ab.", None),
        ("A.b", "A.b"),
    ],
)
def test_a_given_name_of_initials_only_is_read_as_initials_word_by_word(given, kept):
    """Every word an initials token ("H", "HK", "H.", "J.-P.", "Jo.") makes the given name initials only: no given
    name is kept (the initials are then made of it); one other word keeps it whole."""
    author = make_author(family="Osei", given=given)
    assert author is not None and author.given == kept


def test_a_record_made_with_names_only_gets_them_parsed_and_round_trips_through_its_dict():
    record = Record(source="feed:x", source_id="1", record_type="article", title="T", authors=["Anand A", "Lee, Bo"])
    assert [a.short for a in record.structured_authors] == ["Anand A", "Lee B"]
    again = Record(**record.to_dict())
    assert again.structured_authors == record.structured_authors
    assert again.content_hash() == record.content_hash()


def _first(records, source_id):
    return next(r for r in records if r.source_id == source_id)


def test_each_source_reads_authors_from_its_own_wire_structure():
    """PubMed LastName/ForeName/Initials/CollectiveName, Europe PMC authorList, Crossref family/given/name,
    bioRxiv "Last, F.", OpenAlex display names, feed dc:creator strings (fixtures in each API's format)."""
    med = _first(pubmed.parse_file(fixture_bytes("pubmed", "efetch_batch1.xml"), "x.xml"), "39000001")
    assert [a.to_dict() for a in med.structured_authors] == [
        {"family": "Anand", "given": "Amit", "initials": "A"},
        {"family": "Mathew", "given": "Sanjay J", "initials": "SJ"},
        {"collective": "ELEKT-D Study Group"},
    ]
    epmc = _first(europepmc.parse_file(fixture_bytes("europepmc", "core_page1.json"), "x.json"), "MED/37792613")
    assert epmc.authors[0] == "Reif A" and epmc.structured_authors[0] == Author(family="Reif", given="Andreas", initials="A")
    xref = _first(
        crossref.parse_file(fixture_bytes("crossref", "works_created_page1.json"), "x.json"), "10.1176/appi.ajp.2019.19020172"
    )
    assert [a.short for a in xref.structured_authors] == ["Popova V", "Daly EJ", "Trivedi M", "TRANSFORM-2 Study Group"]
    assert xref.extra["journal_abbreviation"] == "AJP"
    preprint = biorxiv.parse_file(fixture_bytes("biorxiv", "details_medrxiv_page1.json"), "details.json")[0]
    assert [a.short for a in preprint.structured_authors] == ["Smith JA", "Garcia M", "van der Berg PJ"]
    works = openalex.parse_file(fixture_bytes("openalex", "works_page1.json"), "x.json")
    assert _first(works, "W4405123456").structured_authors[0] == Author(family="Hart", given="Amelia R.", initials="AR")
    items = feeds.parse_file(fixture_bytes("feeds", "sciencedirect_jad_rss2.xml"), "x.xml")
    assert [a.short for a in items[0].structured_authors] == ["Wei L", "Rossi M", "van Dijk JH"]


def test_store_keeps_structured_authors_and_citation_details_and_the_work_shows_the_best_source(db):
    pm = pubmed.parse_file(fixture_bytes("pubmed", "efetch_batch1.xml"), "x.xml")
    store.save_records(db, pm)
    row = rows(
        db, "SELECT structured_authors, journal_abbreviation, volume, issue, pages FROM records WHERE source_id = '39000001'"
    )[0]
    assert json.loads(row["structured_authors"])[2] == {"collective": "ELEKT-D Study Group"}
    assert (row["journal_abbreviation"], row["volume"], row["issue"], row["pages"]) == ("JAMA Psychiatry", "81", "7", "655-664")
    # a feed record of the same work (same DOI) ranks below PubMed: the work keeps PubMed's authors
    doi = pm[0].first_id("doi")
    feed = Record(source="feed:jama", source_id="x1", record_type="article", title=pm[0].title, authors=["A. Anand"])
    feed.add_id("doi", doi)
    store.save_records(db, [feed])
    work = rows(db, "SELECT w.authors FROM works w JOIN records r ON r.work_id = w.id WHERE r.source_id = 'x1'")[0]
    assert [a["family"] if "family" in a else a["collective"] for a in json.loads(work["authors"])] == [
        "Anand",
        "Mathew",
        "ELEKT-D Study Group",
    ]


def test_migration_parses_the_authors_of_records_stored_before_it(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    store.migrations.apply(old, stop_before="m005_structured_authors")
    record = Record(
        source="pubmed", source_id="1", record_type="article", title="Ketamine", authors=["Anand Amit", "ELEKT-D Study Group"]
    )
    record.extra = {"volume": "81", "pages": "655-64"}
    data = record.to_dict()
    data.pop("structured_authors")
    old.execute(
        "INSERT INTO works (id, record_type, title, first_seen_at, updated_at) VALUES (1, 'article', 'Ketamine', 'x', 'x')"
    )
    old.execute(
        "INSERT INTO records (source, source_id, work_id, record_type, title, authors, data, content_hash, first_seen_at, last_seen_at, changed_at)"
        " VALUES ('pubmed', '1', 1, 'article', 'Ketamine', ?, ?, 'h', 'x', 'x', 'x')",
        [json.dumps(record.authors), json.dumps(data)],
    )
    old.conn.commit()
    old.close()
    db = store.open_db(path)
    assert rows(db, "SELECT volume, pages FROM records") == [{"volume": "81", "pages": "655-64"}]
    assert json.loads(rows(db, "SELECT authors FROM works")[0]["authors"]) == [
        {"family": "Anand", "given": "Amit", "initials": "A"},
        {"collective": "ELEKT-D Study Group"},
    ]


def _asdict_reference(record: Record) -> dict:
    """What ``Record.to_dict`` returned when it was ``dataclasses.asdict`` (the reference for its hand-written form)."""
    data = dataclasses.asdict(record)
    if not data["abstract_sections"] and record.abstract:
        data["abstract_sections"] = sections_from_text(record.abstract)
    data.pop("missing")
    return data


@pytest.mark.parametrize(
    "module, source, name",
    [
        (pubmed, "pubmed", "efetch_batch1.xml"),
        (europepmc, "europepmc", "core_page1.json"),
        (crossref, "crossref", "works_created_page1.json"),
        (biorxiv, "biorxiv", "details_medrxiv_page1.json"),
        (openalex, "openalex", "works_page1.json"),
        (feeds, "feeds", "sciencedirect_jad_rss2.xml"),
        (clinicaltrials, "clinicaltrials", "studies_page1.json"),
    ],
)
def test_to_dict_and_content_hash_are_what_asdict_gave_on_every_source(module, source, name):
    """records.data and the content hash are unchanged by the hand-written to_dict (a changed hash would
    mark every stored record updated on the next crawl); the dict is a copy, never shared with the record."""
    records = module.parse_file(fixture_bytes(source, name), name)
    assert records
    for record in records:
        data = record.to_dict()
        reference = _asdict_reference(record)
        assert data == reference
        assert json.dumps(data, sort_keys=True, default=str) == json.dumps(reference, sort_keys=True, default=str)
        assert record.content_hash() == record.content_hash(data)
        payload = {k: v for k, v in reference.items() if k not in ("structured_authors", "abstract_sections")}
        payload["extra"] = {k: v for k, v in reference["extra"].items() if k not in ("open_access", "free_full_text_url")}
        expected = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
        assert record.content_hash() == expected
        parts = json_parts(data)  # each field encoded once, joined into records.data and the hash payload
        for keys in (list(data), [k for k in data if k != "abstract"], ["title"], []):
            assert join_json_parts(parts, keys) == json.dumps({k: data[k] for k in keys}, sort_keys=True, ensure_ascii=False)
        data["extra"]["added"] = 1
        data["authors"].append("X")
        if data["trial"]:
            data["trial"]["overall_status"] = "changed"
        assert "added" not in record.extra and "X" not in record.authors
        assert not record.trial or record.trial.get("overall_status") != "changed"


def test_json_value_writes_what_json_dumps_writes():
    """The encoder built once gives json.dumps's text for every kind of value, and its errors."""
    values = [
        None,
        'Ketamine \u2013 \u00e9sketamine "quoted" \\ \n\t\u0000 \U0001f600',
        [1, 2.5, float("nan"), float("inf"), -float("inf"), True, False, None, 10**30],
        {"b": [1, {"z": None, "a": ("tuple", 2)}], "a": "x", "c": {}},
        {1: "int key", 2.5: "float key", False: "bool key"},
        [dt.date(2025, 3, 2), {"when": dt.datetime(2025, 3, 2, 9, 30)}],
        ("a", "tuple"),
        [[[[["deep"]]]]],
        [],
        7,
    ]
    for value in values:
        assert json_value(value) == json.dumps(value, sort_keys=True, ensure_ascii=False, default=str), value
    assert json_parts({"x": values[3], "y": None}) == {"x": json_value(values[3]), "y": "null"}
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        json_value(circular)
    with pytest.raises(TypeError):
        json_value({"a": 1, None: 2, 3: 4})  # keys that cannot be sorted: as json.dumps
    assert json_value(["after", "the errors"]) == '["after", "the errors"]'


def _clean_name_reference(text) -> str:
    """records._clean_name before its fast path for plain ASCII names (the reference it must equal)."""
    return " ".join(unicodedata.normalize("NFC", str(text or "")).replace("\u00a0", " ").split()).strip(" ,;")


def test_a_name_is_cleaned_as_before_whatever_its_characters():
    """_clean_name's shortcut for printable ASCII names without double spaces gives what the full cleaning gives:
    every mix of letters, spaces, tabs, commas, semicolons, no-break spaces and decomposed accents."""
    rng = random.Random(15)
    alphabet = ["a", "B", "z", " ", "  ", "\t", "\n", ",", ";", ".", "-", "\u00a0", "e\u0301", "\u00e9", "\u2009", "\x00", "'"]
    texts = ["", " ", "Smith", " Smith ", ", Smith;", "van der Berg", "Smith , Jr", "  A  B  ", "O'Brien", "Jean-Paul", None, 42]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    for text in texts:
        assert records_module._clean_name(text) == _clean_name_reference(text), repr(text)


def test_json_parts_are_joined_in_key_order_whatever_order_the_keys_come_in():
    """join_json_parts remembers each key set's sorted order: the same keys in another order, a subset, or a set
    seen before give json.dumps's text each time."""
    data = {
        "title": "T",
        "abstract": None,
        "authors": ["A B"],
        "extra": {"z": 1, "a": [2]},
        "year": 2024,
        "\u00e9": "x",
        "%s": "%",
    }
    parts = json_parts(data)
    assert parts == {k: json_value(v) for k, v in data.items()}
    key_sets = [list(data), list(reversed(data)), ["year", "title"], ["title", "year"], list(data), ["\u00e9"], ["%s"], []]
    for keys in key_sets * 2:
        expected = json.dumps({k: data[k] for k in keys}, sort_keys=True, ensure_ascii=False)
        assert join_json_parts(parts, keys) == expected
        assert join_json_parts(parts, iter(keys)) == expected


@pytest.mark.parametrize("seed", range(3))
def test_a_long_text_is_encoded_as_json_encodes_it(seed):
    """json_parts encodes a long ASCII text (an abstract) in a few passes over its bytes: the same JSON as json.dumps,
    whatever characters to escape it holds (newlines, quotes, backslashes, C0 controls, DEL, text beyond ASCII)."""
    rng = random.Random(seed)
    pieces = [
        "Ketamine ",
        "a",
        " ",
        "\n",
        "\n\n",
        '"',
        "\\",
        "\t",
        "\r",
        "\x00",
        "\x1f",
        "\x7f",
        "/",
        "'",
        "é",
        "\u2028",
        "\ud800",
    ]
    pieces.append("Results: the MADRS score fell within 24 hours. " * 3)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        expected = json.dumps(text, ensure_ascii=False)
        assert json_parts({"abstract": text})["abstract"] == expected, repr(text)
        assert json_value(text) == expected


@pytest.mark.parametrize("seed", range(3))
def test_an_abstract_s_sections_are_encoded_as_json_encodes_them(seed):
    """json_parts encodes the abstract's sections without looking at each character of a text found in a clean
    abstract: the same JSON as json.dumps for sections whose texts are in the abstract or not, with or without
    characters to escape (in the text, in the abstract elsewhere), labels and categories None or texts, sections of
    another shape or with values that are not texts, and abstracts that are not texts or come after their sections."""
    rng = random.Random(seed)
    pieces = ["Ketamine ", "a", " ", "\n", '"', "\\", "\t", "\x00", "\x7f", "é", "\u2028", "\ud800", "MADRS fell. " * 5]
    labels = [None, "METHODS", "Results", 'Odd "label"\n', "", 7]
    dumps = functools.partial(json.dumps, sort_keys=True, ensure_ascii=False)
    for _ in range(3000):
        sections = []
        for _ in range(rng.randint(0, 5)):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
            section = {"label": rng.choice(labels), "category": rng.choice(labels[:4]), "text": text}
            if rng.random() < 0.05:
                section = rng.choice([{"text": text}, {**section, "extra": 1}, {**section, "text": 3}, [text], text])
            elif rng.random() < 0.1:
                section = {"text": section["text"], "category": section["category"], "label": section["label"]}
            sections.append(section)
        texts = [s["text"] for s in sections if isinstance(s, dict) and type(s.get("text")) is str]
        try:
            flat = flatten(sections)  # (as a source's abstract is made from its sections)
        except (AttributeError, TypeError):
            flat = None
        abstract = rng.choice(
            [
                flat,
                flat,
                "\n\n".join(texts),
                "\n\n".join(f"X: {t}" for t in texts) + rng.choice(["", '"', "\t", "\n"]),
                "\n\n".join(texts[:1]),
                None,
                "",
                "other",
            ]
        )
        data = {"abstract": abstract, "abstract_sections": sections}
        expected = dumps(sections)
        assert json_parts(data)["abstract_sections"] == expected, repr(data)
        assert json_parts(dict(reversed(data.items())))["abstract_sections"] == expected, repr(data)


def test_an_authors_dict_holds_its_set_fields_in_field_order():
    """Author.to_dict: the fields neither None nor empty, in field order (what its comprehension gave before)."""
    rng = random.Random(5)
    names = ("family", "given", "initials", "collective", "suffix")
    for _ in range(500):
        values = [rng.choice((None, "", "Osei", "H", "Jr", "STAR*D Group")) for _ in names]
        author = object.__new__(Author)  # as stored, without __post_init__ filling the initials
        author.__dict__.update(zip(names, values, strict=True))
        expected = {k: v for k, v in zip(names, values, strict=True) if v}
        assert author.to_dict() == expected
        assert list(author.to_dict()) == list(expected)


@pytest.mark.parametrize("seed", range(2))
def test_authors_json_is_what_json_dumps_writes_of_their_dicts(seed, monkeypatch):
    """The structured authors' JSON, remembered per author: the ``structured_authors`` column (each author's set
    fields) and the record dict's part (every field, None included) are json.dumps's text of the dicts, whatever
    the fields hold (escapes, text beyond ASCII, empty, None, values that are not text, a str subclass), the same
    author seen again, the memo emptied when full, and a list that is not five-key author dicts."""
    monkeypatch.setattr(records_module, "AUTHOR_JSON_SIZE", 40)

    class Text(str):
        pass

    rng = random.Random(seed)
    values = [None, "", "Osei", "H", "Jr", "é", 'Q "x" \\ \n\t\x00 \u2028 \ud800', "Grupo de Estudio", 7, 0, Text("S")]
    names = ("family", "given", "initials", "collective", "suffix")
    dumps = lambda value: json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)  # noqa: E731
    for _ in range(1500):
        authors = []
        for _ in range(rng.randint(0, 4)):
            author = object.__new__(Author)  # any field values, as a source may leave them
            author.__dict__.update(zip(names, (rng.choice(values) for _ in names), strict=True))
            authors.append(author)
        record = Record(source="pubmed", source_id="1", record_type="article", title="T", structured_authors=authors)
        data = record.to_dict()
        assert records_module.authors_json(authors) == dumps([a.to_dict() for a in authors])
        assert json_parts(data)["structured_authors"] == dumps(data["structured_authors"])
    odd = [[{"family": "A"}], [{"family": "A", "given": None, "initials": None, "collective": None, "x": None}], ["A"], [None]]
    odd.append([{"family": "A", "given": None, "initials": None, "collective": None, "suffix": [1]}])
    for value in odd:
        assert json_parts({"structured_authors": value})["structured_authors"] == dumps(value)
    assert 0 < len(records_module._AUTHOR_JSON) <= 40


def test_a_record_s_sections_are_copied_as_asdict_copies_them():
    """to_dict copies a section of atoms with dict.copy, any other as before: equal to asdict's, never shared."""
    sections = [
        {"label": "Methods", "category": "METHODS", "text": "x"},
        {"label": None, "category": None, "text": "y", "n": 3, "ok": True, "p": 0.5},
        {"label": "L", "nested": ["a", {"b": 1}]},
        "a text",
    ]
    record = Record(source="pubmed", source_id="1", record_type="article", title="T", abstract_sections=sections)
    data = record.to_dict()
    assert data["abstract_sections"] == _asdict_reference(record)["abstract_sections"] == sections
    assert [list(s) for s in data["abstract_sections"][:3]] == [list(s) for s in sections[:3]]
    data["abstract_sections"][0]["text"] = "changed"
    data["abstract_sections"][2]["nested"][1]["b"] = 2
    assert sections[0]["text"] == "x" and sections[2]["nested"][1]["b"] == 1


def test_a_record_s_extra_and_identifiers_are_copied_as_asdict_copies_them():
    """to_dict copies an extra of atoms with dict.copy and keeps an identifier's pair of atoms (a tuple), any other
    as before: equal to asdict's (keys in their order, types kept), never sharing what can change."""
    extras = [
        {"status": "MEDLINE", "volume": None, "n": 3, "ok": True, "p": 0.5},
        {"status": "x", "unresolved_comments_corrections": [{"relation": "comment_in", "ref_source": "J"}]},
        {"nested": {"a": ("b", 1)}, "date": dt.date(2024, 3, 5)},
        {},
    ]
    for extra in extras:
        record = Record(source="pubmed", source_id="1", record_type="article", title="T", extra=extra)
        record.identifiers = [("pmid", "1"), ("doi", "10.1/x"), ("odd", ["a", 1]), ("n", 2, None)]
        data = record.to_dict()
        reference = _asdict_reference(record)
        assert data["extra"] == reference["extra"] == extra and list(data["extra"]) == list(extra)
        assert data["extra"] is not extra
        assert data["identifiers"] == reference["identifiers"] == record.identifiers
        assert [type(pair) for pair in data["identifiers"]] == [tuple] * 4
        assert data["identifiers"][2][1] is not record.identifiers[2][1]  # (a list in a pair: copied)
        if "unresolved_comments_corrections" in extra:
            data["extra"]["unresolved_comments_corrections"][0]["relation"] = "changed"
            assert extra["unresolved_comments_corrections"][0]["relation"] == "comment_in"
