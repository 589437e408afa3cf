"""Configuration: TOML file lookup, defaults and validation.

Lookup order: ``--config PATH`` > ``$LITMON_CONFIG`` > ``./litmon.toml`` > the shipped default
(``config/litmon.toml``, installed inside the package as ``crawler/default_config.toml``,
a symbolic link in the source tree).
Every value read here is checked; an invalid file raises :class:`ConfigError` naming the file, the
key and what is expected.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError

#: Sources that have a [sources.<name>] table. Feeds and pages are configured as lists.
API_SOURCES = ("pubmed", "europepmc", "clinicaltrials", "biorxiv", "crossref", "isrctn", "ctis", "openalex")

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: control characters (CR, LF, tab, NUL…): never allowed in values that reach mail headers
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

log = logging.getLogger("crawler.config")


def shipped_config_text() -> str:
    """The text of the shipped default configuration."""
    return resources.files("crawler").joinpath("default_config.toml").read_text(encoding="utf-8")


@dataclass
class EmailSettings:
    smtp_host: str = ""
    smtp_port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    sender: str = "litmon@localhost"
    recipients: list[str] = field(default_factory=list)
    timeout: float = 30.0
    ca_file: str = ""
    attempts: int = 3
    retry_backoff_seconds: float = 5.0


@dataclass
class Config:
    path: str
    contact_email: str
    database_path: Path
    outbox_dir: Path
    backfill_from: dt.date
    overlap_days: int
    topic: dict[str, Any]
    sources: dict[str, dict[str, Any]]
    feeds: list[dict[str, Any]]
    pages: list[dict[str, Any]]
    email: EmailSettings
    digest: dict[str, Any]
    http: dict[str, Any]
    schedule: dict[str, Any]
    status: dict[str, Any]
    raw: dict[str, Any]
    #: seconds a write waits for another program's SQLite write lock before the run fails ([database] busy_timeout)
    database_busy_timeout: float = 60.0

    def source(self, name: str) -> dict[str, Any]:
        return self.sources.get(name, {})


def find_config_path(explicit: str | None = None) -> tuple[str, str]:
    """Return (path-or-'<shipped default>', text) following the documented lookup order."""
    candidates: list[tuple[str, str]] = []
    if explicit:
        candidates.append((explicit, "--config"))
    elif os.environ.get("LITMON_CONFIG"):
        candidates.append((os.environ["LITMON_CONFIG"], "LITMON_CONFIG"))
    elif Path("litmon.toml").is_file():
        candidates.append(("litmon.toml", "./litmon.toml"))
    if not candidates:
        return "<shipped default config/litmon.toml>", shipped_config_text()
    path, origin = candidates[0]
    try:
        return path, Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, f"file not found (given by {origin})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read file given by {origin}: {exc}") from None


def load_config(explicit: str | None = None) -> Config:
    path, text = find_config_path(explicit)
    return parse_config(text, path)


class _Reader:
    """Typed access to a TOML table, raising ConfigError with the dotted key name."""

    def __init__(self, path: str, table: dict[str, Any], prefix: str = ""):
        self.path, self.table, self.prefix = path, table, prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, expected: str) -> ConfigError:
        value = self.table.get(name)
        return ConfigError(self.path, self.key(name), f"expected {expected}, got {value!r}")

    def get(self, name, kind, default, expected):
        if name not in self.table:
            return default
        value = self.table[name]
        if kind is int and isinstance(value, bool):
            raise self.fail(name, expected)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind):
            raise self.fail(name, expected)
        return value

    def str(self, name, default="", *, required=False, header=False):
        """A string; ``header``: it reaches a mail header, so control characters (CR/LF) are refused."""
        if required and name not in self.table:
            raise ConfigError(self.path, self.key(name), "missing; expected a string")
        value = self.get(name, str, default, "a string")
        if header and CONTROL_RE.search(value):
            raise self.fail(name, "one line without control characters (it goes into mail headers)")
        return value

    def bool(self, name, default):
        return self.get(name, bool, default, "true or false")

    def int(self, name, default, minimum=None, maximum=None):
        value = self.get(name, int, default, "an integer")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            raise self.fail(
                name, f"an integer between {minimum} and {maximum}" if maximum is not None else f"an integer >= {minimum}"
            )
        return value

    def float(self, name, default, minimum=0.0, *, positive=False):
        value = self.get(name, float, default, "a number")
        if positive and value <= 0:
            raise self.fail(name, "a number of seconds > 0")
        if value < minimum:
            raise self.fail(name, f"a number >= {minimum}")
        return value

    def str_list(self, name, default=()):
        value = self.table.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "a list of strings")
        return value

    def table_(self, name) -> _Reader:
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, "a table")
        return _Reader(self.path, value, f"{self.prefix}{name}.")

    def date(self, name, default):
        value = self.table.get(name, default)
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(name, "a date such as 2000-01-01")

    def url(self, name, default):
        value = self.str(name, default)
        if not re.match(r"^https?://[^\s/]+", value):
            raise self.fail(name, "an http:// or https:// URL")
        return value


def parse_config(text: str, path: str = "<string>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from None
    root = _Reader(path, data)

    contact = root.str("contact_email", "")
    if not contact or not EMAIL_RE.match(contact):
        raise ConfigError(
            path,
            "contact_email",
            f"expected an e-mail address (sent to APIs in the User-Agent and as NCBI email), got {contact!r}",
        )

    database = root.table_("database")
    outbox = root.table_("outbox")
    crawl = root.table_("crawl")

    topic = root.table_("topic")
    topic_cfg = {
        "name": topic.str("name", "Literature monitor", header=True),
        "match_terms": [t.lower() for t in topic.str_list("match_terms")],
        "exclude_terms": [t.lower() for t in topic.str_list("exclude_terms")],
    }
    if not topic_cfg["match_terms"]:
        raise ConfigError(
            path, "topic.match_terms", "expected a non-empty list of terms used to filter feeds and preprints locally"
        )
    topic_cfg.update(_parse_vocabulary(path, topic))

    sources_tbl = root.table_("sources")
    unknown = sorted(set(sources_tbl.table) - set(API_SOURCES))
    if unknown:
        raise ConfigError(
            path,
            f"sources.{unknown[0]}",
            f"unknown source; expected one of {', '.join(API_SOURCES)} (feeds go in [[feeds]], pages in [[pages]])",
        )
    sources: dict[str, dict[str, Any]] = {}
    for name in API_SOURCES:
        table = sources_tbl.table_(name)
        settings = dict(table.table)
        settings["enabled"] = table.bool("enabled", False)
        if settings["enabled"] or "base_url" in table.table:
            settings["base_url"] = table.url("base_url", "")
        for key in ("query", "api_key_env", "conditions", "interventions", "servers", "category", "fields", "sort", "types"):
            if key in settings and not isinstance(settings[key], (str, list)):
                raise table.fail(key, "a string or a list of strings")
        for key in (
            "min_interval",
            "page_size",
            "batch_size",
            "max_pages",
            "max_records",
            "max_backfill_days",
            "max_results",
            "slice_days",
            "publication_lookback_days",
        ):
            if key in settings:
                table.float(key, 0.0) if key == "min_interval" else table.int(key, 1, minimum=1)
        sources[name] = settings

    feeds = _parse_named_list(path, data, "feeds", required=("name", "url"), optional=("enabled", "filter", "kind"))
    pages = _parse_named_list(
        path,
        data,
        "pages",
        required=("name", "url", "item", "title", "link"),
        optional=("date", "date_pattern", "enabled", "filter", "kind", "summary"),
    )
    for index, page in enumerate(pages):
        if "date_pattern" in page:
            try:
                re.compile(page["date_pattern"])
            except (re.error, TypeError) as exc:
                raise ConfigError(path, f"pages[{index}].date_pattern", f"expected a regular expression: {exc}") from None

    email_tbl = root.table_("email")
    security = email_tbl.str("security", "starttls")
    if security not in ("none", "starttls", "ssl"):
        raise email_tbl.fail("security", "one of none, starttls, ssl")
    recipients = email_tbl.str_list("recipients")
    for i, rcpt in enumerate(recipients):
        if not EMAIL_RE.match(rcpt):
            raise ConfigError(path, f"email.recipients[{i}]", f"expected an e-mail address, got {rcpt!r}")
    email = EmailSettings(
        smtp_host=email_tbl.str("smtp_host", ""),
        smtp_port=email_tbl.int("smtp_port", 587, 1, 65535),
        security=security,
        username=email_tbl.str("username", ""),
        password_env=email_tbl.str("password_env", "LITMON_SMTP_PASSWORD"),
        sender=email_tbl.str("sender", f"litmon <{contact}>", header=True),
        recipients=recipients,
        timeout=email_tbl.float("timeout", 30.0, positive=True),
        ca_file=email_tbl.str("ca_file", ""),
        attempts=email_tbl.int("attempts", 3, 1, 10),
        retry_backoff_seconds=email_tbl.float("retry_backoff_seconds", 5.0),
    )
    if email.smtp_host and email.username and email.security == "none":
        log.warning(
            '%s: [email] security = "none" with a username: the SMTP password would travel unencrypted to %s '
            '— check: use security = "starttls" or "ssl" unless the server is on this machine',
            path,
            email.smtp_host,
        )
    if email.ca_file and not Path(email.ca_file).expanduser().is_file():
        raise ConfigError(
            path,
            "email.ca_file",
            f"expected the path of a PEM file of trusted CA certificates, got {email.ca_file!r} (no such file)",
        )
    filtered = _parse_recipients(path, data)
    if email.smtp_host and not email.recipients and not filtered:
        raise ConfigError(
            path, "email.recipients", "expected at least one address (or a [[recipients]] table) when email.smtp_host is set"
        )

    digest_tbl = root.table_("digest")
    digest = {
        "period_days": digest_tbl.int("period_days", 7, 1, 366),
        "first_digest_days": digest_tbl.int("first_digest_days", 7, 1, 3660),
        "when_empty": digest_tbl.str("when_empty", "send"),
        "subject_prefix": digest_tbl.str("subject_prefix", "[litmon]", header=True),
        "highlights": digest_tbl.int("highlights", 3, 0, 50),
        "highlight_min_score": digest_tbl.int("highlight_min_score", 40),
        "section_cap": digest_tbl.int("section_cap", 15, 1, 500),
    }
    if digest["when_empty"] not in ("send", "skip"):
        raise digest_tbl.fail("when_empty", "send or skip")
    # every recipient: plain [email] recipients (no filter) and [[recipients]] tables (filters)
    digest["recipients"] = [{"address": a, "sections": [], "tags": [], "min_score": None} for a in email.recipients] + filtered

    http_tbl = root.table_("http")
    http = {
        "connect_timeout": http_tbl.float("connect_timeout", 10.0, positive=True),
        "read_timeout": http_tbl.float("read_timeout", 60.0, positive=True),
        "response_timeout": http_tbl.float("response_timeout", 300.0, positive=True),
        "source_timeout": http_tbl.float("source_timeout", 3600.0, positive=True),
        "max_backoff_seconds": http_tbl.float("max_backoff_seconds", 300.0),
        "max_retries": http_tbl.int("max_retries", 4, 0, 20),
        "backoff_seconds": http_tbl.float("backoff_seconds", 2.0),
        "max_response_mb": http_tbl.float("max_response_mb", 100.0),
        "default_min_interval": http_tbl.float("default_min_interval", 0.5),
    }

    schedule_tbl = root.table_("schedule")
    schedule = {
        "timezone": schedule_tbl.str("timezone", "UTC"),
        "crawl": schedule_tbl.str("crawl", "30 5 * * *"),
        "digest": schedule_tbl.str("digest", "0 7 * * mon"),
        "misfire_grace_seconds": schedule_tbl.int("misfire_grace_seconds", 43200, 1),
    }
    _check_schedule(path, schedule)

    status_tbl = root.table_("status")
    status = {
        "fail_after": status_tbl.int("fail_after", 3, 0),
        "max_lag_hours": status_tbl.int("max_lag_hours", 72, 0),
    }

    return Config(
        path=path,
        contact_email=contact,
        database_path=Path(database.str("path", "litmon.db")).expanduser(),
        database_busy_timeout=database.float("busy_timeout", 60.0, positive=True),
        outbox_dir=Path(outbox.str("dir", "outbox")).expanduser(),
        backfill_from=crawl.date("backfill_from", dt.date(2000, 1, 1)),
        overlap_days=crawl.int("overlap_days", 3, 0, 365),
        topic=topic_cfg,
        sources=sources,
        feeds=feeds,
        pages=pages,
        email=email,
        digest=digest,
        http=http,
        schedule=schedule,
        status=status,
        raw=data,
    )


def _check_schedule(path, schedule) -> None:
    """Cron expressions and the time zone are checked at load, not when the service first needs them."""
    from crawler import cron

    try:
        tz = cron.parse_timezone(schedule["timezone"])
    except ValueError as exc:
        raise ConfigError(path, "schedule.timezone", str(exc)) from None
    for key in ("crawl", "digest"):
        try:
            cron.parse_cron(schedule[key], tz)
        except ValueError as exc:
            raise ConfigError(path, f"schedule.{key}", f"{exc} — expected cron syntax such as '30 5 * * *'") from None


#: Digest sections, in display order ([[recipients]] sections = … names these keys).
DIGEST_SECTIONS = (
    "highlights",
    "notices",
    "clinical",
    "reviews",
    "trials",
    "preprints",
    "preclinical",
    "news",
    "uncertain",
    "health",
)


def _parse_recipients(path, data) -> list[dict[str, Any]]:
    """``[[recipients]]`` tables: address, optional sections (keys of DIGEST_SECTIONS), tags
    (an item must carry one of them) and min_score (work_relevance.rank_score)."""
    items = data.get("recipients", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(
            path, "recipients", "expected [[recipients]] tables with an address (plain addresses go in [email] recipients)"
        )
    result = []
    for index, item in enumerate(items):
        reader = _Reader(path, item, f"recipients[{index}].")
        address = reader.str("address", required=True)
        if not EMAIL_RE.match(address):
            raise reader.fail("address", "an e-mail address")
        extra = sorted(set(item) - {"address", "sections", "tags", "min_score"})
        if extra:
            raise ConfigError(
                path, f"recipients[{index}].{extra[0]}", "unknown key; expected address, sections, tags or min_score"
            )
        sections = reader.str_list("sections")
        unknown = [x for x in sections if x not in DIGEST_SECTIONS]
        if unknown:
            raise ConfigError(
                path,
                f"recipients[{index}].sections",
                f"unknown section {unknown[0]!r}; expected some of {', '.join(DIGEST_SECTIONS)}",
            )
        min_score = item.get("min_score")
        if min_score is not None:
            min_score = reader.float("min_score", 0.0, minimum=-1000.0)
        result.append({"address": address, "sections": sections, "tags": reader.str_list("tags"), "min_score": min_score})
    seen = set()
    for entry in result:
        if entry["address"] in seen:
            raise ConfigError(path, "recipients", f"{entry['address']} is listed twice")
        seen.add(entry["address"])
    return result


def _parse_named_list(path, data, key, required, optional):
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(path, key, f"expected [[{key}]] tables")
    seen = set()
    result = []
    for index, item in enumerate(items):
        reader = _Reader(path, item, f"{key}[{index}].")
        for name in required:
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise ConfigError(path, f"{key}[{index}].{name}", "missing or empty; expected a string")
        reader.url("url", "")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", item["name"]):
            raise ConfigError(path, f"{key}[{index}].name", f"expected letters, digits, '-', '_' or '.', got {item['name']!r}")
        if item["name"] in seen:
            raise ConfigError(path, f"{key}[{index}].name", f"duplicate name {item['name']!r}")
        seen.add(item["name"])
        extra = sorted(set(item) - set(required) - set(optional))
        if extra:
            raise ConfigError(
                path, f"{key}[{index}].{extra[0]}", f"unknown key; expected one of {', '.join(required + optional)}"
            )
        entry = dict(item)
        entry["enabled"] = reader.bool("enabled", True)
        entry["filter"] = reader.bool("filter", True)
        result.append(entry)
    return result


# --------------------------------------------------------------------------- [topic] vocabulary (issue #5)

_RULE_LIST_KEYS = ("terms", "mesh", "exclude", "require", "unless")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _parse_vocabulary(path: str, topic: _Reader) -> dict[str, Any]:
    """``[topic.relevance]``, ``[topic.concepts.*]``, ``[topic.noise.*]``, ``[topic.tags.*]`` (see crawler.classify)."""
    from crawler.evidence import EVIDENCE_TAGS

    relevance = topic.table_("relevance")
    _reject_unknown(path, relevance, ("relevant_score", "uncertain_score", "focus_concept", "focus_bonus"))
    result: dict[str, Any] = {
        "relevance": {
            "relevant_score": relevance.int("relevant_score", 2),
            "uncertain_score": relevance.int("uncertain_score", 1),
            "focus_concept": relevance.str("focus_concept", ""),
            "focus_bonus": relevance.int("focus_bonus", 1, 0, 10),
        }
    }
    if result["relevance"]["uncertain_score"] > result["relevance"]["relevant_score"]:
        raise relevance.fail("uncertain_score", f"an integer <= relevant_score ({result['relevance']['relevant_score']})")
    for group, extra_keys, min_default in (("concepts", (), 1), ("noise", ("penalty",), 2), ("tags", ("category", "label"), 1)):
        table = topic.table_(group)
        rules: dict[str, dict[str, Any]] = {}
        for name in table.table:
            rule = table.table_(name)
            if not _NAME_RE.match(name):
                raise ConfigError(path, rule.prefix.rstrip("."), "expected a name of lower-case letters, digits and '_'")
            if group == "tags" and name in EVIDENCE_TAGS:
                raise ConfigError(
                    path,
                    rule.prefix.rstrip("."),
                    f"{name!r} is an evidence-type tag set by litmon's own rules; choose another name",
                )
            _reject_unknown(path, rule, _RULE_LIST_KEYS + ("min_strength",) + extra_keys)
            spec: dict[str, Any] = {key: rule.str_list(key) for key in _RULE_LIST_KEYS}
            if not spec["terms"] and not spec["mesh"]:
                raise ConfigError(path, rule.key("terms"), "expected at least one term (or a mesh entry)")
            for key in _RULE_LIST_KEYS:
                _check_terms(path, rule, key, spec[key])
            spec["min_strength"] = rule.int("min_strength", min_default, 1, 3)
            if group == "noise":
                spec["penalty"] = rule.int("penalty", 1, 0, 100)
            if group == "tags":
                spec["category"] = rule.str("category", "topic")
                spec["label"] = rule.str("label", "")  # shown in digests; "" = the name in words
                if not _NAME_RE.match(spec["category"]):
                    raise rule.fail("category", "a name of lower-case letters, digits and '_' (e.g. drug, indication, safety)")
            rules[name] = spec
        result[group] = rules
    focus = result["relevance"]["focus_concept"]
    if focus and focus not in result["concepts"]:
        names = ", ".join(result["concepts"]) or "none: [topic.concepts.*] is empty"
        raise relevance.fail("focus_concept", f'the name of a [topic.concepts.*] table ({names}) or ""')
    return result


def _reject_unknown(path: str, reader: _Reader, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(reader.table) - set(allowed))
    if unknown:
        raise ConfigError(path, reader.key(unknown[0]), f"unknown key; expected one of {', '.join(allowed)}")


def _check_terms(path: str, reader: _Reader, key: str, terms: list[str]) -> None:
    from crawler.terms import mesh_pattern, term_pattern

    for index, term in enumerate(terms):
        try:
            re.compile((mesh_pattern if key == "mesh" else term_pattern)(term), re.I)
        except (re.error, ValueError) as exc:
            raise ConfigError(path, f"{reader.key(key)}[{index}]", f"invalid term {term!r}: {exc}") from None
