"""Evidence expressions read as few places as they can, with the results of the expressions as written.

An expression read sentence by sentence starts at the sentence that holds its probe's first match in the whole
text; a title's comment and reply expressions are read in parts; the review title expression checks the words
before "review" after it. Each is compared with the expression as first written, read everywhere, on random texts
made of the words the expressions look for, sentence ends and line breaks.
"""

from __future__ import annotations

import random
import re

from crawler import abstracts, evidence, focus
from crawler.classify import build_facts
from crawler.terms import Doc
from tests.helpers import dedup_corpus
from tests.helpers.classify_corpus import load_corpus

_WRITTEN_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=[a-z0-9(])|\n+")

WORDS = [
    "randomized",
    "randomised",
    "randomly assigned",
    "rats",
    "mice",
    "animals",
    "double-blind",
    "post hoc analyses of",
    "phase 3 trials",
    "systematic review",
    "systematically searched",
    "searched pubmed",
    "searched two databases",
    "prisma",
    "we report a",
    "we describe two",
    "34-year-old",
    "a 34 year old",
    "case series",
    "this case",
    "patients in our clinic",
    "our patient",
    "woman",
    "open-label",
    "phase 2",
    "pilot study",
    "trial",
    "study",
    "retrospective",
    "cohort",
    "12 healthy controls",
    "naturalistic",
    "meta-analysis",
    "meta analyses",
    "no",
    "not",
    "was not performed",
    "this protocol",
    "will",
    "we will recruit",
    "purpose of review",
    "we review",
    "this narrative review",
    "we summarize the evidence",
    "future",
    "previous",
    "in 20 healthy volunteers",
    "ketamine",
    "depression",
]
GLUE = [" ", " ", " ", ". ", "; ", "? ", "! ", ".\n", "\n", " (", "1", ".", "x", "-"]


def _reference_own_sentence(pattern: re.Pattern, text: str, negated: re.Pattern | None = None) -> str | None:
    for sentence in [s for s in _WRITTEN_SENTENCE.split(text) if s.strip()]:
        match = pattern.search(sentence)
        if match and not evidence._OTHER_WORK.search(sentence) and not (negated and negated.search(sentence)):
            return match.group(0)
    return None


def _text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(WORDS) + rng.choice(GLUE) for _ in range(rng.randint(1, size))).strip()


def test_sentences_read_from_the_first_match_of_their_probe_as_everywhere():
    """With the work's doc, only the sentences holding a piece every match holds (or, without such pieces, those from
    the first match of the expression's probe) are read: the same words as every sentence read, on random texts, with
    the sentences split alone or from the focus rule's ends."""
    assert (
        evidence._PROBES[id(evidence.RCT_TEXT)] is not evidence.RCT_TEXT
        and "(?!" not in evidence._PROBES[id(evidence.RCT_TEXT)].pattern
    )
    assert evidence._PROBES[id(evidence.REVIEW_TEXT)].pattern.startswith(r"\bpurpose of review")
    rng = random.Random(11)
    found = dict.fromkeys(evidence._READ_BY_SENTENCE, 0)
    skipped = 0
    for _ in range(1500):
        text = _text(rng, 14)
        doc = Doc(abstracts=[text])
        split = Doc(abstracts=[text])  # (its sentences from the focus rule's ends, when it splits the text)
        focus.sentence_spans(text, split.cache.memo)
        for pattern in evidence._READ_BY_SENTENCE:
            negated = evidence.META_NEGATED if pattern is evidence.META_TEXT else None
            expected = _reference_own_sentence(pattern, text, negated)
            assert evidence._own_sentence(pattern, text, negated, doc) == expected, (pattern.pattern[:40], text)
            assert evidence._own_sentence(pattern, text, negated, split) == expected, (pattern.pattern[:40], text)
            assert evidence._own_sentence(pattern, text, negated) == expected, (pattern.pattern[:40], text)
            found[pattern] += expected is not None
            skipped += expected is None and bool(pattern.search(text))  # a match only where the sentence is other work
    assert all(count > 50 for count in found.values()), found
    assert skipped > 100


