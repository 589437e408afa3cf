"""Exceptions that carry what failed, where, and what to check."""

import re

#: Query parameters whose values are credentials (NCBI and OpenAlex send ``api_key`` in the URL).
_SECRET_PARAM_RE = re.compile(r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|secret|password)=)[^&;#]*")
_USERINFO_PASSWORD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:)[^/?#@]*@")


def redact_url(url):
    """The URL with credential values replaced by ``***``: error texts end up in logs, the database and mail."""
    if not url:
        return url
    return _USERINFO_PASSWORD_RE.sub(r"\1***@", redact_text(str(url)))


def redact_text(text):
    """``text`` with the values of credential query parameters (in any URL it quotes) replaced by ``***``."""
    return _SECRET_PARAM_RE.sub(r"\1***", text)


_URL_PART_RE = re.compile(r" \(url: [^)]*\)")


def short_error(text):
    """An error as one short line: without the URL (which stays in the log and the database)."""
    if not text:
        return text
    return _URL_PART_RE.sub("", str(text)).strip()


class LitmonError(Exception):
    """Base class for every error litmon reports to a person."""


class UsageError(LitmonError):
    """The command line names something that does not exist (a source, a digest id): exit code 2."""


class ConfigError(LitmonError):
    """The configuration file is missing, unreadable or invalid (exit code 2)."""

    def __init__(self, path, key, message):
        self.path = str(path)
        self.key = key
        super().__init__(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")


class SourceError(LitmonError):
    """A source could not be fetched or its answer could not be understood.

    ``hint`` says what an operator should check.
    """

    def __init__(self, source, message, hint=None, url=None):
        self.source = source
        self.url = url = redact_url(url)
        self.hint = hint
        self.reason = redact_text(str(message))  # the failure alone, without source, URL or hint
        text = f"[{source}] {self.reason}"
        if url:
            text += f" (url: {url})"
        if hint:
            text += f" — check: {hint}"
        super().__init__(text)


class DeliveryError(LitmonError):
    """A digest could not be delivered."""


class LockedError(LitmonError):
    """Another litmon process holds the run lock."""


class Interrupted(LitmonError):
    """A stop was requested (SIGTERM/SIGINT): the work ends at the next safe point."""
