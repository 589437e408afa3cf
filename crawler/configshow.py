"""`litmon config show` and `litmon config check`: the effective configuration, where each value came
from, and a validation that touches no network. Also the generated reference (docs/config.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from crawler.config import (
    API_SOURCES,
    SECTIONS,
    SHIPPED_LABEL,
    Config,
    RecipientSettings,
    RootSettings,
    list_declarations,
    source_declarations,
)
from crawler.errors import redact_url
from crawler.settings import declared, default_of, render_reference

DEFAULT_ORIGIN = "default"


def _masked(key: str, value: Any, secret: bool = False) -> Any:
    """Values as shown: secrets hidden; credentials inside URLs replaced by ***; *_env names say whether they are set."""
    if secret and value:
        return "***"
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    return value


def effective_config(config: Config) -> list[dict[str, Any]]:
    """Every key of the effective configuration: table, key, value, origin (a file, or "default")."""
    return (
        _root_rows(config)
        + _section_rows(config)
        + _topic_rows(config)
        + _source_rows(config)
        + _list_rows(config, "feeds", "[[feeds]]", [{k: _masked(k, v) for k, v in e.items()} for e in config.feeds])
        + _list_rows(config, "pages", "[[pages]]", [{k: _masked(k, v) for k, v in e.items()} for e in config.pages])
        + _list_rows(config, "recipients", "[[recipients]]", [r for r in config.digest.recipients if r not in _plain(config)])
    )


def _row(config: Config, table: str, key: str, value: Any, dotted: str, secret: bool = False) -> dict[str, Any]:
    """One key's row; an ``*_env`` key also says whether that variable is set."""
    row = {"table": table, "key": key, "value": _masked(key, value, secret), "from": config.origins.get(dotted, DEFAULT_ORIGIN)}
    if key.endswith("_env") and isinstance(value, str) and value:
        row["env_set"] = bool(os.environ.get(value))
    return row


def _root_rows(config: Config) -> list[dict[str, Any]]:
    return [
        _row(config, "", f.name, config.contact_email if f.name == "contact_email" else config.raw.get(f.name, "shipped"), f.name)
        for f in declared(RootSettings)
    ]


def _section_rows(config: Config) -> list[dict[str, Any]]:
    """The declared sections; [database], [outbox] and [crawl] show the values as Config holds them."""
    rows = []
    for name, cls in SECTIONS.items():
        section = getattr(config, name, None)
        for f in declared(cls):
            value = getattr(section, f.name) if section is not None else None
            if name == "database":
                value = str(config.database_path)
            elif name == "outbox":
                value = str(config.outbox_dir)
            elif name == "crawl":
                value = getattr(config, f.name)
            rows.append(_row(config, name, f.name, value, f"{name}.{f.name}", bool(f.metadata.get("secret"))))
    return rows


def _topic_rows(config: Config) -> list[dict[str, Any]]:
    """[topic]'s plain keys, then one row per rule group listing its rule names."""
    topic = config.topic
    rows = [
        _row(config, "topic", key, value, f"topic.{key}")
        for key, value in (("name", topic.name), ("match_terms", topic.match_terms), ("exclude_terms", topic.exclude_terms))
    ]
    for group, rules in (("concepts", topic.concepts), ("noise", topic.noise), ("tags", topic.tags)):
        origins = {config.origins.get(k) for k in config.origins if k.startswith(f"topic.{group}.")}
        rows.append(
            {
                "table": "topic",
                "key": group,
                "value": sorted(rules),
                "from": ", ".join(sorted(o for o in origins if o)) or DEFAULT_ORIGIN,
            }
        )
    return rows


def _source_rows(config: Config) -> list[dict[str, Any]]:
    rows = []
    for name, cls in source_declarations().items():
        given = config.sources.get(name, {})
        for f in declared(cls):
            value = given[f.name] if f.name in given else default_of(f)
            rows.append(
                _row(config, f"sources.{name}", f.name, value, f"sources.{name}.{f.name}", bool(f.metadata.get("secret")))
            )
    return rows


def _list_rows(config: Config, table: str, key: str, value: list[Any]) -> list[dict[str, Any]]:
    """An array of tables, shown whole in one row."""
    return [{"table": table, "key": key, "value": value, "from": config.origins.get(table, DEFAULT_ORIGIN)}]


def _plain(config: Config) -> list[dict[str, Any]]:
    return [{"address": a, "sections": [], "tags": [], "min_score": None, "operator": False} for a in config.email.recipients]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None:
        return "(unset)"
    return json.dumps(value, ensure_ascii=False, default=str)


