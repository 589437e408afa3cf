"""Configuration: TOML file lookup, defaults and validation.

Lookup order: ``--config PATH`` > ``$LITMON_CONFIG`` > ``./litmon.toml`` > the shipped default
(``config/litmon.toml``, installed inside the package as ``crawler/default_config.toml``,
a symbolic link in the source tree).
Every value read here is checked; an invalid file raises :class:`ConfigError` naming the file, the
key and what is expected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from crawler.errors import ConfigError
from crawler.settings import (
    EMAIL_RE,
    Section,
    check_value,
    declared,
    read_section,
    setting,
    suggestion,
    unknown_key,
)

#: Sources that have a [sources.<name>] table. Feeds and pages are configured as lists.
API_SOURCES = ("pubmed", "europepmc", "clinicaltrials", "biorxiv", "crossref", "isrctn", "ctis", "openalex")


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

#: control characters (CR, LF, tab, NUL…): never allowed in values that reach mail headers
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

log = logging.getLogger("crawler.config")


def shipped_config_text() -> str:
    """The text of the shipped default configuration."""
    return resources.files("crawler").joinpath("default_config.toml").read_text(encoding="utf-8")


def shipped_config_data() -> dict[str, Any]:
    """The shipped default configuration as tomllib reads it: from its kept parse (``crawler/default_config.json``,
    :func:`kept_parse`) when that was made from the shipped text, else parsed. tomllib is pure Python: parsing the
    shipped file took ~28 M instructions of every command's start."""
    text = shipped_config_text()
    kept = _read_kept_parse(text)
    return kept if kept is not None else _toml(text, SHIPPED_LABEL)


#: The kept parse of the shipped file: regenerate with ``python -m crawler.config > crawler/default_config.json``.
KEPT_PARSE = "default_config.json"


def kept_parse(text: str) -> str:
    """The JSON kept for a TOML text: its SHA-256 and what tomllib reads (dates as ``{"$date": "YYYY-MM-DD"}``)."""

    def encoded(value: Any) -> Any:
        if isinstance(value, dict):
            if "$date" in value:
                raise ValueError("a table with a `$date` key cannot be kept")
            return {key: encoded(v) for key, v in value.items()}
        if isinstance(value, list):
            return [encoded(v) for v in value]
        if type(value) is dt.date:
            return {"$date": value.isoformat()}
        if isinstance(value, (str, int, float)):  # (bool is an int)
            return value
        raise ValueError(f"cannot keep a {type(value).__name__}: {value!r}")

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return json.dumps({"toml_sha256": digest, "data": encoded(tomllib.loads(text))}, ensure_ascii=False, indent=1) + "\n"


def _read_kept_parse(text: str) -> dict[str, Any] | None:
    """The kept parse of ``text`` if the kept file was made from it; None when it was not, or is missing or unreadable."""
    try:
        kept = json.loads(resources.files("crawler").joinpath(KEPT_PARSE).read_text(encoding="utf-8"), object_hook=_dated)
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("toml_sha256") != hashlib.sha256(text.encode("utf-8")).hexdigest():
        return None
    data = kept.get("data")
    return data if isinstance(data, dict) else None


def _dated(table: dict[str, Any]) -> Any:
    return dt.date.fromisoformat(table["$date"]) if len(table) == 1 and "$date" in table else table


@dataclass
class DatabaseSettings(Section):
    path: str = setting("litmon.db", "The SQLite file (created on the first run; a public, documented schema).")
    busy_timeout: float = setting(
        60.0, "Seconds a write waits for another program's write lock before the run fails, naming that program.", positive=True
    )


@dataclass
class OutboxSettings(Section):
    dir: str = setting("outbox", "Folder the digests are written to when [email] smtp_host is empty (and each digest's HTML).")


