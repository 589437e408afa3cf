"""PubMed articles read the plain way: one ElementPath look-up (find, findall, findtext) per field.

This is how litmon read a ``<PubmedArticle>`` before its single-pass parser
(``crawler.sources.pubmed.parse_article``), kept as the reference that parser must agree with, field
by field, on every fixture and on generated variants (tests/test_pubmed.py). The ElementPath forms
say exactly which elements count: ``find`` the first match, ``findall`` every match in document
order, ``findtext`` the first match's own text ("" when empty, None when absent).
"""

from __future__ import annotations

import re

from crawler import abstracts
from crawler import identifiers as ids
from crawler.records import Record, make_author
from crawler.sources.parsing import earliest_date, parse_date
from crawler.sources.pubmed import NOTICE_TYPES, REF_TYPES
from crawler.xmlsafe import text_of


def reference_record(article, source: str = "pubmed") -> Record:
    """The Record of a ``<PubmedArticle>`` element."""
    citation = article.find("MedlineCitation")
    art = citation.find("Article")
    pmid = citation.findtext("PMID", "").strip()
    title = text_of(art.find("ArticleTitle")) or text_of(art.find("VernacularTitle"))
    bracketed = re.fullmatch(r"\[(.+)\]\.?", title)
    record = Record(
        source=source,
        source_id=pmid,
        record_type="article",
        title=bracketed.group(1) if bracketed else title,
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
    )
    if not record.title:
        record.missing.append("title")
    record.add_id("pmid", pmid)
    for aid in article.findall("PubmedData/ArticleIdList/ArticleId"):
        scheme = {"doi": "doi", "pmc": "pmcid"}.get(aid.get("IdType"))
        if scheme:
            record.add_id(scheme, aid.text)
    for loc in art.findall("ELocationID"):
        if loc.get("EIdType") == "doi" and loc.get("ValidYN", "Y") == "Y":
            record.add_id("doi", loc.text)
    record.abstract_sections = _sections(art)
    record.abstract = abstracts.flatten(record.abstract_sections)
    record.authors, record.structured_authors = _authors(art)
    record.journal = text_of(art.find("Journal/Title")) or None
    record.language = art.findtext("Language")
    record.publication_types = [text_of(p) for p in art.findall("PublicationTypeList/PublicationType")]
    record.mesh_terms = [text_of(d) for d in citation.findall("MeshHeadingList/MeshHeading/DescriptorName")]
    record.keywords = [text_of(k) for k in citation.findall("KeywordList/Keyword") if text_of(k)]
    record.published_on = earliest_date(_date(art.find("Journal/JournalIssue/PubDate")), _date(art.find("ArticleDate")))
    record.entered_on = _history_date(article, "entrez") or _history_date(article, "pubmed")
    record.updated_on = _date(citation.find("DateRevised"))
    types = {t.lower() for t in record.publication_types}
    if types & NOTICE_TYPES:
        record.record_type = "notice"
    elif "preprint" in types:
        record.record_type = "preprint"
    _add_links(record, art, citation)
    record.extra.update(
        {
            "status": citation.get("Status"),
            "journal_abbreviation": art.findtext("Journal/ISOAbbreviation"),
            "issn": art.findtext("Journal/ISSN"),
            "volume": art.findtext("Journal/JournalIssue/Volume"),
            "issue": art.findtext("Journal/JournalIssue/Issue"),
            "pages": art.findtext("Pagination/MedlinePgn"),
            "publication_status": article.findtext("PubmedData/PublicationStatus"),
            "pmid_version": citation.find("PMID").get("Version"),
        }
    )
    return record


def _sections(art) -> list[dict]:
    found = []
    for node in art.findall("Abstract/AbstractText"):
        category = node.get("NlmCategory")
        found.append(abstracts.section(node.get("Label"), text_of(node), None if category == "UNASSIGNED" else category))
    return [s for s in found if s]


def _authors(art):
    names, people = [], []
    for author in art.iterfind("AuthorList/Author"):
        if author.get("ValidYN", "Y") == "N":
            continue
        first = {}
        for child in author:
            if child.tag in ("LastName", "ForeName", "Initials", "CollectiveName", "Suffix") and child.tag not in first:
                first[child.tag] = text_of(child)
        last, given, collective = first.get("LastName", ""), first.get("ForeName", ""), first.get("CollectiveName", "")
        if collective:
            names.append(collective)
        elif last:
            names.append(f"{last} {given or first.get('Initials', '')}".strip())
        person = make_author(last, given, first.get("Initials", ""), collective, first.get("Suffix", ""))
        if person:
            people.append(person)
    return names, people


def _date(node) -> str | None:
    if node is None:
        return None
    medline = node.findtext("MedlineDate")
    if medline:
        return parse_date(medline)
    return parse_date((node.findtext("Year"), node.findtext("Month") or node.findtext("Season"), node.findtext("Day")))


def _history_date(article, status: str) -> str | None:
    for node in article.findall("PubmedData/History/PubMedPubDate"):
        if node.get("PubStatus") == status:
            return _date(node)
    return None


def _add_links(record: Record, art, citation) -> None:
    """Trial numbers (data banks, then the abstract), then CommentsCorrections (unresolved ones to ``extra``)."""
    for bank in art.findall("DataBankList/DataBank"):
        for number in bank.findall("AccessionNumberList/AccessionNumber"):
            for scheme, value in ids.find_trial_ids(number.text):
                record.add_link("registered_as", scheme, value, note=f"DataBankList {bank.findtext('DataBankName')}")
    for scheme, value in ids.find_trial_ids(record.abstract):
        record.add_link("registered_as", scheme, value, note="abstract")
    unresolved = []
    for cc in citation.findall("CommentsCorrectionsList/CommentsCorrections"):
        relation = REF_TYPES.get(cc.get("RefType", ""))
        if not relation:
            continue
        if cc.findtext("PMID"):
            record.add_link(relation, "pmid", cc.findtext("PMID"), note=text_of(cc.find("RefSource")) or None)
        else:
            unresolved.append({"relation": relation, "ref_source": text_of(cc.find("RefSource"))})
    if unresolved:
        record.extra["unresolved_comments_corrections"] = unresolved
