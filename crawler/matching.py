"""Fuzzy identity of records, without a database: normalised titles, author names, fingerprints,
blocking keys and the comparison rules that :mod:`crawler.dedup` applies to stored records.

Everything here is a pure function of its arguments (the rules are described in :mod:`crawler.dedup`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

from crawler.sources.parsing import TAG_RE, notice_kind, remove_retraction_mark
from crawler.store.candidates import key_hash

#: Kinds that may be merged on title + author + year (two records of the same kind).
FUZZY_MERGE_KINDS = ("article", "preprint", "comment", "protocol")
#: Minimal rapidfuzz ratio (0-100) of two normalised titles, unless only a subtitle differs.
TITLE_MIN_RATIO = 90
#: Content words (not stop words) a title needs to match a record without authors, and the
#: shorter title needs when one title is the other without its subtitle.
MIN_TOKENS_WITHOUT_AUTHOR = 8
MIN_TOKENS_FOR_SUBTITLE = 4
#: Years apart a record may be from its match: same work / preprint and its published version.
MERGE_YEAR_WINDOW = 1
LINK_YEAR_WINDOW = 2
#: Most candidate records compared per record (the best-blocked first).
MAX_CANDIDATES = 300
#: Most records read from one blocking key's group; a larger group (pathological data, e.g. hundreds
#: of untitled letters by one author) is cut there and logged. Real groups stay far below.
MAX_BLOCK = 200

#: record_links relation -> (work link type, True when the link points from the stating record's work)
LINK_TYPES: dict[str, tuple[str, bool]] = {
    "preprint_of": ("preprint_of", True),
    "has_preprint": ("preprint_of", False),
    "version_of": ("version_of", True),
    "registered_as": ("registered_as", True),
    "result_publication": ("registered_as", False),
    "reference": ("registered_as", False),  # BACKGROUND references: see link_type_of
    "same_trial": ("same_trial", True),
    "retraction_of": ("retraction_of", True),
    "retraction_in": ("retraction_of", False),
    "erratum_for": ("correction_of", True),
    "erratum_in": ("correction_of", False),
    "correction_for": ("correction_of", True),
    "correction_in": ("correction_of", False),
    "expression_of_concern_for": ("expression_of_concern_of", True),
    "expression_of_concern_in": ("expression_of_concern_of", False),
    "comment_on": ("comment_on", True),
    "comment_in": ("comment_on", False),
    "update_of": ("update_of", True),
    "update_in": ("update_of", False),
    "republished_from": ("republication_of", True),
    "republished_in": ("republication_of", False),
}

#: Words left out of blocking keys.
STOPWORDS = frozenset("a an the of in on for and or with to at by from as into via versus its their is are".split())
#: Words whose presence alone never makes two titles different ("A randomized trial" = "Randomized trial").
IGNORABLE = frozenset(("a", "an", "the"))
#: Tokens spelled two ways by sources.
SYNONYMS = {"vs": "versus"}
SEPARATOR = "|"

GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "ζ": "zeta",
    "η": "eta",
    "θ": "theta",
    "ι": "iota",
    "κ": "kappa",
    "λ": "lambda",
    "μ": "mu",
    "µ": "mu",
    "ν": "nu",
    "ξ": "xi",
    "ο": "omicron",
    "π": "pi",
    "ρ": "rho",
    "σ": "sigma",
    "ς": "sigma",
    "τ": "tau",
    "υ": "upsilon",
    "φ": "phi",
    "ϕ": "phi",
    "χ": "chi",
    "ψ": "psi",
    "ω": "omega",
}
GREEK.update({k.upper(): v for k, v in list(GREEK.items()) if k.upper() != k})

_QUOTES_RE = re.compile(r"['\u2018\u2019\u201a\u201b\u2032\u00b4`\"\u201c\u201d\u201e\u2033]")
# a subtitle separator: colon, ?, !, ". " inside the title, or a dash with spaces around it. (The lookahead: every
# match starts with one of those characters or white space, so the expression is tried no further at any other
# position; and the "." is matched before the look back at the two word characters before it, not after.)
_SEPARATOR_RE = re.compile(r"(?=[\s:?!.;])\s*(?::|\?|!|\.(?<=\w\w\.)\s|;\s|\s[-\u2010-\u2015\u2212]+\s)\s*")
_ABBREVIATION_RE = re.compile(r"\b(vs|st|dr|al|no|vol|fig|eg|ie|approx)\.(?=\s)")
_NON_ALNUM_RE = re.compile(r"[^a-z0-9|]+")
_COMMENT_TITLE_RE = re.compile(
    r"^\W*(?:comments?\s+(?:on|to|about|regarding)|commentary\s+(?:on|to)|re\s*:|in\s+reply|reply(?:\s+to)?\b|"
    r"response\s+to|authors?\W?\s+reply|author\s+response|letter\s+to\s+the\s+editor\s+(?:on|regarding|about))"
    r"|[\s(\[]\s*(?:reply|response|comment)\s*[)\]]?\s*\.?$",
    re.I,
)
_PROTOCOL_TITLE_RE = re.compile(
    r"\bprotocol\b|\brationale\s+and\s+(?:study\s+)?design\b|\bdesign\s+and\s+rationale\b|"
    r"\bstatistical\s+analysis\s+plan\b",
    re.I,
)
_COLLECTIVE_RE = re.compile(
    r"\b(?:group|investigators?|consortium|collaborat\w*|network|team|committee|society|association|"
    r"working|trialists|study|writing|panel|initiative)\b",
    re.I,
)
#: Every word :data:`_COLLECTIVE_RE` matches starts with one of these (in lower case).
_COLLECTIVE_STEMS = (
    "group", "investigator", "consortium", "collaborat", "network", "team", "committee", "society", "association",
    "working", "trialists", "study", "writing", "panel", "initiative",
)  # fmt: skip
_INITIALS_RE = re.compile(r"^(?:[A-Z]{1,3}|(?:[A-Z]\.-?){1,3}|[A-Z]\.?[a-z]?\.)$")
_PARTICLES = frozenset("van von der den de del della di da le la du dos das ten ter mc st".split())
#: Name formats of each source's author strings ("given family" or "family given/initials").
_GIVEN_FIRST = ("crossref", "openalex")
_FAMILY_FIRST = ("pubmed", "europepmc", "biorxiv")


# --------------------------------------------------------------------------- normalisation (pure)


def normalize_title(title: str | None) -> str:
    """A title as comparable tokens: lower-case ASCII words, ``|`` where a subtitle starts.

    >>> normalize_title("<i>TNF-α</i> and ketamine’s effect – a “randomised” trial.")
    'tnf alpha and ketamines effect | a randomised trial'
    """
    if not title:
        return ""
    text = str(title)
    if "<" in text:  # (a tag starts with one: most titles have none)
        text = TAG_RE.sub("", text)
    text = html.unescape(html.unescape(text))
    if "<" in text:
        text = TAG_RE.sub("", text)
    text = remove_retraction_mark(text)  # an Elsevier-style retracted article keeps its title behind the mark
    if not text.isascii():
        text = _strip_accents("".join(GREEK.get(ch, ch) for ch in text))
    text = text.lower()
    if not text.isascii() or "'" in text or '"' in text or "`" in text:  # (the only quotes an ASCII title can hold)
        text = _QUOTES_RE.sub("", text)
    text = text.replace("&", " and ")
    if "." in text and _dot_before_space(text):  # (an abbreviation ends with one, and a space follows)
        text = _ABBREVIATION_RE.sub(r"\1", text)
    text = text.strip()
    if not text.isascii():
        text = _SEPARATOR_RE.sub(f" {SEPARATOR} ", text)
    else:  # the expression is tried at every position it is searched from: only from where a match can start
        start = _separator_start(text)
        if start >= 0:  # (a plain title without a subtitle has no separator)
            text = text[:start] + _SEPARATOR_RE.sub(f" {SEPARATOR} ", text[start:])
    if text.isascii():
        words = text.encode("ascii").translate(_ASCII_NON_ALNUM).decode("ascii").split()
    else:
        words = _NON_ALNUM_RE.sub(" ", text).split()
    tokens = [SYNONYMS.get(t, t) for t in words] if not SYNONYMS.keys().isdisjoint(words) else words
    if SEPARATOR not in tokens:  # (most titles: no subtitle) nothing to drop below
        return " ".join(tokens)
    cleaned: list[str] = []
    for token in tokens:
        if token == SEPARATOR and (not cleaned or cleaned[-1] == SEPARATOR):
            continue
        cleaned.append(token)
    while cleaned and cleaned[-1] == SEPARATOR:
        cleaned.pop()
    return " ".join(cleaned)


#: ``_NON_ALNUM_RE.sub(" ", text)`` of an ASCII text's bytes, a byte at a time (the same words once split): a table
#: of bytes.translate, a tenth of the instructions of str.translate's, which looks each character up in a dict.
_ASCII_NON_ALNUM = bytes(byte if chr(byte) in "abcdefghijklmnopqrstuvwxyz0123456789|" else 32 for byte in range(256))


def _dot_before_space(text: str) -> bool:
    """Whether a "." is followed by white space (what :data:`_ABBREVIATION_RE` needs to match)."""
    at = text.find(".")
    while at >= 0:
        if text[at + 1 : at + 2].isspace():
            return True
        at = text.find(".", at + 1)
    return False


def _separator_start(text: str) -> int:
    """Where :data:`_SEPARATOR_RE` may first match in this ASCII text, two characters early (-1: nowhere).

    Each match holds a ":", "?", "!" or ";", a "." followed by white space, or a "-" after white space, and starts at
    the white space before it, if any: the expression searched from two characters before that white space finds
    what it finds in the whole text (its look back at the two characters before a "." sees them; no match starts
    there, at a character that is neither white space nor one of those)."""
    start = len(text)  # the first of them found so far (each later search stops there)
    for mark in ":?!;":
        at = text.find(mark, 0, start)
        if at >= 0:
            start = at
    at = text.find(".", 0, start)
    while at >= 0:
        if text[at + 1 : at + 2].isspace():
            start = at
            break
        at = text.find(".", at + 1, start)
    at = text.find("-", 0, start)
    while at >= 0:
        if at and text[at - 1].isspace():
            start = at
            break
        at = text.find("-", at + 1, start)
    if start == len(text):
        return -1
    while start and text[start - 1].isspace():
        start -= 1
    return max(start - 2, 0)


def _collective(name: str) -> bool:
    """Whether ``_COLLECTIVE_RE`` finds a group's word in an author's name. In an ASCII name, it can find one only
    where the lower-cased name holds one of :data:`_COLLECTIVE_STEMS` (most names hold none: the expression, tried at
    every position of the name, is not run)."""
    if name.isascii():
        lowered = name.lower()
        if not any(map(lowered.__contains__, _COLLECTIVE_STEMS)):
            return False
    return _COLLECTIVE_RE.search(name) is not None


def content_tokens(title_key: str) -> list[str]:
    return [t for t in title_key.split() if t not in STOPWORDS and t != SEPARATOR]


#: Stated relations that make the stating record a notice or a comment, whatever its title says.
NOTICE_RELATIONS = frozenset(("retraction_of", "erratum_for", "correction_for", "expression_of_concern_for"))
COMMENT_RELATIONS = frozenset(("comment_on",))


def record_kind(record_type: str, title: str | None, publication_types: Iterable[str] = (), relations: Iterable[str] = ()) -> str:
    """article | preprint | comment | protocol | notice | trial_registration | news.

    From the source's record type, the title ("Erratum: …", "Reply to: …", "… protocol …"),
    publication types ("Comment", "Clinical Trial Protocol") and the links the record states
    (a record stating ``erratum_for`` is a notice, one stating ``comment_on`` a comment).
    """
    types = {str(t).strip().lower() for t in publication_types}
    relations = set(relations)
    if record_type in ("trial_registration", "news", "notice"):
        return record_type
    raw = title or ""
    if notice_kind(raw) or relations & NOTICE_RELATIONS:
        return "notice"
    if _comment_title(raw) or "comment" in types or relations & COMMENT_RELATIONS:
        return "comment"
    if _protocol_title(raw) or "clinical trial protocol" in types:
        return "protocol"
    if record_type == "preprint":
        return "preprint"
    return "article"


def _comment_title(title: str) -> bool:
    """``_COMMENT_TITLE_RE.search(title)``. In an ASCII title without "reply", "response" or "comment" (any case),
    its second branch cannot match anywhere, and its first is anchored at the start: only the start is tried."""
    if title.isascii():
        low = title.lower()
        if "reply" not in low and "response" not in low and "comment" not in low:
            return _COMMENT_TITLE_RE.match(title) is not None
    return _COMMENT_TITLE_RE.search(title) is not None


def _protocol_title(title: str) -> bool:
    """``_PROTOCOL_TITLE_RE.search(title)``; an ASCII title without "protocol", "rationale" or "statistical" (any case)
    cannot match (the expression's case-insensitive letters match only themselves in ASCII)."""
    if title.isascii():
        low = title.lower()
        if "protocol" not in low and "rationale" not in low and "statistical" not in low:
            return False
    return _PROTOCOL_TITLE_RE.search(title) is not None


def _strip_accents(text: str) -> str:
    if text.isascii():  # nothing to decompose (most names and titles): skip the per-character pass
        return text
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def author_surnames(name: str | None, source: str = "") -> tuple[str, ...]:
    """Possible surnames of one author string, as lower-case ASCII words.

    Sources write names differently: PubMed "Anand Amit", Europe PMC "Anand A", bioRxiv
    "Anand, A.", Crossref/OpenAlex "Amit Anand". Initials mark the surname's side; otherwise
    the source's known order does; a name of unknown order yields both ends.
    """
    if not name:
        return ()
    if type(name) is str:  # memoised: one author's name recurs across a topic's records
        return _author_surnames(name, source.split(":")[0])
    return _author_surnames.__wrapped__(name, source.split(":")[0])


@functools.lru_cache(maxsize=16384)
def _author_surnames(name: str, kind: str) -> tuple[str, ...]:
    text = _strip_accents(" ".join(str(name).split()))
    if "," in text:
        family = text.split(",", 1)[0]
    else:
        parts = text.split()
        if len(parts) == 1:
            family = parts[0]
        else:
            initials = [bool(_INITIALS_RE.match(p)) for p in parts]
            if kind == "pubmed":  # "LastName ForeName" (ForeName may end in initials: "Acevedo-Diaz Elia E")
                first = 0
                while first < len(parts) - 1 and parts[first].lower() in _PARTICLES:
                    first += 1
                family = " ".join(parts[: first + 1])
            elif initials[-1] and not all(initials):
                end = len(parts)
                while end > 0 and initials[end - 1]:
                    end -= 1
                family = " ".join(parts[:end])
            elif initials[0] and not all(initials):
                start = 0
                while start < len(parts) and initials[start]:
                    start += 1
                family = " ".join(parts[start:])
            elif kind in _GIVEN_FIRST:
                family = parts[-1]
            elif kind in _FAMILY_FIRST:
                family = parts[0] if parts[0].lower() not in _PARTICLES else " ".join(parts[:2])
            else:
                family = f"{parts[0]} {parts[-1]}"
    words = [w for w in _NOT_LOWER_RE.split(family.lower()) if len(w) >= 2 and w not in _PARTICLES]
    return tuple(dict.fromkeys(words))


def author_words(name: str | None) -> tuple[str, ...]:
    """Every word of an author's name, lower-case ASCII; initials ("JA", "J.-P.") as single letters."""
    if not name:
        return ()
    if type(name) is str:  # memoised, as author_surnames
        return _author_words(name)
    return _author_words.__wrapped__(name)


@functools.lru_cache(maxsize=16384)
def _author_words(name: str) -> tuple[str, ...]:
    words: list[str] = []
    for part in _strip_accents(" ".join(str(name).split())).replace(",", " ").split():
        if _INITIALS_RE.match(part) or (part.isupper() and len(part) <= 3):
            words.extend(ch.lower() for ch in part if ch.isalpha())
        else:
            words.extend(w for w in _NOT_LOWER_RE.split(part.lower()) if w and w not in _PARTICLES)
    return tuple(dict.fromkeys(words))


#: Compiled once (``re.split`` of a pattern's text looks it up in re's cache at each call).
_NOT_LOWER_RE = re.compile(r"[^a-z]+")


def given_initials(words: tuple[str, ...], surnames: set[str]) -> set[str]:
    """First letters of the name words that are not the (matched) surname."""
    return {w[0] for w in words if w not in surnames}


def author_keys(surnames: tuple[str, ...], words: tuple[str, ...]) -> list[str]:
    """``surname:initial`` for each possible surname of the first author (blocking keys).

    With a known name order the given names are the words outside the surname; when every word
    could be the surname (a feed's "Anna Kasul"), each reading pairs one end with the other's initial.
    """
    rest = [w for w in words if w not in surnames]
    keys = []
    for surname in surnames:
        given = rest or [w for w in words if w != surname]
        keys.append(f"{surname}:{given[0][0] if given else ''}")
    return keys


_YEAR_RE = re.compile(r"^\d{4}")


def year_of(*dates: str | None) -> int | None:
    for date in dates:
        if date and _YEAR_RE.match(str(date)):
            return int(str(date)[:4])
    return None


@dataclass(frozen=True)
class Fingerprint:
    """What fuzzy matching compares of one record."""

    kind: str
    title_key: str
    surnames: tuple[str, ...]
    year: int | None
    author_words: tuple[str, ...] = ()

    @property
    def first_author(self) -> str:
        return " ".join(self.surnames)

    @classmethod
    def from_row(cls, row: dict) -> Fingerprint:
        """From a ``record_fingerprints`` row (or a candidate row with its columns)."""
        return cls(
            row["kind"],
            row["title_key"],
            tuple((row["first_author"] or "").split()),
            row["year"],
            tuple((row["author_words"] or "").split()),
        )


def fingerprint(
    source: str,
    record_type: str,
    title: str | None,
    authors: list[str] | str | None,
    published_on: str | None,
    entered_on: str | None = None,
    publication_types: list[str] | str | None = None,
    relations: Iterable[str] | str | None = None,
) -> Fingerprint:
    if isinstance(authors, str):
        authors = json.loads(authors or "[]")
    if isinstance(publication_types, str):
        publication_types = json.loads(publication_types or "[]")
    first = None  # the first person among the authors (not blank, not a group)
    for a in authors or ():
        if a and str(a).strip() and not _collective(str(a)):
            first = a
            break
    if isinstance(relations, str):
        relations = relations.split(",")
    return Fingerprint(
        kind=record_kind(record_type, title, publication_types or [], relations or ()),
        title_key=normalize_title(title),
        surnames=author_surnames(first, source),
        year=year_of(published_on, entered_on),
        author_words=author_words(first),
    )


def _compact(tokens: list[str]) -> str:
    return "".join(tokens)


#: Letters of a title's start or end (content words run together) in an author's blocking keys.
KEY_LETTERS = 12


@functools.lru_cache(maxsize=65536)
def _key_word(word: str) -> str:
    """A title word as blocking keys see it: one spelling (randomised = randomized), no plural -s."""
    word = _spelling(word)
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def blocking_keys(fp: Fingerprint) -> list[str]:
    """Indexed keys that any likely match shares (see :func:`_blocking_keys`); a new list each call.

    Memoised per fingerprint: a record's keys are computed when it is saved, then looked up again
    for its merge and its link candidates."""
    return list(_blocking_keys(fp))


@functools.lru_cache(maxsize=4096)
def _blocking_keys(fp: Fingerprint) -> tuple[str, ...]:
    """Indexed keys that any likely match shares, chosen so that each key's group stays small however
    large the corpus grows (a single-topic corpus has thousands of titles ending "… in
    treatment-resistant depression": a key on that alone would grow with it).

    * ``a:<surname>:<initial>:<letters>`` for each reading of the first author, with the first and
      with the last :data:`KEY_LETTERS` letters of the title's content words run together (and of
      the title before its subtitle): records with authors match only a record with the same first
      author, whose title shares its start or its end (a variant late or early in the title, a
      dropped subtitle) — one author's papers, not the topic's;
    * ``t:<hash>``: the whole title (content words, one spelling), which is what a record without
      authors must share (:func:`compare` accepts no dropped subtitle without authors), when the
      title is long enough for that rule and has a year.

    Spacing, hyphenation, stop words, British/American spelling and plurals do not change a key.
    Years are not part of the keys: the candidate query filters them (:func:`year_window`).
    """
    if fp.kind not in FUZZY_MERGE_KINDS:
        return ()
    words = [_key_word(w) for w in content_tokens(fp.title_key)]
    if not words:
        return ()
    compact = _compact(words)
    before = fp.title_key.split(f" {SEPARATOR} ")[0]  # the title before its subtitle (all of it without one)
    head = compact if before == fp.title_key else _compact([_key_word(w) for w in content_tokens(before)]) or compact
    keys = []
    for author in author_keys(fp.surnames, fp.author_words)[:3]:
        for letters in (compact[:KEY_LETTERS], compact[-KEY_LETTERS:], head[-KEY_LETTERS:]):
            keys.append(f"a:{author}:{letters}")
    if len(words) >= MIN_TOKENS_WITHOUT_AUTHOR and fp.year is not None:
        keys.append("t:" + hashlib.blake2b(compact.encode(), digest_size=8).hexdigest())
    return tuple(dict.fromkeys(keys))


# --------------------------------------------------------------------------- citation identity

#: Days two publication dates may differ by (e-pub vs issue date, time zones, deposit lags).
CITATION_DATE_DAYS = 7
#: Persons an author list needs before it identifies a paper with its journal and date.
CITATION_MIN_AUTHORS = 2
CITATION_KINDS = ("article", "comment", "protocol")


def journal_keys(journal: str | None, issn: str | None = None) -> list[str]:
    """The journal as keys: each ISSN, and the title folded ("The lancet. Psychiatry" = "The Lancet Psychiatry")."""
    if type(journal) in _TEXT_OR_NONE and type(issn) in _TEXT_OR_NONE:  # memoised: a topic's records share journals
        return list(_journal_keys(journal, issn))
    return list(_journal_keys.__wrapped__(journal, issn))


_ISSN_SEPARATORS_RE = re.compile(r"[;,\s]+")
_NOT_ISSN_RE = re.compile(r"[^0-9Xx]")


@functools.lru_cache(maxsize=4096)
def _journal_keys(journal: str | None, issn: str | None) -> tuple[str, ...]:
    keys = []
    for value in _ISSN_SEPARATORS_RE.split(issn or ""):
        value = _NOT_ISSN_RE.sub("", value).upper()
        if len(value) == 8:
            keys.append(f"issn {value}")
    title = _NOT_ALNUM.sub(" ", _strip_accents(journal or "").lower()).split()
    if title and title[0] == "the":
        title = title[1:]
    if title:
        keys.append("title " + " ".join(title))
    return tuple(keys)


def author_list_key(people: Iterable[dict]) -> str | None:
    """The ordered author list as family names and first initials ("osei h;chen w;castillo r"), None when too short."""
    persons = []
    for person in people or []:
        if not isinstance(person, dict) or person.get("collective") or not person.get("family"):
            continue
        family, first = person["family"], (person.get("initials") or person.get("given") or "")[:1]
        key = _person_key(family, first) if type(family) is str and type(first) is str else _person_key.__wrapped__(family, first)
        if key:
            persons.append(key)
    return ";".join(persons) if len(persons) >= CITATION_MIN_AUTHORS else None


_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=16384)
def _person_key(family: str, initial: str) -> str:
    """One person of :func:`author_list_key`: "osei h" (empty without a family name)."""
    if family.isascii():  # (most are: the characters the expression removes, deleted from the bytes in one pass)
        family = family.lower().encode("ascii").translate(None, _NOT_ALNUM_BYTES).decode("ascii")
    else:
        family = _NOT_ALNUM.sub("", _strip_accents(family).lower())
    return f"{family} {_strip_accents(initial).lower()}".strip() if family else ""


