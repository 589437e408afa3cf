"""ISRCTN registry: trial registrations from the XML query API.

Endpoint
    ``GET <base_url>query/format/default?q=<query>&limit=<n>&offset=<k>`` (base_url
    ``https://www.isrctn.com/api/``) answers ``<allTrials totalCount="N">`` in the namespace
    ``http://www.67bricks.com/isrctn`` with one ``<fullTrial>`` per trial: a ``<trial>`` (attributes
    ``lastUpdated``, ``publicIdentifierCanonical``; children ``isrctn``, ``trialDescription``,
    ``externalRefs``, ``trialDesign``, ``participants``, ``conditions``, ``interventions``,
    ``results``) followed by its ``<sponsor>`` and ``<funder>`` elements. No key, no documented limit.

Incremental strategy
    The window is a clause of the query itself: ``q=(<settings.query>) AND lastEdited GE
    <since>T00:00:00.000Z`` (the syntax public clients use). Every registration edited since the
    watermark minus the overlap comes back, new or changed; records already stored with the same
    content are recognised by the store and counted as unchanged. Nothing is kept in ``ctx.state``.

Count, then fetch (as ctrdata does)
    The API documents no paging (its 2021 notes say "no pagination"; ``offset`` works according to
    one 2026 probe only). So each run first counts: ``limit=0`` answers ``<allTrials
    totalCount="N"/>`` without trials; then ONE request with ``limit=N`` brings the whole window.
    A window holding more than ``max_results`` (default 5000) trials fails with a clear error
    rather than asking for a huge answer or storing part of the window. The trials are yielded in
    batches of ``page_size`` (each one transaction).

    Only when the count request fails (an error answer, no ``totalCount``; not when the host is
    unreachable, which fails the source at once) does the module fall
    back to ``limit``/``offset`` paging by ``page_size``, with a warning: paging stops at the first
    page that is short, empty, brings no trial not seen before, or reaches ``totalCount``; a page
    bringing nothing new while more remain means offset is ignored, and one ``limit=totalCount``
    request follows (capped by ``max_results`` too).

Etiquette
    One request per second (``min_interval``), the shared User-Agent with the contact address.

Gotchas handled
    * An empty ``q`` is answered with HTTP 400: the ``query`` setting is required.
    * A misspelt field name (``trialStatus:``, ``phase:``) silently returns 0 hits rather than an
      error; the search log records ``totalCount`` for every query so a sudden 0 is visible.
    * Status cannot be queried and is often absent: the overall status is the override when there
      is one (Stopped, Suspended…), "Completed" once ``overallEndDate`` has passed, otherwise the
      recruitment status computed from ``recruitmentStart``/``recruitmentEnd`` against today.
      Because it depends on the date, it is recomputed whenever a trial is fetched again.
    * ``totalFinalEnrolment`` is 0 for trials that have not reported it: 0 means unknown, so the
      target enrolment is used (as ESTIMATED) until a positive final figure appears (ACTUAL).
    * ``externalRefs`` carry the same trial's numbers in other registries: the ClinicalTrials.gov
      number and the EudraCT/CTIS number are identifiers of this work (same trial, same work), as
      are ``secondaryNumber`` elements typed ``nct``/``ctis``/``eudract``. The ``<doi>`` there is the
      registration's own DOI (``10.1186/ISRCTN…``) and is kept as its identifier; publications
      listed in ``results/publicationDetails`` become ``result_publication``/``reference`` links.
    * Empty elements (``<eudraCTNumber />``) and placeholders ("Nil known", "Not provided at time of
      registration") are ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator

from crawler import clock
from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.records import Record
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import parse_date, parse_int
from crawler.sources.settings.isrctn import DEFAULT_MAX_RESULTS, DEFAULT_PAGE_SIZE
from crawler.sources.settings.isrctn import Settings as Settings  # the keys of its table, declared apart
from crawler.xmlsafe import parse_xml, text_of

NAME = "isrctn"
CORPUS_DIR = None  # no recorded ISRCTN responses in /work/shared/corpus; see tests/fixtures/isrctn
RECORD_URL = "https://www.isrctn.com/{}"

_PLACEHOLDER_RE = re.compile(
    r"^(?:nil known|n/?a|none|not applicable|not provided.*|.*not provided at time of registration.*)$", re.I
)
_PUBMED_RE = re.compile(r"(?:pubmed(?:\.ncbi\.nlm\.nih\.gov)?/|ncbi\.nlm\.nih\.gov/pubmed/|\bPMID:?\s*)(\d{1,9})", re.I)


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    query = build_query(ctx.settings.get("query"), ctx.since)
    limit = _positive_int(ctx.settings.get("page_size", DEFAULT_PAGE_SIZE), "page_size")
    max_results = _positive_int(ctx.settings.get("max_results", DEFAULT_MAX_RESULTS), "max_results")
    url = ctx.base_url + "query/format/default"
    try:
        total = parse_total(fetch_page(ctx, url, {"q": query, "limit": 0}))
    except SourceError as exc:
        if exc.reason.startswith(("network error", "too slow")):
            raise  # the host is not reachable: paging would fail the same way
        ctx.warn(f"the count request (limit=0) failed, paging with limit/offset instead: {exc.reason}")
        yield from fetch_by_offset(ctx, url, query, limit, max_results)
        return
    entry = ctx.log_query(query, ctx.since, ctx.until, hits=total, count=total, requests=1)
    if total == 0:
        return
    check_cap(total, max_results, "the window")
    root = fetch_page(ctx, url, {"q": query, "limit": total})
    entry.params["requests"] += 1
    records = parse_trials(root, today=ctx.until, skip=ctx.skip)
    if len(records) + len(ctx.skipped) < total:
        ctx.warn(f"asked for all {total} trials of the window (limit={total}) but got {len(records)}")
    for start in range(0, len(records), limit):
        yield records[start : start + limit]


def check_cap(total: int, max_results: int, what: str) -> None:
    if total > max_results:
        raise SourceError(
            NAME,
            f"{what} holds {total} trials, more than max_results={max_results}: not fetched (one request of "
            f"limit={total} would be needed, and a partial window is never stored)",
            hint="narrow [sources.isrctn].query, or raise max_results",
        )


def fetch_by_offset(ctx: CrawlContext, url: str, query: str, limit: int, max_results: int) -> Iterator[list[Record]]:
    """The fallback when counting failed: limit/offset pages (offset support is undocumented)."""
    seen: set[str] = set()
    offset, entry = 0, None
    while True:
        root = fetch_page(ctx, url, {"q": query, "limit": limit, "offset": offset})
        total = parse_total(root)
        if entry is None:
            entry = ctx.log_query(query, ctx.since, ctx.until, hits=total, limit=limit, pages=0, fallback="offset")
        entry.params["pages"] += 1
        records = parse_trials(root, today=ctx.until, skip=ctx.skip)
        fresh = [r for r in records if r.source_id not in seen]
        seen.update(r.source_id for r in fresh)
        if fresh:
            yield fresh
        if len(records) < limit or len(seen) >= total:
            return
        if not fresh:
            # A full page with nothing new: the server ignored offset. Ask once for everything.
            entry.params["pages"] += 1
            entry.params["offset_ignored"] = True
            yield from fetch_all_at_once(ctx, url, query, total, max_results, seen)
            return
        offset += limit


def fetch_all_at_once(
    ctx: CrawlContext, url: str, query: str, total: int, max_results: int, seen: set[str]
) -> Iterator[list[Record]]:
    check_cap(total, max_results, "the API ignored offset and the window")
    root = fetch_page(ctx, url, {"q": query, "limit": total})
    fresh = [r for r in parse_trials(root, today=ctx.until, skip=ctx.skip) if r.source_id not in seen]
    seen.update(r.source_id for r in fresh)
    if fresh:
        yield fresh


def fetch_page(ctx: CrawlContext, url: str, params: dict):
    response = ctx.http.get(url, source=ctx.name, params=params)
    return parse_xml(response.content, ctx.name, "ISRCTN answer")


def build_query(query, since: dt.date) -> str:
    """The configured query with the lastEdited window clause."""
    if isinstance(query, list):
        query = " OR ".join(f"({q})" for q in query if q.strip())
    if not query or not str(query).strip():
        raise SourceError(
            NAME,
            "no query configured (the API answers an empty q with HTTP 400)",
            hint='set query in [sources.isrctn], e.g. "ketamine OR esketamine"',
        )
    return f"({str(query).strip()}) AND lastEdited GE {since.isoformat()}T00:00:00.000Z"


def _positive_int(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SourceError(NAME, f"{key} must be a positive integer, got {value!r}", hint=f"[sources.isrctn].{key}")
    return value


# --------------------------------------------------------------------------- parsing


def parse_file(body: bytes, filename: str = "") -> list[Record]:
    """Parse one saved answer of the query API."""
    return parse_trials(parse_root(body))


def parse_root(body: bytes | str):
    return parse_xml(body.encode("utf-8") if isinstance(body, str) else body, NAME, "ISRCTN answer")


def parse_total(root) -> int:
    """``totalCount`` of an ``<allTrials>`` root; SourceError for anything else."""
    _check_root(root)
    raw = root.get("totalCount")
    if raw is None or not raw.strip().isdigit():
        raise SourceError(NAME, f"<allTrials> without a numeric totalCount ({raw!r})", hint="whether the API format changed")
    return int(raw)


def parse_trials(root_or_body, today: dt.date | None = None, skip: Callable[[str], None] | None = None) -> list[Record]:
    """Every ``<fullTrial>`` of an answer (bytes or a parsed root) as a Record; one that cannot be
    identified (no ``<trial>``, no valid ISRCTN number) is reported to ``skip`` with the reason."""
    root = parse_root(root_or_body) if isinstance(root_or_body, (bytes, str)) else root_or_body
    _check_root(root)
    today = today or clock.today()
    records = []
    for index, full in enumerate(root.iterfind("{*}fullTrial")):
        record = parse_trial(full, today)
        if record is not None:
            records.append(record)
        elif skip is not None:
            skip(f"trial #{index + 1}: {why_unidentified(full)}")
    return records


def why_unidentified(full) -> str:
    trial = full.find("{*}trial")
    if trial is None:
        return "a <fullTrial> without its <trial> element"
    number = text_of(trial.find("{*}isrctn")) or trial.get("publicIdentifierCanonical")
    title = _text(trial, "trialDescription/title") or _text(trial, "trialDescription/scientificTitle")
    return f"no valid ISRCTN number ({number!r})" + (f", title {title[:80]!r}" if title else "")


def _check_root(root) -> None:
    tag = root.tag.split("}")[-1] if isinstance(root.tag, str) else ""
    if tag.lower() == "html":
        raise SourceError(
            NAME,
            "answer is an HTML page, not the XML of the query API",
            hint="the base_url (…/api/) and whether the registry is up",
        )
    if tag != "allTrials":
        raise SourceError(NAME, f"expected an <allTrials> answer, got <{tag}>", hint="the base_url (…/api/) and the format path")


def parse_trial(full, today: dt.date) -> Record | None:
    trial = full.find("{*}trial")
    if trial is None:
        return None
    number_el = trial.find("{*}isrctn")
    isrctn = ids.normalize_isrctn(text_of(number_el)) or ids.normalize_isrctn(trial.get("publicIdentifierCanonical"))
    if not isrctn:
        return None
    title = _text(trial, "trialDescription/title")
    scientific = _text(trial, "trialDescription/scientificTitle")
    assigned = parse_date(
        (number_el.get("dateAssigned") if number_el is not None else None) or trial.get("publicIdentifierDateAssigned")
    )
    edited = parse_date(trial.get("lastUpdated"))
    record = Record(
        source=NAME,
        source_id=isrctn,
        record_type="trial_registration",
        title=title or scientific or isrctn,  # shown for a new trial; a stored title is kept (missing)
        missing=[] if title else ["title"],  # a stored public title is never replaced by the scientific one
        url=RECORD_URL.format(isrctn),
        abstract=build_abstract(trial),
        published_on=assigned,
        entered_on=assigned,
        updated_on=edited,
        keywords=build_keywords(trial),
    )
    record.add_id("isrctn", isrctn)
    add_external_refs(record, trial, isrctn)
    add_publication_links(record, trial)
    record.trial = build_trial(trial, assigned, edited, today, record)
    record.extra = {**build_extra(full, trial, scientific, today), **record.extra}
    return record


def build_abstract(trial) -> str | None:
    for path in ("trialDescription/plainEnglishSummary", "trialDescription/studyHypothesis"):
        text = _text(trial, path)
        if text:
            return text
    return None


def build_keywords(trial) -> list[str]:
    words = [c for c in (_text(el, "description") for el in trial.iterfind("{*}conditions/{*}condition")) if c]
    for el in trial.iterfind("{*}interventions/{*}intervention"):
        for name in (_text(el, "drugNames") or "").split(","):
            if name.strip() and name.strip() not in words:
                words.append(name.strip())
    return words


def add_external_refs(record: Record, trial, isrctn: str) -> None:
    """Numbers of the same trial in other registries are identifiers of this work."""
    own_doi = ids.normalize_doi(_text(trial, "externalRefs/doi"))
    if own_doi == f"10.1186/{isrctn.lower()}":
        record.add_id("doi", own_doi)
    elif own_doi:
        record.extra["registry_doi"] = own_doi
    record.add_id("nct", _text(trial, "externalRefs/clinicalTrialsGovNumber"))
    add_eu_number(record, _text(trial, "externalRefs/eudraCTNumber"))
    for el in trial.iterfind("{*}externalRefs/{*}secondaryNumbers/{*}secondaryNumber"):
        kind = (el.get("numberType") or "").lower()
        # canonicalSecondaryNumber is prefixed ("CTIS2020-005891-36-00"); the text is the bare number
        for value in (text_of(el), el.get("canonicalSecondaryNumber")):
            if kind == "nct" and record.add_id("nct", value):
                break
            if kind in ("ctis", "eudract") and add_eu_number(record, value):
                break


def add_eu_number(record: Record, value: str | None) -> str | None:
    """An EU CTIS number (YYYY-5NNNNN-NN-NN) or a legacy EudraCT number (YYYY-NNNNNN-NN)."""
    if not value:
        return None
    return record.add_id("euct", value) or record.add_id("eudract", value)


def add_publication_links(record: Record, trial) -> None:
    """Publications listed under results: one line each, e.g. '2023 Results article in https://doi.org/…'."""
    details = trial.find("{*}results/{*}publicationDetails")
    if details is None:
        return
    own = {v for s, v in record.identifiers if s == "doi"}
    for line in "".join(details.itertext()).splitlines():
        lowered = line.lower()
        relation = "result_publication" if "result" in lowered and "protocol" not in lowered else "reference"
        for doi in ids.find_dois(line):
            if doi not in own:
                record.add_link(relation, "doi", doi, note=" ".join(line.split())[:200])
        for match in _PUBMED_RE.finditer(line):
            record.add_link(relation, "pmid", match.group(1), note=" ".join(line.split())[:200])


def build_trial(trial, assigned: str | None, edited: str | None, today: dt.date, record: Record) -> dict:
    target = parse_int(_text(trial, "participants/targetEnrolment"), in_text=True)
    final = parse_int(_text(trial, "participants/totalFinalEnrolment"), in_text=True)
    enrollment, enrollment_type = (final, "ACTUAL") if final else (target, "ESTIMATED" if target else None)
    phases = []
    for el in trial.iterfind("{*}interventions/{*}intervention"):
        phase = _text(el, "phase")
        if phase and phase not in phases:
            phases.append(phase)
    stage = _text(trial, "results/publicationStage") or ""
    has_results = (
        bool(_text(trial, "results/basicReport"))
        or stage.lower() == "results"
        or any(l.relation == "result_publication" for l in record.links)
    )
    return {
        "overall_status": compute_overall_status(trial, today),
        "why_stopped": None,
        "phases": phases,
        "study_type": _text(trial, "trialDesign/primaryStudyDesign"),
        "enrollment": enrollment,
        "enrollment_type": enrollment_type,
        "start_date": parse_date(_text(trial, "trialDesign/overallStartDate"))
        or parse_date(_text(trial, "participants/recruitmentStart")),
        "primary_completion_date": None,
        "completion_date": parse_date(_text(trial, "trialDesign/overallEndDate")),
        "first_posted_on": assigned,
        "last_update_posted_on": edited,
        "results_first_posted_on": None,
        "has_results": has_results,
    }


def compute_overall_status(trial, today: dt.date) -> str | None:
    """Override (Stopped, Suspended…) > Completed (overall end date passed) > recruitment status."""
    override = _text(trial, "trialDesign/overallStatusOverride")
    if override:
        return override
    end = parse_date(_text(trial, "trialDesign/overallEndDate"))
    if end and end < today.isoformat():
        return "Completed"
    return compute_recruitment_status(trial, today)


def compute_recruitment_status(trial, today: dt.date) -> str | None:
    override = _text(trial, "participants/recruitmentStatusOverride")
    if override:
        return override
    start = parse_date(_text(trial, "participants/recruitmentStart"))
    end = parse_date(_text(trial, "participants/recruitmentEnd"))
    now = today.isoformat()
    if start and start > now:
        return "Not yet recruiting"
    if end and end < now:
        return "No longer recruiting"
    if start:
        return "Recruiting"
    return None


def build_extra(full, trial, scientific: str | None, today: dt.date) -> dict:
    end = parse_date(_text(trial, "trialDesign/overallEndDate"))
    overall = _text(trial, "trialDesign/overallStatusOverride") or (
        ("Completed" if end < today.isoformat() else "Ongoing") if end else None
    )
    extra = {
        "scientific_title": scientific,
        "acronym": _text(trial, "trialDescription/acronym"),
        "overall_study_status": overall,
        "recruitment_status": compute_recruitment_status(trial, today),
        "recruitment_start": parse_date(_text(trial, "participants/recruitmentStart")),
        "recruitment_end": parse_date(_text(trial, "participants/recruitmentEnd")),
        "target_enrolment": parse_int(_text(trial, "participants/targetEnrolment"), in_text=True),
        "conditions": [c for c in (_text(el, "description") for el in trial.iterfind("{*}conditions/{*}condition")) if c],
        "interventions": [
            {k: _text(el, k) for k in ("description", "interventionType", "phase", "drugNames")}
            for el in trial.iterfind("{*}interventions/{*}intervention")
        ],
        "countries": [text_of(el) for el in trial.iterfind("{*}participants/{*}recruitmentCountries/{*}country")],
        "sponsors": [o for o in (_text(el, "organisation") for el in full.iterfind("{*}sponsor")) if o],
        "funders": [n for n in (_text(el, "name") for el in full.iterfind("{*}funder")) if n],
        "protocol_serial_number": _text(trial, "externalRefs/protocolSerialNumber"),
        "iras_number": _text(trial, "externalRefs/irasNumber"),
        "publication_stage": _text(trial, "results/publicationStage"),
        "version": trial.get("version"),
    }
    return {k: v for k, v in extra.items() if v not in (None, [], "")}


# --------------------------------------------------------------------------- small helpers


def _text(parent, path: str) -> str | None:
    """Folded text of a child (``a/b`` paths, any namespace); None when absent, empty or a placeholder."""
    el = parent.find("/".join("{*}" + part for part in path.split("/")))
    text = text_of(el) if el is not None else ""
    if not text or _PLACEHOLDER_RE.match(text):
        return None
    return text
