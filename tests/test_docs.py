"""The README stays true: its commands, its CLI table, its schema and its config keys."""

from __future__ import annotations

import re
from pathlib import Path

from crawler import store
from crawler.cli import cli
from crawler.config import parse_config, shipped_config_text

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line and "pip install" in line)
    assert f"```sh\n{command}\n```" in README


def test_every_cli_command_is_documented():
    for name in cli.commands:
        assert f"`litmon {name}" in README, f"command {name} missing from README"


def test_every_table_and_column_is_documented():
    db = store.memory_db()
    for table in db.table_names():
        if table.startswith("_"):
            continue
        row = re.search(rf"^\| `{table}` \|.*$", README, re.M)
        assert row, f"table {table} missing from README schema"
        for column in db[table].columns_dict:
            assert f"`{column}`" in row.group(0) or column == "id" and "`id`" in README, f"{table}.{column} undocumented"


def test_every_view_and_column_is_documented():
    db = store.memory_db()
    assert db.view_names()
    for view in db.view_names():
        row = re.search(rf"^\| `{view}` \|.*$", README, re.M)
        assert row, f"view {view} missing from README schema"
        for column in db[view].columns_dict:
            assert f"`{column}`" in row.group(0), f"{view}.{column} undocumented"


def test_every_shipped_config_key_is_documented():
    config = parse_config(shipped_config_text(), "shipped")
    documented = README.split("## Configuration", 1)[1].split("## Database schema", 1)[0]
    for section, value in config.raw.items():
        if isinstance(value, dict):
            for key, sub in value.items():
                if isinstance(sub, dict):  # [sources.<name>]
                    for name in sub:
                        assert f"`{name}`" in documented or f"{name}`" in documented, f"[{section}.{key}] {name} undocumented"
                else:
                    assert f"`{key}`" in documented or f" {key}`" in documented or f"{key}`" in documented, (
                        f"[{section}] {key} undocumented"
                    )
        elif isinstance(value, list):
            for entry in value:
                for key in entry:
                    assert f"{key}`" in documented, f"[[{section}]] {key} undocumented"
        else:
            assert f"`{section}`" in documented