#: The bytes of ASCII that :data:`_NOT_ALNUM` matches (all but a-z and 0-9).
_NOT_ALNUM_BYTES = bytes(byte for byte in range(128) if not re.fullmatch(r"[a-z0-9]", chr(byte)))


def citation_keys(kind: str, journal: str | None, issn: str | None, people: Iterable[dict]) -> list[str]:
    """Blocking keys of a paper's citation: the same journal and the same ordered authors (titles aside).

    Two records sharing one and published within :data:`CITATION_DATE_DAYS` days of each other are one
    work even when their titles differ (an English title and a translated one, a subtitle reworded)."""
    if kind not in CITATION_KINDS:
        return []
    authors = author_list_key(people)
    if not authors:
        return []
    return [
        "c:" + hashlib.blake2b(f"{journal}|{authors}".encode(), digest_size=8).hexdigest()
        for journal in journal_keys(journal, issn)
    ]


class MatchInputs(NamedTuple):
    """What dedup needs of a saved record before any look-up: its fingerprint, its indexed keys (blocking
    keys, then citation keys), its citation keys, its publication date (for a citation match) and its indexed
    keys' hashes as stored (:func:`crawler.store.key_hash` of each key, in order: made where the keys are, so that
    a record prepared by the fetch worker reaches the writing process with its keys hashed)."""

    fingerprint: Fingerprint
    keys: list[str]
    cite_keys: list[str]
    published_on: str | None
    key_hashes: list[int]


