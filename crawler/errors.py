"""Exceptions that carry what failed, where, and what to check."""


class LitmonError(Exception):
    """Base class for every error litmon reports to a person."""


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
        self.url = url
        self.hint = hint
        text = f"[{source}] {message}"
        if url:
            text += f" (url: {url})"
        if hint:
            text += f" — check: {hint}"
        super().__init__(text)


class DeliveryError(LitmonError):
    """A digest could not be delivered."""


class LockedError(LitmonError):
    """Another litmon process holds the run lock."""
