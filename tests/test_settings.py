"""Typed settings (crawler/settings.py); most of its checks are exercised through the configuration in test_config."""

from __future__ import annotations

import dataclasses
import typing

from crawler import settings
from crawler.settings import Section, read_section, setting


def test_a_declaration_s_annotations_are_evaluated_once_for_all_its_tables(monkeypatch):
    """Each [[feeds]] table is read against the same declaration: its type hints are evaluated for the first only."""

    @dataclasses.dataclass
    class Entry(Section):
        name: str = setting("", "A name.", required=True)
        size: int = setting(1, "A size.", minimum=1)

    evaluated = []
    evaluate = typing.get_type_hints

    def get_type_hints(cls):
        evaluated.append(cls)
        return evaluate(cls)

    monkeypatch.setattr(settings.typing, "get_type_hints", get_type_hints)
    tables = [{"name": "a"}, {"name": "b", "size": 3}, {"name": "c", "size": 2}]
    read = [read_section(Entry, t, "f.toml", f"feeds[{i}].", f"[[feeds]] #{i + 1}")[0] for i, t in enumerate(tables)]
    assert [(e.name, e.size) for e in read] == [("a", 1), ("b", 3), ("c", 2)]
    assert evaluated == [Entry]
