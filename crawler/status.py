"""What `litmon status` reports: per source health and counts, database size, last digest."""

from __future__ import annotations

import os

from crawler.sources import source_instances


def collect_status(config, db) -> dict:
    sources = []
    states = {r["source"]: r for r in db.query("SELECT * FROM source_states")}
    counts = {r["source"]: r["n"] for r in db.query("SELECT source, COUNT(*) AS n FROM records GROUP BY source")}
    last_runs = {r["source"]: r for r in db.query(
        "SELECT * FROM source_runs WHERE id IN (SELECT MAX(id) FROM source_runs GROUP BY source)")}
    for instance in source_instances(config):
        st = states.get(instance.name, {})
        run = last_runs.get(instance.name, {})
        sources.append({
            "source": instance.name,
            "enabled": instance.enabled,
            "watermark": st.get("watermark"),
            "last_success_at": st.get("last_success_at"),
            "last_failure_at": st.get("last_failure_at"),
            "last_error": st.get("last_error"),
            "consecutive_failures": st.get("consecutive_failures", 0),
            "records": counts.get(instance.name, 0),
            "last_run": {k: run.get(k) for k in ("status", "started_at", "fetched", "new", "updated", "requests")} if run else None,
        })
    path = str(config.database_path)
    last_digest = next(iter(db.query("SELECT id, created_at, period_start, period_end, item_count FROM digests ORDER BY id DESC LIMIT 1")), None)
    deliveries = list(db.query("SELECT recipient, status, attempted_at, path, error FROM digest_deliveries WHERE digest_id = ?",
                               [last_digest["id"]])) if last_digest else []
    return {
        "database": {
            "path": path,
            "size_bytes": os.path.getsize(path) if os.path.exists(path) else 0,
            "works": db.execute("SELECT COUNT(*) FROM works WHERE merged_into IS NULL").fetchone()[0],
            "records": db.execute("SELECT COUNT(*) FROM records").fetchone()[0],
        },
        "sources": sources,
        "last_digest": dict(last_digest, deliveries=deliveries) if last_digest else None,
    }


def render_status(info: dict) -> str:
    db = info["database"]
    lines = [f"database: {db['path']} ({db['size_bytes'] / 1e6:.1f} MB), {db['works']} works, {db['records']} records", ""]
    header = f"{'source':36} {'on':3} {'records':>8}  {'last success':20}  {'last failure':20}  last error"
    lines.append(header)
    for s in info["sources"]:
        error = (s["last_error"] or "")[:90] if s["last_failure_at"] else ""
        lines.append(f"{s['source'][:36]:36} {'yes' if s['enabled'] else 'no':3} {s['records']:>8}  "
                     f"{s['last_success_at'] or '-':20}  {s['last_failure_at'] or '-':20}  {error}")
    lines.append("")
    d = info["last_digest"]
    if d:
        lines.append(f"last digest: #{d['id']} made {d['created_at']}, {d['item_count']} item(s), period {d['period_start'][:10]} to {d['period_end'][:10]}")
        for delivery in d["deliveries"]:
            lines.append(f"  {delivery['recipient']}: {delivery['status']} {delivery['path'] or ''} {delivery['error'] or ''}".rstrip())
    else:
        lines.append("last digest: none yet")
    return "\n".join(lines)
