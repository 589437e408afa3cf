"""The normalised record every source module produces.

A source parses its API's answer into :class:`Record` objects and nothing else; the store turns
them into rows. Field conventions:

* dates are ISO-8601 strings and may be partial (``2024``, ``2024-03``, ``2024-03-05``);
* ``identifiers`` are the work's *own* identifiers (normalised with :mod:`crawler.identifiers`):
  records sharing one are the same work. A trial number mentioned by an article is **not** the
  article's identifier: it goes to ``links`` as ``registered_as``;
* ``links`` point from this record to another work, by identifier, with a relation from
  :data:`LINK_RELATIONS`;
* ``trial`` holds the tracked registry fields of a trial registration (see :data:`TRIAL_FIELDS`);
  the store snapshots them whenever one changes;
* ``authors`` are the names as the source writes them (its own order: "Anand Amit", "Amit Anand",
  "Anand, A."); ``structured_authors`` are the same people as :class:`Author` (family, given,
  initials, or a collective name), parsed by the source from its structured fields where it has
  them, otherwise by :func:`parse_author` — the one parser of free-text names. A record made with
  ``authors`` only gets its ``structured_authors`` from that parser;
* ``extra`` holds what a source parses beyond these fields; the keys of :data:`CITATION_FIELDS`
  (journal abbreviation, volume, issue, pages) are the citation details a reference manager needs,
  and the store keeps them in columns of their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from operator import itemgetter
from typing import Any, Protocol

from crawler import identifiers as ids
from crawler.abstracts import flatten, sections_from_text

#: Which source's value wins for a work's title, dates, authors and links (first = best). Documented in README.
SOURCE_PRIORITY = ("pubmed", "europepmc", "crossref", "clinicaltrials", "isrctn", "ctis", "biorxiv", "openalex", "feed", "page")


def source_rank(source: str) -> int:
    """A ``records.source`` value's place in :data:`SOURCE_PRIORITY` (``feed:jama`` ranks as ``feed``; unknown: last)."""
    kind = source.split(":")[0]
    return SOURCE_PRIORITY.index(kind) if kind in SOURCE_PRIORITY else len(SOURCE_PRIORITY)


RECORD_TYPES = ("article", "preprint", "trial_registration", "notice", "news", "other")

#: relation -> meaning (from this record to the work the link names)
LINK_RELATIONS = {
    "retraction_in": "this work is retracted by the linked notice",
    "retraction_of": "this notice retracts the linked work",
    "erratum_in": "this work is corrected by the linked erratum",
    "erratum_for": "this erratum corrects the linked work",
    "correction_in": "this work is corrected by the linked correction",
    "correction_for": "this correction corrects the linked work",
    "expression_of_concern_in": "an expression of concern about this work",
    "expression_of_concern_for": "this notice expresses concern about the linked work",
    "republished_in": "this work was retracted/corrected and republished as the linked work",
    "republished_from": "this work republishes the linked work",
    "comment_in": "the linked work comments on this one",
    "comment_on": "this work comments on the linked one",
    "update_in": "the linked work updates this one",
    "update_of": "this work updates the linked one",
    "preprint_of": "this preprint was published as the linked article",
    "has_preprint": "this article has the linked preprint",
    "version_of": "this record is another version of the linked work",
    "registered_as": "this publication reports the linked trial registration",
    "reference": "this trial registration cites the linked publication",
    "result_publication": "this trial registration lists the linked publication as its results",
    "same_trial": "this registration is the same trial in another registry",
}

#: Citation details a source puts in ``Record.extra`` (the store gives each a column in ``records``):
#: the journal's NLM/ISO abbreviation, volume, issue, and pages ("1298-1309", "123-9" or an article number).
CITATION_FIELDS = ("journal_abbreviation", "volume", "issue", "pages")

#: Tracked trial fields; a change in any of them is stored as a new trial snapshot.
TRIAL_FIELDS = (
    "overall_status",
    "why_stopped",
    "phases",
    "study_type",
    "enrollment",
    "enrollment_type",
    "start_date",
    "primary_completion_date",
    "completion_date",
    "first_posted_on",
    "last_update_posted_on",
    "results_first_posted_on",
    "has_results",
)


@dataclass
class Link:
    relation: str
    scheme: str
    value: str
    note: str | None = None

    def __post_init__(self):
        if self.relation not in LINK_RELATIONS:
            raise ValueError(f"unknown link relation {self.relation!r}")


# --------------------------------------------------------------------------- authors

