"""Where a work mentions its focus concept: as its subject, or only in passing.

A work is *about* the focus concept (``[topic.relevance] focus_concept``, shipped: the drug) when
the concept is the subject of its title, is in its MeSH headings, keywords or a trial's fields, or
is named in an objective, methods or results sentence of its abstract. A mention only in background,
comparison or discussion sentences is a *passing mention* ("…rather than rapid-acting agents such as
ketamine", "unlike ketamine", "esketamine was recently approved", "future studies of ketamine"): it
does not make the work about the concept.

:func:`focus_doc` returns a copy of a :class:`crawler.terms.Doc` in which passing mentions are
blanked out (the abstract keeps only its objective/methods/results sentences for the rule to read,
and a title mention that is a comparison is dropped), with a list of what was dropped and why.
Pure functions on normalised (lower-case) text; the words are general English, not topic terms.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import ahocorasick_rs

from crawler.abstracts import FOCUS_ENDS, ascii_form, category_of, is_label, pieces, reads_as_ascii, sentence_ends
from crawler.evidence import sparse_gated
from crawler.terms import MATCHED, Doc, Gated, Scan, TermRule, regex_anchors

#: NLM category of a section label (crawler.abstracts) -> the role of its sentences here.
ROLE_OF_CATEGORY = {
    "BACKGROUND": "background",
    "OBJECTIVE": "objective",
    "METHODS": "methods",
    "RESULTS": "results",
    "CONCLUSIONS": "discussion",
}

_LABEL = re.compile(r"^([a-z][a-z ,'/&-]{2,40}?)\s*:\s+")
#: Where sentences part: whitespace after ``.``, ``!`` or ``?`` before a lower-case letter, a digit or a bracket
#: (``(?<=[.!?])\s+(?=[a-z0-9(\[])``), or line breaks (``\n+``); written to start with the whitespace every
#: separator starts with, so that the expression engine tries only the whitespace, not every position.
_SENTENCE = re.compile(r"\s(?:(?<=[.!?]\s)\s*(?=[a-z0-9(\[])|(?<=\n)\n*)")
#: A sentence that states this work's aim or design: what follows it is no longer background. Only whether it matches is
#: read. The words are grouped by their first letter (we, was/were ..., this/these/the present ..., the aim ..., to
#: evaluate ..., our ..., objectives, here we, an age, aimed, sought, subjects ..., participants, patients ...): at each
#: word start the expression engine tests one letter per group instead of entering every alternative (the same
#: sentences match; a synthetic record's one search: 8.1 -> 5.1 µs).
_AIM_NOUNS = r"(?:study|trial|analysis|report|paper|article|work|review|letter|case|cohort|survey)"
_AIM_DONE = r"(?:randomi[sz]ed|randomly|enrolled|recruited|treated|included|assigned|allocated|analy[sz]ed|given|administered)"
_AIM_TO = r"(?:evaluate|assess|investigate|examine|determine|compare|test|explore|describe|characteri[sz]e)"
_AIM = re.compile(
    rf"\b(?:w(?:e|as {_AIM_DONE}|ere {_AIM_DONE})|"
    rf"t(?:h(?:is|ese|e present) (?:[a-z-]+ ){{0,3}}?{_AIM_NOUNS}|he (?:aim|objective|purpose|goal)s? (?:of|was|were|is)|o {_AIM_TO})|"
    rf"o(?:ur (?:[a-z-]+ ){{0,3}}?{_AIM_NOUNS}|ur (?:aim|objective)|bjectives?)|"
    rf"here,? we|\d{{1,3}}[\s-]year[\s-]old|aimed|s(?:ought|ubjects (?:with|received|were))|"
    rf"p(?:articipants|atients (?:with|received|were)))\b"
)


def _words_begun(alternatives: str) -> list[str]:
    """The literal start of each word of a group of :data:`_AIM`'s (``(?:randomi[sz]ed|randomly|…)`` gives
    ``randomi``, ``randomly``, …)."""
    return [word.split("[")[0] for word in alternatives[3:-1].split("|")]


#: Pieces one of which every match of :data:`_AIM` holds (its words, each cut where it stops being literal): a sentence
#: holding none states no aim or design. :func:`crawler.terms.regex_anchors` finds none ("we" is two letters, and the
#: grouped words are cut by their groups). An automaton tells such sentences at about a quarter of what the expression's
#: search costs on one (it tries every position): 28k -> 6.9k instructions per search of the synthetic records' sentences,
#: which hold none; 16.5k -> 14.6k on the labelled set's abstracts' sentences, 40 % of which hold none.
_AIM_PIECES = (
    ["we", "this ", "these ", "the present ", "our ", "objective", "here", "year", "aimed", "sought", "subjects "]
    + ["participants", "patients ", "the aim", "the purpose", "the goal"]
    + ["was " + word for word in _words_begun(_AIM_DONE)]
    + ["to " + word for word in _words_begun(_AIM_TO)]
)


class _StrFinder:
    """An automaton (ahocorasick-rs) of some literal pieces, made when first asked to search (:meth:`find_matches_as_indexes`,
    as the automaton's): only a text outside ASCII asks it (an ASCII one is read as bytes, :func:`_holds_pieces`), so a
    process that reads none never builds one (~13M instructions for the aim, discussion and passing pieces' sets)."""

    __slots__ = ("pieces", "automaton")

    def __init__(self, pieces: list[str]):
        self.pieces = pieces
        self.automaton: ahocorasick_rs.AhoCorasick | None = None

    def find_matches_as_indexes(self, text: str) -> list[tuple[int, int, int]]:
        automaton = self.automaton
        if automaton is None:  # (two threads may both make it: the same automaton)
            automaton = self.automaton = ahocorasick_rs.AhoCorasick(self.pieces)
        return automaton.find_matches_as_indexes(text)


class _Finders(tuple[_StrFinder, ...]):
    """A finder (:class:`_StrFinder`) for each of some sets of literal pieces (:func:`_holds_pieces`), the sets
    (``pieces``), and ``in_bytes``: automata of the pieces' bytes, which read an ASCII text's bytes, made when first
    needed (None before: ~1.3M instructions for the aim words' alone, not paid at import)."""

    pieces: list[list[str]]
    in_bytes: tuple[ahocorasick_rs.BytesAhoCorasick, ...] | None


def _finders(sets: Iterable[Iterable[str]]) -> _Finders:
    """The :class:`_Finders` of these sets of pieces, in this order."""
    ordered = [sorted(pieces) for pieces in sets]
    finders = _Finders(_StrFinder(pieces) for pieces in ordered)
    finders.pieces = ordered
    finders.in_bytes = None
    return finders


def _in_bytes(finders: _Finders) -> tuple[ahocorasick_rs.BytesAhoCorasick, ...]:
    """``finders.in_bytes``, made now if not yet (two threads may both make it: the same automata)."""
    found = finders.in_bytes
    if found is None:
        found = tuple(ahocorasick_rs.BytesAhoCorasick([piece.encode() for piece in pieces]) for pieces in finders.pieces)
        finders.in_bytes = found
    return found


_AIM_FINDERS = _finders([_AIM_PIECES])
#: Sentences about other work or future work (discussion), wherever they stand.
_DISCUSSION = re.compile(
    r"\b(future (studies|research|trials|work|investigations?)|further (studies|research|trials|investigation)|"
    r"(is|are) (needed|warranted|required)|should (be|now)|remains? (unclear|unknown|to be)|more research)\b"
)
#: Constructions that name the drug only as a comparison, an example or an exclusion.
_PASSING_BEFORE = (
    r"such as|like|unlike|e\.g\.,?|i\.e\.,?|similar to|similarly to|compared (?:with|to)|comparable to|"
    r"relative to|other than|beyond|alternatives? to|analogous to|as with|as does|as did|resembling|"
    r"in contrast to|contrary to|as opposed to|mimic(?:s|king)?|rather than|instead of"
)
#: Words that make an aside only right before the drug ("than ketamine", "including esketamine"),
#: not a few words earlier ("more than three ketamine infusions" is about ketamine).
_PASSING_NEXT = r"than|including|excluding|excluded|(?:history of|prior|previous|past) (?:use of |treatment with |exposure to )?"
#: In a title only the plain comparisons count: "beyond ketamine" or "including ketamine" may head a review or news.
_TITLE_BEFORE = r"such as|like|unlike|similar to|rather than|instead of|as opposed to|in contrast to|mimic(?:s|king)?"
_PASSING_AFTER = r"(?:-like|-type|[\s-]like\b|\s+(?:was|were|has been|have been) recently approved)"
_NOT_ABOUT = re.compile(
    r"\b(recently approved|(future|further) (studies|research|trials|work) (of|on|with|comparing|using)|"
    r"(were|was) excluded|exclusion criteri)"
)


_STUDY_OF = re.compile(r"\b(?:trials?|study|studies) of\b")
#: (the label, the aim or design words, the discussion words, the exclusion words, "study of") as read in any text, and
#: in their ASCII form (:func:`crawler.abstracts.ascii_form`: the same matches in a text that
#: :func:`crawler.abstracts.reads_as_ascii`, faster)
_READ = (_LABEL, _AIM, _DISCUSSION, _NOT_ABOUT, _STUDY_OF)
_READ_ASCII = tuple(map(ascii_form, _READ))


@dataclass
class FocusResult:
    doc: Doc
    passing: list[str] = field(default_factory=list)  # why mentions were set aside
    structured: bool = False  # the abstract has labelled sections


#: Where sentences part in a text without line breaks (most: normalised text has none): the whitespace after
#: ``.``, ``!`` or ``?`` before a lower-case letter, a digit or a bracket (group 1), as :data:`_SENTENCE` finds
#: it; written to start with the punctuation, rarer than whitespace, so that the expression engine tries fewer places.
_SENTENCE_END = re.compile(r"[.!?](\s+)(?=[a-z0-9(\[])")
#: What a sentence starts with after :data:`_SENTENCE_END` (its look-ahead), for :func:`crawler.abstracts.sentence_ends`.
_FOLLOWING = frozenset("abcdefghijklmnopqrstuvwxyz0123456789([")

#: (start, end) of what the concept matches, in a sentence or a title; (start, end, index) where the matches come
#: from the rule's terms (:func:`_walk` with ``matches``).
Hits = list[tuple[int, ...]]


def sentence_spans(text: str, memo: dict | None = None, spaces_checked: bool = False) -> list[tuple[int, int, str]]:
    """Each sentence of a text (as :func:`sentences` gives it) with where it stands in the text: (start, end, sentence).

    ``memo``: a work's memo, which keeps the sentence ends when they are found by splitting (under
    :data:`crawler.abstracts.FOCUS_ENDS`), for the evidence types to split the same text from them. ``spaces_checked``:
    the text is known to hold no whitespace but the plain space (its scan found none: not looked for again)."""
    if text[:1].isalnum() and not text[-1:].isspace():
        ends = sentence_ends(text, ".!?", _FOLLOWING, spaces_checked)
        if ends is not None:
            if memo is not None:
                memo[FOCUS_ENDS, text] = ends
            # (normalised text) the pieces as :func:`crawler.abstracts.pieces` finds them, which already start with a
            # letter, digit or bracket (after a separator, or the text's start) and end with a sentence end or the text's end
            spans = []
            start = 0
            for end in ends:
                spans.append((start, end, text[start:end]))
                start = end + 1
            spans.append((start, len(text), text[start:]))
            return spans
    found = pieces(text, _SENTENCE, _SENTENCE_END)
    if "\n" not in text and not text[:1].isspace() and not text[-1:].isspace():
        # (normalised text) each piece already starts with a letter, digit or bracket and ends with a sentence end
        return [(start, start + len(piece), piece) for start, piece in found]
    spans = []
    for position, piece in found:
        sentence = piece.strip()
        start = position + len(piece) - len(piece.lstrip())
        spans.append((start, start + len(sentence), sentence))
    return spans


def sentences(text: str) -> list[str]:
    return [sentence for _, _, sentence in sentence_spans(text)]


class _Straddles(Exception):
    """A match of the concept in a whole text runs from one sentence into another (or into a section label)."""


#: The concept's matches in one sentence, from the sentence's (start, end) in its text (after its label) and its words.
HitsIn = Callable[[int, int, str], Hits]


# one function on purpose: its reading of the matches sentence by sentence split out costs +6.0k instructions per record
# (+0.5 %; callgrind, session 19)
def _walk(  # noqa: C901
    spans: list[tuple[int, int, str]],
    hits_in: HitsIn | None,
    matches: list[tuple[int, int, int]] | None = None,
    ascii: bool = False,
) -> tuple[list[tuple[str, str, Hits]], bool, bool]:
    """(role, sentence, the concept's matches in it) of each sentence of an abstract (:func:`sentence_spans`) that
    the concept matches (every sentence without ``hits_in`` nor ``matches``), whether the abstract is structured
    (labels or an aim/design sentence) and whether it has labels. Roles as :func:`sentence_roles` describes them; a
    sentence no match needs is read only as far as the roles of the sentences after it need (its label; before the
    first aim/design sentence, whether it is one).

    ``matches``: the concept's matches in the whole text, left to right, read sentence by sentence: the same as in each
    sentence alone as long as none runs from a sentence into another or into a label (then :class:`_Straddles`); else
    ``hits_in`` gives them sentence by sentence. ``ascii``: whether the text :func:`crawler.abstracts.reads_as_ascii`.
    From ``matches``, each hit is (start, end, index of the term), as in ``matches``."""
    label, aim, discussion = (_READ_ASCII if ascii else _READ)[:3]
    label_match = label.match
    # (only sentences holding a piece of its words can state an aim or design: most sentences of the synthetic records,
    # 40 % of the labelled set's, hold none)
    aim_search = functools.partial(_search_holding_pieces, aim.search, _AIM_FINDERS)
    # (the discussion words are in few sentences: ~98 % of those the labelled set's abstracts ask it of hold none of a
    # set of its pieces, which an automaton tells in about a third of the expression's search)
    discussion_search = functools.partial(_search_holding_pieces, discussion.search, _piece_finders(discussion))
    out: list[tuple[str, str, Hits]] = []
    role: str | None = None
    aim_seen = structured = labelled = guessed = False
    by_sentence = hits_in is not None or matches is not None
    position, count = 0, len(matches) if matches is not None else 0
    for start, end, sentence in spans:
        colon = ":" in sentence  # a label ends with a colon
        if matches is not None and not colon and (position == count or matches[position][0] >= end):
            # no label and no match here: read only for whether it is the first aim or design sentence
            if not role and not aim_seen and not discussion_search(sentence) and aim_search(sentence):
                aim_seen = structured = True
            continue
        match = label_match(sentence) if colon else None
        label_role = _label_role(match.group(1)) if match else None
        if match is not None and label_role is not None:
            role = label_role
            structured = labelled = True
            sentence = sentence[match.end() :]
            start += match.end()
        if matches is not None:
            hits: Hits = []
            while position < count:
                low, high, index = matches[position]
                if low >= end:
                    break
                if low < start:  # before the sentence (a separator, a label): must end there
                    if high > start:
                        raise _Straddles
                elif high > end:
                    raise _Straddles
                else:
                    hits.append((low - start, high - start, index))
                position += 1
        else:
            hits = [] if hits_in is None else hits_in(start, end, sentence)
        if by_sentence and not hits:
            if not role and not aim_seen and not discussion_search(sentence) and aim_search(sentence):
                aim_seen = structured = True
            continue
        if role == "other":  # trial registration, funding: not about the study's subject
            out.append(("background", sentence, hits))
        elif role:
            out.append((role if role != "background" or not aim_search(sentence) else "objective", sentence, hits))
        elif discussion_search(sentence):
            out.append(("discussion", sentence, hits))
        elif aim_seen:
            out.append(("results", sentence, hits))
        elif aim_search(sentence):
            aim_seen = structured = True
            out.append(("objective", sentence, hits))
        else:
            out.append(("background?", sentence, hits))
            guessed = True
    if not guessed:  # (no role to settle)
        return out, structured, labelled
    if not structured:
        return [("unknown" if r == "background?" else r, s, h) for r, s, h in out], False, False
    return [("background" if r == "background?" else r, s, h) for r, s, h in out], True, labelled


def sentence_roles(text: str) -> tuple[list[tuple[str, str]], bool]:
    """Each sentence of an abstract with its role: background, objective, methods, results, discussion or unknown.

    A section label ("Methods:", also inline in a flattened abstract) gives the role of the sentences up
    to the next label. In unlabelled text, sentences before the first one that states the work's aim or
    design are background; sentences about future or other work are discussion. Without any label or
    aim/design sentence (narrative reviews, letters, news) the roles stay unknown. The flag says whether
    the abstract had labels.
    """
    roles, _, labelled = _walk(sentence_spans(text), None, None, reads_as_ascii(text))
    return [(role, sentence) for role, sentence, _ in roles], labelled


@functools.lru_cache(maxsize=4096)
def _label_role(label: str) -> str | None:
    """The role of the sentences under a section label, None when the words are no known label (remembered:
    the same few labels head abstract after abstract)."""
    return ROLE_OF_CATEGORY.get(category_of(label) or "", "other") if is_label(label) else None


#: id of an expression -> (it, its Gated): by id, since hashing a compiled expression hashes its whole code, every
#: time; the expression is held here, so its id is not reused while it is.
_GATES: dict[int, tuple[re.Pattern, Gated]] = {}


def _gated(pattern: re.Pattern) -> Gated:
    found = _GATES.get(id(pattern))
    if found is None:
        if len(_GATES) >= 64:
            _GATES.clear()
        found = _GATES[id(pattern)] = (pattern, sparse_gated(pattern))
    return found[1]


@functools.lru_cache(maxsize=64)
def _passing_pattern(concept_pattern: str, before: str = _PASSING_BEFORE) -> re.Pattern:
    return re.compile(
        rf"(?:\b(?:{_PASSING_NEXT})\s+(?:(?:iv|intravenous|oral|intranasal|nasal|racemic|inhaled)\s+)?(?:{concept_pattern}))|"
        rf"(?:\b(?:{before})\s+(?:[a-z0-9-]+\s+){{0,3}}?(?:{concept_pattern}))|(?:(?:{concept_pattern})[a-z0-9]*{_PASSING_AFTER})"
    )


def _is_passing(
    sentence: str,
    hits: Hits,
    passing: re.Pattern,
    runs: tuple[bool, bool] = (True, True),
    not_about_words: re.Pattern = _NOT_ABOUT,
) -> bool:
    """Every mention of the concept in this sentence (``hits``, at least one) is a comparison, an example or an exclusion.

    ``runs``: whether the exclusion words and ``passing`` may match in the text holding the sentence (:func:`_runs`):
    what the sentence holds, the text holds too, so they are not run where they cannot match. ``not_about_words``: the
    exclusion words (:data:`_NOT_ABOUT` or its ASCII form)."""
    not_about, aside = runs
    if not_about and not_about_words.search(sentence):
        return True
    if not aside:
        return False
    # (most sentences that name the concept hold none of the aside words: the expression, tried at each position with
    # the concept's terms inlined, cost ~54 µs per 140-character sentence of the labelled set, an automaton's look for
    # the pieces ~1.4 µs; 58 % of the sentences it was run on have none)
    if not _holds_pieces(sentence, _piece_finders(passing)):
        return not hits  # (no match can hold a piece of each set: no mention lies in one)
    # each mention must lie in a match (start <= the mention's start < end): the matches come left to right without
    # overlapping, so they are looked for only until every mention lies in one, or a match starts after a mention that
    # lies in none (none after it can hold it); the expression no longer reads the rest of the sentence
    starts = sorted([hit[0] for hit in hits])
    count, at = len(starts), 0
    for match in passing.finditer(sentence):
        start, end = match.span()
        while at < count and starts[at] < end:
            if starts[at] < start:
                return False
            at += 1
        if at == count:
            return True
    return at == count


#: id of an expression -> (it, an automaton for each set of literal pieces one of which every match of it contains
#: (:func:`crawler.terms.regex_anchors`)): by id, as :data:`_GATES`.
_PIECES: dict[int, tuple[re.Pattern, _Finders]] = {}


def _piece_finders(pattern: re.Pattern) -> _Finders:
    """What finds, in a text, the pieces of each set one of which every match of ``pattern`` contains: a text where one
    of them finds nothing holds no match (none at all when nothing is known of the matches). The set whose shortest
    piece is the longest comes first (then the smaller): the one most texts lack, which most often settles it alone."""
    found = _PIECES.get(id(pattern))
    if found is None:
        if len(_PIECES) >= 64:
            _PIECES.clear()
        sets = sorted((p for p in regex_anchors(pattern.pattern) if p), key=lambda p: (-min(map(len, p)), len(p), sorted(p)))
        found = _PIECES[id(pattern)] = (pattern, _finders(sets))
    return found[1]


def _holds_pieces(text: str, finders: tuple[_StrFinder, ...]) -> bool:
    """Whether each of ``finders`` (:func:`_piece_finders`) finds a piece in ``text``: else no match can be there."""
    if finders.__class__ is _Finders and text.isascii():
        # (an ASCII text read as bytes, by the automata of the pieces' bytes: the same pieces found, without the str
        # automaton's conversion of each offset back to characters: ~1.3k fewer of a call's ~5.7k instructions on the
        # labelled set's sentences, the copy to bytes included; measured with callgrind)
        data = text.encode()
        for in_bytes in finders.in_bytes or _in_bytes(finders):
            if not in_bytes.find_matches_as_indexes(data):
                return False
        return True
    for finder in finders:
        if not finder.find_matches_as_indexes(text):
            return False
    return True


def _search_holding_pieces(
    search: Callable[[str], re.Match | None], finders: tuple[_StrFinder, ...], text: str
) -> re.Match | None:
    """``search(text)`` of an expression, not run where the pieces its matches hold are missing (:func:`_holds_pieces`)."""
    return search(text) if _holds_pieces(text, finders) else None


def _runs(scan: Scan, passing: re.Pattern) -> tuple[bool, bool]:
    """Whether the exclusion words and ``passing`` may match in a text, from its scan."""
    return _gated(_NOT_ABOUT).runs(scan), _gated(passing).runs(scan)


def _plain_terms(rule: TermRule | None):
    """The rule's compiled terms when they are all plain (their matches are then read from a text's scan), else None."""
    terms = rule._terms if rule is not None else None
    return terms if terms is not None and terms.regex is None else None


#: id of a concept's expression -> (it, the expressions of its passing mentions in text and in a title, and the
#: Gated of the exclusion words and of those two; then the three expressions' ASCII forms): made once per expression,
#: and first, so that their anchors are in the vocabulary before any text is scanned here.
_SETUPS: dict[int, tuple] = {}


def _setup(concept: re.Pattern) -> tuple:
    found = _SETUPS.get(id(concept))
    if found is None:
        if len(_SETUPS) >= 64:
            _SETUPS.clear()
        passing = _passing_pattern(concept.pattern)
        in_title = _passing_pattern(concept.pattern, _TITLE_BEFORE)
        found = _SETUPS[id(concept)] = (
            concept,
            passing,
            in_title,
            _gated(_NOT_ABOUT),
            _gated(passing),
            _gated(in_title),
            (ascii_form(concept), ascii_form(passing), ascii_form(in_title)),
        )
    return found


def _spans_in(finditer: Callable[[str], Iterator[re.Match]], start: int, end: int, sentence: str) -> Hits:
    """(start, end) of each match of an expression (its ``finditer``) in a sentence (:data:`HitsIn`)."""
    return [m.span() for m in finditer(sentence)]


def focus_doc(doc: Doc, concept: re.Pattern, rule: TermRule | None = None) -> FocusResult:
    """``doc`` with the passing mentions of ``concept`` (a compiled pattern of its terms) blanked out.

    ``rule``: the concept's rule, whose terms ``concept`` is one expression of (:func:`crawler.classify`); when
    they are all plain terms, their matches are read from each text's scan instead of running ``concept``."""
    setup = _setup(concept)
    _, passing_any, _, not_about_gated, passing_gated, _, ascii_forms = setup
    concept_any = concept
    result = FocusResult(Doc(keywords=list(doc.keywords), trial=list(doc.trial), mesh=list(doc.mesh), cache=doc.cache))
    terms = _plain_terms(rule)
    cache = doc.cache
    passed = result.passing
    abstract_focus = 0
    for abstract in doc.abstracts:
        kept = []
        scan = cache.scan(abstract)
        spans = sentence_spans(abstract, cache.memo, scan.plain)
        # (each expression in its ASCII form where the text allows: the same matches, faster)
        ascii = scan.reads_as_ascii(abstract)
        concept, passing = (ascii_forms[0], ascii_forms[1]) if ascii else (concept_any, passing_any)
        # the matches of the rule's terms in the focused abstract, from the sentences kept: a sentence stands between
        # whitespace (or an end of the text) in the abstract, and between spaces (or an end) once joined, which reads
        # the same to a term that holds no whitespace (the word checks and the words shown read no further)
        found: list[tuple[int, int, int]] | None = None
        at = 0
        try:
            if terms is None:
                raise _Straddles
            roles, structured, labelled = _walk(spans, None, terms._plain(scan), ascii)
            if terms.unspaced:
                found = []
        except _Straddles:
            roles, structured, labelled = _walk(spans, functools.partial(_spans_in, concept.finditer), None, ascii)
        if labelled:
            result.structured = True
        runs = (not_about_gated.runs(scan), passing_gated.runs(scan)) if roles else (True, True)
        not_about = (_READ_ASCII if ascii else _READ)[3]
        for role, sentence, hits in roles:
            if role == "background" or role == "discussion":
                passed.append(f"{role} sentence: '{_short(sentence)}'")
            elif _is_passing(sentence, hits, passing, runs, not_about):
                passed.append(f"comparison or aside: '{_short(sentence)}'")
            else:
                if found is not None:
                    found += [(low + at, high + at, index) for low, high, index in hits]
                    at += len(sentence) + 1  # where the next sentence kept stands once joined
                kept.append(sentence)
                abstract_focus += len(hits)
        focused = " ".join(kept)
        result.doc.abstracts.append(focused)
        if found is not None:  # (for the rule's evaluation on the focused doc: crawler.terms.MATCHED)
            cache.memo[MATCHED, terms.slot, focused] = found
    titles = result.doc.titles
    for title in doc.titles:
        aside = _title_aside(title, cache.scan(title), terms, setup, result.structured and not abstract_focus)
        if aside is None:
            titles.append(title)
        else:
            passed.append(aside)
    if abstract_focus == 1 and not any(concept_any.search(t) for t in titles + doc.keywords + doc.trial + doc.mesh):
        # one mention in an abstract whose title, keywords and MeSH never name it: an aside
        passed.append("a single mention in an abstract about something else")
        result.doc.abstracts = []
    return result


def _title_aside(title: str, scan: Scan, terms, setup: tuple, structured_elsewhere: bool) -> str | None:
    """Why :func:`focus_doc` sets a title aside (it names the concept in a comparison; or, ``structured_elsewhere``: a
    structured abstract that never names it in its objective, methods or results, it says the study is of something
    else), None to keep it. ``scan``: the title's; ``terms``: :func:`_plain_terms`; ``setup``: :func:`_setup`'s."""
    concept_any, _, in_title_any, not_about_gated, _, in_title_gated, ascii_forms = setup
    ascii = scan.reads_as_ascii(title)
    concept, in_title, read = (ascii_forms[0], ascii_forms[2], _READ_ASCII) if ascii else (concept_any, in_title_any, _READ)
    hits: Hits
    if terms is not None:
        hits = [(low, high) for low, high, _ in terms._plain(scan)]
    else:
        hits = [m.span() for m in concept.finditer(title)]
    if hits and _is_passing(title, hits, in_title, (not_about_gated.runs(scan), in_title_gated.runs(scan)), read[3]):
        return f"title names it in a comparison: '{_short(title)}'"
    if hits and structured_elsewhere:
        other = read[4].search(title)
        if other and not concept.search(title[other.end() : other.end() + 40]):
            # "... not observed in a negative trial of scopolamine": the title says the study is of something
            # else, and the structured abstract names the drug only in background or discussion
            return f"title, but the abstract's objective, methods and results never name it: '{_short(title)}'"
    return None


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
