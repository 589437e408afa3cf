"""The focus rule read from each text's scan gives what the concept's expression, run sentence by sentence, gives.

:func:`crawler.focus.focus_doc` with the concept's rule reads where the concept's plain terms match from the scan of
each abstract and title (one pass of the vocabulary's automaton, shared with every rule) and decides a sentence's
role only when the concept is in it. ``_reference`` below is the rule as first written (every sentence split with
the expression as written, its role decided, the concept's expression run on it): both must give the same
abstracts, titles, reasons and flag on the labelled set, on the dedup corpus and on random texts, including
matches that run from one sentence into the next.
"""

from __future__ import annotations

import random
import re

import ahocorasick_rs
import pytest

from crawler import focus, terms
from crawler.classify import _concept_pattern, build_facts, build_vocabulary
from crawler.config import parse_config, shipped_config_text
from crawler.terms import Doc, TermRule, normalize_text
from tests.helpers import dedup_corpus
from tests.helpers.classify_corpus import load_corpus

_WRITTEN_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[a-z0-9(\[])|\n+")


def _reference_roles(text: str) -> tuple[list[tuple[str, str]], bool]:
    out: list[tuple[str, str]] = []
    role = None
    aim_seen = structured = labelled = False
    for sentence in [s.strip() for s in _WRITTEN_SENTENCE.split(text) if s and s.strip()]:
        match = focus._LABEL.match(sentence)
        label_role = focus._label_role(match.group(1)) if match else None
        if match is not None and label_role is not None:
            role = label_role
            structured = labelled = True
            sentence = sentence[match.end() :]
        if role == "other":
            out.append(("background", sentence))
        elif role:
            out.append((role if role != "background" or not focus._AIM.search(sentence) else "objective", sentence))
        elif focus._DISCUSSION.search(sentence):
            out.append(("discussion", sentence))
        elif aim_seen:
            out.append(("results", sentence))
        elif focus._AIM.search(sentence):
            aim_seen = structured = True
            out.append(("objective", sentence))
        else:
            out.append(("background?", sentence))
    if not structured:
        return [("unknown" if r == "background?" else r, s) for r, s in out], False
    return [("background" if r == "background?" else r, s) for r, s in out], labelled


def _reference_passing(sentence: str, concept: re.Pattern, passing: re.Pattern) -> bool:
    hits = list(concept.finditer(sentence))
    if not hits:
        return False
    if focus._NOT_ABOUT.search(sentence):
        return True
    covered = [m.span() for m in passing.finditer(sentence)]
    return all(any(a <= hit.start() < b for a, b in covered) for hit in hits)


def _reference(doc: Doc, concept: re.Pattern) -> tuple:
    passing = focus._passing_pattern(concept.pattern)
    in_title = focus._passing_pattern(concept.pattern, focus._TITLE_BEFORE)
    titles, abstracts, reasons, structured = [], [], [], False
    abstract_focus = 0
    for abstract in doc.abstracts:
        kept = []
        roles, labelled = _reference_roles(abstract)
        structured = structured or labelled
        for role, sentence in roles:
            if not concept.search(sentence):
                continue
            if role in ("background", "discussion"):
                reasons.append(f"{role} sentence: '{focus._short(sentence)}'")
            elif _reference_passing(sentence, concept, passing):
                reasons.append(f"comparison or aside: '{focus._short(sentence)}'")
            else:
                kept.append(sentence)
        abstract_focus += sum(len(concept.findall(sentence)) for sentence in kept)
        abstracts.append(" ".join(kept))
    for title in doc.titles:
        if concept.search(title) and _reference_passing(title, concept, in_title):
            reasons.append(f"title names it in a comparison: '{focus._short(title)}'")
            continue
        other = focus._STUDY_OF.search(title)
        if (
            concept.search(title)
            and structured
            and not abstract_focus
            and other
            and not concept.search(title[other.end() : other.end() + 40])
        ):
            reasons.append(f"title, but the abstract's objective, methods and results never name it: '{focus._short(title)}'")
            continue
        titles.append(title)
    if abstract_focus == 1 and not any(concept.search(t) for t in titles + doc.keywords + doc.trial + doc.mesh):
        reasons.append("a single mention in an abstract about something else")
        abstracts = []
    return titles, abstracts, reasons, structured


def _outcome(result: focus.FocusResult) -> tuple:
    return result.doc.titles, result.doc.abstracts, result.passing, result.structured


@pytest.fixture(scope="module")
def drug():
    vocabulary = build_vocabulary(parse_config(shipped_config_text(), "shipped").topic)
    rule = next(c for c in vocabulary.concepts if c.name == vocabulary.focus_concept)
    return rule, _concept_pattern(rule)


def test_focus_from_the_scan_as_sentence_by_sentence_on_the_labelled_set_and_the_dedup_corpus(drug):
    rule, pattern = drug
    works = [work.records for work in load_corpus()]
    works += [[record] for _, batch in dedup_corpus.parse_batches() for record in batch]
    set_aside = 0
    for records in works:
        doc = build_facts(records).doc
        expected = _reference(doc, pattern)
        assert _outcome(focus.focus_doc(doc, pattern, rule)) == expected, records[0]
        assert _outcome(focus.focus_doc(doc, pattern)) == expected, records[0]
        set_aside += bool(expected[2])
    assert set_aside > 20  # passing mentions were found and set aside


def test_focus_from_the_scan_on_random_texts_with_matches_across_sentences():
    """Random abstracts of labels, aims, asides, sentence ends and concept terms, some of which hold a sentence end
    ("e.g. ketamine" is split into two sentences) or a label's colon: the sentences they cross are read with the
    expression, and everything comes out as sentence by sentence."""
    rule = TermRule("drug_test", terms=["ketamin*", "esketamine", "e.g. ketamine", "hnk", "ab: cd", "zz-top"])
    pattern = _concept_pattern(rule)
    pieces = [
        "ketamine",
        "esketamine",
        "ketamines",
        "e.g. ketamine",
        "hnk",
        "hnks",
        "ab: cd",
        "zz top",
        "zztop",
        "methods: ",
        "results: ",
        "background: ",
        "conclusions: ",
        "trial registration: ",
        "we randomised 40 adults",
        "future studies are needed",
        "such as",
        "unlike",
        "rather than",
        "compared with",
        "more than",
        "was recently approved",
        "-like",
        "patients were excluded",
        "a trial of",
        "depression",
        ". ",
        "? ",
        "! ",
        "; ",
        " ",
        " ",
        "\n",
        "(",
        "[",
        "1",
        "x",
        ":",
    ]
    rng = random.Random(7)
    crossing = set_aside = 0
    for _ in range(3000):
        words = [rng.choice(pieces) for _ in range(rng.randint(1, 25))]
        abstract = normalize_text("".join(words)) if rng.random() < 0.8 else "".join(words)
        title = normalize_text(" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))))
        doc = Doc(titles=[title] if title else [], abstracts=[abstract], keywords=["hnk"] if rng.random() < 0.2 else [])
        expected = _reference(doc, pattern)
        assert _outcome(focus.focus_doc(doc, pattern, rule)) == expected, (title, abstract)
        crossing += "e.g. ketamine" in abstract or "ab: cd" in abstract
        set_aside += bool(expected[2])
    assert crossing > 300 and set_aside > 1000


def test_sentence_roles_read_only_where_the_concept_is():
    """A sentence without the concept is read only as far as the roles after it need: before the first aim or design
    sentence of an unlabelled abstract, whether it is one (a discussion sentence is none)."""
    pattern = re.compile(r"(?<![a-z0-9])ketamin")
    text = normalize_text(
        "Depression is common. Future trials are needed to compare drugs. We randomised 40 adults to ketamine. "
        "Ketamine helped. Further research is needed on ketamine."
    )
    result = focus.focus_doc(Doc(abstracts=[text]), pattern)
    assert result.doc.abstracts == ["we randomised 40 adults to ketamine. ketamine helped."]
    assert result.passing == ["discussion sentence: 'further research is needed on ketamine.'"]
    assert _outcome(result) == _reference(Doc(abstracts=[text]), pattern)


def test_focus_outside_ascii_as_sentence_by_sentence(drug):
    """Texts that do not read as ASCII (a separator \x1c, an accented letter, a dash, a no-break space) are read with
    the expressions themselves, ASCII texts with their ASCII forms: the same as the rule as first written."""
    rule, pattern = drug
    pieces = ["ketamine", "esketamine", "methods: ", "we randomised 40 adults", "future studies are needed", "such as"]
    pieces += ["unlike", "rather than", "patients were excluded", "a trial of", "depression", ". ", " ", "(", "1"]
    rng = random.Random(11)
    odd_texts = set_aside = 0
    for _ in range(1500):
        odd = rng.choice(["\x1c", "\x1f", "é", "–", "\u00a0", " "])
        abstract = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))).replace(" ", odd, rng.randint(0, 2))
        title = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))).replace(" ", odd, rng.randint(0, 1)).strip()
        doc = Doc(titles=[title] if title else [], abstracts=[abstract])
        expected = _reference(doc, pattern)
        assert _outcome(focus.focus_doc(doc, pattern, rule)) == expected, (title, abstract)
        assert _outcome(focus.focus_doc(doc, pattern)) == expected, (title, abstract)
        odd_texts += not abstract.isascii() or "\x1c" in abstract or "\x1f" in abstract
        set_aside += bool(expected[2])
    assert odd_texts > 500 and set_aside > 300