@dataclass
class CrawlSettings(Section):
    backfill_from: dt.date = setting(dt.date(2000, 1, 1), "The first run of each source reads back to this date.")
    overlap_days: int = setting(
        3, "Each run re-reads this many days before the source's watermark (late-indexed records).", minimum=0, maximum=365
    )
    fetch_worker: str = setting(
        "auto",
        "Fetch and parse a source, and classify its new records, in a second process while this one writes the database:"
        " auto = for an API source whose window is longer than 31 days (a backfill) on a machine with two cores or more;"
        " on = for every source (two cores or more); off = never.",
        choices=("auto", "on", "off"),
    )


@dataclass
class EmailSettings(Section):
    smtp_host: str = setting("", "SMTP server; empty: digests are written to [outbox] dir instead of being sent.")
    smtp_port: int = setting(587, "587 for starttls, 465 for ssl, 25 for a local relay.", minimum=1, maximum=65535)
    security: str = setting("starttls", "Transport security.", choices=("none", "starttls", "ssl"))
    username: str = setting("", "SMTP login; empty = send without logging in.")
    password_env: str = setting(
        "LITMON_SMTP_PASSWORD", "Name of the environment variable holding the SMTP password (never the password itself)."
    )
    sender: str = setting("", "The From: header.", shown="`litmon <contact_email>`", kind="header")
    recipients: list[str] = setting([], "Addresses that get every section; required (or [[recipients]]) when smtp_host is set.")
    timeout: float = setting(30.0, "Seconds to wait for the SMTP server.", positive=True)
    ca_file: str = setting("", "PEM file of CA certificates to trust for STARTTLS/SSL (empty: the system's CAs).")
    attempts: int = setting(3, "Delivery attempts per recipient (transient failures only).", minimum=1, maximum=10)
    retry_backoff_seconds: float = setting(5.0, "Seconds before the first retry, doubling each time.", minimum=0.0)


@dataclass
class RecipientSettings(Section):
    address: str = setting("", "The recipient's e-mail address.", kind="email", required=True)
    sections: list[str] = setting([], "Only these digest sections (keys: " + ", ".join(DIGEST_SECTIONS) + "); empty = all.")
    tags: list[str] = setting([], "Only items carrying one of these tags; empty = all.")
    min_score: float | None = setting(None, "Only items whose rank_score is at least this.", minimum=-1000.0)
    operator: bool = setting(
        False, "Also gets the full diagnostics of failed sources (URLs, what to check) in the digest's health notice."
    )


@dataclass
class DigestSettings(Section):
    period_days: int = setting(7, "Days between digests; a digest covers everything since the last one.", minimum=1, maximum=366)
    first_digest_days: int = setting(
        7,
        "The first digest after a backfill lists only works entered in the last N days; a source added later is news"
        " from N days before its first crawl (older works it brings are counted as caught up, not listed).",
        minimum=1,
        maximum=3660,
    )
    when_empty: str = setting("send", 'Send a short "nothing new" digest, or skip it.', choices=("send", "skip"))
    subject_prefix: str = setting("[litmon]", "Start of every digest subject.", kind="header")
    highlights: int = setting(3, "The digest opens with up to this many best-ranked relevant works.", minimum=0, maximum=50)
    highlight_min_score: int = setting(40, "Rank score a work needs to be highlighted.")
    section_cap: int = setting(
        15,
        "Items per section in the e-mail body at most; the rest is counted and in the attached RIS file.",
        minimum=1,
        maximum=500,
    )
    #: every recipient: plain [email] recipients (no filter) and [[recipients]] tables (computed, not a key)
    recipients: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class HttpSettings(Section):
    connect_timeout: float = setting(10.0, "Seconds to connect.", positive=True)
    read_timeout: float = setting(60.0, "Seconds to wait between two bytes of an answer.", positive=True)
    response_timeout: float = setting(300.0, "Seconds one response may take in all (a slow drip ends here).", positive=True)
    source_timeout: float = setting(3600.0, "Seconds one source may take in one run.", positive=True)
    max_backoff_seconds: float = setting(300.0, "Longest wait before a retry (Retry-After included).", minimum=0.0)
    max_retries: int = setting(4, "Retries on HTTP 429/5xx and connection errors (not on DNS failures).", minimum=0, maximum=20)
    backoff_seconds: float = setting(2.0, "First retry delay; doubles each time (Retry-After is honoured).", minimum=0.0)
    max_response_mb: float = setting(100.0, "Largest response body accepted.", minimum=0.0)
    default_min_interval: float = setting(0.5, "Seconds between two requests to one host when the source sets none.", minimum=0.0)


