"""Term rules: the transparent text matching behind relevance and topic tags.

A *term* is written in the configuration and matched case-insensitively against a work's text:

* it matches whole words: ``"oral"`` matches "oral" and "Oral", not "orally" or "coral";
* a trailing ``*`` makes it a prefix: ``"suicid*"`` matches "suicide", "suicidal", "suicidality";
* a space or hyphen inside a term also matches the other or nothing: ``"post-traumatic"`` matches
  "post-traumatic", "post traumatic" and "posttraumatic";
* ``"re:<regular expression>"`` is a Python regular expression, for what words cannot say.

A *MeSH* entry matches a MeSH descriptor name exactly (case-insensitive), or as a prefix with ``*``.
Terms never match MeSH headings and MeSH entries never match text, so each reason says exactly
what was found where.

A :class:`TermRule` (a relevance concept, a noise class or a topic tag) scores how strongly a work
matches it: 3 for a match in a title, a MeSH heading or a trial's conditions/interventions, 2 in the
keywords or for two or more mentions in an abstract, 1 for a single mention in an abstract.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

#: field -> strength of a match there (abstracts: 1 for one mention, 2 for several)
FIELD_STRENGTH = {"title": 3, "mesh": 3, "trial": 3, "keywords": 2}
ABSTRACT_ONE, ABSTRACT_MANY = 1, 2
TEXT_FIELDS = ("title", "trial", "keywords", "abstract")

_BOUNDARY = r"(?<![a-z0-9])"
_DASHES = re.compile(r"[\u2010-\u2015\u2212\u00ad]")
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200b\u202f]+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def normalize_text(text: str | None) -> str:
    """Lower case, one kind of dash and quote, single spaces: the form every term is matched against."""
    if not text:
        return ""
    if text.isascii():  # no dash, quote or space to unify but ASCII whitespace (what str.split splits on)
        return " ".join(text.split()).lower()
    text = _DASHES.sub("-", text.translate(_QUOTES))
    return _SPACES.sub(" ", text).strip().lower()


def plain_term_parts(term: str) -> tuple[str, list[str], bool]:
    """A plain term read: its normalised text without the ``*``, its words, and whether it is a prefix."""
    text = normalize_text(term)
    prefix = text.endswith("*")
    text = text.rstrip("*").strip()
    if not text:
        raise ValueError("empty term")
    return text, [p for p in re.split(r"[\s\-]+", text) if p], prefix


def term_pattern(term: str) -> str:
    """The regular expression of one term (see the module docstring for the syntax)."""
    if term.startswith("re:"):
        return term[3:]
    text, parts, prefix = plain_term_parts(term)
    body = r"[\s\-]?".join(re.escape(p) for p in parts)
    start = _BOUNDARY if text[0].isalnum() else ""
    end = "" if prefix or not text[-1].isalnum() else r"(?![a-z0-9])"
    return start + body + end


#: The word-start check placed after a term's first character: that character is then the first thing each
#: alternative of a combined expression matches, so the expression engine skips every position where no
#: term can start instead of entering each alternative there.
_BOUNDARY_AFTER_FIRST = r"(?<![a-z0-9].)"


def first_character_first(pattern: str) -> str:
    """The same matches as a :func:`term_pattern`, written to start with a literal character where it can:
    ``(?<![a-z0-9])k…`` becomes ``k(?<![a-z0-9].)…`` (the character before the match is not a letter or
    digit; the start of the text is a word start)."""
    body = pattern[len(_BOUNDARY) :] if pattern.startswith(_BOUNDARY) else ""
    if body and body[0].isalnum():
        return f"{body[0]}{_BOUNDARY_AFTER_FIRST}{body[1:]}"
    return pattern


def mesh_pattern(entry: str) -> str:
    text = normalize_text(entry)
    if text.endswith("*"):
        return re.escape(text.rstrip("*").strip())
    return re.escape(text) + "$"


# --------------------------------------------------------------------------- anchors: skip what cannot match

#: Literal runs shorter than this are not worth checking for.
MIN_ANCHOR = 3


def regex_anchors(pattern: str) -> tuple[frozenset[str], ...]:
    """Literal pieces that every match of a regular expression contains, as sets that must each be met.

    The result is a conjunction of alternatives: a match contains, for every set, at least one of
    its strings (``(oral|buccal)[^.]{0,40}ketamin`` gives ``({'oral', 'buccal'}, {'ketamin'})``). An
    empty tuple means nothing is known: the expression must always run. Strings are lower case
    (terms are matched against lower-cased text). Computed from the parsed expression, so that a
    rule written as ``re:`` skips every text that cannot match it, as plain terms do.
    """
    try:
        from re import _constants as codes  # type: ignore[attr-defined]
        from re import _parser as parser  # type: ignore[attr-defined]

        tree = parser.parse(pattern, re.IGNORECASE)
    except Exception:  # noqa: BLE001 - an unreadable expression is simply always run
        return ()
    return tuple(_sequence_anchors(list(tree), codes))


def _sequence_anchors(items, codes) -> list[frozenset[str]]:
    sets: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= MIN_ANCHOR:
            sets.append(frozenset({"".join(run)}))
        run.clear()

    for op, arg in items:
        if op is codes.LITERAL:
            run.append(chr(arg).lower())
            continue
        flush()
        if op is codes.SUBPATTERN:
            sets.extend(_sequence_anchors(list(arg[-1]), codes))
        elif op is codes.BRANCH:
            sets.extend(_branch_anchors([_sequence_anchors(list(alternative), codes) for alternative in arg[1]]))
        elif op in (codes.MAX_REPEAT, codes.MIN_REPEAT, getattr(codes, "POSSESSIVE_REPEAT", None)) and arg[0] >= 1:
            sets.extend(_sequence_anchors(list(arg[2]), codes))
        # anything else (classes, any character, positions, look-arounds, backreferences) tells nothing
    flush()
    return sets


#: Most sets an alternation's anchors expand to (beyond, each alternative keeps its best set only).
MAX_ANCHOR_SETS = 16


def _branch_anchors(alternatives: list[list[frozenset[str]]]) -> list[frozenset[str]]:
    """What every match of ``A | B | …`` contains, given what each alternative's matches contain.

    (a1 and a2) or (b1 and b2) is (a1 or b1) and (a1 or b2) and (a2 or b1) and (a2 or b2): every
    combination of one set per alternative, united. When that is too many sets, each alternative
    keeps only its longest-anchored set (still true, less selective)."""
    if not alternatives or any(not sets for sets in alternatives):
        return []
    total = 1
    for sets in alternatives:
        total *= len(sets)
    if total > MAX_ANCHOR_SETS:
        alternatives = [[max(sets, key=lambda choice: min(map(len, choice)))] for sets in alternatives]
    combined = [frozenset().union(*choice) for choice in itertools.product(*alternatives)]
    return list(dict.fromkeys(combined))


class _Gate:
    """Whether one of a list of terms may match, from the anchors a text contains.

    Each term gives sets of which a match contains one string apiece (:func:`term_anchors`,
    :func:`regex_anchors`); a term with none may always match. Terms needing one word are checked
    together (one set intersection), terms needing several words with one subset test each."""

    def __init__(self, alternatives: list[tuple[frozenset[str], ...]]):
        self.always = any(not anchor_sets for anchor_sets in alternatives)
        single: set[str] = set()
        subsets: set[frozenset[str]] = set()
        general: list[tuple[frozenset[str], ...]] = []
        for anchor_sets in alternatives:
            if len(anchor_sets) == 1:
                single |= anchor_sets[0]
            elif anchor_sets and all(len(choices) == 1 for choices in anchor_sets):
                subsets.add(frozenset().union(*anchor_sets))
            elif anchor_sets:
                general.append(anchor_sets)
        self.single = frozenset(single)
        self.subsets = [required for required in subsets if not required & self.single]  # implied by single otherwise
        self.general = general

    def __call__(self, present: frozenset[str]) -> bool:
        if self.always or not present.isdisjoint(self.single):
            return True
        for required in self.subsets:
            if required <= present:
                return True
        for anchor_sets in self.general:
            for choices in anchor_sets:
                if present.isdisjoint(choices):
                    break
            else:
                return True
        return False


# --------------------------------------------------------------------------- one scan per text for the whole vocabulary

#: What ``(?<![a-z0-9])`` and ``(?![a-z0-9])`` look for around a plain term.
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
#: Whitespace other than a plain space: ``[\s\-]?`` in a term matches it too, so the scan sees it as a space.
_OTHER_SPACE = re.compile(r"[^\S ]")


def term_forms(term: str) -> tuple[list[str], bool, bool]:
    """The literal forms a plain term matches, and whether a match must start and end at a word boundary.

    Exactly what :func:`term_pattern` matches: its words joined by a space, a hyphen or nothing
    (``"post-traumatic"``: "post traumatic", "post-traumatic", "posttraumatic"), a word-start check
    when the term begins with a letter or digit, a word-end check unless it is a prefix (``*``) or
    ends with another character."""
    text, parts, prefix = plain_term_parts(term)
    forms = [parts[0]]
    for part in parts[1:]:
        forms = [form + gap + part for form in forms for gap in (" ", "-", "")]
    return list(dict.fromkeys(forms)), text[0].isalnum(), not prefix and text[-1].isalnum()


@dataclass
class Scan:
    """What one pass of the vocabulary's automaton found in a text."""

    hits: dict[int, list[tuple[int, int]]]  # plain term key -> (start, end) of each occurrence, word checks passed
    anchors: frozenset[str]  # anchors of ``re:`` terms (:func:`regex_anchors`) that occur


