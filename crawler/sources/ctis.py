"""EU Clinical Trials Information System (CTIS, euclinicaltrials.eu): trials authorised in the EU.

Every clinical trial of a medicinal product authorised in the EU/EEA since 2023 — and every trial
transitioned from the old EU register since 2025 — is registered in CTIS under an EU CT number
(``2023-501234-12-00``). CTIS has no documented API; its public portal uses two JSON endpoints, the
same ones the ctrdata R package (rfhb/ctrdata, ``R/ctrLoadQueryIntoDbCtis.R``) reads:

Endpoints
    ``POST <base_url>search`` (base_url ``https://euclinicaltrials.eu/ctis-public-api/``) with the
    JSON body ``{"pagination": {"page": 1, "size": N}, "sort": {"property": "decisionDate",
    "direction": "DESC"}, "searchCriteria": {"containAny": "<query>"}}``; pages are 1-based. The
    answer is ``{"pagination": {"totalRecords", "currentPage", "totalPages", "nextPage",
    "prevPage"}, "data": [<trial overview>]}``; an overview carries ``ctNumber``, ``ctStatus`` (a
    public status code), ``ctTitle``, ``conditions``, ``sponsor``, ``trialPhase``,
    ``trialCountries`` (``"Ireland:2"``), ``decisionDateOverall``, ``startDateEU``, ``endDate``,
    ``lastUpdated``, ``totalNumberEnrolled`` … with dates written ``DD/MM/YYYY`` (European order,
    unlike the US agencies' pages).
    ``GET <base_url>retrieve/<ctNumber>`` answers the full public record (ISO dates): ``ctStatus``,
    ``ctPublicStatusCode``, ``decisionDate``, ``publishDate``, and ``authorizedApplication`` with
    ``eudraCt.eudraCtCode``, ``memberStatesConcerned[].mscName`` and ``authorizedPartI``
    (``sponsors[].organisation.name``, ``products[].productName``, ``medicalConditions[]``,
    ``trialDetails.clinicalTrialIdentifiers`` with ``fullTitle``, ``publicTitle`` and
    ``secondaryIdentifyingNumbers`` — ``nctNumber.number``, ``isrctnNumber.number``,
    ``additionalRegistries[]`` —, ``trialDetails.trialInformation.trialDuration``).

Incremental strategy
    The search has no date criterion that anyone has verified, so each run reads the topic's whole
    result list (sorted by decision date, ``page_size`` per page, at most ``max_results`` trials:
    a topic query matches tens of trials, not thousands) and windows it locally on the register's
    last-update date: only trials whose ``lastUpdated`` is on or after the watermark minus
    ``[crawl] overlap_days`` (or that carry no such date) are retrieved in full. A new trial or any
    change (status, dates, sponsor, member states) moves ``lastUpdated``; the store recognises an
    unchanged record, and a change of a tracked field (status, phase, dates, enrolment) becomes a
    trial snapshot, as for ClinicalTrials.gov, so the digest shows it.

Identity
    The EU CT number is the ``euct`` identifier; the EudraCT number of a transitioned trial, the
    ClinicalTrials.gov and ISRCTN numbers the sponsor declared are identifiers of the same work,
    so a trial registered in CTIS and ClinicalTrials.gov becomes one work.

Status
    ``ctPublicStatusCode`` (the search's ``ctStatus``) is mapped to the portal's labels: 1 Under
    evaluation, 2 Authorised, recruitment pending, 3 Authorised, recruiting, 4 Ongoing, recruiting,
    5 Ongoing, recruitment ended, 6 Temporarily halted, 7 Suspended, 8 Ended, 9 Expired, 10 Revoked,
    11 Not authorised, 12 Cancelled (the mapping ctrdata uses).

Failures
    The site sits behind a web application firewall that at times answers with an HTML page (a
    challenge or a block, HTTP 200 or 403) instead of JSON: the source then fails with that reason
    (and the page's title), keeps what is stored, and is retried on the next run. A trial whose
    ``retrieve`` answers 404 (withdrawn from public view) is stored from its overview, with a warning.

Etiquette
    One request per second by default (``min_interval``); the shared User-Agent names the contact.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.http import Response
from crawler.records import Record
from crawler.sources import parsing
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import decode_json, looks_like_html, parse_int
from crawler.sources.settings.ctis import DEFAULT_MAX_RESULTS, DEFAULT_PAGE_SIZE
from crawler.sources.settings.ctis import Settings as Settings  # the keys of its table, declared apart

NAME = "ctis"
CORPUS_DIR = None  # no recorded CTIS answers in /work/shared/corpus; see tests/fixtures/ctis
BATCH_SIZE = 50
RECORD_URL = "https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={}"
#: `litmon doctor`: one search page holds the whole (topic) result list, so its 2nd request is a retrieve.
PROBE_SETTINGS = {"page_size": 100}

#: ctPublicStatusCode -> the portal's label (ctrdata's mapping, R/f_statusRecruitment.R).
STATUS_LABELS = {
    1: "Under evaluation",
    2: "Authorised, recruitment pending",
    3: "Authorised, recruiting",
    4: "Ongoing, recruiting",
    5: "Ongoing, recruitment ended",
    6: "Temporarily halted",
    7: "Suspended",
    8: "Ended",
    9: "Expired",
    10: "Revoked",
    11: "Not authorised",
    12: "Cancelled",
}


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    query = build_query(ctx.settings.get("query"))
    size = _positive_int(ctx.settings.get("page_size", DEFAULT_PAGE_SIZE), "page_size")
    max_results = _positive_int(ctx.settings.get("max_results", DEFAULT_MAX_RESULTS), "max_results")
    entry = ctx.log_query(query, ctx.since, ctx.until, hits=0, total=None, pages=0, in_window=0, retrieved=0)
    overviews = fetch_overviews(ctx, query, size, max_results, entry)
    ctx.count_downloaded(len(overviews))
    selected = [o for o in overviews if in_window(o, ctx.since)]
    entry.params["in_window"] = len(selected)
    batch: list[Record] = []
    for overview in selected:
        detail = fetch_detail(ctx, str(overview["ctNumber"]))
        entry.params["retrieved"] += detail is not None
        record = parse_trial(overview, detail)
        if record is None:
            ctx.skip(f"a trial without an EU CT number: {str(overview)[:120]}")
            continue
        batch.append(record)
        entry.hits = (entry.hits or 0) + 1
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def build_query(query) -> str:
    if isinstance(query, list):
        query = " ".join(str(q).strip() for q in query if str(q).strip())
    if not query or not str(query).strip():
        raise SourceError(NAME, "no query configured", hint='set query in [sources.ctis], e.g. "ketamine esketamine"')
    return str(query).strip()


def build_search_body(query: str, page: int, size: int) -> dict[str, Any]:
    return {
        "pagination": {"page": page, "size": size},
        "sort": {"property": "decisionDate", "direction": "DESC"},
        "searchCriteria": {"containAny": query},
    }


def fetch_overviews(ctx: CrawlContext, query: str, size: int, max_results: int, entry) -> list[dict[str, Any]]:
    """Every trial overview the search returns for the query (all pages), de-duplicated by EU CT number."""
    url = ctx.base_url + "search"
    found: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        response = ctx.http.post(url, source=ctx.name, json_body=build_search_body(query, page, size), ok_statuses=(200, 403))
        data = read_json(response)
        pagination, items = parse_search(data, url=response.url)
        entry.params["pages"] = page
        total = parse_int(pagination.get("totalRecords"))
        if entry.params["total"] is None:
            entry.params["total"] = total
            if total is not None and total > max_results:
                raise SourceError(
                    NAME,
                    f"the query matches {total} trials, more than max_results={max_results}",
                    hint="narrow [sources.ctis].query (words the trials must contain), or raise max_results",
                    url=response.url,
                )
        for item in items:
            number = ids.normalize_euct(item.get("ctNumber"))
            if number:
                found.setdefault(number, {**item, "ctNumber": number})
        total_pages = parse_int(pagination.get("totalPages"))
        more = pagination.get("nextPage")
        if not items or more is False or (more is None and (total_pages is None or page >= total_pages)):
            return list(found.values())
        page += 1
        if page > max_results // size + 2:
            raise SourceError(NAME, f"paging did not end after {page - 1} pages", hint="whether the API changed", url=url)


def fetch_detail(ctx: CrawlContext, number: str) -> dict[str, Any] | None:
    """The full public record of one trial; None (with a warning) when CTIS no longer shows it."""
    response = ctx.http.get(ctx.base_url + f"retrieve/{number}", source=ctx.name, ok_statuses=(200, 403, 404))
    if response.status == 404:
        ctx.warn(f"{number}: retrieve answered 404 (not public any more?); stored from the search overview")
        return None
    data = read_json(response)
    if not isinstance(data, dict):
        raise SourceError(NAME, f"retrieve/{number} answered {type(data).__name__}, expected a trial object", url=response.url)
    return data


def read_json(response: Response) -> Any:
    """The JSON body, or a SourceError that says a firewall page came instead."""
    if looks_like_html(response.content) or response.status == 403:
        title = re.search(rb"<title>(.*?)</title>", response.content, re.I | re.S)
        what = f" titled {' '.join(title.group(1).decode('utf-8', 'replace').split())[:80]!r}" if title else ""
        raise SourceError(
            NAME,
            f"CTIS answered HTTP {response.status} with an HTML page{what} instead of JSON: the site's web application "
            "firewall blocked or challenged the request",
            hint="nothing to change if it passes on the next run; if it persists, whether euclinicaltrials.eu blocks "
            "this network, and the contact address in the User-Agent",
            url=response.url,
        )
    return decode_json(
        response.content, NAME, url=response.url, hint="the base_url in [sources.ctis] and whether the CTIS API changed"
    )


def parse_search(data: Any, url: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError(NAME, "the search answer has no list of trials ('data')", hint="whether the CTIS API changed", url=url)
    pagination: dict[str, Any] = data["pagination"] if isinstance(data.get("pagination"), dict) else {}
    return pagination, [i for i in data["data"] if isinstance(i, dict)]


def in_window(overview: dict[str, Any], since: dt.date) -> bool:
    """Whether the register changed the trial on or after ``since`` (unknown: yes)."""
    updated = parse_date(overview.get("lastUpdated"))
    return updated is None or updated >= since.isoformat()


def _positive_int(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SourceError(NAME, f"{key} must be a positive integer, got {value!r}", hint=f"[sources.ctis].{key}")
    return value


# --------------------------------------------------------------------------- parsing


def parse_file(body: bytes, filename: str = "") -> list[Record]:
    """Parse one saved answer: a search page (every overview) or a retrieve answer (one trial)."""
    data = decode_json(body, NAME, url=filename or None)
    if isinstance(data, dict) and "data" in data:
        return [r for r in (parse_trial(o, None) for o in parse_search(data, filename)[1]) if r]
    record = parse_trial({}, data)
    return [record] if record else []


def parse_trial(overview: dict[str, Any], detail: dict[str, Any] | None) -> Record | None:
    """One trial from its search overview and (if retrieved) its full record."""
    detail = detail or {}
    number = ids.normalize_euct(detail.get("ctNumber") or overview.get("ctNumber"))
    if not number:
        return None
    application = _obj(detail, "authorizedApplication")
    part1 = _obj(application, "authorizedPartI")
    trial_details = _obj(part1, "trialDetails")
    identifiers = _obj(trial_details, "clinicalTrialIdentifiers")
    duration = _obj(_obj(trial_details, "trialInformation"), "trialDuration")

    full_title = _text(identifiers.get("fullTitle"))
    public_title = _text(identifiers.get("publicTitle"))
    title = full_title or _text(overview.get("ctTitle")) or public_title or number
    decision = parse_date(overview.get("decisionDateOverall")) or parse_date(detail.get("decisionDate"))
    published = parse_date(detail.get("publishDate"))
    updated = parse_date(overview.get("lastUpdated"))
    conditions = _unique(
        [_text(overview.get("conditions"))] + [_text(c.get("medicalCondition")) for c in _dicts(part1.get("medicalConditions"))]
    )
    products = _unique([_text(p.get("productName")) for p in _dicts(part1.get("products"))] + _strings(overview.get("product")))
    sponsors = _unique([_text(_obj(s, "organisation").get("name")) for s in _dicts(part1.get("sponsors"))])
    if not sponsors and _text(overview.get("sponsor")):
        sponsors = [_text(overview.get("sponsor"))]
    member_states = _unique(
        [_text(m.get("mscName")) for m in _dicts(application.get("memberStatesConcerned"))]
        or [str(c).split(":")[0].strip() for c in _strings(overview.get("trialCountries"))]
    )

    record = Record(
        source=NAME,
        source_id=number,
        record_type="trial_registration",
        title=title,
        missing=[] if (full_title or overview.get("ctTitle") or public_title) else ["title"],
        url=RECORD_URL.format(number),
        abstract=build_abstract(conditions, products, sponsors, member_states),
        published_on=decision or published,
        entered_on=published or decision,
        updated_on=updated,
        keywords=conditions + [p for p in products if p not in conditions],
    )
    record.add_id("euct", number)
    record.add_id("eudract", _obj(application, "eudraCt").get("eudraCtCode"))
    record.add_id("eudract", _obj(overview, "eudraCtInfo").get("eudraCtCode"))
    secondary = _obj(identifiers, "secondaryIdentifyingNumbers")
    record.add_id("nct", _obj(secondary, "nctNumber").get("number"))
    record.add_id("isrctn", _obj(secondary, "isrctnNumber").get("number"))
    for registry in _dicts(secondary.get("additionalRegistries")):
        for scheme, value in ids.find_trial_ids(str(registry.get("registryNumber") or registry.get("number") or "")):
            if (scheme, value) != ("euct", number):
                record.add_id(scheme, value)

    code = parse_int(detail.get("ctPublicStatusCode")) or parse_int(detail.get("ctStatus")) or parse_int(overview.get("ctStatus"))
    status = STATUS_LABELS.get(code) if code else None
    if status is None:  # older answers wrote the status as text
        status = _text(detail.get("ctStatus")) or _text(overview.get("ctStatus")) or None
    results = detail.get("results")
    record.trial = {
        "overall_status": status,
        "why_stopped": None,
        "phases": _unique(_strings(overview.get("trialPhase"))),
        "study_type": "Interventional",  # CTIS registers clinical trials of medicinal products only
        "enrollment": parse_int(overview.get("totalNumberEnrolled")),
        "enrollment_type": None,
        "start_date": parse_date(overview.get("startDateEU")) or parse_date(duration.get("estimatedRecruitmentStartDate")),
        "primary_completion_date": None,
        "completion_date": parse_date(overview.get("endDate"))
        or parse_date(duration.get("estimatedGlobalEndDate"))
        or parse_date(duration.get("estimatedEndDate")),
        "first_posted_on": published,
        "last_update_posted_on": updated,
        "results_first_posted_on": None,
        "has_results": (any(bool(v) for v in results.values()) if isinstance(results, dict) else None) if detail else None,
    }
    extra = {
        "public_title": public_title if public_title != title else None,
        "status_code": code,
        "decision_date": decision,
        "sponsors": sponsors,
        "member_states": member_states,
        "conditions": conditions,
        "interventions": [{"name": p, "type": "DRUG"} for p in products],
        "therapeutic_areas": _unique(
            _strings(overview.get("therapeuticAreas")) + [_text(a.get("name")) for a in _dicts(part1.get("therapeuticAreas"))]
        ),
    }
    record.extra = {k: v for k, v in extra.items() if v not in (None, [], {}, "")}
    return record


def build_abstract(conditions: list[str], products: list[str], sponsors: list[str], states: list[str]) -> str | None:
    parts = []
    if conditions:
        parts.append("Conditions: " + "; ".join(conditions) + ".")
    if products:
        parts.append("Medicinal products: " + "; ".join(products) + ".")
    if sponsors:
        parts.append("Sponsor: " + "; ".join(sponsors) + ".")
    if states:
        parts.append("Member states: " + ", ".join(states) + ".")
    return " ".join(parts) or None


def parse_date(value) -> str | None:
    """CTIS dates: ISO 8601 in ``retrieve`` (``2024-01-15``, ``2024-01-15T10:00:00``), ``DD/MM/YYYY`` in
    ``search`` (European day first). A value listing several dates gives the first."""
    return parsing.parse_date(value, day_first=True) if isinstance(value, str) else None


def _obj(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [str(v).strip() for v in value if isinstance(v, (str, int)) and str(v).strip()]
    return []


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _unique(values: list[str]) -> list[str]:
    result: list[str] = []
    for value in values:
        if value and value not in result:
            result.append(value)
    return result
