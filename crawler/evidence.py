"""Evidence-type tags and the rank score: general rules, the same for every topic.

Evidence types (category ``evidence``), one work may carry several (a preprint of an RCT is
``preprint`` and ``rct``; a systematic review with a meta-analysis is both):

=================== =========================================================================
rct                 reports a randomised controlled trial (results, secondary or post hoc analyses)
clinical_trial      reports a non-randomised interventional trial (open-label, single-arm, pilot)
observational       cohort, case-control, cross-sectional, registry, claims, chart review, survey,
                    pharmacovigilance
case_report         case report or case series
meta_analysis       meta-analysis (pairwise, network, individual participant data)
systematic_review   systematic, scoping or umbrella review (a systematic search)
review              any other review (narrative, educational, "an update")
protocol            a published study protocol or design paper
trial_registration  a registry record (ClinicalTrials.gov, ISRCTN)
preprint            not (yet) peer reviewed
preclinical         animal or in-vitro research
commentary          editorial, letter, comment, reply, viewpoint
guideline           guideline, consensus or position statement
news                regulatory or press news
=================== =========================================================================

Rules, in this order of trust: the record type (registrations, preprints, news), PubMed/Europe PMC
publication types, MeSH check tags (``Animals`` without ``Humans``), then text rules on the title
and the abstract. Text rules read the abstract sentence by sentence and ignore sentences about
other work ("future randomised trials are needed", "previous meta-analyses showed").
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from crawler.abstracts import FOCUS_ENDS, ascii_form, pieces, reads_as_ascii, sentence_ends
from crawler.terms import Doc, Gated, Scan, analyses_of, regex_anchors

EVIDENCE_TAGS = (
    "rct",
    "clinical_trial",
    "observational",
    "case_report",
    "meta_analysis",
    "systematic_review",
    "review",
    "protocol",
    "trial_registration",
    "preprint",
    "preclinical",
    "commentary",
    "guideline",
    "news",
)


@dataclass
class Facts:
    """Everything the rules read about one work (built by :mod:`crawler.classify`)."""

    doc: Doc
    record_type: str = "article"
    record_types: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    publication_types: list[str] = field(default_factory=list)  # lower case
    trial: dict = field(default_factory=dict)  # the latest registration's tracked fields
    enrollment: int | None = None
    registered: bool = False  # states a trial registration number
    preprint_server: str | None = None  # what says a record is on a preprint server (any source)
    published_on: str | None = None

    @property
    def title(self) -> str:
        return " | ".join(self.doc.titles)

    @property
    def abstract(self) -> str:
        abstracts = self.doc.abstracts
        if len(abstracts) == 1:  # (most works: ``max`` with its keywords parsed costs ~7k instructions per call)
            return abstracts[0]
        return max(abstracts, key=len, default="")

    @property
    def mesh(self) -> set[str]:
        return set(self.doc.mesh)


@dataclass
class Tag:
    tag: str
    category: str
    evidence: str


# --------------------------------------------------------------------------- evidence types

PT_RCT = {"randomized controlled trial", "randomised controlled trial", "equivalence trial", "pragmatic clinical trial"}
PT_TRIAL = {
    "clinical trial",
    "clinical trial, phase i",
    "clinical trial, phase ii",
    "clinical trial, phase iii",
    "clinical trial, phase iv",
    "controlled clinical trial",
    "clinical study",
    "clinical-trial",
}
PT_META = {"meta-analysis", "network meta-analysis", "systematic review and meta-analysis"}
PT_SR = {"systematic review", "systematic-review", "scoping review"}
PT_REVIEW = {"review", "review-article", "review article", "literature review"}
PT_CASE = {"case reports", "case report", "case-report"}
PT_OBS = {"observational study", "observational study, veterinary"}
PT_PROTOCOL = {"clinical trial protocol", "study protocol"}
PT_COMMENT = {
    "editorial",
    "letter",
    "comment",
    "correspondence",
    "viewpoint",
    "commentary",
    "reply",
    "editorial-article",
    "letter-to-the-editor",
    "editorial comment",
    "opinion",
}
PT_GUIDELINE = {
    "guideline",
    "practice guideline",
    "consensus development conference",
    "consensus development conference, nih",
    "consensus statement",
    "position statement",
}
PT_NEWS = {"news", "newspaper article", "press release"}
PT_PREPRINT = {"preprint", "posted-content"}

_OTHER_WORK = re.compile(
    r"\b(need(ed|s)?|warrant(ed|s)?|future|further|should|larger|prior|previous(ly)?|earlier|existing|recent(ly)?|"
    r"have shown|has shown|have demonstrated|showed that|literature|would|could|planned)\b"
)
#: Where sentences part: ``(?<=[.!?;])\s+(?=[a-z0-9(])|\n+``, written to start with the whitespace every separator
#: starts with (the expression engine then tries only the whitespace, not every position).
_SENTENCE = re.compile(r"\s(?:(?<=[.!?;]\s)\s*(?=[a-z0-9(])|(?<=\n)\n*)")

RCT_TEXT = re.compile(
    r"\brandomi[sz]ed\b(?![^.]{0,40}\b(animals?|mice|rats?)\b)|\brandomly (assigned|allocated|divided)\b|\brandomi[sz]ation\b|"
    r"\bassigned at random\b|\brandom (assignment|allocation)\b|"
    r"\bplacebo[\s-]controlled\b|\bdouble[\s-]blind(ed)?\b|\bsham[\s-]controlled\b|\brct\b|"
    r"\bactive[\s-]placebo\b|\bcrossover trial\b|"
    r"\b(post[\s-]hoc|secondary|pooled) analys[ie]s of [^.]{0,60}\b(phase (3|iii)|randomi[sz]ed|placebo[\s-]controlled|double[\s-]blind) (trials?|studies)\b"
)
RCT_TITLE = re.compile(
    r"randomi[sz]ed|\brct\b|placebo[\s-]controlled|double[\s-]blind|sham[\s-]controlled|"
    r"(post[\s-]hoc|secondary|pooled) analys[ie]s of [^|]{0,40}\b(phase (3|iii)|randomi[sz]ed) (trials?|studies)"
)
TRIAL_TEXT = re.compile(
    r"\bopen[\s-]label\b|\bsingle[\s-]arm\b|\bnon[\s-]?randomi[sz]ed\b|\buncontrolled (trial|study)\b|"
    r"\bpilot (trial|study)\b|\bproof[\s-]of[\s-]concept (trial|study)\b|\bphase (1|2|i|ii|iia|iib|1b|2a|2b)\b[^.]{0,30}\b(trial|study)\b|"
    r"\bdose[\s-](finding|escalation|ranging)\b|\bin \d+ healthy (volunteers|subjects|participants|adults|men|women)\b"
)
TRIAL_TITLE = re.compile(
    r"(?<!target )\btrial\b(?! emulation)|open[\s-]label|single[\s-]arm|uncontrolled|pilot study|proof[\s-]of[\s-]concept|phase (1|2|i|ii)\b"
)
META_TEXT = re.compile(r"meta[\s-]?analy[a-z]*|meta[\s-]regression")
#: "no meta-analysis was performed", "precluding meta-analysis", "too heterogeneous to pool": no meta-analysis.
META_NEGATED = re.compile(
    r"\b(no|not|without|precluded?|precluding|instead of|rather than|impossible|unable|could not|cannot|did not)\b[^.;]{0,60}"
    r"meta[\s-]?analy|meta[\s-]?analy[a-z]*[^.;]{0,40}\b(was|were|is) (not|deemed not|considered in)|"
    r"meta[\s-]?analy[a-z]* (was|were) (not )?(precluded|impossible|not (possible|feasible|appropriate|performed|conducted))"
)
SYNTHESIS_TEXT = re.compile(
    r"\b(we )?searched\b|\bsearch(es)? of\b|\bsystematic(ally)? search|\bdatabases?\b|\brandom[\s-]effects?\b|"
    r"\bfixed[\s-]effects?\b|\bheterogeneity\b|\bprisma\b|\b(included|identified|pooled) \d+ (studies|trials|rcts|articles)\b|"
    r"\b\d+ (studies|trials|rcts|articles) (were|met|with|involving|including|comprising)\b|\bpooled (estimate|effect|odds|risk|mean)\b|"
    r"\bstandardi[sz]ed mean difference\b|\bsmd\b"
)
SR_TITLE = re.compile(
    r"systematic(ally)?[\s-](literature[\s-])?review|scoping review|umbrella review|rapid review|systematic search"
)
SR_TEXT = re.compile(
    r"\bsystematic(ally)? (literature )?(review|search|searched)|\bprisma\b|\bscoping review\b|\bumbrella review\b|"
    r"\bsearched (pubmed|medline|embase|psycinfo|cochrane|web of science|scopus|the literature|[a-z]+ databases|databases|electronic databases)"
)
#: Words of a title that calls the work a review, as written (what the scan's anchors are taken from: see :data:`_GATED`).
_REVIEW_TITLE_WORDS = (
    r"\breview\b(?<!chart review)(?<!record review)(?<!records review)(?<!case review)(?<!peer review)|\boverview\b|\bstate[\s-]of[\s-]the[\s-]art\b|\ban update\b|\bupdate on\b|\bnarrative\b|"
    r"\bcurrent (evidence|status|perspectives|understanding|knowledge)\b|\bwhat (do|we) (we )?know\b|\bprimer\b|"
    r"\bclinical (guide|overview)\b|\bevidence and (future|clinical)\b|\bpast, present\b|\bthe road ahead\b|"
    r": (a |an )?(narrative |critical |brief |mini[\s-]|literature |clinical )?review\b|\bwhere (are we|do we stand)\b|\ba new era\b|"
    r"\bsynthesi[sz]ing the evidence\b|\bexpert opinion\b|\bexpert review\b"
)
#: The same words behind one word boundary and grouped by their first letter, in the same order within a letter: the
#: same match (span and text) in every title, but the engine tests one letter per position instead of entering ~20
#: alternatives behind their own boundaries (58 -> 4.5 us per title of the two 10k bench files, timeit).
REVIEW_TITLE = re.compile(
    r"\b(?:review\b(?<!chart review)(?<!record review)(?<!records review)(?<!case review)(?<!peer review)|overview\b|"
    r"s(?:tate[\s-]of[\s-]the[\s-]art\b|ynthesi[sz]ing the evidence\b)|a(?:n update\b| new era\b)|update on\b|narrative\b|"
    r"c(?:urrent (?:evidence|status|perspectives|understanding|knowledge)\b|linical (?:guide|overview)\b)|"
    r"w(?:hat (?:do|we) (?:we )?know\b|here (?:are we|do we stand)\b)|primer\b|evidence and (?:future|clinical)\b|"
    r"past, present\b|the road ahead\b|expert (?:opinion|review)\b)"
    r"|: (?:a |an )?(?:narrative |critical |brief |mini[\s-]|literature |clinical )?review\b"
)
REVIEW_TEXT = re.compile(
    r"^purpose of review\b|\bwe review\b|\b(this|the present|our|in this) (narrative |brief |mini[\s-]|critical |comprehensive |clinical )?review\b|"
    r"\bwe (review|summari[sz]e|discuss|outline|overview)\b[^.]{0,60}\b(evidence|literature|data|findings|studies|research|mechanisms?|use|role|developments?|knowledge)\b|"
    r"\bthis (article|paper|chapter) (reviews|summari[sz]es|discusses|provides an overview)\b|\bwe provide an overview\b"
)
PROTOCOL_TITLE = re.compile(
    r"\b(study|trial) protocol\b|\bprotocol (for|of)\b|\ba protocol\b|\bdesign and rationale\b|\brationale and design\b|"
    r"\bstatistical analysis plan\b|\bprotocol paper\b"
)
#: Past-tense results: an abstract that reports them is a trial report, whatever "this protocol" says.
RESULTS_TEXT = re.compile(
    r"\b(results|we found|were randomi[sz]ed|was (significantly|associated)|were (significantly|associated)|improved|reduced|"
    r"did not differ|no significant|p\s*[<=]\s*0?\.\d|95% ci|remission rates?|response rates?)\b"
)
PROTOCOL_TEXT = re.compile(
    r"\bthis (study |trial )?protocol\b(?=[^.]{0,80}\bwill\b)|\bwe will (recruit|randomi[sz]e|enrol|enroll|conduct|assess|compare)\b|"
    r"\bwill be randomi[sz]ed\b|\bwill be recruited\b|\bparticipants will\b|\bthe trial will\b|\bthis study will\b"
)
CASE_TITLE = re.compile(
    r"\bcase report\b|\bcase series\b|\ba case of\b|\ba case\b(?![\s-]control)|\bcase study\b|\bcases? and (a )?review\b|\btwo cases\b|\bthree cases\b"
)
CASE_TEXT = re.compile(
    r"\bwe (report|describe|present) (a|an|the case|two|three|four|five|six|\d+) |\b\d{1,3}[\s-]year[\s-]old\b|"
    r"\bcase series\b|\bcase report\b|\bthis case\b|\bthese cases\b|"
    r"\b(patients?|cases?) (in|from|at|seen in) our (clinic|practice|unit|service|centre|center|hospital|department)\b"
)
#: A letter describes its own case ("we describe a 34-year-old woman"), not a case series it comments on.
CASE_OWN = re.compile(
    r"\bwe (report|describe|present)\b[^.]{0,40}\b(case|patient|woman|man|girl|boy|veteran)s?\b|\bour (patient|case)s?\b|"
    r"\b(a|an) \d{1,3}[\s-]year[\s-]old\b|\b(patients?|cases?) (in|from|at|seen in|treated in|treated at) our\b"
)
#: A reply's title; looked for in three parts (two at the start), the middle one skipped on titles without its words.
_REPLY_START = re.compile(r"(re|reply|response|in reply|comment on)\b")
_REPLY_WORDS = re.compile(r"\b(reply|in response to|comment on)\b")
_REPLY_DOCTORS = re.compile(r"drs? .* reply\b")
REPLY_TITLE = re.compile(f"^{_REPLY_START.pattern}|{_REPLY_WORDS.pattern}|^{_REPLY_DOCTORS.pattern}")
#: Words that make a study observational even when it says "open-label" (a naturalistic open-label cohort).
OBS_FIRST = re.compile(r"\b(observational|naturalistic|real[\s-]world|retrospective(ly)?|registry|chart review)\b")
OBS_TEXT = re.compile(
    r"\bretrospective(ly)?\b|\bcohort\b|\bcross[\s-]sectional\b|\bcase[\s-]control\b|\bchart review\b|\breal[\s-]world\b|"
    r"\bregistry\b|\bclaims\b|\bnaturalistic\b|\bobservational\b|\belectronic (health|medical) records?\b|\bmedical records\b|"
    r"\bsurvey\b|\bpopulation[\s-]based\b|\bpharmacovigilance\b|\badverse event reporting system\b|\bfaers\b|"
    r"\bdisproportionality\b|\bdatabase\b|\bprospective(ly)? (followed|observational|study|cohort)\b|\binterviews?\b|\bqualitative\b|"
    r"\btrial emulation\b|\bemulat(ed|ing) a (target )?trial\b|\bpoison (control )?cent(er|re)s?\b|\bsurveillance\b|"
    r"\bwe reviewed (\d+|the|all)\b|\b\d+ [a-z -]{0,25}controls\b"
)
OBS_MESH = {
    "cohort studies",
    "retrospective studies",
    "cross-sectional studies",
    "case-control studies",
    "surveys and questionnaires",
    "pharmacovigilance",
    "adverse drug reaction reporting systems",
}
PRECLINICAL_WORDS = (
    r"\b(mice|mouse|murine|rats?|rodents?|zebrafish|macaques?|monkeys?|non[\s-]?human primates?|"
    r"in vitro|cultured|cell lines?|organoids?|hippocampal slices|brain slices|c57bl/6|sprague[\s-]dawley|wistar|"
    r"forced swim(ming)? test|tail suspension test|sucrose preference|social defeat|"
    r"chronic (unpredictable|mild|restraint|variable) stress|learned helplessness|knockout)\b"
)
PRECLINICAL = re.compile(PRECLINICAL_WORDS)
#: Words that tell a study of people (:data:`HUMAN_STUDY` finds them as whole words).
HUMAN_WORDS = frozenset(
    (
        "patients",
        "participants",
        "volunteers",
        "adults with",
        "women",
        "men",
        "individuals",
        "people",
        "veterans",
        "clinical trial",
        "humans",
    )
)
HUMAN_STUDY = re.compile(
    r"\b(patients|participants|volunteers|adults with|women|men|individuals|people|veterans|clinical trial|humans)\b"
)
COMMENT_TEXT = re.compile(r"^(to the editor|the authors reply|in reply)\b|\bthis (editorial|commentary|viewpoint)\b")
#: A comment's title: what starts it, else the first words anywhere that name one (the same match as
#: :data:`COMMENT_TITLE`, whose first alternative can match only at the start; the second is skipped on titles without its words).
_COMMENT_START = re.compile(r"(editorial|commentary|comment|letter|reply|response|in reply|re)\b")
_COMMENT_WORDS = re.compile(
    r"\b(commentary|editorial|viewpoint|letter to the editor|reply to|in reply|in response to|comment on|a response)\b"
)
COMMENT_TITLE = re.compile(f"^{_COMMENT_START.pattern}|{_COMMENT_WORDS.pattern}")
GUIDELINE_TITLE = re.compile(
    r"\bguidelines?\b|\bconsensus\b|\bposition (statement|paper)\b|\bpractice parameter\b|\btask force\b|"
    r"\bclinical practice recommendations?\b|\brecommendations (for|from|of|on)\b"
)


GUIDELINE_STRONG = re.compile(r"\bguidelines?\b|\bconsensus statement\b|\bposition statement\b|\brecommendations (for|on)\b")


UMBRELLA_TITLE = re.compile(r"umbrella review|review of (systematic reviews|meta-analyses)")


def sparse_gated(pattern: re.Pattern) -> Gated:
    """A :class:`crawler.terms.Gated` of ``pattern`` that registers few, long pieces with the vocabulary's scan: of the
    sets of pieces every match contains (:func:`crawler.terms.regex_anchors`: a match holds one piece of each set),
    only the set whose shortest piece is the longest (then the smallest set). What it says stays true of every match;
    every text's scan pays for every piece registered, and short pieces (" to", "was") occur in most texts."""
    sets = regex_anchors(pattern.pattern)
    if len(sets) > 1:
        sets = (max(sets, key=lambda pieces: (min(map(len, pieces)), -len(pieces))),)
    return Gated(pattern, sets)


