"""Works a source brings late are not news because litmon saw them late (#16).

A source's backfill (its first successful crawl after failing, a newly added source or feed, a re-read
of an old window) stores works that entered the source long ago: the next digest must not list them as
new. It lists what entered the sources since the reader's digests began (or since the source was added),
and says how many older works were caught up, which stay queryable.
"""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

from werkzeug import Response

from crawler import clock, store
from crawler.digest import run_digest
from tests.conftest import fixture_bytes, rows
from tests.helpers.cli import litmon, litmon_env
from tests.helpers.ncbi import esearch_body
from tests.helpers.ops import pubmed_section, write_config
from tests.helpers.sources import STUDIES

OLD_YEARS = range(2004, 2016)  # twelve trials registered 2004-2015


def study(nct: str, title: str, first_posted: str) -> dict:
    """One ClinicalTrials.gov v2 study in the API's wire format (invented trials)."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": title},
            "statusModule": {
                "overallStatus": "COMPLETED",
                "studyFirstPostDateStruct": {"date": first_posted, "type": "ACTUAL"},
                "lastUpdatePostDateStruct": {"date": first_posted, "type": "ACTUAL"},
            },
            "conditionsModule": {"conditions": ["Treatment Resistant Depression"]},
            "designModule": {"studyType": "INTERVENTIONAL"},
            "armsInterventionsModule": {"interventions": [{"type": "DRUG", "name": "Ketamine"}]},
        },
        "hasResults": False,
    }


OLD_TOPICS = [
    "infusion dose finding",
    "electroconvulsive therapy anaesthesia",
    "suicidal ideation in the emergency department",
    "bipolar depression add-on",
    "oral maintenance after response",
    "adolescents with refractory depression",
    "older adults with late-life depression",
    "post-traumatic stress disorder",
    "repeated infusions and relapse",
    "intramuscular versus intravenous routes",
    "cognitive effects",
    "palliative care patients",
]


def old_studies() -> list[dict]:
    return [
        study(f"NCT00{year}{i:02d}", f"Ketamine for depression: {topic} ({year})", f"{year}-03-1{i % 9}")
        for i, (year, topic) in enumerate(zip(OLD_YEARS, OLD_TOPICS, strict=True))
    ]


NEW_STUDY = study("NCT07012345", "Esketamine nasal spray versus placebo in treatment-resistant depression", "2026-11-20")


def registry_section(httpserver) -> str:
    return f"""
