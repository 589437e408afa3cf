"""Configuration: lookup order, the shipped default, and validation errors that name file, key and expectation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from crawler import config as config_module
from crawler.config import (
    API_SOURCES,
    SHIPPED_LABEL,
    Topic,
    TopicConcept,
    TopicNoise,
    TopicRelevance,
    TopicTag,
    load_config,
    parse_config,
    shipped_config_text,
)
from crawler.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# Standalone files (extends = "none"): what is not given takes its declared default, not the shipped one.
MINIMAL = """\
contact_email = "{contact}"
extends = "none"
[topic]
match_terms = ["ketamin"]
"""


def minimal(contact: str = "tester@example.org", extra: str = "") -> str:
    return MINIMAL.format(contact=contact) + extra


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No $LITMON_CONFIG and an empty working directory, so no ./litmon.toml is found by accident."""
    monkeypatch.delenv("LITMON_CONFIG", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


# --------------------------------------------------------------------------- lookup order


def write(path: Path, contact: str) -> Path:
    path.write_text(minimal(contact), encoding="utf-8")
    return path


def test_explicit_config_beats_environment_and_working_directory(tmp_path, clean_env, monkeypatch):
    explicit = write(tmp_path / "explicit.toml", "explicit@example.org")
    monkeypatch.setenv("LITMON_CONFIG", str(write(tmp_path / "env.toml", "env@example.org")))
    write(clean_env / "litmon.toml", "cwd@example.org")

    config = load_config(str(explicit))

    assert config.contact_email == "explicit@example.org"
    assert config.path == str(explicit)


def test_environment_beats_working_directory(tmp_path, clean_env, monkeypatch):
    env_file = write(tmp_path / "env.toml", "env@example.org")
    monkeypatch.setenv("LITMON_CONFIG", str(env_file))
    write(clean_env / "litmon.toml", "cwd@example.org")

    config = load_config(None)

    assert config.contact_email == "env@example.org"
    assert config.path == str(env_file)


def test_working_directory_file_beats_shipped_default(clean_env):
    write(clean_env / "litmon.toml", "cwd@example.org")

    config = load_config(None)

    assert config.contact_email == "cwd@example.org"
    assert config.path == "litmon.toml"


def test_empty_environment_variable_is_ignored(clean_env, monkeypatch):
    monkeypatch.setenv("LITMON_CONFIG", "")
    write(clean_env / "litmon.toml", "cwd@example.org")

    assert load_config(None).contact_email == "cwd@example.org"


def test_shipped_default_when_nothing_else_is_found(clean_env):
    config = load_config(None)

    assert config.path.startswith("<shipped default")
    assert config.contact_email == "litmon-operator@example.org"
    assert config.raw == parse_config(shipped_config_text()).raw


def test_missing_explicit_config_file_is_an_error_not_a_fallback(tmp_path, clean_env):
    write(clean_env / "litmon.toml", "cwd@example.org")
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as info:
        load_config(str(missing))

    assert info.value.path == str(missing)
    assert str(info.value) == f"{missing}: file not found (given by --config)"


def test_missing_environment_config_file_is_an_error_not_a_fallback(tmp_path, clean_env, monkeypatch):
    write(clean_env / "litmon.toml", "cwd@example.org")
    missing = tmp_path / "gone.toml"
    monkeypatch.setenv("LITMON_CONFIG", str(missing))

    with pytest.raises(ConfigError, match=re.escape(f"{missing}: file not found (given by LITMON_CONFIG)")):
        load_config(None)


def test_unreadable_config_path_is_an_error(tmp_path, clean_env):
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))  # a directory

    assert str(info.value).startswith(f"{tmp_path}: cannot read file given by --config")


# --------------------------------------------------------------------------- the shipped default


def test_shipped_text_is_the_repository_file():
    assert shipped_config_text() == (ROOT / "config" / "litmon.toml").read_text(encoding="utf-8")


def test_shipped_default_enables_every_api_source_over_https():
    config = parse_config(shipped_config_text(), "<shipped>")

    assert set(API_SOURCES) == {"pubmed", "europepmc", "clinicaltrials", "biorxiv", "crossref", "isrctn", "ctis", "openalex"}
    for name in API_SOURCES:
        settings = config.source(name)
        assert settings["enabled"] is True, name
        assert settings["base_url"].startswith("https://"), name
        assert settings["base_url"].endswith("/"), name  # sources append their documented paths


