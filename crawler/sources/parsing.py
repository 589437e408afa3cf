"""What every source parser shares: JSON bodies, dates, integers, markup, notice titles.

One function per job, so that the sources agree:

* :func:`decode_json` — a body as JSON, or a :class:`~crawler.errors.SourceError` that says what came
  instead (an empty body, an HTML page, malformed JSON) with the first bytes;
* :class:`JsonStream` — the same for a large answer read item by item: its envelope (everything but
  the item array) and then its items one at a time, so the whole tree never exists;
* :func:`parse_date` — every date form the sources send, as one ISO string of the precision known;
* :func:`parse_int` — counts sent as numbers or strings;
* :func:`strip_tags` — HTML/JATS/MathML markup to plain text;
* :func:`notice_kind` / :func:`mentions_notice` / :func:`has_retraction_mark` — the one vocabulary of
  retraction, withdrawal, correction, addendum and expression-of-concern titles.
"""

from __future__ import annotations

import calendar
import datetime as dt
import email.utils
import html
import io
import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, TypeVar

import ijson
from ijson.common import ObjectBuilder

from crawler.errors import SourceError

T = TypeVar("T")

# --------------------------------------------------------------------------- JSON

DEFAULT_HINT = "the base_url in the config and whether the service is up"


def looks_like_html(content: bytes) -> bool:
    """Whether a body is an HTML page (an error page, a login or firewall page) rather than data."""
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]


def body_snippet(body: bytes, length: int = 120) -> str:
    """The first characters of a body, whitespace folded (for error messages)."""
    return " ".join(body[:length].decode("utf-8", "replace").split())


def decode_json(
    body: bytes,
    source: str,
    *,
    url: str | None = None,
    hint: str = DEFAULT_HINT,
    status: int | None = None,
    content_type: str | None = None,
) -> Any:
    """``body`` decoded as JSON; else a SourceError: "expected JSON but got an HTML page: '…'".

    ``status`` (when not 200) prefixes the message with the HTTP status; ``content_type`` names what
    came when it was neither HTML nor JSON-looking.
    """
    prefix = f"HTTP {status}: " if status not in (None, 200) else ""
    check_json_start(body or b"", source, size=len(body or b""), url=url, hint=hint, status=status)
    try:
        return json.loads(body)
    except ValueError:
        kind = f"'{content_type}' content" if content_type and "json" not in content_type.lower() else "malformed JSON"
        raise SourceError(source, f"{prefix}expected JSON but got {kind}: {body_snippet(body)!r}", hint=hint, url=url) from None


def check_json_start(
    head: bytes,
    source: str,
    *,
    size: int,
    url: str | None = None,
    hint: str = DEFAULT_HINT,
    status: int | None = None,
) -> None:
    """The checks of :func:`decode_json` that need only the start of a body (``head``) and its ``size``:
    an empty body or an HTML page raise the same SourceError."""
    prefix = f"HTTP {status}: " if status not in (None, 200) else ""
    if not head.strip() and size <= len(head):
        raise SourceError(source, f"{prefix}expected JSON but got an empty body", hint=hint, url=url)
    if looks_like_html(head):
        title = re.search(rb"<title[^>]*>(.*?)</title>", head, re.I | re.S)
        named = f" titled {' '.join(title.group(1).decode('utf-8', 'replace').split())[:80]!r}" if title else ""
        raise SourceError(
            source, f"{prefix}expected JSON but got an HTML page{named}: {body_snippet(head)!r}", hint=hint, url=url
        )


#: Records per batch that a source yields while it reads one large answer item by item (each batch is
#: saved in its own transaction; the whole answer has been read and checked before the first).
STREAM_BATCH = 500


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items (itertools.batched, which needs Python 3.12)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _TooDeep(Exception):
    pass


