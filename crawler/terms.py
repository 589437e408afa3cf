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
import json
import operator
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ahocorasick_rs

from crawler.abstracts import ascii_form, reads_as_ascii

#: field -> strength of a match there (abstracts: 1 for one mention, 2 for several)
FIELD_STRENGTH = {"title": 3, "mesh": 3, "trial": 3, "keywords": 2}
ABSTRACT_ONE, ABSTRACT_MANY = 1, 2
TEXT_FIELDS = ("title", "trial", "keywords", "abstract")

_BOUNDARY = r"(?<![a-z0-9])"
_THIRD = operator.itemgetter(2)
_DASHES = re.compile(r"[\u2010-\u2015\u2212\u00ad]")
#: The curly quotes made straight (each by ``str.replace``: ``str.translate`` with a table reads a text that is not
#: ASCII one character at a time through the table, ~0.1 ms for an abstract of 1,300 characters, ten times as long)
_QUOTES = (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"'))
#: What a run of spaces is besides the whitespace ``str.split`` splits on (``str.isspace``, which is what ``\s``
#: matches in an expression, with U+00A0, U+2000-U+200A and U+202F): the zero-width space
_ZERO_WIDTH_SPACE = "\u200b"


def normalize_text(text: str | None) -> str:
    """Lower case, one kind of dash and quote, single spaces: the form every term is matched against."""
    if not text:
        return ""
    if text.isascii():  # no dash, quote or space to unify but ASCII whitespace (what str.split splits on)
        return " ".join(text.split()).lower()
    for quote, straight in _QUOTES:
        if quote in text:
            text = text.replace(quote, straight)
    text = _DASHES.sub("-", text)
    if _ZERO_WIDTH_SPACE in text:
        text = text.replace(_ZERO_WIDTH_SPACE, " ")
    # every run of whitespace one space, none at either end (an expression's runs replaced cost three times as long)
    return " ".join(text.split()).lower()


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


def _codes() -> Any:
    from re import _constants as codes  # type: ignore[attr-defined]

    return codes


#: Most parsed expressions :func:`_parsed` keeps (an analysed expression is one of the classifier's, a few hundred at most).
PARSED = 512


@functools.lru_cache(maxsize=PARSED)
def _parsed(pattern: str, flags: int) -> Any:
    """The regular expression module's parse of an expression (its tree of codes), or None when it cannot be parsed:
    what :func:`regex_anchors`, :func:`regex_extent` and :func:`regex_starts` read. Made once per expression and flags:
    importing :mod:`crawler.evidence` analysed each of its expressions three times (its anchors, then the extent of it
    and of its ASCII form), and parsing was most of the ~0.2 G instructions of that analysis. The analyses only read
    the tree, so it is shared. (The tree depends on the flags only through ``re.VERBOSE``: ``re.IGNORECASE``,
    ``re.ASCII`` and ``re.UNICODE`` are read when compiling it.)"""
    try:
        from re import _parser as parser  # type: ignore[attr-defined]

        return parser.parse(pattern, flags)
    except Exception:  # noqa: BLE001 - unreadable
        return None


#: The analyses of litmon's own expressions (:mod:`crawler.evidence`'s), made once and kept in this file beside the module
#: (``python -m crawler.evidence > crawler/regex_analyses.json`` writes it; a test checks it against the expressions):
#: importing :mod:`crawler.evidence` made them at every start (~0.1 G instructions, ~5 % of a backfill's start), in every
#: process that classifies. An expression the file does not hold is analysed as before.
KEPT_ANALYSES = os.path.join(os.path.dirname(__file__), "regex_analyses.json")


def _kept_analyses() -> tuple[dict[str, tuple[frozenset[str], ...]], dict[str, tuple[int, int] | None]]:
    """(expression -> :func:`regex_anchors`, expression -> :func:`regex_extent` without flags) as kept in
    :data:`KEPT_ANALYSES`; nothing when the file is missing, unreadable, not of the shape :func:`analyses_of` gives or
    was made by another version of Python (whose parser may read an expression otherwise): each expression is then
    analysed afresh. Never raises: a start is never stopped by this file."""
    try:
        with open(KEPT_ANALYSES, encoding="utf-8") as file:
            kept = json.load(file)
    except (OSError, ValueError):  # (while it is being written, it is empty)
        return {}, {}
    if not _of_kept_shape(kept) or kept["python"] != list(sys.version_info[:2]):
        return {}, {}
    anchors = {pattern: tuple(frozenset(pieces) for pieces in sets) for pattern, sets in kept["anchors"].items()}
    extents = {pattern: None if extent is None else (extent[0], extent[1]) for pattern, extent in kept["extents"].items()}
    return anchors, extents


def _of_kept_shape(kept: Any) -> bool:
    """Whether a file's content is of the shape :func:`analyses_of` gives: ``python`` two integers, ``anchors`` lists of
    lists of strings, ``extents`` None or two integers (by expression)."""

    def integers(value: Any) -> bool:
        return isinstance(value, list) and len(value) == 2 and all(type(number) is int for number in value)

    return (
        isinstance(kept, dict)
        and integers(kept.get("python"))
        and isinstance(kept.get("anchors"), dict)
        and isinstance(kept.get("extents"), dict)
        and all(
            isinstance(sets, list)
            and all(isinstance(pieces, list) and all(isinstance(piece, str) for piece in pieces) for pieces in sets)
            for sets in kept["anchors"].values()
        )
        and all(extent is None or integers(extent) for extent in kept["extents"].values())
    )


_KEPT_ANCHORS, _KEPT_EXTENTS = _kept_analyses()


def analyses_of(patterns: Iterable[str]) -> dict[str, Any]:
    """:func:`regex_anchors` and :func:`regex_extent` (without flags) of each expression, made afresh, as
    :data:`KEPT_ANALYSES` keeps them (each set of pieces sorted)."""
    patterns = sorted(set(patterns))
    extents = {pattern: _regex_extent(pattern, 0) for pattern in patterns}
    return {
        "python": list(sys.version_info[:2]),
        "anchors": {pattern: [sorted(pieces) for pieces in _regex_anchors(pattern)] for pattern in patterns},
        "extents": {pattern: None if extent is None else list(extent) for pattern, extent in extents.items()},
    }


@functools.lru_cache(maxsize=PARSED)
def regex_anchors(pattern: str) -> tuple[frozenset[str], ...]:
    """Literal pieces that every match of a regular expression contains, as sets that must each be met.

    The result is a conjunction of alternatives: a match contains, for every set, at least one of
    its strings (``(oral|buccal)[^.]{0,40}ketamin`` gives ``({'oral', 'buccal'}, {'ketamin'})``). An
    empty tuple means nothing is known: the expression must always run. Strings are lower case
    (terms are matched against lower-cased text). Computed from the parsed expression, so that a
    rule written as ``re:`` skips every text that cannot match it, as plain terms do.
    """
    kept = _KEPT_ANCHORS.get(pattern)
    return _regex_anchors(pattern) if kept is None else kept


def _regex_anchors(pattern: str) -> tuple[frozenset[str], ...]:
    tree = _parsed(pattern, 0)  # (the flags make no difference to the tree: the letters' case is the compiler's)
    if tree is None:  # an unreadable expression is simply always run
        return ()
    return tuple(_sequence_anchors(list(tree), _codes()))


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


@functools.lru_cache(maxsize=PARSED)
def regex_extent(pattern: str, flags: int = 0) -> tuple[int, int] | None:
    """(most characters a match consumes, most characters past where it starts that matching may read),
    or None when either has no bound (``*``, ``+``, back-references, anything not understood).

    What reads past a match's end: look-aheads, and ``\\b``/``$`` (the next one or two characters)."""
    if not flags and pattern in _KEPT_EXTENTS:
        return _KEPT_EXTENTS[pattern]
    return _regex_extent(pattern, flags)


def _regex_extent(pattern: str, flags: int) -> tuple[int, int] | None:
    tree = _parsed(pattern, flags)
    if tree is None:
        return None
    try:
        return _extent(list(tree), _codes())
    except Exception:  # noqa: BLE001 - unknown: no bound
        return None


def _extent(items, codes) -> tuple[int, int] | None:
    width = reach = 0
    for op, arg in items:
        if op in (codes.LITERAL, codes.NOT_LITERAL, codes.ANY, codes.IN):
            item = (1, 1)
        elif op is codes.AT:
            item = (0, 2)
        elif op in (codes.SUBPATTERN, codes.ATOMIC_GROUP):
            inner = _extent(list(arg[-1] if op is codes.SUBPATTERN else arg), codes)
            if inner is None:
                return None
            item = inner
        elif op is codes.BRANCH:
            alternatives = [_extent(list(alternative), codes) for alternative in arg[1]]
            if any(a is None for a in alternatives):
                return None
            item = (max(a[0] for a in alternatives), max(a[1] for a in alternatives))  # type: ignore[index]
        elif op in (codes.MAX_REPEAT, codes.MIN_REPEAT, getattr(codes, "POSSESSIVE_REPEAT", None)):
            low, high, body = arg
            inner = _extent(list(body), codes)
            if inner is None or high is codes.MAXREPEAT or high >= codes.MAXREPEAT:
                return None
            item = (high * inner[0], (high - 1) * inner[0] + inner[1]) if high else (0, 0)
        elif op in (codes.ASSERT, codes.ASSERT_NOT):
            direction, body = arg
            inner = _extent(list(body), codes)
            if inner is None:
                return None
            item = (0, inner[1] if direction > 0 else 0)  # a look-behind reads before, never after
        else:
            return None
        reach = max(reach, width + item[1])
        width += item[0]
    return width, max(reach, width)


#: Most strings :func:`regex_starts` spells out (beyond, it stops where it is).
MAX_STARTS = 256


def regex_starts(pattern: str, flags: int = 0) -> list[str] | None:
    """Strings one of which begins every match of a regular expression (lower case, spelled out from its literal
    beginning: ``(es|ar)?ketamin`` gives ``esketamin``, ``arketamin``, ``ketamin``), or None when nothing is known
    (an expression that may begin with a class, any character or an empty match). Look-arounds and ``\\b`` read
    no character of the match: they are passed over (still true, less selective)."""
    tree = _parsed(pattern, flags)
    if tree is None:  # unknown
        return None
    starts, _ = _starts_sequence(list(tree), _codes())
    return None if "" in starts else sorted(starts)


def _starts_sequence(items, codes) -> tuple[set[str], bool]:
    """(strings one of which begins every match of the sequence, whether they are every match whole)."""
    starts = {""}
    for op, arg in items:
        item, whole = _starts_item(op, arg, codes)
        longer = {start + more for start in starts for more in item}
        if len(longer) > MAX_STARTS:
            return starts, False
        starts = longer
        if not whole:
            return starts, False
    return starts, True


def _starts_item(op, arg, codes) -> tuple[set[str], bool]:
    if op is codes.LITERAL:
        return {chr(arg).lower()}, True
    if op in (codes.AT, codes.ASSERT, codes.ASSERT_NOT):  # reads no character of the match
        return {""}, True
    if op is codes.SUBPATTERN:
        return _starts_sequence(list(arg[-1]), codes)
    if op is codes.BRANCH:
        found: set[str] = set()
        every = True
        for alternative in arg[1]:
            starts, whole = _starts_sequence(list(alternative), codes)
            found |= starts
            every = every and whole
        return found, every
    if op in (codes.MAX_REPEAT, codes.MIN_REPEAT, getattr(codes, "POSSESSIVE_REPEAT", None)):
        low, high, body = arg
        starts, whole = _starts_sequence(list(body), codes)
        if high == 1:
            return (starts | {""} if low == 0 else starts), whole
        return (starts if low >= 1 else {""}), False
    if op is codes.IN:  # a few characters listed: each spelled out
        chars: set[str] = set()
        for kind, value in arg:
            if kind is codes.LITERAL:
                chars.add(chr(value).lower())
            elif kind is codes.RANGE and value[1] - value[0] < 16:
                chars.update(chr(code).lower() for code in range(value[0], value[1] + 1))
            else:
                return {""}, False
        return chars, True
    return {""}, False


def _reads_as_ascii(text: str, scan: Scan) -> bool:
    """:func:`crawler.abstracts.reads_as_ascii` of a text, remembered on its scan (:meth:`Scan.reads_as_ascii`)."""
    known = scan.ascii
    if known is None or known[0] is not text:
        known = scan.ascii = (text, reads_as_ascii(text))
    return known[1]


def _reads_as_lower_ascii(text: str, scan: Scan) -> bool:
    """Whether a text reads as ASCII and holds no upper-case letter, remembered on its scan: there an expression
    compiled with ``re.IGNORECASE`` matches a literal only where the literal's lower-case letters are."""
    known = scan.lower
    if known is None or known[0] is not text:
        known = scan.lower = (text, _reads_as_ascii(text, scan) and text.lower() == text)
    return known[1]


#: A group of strings that begin matches (:func:`_start_groups`): (anchor, characters from where one of them begins to the
#: last character of each occurrence of the anchor it holds) for each anchor they all hold.
_Group = tuple[tuple[str, tuple[int, ...]], ...]

#: Characters the vocabulary's scan reads as a space (:func:`_has_other_space`): no anchor of a start holds one.
_SCAN_SPACES = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")


def _start_groups(starts: list[str] | None, anchors: frozenset[str]) -> list[tuple[frozenset[str], _Group]] | None:
    """How to find where the matches of an expression can begin, from the strings that begin them (:func:`regex_starts`)
    and its anchors: groups of strings that hold the same anchors, each group as (anchor, how many characters each of
    its occurrences ends after where a string of the group begins) for each anchor; a string that holds none is its own
    anchor. None when such a string is too short to be one, or an anchor holds a character the scan reads as a space."""
    if not starts:
        return None
    groups: dict[tuple[str, ...], dict[str, set[int]]] = {}
    for start in starts:
        inside = tuple(sorted(anchor for anchor in anchors if anchor in start)) or (start,)
        if len(inside[0]) < MIN_ANCHOR or not _SCAN_SPACES.isdisjoint("".join(inside)):
            return None
        found = groups.setdefault(inside, {})
        for anchor in inside:
            found.setdefault(anchor, set()).add(start.index(anchor) + len(anchor) - 1)
    return [
        (frozenset(group), tuple((anchor, tuple(sorted(backs))) for anchor, backs in group.items())) for group in groups.values()
    ]


class _Windows:
    """Where a regular expression can match in a text, from where the literal pieces every match contains
    occur (:func:`regex_anchors`, found by the vocabulary's scan): a match holds one of them whole and is
    at most ``width`` characters long, so it starts at most ``width`` characters before one's end. The
    expression is then tried only from those places (:meth:`search`, :meth:`finditer`), reading no
    further than it could from them: the same matches as on the whole text."""

    def __init__(self, pattern: re.Pattern, alternatives: list[tuple[frozenset[str], ...]], starts: bool = False):
        """``starts``: where the expression's matches can begin is also worked out (:meth:`starts_in`)."""
        self.pattern = pattern
        #: the same expression for texts that read as ASCII (:func:`crawler.abstracts.ascii_form`)
        self.ascii = ascii_form(pattern)
        # (only re.VERBOSE of the flags changes what the expression is read as: an expression and its ASCII form share one
        # analysis, made once)
        extent = regex_extent(pattern.pattern, pattern.flags & re.VERBOSE)
        self.usable = extent is not None and bool(alternatives) and all(alternatives)
        self.width, self.reach = extent or (0, 0)
        self.alternatives = alternatives
        self.anchors = frozenset(a for sets in alternatives for choices in sets for a in choices)
        #: groups of ways to find where a match can begin: see :meth:`starts_in`; None: not known
        self.starts: list[tuple[frozenset[str], _Group]] | None = None
        if starts and self.ascii is not pattern:
            self.starts = _start_groups(regex_starts(pattern.pattern, pattern.flags & re.VERBOSE), self.anchors)
            if self.starts is not None:
                self.anchors |= {anchor for required, _ in self.starts for anchor in required}

    def starts_in(self, scan: Scan) -> list[int]:
        """Every position where a match can begin in the scanned text, in order, if it is lower case ASCII: the
        expression's matches begin with one of a few strings (:func:`regex_starts`), each holding an anchor a known
        number of characters from its start. Each group of strings is found from whichever of its anchors occurs
        least often in the text (none at all: no string of the group occurs)."""
        positions, present = scan.positions, scan.anchors
        found: list[int] = []
        for required, group in self.starts:  # type: ignore[union-attr]
            if not required <= present:
                continue
            if len(group) == 1:
                anchor, backs = group[0]
                chosen = positions[anchor]
            else:
                fewest = None
                for anchor, steps in group:
                    lasts = positions[anchor]
                    if fewest is None or len(lasts) * len(steps) < fewest:
                        chosen, backs, fewest = lasts, steps, len(lasts) * len(steps)
            for back in backs:
                found += map(back.__rsub__, chosen)
        if len(found) > 1:
            found = sorted(set(found))
        if found and found[0] < 0:  # (an anchor too near the text's start for that string)
            found = [start for start in found if start >= 0]
        return found

    #: Texts this short are searched whole: finding the places costs more than it saves (titles, keywords).
    SHORT = 300

    def spans(self, scan: Scan) -> list[tuple[int, int]] | None:
        """Merged (first, last) ranges of the positions a match can start at; None: anywhere."""
        if not self.usable:
            return None
        present = scan.anchors
        if present.isdisjoint(self.anchors):
            return []
        positions = scan.positions
        chosen: set[str] = set()
        for sets in self.alternatives:
            best: tuple[int, frozenset[str]] | None = None
            for choices in sets:  # the set whose strings occur least often
                occurring = choices & present
                count = sum([len(positions[anchor]) for anchor in occurring]) if occurring else 0
                if best is None or count < best[0]:
                    best = (count, occurring)
                    if not count:
                        break
            if best is None or not best[0]:
                continue  # this alternative cannot match here
            chosen |= best[1]
        width = self.width
        starts: list[tuple[int, int]] = []
        for anchor in chosen:
            size = len(anchor)
            starts += [(last + 1 - width if last + 1 > width else 0, last + 1 - size) for last in positions[anchor]]
        if not starts:
            return []
        starts.sort()
        merged = [list(starts[0])]
        for low, high in starts[1:]:
            last = merged[-1]
            if low <= last[1] + 1:
                if high > last[1]:
                    last[1] = high
            else:
                merged.append([low, high])
        return [(low, high) for low, high in merged]

    def search(self, text: str, scan: Scan) -> re.Match | None:
        if self.starts is not None and _reads_as_lower_ascii(text, scan):
            attempt = self.ascii.match
            for start in self.starts_in(scan):
                first = attempt(text, start)
                if first is not None:
                    return first
            return None
        pattern = self.ascii if self.ascii is not self.pattern and _reads_as_ascii(text, scan) else self.pattern
        spans = self.spans(scan) if len(text) > self.SHORT else None
        if spans is None:
            return pattern.search(text)
        size, reach, search = len(text), self.reach, pattern.search
        for low, high in spans:
            match = search(text, low, min(size, high + reach))
            if match is not None and match.start() <= high:
                return match
        return None

    def finditer(self, text: str, scan: Scan) -> list[re.Match]:
        if self.starts is not None and _reads_as_lower_ascii(text, scan):
            attempt = self.ascii.match
            matches = []
            position = 0
            for start in self.starts_in(scan):  # (a match is never empty: it begins with a string)
                if start >= position:
                    matched = attempt(text, start)
                    if matched is not None:
                        matches.append(matched)
                        position = matched.end()
            return matches
        pattern = self.ascii if self.ascii is not self.pattern and _reads_as_ascii(text, scan) else self.pattern
        spans = self.spans(scan) if len(text) > self.SHORT else None
        if spans is None:
            return list(pattern.finditer(text))
        size, reach, search = len(text), self.reach, pattern.search
        found = []
        position = 0
        for low, high in spans:
            while True:
                begin = max(low, position)
                if begin > high:
                    break
                match = search(text, begin, min(size, high + reach))
                if match is None or match.start() > high:
                    break
                found.append(match)
                position = match.end() if match.end() > match.start() else match.end() + 1
        return found


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
            elif anchor_sets and not any(frozenset(anchor_sets) == frozenset(known) for known in general):
                # (a term whose sets another's are, in another order, needs the same: ``a…b|b…a`` is checked once)
                general.append(anchor_sets)
        self.single = frozenset(single)
        self.subsets = [required for required in subsets if not required & self.single]  # implied by single otherwise
        self.general = general
        #: every anchor the decision reads: it depends only on which of these a text holds
        self.anchors = frozenset(a for anchor_sets in alternatives for choices in anchor_sets for a in choices)
        #: ``not gate(present)``: for the most common gate (each term needs one word: a text holding none of them is
        #: blocked), one call of C instead of one of Python
        self.blocked: Callable[[frozenset[str]], bool] = (
            self.single.isdisjoint if not (self.always or self.subsets or self.general) else self._blocked
        )

    def _blocked(self, present: frozenset[str]) -> bool:
        if self.always or not present.isdisjoint(self.single):
            return False
        for required in self.subsets:
            if required <= present:
                return False
        for anchor_sets in self.general:
            for choices in anchor_sets:
                if present.isdisjoint(choices):
                    break
            else:
                return False
        return True

    def __call__(self, present: frozenset[str]) -> bool:
        return not self.blocked(present)


# --------------------------------------------------------------------------- one scan per text for the whole vocabulary

#: What ``(?<![a-z0-9])`` and ``(?![a-z0-9])`` look for around a plain term.
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
#: Whitespace other than a plain space: ``[\s\-]?`` in a term matches it too, so the scan sees it as a space.
_OTHER_SPACE = re.compile(r"[^\S ]")


def _has_other_space(text: str) -> bool:
    """Whether a text holds whitespace other than a plain space (what :data:`_OTHER_SPACE` finds). An ASCII text is
    looked through for each of the nine such characters (each a fast character search, not a per-character loop)."""
    if text.isascii():
        return (
            "\n" in text
            or "\t" in text
            or "\r" in text
            or "\x0b" in text
            or "\x0c" in text
            or "\x1c" in text
            or "\x1d" in text
            or "\x1e" in text
            or "\x1f" in text
        )
    return not text.isprintable() and _OTHER_SPACE.search(text) is not None


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


class Scan:
    """What one pass of the vocabulary's automaton found in a text: ``entries``, every occurrence of a plain term
    (word checks passed) as (start, end, key), left to right; ``keys``, the plain term keys found; ``positions``,
    anchor of ``re:`` terms (:func:`regex_anchors`) -> the last character of each of its occurrences, left to right;
    ``anchors``, the anchors that occur; ``found``, (last character, anchor) of each occurrence; ``hits``, key ->
    (start, end) of each occurrence."""

    __slots__ = ("entries", "keys", "anchors", "positions", "selected", "ascii", "lower", "plain")

    def __init__(self, entries: list[tuple[int, int, int]], positions: dict[str, list[int]] | None = None):
        #: what :func:`_select` made of the entries for a rule set's lists: (its key map, the lists' matches), the last
        #: one asked (short texts' scans are shared by many works; a work's texts are read by one rule set or two)
        self.selected: tuple[Any, dict[int, list[tuple[int, int, int]]]] | None = None
        self.ascii: tuple[str, bool] | None = None  # (the text, whether it reads as ASCII): _reads_as_ascii
        self.lower: tuple[str, bool] | None = None  # (the text, whether it reads as lower-case ASCII): _reads_as_lower_ascii
        #: the text holds no whitespace but the plain space (known from the vocabulary's scan; False: not known)
        self.plain = False
        self.entries = entries
        self.keys = set(map(_THIRD, entries))
        self.positions = positions or {}
        self.anchors = frozenset(self.positions)

    def reads_as_ascii(self, text: str) -> bool:
        """:func:`crawler.abstracts.reads_as_ascii` of ``text``, the text scanned, remembered (known from the scan itself
        for most texts: :meth:`_Vocabulary.scan`)."""
        known = self.ascii
        if known is None or known[0] is not text:
            known = self.ascii = (text, reads_as_ascii(text))
        return known[1]

    @property
    def found(self) -> list[tuple[int, str]]:
        """(last character, anchor) of each anchor occurrence, left to right."""
        return sorted((last, anchor) for anchor, lasts in self.positions.items() for last in lasts)

    @property
    def hits(self) -> dict[int, list[tuple[int, int]]]:
        """plain term key -> (start, end) of each of its occurrences, left to right."""
        hits: dict[int, list[tuple[int, int]]] = {}
        for start, end, key in self.entries:
            hits.setdefault(key, []).append((start, end))
        return hits


class _Vocabulary:
    """Every plain term (as its literal forms) and every anchor of every ``re:`` term of every compiled
    rule, in one Aho-Corasick automaton: one pass over a text finds them all, for all rules at once.

    A plain term is known by its key (one per distinct :func:`term_pattern`); a rule maps the keys of
    its terms to their indices. Rules compiled later add to the automaton (``generation`` says so)."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.forms: dict[str, list[tuple[int, bool, bool]]] = {}
        self.anchors: set[str] = set()
        #: (the automaton; by literal index in it: the literal if it is an anchor, its plain term keys with their word
        #: checks; characters of its longest literal; the same automaton for ASCII texts, read as bytes), or None: built
        #: on the next scan. One object, so that a scan never reads an automaton with another build's values
        self.built: tuple[Any, list[tuple[str | None, bool | None, bool, Any]], int, Any] | None = None
        self.generation = 0

    def key(self, term: str) -> int:
        pattern = term_pattern(term)
        key = self.keys.get(pattern)
        if key is None:
            with _AUTOMATON_LOCK:
                key = self.keys.get(pattern)
                if key is None:
                    key = self.keys[pattern] = len(self.keys)
                    forms, start, end = term_forms(term)
                    for form in forms:
                        self.forms.setdefault(form, []).append((key, start, end))
                    self._changed()
        return key

    def register_anchors(self, anchors: Iterable[str]) -> None:
        with _AUTOMATON_LOCK:
            new = set(anchors) - self.anchors
            if new:
                self.anchors |= new
                self._changed()

    def _changed(self) -> None:
        self.built = None  # rebuilt on the next scan; what was found before is stale
        self.generation += 1

    def _build(self) -> tuple[Any, list[tuple[str | None, bool | None, bool, Any]], int, Any]:
        with _AUTOMATON_LOCK:  # nothing is added while it is built, so what it is built of is what it is kept for
            built = self.built
            if built is None:
                built = self.built = self._made()
            return built

    def _made(self) -> tuple[Any, list[tuple[str | None, bool | None, bool, Any]], int, Any]:
        literals = sorted(set(self.forms) | self.anchors)
        values: list[tuple[str | None, bool | None, bool, Any]] = []
        for literal in literals:
            entries = self.forms.get(literal)
            # (the literal if it is an anchor, needs a word start, needs a word end, what it is a form of): what it is a
            # form of is None (no form: an anchor only), its one key, or a tuple of its keys; or, with None for "needs a
            # word start", the same letters for terms with different checks, each checked apart: (key, start, end) each
            anchor = literal if literal in self.anchors else None
            if not entries:
                values.append((anchor, False, False, None))
                continue
            flags = {(start, end) for _, start, end in entries}
            if len(flags) == 1:
                ((start, end),) = flags
                keys = tuple(key for key, _, _ in entries)
                values.append((anchor, start, end, keys[0] if len(keys) == 1 else keys))
            else:
                values.append((anchor, None, False, tuple(entries)))
        # a DFA (ahocorasick-rs): every occurrence, overlaps included, as (literal index, start, end) in one call
        automaton = (
            ahocorasick_rs.AhoCorasick(
                literals,
                matchkind=ahocorasick_rs.MatchKind.Standard,
                store_patterns=False,
                implementation=ahocorasick_rs.Implementation.DFA,
            )
            if literals
            else False
        )
        # an ASCII text's occurrences, by an automaton of the literals' bytes: the same (a character is a byte there)
        # for ~20 % fewer instructions than the text's own (~8k per abstract of the synthetic records: measured with
        # callgrind), which converts each text to UTF-8 and each offset back
        in_bytes = (
            ahocorasick_rs.BytesAhoCorasick(
                [literal.encode() for literal in literals],
                matchkind=ahocorasick_rs.MatchKind.Standard,
                implementation=ahocorasick_rs.Implementation.DFA,
            )
            if literals
            else False
        )
        return automaton, values, max(map(len, literals), default=0), in_bytes

    def subset(self, keys: frozenset[int], anchors: frozenset[str]) -> _Vocabulary:
        """A vocabulary of only these plain term keys and anchors: its scan of a text finds what this one's finds of
        them (the same entries of these keys, the same positions of these anchors), and nothing else."""
        sub = _Vocabulary()
        for form, entries in self.forms.items():
            kept = [entry for entry in entries if entry[0] in keys]
            if kept:
                sub.forms[form] = kept
        sub.anchors = self.anchors & anchors
        sub.generation = self.generation
        return sub

    def scan(self, text: str, normalised: bool = False) -> Scan:
        """What the automaton finds in ``text``. ``normalised``: the text is known to be in :func:`normalize_text`'s form,
        or made of such texts (:attr:`WorkCache.normalised`): lower case, no whitespace but the plain space (not looked
        for again: ~9 searches of the text for a character, and its lower-cased copy when an expression asks)."""
        built = self.built
        if built is None:
            built = self._build()
        automaton, values, _, in_bytes = built
        if not text or not automaton:
            return Scan([])
        other = not normalised and _has_other_space(text)
        seen = _OTHER_SPACE.sub(" ", text) if other else text
        # the text and a space: the character before an occurrence at ``start`` is ``after[start - 1]`` (the space at
        # the text's start) and the one after it ``after[end]`` (the space at its end), without testing for either end
        after = seen + " "
        word = _WORD_CHARS
        entries: list[tuple[int, int, int]] = []
        positions: dict[str, list[int]] = {}
        if seen.isascii():
            found = in_bytes.find_matches_as_indexes(seen.encode(), overlapping=True)
        else:
            found = automaton.find_matches_as_indexes(seen, overlapping=True)
        # (~50 occurrences per synthetic record, ~13 % of its classification's bytecodes: the values flat, one key
        # without a loop, and the ends' checks without tests of the text's ends, measured with callgrind)
        for index, start, end in found:
            anchor, need_start, need_end, keys = values[index]
            if anchor is not None:
                known = positions.get(anchor)
                if known is None:
                    positions[anchor] = [end - 1]
                else:
                    known.append(end - 1)
                if keys is None:
                    continue
            if need_start is None:  # checks that differ from one term to the other
                starts = after[start - 1] not in word
                ends = after[end] not in word
                entries.extend((start, end, key) for key, s, e in keys if (starts or not s) and (ends or not e))
                continue
            if need_start and after[start - 1] in word:
                continue
            if need_end and after[end] in word:
                continue
            if keys.__class__ is int:
                entries.append((start, end, keys))
            else:
                for key in keys:
                    entries.append((start, end, key))
        entries.sort()
        scan = Scan(entries, positions)
        if not other:
            scan.plain = True
            if text.isascii():  # it reads as ASCII: no separator \x1c-\x1f (_has_other_space looked for them)
                scan.ascii = (text, True)
                scan.lower = (text, True) if normalised else None  # (lower case too: _reads_as_lower_ascii)
        return scan

    def rescan(self, text: str, scan: Scan, ranges: list[tuple[int, int]]) -> Scan:
        """The scan of ``text``, which differs from the text of ``scan`` (same length) only inside ``ranges``
        ((start, end) of each changed piece, e.g. blanked exclusions): what ``scan(text)`` finds, but only the
        neighbourhood of each range is scanned again.

        An occurrence (start, end) can be found or lost only if it overlaps a range [a, b) or its word checks read
        a character in it: start <= b and end >= a. Such occurrences are at most ``longest`` characters from the
        range, so a window of the new text one character wider still holds them, with the characters their word
        checks read; every other occurrence of ``scan`` is kept as it was."""
        built = self.built
        if built is None or not ranges:  # rules compiled since the first scan: scan it all
            return self.scan(text)
        reach = built[2] + 1
        groups: list[list[int]] = []
        for low, high in sorted(ranges):  # ranges whose windows touch are one group
            if groups and low - reach <= groups[-1][1] + reach:
                groups[-1][1] = max(groups[-1][1], high)
            else:
                groups.append([low, high])
        size = len(text)
        entries = scan.entries
        positions = scan.positions
        for low, high in groups:
            entries = [entry for entry in entries if entry[0] > high or entry[1] < low]
            kept: dict[str, list[int]] = {}
            for anchor, lasts in positions.items():  # an anchor ends at last + 1 and starts len(anchor) before
                away = high + len(anchor) - 1
                lasts = [last for last in lasts if last > away or last + 1 < low]
                if lasts:
                    kept[anchor] = lasts
            positions = kept
        for low, high in groups:  # (the lists above are new: the scan's own are left as they are)
            start = max(0, low - reach)
            window = self.scan(text[start : min(size, high + reach)])
            entries.extend(
                (first + start, last + start, key)
                for first, last, key in window.entries
                if first + start <= high and last + start >= low
            )
            for anchor, lasts in window.positions.items():
                near = high - start + len(anchor) - 1
                added = [last + start for last in lasts if last <= near and last + start + 1 >= low]
                if added:
                    known = positions.get(anchor)
                    positions[anchor] = sorted(known + added) if known else added
        entries.sort()
        return Scan(entries, positions)


#: Held while a vocabulary's terms or anchors are added and while its automaton is built: an automaton built while
#: another thread compiles a rule would otherwise be kept without that rule's literals, for good (the fetch worker
#: builds its vocabulary in a thread of its own)
_AUTOMATON_LOCK = threading.Lock()
_VOCABULARY = _Vocabulary()


class Gated:
    """A regular expression that runs only on texts holding the literal pieces every match of it contains
    (:func:`regex_anchors`), found by the same scan as the vocabulary, and there only from where they occur
    when its matches have a bounded length (:class:`_Windows`): ``search(text, scan)`` is
    ``pattern.search(text)`` and ``finditer(text, scan)`` ``list(pattern.finditer(text))``, skipped where
    they cannot match."""

    def __init__(self, pattern: re.Pattern, anchors: tuple[frozenset[str], ...] | None = None):
        """``anchors``: what every match contains, if not :func:`regex_anchors` (fewer or longer pieces, still true)."""
        self.pattern = pattern
        anchors = regex_anchors(pattern.pattern) if anchors is None else anchors
        self.gate = _Gate([anchors])
        self.windows = _Windows(pattern, [anchors])
        _VOCABULARY.register_anchors(self.windows.anchors)

    def runs(self, scan: Scan) -> bool:
        return not self.gate.blocked(scan.anchors)

    def search(self, text: str, scan: Scan) -> re.Match | None:
        return None if self.gate.blocked(scan.anchors) else self.windows.search(text, scan)

    def finditer(self, text: str, scan: Scan) -> list[re.Match]:
        return [] if self.gate.blocked(scan.anchors) else self.windows.finditer(text, scan)


#: Texts at most this long (keywords, trial conditions and interventions, short titles) have their scans remembered
#: from work to work: the same few come back in work after work. Scans are never changed once made.
SHORT_TEXT = 64
#: Most short texts remembered (then forgotten all at once).
SHORT_SCANS = 50_000
#: short text -> its scan, made at the vocabulary generation held beside it
_SHORT: dict[str, Scan] = {}
_SHORT_GENERATION = [-1]


def _short_scan(text: str) -> Scan:
    """The scan of a short text, remembered while the vocabulary stays as it is."""
    if _SHORT_GENERATION[0] != _VOCABULARY.generation or len(_SHORT) >= SHORT_SCANS:
        _SHORT.clear()
        _SHORT_GENERATION[0] = _VOCABULARY.generation
    found = _SHORT.get(text)
    if found is None:
        found = _SHORT[text] = _VOCABULARY.scan(text)
    return found


class WorkCache:
    """What is computed once per work and shared by every rule, relevance, tags, evidence and focus: each
    text's scan, each text blanked by each exclusion list, and anything else keyed by ``memo``."""

    __slots__ = ("generation", "scans", "blanked", "memo", "normalised")

    def __init__(self, normalised: bool = False) -> None:
        self.generation = _VOCABULARY.generation
        self.scans: dict[str, Scan] = {}
        self.blanked: dict[tuple[Any, str], tuple[str, list[str], list[tuple[int, int]]]] = {}
        self.memo: dict[Any, Any] = {}
        #: every text scanned here is in :func:`normalize_text`'s form (lower case, no whitespace but the plain space) or
        #: made of such texts by slicing, joining with spaces or " | " and blanking with spaces (the texts of a work's
        #: :class:`Doc` as :func:`crawler.classify.build_facts` makes them, and what every rule derives from them): its
        #: long texts' scans then know it without looking (:meth:`_Vocabulary.scan`)
        self.normalised = normalised

    def scan(self, text: str) -> Scan:
        if self.generation != _VOCABULARY.generation:  # rules compiled since: look again
            self.generation = _VOCABULARY.generation
            self.scans.clear()
        found = self.scans.get(text)
        if found is None:
            found = self.scans[text] = _short_scan(text) if len(text) <= SHORT_TEXT else _VOCABULARY.scan(text, self.normalised)
        return found

    def rescan(self, text: str, scan: Scan, ranges: list[tuple[int, int]]) -> Scan:
        """The scan of ``text``, derived from ``scan`` (of a text it differs from only inside ``ranges``)."""
        if self.generation != _VOCABULARY.generation:
            return self.scan(text)
        found = self.scans.get(text)
        if found is None:
            found = self.scans[text] = _VOCABULARY.rescan(text, scan, ranges)
        return found


_SLOTS = itertools.count()
#: Every compiled list (:class:`_Terms`), and [the key map of all of them] (:func:`_keymap`; None: made on the next use).
_LISTS: list[_Terms] = []
_KEYMAP: list[dict[int, tuple[tuple[int, int], ...]] | None] = [None]
#: Held while a list is added or the key map made: a key map made while another thread compiles a list is never kept
#: (it would lack that list; e.g. the fetch worker builds its vocabulary in a thread of its own)
_KEYMAP_LOCK = threading.Lock()


def _take_locks_before_fork() -> None:
    """Both locks taken by the thread that forks, so that no other thread holds one at the fork: a child would inherit
    it held for good (by a thread it does not have: litmon forks its fetch worker and ``litmon reclassify``'s workers)
    and the vocabulary or the list of lists half changed. Only computation runs under them (no fork, no wait), so
    this waits at most for one build of the automaton."""
    _AUTOMATON_LOCK.acquire()
    _KEYMAP_LOCK.acquire()


def _release_locks_after_fork() -> None:
    """In the parent and the child (each its own copy of the locks, taken by the forking thread)."""
    _KEYMAP_LOCK.release()
    _AUTOMATON_LOCK.release()


# Once per process: a reload of this module runs this again in the same namespace, and a second pair of hooks would
# wait at each fork for the locks the first pair took. The hooks call the functions the namespace holds when it forks.
if not globals().get("_FORK_HOOKS_REGISTERED"):
    os.register_at_fork(
        before=lambda: _take_locks_before_fork(),
        after_in_parent=lambda: _release_locks_after_fork(),
        after_in_child=lambda: _release_locks_after_fork(),
    )
    _FORK_HOOKS_REGISTERED = True


def _keymap() -> dict[int, tuple[tuple[int, int], ...]]:
    """Plain term key -> (slot, index of its first term there) of every compiled list that holds it: what
    :func:`_select` reads, for all lists at once. A new object when a list is compiled (scans' selections made before
    are then made again: :func:`_selected`)."""
    with _KEYMAP_LOCK:
        keymap = _KEYMAP[0]
        if keymap is None:
            targets: dict[int, list[tuple[int, int]]] = {}
            for terms in _LISTS:
                if terms.apart:
                    continue
                for key, index in terms.keys.items():
                    targets.setdefault(key, []).append((terms.slot, index))
            keymap = _KEYMAP[0] = {key: tuple(found) for key, found in targets.items()}
        return keymap


class _Terms:
    """A compiled list of terms, read from the scans of a work's texts.

    Plain terms are found by the vocabulary's automaton (:class:`Scan`); among the occurrences of its
    terms, a list keeps what a regular expression of them (one alternative per term, in list order)
    would match: leftmost first, at one position the earliest term, never overlapping. The ``re:``
    terms are one expression, run only on texts that contain its anchors (:func:`regex_anchors`);
    its groups are named ``t<index in terms>``. Plain matches come first, as the two expressions did.
    """

    def __init__(self, terms: list[str], apart: bool = False):
        """``apart``: the list is left out of the key map (:func:`_keymap`), its plain matches in a text selected when
        asked (:meth:`plain_in`): an ``unless`` list, read only for a rule that found something."""
        self.terms = terms
        self.slot = next(_SLOTS)  # what a RuleSet knows the list by
        self.keys: dict[int, int] = {}  # plain term key -> index of its first term in the list
        self.apart = apart
        regex = [(i, t) for i, t in enumerate(terms) if t.startswith("re:")]
        for index, term in enumerate(terms):
            if not term.startswith("re:"):
                self.keys.setdefault(_VOCABULARY.key(term), index)
        self.regex: re.Pattern | None = None
        self.gate: _Gate | None = None
        self.windows: _Windows | None = None
        #: whether no form of its plain terms holds a space (the scan reads any whitespace as one): then no match of
        #: them holds whitespace, and texts joined with spaces hold the matches of each text and no other
        keys = set(self.keys)
        self.unspaced = not any(
            " " in form for form, entries in _VOCABULARY.forms.items() if any(entry[0] in keys for entry in entries)
        )
        if regex:
            self.regex = re.compile("|".join(f"(?P<t{i}>{term_pattern(t)})" for i, t in regex), re.I)
            alternatives = [_known_inside(regex_anchors(term_pattern(t))) for _, t in regex]
            self.gate = _Gate(alternatives)
            self.windows = _Windows(self.regex, alternatives, starts=True)
            _VOCABULARY.register_anchors(self.windows.anchors)
        with _KEYMAP_LOCK:
            _LISTS.append(self)
            _KEYMAP[0] = None

    def possible(self, keys: Iterable[int], present: frozenset[str]) -> bool:
        """Whether a term can match somewhere in texts that, together, hold these plain terms and anchors."""
        if not self.keys.keys().isdisjoint(keys):
            return True
        return self.gate is not None and self.gate(present)

    def _plain(self, scan: Scan) -> list[tuple[int, int, int]]:
        """(start, end, index) of what the plain terms match, left to right (read from the scan's selection for every
        list, :func:`_selected`: not to be changed)."""
        if self.keys.keys().isdisjoint(scan.keys):
            return []
        if self.apart:
            return self.plain_in(scan) or []
        return _selected(scan).get(self.slot) or []

    def plain_in(self, scan: Scan) -> list[tuple[int, int, int]] | None:
        """What the plain terms match in the scanned text (None: nothing), selected for this list alone (an ``apart``
        list, :func:`_keymap`: the same as its slot of :func:`_selected`, which leaves it out)."""
        if self.keys.keys().isdisjoint(scan.keys):
            return None
        return _select(scan.entries, {key: ((self.slot, index),) for key, index in self.keys.items()}).get(self.slot)

    def _regex_runs(self, scan: Scan) -> bool:
        return self.regex is not None and self.gate is not None and (self.gate.always or not self.gate.blocked(scan.anchors))

    def regex_matches(self, text: str, scan: Scan) -> list[tuple[int, int, int]]:
        """(start, end, index of the term) of every match of the ``re:`` terms, tried only where they can match."""
        if self.windows is None or not self._regex_runs(scan):
            return []
        return [(m.start(), m.end(), int(m.lastgroup[1:])) for m in self.windows.finditer(text, scan)]  # type: ignore[index]

    def regex_first(self, text: str, scan: Scan) -> re.Match | None:
        """The first match of the ``re:`` terms, as ``search`` finds it, tried only where they can match."""
        if self.windows is None or not self._regex_runs(scan):
            return None
        return self.windows.search(text, scan)

    def blank(self, text: str, scan: Scan) -> tuple[str, list[str], list[tuple[int, int]]]:
        """The text with every match replaced by spaces (plain terms first, then the ``re:`` expression on
        the result), the words blanked, in order, and (start, end) of each piece blanked."""
        found: list[str] = []
        ranges: list[tuple[int, int]] = []
        plain = self._plain(scan)
        if plain:
            pieces, position = [], 0
            for start, end, _ in plain:
                words = _whole_words(text, start, end)
                if words not in found:
                    found.append(words)
                pieces += [text[position:start], " " * (end - start)]
                ranges.append((start, end))
                position = end
            blanked = "".join(pieces) + text[position:]
        else:
            blanked = text
        if self.regex is not None and self._regex_runs(scan):

            def blank(match: re.Match) -> str:
                words = _whole_words(match.string, match.start(), match.end())
                if words not in found:
                    found.append(words)
                ranges.append(match.span())
                return " " * len(match.group(0))

            regex = self.regex
            if self.windows is not None and self.windows.ascii is not regex and _reads_as_ascii(text, scan):
                regex = self.windows.ascii  # (blanked with spaces, the text still reads as ASCII)
            blanked = regex.sub(blank, blanked)
        return blanked, found, ranges


def _known_inside(sets: tuple[frozenset[str], ...]) -> tuple[frozenset[str], ...]:
    """Anchors (:func:`regex_anchors`) with each string that an anchor the vocabulary's automaton already looks for
    begins, one or two characters shorter, replaced by that anchor: every match still holds one string of each set (the
    shorter begins the longer), the shorter occurs about as often, and the scan finds no more occurrences for them. (The shipped
    ``re:(?<![a-z])ketamine (nasal|intranasal)`` reads ``ketamin``, not ``ketamine ``: ~10 occurrences fewer per
    synthetic record, each touched by the scan's loop; a shorter piece found elsewhere in the string, "men" in
    "treatment", would pass texts the longer blocks: measured +20 % instructions.)"""
    known = _VOCABULARY.anchors
    if not known:
        return sets
    replaced = []
    for choices in sets:
        chosen = set()
        for piece in choices:
            if piece not in known:
                inside = [piece[:end] for end in range(max(MIN_ANCHOR, len(piece) - 2), len(piece)) if piece[:end] in known]
                if inside:
                    piece = max(inside, key=len)
            chosen.add(piece)
        replaced.append(frozenset(chosen))
    return tuple(replaced)


_COMPILED: dict[tuple[str, ...], _Terms] = {}


def _terms(terms: list[str], apart: bool = False) -> _Terms | None:
    """The compiled list (one per distinct list: rules that share an exclusion list share its blanking). ``apart``: an
    ``unless`` list, left out of the key map while no rule reads it otherwise (:class:`_Terms`)."""
    if not terms:
        return None
    key = tuple(terms)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = _Terms(list(terms), apart)
    elif compiled.apart and not apart:  # now read as terms, exclusions or require too: in the key map from now on
        with _KEYMAP_LOCK:
            compiled.apart = False
            _KEYMAP[0] = None
    return compiled


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

#: Key prefix, in a work's memo (:class:`WorkCache`), of what a list of terms matches in a text of the work when it is
#: known without scanning the text (a focused abstract: :func:`crawler.focus.focus_doc`): ``(MATCHED, the list's slot,
#: text)`` -> (start, end, index of the term) of each match, left to right, as :meth:`_Terms._plain` gives them. A rule
#: of plain terms alone reads it instead of scanning the text (:meth:`RuleSet._plain`).
MATCHED = "terms.matched"

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
    #: what :meth:`scanned` found, with the sizes of the text lists it was found for
    _scanned: tuple[tuple[int, ...], _Scanned] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._scanned = None

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
        memo = self._scanned
        key = (_VOCABULARY.generation, len(self.titles), len(self.trial), len(self.keywords), len(self.abstracts))
        if memo is not None and memo[0] == key:  # texts are added while a Doc is built, not changed once it is read
            return memo[1]
        scan = self.cache.scan
        fields = [(name, [(text, scan(text)) for text in getattr(self, attribute)]) for name, attribute in _FIELDS]
        keys: set[int] = set()
        anchors: set[str] = set()
        for _, items in fields:
            for _, found in items:
                keys.update(found.keys)
                anchors.update(found.anchors)
        value = (fields, keys, frozenset(anchors))
        self._scanned = (key, value)
        return value

    def anchors(self) -> frozenset[str]:
        """The anchors of the vocabulary's ``re:`` terms found in any text of the work."""
        return self.scanned()[2]


@functools.lru_cache(maxsize=4096)
def _normal_term(term: str) -> str:
    return normalize_text(term)


@dataclass(slots=True)
class Hit:
    field: str
    term: str
    text: str  # the words as found
    count: int = 1

    def describe(self) -> str:
        return _describe((self.field, self.term, self.text, self.count))


class _Described(dict[tuple[str, str, str, int], str]):
    """What a hit says, by (field, term, words, count): the same words are found in work after work. Made when first
    asked (``_DESCRIBED[found]``, in C for every hit but the first of its kind), then remembered."""

    def __missing__(self, found: tuple[str, str, str, int]) -> str:
        if len(self) >= 100_000:
            self.clear()
        name, term_text, text, count = found
        times = f" x{count}" if count > 1 else ""
        term = _normal_term(term_text)
        plain = text == term or (term.endswith("*") and text.startswith(term.rstrip("*")))
        shown = term_text if len(term_text) <= 40 else term_text[:37] + "..."
        words = f"'{text}'" if plain else f"'{text}' (term '{shown}')"
        described = self[found] = f"{words} in {name}{times}"
        return described


_DESCRIBED = _Described()


def _describe(found: tuple[str, str, str, int]) -> str:
    """:meth:`Hit.describe` of the hit (field, term, words, count), remembered."""
    return _DESCRIBED[found]


class RuleResult:
    """What a rule found in a work: ``strength``, ``hits`` (what was found where), the words its exclusions blanked,
    what cancelled it (``unless``) and whether a ``require`` term was missing.

    The evaluation records each hit as (field, term, words, count) in ``found``; the :class:`Hit` objects are made
    only when ``hits`` is read (most results are only ever shown as :meth:`evidence`)."""

    __slots__ = ("rule", "strength", "found", "_hits", "excluded", "cancelled_by", "missing_require")

    def __init__(
        self,
        rule: TermRule,
        strength: int = 0,
        hits: list[Hit] | None = None,
        excluded: list[str] | None = None,
        cancelled_by: str | None = None,
        missing_require: bool = False,
    ):
        self.rule = rule
        self.strength = strength
        self.found: list[tuple[str, str, str, int]] = []
        self._hits: list[Hit] | None = hits
        self.excluded: list[str] = [] if excluded is None else excluded
        self.cancelled_by = cancelled_by
        self.missing_require = missing_require

    @property
    def hits(self) -> list[Hit]:
        hits, found = self._hits, self.found
        if hits is None:
            hits = self._hits = [Hit(*each) for each in found]
        elif found:  # (hits given, then more recorded)
            hits += [Hit(*each) for each in found]
        if found:
            self.found = []
        return hits

    @hits.setter
    def hits(self, hits: list[Hit]) -> None:
        self._hits = hits
        self.found = []

    @property
    def matched(self) -> bool:
        """Whether anything was found (``bool(hits)``, without making the :class:`Hit` objects)."""
        return bool(self.found) or bool(self._hits)

    @property
    def fired(self) -> bool:
        return self.strength >= self.rule.min_strength and self.cancelled_by is None and not self.missing_require

    def evidence(self) -> str:
        """The hits as one line: ``'nasal spray' in title; 'esketamine nasal spray' in abstract x2``."""
        if self._hits is None:
            return "; ".join(map(_DESCRIBED.__getitem__, self.found))
        return "; ".join(hit.describe() for hit in self.hits)

    def _fields(self) -> tuple:
        return (self.rule, self.strength, self.hits, self.excluded, self.cancelled_by, self.missing_require)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"RuleResult(rule={self.rule!r}, strength={self.strength!r}, hits={self.hits!r}, excluded={self.excluded!r}, "
            f"cancelled_by={self.cancelled_by!r}, missing_require={self.missing_require!r})"
        )


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
        # (an unless list is read only for a rule that found something: most noise classes find nothing in most works,
        # and a key map of every list made each text's selection read their terms too, ~5 of 32 per synthetic record)
        self._unless = _terms(self.unless, apart=True)
        lists = [terms for terms in (self._terms, self._exclude) if terms is not None]
        self._keys = frozenset(key for terms in lists for key in terms.keys)  # what makes the rule worth running
        self._gates = [terms.gate for terms in lists if terms.gate is not None]
        self._alone: RuleSet | None = None
        #: when the texts blanked by the exclusions are read only by the ``re:`` terms, behind a gate that does not always
        #: pass: that gate, and the anchors it reads that blanking can make (they hold a space; blanking writes spaces)
        terms = self._terms
        self._blanked_gate: tuple[_Gate, frozenset[str]] | None = None
        if (
            self._exclude is not None
            and terms is not None
            and not terms.keys
            and terms.gate is not None
            and not terms.gate.always
            and self._require is None
            and self._unless is None
        ):
            self._blanked_gate = (terms.gate, frozenset(anchor for anchor in terms.gate.anchors if " " in anchor))

    def evaluate(self, doc: Doc) -> RuleResult:
        if self._alone is None:
            self._alone = RuleSet([self])
        return self._alone.evaluate(doc)[0] or RuleResult(self)

    def _blanked_fields(self, doc: Doc, fields, result: RuleResult):
        """The work's texts with this rule's exclusions blanked (once per work, exclusion list and text), each
        with its scan, and whether any text changed; the words blanked go to ``result.excluded``."""
        exclude = self._exclude
        assert exclude is not None
        blanked, changed = [], False
        store = doc.cache.blanked
        excluded = result.excluded
        for name, items in fields:
            pairs = []
            for text, found in items:
                if not text:
                    pairs.append((text, found))
                    continue
                key = (exclude, text)
                done = store.get(key)
                if done is None:
                    done = store[key] = exclude.blank(text, found)
                for words in done[1]:
                    if words not in excluded:
                        excluded.append(words)
                if done[0] == text:
                    pairs.append((text, found))
                else:  # blanking may make and unmake matches: the blanked text's scan, derived from the text's
                    if self._blanked_gate is not None and _gate_blocked_after(self._blanked_gate, found, done[0], done[2]):
                        pairs.append((done[0], _EMPTY_SCAN))  # (nothing there reads more than the gate: not scanned)
                    else:
                        pairs.append((done[0], doc.cache.rescan(done[0], found, done[2])))
                    changed = True
            blanked.append((name, pairs))
        return blanked, changed