class _Vocabulary:
    """Every plain term (as its literal forms) and every anchor of every ``re:`` term of every compiled
    rule, in one Aho-Corasick automaton: one pass over a text finds them all, for all rules at once.

    A plain term is known by its key (one per distinct :func:`term_pattern`); a rule maps the keys of
    its terms to their indices. Rules compiled later add to the automaton (``generation`` says so)."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.forms: dict[str, list[tuple[int, bool, bool]]] = {}
        self.anchors: set[str] = set()
        self.automaton: Any = None
        self.generation = 0

    def key(self, term: str) -> int:
        pattern = term_pattern(term)
        key = self.keys.get(pattern)
        if key is None:
            key = self.keys[pattern] = len(self.keys)
            forms, start, end = term_forms(term)
            for form in forms:
                self.forms.setdefault(form, []).append((key, start, end))
            self._changed()
        return key

    def register_anchors(self, anchors: Iterable[str]) -> None:
        new = set(anchors) - self.anchors
        if new:
            self.anchors |= new
            self._changed()

    def _changed(self) -> None:
        self.automaton = None  # rebuilt on the next scan; what was found before is stale
        self.generation += 1

    def _build(self):
        automaton = ahocorasick.Automaton()
        for literal in set(self.forms) | self.anchors:
            automaton.add_word(literal, (len(literal), literal in self.anchors and literal, tuple(self.forms.get(literal, ()))))
        if len(automaton):
            automaton.make_automaton()
        self.automaton = automaton
        return automaton

    def scan(self, text: str) -> Scan:
        automaton = self.automaton or self._build()
        hits: dict[int, list[tuple[int, int]]] = {}
        anchors: list[str] = []
        if not text or not len(automaton):
            return Scan(hits, frozenset())
        seen = _OTHER_SPACE.sub(" ", text)
        size = len(seen)
        word = _WORD_CHARS
        for last, (length, anchor, forms) in automaton.iter(seen):
            if anchor:
                anchors.append(anchor)
            if forms:
                start, end = last - length + 1, last + 1
                starts = start == 0 or seen[start - 1] not in word
                ends = end == size or seen[end] not in word
                for key, need_start, need_end in forms:
                    if (starts or not need_start) and (ends or not need_end):
                        hits.setdefault(key, []).append((start, end))
        return Scan(hits, frozenset(anchors))


_VOCABULARY = _Vocabulary()


class Gated:
    """A regular expression that runs only on texts holding the literal pieces every match of it contains
    (:func:`regex_anchors`), found by the same scan as the vocabulary: ``search(text, scan)`` is
    ``pattern.search(text)``, skipped where it cannot match."""

    def __init__(self, pattern: re.Pattern):
        self.pattern = pattern
        self.gate = _Gate([regex_anchors(pattern.pattern)])
        gate = self.gate
        _VOCABULARY.register_anchors(gate.single.union(*gate.subsets, *(c for sets in gate.general for c in sets)))

    def runs(self, scan: Scan) -> bool:
        return self.gate(scan.anchors)

    def search(self, text: str, scan: Scan) -> re.Match | None:
        return self.pattern.search(text) if self.gate(scan.anchors) else None


class WorkCache:
    """What is computed once per work and shared by every rule, relevance, tags, evidence and focus: each
    text's scan, each text blanked by each exclusion list, and anything else keyed by ``memo``."""

    __slots__ = ("generation", "scans", "blanked", "memo")

    def __init__(self) -> None:
        self.generation = _VOCABULARY.generation
        self.scans: dict[str, Scan] = {}
        self.blanked: dict[tuple[Any, str], tuple[str, list[str]]] = {}
        self.memo: dict[Any, Any] = {}

    def scan(self, text: str) -> Scan:
        if self.generation != _VOCABULARY.generation:  # rules compiled since: look again
            self.generation = _VOCABULARY.generation
            self.scans.clear()
        found = self.scans.get(text)
        if found is None:
            found = self.scans[text] = _VOCABULARY.scan(text)
        return found


