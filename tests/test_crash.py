"""The crash suite (#16): ``litmon run`` killed with SIGKILL at many points (inside a batch's transaction,
between batches, after rendering the digest, right after the SMTP server accepted it), then run again.

Each time: the file passes ``PRAGMA integrity_check``, the rerun converges to what one uninterrupted run
stores (records, works, the digest's items), and the recipient gets the digest exactly once."""

from __future__ import annotations

import signal
import sqlite3

import pytest

from tests.helpers.cli import litmon, litmon_env
from tests.helpers.ops import PubMedServer, pubmed_section, query, write_config
from tests.helpers.smtp import email_section


@pytest.fixture
def smtp(smtp_server):
    """One recording SMTP server shared by the reference run and the test: ``inbox, port``."""
    return smtp_server()


def config_for(tmp_path, httpserver, port):
    return write_config(
        tmp_path,
        pubmed_section(httpserver)
        + email_section(port, attempts=1, timeout=5)
        + """
[digest]
first_digest_days = 3660
""",
    )


def outcome(db):
    """What a run leaves that must not depend on where an earlier run was killed."""
    return {
        "records": query(db, "SELECT source, source_id, title FROM records ORDER BY source, source_id"),
        "works": query(db, "SELECT title FROM works WHERE merged_into IS NULL ORDER BY title"),
        "digest_items": query(
            db,
            """SELECT w.title FROM digest_items i JOIN works w ON w.id = i.work_id JOIN digest_deliveries x
               ON x.digest_id = i.digest_id AND x.status IN ('sent', 'unknown') ORDER BY w.title""",
        ),
        "watermark": query(db, "SELECT source, watermark FROM source_states"),
    }


@pytest.fixture
def uninterrupted(tmp_path_factory, httpserver, smtp):
    folder = tmp_path_factory.mktemp("reference")
    PubMedServer(httpserver)
    inbox, port = smtp
    result = litmon("--config", config_for(folder, httpserver, port), "run", cwd=folder)
    assert result.returncode == 0, result.stderr
    expected = outcome(folder / "litmon.db")
    assert expected["records"] and expected["digest_items"]
    inbox.messages.clear()
    httpserver.clear()
    return expected


@pytest.mark.parametrize("point", ["batch:1", "batch:2", "between_batches:1", "render", "after_smtp_accept"])
def test_a_run_killed_at_any_point_converges_without_duplicate_delivery(point, tmp_path, httpserver, smtp, uninterrupted):
    PubMedServer(httpserver)
    inbox, port = smtp
    config = config_for(tmp_path, httpserver, port)
    database = tmp_path / "litmon.db"

    killed = litmon("--config", config, "run", cwd=tmp_path, env=litmon_env(LITMON_FAILPOINT=point))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    rerun = litmon("--config", config, "run", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "recovered a stale lock" in rerun.stderr  # the killed run's lock did not block the next one
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    assert outcome(database) == uninterrupted
    assert len(inbox.messages) == 1  # the digest reached the recipient once, wherever the first run died
    again = litmon("--config", config, "run", cwd=tmp_path)
    assert again.returncode == 0 and len(inbox.messages) == 1