#: The scan of a text that holds nothing (what :meth:`TermRule._blanked_fields` gives a blanked text it need not scan).
_EMPTY_SCAN = Scan([])


def _gate_blocked_after(
    blanked_gate: tuple[_Gate, frozenset[str]], scan: Scan, blanked: str, ranges: list[tuple[int, int]]
) -> bool:
    """Whether a gate blocks ``blanked``, the text of ``scan`` with the pieces ``ranges`` ((start, end) of each) blanked
    with spaces, without scanning it: of the anchors the gate reads, the blanked text holds those that occur in the text
    outside every range, and those that hold a space (blanking may make them) found near a range; nothing else."""
    gate, spaced = blanked_gate
    positions = scan.positions
    present = set()
    for anchor in gate.anchors & scan.anchors:
        size = len(anchor)
        for last in positions[anchor]:
            first = last + 1 - size
            for low, high in ranges:
                if first < high and last >= low:  # overlaps this range: blanked (unless it holds a space: see below)
                    break
            else:
                present.add(anchor)
                break
    if spaced:
        other = _has_other_space(blanked)  # (the scan would read such whitespace as a space: not looked for here)
        for anchor in spaced - present:
            size = len(anchor)
            if other or any(blanked.find(anchor, max(0, low - size + 1), high + size - 1) >= 0 for low, high in ranges):
                present.add(anchor)
    return gate.blocked(frozenset(present))


