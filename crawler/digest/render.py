"""Render: a built digest as HTML (CSS inlined for mail clients) and plain text, from crawler/templates."""

from __future__ import annotations

import logging

from jinja2 import Environment, PackageLoader, select_autoescape

from crawler.digest.build import CLINICAL_ORDER, Digest

_env = Environment(
    loader=PackageLoader("crawler", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_text_env = Environment(loader=PackageLoader("crawler", "templates"), autoescape=False, trim_blocks=True, lstrip_blocks=True)


def render(digest: Digest, config) -> None:
    """HTML (CSS inlined with premailer, so Gmail and Outlook keep the styles) and plain text."""
    counts = [(title, len(items)) for key, title, items in digest.sections if key != "health"]
    context = {
        "digest": digest,
        "topic": config.topic["name"],
        "counts": counts,
        "count": len(digest.items),
        "clinical_labels": CLINICAL_ORDER,
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