def match_inputs(
    source: str,
    record_type: str,
    title: str | None,
    authors: list[str] | str | None,
    published_on: str | None,
    entered_on: str | None,
    publication_types: list[str] | str | None,
    relations: Iterable[str] | str | None,
    journal: str | None,
    issn: str | None,
    people: list[dict],
) -> MatchInputs:
    """:class:`MatchInputs` of a record's stored values (``people``: its structured authors as dicts)."""
    fp = fingerprint(source, record_type, title, authors, published_on, entered_on, publication_types, relations)
    cite_keys = citation_keys(fp.kind, journal, issn, people)
    keys = blocking_keys(fp) + cite_keys
    return MatchInputs(fp, keys, cite_keys, published_on, list(map(key_hash, keys)))


#: ``{type(value)}`` of texts, and of texts and None
_TEXT, _TEXT_OR_NONE = {str}, {str, type(None)}


def record_match_inputs(record, people: list[dict] | None = None) -> MatchInputs | None:
    """:func:`match_inputs` of a :class:`crawler.records.Record` as it is stored (what dedup would read back from
    its row), without reading it back; None when a value would not read back as it is (a value that is not text,
    stored as its JSON or SQL form): dedup then reads the row. ``people``: the record's structured authors as dicts,
    when the caller has them (not changed here): each one's ``to_dict()``, or their dicts in the record's
    ``to_dict()`` (blank fields there too: none counts, as in the stored column, which has only the others)."""
    extra = record.extra
    if type(extra) is not dict or type(record.authors) is not list or type(record.publication_types) is not list:
        return None
    issn = extra.get("issn")
    if people is None:
        people = [a.to_dict() for a in record.structured_authors]
    if not (
        {type(record.title), type(record.published_on), type(record.entered_on), type(record.journal), type(issn)}
        <= _TEXT_OR_NONE
        and {
            *map(type, record.authors),
            *map(type, record.publication_types),
            *(type(v) for p in people for v in p.values() if v),
        }
        <= _TEXT
    ):
        return None
    return match_inputs(
        record.source,
        record.record_type,
        record.title,
        record.authors,
        record.published_on,
        record.entered_on,
        record.publication_types,
        [link.relation for link in record.links],
        record.journal,
        issn,
        people,
    )