#: Each expression (by its id: hashing a compiled expression hashes its whole code, every time) with the literal
#: pieces every match of it contains: skipped on texts without them. The expressions live as long as the module.
#: Not here, run on the whole text: those read only after a rarer match (:data:`SYNTHESIS_TEXT` after a meta-analysis,
#: :data:`CASE_OWN` in a letter), whose pieces every text's scan would pay for.
_GATED = {
    id(pattern): sparse_gated(pattern)
    for pattern in (
        RCT_TEXT,
        RCT_TITLE,
        TRIAL_TEXT,
        TRIAL_TITLE,
        META_TEXT,
        SR_TITLE,
        SR_TEXT,
        REVIEW_TEXT,
        PROTOCOL_TITLE,
        RESULTS_TEXT,
        PROTOCOL_TEXT,
        CASE_TITLE,
        CASE_TEXT,
        REPLY_TITLE,
        _REPLY_WORDS,
        _COMMENT_WORDS,
        OBS_FIRST,
        OBS_TEXT,
        PRECLINICAL,
        HUMAN_STUDY,
        COMMENT_TEXT,
        COMMENT_TITLE,
        GUIDELINE_TITLE,
        GUIDELINE_STRONG,
        UMBRELLA_TITLE,
    )
}
# the grouped REVIEW_TITLE gated by the pieces of its words as written (one set): those of the grouped form are shorter
# (suffixes such as "ere ", "know", "tate"), and every text's scan would look for them
_GATED[id(REVIEW_TITLE)] = Gated(REVIEW_TITLE, regex_anchors(_REVIEW_TITLE_WORDS))