@dataclass
class ScheduleSettings(Section):
    timezone: str = setting("UTC", 'IANA time zone the cron expressions are read in, e.g. "Europe/Berlin".')
    crawl: str = setting("30 5 * * *", "When `litmon serve` crawls (cron: minute hour day month day-of-week).")
    digest: str = setting("0 7 * * mon", "When `litmon serve` makes and sends the digest.")
    misfire_grace_seconds: int = setting(43200, "A run missed by at most this many seconds still starts.", minimum=1)


@dataclass
class StatusSettings(Section):
    fail_after: int = setting(
        3,
        "A source that failed this many runs in a row makes `litmon status` exit 4 and `litmon run` exit 1 (0 = never).",
        minimum=0,
    )
    max_lag_hours: int = setting(
        72, "An enabled source without a success for this many hours is unhealthy (0 = never).", minimum=0
    )


@dataclass
class RootSettings(Section):
    contact_email: str = setting(
        "", "Your address: sent to the APIs in the User-Agent and as NCBI `email` (required).", kind="email", required=True
    )
    extends: str = setting(
        "shipped",
        "What this file is layered over: the shipped defaults, or nothing (every key not given takes its declared default).",
        choices=("shipped", "none"),
    )


# --------------------------------------------------------------------------- [topic] (its own form, not a Section)
# The topic is read by its own parser below (_parse_topic: its messages and checks predate the Section declarations)
# into these frozen values. Their term lists are tuples; the rule groups are dicts (name -> rule, in the file's order)
# that nothing changes after parsing. crawler.classify compiles a Topic into its rules (build_vocabulary).


@dataclass(frozen=True)
class TopicRelevance:
    """``[topic.relevance]``: the score thresholds and the focus concept (see crawler.classify.judge_relevance)."""

    #: a work scoring at least this is relevant
    relevant_score: int = 2
    #: a work scoring at least this (and less than relevant_score) is uncertain; else not relevant
    uncertain_score: int = 1
    #: the name of a [topic.concepts.*] table, or "" for none
    focus_concept: str = ""
    #: added to the score when the focus concept is in a title, MeSH or trial field and every concept is present
    focus_bonus: int = 1


@dataclass(frozen=True)
class TopicRule:
    """The term lists every ``[topic.<group>.<name>]`` table has (crawler.terms.TermRule reads them)."""

    #: terms (``re:`` for an expression, ``*`` for a word start) that make the rule match
    terms: tuple[str, ...] = ()
    #: MeSH headings (``*``: the heading and those below it)
    mesh: tuple[str, ...] = ()
    #: phrases blanked out before matching
    exclude: tuple[str, ...] = ()
    #: at least one of these must also appear
    require: tuple[str, ...] = ()
    #: the rule does not apply when one of these appears
    unless: tuple[str, ...] = ()
    #: the weakest match that counts (1 to 3)
    min_strength: int = 1


class TopicConcept(TopicRule):
    """``[topic.concepts.<name>]``: what a relevant work is about (every concept must be present).

    (No fields of its own: TopicRule's methods serve it as they are; a dataclass decorator here would make the same
    methods again, ~4 M instructions at each start.)"""


@dataclass(frozen=True)
class TopicNoise(TopicRule):
    """``[topic.noise.<name>]``: a context that catches the topic's words without being about it."""

    min_strength: int = 2
    #: taken off the score when the noise applies (0 to 100)
    penalty: int = 1


@dataclass(frozen=True)
class TopicTag(TopicRule):
    """``[topic.tags.<name>]``: a topic tag of a work."""

    #: lower-case letters, digits and '_' (shipped: drug, indication, safety)
    category: str = "topic"
    #: shown in digests; "" = the name in words
    label: str = ""


