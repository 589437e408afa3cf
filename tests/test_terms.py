"""Term matching: anchors skip texts that cannot match, and change no result.

The fast matcher (one Aho-Corasick scan per text for the whole vocabulary, rules run only where their
anchors occur, exclusions blanked once per list and text, the word-start check after a term's first
character) must classify exactly as the plain one did: every term list run on every text. The plain
matcher is kept here as the reference, and both classify every work of every fixture set.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crawler import classify, terms
from crawler.config import load_config
from tests.helpers import dedup_corpus
from tests.helpers.classify_corpus import load_corpus

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "litmon.toml"


class PlainTerms:
    """The matcher before anchors: both expressions run on every text (the reference)."""

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

    def possible(self, present):
        return True

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
    monkeypatch.setattr(terms, "_Terms", PlainTerms)
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
    assert rule._terms.possible(terms.Doc(abstracts=["intravenous ketamine in adults."]).anchors()) is False


def test_a_word_start_term_still_needs_a_word_start():
    rule = terms.TermRule("oral", terms=["oral", "esketamine"])
    doc = terms.Doc(titles=["coral reefs and moral esketamine"], abstracts=["oral use", "nonesketamine"])
    assert [(h.field, h.text) for h in rule.evaluate(doc).hits] == [("title", "esketamine"), ("abstract", "oral")]


def test_rules_added_later_see_their_anchors(monkeypatch):
    first = terms.TermRule("a", terms=["zyxwvut"])
    doc = terms.Doc(titles=["zyxwvut and qponmlk"])
    assert first.evaluate(doc).fired
    second = terms.TermRule("b", terms=["qponmlk"])  # new anchors: what was found before is looked for again
    assert second.evaluate(terms.Doc(titles=["zyxwvut and qponmlk"])).fired
