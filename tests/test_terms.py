"""Term matching: one scan per text for the whole vocabulary changes no result.

The fast matcher (one Aho-Corasick pass per text finds every plain term of every rule with its word
checks, rules read those hits, ``re:`` terms run only where their anchors occur, exclusions blanked once
per list and text and the blanked text scanned again) must classify exactly as the plain one did: each
list's regular expressions run on every text. The plain matcher is kept here as the reference
(:func:`reference_evaluate`); both classify every work of every fixture set, hard cases and random texts.
The evidence and focus expressions are skipped on texts without their anchors (:class:`crawler.terms.Gated`):
the reference runs them everywhere. Rules are evaluated together (:class:`crawler.terms.RuleSet`: one loop over
each text's hits for every list of terms) and ``re:`` terms are tried only around their anchors
(:class:`crawler.terms._Windows`): the reference evaluates rule by rule and runs every expression on the whole text.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from crawler import classify, focus, terms
from crawler.abstracts import reads_as_ascii
from crawler.config import load_config
from tests.helpers import dedup_corpus
from tests.helpers.classify_corpus import load_corpus

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "litmon.toml"
_UNSEEN = itertools.count()


def unseen_word(stem: str) -> str:
    """A word no rule compiled in this process holds (the vocabulary is process-wide: a test that compiles a term to
    see what changes then sees it change whichever tests ran before it, itself included)."""
    return f"{stem}{next(_UNSEEN)}"


class PlainTerms:
    """A list of terms as two regular expressions (plain terms, ``re:`` terms) run on every text: the reference."""

    def __init__(self, terms_: list[str]):
        self.terms = terms_
        plain = [(i, t) for i, t in enumerate(terms_) if not t.startswith("re:")]
        regex = [(i, t) for i, t in enumerate(terms_) if t.startswith("re:")]
        self.parts = []
        boundary = terms._BOUNDARY
        if plain:
            patterns = [(i, terms.term_pattern(t)) for i, t in plain]
            bounded = "|".join(f"(?P<t{i}>{p[len(boundary) :]})" for i, p in patterns if p.startswith(boundary))
            loose = [f"(?P<t{i}>{p})" for i, p in patterns if not p.startswith(boundary)]
            self.parts.append(re.compile("|".join(([f"{boundary}(?:{bounded})"] if bounded else []) + loose)))
        if regex:
            self.parts.append(re.compile("|".join(f"(?P<t{i}>{terms.term_pattern(t)})" for i, t in regex), re.I))

    def search(self, text):
        for compiled in self.parts:
            match = compiled.search(text)
            if match:
                return match
        return None

    def finditer(self, text):
        for compiled in self.parts:
            yield from compiled.finditer(text)

    def sub(self, repl, text):
        for compiled in self.parts:
            text = compiled.sub(repl, text)
        return text


def _words(text, match):
    end = match.end()
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[match.start() : end]


def reference_evaluate(rule, doc):
    """TermRule.evaluate as it was before any shortcut: every list's expressions run on every text."""
    plain = {
        name: PlainTerms(getattr(rule, name)) if getattr(rule, name) else None
        for name in ("terms", "exclude", "require", "unless")
    }
    mesh = (
        re.compile("|".join(f"(?P<t{i}>{terms.mesh_pattern(m)})" for i, m in enumerate(rule.mesh)), re.I) if rule.mesh else None
    )
    result = terms.RuleResult(rule)

    def blank(match):
        words = _words(match.string, match)
        if words not in result.excluded:
            result.excluded.append(words)
        return " " * len(match.group(0))

    texts = {
        name: [plain["exclude"].sub(blank, t) if plain["exclude"] and t else t for t in doc.texts(name)]
        for name in terms.TEXT_FIELDS
    }
    if plain["terms"]:
        for name in terms.TEXT_FIELDS:
            found, best = {}, 0
            for text in texts[name]:
                counts = {}
                for match in plain["terms"].finditer(text):
                    words = _words(text, match)
                    counts[words] = counts.get(words, 0) + 1
                    found.setdefault(words, terms.Hit(name, rule.terms[int(match.lastgroup[1:])], words, 0))
                for words, count in counts.items():
                    found[words].count = max(found[words].count, count if name == "abstract" else 1)
                best = max(best, sum(counts.values()))
            if found:
                result.hits.extend(found.values())
                strength = (
                    (terms.ABSTRACT_MANY if best >= 2 else terms.ABSTRACT_ONE)
                    if name == "abstract"
                    else terms.FIELD_STRENGTH[name]
                )
                result.strength = max(result.strength, strength)
    for heading in doc.mesh if mesh else []:
        match = mesh.match(heading)
        if match:
            result.hits.append(terms.Hit("mesh", rule.mesh[int(match.lastgroup[1:])], heading))
            result.strength = max(result.strength, terms.FIELD_STRENGTH["mesh"])
    if result.strength and plain["require"]:
        result.missing_require = not any(plain["require"].search(t) for name in terms.TEXT_FIELDS for t in texts[name])
    if result.strength and plain["unless"]:
        cancels = ((name, t, plain["unless"].search(t)) for name in terms.TEXT_FIELDS for t in texts[name])
        result.cancelled_by = next((f"'{_words(t, m)}' in {name}" for name, t, m in cancels if m), None)
    return result


def shipped_vocabulary():
    classify._CACHE.clear()
    try:
        return classify.build_vocabulary(load_config(str(SHIPPED_CONFIG)).topic)
    finally:
        classify._CACHE.clear()


def every_fixture_work():
    """Each labelled work of the classification set, and each record of the dedup corpus (every source) alone."""
    works = [w.records for w in load_corpus()]
    works += [[record] for _, batch in dedup_corpus.parse_batches() for record in batch]
    return works


def outputs(works, vocabulary):
    results = []
    for records in works:
        c = classify.classify_records(records, vocabulary)
        results.append(
            (c.label, c.score, c.reasons, [(t.tag, t.category, t.evidence) for t in c.tags], c.rank_score, c.rank_reasons)
        )
    return results


def test_the_fast_matcher_classifies_every_fixture_as_the_plain_one(monkeypatch):
    works = every_fixture_work()
    assert len(works) > 300
    fast = outputs(works, shipped_vocabulary())
    monkeypatch.setattr(terms.TermRule, "evaluate", reference_evaluate)
    monkeypatch.setattr(terms.RuleSet, "evaluate", lambda self, doc: [reference_evaluate(rule, doc) for rule in self.rules])
    # every re: term on the whole text, not only around its anchors
    monkeypatch.setattr(terms._Windows, "spans", lambda self, scan: None)
    # the evidence and focus expressions too: each runs on every text, whatever its anchors
    monkeypatch.setattr(terms.Gated, "runs", lambda self, scan: True)
    monkeypatch.setattr(terms.Gated, "search", lambda self, text, scan: self.pattern.search(text))
    monkeypatch.setattr(terms.Gated, "finditer", lambda self, text, scan: list(self.pattern.finditer(text)))
    plain = outputs(works, shipped_vocabulary())
    assert [r[0] for r in fast] == [r[0] for r in plain]  # labels first: the clearest message
    assert [r[3] for r in fast] == [r[3] for r in plain]  # then tags with their evidence
    assert fast == plain  # and everything else: scores, reasons, rank


@pytest.mark.parametrize(
    "pattern, expected",
    [
        (r"\b(oral|buccal)\b[^.;]{0,40}ketamin", [{"oral", "buccal"}, {"ketamin"}]),
        (r"(past[ -](year|month)|lifetime) (ketamine )?use", [{"past", "lifetime"}, {"year", "month", "lifetime"}, {"use"}]),
        (r"\b1[0-7][ -]year[ -]old\b", [{"year"}, {"old"}]),
        (r"(a|b)+c", []),  # nothing of three letters or more is certain
        (r"ketamin(e)?", [{"ketamin"}]),
        (r"(ketamine)*infusion", [{"infusion"}]),  # a piece that may repeat zero times is not certain
    ],
)
def test_regex_anchors_are_what_every_match_contains(pattern, expected):
    assert [set(s) for s in terms.regex_anchors(pattern)] == expected