def test_title_expressions_in_parts_as_written():
    words = re.compile(evidence._REVIEW_TITLE_WORDS)  # (REVIEW_TITLE is these grouped by first letter: the same matches)
    written_review = re.compile(
        words.pattern.replace(
            r"\breview\b(?<!chart review)(?<!record review)(?<!records review)(?<!case review)(?<!peer review)",
            r"(?<!chart )(?<!record )(?<!records )(?<!case )(?<!peer )\breview\b",
        )
    )
    assert written_review.pattern != words.pattern
    written_comment = re.compile(
        r"^(editorial|commentary|comment|letter|reply|response|in reply|re)\b|\b(commentary|editorial|viewpoint|"
        r"letter to the editor|reply to|in reply|in response to|comment on|a response)\b"
    )
    written_reply = re.compile(
        r"^(re|reply|response|in reply|comment on)\b|\b(reply|in response to|comment on)\b|^drs? .* reply\b"
    )
    assert evidence.COMMENT_TITLE.pattern == written_comment.pattern and evidence.REPLY_TITLE.pattern == written_reply.pattern
    pieces = [
        "re",
        "reply",
        "re:",
        "response",
        "in reply",
        "comment on",
        "comment",
        "editorial",
        "letter to the editor",
        "viewpoint",
        "a response",
        "dr smith",
        "drs",
        "review",
        "reviews",
        "chart",
        "record",
        "records",
        "case",
        "peer",
        "a",
        "ketamine",
        ":",
        "x",
        "|",
        "-",
    ]
    rng = random.Random(5)
    counts = [0, 0, 0]
    for _ in range(20000):
        title = "".join(rng.choice(pieces) + rng.choice([" ", " ", "", "-", ": "]) for _ in range(rng.randint(1, 8))).strip()
        doc = Doc(titles=[title])
        scan = doc.cache.scan(title)
        review, plain = words.search(title), written_review.search(title)
        assert (review and (review.span(), review.groups())) == (plain and (plain.span(), plain.groups())), title
        grouped = evidence.REVIEW_TITLE.search(title)
        assert (grouped and (grouped.span(), grouped.group(0))) == (review and (review.span(), review.group(0))), title
        comment = evidence._COMMENT_START.match(title) or evidence._search(evidence._COMMENT_WORDS, title, scan)
        plain = written_comment.search(title)
        assert (comment and (comment.span(), comment.group(0))) == (plain and (plain.span(), plain.group(0))), title
        assert evidence._reply_title(title, scan) is bool(written_reply.search(title)), title
        counts[0] += bool(review)
        counts[1] += bool(comment)
        counts[2] += evidence._reply_title(title, scan)
    assert min(counts) > 2000, counts


