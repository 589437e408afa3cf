"""Exports for reference managers and analysis: RIS, BibTeX, CSV, JSON and CSL-JSON.

:func:`render` formats works as loaded by :func:`crawler.store.load_export_works` (one dict per
current work, best source's fields, structured authors). Types follow what Zotero, EndNote,
Rayyan and Covidence import:

============================  =====  ===============  ===================
litmon ``record_type``        RIS    BibTeX           CSL-JSON
============================  =====  ===============  ===================
article, notice               JOUR   @article         article-journal
preprint                      UNPB   @unpublished     article (a preprint)
trial_registration            DATA   @misc            dataset
news                          NEWS   @misc            article-newspaper
other                         GEN    @misc            document
============================  =====  ===============  ===================
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from crawler.records import Author

FORMATS = ("ris", "bibtex", "csv", "json", "csljson")
#: File extension of each format (for ``-o`` defaults and messages).
EXTENSIONS = {"ris": "ris", "bibtex": "bib", "csv": "csv", "json": "json", "csljson": "json"}

RIS_TYPES = {"article": "JOUR", "notice": "JOUR", "preprint": "UNPB", "trial_registration": "DATA", "news": "NEWS"}
BIBTEX_TYPES = {"article": "article", "notice": "article", "preprint": "unpublished"}
CSL_TYPES = {
    "article": "article-journal",
    "notice": "article-journal",
    "preprint": "article",
    "trial_registration": "dataset",
    "news": "article-newspaper",
}

#: CSV/JSON columns, in order.
COLUMNS = (
    "work_id",
    "record_type",
    "title",
    "authors",
    "journal",
    "journal_abbreviation",
    "year",
    "published_on",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "pmcid",
    "trial_id",
    "url",
    "abstract",
    "keywords",
    "mesh_terms",
    "tags",
    "relevance",
    "trial_status",
    "is_retracted",
    "sources",
    "first_seen_at",
)


def render(works: Iterable[dict[str, Any]], fmt: str) -> str:
    """All ``works`` in format ``fmt`` (one of :data:`FORMATS`)."""
    works = list(works)
    if fmt == "ris":
        return "".join(render_ris(w) for w in works)
    if fmt == "bibtex":
        keys: set[str] = set()
        return "\n".join(render_bibtex(w, keys) for w in works)
    if fmt == "csv":
        return render_csv(works)
    if fmt == "json":
        return json.dumps([plain_record(w) for w in works], ensure_ascii=False, indent=2) + "\n"
    if fmt == "csljson":
        return json.dumps([csl_item(w) for w in works], ensure_ascii=False, indent=2) + "\n"
    raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")


# --------------------------------------------------------------------------- shared pieces


def authors_of(work: dict[str, Any]) -> list[Author]:
    return [Author.from_dict(a) for a in work.get("authors") or []]


def year_of(work: dict[str, Any]) -> str | None:
    date = work.get("published_on") or work.get("entered_on") or ""
    return date[:4] if re.match(r"\d{4}", date) else None


def date_parts(date: str | None) -> list[int]:
    """``"2024-03-05"`` → ``[2024, 3, 5]``; partial dates give fewer parts."""
    return [int(p) for p in re.findall(r"\d+", date or "")[:3]] if date and re.match(r"\d{4}", date) else []


def page_range(pages: str | None) -> tuple[str | None, str | None]:
    """``"1298-1309"`` → (1298, 1309); ``"123-9"`` → (123, 129) (MEDLINE shortens the last page); ``"e123"`` → (e123, None)."""
    if not pages or not pages.strip():
        return None, None
    first, _, last = (p.strip() for p in re.sub(r"\s*[-–—]+\s*", "-", pages.strip()).partition("-"))
    if last and first.isdigit() and last.isdigit() and len(last) < len(first):
        last = first[: len(first) - len(last)] + last
    return first or None, last or None


def _lines(value: str | None) -> str:
    return " ".join((value or "").split())


def title_of(work: dict[str, Any]) -> str:
    """The title without the period MEDLINE ends titles with (reference managers add their own);
    "…", "?" and "!" stay, as does an abbreviation's period ("… vs. placebo" is rare at the end)."""
    title = _lines(work.get("title"))
    return title[:-1] if title.endswith(".") and not title.endswith("..") else title