def test_a_regex_rule_runs_only_where_its_anchors_occur():
    rule = terms.TermRule("oral", terms=[r"re:\b(oral|sublingual)\b[^.;]{0,40}ketamin"])
    doc = terms.Doc(titles=["oral ketamine for depression"], abstracts=["intravenous ketamine in adults."])
    assert [h.text for h in rule.evaluate(doc).hits] == ["oral ketamine"]
    _, keys, present = terms.Doc(abstracts=["intravenous ketamine in adults."]).scanned()
    assert rule._terms.possible(keys, present) is False


def test_a_word_start_term_still_needs_a_word_start():
    rule = terms.TermRule("oral", terms=["oral", "esketamine"])
    doc = terms.Doc(titles=["coral reefs and moral esketamine"], abstracts=["oral use", "nonesketamine"])
    assert [(h.field, h.text) for h in rule.evaluate(doc).hits] == [("title", "esketamine"), ("abstract", "oral")]


def test_rules_added_later_see_their_anchors(monkeypatch):
    earlier, later = unseen_word("zyxwvut"), unseen_word("qponmlk")
    first = terms.TermRule("a", terms=[earlier])
    doc = terms.Doc(titles=[f"{earlier} and {later}"])
    assert first.evaluate(doc).fired
    second = terms.TermRule("b", terms=[later])  # new anchors: what was found before is looked for again
    assert second.evaluate(terms.Doc(titles=[f"{earlier} and {later}"])).fired


def test_a_results_hits_are_made_when_read_and_stay_a_list():
    rule = terms.TermRule("a", terms=["ketamin*", "nasal"], mesh=["Ketamine"])
    result = rule.evaluate(terms.Doc(titles=["nasal ketamine"], abstracts=["ketamine, ketamines."], mesh=["Ketamine"]))
    assert result.matched and result.evidence() == "'nasal' in title; 'ketamine' in title; 'ketamine' in abstract; " + (
        "'ketamines' in abstract; 'Ketamine' (term 'Ketamine') in mesh"
    )
    assert result.hits[1] == terms.Hit("title", "ketamin*", "ketamine")
    result.hits.append(terms.Hit("keywords", "nasal", "nasal"))  # the list read is the result's own
    result.hits[0].count = 2
    assert result.evidence().startswith("'nasal' in title x2;") and result.evidence().endswith("; 'nasal' in keywords")
    assert result == result and result != terms.RuleResult(rule) and not terms.RuleResult(rule).matched
    assert "hits=[Hit(field='title'" in repr(result)


def outcome(result) -> tuple:
    """Everything a rule's result says: strength, evidence, exclusions, cancellation, a missing requirement."""
    return (result.strength, result.evidence(), result.excluded, result.cancelled_by, result.missing_require)


@pytest.mark.parametrize(
    "rule, doc",
    [
        # blanking a prefix exclusion leaves the rest of a word at a word start: "ion" matches after it
        (
            dict(terms=["ion*", "depression"], exclude=["respiratory depress*"]),
            dict(abstracts=["respiratory depression and depression"]),
        ),
        # blanking a character makes two words of one: "foo bar" matches only after it
        (dict(terms=["foo bar"], exclude=["re:x"]), dict(titles=["fooxbar", "foo-bar"])),
        # an excluded phrase takes its terms with it; the exclusion is named once
        (dict(terms=["oral"], exclude=["oral health"]), dict(abstracts=["oral health. oral health and oral use"])),
        # the same letters for a whole word and a prefix: each with its own word checks
        (dict(terms=["ab", "ab*", "-b"]), dict(titles=["ab abc xab -b a-b"], abstracts=["abab ab-b"])),
        # at one position the earliest term wins, and matches never overlap
        (dict(terms=["ab", "a*", "abc"]), dict(titles=["abc abcd ab a"])),
        (dict(terms=["a*", "ab", "b c"]), dict(titles=["abc ab c a-b"], keywords=["ab", "b-c"])),
        # spaces, hyphens or nothing between a term's words; other whitespace too
        (
            dict(terms=["post-traumatic stress*"]),
            dict(abstracts=["post traumatic stress, posttraumatic stressor, post\ttraumatic stress"]),
        ),
        # terms that begin or end with something else than a letter or digit
        (dict(terms=["(r)-ketamin*", "i.v.", "-like"]), dict(abstracts=["(r)ketamine i.v.x ketamine-like likely"])),
        # plain and re: terms together, require and unless
        (
            dict(terms=["nasal", "re:(intranasal|nasal) (racemic )?ketamine"], require=["esketamin*"], unless=["re:unlike"]),
            dict(titles=["nasal ketamine"], abstracts=["nasal racemic ketamine, not esketamine"]),
        ),
        (dict(terms=["pain"], unless=["patients with", "re:pain(ful)?"]), dict(abstracts=["painful pain in patients with pain"])),
        # several texts in a field: words named once per field, with their first term and most mentions in one abstract
        (
            dict(terms=["ab*", "abc", "x"], mesh=["Abc"]),
            dict(
                titles=["x abc", "abc abd"],
                abstracts=["abc x abc", "abc abc abc x x", "abd"],
                keywords=["abc", "abc abc", "x"],
                mesh=["abc"],
            ),
        ),
        # MeSH: exact names and prefixes, the first entry that matches is named
        (
            dict(mesh=["Depressive Disorder*", "Depressive Disorder, Major"]),
            dict(mesh=["depressive disorder, major", "depression"]),
        ),
    ],
)
def test_the_fast_matcher_agrees_with_the_reference_on_hard_cases(rule, doc):
    made = terms.TermRule("case", **rule)
    fast, plain = made.evaluate(terms.Doc(**doc)), reference_evaluate(made, terms.Doc(**doc))
    assert outcome(fast) == outcome(plain)
    assert fast.hits or fast.excluded or fast.cancelled_by  # each case finds something


def test_the_fast_matcher_agrees_with_the_reference_on_random_texts():
    """Random term lists (plain, prefix, multi-word, re:, exclusions) over random texts of the same words."""
    rng = random.Random(15)
    words = ["ab", "abc", "b", "c", "ca", "ketamine", "nasal", "spray", "x", "depress", "depression", "ion", "i.v.", "(r)"]
    glue = [" ", " ", " ", "-", "", ". ", "; ", "\t"]

    def text():
        return "".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 12))).strip()

    def term():
        picked = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        choice = rng.random()
        if choice < 0.2:
            return "re:" + re.escape(rng.choice(words)) + r"\W?" + re.escape(rng.choice(words))
        return picked + "*" if choice < 0.5 else picked

    for _ in range(400):
        spec = {"terms": [term() for _ in range(rng.randint(1, 5))]}
        for key in ("exclude", "require", "unless"):
            if rng.random() < 0.4:
                spec[key] = [term() for _ in range(rng.randint(1, 2))]
        rule = terms.TermRule("random", **spec)
        doc = dict(titles=[text()], abstracts=[text(), text()], keywords=[text()])
        fast, plain = rule.evaluate(terms.Doc(**doc)), reference_evaluate(rule, terms.Doc(**doc))
        assert outcome(fast) == outcome(plain), (spec, doc)


