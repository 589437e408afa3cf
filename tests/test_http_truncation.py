"""HttpClient: bodies cut off in transit are retried with the same backoff as 5xx (issue #12).

A raw loopback socket server sends exactly the bytes each test scripts (a Content-Length the body never
reaches, a broken gzip stream, a JSON or XML document that stops midway), then closes the connection.
"""

from __future__ import annotations

import gzip
import json
import socket
import tempfile
import threading

import pytest

from crawler.errors import SourceError
from crawler.http import SPOOL_IN_MEMORY, HttpClient, truncation_problem

FULL_JSON = json.dumps({"status": "ok", "message": {"items": [{"DOI": "10.1/x", "title": ["Esketamine"]}]}}).encode()
FULL_XML = b'<?xml version="1.0"?>\n<allTrials totalCount="1"><fullTrial><trial><isrctn>ISRCTN1</isrctn></trial></fullTrial></allTrials>\n'


class RawServer:
    """Answers the n-th connection with the n-th scripted byte string (the last one repeats), then closes."""

    def __init__(self, answers: list[bytes]):
        self.answers = answers
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
                try:
                    conn.sendall(answer)
                except (ConnectionResetError, BrokenPipeError):  # the client hung up first, as some tests make it do
                    pass

    def close(self) -> None:
        self.sock.close()


def http_answer(body: bytes, content_type: str, *, length: int | None = None, extra: str = "") -> bytes:
    length = len(body) if length is None else length
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n{extra}Connection: close\r\n\r\n"
    return head.encode() + body


def close_delimited(body: bytes, content_type: str) -> bytes:
    """An HTTP/1.0-style answer without Content-Length: the body ends where the connection closes."""
    return f"HTTP/1.0 200 OK\r\nContent-Type: {content_type}\r\n\r\n".encode() + body


@pytest.fixture
def raw_server():
    servers = []

    def make(answers):
        server = RawServer(answers)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def client(sleeps, **kwargs) -> HttpClient:
    options = {"max_retries": 3, "backoff_seconds": 0.5, "default_min_interval": 0, "read_timeout": 10, "sleep": sleeps.append}
    options.update(kwargs)
    return HttpClient("tester@example.org", **options)


@pytest.mark.parametrize(
    "cut, content_type, full",
    [
        # the connection closes after 40 of the announced bytes
        (http_answer(FULL_JSON[:40], "application/json", length=len(FULL_JSON)), "application/json", FULL_JSON),
        # a gzip stream that does not decode
        (
            http_answer(gzip.compress(FULL_JSON)[:25] + b"\x00garbage", "application/json", extra="Content-Encoding: gzip\r\n"),
            "application/json",
            FULL_JSON,
        ),
        # complete by HTTP's rules, but the JSON document stops midway
        (close_delimited(FULL_JSON[:-9], "application/json; charset=utf-8"), "application/json", FULL_JSON),
        (close_delimited(FULL_JSON[:30], "application/json"), "application/json", FULL_JSON),  # inside a string
        # ... or the XML root element is never closed
        (close_delimited(FULL_XML[:70], "text/xml"), "text/xml", FULL_XML),
    ],
    ids=["short-content-length", "broken-gzip", "json-cut", "json-cut-in-string", "xml-cut"],
)
def test_truncated_body_is_retried_then_succeeds(raw_server, cut, content_type, full):
    sleeps: list[float] = []
    server = raw_server([cut, http_answer(full, content_type)])

    response = client(sleeps).get(server.url, source="crossref")

    assert response.content == full
    assert len(server.requests) == 2
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 0.75  # the first backoff step, as for a 503


def test_always_truncated_fails_after_the_same_retries_and_backoff_as_5xx(raw_server):
    sleeps: list[float] = []
    server = raw_server([http_answer(FULL_JSON[:40], "application/json", length=len(FULL_JSON))])

    with pytest.raises(SourceError) as info:
        client(sleeps).get(server.url, source="crossref")

    assert len(server.requests) == 4  # 1 + max_retries
    # exponential backoff with jitter from backoff_seconds, exactly as for a 5xx
    assert all(base <= s <= base * 1.5 for s, base in zip(sleeps, [0.5, 1.0, 2.0], strict=True))
    message = str(info.value)
    assert message.startswith("[crossref] network error after 4 attempts")
    assert "closed the connection before the whole body arrived (truncated response)" in message