def _occurrences(pattern: re.Pattern, scan: Scan) -> int:
    """How many times the pieces of which every match of ``pattern`` holds one occur in the text of ``scan`` (no fewer
    than the matches, which do not overlap). ``pattern`` is gated by one set of pieces (checked where it is used)."""
    positions = scan.positions
    return sum([len(positions[piece]) for piece in _GATED[id(pattern)].windows.anchors & scan.anchors])


assert len(_GATED[id(PRECLINICAL)].windows.alternatives[0]) == 1  # (_occurrences)
assert _GATED[id(HUMAN_STUDY)].windows.alternatives == [(HUMAN_WORDS,)]  # (_holds_word)


def _holds_word(text: str, scan: Scan, words: frozenset[str]) -> bool:
    """Whether ``text`` holds one of ``words`` as a whole word (``scan`` being the text's, ``words`` anchors every text's
    scan finds): what ``\\b(word|word...)\\b`` finds for words that start and end with a letter, read from where the
    scan found them (searching the text, or its windows, costs several times more)."""
    positions = scan.positions
    size = len(text)
    for word in words & scan.anchors:
        length = len(word)
        for last in positions[word]:
            first = last + 1 - length
            if (
                (first and _word_character(text[first - 1]))
                or (last + 1 < size and _word_character(text[last + 1]))
                or text[first : last + 1] != word  # (the scan reads any whitespace as a space)
            ):
                continue
            return True
    return False


