"""`litmon status` health, lag, schedule and exit codes; logging formats and secret masking."""

from __future__ import annotations

import io
import json
import logging

from werkzeug import Response

from crawler import logs
from crawler.logs import JsonFormatter, SecretFilter, register_secret_env
from tests.helpers.cli import closed_port, litmon, litmon_env
from tests.helpers.ncbi import esearch_body
from tests.helpers.ops import PubMedServer, pubmed_section, query, write_config

UNREACHABLE = """
[sources.pubmed]
enabled = true
base_url = "http://127.0.0.1:{port}/"
query = "ketamine"
min_interval = 0
"""


def test_status_exits_4_when_a_source_failed_n_runs_in_a_row(tmp_path, httpserver):
    # it worked once (a source that never succeeded is unhealthy at once: test_health.py), then failed twice
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver))
    assert litmon("--config", config, "run", cwd=tmp_path).returncode == 0
    write_config(tmp_path, UNREACHABLE.format(port=closed_port()))
    for _ in range(2):
        assert litmon("--config", config, "crawl", cwd=tmp_path).returncode == 1

    default = litmon("--config", config, "status", "--json", cwd=tmp_path)  # [status] fail_after = 3 by default
    assert default.returncode == 0, default.stdout
    info = json.loads(default.stdout)
    pubmed = next(s for s in info["sources"] if s["source"] == "pubmed")
    assert pubmed["consecutive_failures"] == 2 and pubmed["last_success_at"] is not None and pubmed["lag_seconds"] == 0
    assert info["healthy"] is True and info["alerts"] == [] and info["verdict"] == "healthy" and info["reasons"] == []

    strict = litmon("--config", config, "status", "--json", "--fail-after", "2", cwd=tmp_path)
    assert strict.returncode == 4
    info = json.loads(strict.stdout)
    assert info["healthy"] is False
    assert info["alerts"][0].startswith("pubmed: failed 2 runs in a row (last error: [pubmed] network error")

    human = litmon("--config", config, "status", "--fail-after", "2", cwd=tmp_path)
    assert human.returncode == 4
    assert "UNHEALTHY (1 alert(s)):" in human.stdout and "pubmed: failed 2 runs in a row" in human.stdout

    with open(tmp_path / "litmon.toml", "a") as handle:
        handle.write("\n[status]\nfail_after = 2\n")
    assert litmon("--config", config, "status", cwd=tmp_path).returncode == 4
    assert litmon("--config", config, "status", "--fail-after", "0", cwd=tmp_path).returncode == 0


