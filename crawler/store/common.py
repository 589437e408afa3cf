"""What every query module of the store shares: JSON columns and chunked ``IN (…)`` lists."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

from crawler.records import SOURCE_PRIORITY, json_value

T = TypeVar("T")

#: Most values bound in one ``IN (…)`` list (SQLite allows 32766 variables; smaller chunks keep plans fast).
CHUNK = 500


def dumps(value: Any) -> str:
    """A JSON column's text: stable key order, Unicode kept, dates as strings."""
    return json_value(value)


def chunks(values: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``, for queries with an ``IN (…)`` list."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def marks(values: Sized) -> str:
    """``?, ?, ?``: one placeholder per value."""
    return ", ".join("?" * len(values))


def source_rank_sql(column: str) -> str:
    """SQL ranking a ``records.source`` value by SOURCE_PRIORITY (``feed:x`` ranks as ``feed``), as records.source_rank does."""
    kind = f"substr({column}, 1, instr({column} || ':', ':') - 1)"
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SOURCE_PRIORITY))
    return f"(CASE {kind} {whens} ELSE {len(SOURCE_PRIORITY)} END)"
