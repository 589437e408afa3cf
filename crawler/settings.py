"""Typed settings: how a config section declares its keys, and how a TOML table is checked against it.

Each section of the configuration is a dataclass whose fields are made with :func:`setting` (a
default, a type from the annotation, a help text and optional bounds). Source modules declare their
own ``[sources.<name>]`` keys this way (``Settings`` in the module), next to the code that uses them.
:func:`read_section` checks a table against a declaration when the config is loaded, so a bad value
stops litmon at startup (exit 2) instead of mid-crawl; an unknown key is an error that suggests the
closest declared key. ``docs/config.md`` is generated from the same declarations
(:func:`render_reference`; a test keeps it in sync).

Plain dataclasses rather than a validation library: the checks are few (types, bounds, choices, URLs)
and the messages must read as litmon's own ("file: key: expected …, got …; did you mean …?").
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from crawler.errors import ConfigError

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL_RE = re.compile(r"^https?://[^\s/]+")


def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    kind: str | None = None,
    positive: bool = False,
    secret: bool = False,
    required: bool = False,
    shown: str | None = None,
) -> Any:
    """A declared key. ``kind``: "url", "email", "regex" or "header" (one line: it reaches a mail header);
    ``shown`` documents a default that is computed (e.g. from contact_email)."""
    metadata = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "kind": kind,
        "positive": positive,
        "secret": secret,
        "required": required,
        "shown": shown,
    }
    if isinstance(default, (list, dict, tuple)):
        value = list(default) if isinstance(default, tuple) else default
        return dataclasses.field(default_factory=lambda: copy.deepcopy(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Section:
    """Base of every settings dataclass. Reads as a mapping too (``s["key"]``, ``s.get``, ``**s``), so
    code written against the former dict sections keeps working while new code uses attributes."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def keys(self) -> list[str]:
        return [f.name for f in declared(type(self))]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.keys()}


def declared(cls: type) -> list[dataclasses.Field]:
    """The config keys of a settings dataclass (fields marked computed are not keys)."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def suggestion(name: str, candidates: Iterable[str], form: str = "{}") -> str:
    """``; did you mean `x`?`` for the closest candidate (written as ``form``, e.g. "[{}]"), or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean `{form.format(close[0])}`?" if close else ""