class JsonStream:
    """A JSON answer read from a stream, never whole in memory: the document without its item array
    (:attr:`envelope`), then the array's items one at a time (:meth:`items`).

    ``items_path`` names the array in ijson's dotted form (``"message.items"``, ``"studies"``; ``""``
    for a top-level array). In the envelope, an array at that path is an empty list (so a check such
    as "items is a list" still holds); anything else there is kept as it came. Reading the envelope
    reads the whole document once, so malformed JSON anywhere (even after many good items) raises a
    SourceError before the caller has seen a single item; it says what came and where it broke, like
    :func:`decode_json`. Numbers are ints and floats, as ``json.loads`` gives them.
    """

    HEAD = 65536
    #: No API nests this deep; a deeper document is hostile (and costly to walk)
    MAX_DEPTH = 512

    def __init__(
        self,
        body: bytes | IO[bytes],
        source: str,
        items_path: str,
        *,
        url: str | None = None,
        hint: str = DEFAULT_HINT,
        status: int | None = None,
        content_type: str | None = None,
    ):
        self.file: IO[bytes] = io.BytesIO(body) if isinstance(body, bytes) else body
        self.source, self.items_path, self.url, self.hint = source, items_path, url, hint
        self.status, self.content_type = status, content_type
        self.file.seek(0, io.SEEK_END)
        self.size = self.file.tell()
        self.file.seek(0)
        self.head = self.file.read(self.HEAD)
        check_json_start(self.head, source, size=self.size, url=url, hint=hint, status=status)
        self.count = 0  # items read so far by items()
        self.start = 3 if self.head.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 byte order mark (json.loads skips it too)
        self.envelope: Any = self._read_envelope()
        self.has_items = isinstance(self._at_path(), list)  # an array at items_path (else items() yields nothing)

    def _read_envelope(self) -> Any:
        builder = ObjectBuilder()
        target = self.items_path.split(".") if self.items_path else []
        keys: list[str | None] = []  # per open container: its current key (maps) or None (arrays)
        skipping_at: int | None = None  # depth of the item array being skipped
        self.file.seek(self.start)
        try:
            for event, value in ijson.basic_parse(self.file, use_float=True):
                if event in ("start_map", "start_array"):
                    if len(keys) >= self.MAX_DEPTH:
                        raise _TooDeep()
                    if skipping_at is None and event == "start_array" and len(keys) == len(target):
                        if [k if k is not None else "item" for k in keys] == target:
                            builder.event("start_array", None)  # the item array: an empty list in the envelope
                            builder.event("end_array", None)
                            skipping_at = len(keys)
                            keys.append(None)
                            continue
                    keys.append(None)
                elif event in ("end_map", "end_array"):
                    keys.pop()
                    if skipping_at is not None:
                        if len(keys) == skipping_at:
                            skipping_at = None
                        continue
                elif event == "map_key" and skipping_at is None:
                    keys[-1] = value
                if skipping_at is None:
                    builder.event(event, value)
        except _TooDeep:
            raise SourceError(
                self.source,
                f"expected JSON but got a document nested more than {self.MAX_DEPTH} levels deep: {body_snippet(self.head)!r}",
                hint=self.hint,
                url=self.url,
            ) from None
        except (ijson.JSONError, ValueError) as exc:
            raise self._error(exc) from None
        return builder.value

    def items(self) -> Iterator[Any]:
        """The items of the array at ``items_path``, one at a time (none if there is no array there)."""
        if not self.has_items:
            return
        self.file.seek(self.start)
        try:
            for item in ijson.items(self.file, f"{self.items_path}.item" if self.items_path else "item", use_float=True):
                self.count += 1
                yield item
        except (ijson.JSONError, ValueError) as exc:  # pragma: no cover - the envelope pass has read the same bytes
            raise self._error(exc) from None

    def _at_path(self) -> Any:
        node = self.envelope
        for key in self.items_path.split(".") if self.items_path else []:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def _error(self, exc: Exception) -> SourceError:
        prefix = f"HTTP {self.status}: " if self.status not in (None, 200) else ""
        if self.content_type and "json" not in self.content_type.lower():
            kind = f"'{self.content_type}' content"
        else:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = reason.removeprefix("b'").removeprefix('b"')
            where = min(self.file.tell(), self.size) if not self.file.closed else self.size
            kind = f"malformed JSON ({reason}, within the first {where} of {self.size} bytes)"
        return SourceError(
            self.source, f"{prefix}expected JSON but got {kind}: {body_snippet(self.head)!r}", hint=self.hint, url=self.url
        )