#: Words that mark a group author ("STAR*D Investigators", "Esketamine Study Group") rather than a person.
COLLECTIVE_RE = re.compile(
    r"\b(?:group|groups|investigators?|consortium|consortia|collaborat\w*|network|team|committee|society|association|"
    r"working|trialists|study|studies|writing|panel|initiative|council|foundation|institute|university|centre|center|"
    r"department|hospital|agency|organi[sz]ation|alliance|programme|program|task\s+force|authors|office|board|registry|"
    r"coalition|federation|academy|college|ministry)\b",
    re.I,
)
#: Lower-case name particles that belong to the family name ("van der Berg", "de la Cruz").
PARTICLES = frozenset("van von der den de del della dei di da le la du dos das do ten ter op zu bin ibn al el st".split())
#: The order of names in each source's author strings, when neither a comma nor initials tell it.
NAME_ORDER = {"pubmed": "family_first", "europepmc": "family_first", "biorxiv": "family_first"}
_SUFFIXES = frozenset("jr jr. sr sr. ii iii iv 2nd 3rd".split())
_INITIALS_TOKEN = re.compile(r"^(?:[A-Z]{1,3}|(?:[A-Z]\.[\s-]*){1,3}|[A-Z][a-z]?\.)$")
#: A cleaned given name (:func:`_clean_name`: its words one space apart) whose every word is an :data:`_INITIALS_TOKEN`
#: ("H", "HK", "H. K.", "J.-P."), in one match: a word holds no white space, so ``[\s-]*`` is ``-*`` inside one.
#: (``all()`` over a generator of per-word matches cost ~9k instructions per new author, most of it closing the
#: generator that ``all()`` leaves unfinished: measured with callgrind on PubMed's synthetic authors.)
_INITIALS_WORD = r"(?:[A-Z]{1,3}|(?:[A-Z]\.-*){1,3}|[A-Z][a-z]?\.)"
_INITIALS_ONLY = re.compile(rf"{_INITIALS_WORD}(?: {_INITIALS_WORD})*")


def vancouver_name(family: str | None, initials: str | None, suffix: str | None, collective: str | None) -> str:
    """An author in Vancouver style, as in a reference list or a digest: "Osei H" (a group: its name)."""
    if collective:
        return collective
    return " ".join(p for p in (family, initials, suffix) if p)


@dataclass
class Author:
    """One author: a person (``family``, ``given``, ``initials``) or a group (``collective``).

    ``given`` is None when the source gives initials only; ``initials`` are capital letters without
    dots ("JP" for Jean-Paul).
    """

    family: str | None = None
    given: str | None = None
    initials: str | None = None
    collective: str | None = None
    suffix: str | None = None

    def __post_init__(self):
        if self.given and not self.initials:
            self.initials = initials_of(self.given)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Author:
        return cls(**{k: data.get(k) for k in ("family", "given", "initials", "collective", "suffix")})

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set (not None nor empty), in field order."""
        data = {}
        if self.family:
            data["family"] = self.family
        if self.given:
            data["given"] = self.given
        if self.initials:
            data["initials"] = self.initials
        if self.collective:
            data["collective"] = self.collective
        if self.suffix:
            data["suffix"] = self.suffix
        return data

    @property
    def short(self) -> str:
        """Vancouver style, as in a reference list or a digest: "Osei H" (a group: its name)."""
        return vancouver_name(self.family, self.initials, self.suffix, self.collective)

    @property
    def inverted(self) -> str:
        """ "Family, Given" (or "Family, I.") for reference managers; a group: its name."""
        if self.collective:
            return self.collective
        first = self.given or ". ".join(self.initials or "") + ("." if self.initials else "")
        name = ", ".join(p for p in (self.family, first) if p)
        return f"{name}, {self.suffix}" if self.suffix else name

    @property
    def full(self) -> str:
        """ "Given Family" (or "I. Family")."""
        if self.collective:
            return self.collective
        return " ".join(p for p in (self.given or self.initials, self.family, self.suffix) if p)


_NAME_WORD_BREAK = re.compile(r"[\s.\-]+")
_CAPITALS = re.compile(r"[A-Z]{1,3}")
_NOT_A_LETTER = re.compile(r"[^A-Za-z]")


def initials_of(given: str | None) -> str | None:
    """``"Jean-Paul"`` → ``"JP"``; ``"A. B."`` and ``"AB"`` → ``"AB"``; ``"María José"`` → ``"MJ"``."""
    letters = []
    for word in _NAME_WORD_BREAK.split(given or ""):
        if _CAPITALS.fullmatch(word):
            letters.append(word)  # already initials: "HK"
        elif word and word[0].isalpha():
            letters.append(word[0].upper())
    return "".join(letters) or None


def _clean_name(text: str) -> str:
    if type(text) is str and text.isascii() and text.isprintable() and "  " not in text:
        # (most names) NFC and the no-break space change nothing, and its only white space is single spaces
        return text.strip(" ,;")
    return " ".join(unicodedata.normalize("NFC", str(text or "")).replace("\u00a0", " ").split()).strip(" ,;")


def parse_author(text: str | None, *, order: str | None = None) -> Author | None:
    """Parse one free-text name into an :class:`Author` (the one parser of unstructured names).

    Handles "Family, Given", "Family, F. M.", "Family FM" (PubMed/Europe PMC style), "F. M. Family",
    "Given Family" and group names. ``order`` is the source's known order when neither a comma nor
    initials tell it: ``"family_first"`` ("Anand Amit") or ``"given_first"`` (the default: "Amit Anand").
    """
    name = _clean_name(text or "")
    if not name:
        return None
    if COLLECTIVE_RE.search(name) or len(name.split()) > 5:
        return Author(collective=name)
    if "," in name:
        return _parse_inverted_name(name)
    words = name.split()
    suffix = None
    if len(words) > 1 and words[-1].lower() in _SUFFIXES:
        suffix, words = words[-1], words[:-1]
    if len(words) == 1:
        return Author(family=words[0], suffix=suffix)
    family, given = _split_name_words(words, order)
    return _person(family, given, suffix)


def _parse_inverted_name(name: str) -> Author:
    """ "Family, Given", "Family, F. M.", "Family, Given, Jr" (and the odd "Smith, Jr")."""
    suffix = None
    family, _, given = (p.strip() for p in name.partition(","))
    parts = [p.strip() for p in given.split(",")]
    if len(parts) > 1 and parts[-1].lower() in _SUFFIXES:
        suffix, given = parts[-1], ", ".join(parts[:-1])
    elif given.lower() in _SUFFIXES:
        suffix, given = given, ""
    return _person(family, given, suffix)


def _split_name_words(words: list[str], order: str | None) -> tuple[str, str]:
    """(family, given) of a name of two words or more without a comma: initials on one side mark the given
    name ("Osei HK", "van der Berg J", "H. K. Osei"); otherwise the source's ``order`` decides."""
    initials = [bool(_INITIALS_TOKEN.match(w)) for w in words]
    if initials[-1] and not all(initials):
        end = len(words)
        while end > 0 and initials[end - 1]:
            end -= 1
        return " ".join(words[:end]), " ".join(words[end:])
    if initials[0] and not all(initials):
        start = 0
        while start < len(words) and initials[start]:
            start += 1
        return " ".join(words[start:]), " ".join(words[:start])
    return _split_by_order(words, order)