def test_the_rule_on_the_focused_doc_reads_the_focused_abstract_as_scanned(drug):
    """The concept's rule on the focused doc reads what its terms match in a focused abstract from the focus rule's
    sentences (when no term holds a space: ``terms.MATCHED``): the same result as a fresh doc of the same texts, whose
    focused abstract is scanned. Random abstracts with labels, glued words, prefixes, other whitespace, non-ASCII
    letters and words that cross a sentence end; a rule with a spaced term scans as before."""
    shipped, _ = drug
    spaced = TermRule("spaced", terms=["ketamin*", "esketamine", "ketamine infusion*", "e.g. ketamine", "hnk"])
    pieces = ["ketamine", "esketamine", "ketamines", "ketamine infusions", "e.g. ketamine", "hnk", "hnks", "xketamine"]
    pieces += ["methods: ", "results: ", "background: ", "conclusions: ", "we randomised 40 adults", "such as", "unlike"]
    pieces += ["future studies are needed", "depression", "é", "ketaminé", ". ", "? ", "; ", " ", " ", "\t", "\n", "(", "1"]
    rng = random.Random(21)
    given = {"drug": 0, "spaced": 0}
    for _ in range(1500):
        abstract = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        abstract = normalize_text(abstract) if rng.random() < 0.7 else abstract
        title = normalize_text(" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))))
        doc = Doc(titles=[title] if title else [], abstracts=[abstract], keywords=["hnk"] if rng.random() < 0.2 else [])
        for rule in (shipped, spaced):
            focused = focus.focus_doc(
                Doc(titles=list(doc.titles), abstracts=list(doc.abstracts), keywords=list(doc.keywords)),
                _concept_pattern(rule),
                rule,
            ).doc
            fresh = Doc(titles=list(focused.titles), abstracts=list(focused.abstracts), keywords=list(focused.keywords))
            assert rule.evaluate(focused) == rule.evaluate(fresh), (rule.name, title, abstract)
            given[rule.name] += any(key[0] == terms.MATCHED for key in focused.cache.memo if isinstance(key, tuple))
    assert given["drug"] > 1000 and not given["spaced"]


#: The aim and design words as one plain alternation (what crawler.focus._AIM groups by first letter).
_AIM_AS_WRITTEN = re.compile(
    r"\b(we|(this|these|the present|our) ([a-z-]+ ){0,3}?(study|trial|analysis|report|paper|article|work|review|letter|case|cohort|survey)|"
    r"here(,)? we|the (aim|objective|purpose|goal)s? (of|was|were|is)|our (aim|objective)|\d{1,3}[\s-]year[\s-]old|"
    r"to (evaluate|assess|investigate|examine|determine|compare|test|explore|describe|characteri[sz]e)|objectives?|aimed|sought|"
    r"(was|were) (randomi[sz]ed|randomly|enrolled|recruited|treated|included|assigned|allocated|analy[sz]ed|given|administered)|"
    r"participants|patients (with|received|were)|subjects (with|received|were))\b"
)


def test_the_aim_words_grouped_by_first_letter_match_the_sentences_the_plain_alternation_matches():
    """Every sentence of the fixture abstracts, and random sentences of their words and the aim words (glued, with
    commas, digits, hyphens and letters beyond ASCII), match _AIM (and its ASCII form) exactly when the plain alternation
    does."""
    sentences = set()
    for work in load_corpus():
        for record in work.records:
            abstract = record.to_dict()["abstract"] if hasattr(record, "to_dict") else record.get("abstract")
            sentences.update(focus.sentences(normalize_text(abstract or "")))
    rng = random.Random(12)
    words = sorted({word for sentence in sentences for word in sentence.split()})
    aim = [
        "we",
        "were",
        "was",
        "randomized",
        "this",
        "these",
        "the present",
        "our",
        "study",
        "aim",
        "aims",
        "the",
        "of",
        "objective",
        "objectives",
        "to",
        "evaluate",
        "12-year-old",
        "1 year old",
        "here,",
        "here",
        "sought",
        "aimed",
        "patients",
        "with",
        "subjects",
        "received",
        "participants",
        "goal",
        "purpose",
        "is",
        "-",
        ",",
        "é",
        "weé",
        "ours",
    ]
    sentences.update(" ".join(rng.choice(words + aim * 20) for _ in range(rng.randint(1, 15))) for _ in range(20000))
    matched = 0
    ascii_aim = focus._READ_ASCII[1]
    for sentence in sentences:
        expected = _AIM_AS_WRITTEN.search(sentence) is not None
        assert (focus._AIM.search(sentence) is not None) == expected, sentence
        if focus.reads_as_ascii(sentence):
            assert (ascii_aim.search(sentence) is not None) == expected, sentence
        matched += expected
    assert 2000 < matched < len(sentences) - 2000


def test_a_texts_sentences_are_the_same_when_its_scan_found_no_other_whitespace():
    """``sentence_spans`` told that the text holds no whitespace but the plain space (its scan's ``plain``) splits it as
    it does when it looks for itself: on every labelled work's abstract and 3,000 random texts (printable or not,
    ASCII or not, with tabs, line breaks, no-break spaces and double spaces after the marks)."""
    terms._VOCABULARY.scan("x")  # (the automaton made)
    texts = [text for work in load_corpus() for text in build_facts(work.records).doc.abstracts]
    rng = random.Random(17)
    words = ["ketamine", "was", "given", "2", "(a)", "[1]", "é", "\u200b", "\u00ad", "x", "ab"]
    glue = [" ", " ", ". ", "! ", "? ", ".  ", ". (", "; ", "\t", "\n", "\u00a0", ".\u00a0", ""]
    for _ in range(3_000):
        texts.append("".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 25))))
    plain = 0
    for text in texts:
        scan = terms._VOCABULARY.scan(text)
        assert focus.sentence_spans(text, None, scan.plain) == focus.sentence_spans(text)
        plain += scan.plain
    assert 300 < plain < len(texts)


