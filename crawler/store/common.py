"""What every query module of the store shares: JSON columns, chunked ``IN (…)`` lists, rows written by one statement."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence, Sized
from itertools import chain
from typing import Any, TypeVar

import orjson

from crawler.records import SOURCE_PRIORITY, json_value

T = TypeVar("T")

#: Most values bound in one ``IN (…)`` list (SQLite allows 32766 variables; smaller chunks keep plans fast).
CHUNK = 500


def dumps(value: Any) -> str:
    """A JSON column's text: stable key order, Unicode kept, dates as strings."""
    return json_value(value)


def dumps_texts(values: list) -> str:
    """:func:`dumps` of a list (a classification's reasons: ~1 KB of text per work) in a fraction of its instructions
    where every value is a text (or a subclass of one, which both encode as a text). ASCII texts that need no escape (orjson, which escapes a text as
    :func:`~crawler.records.json_value` does, encodes them with only their quotes added) are joined between quotes;
    other texts are each encoded by orjson (the same bytes as json for every code point but the surrogates, which it
    refuses: those lists are left to ``dumps``)."""
    if type(values) is list:
        try:
            text = "".join(values)  # TypeError: a value that is not a text
            if text.isascii() and len(_orjson_dumps(text)) == len(text) + 2:
                return '["' + '", "'.join(values) + '"]' if values else "[]"
            return "[" + ", ".join([_orjson_dumps(value).decode() for value in values]) + "]"
        except TypeError:
            pass
    return json_value(values)


_orjson_dumps = orjson.dumps


#: Every byte a digit stays ``0``, every other byte becomes a space (:func:`loads`).
_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
#: A run of digits that may be an integer orjson reads as a float (beyond 64 bits: 2**64 has 20 digits, and an integer
#: below -2**63 already 19, such as -9223372036854775809).
_LONG_NUMBER = b"0" * 19


def loads(data: bytes) -> Any:
    """A JSON column's value, from its UTF-8 text (``CAST(column AS BLOB)``), as ``json.loads`` reads it.

    orjson reads a record's ``data`` in about half the time. It reads an integer beyond 64 bits as a float and refuses
    NaN, Infinity and lone surrogate escapes, which json reads: text with a run of 19 digits anywhere, or that orjson
    refuses, is read by json."""
    if _LONG_NUMBER not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def chunks(values: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``, for queries with an ``IN (…)`` list."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def marks(values: Sized) -> str:
    """``?, ?, ?``: one placeholder per value."""
    return ", ".join("?" * len(values))


#: Rows per statement of :func:`insert_values`.
VALUES_ROWS = 64


def insert_values(conn, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """``{head} VALUES (?, …) {tail}`` for every row, in order, as an ``executemany`` runs it, in a sixty-fourth of the
    statement runs: :data:`VALUES_ROWS` rows per statement at most (``VALUES (?, ?), (?, ?), …``; the rest, fewer, one by one).

    Each run of a statement costs the same few thousand instructions whatever it writes: Python's ``sqlite3`` releases
    and takes the GIL (a mutex and a condition variable) around each step and reset, and enters SQLite's connection
    mutex at each call; a row of a few columns costs about as much to write. The rows of one statement are written
    in their order, each with the statement's conflict clause (``tail``: an upsert's ``ON CONFLICT`` applies to a row
    that an earlier row of the same statement wrote, as to one written before). Every row has as many values.

    Fewer rows go to a statement when that many would pass the connection's limit on bound values (999 in
    SQLite before 3.32, 32,766 since). Not for a table with foreign keys: a statement of many rows there keeps a
    statement journal that spills to a temporary file (the writer measured 3.7x the page writes).

    Measured (callgrind, the writing process of a backfill: staging, summary-queue, relevance and fingerprint rows):
    1,294k → 1,238k instructions per record, SQLite's and libc's (mutexes) share; the rows written are the same."""
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, min(VALUES_ROWS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(1, width)))
    row = f"({marks(range(width))})"
    full = len(rows) - len(rows) % per_statement
    if full:
        sql = f"{head} VALUES {', '.join([row] * per_statement)} {tail}"
        values = list(chain.from_iterable(rows[:full] if full < len(rows) else rows))
        step = per_statement * width
        for start in range(0, len(values), step):
            conn.execute(sql, values[start : start + step])
    if full < len(rows):
        conn.executemany(f"{head} VALUES {row} {tail}", rows[full:])


def source_rank_sql(column: str) -> str:
    """SQL ranking a ``records.source`` value by SOURCE_PRIORITY (``feed:x`` ranks as ``feed``), as records.source_rank does."""
    kind = f"substr({column}, 1, instr({column} || ':', ':') - 1)"
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SOURCE_PRIORITY))
    return f"(CASE {kind} {whens} ELSE {len(SOURCE_PRIORITY)} END)"


def insert_rows(
    db, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, verb: str = "INSERT", tail: str = ""
) -> None:
    """``{verb} INTO table (columns) …`` for every row, in one statement: the rows go to a temporary table first.

    An ``executemany`` runs its statement once per row, and each run of a statement that fires triggers
    opens a savepoint: the search index (FTS5) flushes what it holds at each one, and the per-row set-up
    dominates small rows with triggers and several indexes (``work_tags``). One ``INSERT … SELECT`` writes
    the same rows in the same order (``tail``: an ``ON CONFLICT`` clause) with their triggers, in one run."""
    rows = list(rows)
    if not rows:
        return
    names = ", ".join(columns)
    staging = f"temp.{table}_rows"
    db.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}_rows ({names})")
    db.conn.execute(f"DELETE FROM {staging}")
    insert_values(db.conn, f"INSERT INTO {staging} ({names})", rows)
    db.conn.execute(f"{verb} INTO {table} ({names}) SELECT {names} FROM {staging} WHERE true ORDER BY rowid {tail}")
    db.conn.execute(f"DELETE FROM {staging}")