def _split_by_order(words: list[str], order: str | None) -> tuple[str, str]:
    """(family, given) by word order; particles ("van der", "de") stay with the family name."""
    if order == "family_first":
        end = 1
        while end < len(words) - 1 and words[end - 1].lower() in PARTICLES:
            end += 1
        return " ".join(words[:end]), " ".join(words[end:])
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in PARTICLES:
        start -= 1
    return " ".join(words[start:]), " ".join(words[:start])


def _person(family: str, given: str, suffix: str | None = None) -> Author:
    family, given = family.strip(" ,."), given.strip(" ,")
    if not family and given:
        family, given = given, ""
    only_initials = bool(given) and all(_INITIALS_TOKEN.match(w) for w in given.split())
    return Author(
        family=family or None,
        given=None if only_initials else (given or None),
        initials=initials_of(given) if given else None,
        suffix=suffix,
    )


def parse_authors(names, *, order: str | None = None) -> list[Author]:
    """Parse a list of free-text names (empty and unparseable ones dropped)."""
    return [a for a in (parse_author(n, order=order) for n in names or []) if a]


_new_object = object.__new__


def make_author(
    family: str | None = None,
    given: str | None = None,
    initials: str | None = None,
    collective: str | None = None,
    suffix: str | None = None,
) -> Author | None:
    """An :class:`Author` from a source's structured fields (blank ones ignored); None if all blank."""
    # (a blank field, as a collective name and a suffix mostly are, is "" without a call of _clean_name)
    family = _clean_name(family) if family else ""
    given = _clean_name(given) if given else ""
    collective = _clean_name(collective) if collective else ""
    initials = initials or ""
    if not (initials.isascii() and initials.isalpha()):  # (most are: "JP")
        initials = _NOT_A_LETTER.sub("", initials)
    initials = initials.upper() or None
    if collective and not family:
        return Author(collective=collective)
    if not family and not given:
        return None
    if not family:
        return parse_author(given)
    # (a given name whose third character is a lower-case letter, as most are, has a first word of more than
    # initials: _INITIALS_WORD allows none there, and the expression is not run: −2k instructions per new author)
    only_initials = not given[2:3].islower() and _INITIALS_ONLY.fullmatch(given) is not None
    # Author(family=…, given=…, initials=…, suffix=…) without running __init__ and __post_init__ (~4k instructions of
    # a new PubMed author's ~20k, callgrind): __post_init__ would change nothing, initials being set here whenever
    # given is (or None when initials_of(given) finds none, what it would set again). Fields set in their order.
    author = _new_object(Author)
    author.family = family
    author.given = None if only_initials else (given or None)
    author.initials = initials or initials_of(given)
    author.collective = None
    author.suffix = (_clean_name(suffix) or None) if suffix else None
    return author


