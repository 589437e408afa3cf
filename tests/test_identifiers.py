"""Identifiers: trial numbers found in free text."""

from __future__ import annotations

import random

from crawler import identifiers as ids


def all_trial_ids(text: str) -> list[tuple[str, str]]:
    """find_trial_ids without its pre-checks: every expression run over the whole text."""
    euct = list(ids._EUCT_RE.finditer(text))
    spans = [m.span() for m in euct]
    found = [("nct", f"NCT{int(m.group(1)):08d}") for m in ids._NCT_RE.finditer(text)]
    found += [("isrctn", f"ISRCTN{m.group(1)}") for m in ids._ISRCTN_RE.finditer(text)]
    found += [("euct", "-".join(m.groups())) for m in euct]
    found += [
        ("eudract", "-".join(m.groups())) for m in ids._EUDRACT_RE.finditer(text) if not any(s <= m.start() < e for s, e in spans)
    ]
    return list(dict.fromkeys(found))


def test_trial_numbers_are_found_in_every_written_form():
    text = "Registered as nct 01234567 and NCT0456789 (ISRCTN12345678; EudraCT 2010-012345-12; EU CT 2023-501234-12-00)."
    assert ids.find_trial_ids(text) == [
        ("nct", "NCT01234567"),
        ("nct", "NCT00456789"),
        ("isrctn", "ISRCTN12345678"),
        ("euct", "2023-501234-12-00"),
        ("eudract", "2010-012345-12"),
    ]
    assert ids.find_trial_ids("An adjunctive, distinct function; 12-345678-90 is no number.") == []


def test_the_pre_checks_never_hide_a_number():
    # words that hold "nct" or "rctn", numbers in every form (spaced, lower case, other digits), glued or apart
    rng = random.Random(7)
    pieces = [
        "adjunctive", "distinct", "function", "NCT", "nct", "Nct ", "NCT 0", "NCT00", "ISRCTN", "isrctn ", "rctn",
        "0", "1234567", "12345678", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667", "2010-", "012345-", "501234-",
        "12", "-00", "19", "20", "-", " ", "\u00a0", ".", "(", "trial", "İ", "ſ",
    ]  # fmt: skip
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert ids.find_trial_ids(text) == all_trial_ids(text), text


def _normalize_doi_reference(value):
    """ids.normalize_doi before its shortcuts (the prefix and the preprint version looked for in every DOI)."""
    if not value:
        return None
    text = ids._DOI_PREFIX_RE.sub("", ids.unquote(str(value).strip())).strip()
    match = ids._DOI_RE.search(text)
    if not match:
        return None
    doi = match.group(0).lower().rstrip(".,;:)]}'\"")
    preprint = ids._PREPRINT_VERSION_RE.match(doi)
    return preprint.group(1) if preprint else doi


def test_a_doi_is_normalised_as_before_its_shortcuts():
    """Bare DOIs (no prefix to remove, no preprint version to look for) and every other kind, on random pieces."""
    rng = random.Random(7)
    pieces = [
        "10.",
        "1101/",
        "64898/",
        "1001/jama.2024.1",
        "5859/j.syn",
        "v2",
        "V3",
        "v",
        "doi:",
        "DOI: ",
        "https://doi.org/",
        "http://dx.doi.org/",
        "doi.org/",
        "%20",
        "%2F",
        " ",
        ".",
        ")",
        "\u00e9",
        "x",
    ]
    for _ in range(20000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        assert ids.normalize_doi(value) == _normalize_doi_reference(value), repr(value)
