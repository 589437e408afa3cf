"""The SQLite store: the only package that writes SQL. Callers use ``from crawler import store``.

* :mod:`~crawler.store.schema` — the tables and views, every migration in order, opening the file;
* :mod:`~crawler.store.works` — records and works (saving, joining by identifier, merging);
* :mod:`~crawler.store.runs` — crawl runs, source runs and source states;
* :mod:`~crawler.store.classification` — relevance and tags of works;
* :mod:`~crawler.store.digests` — digests, their items and deliveries;
* :mod:`~crawler.store.candidates` — fingerprints, match keys and links between works (for dedup);
* :mod:`~crawler.store.common` — JSON columns and the one chunking helper.
"""

from __future__ import annotations

from crawler.records import SOURCE_PRIORITY
from crawler.store.candidates import (
    all_record_ids,
    current_work_ids,
    find_candidates,
    has_stated_preprint_link,
    load_fingerprints_of_work,
    load_match_records,
    repoint_work_links,
    save_fingerprint,
    stated_link_between,
    stated_links_touching,
    sync_work_links,
    work_identifier_sets,
    work_kinds,
)
from crawler.store.classification import (
    count_stale_classifications,
    load_classification_summary,
    load_unclassified_work_ids,
    save_classifications,
)
from crawler.store.digests import (
    REACHED_STATUSES,
    load_delivered_work_ids,
    load_digest,
    load_failed_since,
    load_last_delivered_digest,
    recover_pending_deliveries,
    save_delivery,
    save_digest,
    start_delivery,
    update_delivery,
)
from crawler.store.runs import (
    finish_crawl_run,
    finish_source_run,
    load_source_state,
    save_source_failure,
    save_source_success,
    start_crawl_run,
    start_source_run,
)
from crawler.store.schema import (
    connect,
    m001_initial,
    m002_dedup,
    m003_classify,
    m004_digest_recipients,
    memory_db,
    migrate,
    migrations,
    open_db,
    timestamp_columns,
)
from crawler.store.works import (
    known_source_ids,
    load_current_work_ids,
    load_work_ids_of_records,
    load_work_records,
    merge_works,
    refresh_work,
    save_record,
    save_records,
)

__all__ = [
    "REACHED_STATUSES",
    "recover_pending_deliveries",
    "start_delivery",
    "update_delivery",
    "SOURCE_PRIORITY",
    "all_record_ids",
    "connect",
    "count_stale_classifications",
    "current_work_ids",
    "find_candidates",
    "finish_crawl_run",
    "finish_source_run",
    "has_stated_preprint_link",
    "known_source_ids",
    "load_classification_summary",
    "load_current_work_ids",
    "load_delivered_work_ids",
    "load_digest",
    "load_failed_since",
    "load_fingerprints_of_work",
    "load_last_delivered_digest",
    "load_match_records",
    "load_source_state",
    "load_unclassified_work_ids",
    "load_work_ids_of_records",
    "load_work_records",
    "m001_initial",
    "m002_dedup",
    "m003_classify",
    "m004_digest_recipients",
    "memory_db",
    "merge_works",
    "migrate",
    "migrations",
    "open_db",
    "refresh_work",
    "repoint_work_links",
    "save_classifications",
    "save_delivery",
    "save_digest",
    "save_fingerprint",
    "save_record",
    "save_records",
    "save_source_failure",
    "save_source_success",
    "start_crawl_run",
    "start_source_run",
    "stated_link_between",
    "stated_links_touching",
    "sync_work_links",
    "timestamp_columns",
    "work_identifier_sets",
    "work_kinds",
]