def _select(entries: list[tuple[int, int, int]], keymap: dict[int, tuple[tuple[int, int], ...]]) -> dict[int, list]:
    """What each list of terms matches among a text's hits (``entries``, left to right), for every list at once:
    list slot -> (start, end, index of the term) of each match. As one expression of the list's terms would:
    leftmost first, at one position the earliest term in the list (then the shortest), never overlapping."""
    out: dict[int, list[tuple[int, int, int]]] = {}
    for start, end, key in entries:
        targets = keymap.get(key)
        if targets is None:
            continue
        for slot, index in targets:
            found = out.get(slot)
            if found is None:
                out[slot] = [(start, end, index)]
                continue
            last_start, last_end, last_index = found[-1]
            if last_start == start:  # the same position: the earlier term wins
                if index < last_index or (index == last_index and end < last_end):
                    found[-1] = (start, end, index)
            elif start >= last_end:
                found.append((start, end, index))
    return out


_NO_MATCHES: dict[int, list[tuple[int, int, int]]] = {}


def _selected(scan: Scan) -> dict[int, list[tuple[int, int, int]]]:
    """What every compiled list matches among a scan's entries (:func:`_select` with :func:`_keymap`), made once per
    scan and remembered on it: every rule set, the focus rule and the exclusions read the same (a short text's scan
    serves work after work)."""
    keymap = _KEYMAP[0]
    if keymap is None:
        keymap = _keymap()
    known = scan.selected
    if known is not None and known[0] is keymap:
        return known[1]
    selected = _select(scan.entries, keymap) if scan.entries else _NO_MATCHES
    scan.selected = (keymap, selected)
    return selected