def _word_character(character: str) -> bool:
    """Whether an expression's ``\\w`` matches this character (Unicode: a letter, digit or number, or "_")."""
    return character.isalnum() or character == "_"


def _reply_title(title: str, scan: Scan, read: _Read | None = None) -> bool:
    """Whether :data:`REPLY_TITLE` matches the title (``read``: the title read, if made)."""
    if read is None:
        read = _Read(title, scan)
    start, doctors = (_ASCII[id(_REPLY_START)], _ASCII[id(_REPLY_DOCTORS)]) if read.ascii else (_REPLY_START, _REPLY_DOCTORS)
    return bool(start.match(title) or read.search(_REPLY_WORDS) or doctors.match(title))


def _search(pattern: re.Pattern, text: str, scan: Scan) -> re.Match | None:
    """``pattern.search(text)``, not run where the text lacks what every match contains (when that is known)."""
    gated = _GATED.get(id(pattern))
    return pattern.search(text) if gated is None else gated.search(text, scan)


class _Read:
    """A text of a work with its scan, read by the expressions above: an expression is not even asked where the text
    holds none of its literal pieces (its gate reads the pieces the scan found). In a text that
    :func:`crawler.abstracts.reads_as_ascii` (remembered on its scan), the expressions run in their ASCII form (the same
    matches, faster)."""

    __slots__ = ("text", "scan", "present", "ascii", "gated")

    def __init__(self, text: str, scan: Scan):
        self.text, self.scan = text, scan
        self.present = scan.anchors  # every piece the scan found (a gate reads only its own)
        self.ascii = scan.reads_as_ascii(text)
        self.gated = _GATED_ASCII if self.ascii else _GATED

    def runs(self, pattern: re.Pattern) -> bool:
        """Whether ``pattern`` may match in the text (its gate on what the text holds; always, without one)."""
        gated = _GATED.get(id(pattern))
        if gated is None:
            return True
        gate = gated.gate
        return gate.always or (bool(self.present) and not gate.blocked(self.present))

    def search(self, pattern: re.Pattern) -> re.Match | None:
        """``_search(pattern, text, scan)``."""
        gated = self.gated[id(pattern)]
        gate = gated.gate
        if gate.always or (self.present and not gate.blocked(self.present)):
            return gated.windows.search(self.text, self.scan)
        return None


#: Where sentences part in a text without line breaks (most: normalised text has none): the whitespace (group 1)
#: after ``.``, ``!``, ``?`` or ``;`` before a lower-case letter, a digit or a bracket, as :data:`_SENTENCE` finds
#: it; written to start with the punctuation, rarer than whitespace, so that the expression engine tries fewer places.
_SENTENCE_END = re.compile(r"[.!?;](\s+)(?=[a-z0-9(])")
#: What a sentence starts with after :data:`_SENTENCE_END` (its look-ahead), for :func:`crawler.abstracts.sentence_ends`.
_FOLLOWING = frozenset("abcdefghijklmnopqrstuvwxyz0123456789(")