def render_show(config: Config, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"# effective configuration: {' < '.join(reversed(config.layers))}",
        "# each value: `# from <file>` or `# default` (declared)",
    ]
    table = None
    for row in rows:
        if row["key"].startswith("[["):
            lines.append("")
            items = row["value"]
            origin = "the shipped defaults" if row["from"] == SHIPPED_LABEL else row["from"]
            lines.append(f"# {row['key']}: {len(items)} table(s), from {origin}")
            for item in items:
                lines.append(f"{row['key']}")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
            table = None
            continue
        if row["table"] != table:
            table = row["table"]
            lines.append("")
            if table:
                lines.append(f"[{table}]")
        value = _toml_value(row["value"])
        origin = "the shipped defaults" if row["from"] == SHIPPED_LABEL else row["from"]
        note = f"from {origin}" if row["from"] != DEFAULT_ORIGIN else "default"
        if row["table"] == "email" and row["key"] == "sender" and not config.raw.get("email", {}).get("sender"):
            note = "from contact_email (sender is empty)"
        if "env_set" in row:
            note += f"; ${row['value']} is {'set' if row['env_set'] else 'not set'}"
        lines.append(f"{row['key']} = {value}  # {note}")
    return "\n".join(lines)


def check_summary(config: Config) -> list[str]:
    """What `litmon config check` says about a valid configuration (no network is touched)."""
    enabled = [n for n in API_SOURCES if config.sources.get(n, {}).get("enabled")]
    feeds = [f for f in config.feeds if f.get("enabled", True)]
    pages = [p for p in config.pages if p.get("enabled", True)]
    lines = [
        f"config ok: {' layered over '.join(reversed(config.layers))}",
        f"  sources: {len(enabled)} API source(s) enabled ({', '.join(enabled) or 'none'}), {len(feeds)} feed(s), {len(pages)} page(s)",
        f"  database: {config.database_path}",
    ]
    if config.email.smtp_host:
        operators = sum(1 for r in config.digest.recipients if r.get("operator"))
        lines.append(
            f"  digest: mailed via {config.email.smtp_host}:{config.email.smtp_port} ({config.email.security}) to "
            f"{len(config.digest.recipients)} recipient(s), {operators} operator(s)"
        )
        if config.email.username and not os.environ.get(config.email.password_env):
            lines.append(f"  warning: email.username is set but ${config.email.password_env} (email.password_env) is not")
    else:
        lines.append(f"  digest: written to {config.outbox_dir}/ (no [email] smtp_host)")
    if config.placeholder_contact:
        lines.append(f"  warning: {placeholder_warning(config)}")
    return lines


def placeholder_warning(config: Config) -> str:
    where = config.layers[-1] if config.layers else config.path
    if where.startswith("<shipped"):  # no file of one's own yet
        where = "a ./litmon.toml of your own (or the file --config / $LITMON_CONFIG names)"
    return (
        f"contact_email is still the shipped placeholder {config.contact_email}: set contact_email in {where} to an "
        "address you read (NCBI and Crossref see it and write to it before blocking a client)"
    )


# --------------------------------------------------------------------------- the reference (docs/config.md)

REFERENCE_HEADER = """# Configuration reference

Generated from the settings declarations in the code (`crawler/config.py`, and `Settings` in each
`crawler/sources/settings/*.py` module) by `python -m crawler.configshow > docs/config.md`; a test keeps this file
in sync. The shipped `config/litmon.toml` sets the values litmon runs with by default; your own file is
layered over it (README, "Configuration"). Types are checked when the configuration is loaded: a wrong
type, an out-of-range value or an unknown key stops litmon with exit code 2 and a suggestion.

Not listed here: the `[topic]` vocabulary (`match_terms`, `exclude_terms`, `[topic.relevance]`,
`[topic.concepts.*]`, `[topic.noise.*]`, `[topic.tags.*]`), described in the README and the shipped file.
"""


def render_config_reference() -> str:
    parts: list[tuple[str, type, str]] = [("top level", RootSettings, "")]
    parts += [(f"[{name}]", cls, "") for name, cls in SECTIONS.items()]
    parts.append(("[[recipients]]", RecipientSettings, "Recipients with filters, in addition to [email] recipients."))
    for name, cls in source_declarations().items():
        parts.append((f"[sources.{name}]", cls, ""))
    for name, cls in list_declarations().items():
        parts.append((f"[[{name}]]", cls, ""))
    return REFERENCE_HEADER + "\n" + render_reference(parts)


if __name__ == "__main__":
    print(render_config_reference(), end="")
