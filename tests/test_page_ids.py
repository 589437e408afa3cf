"""``page:`` entries keep their identity when the page moves to another host or port (#16): ids leave
out scheme, host and port, and ids stored in the older form are rewritten by migration m011."""

from __future__ import annotations

import json

import sqlite_utils
from pytest_httpserver import HTTPServer

from crawler import ingest, store
from tests.conftest import fixture_bytes, rows

FDA = {"name": "fda-dsc", "item": "table tbody tr", "title": "td a", "link": "td a", "date": "td:first-child", "kind": "news"}


def page_config(make_config, server, entry: dict):
    lines = [f'url = "{server.url_for(entry["path"])}"'] + [f"{k} = {json.dumps(v)}" for k, v in entry.items() if k != "path"]
    return make_config("\n[[pages]]\n" + "\n".join(lines) + "\n")


def serve(server, path, name):
    server.expect_request(path).respond_with_data(fixture_bytes("pages", name), content_type="text/html; charset=utf-8")


def test_moving_the_page_to_another_port_does_not_duplicate_its_entries(make_config, httpserver, run_crawl, db):
    serve(httpserver, "/dsc", "fda_dsc_listing.html")
    run_crawl(page_config(make_config, httpserver, {**FDA, "path": "/dsc"}))
    before = rows(db, "SELECT source_id FROM records ORDER BY source_id")
    assert before and all(not r["source_id"].startswith("http") for r in before)
    works = rows(db, "SELECT COUNT(*) AS n FROM works WHERE merged_into IS NULL")

    moved = HTTPServer(host="127.0.0.1", port=0)
    moved.start()
    try:
        serve(moved, "/dsc", "fda_dsc_listing.html")
        report = run_crawl(page_config(make_config, moved, {**FDA, "path": "/dsc"}))
    finally:
        moved.clear()
        moved.stop()
    assert report.sources[0].status == "ok" and report.sources[0].counts["new"] == 0
    assert rows(db, "SELECT source_id FROM records ORDER BY source_id") == before
    assert rows(db, "SELECT COUNT(*) AS n FROM works WHERE merged_into IS NULL") == works


def test_ids_stored_with_host_and_port_are_rewritten_on_upgrade(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    store.migrations.apply(old, stop_before="m011_page_item_ids")
    now = "2026-11-20 06:00:00"
    old.execute(
        "INSERT INTO works (id, record_type, title, first_seen_at, updated_at) VALUES (1, 'news', 'FDA warns', ?, ?)", [now, now]
    )
    old.execute(
        """INSERT INTO records (source, source_id, work_id, record_type, title, data, content_hash, first_seen_at, last_seen_at, changed_at)
           VALUES ('page:fda-dsc', 'http://127.0.0.1:38111/drugs/fda-warns?x=1', 1, 'news', 'FDA warns', '{}', 'h', ?, ?, ?)""",
        [now, now, now],
    )
    old.execute(
        "INSERT INTO source_states (source, state, updated_at) VALUES ('page:fda-dsc', ?, ?)",
        [json.dumps({"first_seen": {"http://127.0.0.1:38111/drugs/fda-warns?x=1": "2026-11-20"}}), now],
    )
    old.conn.commit()
    old.close()

    db = ingest.open_db(path)
    assert rows(db, "SELECT source_id FROM records") == [{"source_id": "/drugs/fda-warns?x=1"}]
    state = json.loads(rows(db, "SELECT state FROM source_states")[0]["state"])
    assert state["first_seen"] == {"/drugs/fda-warns?x=1": "2026-11-20"}
    db.close()