#: For each expression read sentence by sentence, one that matches in the whole text wherever the first matches in a
#: sentence (a sentence stands between whitespace): itself when its match at a place depends only on the characters
#: it matches and the one on each side (no look-around but word boundaries and look-aheads for more, no ``^``);
#: else the same without what may fail in the text and not in a sentence. No sentence ending before the first match
#: of it in the text can hold a match.
#: (By the expression's id.)
_READ_BY_SENTENCE = (
    SR_TEXT,
    CASE_TEXT,
    OBS_TEXT,
    OBS_FIRST,
    TRIAL_TEXT,
    META_TEXT,
    PROTOCOL_TEXT,
    RCT_TEXT,
    REVIEW_TEXT,
)
_PROBES = {id(pattern): pattern for pattern in _READ_BY_SENTENCE[:-2]}
_PROBES[id(RCT_TEXT)] = re.compile(
    RCT_TEXT.pattern.replace(r"(?![^.]{0,40}\b(animals?|mice|rats?)\b)", "", 1)
)  # not "randomised rats"
_PROBES[id(REVIEW_TEXT)] = re.compile(REVIEW_TEXT.pattern.replace("^purpose", r"\bpurpose", 1))  # a sentence's start
_GATED.update((id(probe), sparse_gated(probe)) for probe in _PROBES.values() if id(probe) not in _GATED)
#: The same expressions in their ASCII form (:func:`crawler.abstracts.ascii_form`), gated by the same pieces, for texts
#: that :func:`crawler.abstracts.reads_as_ascii`.
_GATED_ASCII = {key: Gated(ascii_form(gated.pattern), gated.windows.alternatives[0]) for key, gated in _GATED.items()}
#: Each expression run straight on a text or a sentence here (by its id) -> its ASCII form.
_ASCII = {
    id(pattern): ascii_form(pattern)
    for pattern in (
        *(gated.pattern for gated in _GATED.values()),
        _OTHER_WORK,
        META_NEGATED,
        SYNTHESIS_TEXT,
        CASE_OWN,
        _COMMENT_START,
        _REPLY_START,
        _REPLY_DOCTORS,
    )
}


def sentence_spans(text: str) -> list[tuple[int, str]]:
    """(where it starts, sentence) of each sentence of a text, as :func:`sentences` gives them."""
    return pieces(text, _SENTENCE, _SENTENCE_END, ".!?;", _FOLLOWING)


def sentences(text: str) -> list[str]:
    return [sentence for _, sentence in sentence_spans(text)]


def _sentences(doc: Doc, text: str) -> list[tuple[int, str]]:
    """The sentences of a text with where they start (:func:`sentence_spans`), from :func:`_bounds`."""
    starts, stops = _bounds(doc, text)
    return [(start, text[start:stop]) for start, stop in zip(starts, stops)]


def _bounds(doc: Doc, text: str) -> tuple[list[int], list[int]]:
    """Where each sentence of a text (:func:`sentence_spans`) starts, and where it stops: found once per work (from the
    focus rule's sentence ends, when it found them by splitting); a sentence is sliced from the text only when read."""
    memo = doc.cache.memo
    key = ("evidence.sentences", text)
    found = memo.get(key)
    if found is None:
        ends = memo.get((FOCUS_ENDS, text))
        if ends is not None:
            ends = _ends_from_focus(text, ends)
        if ends is None:
            spans = sentence_spans(text)
            found = [start for start, _ in spans], [start + len(sentence) for start, sentence in spans]
        else:
            found = [0, *[end + 1 for end in ends]], [*ends, len(text)]
        memo[key] = found
    return found


def _ends_from_focus(text: str, ends: list[int]) -> list[int] | None:
    """Where the sentences of :func:`sentence_spans` end in a text, from the focus rule's sentence ends in it
    (:data:`crawler.abstracts.FOCUS_ENDS`: ``.!?`` and one plain space before a lower-case letter, a digit or a bracket,
    the text holding no other whitespace): these sentences do not end before a square bracket, and end at a semicolon
    too (each mark is split apart in :func:`crawler.abstracts.sentence_ends`, so the ends of ``.!?`` are the same, but
    those before "["). None: the text is left to :func:`sentence_spans` (several spaces after a semicolon)."""
    if "[" in text:
        ends = [end for end in ends if text[end + 1] != "["]
    if "; " in text:
        more = sentence_ends(text, ";", _FOLLOWING, spaces_checked=True)
        if more is None:  # (several spaces after a semicolon: the expression reads them)
            return None
        ends = sorted(ends + more)
    return ends


def _own_sentence(
    pattern: re.Pattern, text: str, negated: re.Pattern | None = None, doc: Doc | None = None, read: _Read | None = None
) -> str | None:
    """The first words matching ``pattern`` in a sentence about this work (not about other work, not negated).

    With the work's ``doc``, sentences are found once per work and sliced only when read, a text that lacks what every
    match of ``pattern`` contains is not split at all (a sentence holds no more than its text), and only the sentences
    that hold one of these pieces whole (where the text's scan found them) are read; else (no such pieces) the sentences
    before the first match of its probe in the whole text (:data:`_PROBES`) are not read. ``read``: the text with its
    scan, if made."""
    if doc is None:
        spans = sentence_spans(text)
        starts, stops = [start for start, _ in spans], [start + len(sentence) for start, sentence in spans]
        read = None
    else:
        if read is None:
            read = _Read(text, doc.cache.scan(text))
        if not read.runs(pattern):
            return None
        gated = _GATED.get(id(pattern))
        sets = gated.windows.alternatives[0] if gated is not None else ()
        if sets:
            return _own_sentence_of_pieces(pattern, text, negated, read, sets[0], _bounds(doc, text))
        begin = 0
        probe = _PROBES.get(id(pattern))
        if probe is not None:
            first = read.search(probe)
            if first is None:
                return None
            begin = first.start()
        starts, stops = _bounds(doc, text)
        if begin:
            at = bisect.bisect_right(stops, begin)  # (the sentences that stop before it hold no match)
            starts, stops = starts[at:], stops[at:]
    pattern, other_work, negated = _in_form(pattern, negated, read.ascii if read is not None else reads_as_ascii(text))
    for start, stop in zip(starts, stops):
        sentence = text[start:stop]
        match = pattern.search(sentence)
        if match and not other_work.search(sentence) and not (negated and negated.search(sentence)):
            return match.group(0)
    return None


