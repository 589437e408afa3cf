"""Safe XML parsing: no entity expansion, no DTD or network access, huge trees refused politely."""

from __future__ import annotations

from typing import IO

from lxml import etree

from crawler.errors import SourceError

#: No entity expansion, no DTD or network access, huge trees refused: for whole documents and streams alike.
SAFE_OPTIONS: dict[str, bool] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_blank_text": False,
}


def safe_parser() -> etree.XMLParser:
    """An lxml parser with :data:`SAFE_OPTIONS` (one per thread: lxml parsers are not shared between threads)."""
    return etree.XMLParser(**SAFE_OPTIONS)


def parse_xml(body: bytes, source: str, what: str = "response"):
    """Parse bytes into an lxml root element or raise SourceError explaining the problem."""
    if not body or not body.strip():
        raise SourceError(source, f"empty {what}: expected XML", hint="whether the service is up")
    try:
        root = etree.fromstring(body, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise xml_error(body, source, what, exc) from None
    if root is None:
        raise SourceError(source, f"{what} has no XML root element")
    return root


#: How much of the start of a streamed body the checks look at.
HEAD_BYTES = 65536


def xml_error(head: bytes, source: str, what: str, exc: Exception) -> SourceError:
    """The SourceError for a body that is not well-formed XML (``head``: its first bytes)."""
    start = head[:200].lstrip().lower()
    kind = "an HTML page" if start.startswith((b"<!doctype html", b"<html")) else "malformed XML"
    snippet = " ".join(head[:100].decode("utf-8", "replace").split())
    return SourceError(source, f"{what} is {kind} ({exc}): {snippet!r}", hint="the base_url and whether the service is up")


def iterparse_safe(stream: IO[bytes], **options) -> etree.iterparse:
    """``lxml.etree.iterparse`` over a binary stream with :func:`parse_xml`'s safe options (no entity
    expansion, no DTD or network access, huge trees refused); ``options``: events, tag."""
    return etree.iterparse(stream, **SAFE_OPTIONS, **options)


def text_of(element) -> str:
    """All text inside an element, mixed content (<i>, <sup>, MathML) flattened, whitespace folded."""
    if element is None:
        return ""
    if len(element) == 0:  # no child elements (most fields): its own text is all of it
        text = element.text
        return fold_space(text) if text else ""
    return fold_space("".join(element.itertext()))


def fold_space(text: str) -> str:
    """``" ".join(text.split())``: runs of whitespace as one space, none at either end. A long text that
    is folded already (most are) comes back as it is, without splitting it into words: it is folded if it holds no
    whitespace but the space, no two spaces meet and none starts or ends it. A short one made of letters and digits
    only (a surname, initials, a one-word keyword: most of a PubMed article's short texts) has no white space at all:
    it too comes back as it is, without a split and a join (−4k instructions per synthetic article).

    An ASCII text (``isascii`` reads a flag, it does not scan) is searched for each of the nine ASCII white spaces
    other than the space, written out: each ``in`` is one ``memchr`` in C. Any other text must be printable (Python
    counts every whitespace but the space as unprintable), a look-up per character: ~20 instructions each, ~29k per
    synthetic article (its abstract and title) against ~3k for the nine searches (callgrind; the same nine through
    ``any(map(text.__contains__, ...))`` cost more than ``isprintable``: a tuple of arguments per call)."""
    if len(text) > 32:
        if (
            (
                "\n" not in text
                and "\t" not in text
                and "\r" not in text
                and "\x0b" not in text
                and "\x0c" not in text
                and "\x1c" not in text
                and "\x1d" not in text
                and "\x1e" not in text
                and "\x1f" not in text
                if text.isascii()
                else text.isprintable()
            )
            and "  " not in text
            and text[0] != " "
            and text[-1] != " "
        ):
            return text
    elif text.isalnum():
        return text
    return " ".join(text.split())
