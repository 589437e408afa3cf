"""Typed settings: how a config section declares its keys, and how a TOML table is checked against it.

Each section of the configuration is a dataclass whose fields are made with :func:`setting` (a
default, a type from the annotation, a help text and optional bounds). Each source declares its own
``[sources.<name>]`` keys this way (``Settings`` in ``crawler/sources/settings/<module>.py``, which its module
re-exports), apart from its fetching and parsing code: loading the configuration imports none of that code.
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
import functools
import re
import types
import typing
from collections.abc import Callable, Iterable
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


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The declaration's annotations, evaluated once per class (not again for each ``[[feeds]]`` table): read only."""
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
    """What a value of this declaration must be, as the error message says it ("an integer between 0 and 20")."""
    if meta.get("choices"):
        return "one of " + ", ".join(meta["choices"])
    if hint is bool:
        return "true or false"
    if hint in (int, float):
        return _expected_number(hint, meta)
    if hint is dt.date:
        return "a date such as 2000-01-01"
    if meta.get("kind") in _EXPECTED_KINDS:
        return _EXPECTED_KINDS[meta["kind"]]
    return {"string": "a string", "list of strings": "a list of strings"}.get(type_name(hint), f"a {type_name(hint)}")


_EXPECTED_KINDS = {"url": "an http:// or https:// URL", "email": "an e-mail address"}


def _expected_number(hint: Any, meta: dict[str, Any]) -> str:
    lo, hi = meta.get("minimum"), meta.get("maximum")
    if hint is int:
        if lo is not None and hi is not None:
            return f"an integer between {lo} and {hi}"
        return f"an integer >= {lo}" if lo is not None else "an integer"
    if meta.get("positive"):
        return "a number of seconds > 0"
    return f"a number >= {lo}" if lo is not None else "a number"


class _Invalid(Exception):
    """A value that does not fit its declaration. ``expected`` names what would (None: the declaration's own
    words, see ``_expected``) and ``got`` is the value as read; ``message`` replaces the whole sentence."""

    def __init__(self, got: Any, expected: str | None = None, *, message: str | None = None):
        super().__init__(message or expected)
        self.got, self.expected, self.message = got, expected, message


def check_value(path: str, key: str, hint: Any, meta: dict[str, Any], value: Any) -> Any:
    """``value`` converted to the declared type, or a ConfigError naming file, key and expectation."""
    hint = _without_none(hint)
    check = _CHECKS.get(hint) or _CHECKS.get(typing.get_origin(hint))
    if check is None:
        return value
    try:
        return check(value, meta)
    except _Invalid as bad:
        message = bad.message or f"expected {bad.expected or _expected(hint, meta)}, got {bad.got!r}"
        raise ConfigError(path, key, message) from None


def _without_none(hint: Any) -> Any:
    """``X | None`` as ``X``; other hints (``str | list[str]`` too) as they are."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _check_bool(value: Any, meta: dict[str, Any]) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(value)
    return value


def _check_int(value: Any, meta: dict[str, Any]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(value, "an integer")
    lo, hi = meta.get("minimum"), meta.get("maximum")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise _Invalid(value)
    return value


def _check_float(value: Any, meta: dict[str, Any]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(value, "a number")
    number = float(value)
    if meta.get("positive") and number <= 0 or meta.get("minimum") is not None and number < meta["minimum"]:
        raise _Invalid(number)
    return number


def _check_date(value: Any, meta: dict[str, Any]) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise _Invalid(value) from None
    if not isinstance(value, dt.date):
        raise _Invalid(value)
    return value


def _check_str(value: Any, meta: dict[str, Any]) -> str:
    if not isinstance(value, str):
        raise _Invalid(value, "a string")
    if meta.get("choices") and value not in meta["choices"]:
        raise _Invalid(value)
    kind = meta.get("kind")
    if kind == "url" and not URL_RE.match(value) or kind == "email" and value and not EMAIL_RE.match(value):
        raise _Invalid(value)
    if kind == "header" and re.search(r"[\x00-\x1f\x7f]", value):
        raise _Invalid(value, "one line without control characters (it goes into mail headers)")
    if kind == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise _Invalid(value, message=f"expected a regular expression: {exc}") from None
    if meta.get("required") and not value.strip():
        raise _Invalid(value, message="missing or empty; expected a string")
    return value


def _check_strings(value: Any, meta: dict[str, Any]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(value, "a list of strings")
    return list(value)


def _check_string_or_strings(value: Any, meta: dict[str, Any]) -> str | list[str]:
    if not (isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise _Invalid(value, "a string or a list of strings")
    return value


#: How a value of each declared type (or generic origin: ``list[str]``, ``str | list[str]``) is checked.
_CHECKS: dict[Any, Callable[[Any, dict[str, Any]], Any]] = {
    bool: _check_bool,
    int: _check_int,
    float: _check_float,
    dt.date: _check_date,
    str: _check_str,
    list: _check_strings,
    typing.Union: _check_string_or_strings,
    types.UnionType: _check_string_or_strings,
}


def read_section(cls: type, table: Any, path: str, prefix: str, where: str, **computed: Any) -> tuple[Any, list[str]]:
    """Check ``table`` against the declaration ``cls``: (instance, the keys the table gave, in the declaration's order:
    what is shown of them does not depend on the table's order, nor on the process's string hashes).

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
    return cls(**values, **computed), [name for name in fields_ if name in table]


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
