"""What a reader gets per digest (issue #13): one item per study, bounded digests, citations, RIS, list headers.

Records come from the real parsers over wire-format fixtures where the point is a source's fields
(PubMed efetch XML, Europe PMC core JSON); the selection tests build records directly.
"""

from __future__ import annotations

import datetime as dt
import email
import json
from email import policy
from pathlib import Path

from crawler import ingest, store
from crawler.digest import run_digest
from crawler.digest.render import HTML_MAX_BYTES
from crawler.records import Record, make_author
from crawler.sources import europepmc, pubmed
from tests.conftest import rows
from tests.helpers.classify_corpus import article, shipped_vocabulary
from tests.helpers.smtp import email_section

FIXTURES = Path(__file__).parent / "fixtures"
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
SAVED = "2026-11-23 06:00:00"


def all_items(digest):
    return [item for key, _, items in digest.sections if key != "health" for item in items]


def ketamine_trial(n: int, entered_on: str = "2026-11-20", title: str | None = None) -> Record:
    return article(
        str(50000 + n),
        title or f"Ketamine versus midazolam in treatment-resistant depression: randomized trial number {n}",
        f"We randomly assigned {40 + n} adults with treatment-resistant depression to ketamine or midazolam. "
        "Response was higher with ketamine at 24 hours.",
        entered_on,
        authors=["Osei Hélène", "Chen Wei", "Castillo Rosa", "Nowak Ewa"],
        structured_authors=[
            make_author(f, g) for f, g in (("Osei", "Hélène"), ("Chen", "Wei"), ("Castillo", "Rosa"), ("Nowak", "Ewa"))
        ],
        journal="Journal of affective disorders",
    )


# --------------------------------------------------------------------------- one item per study


def test_a_registration_and_its_results_publication_are_one_item(make_config, db):
    registration = Record(
        source="clinicaltrials",
        source_id="NCT05123456",
        record_type="trial_registration",
        title="Ketamine for treatment-resistant depression in older adults",
        abstract="A randomized trial of ketamine infusions in older adults with treatment-resistant depression.",
        entered_on="2026-11-19",
        published_on="2026-11-19",
    )
    registration.add_id("nct", "NCT05123456")
    registration.add_id("euct", "2023-501234-12-00")  # the same trial in EU CTIS: the NCT number is named
    publication = ketamine_trial(1)
    publication.add_link("registered_as", "nct", "NCT05123456")
    ingest.save_batch(db, [registration, publication], now=SAVED)

    digest = run_digest(make_config(shipped_vocabulary()), db, now=NOW).digest

    items = all_items(digest)
    assert [i.title for i in items] == [publication.title]
    assert items[0].notes[0] == "Results of NCT05123456"
    assert "  > Results of NCT05123456" in digest.text
    assert "Clinical trials" not in digest.text  # the registration is not listed a second time


# --------------------------------------------------------------------------- bounded digests


def test_notices_only_for_items_sent_or_new_and_in_their_own_section(make_config, db):
    config = make_config(shipped_vocabulary())
    sent = ketamine_trial(1, entered_on="2026-11-10")
    old = ketamine_trial(2, entered_on="2009-03-01", title="Ketamine in refractory depression: an old trial")
    store.save_records(db, [sent, old], now="2026-11-10 06:00:00")  # a backfill: the old paper is never sent
    first = run_digest(config, db, now=dt.datetime(2026, 11, 16, 7, tzinfo=dt.UTC)).digest
    assert [i.title for i in all_items(first)] == [sent.title]

    notices = []
    for n, (relation, target) in enumerate((("retraction_of", sent), ("correction_for", old))):
        notice = Record(
            source="crossref",
            source_id=f"10.5555/notice.{n}",
            record_type="notice",
            title=f"Notice {n}",
            entered_on="2026-11-21",
            published_on="2026-11-21",
        )
        notice.add_id("doi", f"10.5555/notice.{n}")
        notice.add_link(relation, "pmid", target.first_id("pmid"))
        notices.append(notice)
    orphan = Record(
        source="crossref",
        source_id="10.5555/notice.9",
        record_type="notice",
        title="Correction to: a paper we never stored",
        entered_on="2026-11-21",
        published_on="2026-11-21",
    )
    orphan.add_id("doi", "10.5555/notice.9")
    orphan.add_link("correction_for", "doi", "10.5555/never.stored")
    notices.append(orphan)
    ingest.save_batch(db, notices, now=SAVED)

    digest = run_digest(config, db, now=NOW).digest

    by_section = {key: [i.title for i in items] for key, _, items in digest.sections if key != "health"}
    # the retraction of what the reader was sent leads; the correction of a 2009 paper never sent is not news
    assert by_section == {"notices": [sent.title]}
    assert digest.sections[0][1] == "Retractions and corrections of items you were sent"
    assert "  !! concerns an item sent to you on " in digest.text
    assert "old trial" not in digest.text and "old trial" not in digest.html
    assert "never stored" not in digest.text  # a notice about a work nobody was sent is not listed either
    stored = rows(db, "SELECT COUNT(*) AS n FROM records WHERE source_id = '10.5555/notice.1'")
    assert stored == [{"n": 1}]  # it stays queryable


