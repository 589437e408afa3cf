"""crawler.matching's pure side: title keys and record kinds are what they were before their shortcuts.

A fingerprint's title key and kind are stored (``record_fingerprints``) and compared with those of every later
record: the shortcuts that skip an expression where it cannot match must give the same text, the same kind.
"""

from __future__ import annotations

import html
import random
import re

import pytest

from crawler import matching
from crawler.matching import (
    _ABBREVIATION_RE,
    _COMMENT_TITLE_RE,
    _NON_ALNUM_RE,
    _PROTOCOL_TITLE_RE,
    _QUOTES_RE,
    COMMENT_RELATIONS,
    GREEK,
    NOTICE_RELATIONS,
    SEPARATOR,
    SYNONYMS,
    _strip_accents,
)
from crawler.sources.parsing import TAG_RE, notice_kind, remove_retraction_mark
from tests.helpers import dedup_corpus

#: The subtitle separator as it was written before its lookahead (tried at every position of the title).
_SEPARATOR_RE = re.compile(r"\s*(?::|\?|!|(?<=\w\w)\.\s|;\s|\s[-\u2010-\u2015\u2212]+\s)\s*")


def normalize_title_reference(title: str | None) -> str:
    """matching.normalize_title before its shortcuts (each expression run on every title)."""
    if not title:
        return ""
    text = str(title)
    if "<" in text:
        text = TAG_RE.sub("", text)
    text = html.unescape(html.unescape(text))
    if "<" in text:
        text = TAG_RE.sub("", text)
    text = remove_retraction_mark(text)
    if not text.isascii():
        text = _strip_accents("".join(GREEK.get(ch, ch) for ch in text))
    text = text.lower()
    text = _QUOTES_RE.sub("", text).replace("&", " and ")
    if "." in text:
        text = _ABBREVIATION_RE.sub(r"\1", text)
    text = _SEPARATOR_RE.sub(f" {SEPARATOR} ", text.strip())
    tokens = [SYNONYMS.get(t, t) for t in _NON_ALNUM_RE.sub(" ", text).split()]
    # no separator first, none after another, none last (the same tokens as the old loop kept)
    kept = [t for i, t in enumerate(tokens) if t != SEPARATOR or (i and tokens[i - 1] != SEPARATOR)]
    return re.sub(r"(?: \|)+$", "", " ".join(kept))


def record_kind_reference(record_type, title, publication_types=(), relations=()) -> str:
    """matching.record_kind before its shortcuts (each expression searched over the whole title), the first
    kind whose test holds."""
    types = {str(t).strip().lower() for t in publication_types}
    stated = set(relations)
    raw = title or ""
    tests = (
        (record_type in ("trial_registration", "news", "notice"), record_type),
        (bool(notice_kind(raw) or stated & NOTICE_RELATIONS), "notice"),
        (bool(_COMMENT_TITLE_RE.search(raw) or "comment" in types or stated & COMMENT_RELATIONS), "comment"),
        (bool(_PROTOCOL_TITLE_RE.search(raw) or "clinical trial protocol" in types), "protocol"),
        (record_type == "preprint", "preprint"),
    )
    return next((kind for holds, kind in tests if holds), "article")


#: Pieces of hostile and ordinary titles: every character the expressions look at, in each case and spacing.
PIECES = [
    "Ketamine",
    "esketamine",
    "in",
    "TRD",
    "vs.",
    "Vs. ",
    "et al.",
    "No. 3",
    "fig.",
    "e.g.",
    "approx.",
    "dr.",
    "st.",
    ":",
    " : ",
    "?",
    "!",
    ";",
    "; ",
    ".",
    ". ",
    ".\t",
    ".\x1c",
    "-",
    " - ",
    " -",
    "\t-",
    "\x1f-- ",
    "\u2013",
    " \u2014 ",
    " \u2212 ",
    "\u00a0-\u00a0",
    "\u2009",
    "treatment-resistant",
    "a",
    "the",
    "&",
    "&amp;",
    "&amp;amp;",
    "&lt;i&gt;",
    "<i>",
    "</i>",
    "<sup>2</sup>",
    "'",
    "\u2019s",
    "\u201crandomised\u201d",
    "`",
    '"',
    "|",
    "TNF-\u03b1",
    "\u0392",
    "caf\u00e9",
    "e\u0301",
    "\u00df",
    "\u4e2d\u6587",
    "\u017f",
    "\u212a",
    "\u0130",
    "\u0131",
    "  ",
    " ",
    "\n",
    "Reply",
    "reply to",
    "REPLY",
    "response",
    "Response to",
    "(reply)",
    "[Response]",
    " comment",
    "Comment on",
    "comments to",
    "Commentary on",
    "Re:",
    "re :",
    "In reply",
    "Author's reply",
    "authors reply",
    "Author response",
    "Letter to the editor regarding",
    "protocol",
    "PROTOCOL",
    "protocols",
    "rationale and design",
    "Rationale and study design",
    "design and rationale",
    "statistical analysis plan",
    "Statistical  Analysis\tPlan",
    "[Retracted]",
    "RETRACTED:",
    "Erratum:",
    "Correction to",
    "Expression of concern:",
    "(",
    ")",
    "[",
    "]",
    "2024",
    "12-month",
]