def format_authors(authors, limit: int = 3, etal: str = "et al.") -> str:
    """``"Osei H, Chen W, Smith J et al."``: the first ``limit`` authors of a list of :class:`Author` or dicts."""
    people = [a if isinstance(a, Author) else Author.from_dict(a) for a in authors or []]
    shown = ", ".join(a.short for a in people[:limit] if a.short)
    return f"{shown} {etal}" if len(people) > limit and shown else shown


# --------------------------------------------------------------------------- records


@dataclass
class Record:
    source: str
    source_id: str
    record_type: str
    title: str
    url: str | None = None
    abstract: str | None = None
    authors: list[str] = field(default_factory=list)
    structured_authors: list[Author] = field(default_factory=list)
    #: The abstract's sections, [{"label", "category", "text"}] (crawler.abstracts); filled from
    #: ``abstract``'s "Label: text" paragraphs when a source sets none.
    abstract_sections: list[dict[str, Any]] = field(default_factory=list)
    journal: str | None = None
    published_on: str | None = None
    entered_on: str | None = None
    updated_on: str | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    publication_types: list[str] = field(default_factory=list)
    mesh_terms: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    language: str | None = None
    version: str | None = None
    links: list[Link] = field(default_factory=list)
    trial: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: required fields the answer lacked (e.g. ["title"]): the store keeps their stored values instead
    #: of overwriting good data with a placeholder. Not part of ``to_dict`` nor of the content hash.
    missing: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.record_type not in RECORD_TYPES:
            raise ValueError(f"unknown record_type {self.record_type!r}")
        self.source_id = str(self.source_id)
        self.structured_authors = [a if isinstance(a, Author) else Author.from_dict(a) for a in self.structured_authors]
        if self.authors and not self.structured_authors:
            self.structured_authors = parse_authors(self.authors, order=NAME_ORDER.get(self.source.split(":")[0]))

    def add_id(self, scheme: str, value) -> str | None:
        """Normalise and add an identifier of this work; return it (None if invalid)."""
        norm = ids.normalize(scheme, value)
        if norm and (scheme, norm) not in self.identifiers:
            self.identifiers.append((scheme, norm))
        return norm

    def add_link(self, relation: str, scheme: str, value, note: str | None = None) -> None:
        norm = ids.normalize(scheme, value)
        if not norm:
            return
        link = Link(relation, scheme, norm, note)
        if all((l.relation, l.scheme, l.value) != (relation, scheme, norm) for l in self.links):
            self.links.append(link)

    def first_id(self, scheme: str) -> str | None:
        return next((v for s, v in self.identifiers if s == scheme), None)

    def to_dict(self) -> dict[str, Any]:
        """Every field but ``missing`` as plain JSON-ready values (what ``records.data`` stores): the same
        dict as ``dataclasses.asdict`` gives, built field by field (``asdict`` deep-copies every value
        through generic code, the largest cost of saving a record)."""
        data = {
            "source": self.source,
            "source_id": self.source_id,
            "record_type": self.record_type,
            "title": self.title,
            "url": self.url,
            "abstract": self.abstract,
            "authors": list(self.authors),
            "structured_authors": [
                {"family": a.family, "given": a.given, "initials": a.initials, "collective": a.collective, "suffix": a.suffix}
                for a in self.structured_authors
            ],
            "abstract_sections": _sections_copy(self.abstract_sections),
            "journal": self.journal,
            "published_on": self.published_on,
            "entered_on": self.entered_on,
            "updated_on": self.updated_on,
            "identifiers": [_atoms_copy(pair) for pair in self.identifiers],
            "publication_types": list(self.publication_types),
            "mesh_terms": list(self.mesh_terms),
            "keywords": list(self.keywords),
            "language": self.language,
            "version": self.version,
            "links": [{"relation": l.relation, "scheme": l.scheme, "value": l.value, "note": l.note} for l in self.links],
            "trial": _plain(self.trial),
            "extra": _atoms_copy(self.extra),
        }
        if not data["abstract_sections"] and self.abstract:
            data["abstract_sections"] = sections_from_text(self.abstract)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, derived_sections: bool = False) -> Record:
        """The record whose :meth:`to_dict` is ``data`` (a record's own, e.g. one that crossed a pipe): each field
        set as it is, without ``__post_init__`` (the record was checked when made), its authors and links made
        back into :class:`Author` and :class:`Link`. The record shares ``data``'s lists and dicts (copy what you
        change). ``derived_sections``: the record had no ``abstract_sections`` (``data``'s were derived from its
        abstract), and gets none back. ``missing`` is empty (it is not in ``data``). A value ``to_dict``
        converts (a dataclass in ``extra``) comes back as what it made of it."""
        record = object.__new__(cls)
        fields = record.__dict__
        fields.update(data)
        if derived_sections:
            fields["abstract_sections"] = []
        fields["structured_authors"] = [_author_of(a) for a in data["structured_authors"]]
        fields["links"] = [_link_of(link) for link in data["links"]] if data["links"] else []
        fields["missing"] = []
        return record

    @classmethod
    def made_when_read(cls, fields: dict[str, Any], written: WrittenLater) -> Record:
        """A record with ``fields`` (every field but those of :data:`FIELDS_MADE_WHEN_READ`) whose other fields are
        made when one is first read, from ``written.to_dict()`` (the record as written, a dict :meth:`from_dict`
        would take) and shared with it, as :meth:`from_dict` shares them; ``written.derived_sections`` as its
        ``derived_sections``. The fetch worker's records (:mod:`crawler.fetch_worker`): the writer reads only the
        fields it saves of most of them."""
        record = object.__new__(_RecordMadeWhenRead)
        fields["_written"] = written
        record.__dict__ = fields
        return record

    def content_hash(self, data: dict[str, Any] | None = None, parts: dict[str, str] | None = None) -> str:
        """A stable hash of everything parsed, used to tell whether a record changed (``data``: this
        record's :meth:`to_dict`, and ``parts`` its :func:`json_parts`, when the caller already has them).

        ``structured_authors`` is left out: it is read from the same wire fields as ``authors``, so a
        change of authors already shows, and a better name parser does not mark every record updated."""
        data = data if data is not None else self.to_dict()
        parts = parts if parts is not None else json_parts(data)
        extra = data.get("extra") or {}
        if data.get("extra") is None or (
            not extra.keys().isdisjoint(HASH_IGNORED_EXTRA)
            if type(extra) is dict
            else any(k in extra for k in HASH_IGNORED_EXTRA)
        ):
            # where a free full text is: not a change of the work (a new field must not mark every record updated)
            parts = {**parts, "extra": json_value({k: v for k, v in extra.items() if k not in HASH_IGNORED_EXTRA})}
        payload = join_json_parts(parts, [k for k in parts if k not in HASH_IGNORED_FIELDS])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