def test_large_digest_is_capped_per_section_and_its_html_stays_small(make_config, db, tmp_path):
    config = make_config(shipped_vocabulary())
    store.save_records(db, [ketamine_trial(n) for n in range(300)], now=SAVED)

    result = run_digest(config, db, now=NOW)
    digest = result.digest

    clinical = next(items for key, _, items in digest.sections if key == "clinical")
    assert len(clinical) + len(next(i for k, _, i in digest.sections if k == "highlights")) == 300
    assert digest.shown["clinical"] == 15
    assert digest.text.count("* Ketamine versus midazolam") == 15 + 3  # 3 highlights, 15 shown
    more = len(clinical) - 15
    assert f"... and {more} more: the full list is in the attached litmon-digest.ris" in digest.text
    assert f"… and {more} more" in digest.html
    assert len(digest.html.encode("utf-8")) < 100_000
    # every item is recorded as sent, and every item is in the attachment
    assert rows(db, "SELECT COUNT(*) AS n FROM digest_items") == [{"n": 300}]
    eml = Path(result.deliveries[0].path).read_bytes()
    message = email.message_from_bytes(eml, policy=policy.default)
    ris = next(part for part in message.iter_attachments()).get_content()
    ris = ris.decode() if isinstance(ris, bytes) else ris
    assert ris.count("ER  - ") == 300


def test_html_stays_under_the_limit_even_with_a_large_cap(make_config, db):
    config = make_config(shipped_vocabulary() + "\n[digest]\nsection_cap = 400\n")
    long = " ".join(["with a very long descriptive title about intravenous ketamine"] * 4)
    store.save_records(db, [ketamine_trial(n, title=f"Ketamine trial {n} {long}") for n in range(400)], now=SAVED)
    digest = run_digest(config, db, now=NOW).digest
    assert len(digest.html.encode("utf-8")) <= HTML_MAX_BYTES
    assert 0 < digest.shown["clinical"] < 400 and "more: the full list is in the attached" in digest.text


def test_sections_come_in_reader_order():
    from crawler.config import DIGEST_SECTIONS

    assert DIGEST_SECTIONS[:9] == (
        "highlights",
        "notices",
        "clinical",
        "reviews",
        "trials",
        "preprints",
        "preclinical",
        "news",
        "uncertain",
    )


# --------------------------------------------------------------------------- citations


def test_citation_details_from_pubmed(make_config, db):
    config = make_config("[digest]\nfirst_digest_days = 3660\n" + shipped_vocabulary())
    records = pubmed.parse_efetch((FIXTURES / "pubmed" / "efetch_batch1.xml").read_bytes())
    store.save_records(db, records, now=SAVED)
    digest = run_digest(config, db, now=NOW).digest
    item = next(i for i in all_items(digest) if i.title.startswith("Intravenous"))
    assert item.journal == "JAMA Psychiatry"  # the ISO abbreviation, not the catalogue title
    assert item.details == "2024;81(7):655-664"
    assert item.free_full_text == "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC11100001/"
    assert "JAMA Psychiatry 2024;81(7):655-664, " in digest.text
    assert "  Free full text <https://www.ncbi.nlm.nih.gov/pmc/articles/PMC11100001/>" in digest.text
    assert item.authors == "Anand A, Mathew SJ, ELEKT-D Study Group"  # PubMed LastName + Initials, a group kept