# --------------------------------------------------------------------------- dates

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        1,
    )
    for name in names
}
#: Seasons of journal issues (PubMed's <Season>, MedlineDate "2023 Winter"): the month the season ends in.
SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}

_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_PARTIAL_ISO_RE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_ISO_RE = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
#: MM/DD/YYYY and MM-DD-YYYY (or DD/MM/YYYY with day_first); the separator must repeat.
_NUMERIC_RE = re.compile(r"\b(\d{1,2})([-/])(\d{1,2})\2(\d{4})\b")
_MDY_RE = re.compile(r"\b" + _MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I)
_DMY_RE = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\.?\s+" + _MONTH + r",?\s+(\d{4})\b", re.I)
#: MedlineDate: "2024 Jan-Feb", "2023 Winter", "1998 Dec-1999 Jan", "2024 Jan 5"
_YEAR_WORD_RE = re.compile(r"^(\d{4})\s+([A-Za-z]+)\.?(?:\s+(\d{1,2})\b)?")
#: MedlineDate year ranges: "2019-2020" → 2019
_YEAR_RANGE_RE = re.compile(r"^(\d{4})\s*[-/\u2013]\s*\d{4}$")
_MY_RE = re.compile(r"\b" + _MONTH + r",?\s+(\d{4})\b", re.I)
_YEARS = range(1800, 2200)


def month_number(value: Any) -> int | None:
    """1-12 from ``3``, ``"03"``, ``"Mar"``, ``"March"``, ``"Sept."`` or a season (``"Winter"`` → 12)."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().lower().rstrip(".")
    if text.isdigit():
        return int(text) if 1 <= int(text) <= 12 else None
    return MONTHS.get(text) or MONTHS.get(text[:3]) or SEASONS.get(text)


def parse_date(value: Any, *, day_first: bool = False) -> str | None:
    """Any date a source sends -> ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (as precise as it is), else None.

    Accepted: ISO dates of any precision and ISO date-times (``2024``, ``2024-03``, ``2024-03-05``,
    ``2024-03-05T10:00:00Z``, ``2024/03/05``); ``MM/DD/YYYY`` and ``MM-DD-YYYY``; ``March 5, 2024``,
    ``5 March 2024``, ``Mar. 2024``; RFC 822 (``Tue, 05 Mar 2024 10:00:00 GMT``); PubMed's MedlineDate
    and seasons (``2024 Jan-Feb`` → ``2024-01``, ``2023 Winter`` → ``2023-12``); and date parts as a
    sequence (Crossref's ``[2019, 4, 3]``, PubMed's ``("2024", "Mar", "5")``). A date inside longer
    text is found ("Posted March 5, 2024 by …"); the first one wins.

    The all-numeric forms are ambiguous: ``03/05/2024`` is 5 March in the US and 3 May in most of
    Europe. They are read month first (the US agencies' pages and feeds that write them), day first
    when the first number is over 12, and day first with ``day_first=True`` (a source known to write
    ``DD/MM/YYYY``, such as CTIS) unless the second number is over 12.

    A written date with a month or day that cannot exist is no date (``31 February 2024`` → None);
    date parts, already split by the source, keep their valid leading parts (``[2021, 2, 30]`` →
    ``2021-02``, as Crossref means them). A year outside 1800-2199 gives None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (str, int)):
        return _date_in_text(" ".join(str(value).replace("\ufeff", "").split()), day_first)
    return _date_of_value(value)