def test_sentence_ends_found_by_splitting_as_the_expressions_find_them():
    """In a text whose whitespace is single plain spaces (normalised text), the sentence ends are found by splitting at
    each mark and its space: the same places as the expressions' group 1; any other text is left to the expressions."""
    glue = [*GLUE, "  ", ".  ", "\t", ". \u00a0", "\u00e9", "!", "?", ";", " [", "[", "e.g. ", "(1). ", "? 2", "!x"]
    expressions = {focus._SENTENCE_END: (".!?", focus._FOLLOWING), evidence._SENTENCE_END: (".!?;", evidence._FOLLOWING)}
    rng = random.Random(11)
    fast = 0
    for _ in range(6000):
        text = "".join(rng.choice(WORDS) + rng.choice(glue) for _ in range(rng.randint(0, 20)))
        if rng.random() < 0.7:
            text = " ".join(text.split())
        for expression, (marks, following) in expressions.items():
            ends = abstracts.sentence_ends(text, marks, following)
            if ends is not None:
                assert [(end, end + 1) for end in ends] == [m.span(1) for m in expression.finditer(text)], repr(text)
                fast += 1
            assert ends is not None or "  " in text or not text.isprintable(), repr(text)
        written = [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[a-z0-9(\[])|\n+", text) if s and s.strip()]
        assert [sentence for _, _, sentence in focus.sentence_spans(text)] == written, repr(text)
        assert all(text[start:end] == sentence for start, end, sentence in focus.sentence_spans(text)), repr(text)
        assert [sentence for _, sentence in evidence.sentence_spans(text)] == [
            s for s in _WRITTEN_SENTENCE.split(text) if s.strip()
        ]
    assert fast > 6000


def _reference_evidence_tags(facts: evidence.Facts) -> list[evidence.Tag]:
    """evidence_tags as written before the checks were chained with ``or`` and read through ``_Read`` (verbatim)."""
    found: dict[str, str] = {}
    pts = set(facts.publication_types)
    title, abstract, mesh = facts.title, facts.abstract, facts.mesh
    doc = facts.doc
    title_scan, abstract_scan = doc.cache.scan(title), doc.cache.scan(abstract)

    def pt(names: set[str]) -> str | None:
        hit = sorted(pts & names)
        return f"publication type '{hit[0]}'" if hit else None

    def in_title(pattern: re.Pattern) -> str | None:
        match = evidence._search(pattern, title, title_scan)
        return f"title: '{match.group(0)}'" if match else None

    def in_abstract(pattern: re.Pattern) -> str | None:
        words = evidence._own_sentence(pattern, abstract, doc=doc)
        return f"abstract: '{words}'" if words else None

    def first(*evidence):
        """The first evidence found; a callable is called only when what comes before it found nothing."""
        for item in evidence:
            value = item() if callable(item) else item
            if value:
                return value
        return None

    registration = "trial_registration" in facts.record_types
    if registration:
        found["trial_registration"] = f"record type trial_registration ({', '.join(sorted(s for s in facts.sources))})"
    if facts.record_type == "preprint" or pts & evidence.PT_PREPRINT or facts.preprint_server:
        found["preprint"] = (
            "record type preprint"
            if facts.record_type == "preprint"
            else pt(evidence.PT_PREPRINT) or facts.preprint_server or "preprint"
        )
    if facts.record_type == "news" or pts & evidence.PT_NEWS:
        found["news"] = "record type news" if facts.record_type == "news" else (pt(evidence.PT_NEWS) or "")
    if registration or "news" in found:  # a registry record or a news item is that, whatever it reports
        return [evidence.Tag(name, "evidence", found[name]) for name in evidence.EVIDENCE_TAGS if name in found]

    # each piece of evidence is looked for only when the ones before it found nothing
    comment = pt(evidence.PT_COMMENT)
    if not comment:  # in_title(COMMENT_TITLE)
        words = evidence._COMMENT_START.match(title) or evidence._search(evidence._COMMENT_WORDS, title, title_scan)
        comment = f"title: '{words.group(0)}'" if words else None
    if not comment:
        comment_text = evidence._search(evidence.COMMENT_TEXT, abstract, abstract_scan)
        comment = f"abstract: '{comment_text.group(0)}'" if comment_text else None
    if comment:
        found["commentary"] = comment
    title_guideline = in_title(evidence.GUIDELINE_TITLE)
    if (
        title_guideline
        and comment
        and "task force" in title_guideline
        and not evidence._search(evidence.GUIDELINE_STRONG, title, title_scan)
    ):
        title_guideline = None  # a commentary on (or by) a task force is no guideline
    guideline = first(
        pt(evidence.PT_GUIDELINE),
        None
        if pt(evidence.PT_COMMENT) and not evidence._search(evidence.GUIDELINE_STRONG, title, title_scan)
        else title_guideline,
    )
    if guideline:
        found["guideline"] = guideline
    protocol = pt(evidence.PT_PROTOCOL) or in_title(evidence.PROTOCOL_TITLE)
    # reported results make no protocol (looked for only where the protocol words may be)
    if (
        not protocol
        and evidence._GATED[id(evidence.PROTOCOL_TEXT)].runs(abstract_scan)
        and not evidence._search(evidence.RESULTS_TEXT, abstract, abstract_scan)
    ):
        protocol = in_abstract(evidence.PROTOCOL_TEXT)
    if protocol:
        found["protocol"] = protocol

    umbrella = evidence._search(evidence.UMBRELLA_TITLE, title, title_scan)
    meta = first(pt(evidence.PT_META), None if umbrella else in_title(evidence.META_TEXT))
    if not meta and "guideline" not in found and not umbrella:
        words = evidence._search(evidence.META_TEXT, abstract, abstract_scan)
        synthesis = evidence._search(evidence.SYNTHESIS_TEXT, abstract, abstract_scan) if words else None
        if words and synthesis and evidence._own_sentence(evidence.META_TEXT, abstract, evidence.META_NEGATED, doc):
            meta = f"abstract: '{words.group(0)}' with '{synthesis.group(0)}'"
    if meta:
        found["meta_analysis"] = meta
    letter = pt(evidence.PT_COMMENT)
    if letter and not pt(evidence.PT_META):  # a letter that mentions "our meta-analysis" is a letter
        meta = None
    systematic = first(
        pt(evidence.PT_SR),
        lambda: in_title(evidence.SR_TITLE),
        lambda: None if "guideline" in found or letter else in_abstract(evidence.SR_TEXT),
    )
    if systematic:
        found["systematic_review"] = systematic
    if "protocol" in found:  # the protocol of a review or a trial is a protocol
        found.pop("meta_analysis", None)
        found.pop("systematic_review", None)
    is_synthesis = "meta_analysis" in found or "systematic_review" in found
    if not is_synthesis and "guideline" not in found and "protocol" not in found:
        review = first(
            pt(evidence.PT_REVIEW),
            lambda: in_title(evidence.REVIEW_TITLE),
            lambda: None if "commentary" in found else in_abstract(evidence.REVIEW_TEXT),
        )
        if review and not (pts & (evidence.PT_RCT | evidence.PT_TRIAL | evidence.PT_CASE | evidence.PT_OBS)):
            found["review"] = review

    animals = "animals" in mesh and "humans" not in mesh
    preclinical = "MeSH 'Animals' without 'Humans'" if animals else in_title(evidence.PRECLINICAL)
    if (
        not preclinical and abstract and not evidence._search(evidence.HUMAN_STUDY, abstract, abstract_scan)
    ):  # people: no animal study
        hits = evidence._GATED[id(evidence.PRECLINICAL)].finditer(abstract, abstract_scan)
        if len(hits) >= 2:
            preclinical = f"abstract: '{hits[0].group(0)}' x{len(hits)}"
    if preclinical and not is_synthesis and "review" not in found:
        found["preclinical"] = preclinical

    secondary = is_synthesis or "review" in found or "protocol" in found or "guideline" in found or "preclinical" in found
    # a commentary's text is about other work: only its publication types (and a described case) tell its design
    text_ok = not secondary and "commentary" not in found
    case = first(
        pt(evidence.PT_CASE),
        lambda: in_title(evidence.CASE_TITLE) if not secondary and not evidence._reply_title(title, title_scan) else None,
        lambda: (
            in_abstract(evidence.CASE_TEXT if text_ok else evidence.CASE_OWN)
            if text_ok or (not secondary and pt(evidence.PT_COMMENT))
            else None
        ),
    )
    if case:
        found["case_report"] = case
    rct = pt(evidence.PT_RCT) if "protocol" not in found else None
    if not rct and text_ok and "case_report" not in found:
        rct = first(lambda: in_title(evidence.RCT_TITLE), lambda: in_abstract(evidence.RCT_TEXT))
    if rct:
        found["rct"] = rct
    elif "protocol" not in found:
        observational_design = text_ok and (
            evidence._search(evidence.OBS_FIRST, title, title_scan)
            or evidence._own_sentence(evidence.OBS_FIRST, abstract, doc=doc)
        )
        trial = first(
            pt(evidence.PT_TRIAL),
            lambda: in_title(evidence.TRIAL_TITLE) if text_ok and not observational_design else None,
            lambda: (
                in_abstract(evidence.TRIAL_TEXT) if text_ok and "case_report" not in found and not observational_design else None
            ),
        )
        if trial:
            found["clinical_trial"] = trial
    if not ({"rct", "clinical_trial", "case_report"} & set(found)):
        observational = pt(evidence.PT_OBS)
        if not observational and text_ok:
            hit = sorted(mesh & evidence.OBS_MESH)
            observational = first(
                f"MeSH '{hit[0]}'" if hit else None, lambda: in_title(evidence.OBS_TEXT), lambda: in_abstract(evidence.OBS_TEXT)
            )
        if observational:
            found["observational"] = observational
    return [evidence.Tag(name, "evidence", found[name]) for name in evidence.EVIDENCE_TAGS if name in found]


def test_evidence_tags_as_first_written():
    """The evidence checks chained with ``or`` and asked only where a text holds their literal pieces give the tags and
    evidence of the function as written before, on the labelled set, the dedup corpus and synthetic PubMed records."""
    from bench.pubmed_synth import efetch_body
    from crawler.sources import pubmed

    works = [work.records for work in load_corpus()]
    works += [[record] for _, batch in dedup_corpus.parse_batches() for record in batch]
    works += [[record] for record in pubmed.parse_efetch(efetch_body(0, 300, 10_000))]
    tagged = set()
    for records in works:
        got = evidence.evidence_tags(build_facts(records))
        assert got == _reference_evidence_tags(build_facts(records)), records[0]
        tagged.update(tag.tag for tag in got)
    assert tagged == set(evidence.EVIDENCE_TAGS)  # every evidence type was set somewhere


def test_a_works_evidence_tags_are_listed_in_the_order_of_evidence_tags():
    """However they were found, a work's evidence tags come in EVIDENCE_TAGS' order, each with its evidence."""
    rng = random.Random(19)
    for _ in range(500):
        names = rng.sample(evidence.EVIDENCE_TAGS, rng.randint(0, 5))
        found = {name: f"why {name}" for name in names}
        expected = [evidence.Tag(name, "evidence", f"why {name}") for name in evidence.EVIDENCE_TAGS if name in found]
        assert evidence._tags_in_order(found) == expected


def test_counts_of_people_read_sentence_by_sentence_as_everywhere():
    """The count-of-people expression is tried only in the sentences that hold a word for people (from the scan), in
    ASCII text with ASCII character tests: the same matches as the expression run over the whole text, on random texts
    of numbers, words for people (also inside other words, after whitespace or not), full stops, other whitespace and
    non-ASCII digits and letters."""
    from crawler.terms import WorkCache

    pieces = [
        "12 ",
        "1,234 ",
        "2,024 ",
        "2024 ",
        "7",
        " ",
        "  ",
        "\t",
        "\u00a0",
        "\u0663\u0664 ",
        "\u00e9",
        "x",
        "-",
        ",",
        "\x1c",
        "\u2028",
        "amen",
    ]
    pieces += ["patients", "men", "women", "treatment", "old ", "adults ", "inpatients", "subjects", ". ", ".", "n = 40 ", "the "]
    rng = random.Random(5)
    matched = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
        expected = [(m.span(), m.groups()) for m in evidence._N_PEOPLE.finditer(text)]
        assert [(m.span(), m.groups()) for m in evidence._people_counts(text, WorkCache().scan(text))] == expected, repr(text)
        matched += len(expected) > 1
    assert matched > 500


def test_counts_of_people_searched_no_further_than_the_last_word_for_people_of_a_sentence():
    """Each sentence's search ends after its last word for people (and the character after it): a count before a later
    word, a word run on into letters ("patientsx" is no word), a sentence with no full stop, several sentences."""
    from crawler.terms import WorkCache

    texts = [
        "patients and 40 adults were included.",
        "40 patientsx and 12 men.",
        "of the patients, 12 older adults and 7 women",
        "patients. 30 men were enrolled; 2 women. 1,200 subjects",
        "the 3 adults with depression and 4 patients",
        "12 very old sick patients and 40 patients. patients only",
        "12 patients-like 3 adultsy",
    ]
    for text in texts:
        expected = [(m.span(), m.groups()) for m in evidence._N_PEOPLE.finditer(text)]
        assert expected, text
        assert [(m.span(), m.groups()) for m in evidence._people_counts(text, WorkCache().scan(text))] == expected, text


def test_words_for_people_read_from_the_scan_as_the_expression_finds_them():
    """Whether an abstract holds a word for people (no animal study then) is read from where the scan found the words:
    the same as the expression's search, on random texts of the words, words inside other words, underscores, digits,
    hyphens, other whitespace inside "adults with" and "clinical trial", non-ASCII letters and digits."""
    from crawler.terms import WorkCache

    pieces = [*evidence.HUMAN_WORDS, "adults\twith", "clinical\ntrial", "clinical  trial", "trials", "x", "_", "7", "-", " ", " "]
    pieces += ["\u00e9", "\u0663", "\u00a0", "\x1c", ".", "treatment", "amen", "in rats", "mice"]
    rng = random.Random(37)
    held = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        expected = evidence.HUMAN_STUDY.search(text) is not None
        assert evidence._holds_word(text, WorkCache().scan(text), evidence.HUMAN_WORDS) is expected, repr(text)
        held += expected
    assert 2000 < held < 18000


def _reference_sample_size(facts: evidence.Facts) -> tuple[int | None, str | None]:
    """sample_size as first written (verbatim)."""
    if facts.enrollment:
        return facts.enrollment, f"enrolment {facts.enrollment} (registry)"
    best, where = None, None
    abstract = facts.abstract
    for pattern in (evidence._N_EQUALS, evidence._N_PEOPLE) if "=" in abstract else (evidence._N_PEOPLE,):
        for match in pattern.finditer(abstract):
            value = int(match.group(1).replace(" ", "").replace(",", ""))
            if 1900 <= value <= 2100 and pattern is evidence._N_PEOPLE and match.group(0).split()[0] == str(value):
                continue
            if value <= 10_000_000 and (best is None or value > best):
                best, where = value, f"abstract: '{match.group(0)}'"
    return best, where


def test_sample_size_as_first_written():
    from bench.pubmed_synth import efetch_body
    from crawler.sources import pubmed

    works = [work.records for work in load_corpus()]
    works += [[record] for _, batch in dedup_corpus.parse_batches() for record in batch]
    works += [[record] for record in pubmed.parse_efetch(efetch_body(0, 300, 10_000))]
    sized = 0
    for records in works:
        facts = build_facts(records)
        assert evidence.sample_size(facts) == _reference_sample_size(facts), records[0]
        sized += evidence.sample_size(facts)[0] is not None
    assert sized > 300


def test_sparse_gates_find_what_the_expressions_find():
    """Each evidence and focus expression registers one set of the pieces its matches contain (the one with the
    longest shortest piece), which every match holds; read through it, an expression finds what it finds everywhere
    (short texts whole, long ones from the pieces' places). The expressions read only after a rarer match are not gated."""
    from crawler.classify import _concept_pattern, build_vocabulary
    from crawler.config import load_config
    from crawler.terms import WorkCache, regex_anchors

    vocabulary = build_vocabulary(load_config("config/litmon.toml").topic)
    concept = next(c for c in vocabulary.concepts if c.name == vocabulary.focus_concept)
    setup = focus._setup(_concept_pattern(concept))
    # (the focus gates of this concept: focus._GATES also holds those of concepts other tests used, or was emptied)
    gates = [gated for gated in evidence._GATED.values()] + list(setup[3:6])
    assert len(gates) > 30
    assert id(evidence.SYNTHESIS_TEXT) not in evidence._GATED and id(evidence.CASE_OWN) not in evidence._GATED
    pieces = set()
    for gated in gates:
        sets = gated.windows.alternatives[0]
        written = evidence._REVIEW_TITLE_WORDS if gated.pattern is evidence.REVIEW_TITLE else gated.pattern.pattern
        assert len(sets) <= 1 and set(sets) <= set(regex_anchors(written))  # (REVIEW_TITLE: its words as written)
        pieces.update(*sets)
    words = WORDS + sorted(pieces) + ["ketamine", "esketamine", "such as", "compared to", "than", "was recently approved"]
    rng = random.Random(17)
    matched = several = 0
    for _ in range(700):
        text = "".join(rng.choice(words) + rng.choice(GLUE) for _ in range(rng.randint(1, 90))).strip().lower()
        scan = WorkCache().scan(text)
        for gated in gates:
            expected = list(gated.pattern.finditer(text))
            assert [m.span() for m in gated.finditer(text, scan)] == [m.span() for m in expected], (
                gated.pattern.pattern[:40],
                text,
            )
            found = gated.search(text, scan)
            assert (found and found.span()) == (expected[0].span() if expected else None)
            for chosen in gated.windows.alternatives[0]:
                assert all(any(piece in m.group(0) for piece in chosen) for m in expected)
            matched += bool(expected)
        animals = len(evidence.PRECLINICAL.findall(text))
        assert evidence._occurrences(evidence.PRECLINICAL, scan) >= animals  # two animal-study words: looked for
        several += animals >= 2
    assert matched > 3000 and several > 50


def test_ascii_forms_find_what_the_expressions_find_in_ascii_text():
    """Every evidence and focus expression runs in its ASCII form (``re.ASCII``) on a text that reads as ASCII: the same
    matches as the expression itself on random ASCII texts of the words they look for, digits, underscores, capitals,
    punctuation and every kind of ASCII whitespace. The separators \\x1c-\\x1f (whitespace to Unicode, not to ASCII) and
    any other character keep the expression itself."""
    from crawler.classify import _concept_pattern, build_vocabulary
    from crawler.config import load_config

    vocabulary = build_vocabulary(load_config("config/litmon.toml").topic)
    concept = _concept_pattern(next(c for c in vocabulary.concepts if c.name == vocabulary.focus_concept))
    setup = focus._setup(concept)
    expressions = [*evidence._ASCII.items(), *zip(map(id, focus._READ), focus._READ_ASCII)]
    expressions += [(id(pattern), form) for pattern, form in zip((concept, setup[1], setup[2]), setup[6])]
    originals = {id(p): p for p in [*(g.pattern for g in evidence._GATED.values()), *evidence._PROBES.values()]}
    originals.update((id(p), p) for p in (evidence._OTHER_WORK, evidence.META_NEGATED, evidence.SYNTHESIS_TEXT))
    originals.update((id(p), p) for p in (evidence.CASE_OWN, evidence._COMMENT_START, evidence._REPLY_START))
    originals.update((id(p), p) for p in (evidence._REPLY_DOCTORS, *focus._READ, concept, setup[1], setup[2]))
    pairs = [(originals[key], form) for key, form in expressions]
    assert len(pairs) > 40 and all(form.flags & re.ASCII and form.pattern == pattern.pattern for pattern, form in pairs)
    assert all(gated.pattern.flags & re.ASCII for gated in evidence._GATED_ASCII.values())
    words = WORDS + ["such as", "than", "esketamine", "n = 12", "p < 0.05", "95% ci", "methods:", "objective:", "x_y", "Trial"]
    glue = GLUE + ["\t", "\r\n", "\x0b", "\x0c", "  ", "_", "9", ": ", ", ", "-"]
    rng = random.Random(23)
    matched = 0
    for _ in range(600):
        text = "".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 40)))
        text = text.lower() if rng.random() < 0.8 else text
        assert abstracts.reads_as_ascii(text)
        for pattern, form in pairs:
            expected = [(m.span(), m.groups()) for m in pattern.finditer(text)]
            assert [(m.span(), m.groups()) for m in form.finditer(text)] == expected, (pattern.pattern[:40], text)
            matched += bool(expected)
    assert matched > 5000
    separator = "ketamine was randomized\x1cin rats"
    assert not abstracts.reads_as_ascii(separator) and not abstracts.reads_as_ascii("kétamine")
    assert re.search(r"\s", "\x1c") and not abstracts.ascii_form(re.compile(r"\s")).search("\x1c")  # why they are refused
    assert abstracts.ascii_form(re.compile("kétamine")).flags & re.ASCII == 0  # a pattern that is not ASCII stays itself