def plain_record(work: dict[str, Any]) -> dict[str, Any]:
    """The JSON export's object: the CSV columns, with structured authors and lists kept as lists."""
    record = {name: work.get(name) for name in COLUMNS}
    record["authors"] = [a.to_dict() for a in authors_of(work)]
    record["year"] = year_of(work)
    return record


# --------------------------------------------------------------------------- RIS


#: RIS tags written from one text field of the work (in this order, after the dates) ...
_RIS_TEXT_FIELDS = (("T2", "journal"), ("J2", "journal_abbreviation"), ("VL", "volume"), ("IS", "issue"))
#: ... and from one identifier (after the pages).
_RIS_ID_FIELDS = (("DO", "doi"), ("AN", "pmid"), ("C2", "pmcid"), ("UR", "url"))


def render_ris(work: dict[str, Any]) -> str:
    """One RIS record; a tag whose value is empty is left out."""
    first, last = page_range(work.get("pages"))
    out: list[tuple[str, str | None]] = [("TY", RIS_TYPES.get(work.get("record_type") or "", "GEN")), ("TI", title_of(work))]
    out += [("AU", a.inverted) for a in authors_of(work)]
    out += [("PY", year_of(work)), ("DA", ris_date(work.get("published_on")))]
    out += [(tag, _lines(work.get(key))) for tag, key in _RIS_TEXT_FIELDS]
    out += [("SP", first), ("EP", last)]
    out += [(tag, work.get(key)) for tag, key in _RIS_ID_FIELDS]
    out.append(("AB", _lines(work.get("abstract"))))
    out += [("KW", _lines(k)) for k in keywords_of(work)]
    out += [("LA", work.get("language")), ("N1", identifier_note(work)), ("DB", "litmon"), ("ID", f"litmon:{work['work_id']}")]
    return "".join(f"{tag}  - {value}\r\n" for tag, value in out if value) + "ER  - \r\n\r\n"


def ris_date(date: str | None) -> str:
    """RIS ``DA``: ``2024/03/05``, ``2024/03/`` or ``2024/`` ("" when there is no date)."""
    parts = date_parts(date)
    if not parts:
        return ""
    return "/".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts)) + ("/" if len(parts) < 3 else "")


def keywords_of(work: dict[str, Any]) -> list[str]:
    """Keywords, MeSH headings and litmon's tags (``litmon:rct``), each once."""
    values = list(work.get("keywords") or []) + list(work.get("mesh_terms") or [])
    values += [f"litmon:{t}" for t in work.get("tags") or []]
    return list(dict.fromkeys(v for v in values if v))


def identifier_note(work: dict[str, Any]) -> str:
    parts = [
        f"{label}: {work[key]}" for label, key in (("PMID", "pmid"), ("PMCID", "pmcid"), ("Trial", "trial_id")) if work.get(key)
    ]
    return "; ".join(parts)


# --------------------------------------------------------------------------- BibTeX

_BIBTEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


_BIBTEX_TABLE = str.maketrans(_BIBTEX_SPECIALS)


def bibtex_escape(text: str | None) -> str:
    return _lines(text).translate(_BIBTEX_TABLE)


def bibtex_key(work: dict[str, Any], taken: set[str]) -> str:
    """``anand2024ketamine`` (first author's family name, year, first title word); ``a``, ``b``… when taken."""
    people = authors_of(work)
    name = people[0].family or people[0].collective or "" if people else ""
    word = next((w for w in re.findall(r"[^\W\d_]{3,}", work.get("title") or "") if w.lower() not in {"the", "and", "for"}), "")
    raw = f"{name.split()[-1] if name else 'litmon'}{year_of(work) or ''}{word}"
    key = (
        re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower())
        or f"work{work['work_id']}"
    )
    unique, suffix = key, 0
    while unique in taken:
        suffix += 1
        unique = f"{key}{chr(ord('a') + suffix - 1) if suffix <= 26 else suffix}"
    taken.add(unique)
    return unique


def render_bibtex(work: dict[str, Any], taken: set[str] | None = None) -> str:
    """One BibTeX entry; its key is made unique among ``taken`` (which it joins)."""
    kind = BIBTEX_TYPES.get(work.get("record_type") or "", "misc")
    fields: list[tuple[str, str]] = [("title", "{" + bibtex_escape(title_of(work)) + "}")]
    fields += _bibtex_authors(work)
    fields += _bibtex_publication(work, kind)
    fields += _bibtex_identifiers(work, kind)
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{bibtex_key(work, taken if taken is not None else set())},\n{body}\n}}\n"