@dataclass(frozen=True)
class Topic:
    """``[topic]``: the name, the terms that filter feeds and preprints locally, and the vocabulary."""

    #: shown in digests (subject, List-Id)
    name: str = "Literature monitor"
    #: lower-cased; required non-empty by the parser
    match_terms: tuple[str, ...] = ()
    #: lower-cased; a noise class of penalty 100
    exclude_terms: tuple[str, ...] = ()
    relevance: TopicRelevance = field(default_factory=TopicRelevance)
    concepts: dict[str, TopicConcept] = field(default_factory=dict)
    noise: dict[str, TopicNoise] = field(default_factory=dict)
    tags: dict[str, TopicTag] = field(default_factory=dict)


#: [table] name -> declaration, in the order of the shipped file and the reference.
SECTIONS: dict[str, type] = {
    "database": DatabaseSettings,
    "outbox": OutboxSettings,
    "crawl": CrawlSettings,
    "email": EmailSettings,
    "digest": DigestSettings,
    "http": HttpSettings,
    "schedule": ScheduleSettings,
    "status": StatusSettings,
}
#: Every top-level table or array of tables a config file may have.
TABLES = (
    "database",
    "outbox",
    "crawl",
    "topic",
    "sources",
    "feeds",
    "pages",
    "email",
    "recipients",
    "digest",
    "http",
    "schedule",
    "status",
)
#: Arrays of tables: a file that gives one replaces the list of the layer below.
TABLE_ARRAYS = ("feeds", "pages", "recipients")
TOPIC_KEYS = ("name", "match_terms", "exclude_terms", "relevance", "concepts", "noise", "tags")
PLACEHOLDER_CONTACT = "litmon-operator@example.org"


@dataclass
class Config:
    path: str
    contact_email: str
    database_path: Path
    outbox_dir: Path
    backfill_from: dt.date
    overlap_days: int
    topic: Topic
    sources: dict[str, dict[str, Any]]
    feeds: list[dict[str, Any]]
    pages: list[dict[str, Any]]
    email: EmailSettings
    digest: DigestSettings
    http: HttpSettings
    schedule: ScheduleSettings
    status: StatusSettings
    raw: dict[str, Any]
    #: seconds a write waits for another program's SQLite write lock before the run fails ([database] busy_timeout)
    database_busy_timeout: float = 60.0
    #: [crawl] fetch_worker: auto | on | off (crawler.fetch_worker)
    fetch_worker: str = "auto"
    #: dotted key -> the file it came from (keys absent here take their declared default)
    origins: dict[str, str] = field(default_factory=dict)
    #: the files layered, from the bottom
    layers: list[str] = field(default_factory=list)

    @property
    def placeholder_contact(self) -> bool:
        """Whether contact_email is still the shipped placeholder (APIs would see an address nobody reads)."""
        return self.contact_email.strip().lower() == PLACEHOLDER_CONTACT

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