class _Tables(dict[Scan, dict[int, list[tuple[int, int, int]]]]):
    """What each list of terms matches in each text read (:meth:`RuleSet.evaluate`), by the text's scan: slot ->
    (start, end, index) of each match (:func:`_selected`), found when first asked (``tables[scan]``)."""

    __slots__ = ()

    def __missing__(self, scan: Scan) -> dict[int, list[tuple[int, int, int]]]:
        found = self[scan] = _selected(scan)
        return found


_NOTHING: frozenset[int] = frozenset()


class RuleSet:
    """Rules evaluated together on a work: ``evaluate(doc)`` gives what each rule's :meth:`TermRule.evaluate` gives.

    The rules a work's plain terms, ``re:`` anchors or MeSH headings cannot reach are not run at all (``None``
    in their place). Each text's hits (one scan of the vocabulary's automaton) are read once for every list
    of terms of every rule (terms, exclusions, require, unless): one loop per text, not one per rule and
    field. What a MeSH heading matches is remembered per heading."""

    #: Most MeSH headings whose matches are remembered (a descriptor vocabulary is some 30,000 names).
    HEADINGS = 50_000

    def __init__(self, rules: list[TermRule]):
        self.rules = list(rules)
        keymap: dict[int, list[tuple[int, int]]] = {}
        seen: set[int] = set()
        by_key: dict[int, list[int]] = {}
        self.gated: list[tuple[int, list[_Gate]]] = []
        for position, rule in enumerate(self.rules):
            for terms in (rule._terms, rule._exclude, rule._require, rule._unless):
                if terms is not None and terms.slot not in seen:
                    seen.add(terms.slot)
                    for key, index in terms.keys.items():
                        keymap.setdefault(key, []).append((terms.slot, index))
            for key in rule._keys:
                by_key.setdefault(key, []).append(position)
            if rule._gates:
                self.gated.append((position, rule._gates))
        gates = {id(gate): gate for rule in self.rules for gate in rule._gates}
        self.gates = list(gates.values())
        #: every anchor a gate of the rule set reads, and what the gates decide for the anchors of it a work holds
        self.gate_anchors = frozenset().union(*(gate.anchors for gate in self.gates))
        self._decided: dict[frozenset[str], tuple[frozenset[int], frozenset[int]]] = {}
        #: the plain term keys of the rule set's lists (what each list matches is read from every list's: _selected)
        self.listed = frozenset(keymap)
        self.by_key = {key: tuple(positions) for key, positions in by_key.items()}
        self.key_set = frozenset(self.by_key)
        self.meshed = [(position, rule._mesh) for position, rule in enumerate(self.rules) if rule._mesh is not None]
        self._headings: dict[str, tuple[tuple[int, int], ...]] = {}
        #: what the evaluation of each rule reads, by position
        self.plans = [(rule, rule._terms, rule._exclude, rule._require, rule._unless) for rule in self.rules]
        #: a single rule without exclusions (TermRule.evaluate) reads texts no one has scanned yet (a focused abstract)
        #: with an automaton of its own terms and anchors (:meth:`_scanned`)
        self.alone = len(self.rules) == 1 and self.rules[0]._exclude is None
        lists = [terms for _, *read in self.plans for terms in read if terms is not None and terms.windows is not None]
        self.own_anchors = frozenset(anchor for terms in lists for anchor in terms.windows.anchors)
        self.own: _Vocabulary | None = None
        #: the key of the work's scans by ``own`` in a work's memo (one object: found by identity)
        self.own_key = ("terms.own", id(self))
        #: a single rule of plain terms alone (and MeSH entries), e.g. the focus concept on a focused abstract: its
        #: evaluation reads each text's matches of its one list, without what the general one sets up (:meth:`_plain`)
        only = self.rules[0] if len(self.rules) == 1 else None
        self.plain = (
            self.alone
            and only is not None
            and only._terms is not None
            and only._terms.regex is None
            and only._require is None
            and only._unless is None
        )

    @property
    def keymap(self) -> dict[int, tuple[tuple[int, int], ...]]:
        """What :func:`_select` reads for the rule set's lists (and every other compiled list's): :func:`_keymap`."""
        return _keymap()

    def _heading(self, heading: str) -> tuple[tuple[int, int], ...]:
        """(rule position, index of the MeSH entry) of every rule that a heading matches."""
        found = self._headings.get(heading)
        if found is None:
            if len(self._headings) >= self.HEADINGS:
                self._headings.clear()
            matched = ((position, mesh.match(heading)) for position, mesh in self.meshed)
            found = self._headings[heading] = tuple((position, index) for position, index in matched if index is not None)
        return found

    def _gates_passed(self, present: frozenset[str]) -> tuple[frozenset[int], frozenset[int]]:
        """(positions of the rules that one of their gates lets run, ids of the gates that pass) for a work holding
        these anchors: remembered by the anchors the gates read (a few combinations come back work after work)."""
        relevant = present & self.gate_anchors
        found = self._decided.get(relevant)
        if found is None:
            if len(self._decided) >= 4096:
                self._decided.clear()
            passing = frozenset(id(gate) for gate in self.gates if gate(relevant))
            positions = frozenset(position for position, gates in self.gated if any(id(gate) in passing for gate in gates))
            found = self._decided[relevant] = (positions, passing)
        return found

    def _own(self, doc: Doc) -> tuple[_Vocabulary, dict[str, Scan]]:
        """The automaton of the rule set's own terms and anchors (:meth:`_field_scans`), and its scans of the work's texts
        (remembered for the work). Forgets the work's scans made before rules were compiled."""
        own = self.own
        if own is None or own.generation != _VOCABULARY.generation:
            own = self.own = _VOCABULARY.subset(self.listed, self.own_anchors)
        cache = doc.cache
        if cache.generation != _VOCABULARY.generation:
            cache.scan("")  # (forgets the scans made before rules were compiled)
        memo = cache.memo.get(self.own_key)
        if memo is None or memo[0] is not own:
            memo = cache.memo[self.own_key] = (own, {})
        return own, memo[1]

    def _field_scans(self, doc: Doc) -> list[tuple[str, list[tuple[str, Scan]]]]:
        """For a single rule (:meth:`_scanned`): each field's texts with their scans. A text of the work already scanned
        whole (or short) is read from its scan, any other is scanned for the rule's own terms and anchors alone (a far
        smaller automaton, remembered for the work)."""
        own, scans = self._own(doc)
        cache = doc.cache
        whole: dict[str, Scan] = cache.scans
        fields = []
        for name, attribute in _FIELDS:
            items = []
            for text in getattr(doc, attribute):
                found = whole.get(text)
                if found is None:
                    if len(text) <= SHORT_TEXT:
                        found = cache.scan(text)
                    else:
                        found = scans.get(text)
                        if found is None:
                            found = scans[text] = own.scan(text)
                items.append((text, found))
            fields.append((name, items))
        return fields

    def _plain(self, doc: Doc) -> list[RuleResult | None]:
        """:meth:`evaluate` of a single rule of plain terms alone (``self.plain``): the same result, read from the
        matches of its one list in each text (scanned as :meth:`_field_scans` scans them, or, for a longer text not
        scanned whole, given: :data:`MATCHED`) and its MeSH entries. (The texts are read as they are found, without the
        lists :meth:`_field_scans` makes.)"""
        rule = self.rules[0]
        slot = rule._terms.slot
        listed = self.listed
        texts = []
        own, scans = self._own(doc)
        cache = doc.cache
        memo = cache.memo
        whole: dict[str, Scan] = cache.scans
        # each text's scan found as _field_scans finds it, inline, without its lists (−0.5 % of a classification)
        for name, attribute in _FIELDS:
            for text in getattr(doc, attribute):
                found = whole.get(text)
                if found is None:
                    if len(text) <= SHORT_TEXT:
                        found = cache.scan(text)
                    else:
                        matched = memo.get((MATCHED, slot, text))
                        if matched is not None:  # (what the list matches there is given)
                            if matched:
                                texts.append((name, text, matched))
                            continue
                        found = scans.get(text)
                        if found is None:
                            found = scans[text] = own.scan(text)
                if listed.isdisjoint(found.keys):
                    continue
                matches = _selected(found).get(slot)
                if matches:
                    texts.append((name, text, matches))
        headings = self._mesh_headings(doc) if self.meshed and doc.mesh else None
        if not texts and not headings:
            return [None]
        result = RuleResult(rule)
        if texts:
            _match_fields(rule, texts, result)
        if headings:
            recorded = result.found
            for heading, index in headings:
                recorded.append(("mesh", rule.mesh[index], heading, 1))
            if result.strength < _MESH_STRENGTH:
                result.strength = _MESH_STRENGTH
        return [result]

    def _mesh_headings(self, doc: Doc) -> list[tuple[str, int]]:
        """(heading, index of the MeSH entry it matches) of each of the work's MeSH headings that the single rule's entries
        match (:meth:`_plain`)."""
        known_headings = self._headings
        headings: list[tuple[str, int]] = []
        for heading in doc.mesh:
            entries = known_headings.get(heading)
            if entries is None:
                entries = self._heading(heading)
            if entries:
                headings += [(heading, index) for _, index in entries]
        return headings

    def _scanned(self, doc: Doc) -> _Scanned:
        """:meth:`Doc.scanned` for a single rule (its texts scanned by :meth:`_field_scans`). The rule reads nothing else
        of a scan, so it finds the same."""
        fields = self._field_scans(doc)
        keys: set[int] = set()
        anchors: set[str] = set()
        for _, items in fields:
            for _, found in items:
                keys.update(found.keys)
                anchors.update(found.anchors)
        return fields, keys, frozenset(anchors)

    # one function on purpose: split in four helpers it costs +4.0k instructions per record (+0.3 %; callgrind, session 19)
    def evaluate(self, doc: Doc) -> list[RuleResult | None]:  # noqa: C901
        """Each rule's result on the work, in rule order; ``None`` for a rule that cannot find anything there."""
        if self.plain:
            return self._plain(doc)
        results: list[RuleResult | None] = [None] * len(self.rules)
        fields, keys, present = self._scanned(doc) if self.alone else doc.scanned()
        by_key = self.by_key
        found_keys = self.key_set.intersection(keys)
        candidates: set[int] = set().union(*map(by_key.__getitem__, found_keys)) if found_keys else set()
        gated, passing = self._gates_passed(present) if self.gated else (_NOTHING, _NOTHING)
        candidates |= gated
        mesh_hits: dict[int, list[tuple[str, int]]] = {}
        if self.meshed and doc.mesh:
            known_headings = self._headings
            for heading in doc.mesh:
                entries = known_headings.get(heading)
                if entries is None:
                    entries = self._heading(heading)
                for position, index in entries:
                    found = mesh_hits.get(position)
                    if found is None:
                        mesh_hits[position] = [(heading, index)]
                    else:
                        found.append((heading, index))
            candidates.update(mesh_hits)
        if not candidates:
            return results
        # what each list's plain terms match in each text (by its scan): slot -> (start, end, index) of each
        tables = _Tables()
        # and (field, text, what each list matches there) of the work's own texts where any list matches, in field order
        # (read list by list for the rules that run: fewer steps than one list of texts made for every list matched)
        read: list[tuple[str, str, dict[int, list[tuple[int, int, int]]]]] = []
        listed = self.listed
        for name, items in fields:
            for text, scan in items:
                if listed.isdisjoint(scan.keys):  # no plain term of any list of the rule set here (nor any entry)
                    continue
                selected = tables[scan] = _selected(scan)
                if selected:
                    read.append((name, text, selected))

        plans = self.plans
        for position in sorted(candidates):
            rule, terms, exclude, require, unless = plans[position]
            result = results[position] = RuleResult(rule)
            used = fields
            if exclude is not None and (not exclude.keys.keys().isdisjoint(found_keys) or id(exclude.gate) in passing):
                used, changed = rule._blanked_fields(doc, fields, result)
            else:
                changed = False
            if terms is not None:
                if used is fields and terms.regex is None:  # a list's plain matches in the work's own texts
                    slot = terms.slot
                    texts = None
                    for name, text, selected in read:
                        matches = selected.get(slot)
                        if matches is not None:
                            if texts is None:
                                texts = [(name, text, matches)]
                            else:
                                texts.append((name, text, matches))
                    if texts is not None:
                        _match_fields(rule, texts, result)
                elif changed or not terms.keys.keys().isdisjoint(found_keys) or id(terms.gate) in passing:
                    _match_fields(rule, _field_matches(terms, used, tables), result)
            headings = mesh_hits.get(position)
            if headings is not None:
                recorded = result.found
                for heading, index in headings:
                    recorded.append(("mesh", rule.mesh[index], heading, 1))
                if result.strength < _MESH_STRENGTH:
                    result.strength = _MESH_STRENGTH
            if result.strength:
                if require is not None:
                    result.missing_require = _first(require, used, tables) is None
                if unless is not None:
                    cancel = _first(unless, used, tables)
                    if cancel is not None:
                        name, text, start, end = cancel
                        result.cancelled_by = f"'{_whole_words(text, start, end)}' in {name}"
        return results


