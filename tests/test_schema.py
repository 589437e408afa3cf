"""Connections and migrations as litmon makes and runs them (crawler/store/schema.py): scripts split into statements
in one pass, no sqlite_utils plugins."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils
import sqlite_utils.db

from crawler.store import schema

#: Scripts whose statements are hard to find: semicolons inside strings, identifiers, comments and trigger bodies.
TRICKY = [
    "",
    "  \n ",
    ";",
    "SELECT 1",
    "SELECT 1;",
    "SELECT ';';  SELECT 2 ;\n",
    "CREATE TABLE \"a;b\" (x TEXT DEFAULT ';'); -- a comment; with semicolons\nSELECT 1;",
    "/* ; */ SELECT 1; /* ; */",
    "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET a = ';'; DELETE FROM z; END;\nSELECT 2;",
    "SELECT 1; SELECT 2",
    "SELECT 'it''s;'; SELECT [a;b] FROM c;",
]


def scripts_of_the_migrations() -> list[str]:
    """Every script the migrations run on a new database (in-memory), as its executescript received it."""
    scripts: list[str] = []
    db = sqlite_utils.Database(memory=True)
    with db.tracer(lambda sql, params: scripts.append(sql) if params is None and ";" in sql else None):
        schema.migrations.apply(db)
    assert len(scripts) >= 7
    return scripts


@pytest.mark.parametrize("script", TRICKY)
def test_a_script_splits_into_the_statements_sqlite_utils_finds(script):
    assert list(schema.split_statements(script)) == list(sqlite_utils.db._iter_complete_sql_statements(script))


def test_every_migration_s_script_splits_into_the_statements_sqlite_utils_finds():
    for script in scripts_of_the_migrations():
        assert list(schema.split_statements(script)) == list(sqlite_utils.db._iter_complete_sql_statements(script))


def test_a_new_file_gets_the_schema_and_the_migrations_sqlite_utils_gives_it(tmp_path):
    """The file litmon makes and migrates has the same sqlite_master and _sqlite_migrations (less the times) as one
    migrated through sqlite_utils' own Database."""
    ours = schema.connect(tmp_path / "ours.db")
    schema.migrate(ours)
    theirs = sqlite_utils.Database(tmp_path / "theirs.db")
    schema.migrations.apply(theirs)
    for db in (ours, theirs):
        db.conn.commit()

    def described(db) -> tuple[list, list]:
        master = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid").fetchall()
        applied = db.execute("SELECT migration_set, name FROM _sqlite_migrations ORDER BY rowid").fetchall()
        return master, applied

    master, applied = described(ours)
    assert (master, applied) == described(theirs)
    assert [name for _, name in applied] == schema.migrations.names() and len(master) > 50


def test_the_migrations_run_their_scripts_through_split_statements(monkeypatch):
    """(sqlite_utils' own splitter is not called: a connection made by connect() runs scripts through ours.)"""

    def refuse(sql):
        raise AssertionError("sqlite_utils' splitter called")

    monkeypatch.setattr(sqlite_utils.db, "_iter_complete_sql_statements", refuse)
    db = schema.connect(None)
    assert schema.migrate(db) == schema.migrations.names()
    assert db.execute("SELECT COUNT(*) FROM works").fetchone() == (0,)


class _Plugin:
    """An installed sqlite_utils plugin that adds an SQL function to every connection sqlite_utils prepares."""

    @sqlite_utils.hookimpl
    def prepare_connection(self, conn):
        conn.create_function("from_a_plugin", 0, lambda: 1)


def test_litmon_s_connections_run_no_sqlite_utils_plugin(tmp_path, monkeypatch):
    """connect() neither looks for sqlite_utils plugins (every installed distribution's entry points) nor lets one
    prepare its connection: litmon's SQL uses none, and a plugin could change what a connection does."""
    import sqlite_utils.plugins

    def refuse() -> None:
        raise AssertionError("sqlite_utils looked for plugins")

    plugin = _Plugin()
    sqlite_utils.plugins.pm.register(plugin)
    try:
        prepared = sqlite_utils.Database(memory=True)
        assert prepared.execute("SELECT from_a_plugin()").fetchone() == (1,)
        monkeypatch.setattr(sqlite_utils.db, "ensure_plugins_loaded", refuse)
        for db in (schema.connect(None), schema.connect(tmp_path / "litmon.db")):
            with pytest.raises(sqlite3.OperationalError, match="no such function"):
                db.execute("SELECT from_a_plugin()")
    finally:
        sqlite_utils.plugins.pm.unregister(plugin)
