#!/usr/bin/env python3
"""A litmon SQLite file in a stable text form, to prove that a change stored exactly the same thing.

    python bench/pipeline.py 10000 --worker auto --keep --dir /tmp/a      # before the change
    python bench/db_dump.py /tmp/a/pipeline-10000.db > /tmp/before.dump
    python bench/pipeline.py 10000 --worker auto --keep --dir /tmp/b      # after it
    python bench/db_dump.py /tmp/b/pipeline-10000.db > /tmp/after.dump
    cmp /tmp/before.dump /tmp/after.dump && echo identical

Printed: the SQL of every table, index, trigger and view (``sqlite_master``, by type and name), then every
table's rows in rowid order (the order they were written), FTS5's shadow tables included (their segments
are the search index itself, so a different write order shows), one line per row with ``|`` between the
values, a blob as ``x'…'`` hex, text quoted. Only what differs between two runs of the same code is
replaced: a date-time (``YYYY-MM-DD HH:MM[:SS…]``, with ``T`` or a zone too) is printed ``<ts>``, since it
holds the wall clock of the run; dates alone stay. The file is opened read-only.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

#: A date-time, wherever it occurs in a value (JSON included): the run's wall clock.
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")


def render_value(value: object) -> str:
    """One stored value as dump text."""
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    if isinstance(value, str):
        return repr(DATE_TIME.sub("<ts>", value))
    return repr(value)


def dump_lines(conn: sqlite3.Connection) -> Iterator[str]:
    """The schema, then each table's rows: every line of the dump."""
    for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name"):
        yield f"== {kind} {name}"
        yield str(sql)
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for name in tables:
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            rows = conn.execute(f"SELECT * FROM {quoted} ORDER BY rowid")
        except sqlite3.OperationalError:  # a WITHOUT ROWID table: its primary key's order
            rows = conn.execute(f"SELECT * FROM {quoted}")
        yield f"== rows {name}"
        count = 0
        for row in rows:
            yield "|".join(render_value(value) for value in row)
            count += 1
        yield f"== {count} rows"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", help="the SQLite file (opened read-only)")
    args = parser.parse_args(argv)
    if not Path(args.database).is_file():
        parser.error(f"{args.database}: no such file")
    conn = sqlite3.connect(f"file:{Path(args.database).resolve()}?mode=ro", uri=True)
    try:
        out = sys.stdout
        for line in dump_lines(conn):
            out.write(line + "\n")
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