@pytest.mark.parametrize(
    "pattern, extent",
    [
        (r"\b1[0-7][ -]year[ -]old\b", (11, 13)),  # \b reads the character after the match
        (r"(?<![a-z])ketamine (nasal|intranasal)", (19, 19)),  # a look-behind reads before, never after
        (r"x(?![^.]{0,40}y)", (1, 42)),  # a look-ahead reads past the match
        (r"a*b", None),
        (r"(a)\1", None),
    ],
)
def test_regex_extent_bounds_what_matching_reads(pattern, extent):
    assert terms.regex_extent(pattern) == extent


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "null",
        "[]",
        "{}",
        '{"python": [3, 11]}',
        '{"python": "3.11", "anchors": {}, "extents": {}}',
        '{"python": [3], "anchors": {}, "extents": {}}',
        '{"python": [3, 11], "anchors": [], "extents": {}}',
        '{"python": [3, 11], "anchors": {"ketamin": ["ketamin"]}, "extents": {}}',  # a set that is a string
        '{"python": [3, 11], "anchors": {"ketamin": [[7]]}, "extents": {}}',
        '{"python": [3, 11], "anchors": {}, "extents": {"ketamin": [7]}}',
        '{"python": [3, 11], "anchors": {}, "extents": {"ketamin": ["7", "7"]}}',
        '{"python": [3, 11], "anchors": {}, "extents": {"ketamin": [7.0, 7]}}',
        '{"python": [2, 7], "anchors": {"ketamin": [["ketamin"]]}, "extents": {"ketamin": [7, 7]}}',  # another Python
    ],
)
def test_a_kept_analyses_file_of_another_shape_is_not_read(tmp_path, monkeypatch, content):
    """crawler/regex_analyses.json is read only when it has the shape terms.analyses_of gives and this Python made it;
    otherwise nothing is kept (each expression is analysed afresh) and nothing is raised: it is read at import."""
    path = tmp_path / "regex_analyses.json"
    path.write_text(content.replace("[3, 11]", str(list(sys.version_info[:2]))), encoding="utf-8")
    monkeypatch.setattr(terms, "KEPT_ANALYSES", str(path))
    assert terms._kept_analyses() == ({}, {})
    path.write_text(
        f'{{"python": {list(sys.version_info[:2])}, "anchors": {{"ketamin": [["ketamin"]]}}, "extents": {{"ketamin": [7, 7]}}}}'
    )
    assert terms._kept_analyses() == ({"ketamin": (frozenset({"ketamin"}),)}, {"ketamin": (7, 7)})
    monkeypatch.setattr(terms, "KEPT_ANALYSES", str(tmp_path / "missing.json"))
    assert terms._kept_analyses() == ({}, {})


def test_an_expression_is_read_alike_whatever_its_flags_but_verbose():
    """The analyses share one parse of an expression and of its ASCII form (``_parsed``), and ``regex_anchors`` parses
    without ``re.IGNORECASE``: true while the flags but ``re.VERBOSE`` make no difference to the parsed tree (the
    classifier's expressions, each parsed afresh with each flag)."""
    from re import _parser as parser  # type: ignore[attr-defined]

    from crawler import evidence

    patterns = {gated.pattern.pattern for gated in evidence._GATED.values()}
    patterns |= {
        value.pattern for module in (evidence, focus) for value in vars(module).values() if isinstance(value, re.Pattern)
    }
    assert len(patterns) > 40
    for pattern in sorted(patterns):
        trees = {repr(parser.parse(pattern, flags).data) for flags in (0, re.I, re.A, re.U, re.I | re.A)}
        assert len(trees) == 1, pattern
        assert terms.regex_extent(pattern, re.A) == terms.regex_extent(pattern) == terms.regex_extent(pattern, re.U)
        assert terms.regex_starts(pattern, re.I) == terms.regex_starts(pattern)


@pytest.mark.parametrize(
    "pattern, expected",
    [
        (r"(?<![a-z])ketamine (nasal|intranasal)", ["ketamine intranasal", "ketamine nasal"]),  # look-behinds read none
        (r"\b(es|ar)?ketamin\w*", ["arketamin", "esketamin", "ketamin"]),  # then a class that repeats: stops there
        (r"fail(ed|ing)? 2 ", ["fail 2 ", "failed 2 ", "failing 2 "]),
        (r"\b1[0-2][ -]y", ["10 y", "10-y", "11 y", "11-y", "12 y", "12-y"]),  # a few characters listed, spelled out
        (r"[a-z]+ketamine", None),  # may begin with any letter
        (r"(ketamine)?", None),  # may be empty
        (r"\bk\w*", ["k"]),
    ],
)
def test_regex_starts_are_what_every_match_begins_with(pattern, expected):
    assert terms.regex_starts(pattern, re.I) == expected


def test_re_terms_tried_where_they_can_begin_match_as_on_the_whole_text():
    """Where the matches of a list's re: terms can begin, from its anchors' occurrences (the strings that begin them,
    and the anchors each holds), then the expression tried only there: what ``finditer`` and ``search`` find on the
    whole text, on random texts of the pieces (lower case ASCII; upper case and other letters are read whole), with
    anchors at the very start of the text and strings that begin before it."""
    rng = random.Random(11)
    words = ["oral", "ketamine", "esketamine", "nasal", "intranasal", "x", "ab", "year", "old", "16", "12", "not", "respond"]
    words += ["failed", "fail", "to", "2", "two", "tablets", "psychotherapy", "Ketamine", "ÿ", "."]
    glue = [" ", " ", "-", "", ". ", "; ", "\n"]
    pieces = [
        r"\b(oral|tablets?)\b[^.;]{0,12}(es)?ketamin",
        r"(es|ar)?ketamin\w{0,3}[^.;]{0,10}(oral|nasal)\b",
        r"(?<![a-z])(intra)?nasal (ketamine|x)",
        r"\b1[0-7][ -]year[ -]old\b",
        r"(failed to|not) (respond|ab)(?![^.]{0,8}old)",
        r"fail(ed|ing)? (to )?(two|2)\b",
        r"\b(es)?ketamin\w*(\W+\w+){0,4}?\W+psychotherap",  # no bound on its length: no windows, still starts
    ]
    checked = started = 0
    for _ in range(300):
        chosen = rng.sample(pieces, rng.randint(1, 3))
        listed = terms._terms([f"re:{p}" for p in chosen])
        assert listed is not None and listed.windows is not None and listed.windows.starts is not None
        for _ in range(5):
            text = "".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 40)))
            if rng.random() < 0.7:
                text = text.lower().replace("ÿ", "y")
            scan = terms._VOCABULARY.scan(text)
            checked += found_as_on_the_whole_text(listed, text, scan)
            started += terms._reads_as_lower_ascii(text, scan)
    assert checked > 200 and started > 500


def test_a_rule_set_gives_each_rule_what_it_gives_alone():
    vocabulary = shipped_vocabulary()
    rules = vocabulary.concepts + vocabulary.noise + vocabulary.tags
    together = terms.RuleSet(rules)
    fired = 0
    for records in every_fixture_work():
        doc = classify.build_facts(records).doc
        for rule, result in zip(rules, together.evaluate(doc)):
            alone = reference_evaluate(rule, doc)
            assert outcome(result or terms.RuleResult(rule)) == outcome(alone), rule.name
            if result is not None:  # evidence read from the recorded hits, then the Hit objects made from them
                evidence, matched = result.evidence(), result.matched
                assert result.hits == alone.hits and matched == bool(alone.hits), rule.name
                assert evidence == "; ".join(hit.describe() for hit in result.hits), rule.name
            fired += bool(result and result.fired)
    assert fired > 500