def _random_titles(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    titles = []
    for _ in range(count):
        pieces = [rng.choice(PIECES) for _ in range(rng.randint(1, 9))]
        joiners = [rng.choice((" ", "", " ", "  ", "\t")) for _ in pieces]
        titles.append("".join(p + j for p, j in zip(pieces, joiners, strict=True)).strip(rng.choice(("", " "))))
    return titles


@pytest.mark.parametrize("seed", range(4))
def test_title_keys_and_kinds_equal_the_reference_on_random_hostile_titles(seed):
    for title in _random_titles(3000, seed):
        assert matching.normalize_title(title) == normalize_title_reference(title), repr(title)
        for record_type in ("article", "preprint"):
            assert matching.record_kind(record_type, title) == record_kind_reference(record_type, title), repr(title)


@pytest.mark.parametrize("seed", range(4))
def test_the_subtitle_separator_matches_what_it_matched_before_its_lookahead(seed):
    """The same matches, at the same places, as the expression without its lookahead and with its look back first:
    on raw random titles (any case, every white space and word character around the separators, not lower-cased)."""
    rng = random.Random(seed)
    extra = ["\u3000", "\x1c", "\x0b", "_", "\u00e9", "\u0661", "\u00b2", "..", "a.", "_.", "\u00e9\u00e9. ", " ? ", "\n:\n"]
    titles = _random_titles(3000, seed) + [
        "".join(rng.choice(PIECES + extra) for _ in range(rng.randint(1, 12))) for _ in range(3000)
    ]
    for title in titles:
        for text in (title, title.lower()):
            new = [m.span() for m in matching._SEPARATOR_RE.finditer(text)]
            assert new == [m.span() for m in _SEPARATOR_RE.finditer(text)], repr(text)
            assert matching._SEPARATOR_RE.sub(" | ", text) == _SEPARATOR_RE.sub(" | ", text), repr(text)


def test_title_keys_and_kinds_equal_the_reference_on_the_dedup_corpus():
    """Every record of the labelled deduplication corpus (every source's wire format)."""
    seen = 0
    for _name, records in dedup_corpus.parse_batches():
        for record in records:
            seen += 1
            title, types, relations = record.title, record.publication_types, [link.relation for link in record.links]
            assert matching.normalize_title(title) == normalize_title_reference(title), repr(title)
            expected = record_kind_reference(record.record_type, title, types, relations)
            assert matching.record_kind(record.record_type, title, types, relations) == expected, repr(title)
    assert seen > 100


def test_each_shortcut_still_finds_what_the_expression_finds():
    """Titles that need the expression: a subtitle, an abbreviation, a comment or protocol title in any case."""
    assert matching.normalize_title("Ketamine vs. placebo - a trial: results") == "ketamine versus placebo | a trial | results"
    assert matching.normalize_title("Ketamine-assisted therapy; a review") == "ketamine assisted therapy | a review"
    assert matching.normalize_title("Is it? Yes") == "is it | yes"
    assert matching.normalize_title("Ketamine \u2013 a review") == "ketamine | a review"
    assert matching.normalize_title("Plain ketamine title.") == "plain ketamine title"
    assert matching.record_kind("article", "Reply to Smith et al.") == "comment"
    assert matching.record_kind("article", "Ketamine and depression (Reply)") == "comment"
    assert matching.record_kind("article", "Re: ketamine") == "comment"
    assert matching.record_kind("article", "Ketamine for TRD: STUDY PROTOCOL") == "protocol"
    assert matching.record_kind("article", "Ketamine trial: rationale and design") == "protocol"
    assert matching.record_kind("article", "Ketamine for TRD") == "article"
    assert re.fullmatch(r"[a-z0-9| ]*", matching.normalize_title("Ketamine, (S)-ketamine & R/S mixtures [sic]."))


def _blocking_keys_reference(fp) -> tuple[str, ...]:
    """matching._blocking_keys before its shortcut (the title before its subtitle read again when it has none)."""
    if fp.kind not in matching.FUZZY_MERGE_KINDS:
        return ()
    words = [matching._key_word(w) for w in matching.content_tokens(fp.title_key)]
    if not words:
        return ()
    compact = "".join(words)
    before = fp.title_key.split(f" {SEPARATOR} ")[0]
    head = "".join(matching._key_word(w) for w in matching.content_tokens(before)) or compact
    keys = []
    for author in matching.author_keys(fp.surnames, fp.author_words)[:3]:
        for letters in (compact[: matching.KEY_LETTERS], compact[-matching.KEY_LETTERS :], head[-matching.KEY_LETTERS :]):
            keys.append(f"a:{author}:{letters}")
    if len(words) >= matching.MIN_TOKENS_WITHOUT_AUTHOR and fp.year is not None:
        keys.append("t:" + matching.hashlib.blake2b(compact.encode(), digest_size=8).hexdigest())
    return tuple(dict.fromkeys(keys))


#: Author strings, including blank ones, groups and names that are not text.
_AUTHOR_PIECES = [
    "Anand Amit",
    "Osei H",
    "",
    " ",
    "\t",
    "STAR*D Investigators",
    "Ketamine Study Group",
    "van der Berg J",
    7,
    None,
]


@pytest.mark.parametrize("seed", range(2))
def test_fingerprints_and_blocking_keys_equal_the_reference(seed):
    """A fingerprint's first author (the first not blank and not a group) and the blocking keys, on random hostile
    titles and author lists, and on raw title keys with and without a subtitle."""
    rng = random.Random(seed)
    for title in _random_titles(1500, seed):
        authors = [rng.choice(_AUTHOR_PIECES) for _ in range(rng.randint(0, 4))]
        people = [a for a in authors if a and str(a).strip()]
        first = next((a for a in people if not matching._COLLECTIVE_RE.search(str(a))), None)
        fp = matching.fingerprint("pubmed", "article", title, authors, "2024-01-02")
        assert fp.surnames == matching.author_surnames(first, "pubmed"), repr(authors)
        assert fp.author_words == matching.author_words(first), repr(authors)
        assert matching._blocking_keys(fp) == _blocking_keys_reference(fp), repr(title)
        for key in (fp.title_key, f"{fp.title_key} | x", f"| {fp.title_key}", fp.title_key.replace(" ", "  ")):
            raw = matching.Fingerprint(fp.kind, key, fp.surnames, fp.year, fp.author_words)
            assert matching._blocking_keys(raw) == _blocking_keys_reference(raw), repr(key)


@pytest.mark.parametrize("seed", range(2))
def test_a_group_s_name_is_found_where_the_expression_finds_one(seed):
    """matching._collective (no search of an ASCII name without one of the group words' stems) says what the
    expression says: on random names made of those words in any case, parts of them, word characters around them,
    and text beyond ASCII."""
    rng = random.Random(seed)
    pieces = [
        *matching._COLLECTIVE_STEMS,
        *(stem.upper() for stem in matching._COLLECTIVE_STEMS),
        "Investigators",
        "COLLABORATIVE",
        "Collaborators",
        "Teams",
        "Stud",
        "grou",
        "Osei",
        "H",
        " ",
        "-",
        "_",
        "*",
        "1",
        "\u00e9",
        "\u017f",  # a long s: "ſtudy" matches "study" when the case is ignored
        "\u212a",
    ]
    for _ in range(20000):
        name = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
        assert matching._collective(name) == (matching._COLLECTIVE_RE.search(name) is not None), repr(name)


def test_a_person_key_is_what_the_expression_made_of_an_ascii_family_name():
    """matching._person_key deletes the characters of an ASCII family name outside a-z and 0-9 from its bytes: the
    same key as the expression, on random names of every ASCII character and some beyond."""
    rng = random.Random(3)
    alphabet = [chr(c) for c in range(128)] + ["\u00e9", "\u00d8", "\u0141", "e\u0301", "\u00df"]
    for _ in range(20000):
        family = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        initial = rng.choice(["", "J", "j", "\u00c9", " "])
        reference = matching._NOT_ALNUM.sub("", matching._strip_accents(family).lower())
        expected = f"{reference} {matching._strip_accents(initial).lower()}".strip() if reference else ""
        assert matching._person_key.__wrapped__(family, initial) == expected, repr(family)