def test_a_sentence_without_the_aside_words_pieces_holds_no_passing_mention(drug):
    """_is_passing runs the passing expressions only on sentences that hold a piece of every set of literal pieces their
    matches contain: on every sentence of the labelled set and 20,000 random sentences of aside words, concept terms and
    filler, each expression (abstract, title, and their ASCII forms) matches only sentences the pieces let through, and
    the pieces rule out most of the labelled sentences that name the concept."""
    _, pattern = drug
    expressions = [focus._passing_pattern(pattern.pattern), focus._passing_pattern(pattern.pattern, focus._TITLE_BEFORE)]
    expressions += [focus.ascii_form(expression) for expression in expressions]
    labelled = [s for work in load_corpus() for r in work.records for s in focus.sentences(normalize_text(r.abstract))]
    rng = random.Random(41)
    words = ["ketamine", "esketamine", "such as", "like", "unlike", "than", "including", "prior", "e.g.", "-like", "-type"]
    words += ["was", "recently approved", "compared with", "rather than", "the", "patients", "depression", ",", "(", "é", "2"]
    randoms = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(20_000)]
    ruled_out = named = 0
    for expression in expressions:
        finders = focus._piece_finders(expression)
        assert finders and focus._piece_finders(expression) is finders
        for sentences in (labelled, randoms):
            for sentence in sentences:
                let_through = all(finder.find_matches_as_indexes(sentence) for finder in finders)
                assert let_through or expression.search(sentence) is None, sentence
                if sentences is labelled and pattern.search(sentence):
                    named += 1
                    ruled_out += not let_through
    assert ruled_out > named / 3