def test_re_terms_tried_around_their_anchors_match_as_on_the_whole_text(monkeypatch):
    """Random bounded expressions with look-arounds and word checks, over random texts: the windows find
    exactly what ``finditer`` and ``search`` find on the whole text."""
    rng = random.Random(7)
    words = ["oral", "ketamine", "nasal", "tablet", "x", "ab", "year", "old", "16", "not", "respond", "."]
    glue = [" ", " ", "-", "", ". ", "; ", "\n"]
    pieces = [
        r"\b(oral|tablet)\b[^.;]{0,12}ketamin",
        r"ketamin\w{0,3}[^.;]{0,10}(oral|nasal)\b",
        r"(?<![a-z])nasal (ketamine|x)",
        r"\b1[0-7][ -]year[ -]old\b",
        r"not (respond|ab)(?![^.]{0,8}old)",
        r"year(?=\W{0,2}old)",
    ]
    monkeypatch.setattr(terms._Windows, "SHORT", 0)  # short texts too
    checked = 0
    for _ in range(300):
        chosen = rng.sample(pieces, rng.randint(1, 3))
        listed = terms._terms([f"re:{p}" for p in chosen])
        assert listed is not None and listed.windows is not None and listed.windows.usable
        for _ in range(5):
            text = "".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 30)))
            checked += found_as_on_the_whole_text(listed, text, terms._VOCABULARY.scan(text))
    assert checked > 100


def found_as_on_the_whole_text(listed, text: str, scan) -> bool:
    """Whether a list's re: terms match ``text`` at all, after checking that its windows find (``finditer``, ``search``)
    what the expression finds on the whole text."""
    assert [m.span() for m in listed.windows.finditer(text, scan)] == [m.span() for m in listed.regex.finditer(text)]
    first, whole = listed.windows.search(text, scan), listed.regex.search(text)
    assert (first and first.span()) == (whole and whole.span())
    return bool(whole)


def same_scan(derived, scanned) -> None:
    assert derived.entries == scanned.entries
    assert derived.found == scanned.found and derived.positions == scanned.positions
    assert derived.anchors == scanned.anchors and derived.keys == scanned.keys


def test_a_blanked_texts_scan_derived_from_the_texts_is_what_a_new_scan_finds():
    """Random pieces of random texts made of the shipped vocabulary's words blanked: the scan derived from the
    text's (only around the pieces) finds what scanning the blanked text finds, word checks at the edges included."""
    shipped_vocabulary()  # its terms and anchors in the automaton
    rng = random.Random(21)
    words = [
        "oral",
        "antidepressant",
        "ketamine",
        "esketamine",
        "respiratory",
        "depression",
        "ion",
        "nasal",
        "spray",
        "post",
        "traumatic",
        "stress",
        "i.v.",
        "(r)",
        "ketamin",
        "not",
        "respond",
        "to",
        "two",
        "year",
        "old",
        "x",
        "é",
    ]
    glue = [" ", " ", "-", "", ". ", "; ", "\t", "\n"]
    checked = 0
    for _ in range(400):
        text = "".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 60)))
        ranges = []
        for _ in range(rng.randint(1, 4)):
            start = rng.randrange(len(text))
            ranges.append((start, min(len(text), start + rng.randint(1, 25))))
        blanked = list(text)
        for start, end in ranges:
            blanked[start:end] = " " * (end - start)
        blanked_text = "".join(blanked)
        same_scan(
            terms._VOCABULARY.rescan(blanked_text, terms._VOCABULARY.scan(text), ranges), terms._VOCABULARY.scan(blanked_text)
        )
        checked += bool(terms._VOCABULARY.scan(text).entries)
    assert checked > 300


def test_every_exclusion_list_blanked_in_every_fixture_text_derives_the_same_scan():
    vocabulary = shipped_vocabulary()
    lists = {rule._exclude for rule in vocabulary.concepts + vocabulary.noise + vocabulary.tags if rule._exclude is not None}
    blanked = 0
    for records in every_fixture_work():
        doc = classify.build_facts(records).doc
        for text in doc.titles + doc.abstracts + doc.keywords + doc.trial:
            scan = terms._VOCABULARY.scan(text)
            for exclude in lists:
                new_text, _, ranges = exclude.blank(text, scan)
                if new_text != text:
                    same_scan(terms._VOCABULARY.rescan(new_text, scan, ranges), terms._VOCABULARY.scan(new_text))
                    blanked += 1
    assert blanked >= 15


def test_a_short_texts_scan_is_remembered_from_work_to_work_until_rules_change(monkeypatch):
    # short texts' scans as in a new process (forgotten all at once when SHORT_SCANS are held: the tests before may have
    # left one fewer) and a word no rule holds yet
    monkeypatch.setattr(terms, "_SHORT", {})
    monkeypatch.setattr(terms, "_SHORT_GENERATION", [-1])
    text = unseen_word("zqxkeyword")
    first = terms.WorkCache().scan(text)
    assert terms.WorkCache().scan(text) is first  # another work: the same scan, not a new pass
    assert not first.entries
    rule = terms.TermRule("late", terms=[text])  # compiled later: short texts are looked at again
    assert rule.evaluate(terms.Doc(keywords=[text])).fired
    assert terms.WorkCache().scan(text) is not first
    long_text = "x " * terms.SHORT_TEXT
    assert terms.WorkCache().scan(long_text) is not terms.WorkCache().scan(long_text)  # long texts: once per work


def test_whether_a_scanned_text_reads_as_ascii_is_what_reads_as_ascii_says():
    """The scan knows it for most texts (ASCII, no whitespace but the plain space); the rest are asked on first use."""
    shipped_vocabulary()
    rng = random.Random(7)
    words = ["ketamine", "oral", "nasal", "depression", "Ketamine", "naïve", "x", "2", "–", "é"]
    glue = [" ", " ", "-", "", ". ", "\n", "\t", "\x1c", "\x1f", "\u00a0", "  "]
    known = kinds = 0
    seen = set()
    for _ in range(2000):
        text = "".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 12)))
        scan = terms._VOCABULARY.scan(text)
        known += scan.ascii is not None
        assert scan.reads_as_ascii(text) == terms._reads_as_ascii(text, scan) == reads_as_ascii(text)
        seen.add(reads_as_ascii(text))
        kinds += 1
    assert seen == {True, False} and 100 < known < kinds