def test_shipped_default_feeds_pages_and_delivery():
    config = parse_config(shipped_config_text(), "<shipped>")

    names = [feed["name"] for feed in config.feeds]
    assert len(names) >= 7
    assert "jama-psychiatry" in names
    assert all(feed["url"].startswith("https://") for feed in config.feeds)
    assert all(page["url"].startswith("https://") for page in config.pages)
    assert config.email.smtp_host == ""  # digests go to the outbox until SMTP is configured
    assert config.email.security == "starttls"
    assert config.backfill_from == dt.date(2000, 1, 1)
    assert config.overlap_days == 3
    assert "ketamin" in config.topic.match_terms


#: (table, key) pairs that make up the configuration interface; each must be explained in the shipped file.
#: A table of None is the top level; "sources.*" means every [sources.X] table that sets the key.
INTERFACE_KEYS = [
    (None, "contact_email"),
    ("database", "path"),
    ("outbox", "dir"),
    ("crawl", "backfill_from"),
    ("crawl", "overlap_days"),
    ("sources.*", "enabled"),
    ("sources.*", "base_url"),
    ("sources.*", "api_key_env"),
    ("feeds", "name"),
    ("feeds", "url"),
    *(("pages", key) for key in ("name", "url", "item", "title", "link", "date_pattern")),
    *(("email", key) for key in ("smtp_host", "smtp_port", "security", "username", "password_env", "sender", "recipients")),
]

HEADER_RE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$")
KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def shipped_layout():
    """Split the shipped file into table instances.

    Each instance records its name, its comments (the comment block right above the header plus
    every comment inside the table) and, per key, whether a comment line sits directly above it.
    The first instance of a group ([sources.X], [[feeds]], [[pages]]) carries the group's intro.
    """
    tables = [{"name": None, "comments": [], "keys": {}}]
    pending: list[str] = []  # comment lines since the last key line
    previous_is_comment = False
    for line in shipped_config_text().splitlines():
        stripped = line.strip()
        header = HEADER_RE.match(line)
        if stripped.startswith("#"):
            pending.append(stripped)
            previous_is_comment = True
            continue
        if header:
            tables.append({"name": header.group(1), "comments": list(pending), "keys": {}})
            pending = []
        elif KEY_RE.match(line):
            tables[-1]["comments"].extend(pending)
            pending = []
            tables[-1]["keys"][KEY_RE.match(line).group(1)] = previous_is_comment
        previous_is_comment = False
    return tables


def group_of(name: str | None) -> str | None:
    """Tables of one kind share the comment of the first: [sources.*], [topic.tags.*], [topic.noise.*]…"""
    if name and name.startswith("sources."):
        return "sources.*"
    if name and name.startswith("topic.") and name.count(".") == 2:
        return name.rsplit(".", 1)[0] + ".*"
    return name


def test_shipped_default_comments_every_table_and_interface_key():
    tables = shipped_layout()
    intro: dict[str | None, list[str]] = {}
    for table in tables:
        intro.setdefault(group_of(table["name"]), table["comments"])

    uncommented_tables = [t["name"] for t in tables[1:] if not t["comments"] and not intro[group_of(t["name"])]]
    assert uncommented_tables == []

    missing = []
    for group, key in INTERFACE_KEYS:
        instances = [t for t in tables if group_of(t["name"]) == group and key in t["keys"]]
        assert instances, f"{group}.{key} is not in the shipped file"
        for table in instances:
            mentioned = any(re.search(rf"\b{re.escape(key)}\b", c) for c in table["comments"] + intro[group])
            if not (table["keys"][key] or mentioned):
                missing.append(f"{table['name']}.{key}" if table["name"] else key)
    assert missing == [], f"keys without an explaining comment in config/litmon.toml: {missing}"


# --------------------------------------------------------------------------- validation errors


def invalid_case(extra: str, key: str, expected: str, *, id: str):
    """A row of INVALID: the minimal file plus ``extra`` fails at ``key`` with a message containing ``expected``."""
    return pytest.param(minimal(extra=extra), key, expected, id=id)