def test_the_aim_words_are_searched_only_where_their_pieces_are_and_found_as_everywhere():
    """_walk searches the aim and design words (and their ASCII form) only in sentences holding one of their pieces
    (_AIM_PIECES): the same matches as the expression on every labelled sentence and 20,000 random ones of the aim
    words, their parts and filler (other whitespace, an age, hyphens, commas), a third of the labelled sentences ruled
    out by the pieces alone."""
    labelled = [s for work in load_corpus() for r in work.records for s in focus.sentences(normalize_text(r.abstract))]
    rng = random.Random(47)
    words = ["we", "were", "was", "randomized", "randomised", "randomly", "analysed", "analyzed", "given", "this", "these"]
    words += ["the present", "the", "study", "trial", "open-label", "our", "objective", "objectives", "aim", "aims", "goal"]
    words += ["purpose", "of", "is", "to", "evaluate", "characterise", "compare", "here,", "here", "12-year-old", "12"]
    words += ["year", "old", "aimed", "sought", "subjects", "participants", "patients", "with", "received", "however"]
    words += ["between", "w", "e", "ketamine", ",", "-", "\t", "\u00a0", "é", "3\u00a0year\u00a0old"]
    randoms = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 10))) for _ in range(20_000)]
    randoms += ["".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(5_000)]
    for expression in (focus._AIM, focus.ascii_form(focus._AIM)):
        found = [focus._search_holding_pieces(expression.search, focus._AIM_FINDERS, s) for s in labelled + randoms]
        assert [m and m.span() for m in found] == [m and m.span() for m in map(expression.search, labelled + randoms)]
        assert sum(not focus._holds_pieces(s, focus._AIM_FINDERS) for s in labelled) > len(labelled) / 3
        assert sum(m is not None for m in found) > 5_000


