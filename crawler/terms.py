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

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

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


def term_anchor(term: str) -> str | None:
    """A piece of text every match of the term contains (None for a regular expression): a fast pre-check."""
    if term.startswith("re:"):
        return None
    parts = [p for p in re.split(r"[\s\-]+", normalize_text(term).rstrip("*")) if p]
    return max(parts, key=len) if parts else None


class _Terms:
    """Compiled terms with a substring pre-check (most texts contain none of a rule's words).

    Plain terms and ``re:`` terms are two expressions: only the plain ones can be pre-checked.
    Match groups are named ``t<index in terms>`` in both.
    """

    def __init__(self, terms: list[str]):
        self.terms = terms
        plain = [(i, t) for i, t in enumerate(terms) if not t.startswith("re:")]
        regex = [(i, t) for i, t in enumerate(terms) if t.startswith("re:")]
        self.parts = []
        if plain:
            # the word-start check once for all terms, not once per term: several times faster
            patterns = [(i, term_pattern(t)) for i, t in plain]
            bounded = "|".join(f"(?P<t{i}>{p[len(_BOUNDARY) :]})" for i, p in patterns if p.startswith(_BOUNDARY))
            loose = [f"(?P<t{i}>{p})" for i, p in patterns if not p.startswith(_BOUNDARY)]
            expression = "|".join(([f"{_BOUNDARY}(?:{bounded})"] if bounded else []) + loose)
            self.parts.append((re.compile(expression), tuple(sorted({term_anchor(t) for _, t in plain}))))
        if regex:
            self.parts.append((re.compile("|".join(f"(?P<t{i}>{term_pattern(t)})" for i, t in regex), re.I), None))

    def _active(self, text: str):
        for compiled, anchors in self.parts:
            if anchors is None or any(a in text for a in anchors):
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
        self._require = _terms(self.require)
        self._unless = _terms(self.unless)

    def evaluate(self, doc: Doc) -> RuleResult:
        result = RuleResult(self)
        texts = {name: [self._blank(t, result) for t in doc.texts(name)] for name in TEXT_FIELDS}
        if self._terms is not None:
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

        def blank(match: re.Match) -> str:
            words = _whole_words(match.string, match)
            if words not in result.excluded:
                result.excluded.append(words)
            return " " * len(match.group(0))

        return self._exclude.sub(blank, text)

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
