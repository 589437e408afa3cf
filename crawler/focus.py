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
from dataclasses import dataclass, field

from crawler.abstracts import category_of, is_label
from crawler.terms import Doc, Gated, Scan

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
#: A sentence that states this work's aim or design: what follows it is no longer background.
_AIM = re.compile(
    r"\b(we|(this|these|the present|our) ([a-z-]+ ){0,3}?(study|trial|analysis|report|paper|article|work|review|letter|case|cohort|survey)|"
    r"here(,)? we|the (aim|objective|purpose|goal)s? (of|was|were|is)|our (aim|objective)|\d{1,3}[\s-]year[\s-]old|"
    r"to (evaluate|assess|investigate|examine|determine|compare|test|explore|describe|characteri[sz]e)|objectives?|aimed|sought|"
    r"(was|were) (randomi[sz]ed|randomly|enrolled|recruited|treated|included|assigned|allocated|analy[sz]ed|given|administered)|"
    r"participants|patients (with|received|were)|subjects (with|received|were))\b"
)
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


@dataclass
class FocusResult:
    doc: Doc
    passing: list[str] = field(default_factory=list)  # why mentions were set aside
    structured: bool = False  # the abstract has labelled sections


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def sentence_roles(text: str) -> tuple[list[tuple[str, str]], bool]:
    """Each sentence of an abstract with its role: background, objective, methods, results, discussion or unknown.

    A section label ("Methods:", also inline in a flattened abstract) gives the role of the sentences up
    to the next label. In unlabelled text, sentences before the first one that states the work's aim or
    design are background; sentences about future or other work are discussion. Without any label or
    aim/design sentence (narrative reviews, letters, news) the roles stay unknown. The flag says whether
    the abstract had labels or an aim/design sentence.
    """
    out: list[tuple[str, str]] = []
    role: str | None = None
    aim_seen = structured = labelled = False
    for sentence in sentences(text):
        match = _LABEL.match(sentence) if ":" in sentence else None  # a label ends with a colon
        label_role = _label_role(match.group(1)) if match else None
        if match is not None and label_role is not None:
            role = label_role
            structured = labelled = True
            sentence = sentence[match.end() :]
        if role == "other":  # trial registration, funding: not about the study's subject
            out.append(("background", sentence))
        elif role:
            out.append((role if role != "background" or not _AIM.search(sentence) else "objective", sentence))
        elif _DISCUSSION.search(sentence):
            out.append(("discussion", sentence))
        elif aim_seen:
            out.append(("results", sentence))
        elif _AIM.search(sentence):
            aim_seen = structured = True
            out.append(("objective", sentence))
        else:
            out.append(("background?", sentence))
    if not structured:
        return [("unknown" if r == "background?" else r, s) for r, s in out], False
    return [("background" if r == "background?" else r, s) for r, s in out], labelled


@functools.lru_cache(maxsize=4096)
def _label_role(label: str) -> str | None:
    """The role of the sentences under a section label, None when the words are no known label (remembered:
    the same few labels head abstract after abstract)."""
    return ROLE_OF_CATEGORY.get(category_of(label) or "", "other") if is_label(label) else None


@functools.lru_cache(maxsize=64)
def _gated(pattern: re.Pattern) -> Gated:
    return Gated(pattern)


@functools.lru_cache(maxsize=64)
def _passing_pattern(concept_pattern: str, before: str = _PASSING_BEFORE) -> re.Pattern:
    return re.compile(
        rf"(?:\b(?:{_PASSING_NEXT})\s+(?:(?:iv|intravenous|oral|intranasal|nasal|racemic|inhaled)\s+)?(?:{concept_pattern}))|"
        rf"(?:\b(?:{before})\s+(?:[a-z0-9-]+\s+){{0,3}}?(?:{concept_pattern}))|(?:(?:{concept_pattern})[a-z0-9]*{_PASSING_AFTER})"
    )


def _is_passing(sentence: str, concept: re.Pattern, passing: re.Pattern, scan: Scan | None = None) -> bool:
    """Every mention of the concept in this sentence is a comparison, an example or an exclusion.

    With the ``scan`` of the sentence or of a text holding it (what the sentence holds, the text holds too),
    the expressions are not run where they cannot match."""
    hits = list(concept.finditer(sentence))
    if not hits:
        return False
    if (scan is None or _gated(_NOT_ABOUT).runs(scan)) and _NOT_ABOUT.search(sentence):
        return True
    if scan is not None and not _gated(passing).runs(scan):
        return False
    covered = [m.span() for m in passing.finditer(sentence)]
    return all(any(a <= hit.start() < b for a, b in covered) for hit in hits)


def focus_doc(doc: Doc, concept: re.Pattern) -> FocusResult:
    """``doc`` with the passing mentions of ``concept`` (a compiled pattern of its terms) blanked out."""
    passing = _passing_pattern(concept.pattern)
    in_title = _passing_pattern(concept.pattern, _TITLE_BEFORE)
    result = FocusResult(Doc(keywords=list(doc.keywords), trial=list(doc.trial), mesh=list(doc.mesh), cache=doc.cache))
    abstract_focus = 0
    for abstract in doc.abstracts:
        kept = []
        roles, structured = sentence_roles(abstract)
        scan = doc.cache.scan(abstract)
        result.structured = result.structured or structured
        for role, sentence in roles:
            if not concept.search(sentence):
                continue
            if role in ("background", "discussion"):
                result.passing.append(f"{role} sentence: '{_short(sentence)}'")
            elif _is_passing(sentence, concept, passing, scan):
                result.passing.append(f"comparison or aside: '{_short(sentence)}'")
            else:
                kept.append(sentence)
        abstract_focus += sum(len(concept.findall(sentence)) for sentence in kept)
        result.doc.abstracts.append(" ".join(kept))
    for title in doc.titles:
        if concept.search(title) and _is_passing(title, concept, in_title, doc.cache.scan(title)):
            result.passing.append(f"title names it in a comparison: '{_short(title)}'")
            continue
        other = _STUDY_OF.search(title)
        if (
            concept.search(title)
            and result.structured
            and not abstract_focus
            and other
            and not concept.search(title[other.end() : other.end() + 40])
        ):
            # "... not observed in a negative trial of scopolamine": the title says the study is of something
            # else, and the structured abstract names the drug only in background or discussion
            result.passing.append(f"title, but the abstract's objective, methods and results never name it: '{_short(title)}'")
            continue
        result.doc.titles.append(title)
    named_elsewhere = any(concept.search(t) for t in result.doc.titles + doc.keywords + doc.trial + doc.mesh)
    if abstract_focus == 1 and not named_elsewhere:
        # one mention in an abstract whose title, keywords and MeSH never name it: an aside
        result.passing.append("a single mention in an abstract about something else")
        result.doc.abstracts = []
    return result


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