def test_authors_are_shown_the_same_way_whatever_the_source(make_config, db):
    # the same people as three sources write them: "Last First" (PubMed style), "First Last" (feeds), "Last, F."
    pubmed_style = Record(source="pubmed", source_id="1", record_type="article", title="Ketamine A", entered_on="2026-11-20")
    pubmed_style.structured_authors = pubmed.parse_efetch(
        b"""<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article><ArticleTitle>t</ArticleTitle>
        <AuthorList><Author><LastName>Osei</LastName><ForeName>H\xc3\xa9l\xc3\xa8ne</ForeName><Initials>H</Initials></Author>
        <Author><LastName>Chen</LastName><ForeName>Wei</ForeName><Initials>W</Initials></Author>
        <Author><LastName>Castillo</LastName><ForeName>Rosa</ForeName><Initials>R</Initials></Author>
        <Author><LastName>Nowak</LastName><ForeName>Ewa</ForeName><Initials>E</Initials></Author></AuthorList>
        </Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"""
    )[0].structured_authors
    feed_style = Record(
        source="feed:jama",
        source_id="2",
        record_type="article",
        title="Ketamine B",
        entered_on="2026-11-20",
        authors=["Hélène Osei", "Wei Chen", "Rosa Castillo", "Ewa Nowak"],
    )
    comma_style = Record(
        source="crossref",
        source_id="10.5555/3",
        record_type="article",
        title="Ketamine C",
        entered_on="2026-11-20",
        authors=["Osei, H.", "Chen, W.", "Castillo, R.", "Nowak, E."],
    )
    for n, record in enumerate((pubmed_style, feed_style, comma_style)):
        record.abstract = f"We randomly assigned {30 + n} adults with depression to ketamine; depression improved."
    store.save_records(db, [pubmed_style, feed_style, comma_style], now=SAVED)
    digest = run_digest(make_config(shipped_vocabulary()), db, now=NOW).digest
    assert {i.title: i.authors for i in all_items(digest)} == {
        f"Ketamine {x}": "Osei H, Chen W, Castillo R et al." for x in "ABC"
    }
    assert "  Osei H, Chen W, Castillo R et al." in digest.text


def test_free_full_text_from_europe_pmc_open_access_location(make_config, db):
    item = json.loads((FIXTURES / "europepmc" / "core_page1.json").read_text())["resultList"]["result"][0]
    item = {
        **item,
        "isOpenAccess": "Y",
        "fullTextUrlList": {
            "fullTextUrl": [
                {
                    "availability": "Subscription required",
                    "availabilityCode": "S",
                    "documentStyle": "doi",
                    "site": "DOI",
                    "url": "https://doi.org/10.1/x",
                },
                {
                    "availability": "Open access",
                    "availabilityCode": "OA",
                    "documentStyle": "pdf",
                    "site": "Europe_PMC",
                    "url": "https://europepmc.org/articles/x.pdf",
                },
                {
                    "availability": "Open access",
                    "availabilityCode": "OA",
                    "documentStyle": "html",
                    "site": "Europe_PMC",
                    "url": "https://europepmc.org/article/MED/x",
                },
            ]
        },
    }
    record = europepmc.parse_result(item)
    assert record.extra["open_access"] is True
    assert record.extra["free_full_text_url"] == "https://europepmc.org/article/MED/x"
    closed = europepmc.parse_search((FIXTURES / "europepmc" / "core_page1.json").read_bytes())[0]
    assert "free_full_text_url" not in closed.extra


def test_tags_show_their_labels_from_the_config(make_config, db):
    config = make_config(shipped_vocabulary())
    store.save_records(
        db,
        [
            article(
                "9",
                "Esketamine nasal spray versus quetiapine for treatment-resistant depression",
                "We randomly assigned 676 patients with treatment-resistant depression to esketamine nasal spray or quetiapine.",
            )
        ],
        now=SAVED,
    )
    digest = run_digest(config, db, now=NOW).digest
    assert "Tags: RCT, Intranasal esketamine, TRD" in digest.text
    assert '">Intranasal esketamine</span>' in digest.html and "intranasal_esketamine" not in digest.html


# --------------------------------------------------------------------------- the e-mail itself


def test_sent_digest_has_list_headers_and_the_items_as_ris(make_config, db, smtp_server):  # noqa: F811
    handler, port = smtp_server()
    config = make_config(email_section(port, sender="litmon <litmon@example.org>") + shipped_vocabulary())
    store.save_records(db, [ketamine_trial(1), ketamine_trial(2)], now=SAVED)

    result = run_digest(config, db, now=NOW)

    assert [d.status for d in result.deliveries] == ["sent"]
    message = email.message_from_bytes(handler.messages[0].content, policy=policy.default)
    assert message["List-Id"] == "Literature monitor <literature-monitor.litmon.example.org>"
    assert message["List-Unsubscribe"].strip() == "<mailto:tester@example.org?subject=unsubscribe%20literature-monitor>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "litmon-digest.ris"
    assert attachment.get_content_type() == "application/x-research-info-systems"
    ris = attachment.get_content()
    ris = ris.decode() if isinstance(ris, bytes) else ris
    entries = [e for e in ris.split("ER  - ") if e.strip()]
    assert len(entries) == 2
    first = entries[0]
    assert "TY  - JOUR" in first and "AU  - Osei, Hélène" in first and "AU  - Nowak, Ewa" in first
    assert "TI  - Ketamine versus midazolam" in first and "T2  - Journal of affective disorders" in first
    assert "AN  - 5000" in first and "KW  - litmon:rct" in first  # as `litmon export --format ris` writes it
