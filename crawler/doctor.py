"""`litmon doctor`: a live smoke test of every enabled source, the first thing to run on a new machine.

For each source it runs the source's own fetch code on a tiny window (the current week, one record per
page: ``page_size``/``batch_size``/``rows`` = 1, ``max_pages`` = 1, the topic filter off) through the
shared HTTP client, and stops it after at most ``MAX_REQUESTS`` requests (a search API that needs a
second request to return a record — PubMed's esearch then efetch — gets it). Nothing is written: no
database, no watermark. Per source it reports

* reachable: whether an HTTP answer came back at all (DNS, connection, TLS, timeouts otherwise);
* HTTP: the status of each answer (retries included);
* parse: whether the source's parser accepted the answer (an HTML error page, a changed format or a
  firewall page fails here, with the source's own message);
* fields: which normalized fields the first record carries (title, identifiers, date, url, abstract,
  authors, trial status), or why there was no record to look at;
* rate-limit headers: the ``X-Rate-Limit-*``, ``X-RateLimit-*``, ``RateLimit-*``, ``Retry-After`` and
  ``X-Concurrency-Limit`` headers the service sent.

A source fails when it is unreachable, answers an HTTP error, or its parser rejects the answer; the
command then exits 1. Sources switched off by their own check (OpenAlex without an API key) are listed
as disabled and do not fail the run.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from crawler import clock
from crawler.errors import SourceError
from crawler.http import HttpClient
from crawler.sources import SourceInstance, source_instances
from crawler.sources.base import CrawlContext

#: Requests a probe may send before it is stopped.
MAX_REQUESTS = 2
#: Settings shrunk to one record per request for the probe.
MINIMAL_SETTINGS = {"page_size": 1, "batch_size": 1, "rows": 1, "max_pages": 1, "max_results": 100000, "filter": False}
_RATE_HEADER_RE = re.compile(r"^(x-rate-?limit|x-ratelimit|ratelimit|retry-after|x-concurrency-limit)", re.I)


class _ProbeDone(Exception):
    """Raised inside the source's fetch code when the probe has what it needs."""


@dataclass
class ProbeResult:
    source: str
    status: str = "ok"  # ok | failed | disabled
    reachable: bool | None = None
    http_statuses: list[int] = field(default_factory=list)
    parse_ok: bool | None = None
    fields: list[str] = field(default_factory=list)
    note: str = ""
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _ProbeContext(CrawlContext):
    """A crawl context whose topic filter lets everything through (the probe checks the wire, not the topic)."""

    def matches_topic(self, *texts: str | None) -> bool:
        return True


class _ProbeHttp(HttpClient):
    """The shared client, recording every raw answer and stopping the probe after ``MAX_REQUESTS``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.sent = 0
        self.session.hooks["response"].append(self._record)

    def _record(self, response, *args, **kwargs):
        self.answers.append((response.status_code, dict(response.headers)))

    def request(self, method, url, **kwargs):
        if self.sent >= MAX_REQUESTS:
            raise _ProbeDone()
        self.sent += 1
        return super().request(method, url, **kwargs)


def run_doctor(config, only: list[str] | None = None, *, http_options: dict[str, Any] | None = None) -> list[ProbeResult]:
    """Probe every enabled source (or the named ones); nothing is written anywhere."""
    from crawler.pipeline import select_sources

    instances = select_sources(config, only) if only else [i for i in source_instances(config) if i.enabled]
    options = {**config.http, "max_retries": 1, "max_backoff_seconds": 10.0, **(http_options or {})}
    return [probe_source(config, instance, options) for instance in instances]


def probe_source(config, instance: SourceInstance, http_options: dict[str, Any]) -> ProbeResult:
    result = ProbeResult(instance.name)
    module = instance.module()
    check = getattr(module, "check_enabled", None)
    reason = check(instance.settings, config) if check else None
    if reason:
        result.status, result.note = "disabled", reason
        return result
    http = _ProbeHttp(config.contact_email, **http_options)
    first = _fetch_first_record(module, _probe_context(config, instance, module, http), http, result)
    _note_answers(result, http)
    if first is not None:
        result.fields = record_fields(first)
    elif result.parse_ok:
        result.note = (
            "no record in this week's window to look at"
            if http.sent < MAX_REQUESTS
            else "answer read; no record within the probe"
        )
    failed = (
        result.error is not None
        or result.reachable is False
        or any(status >= 400 for status in result.http_statuses[-1:])
        or result.parse_ok is False
    )
    result.status = "failed" if failed else "ok"
    return result


def _probe_context(config, instance: SourceInstance, module, http: _ProbeHttp) -> _ProbeContext:
    """The source's settings shrunk to one record, over the current week (from Monday), through ``http``."""
    settings = {**instance.settings, **MINIMAL_SETTINGS, **getattr(module, "PROBE_SETTINGS", {})}
    if settings.get("min_interval") is not None and settings.get("base_url"):
        http.set_min_interval(settings["base_url"], float(settings["min_interval"]))
    today = clock.today()
    return _ProbeContext(
        name=instance.name,
        settings=settings,
        config=config,
        http=http,
        since=today - dt.timedelta(days=today.weekday()),
        until=today,
        first_run=False,
        state={},
    )