#: The fields of a record made by :meth:`Record.made_when_read` that are made when first read.
FIELDS_MADE_WHEN_READ = ("authors", "structured_authors", "abstract_sections", "publication_types", "mesh_terms", "keywords")


class _RecordMadeWhenRead(Record):
    """A :class:`Record` made by :meth:`Record.made_when_read`: its lists are made when one is first read, and then it
    is a plain :class:`Record` (its class set back). A class apart, so that a plain Record has no ``__getattr__``:
    with one, CPython 3.11 specialises no attribute read of any Record (308 instructions more per read, callgrind:
    dozens of reads per record in parsing, preparing and saving it)."""

    def __getattr__(self, name: str) -> Any:
        """Only for an attribute the record lacks: a field of :data:`FIELDS_MADE_WHEN_READ`, made now."""
        if name not in FIELDS_MADE_WHEN_READ or "_written" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self._made().__dict__[name]

    def __eq__(self, other: object) -> bool:
        return self._made() == other  # (dataclass equality compares records of the same class only)

    def _made(self) -> Record:
        """This record with every field made (all of them, from the record as written, and shared with it)."""
        fields = self.__dict__
        written = fields.pop("_written", None)
        if written is not None:
            data = written.to_dict()
            fields["authors"] = data["authors"]
            fields["structured_authors"] = [_author_of(a) for a in data["structured_authors"]]
            fields["abstract_sections"] = [] if written.derived_sections else data["abstract_sections"]
            fields["publication_types"] = data["publication_types"]
            fields["mesh_terms"] = data["mesh_terms"]
            fields["keywords"] = data["keywords"]
        self.__class__ = Record  # type: ignore[assignment]
        return self


class WrittenLater(Protocol):
    """The record as written, made when read (:meth:`Record.made_when_read`)."""

    derived_sections: bool

    def to_dict(self) -> dict[str, Any]: ...


def _author_of(data: dict[str, Any]) -> Author:
    """An :class:`Author` from its dict in :meth:`Record.to_dict` (every field present), made as it was."""
    author = object.__new__(Author)
    author.__dict__.update(data)
    return author


def _link_of(data: dict[str, Any]) -> Link:
    link = object.__new__(Link)
    link.__dict__.update(data)
    return link


#: Fields of :meth:`Record.to_dict` outside the content hash: structured authors come from the same wire
#: fields as ``authors``, the abstract's sections from the same field as ``abstract``.
HASH_IGNORED_FIELDS = ("structured_authors", "abstract_sections")
#: Keys of ``extra`` outside the content hash (where a free full text is: not a change of the work).
HASH_IGNORED_EXTRA = ("open_access", "free_full_text_url")