def test_a_normalised_texts_scan_is_what_a_scan_that_looks_at_its_spaces_and_case_finds():
    """A work's cache whose texts are normalised (:attr:`crawler.terms.WorkCache.normalised`) scans them without looking
    for whitespace other than the plain space, and knows an ASCII one is lower case: the same entries, anchors, spaces,
    ASCII and lower case as a scan that looks, on every labelled work's texts and 3,000 random ones normalised (ASCII
    or not), and a scan that looks finds them so."""
    shipped_vocabulary()
    words = ["Ketamine", "É", "é", "–", "\u2019", "x", "2", "TRD"]
    glue = [" ", "", "-", ". ", "\t", "\n", "\n\n", "\u00a0", "\x1c", "  "]
    lower = 0
    for text in labelled_and_random_texts(61, words, glue, 30):
        text = terms.normalize_text(text)
        if len(text) <= terms.SHORT_TEXT:
            text = (text + " ") * (terms.SHORT_TEXT // max(len(text), 1) + 1)  # (a long text: not a short one's shared scan)
            text = text.strip()
        looked, known = terms._VOCABULARY.scan(text), terms.WorkCache(normalised=True).scan(text)
        same_scan(known, looked)
        assert known.plain is looked.plain is True
        assert known.ascii == looked.ascii and terms._reads_as_ascii(text, known) == reads_as_ascii(text)
        expected = reads_as_ascii(text) and text.lower() == text
        assert terms._reads_as_lower_ascii(text, known) is terms._reads_as_lower_ascii(text, looked) is expected, text
        lower += expected
    assert lower > 1_000


def test_an_unless_list_is_selected_apart_from_the_key_map_as_it_would_be_in_it():
    """An unless list is left out of the key map every text's selection reads (most noise classes find nothing in most
    works, and their unless lists are read only for a rule that found something); its matches in a text, selected for
    it alone when asked, are those it has in a selection of every list: on the labelled texts and 3,000 random ones.
    A list compiled for an unless and then for a rule's terms joins the key map, and both rules read it as before."""
    vocabulary = shipped_vocabulary()
    lists = [rule._unless for rule in vocabulary.noise if rule._unless is not None]
    assert lists and all(terms_.apart for terms_ in lists)
    keymap = terms._keymap()
    assert not {slot for targets in keymap.values() for slot, _ in targets} & {terms_.slot for terms_ in lists}
    with_them = {key: list(targets) for key, targets in keymap.items()}
    for terms_ in lists:
        for key, index in terms_.keys.items():
            with_them.setdefault(key, []).append((terms_.slot, index))
    words = ["treatment-resistant", "infusions", "randomised", "depressed patients", "patients with", "and patients"]
    found = 0
    for text in labelled_and_random_texts(67, words, [" ", "", "-", ". "], 20):
        scan = terms._VOCABULARY.scan(terms.normalize_text(text))
        every = terms._select(scan.entries, with_them)
        for terms_ in lists:
            assert terms_.plain_in(scan) == every.get(terms_.slot), text
            found += bool(every.get(terms_.slot))
    assert found > 1_000
    first, second = unseen_word("zqxunless"), unseen_word("zqxunless")
    noise = terms.TermRule("noise", terms=["ketamine"], unless=[first, second])
    listed = noise._unless
    assert listed is not None and listed.apart and listed.slot not in {s for t in terms._keymap().values() for s, _ in t}
    tag = terms.TermRule("tag", terms=[first, second])
    assert tag._terms is listed and not listed.apart
    assert listed.slot in {slot for targets in terms._keymap().values() for slot, _ in targets}
    doc = terms.Doc(titles=[f"ketamine and {second}"])
    assert noise.evaluate(doc).cancelled_by == f"'{second}' in title" and tag.evaluate(doc).fired


def labelled_and_random_texts(seed: int, more_words: list[str], glue: list[str], longest: int) -> list[str]:
    """Every labelled work's titles and abstracts, then 3,000 random texts of up to ``longest`` words: the shipped
    vocabulary's usual terms and ``more_words``, each followed by one of ``glue``."""
    texts = [text for work in load_corpus() for r in work.records for text in (r.title, r.abstract) if text]
    rng = random.Random(seed)
    words = ["ketamine", "esketamine", "oral", "nasal", "intranasal", "treatment-resistant", "depression", "patients"]
    words += ["men", "rat", *more_words]
    return texts + ["".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, longest))) for _ in range(3_000)]


def test_an_ascii_texts_occurrences_found_by_the_bytes_automaton_are_the_texts_own():
    """A text that is ASCII (after other whitespace is made a space) is scanned by the automaton of the literals' bytes:
    every occurrence, in the same order, as the text's own automaton finds it (offsets in characters), on every labelled
    work's texts and 3,000 random ones of terms, anchors, their pieces and punctuation."""
    shipped_vocabulary()
    automaton, _, _, in_bytes = terms._VOCABULARY._build()
    words = ["s-ketamine", "(r)-ketamine", "i.m.", "k-hole", "x", "2", "é", "–"]
    texts = labelled_and_random_texts(53, words, [" ", "", "-", ". ", ", ", "\t", "\n", "\u00a0"], 30)
    ascii = 0
    for text in texts:
        seen = terms._OTHER_SPACE.sub(" ", text.lower())
        expected = automaton.find_matches_as_indexes(seen, overlapping=True)
        if seen.isascii():
            ascii += 1
            assert in_bytes.find_matches_as_indexes(seen.encode(), overlapping=True) == expected, seen
    assert 1_000 < ascii < len(texts)


def test_a_scan_finds_each_form_where_its_word_checks_pass_and_each_anchor_where_it_occurs():
    """Every entry and anchor position of a scan, against each literal looked for with ``str.find`` and its word checks
    read from the text (a character before or after the text is no word character): on every labelled work's texts and
    3,000 random ones with terms at the very start and end, run on into letters and digits, several forms of one key."""
    shipped_vocabulary()
    vocabulary = terms._VOCABULARY
    words = ["s-ketamine", "k-hole", "x", "2", "é", "–", "a", "9"]
    texts = labelled_and_random_texts(59, words, [" ", "", "", "-", ". ", ", ", "\t", "\u00a0"], 12)
    entries_found = 0
    for text in texts:
        text = text.lower()
        entries, positions = brute_force_scan(vocabulary, text)
        scan = vocabulary.scan(text)
        assert sorted(scan.entries) == entries, text
        assert scan.entries == sorted(scan.entries)
        assert {anchor: sorted(lasts) for anchor, lasts in scan.positions.items()} == positions, text
        entries_found += len(entries)
    assert entries_found > 10_000


def test_the_gates_decided_once_per_set_of_anchors_are_what_each_gate_decides():
    """Random sets of anchors: what the rule set remembers per set of anchors is what each gate says of it."""
    vocabulary = shipped_vocabulary()
    rules = vocabulary.rules
    anchors = sorted(rules.gate_anchors | {"ketamin", "oral", "unrelated"})
    rng = random.Random(11)
    passed = 0
    for _ in range(400):
        present = frozenset(rng.sample(anchors, rng.randint(0, min(6, len(anchors)))))
        positions, gates = rules._gates_passed(present)
        assert gates == frozenset(id(gate) for gate in rules.gates if gate(present))
        assert positions == {position for position, own in rules.gated if any(gate(present) for gate in own)}
        passed += bool(positions)
    assert passed > 50


def test_what_a_gate_blocks_is_what_it_does_not_pass():
    """Random sets of anchors: ``blocked`` (one call of C for a gate of single words) is the negation of the gate."""
    vocabulary = shipped_vocabulary()
    gates = list({id(gate): gate for rule in vocabulary.rules.rules for gate in rule._gates}.values())
    gates += [terms._Gate([(frozenset({"ab", "cd"}),)]), terms._Gate([()]), terms._Gate([])]
    anchors = sorted({anchor for gate in gates for anchor in gate.anchors} | {"unrelated"})
    rng = random.Random(5)
    simple = 0
    for gate in gates:
        simple += gate.blocked != gate._blocked
        for _ in range(200):
            present = frozenset(rng.sample(anchors, rng.randint(0, min(8, len(anchors)))))
            assert gate.blocked(present) == gate._blocked(present) == (not gate(present))
    assert simple >= 2


def test_a_gate_decides_what_each_of_its_terms_says():
    """A gate passes a set of anchors when one term's every set meets it: on the shipped lists' ``re:`` terms (whose
    alternatives hold the same sets in another order, checked once) and random sets of their anchors."""
    shipped_vocabulary()
    rng = random.Random(3)
    lists = [listed for listed in terms._LISTS if listed.gate is not None and listed.gate.general]
    assert lists and all(listed.windows is not None for listed in lists)
    assert any(len(listed.gate.general) < len(listed.windows.alternatives) for listed in lists)  # (some checked once)
    checked = passed = 0
    for listed in lists:
        alternatives = listed.windows.alternatives  # (what the gate was made of: each re: term's sets)
        anchors = sorted({anchor for sets in alternatives for choices in sets for anchor in choices} | {"unrelated"})
        for _ in range(300):
            present = frozenset(rng.sample(anchors, rng.randint(0, min(6, len(anchors)))))
            expected = any(all(not present.isdisjoint(choices) for choices in sets) for sets in alternatives)
            assert listed.gate(present) == expected
            checked += 1
            passed += expected
    assert checked >= 900 and passed > 100


