"""Safe XML helpers: the text of an element, whitespace folded."""

from __future__ import annotations

import random
import sys

from lxml import etree

from crawler.xmlsafe import fold_space, text_of

#: Every character str.split() splits on, and a few that it does not.
SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
OTHERS = [
    "a",
    "Z",
    "1",
    ".",
    "-",
    "\u00e9",
    "\u03bc",
    "\u00b1",
    "\u200b",
    "\ufeff",
    "\u2060",
    "\x00",
    "\x7f",
    "\u0301",
    "\U0001d400",
]


def test_fold_space_is_split_and_join_for_any_text():
    rng = random.Random(5)
    words = ["Ketamine", "reduced", "MADRS", "scores", "(p < .001)", "in", "45%", "of", "patients", "μ-opioid"]
    for _ in range(20000):
        if rng.random() < 0.5:  # any mixture
            text = "".join(rng.choice(words + OTHERS + SPACES + [" ", "  "]) for _ in range(rng.randint(0, 40)))
        else:  # folded already, or but for one character somewhere
            text = " ".join(rng.choice(words + OTHERS) for _ in range(rng.randint(1, 20)))
            if rng.random() < 0.7:
                at = rng.choice([0, len(text), rng.randint(0, len(text)), text.find(" ") + 1])
                text = text[:at] + rng.choice([" ", " ", "\t", "\u00a0"] + SPACES + OTHERS) + text[at:]
        assert fold_space(text) == " ".join(text.split()), repr(text)
    assert len(SPACES) == 29
    # a short text of letters and digits only is returned as it is: no character is both
    assert not [c for c in map(chr, range(0x110000)) if c.isspace() and c.isalnum()]
    for text in ("Osei", "HK", "2024", "\u00c9mile", "\u0663\u0664", "x\u00b2", "Ketamine", "Osei\u00a0H", "H K", ""):
        assert fold_space(text) == " ".join(text.split()), repr(text)


def test_fold_space_of_a_long_text_with_one_odd_character_anywhere():
    """A long text (ASCII, searched for white space; or not, checked printable) with any one ASCII character, white
    space or character outside ASCII at its start, end or middle, alone or doubled."""
    folded = "Ketamine reduced depressive symptoms within hours in adults"
    for odd in [chr(c) for c in range(128)] + SPACES + OTHERS:
        for text in (
            odd + folded,
            folded + odd,
            folded[:20] + odd + folded[20:],
            folded[:20] + odd * 2 + folded[20:],
            folded[:19] + odd + folded[19:],
            folded.replace(" ", odd),
        ):
            assert fold_space(text) == " ".join(text.split()), repr(text)


def test_text_of_flattens_mixed_content_and_folds_whitespace():
    element = etree.fromstring("<T>  Effect of <i>R</i>-ketamine\u00a0on\n  TNF-<sup>\u03b1</sup>  </T>")
    assert text_of(element) == "Effect of R-ketamine on TNF-\u03b1"
    assert text_of(etree.fromstring("<T/>")) == text_of(None) == ""