class _Terms:
    """A compiled list of terms, read from the scans of a work's texts.

    Plain terms are found by the vocabulary's automaton (:class:`Scan`); among the occurrences of its
    terms, a list keeps what a regular expression of them (one alternative per term, in list order)
    would match: leftmost first, at one position the earliest term, never overlapping. The ``re:``
    terms are one expression, run only on texts that contain its anchors (:func:`regex_anchors`);
    its groups are named ``t<index in terms>``. Plain matches come first, as the two expressions did.
    """

    def __init__(self, terms: list[str]):
        self.terms = terms
        self.keys: dict[int, int] = {}  # plain term key -> index of its first term in the list
        regex = [(i, t) for i, t in enumerate(terms) if t.startswith("re:")]
        for index, term in enumerate(terms):
            if not term.startswith("re:"):
                self.keys.setdefault(_VOCABULARY.key(term), index)
        self.regex: re.Pattern | None = None
        self.gate: _Gate | None = None
        if regex:
            self.regex = re.compile("|".join(f"(?P<t{i}>{term_pattern(t)})" for i, t in regex), re.I)
            self.gate = _Gate([regex_anchors(term_pattern(t)) for _, t in regex])
            gate = self.gate
            _VOCABULARY.register_anchors(gate.single.union(*gate.subsets, *(c for sets in gate.general for c in sets)))

    def possible(self, keys: Iterable[int], present: frozenset[str]) -> bool:
        """Whether a term can match somewhere in texts that, together, hold these plain terms and anchors."""
        if not self.keys.keys().isdisjoint(keys):
            return True
        return self.gate is not None and self.gate(present)

    def _plain(self, scan: Scan) -> list[tuple[int, int, int]]:
        """(start, end, index) of what the plain terms match, left to right."""
        hits = scan.hits
        if not hits:
            return []
        common = self.keys.keys() & hits.keys()
        if not common:
            return []
        keys = self.keys
        if len(common) == 1:
            key = next(iter(common))
            index = keys[key]
            found = sorted((start, index, end) for start, end in hits[key])
        else:
            found = sorted((start, keys[key], end) for key in common for start, end in hits[key])
        matches = []
        position = 0
        for start, index, end in found:
            if start >= position:
                matches.append((start, end, index))
                position = end
        return matches

    def _regex_runs(self, scan: Scan) -> bool:
        return self.regex is not None and self.gate is not None and (self.gate.always or self.gate(scan.anchors))

    def matches(self, text: str, scan: Scan) -> list[tuple[int, int, int]]:
        """(start, end, index of the term) of every match in the text: plain terms', then ``re:`` terms'."""
        found = self._plain(scan)
        if self.regex is not None and self._regex_runs(scan):
            found += [(m.start(), m.end(), int(m.lastgroup[1:])) for m in self.regex.finditer(text)]  # type: ignore[index]
        return found

    def first(self, text: str, scan: Scan) -> tuple[int, int] | None:
        """(start, end) of the first match, as ``search`` would find it (plain terms first)."""
        found = self._plain(scan)
        if found:
            return found[0][0], found[0][1]
        if self.regex is not None and self._regex_runs(scan):
            match = self.regex.search(text)
            if match:
                return match.span()
        return None

    def blank(self, text: str, scan: Scan) -> tuple[str, list[str]]:
        """The text with every match replaced by spaces (plain terms first, then the ``re:`` expression on
        the result), and the words blanked, in order."""
        found: list[str] = []
        plain = self._plain(scan)
        if plain:
            pieces, position = [], 0
            for start, end, _ in plain:
                words = _whole_words(text, start, end)
                if words not in found:
                    found.append(words)
                pieces += [text[position:start], " " * (end - start)]
                position = end
            blanked = "".join(pieces) + text[position:]
        else:
            blanked = text
        if self.regex is not None and self._regex_runs(scan):

            def blank(match: re.Match) -> str:
                words = _whole_words(match.string, match.start(), match.end())
                if words not in found:
                    found.append(words)
                return " " * len(match.group(0))

            blanked = self.regex.sub(blank, blanked)
        return blanked, found