_NUMERAL = re.compile(r"^(\d+[a-z]?|[ivx]{1,4})$")


def numbers_differ(title_a: str, title_b: str) -> bool:
    """Both titles carry numbers or numerals ("part 1" / "part 2", "6-month" / "12-month") and not the same ones:
    companion papers of one group in one issue, never one work."""
    a = {t for t in title_a.split() if _NUMERAL.match(t)}
    b = {t for t in title_b.split() if _NUMERAL.match(t)}
    return bool(a and b and a != b)


def dates_agree(a: str | None, b: str | None, days: int = CITATION_DATE_DAYS) -> bool:
    """Two publication dates that name the same issue: within ``days`` (same month when one has no day)."""
    if not a or not b:
        return False
    a, b = str(a)[:10], str(b)[:10]
    if len(a) == 10 and len(b) == 10:
        try:
            return abs((dt.date.fromisoformat(a) - dt.date.fromisoformat(b)).days) <= days
        except ValueError:
            return False
    if len(a) >= 7 and len(b) >= 7:
        return a[:7] == b[:7]
    return False


def lookup_keys(fp: Fingerprint) -> list[str]:
    """The keys to look up for a record's candidates (the record's own keys: years are filtered apart)."""
    return blocking_keys(fp)


def year_window(fp: Fingerprint, action: str) -> tuple[int, int] | None:
    """Years a candidate may have: ±1 for a merge, ±2 for a preprint link; None: only candidates
    without a year (a record without a year is compared with those alone)."""
    if fp.year is None:
        return None
    window = MERGE_YEAR_WINDOW if action == "merge" else LINK_YEAR_WINDOW
    return fp.year - window, fp.year + window