def read_layers(text: str, path: str) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The configuration data with the shipped defaults below the file (unless it says ``extends = "none"``
    or is the shipped file): (merged data, where each value came from, the layers from the bottom)."""
    data = shipped_config_data() if path.startswith("<shipped") else _toml(text, path)
    origins: dict[str, str] = {}
    extends = data.get("extends", "shipped")
    if extends not in ("shipped", "none"):
        raise ConfigError(path, "extends", f"expected one of shipped, none, got {extends!r}")
    if extends == "none" or path.startswith("<shipped") or text == shipped_config_text():
        _note_origins(data, SHIPPED_LABEL if path.startswith("<shipped") else path, origins)
        return data, origins, [SHIPPED_LABEL if path.startswith("<shipped") else path]
    base = shipped_config_data()
    _note_origins(base, SHIPPED_LABEL, origins)
    return merge_layers(base, data, path, origins), origins, [SHIPPED_LABEL, path]


SHIPPED_LABEL = "<shipped default config/litmon.toml>"


def _toml(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from None


def _note_origins(data: Any, label: str, origins: dict[str, str], prefix: str = "") -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            _note_origins(value, label, origins, dotted + ".")
        else:
            origins[dotted] = label


def merge_layers(
    base: dict[str, Any], over: dict[str, Any], label: str, origins: dict[str, str], prefix: str = ""
) -> dict[str, Any]:
    """``over`` merged over ``base``: tables key by key; any other value, arrays of tables
    ([[feeds]], [[pages]], [[recipients]]) included, replaces the one below."""
    result = dict(base)
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            result[key] = merge_layers(base[key], value, label, origins, dotted + ".")
            continue
        # the origins of what the value replaces: its key's, or every key's of the table it replaces (only a table
        # has keys below it: searching all origins for each value took ~40 M instructions per start of a file that
        # repeats the shipped [topic])
        if isinstance(base.get(key), dict):
            for old in [k for k in origins if k.startswith(dotted + ".")]:
                del origins[old]
        origins.pop(dotted, None)
        result[key] = value
        if isinstance(value, dict):
            _note_origins(value, label, origins, dotted + ".")
        else:
            origins[dotted] = label
    return result


def parse_config(text: str, path: str = "<string>") -> Config:
    """Check a configuration file, layered over the shipped defaults unless it says ``extends = "none"``."""
    data, origins, layers = read_layers(text, path)
    _check_top_level(path, data)
    contact = _read_contact_email(path, data)
    sections = {name: read_section(cls, data.get(name, {}), path, f"{name}.", f"[{name}]")[0] for name, cls in SECTIONS.items()}
    email: EmailSettings = sections["email"]
    filtered = _check_email(path, data, email, contact)
    digest: DigestSettings = sections["digest"]
    digest.recipients = [
        {"address": a, "sections": [], "tags": [], "min_score": None, "operator": False} for a in email.recipients
    ] + filtered
    schedule: ScheduleSettings = sections["schedule"]
    _check_schedule(path, schedule)
    topic_cfg = _parse_topic(path, data, origins)
    crawl: CrawlSettings = sections["crawl"]
    return Config(
        path=path,
        contact_email=contact,
        database_path=Path(sections["database"].path).expanduser(),
        database_busy_timeout=sections["database"].busy_timeout,
        outbox_dir=Path(sections["outbox"].dir).expanduser(),
        backfill_from=crawl.backfill_from,
        overlap_days=crawl.overlap_days,
        fetch_worker=crawl.fetch_worker,
        topic=topic_cfg,
        sources=_parse_sources(path, data.get("sources", {})),
        feeds=_parse_named_list(path, data, "feeds"),
        pages=_parse_named_list(path, data, "pages"),
        email=email,
        digest=digest,
        http=sections["http"],
        schedule=schedule,
        status=sections["status"],
        raw=data,
        origins=origins,
        layers=layers,
    )


def _check_top_level(path: str, data: dict[str, Any]) -> None:
    """Every top-level name is a known table of the right shape or a root key; else an error with a suggestion."""
    root_keys = [f.name for f in declared(RootSettings)]
    for key, value in data.items():
        if key in TABLE_ARRAYS:
            if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
                raise ConfigError(path, key, f"expected [[{key}]] tables")
        elif key in TABLES:
            if not isinstance(value, dict):
                raise ConfigError(path, key, f"expected a table, got {value!r}")
        elif key not in root_keys:
            if isinstance(value, (dict, list)):
                raise ConfigError(path, key, f"unknown table `[{key}]`{suggestion(key, TABLES, '[{}]')}")
            raise unknown_key(path, key, "at the top level", root_keys + list(TABLES))


def _read_contact_email(path: str, data: dict[str, Any]) -> str:
    """The root keys read; ``contact_email`` must be an address (APIs see it)."""
    expected = "expected an e-mail address (sent to APIs in the User-Agent and as NCBI email)"
    root_values = {k: v for k, v in data.items() if k in ("contact_email", "extends")}
    try:
        root, _ = read_section(RootSettings, root_values, path, "", "at the top level")
    except ConfigError as exc:
        if exc.key == "contact_email" and "missing" in str(exc):
            raise ConfigError(path, "contact_email", f"{expected}, got ''") from None
        raise
    contact = root.contact_email
    if not EMAIL_RE.match(contact):
        raise ConfigError(path, "contact_email", f"{expected}, got {contact!r}")
    return contact


def _check_email(path: str, data: dict[str, Any], email: EmailSettings, contact: str) -> list[dict[str, Any]]:
    """Complete and check ``[email]`` against the rest of the file; returns the ``[[recipients]]`` tables."""
    if not email.sender:
        email.sender = f"litmon <{contact}>"
    for i, rcpt in enumerate(email.recipients):
        if not EMAIL_RE.match(rcpt):
            raise ConfigError(path, f"email.recipients[{i}]", f"expected an e-mail address, got {rcpt!r}")
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
    return filtered


def _parse_topic(path: str, data: dict[str, Any], origins: dict[str, str]) -> Topic:
    """``[topic]``: the name, the terms that filter feeds and preprints locally, and the vocabulary (``origins``: where
    each key came from, see :func:`_parse_rule`)."""
    topic = _Reader(path, data.get("topic", {}), "topic.")
    _reject_unknown(path, topic, TOPIC_KEYS)
    name = topic.str("name", Topic.name, header=True)
    match_terms = tuple(t.lower() for t in topic.str_list("match_terms"))
    exclude_terms = tuple(t.lower() for t in topic.str_list("exclude_terms"))
    if not match_terms:
        raise ConfigError(
            path, "topic.match_terms", "expected a non-empty list of terms used to filter feeds and preprints locally"
        )
    # the term lists the shipped file gives are known to be valid (tests/test_config.py checks each term of it)
    shipped = frozenset(key for key, label in origins.items() if label == SHIPPED_LABEL and key.startswith("topic."))
    relevance, concepts, noise, tags = _parse_vocabulary(path, topic, shipped)
    return Topic(name, match_terms, exclude_terms, relevance, concepts, noise, tags)


def source_declarations() -> dict[str, type]:
    """[sources.<name>] -> the ``Settings`` its module declares (in ``crawler.sources.settings``: the source modules
    themselves are not imported)."""
    from crawler.sources import SETTINGS

    return {name: importlib.import_module(SETTINGS[name]).Settings for name in API_SOURCES}


def list_declarations() -> dict[str, type]:
    """[[feeds]] and [[pages]] -> the ``Settings`` their modules declare (as :func:`source_declarations`)."""
    from crawler.sources import SETTINGS

    return {
        "feeds": importlib.import_module(SETTINGS["feed"]).Settings,
        "pages": importlib.import_module(SETTINGS["page"]).Settings,
    }


#: Keys an enabled source cannot do without: (key, what to give).
_NEEDED_WHEN_ENABLED = {
    "pubmed": ("query", "a PubMed query"),
    "europepmc": ("query", "a Europe PMC query"),
    "crossref": ("query", "words for query.bibliographic"),
    "isrctn": ("query", "an ISRCTN query"),
    "openalex": ("query", "an OpenAlex search expression"),
    "ctis": ("query", "words of the CTIS portal's search"),
}


def _parse_sources(path: str, table: Any) -> dict[str, dict[str, Any]]:
    declarations = source_declarations()
    for name in table:
        if name not in declarations:
            raise ConfigError(
                path,
                f"sources.{name}",
                f"unknown source `{name}` in [sources]{suggestion(name, declarations)} "
                f"(expected one of {', '.join(API_SOURCES)}; feeds go in [[feeds]], pages in [[pages]])",
            )
    sources: dict[str, dict[str, Any]] = {}
    for name, cls in declarations.items():
        given = table.get(name, {})
        settings, keys = read_section(cls, given, path, f"sources.{name}.", f"[sources.{name}]")
        if settings.enabled or "base_url" in keys:
            check_value(path, f"sources.{name}.base_url", str, {"kind": "url"}, settings.base_url)
        if settings.enabled and name in _NEEDED_WHEN_ENABLED:
            key, what = _NEEDED_WHEN_ENABLED[name]
            value = getattr(settings, key)
            if not (" ".join(value) if isinstance(value, list) else value).strip():
                raise ConfigError(path, f"sources.{name}.{key}", f"no query configured; expected {what} (the source is enabled)")
        if name == "clinicaltrials" and settings.enabled and not (settings.conditions or settings.interventions):
            raise ConfigError(
                path, "sources.clinicaltrials.conditions", "no search configured: both conditions and interventions are empty"
            )
        # what the source modules read: the keys given (their fallbacks are the declared defaults) and `enabled`
        result = {key: getattr(settings, key) for key in keys}
        result["enabled"] = settings.enabled
        sources[name] = result
    return sources


def _parse_recipients(path: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """``[[recipients]]`` tables: address, optional sections (keys of DIGEST_SECTIONS), tags
    (an item must carry one of them), min_score (work_relevance.rank_score) and operator."""
    items = data.get("recipients", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(
            path, "recipients", "expected [[recipients]] tables with an address (plain addresses go in [email] recipients)"
        )
    result = []
    for index, item in enumerate(items):
        entry, _ = read_section(RecipientSettings, item, path, f"recipients[{index}].", f"[[recipients]] #{index + 1}")
        unknown = [x for x in entry.sections if x not in DIGEST_SECTIONS]
        if unknown:
            raise ConfigError(
                path,
                f"recipients[{index}].sections",
                f"unknown section {unknown[0]!r}{suggestion(unknown[0], DIGEST_SECTIONS)} "
                f"(expected some of {', '.join(DIGEST_SECTIONS)})",
            )
        result.append(entry.as_dict())
    seen = set()
    for entry in result:
        if entry["address"] in seen:
            raise ConfigError(path, "recipients", f"{entry['address']} is listed twice")
        seen.add(entry["address"])
    return result


def _parse_named_list(path: str, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(path, key, f"expected [[{key}]] tables")
    cls = list_declarations()[key]
    seen = set()
    result = []
    for index, item in enumerate(items):
        settings, given = read_section(cls, item, path, f"{key}[{index}].", f"[[{key}]] #{index + 1}")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", settings.name):
            raise ConfigError(path, f"{key}[{index}].name", f"expected letters, digits, '-', '_' or '.', got {settings.name!r}")
        if settings.name in seen:
            raise ConfigError(path, f"{key}[{index}].name", f"duplicate name {settings.name!r}")
        seen.add(settings.name)
        entry = {name: getattr(settings, name) for name in given}
        entry["enabled"] = settings.enabled
        entry["filter"] = settings.filter
        result.append(entry)
    return result


def _check_schedule(path, schedule) -> None:
    """Cron expressions and the time zone are checked at load, not when the service first needs them. The declared
    defaults are known to be valid (tests/test_schedule.py reads them): a schedule left at them is not read again,
    which spares every command importing APScheduler (~7 % of a start's imports)."""
    defaults = ScheduleSettings()
    if all(schedule[key] == getattr(defaults, key) for key in ("timezone", "crawl", "digest")):
        return
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


# --------------------------------------------------------------------------- [topic] vocabulary (issue #5)

_RULE_LIST_KEYS = ("terms", "mesh", "exclude", "require", "unless")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _parse_vocabulary(
    path: str, topic: _Reader, shipped: frozenset[str]
) -> tuple[TopicRelevance, dict[str, TopicConcept], dict[str, TopicNoise], dict[str, TopicTag]]:
    """``[topic.relevance]``, ``[topic.concepts.*]``, ``[topic.noise.*]``, ``[topic.tags.*]`` (see crawler.classify)."""
    table = topic.table_("relevance")
    _reject_unknown(path, table, ("relevant_score", "uncertain_score", "focus_concept", "focus_bonus"))
    relevance = TopicRelevance(
        relevant_score=table.int("relevant_score", TopicRelevance.relevant_score),
        uncertain_score=table.int("uncertain_score", TopicRelevance.uncertain_score),
        focus_concept=table.str("focus_concept", TopicRelevance.focus_concept),
        focus_bonus=table.int("focus_bonus", TopicRelevance.focus_bonus, 0, 10),
    )
    if relevance.uncertain_score > relevance.relevant_score:
        raise table.fail("uncertain_score", f"an integer <= relevant_score ({relevance.relevant_score})")
    concepts = _parse_rules(path, topic, "concepts", TopicConcept, shipped)
    noise = _parse_rules(path, topic, "noise", TopicNoise, shipped)
    tags = _parse_rules(path, topic, "tags", TopicTag, shipped)
    focus = relevance.focus_concept
    if focus and focus not in concepts:
        names = ", ".join(concepts) or "none: [topic.concepts.*] is empty"
        raise table.fail("focus_concept", f'the name of a [topic.concepts.*] table ({names}) or ""')
    return relevance, concepts, noise, tags


_Rule = TypeVar("_Rule", bound=TopicRule)


def _parse_rules(path: str, topic: _Reader, group: str, kind: type[_Rule], shipped: frozenset[str]) -> dict[str, _Rule]:
    """The ``[topic.<group>.*]`` tables, name -> rule, in the file's order."""
    table = topic.table_(group)
    return {name: kind(**_parse_rule(path, group, name, table.table_(name), shipped)) for name in table.table}


#: The rule tables of [topic]: each group's keys beyond the term lists, and its default min_strength.
_RULE_GROUPS = {
    "concepts": ((), TopicConcept.min_strength),
    "noise": (("penalty",), TopicNoise.min_strength),
    "tags": (("category", "label"), TopicTag.min_strength),
}


def _parse_rule(path: str, group: str, name: str, rule: _Reader, shipped: frozenset[str]) -> dict[str, Any]:
    """One ``[topic.<group>.<name>]`` table: its term lists, checked, and the group's own keys (the rule's fields).

    A term list of the shipped file (its dotted key in ``shipped``) is not checked again: a test checks every term of
    it, and checking them took ~18 M instructions at each start (its ``re:`` terms compiled one by one, ~1.3 M each),
    as the schedule's defaults are not read again (:func:`_check_schedule`)."""
    from crawler.evidence import EVIDENCE_TAGS

    extra_keys, min_default = _RULE_GROUPS[group]
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
        if spec[key] and rule.key(key) not in shipped:
            _check_terms(path, rule, key, spec[key])
        spec[key] = tuple(spec[key])
    spec["min_strength"] = rule.int("min_strength", min_default, 1, 3)
    if group == "noise":
        spec["penalty"] = rule.int("penalty", TopicNoise.penalty, 0, 100)
    if group == "tags":
        spec["category"] = rule.str("category", TopicTag.category)
        spec["label"] = rule.str("label", TopicTag.label)  # shown in digests; "" = the name in words
        if not _NAME_RE.match(spec["category"]):
            raise rule.fail("category", "a name of lower-case letters, digits and '_' (e.g. drug, indication, safety)")
    return spec


def _reject_unknown(path: str, reader: _Reader, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(reader.table) - set(allowed))
    if unknown:
        raise unknown_key(path, unknown[0], f"[{reader.prefix.rstrip('.')}]", allowed, prefix=reader.prefix)


def _check_terms(path: str, reader: _Reader, key: str, terms: list[str]) -> None:
    from crawler.terms import plain_term_parts, term_pattern

    if key == "mesh":  # a MeSH entry is compared as text (crawler.terms.mesh_pattern escapes it): any string is one
        return
    for index, term in enumerate(terms):
        try:
            if term.startswith("re:"):
                re.compile(term_pattern(term), re.I)
            else:  # words escaped and joined: always a valid expression (compiling each cost ~0.15 s per start), once
                plain_term_parts(term)  # its words are found (an empty term is refused)
        except (re.error, ValueError) as exc:
            raise ConfigError(path, f"{reader.key(key)}[{index}]", f"invalid term {term!r}: {exc}") from None


if __name__ == "__main__":  # python -m crawler.config > crawler/default_config.json
    import sys

    sys.stdout.write(kept_parse(shipped_config_text()))