#: ``json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)`` without building an encoder per call.
_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode
#: A text as JSON (what ``_ENCODE`` does with one).
_ENCODE_TEXT = json.encoder.encode_basestring
#: The C encoder that ``_ENCODE`` builds anew for each list or dict, built once: the same text, without the
#: circular-reference check (a value that fails is encoded again by ``_ENCODE``, which raises what it raises).
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_ITERENCODE = _C_MAKE_ENCODER(None, str, _ENCODE_TEXT, None, ": ", ", ", True, False, True) if _C_MAKE_ENCODER else None
#: Object keys as JSON (``"title": ``), computed once per key.
_KEY_PREFIX: dict[str, str] = {}


def json_value(value: Any) -> str:
    """A value as JSON the way records are stored and hashed: keys sorted, Unicode kept, dates as strings."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return _ENCODE_TEXT(value)
    if _ITERENCODE is not None and (kind is list or kind is dict):
        try:
            return "".join(_ITERENCODE(value, 0))
        except Exception:  # noqa: BLE001 - encoded again below: the same error as without the shortcut
            pass
    return _ENCODE(value)


def json_parts(data: dict[str, Any]) -> dict[str, str]:
    """Each value of a record dict as JSON (:func:`json_value`), to be joined into several documents."""
    parts = {}
    for key, value in data.items():  # texts and None (most values) without a call of json_value each
        kind = type(value)
        if kind is str:
            parts[key] = _ENCODE_TEXT(value) if len(value) <= _LONG_TEXT else _long_text_json(value)
        elif kind is list and key == "structured_authors":
            parts[key] = _authors_dicts_json(value)
        elif kind is list and key == "abstract_sections":
            parts[key] = _sections_json(value, data.get("abstract"), parts.get("abstract"))
        else:
            parts[key] = "null" if value is None else json_value(value)
    return parts


#: An author's fields (family, given, initials, collective, suffix), each a text or None -> (its dict in
#: :meth:`Record.to_dict` as JSON, its :meth:`Author.to_dict` as JSON): one author recurs across a topic's records.
_AUTHOR_JSON: dict[tuple, tuple[str, str]] = {}
#: Authors :data:`_AUTHOR_JSON` holds at most (emptied when full: ~3 MB).
AUTHOR_JSON_SIZE = 8192
#: :data:`_AUTHOR_JSON`'s fields in the order of their keys in the JSON (sorted): their positions in the tuple.
_AUTHOR_JSON_ORDER = tuple(
    (f'"{key}": ', index) for key, index in (("collective", 3), ("family", 0), ("given", 1), ("initials", 2), ("suffix", 4))
)


def _author_json(fields: tuple) -> tuple[str, str] | None:
    """:data:`_AUTHOR_JSON`'s value for these fields (remembered), None when one is neither a text nor None (such an
    author is encoded by :func:`json_value`)."""
    try:
        known = _AUTHOR_JSON.get(fields)  # its keys hold texts and None only: only those are equal to them
    except TypeError:  # a list in a field
        return None
    if known is not None:
        return known
    every, given = [], []  # "key": value, of every field / of the fields Author.to_dict keeps (not None nor empty)
    for prefix, index in _AUTHOR_JSON_ORDER:
        value = fields[index]
        if value is None:
            every.append(prefix + "null")
        elif type(value) is str:
            pair = prefix + _ENCODE_TEXT(value)
            every.append(pair)
            if value:
                given.append(pair)
        else:
            return None
    known = ("{" + ", ".join(every) + "}", "{" + ", ".join(given) + "}")
    if len(_AUTHOR_JSON) >= AUTHOR_JSON_SIZE:
        _AUTHOR_JSON.clear()
    _AUTHOR_JSON[fields] = known
    return known


def _authors_dicts_json(people: list) -> str:
    """:func:`json_value` of a record dict's ``structured_authors`` (each author's dict with its five keys), from
    :data:`_AUTHOR_JSON`; a list of other values is encoded by :func:`json_value`."""
    texts = []
    for person in people:
        if type(person) is not dict or len(person) != 5:
            return json_value(people)
        try:
            fields = (person["family"], person["given"], person["initials"], person["collective"], person["suffix"])
        except KeyError:
            return json_value(people)
        try:  # (the look-up of _author_json, without a call of it for an author seen lately: most are)
            known = _AUTHOR_JSON.get(fields) or _author_json(fields)
        except TypeError:  # a list in a field
            known = None
        if known is None:
            return json_value(people)
        texts.append(known[0])
    return "[" + ", ".join(texts) + "]"


def authors_json(authors: list[Author]) -> str:
    """``json_value([author.to_dict() for author in authors])`` (the ``structured_authors`` column), each author's
    JSON remembered in :data:`_AUTHOR_JSON`."""
    texts = []
    for author in authors:
        known = None
        if type(author) is Author:
            fields = (author.family, author.given, author.initials, author.collective, author.suffix)
            try:  # (the look-up of _author_json, without a call of it for an author seen lately: most are)
                known = _AUTHOR_JSON.get(fields) or _author_json(fields)
            except TypeError:  # a list in a field
                known = None
        if known is None:
            return json_value([author.to_dict() for author in authors])
        texts.append(known[1])
    return "[" + ", ".join(texts) + "]"


def _sections_json(sections: list, abstract: Any, abstract_json: str | None) -> str:
    """:func:`json_value` of a record dict's ``abstract_sections`` (each section's dict with its three keys), the
    texts without a look at each of their characters where that is known to give the same JSON: ``abstract_json``
    (``abstract``'s JSON, when made already) is longer than ``abstract`` by its quotes and one character per newline
    only, so the abstract holds no character JSON escapes but newlines, and neither does a text found in it: every
    text when the abstract is its sections flattened (as most are: one comparison), else each one looked for.
    −63k instructions of the C encoder per synthetic record (four sections, ~1 kB: it looks at each character and
    sorts each section's keys) for ~20k here (callgrind). Any other list is encoded by json_value."""
    clean = type(abstract) is str and abstract_json is not None and len(abstract_json) == len(abstract) + 2 + abstract.count("\n")
    try:
        whole = clean and abstract == flatten(sections)
    except Exception:  # noqa: BLE001 - a shortcut only: sections flatten cannot read are encoded below, as before
        whole = False
    texts = []
    for section in sections:
        if type(section) is not dict or len(section) != 3:
            return json_value(sections)
        try:
            label, category, text = section["label"], section["category"], section["text"]
        except KeyError:
            return json_value(sections)
        if type(text) is not str or not (label is None or type(label) is str) or not (category is None or type(category) is str):
            return json_value(sections)
        if whole or (clean and text in abstract):
            text = '"' + (text.replace("\n", "\\n") if "\n" in text else text) + '"'
        else:
            text = _ENCODE_TEXT(text)
        label = "null" if label is None else _ENCODE_TEXT(label)
        category = "null" if category is None else _ENCODE_TEXT(category)
        texts.append(f'{{"category": {category}, "label": {label}, "text": {text}}}')
    return "[" + ", ".join(texts) + "]"


#: Characters from which :func:`_long_text_json` looks for the ones JSON escapes at once.
_LONG_TEXT = 128
#: Each byte of an ASCII text -> 0 for the ones JSON escapes (C0 controls, '"', '\\') but the newline, 2 for the
#: newline, 1 for the others.
_ESCAPED_BYTES = bytes(2 if byte == 10 else 0 if byte < 32 or byte in (34, 92) else 1 for byte in range(256))


def _long_text_json(text: str) -> str:
    """``_ENCODE_TEXT(text)``: an ASCII text without a character to escape but the newline (an abstract's paragraphs)
    in a few passes over its bytes, a third of the instructions of the encoder's, which looks at each character."""
    if text.isascii():
        marks = text.encode("ascii").translate(_ESCAPED_BYTES)
        if b"\x00" not in marks:
            return '"' + (text.replace("\n", "\\n") if b"\x02" in marks else text) + '"'
    return _ENCODE_TEXT(text)


#: ``keys`` of :func:`join_json_parts` -> (their parts in sorted key order, from one C call; the object's text with a
#: ``%s`` for each part): a record's keys are always the same few sets.
_JOINS: dict[tuple, tuple[Callable[[dict[str, str]], Any], str]] = {}


def join_json_parts(parts: dict[str, str], keys) -> str:
    """The JSON object of ``keys`` from :func:`json_parts`: the same text as :func:`json_value` of that dict.

    Made by one ``%`` of a template (``{"abstract": %s, "authors": %s, …}``) with the parts taken by an ``itemgetter``:
    one new text per call, where joining ``"key": `` and each part made one per key and then the whole (−5k
    instructions per synthetic record and join, two joins per record: callgrind)."""
    keys = tuple(keys)
    join = _JOINS.get(keys)
    if join is None:
        ordered = sorted(keys)
        prefixes = []
        for key in ordered:
            prefix = _KEY_PREFIX.get(key)
            if prefix is None:
                prefix = _KEY_PREFIX.setdefault(key, _ENCODE(key) + ": ")
            prefixes.append(prefix.replace("%", "%%") + "%s")
        getter = itemgetter(*ordered) if len(ordered) > 1 else lambda parts: tuple(map(parts.__getitem__, ordered))
        join = (getter, "{" + ", ".join(prefixes) + "}")
        if len(_JOINS) < 64:
            _JOINS[keys] = join
    getter, template = join
    return template % getter(parts)


def _sections_copy(sections: Any) -> Any:
    """``_plain(sections)``: a section whose values are all atoms (texts, numbers, None) copied by ``dict.copy`` in C
    instead of a comprehension of ``_plain``'s (the same dict, in the same order)."""
    if type(sections) is not list:
        return _plain(sections)
    return [
        section.copy() if type(section) is dict and _ATOMS.issuperset(map(type, section.values())) else _plain(section)
        for section in sections
    ]


#: Values ``_plain`` returns as they are (immutable).
_ATOMS = frozenset((str, int, float, bool, type(None)))


def _atoms_copy(value: Any) -> Any:
    """``_plain(value)``: a dict whose values are all atoms copied by ``dict.copy``, a tuple of atoms (an identifier's
    pair) kept as it is (immutable: a copy would be equal to it), their types checked in C; anything else by
    ``_plain``. (A record's ``extra`` and identifiers: the comprehensions of ``_plain`` cost ~1k instructions per
    pair and ~2k per ``extra``, callgrind.)"""
    kind = type(value)
    if kind is tuple:
        return value if _ATOMS.issuperset(map(type, value)) else _plain(value)
    if kind is dict:
        return value.copy() if _ATOMS.issuperset(map(type, value.values())) else _plain(value)
    return _plain(value)


def _plain(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, dataclasses), as ``dataclasses.asdict`` copies it."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {k: v if type(v) in _ATOMS else _plain(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _ATOMS else _plain(v) for v in value]
    if kind is tuple:  # (an identifier's pair)
        return tuple([v if type(v) in _ATOMS else _plain(v) for v in value])
    if isinstance(value, dict):
        return kind((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return kind(_plain(v) for v in value)
    if isinstance(value, tuple):
        return kind(*(_plain(v) for v in value)) if hasattr(value, "_fields") else kind(_plain(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


# --------------------------------------------------------------------------- trial status vocabulary

#: One status vocabulary across registries (ClinicalTrials.gov's, in lower case), with its meaning.
TRIAL_STATUSES = {
    "not_yet_recruiting": "registered or authorised; recruitment has not started",
    "recruiting": "recruiting participants",
    "enrolling_by_invitation": "enrolling invited participants only",
    "active_not_recruiting": "ongoing; recruitment has ended (or the registry says only that it is ongoing)",
    "suspended": "halted temporarily; may resume",
    "terminated": "stopped early; participants had been enrolled",
    "completed": "ended normally",
    "withdrawn": "stopped before enrolling its first participant (or not authorised, cancelled)",
    "unknown": "the registry's information is out of date (ClinicalTrials.gov UNKNOWN)",
    "other": "a registry status outside this vocabulary (expanded access, withheld, …): see registry_status",
}

#: A registry's own status (lower case, spaces/commas as written) -> the shared vocabulary. ClinicalTrials.gov
#: writes ``RECRUITING``; ISRCTN ``Recruiting``, ``No longer recruiting``, ``Stopped``; EU CTIS ``Ongoing, recruiting``.
_TRIAL_STATUS_MAP = {
    "not yet recruiting": "not_yet_recruiting",
    "recruiting": "recruiting",
    "enrolling by invitation": "enrolling_by_invitation",
    "active not recruiting": "active_not_recruiting",
    "active": "active_not_recruiting",
    "no longer recruiting": "active_not_recruiting",
    "ongoing": "active_not_recruiting",
    "ongoing recruitment ended": "active_not_recruiting",
    "ongoing recruiting": "recruiting",
    "ongoing not yet recruiting": "not_yet_recruiting",
    "authorised": "not_yet_recruiting",
    "authorised recruitment pending": "not_yet_recruiting",
    "authorised recruiting": "recruiting",
    "expired": "withdrawn",
    "under evaluation": "not_yet_recruiting",
    "suspended": "suspended",
    "temporarily halted": "suspended",
    "halted": "suspended",
    "terminated": "terminated",
    "stopped": "terminated",
    "revoked": "terminated",
    "prematurely ended": "terminated",
    "completed": "completed",
    "ended": "completed",
    "withdrawn": "withdrawn",
    "cancelled": "withdrawn",
    "not authorised": "withdrawn",
    "unknown": "unknown",
    "unknown status": "unknown",
}


def normalise_trial_status(registry_status: str | None) -> str | None:
    """A registry's status in the shared :data:`TRIAL_STATUSES` vocabulary (None when there is none)."""
    if not registry_status or not str(registry_status).strip():
        return None
    key = " ".join(re.sub(r"[_,;:/()-]+", " ", str(registry_status).lower()).split())
    return _TRIAL_STATUS_MAP.get(key, "other")
