"""The source helpers every parser shares (crawler/sources/parsing.py), including where the old copies disagreed."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from crawler.errors import SourceError
from crawler.sources import parsing
from crawler.sources.parsing import (
    JsonStream,
    decode_json,
    has_retraction_mark,
    mentions_notice,
    notice_kind,
    parse_date,
    parse_int,
    strip_tags,
)

# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "[pubmed] expected JSON but got an empty body"),
        (b"  \n", "[pubmed] expected JSON but got an empty body"),
        (
            b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>",
            "[pubmed] expected JSON but got an HTML page titled '502 Bad Gateway': '<!DOCTYPE html>",
        ),
        (b'{"esearchresult": {"count": "3"', '[pubmed] expected JSON but got malformed JSON: \'{"esearchresult"'),
    ],
)
def test_decode_json_says_what_came_instead(body, message):
    with pytest.raises(SourceError) as caught:
        decode_json(body, "pubmed", url="https://eutils.example/esearch")
    assert str(caught.value).startswith(message)
    assert "https://eutils.example/esearch" in str(caught.value) and "check: the base_url" in str(caught.value)


def test_decode_json_names_the_status_and_the_content_type():
    with pytest.raises(SourceError, match=r"^\[crossref\] HTTP 404: expected JSON but got 'text/plain' content: 'Resource"):
        decode_json(b"Resource not found.", "crossref", status=404, content_type="text/plain")
    assert decode_json(b'{"a": [1, 2]}', "crossref", status=200) == {"a": [1, 2]}
    assert decode_json(b"null", "x") is None


def test_json_stream_gives_the_envelope_then_the_items_one_at_a_time():
    body = b'{"status": "ok", "message": {"next-cursor": "c2", "items": [{"a": 1.5, "b": [1, [2]]}, 7], "total": 2}}'
    stream = JsonStream(body, "crossref", "message.items")
    assert stream.envelope == {"status": "ok", "message": {"next-cursor": "c2", "items": [], "total": 2}}
    assert list(stream.items()) == [{"a": 1.5, "b": [1, [2]]}, 7] == decode_json(body, "x")["message"]["items"]
    assert stream.count == 2
    top = JsonStream(b'\xef\xbb\xbf[{"id": 1}, {"id": 2}]', "x", "")  # a top-level array, after a byte order mark
    assert top.envelope == [] and [i["id"] for i in top.items()] == [1, 2]
    other = JsonStream(b'{"message": {"items": {"not": "a list"}}}', "x", "message.items")
    assert other.envelope == {"message": {"items": {"not": "a list"}}} and list(other.items()) == []


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "[crossref] expected JSON but got an empty body"),
        (b"<!DOCTYPE html><html><title>Busy</title></html>", "[crossref] expected JSON but got an HTML page titled 'Busy'"),
        # malformed after many good items: the envelope pass reads the whole document before any item is given
        (
            b'{"message": {"items": [' + b'{"DOI": "10.1/a"},' * 60 + b'{"DOI": ; }]}}',
            "[crossref] expected JSON but got malformed JSON (lexical error",
        ),
        (
            b'{"message": {"items": [{"DOI": "10.1/a"}',
            "[crossref] expected JSON but got malformed JSON (parse error: premature EOF",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "[crossref] expected JSON but got a document nested more than 512 levels deep"),
    ],
)
def test_json_stream_says_what_came_instead(body, message):
    with pytest.raises(SourceError) as caught:
        JsonStream(body, "crossref", "message.items", url="https://api.example/works")
    assert str(caught.value).startswith(message)
    assert "https://api.example/works" in str(caught.value) and "check:" in str(caught.value)


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "value, iso",
    [
        # ISO of any precision, date-times, other separators
        ("2024", "2024"),
        ("2024-03", "2024-03"),
        ("2024-3-5", "2024-03-05"),
        ("2024-03-05T07:00:00Z", "2024-03-05"),
        ("2024/03/05", "2024-03-05"),
        (" 2024-03-05 ", "2024-03-05"),
        # MM/DD/YYYY and MM-DD-YYYY: US month first, day first only when the first number is over 12
        ("03/05/2024", "2024-03-05"),
        ("03-05-2024", "2024-03-05"),
        ("25/03/2024", "2024-03-25"),
        ("13-13-2025", None),
        ("08-28/2025", None),
        # names, RFC 822, text around a date
        ("March 5, 2024", "2024-03-05"),
        ("5 March 2024", "2024-03-05"),
        ("Sept. 2024", "2024-09"),
        ("Sun, 12 Sep 2021 11:07:48 -0700", "2021-09-12"),
        ("Posted 11/28/2023 by FDA", "2023-11-28"),
        # MedlineDate and seasons (PubMed)
        ("2024 Jan-Feb", "2024-01"),
        ("1998 Dec-1999 Jan", "1998-12"),
        ("2023 Winter", "2023-12"),
        ("2024 Jan 5", "2024-01-05"),
        ("2019-2020", "2019"),
        ("Spring 2020", None),
        # impossible or no dates
        ("2024-13", None),
        ("2024-02-30", None),
        ("Posted 31 February 2024", None),
        ("1066", None),
        ("last Tuesday", None),
        ("", None),
        (None, None),
        (True, None),
        (20240305, None),
    ],
)
def test_parse_date_reads_every_form_the_sources_send(value, iso):
    assert parse_date(value) == iso


@pytest.mark.parametrize(
    "parts, iso",
    [
        ([2019, 4, 3], "2019-04-03"),  # Crossref date-parts
        ([2019, 4], "2019-04"),
        (["2020", "1", "5"], "2020-01-05"),
        ([2021, 2, 30], "2021-02"),  # parts keep their valid leading parts (Crossref means the month)
        ([2021, 13], "2021"),
        ([None], None),
        ([], None),
        (("2024", "Mar", "5"), "2024-03-05"),  # PubMed Year/Month/Day
        (("2023", "Summer", None), "2023-06"),  # PubMed Season
        (("2024", None, None), "2024"),
    ],
)
def test_parse_date_of_parts(parts, iso):
    assert parse_date(parts) == iso


def test_parse_date_of_date_objects_and_feedparser_times():
    assert parse_date(dt.date(2024, 3, 5)) == "2024-03-05"
    assert parse_date(dt.datetime(2024, 3, 5, 23, 0, tzinfo=dt.UTC)) == "2024-03-05"
    assert parse_date(time.strptime("2024-03-05 23:30", "%Y-%m-%d %H:%M")) == "2024-03-05"


@pytest.mark.parametrize(
    "value, iso",
    [
        ("14/11/2026", "2026-11-14"),
        ("3/4/2025", "2025-04-03"),
        ("11/28/2023", "2023-11-28"),  # the second number is over 12: it can only be the day
        ("31/02/2024", None),
        ("2024-03-18T10:15:00", "2024-03-18"),
    ],
)
def test_day_first_for_sources_that_write_dd_mm_yyyy(value, iso):
    assert parse_date(value, day_first=True) == iso


def test_earliest_date_compares_partial_dates_padded():
    assert parsing.earliest_date("2024", "2023-12-01", None) == "2023-12-01"
    assert parsing.earliest_date("2024-03", "2024-03-05") == "2024-03-05"
    assert parsing.earliest_date(None, None) is None


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "value, number",
    [
        (12, 12),
        ("12", 12),
        (" 1,200 ", 1200),
        ("-3", -3),
        (12.0, 12),
        (12.5, None),
        (True, None),
        (None, None),
        ("12 participants", None),
        ("", None),
        ([1], None),
    ],
)
def test_parse_int(value, number):
    assert parse_int(value) == number


@pytest.mark.parametrize(
    "text, number",
    [("Approximately 1,200 participants", 1200), ("60", 60), ("Planned: 40; UK: 20", 40), ("not stated", None)],
)
def test_parse_int_in_free_text(text, number):
    assert parse_int(text, in_text=True) == number


# --------------------------------------------------------------------------- markup


@pytest.mark.parametrize(
    "raw, plain",
    [
        ("H<sub>2</sub>O &amp; NMDA", "H2O & NMDA"),
        ("x<y and y>z", "x<y and y>z"),
        ("at p < .001 and p &lt; 0.05", "at p < .001 and p < 0.05"),
        ('<span class="a">ket</span>amine', "ketamine"),
        ("<p>one</p><p>two</p>", "one two"),
        (
            "<jats:sec><jats:title>Background</jats:title><jats:p>Ketamine <jats:italic>works</jats:italic>.</jats:p></jats:sec>",
            "Background Ketamine works.",
        ),
        ('<a href="/x?a=1&amp;b=2" title="a > b">link</a>', "link"),
        ("one<!-- hidden -->two<script>alert(1)</script><style>p{}</style>", "one two"),
        (None, ""),
    ],
)
def test_strip_tags(raw, plain):
    assert strip_tags(raw) == plain


def test_strip_tags_keeps_paragraphs_and_headings_when_asked():
    raw = "<h4>Objective</h4><p>To test.</p><h4>Results</h4><p>It works.</p>"
    assert strip_tags(raw, headings=True) == "Objective: To test. Results: It works."
    assert strip_tags("<p>One.</p><p>Two.</p>", paragraphs=True) == "One.\n\nTwo."


def test_strip_tags_with_inline_space_separates_glued_words():
    raw = "Is there a Relation between<i>Chlamydia</i>Infection ( <i>CI</i> ) ?"
    assert strip_tags(raw) == "Is there a Relation betweenChlamydiaInfection ( CI ) ?"
    assert strip_tags(raw, inline_space=True) == "Is there a Relation between Chlamydia Infection (CI) ?"


# --------------------------------------------------------------------------- notice titles


@pytest.mark.parametrize(
    "title, kind",
    [
        ("Retraction: Ketamine for depression", "retraction"),
        ("Notice of Retraction: Ketamine", "retraction"),
        ("Retraction Note to: Esketamine in adolescents", "retraction"),
        ("Retraction statement - ketamine", "retraction"),
        ("Withdrawal: Ketamine in mice", "withdrawal"),
        ("Correction to: Esketamine nasal spray", "correction"),
        ("Erratum", "correction"),
        ("Errata: Table 2", "correction"),
        ("Corrigendum for 'Ketamine'", "correction"),
        ("Corrigenda: A parasitic insect", "correction"),
        ("Addendum to a minimalist revision of Costa Rican Braconidae", "addendum"),
        ("Editorial Expression of Concern: Ketamine microdosing", "expression_of_concern"),
        ("Expression of concern \u2013 ketamine", "expression_of_concern"),
        # ordinary titles: "of" introduces their subject; no separator after the word
        ("Correction of hyponatraemia after ketamine", None),
        ("Retraction of the tongue under ketamine anaesthesia", None),
        ("Withdrawal symptoms after ketamine", None),
        ("RETRACTED: Ketamine for depression", None),
        ("", None),
        (None, None),
    ],
)
def test_notice_kind(title, kind):
    assert notice_kind(title) == kind


def test_retraction_marks_and_notice_words():
    assert has_retraction_mark("RETRACTED: Ketamine for depression")
    assert has_retraction_mark("Retracted article: Ketamine") and has_retraction_mark("WITHDRAWN: Ketamine")
    assert not has_retraction_mark("Retraction: Ketamine")
    assert parsing.remove_retraction_mark("RETRACTED ARTICLE: Ketamine") == "Ketamine"
    assert mentions_notice("Retraction Notes") and mentions_notice("Errata") and mentions_notice("Addenda to Addendum")
    assert not mentions_notice("Original Investigation")