def test_status_reports_lag_schedule_database_and_recipients(tmp_path, httpserver):
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver) + '[schedule]\ntimezone = "Europe/Berlin"\ndigest = "0 7 * * 1"\n')
    assert litmon("--config", config, "run", cwd=tmp_path).returncode == 0

    result = litmon("--config", config, "status", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    pubmed = next(s for s in info["sources"] if s["source"] == "pubmed")
    assert 0 <= pubmed["lag_seconds"] < 120 and pubmed["consecutive_failures"] == 0 and pubmed["records"] == 3
    assert pubmed["last_run"]["status"] == "ok" and pubmed["last_run"]["new"] == 3
    assert info["database"]["works"] == 3 and info["database"]["digests"] == 1 and info["database"]["size_bytes"] > 0
    assert info["running"] is None and info["last_crawl"]["status"] == "ok"
    digest = info["schedule"]["digest"]
    assert digest["cron"] == "0 7 * * 1" and digest["next_local"].endswith(("+01:00", "+02:00"))
    assert "T07:00:00" in digest["next_local"] and info["schedule"]["crawl"]["next_at"].endswith("Z")
    assert info["recipients"] == [
        {
            "recipient": "outbox",
            "last_digest_id": 1,
            "last_status": "written",
            "last_attempt_at": info["recipients"][0]["last_attempt_at"],
            "last_delivered_at": info["recipients"][0]["last_attempt_at"],
            "error": None,
        }
    ]
    human = litmon("--config", config, "status", cwd=tmp_path).stdout
    assert "next scheduled (litmon serve, Europe/Berlin): crawl " in human
    assert "outbox: last written" in human and "running now: nothing" in human and "healthy (alerts at 3 failures" in human


def test_json_log_lines_and_one_summary_per_source(tmp_path, httpserver):
    PubMedServer(httpserver)
    config = write_config(tmp_path, pubmed_section(httpserver))
    result = litmon("--config", config, "crawl", cwd=tmp_path, env=litmon_env(LITMON_LOG_FORMAT="json"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    summaries = [line for line in lines if line.get("event") == "source_run"]
    assert len(summaries) == 1
    assert summaries[0]["source"] == "pubmed" and summaries[0]["new"] == 3 and summaries[0]["fetched"] == 3
    assert summaries[0]["message"].startswith("[pubmed] ok: 3 fetched, 3 new") and summaries[0]["level"] == "info"
    assert all(set(line) >= {"ts", "level", "logger", "message"} for line in lines)

    text = litmon("--config", config, "crawl", cwd=tmp_path)
    assert "INFO [pubmed] ok: 3 fetched, 0 new, 0 updated, 3 unchanged" in text.stderr

    bad = litmon("--config", config, "crawl", cwd=tmp_path, env=litmon_env(LITMON_LOG_FORMAT="xml"))
    assert bad.returncode == 2 and "unknown log format 'xml'" in bad.stderr


def test_api_keys_never_reach_logs_database_or_status(tmp_path, httpserver):
    secret = "ncbi-key-0123456789abcdef"
    httpserver.expect_request("/esearch.fcgi").respond_with_handler(
        lambda r: Response(esearch_body(3), content_type="application/json")
    )
    httpserver.expect_request("/efetch.fcgi").respond_with_data("API key invalid", status=400)
    config = write_config(tmp_path, pubmed_section(httpserver, 'api_key_env = "NCBI_API_KEY"'))
    env = litmon_env(NCBI_API_KEY=secret)

    crawled = litmon("--config", config, "-vv", "crawl", cwd=tmp_path, env=env)
    as_json = litmon("--config", config, "--log-format", "json", "crawl", cwd=tmp_path, env=env)
    status = litmon("--config", config, "status", "--json", cwd=tmp_path, env=env)

    assert crawled.returncode == 1 and as_json.returncode == 1
    assert "efetch.fcgi" in crawled.stderr and "api_key=***" in crawled.stderr  # the error names the URL, masked
    assert any(req.args.get("api_key") == secret for req, _ in httpserver.log)  # the key was really sent
    for output in (crawled.stdout, crawled.stderr, as_json.stderr, status.stdout, status.stderr):
        assert secret not in output
    stored = query(tmp_path / "litmon.db", "SELECT error FROM source_runs UNION ALL SELECT last_error FROM source_states")
    assert stored and all(secret not in row[0] and "api_key=***" in row[0] for row in stored)


def test_secret_filter_masks_env_values_params_and_tracebacks(monkeypatch):
    monkeypatch.setenv("LITMON_SMTP_PASSWORD", "hunter2-smtp-password")
    monkeypatch.setattr(logs, "_secret_values", set(logs._secret_values))  # (masked in this test only)
    register_secret_env("LITMON_SMTP_PASSWORD")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("litmon-test-secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error(
            "login with %s failed for https://x.example/works?search=k&api_key=abc123XYZ&page=2", "hunter2-smtp-password"
        )
        try:
            raise RuntimeError("token=sekrit-token-value in Authorization: Bearer eyJhbGciOi")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    for secret in ("hunter2-smtp-password", "abc123XYZ", "sekrit-token-value", "eyJhbGciOi"):
        assert secret not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "login with *** failed for https://x.example/works?search=k&api_key=***&page=2"
    assert "token=***" in second["exception"] and "Bearer ***" in second["exception"]