def _in_form(pattern: re.Pattern, negated: re.Pattern | None, ascii: bool) -> tuple[re.Pattern, re.Pattern, re.Pattern | None]:
    """``pattern``, :data:`_OTHER_WORK` and ``negated`` in their ASCII forms for a text that reads as ASCII (its
    sentences too), else as they are."""
    if not ascii:
        return pattern, _OTHER_WORK, negated
    return _ASCII.get(id(pattern), pattern), _ASCII[id(_OTHER_WORK)], _ASCII.get(id(negated), negated) if negated else None


def _own_sentence_of_pieces(
    pattern: re.Pattern,
    text: str,
    negated: re.Pattern | None,
    read: _Read,
    pieces: frozenset[str],
    bounds: tuple[list[int], list[int]],
) -> str | None:
    """:func:`_own_sentence` with the work's ``doc``, ``pieces`` being a set of which every match of ``pattern`` holds one:
    a sentence that holds none whole cannot match, so only those that do are read, in order."""
    positions = read.scan.positions
    found = [(last + 1 - len(piece), last + 1) for piece in pieces & read.scan.anchors for last in positions[piece]]
    if not found:
        return None
    found.sort()
    starts, stops = bounds
    count = len(stops)
    pattern, other_work, negated = _in_form(pattern, negated, read.ascii)
    done = -1
    for low, high in found:
        at = bisect.bisect_right(stops, low)  # the sentence that stops after the piece starts
        if at == count or at <= done or starts[at] > low or high > stops[at]:
            continue  # (past the last sentence, a sentence read already, or not inside a sentence)
        done = at
        sentence = text[starts[at] : stops[at]]
        match = pattern.search(sentence)
        if match and not other_work.search(sentence) and not (negated and negated.search(sentence)):
            return match.group(0)
    return None


class _Evidence:
    """Where :func:`evidence_tags` reads a work's evidence: its publication types, its title and its abstract.

    (Bound methods rather than functions nested in :func:`evidence_tags`: compiled by mypyc, nested functions
    and the function's variables refer to each other, and each work's scans and memo became cyclic garbage
    for the collector to find: ~150 objects per work.)"""

    __slots__ = ("pts", "doc", "title", "abstract")

    def __init__(self, pts: set[str], doc: Doc, title: _Read, abstract: _Read) -> None:
        self.pts, self.doc, self.title, self.abstract = pts, doc, title, abstract

    def pt(self, names: set[str]) -> str | None:
        pts = self.pts
        return None if pts.isdisjoint(names) else f"publication type '{min(pts & names)}'"

    def in_title(self, pattern: re.Pattern) -> str | None:
        match = self.title.search(pattern)
        return f"title: '{match.group(0)}'" if match else None

    def in_abstract(self, pattern: re.Pattern) -> str | None:
        read = self.abstract
        words = _own_sentence(pattern, read.text, doc=self.doc, read=read)
        return f"abstract: '{words}'" if words else None


