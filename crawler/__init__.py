"""litmon: an open-source literature monitor (ketamine and esketamine for depression by default)."""

__version__ = "0.1.0"