# --------------------------------------------------------------------------- comparison (pure)


@functools.lru_cache(maxsize=65536)
def _spelling(word: str) -> str:
    word = re.sub(r"is(ation|e|ed|es|ing)$", r"iz\1", word)
    word = re.sub(r"our(s|ed|ing)?$", r"or\1", word)
    word = re.sub(r"(\w\w[^aeiou\W])re(s|d)?$", r"\1er\2", word)  # centre, fibre, litre
    return word.replace("ae", "e").replace("oe", "e")


#: rapidfuzz's ``fuzz`` and ``distance.Levenshtein``, imported by :func:`import_rapidfuzz` when titles are first
#: compared: only the writing process compares them, and their import (24 M instructions, 1.2 % of a backfill's start)
#: would otherwise run before the fetch worker's fork, where the crawling process runs alone.
_fuzz: ModuleType | None = None
_levenshtein: ModuleType | None = None


def import_rapidfuzz() -> tuple[ModuleType, ModuleType]:
    """rapidfuzz's ``fuzz`` and ``Levenshtein`` modules, imported on the first call."""
    global _fuzz, _levenshtein
    if _fuzz is None or _levenshtein is None:
        from rapidfuzz import fuzz
        from rapidfuzz.distance import Levenshtein

        _fuzz, _levenshtein = fuzz, Levenshtein
    return _fuzz, _levenshtein