# one function on purpose: split in four helpers it costs +4.7k instructions per record (+0.36 %; callgrind, session 19)
def evidence_tags(facts: Facts) -> list[Tag]:  # noqa: C901
    """The evidence-type tags of a work, each with the evidence that set it."""
    found: dict[str, str] = {}
    pts = set(facts.publication_types)
    title, abstract, mesh = facts.title, facts.abstract, facts.mesh
    doc = facts.doc
    title_scan, abstract_scan = doc.cache.scan(title), doc.cache.scan(abstract)
    in_title_text, in_abstract_text = _Read(title, title_scan), _Read(abstract, abstract_scan)
    title_search, abstract_search = in_title_text.search, in_abstract_text.search
    reader = _Evidence(pts, doc, in_title_text, in_abstract_text)
    pt, in_title, in_abstract = reader.pt, reader.in_title, reader.in_abstract

    registration = "trial_registration" in facts.record_types
    if registration:
        found["trial_registration"] = f"record type trial_registration ({', '.join(sorted(s for s in facts.sources))})"
    if facts.record_type == "preprint" or pts & PT_PREPRINT or facts.preprint_server:
        found["preprint"] = (
            "record type preprint" if facts.record_type == "preprint" else pt(PT_PREPRINT) or facts.preprint_server or "preprint"
        )
    if facts.record_type == "news" or pts & PT_NEWS:
        found["news"] = "record type news" if facts.record_type == "news" else (pt(PT_NEWS) or "")
    if registration or "news" in found:  # a registry record or a news item is that, whatever it reports
        return _tags_in_order(found)

    # each piece of evidence is looked for only when the ones before it found nothing (``a or b or c``)
    comment = pt(PT_COMMENT)
    if not comment:  # in_title(COMMENT_TITLE)
        words = (_ASCII[id(_COMMENT_START)] if in_title_text.ascii else _COMMENT_START).match(title) or title_search(
            _COMMENT_WORDS
        )
        comment = f"title: '{words.group(0)}'" if words else None
    if not comment:
        comment_text = abstract_search(COMMENT_TEXT)
        comment = f"abstract: '{comment_text.group(0)}'" if comment_text else None
    if comment:
        found["commentary"] = comment
    title_guideline = in_title(GUIDELINE_TITLE)
    if title_guideline and comment and "task force" in title_guideline and not title_search(GUIDELINE_STRONG):
        title_guideline = None  # a commentary on (or by) a task force is no guideline
    guideline = pt(PT_GUIDELINE) or (None if pt(PT_COMMENT) and not title_search(GUIDELINE_STRONG) else title_guideline)
    if guideline:
        found["guideline"] = guideline
    protocol = pt(PT_PROTOCOL) or in_title(PROTOCOL_TITLE)
    # reported results make no protocol (looked for only where the protocol words may be)
    if not protocol and in_abstract_text.runs(PROTOCOL_TEXT) and not abstract_search(RESULTS_TEXT):
        protocol = in_abstract(PROTOCOL_TEXT)
    if protocol:
        found["protocol"] = protocol

    umbrella = title_search(UMBRELLA_TITLE)
    meta = pt(PT_META) or (None if umbrella else in_title(META_TEXT))
    if not meta and "guideline" not in found and not umbrella:
        words = abstract_search(META_TEXT)
        synthesis = (_ASCII[id(SYNTHESIS_TEXT)] if in_abstract_text.ascii else SYNTHESIS_TEXT).search(abstract) if words else None
        if words and synthesis and _own_sentence(META_TEXT, abstract, META_NEGATED, doc, in_abstract_text):
            meta = f"abstract: '{words.group(0)}' with '{synthesis.group(0)}'"
    if meta:
        found["meta_analysis"] = meta
    letter = pt(PT_COMMENT)
    if letter and not pt(PT_META):  # a letter that mentions "our meta-analysis" is a letter
        meta = None
    systematic = pt(PT_SR) or in_title(SR_TITLE) or (None if "guideline" in found or letter else in_abstract(SR_TEXT))
    if systematic:
        found["systematic_review"] = systematic
    if "protocol" in found:  # the protocol of a review or a trial is a protocol
        found.pop("meta_analysis", None)
        found.pop("systematic_review", None)
    is_synthesis = "meta_analysis" in found or "systematic_review" in found
    if not is_synthesis and "guideline" not in found and "protocol" not in found:
        review = pt(PT_REVIEW) or in_title(REVIEW_TITLE) or (None if "commentary" in found else in_abstract(REVIEW_TEXT))
        if review and not (pts & (PT_RCT | PT_TRIAL | PT_CASE | PT_OBS)):
            found["review"] = review

    animals = "animals" in mesh and "humans" not in mesh
    preclinical = "MeSH 'Animals' without 'Humans'" if animals else in_title(PRECLINICAL)
    # two animal-study words are needed (each match holds one of the pieces: two matches, two of them); people: no animal study
    if (
        not preclinical
        and abstract
        and _occurrences(PRECLINICAL, abstract_scan) >= 2
        and not _holds_word(abstract, abstract_scan, HUMAN_WORDS)
    ):
        hits = in_abstract_text.gated[id(PRECLINICAL)].finditer(abstract, abstract_scan)
        if len(hits) >= 2:
            preclinical = f"abstract: '{hits[0].group(0)}' x{len(hits)}"
    if preclinical and not is_synthesis and "review" not in found:
        found["preclinical"] = preclinical

    secondary = is_synthesis or "review" in found or "protocol" in found or "guideline" in found or "preclinical" in found
    # a commentary's text is about other work: only its publication types (and a described case) tell its design
    text_ok = not secondary and "commentary" not in found
    case = (
        pt(PT_CASE)
        or (in_title(CASE_TITLE) if not secondary and not _reply_title(title, title_scan, in_title_text) else None)
        or (in_abstract(CASE_TEXT if text_ok else CASE_OWN) if text_ok or (not secondary and pt(PT_COMMENT)) else None)
    )
    if case:
        found["case_report"] = case
    rct = pt(PT_RCT) if "protocol" not in found else None
    if not rct and text_ok and "case_report" not in found:
        rct = in_title(RCT_TITLE) or in_abstract(RCT_TEXT)
    if rct:
        found["rct"] = rct
    elif "protocol" not in found:
        observational_design = text_ok and (
            title_search(OBS_FIRST) or _own_sentence(OBS_FIRST, abstract, doc=doc, read=in_abstract_text)
        )
        trial = (
            pt(PT_TRIAL)
            or (in_title(TRIAL_TITLE) if text_ok and not observational_design else None)
            or (in_abstract(TRIAL_TEXT) if text_ok and "case_report" not in found and not observational_design else None)
        )
        if trial:
            found["clinical_trial"] = trial
    if not ({"rct", "clinical_trial", "case_report"} & set(found)):
        observational = pt(PT_OBS)
        if not observational and text_ok:
            hit = sorted(mesh & OBS_MESH)
            observational = (f"MeSH '{hit[0]}'" if hit else None) or in_title(OBS_TEXT) or in_abstract(OBS_TEXT)
        if observational:
            found["observational"] = observational
    return _tags_in_order(found)


#: Each evidence tag's place in :data:`EVIDENCE_TAGS`, the order a work's tags are listed in.
_PLACE = {name: place for place, name in enumerate(EVIDENCE_TAGS)}


def _tags_in_order(found: dict[str, str]) -> list[Tag]:
    """The tags found (name -> evidence), in :data:`EVIDENCE_TAGS`' order: the few found sorted (C), not every tag
    asked whether it was found."""
    return [Tag(name, "evidence", found[name]) for name in sorted(found, key=_PLACE.__getitem__)]


# --------------------------------------------------------------------------- sample size

# Each written to start with what its first character must be, the word-start check after it (``\bn`` is
# ``n(?<!\wn)``): the expression engine then skips every position where that character is not.
_N_EQUALS = re.compile(r"n(?<!\wn)\s*=\s*(\d{1,3}(?:[ ,]\d{3})+|\d+)")
_N_PEOPLE = re.compile(
    r"(\d(?<!\w\d)(?:\d{0,2}(?:,\d{3})+|\d*))\s+(?:[a-z-]+\s+){0,3}?(patients|participants|adults|subjects|individuals|people|"
    r"veterans|women|men|adolescents|children|outpatients|inpatients|persons|users|cases|respondents)\b"
)


#: The words a count of people ends with (every match of :data:`_N_PEOPLE` holds one), found by the vocabulary's scan.
_PEOPLE = Gated(_N_PEOPLE)
_N_PEOPLE_ASCII = re.compile(_N_PEOPLE.pattern, re.ASCII)


def analyses_to_keep() -> dict[str, Any]:
    """What :data:`crawler.terms.KEPT_ANALYSES` keeps: the analyses of the expressions gated above, made afresh
    (``python -m crawler.evidence`` prints it)."""
    gated = (*_GATED.values(), *_GATED_ASCII.values(), _PEOPLE)
    return analyses_of({each.pattern.pattern for each in gated} | {_REVIEW_TITLE_WORDS})