INVALID = [
    pytest.param(minimal("not-an-address"), "contact_email", "expected an e-mail address", id="contact-invalid"),
    pytest.param(
        'extends = "none"\n[topic]\nmatch_terms = ["ketamin"]\n',
        "contact_email",
        "expected an e-mail address",
        id="contact-missing",
    ),
    pytest.param(
        minimal().replace('"tester@example.org"', "42"), "contact_email", "expected a string, got 42", id="contact-not-string"
    ),
    invalid_case(
        "[sources.pubmedx]\nenabled = true\n",
        "sources.pubmedx",
        "unknown source `pubmedx` in [sources]; did you mean `pubmed`?",
        id="unknown-source",
    ),
    invalid_case(
        '[sources.pubmed]\nenabled = true\nbase_url = "ftp://eutils.example.org/"\n',
        "sources.pubmed.base_url",
        "expected an http:// or https:// URL, got 'ftp://eutils.example.org/'",
        id="base-url-ftp",
    ),
    invalid_case(
        "[sources.europepmc]\nenabled = true\n",
        "sources.europepmc.base_url",
        "expected an http:// or https:// URL",
        id="base-url-missing",
    ),
    invalid_case(
        '[sources.crossref]\nbase_url = "api.crossref.org"\n',
        "sources.crossref.base_url",
        "http:// or https://",
        id="base-url-disabled-source",
    ),
    invalid_case(
        '[sources.pubmed]\nenabled = "yes"\n',
        "sources.pubmed.enabled",
        "expected true or false, got 'yes'",
        id="enabled-not-bool",
    ),
    invalid_case(
        "[sources.pubmed]\nmin_interval = -1\n",
        "sources.pubmed.min_interval",
        "expected a number >= 0",
        id="min-interval-negative",
    ),
    invalid_case("[sources.pubmed]\nquery = 5\n", "sources.pubmed.query", "expected a string, got 5", id="query-not-string"),
    invalid_case(
        '[email]\nsecurity = "tls"\n', "email.security", "expected one of none, starttls, ssl, got 'tls'", id="security"
    ),
    invalid_case('[crawl]\noverlap_days = "3"\n', "crawl.overlap_days", "expected an integer, got '3'", id="overlap-string"),
    invalid_case("[crawl]\noverlap_days = true\n", "crawl.overlap_days", "expected an integer, got True", id="overlap-bool"),
    invalid_case("[crawl]\noverlap_days = 2.5\n", "crawl.overlap_days", "expected an integer, got 2.5", id="overlap-float"),
    invalid_case(
        "[crawl]\noverlap_days = -1\n",
        "crawl.overlap_days",
        "expected an integer between 0 and 365, got -1",
        id="overlap-negative",
    ),
    invalid_case(
        '[crawl]\nbackfill_from = "last year"\n',
        "crawl.backfill_from",
        "expected a date such as 2000-01-01, got 'last year'",
        id="backfill-text",
    ),
    invalid_case(
        '[crawl]\nbackfill_from = "2024-02-30"\n',
        "crawl.backfill_from",
        "expected a date such as 2000-01-01",
        id="backfill-impossible-date",
    ),
    invalid_case(
        "[crawl]\nbackfill_from = 2024\n",
        "crawl.backfill_from",
        "expected a date such as 2000-01-01, got 2024",
        id="backfill-int",
    ),
    invalid_case("[crawl]\nbackfill_from = 07:30:00\n", "crawl.backfill_from", "expected a date", id="backfill-time"),
    invalid_case('[[feeds]]\nname = "jama"\n', "feeds[0].url", "missing or empty; expected a string", id="feed-without-url"),
    invalid_case(
        '[[feeds]]\nname = "jama"\nurl = "jamanetwork.com/rss"\n', "feeds[0].url", "http:// or https://", id="feed-url-no-scheme"
    ),
    invalid_case(
        '[[feeds]]\nname = "jama psychiatry"\nurl = "https://a.example/rss"\n',
        "feeds[0].name",
        "expected letters, digits",
        id="feed-name-space",
    ),
    invalid_case(
        '[[feeds]]\nname = "jama"\nurl = "https://a.example/rss"\n[[feeds]]\nname = "jama"\nurl = "https://b.example/rss"\n',
        "feeds[1].name",
        "duplicate name 'jama'",
        id="feed-duplicate-name",
    ),
    invalid_case(
        '[[feeds]]\nname = "jama"\nurl = "https://a.example/rss"\nenabled = "no"\n',
        "feeds[0].enabled",
        "expected true or false",
        id="feed-enabled-not-bool",
    ),
    pytest.param(
        'contact_email = "tester@example.org"\nextends = "none"\nfeeds = ["https://a.example/rss"]\n[topic]\nmatch_terms = ["k"]\n',
        "feeds",
        "expected [[feeds]] tables",
        id="feeds-not-tables",
    ),
    invalid_case(
        '[[pages]]\nname = "fda"\nurl = "https://fda.example/list"\nitem = "tr"\ntitle = "a"\nlink = "a"\nselector = "td"\n',
        "pages[0].selector",
        "unknown key `selector` in [[pages]] #1; expected one of date, date_pattern, enabled",
        id="page-unknown-key",
    ),
    invalid_case(
        '[[pages]]\nname = "fda"\nurl = "https://fda.example/list"\ntitle = "a"\nlink = "a"\n',
        "pages[0].item",
        "missing or empty",
        id="page-without-item",
    ),
    invalid_case(
        '[email]\nrecipients = ["ops@example.org", "ops-at-example.org"]\n',
        "email.recipients[1]",
        "expected an e-mail address, got 'ops-at-example.org'",
        id="recipient-not-address",
    ),
    invalid_case(
        '[email]\nrecipients = "ops@example.org"\n', "email.recipients", "expected a list of strings", id="recipients-not-list"
    ),
    invalid_case(
        '[email]\nsmtp_host = "smtp.example.org"\n',
        "email.recipients",
        "expected at least one address (or a [[recipients]] table) when email.smtp_host is set",
        id="smtp-without-recipients",
    ),
    invalid_case(
        "[email]\nsmtp_port = 70000\n",
        "email.smtp_port",
        "expected an integer between 1 and 65535, got 70000",
        id="smtp-port-range",
    ),
    invalid_case(
        '[digest]\nwhen_empty = "never"\n', "digest.when_empty", "expected one of send, skip, got 'never'", id="when-empty"
    ),
    invalid_case("[database]\npath = 3\n", "database.path", "expected a string, got 3", id="database-path-not-string"),
    pytest.param(
        'contact_email = "tester@example.org"\nextends = "none"\ndatabase = "x.db"\n[topic]\nmatch_terms = ["k"]\n',
        "database",
        "expected a table",
        id="database-not-table",
    ),
    pytest.param(
        'contact_email = "tester@example.org"\nextends = "none"\n[topic]\nmatch_terms = []\n',
        "topic.match_terms",
        "expected a non-empty list",
        id="no-match-terms",
    ),
    invalid_case(
        "[http]\nmax_retries = 50\n", "http.max_retries", "expected an integer between 0 and 20", id="max-retries-range"
    ),
]


