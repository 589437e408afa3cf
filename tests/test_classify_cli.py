"""`litmon reclassify`, run as a subprocess of this checkout."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from crawler import store
from tests.conftest import BASE_CONFIG, skip_subprocess_when_travelling
from tests.helpers.classify_corpus import article, shipped_vocabulary

ROOT = Path(__file__).resolve().parent.parent


def litmon(*args, cwd):
    skip_subprocess_when_travelling()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, not another installed copy
    return subprocess.run([sys.executable, "-m", "crawler", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_reclassify_after_a_vocabulary_change(tmp_path):
    config_path = tmp_path / "litmon.toml"
    base = BASE_CONFIG.format(db=tmp_path / "litmon.db", outbox=tmp_path / "outbox")
    config_path.write_text(base + shipped_vocabulary())
    db = store.open_db(tmp_path / "litmon.db")
    store.save_records(
        db,
        [
            article("1", "Ketamine for treatment-resistant depression: a randomized trial", "Patients were randomly assigned."),
            article("2", "Ketamine and veterinary anaesthesia in cats", "Cats were anaesthetised; no depression of breathing."),
        ],
    )
    db.close()

    dry = litmon("--config", str(config_path), "reclassify", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == (
        "reclassify (dry run, nothing written): 2 work(s): 1 relevant, 0 uncertain, "
        "1 not relevant; 2 relevance change(s), 1 work(s) with changed tags"
    )
    assert sqlite3.connect(tmp_path / "litmon.db").execute("SELECT COUNT(*) FROM work_relevance").fetchone() == (0,)

    done = litmon("--config", str(config_path), "reclassify", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "work 1: unclassified -> relevant" in done.stdout and "work 2: unclassified -> not_relevant" in done.stdout

    config_path.write_text(base.replace("[topic]\n", '[topic]\nexclude_terms = ["randomized"]\n') + shipped_vocabulary())
    again = litmon("--config", str(config_path), "reclassify", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "reclassified: 2 work(s): 0 relevant, 0 uncertain, 2 not relevant; 1 relevance change(s), 0 work(s) with changed tags",
        "  work 1: relevant -> not_relevant",
    ]
    db = sqlite3.connect(tmp_path / "litmon.db")
    reasons = json.loads(db.execute("SELECT reasons FROM work_relevance WHERE work_id = 1").fetchone()[0])
    assert "noise exclude_terms (penalty 100): 'randomized' in title" in reasons


def test_reclassify_help_and_missing_database(tmp_path):
    help_text = litmon("reclassify", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "--dry-run" in help_text.stdout and "vocabulary" in help_text.stdout
    config_path = tmp_path / "litmon.toml"
    config_path.write_text(BASE_CONFIG.format(db=tmp_path / "none.db", outbox=tmp_path / "outbox"))
    missing = litmon("--config", str(config_path), "reclassify", cwd=tmp_path)
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()


def test_reclassify_rejects_an_invalid_vocabulary(tmp_path):
    config_path = tmp_path / "litmon.toml"
    config_path.write_text(
        BASE_CONFIG.format(db=tmp_path / "x.db", outbox=tmp_path / "outbox") + '[topic.tags.oral]\nterms = ["re:(oral"]\n'
    )
    result = litmon("--config", str(config_path), "reclassify", cwd=tmp_path)
    assert result.returncode == 2
    assert "litmon.toml: topic.tags.oral.terms[0]: invalid term 're:(oral'" in result.stderr
