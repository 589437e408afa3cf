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

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    text = _DASHES.sub("-", text.translate(_QUOTES))
    return _SPACES.sub(" ", text).strip().lower()


def term_pattern(term: str) -> str:
    """The regular expression of one term (see the module docstring for the syntax)."""
    if term.startswith("re:"):
        return term[3:]
    text = normalize_text(term)
    prefix = text.endswith("*")
    text = text.rstrip("*").strip()
    if not text:
        raise ValueError("empty term")
    parts = [p for p in re.split(r"[\s\-]+", text) if p]
    body = r"[\s\-]?".join(re.escape(p) for p in parts)
    start = _BOUNDARY if text[0].isalnum() else ""
    end = "" if prefix or not text[-1].isalnum() else r"(?![a-z0-9])"
    return start + body + end


def mesh_pattern(entry: str) -> str:
    text = normalize_text(entry)
    if text.endswith("*"):
        return re.escape(text.rstrip("*").strip())
    return re.escape(text) + "$"


# --------------------------------------------------------------------------- anchors: skip what cannot match

#: Literal runs shorter than this are not worth checking for.
MIN_ANCHOR = 3
#: Texts whose anchors are remembered (a work's texts are read by every rule, then never again).
_PRESENT_CACHE_SIZE = 4096


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


class _AnchorIndex:
    """Every anchor of every compiled rule, in one Aho-Corasick automaton: one pass over a text
    tells which anchors it contains, for all rules at once."""

    def __init__(self) -> None:
        self.anchors: set[str] = set()
        self.automaton = None
        self.present: dict[str, frozenset[str]] = {}
        self.generation = 0  # bumped whenever anchors are added: what was found before is stale

    def register(self, anchors) -> None:
        new = set(anchors) - self.anchors
        if new:
            self.anchors |= new
            self.automaton = None  # rebuilt, and what was found forgotten, on the next look-up
            self.present = {}
            self.generation += 1

    def find(self, text: str) -> frozenset[str]:
        found = self.present.get(text)
        if found is not None:
            return found
        automaton = self.automaton
        if automaton is None:
            automaton = ahocorasick.Automaton()
            for anchor in self.anchors:
                automaton.add_word(anchor, anchor)
            automaton.make_automaton()
            self.automaton = automaton
        found = frozenset(anchor for _, anchor in automaton.iter(text)) if self.anchors else frozenset()
        if len(self.present) >= _PRESENT_CACHE_SIZE:
            self.present = {}
        self.present[text] = found
        return found


_ANCHORS = _AnchorIndex()
#: (exclusion list, text) -> (the text with the phrases blanked, the phrases found in order)
_BLANKED: dict[tuple[tuple[str, ...], str], tuple[str, list[str]]] = {}


def anchors_in(text: str) -> frozenset[str]:
    """The anchors of the compiled vocabulary that ``text`` contains (remembered for the text)."""
    return _ANCHORS.find(text)


#: The word-start check placed after a term's first character: that character is then the first thing
#: each alternative matches, so the expression engine skips every position where no term can start
#: (and every alternative whose first character differs) instead of entering each alternative there.
_BOUNDARY_AFTER_FIRST = r"(?<![a-z0-9].)"


def _alternative(index: int, pattern: str) -> str:
    """One term of a combined expression, as the named group ``t<index>``.

    A word-start term ``(?<![a-z0-9])k…`` becomes ``k(?<![a-z0-9].)(?P<t3>…)``: the same matches (the
    character before the match is not a letter or digit; the start of the text is a word start), found
    faster."""
    if pattern.startswith(_BOUNDARY):
        body = pattern[len(_BOUNDARY) :]
        if body and body[0].isalnum():
            return f"{body[0]}{_BOUNDARY_AFTER_FIRST}(?P<t{index}>{body[1:]})"
    return f"(?P<t{index}>{pattern})"


def term_anchors(term: str) -> tuple[frozenset[str], ...]:
    """What every match of a plain term contains: each of its words (the longest one alone when all
    are shorter than :data:`MIN_ANCHOR`)."""
    parts = [p for p in re.split(r"[\s\-]+", normalize_text(term).rstrip("*")) if p]
    kept = [p for p in parts if len(p) >= MIN_ANCHOR] or [max(parts, key=len)]
    return tuple(frozenset({p}) for p in dict.fromkeys(kept))


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
        return any(all(not present.isdisjoint(choices) for choices in anchor_sets) for anchor_sets in self.general)


class _Terms:
    """Compiled terms that run only on texts containing their anchors (most texts contain none of a
    rule's words).

    Plain terms and ``re:`` terms are two expressions, each with the anchors every match contains
    (a plain term's longest word; the literal pieces of an expression, :func:`regex_anchors`).
    Match groups are named ``t<index in terms>`` in both.
    """

    def __init__(self, terms: list[str]):
        self.terms = terms
        plain = [(i, t) for i, t in enumerate(terms) if not t.startswith("re:")]
        regex = [(i, t) for i, t in enumerate(terms) if t.startswith("re:")]
        self.parts: list[tuple[re.Pattern, _Gate]] = []
        if plain:
            # the word-start check once for all terms, not once per term: several times faster
            patterns = [(i, term_pattern(t)) for i, t in plain]
            expression = "|".join(_alternative(i, p) for i, p in patterns)
            self.parts.append((re.compile(expression), _Gate([term_anchors(t) for _, t in plain])))
        if regex:
            expression = "|".join(f"(?P<t{i}>{term_pattern(t)})" for i, t in regex)
            self.parts.append((re.compile(expression, re.I), _Gate([regex_anchors(term_pattern(t)) for _, t in regex])))
        for _, gate in self.parts:
            _ANCHORS.register(gate.single.union(*gate.subsets, *(c for sets in gate.general for c in sets)))

    def possible(self, present: frozenset[str]) -> bool:
        """Whether any part can match somewhere in texts whose anchors, together, are ``present``."""
        return any(gate(present) for _, gate in self.parts)

    def _active(self, text: str):
        for compiled, gate in self.parts:
            if gate.always or gate(_ANCHORS.find(text)):
                yield compiled

    def search(self, text: str):
        for compiled in self._active(text):
            match = compiled.search(text)
            if match:
                return match
        return None

    def finditer(self, text: str):
        for compiled in self._active(text):
            yield from compiled.finditer(text)

    def sub(self, repl, text: str) -> str:
        for compiled in self._active(text):
            text = compiled.sub(repl, text)
        return text