def _fetch_first_record(module, ctx: _ProbeContext, http: _ProbeHttp, result: ProbeResult):
    """The first record the source parses (None if none); sets ``parse_ok`` and ``error`` on ``result``."""
    first = None
    try:
        for batch in module.fetch_records(ctx):
            if batch:
                first = batch[0]
                break
        result.parse_ok = True
    except _ProbeDone:
        result.parse_ok = True  # the source read the answer(s) and went on asking for more
    except SourceError as exc:
        result.error = str(exc)
        result.parse_ok = False if http.answers and all(s < 400 for s, _ in http.answers) else None
    except Exception as exc:  # a parser bug is a parse failure, not a crash of the doctor
        result.error = f"[{ctx.name}] unexpected {type(exc).__name__}: {exc}"
        result.parse_ok = False
    return first


def _note_answers(result: ProbeResult, http: _ProbeHttp) -> None:
    """Requests made, statuses answered, whether the host was reached, and its rate-limit headers."""
    result.requests = http.request_count
    result.http_statuses = [status for status, _ in http.answers]
    result.reachable = bool(http.answers) if http.request_count else None
    for _, headers in http.answers:
        for name, value in headers.items():
            if _RATE_HEADER_RE.match(name):
                result.rate_limit_headers[name] = value


def record_fields(record) -> list[str]:
    """The normalized fields a parsed record carries (what the digest and dedup can use)."""
    present = []
    if record.title:
        present.append("title")
    present += sorted({scheme for scheme, _ in record.identifiers})
    for name in ("published_on", "entered_on", "updated_on", "url", "abstract", "journal"):
        if getattr(record, name):
            present.append(name)
    if record.authors:
        present.append("authors")
    if record.trial and record.trial.get("overall_status"):
        present.append("trial status")
    return present


def render(results: list[ProbeResult]) -> str:
    lines = [f"{'source':34} {'reachable':9}  {'HTTP':9}  {'parse':5}  fields / note  [rate-limit headers]"]
    for r in results:
        if r.status == "disabled":
            lines.append(f"{r.source[:34]:34} disabled: {r.note}")
            continue
        reachable = "-" if r.reachable is None else "yes" if r.reachable else "NO"
        statuses = ",".join(str(s) for s in r.http_statuses) or "-"
        parse = "-" if r.parse_ok is None else "ok" if r.parse_ok else "FAIL"
        detail = ", ".join(r.fields) if r.fields else r.note
        limits = "  [" + "; ".join(f"{k}: {v}" for k, v in r.rate_limit_headers.items()) + "]" if r.rate_limit_headers else ""
        lines.append(f"{r.source[:34]:34} {reachable:9}  {statuses:9}  {parse:5}  {detail}{limits}")
        if r.error:
            lines.append(f"{'':34}   {r.status.upper()}: {r.error}")
    failed = [r.source for r in results if r.status == "failed"]
    lines.append("")
    lines.append(
        f"{len(failed)} of {len(results)} source(s) failed: {', '.join(failed)}" if failed else f"all {len(results)} source(s) ok"
    )
    return "\n".join(lines)