def is_variant(a: str, b: str) -> bool:
    """Two words that are one word spelled two ways (not two words)."""
    if a == b:
        return True
    if any(ch.isdigit() for ch in a + b):
        return False
    if _spelling(a) == _spelling(b):
        return True
    if min(len(a), len(b)) < 5:
        return False
    levenshtein = _levenshtein if _levenshtein is not None else import_rapidfuzz()[1]
    return levenshtein.distance(a, b) <= 1


def compare_titles(a: str, b: str) -> tuple[bool, int, str]:
    """Whether two normalised titles name the same work: (same, rapidfuzz ratio, how).

    ``how`` is ``exact``, ``variant`` (spacing, stop words, spelling) or ``subtitle`` (one title
    is the other without its subtitle).
    """
    if not a or not b:
        return False, 0, ""
    if a == b:
        return True, 100, "exact"
    fuzz = _fuzz if _fuzz is not None else import_rapidfuzz()[0]
    score = int(round(fuzz.ratio(a, b)))
    if score < TITLE_MIN_RATIO:
        # only a dropped subtitle can explain a low ratio: the shorter must open the longer
        short, long_ = sorted((a, b), key=len)
        if f" {SEPARATOR} " not in long_ or fuzz.ratio(short, long_[: len(short)]) < TITLE_MIN_RATIO:
            return False, score, ""
    ta, tb = a.split(), b.split()
    how = "variant"
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        sa, sb = ta[i1:i2], tb[j1:j2]
        if _compact(sa).replace(SEPARATOR, "") == _compact(sb).replace(SEPARATOR, ""):
            continue
        ca = [t for t in sa if t not in IGNORABLE and t != SEPARATOR]
        cb = [t for t in sb if t not in IGNORABLE and t != SEPARATOR]
        if not ca and not cb:
            continue
        if len(ca) == len(cb) and all(is_variant(x, y) for x, y in zip(ca, cb)):
            continue
        if (
            i2 == len(ta)
            and j2 == len(tb)
            and (not sa or not sb)
            and (sa or sb)[0] == SEPARATOR
            and len(content_tokens(" ".join(ta[:i1] if not sb else tb[:j1]))) >= MIN_TOKENS_FOR_SUBTITLE
        ):
            how = "subtitle"
            continue
        return False, score, ""
    if how != "subtitle" and score < TITLE_MIN_RATIO:
        return False, score, ""
    return True, score, how