@pytest.mark.parametrize("text, key, expected", INVALID)
def test_invalid_config_names_file_key_and_expectation(tmp_path, text, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_config(str(path))

    assert info.value.path == str(path)
    assert info.value.key == key
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ")
    assert expected in message


def test_minimum_only_integer_range_reads_naturally():
    """A key with a lower bound but no upper bound must not say 'between 1 and None'."""
    with pytest.raises(ConfigError) as info:
        parse_config(minimal(extra="[sources.europepmc]\npage_size = 0\n"), "cfg.toml")

    assert str(info.value) == "cfg.toml: sources.europepmc.page_size: expected an integer >= 1, got 0"


def test_bad_toml_names_the_file_and_the_position(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('contact_email = "tester@example.org"\n[crawl\noverlap_days = 3\n', encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_config(str(path))

    assert info.value.key is None
    assert str(info.value).startswith(f"{path}: not valid TOML: ")
    assert "line 2" in str(info.value)


def test_valid_minimal_config_gets_documented_defaults():
    config = parse_config(minimal(), "cfg.toml")

    assert config.database_path == Path("litmon.db")
    assert config.outbox_dir == Path("outbox")
    assert config.backfill_from == dt.date(2000, 1, 1)
    assert config.overlap_days == 3
    assert all(config.source(name)["enabled"] is False for name in API_SOURCES)
    assert config.email.sender == "litmon <tester@example.org>"
    assert config.email.recipients == []


def test_valid_values_are_converted():
    config = parse_config(
        minimal(
            extra="""
[crawl]
backfill_from = "2024-03-01"
overlap_days = 0
[sources.pubmed]
enabled = true
base_url = "http://127.0.0.1:8080/eutils/"
query = "ketamine"
min_interval = 1
[http]
backoff_seconds = 1
[email]
smtp_host = "smtp.example.org"
security = "ssl"
recipients = ["a@example.org", "b@example.org"]
"""
        ),
        "cfg.toml",
    )

    assert config.backfill_from == dt.date(2024, 3, 1)
    assert config.overlap_days == 0
    assert config.source("pubmed")["base_url"] == "http://127.0.0.1:8080/eutils/"
    assert config.http["backoff_seconds"] == 1.0 and isinstance(config.http["backoff_seconds"], float)
    assert config.email.security == "ssl"
    assert config.email.recipients == ["a@example.org", "b@example.org"]


# --------------------------------------------------------------------------- the command line


# Checked as a file of this checkout: an editable install elsewhere could otherwise supply crawler.cli.
@pytest.mark.skipif(
    not (ROOT / "crawler" / "cli.py").is_file(),
    reason="crawler/cli.py does not exist in this checkout yet (crawler/__main__.py imports it)",
)
def test_cli_exits_2_naming_file_and_key_on_invalid_config(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(minimal(extra="[crawl]\noverlap_days = true\n"), encoding="utf-8")
    # Run the code of this checkout, not whatever `litmon` is installed in the environment.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("LITMON_CONFIG", None)

    result = subprocess.run(
        [sys.executable, "-m", "crawler", "--config", str(bad), "status"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stderr
    assert str(bad) in result.stderr
    assert "crawl.overlap_days" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- strict, layered (issue #10)

MISSPELLINGS = [
    pytest.param(
        "[emial]\nsmtp_host = 'smtp.example.org'\n", "emial", "unknown table `[emial]`; did you mean `[email]`?", id="emial"
    ),
    pytest.param(
        "[email]\nsmtp_hots = 'smtp.example.org'\n",
        "email.smtp_hots",
        "unknown key `smtp_hots` in [email]; did you mean `smtp_host`?",
        id="smtp_hots",
    ),
    pytest.param(
        "[crawl]\noverlap_dayz = 5\n",
        "crawl.overlap_dayz",
        "unknown key `overlap_dayz` in [crawl]; did you mean `overlap_days`?",
        id="overlap_dayz",
    ),
    pytest.param(
        "[digest]\nperiod_day = 14\n",
        "digest.period_day",
        "unknown key `period_day` in [digest]; did you mean `period_days`?",
        id="period_day",
    ),
    pytest.param(
        "[schedul]\ncrawl = '0 4 * * *'\n", "schedul", "unknown table `[schedul]`; did you mean `[schedule]`?", id="schedul"
    ),
    pytest.param(
        "[sources.pubmed]\nbatchsize = 100\n",
        "sources.pubmed.batchsize",
        "unknown key `batchsize` in [sources.pubmed]; did you mean `batch_size`?",
        id="batchsize",
    ),
    pytest.param(
        "[[feeds]]\nname = 'x'\nurl = 'https://x.example/rss'\nfliter = false\n",
        "feeds[0].fliter",
        "unknown key `fliter` in [[feeds]] #1; did you mean `filter`?",
        id="feed-fliter",
    ),
    pytest.param(
        "[[recipients]]\naddress = 'a@b.example'\noperater = true\n",
        "recipients[0].operater",
        "unknown key `operater` in [[recipients]] #1; did you mean `operator`?",
        id="recipient-operater",
    ),
    pytest.param(
        "[topic]\nmatch_term = ['x']\n",
        "topic.match_term",
        "unknown key `match_term` in [topic]; did you mean `match_terms`?",
        id="topic-match_term",
    ),
    pytest.param(
        "contact_emial = 'a@b.example'\n",
        "contact_emial",
        "unknown key `contact_emial` at the top level; did you mean `contact_email`?",
        id="root-key",
    ),
    pytest.param(
        "[sources.pubmd]\nenabled = true\n",
        "sources.pubmd",
        "unknown source `pubmd` in [sources]; did you mean `pubmed`? (expected one of pubmed, europepmc, clinicaltrials, "
        "biorxiv, crossref, isrctn, ctis, openalex; feeds go in [[feeds]], pages in [[pages]])",
        id="pubmd",
    ),
]


@pytest.mark.parametrize("extra, key, message", MISSPELLINGS)
def test_a_misspelt_key_or_table_is_an_error_with_a_suggestion(tmp_path, clean_env, extra, key, message):
    """Layered over the shipped defaults, as a user's file is; the CLI exits 2 naming file, key and suggestion."""
    path = tmp_path / "litmon.toml"
    path.write_text('contact_email = "me@uni.example"\n' + extra, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.key == key and str(info.value) == f"{path}: {key}: {message}"

    result = run_checkout("--config", str(path), "config", "check", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{path}: {key}: {message}" in result.stderr


def run_checkout(*args, cwd):
    from tests.conftest import skip_subprocess_when_travelling

    skip_subprocess_when_travelling()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("LITMON_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "crawler", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


FIVE_LINES = """\
contact_email = "me@uni.example"
[email]
smtp_host = "127.0.0.1"
recipients = ["team@uni.example"]
security = "none"
"""


def test_the_topic_is_a_typed_frozen_value_with_the_declared_defaults():
    """[topic] reads into a Topic: terms lower-cased into tuples, each rule table's keys not given at their declared
    defaults (noise: min_strength 2, penalty 1; tags: category "topic", no label), the tables in the file's order."""
    extra = (
        '[topic.concepts.drug]\nterms = ["ketamin*"]\n[topic.concepts.condition]\nmesh = ["Depression"]\n'
        '[topic.noise.pain]\nterms = ["pain"]\n[topic.tags.oral]\nterms = ["oral"]\nrequire = ["tablet*"]\n'
    )
    topic = parse_config(minimal(extra=extra), "t").topic

    assert isinstance(topic, Topic) and topic.name == "Literature monitor"
    assert topic.match_terms == ("ketamin",) and topic.exclude_terms == ()
    assert topic.relevance == TopicRelevance(relevant_score=2, uncertain_score=1, focus_concept="", focus_bonus=1)
    assert list(topic.concepts) == ["drug", "condition"]
    assert topic.concepts["drug"] == TopicConcept(terms=("ketamin*",), min_strength=1)
    assert topic.concepts["condition"] == TopicConcept(mesh=("Depression",))
    assert topic.noise == {"pain": TopicNoise(terms=("pain",), min_strength=2, penalty=1)}
    assert topic.tags == {"oral": TopicTag(terms=("oral",), require=("tablet*",), min_strength=1, category="topic", label="")}
    with pytest.raises(dataclasses.FrozenInstanceError):
        topic.name = "Another"  # type: ignore[misc]
    shipped = parse_config(shipped_config_text(), "shipped").topic
    assert shipped.relevance.focus_concept == "drug" and shipped.noise["anaesthesia"].penalty == 2
    assert shipped.tags and all(isinstance(rule, TopicTag) and rule.label for rule in shipped.tags.values())


def test_the_term_lists_are_checked_unless_the_shipped_file_gives_them(monkeypatch):
    """Every term of the shipped vocabulary is valid (checked here: a copy of the file under another name is checked
    in full); at load, only the term lists a file of one's own gives are checked, with the same messages."""
    checked = []
    check = config_module._check_terms
    monkeypatch.setattr(
        config_module,
        "_check_terms",
        lambda path, reader, key, terms: checked.append(reader.key(key)) or check(path, reader, key, terms),
    )
    shipped = parse_config(shipped_config_text(), "copy of the shipped file.toml").topic
    rules = {**shipped.concepts, **shipped.noise, **shipped.tags}
    given = [
        (name, key)
        for name, rule in rules.items()
        for key in ("terms", "mesh", "exclude", "require", "unless")
        if getattr(rule, key)
    ]
    assert len(checked) == len(given) > 50 and any(t.startswith("re:") for rule in rules.values() for t in rule.terms)
    checked.clear()
    parse_config(shipped_config_text(), SHIPPED_LABEL)
    assert checked == []
    own = 'contact_email = "tester@example.org"\n[topic.tags.oral]\nterms = ["oral*"]\n'
    assert parse_config(own, "litmon.toml").topic.tags["oral"].require == shipped.tags["oral"].require
    assert checked == ["topic.tags.oral.terms"]
    with pytest.raises(ConfigError, match=r"litmon.toml: topic.tags.oral.terms\[1\]: invalid term 're:\(oral'"):
        parse_config(own.replace('"oral*"]', '"oral*", "re:(oral"]'), "litmon.toml")


def test_a_five_line_file_is_layered_over_the_shipped_defaults(tmp_path, clean_env):
    path = tmp_path / "litmon.toml"
    path.write_text(FIVE_LINES, encoding="utf-8")
    shipped = parse_config(shipped_config_text(), "<shipped default config/litmon.toml>")

    config = load_config(str(path))

    assert config.contact_email == "me@uni.example" and not config.placeholder_contact
    assert config.email.smtp_host == "127.0.0.1" and config.email.recipients == ["team@uni.example"]
    assert config.email.sender == "litmon <me@uni.example>"  # not the shipped placeholder's
    assert config.email.smtp_port == 587 and config.email.password_env == "LITMON_SMTP_PASSWORD"  # merged key by key
    assert config.sources == shipped.sources and config.feeds == shipped.feeds and config.pages == shipped.pages
    assert config.topic == shipped.topic and config.digest.period_days == 7
    assert config.origins["email.smtp_host"] == str(path)
    assert config.origins["email.smtp_port"].startswith("<shipped default")
    assert config.layers == ["<shipped default config/litmon.toml>", str(path)]


def test_an_array_of_tables_replaces_the_shipped_list_and_tables_merge_key_by_key(tmp_path, clean_env):
    path = tmp_path / "litmon.toml"
    path.write_text(
        'contact_email = "me@uni.example"\n[sources.pubmed]\nbatch_size = 50\n'
        '[[feeds]]\nname = "mine"\nurl = "https://journal.example/rss"\n',
        encoding="utf-8",
    )

    config = load_config(str(path))

    assert [f["name"] for f in config.feeds] == ["mine"]
    assert config.source("pubmed")["batch_size"] == 50 and config.source("pubmed")["query"].startswith("(ketamine[tiab]")
    assert len(config.pages) == 1  # not given: the shipped list stays


def test_extends_none_stops_the_layering(tmp_path, clean_env):
    path = tmp_path / "litmon.toml"
    path.write_text(minimal(), encoding="utf-8")

    config = load_config(str(path))

    assert config.feeds == [] and not any(s["enabled"] for s in config.sources.values())
    assert config.layers == [str(path)]
    with pytest.raises(ConfigError, match="extends: expected one of shipped, none, got 'mine'"):
        parse_config(minimal().replace('extends = "none"', 'extends = "mine"'), "cfg.toml")


def test_a_bad_source_value_fails_at_load_not_mid_crawl(tmp_path):
    for extra, key in [
        ("[sources.crossref]\nslice_days = 0\n", "sources.crossref.slice_days"),
        ("[sources.isrctn]\nmax_results = -5\n", "sources.isrctn.max_results"),
        ("[sources.openalex]\nwindow_filter = 'yesterday'\n", "sources.openalex.window_filter"),
        ("[sources.europepmc]\nsynonym = 'yes'\n", "sources.europepmc.synonym"),
        ("[sources.pubmed]\nenabled = true\nquery = ''\n", "sources.pubmed.query"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config('contact_email = "me@uni.example"\n' + extra, "cfg.toml")
        assert info.value.key == key, extra


def test_the_configuration_reference_is_generated_from_the_declarations():
    """docs/config.md: regenerate with `python -m crawler.configshow > docs/config.md`."""
    from crawler.configshow import render_config_reference

    text = render_config_reference()
    assert "| `smtp_host` | string |" in text and "| `batch_size` | integer (≥ 1, ≤ 10000) | `500` |" in text
    assert "### `[sources.crossref]`" in text and "### `[[pages]]`" in text and "| `operator` | boolean | `false` |" in text
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == text


#: Loads the shipped configuration (every source's table, feeds and pages) in a fresh process and prints the source
#: modules imported by then.
LOAD_IN_A_NEW_PROCESS = """
import json, sys
from crawler.config import SHIPPED_LABEL, parse_config, shipped_config_text
from crawler.sources import MODULES
parse_config(shipped_config_text(), SHIPPED_LABEL)
sys.stdout.write(json.dumps(sorted(name for name in MODULES.values() if name in sys.modules)))
"""


def test_loading_the_configuration_imports_no_source_module():
    """Every table is checked against its source's declaration (``crawler.sources.settings``), which imports none of
    the sources' fetching and parsing code: a `litmon crawl --source pubmed` imports the pubmed module alone."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_NEW_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_each_source_module_declares_the_settings_its_table_is_checked_against():
    import importlib

    from crawler.config import list_declarations, source_declarations
    from crawler.sources import MODULES, SETTINGS

    assert set(SETTINGS) == set(MODULES)
    declared = {**source_declarations(), "feed": list_declarations()["feeds"], "page": list_declarations()["pages"]}
    for kind, module in MODULES.items():
        assert importlib.import_module(module).Settings is declared[kind], kind


def test_the_kept_parse_of_the_shipped_file_is_current():
    """crawler/default_config.json keeps what tomllib reads of the shipped file, so a start does not parse it again."""
    from crawler.config import KEPT_PARSE, kept_parse

    kept = (ROOT / "crawler" / KEPT_PARSE).read_text(encoding="utf-8")
    assert kept == kept_parse(shipped_config_text()), (
        "crawler/default_config.json is out of date: python -m crawler.config > crawler/default_config.json"
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert KEPT_PARSE in project["tool"]["setuptools"]["package-data"]["crawler"]  # (installed beside the TOML file)


def test_the_shipped_file_is_read_from_its_kept_parse_not_parsed_again(tmp_path, monkeypatch):
    from crawler.config import shipped_config_data

    shipped = shipped_config_text()
    parsed = []
    parse = tomllib.loads
    monkeypatch.setattr(config_module.tomllib, "loads", lambda text: parsed.append(text) or parse(text))
    data = shipped_config_data()
    config = parse_config(FIVE_LINES, str(tmp_path / "litmon.toml"))
    assert shipped not in parsed and parsed == [FIVE_LINES]
    monkeypatch.undo()
    assert data == tomllib.loads(shipped) and data["crawl"]["backfill_from"] == dt.date(2000, 1, 1)
    assert config == parse_config(FIVE_LINES, str(tmp_path / "litmon.toml"))


def test_a_kept_parse_made_from_another_text_or_unreadable_is_not_read(monkeypatch):
    from crawler.config import shipped_config_data

    changed = shipped_config_text().replace('\ncontact_email = "', '\ncontact_email = "changed-', 1)
    monkeypatch.setattr(config_module, "shipped_config_text", lambda: changed)
    assert shipped_config_data()["contact_email"].startswith("changed-")
    monkeypatch.undo()
    monkeypatch.setattr(config_module, "KEPT_PARSE", "no_such_file.json")
    assert shipped_config_data() == tomllib.loads(shipped_config_text())
    monkeypatch.setattr(config_module, "KEPT_PARSE", "default_config.toml")  # (not JSON)
    assert shipped_config_data() == tomllib.loads(shipped_config_text())


def test_config_show_is_the_same_whatever_the_process_s_string_hashes(tmp_path, monkeypatch):
    """The keys of each [[feeds]] and [[pages]] entry are shown in their declaration's order (they followed the
    iteration of a set of strings, which changes with PYTHONHASHSEED: from one run to the next)."""
    shown = {}
    for seed in ("1", "2", "3"):
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        plain = run_checkout("config", "show", cwd=tmp_path)  # (the shipped file: nine feeds, a page)
        as_json = run_checkout("config", "show", "--json", cwd=tmp_path)
        assert plain.returncode == 0 and as_json.returncode == 0, plain.stderr + as_json.stderr
        shown[seed] = (plain.stdout, as_json.stdout)
    assert shown["1"] == shown["2"] == shown["3"]
    assert '\nname = "fda-drug-safety-communications"\nurl = ' in shown["1"][0]


def test_config_show_names_where_each_value_came_from_and_masks_secrets(tmp_path, clean_env, monkeypatch):
    path = tmp_path / "litmon.toml"
    path.write_text(
        FIVE_LINES + '[sources.europepmc]\nbase_url = "https://user:hunter2@mirror.example/rest/?api_key=s3cret"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("LITMON_SMTP_PASSWORD", "pw-never-shown")

    shown = run_checkout("--config", str(path), "config", "show", cwd=tmp_path)
    as_json = run_checkout("--config", str(path), "config", "show", "--json", cwd=tmp_path)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f'smtp_host = "127.0.0.1"  # from {path}' in lines
    assert "smtp_port = 587  # from the shipped defaults" in lines
    assert "synonym = false  # default" in lines
    assert 'password_env = "LITMON_SMTP_PASSWORD"  # from the shipped defaults; $LITMON_SMTP_PASSWORD is set' in lines
    assert "hunter2" not in shown.stdout and "s3cret" not in shown.stdout and "pw-never-shown" not in shown.stdout
    assert 'base_url = "https://user:***@mirror.example/rest/?api_key=***"' in shown.stdout
    rows = {(r["table"], r["key"]): r for r in json.loads(as_json.stdout)["settings"]}
    assert rows[("email", "recipients")] == {
        "table": "email",
        "key": "recipients",
        "value": ["team@uni.example"],
        "from": str(path),
    }


def test_config_check_touches_no_network_and_warns_about_the_placeholder_contact(tmp_path, clean_env):
    ok = run_checkout("config", "check", cwd=tmp_path)  # the shipped default: placeholder contact
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("config ok: <shipped default config/litmon.toml>")
    assert "8 API source(s) enabled" in ok.stdout and "digest: written to outbox/" in ok.stdout
    assert "warning: contact_email is still the shipped placeholder litmon-operator@example.org" in ok.stderr


def test_a_minimal_file_makes_and_mails_a_digest(tmp_path, clean_env, smtp_server):  # noqa: F811
    """contact_email, [email] and recipients (plus the test server's port and no TLS): a complete configuration."""
    handler, port = smtp_server()
    path = tmp_path / "litmon.toml"
    path.write_text(
        FIVE_LINES.replace('smtp_host = "127.0.0.1"', f'smtp_host = "127.0.0.1"\nsmtp_port = {port}'), encoding="utf-8"
    )

    result = run_checkout("--config", str(path), "digest", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    [envelope] = handler.messages
    assert envelope.mail_from == "me@uni.example" and envelope.rcpt_tos == ["team@uni.example"]
    assert b"From: litmon <me@uni.example>" in envelope.content
    assert "placeholder" not in result.stderr
    checked = run_checkout("--config", str(path), "config", "check", cwd=tmp_path)
    assert checked.returncode == 0 and "8 API source(s) enabled" in checked.stdout and "9 feed(s), 1 page(s)" in checked.stdout
