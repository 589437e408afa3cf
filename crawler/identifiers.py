"""Normalisation of scholarly and trial identifiers.

Every identifier stored by litmon goes through :func:`normalize`, so that the same work seen by two
sources carries byte-identical (scheme, value) pairs:

========  =====================================================  ======================
scheme    normalised form                                          example
========  =====================================================  ======================
doi       lower case, no ``doi:`` / ``https://doi.org/`` prefix,   10.1001/jamapsychiatry.2023.1
          URL-decoded, no trailing punctuation; bioRxiv/medRxiv
          version suffixes (``v2``) removed
pmid      digits without leading zeros                             38011560
pmcid     ``PMC`` + digits                                         PMC1234567
nct       ``NCT`` + 8 digits                                       NCT01234567
isrctn    ``ISRCTN`` + digits                                      ISRCTN12345678
eudract   ``YYYY-NNNNNN-NN``                                       2019-001234-56
euct      EU CTIS number ``YYYY-NNNNNN-NN-NN``                     2023-501234-12-00
ppr       Europe PMC preprint id ``PPR`` + digits                  PPR123456
openalex  ``W`` + digits                                           W2741809807
========  =====================================================  ======================
"""

from __future__ import annotations

import re
from urllib.parse import unquote

SCHEMES = ("doi", "pmid", "pmcid", "nct", "isrctn", "eudract", "euct", "ppr", "openalex")

#: DOI prefixes of bioRxiv and medRxiv preprints (10.64898 since December 2025).
PREPRINT_DOI_PREFIXES = ("10.1101/", "10.64898/")

_DOI_RE = re.compile(r"10\.\d{4,9}/[^\s\"<>]+", re.I)
_DOI_PREFIX_RE = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/|(?:dx\.)?doi\.org/)", re.I)
_PREPRINT_VERSION_RE = re.compile(r"^(10\.(?:1101|64898)/.+?)v\d+$", re.I)
_NCT_RE = re.compile(r"\bNCT\s?0?(\d{7,8})\b", re.I)
_ISRCTN_RE = re.compile(r"\bISRCTN\s?(\d{8})\b", re.I)
_EUDRACT_RE = re.compile(r"\b((?:19|20)\d{2})-(\d{6})-(\d{2})\b")
_EUCT_RE = re.compile(r"\b((?:19|20)\d{2})-(5\d{5})-(\d{2})-(\d{2})\b")
#: Pre-checks before the expressions above (most abstracts name no registration at all), each a part of
#: every match that starts with a literal, so that the regular expression engine skips to it: "nct" and
#: its number in the lower-cased text ("nct" alone is in "distinct", "adjunctive"); the middle of every
#: EudraCT and EU CT number.
_NCT_HINT = re.compile(r"nct\s?0?\d{7}")
_EU_NUMBER_HINT = re.compile(r"-\d{6}-\d\d")


def normalize_doi(value: str | None) -> str | None:
    if not value:
        return None
    text = unquote(str(value).strip())
    if not text.startswith("10."):  # (a bare DOI, as most are, has no prefix: each of them starts with "d" or "h")
        text = _DOI_PREFIX_RE.sub("", text)
    match = _DOI_RE.search(text.strip())
    if not match:
        return None
    doi = match.group(0).lower().rstrip(".,;:)]}'\"")
    if doi.startswith(PREPRINT_DOI_PREFIXES):  # (only those can end in a version)
        preprint = _PREPRINT_VERSION_RE.match(doi)
        if preprint:
            doi = preprint.group(1)
    return doi


def is_preprint_doi(doi: str | None) -> bool:
    return bool(doi) and str(doi).lower().startswith(PREPRINT_DOI_PREFIXES)