def test_the_discussion_words_are_searched_only_where_their_pieces_are_and_found_as_everywhere():
    """_walk searches the discussion words (and their ASCII form) only in sentences holding a piece of every set their
    matches hold: the same matches as the expression on every labelled sentence and 20,000 random ones of the
    discussion words and filler, most labelled sentences ruled out by the pieces alone."""
    labelled = [s for work in load_corpus() for r in work.records for s in focus.sentences(normalize_text(r.abstract))]
    rng = random.Random(43)
    words = ["future", "further", "studies", "research", "trials", "is", "are", "needed", "warranted", "should", "be"]
    words += ["now", "remains", "unclear", "to", "more", "work", "investigation", "the", "ketamine", ",", "é"]
    randoms = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 10))) for _ in range(20_000)]
    for expression in (focus._DISCUSSION, focus.ascii_form(focus._DISCUSSION)):
        finders = focus._piece_finders(expression)
        assert len(finders) > 1
        found = [focus._search_holding_pieces(expression.search, finders, s) for s in labelled + randoms]
        assert [m and m.span() for m in found] == [m and m.span() for m in map(expression.search, labelled + randoms)]
        assert sum(not focus._holds_pieces(s, finders[:1]) for s in labelled) > 0.8 * len(labelled)
        assert sum(m is not None for m in found) > 1_000