def test_evidence_outside_ascii_read_as_before():
    """Texts that do not read as ASCII (a separator \x1c, an accented letter, a dash, a no-break space) are read with
    the expressions themselves: the evidence types as first written."""
    rng = random.Random(29)
    tagged = 0
    for _ in range(400):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(rng.randint(1, 8))]
        odd = rng.choice(["\x1c", "\x1f", "é", "–", "\u00a0", " "])
        abstract = ". ".join(sentences).replace(" ", odd, rng.randint(0, 3)) + "."
        title = rng.choice(WORDS) + odd + rng.choice(WORDS) + rng.choice([": a randomized trial", " review", " in rats", ""])
        record = {"title": title, "abstract": abstract, "source": "pubmed", "record_type": "article"}
        facts = build_facts([record])
        facts.doc.abstracts[0] = abstract  # (as given: normalising would make the separators spaces)
        facts.doc.titles[0] = title
        assert evidence.evidence_tags(facts) == _reference_evidence_tags(facts), (title, abstract)
        tagged += bool(evidence.evidence_tags(facts))
    assert tagged > 200


def test_sentences_from_the_focus_rules_ends_as_split_alone():
    """The evidence types split an abstract from the sentence ends the focus rule found in it (kept in the work's memo):
    the same sentences as split alone, on random texts with semicolons, square brackets, several spaces and line breaks;
    a text the focus rule did not split (line breaks, other whitespace) is split alone."""
    rng = random.Random(31)
    derived = semicolons = 0
    for _ in range(4000):
        text = "".join(
            rng.choice(WORDS) + rng.choice(GLUE + ["; ", ";  ", ". [", "; [", ";(", " [1]. ", ".  "])
            for _ in range(rng.randint(1, 30))
        )
        text = text.strip() if rng.random() < 0.9 else text
        doc = Doc(abstracts=[text])
        focus.sentence_spans(text, doc.cache.memo)
        if (abstracts.FOCUS_ENDS, text) in doc.cache.memo:
            derived += 1
            semicolons += "; " in text
        assert evidence._sentences(doc, text) == evidence.sentence_spans(text), text
    assert derived > 600 and semicolons > 300