def normalize_pmid(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit():  # (a bare number, as most are, has no prefix to remove)
        text = _PMID_PREFIX_RE.sub("", text)
    return str(int(text)) if text.isdigit() and int(text) > 0 else None


_PMID_PREFIX_RE = re.compile(r"^(?:pmid:?|pubmed:?)\s*", re.I)


def normalize_pmcid(value) -> str | None:
    if not value:
        return None
    match = _PMCID_RE.fullmatch(str(value))
    return f"PMC{int(match.group(1))}" if match else None


#: Compiled once (``re.fullmatch`` of a pattern's text looks it up in re's cache at each call).
_PMCID_RE = re.compile(r"\s*(?:pmcid:?\s*)?(?:PMC)?(\d+)(?:\.\d+)?\s*", re.I)


def normalize_nct(value) -> str | None:
    if not value:
        return None
    match = _NCT_RE.search(str(value).upper().replace("NCT ", "NCT"))
    return f"NCT{int(match.group(1)):08d}" if match else None


def normalize_isrctn(value) -> str | None:
    if not value:
        return None
    text = str(value).strip().upper()
    if text.isdigit() and len(text) == 8:
        return f"ISRCTN{text}"
    match = _ISRCTN_RE.search(text)
    return f"ISRCTN{match.group(1)}" if match else None


def normalize_eudract(value) -> str | None:
    if not value:
        return None
    match = _EUDRACT_RE.search(str(value))
    if not match or _EUCT_RE.search(str(value)):
        return None
    return "-".join(match.groups())


def normalize_euct(value) -> str | None:
    if not value:
        return None
    match = _EUCT_RE.search(str(value))
    return "-".join(match.groups()) if match else None


def normalize_ppr(value) -> str | None:
    if not value:
        return None
    match = re.fullmatch(r"\s*(PPR\d+)\s*", str(value), re.I)
    return match.group(1).upper() if match else None


def normalize_openalex(value) -> str | None:
    if not value:
        return None
    match = re.search(r"(W\d+)$", str(value).strip(), re.I)
    return match.group(1).upper() if match else None


_NORMALIZERS = {
    "doi": normalize_doi,
    "pmid": normalize_pmid,
    "pmcid": normalize_pmcid,
    "nct": normalize_nct,
    "isrctn": normalize_isrctn,
    "eudract": normalize_eudract,
    "euct": normalize_euct,
    "ppr": normalize_ppr,
    "openalex": normalize_openalex,
}


def normalize(scheme: str, value) -> str | None:
    """Normalise ``value`` for ``scheme``; return None when it is not a valid identifier."""
    try:
        return _NORMALIZERS[scheme](value)
    except KeyError:
        raise ValueError(f"unknown identifier scheme {scheme!r}; expected one of {', '.join(SCHEMES)}") from None


def find_trial_ids(text: str | None) -> list[tuple[str, str]]:
    """Trial registration numbers mentioned in free text (abstracts, secondary ids)."""
    if not text:
        return []
    found: list[tuple[str, str]] = []
    lowered = text.lower()  # cheap pre-checks: most abstracts name no registration at all
    if "nct" in lowered and _NCT_HINT.search(lowered):
        for m in _NCT_RE.finditer(text):
            found.append(("nct", f"NCT{int(m.group(1)):08d}"))
    if "rctn" in lowered:  # (not "isrctn": a dotted or long s folds to i or s in the expression)
        for m in _ISRCTN_RE.finditer(text):
            found.append(("isrctn", f"ISRCTN{m.group(1)}"))
    if _EU_NUMBER_HINT.search(text):
        euct = list(_EUCT_RE.finditer(text))
        found.extend(("euct", "-".join(m.groups())) for m in euct)
        euct_spans = [m.span() for m in euct]
        for m in _EUDRACT_RE.finditer(text):
            if not any(s <= m.start() < e for s, e in euct_spans):
                found.append(("eudract", "-".join(m.groups())))
    return list(dict.fromkeys(found))


def find_dois(text: str | None) -> list[str]:
    if not text:
        return []
    return list(dict.fromkeys(d for d in (normalize_doi(m.group(0)) for m in _DOI_RE.finditer(text)) if d))


def url_for(scheme: str, value: str) -> str | None:
    """The canonical public landing page of an identifier."""
    return {
        "doi": f"https://doi.org/{value}",
        "pmid": f"https://pubmed.ncbi.nlm.nih.gov/{value}/",
        "pmcid": f"https://www.ncbi.nlm.nih.gov/pmc/articles/{value}/",
        "nct": f"https://clinicaltrials.gov/study/{value}",
        "isrctn": f"https://www.isrctn.com/{value}",
        "eudract": f"https://www.clinicaltrialsregister.eu/ctr-search/search?query={value}",
        "euct": f"https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={value}",
        "ppr": f"https://europepmc.org/article/PPR/{value}",
        "openalex": f"https://openalex.org/{value}",
    }.get(scheme)
