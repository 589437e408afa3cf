"""An outage is never a quiet week, and the exit code pages the right person (issue #10)."""

from __future__ import annotations

import email
from email import policy

from crawler.digest import run_digest
from tests.helpers.cli import closed_port, litmon
from tests.helpers.ops import PubMedServer, pubmed_section, write_config
from tests.helpers.sources import unreachable


def failing_sources(port: int) -> str:
    return unreachable(port, "/entrez/eutils/") + f'[[feeds]]\nname = "journal"\nurl = "http://127.0.0.1:{port}/rss.xml"\n'


def recipients(smtp_port: int) -> str:
    return f"""
[email]
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
security = "none"
timeout = 10
[[recipients]]
address = "operator@example.org"
operator = true
[[recipients]]
address = "clinician@example.org"
"""


def test_an_all_sources_failed_digest_says_so_in_its_subject_and_at_the_top(make_config, run_crawl, db, smtp_server):  # noqa: F811
    handler, smtp_port = smtp_server()
    port = closed_port()
    config = make_config(failing_sources(port) + recipients(smtp_port))
    assert len(run_crawl(config).failed) == 2

    result = run_digest(config, db)

    assert not result.failed
    messages = {env.rcpt_tos[0]: email.message_from_bytes(env.content, policy=policy.default) for env in handler.messages}
    for address, message in messages.items():
        assert message["Subject"] == ("[litmon] Literature monitor: 0 new — 2 sources failed (2026-11-16 to 2026-11-23)"), address
        text = message.get_body(("plain",)).get_content()
        top = text.split("==")[0]  # before the first section
        assert "!! 2 source(s) failed during this period and still fail" in top
        assert f"!!   - pubmed: network error after 3 attempts: connection refused by 127.0.0.1:{port} (1 run(s) in a row)" in top
        assert "!!   - feed:journal: network error after 3 attempts" in top
        assert "Nothing new from the sources that worked; 2 failed (above): this may be an outage, not a quiet week." in text
        assert "Nothing new this period." not in text
        html = message.get_body(("html",)).get_content()
        assert "2 source(s) failed during this period and still fail" in html
    # full diagnostics (URL, what to check) only for the operator
    operator = messages["operator@example.org"].get_body(("plain",)).get_content()
    reader = messages["clinician@example.org"].get_body(("plain",)).get_content()
    assert f"(url: http://127.0.0.1:{port}/entrez/eutils/esearch.fcgi" in operator and "check: network access" in operator
    assert "url:" not in reader and "check:" not in reader and f"127.0.0.1:{port}/entrez" not in reader


def test_a_source_that_recovered_is_no_outage(httpserver, make_config, run_crawl, db):
    PubMedServer(httpserver)
    config = make_config(failing_sources(closed_port()).split("[[feeds]]")[0])
    run_crawl(config)  # fails
    assert not run_crawl(make_config(pubmed_section(httpserver))).failed  # then works

    [(_, digest)] = run_digest(make_config(pubmed_section(httpserver)), db).digests

    assert "failed" not in digest.subject and digest.failed_sources == []
    assert "* pubmed: failed in 1 of 2 run(s), recovered since: network error" in digest.text


# --------------------------------------------------------------------------- run's exit code


def test_run_exits_0_for_a_failure_below_fail_after_and_1_once_it_is_crossed(tmp_path, httpserver):
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver) + "[status]\nfail_after = 2\n")
    assert litmon("--config", config, "run", cwd=tmp_path).returncode == 0
    write_config(tmp_path, failing_sources(closed_port()).split("[[feeds]]")[0] + "[status]\nfail_after = 2\n")

    flaky = litmon("--config", config, "run", "--force-digest", cwd=tmp_path)
    assert flaky.returncode == 0, flaky.stderr  # one flaky run pages nobody; the digest went out
    assert "1 source(s) failed below [status] fail_after = 2 (retried next run, not alarming yet): pubmed (1 in a row)" in (
        flaky.stderr
    )
    assert "written:" in flaky.stdout

    crossed = litmon("--config", config, "run", cwd=tmp_path)
    assert crossed.returncode == 1
    assert "1 source(s) failed: 1 need attention: pubmed (2 runs in a row)" in crossed.stderr


def test_run_exits_1_when_a_delivery_failed(tmp_path, httpserver):
    PubMedServer(httpserver)
    mail = f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {closed_port()}\nsecurity = "none"\nrecipients = ["a@example.org"]\nattempts = 1\n'
    config = write_config(tmp_path, pubmed_section(httpserver) + mail)

    result = litmon("--config", config, "run", cwd=tmp_path)

    assert result.returncode == 1
    assert "failed: a@example.org" in result.stderr