def _date_of_value(value: Any) -> str | None:
    """:func:`parse_date` of a value that is no text nor number: a date, a date-time, a ``struct_time``, date parts."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, time.struct_time):  # feedparser's *_parsed fields, in UTC
        try:
            return dt.datetime.fromtimestamp(calendar.timegm(value), dt.UTC).date().isoformat()
        except (TypeError, ValueError, OverflowError):
            return None
    if isinstance(value, (list, tuple)):
        return _from_parts(value, strict=False)
    return None


def _date_in_text(text: str, day_first: bool) -> str | None:
    """:func:`parse_date` of a text (white space folded), or of a number's digits."""
    if not text:
        return None
    match = _PARTIAL_ISO_RE.fullmatch(text) or _ISO_RE.search(text)
    if match:
        return _from_parts(match.groups())
    match = _NUMERIC_RE.search(text)
    if match:
        first, second, year = int(match.group(1)), int(match.group(3)), match.group(4)
        month_first = first <= 12 if not day_first else second > 12
        return _from_parts((year, first, second) if month_first else (year, second, first))
    match = _MDY_RE.search(text)
    if match:
        return _from_parts((match.group(3), match.group(1), match.group(2)))
    match = _DMY_RE.search(text)
    if match:
        return _from_parts((match.group(3), match.group(2), match.group(1)))
    match = _YEAR_WORD_RE.match(text)
    if match:
        year, word, day = match.groups()
        return _from_parts((year, word, day)) if month_number(word) else _from_parts((year,))
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is not None:
        return parsed.date().isoformat()
    match = _MY_RE.search(text) or _YEAR_RANGE_RE.match(text)
    if match:
        return _from_parts((match.group(2), match.group(1)) if match.re is _MY_RE else (match.group(1),))
    return None


def _from_parts(parts: Sequence[Any], strict: bool = True) -> str | None:
    """(year, month, day), the later ones possibly missing or None -> ISO. An impossible month or day:
    None when ``strict``, else the valid leading parts."""
    try:
        year = int(str(parts[0]).strip())
    except (TypeError, ValueError, IndexError):
        return None
    if year not in _YEARS:
        return None
    given_month = len(parts) > 1 and parts[1] not in (None, "")
    month = month_number(parts[1]) if given_month else None
    if month is None:
        return None if strict and given_month else f"{year:04d}"
    day_text = str(parts[2]).strip() if len(parts) > 2 and parts[2] not in (None, "") else ""
    if day_text:
        try:
            return dt.date(year, month, int(day_text)).isoformat()
        except ValueError:
            if strict:
                return None
    return f"{year:04d}-{month:02d}"


def earliest_date(*dates: str | None) -> str | None:
    """The earliest of ISO dates of any precision, compared padded (``2024`` counts as the end of 2024)."""
    present = [d for d in dates if d]
    return min(present, key=lambda d: (d + "-99-99")[:10]) if present else None


# --------------------------------------------------------------------------- numbers

_INT_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?!\d)|[+-]?\d+")