def test_a_gate_blocked_on_blanked_text_without_its_scan_is_blocked_on_its_scan():
    """A rule whose blanked texts only its ``re:`` terms read skips their scan where its gate blocks them, from the
    text's own scan: the real scan of the blanked text (random texts around the exclusions and the gate's anchors,
    spaces included) is then always blocked too, and the rule's results are those of a rule that scans them."""
    oral = next(rule for rule in shipped_vocabulary().tags if rule.name == "oral")
    gate = terms._Gate([(frozenset({"oral", "per os"}), frozenset({"ketamin"}))])
    terms._VOCABULARY.register_anchors(gate.anchors)  # (the shipped vocabulary's already: the scans report them)
    rng = random.Random(7)
    exclude = terms._terms(["oral antidepress*", "per", "re:\\bos x\\b", "oral ad"])
    assert exclude is not None
    words = ["oral", "antidepressant", "per", "os", "x", "ketamine", "per os", "oral ad", "-", "é", ".", "\t"]
    skipped = 0
    for _ in range(3000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.3:
            text = text.replace(" ", "", 1)
        scan = terms._VOCABULARY.scan(text)
        blanked, _, ranges = exclude.blank(text, scan)
        if blanked == text:
            continue
        spaced = frozenset(anchor for anchor in gate.anchors if " " in anchor)
        if terms._gate_blocked_after((gate, spaced), scan, blanked, ranges):
            skipped += 1
            assert gate.blocked(terms._VOCABULARY.scan(blanked).anchors), (text, blanked)
    assert skipped > 100
    assert oral._blanked_gate is not None
    scanning = terms.TermRule("oral_scanned", terms=oral.terms, exclude=oral.exclude, require=["zz-none-zz"])
    assert scanning._blanked_gate is None
    for text in ("oral antidepressant and ketamine", "oral antidepressant, oral ketamine", "ketamine per os", "oral ad ketamine"):
        found, scanned = oral.evaluate(terms.Doc(abstracts=[text])), scanning.evaluate(terms.Doc(abstracts=[text]))
        assert (found.strength, found.found, found.excluded) == (scanned.strength, scanned.found, scanned.excluded), text


def test_a_single_rule_of_plain_terms_alone_finds_what_the_general_evaluation_finds():
    """The evaluation of a rule of plain terms alone (the focus concept on a focused abstract) is what the general one gives:
    the fixture works, focused and not, and random texts, with MeSH headings; rules with and without MeSH entries."""
    vocabulary = shipped_vocabulary()
    drug = next(concept for concept in vocabulary.concepts if concept.name == vocabulary.focus_concept)
    rng = random.Random(3)
    words = ["ketamine", "esketamine", "ketamines", "xketamine", "hnk", "nasal", "spray", "-", ".", "depression", "é"]
    rules = [
        drug,
        terms.TermRule("plain_mesh", terms=["nasal spray", "ketamin*", "spray"], mesh=["Ketamine", "Depress*"]),
        terms.TermRule("plain", terms=["depression", "hnk", "esketamine nasal spray"]),
    ]
    docs = []
    for records in every_fixture_work():
        facts = classify.build_facts(records)
        docs += [facts.doc, focus.focus_doc(facts.doc, classify._concept_pattern(drug), drug).doc]
    for _ in range(300):
        text = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))  # noqa: E731
        docs.append(
            terms.Doc(
                titles=[text()],
                abstracts=[text() for _ in range(rng.randint(0, 2))],
                keywords=[text()[:20]],
                mesh=rng.sample(["Ketamine", "Depression", "Humans", "Depressive Disorder"], rng.randint(0, 3)),
            )
        )
    found = 0
    for rule in rules:
        plain, general = terms.RuleSet([rule]), terms.RuleSet([rule])
        general.plain = False
        assert plain.plain
        for doc in docs:
            result = plain.evaluate(doc)
            assert result == general.evaluate(doc), (rule.name, doc)
            found += result[0] is not None
    assert found > 500