def _people_counts(text: str, scan: Scan) -> list[re.Match]:
    """``list(_N_PEOPLE.finditer(text))``, ``scan`` being the text's: the expression is tried only in the sentences
    that hold a word for people. What a match holds (digits, commas, whitespace, lower-case words and hyphens, that
    word) holds no full stop, so each match lies between the full stops around one of these words (the expression
    engine would otherwise try every digit of the text), and holds whitespace right before the word."""
    positions = scan.positions
    # (start, end) of each word; the word follows whitespace (``\s+`` or ``[a-z-]+\s+`` before it): "men" in "treatment"
    # is no count's word
    words = sorted(
        [
            (first, last + 1)
            for word in _PEOPLE.windows.anchors & scan.anchors
            for last in positions[word]
            if (first := last + 1 - len(word)) and text[first - 1].isspace()
        ]
    )
    found: list[re.Match] = []
    position = 0
    # (in ASCII text, \d and \w mean what they mean in ASCII, and so does \s without the separators \x1c-\x1f, which
    # only Unicode calls whitespace: the same matches, with faster character tests)
    ascii = text.isascii() and not ("\x1c" in text or "\x1d" in text or "\x1e" in text or "\x1f" in text)
    search, before, after = (_N_PEOPLE_ASCII if ascii else _N_PEOPLE).search, text.rfind, text.find
    count = len(words)
    for index in range(count):
        first, stop = words[index]
        if first < position:
            continue
        end = after(".", first)
        end = len(text) if end < 0 else end
        # each match ends with one of the words from here to the sentence's end, whose ends the search needs to read
        # to, and the character after the last (``\b``): not the rest of the sentence (the engine tries each digit,
        # and looks at each character for one: ~a third of the expression's instructions on synthetic abstracts)
        later = index + 1
        while later < count and words[later][0] < end:
            if words[later][1] > stop:
                stop = words[later][1]
            later += 1
        match = search(text, max(position, before(".", position, first) + 1), stop + 1 if stop < end else end)
        if match is None:
            position = end
        else:
            found.append(match)
            position = match.end()
    return found


def sample_size(facts: Facts) -> tuple[int | None, str | None]:
    """The largest number of people the work reports or plans (registry enrolment first)."""
    if facts.enrollment:
        return facts.enrollment, f"enrolment {facts.enrollment} (registry)"
    best, where = None, None
    abstract = facts.abstract
    people = _people_counts(abstract, facts.doc.cache.scan(abstract))
    for pattern, matches in (
        ((_N_EQUALS, _N_EQUALS.finditer(abstract)), (_N_PEOPLE, people)) if "=" in abstract else ((_N_PEOPLE, people),)
    ):
        for match in matches:  # ("n = 40" needs its "=")
            value = int(match.group(1).replace(" ", "").replace(",", ""))
            if 1900 <= value <= 2100 and pattern is _N_PEOPLE and match.group(0).split()[0] == str(value):
                continue  # "2024 patients" is rarely a count; a year is likelier
            if value <= 10_000_000 and (best is None or value > best):
                best, where = value, f"abstract: '{match.group(0)}'"
    return best, where


# --------------------------------------------------------------------------- rank score

#: Points for the strongest evidence type (documented in README, "Ranking").
EVIDENCE_POINTS = {
    "meta_analysis": 40,
    "systematic_review": 35,
    "guideline": 35,
    "rct": 30,
    "news": 20,
    "clinical_trial": 18,
    "observational": 15,
    "review": 12,
    "trial_registration": 10,
    "protocol": 8,
    "case_report": 5,
    "preclinical": 5,
    "commentary": 2,
}
SIZE_POINTS = ((1000, 15), (300, 10), (100, 6), (30, 3))
STATUS_POINTS = {
    "COMPLETED": 6,
    "RECRUITING": 4,
    "NOT_YET_RECRUITING": 3,
    "ACTIVE_NOT_RECRUITING": 3,
    "ENROLLING_BY_INVITATION": 3,
    "TERMINATED": -4,
    "WITHDRAWN": -6,
    "SUSPENDED": -4,
    "UNKNOWN": -2,
}
LABEL_POINTS = {"relevant": 0, "uncertain": -20, "not_relevant": -100}


def _parse_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    parts = (value[:10].split("-") + ["12", "28"])[:3]  # a partial date counts from the end of its period
    try:
        return dt.date(int(parts[0]), int(parts[1]), min(int(parts[2]), 28))
    except ValueError:
        return None


def rank_score(facts: Facts, tags: list[Tag], label: str, today: dt.date) -> tuple[int, list[str]]:
    """The digest's ordering score, with one reason per contribution."""
    reasons = []
    names = {t.tag for t in tags}
    points = [(EVIDENCE_POINTS[n], n) for n in names if n in EVIDENCE_POINTS]
    score = 0
    if points:
        value, name = max(points)
        score += value
        reasons.append(f"evidence {name} +{value}")
    else:
        reasons.append("no evidence type +0")
    if "preprint" in names:
        score -= 5
        reasons.append("preprint (not peer reviewed) -5")
    size, where = sample_size(facts)
    if size:
        bonus = next((p for limit, p in SIZE_POINTS if size >= limit), 0)
        score += bonus
        reasons.append(f"sample size {size} ({where}) +{bonus}")
    if "trial_registration" in names:
        status = str(facts.trial.get("overall_status") or "").upper().replace(" ", "_")
        if facts.trial.get("has_results"):
            score += 8
            reasons.append("registry: results posted +8")
        if status in STATUS_POINTS:
            score += STATUS_POINTS[status]
            reasons.append(f"registry status {status} {STATUS_POINTS[status]:+d}")
        phases = facts.trial.get("phases") or []
        phases = " ".join(phases) if isinstance(phases, list) else str(phases)
        if re.search(r"PHASE\s*(3|III)\b", phases.upper()):
            score += 5
            reasons.append("phase 3 +5")
    elif facts.registered and names & {"rct", "clinical_trial"}:
        score += 3
        reasons.append("registered trial +3")
    published = _parse_day(facts.published_on)
    if published:
        age = (today - published).days
        bonus = 10 if age <= 90 else 5 if age <= 365 else -10 if age > 3 * 365 else 0
        score += bonus
        reasons.append(f"published {facts.published_on} ({max(age, 0)} days old) {bonus:+d}")
    score += LABEL_POINTS[label]
    if LABEL_POINTS[label]:
        reasons.append(f"relevance {label} {LABEL_POINTS[label]:+d}")
    return score, reasons


if __name__ == "__main__":  # python -m crawler.evidence > crawler/regex_analyses.json
    print(json.dumps(analyses_to_keep(), indent=1, sort_keys=True))
