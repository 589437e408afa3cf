"""Evidence expressions read as few places as they can, with the results of the expressions as written.

An expression read sentence by sentence starts at the sentence that holds its probe's first match in the whole
text; a title's comment and reply expressions are read in parts; the review title expression checks the words
before "review" after it. Each is compared with the expression as first written, read everywhere, on random texts
made of the words the expressions look for, sentence ends and line breaks.
"""

from __future__ import annotations

import random
import re

from crawler import evidence
from crawler.terms import Doc

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
        for pattern in evidence._READ_BY_SENTENCE:
            negated = evidence.META_NEGATED if pattern is evidence.META_TEXT else None
            expected = _reference_own_sentence(pattern, text, negated)
            assert evidence._own_sentence(pattern, text, negated, doc) == expected, (pattern.pattern[:40], text)
            assert evidence._own_sentence(pattern, text, negated) == expected, (pattern.pattern[:40], text)
            found[pattern] += expected is not None
            skipped += expected is None and bool(pattern.search(text))  # a match only where the sentence is other work
    assert all(count > 50 for count in found.values()), found
    assert skipped > 100


def test_title_expressions_in_parts_as_written():
    written_review = re.compile(
        evidence.REVIEW_TITLE.pattern.replace(
            r"\breview\b(?<!chart review)(?<!record review)(?<!records review)(?<!case review)(?<!peer review)",
            r"(?<!chart )(?<!record )(?<!records )(?<!case )(?<!peer )\breview\b",
        )
    )
    assert written_review.pattern != evidence.REVIEW_TITLE.pattern
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
        review, plain = evidence.REVIEW_TITLE.search(title), written_review.search(title)
        assert (review and (review.span(), review.groups())) == (plain and (plain.span(), plain.groups())), title
        comment = evidence._COMMENT_START.match(title) or evidence._search(evidence._COMMENT_WORDS, title, scan)
        plain = written_comment.search(title)
        assert (comment and (comment.span(), comment.group(0))) == (plain and (plain.span(), plain.group(0))), title
        assert evidence._reply_title(title, scan) is bool(written_reply.search(title)), title
        counts[0] += bool(review)
        counts[1] += bool(comment)
        counts[2] += evidence._reply_title(title, scan)
    assert min(counts) > 2000, counts