def test_a_vocabulary_of_some_terms_finds_what_the_whole_one_finds_of_them():
    vocabulary = shipped_vocabulary()
    whole = terms._VOCABULARY
    rng = random.Random(11)
    drug = next(concept for concept in vocabulary.concepts if concept.name == vocabulary.focus_concept)
    all_keys, all_anchors = sorted({key for forms in whole.forms.values() for key, _, _ in forms}), sorted(whole.anchors)
    choices = [(frozenset(drug._terms.keys), frozenset())]
    choices += [(frozenset(rng.sample(all_keys, 40)), frozenset(rng.sample(all_anchors, 30))) for _ in range(5)]
    docs = [classify.build_facts(records).doc for records in every_fixture_work()]
    texts = [text for doc in docs for text in doc.titles + doc.abstracts]
    words = [form for form in whole.forms][:200] + all_anchors[:100] + ["x", "-", ". ", "(", "é"]
    texts += [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    for keys, anchors in choices:
        some = whole.subset(keys, anchors)
        for text in texts:
            full, own = whole.scan(text), some.scan(text)
            assert own.entries == [entry for entry in full.entries if entry[2] in keys], text
            assert own.positions == {anchor: lasts for anchor, lasts in full.positions.items() if anchor in anchors}, text


def test_a_single_rule_reads_texts_scanned_by_no_one_with_its_own_automaton():
    """TermRule.evaluate on texts no rule set has scanned (a focused abstract) scans them for the rule's own terms
    and anchors alone, and finds what the reference finds; texts already scanned whole are read from their scans."""
    shipped_vocabulary()  # every shipped term and anchor in the vocabulary
    rule = terms.TermRule(
        "r",
        terms=["ketamin*", "nasal spray", "re:(oral|sublingual) [a-z]+ketamine"],
        require=["depress*"],
        unless=["re:rats?\\b"],
    )
    abstract = "oral esketamine and ketamine nasal spray for depression in adults. " * 6  # longer than a short text
    for texts in (dict(abstracts=[abstract]), dict(abstracts=[abstract + "in rats."], titles=["ketamine"])):
        alone = terms.Doc(**texts)
        result = rule.evaluate(alone)
        assert abstract not in alone.cache.scans  # not scanned for the whole vocabulary
        assert outcome(result) == outcome(reference_evaluate(rule, terms.Doc(**texts)))
        scanned = terms.Doc(**texts)
        scanned.scanned()  # every text scanned whole first: the rule reads those scans
        assert outcome(rule.evaluate(scanned)) == outcome(result) and result.strength >= 2
    assert rule.evaluate(terms.Doc(abstracts=[abstract + "in rats."])).cancelled_by == "'rats' in abstract"


def test_other_whitespace_is_found_as_the_expression_finds_it():
    """The scan turns whitespace other than a space into spaces; whether a text holds any is decided without the
    expression for ASCII texts: the same answer for every character and for random texts."""
    for code in range(0x110000):
        character = chr(code)
        assert terms._has_other_space(character) == (terms._OTHER_SPACE.search(character) is not None), hex(code)
    rng = random.Random(9)
    pieces = ["a", "b", " ", "-", "\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "\u00a0", "\u2028", "é", "\x85"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert terms._has_other_space(text) == (terms._OTHER_SPACE.search(text) is not None), repr(text)
    rule = terms.TermRule("spaced", terms=["foo bar"])
    for gap in ("\n", "\t", "\x1e", "\u2003", "\u00a0"):
        assert rule.evaluate(terms.Doc(abstracts=[f"x foo{gap}bar"])).strength == 1, repr(gap)


def test_a_short_texts_matches_remembered_on_its_scan_serve_every_rule_set():
    """Each rule set's matches among a scan's entries are remembered on the scan (short texts' scans are shared
    between works): two rule sets reading the same texts in turn, work after work, each find what each rule finds
    alone."""
    vocabulary = shipped_vocabulary()
    rules = vocabulary.concepts + vocabulary.noise + vocabulary.tags
    sets = [terms.RuleSet(rules[::2]), terms.RuleSet(rules[1::2]), terms.RuleSet(rules)]
    works = every_fixture_work()[:300]
    compared = 0
    for _ in range(2):
        for records in works:
            doc = classify.build_facts(records).doc
            for rule_set in sets:
                for rule, result in zip(rule_set.rules, rule_set.evaluate(doc)):
                    assert outcome(result or terms.RuleResult(rule)) == outcome(reference_evaluate(rule, doc)), rule.name
                    compared += result is not None
    assert compared > 500
    keyword = terms.WorkCache().scan("esketamine")
    assert keyword.selected is not None and keyword.selected[0] in [rule_set.keymap for rule_set in sets]


def own_selection(listed, scan) -> list[tuple[int, int, int]]:
    """What one list matches among a scan's entries, from them alone: leftmost first, at one position the earliest term in
    the list (then the shortest), never overlapping."""
    found = sorted((start, listed.keys[key], end) for start, end, key in scan.entries if key in listed.keys)
    matches, position = [], 0
    for start, index, end in found:
        if start >= position:
            matches.append((start, end, index))
            position = end
    return matches


def test_one_selection_per_scan_gives_every_list_what_it_matches_alone():
    """A scan's entries are selected once for every compiled list (every rule set, the focus rule's concept and the
    exclusions read that one selection): each list finds there what its own selection finds, whichever reader made it,
    on every fixture text and on texts scanned again after more rules were compiled."""
    vocabulary = shipped_vocabulary()
    lists = [listed for listed in terms._LISTS if listed.keys]
    checked = 0
    for records in every_fixture_work()[:400]:
        facts = classify.build_facts(records)
        classify.classify_facts(facts, vocabulary)  # (the rule sets and the focus rule made the texts' selections)
        for text in facts.doc.titles + facts.doc.abstracts + facts.doc.keywords:
            scan = facts.doc.cache.scan(text)
            for listed in lists:
                expected = own_selection(listed, scan)
                assert listed._plain(scan) == expected, (listed.terms, text)
                checked += bool(expected)
    assert checked > 1000
    before = terms._keymap()
    extra = terms.TermRule("extra", terms=["ketamine*", "depress*", "oral", unseen_word("zqxextra")])  # (a new list)
    assert terms._keymap() is not before  # (a list compiled since: every scan's selection is made again)
    text = classify.normalize_text("Oral ketamine for depression, and depressed mood: ketamine orally")
    scan = terms.WorkCache().scan(text)
    for listed in [*lists, extra._terms]:
        assert listed._plain(scan) == own_selection(listed, scan), listed.terms
    assert extra._terms._plain(scan) == [(0, 4, 2), (5, 13, 0), (18, 25, 1), (34, 41, 1), (50, 58, 0)]


def test_a_re_terms_anchor_begun_by_a_known_anchor_is_read_from_it():
    """A re: term's piece that an anchor the scan already finds begins, one or two characters shorter, is read from that
    anchor (the shipped "ketamine " and "ketamine" from "ketamin"): gates and windows then find what the expression finds
    on the whole text, on random texts around those words. Checked in a new interpreter: the anchors known are
    process-wide, and a rule another test compiled in this process (a plain term "ketamine") would change them."""
    run = subprocess.run(
        [sys.executable, "-c", "import tests.test_terms as t; t.check_re_terms_anchor_begun_by_a_known_anchor()"],
        cwd=SHIPPED_CONFIG.parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def check_re_terms_anchor_begun_by_a_known_anchor():
    """The checks of the test above, in a process where only the shipped vocabulary and the modules' own rules are
    compiled (as in a crawl)."""
    shipped_vocabulary()
    assert "ketamin" in terms._VOCABULARY.anchors
    assert {"ketamine", "ketamine "}.isdisjoint(terms._VOCABULARY.anchors)
    assert terms._known_inside((frozenset({"ketamine ", "troche"}), frozenset({"nasal"}))) == (
        frozenset({"ketamin", "troche"}),
        frozenset({"nasal"}),
    )
    assert terms._known_inside((frozenset({"ketamine-a"}),)) == (frozenset({"ketamine-a"}),)  # (3 characters longer)
    nasal = [each for each in terms._LISTS if each.windows is not None and any("ketamine (nasal" in t for t in each.terms)]
    assert nasal and all("ketamin" in each.windows.anchors for each in nasal)
    rng = random.Random(15)
    words = ["ketamine", "ketamine ", "ketamin", "esketamine", "nasal", "intranasal", "racemic", "spray", ".", " ", "x"]
    found = 0
    for _ in range(2000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        text = text * (40 if rng.random() < 0.2 else 1)  # (long texts are tried in windows)
        scan = terms._VOCABULARY.scan(text)
        for each in nasal:
            found += found_as_on_the_whole_text(each, text, scan)
    assert found > 300


def test_re_terms_run_in_their_ascii_form_find_what_they_find_on_every_text():
    """On a text that reads as ASCII the re: terms (matching, blanking, require, unless) run compiled with re.ASCII:
    the same as the reference on random texts, ASCII or not (letters and digits beyond ASCII, the separators
    \\x1c-\\x1f that Unicode calls whitespace), long enough to be tried in windows."""
    rng = random.Random(21)
    words = ["ketamine", "oral", "12", "x", "ab", "é", "ß", "\u0663", "Über", "K"]
    glue = [" ", " ", "-", "", ". ", "\x1c", "\x1f", "_", "\u00a0"]
    expressions = [r"re:\bketamine\W+oral\b", r"re:\d+\s*x\b", r"re:\w+ab\b", r"re:oral(?=\s|$)", r"re:\bk\w*"]

    def text():
        body = "".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 80)))
        return body if rng.random() < 0.5 else body.encode("ascii", "ignore").decode().lower()

    checked = 0
    for _ in range(300):
        spec: dict = {"terms": rng.sample(expressions, 2)}
        for key in ("exclude", "require", "unless"):
            if rng.random() < 0.3:
                spec[key] = [rng.choice(expressions)]
        rule = terms.TermRule("ascii", **spec)
        doc = dict(titles=[text()], abstracts=[text(), text()])
        fast, plain = rule.evaluate(terms.Doc(**doc)), reference_evaluate(rule, terms.Doc(**doc))
        assert outcome(fast) == outcome(plain), (spec, doc)
        checked += bool(plain.strength)
    assert checked > 50


def brute_force_scan(vocabulary, text):
    """What the vocabulary's scan must find, every literal looked for on its own with str.find (overlaps included)."""
    seen = terms._OTHER_SPACE.sub(" ", text)
    word = terms._WORD_CHARS
    entries, positions = [], {}
    for literal in set(vocabulary.forms) | vocabulary.anchors:
        at = seen.find(literal)
        while at >= 0:
            end = at + len(literal)
            if literal in vocabulary.anchors:
                positions.setdefault(literal, []).append(end - 1)
            starts = at == 0 or seen[at - 1] not in word
            ends = end == len(seen) or seen[end] not in word
            for key, need_start, need_end in vocabulary.forms.get(literal, ()):
                if (starts or not need_start) and (ends or not need_end):
                    entries.append((at, end, key))
            at = seen.find(literal, at + 1)
    return sorted(entries), {anchor: sorted(lasts) for anchor, lasts in positions.items()}


def test_the_automaton_finds_every_occurrence_of_every_literal():
    """The vocabulary's one pass (an Aho-Corasick automaton) finds what looking for each of its literals alone finds,
    overlapping occurrences included, on every fixture title and abstract and on random texts of its literals."""
    shipped_vocabulary()
    vocabulary = terms._VOCABULARY
    texts = []
    for records in every_fixture_work()[:400]:
        doc = classify.build_facts(records).doc
        texts += doc.titles + doc.abstracts + doc.keywords
    rng = random.Random(33)
    literals = sorted(set(vocabulary.forms) | vocabulary.anchors)
    glue = ["", " ", "-", "x", "\n", "é", "1"]
    texts += ["".join(rng.choice(literals) + rng.choice(glue) for _ in range(rng.randint(1, 20))) for _ in range(300)]
    hits = 0
    for text in texts:
        scan = vocabulary.scan(text)
        assert (scan.entries, scan.positions) == brute_force_scan(vocabulary, text), text
        hits += len(scan.entries)
    assert hits > 5000


def test_a_plain_term_or_mesh_entry_always_makes_a_valid_expression():
    """The config checks compile only `re:` terms: a plain term's words and a MeSH entry are escaped, so any text
    gives an expression that compiles (or the term is refused as empty)."""
    rng = random.Random(15)
    alphabet = "ab-* .()[]{}?+|^$\\/'\"#&%:;,<>=!~`@é\u00a0\t0123456789"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert re.compile(terms.mesh_pattern(text), re.I)
        if text.startswith("re:"):
            continue
        try:
            pattern = terms.term_pattern(text)
        except ValueError:
            assert not text.replace("*", "").strip(" \t\u00a0-"), text
            continue
        assert re.compile(pattern, re.I), text


def test_lists_compiled_in_another_thread_are_in_every_later_selection():
    """Lists compiled in one thread while another selects scans (the fetch worker builds its vocabulary in a thread of
    its own): once both are done, every list finds in a new scan what its own selection finds."""

    shipped_vocabulary()
    text = classify.normalize_text("Oral ketamine for depression; zyx0 zyx1 zyx2 zyx3 zyx4 zyx5 zyx6 zyx7 zyx8 zyx9")
    compiled = []

    def compile_lists():
        for number in range(40):
            compiled.append(terms.TermRule(f"threaded{number}", terms=[f"zyx{number % 10}", f"thread{number}*"]))

    worker = threading.Thread(target=compile_lists)
    worker.start()
    while worker.is_alive():
        terms._selected(terms._VOCABULARY.scan(text))
    worker.join()
    scan = terms._VOCABULARY.scan(text)
    for rule in compiled:
        assert rule._terms._plain(scan) == own_selection(rule._terms, scan) != [], rule.name


class _WatchedLock:
    """A lock that says when a thread finds it held and is about to wait for it (``waiting``)."""

    def __init__(self, waiting: threading.Event):
        self._lock = threading.Lock()
        self.waiting = waiting

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        self.waiting.set()
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


@pytest.mark.parametrize("added", ["term", "anchor"])
def test_what_is_added_while_the_automaton_is_built_is_in_every_later_scan(monkeypatch, added):
    """A term or anchor added by one thread while another builds the automaton (after the build read what to hold,
    before it is kept) is found by every later scan. The interleaving is made on purpose: the build waits inside the
    automaton's constructor until the other thread has added its literal, or is waiting for the vocabulary's lock to
    add it. (Without the lock the build, finished, kept an automaton that lacked the literal for good.)"""
    vocabulary = terms._Vocabulary()  # its own, so no other test's rules count
    first = vocabulary.key("zyxold")
    moved_on, building = threading.Event(), threading.Event()
    monkeypatch.setattr(terms, "_AUTOMATON_LOCK", _WatchedLock(moved_on), raising=False)
    made = terms.ahocorasick_rs.AhoCorasick
    calls = []

    def held_automaton(*args, **kwargs):
        calls.append(threading.current_thread())
        if len(calls) == 1:  # the first build: let the other thread add while it is under way
            building.set()
            assert moved_on.wait(60), "the other thread neither added nor waited for the lock"
        return made(*args, **kwargs)

    monkeypatch.setattr(
        terms,
        "ahocorasick_rs",
        SimpleNamespace(**{**vars(terms.ahocorasick_rs), "AhoCorasick": held_automaton}),  # (the rest as it is)
    )
    found: dict[str, terms.Scan] = {}
    keys = []

    def add() -> None:
        if added == "term":
            keys.append(vocabulary.key("zyxnew"))
        else:
            vocabulary.register_anchors(["zyxnew"])
        moved_on.set()

    builder = threading.Thread(target=lambda: found.setdefault("during", vocabulary.scan("zyxold zyxnew")))
    adder = threading.Thread(target=add)
    builder.start()
    assert building.wait(60), "the first scan did not build the automaton"
    adder.start()
    builder.join(60)
    adder.join(60)
    assert not builder.is_alive() and not adder.is_alive()
    assert found["during"].keys == {first}  # the scan begun before: what was there when it began
    scan = vocabulary.scan("zyxold zyxnew")
    if added == "term":
        assert scan.keys == {first, *keys}
    else:
        assert scan.keys == {first} and scan.positions == {"zyxnew": [12]}
    assert len(calls) == 2  # built again, once, for the literal added


@pytest.mark.parametrize("name", ["_AUTOMATON_LOCK", "_KEYMAP_LOCK"])
def test_a_lock_another_thread_holds_when_the_process_forks_is_free_in_the_child(monkeypatch, name):
    """A thread holds one of the module's locks when another forks (litmon forks its fetch worker and reclassify's
    workers while other threads may compile rules): the child can take the lock, and compile and match a rule. The
    thread holds the lock until the fork wants it, or until the fork is done without it (then the child's copy is held
    by a thread the child does not have, for good: the child fails to take it within 5 s)."""
    wanted, held = threading.Event(), threading.Event()
    lock = _WatchedLock(wanted)
    monkeypatch.setattr(terms, name, lock)

    def hold() -> None:
        with lock:
            held.set()
            assert wanted.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(60)
    pid = os.fork()
    if pid == 0:  # the child: only ever leaves through os._exit (never back into pytest)
        code = 1
        try:
            if lock.acquire(timeout=5):
                lock.release()
                rule = terms.TermRule("forked", terms=["zyxforked"])
                code = 0 if rule.evaluate(terms.Doc(titles=["a zyxforked title"])).matched else 2
        finally:
            os._exit(code)
    wanted.set()
    holder.join(60)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child could not take the lock (1) or match the rule (2)"


def test_a_reloaded_module_registers_its_fork_hooks_once():
    """crawler.terms reloaded (importlib.reload runs it again in the same namespace) keeps one pair of fork hooks: a
    second pair would wait at the fork for the locks the first took, for good. In a process of its own (this one's
    module is left as it is): reloaded twice, it forks, and the child compiles and matches a rule."""
    script = (
        "import importlib, os\n"
        "from crawler import terms\n"
        "importlib.reload(terms)\n"
        "importlib.reload(terms)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    rule = terms.TermRule('forked', terms=['zyxforked'])\n"
        "    os._exit(0 if rule.evaluate(terms.Doc(titles=['a zyxforked title'])).matched else 2)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "assert terms._AUTOMATON_LOCK.acquire(timeout=5) and terms._KEYMAP_LOCK.acquire(timeout=5)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=SHIPPED_CONFIG.parent.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def _reference_normalize_text(text: str | None) -> str:
    """normalize_text as expressions: curly quotes straight (a table), dashes one kind, each run of whitespace (what
    ``\\s`` matches, no-break and zero-width spaces included) one space, none at the ends, lower case."""
    if not text:
        return ""
    text = re.sub(r"[\u2010-\u2015\u2212\u00ad]", "-", text.translate(str.maketrans("\u2018\u2019\u201c\u201d", "''\"\"")))
    return re.sub(r"[\s\u00a0\u2000-\u200b\u202f]+", " ", text).strip().lower()


def test_normalize_text_as_its_expressions_on_every_labelled_text_and_random_ones():
    """normalize_text (quotes replaced one by one, runs of whitespace split and joined) gives what the expressions give:
    every title and abstract of the labelled set, and random texts of every whitespace character there is, the dashes,
    quotes and zero-width space, letters that change length in lower case, and random code points."""
    texts = [t for work in load_corpus() for r in work.records for t in (r.title, r.abstract) if t]
    rng = random.Random(31)
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    alphabet = [*spaces, *map(chr, range(0x2000, 0x2031)), *"\u00ad\u2212aZ-'\"\u0130\u00df"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(20_000)]
    texts += ["".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 30))) for _ in range(5_000)]
    assert sum(not t.isascii() for t in texts) > 20_000
    for text in texts:
        assert terms.normalize_text(text) == _reference_normalize_text(text), repr(text)
    assert terms.normalize_text(None) == ""
