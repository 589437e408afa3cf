"""Structured abstracts: sections (label + text) and the snippet a reader sees.

Sources keep an abstract's sections in ``Record.abstract_sections``: a list of
``{"label": "Results", "category": "RESULTS", "text": "…"}`` (``label`` as the source writes it, or
None for an unlabelled paragraph; ``category`` one of :data:`CATEGORIES` or None). PubMed gives the
category itself (``AbstractText@NlmCategory``); for the other sources (Europe PMC ``<h4>`` labels,
Crossref JATS ``<jats:sec>`` titles, "Label: text" paragraphs) :func:`category_of` reads it from the
label. ClinicalTrials.gov's brief summary is one section labelled "Brief summary".

:func:`make_snippet` is the digest's one-paragraph summary: the conclusions (or else the results)
section, otherwise the last sentences of the abstract that state a finding — at most
:data:`SNIPPET_CHARS` characters, cut at a sentence end, with no section label inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CATEGORIES = ("BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS")
SNIPPET_CHARS = 300

#: Section labels seen in PubMed, Europe PMC, JATS and publishers' abstracts (lower case) -> NLM category.
LABEL_CATEGORIES = {
    **dict.fromkeys(
        (
            "background",
            "introduction",
            "context",
            "rationale",
            "importance",
            "purpose of review",
            "background and aims",
            "background and objectives",
            "background and purpose",
            "brief summary",
        ),
        "BACKGROUND",
    ),
    **dict.fromkeys(
        ("objective", "objectives", "aim", "aims", "purpose", "goal", "goals", "hypothesis", "study objective"),
        "OBJECTIVE",
    ),
    **dict.fromkeys(
        (
            "methods",
            "method",
            "materials and methods",
            "methods and materials",
            "methodology",
            "design",
            "setting",
            "participants",
            "patients",
            "patients and methods",
            "subjects",
            "interventions",
            "intervention",
            "measurements",
            "measures",
            "outcomes",
            "main outcome",
            "main outcome measures",
            "main outcomes and measures",
            "design, setting, and participants",
            "design, setting and participants",
            "study design",
            "search methods",
            "selection criteria",
            "data collection and analysis",
            "data sources",
            "study selection",
            "data extraction",
            "evidence acquisition",
            "exposure",
            "exposures",
            "methods and analysis",
            "methods/design",
        ),
        "METHODS",
    ),
    **dict.fromkeys(
        (
            "results",
            "result",
            "findings",
            "main results",
            "recent findings",
            "case presentation",
            "case report",
            "case description",
            "case",
            "data synthesis",
            "evidence synthesis",
            "areas covered",
            "methods and results",
            "key findings",
            "outcome",
        ),
        "RESULTS",
    ),
    **dict.fromkeys(
        (
            "conclusions",
            "conclusion",
            "discussion",
            "summary",
            "interpretation",
            "implications",
            "conclusions and relevance",
            "authors' conclusions",
            "authors conclusions",
            "clinical implications",
            "significance",
            "expert opinion",
            "limitations",
            "conclusions and implications",
        ),
        "CONCLUSIONS",
    ),
}
#: Labels that are not part of what the study found (registration numbers, funding, ethics).
OTHER_LABELS = (
    "trial registration",
    "registration",
    "clinical trial registration",
    "funding",
    "ethics and dissemination",
    "level of evidence",
    "keywords",
)

_LABEL_AT_START = re.compile(r"^\s*([A-Za-z][A-Za-z ,'/&-]{1,48}?)\s*:\s+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[“\"])")
_FINDING = re.compile(
    r"\b(found|find|showed?|shown|demonstrat\w*|improv\w*|reduc\w*|decreas\w*|increas\w*|associated|significant\w*|"
    r"suggest\w*|conclud\w*|effective|efficacy|superior|inferior|non-inferior|did not|no (significant )?difference|"
    r"remission|response|safe|well tolerated|odds ratio|hazard ratio|risk|rose|fell|higher|lower|greater|fewer|"
    r"better|worse|unchanged|occurred)\b|%|\bp\s*[<=]"
)


def category_of(label: str | None) -> str | None:
    """The NLM category of a section label ("Conclusions and relevance" -> "CONCLUSIONS"), None if unknown."""
    if not label:
        return None
    key = " ".join(label.strip().rstrip(":").lower().split())
    if key in LABEL_CATEGORIES:
        return LABEL_CATEGORIES[key]
    if key.upper() in CATEGORIES:
        return key.upper()
    return None


def is_label(label: str) -> bool:
    key = " ".join(label.strip().rstrip(":").lower().split())
    return key in LABEL_CATEGORIES or key in OTHER_LABELS or key.upper() in CATEGORIES


def section(label: str | None, text: str | None, category: str | None = None) -> dict | None:
    """One section dict; None when it has no text."""
    text = " ".join((text or "").split())
    if not text:
        return None
    label = " ".join(label.split()).rstrip(":") if label and label.strip() else None
    category = (category or "").upper() if (category or "").upper() in CATEGORIES else category_of(label)
    return {"label": label, "category": category, "text": text}


def sections_from_blocks(blocks: Iterable[tuple[str | None, str | None]]) -> list[dict]:
    """Sections from (label, text) pairs, as a JATS or HTML abstract yields them."""
    return [s for s in (section(label, text) for label, text in blocks) if s]


def sections_from_text(text: str | None) -> list[dict]:
    """Sections of a flattened abstract whose paragraphs start with a known label ("Results: …").

    An abstract without any known label is one unlabelled section: its sentences are not split.
    """
    if not text or not text.strip():
        return []
    blocks: list[tuple[str | None, str]] = []
    for paragraph in [p for p in re.split(r"\n\s*\n|\n", text) if p.strip()]:
        match = _LABEL_AT_START.match(paragraph)
        if match and is_label(match.group(1)):
            blocks.append((match.group(1), paragraph[match.end() :]))
        elif blocks and blocks[-1][0] is not None:
            blocks[-1] = (blocks[-1][0], blocks[-1][1] + " " + paragraph)  # a second paragraph of a section
        else:
            blocks.append((None, paragraph))
    if not any(label for label, _ in blocks):
        return [s for s in [section(None, text)] if s]
    return sections_from_blocks(blocks)


#: Every character ``str.isspace`` (and ``\s``) finds in ASCII text but the plain space.
OTHER_ASCII_SPACE = ("\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f")


def ascii_form(pattern: re.Pattern) -> re.Pattern:
    """``pattern`` compiled with ``re.ASCII``: on a text :func:`reads_as_ascii`, it finds exactly what ``pattern`` finds,
    with faster character tests (``\\b``, ``\\w``, ``\\d`` and ``\\s`` look in a table instead of the Unicode database).
    ``pattern`` itself when it holds other characters than ASCII, or its flags or inline flags forbid."""
    if not isinstance(pattern.pattern, str) or not pattern.pattern.isascii() or pattern.flags & re.LOCALE:
        return pattern
    try:
        return re.compile(pattern.pattern, (pattern.flags & ~re.UNICODE) | re.ASCII)
    except re.error:  # (an inline "(?u)")
        return pattern


def reads_as_ascii(text: str) -> bool:
    """Whether an expression finds the same in ``text`` with ``re.ASCII`` as without (:func:`ascii_form`): the text is
    ASCII, and holds none of the separators \\x1c-\\x1f, the only ASCII characters that Unicode calls whitespace and
    ASCII does not (normalised text never holds them)."""
    return text.isascii() and not ("\x1c" in text or "\x1d" in text or "\x1e" in text or "\x1f" in text)


#: Key prefix, in a work's memo (:class:`crawler.terms.WorkCache`), of the sentence ends the focus rule found in a text by
#: splitting (:func:`sentence_ends` with the marks ``.!?`` before a lower-case letter, a digit or a bracket): the evidence
#: types split the same text from them (:func:`crawler.evidence.sentence_spans`).
FOCUS_ENDS = "focus.sentence_ends"


def sentence_ends(text: str, marks: str, following: frozenset[str], spaces_checked: bool = False) -> list[int] | None:
    """Where an expression ``[<marks>](\\s+)(?=[<following>])`` matches its group 1, left to right, when each is one
    plain space: found by splitting the text at each mark and a space (the expression engine would try the text
    character by character); None when some whitespace after a mark is not one plain space, or the text holds other
    whitespace than the plain space (left to the expression).

    ``marks``: the characters that end a sentence; ``following``: the characters a sentence may start with (no space).
    ``spaces_checked``: the text is known to hold no whitespace but the plain space (it gave a list before)."""
    if spaces_checked:
        pass
    elif any(space in text for space in OTHER_ASCII_SPACE) if text.isascii() else not text.isprintable():
        return None  # (a printable text holds no whitespace but the plain space)
    ends: list[int] = []
    several = False
    for mark in marks:
        if mark not in text:
            continue
        several = several or bool(ends)
        chunks = text.split(mark + " ")
        at = len(chunks[0])  # where the mark before each next chunk stands
        for chunk in chunks[1:]:
            start = chunk[:1]
            if start in following:
                ends.append(at + 1)
            elif start == " ":  # more than one space: the expression reads them all
                return None
            at += 2 + len(chunk)
    if several:
        ends.sort()
    return ends


def pieces(
    text: str, separator: re.Pattern, sentence_end: re.Pattern, marks: str = "", following: frozenset[str] = frozenset()
) -> list[tuple[int, str]]:
    """The pieces of ``separator.split(text)`` that are not blank, each with where it starts in the text.

    ``sentence_end``: an expression whose group 1 is, in a text without line breaks, where ``separator`` matches
    (written to start with a sentence's last character, rarer than the whitespace a separator starts with); ``marks``
    and ``following``: the same as :func:`sentence_ends` reads it, tried first when given."""
    if not text or text.isspace():
        return []
    if "\n" not in text:  # no piece is blank: each holds a sentence end, or starts where a separator ends
        ends = sentence_ends(text, marks, following) if marks else None
        parts = [(end, end + 1) for end in ends] if ends is not None else [m.span(1) for m in sentence_end.finditer(text)]
        starts = [0, *(high for _, high in parts)]
        return [(start, text[start:end]) for start, end in zip(starts, [*(low for low, _ in parts), len(text)])]
    parts = [m.span() for m in separator.finditer(text)]
    parts.append((len(text), len(text)))
    found = []
    position = 0
    for low, high in parts:
        piece = text[position:low]
        if piece and not piece.isspace():
            found.append((position, piece))
        position = high
    return found


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def _strip_labels(text: str) -> str:
    """Remove section labels that stand inside a text ("… were randomised. RESULTS: Response …")."""

    def drop(match: re.Match) -> str:
        return match.group(1) if is_label(match.group(2)) else match.group(0)

    text = re.sub(r"(^|(?<=[.!?;])\s+)([A-Za-z][A-Za-z ,'/&-]{1,48}?)\s*:\s+", drop, text)
    return " ".join(text.replace("**", "").replace("__", "").split())


# an inline list after the abstract's prose ("… ketamine. Highlights - A - B"): bioRxiv/medRxiv flatten them
_INLINE_LIST = re.compile(r"(?<=[.!?])\s+(?:research highlights|highlights|key points|key findings)\s*[-–—:•]\s", re.IGNORECASE)


def _drop_inline_list(text: str) -> str:
    """The prose before an inline bullet list; the list's items are fragments, not sentences to quote."""
    return _INLINE_LIST.split(text, maxsplit=1)[0]


def _fit(parts: list[str], limit: int) -> str:
    """Whole sentences up to ``limit`` characters; a first sentence that is too long is cut at a word."""
    out = ""
    for part in parts:
        candidate = f"{out} {part}".strip()
        if len(candidate) <= limit:
            out = candidate
        elif not out:
            return part[: limit - 2].rsplit(" ", 1)[0].rstrip(",;:") + " …"
        else:
            break
    return out


def make_snippet(sections: list[dict] | None, abstract: str | None = None, limit: int = SNIPPET_CHARS) -> str | None:
    """What the work found, in at most ``limit`` characters (see the module docstring)."""
    sections = [s for s in (sections or []) if s and s.get("text")] or sections_from_text(abstract)
    if not sections:
        return None
    for category in ("CONCLUSIONS", "RESULTS"):
        chosen = [s for s in sections if s.get("category") == category and not _other(s)]
        if chosen:
            if category == "CONCLUSIONS" and chosen[0]["label"] and chosen[0]["label"].lower() == "limitations":
                continue
            return _fit(sentences(_strip_labels(chosen[0]["text"])), limit)
    body = " ".join(_strip_labels(s["text"]) for s in sections if not _other(s) and s.get("category") != "BACKGROUND")
    body = body or " ".join(_strip_labels(s["text"]) for s in sections)
    parts = sentences(_drop_inline_list(body))
    if not parts:
        return None
    findings = [i for i, s in enumerate(parts) if _FINDING.search(s)]
    if findings and len(parts) > 2:
        start = findings[-1]
        while start - 1 in findings and len(" ".join(parts[start - 1 : findings[-1] + 1])) <= limit:
            start -= 1
        return _fit(parts[start : findings[-1] + 1], limit)
    return _fit(parts, limit)


def _other(section: dict) -> bool:
    return bool(section.get("label")) and section["label"].strip().lower() in OTHER_LABELS


def flatten(sections: list[dict]) -> str | None:
    """The plain-text abstract of these sections: "Label: text" paragraphs."""
    paragraphs = [f"{s['label']}: {s['text']}" if s.get("label") else s["text"] for s in sections if s.get("text")]
    return "\n\n".join(paragraphs) or None