def test_the_kept_analyses_of_the_expressions_are_current():
    """crawler/regex_analyses.json keeps what importing this module would work out of its gated expressions
    (crawler.terms.regex_anchors and regex_extent): made afresh here, they must be what it holds, and importing the
    classifier in a new process then parses none of them. On another version of Python than the file's, it is not used."""
    import json
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    from crawler import terms

    with open(terms.KEPT_ANALYSES, encoding="utf-8") as file:
        kept = json.load(file)
    fresh = evidence.analyses_to_keep()
    if kept["python"] != fresh["python"]:
        assert terms._KEPT_ANCHORS == {} and terms._KEPT_EXTENTS == {}
        return
    assert kept == fresh, "crawler/regex_analyses.json is out of date: python -m crawler.evidence > crawler/regex_analyses.json"
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "regex_analyses.json" in project["tool"]["setuptools"]["package-data"]["crawler"]  # (installed beside terms.py)
    assert len(kept["anchors"]) > 25
    # (each analysis as the module makes it: sets of pieces in order, the pieces of each set)
    for pattern, sets in kept["anchors"].items():
        assert terms.regex_anchors(pattern) == tuple(frozenset(pieces) for pieces in sets)
    parsed = subprocess.run(
        [sys.executable, "-c", "import crawler.classify, crawler.terms; print(crawler.terms._parsed.cache_info().misses)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert parsed.stdout.strip() == "0", "importing the classifier analysed an expression the file does not keep"