[sources.clinicaltrials]
enabled = true
base_url = "{httpserver.url_for("/api/v2/")}"
conditions = "depression"
interventions = "ketamine OR esketamine"
min_interval = 0
"""


def serve_registry(httpserver, state: dict) -> None:
    def handler(request):
        if state["down"]:
            return Response("<html><body>503 Service Unavailable</body></html>", status=503, content_type="text/html")
        return Response(json.dumps({"studies": old_studies() + [NEW_STUDY]}), content_type="application/json")

    httpserver.expect_request(STUDIES, method="GET").respond_with_handler(handler)


def digest_text(outbox: Path, number: int) -> tuple[str, str, str]:
    eml = outbox / f"litmon-digest-{number:05d}.eml"
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    return message["Subject"], message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_a_recovered_backfill_lists_only_new_trials_and_counts_the_caught_up(tmp_path, httpserver):
    state = {"down": True}
    serve_registry(httpserver, state)
    config = write_config(tmp_path, registry_section(httpserver))
    first = litmon("--config", config, "run", cwd=tmp_path, env=litmon_env(LITMON_NOW="2026-11-16T09:00:00Z"))
    assert first.returncode == 1, first.stderr  # a source that never worked: a setup problem
    assert "[clinicaltrials] failed" in first.stderr

    state["down"] = False  # a week later the registry answers: its backfill brings 2004-2015 and this week
    second = litmon("--config", config, "run", cwd=tmp_path, env=litmon_env(LITMON_NOW="2026-11-23T09:00:00Z"))
    assert second.returncode == 0, second.stderr

    subject, text, html = digest_text(tmp_path / "outbox", 2)
    assert "1 new" in subject, subject
    assert "Esketamine nasal spray versus placebo in treatment-resistant depression" in text
    for topic in OLD_TOPICS:
        assert topic not in text and topic not in html
    line = "12 older works caught up from clinicaltrials (backfill; entered before 2026-11-09), not listed"
    assert line in text and line in html
    # nothing is lost: every caught-up trial is stored and queryable
    db = store.open_db(tmp_path / "litmon.db")
    try:
        trials = rows(db, "SELECT title FROM works WHERE record_type = 'trial_registration'")
    finally:
        db.close()
    assert len(trials) == 13


# --------------------------------------------------------------------------- the rule's other cases, in process


def registry_config(make_config, httpserver):
    return make_config(registry_section(httpserver))


def test_trials_that_entered_during_an_outage_are_listed_late_and_an_old_one_newly_matching_is_counted(
    make_config, httpserver, run_crawl, db
):
    answer: dict = {"studies": [study("NCT06000001", "Ketamine infusions for suicidal ideation", "2026-11-20")]}

    def handler(request):
        if answer is None:
            return Response("busy", status=503)
        return Response(json.dumps(answer), content_type="application/json")

    httpserver.expect_request(STUDIES, method="GET").respond_with_handler(handler)
    config = registry_config(make_config, httpserver)
    run_crawl(config)
    [(_, first)] = run_digest(config, db).digests
    assert first.count("new") == 1

    answer = None  # the registry fails for three weeks: each weekly digest says so
    for _ in range(3):
        clock.advance(days=7)
        assert run_crawl(config).failed
        run_digest(config, db)

    clock.advance(days=7)  # it recovers: the re-read window brings what entered meanwhile, and an old trial now on topic
    answer = {
        "studies": [
            study("NCT06000002", "Esketamine in bipolar depression, registered during the outage", "2026-12-01"),
            study("NCT01000003", "Ketamine arm added to a 2010 electroconvulsive therapy study", "2010-05-04"),
        ]
    }
    assert not run_crawl(config).failed
    [(_, digest)] = run_digest(config, db).digests

    assert [i.title for i in digest.items] == ["Esketamine in bipolar depression, registered during the outage"]
    assert [c.describe() for c in digest.caught_up] == [
        "1 older work caught up from clinicaltrials (a re-read window or newly matching; entered before 2026-11-16), not listed"
    ]
    assert "Also stored: 1 older work caught up from clinicaltrials" in digest.text
    assert rows(db, "SELECT COUNT(*) AS n FROM works")[0]["n"] == 3  # stored, queryable


def test_a_source_added_months_later_lists_only_its_recent_days(make_config, httpserver, run_crawl, db):
    [(_, first)] = run_digest(make_config(), db).digests  # the reader's digests begin with no registry configured
    assert first.count("new") == 0

    clock.advance(days=90)  # the registry is added: its backfill holds months of trials the reader never missed
    answer = {
        "studies": [
            study("NCT06100001", "Ketamine and psychotherapy, registered a month after the reader started", "2026-12-20"),
            study("NCT06100002", "Oral esketamine maintenance, registered this week", "2027-02-18"),
        ]
    }
    httpserver.expect_request(STUDIES, method="GET").respond_with_handler(
        lambda request: Response(json.dumps(answer), content_type="application/json")
    )
    config = registry_config(make_config, httpserver)
    assert not run_crawl(config).failed
    [(_, digest)] = run_digest(config, db).digests

    assert [i.title for i in digest.items] == ["Oral esketamine maintenance, registered this week"]
    assert [c.describe() for c in digest.caught_up] == [
        "1 older work caught up from clinicaltrials (backfill; entered before 2027-02-14), not listed"
    ]


def test_an_article_published_long_ago_but_entered_in_pubmed_this_week_is_news(make_config, httpserver, run_crawl, db):
    """PubMed's entry date, not the publication date, says when a record entered: an article of mid-2024
    indexed this week is news; the two entered in 2024 are caught up."""
    batch1 = fixture_bytes("pubmed", "efetch_batch1.xml").replace(
        b'<PubMedPubDate PubStatus="entrez"><Year>2024</Year><Month>5</Month><Day>22</Day>',
        b'<PubMedPubDate PubStatus="entrez"><Year>2026</Year><Month>11</Month><Day>20</Day>',
    )
    pages = {"0": batch1, "2": fixture_bytes("pubmed", "efetch_batch2.xml")}
    httpserver.expect_request("/esearch.fcgi").respond_with_handler(
        lambda r: Response(esearch_body(3 if r.form["datetype"] == "crdt" else 0), content_type="application/json")
    )
    httpserver.expect_request("/efetch.fcgi").respond_with_handler(
        lambda r: Response(pages[r.args["retstart"]], content_type="text/xml")
    )
    config = make_config(pubmed_section(httpserver))
    assert not run_crawl(config).failed
    [(_, digest)] = run_digest(config, db).digests

    works = rows(db, "SELECT title, published_on, entered_on FROM works ORDER BY entered_on DESC")
    assert len(works) == 3 and works[0]["entered_on"] == "2026-11-20" and works[0]["published_on"] < "2025"
    assert [i.title for i in digest.items] == [works[0]["title"]]
    assert [c.describe() for c in digest.caught_up] == [
        "2 older works caught up from pubmed (backfill; entered before 2026-11-16), not listed"
    ]


def rss(items: list[tuple[str, str]]) -> str:
    """An RSS 2.0 feed of (title, RFC 822 date) entries (invented articles)."""
    entries = "".join(
        f"<item><title>{title}</title><link>https://journal.example.org/{n}</link><pubDate>{date}</pubDate></item>"
        for n, (title, date) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Journal of Mood Research</title>'
        f"<link>https://journal.example.org/</link><description>Latest</description>{entries}</channel></rss>"
    )


def test_a_feed_added_later_lists_its_recent_entries_and_counts_the_backlog(make_config, httpserver, run_crawl, db):
    [(_, first)] = run_digest(make_config(), db).digests  # the reader's digests begin
    assert first.count("new") == 0

    clock.advance(days=60)  # a journal feed is added: it still lists articles from months before
    feed = rss(
        [
            ("Ketamine for depression in primary care: a cluster trial", "Mon, 18 Jan 2027 08:00:00 GMT"),
            ("Esketamine and sleep: a secondary analysis", "Mon, 14 Dec 2026 08:00:00 GMT"),
            ("Arketamine in animal models of depression", "Tue, 01 Dec 2026 08:00:00 GMT"),
        ]
    )
    httpserver.expect_request("/feed.rss").respond_with_data(feed, content_type="application/rss+xml")
    config = make_config(f'[[feeds]]\nname = "mood"\nurl = "{httpserver.url_for("/feed.rss")}"\n')
    assert not run_crawl(config).failed
    [(_, digest)] = run_digest(config, db).digests

    assert [i.title for i in digest.items] == ["Ketamine for depression in primary care: a cluster trial"]
    assert [c.describe() for c in digest.caught_up] == [
        "2 older works caught up from feed:mood (backfill; entered before 2027-01-15), not listed"
    ]
