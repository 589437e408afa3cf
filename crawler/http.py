"""The one HTTP client every source uses.

* connect/read timeouts;
* retries with exponential backoff and jitter on 429, 5xx and connection errors, honouring
  ``Retry-After`` (seconds or an HTTP date), never beyond ``max_retry_wait``;
* a minimum interval between requests to the same host (NCBI: 3/s, 10/s with an API key);
* ``User-Agent: litmon/<version> (mailto:<contact_email>)``;
* a cap on the size of a response body.

Failures raise :class:`SourceError` naming the source, the URL and what to check.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from crawler import __version__, clock
from crawler.errors import SourceError, redact_text

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class Response:
    """What a source needs from an HTTP answer (the body is already read, within the size cap)."""

    status: int
    url: str
    headers: requests.structures.CaseInsensitiveDict
    content: bytes
    source: str

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def snippet(self, length: int = 120) -> str:
        return " ".join(self.text[:length].split())

    def json(self) -> Any:
        """Parse the body as JSON, or raise a SourceError saying what came instead."""
        try:
            return json.loads(self.content)
        except ValueError:
            kind = "an HTML page" if looks_like_html(self.content) else f"'{self.content_type or 'unknown'}' content"
            raise SourceError(
                self.source,
                f"expected JSON but got {kind}: {self.snippet()!r}",
                hint="the base_url in the config and whether the service is up",
                url=self.url,
            ) from None


def looks_like_html(content: bytes) -> bool:
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]


def user_agent(contact_email: str) -> str:
    return f"litmon/{__version__} (+https://github.com/litmon/litmon; mailto:{contact_email})"


class HttpClient:
    def __init__(
        self,
        contact_email: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_retries: int = 4,
        backoff_seconds: float = 2.0,
        max_retry_wait: float = 300.0,
        max_response_mb: float = 100.0,
        default_min_interval: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent(contact_email)
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_retry_wait = max_retry_wait
        self.max_bytes = int(max_response_mb * 1024 * 1024)
        self.default_min_interval = default_min_interval
        self.min_intervals: dict[str, float] = {}
        self._last_request: dict[str, float] = {}
        self._lock = threading.Lock()
        self._sleep = sleep
        self.request_count = 0

    @classmethod
    def from_config(cls, config) -> HttpClient:
        return cls(config.contact_email, **config.http)

    def set_min_interval(self, url_or_host: str, seconds: float) -> None:
        """Space requests to this host at least ``seconds`` apart."""
        host = urlsplit(url_or_host).netloc or url_or_host
        self.min_intervals[host] = seconds

    def _wait_for_host(self, host: str) -> None:
        interval = self.min_intervals.get(host, self.default_min_interval)
        with self._lock:
            last = self._last_request.get(host)
            now = time.monotonic()
            if last is not None and now - last < interval:
                self._sleep(interval - (now - last))
            self._last_request[host] = time.monotonic()

    def _retry_delay(self, attempt: int, response: requests.Response | None) -> float:
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, self.max_retry_wait)
        base = self.backoff_seconds * (2**attempt)
        return min(base + random.uniform(0, base / 2), self.max_retry_wait)

    def get(self, url: str, *, source: str, params=None, headers=None, ok_statuses=(200,)) -> Response:
        return self.request("GET", url, source=source, params=params, headers=headers, ok_statuses=ok_statuses)

    def post(self, url: str, *, source: str, data=None, json_body=None, headers=None, ok_statuses=(200,)) -> Response:
        return self.request("POST", url, source=source, data=data, json_body=json_body, headers=headers, ok_statuses=ok_statuses)

    def request(
        self, method, url, *, source, params=None, data=None, json_body=None, headers=None, ok_statuses=(200,)
    ) -> Response:
        host = urlsplit(url).netloc
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            self._wait_for_host(host)
            self.request_count += 1
            response = None
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    json=json_body,
                    headers=headers,
                    timeout=self.timeout,
                    stream=True,
                )
                if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                    last_problem = f"HTTP {response.status_code}"
                    delay = self._retry_delay(attempt, response)
                    log.info(
                        "[%s] %s from %s; retry %d/%d in %.1fs", source, last_problem, host, attempt + 1, self.max_retries, delay
                    )
                    response.close()
                    self._sleep(delay)
                    continue
                body = self._read_capped(response, source)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = describe_network_error(exc, _display_host(url))
                # A host name that does not resolve does not resolve seconds later (offline, a typo in
                # base_url, no DNS): not a transient error, so not retried; the next run tries again.
                retries = 0 if _is_dns_failure(exc) else self.max_retries
                if attempt < retries:
                    delay = self._retry_delay(attempt, None)
                    log.info("[%s] %s; retry %d/%d in %.1fs", source, last_problem, attempt + 1, retries, delay)
                    self._sleep(delay)
                    continue
                raise SourceError(
                    source,
                    f"network error after {attempt + 1} attempts: {last_problem}"
                    if attempt
                    else f"network error: {last_problem}",
                    hint="network access to the host and the base_url in the config",
                    url=_display_url(url, params),
                ) from None
            except requests.RequestException as exc:
                raise SourceError(
                    source, f"request failed: {_short(exc)}", hint="the base_url in the config", url=_display_url(url, params)
                ) from None
            result = Response(response.status_code, response.url, response.headers, body, source)
            if response.status_code not in ok_statuses:
                hint = {
                    400: "the query in the config (the service rejected it)",
                    401: "the API key",
                    403: "the API key, the contact address, or whether the service blocks this client",
                    404: "the base_url in the config",
                    429: "the rate limit: run less often or configure an API key",
                }.get(response.status_code, "whether the service is up; it is retried on the next run")
                raise SourceError(source, f"HTTP {response.status_code}: {result.snippet()!r}", hint=hint, url=result.url)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_capped(self, response: requests.Response, source: str) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            raise SourceError(
                source,
                f"response of {int(declared)} bytes exceeds the cap of {self.max_bytes} bytes",
                hint="http.max_response_mb in the config, or a smaller page size",
                url=response.url,
            )
        chunks, size = [], 0
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > self.max_bytes:
                response.close()
                raise SourceError(
                    source,
                    f"response body exceeds the cap of {self.max_bytes} bytes",
                    hint="http.max_response_mb in the config, or a smaller page size",
                    url=response.url,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no zone information
        when = when.replace(tzinfo=clock.UTC)
    return max(0.0, (when - clock.now()).total_seconds())


def _display_host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")


def describe_network_error(exc: Exception, host: str) -> str:
    """A short, human reason for a connection-level failure (the full text is in -v logs)."""
    text = repr(exc)
    if _is_dns_failure(exc):
        return f"cannot resolve host name {host} (DNS)"
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return f"connection refused by {host}"
    if isinstance(exc, requests.Timeout) or "timed out" in text:
        return f"{host} did not answer in time ({type(exc).__name__})"
    if "SSLError" in text or "CERTIFICATE" in text:
        return f"TLS/SSL error with {host}: {_short(exc)}"
    return f"{type(exc).__name__} talking to {host}: {_short(exc)}"


def _is_dns_failure(exc: Exception) -> bool:
    text = repr(exc)
    return any(
        s in text
        for s in (
            "NameResolutionError",
            "Name or service not known",
            "name resolution",
            "getaddrinfo failed",
            "nodename nor servname",
        )
    )


def _short(exc: Exception) -> str:
    text = redact_text(str(exc))  # requests quotes the URL, API key included
    return text if len(text) < 200 else text[:200] + "…"


def _display_url(url, params) -> str:
    if not params:
        return url
    req = requests.Request("GET", url, params=params).prepare()
    return req.url