_COMPILED: dict[tuple[str, ...], _Terms] = {}


def _terms(terms: list[str]) -> _Terms | None:
    """The compiled list (one per distinct list: rules that share an exclusion list share its blanking)."""
    if not terms:
        return None
    key = tuple(terms)
    if key not in _COMPILED:
        _COMPILED[key] = _Terms(list(terms))
    return _COMPILED[key]


class _Mesh:
    """MeSH entries: exact descriptor names and prefixes (``*``), case-insensitive; the first entry that
    matches a heading is the one named (as one expression of them, in list order, would)."""

    def __init__(self, entries: list[str]):
        self.exact: dict[str, int] = {}
        self.prefixes: list[tuple[str, int]] = []
        for index, entry in enumerate(entries):
            text = normalize_text(entry)
            if text.endswith("*"):
                self.prefixes.append((text.rstrip("*").strip(), index))
            else:
                self.exact.setdefault(text, index)
        self.starts = tuple(prefix for prefix, _ in self.prefixes)

    def match(self, heading: str) -> int | None:
        heading = heading.lower()
        index = self.exact.get(heading)
        if self.starts and heading.startswith(self.starts):
            first = min(i for prefix, i in self.prefixes if heading.startswith(prefix))
            index = first if index is None else min(index, first)
        return index


