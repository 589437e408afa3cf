"""Logging: human-readable lines by default, JSON lines on request, secrets never written.

``--log-format json`` (or ``LITMON_LOG_FORMAT=json``) writes one JSON object per line with ``ts``,
``level``, ``logger``, ``message`` and, for the per-source summary line, ``event`` = ``source_run``
and the counts. Every line passes :class:`SecretFilter`: ``api_key=…``/``token=…``/``password=…``
values and the values of the secret environment variables (NCBI and OpenAlex keys, the SMTP
password, and whatever ``api_key_env`` / ``password_env`` name) are replaced by ``***``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys

FORMATS = ("text", "json")
MASK = "***"
#: Environment variables that hold secrets whatever the config says.
DEFAULT_SECRET_ENV = ("NCBI_API_KEY", "OPENALEX_API_KEY", "LITMON_SMTP_PASSWORD")
_PARAM_RE = re.compile(
    r"(?i)\b(api[_-]?key|apikey|access[_-]?token|token|password|passwd|secret)(=|%3D|\"?\s*:\s*\"?)([^&\s'\",;<>)]+)"
)
_AUTH_RE = re.compile(r"(?i)\b(authorization:\s*(?:basic|bearer)\s+)\S+")
_secret_values: set[str] = set()


def register_secret_env(*names: str) -> None:
    """Mask the current values of these environment variables in every log line from now on."""
    for name in names:
        value = os.environ.get(name, "").strip() if name else ""
        if len(value) >= 4:
            _secret_values.add(value)


def register_config_secrets(config) -> None:
    names = [settings.get("api_key_env") for settings in config.sources.values()]
    names.append(config.email.password_env)
    register_secret_env(*(n for n in names if isinstance(n, str) and n))


def mask_secrets(text: str) -> str:
    if not text:
        return text
    for value in sorted(_secret_values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    text = _PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _AUTH_RE.sub(lambda m: f"{m.group(1)}{MASK}", text)


class SecretFilter(logging.Filter):
    """Rewrites each record's message (and exception text) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_secrets(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: mask_secrets(v) if isinstance(v, str) else v for k, v in fields.items()}
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def resolve_format(option: str | None) -> str:
    value = (option or os.environ.get("LITMON_LOG_FORMAT") or "text").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"unknown log format {value!r}; expected text or json (--log-format or $LITMON_LOG_FORMAT)")
    return value


def setup_logging(verbose: int = 0, quiet: int = 0, fmt: str = "text", stream=None) -> None:
    level = max(logging.INFO - 10 * verbose + 10 * quiet, logging.DEBUG)
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # APScheduler's own lines ("Running job …") only with -v; ours say what ran
    logging.getLogger("apscheduler").setLevel(logging.INFO if verbose else logging.WARNING)
    register_secret_env(*DEFAULT_SECRET_ENV)