@dataclass(frozen=True)
class Match:
    action: str  # "merge" | "link"
    score: int
    evidence: str


def compare(a: Fingerprint, b: Fingerprint) -> Match | None:
    """Whether two records are one work (``merge``) or a preprint and its article (``link``)."""
    if a.kind not in FUZZY_MERGE_KINDS or b.kind not in FUZZY_MERGE_KINDS:
        return None
    if a.kind == b.kind:
        action, window = "merge", MERGE_YEAR_WINDOW
    elif {a.kind, b.kind} == {"preprint", "article"}:
        action, window = "link", LINK_YEAR_WINDOW
    else:
        return None
    if a.year is not None and b.year is not None and abs(a.year - b.year) > window:
        return None
    with_authors = bool(a.surnames and b.surnames)
    if with_authors:
        common = set(a.surnames) & set(b.surnames)
        given_a, given_b = given_initials(a.author_words, common), given_initials(b.author_words, common)
        if not common or (given_a and given_b and not given_a & given_b):
            return None
    if not with_authors and (a.year is None or b.year is None or len(content_tokens(a.title_key)) < MIN_TOKENS_WITHOUT_AUTHOR):
        return None
    same, score, how = compare_titles(a.title_key, b.title_key)
    if not same or (how == "subtitle" and (not with_authors or action == "link")):
        return None  # a title cut short says too little without authors, or to guess a preprint link
    if with_authors:
        basis = "title+authors" if action == "link" else "title+author+year"
    else:
        basis = "title+year (no authors)"
    return Match(action, score, f"{basis} score={score}" + (" (subtitle dropped)" if how == "subtitle" else ""))


def link_type_of(relation: str, note: str | None) -> tuple[str, bool] | None:
    """The work link a stated record link makes: (type, whether it points away from the record's work)."""
    if relation == "reference" and (note or "").strip().upper() == "BACKGROUND":
        return "references", True
    return LINK_TYPES.get(relation)


def identifiers_conflict(a: dict[str, set[str]], b: dict[str, set[str]]) -> str | None:
    """A scheme for which both works carry identifiers and none is shared (two different works)."""
    for scheme in sorted(set(a) & set(b)):
        if a[scheme] and b[scheme] and not a[scheme] & b[scheme]:
            return scheme
    return None