def _whole_words(text: str, start: int, end: int) -> str:
    """The matched words, a prefix match completed to the end of its word (for the reasons)."""
    size = len(text)
    while end < size and text[end].isalnum():
        end += 1
    return text[start:end]


#: Text fields in the order rules read them: (field name in reasons, Doc attribute).
_FIELDS = (("title", "titles"), ("trial", "trial"), ("keywords", "keywords"), ("abstract", "abstracts"))

#: A work's texts, each with its scan, by field; the plain term keys and anchors found in any of them.
_Scanned = tuple[list[tuple[str, list[tuple[str, Scan]]]], set[int], frozenset[str]]


@dataclass
class Doc:
    """The text of one work, normalised: what every rule reads.

    ``cache`` holds what is computed once per work (each text's scan; :class:`WorkCache`); a Doc
    derived from another (:func:`crawler.focus.focus_doc`) shares it."""

    titles: list[str] = field(default_factory=list)
    abstracts: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    trial: list[str] = field(default_factory=list)  # trial conditions and interventions
    mesh: list[str] = field(default_factory=list)
    cache: WorkCache = field(default_factory=WorkCache, repr=False, compare=False)

    def texts(self, name: str) -> list[str]:
        return {
            "title": self.titles,
            "abstract": self.abstracts,
            "keywords": self.keywords,
            "trial": self.trial,
            "mesh": self.mesh,
        }[name]

    def scanned(self) -> _Scanned:
        """Each text field's texts with their scans, and what was found in any (remembered while the texts stay)."""
        memo = self.__dict__.get("_scanned")
        key = (_VOCABULARY.generation, len(self.titles), len(self.trial), len(self.keywords), len(self.abstracts))
        if memo is not None and memo[0] == key:  # texts are added while a Doc is built, not changed once it is read
            return memo[1]
        scan = self.cache.scan
        fields = [(name, [(text, scan(text)) for text in getattr(self, attribute)]) for name, attribute in _FIELDS]
        keys: set[int] = set()
        anchors: set[str] = set()
        for _, items in fields:
            for _, found in items:
                keys.update(found.hits)
                anchors.update(found.anchors)
        value = (fields, keys, frozenset(anchors))
        self.__dict__["_scanned"] = (key, value)
        return value

    def headings(self) -> tuple[str, ...]:
        """The MeSH headings in lower case (as MeSH entries are matched)."""
        memo = self.__dict__.get("_headings")
        if memo is None or len(memo) != len(self.mesh):
            memo = self.__dict__["_headings"] = tuple(heading.lower() for heading in self.mesh)
        return memo

    def anchors(self) -> frozenset[str]:
        """The anchors of the vocabulary's ``re:`` terms found in any text of the work."""
        return self.scanned()[2]