def test_document_cut_off_every_time_names_the_cut(raw_server):
    sleeps: list[float] = []
    server = raw_server([close_delimited(FULL_XML[:70], "application/xml")])

    with pytest.raises(SourceError, match=r"^\[isrctn\] the XML answer is cut off \(70 bytes, ends with .*after 4 attempts"):
        client(sleeps).get(server.url, source="isrctn")
    assert len(server.requests) == 4 and len(sleeps) == 3


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"status": "ok",, "message": {}}', "application/json"),  # malformed, not cut: the source reports it
        (b"<!DOCTYPE html><html><title>Just a moment...</title></html>", "application/json"),  # a WAF page
        (b"Resource not found.", "application/json"),
        (b"<a><b>unclosed</b>", "text/html"),  # HTML and text are not checked
    ],
)
def test_complete_answers_are_not_retried(raw_server, body, content_type):
    sleeps: list[float] = []
    server = raw_server([http_answer(body, content_type)])
    response = client(sleeps).get(server.url, source="crossref")
    assert response.content == body and len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    "body, content_type, cut",
    [
        (FULL_JSON, "application/json", False),
        (FULL_JSON[:-1], "application/json", True),
        (b"[1, 2", "application/vnd.api+json", True),
        (FULL_XML, "application/xml", False),
        (b'<?xml version="1.0"?><!-- note --><rdf:RDF xmlns:rdf="x"><item/></rdf:RDF>', "application/rss+xml", False),
        (b'<rdf:RDF xmlns:rdf="x"><item>', "application/rdf+xml", True),
        (b"<empty/>", "text/xml", False),
        (b"", "application/json", False),
    ],
)
def test_truncation_problem(body, content_type, cut):
    assert bool(truncation_problem({"Content-Type": content_type}, body)) is cut


# --------------------------------------------------------------------------- large bodies (spooled to a file)


def large_json(n: int = 40_000) -> bytes:
    """A JSON work-list larger than what the client keeps in memory (SPOOL_IN_MEMORY)."""
    items = ",".join(json.dumps({"DOI": f"10.1/large.{i}", "title": ["Esketamine " * 12]}) for i in range(n))
    body = ('{"status": "ok", "message": {"items": [' + items + "]}}").encode()
    assert len(body) > SPOOL_IN_MEMORY
    return body


def test_a_large_body_is_spooled_and_read_back_whole(raw_server):
    body = large_json()
    server = raw_server([http_answer(body, "application/json")])
    response = client([]).get(server.url, source="crossref")
    assert response.size == len(body)
    assert response.stream().read() == body and response.head(20) == body[:20]
    assert response.content == body and len(server.requests) == 1


def test_a_large_body_cut_off_midway_is_retried(raw_server):
    body = large_json()
    sleeps: list[float] = []
    server = raw_server([close_delimited(body[: len(body) - 5000], "application/json"), http_answer(body, "application/json")])
    response = client(sleeps).get(server.url, source="crossref")
    assert response.content == body and len(server.requests) == 2 and len(sleeps) == 1


def test_a_large_xml_body_is_checked_at_both_ends():
    items = b"".join(b"<fullTrial><trial><isrctn>ISRCTN%d</isrctn></trial></fullTrial>" % i for i in range(20_000))
    whole = b'<?xml version="1.0"?>\n<allTrials totalCount="20000">' + items + b"</allTrials>\n"
    assert truncation_problem({"Content-Type": "text/xml"}, whole) is None
    assert "XML answer is cut off" in (truncation_problem({"Content-Type": "text/xml"}, whole[:-200]) or "")


def test_no_room_for_the_spool_is_a_clear_error(raw_server, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))  # where the spool would roll over to
    server = raw_server([http_answer(large_json(), "application/json")])
    with pytest.raises(SourceError, match=r"^\[crossref\] cannot keep the answer in a temporary file in .*missing"):
        client([]).get(server.url, source="crossref")
