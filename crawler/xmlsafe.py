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
    is folded already (most are) comes back as it is, without splitting it into words: a text whose
    characters are all printable has no whitespace but the space (Python counts every other kind as
    unprintable), so it is folded if no two spaces meet and none starts or ends it. A short one made of letters and
    digits only (a surname, initials, a one-word keyword: most of a PubMed article's short texts) has no white space
    at all: it too comes back as it is, without a split and a join (−4k instructions per synthetic article)."""
    if len(text) > 32:
        if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
            return text
    elif text.isalnum():
        return text
    return " ".join(text.split())