@functools.lru_cache(maxsize=4096)
def _normal_term(term: str) -> str:
    return normalize_text(term)


@dataclass
class Hit:
    field: str
    term: str
    text: str  # the words as found
    count: int = 1

    def describe(self) -> str:
        times = f" x{self.count}" if self.count > 1 else ""
        term = _normal_term(self.term)
        plain = self.text == term or (term.endswith("*") and self.text.startswith(term.rstrip("*")))
        shown = self.term if len(self.term) <= 40 else self.term[:37] + "..."
        found = f"'{self.text}'" if plain else f"'{self.text}' (term '{shown}')"
        return f"{found} in {self.field}{times}"


@dataclass
class RuleResult:
    rule: TermRule
    strength: int = 0
    hits: list[Hit] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    cancelled_by: str | None = None
    missing_require: bool = False

    @property
    def fired(self) -> bool:
        return self.strength >= self.rule.min_strength and self.cancelled_by is None and not self.missing_require

    def evidence(self) -> str:
        """The hits as one line: ``'nasal spray' in title; 'esketamine nasal spray' in abstract x2``."""
        return "; ".join(hit.describe() for hit in self.hits)


@dataclass
class TermRule:
    """A named list of terms and MeSH entries with optional conditions.

    ``exclude``: phrases blanked out before matching (``respiratory depression`` is no depression);
    ``require``: at least one of these terms must also appear somewhere; ``unless``: the rule does
    not apply when one of these terms appears; ``min_strength``: the weakest match that counts.
    """

    name: str
    terms: list[str] = field(default_factory=list)
    mesh: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    require: list[str] = field(default_factory=list)
    unless: list[str] = field(default_factory=list)
    min_strength: int = 1
    penalty: int = 0
    category: str | None = None

    def __post_init__(self):
        self._terms = _terms(self.terms)
        self._mesh = _Mesh(self.mesh) if self.mesh else None
        self._exclude = _terms(self.exclude)
        self._require = _terms(self.require)
        self._unless = _terms(self.unless)
        lists = [terms for terms in (self._terms, self._exclude) if terms is not None]
        self._keys = frozenset(key for terms in lists for key in terms.keys)  # what makes the rule worth running
        self._gates = [terms.gate for terms in lists if terms.gate is not None]

    def evaluate(self, doc: Doc) -> RuleResult:
        result = RuleResult(self)
        if not self.may_match(doc):
            return result
        fields, keys, present = doc.scanned()
        # a list of terms none of which the work's texts contain is not run (and exclusions that cannot
        # match leave the texts as they are)
        excluding = self._exclude is not None and self._exclude.possible(keys, present)
        matching = self._terms is not None and self._terms.possible(keys, present)
        blanked = False
        if excluding:
            assert self._exclude is not None
            kept = []
            for name, items in fields:
                pairs = [self._blank(doc, text, found, result) for text, found in items]
                blanked = blanked or any(pair[0] is not text for pair, (text, _) in zip(pairs, items))
                kept.append((name, pairs))
            fields = kept
        if self._terms is not None and (blanked or matching):
            for name, items in fields:
                if items:
                    self._match_field(name, items, result)
        if self._mesh is not None:
            for heading in doc.mesh:
                index = self._mesh.match(heading)
                if index is not None:
                    result.hits.append(Hit("mesh", self.mesh[index], heading))
                    result.strength = max(result.strength, FIELD_STRENGTH["mesh"])
        if result.strength and self._require is not None:
            result.missing_require = not any(self._require.first(text, found) for _, items in fields for text, found in items)
        if result.strength and self._unless is not None:
            for name, items in fields:
                for text, found in items:
                    span = self._unless.first(text, found)
                    if span:
                        result.cancelled_by = f"'{_whole_words(text, *span)}' in {name}"
                        break
                if result.cancelled_by:
                    break
        return result

    def may_match(self, doc: Doc) -> bool:
        """Whether the rule can find anything in the work: when not, :meth:`evaluate` gives an empty result."""
        _, keys, present = doc.scanned()
        if not keys.isdisjoint(self._keys):
            return True
        for gate in self._gates:
            if gate(present):
                return True
        mesh = self._mesh
        if mesh is not None and doc.mesh:
            headings = doc.headings()
            if not mesh.exact.keys().isdisjoint(headings):
                return True
            if mesh.starts:
                for heading in headings:
                    if heading.startswith(mesh.starts):
                        return True
        return False

    def _blank(self, doc: Doc, text: str, found: Scan, result: RuleResult) -> tuple[str, Scan]:
        """The text with this rule's exclusions blanked (once per work, exclusion list and text), and its scan."""
        if self._exclude is None or not text:
            return text, found
        key = (self._exclude, text)
        done = doc.cache.blanked.get(key)
        if done is None:
            done = doc.cache.blanked[key] = self._exclude.blank(text, found)
        for words in done[1]:
            if words not in result.excluded:
                result.excluded.append(words)
        if done[0] == text:
            return text, found
        return done[0], doc.cache.scan(done[0])  # blanking may make and unmake matches: the blanked text is scanned

    def _match_field(self, name: str, items: list[tuple[str, Scan]], result: RuleResult) -> None:
        found: dict[str, Hit] = {}
        best_count = 0
        terms = self._terms
        assert terms is not None
        for text, scan in items:
            matches = terms.matches(text, scan)
            if not matches:
                continue
            counts: dict[str, int] = {}
            for start, end, index in matches:
                words = _whole_words(text, start, end)
                counts[words] = counts.get(words, 0) + 1
                if words not in found:
                    found[words] = Hit(name, self.terms[index], words, 0)
            for words, count in counts.items():  # the same abstract from two sources is not two mentions
                found[words].count = max(found[words].count, count if name == "abstract" else 1)
            best_count = max(best_count, sum(counts.values()))
        if not found:
            return
        result.hits.extend(found.values())
        if name == "abstract":
            strength = ABSTRACT_MANY if best_count >= 2 else ABSTRACT_ONE
        else:
            strength = FIELD_STRENGTH[name]
        result.strength = max(result.strength, strength)
