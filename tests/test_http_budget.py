"""Time budgets of the HTTP client (#16): a wall-clock deadline per response and per source, a cap on
the total backoff of a source, and a stop request that ends any pause or network wait at once.

The misbehaving servers are real sockets on loopback (tests/helpers/slowserver.py)."""

from __future__ import annotations

import threading

import pytest
from werkzeug import Response

from crawler.errors import Interrupted, SourceError
from crawler.http import HttpClient
from tests.helpers.slowserver import TrickleServer

CONTACT = "tester@example.org"


def client(**kwargs) -> HttpClient:
    options = {"max_retries": 2, "backoff_seconds": 0.01, "default_min_interval": 0, "read_timeout": 10}
    options.update(kwargs)
    return HttpClient(CONTACT, **options)


def test_a_trickling_body_fails_as_too_slow_although_every_read_is_quick():
    # 200 bytes at one byte per 0.3 s would take a minute; each read comes well within read_timeout
    with TrickleServer(b"x" * 200, interval=0.3) as server:
        with pytest.raises(SourceError) as caught:
            client(response_timeout=1).get(server.url, source="slow")
        assert server.disconnected.wait(5), "the client must drop the connection"
    message = str(caught.value)
    assert "[slow] too slow: the answer did not arrive within 1s (http.response_timeout)" in message
    assert server.requests == 1  # a deadline is not retried within the run


def test_trickling_headers_fail_as_too_slow():
    with TrickleServer(b"{}", interval=0.3, trickle_headers=True) as server:
        with pytest.raises(SourceError, match="too slow"):
            client(response_timeout=1).get(server.url, source="slow")


def test_the_source_budget_bounds_all_requests_of_a_source():
    http = client(response_timeout=30, source_timeout=1)
    http.begin_source()
    with TrickleServer(silent=True) as server:
        with pytest.raises(SourceError) as caught:
            http.get(server.url, source="slow")
    assert "used up its time budget of 1s (http.source_timeout)" in str(caught.value)


def test_retry_after_beyond_the_backoff_budget_fails_the_source_without_waiting(httpserver):
    httpserver.expect_request("/busy").respond_with_response(Response("busy", status=429, headers={"Retry-After": "100000"}))
    sleeps: list[float] = []
    http = client(max_retries=4, max_backoff_seconds=60, sleep=sleeps.append)
    http.begin_source()

    with pytest.raises(SourceError) as caught:
        http.get(httpserver.url_for("/busy"), source="busy")

    assert sleeps == []  # not 300 s per attempt (the old per-pause cap), not at all
    assert "HTTP 429; gave up instead of waiting 300s more: this source has 60s of its backoff budget left" in str(caught.value)
    assert "http.max_backoff_seconds" in str(caught.value)


def test_backoff_pauses_of_a_source_add_up_to_at_most_the_budget(httpserver):
    httpserver.expect_request("/busy").respond_with_response(Response("busy", status=503, headers={"Retry-After": "4"}))
    sleeps: list[float] = []
    http = client(max_retries=5, max_backoff_seconds=10, sleep=sleeps.append)
    http.begin_source()

    with pytest.raises(SourceError, match="backoff budget left"):
        http.get(httpserver.url_for("/busy"), source="busy")
    assert sleeps == [4.0, 4.0]
    with pytest.raises(SourceError, match="2s of its backoff budget left"):  # the budget is per source per run
        http.get(httpserver.url_for("/busy"), source="busy")

    http.begin_source()  # the next source starts with a full budget
    with pytest.raises(SourceError):
        http.get(httpserver.url_for("/busy"), source="other")
    assert sleeps == [4.0, 4.0, 4.0, 4.0]


def test_a_stop_request_ends_a_network_wait_at_once():
    stop = threading.Event()
    http = client(response_timeout=60, stop=stop)
    with TrickleServer(silent=True) as server:
        threading.Timer(0.3, stop.set).start()
        with pytest.raises(Interrupted):
            http.get(server.url, source="held")
        assert server.disconnected.wait(5)


def test_a_stop_request_ends_a_backoff_pause_at_once(httpserver):
    httpserver.expect_request("/busy").respond_with_response(Response("busy", status=503, headers={"Retry-After": "120"}))
    stop = threading.Event()
    http = client(stop=stop, max_backoff_seconds=600)
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(Interrupted):
        http.get(httpserver.url_for("/busy"), source="busy")
    assert len(httpserver.log) == 1


def test_a_quick_answer_is_not_affected_by_the_deadline(httpserver):
    httpserver.expect_request("/ok").respond_with_json({"n": 1})
    http = client(response_timeout=5)
    http.begin_source()
    for _ in range(3):  # a kept-alive connection is reused and still watched
        assert http.get(httpserver.url_for("/ok"), source="ok").json() == {"n": 1}
