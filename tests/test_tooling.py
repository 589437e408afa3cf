"""The habits the tools enforce: the README's test command is what CI runs, with lint, format and type checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(python3 -m venv .venv && .venv/bin/pip install '\.\[test\]'[^\n]*)\n```", text)
    assert len(commands) == 1, "the README shows one test command"
    return commands[0]


def test_ci_runs_the_readme_test_command_with_lint_format_and_types():
    command = readme_test_command()
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = command.split(" && ")
    for step in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"):
        assert step in steps
    assert steps.index(".venv/bin/mypy") < next(i for i, s in enumerate(steps) if "pytest" in s)  # checks before tests


def test_mypy_and_the_pre_commit_hooks_are_configured():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["mypy"]["files"] == ["crawler"]
    assert any(dep.startswith("mypy") for dep in project["project"]["optional-dependencies"]["test"])
    hooks = re.findall(r"^\s+- id: (\S+)", (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"), re.M)
    assert hooks == ["ruff", "ruff-format", "mypy"]


def test_the_readme_layout_names_every_module():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("- Layout, one line per module") :]
    layout = layout[: layout.index("  ```\n\n")]
    listed = re.findall(r"^  (crawler/\S+\.py)\s", layout, re.M)
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "crawler").rglob("*.py"))
    modules.remove("crawler/__main__.py")  # named on the cli line
    modules.remove("crawler/__init__.py")  # the version
    assert sorted(listed) == modules
    assert len(listed) == len(set(listed))
