"""Render: a built digest as HTML (CSS inlined for mail clients) and plain text, from crawler/templates."""

from __future__ import annotations

import logging

from jinja2 import Environment, PackageLoader, select_autoescape

from crawler import citations
from crawler.digest.build import CLINICAL_ORDER, Digest

#: Gmail clips messages after about 102 KB: the HTML part stays below this (items beyond go to the attachment).
HTML_MAX_BYTES = 95_000
ATTACHMENT_NAME = "litmon-digest.ris"

_env = Environment(
    loader=PackageLoader("crawler", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_text_env = Environment(loader=PackageLoader("crawler", "templates"), autoescape=False, trim_blocks=True, lstrip_blocks=True)


def render(digest: Digest, config) -> None:
    """HTML (CSS inlined with premailer, so Gmail and Outlook keep the styles) and plain text.

    Each section shows at most ``digest.shown[key]`` items (``[digest] section_cap``); when the HTML
    would still pass :data:`HTML_MAX_BYTES` (long titles, many notes), fewer items are shown per section
    until it fits. Every item is in the RIS attachment either way.
    """
    for item in digest.items:
        item.tag_labels = [citations.tag_label(tag, config.topic) for tag in item.tags]
    _render(digest, config)
    sizes = {key: len(items) for key, _, items in digest.sections}
    shown = {key: min(sizes[key], digest.shown.get(key, sizes[key])) for key in sizes if key not in ("highlights", "health")}
    while len(digest.html.encode("utf-8")) > HTML_MAX_BYTES and any(n > 1 for n in shown.values()):
        shown = {key: max(1, n * 3 // 4) for key, n in shown.items()}
        digest.shown = {key: n for key, n in shown.items() if n < sizes[key]}
        _render(digest, config)


def _render(digest: Digest, config) -> None:
    counts = [(title, len(items)) for key, title, items in digest.sections if key != "health"]
    context = {
        "digest": digest,
        "topic": config.topic.name,
        "counts": counts,
        "count": len(digest.items),
        "clinical_labels": CLINICAL_ORDER,
        "attachment": f"{ATTACHMENT_NAME} (RIS: import it into Zotero, EndNote or Mendeley)",
    }
    html = _env.get_template("digest.html.j2").render(**context)
    digest.html = inline_css(html)
    digest.text = _text_env.get_template("digest.txt.j2").render(**context)


def inline_css(html: str) -> str:
    from premailer import Premailer

    logging.getLogger("cssutils").setLevel(logging.CRITICAL)
    return Premailer(
        html, remove_classes=False, keep_style_tags=False, strip_important=False, allow_network=False, disable_validation=True
    ).transform()