def unknown_key(path: str, key: str, where: str, candidates: Iterable[str], *, prefix: str = "") -> ConfigError:
    """The error for a key no declaration knows: "unknown key `smtp_hots` in [email]; did you mean `smtp_host`?".

    ``where`` names the table as a person writes it: "[email]", "[sources.pubmed]", "[[feeds]] #2"."""
    candidates = sorted(candidates)
    hint = suggestion(key, candidates)
    if not hint:
        hint = f"; expected one of {', '.join(candidates)}" if candidates else "; this table takes no keys"
    place = where if where.startswith("at ") else f"in {where}"
    return ConfigError(path, f"{prefix}{key}", f"unknown key `{key}` {place}{hint}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def type_name(hint: Any) -> str:
    """How the reference documents a type."""
    names = {str: "string", int: "integer", float: "number", bool: "boolean", dt.date: "date"}
    if hint in names:
        return names[hint]
    origin = typing.get_origin(hint)
    if origin is list:
        return "list of strings"
    if origin in (typing.Union, types.UnionType):
        parts = [type_name(a) for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(parts)
    return str(hint)


def _expected(hint: Any, meta: dict[str, Any]) -> str:
    if meta.get("choices"):
        return "one of " + ", ".join(meta["choices"])
    if hint is bool:
        return "true or false"
    if hint is int:
        lo, hi = meta.get("minimum"), meta.get("maximum")
        if lo is not None and hi is not None:
            return f"an integer between {lo} and {hi}"
        if lo is not None:
            return f"an integer >= {lo}"
        return "an integer"
    if hint is float:
        if meta.get("positive"):
            return "a number of seconds > 0"
        lo = meta.get("minimum")
        return f"a number >= {lo}" if lo is not None else "a number"
    if hint is dt.date:
        return "a date such as 2000-01-01"
    if meta.get("kind") == "url":
        return "an http:// or https:// URL"
    if meta.get("kind") == "email":
        return "an e-mail address"
    return {"string": "a string", "list of strings": "a list of strings"}.get(type_name(hint), f"a {type_name(hint)}")


def check_value(path: str, key: str, hint: Any, meta: dict[str, Any], value: Any) -> Any:
    """``value`` converted to the declared type, or a ConfigError naming file, key and expectation."""

    def fail(expected: str | None = None) -> ConfigError:
        return ConfigError(path, key, f"expected {expected or _expected(hint, meta)}, got {value!r}")

    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)] if optional else []
    if optional and len(args) == 1:
        hint = args[0]
    if hint is bool:
        if not isinstance(value, bool):
            raise fail()
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
        lo, hi = meta.get("minimum"), meta.get("maximum")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise fail()
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        value = float(value)
        if meta.get("positive") and value <= 0:
            raise fail()
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise fail()
    elif hint is dt.date:
        if isinstance(value, dt.datetime):
            value = value.date()
        elif isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise fail() from None
        elif not isinstance(value, dt.date):
            raise fail()
    elif hint is str:
        if not isinstance(value, str):
            raise fail("a string")
        if meta.get("choices") and value not in meta["choices"]:
            raise fail()
        if meta.get("kind") == "url" and not URL_RE.match(value):
            raise fail()
        if meta.get("kind") == "email" and value and not EMAIL_RE.match(value):
            raise fail()
        if meta.get("kind") == "header" and re.search(r"[\x00-\x1f\x7f]", value):
            raise fail("one line without control characters (it goes into mail headers)")
        if meta.get("kind") == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(path, key, f"expected a regular expression: {exc}") from None
        if meta.get("required") and not value.strip():
            raise ConfigError(path, key, "missing or empty; expected a string")
    elif typing.get_origin(hint) is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("a list of strings")
        value = list(value)
    elif typing.get_origin(hint) in (typing.Union, types.UnionType):  # str | list[str]
        if not (isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise fail("a string or a list of strings")
    return value


def read_section(cls: type, table: Any, path: str, prefix: str, where: str, **computed: Any) -> tuple[Any, set[str]]:
    """Check ``table`` against the declaration ``cls``: (instance, the keys the table gave).

    ``prefix`` is the dotted key of the table ("email."), ``where`` how a person names it ("[email]",
    "[sources.pubmed]", "[[feeds]] #3"). Unknown keys fail with the closest declared key.
    """
    if not isinstance(table, dict):
        raise ConfigError(path, prefix.rstrip(".") or None, f"expected a table, got {table!r}")
    fields_ = {f.name: f for f in declared(cls)}
    for key in table:
        if key not in fields_:
            raise unknown_key(path, key, where, fields_, prefix=prefix)
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields_.items():
        if name in table:
            values[name] = check_value(path, f"{prefix}{name}", hints[name], dict(f.metadata), table[name])
        elif f.metadata.get("required"):
            raise ConfigError(path, f"{prefix}{name}", "missing or empty; expected a string")
    return cls(**values, **computed), set(table)


def render_reference(sections: list[tuple[str, type, str]]) -> str:
    """Markdown tables, one per section: key, type, default, what it does."""
    out = []
    for title, cls, intro in sections:
        out.append(f"### `{title}`\n")
        if intro:
            out.append(intro + "\n")
        out.append("| key | type | default | meaning |")
        out.append("|---|---|---|---|")
        hints = _hints(cls)
        for f in declared(cls):
            meta = f.metadata
            default = meta.get("shown") or _show_default(default_of(f))
            bounds = []
            if meta.get("choices"):
                bounds.append("one of " + ", ".join(f"`{c}`" for c in meta["choices"]))
            if meta.get("minimum") is not None:
                bounds.append(f"≥ {meta['minimum']}")
            if meta.get("maximum") is not None:
                bounds.append(f"≤ {meta['maximum']}")
            if meta.get("required"):
                bounds.append("required")
            kind = type_name(hints[f.name]) + (f" ({', '.join(bounds)})" if bounds else "")
            text = " ".join(meta["help"].split()).replace("|", "\\|")
            out.append(f"| `{f.name}` | {kind} | {default} | {text} |")
        out.append("")
    return "\n".join(out)


def _show_default(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, list):
        text = ", ".join(f'"{v}"' for v in value)
        return f"`[{text}]`" if len(text) < 60 else f"`[{text[:57]}…]`"
    return f"`{value}`"


@dataclasses.dataclass
class SourceSettings(Section):
    """Keys every ``[sources.<name>]`` table has; each source module extends it with its own."""

    enabled: bool = setting(False, "Crawl this source.")
    base_url: str = setting(
        "", "Root URL of the API; the client appends the documented paths (a mirror or a test server can stand in).", kind="url"
    )
    min_interval: float | None = setting(
        None, "Seconds between two requests to the host (default: the source's polite interval).", minimum=0.0
    )
