"""ClinicalTrials.gov through its API v2 (``GET <base_url>studies``).

Query
    ``query.cond`` = ``[sources.clinicaltrials] conditions`` and ``query.intr`` =
    ``interventions`` (Essie expressions; a list is joined with ``OR``, multi-word items in
    parentheses; either may be empty, not both). ``fields`` restricts the answer to the modules parsed here (``NCTId``, ``HasResults``,
    the identification, status, sponsor, conditions, design, interventions and references modules,
    ``BriefSummary`` and the two MeSH browse modules): a full record with its results section can
    weigh several hundred kB, so a 1,000-study page of full records could pass the client's
    size cap. ``fields = ""`` in the config asks for everything.
Incremental strategy
    The API has no change feed. Every run asks for the studies whose *last update posted* date
    falls in the window: ``filter.advanced=AREA[LastUpdatePostDate]RANGE[<since>,MAX]``, where
    ``since`` is the watermark minus ``[crawl] overlap_days`` (the backfill date on the first run).
    New registrations are caught too: a study's first posting is also its first update posting.
    Every study is stored with its tracked registry fields in ``Record.trial``; the store writes a
    trial snapshot whenever one of them changes (status, enrollment, dates, results), which is
    how status changes are detected. Re-reading the overlap does not duplicate anything: records
    are keyed on the NCT number and an unchanged study hashes the same.
Paging and caps
    ``pageSize`` = ``page_size`` (values above 1,000 are coerced to 1,000 by the API, so they are
    clamped here); ``countTotal=true`` on the first page only (``totalCount`` is returned on the
    first page only and is logged as the query's hits); then ``pageToken`` = the previous page's
    ``nextPageToken`` until a page has none. A token seen twice stops the source with an error
    rather than looping. ``format=json`` is sent explicitly. No ``sort``: results are unsorted by
    default and sorting buys nothing here, because every page of the chain is read and the
    window is re-read with an overlap on the next run; an optional ``sort`` key in the config
    (e.g. ``"LastUpdatePostDate:asc"``) is passed through if set.
Etiquette
    No API key. The rate limit is not published (about 50 requests/minute per IP is reported), so
    requests are spaced ``min_interval`` = 1.2 s apart (also the default when the key is absent);
    HTTP 429 and 5xx answers are retried by the shared client, honouring ``Retry-After``.
Gotchas handled
    The classic API (``/api/query/...``, ``FullStudiesResponse``) was retired on 2024-06-25: a v1
    base URL or answer stops the source with a message saying to use v2. ``*DateStruct`` dates
    can have month precision (``2024-03``) and are kept as such. Free text is Markdown (the
    default ``markupFormat``). ``derivedSection.miscInfoModule.versionHolder`` changes every
    night and is not parsed, so it never makes an unchanged study look updated. Aliases
    (``nctIdAliases``: obsolete NCT numbers of the same study) and the study's EudraCT, EU CT
    (CTIS) and ISRCTN numbers from ``secondaryIdInfos`` are identifiers of the same work (the
    same trial in another registry); grant numbers, other NCT numbers and unrecognised ids are
    kept in ``extra`` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from crawler import abstracts
from crawler import identifiers as ids
from crawler.errors import SourceError
from crawler.records import TRIAL_FIELDS, Record
from crawler.sources.base import CrawlContext
from crawler.sources.parsing import JsonStream, parse_date, parse_int
from crawler.sources.settings.clinicaltrials import DEFAULT_FIELDS, MAX_PAGE_SIZE
from crawler.sources.settings.clinicaltrials import Settings as Settings  # the keys of its table, declared apart

NAME = "clinicaltrials"
CORPUS_DIR = "ctgov"
DEFAULT_MIN_INTERVAL = 1.2
V1_RETIRED_ON = "2024-06-25"
STUDY_URL = "https://clinicaltrials.gov/study/{}"


#: Top-level keys of the retired classic (v1) API answers.
V1_KEYS = ("FullStudiesResponse", "StudyFieldsResponse", "FieldValuesResponse", "FullStudy", "StudyStructure")

_REGISTRY_HINT_RE = re.compile(
    r"eudra|ctis|\beu[\s-]*ct\b|eu\s*clinical\s*trials|clinical\s*trials?\s*register\b|clinicaltrialsregister|isrctn", re.I
)

#: trial-field name -> statusModule key of its date struct
DATE_STRUCTS = {
    "start_date": "startDateStruct",
    "primary_completion_date": "primaryCompletionDateStruct",
    "completion_date": "completionDateStruct",
    "first_posted_on": "studyFirstPostDateStruct",
    "last_update_posted_on": "lastUpdatePostDateStruct",
    "results_first_posted_on": "resultsFirstPostDateStruct",
}


@dataclass
class StudiesPage:
    """One parsed answer: its records, the paging token, the total (first page) and problems."""

    records: list[Record] = field(default_factory=list)
    studies: int = 0
    next_page_token: str | None = None
    total: int | None = None
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- fetching


def fetch_records(ctx: CrawlContext) -> Iterator[list[Record]]:
    check_base_url(ctx.name, ctx.base_url)
    if ctx.settings.get("min_interval") is None:
        ctx.http.set_min_interval(ctx.base_url, DEFAULT_MIN_INTERVAL)
    params = build_params(ctx.name, ctx.settings, ctx.since.isoformat())
    entry = ctx.log_query(describe_query(params), ctx.since, ctx.until, None, **params)
    url = ctx.base_url + "studies"
    token: str | None = None
    seen_tokens: set[str] = set()
    pages = fetched = 0
    while True:
        page_params = dict(params)
        if token is None:
            page_params["countTotal"] = "true"
        else:
            page_params["pageToken"] = token
        response = ctx.http.get(url, source=ctx.name, params=page_params)
        page = parse_studies(response.stream(), ctx.name, url=response.url)
        pages += 1
        fetched += len(page.records)
        if pages == 1:
            entry.hits = page.total if page.total is not None else len(page.records)
        entry.params.update(pages=pages, fetched=fetched)
        for problem in page.problems:
            ctx.skip(problem)
        if page.records:
            yield page.records
        token = page.next_page_token
        if not token:
            return
        if token in seen_tokens:
            raise SourceError(
                ctx.name,
                f"the API returned the page token {token!r} twice; stopping to avoid a loop",
                hint="whether the service is up; the window is re-read on the next run",
                url=response.url,
            )
        seen_tokens.add(token)
        if not page.studies:
            ctx.warn(f"page {pages} was empty but carried a nextPageToken; stopped paging")
            return


def check_base_url(source: str, base_url: str) -> None:
    """Refuse the retired classic API before sending anything."""
    if re.search(r"/api/(?:query|info|legacy)(?:/|$)", base_url) or "classic.clinicaltrials.gov" in base_url:
        raise SourceError(
            source,
            f"base_url {base_url!r} points at the classic (v1) API, retired on {V1_RETIRED_ON}",
            hint='base_url = "https://clinicaltrials.gov/api/v2/" (API v2)',
        )


def build_params(source: str, settings: dict[str, Any], since: str) -> dict[str, str]:
    """The query parameters shared by every page of the chain (no countTotal/pageToken)."""
    cond = join_expression(settings.get("conditions"))
    intr = join_expression(settings.get("interventions"))
    if not cond and not intr:
        raise SourceError(
            source,
            "no search configured: both conditions and interventions are empty",
            hint="[sources.clinicaltrials] conditions / interventions in the config",
        )
    params: dict[str, str] = {"format": "json"}
    if cond:
        params["query.cond"] = cond
    if intr:
        params["query.intr"] = intr
    params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{since},MAX]"
    params["pageSize"] = str(clamp_page_size(settings.get("page_size")))
    fields = settings.get("fields", DEFAULT_FIELDS)
    fields = join_list(fields, "|")
    if fields:
        params["fields"] = fields
    if settings.get("sort"):
        params["sort"] = str(settings["sort"])
    return params


def join_expression(value) -> str:
    """A config string as is; a list as ``a OR (b c)`` (multi-word items in parentheses)."""
    if isinstance(value, list):
        items = [v.strip() for v in value if isinstance(v, str) and v.strip()]
        return " OR ".join(f"({v})" if " " in v else v for v in items)
    return (value or "").strip()


def join_list(value, separator: str) -> str:
    if isinstance(value, (list, tuple)):
        return separator.join(str(v).strip() for v in value if str(v).strip())
    return (value or "").strip()


def clamp_page_size(value) -> int:
    try:
        size = int(value) if value is not None else MAX_PAGE_SIZE
    except (TypeError, ValueError):
        size = MAX_PAGE_SIZE
    return max(1, min(size, MAX_PAGE_SIZE))


def describe_query(params: dict[str, str]) -> str:
    parts = [f"{key}={params[key]}" for key in ("query.cond", "query.intr", "filter.advanced") if key in params]
    return " & ".join(parts)


# --------------------------------------------------------------------------- parsing


def parse_file(body: bytes, filename: str) -> list[Record]:
    """Parse any response file of the corpus folder: a studies page or a single study."""
    return parse_studies(body, NAME, url=filename).records


def parse_studies(body: bytes | IO[bytes], source: str = NAME, url: str | None = None) -> StudiesPage:
    """Parse a ``/studies`` page (``{"studies": [...]}``, read study by study) or a single study object."""
    stream = JsonStream(body, source, "studies", url=url)
    data = stream.envelope
    check_not_v1(data, source, url)
    studies: Iterable[Any]
    if isinstance(data, dict) and "studies" in data:
        studies = data["studies"]
        if not isinstance(studies, list):
            raise SourceError(
                source, f"'studies' is a {type(studies).__name__}, not a list", hint="the base_url in the config", url=url
            )
        studies = stream.items()
        token = data.get("nextPageToken")
        page = StudiesPage(
            next_page_token=str(token) if token not in (None, "") else None, total=parse_int(data.get("totalCount"))
        )
    elif isinstance(data, dict) and "protocolSection" in data:
        studies, page = [data], StudiesPage()
    elif isinstance(data, list) and all(isinstance(s, dict) and "protocolSection" in s for s in data):
        studies, page = data, StudiesPage()
    else:
        keys = ", ".join(sorted(data)[:8]) if isinstance(data, dict) else type(data).__name__
        raise SourceError(
            source,
            f"unexpected JSON: no 'studies' list and no study object (found: {keys})",
            hint="the base_url in the config (it must be the API v2 root, ending in /api/v2/)",
            url=url,
        )
    for index, study in enumerate(studies):
        page.studies += 1
        try:
            page.records.append(parse_study(study, source))
        except ValueError as exc:
            page.problems.append(f"study #{index + 1}: {exc}")
    return page


def check_not_v1(data: Any, source: str, url: str | None) -> None:
    if isinstance(data, dict) and (any(key in data for key in V1_KEYS) or "ProtocolSection" in data):
        raise SourceError(
            source,
            f"this is an answer of the classic (v1) API, which was retired on {V1_RETIRED_ON}; use API v2",
            hint='base_url = "https://clinicaltrials.gov/api/v2/"',
            url=url,
        )


def parse_study(study: Any, source: str = NAME) -> Record:
    """One v2 study object -> a trial_registration Record (ValueError if it has no NCT number)."""
    if not isinstance(study, dict):
        raise ValueError(f"not a study object but {type(study).__name__}")
    protocol = sub(study, "protocolSection")
    ident = sub(protocol, "identificationModule")
    nct = ids.normalize_nct(ident.get("nctId"))
    if not nct:
        raise ValueError(f"no valid protocolSection.identificationModule.nctId ({ident.get('nctId')!r})")
    status = sub(protocol, "statusModule")
    title = clean_text(ident.get("briefTitle")) or clean_text(ident.get("officialTitle"))
    trial = parse_trial(study)
    record = Record(
        source=source,
        source_id=nct,
        record_type="trial_registration",
        title=title or nct,  # shown for a new study; a stored title is kept (missing)
        # without briefTitle the official title stands in for a new study, but never replaces a stored one
        missing=[] if clean_text(ident.get("briefTitle")) else ["title"],
        url=STUDY_URL.format(nct),
        abstract=clean_text(sub(protocol, "descriptionModule").get("briefSummary")),
        published_on=trial["first_posted_on"],
        entered_on=trial["first_posted_on"],
        updated_on=trial["last_update_posted_on"],
        keywords=clean_list(sub(protocol, "conditionsModule").get("keywords")),
        mesh_terms=parse_mesh_terms(sub(study, "derivedSection")),
        trial=trial,
    )
    record.add_id("nct", nct)
    aliases = [a for a in (ids.normalize_nct(v) for v in as_list(ident.get("nctIdAliases"))) if a and a != nct]
    for alias in aliases:
        record.add_id("nct", alias)
    secondary = [s for s in as_list(ident.get("secondaryIdInfos")) if isinstance(s, dict)]
    for scheme, value in parse_secondary_ids(secondary):
        record.add_id(scheme, value)
    add_references(record, sub(protocol, "referencesModule"))
    record.extra = build_extra(protocol, status, aliases, secondary)
    summary = abstracts.section("Brief summary", record.abstract)
    record.abstract_sections = [summary] if summary else []
    return record


def parse_trial(study: dict) -> dict[str, Any]:
    """The tracked registry fields (exactly :data:`TRIAL_FIELDS`)."""
    protocol = sub(study, "protocolSection")
    status = sub(protocol, "statusModule")
    design = sub(protocol, "designModule")
    enrollment = sub(design, "enrollmentInfo")
    trial: dict[str, Any] = {
        "overall_status": clean_text(status.get("overallStatus")),
        "why_stopped": clean_text(status.get("whyStopped")),
        "phases": clean_list(design.get("phases")),
        "study_type": clean_text(design.get("studyType")),
        "enrollment": parse_int(enrollment.get("count")),
        "enrollment_type": clean_text(enrollment.get("type")),
    }
    for name, key in DATE_STRUCTS.items():
        trial[name] = parse_date(sub(status, key).get("date"))
    has_results = study.get("hasResults")
    if not isinstance(has_results, bool):
        has_results = True if trial["results_first_posted_on"] else None
    trial["has_results"] = has_results
    return {name: trial[name] for name in TRIAL_FIELDS}


def parse_secondary_ids(infos: list[dict]) -> list[tuple[str, str]]:
    """EudraCT, EU CT (CTIS) and ISRCTN numbers of the same trial among ``secondaryIdInfos``.

    Typed entries (``EUDRACT_NUMBER``, ``CTIS``) are read as such (registrants often put a CTIS
    number in the EudraCT field, so both patterns are tried); ``REGISTRY``/``OTHER`` entries
    count only when their id or domain names one of these registries. Grant numbers (``NIH``,
    ``OTHER_GRANT``, ...) and other NCT numbers (related, not the same, studies) are not ids.
    """
    found: list[tuple[str, str]] = []
    for info in infos:
        value = str(info.get("id") or "").strip()
        kind = str(info.get("type") or "").upper()
        domain = str(info.get("domain") or "")
        if not value:
            continue
        if kind in ("EUDRACT_NUMBER", "CTIS"):
            candidates = [("euct", ids.normalize_euct(value)), ("eudract", ids.normalize_eudract(value))]
        elif kind in ("REGISTRY", "OTHER", "") and (_REGISTRY_HINT_RE.search(domain) or _REGISTRY_HINT_RE.search(value)):
            candidates = [(s, v) for s, v in ids.find_trial_ids(value) if s != "nct"]
            if not candidates and re.search(r"isrctn", domain, re.I):
                candidates = [("isrctn", ids.normalize_isrctn(value))]
        else:
            continue
        found.extend((s, v) for s, v in candidates if v and (s, v) not in found)
    return found


def add_references(record: Record, module: dict) -> None:
    """``references[]``: RESULT -> result_publication, others -> reference (type in the note)."""
    for ref in as_list(module.get("references")):
        if not isinstance(ref, dict):
            continue
        kind = str(ref.get("type") or "").upper() or None
        relation = "result_publication" if kind == "RESULT" else "reference"
        if ids.normalize_pmid(ref.get("pmid")):
            record.add_link(relation, "pmid", ref.get("pmid"), note=kind)
            continue
        for doi in ids.find_dois(ref.get("citation"))[:1]:
            record.add_link(relation, "doi", doi, note=kind)


def build_extra(protocol: dict, status: dict, aliases: list[str], secondary: list[dict]) -> dict[str, Any]:
    ident = sub(protocol, "identificationModule")
    sponsors = sub(protocol, "sponsorCollaboratorsModule")
    lead = sub(sponsors, "leadSponsor")
    extra: dict[str, Any] = {
        "official_title": clean_text(ident.get("officialTitle")),
        "acronym": clean_text(ident.get("acronym")),
        "org_study_id": sub(ident, "orgStudyIdInfo").get("id"),
        "nct_aliases": aliases,
        "secondary_ids": [{k: s.get(k) for k in ("id", "type", "domain") if s.get(k)} for s in secondary],
        "conditions": clean_list(sub(protocol, "conditionsModule").get("conditions")),
        "interventions": parse_interventions(sub(protocol, "armsInterventionsModule")),
        "lead_sponsor": {"name": lead.get("name"), "class": lead.get("class")} if lead.get("name") else None,
        "collaborators": [c.get("name") for c in as_list(sponsors.get("collaborators")) if isinstance(c, dict) and c.get("name")],
        "status_verified_date": parse_date(status.get("statusVerifiedDate")),
        "date_types": {name: sub(status, key).get("type") for name, key in DATE_STRUCTS.items() if sub(status, key).get("type")},
        "references": parse_reference_list(sub(protocol, "referencesModule")),
        "see_also": [
            {"label": l.get("label"), "url": l.get("url")}
            for l in as_list(sub(protocol, "referencesModule").get("seeAlsoLinks"))
            if isinstance(l, dict) and l.get("url")
        ],
    }
    return {k: v for k, v in extra.items() if v not in (None, [], {}, "")}


def parse_interventions(module: dict) -> list[dict[str, Any]]:
    result = []
    for item in as_list(module.get("interventions")):
        if not isinstance(item, dict) or not item.get("name"):
            continue
        entry = {"name": clean_text(item["name"]), "type": item.get("type")}
        if item.get("otherNames"):
            entry["other_names"] = clean_list(item["otherNames"])
        result.append(entry)
    return result


def parse_reference_list(module: dict) -> list[dict[str, Any]]:
    result = []
    for ref in as_list(module.get("references")):
        if not isinstance(ref, dict):
            continue
        entry = {
            "pmid": ids.normalize_pmid(ref.get("pmid")),
            "type": ref.get("type"),
            "citation": clean_text(ref.get("citation")),
        }
        if isinstance(ref.get("retractions"), list) and ref["retractions"]:
            entry["retractions"] = ref["retractions"]
        entry = {k: v for k, v in entry.items() if v}
        if entry:
            result.append(entry)
    return result


def parse_mesh_terms(derived: dict) -> list[str]:
    terms: list[str] = []
    for key in ("conditionBrowseModule", "interventionBrowseModule"):
        for mesh in as_list(sub(derived, key).get("meshes")):
            term = clean_text(mesh.get("term")) if isinstance(mesh, dict) else None
            if term and term not in terms:
                terms.append(term)
    return terms


def sub(parent, key: str) -> dict:
    """``parent[key]`` when both are objects, else an empty dict (tolerates odd JSON shapes)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def clean_text(value) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text or None


def clean_list(values) -> list[str]:
    result: list[str] = []
    for value in as_list(values):
        text = clean_text(value)
        if text and text not in result:
            result.append(text)
    return result