def _bibtex_authors(work: dict[str, Any]) -> list[tuple[str, str]]:
    people = authors_of(work)
    if not people:
        return []
    names = [("{" + bibtex_escape(a.collective) + "}") if a.collective else bibtex_escape(a.inverted) for a in people]
    return [("author", " and ".join(n for n in names if n))]


def _bibtex_publication(work: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """Where and when: journal, year, month and date, volume, number, pages."""
    fields: list[tuple[str, str]] = []
    journal = work.get("journal")
    if journal:
        fields.append(({"article": "journal", "unpublished": "howpublished"}.get(kind, "howpublished"), bibtex_escape(journal)))
    if work.get("journal_abbreviation"):
        fields.append(("shortjournal", bibtex_escape(work["journal_abbreviation"])))
    year = year_of(work)
    if year:
        fields.append(("year", year))
    parts = date_parts(work.get("published_on"))
    if len(parts) >= 2:
        fields.append(("month", str(parts[1])))
    if len(parts) == 3:
        fields.append(("date", f"{parts[0]:04d}-{parts[1]:02d}-{parts[2]:02d}"))
    fields += [(name, bibtex_escape(work[key])) for name, key in (("volume", "volume"), ("number", "issue")) if work.get(key)]
    first, last = page_range(work.get("pages"))
    if first:
        fields.append(("pages", f"{bibtex_escape(first)}--{bibtex_escape(last)}" if last else bibtex_escape(first)))
    return fields


def _bibtex_identifiers(work: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """What finds and describes the work: identifiers and URL, abstract, keywords, a note."""
    fields = [(name, bibtex_escape(work[name])) for name in ("doi", "pmid", "pmcid", "url") if work.get(name)]
    if work.get("abstract"):
        fields.append(("abstract", bibtex_escape(work["abstract"])))
    keywords = keywords_of(work)
    if keywords:
        fields.append(("keywords", bibtex_escape(", ".join(keywords))))
    note = identifier_note(work) or ("Preprint" if kind == "unpublished" else "")
    if note:
        fields.append(("note", bibtex_escape(note)))
    return fields


# --------------------------------------------------------------------------- CSV


def render_csv(works: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for work in works:
        row = plain_record(work)
        row["authors"] = "; ".join(a.inverted for a in authors_of(work))
        for name in ("keywords", "mesh_terms", "tags", "sources"):
            if isinstance(row.get(name), list):
                row[name] = "; ".join(row[name])
        writer.writerow(["" if row.get(c) is None else row[c] for c in COLUMNS])
    return buffer.getvalue()


# --------------------------------------------------------------------------- CSL-JSON


def csl_item(work: dict[str, Any]) -> dict[str, Any]:
    """One CSL-JSON item (the citeproc input format Zotero, Pandoc and Mendeley read)."""
    kind = work.get("record_type") or ""
    item: dict[str, Any] = {
        "id": f"litmon:{work['work_id']}",
        "type": CSL_TYPES.get(kind, "document"),
        "title": title_of(work),
    }
    people = []
    for a in authors_of(work):
        if a.collective:
            people.append({"literal": a.collective})
        elif a.family:
            people.append({k: v for k, v in (("family", a.family), ("given", a.given or a.initials), ("suffix", a.suffix)) if v})
    if people:
        item["author"] = people
    parts = date_parts(work.get("published_on"))
    if parts:
        item["issued"] = {"date-parts": [parts]}
    mapping = {
        "container-title": work.get("journal"),
        "container-title-short": work.get("journal_abbreviation"),
        "volume": work.get("volume"),
        "issue": work.get("issue"),
        "page": work.get("pages"),
        "DOI": work.get("doi"),
        "PMID": work.get("pmid"),
        "PMCID": work.get("pmcid"),
        "URL": work.get("url"),
        "abstract": _lines(work.get("abstract")) or None,
        "language": work.get("language"),
    }
    if kind == "trial_registration":
        mapping["number"] = work.get("trial_id")
        mapping["publisher"] = mapping.pop("container-title")
    if kind == "preprint":
        mapping["publisher"] = mapping.pop("container-title")
        mapping["genre"] = "Preprint"
    keywords = keywords_of(work)
    if keywords:
        mapping["keyword"] = ", ".join(keywords)
    note = identifier_note(work)
    if note:
        mapping["note"] = note
    item.update({k: v for k, v in mapping.items() if v})
    return item