def test_the_pieces_are_found_in_an_ascii_text_read_as_bytes_as_in_the_text(drug):
    """_holds_pieces reads an ASCII text's bytes with the automata of the pieces' bytes (_Finders.in_bytes): the same
    answer as the automata of the pieces themselves, for the aim words, the discussion words and the passing expressions'
    pieces, on every labelled sentence and 20,000 random ones of pieces, their parts and filler (ASCII or not)."""
    _, pattern = drug
    expressions = [focus._DISCUSSION, focus._passing_pattern(pattern.pattern)]
    expressions.append(focus._passing_pattern(pattern.pattern, focus._TITLE_BEFORE))
    all_finders = [focus._AIM_FINDERS, *map(focus._piece_finders, expressions)]
    labelled = [s for work in load_corpus() for r in work.records for s in focus.sentences(normalize_text(r.abstract))]
    rng = random.Random(53)
    words = ["we", "this ", "our ", "was randomi", "to evaluate", "future ", "further ", "needed", "should ", "such as"]
    words += ["than", "-like", "ketamine", "unlike", "w", "e", "th", "is", " ", "é", "\u00a0", "2", "-"]
    randoms = ["".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(20_000)]
    held = 0
    for finders in all_finders:
        for sentence in labelled + randoms:
            in_text = all(finder.find_matches_as_indexes(sentence) for finder in finders)
            assert focus._holds_pieces(sentence, finders) == in_text, sentence
            held += in_text
        assert finders.in_bytes is not None and len(finders.in_bytes) == len(finders)
    assert held > 10_000 and sum(s.isascii() for s in randoms) > 5_000


def test_the_pieces_str_automata_are_made_only_when_a_text_outside_ascii_asks():
    """A finder's automaton of the pieces as text is made when a text outside ASCII first asks it (an ASCII text is read
    by the automata of the pieces' bytes): none after ASCII texts alone, then the same answers as a new automaton's."""
    finders = focus._finders([["ketamin", "esketamin"], ["such as", "unlike"]])
    ascii_texts = ["unlike esketamine", "such as ketamine", "ketamine alone", ""]
    assert [focus._holds_pieces(text, finders) for text in ascii_texts] == [True, True, False, False]
    assert finders.in_bytes is not None and all(finder.automaton is None for finder in finders)
    texts = ["unlike esketamine \u00e9", "na\u00efve ketamine", "such as ketamine \u2013 2", *ascii_texts]
    expected = [all(ahocorasick_rs.AhoCorasick(p).find_matches_as_indexes(t) for p in finders.pieces) for t in texts]
    assert [focus._holds_pieces(text, finders) for text in texts] == expected == [True, False, True, True, True, False, False]
    assert all(finder.automaton is not None for finder in finders)
    assert [focus._holds_pieces(text, finders[:1]) for text in texts] == [True, True, True, True, True, True, False]


def test_a_passing_mention_is_told_from_the_first_matches_as_from_them_all(drug):
    """_is_passing stops reading the passing expression's matches once every mention lies in one, or one lies in none:
    the same answer as every match's span read, on every labelled sentence naming the concept (its mentions as found)
    and 20,000 random sentences of aside words and concept terms with mentions at random places, for the expressions of
    abstracts and titles."""
    _, pattern = drug
    expressions = [focus._passing_pattern(pattern.pattern), focus._passing_pattern(pattern.pattern, focus._TITLE_BEFORE)]
    labelled = [s for work in load_corpus() for r in work.records for s in focus.sentences(normalize_text(r.abstract))]
    cases = [(s, [m.span() for m in pattern.finditer(s)]) for s in labelled]
    rng = random.Random(59)
    words = ["ketamine", "esketamine", "such as", "like", "unlike", "than", "including", "prior", "-like", "the", "and"]
    words += ["compared with", "rather than", "patients", "was recently approved", "ketamine-like", ",", "(", "é"]
    for _ in range(20_000):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        found = [m.span() for m in pattern.finditer(sentence)]
        picked = [hit for hit in found if rng.random() < 0.7] or found[:1]
        cases.append((sentence, picked or [(rng.randrange(len(sentence)), len(sentence))]))
    told = {True: 0, False: 0}
    for expression in expressions:
        for sentence, hits in cases:
            if not hits:
                continue
            covered = [m.span() for m in expression.finditer(sentence)]
            expected = all(any(a <= hit[0] < b for a, b in covered) for hit in hits)
            assert focus._is_passing(sentence, hits, expression, (False, True)) == expected, (sentence, hits)
            told[expected] += 1
    assert told[True] > 2_000 and told[False] > 2_000