_MESH_STRENGTH = FIELD_STRENGTH["mesh"]


def _first(terms: _Terms, fields, tables: _Tables) -> tuple[str, str, int, int] | None:
    """(field, text, start, end) of the first match of a list in the first text (in field order) it matches."""
    slot, regex, apart = terms.slot, terms.regex, terms.apart
    for name, items in fields:
        for text, scan in items:
            plain = terms.plain_in(scan) if apart else tables[scan].get(slot)
            if plain:
                return name, text, plain[0][0], plain[0][1]
            if regex is not None:
                match = terms.regex_first(text, scan)
                if match:
                    return name, text, match.start(), match.end()
    return None


def _field_matches(terms: _Terms, fields, tables: _Tables):
    """(field, text, matches) of each text a list matches, in field order: plain terms first, then ``re:`` terms."""
    slot, windows, gate = terms.slot, terms.windows, terms.gate
    plain = bool(terms.keys)
    found = []
    for name, items in fields:
        for text, scan in items:
            matches = tables[scan].get(slot) if plain else None
            if windows is not None and gate is not None and (gate.always or (scan.anchors and not gate.blocked(scan.anchors))):
                more = [(m.start(), m.end(), int(m.lastgroup[1:])) for m in windows.finditer(text, scan)]  # type: ignore[index]
                if more:
                    matches = matches + more if matches else more
            if matches:
                found.append((name, text, matches))
    return found