def parse_int(value: Any, *, in_text: bool = False) -> int | None:
    """A count sent as a number or a string (``12``, ``"12"``, ``" 1,200 "``); None for anything else.

    Booleans and fractions are not counts. With ``in_text`` the first integer inside free text is
    taken ("Approximately 1,200 participants" → 1200), as registries write enrolment targets.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _INT_RE.search(text) if in_text else _INT_RE.fullmatch(text)
    return int(match.group(0).replace(",", "")) if match else None


# --------------------------------------------------------------------------- markup

#: Elements that end a line of text: they become a space (or a paragraph break); other tags simply vanish,
#: so that ``T<sup>1</sup>`` stays ``T1`` and ``<i>R</i>-ketamine`` stays ``R-ketamine``.
BLOCK_TAGS = frozenset(
    "address article aside blockquote br caption dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr li "
    "ol p pre section table tbody td tfoot th thead tr ul "
    # JATS / Crossref abstracts
    "abstract sec title label list list-item disp-quote fig table-wrap def-list def-item".split()
)
HEADING_TAGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_DROPPED_RE = re.compile(r"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>|<!\[CDATA\[|\]\]>", re.I | re.S)
#: A tag: a name, then only ``name=value`` attributes, so that ``x<y and y>z`` stays text.
TAG_RE = re.compile(r"""<(/?)([A-Za-z][\w:.-]*)(?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>=]+))*\s*/?>""")


def strip_tags(text: Any, *, paragraphs: bool = False, headings: bool = False, inline_space: bool = False) -> str:
    """Plain text of an HTML/JATS/MathML fragment: tags removed, entities decoded, whitespace folded.

    Block elements separate words (a space; with ``paragraphs`` a blank line between paragraphs);
    inline ones join, as a browser shows them (``T<sup>1</sup>`` → ``T1``). With ``inline_space``
    every tag separates words and the spaces left before punctuation are tidied (Crossref's JATS
    titles lose the whitespace around their tags: ``between<i>Chlamydia</i>Infection``). With
    ``headings``, a heading element becomes a ``Label: `` lead-in of the paragraph it opens.
    Comments, scripts and styles are dropped. The source's own spacing is kept otherwise (``p < .001``).
    """
    if text is None or isinstance(text, (dict, list)):
        return ""
    raw = _DROPPED_RE.sub(" ", str(text))

    def replace(match: re.Match) -> str:
        closing, name = match.group(1), match.group(2).lower().split(":")[-1]
        if headings and name in HEADING_TAGS:
            return ": " if closing else "\n\n"
        return "\n\n" if name in BLOCK_TAGS else " " if inline_space else ""

    plain = html.unescape(TAG_RE.sub(replace, raw)).replace("\ufeff", "")
    blocks = [" ".join(b.split()) for b in plain.split("\n\n")]
    if headings:
        blocks = [re.sub(r"(?<=\S)\s*:\s*:", ":", b).lstrip(": ").strip() for b in blocks]
    if inline_space:
        blocks = [tidy_spacing(b) for b in blocks]
    return ("\n\n" if paragraphs else " ").join(b for b in blocks if b)


def has_tags(text: str | None) -> bool:
    """Whether a text holds markup (a feed's "plain" field that is HTML after all)."""
    return bool(TAG_RE.search(text or ""))


def tidy_spacing(text: str) -> str:
    """No space inside brackets or before punctuation (left where tags were removed): ``( a ) ,`` → ``(a),``."""
    text = " ".join(text.split())
    return re.sub(r"\s+([,.;:)\]])", r"\1", re.sub(r"([(\[])\s+", r"\1", text))


# --------------------------------------------------------------------------- notice titles

#: The notices that concern another work, and the words that open their titles.
NOTICE_VOCABULARY = {
    "retraction": ("notice of retraction", "retraction note", "retraction notice", "retraction statement", "retraction"),
    "withdrawal": ("notice of withdrawal", "withdrawal notice", "withdrawal"),
    "correction": ("notice of correction", "correction notice", "correction", "erratum", "errata", "corrigendum", "corrigenda"),
    "addendum": ("addendum",),
    "expression_of_concern": ("editorial expression of concern", "expression of concern", "notice of concern"),
}
_WORDS = {phrase: kind for kind, phrases in NOTICE_VOCABULARY.items() for phrase in phrases}
_PHRASES = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(_WORDS, key=len, reverse=True))
#: A notice's title: the phrase, then a separator, "to"/"for"/"on" or nothing ("Erratum"). "Correction of
#: hyponatraemia" and "Retraction of the tongue" are ordinary titles: "of" introduces their subject.
_NOTICE_TITLE_RE = re.compile(rf"^\W*({_PHRASES})\s*(?:[:.\-\u2010-\u2015]|\bto\b|\bfor\b|\bon\b|$)", re.I)
_NOTICE_WORD_RE = re.compile(
    r"\b(?:retraction|withdrawal|correction|erratum|errata|corrigend(?:um|a)|addendum|expression\s+of\s+concern)", re.I
)
#: "RETRACTED: <title>", "Retracted article: <title>", "WITHDRAWN: <title>": a mark put on a title. Elsevier and
#: Springer retitle the retracted article itself this way; some publishers title the notice so (Hindawi).
_RETRACTION_MARK_RE = re.compile(r"^\s*(?:retracted(?:\s+article)?|withdrawn)\s*[:.\-\u2013\u2014]\s*", re.I)


def notice_kind(title: str | None) -> str | None:
    """retraction | withdrawal | correction | addendum | expression_of_concern when the title is a notice's."""
    match = _NOTICE_TITLE_RE.match(title or "")
    return _WORDS[" ".join(match.group(1).lower().split())] if match else None


def mentions_notice(text: str | None) -> bool:
    """Whether a section or type label (``Retraction Notes``, ``Errata``) names a kind of notice."""
    return bool(_NOTICE_WORD_RE.search(text or ""))


def has_retraction_mark(title: str | None) -> bool:
    """Whether the title opens with a "Retracted:"/"Withdrawn:" mark (the source must tell article from notice)."""
    return bool(_RETRACTION_MARK_RE.match(title or ""))


def remove_retraction_mark(title: str) -> str:
    return _RETRACTION_MARK_RE.sub("", title)
