"""HttpClient against real loopback HTTP servers: retries, Retry-After, backoff, rate limits, size caps, errors.

Sleeps are recorded (``sleep=recorded.append``) instead of slept, so delays are asserted exactly and no
test waits.
"""

from __future__ import annotations

import email.utils
import re
import socket

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from crawler import __version__, clock
from crawler.config import parse_config, shipped_config_text
from crawler.errors import SourceError
from crawler.http import HttpClient, parse_retry_after

CONTACT = "tester@example.org"


@pytest.fixture
def sleeps():
    return []


def client(sleeps, **kwargs) -> HttpClient:
    options = {"max_retries": 3, "backoff_seconds": 0.01, "default_min_interval": 0, "read_timeout": 10, "sleep": sleeps.append}
    options.update(kwargs)
    return HttpClient(CONTACT, **options)


def serve_sequence(httpserver, path, responses):
    """Answer successive requests to ``path`` with ``responses`` in order (the last one repeats)."""
    answers = list(responses)

    def handler(request):
        return answers.pop(0) if len(answers) > 1 else answers[0]

    httpserver.expect_request(path).respond_with_handler(handler)


@pytest.fixture
def chunked_server():
    """A second loopback server speaking HTTP/1.1, so bodies without Content-Length go out chunked."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- identification


def test_user_agent_names_version_and_contact(httpserver, sleeps):
    httpserver.expect_request("/ua").respond_with_data("ok")

    client(sleeps).get(httpserver.url_for("/ua"), source="test")

    ((request, _),) = httpserver.log
    agent = request.headers["User-Agent"]
    assert re.fullmatch(rf"litmon/{re.escape(__version__)} \(.*mailto:{re.escape(CONTACT)}\)", agent), agent


def test_from_config_accepts_every_http_setting_of_the_shipped_config():
    config = parse_config(shipped_config_text(), "<shipped>")

    http = HttpClient.from_config(config)

    assert http.max_retries == config.http["max_retries"]
    assert http.timeout == (config.http["connect_timeout"], config.http["read_timeout"])
    assert http.max_bytes == int(config.http["max_response_mb"] * 1024 * 1024)
    assert http.session.headers["User-Agent"].endswith(f"mailto:{config.contact_email})")


def test_success_returns_body_status_and_headers(httpserver, sleeps):
    httpserver.expect_request("/data", query_string="q=ketamine").respond_with_json({"hits": 3})

    response = client(sleeps).get(httpserver.url_for("/data"), source="test", params={"q": "ketamine"})

    assert response.status == 200
    assert response.json() == {"hits": 3}
    assert response.content_type == "application/json"
    assert response.url == httpserver.url_for("/data") + "?q=ketamine"
    assert sleeps == []


def test_post_sends_form_data(httpserver, sleeps):
    httpserver.expect_request("/search", method="POST", data="term=ketamine&db=pubmed").respond_with_data("ok")

    response = client(sleeps).post(httpserver.url_for("/search"), source="test", data={"term": "ketamine", "db": "pubmed"})

    assert response.text == "ok"


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_transient_statuses_then_succeeds(httpserver, sleeps, status):
    serve_sequence(httpserver, "/flaky", [Response("busy", status=status), Response("busy", status=status), Response("done")])
    http = client(sleeps, max_retries=3)

    response = http.get(httpserver.url_for("/flaky"), source="test")

    assert response.text == "done"
    assert len(httpserver.log) == 3
    assert http.request_count == 3
    assert len(sleeps) == 2


def test_retry_after_seconds_is_honoured(httpserver, sleeps):
    serve_sequence(httpserver, "/limited", [Response("slow down", status=429, headers={"Retry-After": "7"}), Response("ok")])

    client(sleeps).get(httpserver.url_for("/limited"), source="test")

    assert sleeps == [7.0]
    assert len(httpserver.log) == 2


def test_retry_after_http_date_is_honoured(httpserver, sleeps):
    when = email.utils.formatdate(clock.now().timestamp() + 120, usegmt=True)
    serve_sequence(httpserver, "/limited", [Response("", status=503, headers={"Retry-After": when}), Response("ok")])

    client(sleeps).get(httpserver.url_for("/limited"), source="test")

    (delay,) = sleeps
    assert 60 < delay <= 120  # the date has one-second resolution; no backoff value comes near this


def test_retry_after_date_in_the_past_means_retry_now(httpserver, sleeps):
    serve_sequence(
        httpserver,
        "/limited",
        [Response("", status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), Response("ok")],
    )

    client(sleeps).get(httpserver.url_for("/limited"), source="test")

    assert sleeps == [0.0]


def test_retry_after_is_capped_by_max_retry_wait(httpserver, sleeps):
    serve_sequence(httpserver, "/limited", [Response("", status=429, headers={"Retry-After": "3600"}), Response("ok")])

    client(sleeps, max_retry_wait=5).get(httpserver.url_for("/limited"), source="test")

    assert sleeps == [5.0]


def test_unparseable_retry_after_falls_back_to_backoff(httpserver, sleeps):
    serve_sequence(httpserver, "/limited", [Response("", status=503, headers={"Retry-After": "soon"}), Response("ok")])

    client(sleeps, backoff_seconds=0.5).get(httpserver.url_for("/limited"), source="test")

    (delay,) = sleeps
    assert 0.5 <= delay <= 0.75


def test_backoff_grows_exponentially_without_retry_after(httpserver, sleeps):
    serve_sequence(httpserver, "/down", [Response("", status=503)] * 4 + [Response("ok")])

    client(sleeps, max_retries=4, backoff_seconds=0.01).get(httpserver.url_for("/down"), source="test")

    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps):
        base = 0.01 * 2**attempt
        assert base <= delay <= base * 1.5  # exponential base plus up to 50 % jitter
    assert all(later > earlier for earlier, later in zip(sleeps, sleeps[1:]))


def test_backoff_is_capped_by_max_retry_wait(httpserver, sleeps):
    serve_sequence(httpserver, "/down", [Response("", status=502)] * 3 + [Response("ok")])

    client(sleeps, backoff_seconds=10, max_retry_wait=15).get(httpserver.url_for("/down"), source="test")

    assert sleeps[-2:] == [15, 15]
    assert 10 <= sleeps[0] <= 15


def test_gives_up_after_max_retries_on_503(httpserver, sleeps):
    httpserver.expect_request("/down").respond_with_data(
        "<html><body>Service Unavailable</body></html>", status=503, content_type="text/html"
    )
    url = httpserver.url_for("/down")

    with pytest.raises(SourceError) as info:
        client(sleeps, max_retries=2).get(url, source="europepmc")

    assert len(httpserver.log) == 3  # the first attempt and two retries
    assert len(sleeps) == 2
    error = info.value
    assert error.source == "europepmc" and error.url == url
    assert "HTTP 503" in str(error) and "Service Unavailable" in str(error)
    assert error.hint and error.hint in str(error)


def test_gives_up_after_max_retries_on_429_with_rate_limit_hint(httpserver, sleeps):
    httpserver.expect_request("/limited").respond_with_data("too many", status=429, headers={"Retry-After": "1"})

    with pytest.raises(SourceError) as info:
        client(sleeps, max_retries=1).get(httpserver.url_for("/limited"), source="pubmed")

    assert len(httpserver.log) == 2
    assert sleeps == [1.0]
    assert "rate limit" in info.value.hint


def test_zero_retries_makes_one_attempt(httpserver, sleeps):
    httpserver.expect_request("/down").respond_with_data("", status=500)

    with pytest.raises(SourceError, match="HTTP 500"):
        client(sleeps, max_retries=0).get(httpserver.url_for("/down"), source="test")

    assert len(httpserver.log) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "status, hint", [(400, "the query in the config"), (404, "the base_url in the config"), (403, "the API key")]
)
def test_client_errors_are_not_retried_and_say_what_to_check(httpserver, sleeps, status, hint):
    httpserver.expect_request("/api/search").respond_with_data("no such endpoint", status=status)
    url = httpserver.url_for("/api/search")

    with pytest.raises(SourceError) as info:
        client(sleeps).get(url, source="crossref", params={"query": "ketamine"})

    assert len(httpserver.log) == 1
    assert sleeps == []
    message = str(info.value)
    assert message.startswith("[crossref] ")
    assert f"HTTP {status}" in message
    assert f"{url}?query=ketamine" in message
    assert f"check: {hint}" in message
    assert "no such endpoint" in message


def test_ok_statuses_lets_a_source_accept_other_codes(httpserver, sleeps):
    httpserver.expect_request("/feed").respond_with_data("", status=304)

    response = client(sleeps).get(httpserver.url_for("/feed"), source="feed", ok_statuses=(200, 304))

    assert response.status == 304
    assert response.content == b""


# --------------------------------------------------------------------------- per-host interval


def test_min_interval_spaces_requests_to_one_host(httpserver, sleeps):
    httpserver.expect_request("/page").respond_with_data("ok")
    http = client(sleeps)
    http.set_min_interval(httpserver.url_for("/"), 30)

    http.get(httpserver.url_for("/page"), source="test")
    assert sleeps == []  # nothing to wait for before the first request

    http.get(httpserver.url_for("/page"), source="test")
    assert sleeps == [30]


def test_with_an_injected_sleep_the_spacing_does_not_depend_on_how_fast_requests_are(httpserver, sleeps):
    """Tests inject ``sleep``: the spacing is then measured on the pauses alone, so a request slower than the
    interval (a loaded machine) still leaves the pause the interval asks for before the next one."""
    import threading

    def slow(request):
        threading.Event().wait(0.3)  # longer than the interval
        return Response("ok")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    http = client(sleeps)
    http.set_min_interval(httpserver.url_for("/"), 0.2)
    for _ in range(3):
        http.get(httpserver.url_for("/slow"), source="test")
    assert sleeps == [0.2, 0.2]


def test_min_interval_is_per_host(httpserver, chunked_server, sleeps):
    httpserver.expect_request("/a").respond_with_data("a")
    chunked_server.expect_request("/b").respond_with_data("b")
    http = client(sleeps)
    http.set_min_interval(httpserver.url_for("/"), 30)

    http.get(httpserver.url_for("/a"), source="a")
    http.get(chunked_server.url_for("/b"), source="b")  # another host:port, no interval set
    assert sleeps == []

    http.get(httpserver.url_for("/a"), source="a")
    assert len(sleeps) == 1


def test_default_min_interval_applies_to_hosts_without_their_own(httpserver, sleeps):
    httpserver.expect_request("/page").respond_with_data("ok")
    http = client(sleeps, default_min_interval=20)

    http.get(httpserver.url_for("/page"), source="test")
    http.get(httpserver.url_for("/page"), source="test")

    (delay,) = sleeps
    assert 0 < delay <= 20


def test_min_interval_can_be_set_by_host_name(httpserver, sleeps):
    httpserver.expect_request("/page").respond_with_data("ok")
    http = client(sleeps)
    http.set_min_interval(f"{httpserver.host}:{httpserver.port}", 30)

    http.get(httpserver.url_for("/page"), source="test")
    http.get(httpserver.url_for("/page"), source="test")

    assert len(sleeps) == 1 and sleeps[0] > 0


# --------------------------------------------------------------------------- response size cap


def test_declared_size_over_the_cap_is_refused(httpserver, sleeps):
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)

    with pytest.raises(SourceError) as info:
        client(sleeps, max_response_mb=0.001).get(httpserver.url_for("/big"), source="openalex")

    message = str(info.value)
    assert "response of 5000 bytes exceeds the cap of 1048 bytes" in message
    assert "http.max_response_mb" in info.value.hint
    assert len(httpserver.log) == 1


def test_chunked_body_over_the_cap_is_refused(chunked_server, sleeps):
    def stream(request):
        return Response((b"y" * 500 for _ in range(10)), content_type="application/json")

    chunked_server.expect_request("/stream").respond_with_handler(stream)
    url = chunked_server.url_for("/stream")

    # The server really sends no Content-Length: a client with a generous cap sees a chunked body.
    unbounded = client(sleeps).get(url, source="openalex")
    assert "Content-Length" not in unbounded.headers
    assert unbounded.headers.get("Transfer-Encoding") == "chunked"
    assert len(unbounded.content) == 5000

    with pytest.raises(SourceError) as info:
        client(sleeps, max_response_mb=0.001).get(url, source="openalex")

    assert "response body exceeds the cap of 1048 bytes" in str(info.value)
    assert info.value.url == url


def test_body_at_the_cap_is_accepted(httpserver, sleeps):
    httpserver.expect_request("/exact").respond_with_data(b"z" * 1048)

    response = client(sleeps, max_response_mb=0.001).get(httpserver.url_for("/exact"), source="test")

    assert len(response.content) == 1048


# --------------------------------------------------------------------------- answers that are not what was asked for


def test_json_on_an_html_error_page_says_so(httpserver, sleeps):
    httpserver.expect_request("/api").respond_with_data(
        "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body>Back soon</body></html>", content_type="text/html"
    )
    url = httpserver.url_for("/api")
    response = client(sleeps).get(url, source="isrctn")

    with pytest.raises(SourceError) as info:
        response.json()

    message = str(info.value)
    assert message.startswith("[isrctn] expected JSON but got an HTML page")
    assert "Maintenance" in message
    assert info.value.url == url


def test_json_on_other_content_names_the_content_type(httpserver, sleeps):
    httpserver.expect_request("/api").respond_with_data("<rss/>", content_type="application/rss+xml; charset=utf-8")
    response = client(sleeps).get(httpserver.url_for("/api"), source="feed")

    with pytest.raises(SourceError, match=re.escape("expected JSON but got 'application/rss+xml' content")):
        response.json()


def test_connection_refused_is_a_network_error_after_retries(closed_port, sleeps):
    url = f"http://127.0.0.1:{closed_port}/api/"

    with pytest.raises(SourceError) as info:
        client(sleeps, max_retries=2, connect_timeout=5).get(url, source="biorxiv", params={"cursor": "0"})

    message = str(info.value)
    assert message.startswith(f"[biorxiv] network error after 3 attempts: connection refused by 127.0.0.1:{closed_port}")
    assert f"{url}?cursor=0" in message
    assert "network access" in info.value.hint
    assert len(sleeps) == 2


def test_unresolvable_host_is_not_retried(sleeps):
    # .invalid never resolves (RFC 6761); the resolver answers without network access.
    url = "http://litmon-test.invalid/api"

    with pytest.raises(SourceError) as info:
        client(sleeps, max_retries=4, connect_timeout=5).get(url, source="crossref")

    assert "[crossref] network error: cannot resolve host name litmon-test.invalid (DNS)" in str(info.value)
    assert sleeps == []


# --------------------------------------------------------------------------- parse_retry_after


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_future_date():
    value = email.utils.formatdate(clock.now().timestamp() + 3600, usegmt=True)

    assert 3500 < parse_retry_after(value) <= 3600


# --------------------------------------------------------------------------- credentials stay out of error texts


def test_api_key_in_the_url_is_redacted_from_http_errors(httpserver, sleeps):
    httpserver.expect_request("/works").respond_with_data("bad request", status=400)
    url = httpserver.url_for("/works")

    with pytest.raises(SourceError) as info:
        client(sleeps).get(url, source="openalex", params={"search": "ketamine", "api_key": "s3cret-key"})

    ((request, _),) = httpserver.log
    assert request.args["api_key"] == "s3cret-key"  # the key is still sent
    assert "s3cret-key" not in str(info.value)
    assert info.value.url == f"{url}?search=ketamine&api_key=***"
    assert info.value.url in str(info.value)


def test_api_key_is_redacted_from_network_errors_and_retry_logs(closed_port, sleeps, caplog):
    url = f"http://127.0.0.1:{closed_port}/efetch.fcgi"
    caplog.set_level("INFO", logger="crawler.http")

    with pytest.raises(SourceError) as info:
        client(sleeps, max_retries=1, connect_timeout=5).get(
            url, source="pubmed", params={"db": "pubmed", "api_key": "s3cret-key"}
        )

    assert "network error" in str(info.value)
    assert "s3cret-key" not in str(info.value)
    assert "api_key=***" in str(info.value)
    assert any("retry 1/1" in record.getMessage() for record in caplog.records)
    assert not any("s3cret-key" in record.getMessage() for record in caplog.records)


def test_password_in_the_url_is_redacted(closed_port, sleeps):
    with pytest.raises(SourceError) as info:
        client(sleeps, max_retries=0, connect_timeout=5).get(f"http://user:pa55word@127.0.0.1:{closed_port}/x", source="test")

    assert "pa55word" not in str(info.value)
    assert info.value.url == f"http://user:***@127.0.0.1:{closed_port}/x"


#: In a fresh process: a client made, then one request to a loopback server; prints which of requests and urllib3 were
#: imported after each step.
FIRST_REQUEST_IMPORTS = """
import http.server, json, sys, threading
from crawler.http import HttpClient

class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
threading.Thread(target=server.serve_forever, daemon=True).start()
imported = lambda: [name for name in ("requests", "urllib3") if name in sys.modules]
client = HttpClient("ops@example.org", default_min_interval=0.0)
steps = [imported()]
answer = client.get(f"http://127.0.0.1:{server.server_port}/", source="test")
steps.append(imported())
sys.stdout.write(json.dumps([steps, answer.status, answer.text]))
"""


def test_requests_is_imported_at_the_first_request_not_with_the_client():
    """A process that makes no request (the one writing the database beside a fetch worker) does not import requests
    and urllib3 (~0.3 G instructions): the client makes its session when it first asks."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST_IMPORTS], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[[], ["requests", "urllib3"]], 200, "ok"]