# one function on purpose: split in five helpers it costs +10.8k instructions per record (+0.8 %; callgrind, session 19)
def _match_fields(rule: TermRule, texts, result: RuleResult) -> None:  # noqa: C901
    """The rule's hits in each text field (distinct words, with their first term and most mentions in one text)
    and the strength of the strongest field, from (field, text, matches) of the texts it matches, in field order."""
    if len(texts) < 2:  # (most often: one text, one match)
        if not texts:
            return
        ((name, text, matches),) = texts
        if len(matches) == 1:
            ((start, end, index),) = matches
            size = len(text)
            if end < size and text[end].isalnum():  # a prefix match is shown whole
                end += 1
                while end < size and text[end].isalnum():
                    end += 1
            result.found.append((name, rule.terms[index], text[start:end], 1))
            field_strength = FIELD_STRENGTH.get(name, ABSTRACT_ONE)  # (one mention in an abstract)
            if field_strength > result.strength:
                result.strength = field_strength
            return
    strength = result.strength
    hits = result.found
    terms = rule.terms
    current = ""
    found: dict[str, list[int]] = {}  # words -> [index of the term, count]
    best = 0
    for name, text, matches in texts:
        if name != current:
            if found:  # the field before is complete
                for words, (index, count) in found.items():
                    hits.append((current, terms[index], words, count))
                if current == "abstract":
                    if best >= 2:
                        if ABSTRACT_MANY > strength:
                            strength = ABSTRACT_MANY
                    elif ABSTRACT_ONE > strength:
                        strength = ABSTRACT_ONE
                elif FIELD_STRENGTH[current] > strength:
                    strength = FIELD_STRENGTH[current]
                found = {}
            current, best = name, 0
        size = len(text)
        if name == "abstract":  # mentions counted in each text; the same abstract from two sources is not two mentions
            counts: dict[str, list[int]] = {} if found else found  # (the first abstract's counts are the field's)
            for start, end, index in matches:
                if end < size and text[end].isalnum():  # a prefix match is shown whole
                    end += 1
                    while end < size and text[end].isalnum():
                        end += 1
                words = text[start:end]
                entry = counts.get(words)
                if entry is None:
                    counts[words] = [index, 1]
                else:
                    entry[1] += 1
            if counts is not found:
                for words, entry in counts.items():
                    known = found.get(words)
                    if known is None:
                        found[words] = entry
                    elif entry[1] > known[1]:
                        known[1] = entry[1]
        else:
            for start, end, index in matches:
                if end < size and text[end].isalnum():
                    end += 1
                    while end < size and text[end].isalnum():
                        end += 1
                words = text[start:end]
                if words not in found:
                    found[words] = [index, 1]
        if len(matches) > best:
            best = len(matches)
    if found:
        for words, (index, count) in found.items():
            hits.append((current, terms[index], words, count))
        if current == "abstract":
            field_strength = ABSTRACT_MANY if best >= 2 else ABSTRACT_ONE
        else:
            field_strength = FIELD_STRENGTH[current]
        if field_strength > strength:
            strength = field_strength
    result.strength = strength