def _terms(terms: list[str]) -> _Terms | None:
    return _Terms(terms) if terms else None


def compile_terms(terms: Iterable[str], pattern=term_pattern) -> re.Pattern | None:
    """One regular expression for a list of terms; the alternative that matched is ``t<index>``."""
    terms = list(terms)
    if not terms:
        return None
    parts = []
    for index, term in enumerate(terms):
        fragment = pattern(term)
        re.compile(fragment, re.I)  # a bad "re:" term fails here, on its own
        parts.append(f"(?P<t{index}>{fragment})")
    return re.compile("|".join(parts), re.I)


def _whole_words(text: str, match: re.Match) -> str:
    """The matched words, a prefix match completed to the end of its word (for the reasons)."""
    end = match.end()
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[match.start() : end]


@dataclass
class Doc:
    """The text of one work, normalised: what every rule reads."""

    titles: list[str] = field(default_factory=list)
    abstracts: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    trial: list[str] = field(default_factory=list)  # trial conditions and interventions
    mesh: list[str] = field(default_factory=list)

    def texts(self, name: str) -> list[str]:
        return {
            "title": self.titles,
            "abstract": self.abstracts,
            "keywords": self.keywords,
            "trial": self.trial,
            "mesh": self.mesh,
        }[name]

    def anchors(self) -> frozenset[str]:
        """The vocabulary's anchors found in any text of the work (one scan per text, remembered)."""
        key = (_ANCHORS.generation, tuple(self.titles), tuple(self.abstracts), tuple(self.keywords), tuple(self.trial))
        cached = self.__dict__.get("_anchors")
        if cached is not None and cached[0] == key:
            return cached[1]
        found = frozenset().union(*(_ANCHORS.find(text) for text in (*self.titles, *self.abstracts, *self.keywords, *self.trial)))
        self.__dict__["_anchors"] = (key, found)
        return found


@dataclass
class Hit:
    field: str
    term: str
    text: str  # the words as found
    count: int = 1

    def describe(self) -> str:
        times = f" x{self.count}" if self.count > 1 else ""
        term = normalize_text(self.term)
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
        self._mesh = compile_terms(self.mesh, mesh_pattern)
        self._exclude = _terms(self.exclude)
        self._exclude_key = tuple(self.exclude)
        self._require = _terms(self.require)
        self._unless = _terms(self.unless)

    def evaluate(self, doc: Doc) -> RuleResult:
        result = RuleResult(self)
        present = doc.anchors()
        # a list of terms none of whose anchors is in the work's texts cannot match: it is not run
        # (and exclusions that cannot match leave the texts as they are)
        if self._exclude is not None and self._exclude.possible(present):
            texts = {name: [self._blank(t, result) for t in doc.texts(name)] for name in TEXT_FIELDS}
        else:
            texts = {name: doc.texts(name) for name in TEXT_FIELDS}
        if self._terms is not None and self._terms.possible(present):
            for name in TEXT_FIELDS:
                self._match_field(name, texts[name], result)
        if self._mesh is not None:
            for heading in doc.mesh:
                match = self._mesh.match(heading)
                if match:
                    index = int(match.lastgroup[1:])
                    result.hits.append(Hit("mesh", self.mesh[index], heading))
                    result.strength = max(result.strength, FIELD_STRENGTH["mesh"])
        if result.strength and self._require is not None:
            result.missing_require = not any(self._require.search(t) for name in TEXT_FIELDS for t in texts[name])
        if result.strength and self._unless is not None:
            for name in TEXT_FIELDS:
                for text in texts[name]:
                    match = self._unless.search(text)
                    if match:
                        result.cancelled_by = f"'{_whole_words(text, match)}' in {name}"
                        break
                if result.cancelled_by:
                    break
        return result

    def _blank(self, text: str, result: RuleResult) -> str:
        if self._exclude is None or not text:
            return text
        key = (self._exclude_key, text)
        done = _BLANKED.get(key)
        if done is None:  # blanked once per distinct exclusion list and text, whichever rules share them
            found: list[str] = []

            def blank(match: re.Match) -> str:
                words = _whole_words(match.string, match)
                if words not in found:
                    found.append(words)
                return " " * len(match.group(0))

            done = (self._exclude.sub(blank, text), found)
            if len(_BLANKED) >= _PRESENT_CACHE_SIZE:
                _BLANKED.clear()
            _BLANKED[key] = done
        for words in done[1]:
            if words not in result.excluded:
                result.excluded.append(words)
        return done[0]

    def _match_field(self, name: str, texts: list[str], result: RuleResult) -> None:
        found: dict[str, Hit] = {}
        best_count = 0
        for text in texts:
            counts: dict[str, int] = {}
            for match in self._terms.finditer(text):
                words = _whole_words(text, match)
                counts[words] = counts.get(words, 0) + 1
                if words not in found:
                    found[words] = Hit(name, self.terms[int(match.lastgroup[1:])], words, 0)
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
