"""The one HTTP client every source uses.

* connect/read timeouts per socket operation, and a wall-clock deadline per response
  (``response_timeout``: a server trickling one byte at a time cannot hold a run) and per source
  (``source_timeout``, set by :meth:`HttpClient.begin_source`);
* retries with exponential backoff and jitter on 429, 5xx, connection errors and truncated bodies
  (the connection closed before ``Content-Length`` bytes, a broken gzip stream, or a JSON/XML answer
  that ends mid-document: see :func:`truncation_problem`), honouring
  ``Retry-After`` (seconds or an HTTP date), never beyond ``max_retry_wait`` per pause nor
  ``max_backoff_seconds`` in all for one source in one run;
* a stop event (SIGTERM/SIGINT): every pause and every network wait ends at once with
  :class:`~crawler.errors.Interrupted`;
* a minimum interval between requests to the same host (NCBI: 3/s, 10/s with an API key);
* ``User-Agent: litmon/<version> (mailto:<contact_email>)``;
* a cap on the size of a response body, which is spooled to an unlinked temporary file beyond
  :data:`SPOOL_IN_MEMORY` bytes, so that a large answer can be parsed item by item from
  :meth:`Response.stream` without the whole body (or its parsed tree) ever being in memory.

Failures raise :class:`SourceError` naming the source, the URL and what to check.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import io
import logging
import random
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import ijson

from crawler import __version__, clock
from crawler.errors import Interrupted, SourceError, redact_text
from crawler.sources.parsing import decode_json, looks_like_html

if TYPE_CHECKING:  # (imported where the first session is made: see HttpClient.session)
    import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}

#: A body cut off in transit: the connection closed before Content-Length bytes (urllib3's
#: IncompleteRead, as ChunkedEncodingError) or a compressed stream that does not decode.


#: Bodies up to this size stay in memory; larger ones are spooled to an unlinked temporary file.
SPOOL_IN_MEMORY = 4 * 1024 * 1024
#: How much of the start (and end) of a body the checks look at.
HEAD_BYTES = 65536


class Response:
    """What a source needs from an HTTP answer: the body is read in full, within the size cap, before
    the client returns (so truncation is detected and retried here), and kept in memory up to
    :data:`SPOOL_IN_MEMORY` bytes, in an unlinked temporary file beyond. ``content`` gives it as
    bytes; :meth:`stream` as a binary file from its start, for parsers that read item by item."""

    def __init__(self, status: int, url: str, headers, body: bytes | IO[bytes], source: str):
        self.status = status
        self.url = url
        self.headers = headers
        self.source = source
        self._body: IO[bytes] = io.BytesIO(body) if isinstance(body, bytes) else body
        self._body.seek(0, io.SEEK_END)
        self.size = self._body.tell()
        self._content: bytes | None = body if isinstance(body, bytes) else None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def content(self) -> bytes:
        """The whole body as bytes (read from the spool once; parsers of large answers use :meth:`stream`)."""
        if self._content is None:
            self._content = self.stream().read()
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def stream(self) -> IO[bytes]:
        """The body as a binary file positioned at its start (one reader at a time)."""
        self._body.seek(0)
        return self._body

    def head(self, length: int = HEAD_BYTES) -> bytes:
        """The first ``length`` bytes of the body."""
        return self.stream().read(length)

    def snippet(self, length: int = 120) -> str:
        return " ".join(self.head(length * 4).decode("utf-8", errors="replace")[:length].split())

    def json(self) -> Any:
        """Parse the body as JSON, or raise a SourceError saying what came instead."""
        return decode_json(self.content, self.source, url=self.url, content_type=self.content_type)

    def close(self) -> None:
        """Release the body (the temporary file of a spooled one)."""
        self._content = None
        self._body.close()


def user_agent(contact_email: str) -> str:
    return f"litmon/{__version__} (+https://github.com/litmon/litmon; mailto:{contact_email})"


# --------------------------------------------------------------------------- sockets a watchdog can cut
# A read timeout bounds each socket read, not a whole answer: a server sending one byte every few
# seconds never trips it. The connections below note their socket per thread, so that a watchdog
# thread can shut it down when the response's deadline passes or a stop is requested; the blocked
# read then ends at once and the request fails with the reason the watchdog recorded.

_SOCKETS: dict[int, set[socket.socket]] = {}
_SOCKETS_LOCK = threading.Lock()


def _note_socket(sock) -> None:
    if sock is not None:
        with _SOCKETS_LOCK:
            _SOCKETS.setdefault(threading.get_ident(), set()).add(sock)


def _forget_sockets(thread_id: int) -> None:
    with _SOCKETS_LOCK:
        _SOCKETS.pop(thread_id, None)


def _cut_sockets(thread_id: int) -> None:
    with _SOCKETS_LOCK:
        sockets = list(_SOCKETS.get(thread_id, ()))
    for sock in sockets:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's method, also under TLS
        except OSError:
            pass


@functools.cache
def _tracked_adapter() -> type:
    """requests' ``HTTPAdapter`` whose connections note their sockets (above). Made with the first session: requests
    and urllib3 are imported there, not with this module (~0.3 G instructions, a quarter of a crawl's start before the
    fetch worker's fork; the process writing the database beside that worker never needs them)."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class TrackedHTTPConnection(HTTPConnection):
        def connect(self):
            super().connect()
            _note_socket(self.sock)

        def request(self, *args, **kwargs):
            _note_socket(self.sock)  # a kept-alive connection reused by this thread
            return super().request(*args, **kwargs)

    class TrackedHTTPSConnection(HTTPSConnection):
        def connect(self):
            super().connect()
            _note_socket(self.sock)

        def request(self, *args, **kwargs):
            _note_socket(self.sock)
            return super().request(*args, **kwargs)

    class TrackedHTTPPool(HTTPConnectionPool):
        ConnectionCls = TrackedHTTPConnection

    class TrackedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = TrackedHTTPSConnection

    class TrackedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": TrackedHTTPPool, "https": TrackedHTTPSPool}

    return TrackedAdapter


class _Watchdog:
    """Cuts the calling thread's sockets at ``deadline`` (monotonic) or when ``stop`` is set."""

    def __init__(self, deadline: float, stop: threading.Event | None, cancel: threading.Event | None = None):
        self.deadline = deadline
        self.stop = stop
        self.cancel = cancel
        self.reason: str | None = None  # "deadline" | "stop" once it fired
        self._done = threading.Event()
        self._target = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="litmon-http-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        _forget_sockets(self._target)

    def _watch(self) -> None:
        while True:
            left = self.deadline - time.monotonic()
            if (self.stop is not None and self.stop.is_set()) or (self.cancel is not None and self.cancel.is_set()):
                self.reason = "stop"
                break
            if left <= 0:
                self.reason = "deadline"
                break
            if self._done.wait(min(left, 0.1)):
                return
        _cut_sockets(self._target)


class HttpClient:
    """``sleep``, when given (tests), is called instead of sleeping for every pause, and the spacing of requests to a
    host is then measured on the pauses alone, as if each request took no time: the pauses asked for do not depend on
    how fast the machine answers (a loaded machine's slow loopback requests would otherwise leave none)."""

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
        response_timeout: float = 300.0,
        source_timeout: float = 3600.0,
        max_backoff_seconds: float = 300.0,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
    ):
        self._session: requests.Session | None = None  # (made at the first request: see session)
        self._session_lock = threading.Lock()
        self._user_agent = user_agent(contact_email)
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_retry_wait = max_retry_wait
        self.response_timeout = response_timeout
        self.source_timeout = source_timeout
        self.max_backoff_seconds = max_backoff_seconds
        #: set by SIGTERM/SIGINT: pauses and network waits end at once with Interrupted
        self.stop = stop
        self._source_deadline: float | None = None
        self._backoff_spent = 0.0
        self.max_bytes = int(max_response_mb * 1024 * 1024)
        self.default_min_interval = default_min_interval
        self.min_intervals: dict[str, float] = {}
        self._last_request: dict[str, float] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # per thread: the cancel event of a prefetch (cancellable)
        self._sleep = sleep
        self._slept = 0.0  # seconds paused through an injected sleep: the spacing's clock when one is given
        self.request_count = 0

    @property
    def session(self) -> requests.Session:
        """requests' session, with the adapter whose sockets a watchdog can cut and litmon's User-Agent, made when first
        used: a process that makes no request (the one writing the database beside a fetch worker) imports neither
        requests nor urllib3."""
        if self._session is None:
            with self._session_lock:
                if self._session is None:
                    import requests

                    session = requests.Session()
                    adapter = _tracked_adapter()()
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                    session.headers["User-Agent"] = self._user_agent
                    self._session = session
        return self._session

    def after_fork(self) -> None:
        """In a forked child (:mod:`crawler.fetch_worker`): connections and locks of its own. The pooled
        connections inherited from the parent are dropped, never used (a request of the child on the
        parent's kept-alive socket, or a watchdog's shutdown of it, would break the parent's next request);
        a lock another thread held at the fork is never released in the child."""
        global _SOCKETS_LOCK
        _SOCKETS_LOCK = threading.Lock()
        _SOCKETS.clear()
        self._lock = threading.Lock()
        self._session_lock = threading.Lock()
        self._local = threading.local()
        if self._session is None:
            return  # (no connection made before the fork: the child makes its own session when it first asks)
        from requests.adapters import HTTPAdapter

        for adapter in self._session.adapters.values():
            if isinstance(adapter, HTTPAdapter):
                adapter.poolmanager.clear()  # closes the child's copies of the sockets only

    def begin_source(self) -> None:
        """Start the time budget of one source: ``source_timeout`` in all, ``max_backoff_seconds`` of pauses."""
        self._source_deadline = time.monotonic() + self.source_timeout
        self._backoff_spent = 0.0

    @contextlib.contextmanager
    def cancellable(self, cancel: threading.Event) -> Iterator[None]:
        """Within the block, in this thread, setting ``cancel`` ends every network wait and pause at once
        with Interrupted, as a stop request does (a prefetch in a background thread whose page is no
        longer wanted)."""
        self._local.cancel = cancel
        try:
            yield
        finally:
            self._local.cancel = None

    def _cancel_event(self) -> threading.Event | None:
        return getattr(self._local, "cancel", None)

    def _pause(self, seconds: float) -> None:
        """Sleep (rate limit or backoff); a stop request ends the pause at once with Interrupted."""
        cancel = self._cancel_event()
        if (self.stop is not None and self.stop.is_set()) or (cancel is not None and cancel.is_set()):
            raise Interrupted("stop requested")
        if self._sleep is not None:
            self._slept += seconds
            self._sleep(seconds)
        elif cancel is not None:
            ends = time.monotonic() + seconds
            while (left := ends - time.monotonic()) > 0:
                if cancel.wait(min(left, 0.1)) or (self.stop is not None and self.stop.is_set()):
                    raise Interrupted("stop requested")
        elif self.stop is not None:
            if self.stop.wait(seconds):
                raise Interrupted("stop requested")
        else:
            time.sleep(seconds)

    def _backoff(self, source: str, delay: float, problem: str, url: str, params) -> None:
        """Pause before a retry, within what is left of the source's backoff and time budgets."""
        left = self.max_backoff_seconds - self._backoff_spent
        if self._source_deadline is not None:
            left = min(left, self._source_deadline - time.monotonic())
        if delay > left:
            raise SourceError(
                source,
                f"{problem}; gave up instead of waiting {delay:.0f}s more: this source has {max(left, 0):.0f}s of its "
                f"backoff budget left for this run",
                hint="whether the service is up (it is retried on the next run); http.max_backoff_seconds and "
                "http.source_timeout in the config",
                url=_display_url(url, params),
            )
        self._backoff_spent += delay
        self._pause(delay)

    def _deadline(self) -> float:
        deadline = time.monotonic() + self.response_timeout
        return min(deadline, self._source_deadline) if self._source_deadline is not None else deadline

    def _too_slow(self, source: str, url: str, params) -> SourceError:
        if self._source_deadline is not None and time.monotonic() >= self._source_deadline - 0.05:
            what = f"the source used up its time budget of {self.source_timeout:g}s (http.source_timeout)"
        else:
            what = f"the answer did not arrive within {self.response_timeout:g}s (http.response_timeout)"
        return SourceError(
            source,
            f"too slow: {what}",
            hint="whether the service is overloaded (it is retried on the next run); http.response_timeout in the config",
            url=_display_url(url, params),
        )

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
            now = self._spacing_clock()
            if last is not None and now - last < interval:
                self._pause(interval - (now - last))
            self._last_request[host] = self._spacing_clock()

    def _spacing_clock(self) -> float:
        return self._slept if self._sleep is not None else time.monotonic()

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
        import requests  # (imported by self.session below at the first request)

        host = urlsplit(url).netloc
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            self._wait_for_host(host)
            if self._source_deadline is not None and time.monotonic() >= self._source_deadline:
                raise self._too_slow(source, url, params)
            self.request_count += 1
            response = None
            body: IO[bytes] | None = None
            watchdog = _Watchdog(self._deadline(), self.stop, self._cancel_event())
            try:
                with watchdog:
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
                        response.close()
                    else:
                        body = self._read_capped(response, source)
                if watchdog.reason:  # the answer came complete just as the watchdog fired
                    raise requests.ConnectionError("cut by the watchdog")
                cut = (
                    None if body is None or response.status_code in RETRY_STATUSES else truncation_problem(response.headers, body)
                )
                if cut:
                    self._discard(body)
                if cut and attempt < self.max_retries:
                    last_problem = f"{cut} from {host}"
                    delay = self._retry_delay(attempt, None)
                    log.info("[%s] %s; retry %d/%d in %.1fs", source, last_problem, attempt + 1, self.max_retries, delay)
                    self._backoff(source, delay, last_problem, url, params)
                    continue
                if cut:
                    raise SourceError(
                        source,
                        f"{cut} after {attempt + 1} attempts",
                        hint="whether the service or a proxy cuts long answers (a smaller page_size, where the source has "
                        "one, helps); it is retried on the next run",
                        url=_display_url(url, params),
                    )
                if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                    last_problem = f"HTTP {response.status_code}"
                    delay = self._retry_delay(attempt, response)
                    log.info(
                        "[%s] %s from %s; retry %d/%d in %.1fs", source, last_problem, host, attempt + 1, self.max_retries, delay
                    )
                    self._backoff(source, delay, last_problem, url, params)
                    continue
            except requests.RequestException as exc:
                self._discard(body)
                if watchdog.reason == "stop":
                    raise Interrupted("stop requested") from None
                if watchdog.reason == "deadline":
                    raise self._too_slow(source, url, params) from None
                transient: tuple[type[Exception], ...] = (requests.ConnectionError, requests.Timeout, *_truncated_body_errors())
                if not isinstance(exc, transient):
                    raise SourceError(
                        source, f"request failed: {_short(exc)}", hint="the base_url in the config", url=_display_url(url, params)
                    ) from None
                last_problem = describe_network_error(exc, _display_host(url))
                # A host name that does not resolve does not resolve seconds later (offline, a typo in
                # base_url, no DNS): not a transient error, so not retried; the next run tries again.
                retries = 0 if _is_dns_failure(exc) else self.max_retries
                if attempt < retries:
                    delay = self._retry_delay(attempt, None)
                    log.info("[%s] %s; retry %d/%d in %.1fs", source, last_problem, attempt + 1, retries, delay)
                    self._backoff(source, delay, last_problem, url, params)
                    continue
                raise SourceError(
                    source,
                    f"network error after {attempt + 1} attempts: {last_problem}"
                    if attempt
                    else f"network error: {last_problem}",
                    hint="network access to the host and the base_url in the config",
                    url=_display_url(url, params),
                ) from None
            assert body is not None  # a retry status read no body only when it is retried above
            result = Response(response.status_code, response.url, response.headers, body, source)
            if response.status_code not in ok_statuses:
                hint = {
                    400: "the query in the config (the service rejected it)",
                    401: "the API key",
                    403: "the API key, the contact address, or whether the service blocks this client",
                    404: "the base_url in the config",
                    429: "the rate limit: run less often or configure an API key",
                }.get(response.status_code, "whether the service is up; it is retried on the next run")
                snippet = result.snippet()
                result.close()
                raise SourceError(source, f"HTTP {response.status_code}: {snippet!r}", hint=hint, url=result.url)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _discard(body: IO[bytes] | None) -> None:
        if body is not None:
            body.close()

    def _read_capped(self, response: requests.Response, source: str) -> IO[bytes]:
        """The body, read within the size cap into a spool (memory up to SPOOL_IN_MEMORY, a temporary file beyond)."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            raise SourceError(
                source,
                f"response of {int(declared)} bytes exceeds the cap of {self.max_bytes} bytes",
                hint="http.max_response_mb in the config, or a smaller page size",
                url=response.url,
            )
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, prefix="litmon-body-")
        size = 0
        try:
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
                try:
                    spool.write(chunk)
                except OSError as exc:  # the spool's temporary file: disk full, no writable temporary directory
                    response.close()
                    raise SourceError(
                        source,
                        f"cannot keep the answer in a temporary file in {tempfile.gettempdir()}: {exc.strerror or exc}",
                        hint="free space in that directory, or point TMPDIR at a writable directory with room",
                        url=response.url,
                    ) from None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool


_XML_ROOT_RE = re.compile(rb"<([A-Za-z_][\w.:-]*)[^>]*?(/?)>")


def truncation_problem(headers, body: bytes | IO[bytes]) -> str | None:
    """Why a complete-looking answer is a cut-off one, or None.

    Only answers that declare JSON or XML are checked (HTML and text are left to the sources): a
    JSON body must parse (checked by a streaming pass: no tree is built), an XML body must close its
    root element. An HTML page served under a JSON/XML content type (a WAF, a proxy error) is no
    truncation and is left to the source."""
    kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stripped = head.lstrip()
    if not stripped or looks_like_html(head):
        return None
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    if kind.endswith(("/json", "+json")) and stripped[:1] in (b"{", b"["):
        stream.seek(len(head) - len(stripped))
        try:
            for _event in ijson.basic_parse(stream, use_float=True):
                pass
        except ijson.IncompleteJSONError as exc:
            # cut off = the document is fine up to where it stops (malformed JSON is left to the source)
            if "premature EOF" in str(exc):
                return f"the JSON answer is cut off ({size} bytes, ends with {_tail(stream, size)!r})"
        except (ijson.JSONError, ValueError):
            return None
        return None
    if kind.endswith(("/xml", "+xml")) and stripped[:1] == b"<":
        if size <= 2 * HEAD_BYTES:
            stream.seek(0)
            complete = _xml_complete(stream.read().strip())
        else:
            stream.seek(size - HEAD_BYTES)
            complete = _xml_complete(head.strip(), stream.read().rstrip())
        return None if complete else f"the XML answer is cut off ({size} bytes, ends with {_tail(stream, size)!r})"
    return None


def _xml_complete(body: bytes, tail: bytes | None = None) -> bool:
    """Whether the document's root element is closed (cheap: the root's end tag ends the document).

    ``tail``: the end of a large body whose start is ``body`` (else ``body`` is the whole document)."""
    end = body if tail is None else tail
    position = 0
    while True:
        match = _XML_ROOT_RE.search(body, position)
        if match is None:
            return False
        start = body.rfind(b"<", 0, match.end())
        if body.startswith((b"<?", b"<!"), start):  # declaration, doctype, comment
            position = match.end()
            continue
        break
    name, self_closed = match.group(1), match.group(2)
    if self_closed:
        return True
    return end.endswith(b"</" + name + b">") or bool(
        re.search(rb"</" + re.escape(name) + rb"\s*>\s*(<!--.*?-->\s*)*$", end, re.S)
    )


def _tail(stream: IO[bytes], size: int, length: int = 30) -> str:
    stream.seek(max(0, size - 4 * length))
    return stream.read().strip()[-length:].decode("utf-8", "replace")


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


def _truncated_body_errors() -> tuple[type[Exception], ...]:
    """requests' errors for a body cut off or damaged on the way: retried as network errors are."""
    import requests

    return (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)


def describe_network_error(exc: Exception, host: str) -> str:
    """A short, human reason for a connection-level failure (the full text is in -v logs)."""
    import requests

    text = repr(exc)
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return f"the compressed body from {host} does not decode (cut off or damaged gzip stream)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"{host} closed the connection before the whole body arrived (truncated response)"
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
    import requests

    req = requests.Request("GET", url, params=params).prepare()
    return req.url or url
