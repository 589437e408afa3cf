"""The schema's documentation: a description of every table, view and column, and docs/schema.md made from it.

docs/schema.md is generated from the live schema (every migration applied to an empty database) and
the descriptions here; ``tests/test_schema_doc.py`` fails when a table, view or column has no
description, when a description names something that no longer exists, or when docs/schema.md is not
what :func:`render` makes now. After a schema change: describe the new columns here, then

    python -m crawler.store.schema_doc > docs/schema.md

A column is described by its table's entry, else by :data:`COMMON` (columns with one meaning
wherever they appear).
"""

from __future__ import annotations

import sys

#: Tables and views that are not part of the stable interface (their shape may change in any release).
INTERNAL = frozenset(
    [
        "match_keys",
        "record_fingerprints",
        "source_states",
        "work_summaries_fts_config",
        "work_summaries_fts_data",
        "work_summaries_fts_docsize",
        "work_summaries_fts_idx",
        "work_summary_queue",
    ]
)

#: table or view -> (what one row is, {column: description}); columns described by COMMON may be left out.
TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "works": (
        "real-world work (article, preprint, trial registration, notice, news item)",
        {
            "entered_on": "earliest date a source listed it",
            "merged_into": "set when the work was merged into another: follow it; current works have `merged_into IS NULL`",
            "authors": "JSON: the structured authors of the best source that has any, see `records.structured_authors`",
        },
    ),
    "records": (
        "record of one source",
        {
            "source_id": "the source's own id",
            "authors": "JSON list of names as the source writes them",
            "keywords": "JSON lists",
            "data": 'JSON: everything parsed except the abstract (it is in `abstract`: `json_set(data, \'$.abstract\', abstract)` gives the whole record), incl. source-specific fields and `abstract_sections`: `[{"label", "category", "text"}]`, the abstract\'s sections with their NLM category `BACKGROUND`/`OBJECTIVE`/`METHODS`/`RESULTS`/`CONCLUSIONS` — PubMed `AbstractText@Label`/`@NlmCategory`, Europe PMC and Crossref JATS section titles, ClinicalTrials.gov\'s brief summary',
            "structured_authors": 'JSON list: `{"family", "given", "initials", "suffix"}` of a person — `given` absent when the source has initials only — or `{"collective"}` of a group such as "ELEKT-D Study Group"; read from PubMed LastName/ForeName/Initials/CollectiveName, Europe PMC `authorList`, Crossref family/given/name, else parsed from the name string',
        },
    ),
    "identifiers": (
        "identifier of a record",
        {
            "scheme": "`doi`, `pmid`, `pmcid`, `nct`, `isrctn`, `eudract`, `euct`, `ppr`, `openalex`",
            "value": "normalised: DOIs lower case without prefix or preprint version suffix, `PMC123`, `NCT01234567`, …",
        },
    ),
    "record_links": (
        "link a record states to another work",
        {
            "relation": "`retraction_in`, `retraction_of`, `erratum_in`, `erratum_for`, `correction_in`, `correction_for`, `expression_of_concern_in`/`_for`, `comment_in`/`_on`, `update_in`/`_of`, `republished_in`/`_from`, `preprint_of`, `has_preprint`, `version_of`, `registered_as`, `reference`, `result_publication`, `same_trial`",
        },
    ),
    "trial_snapshots": (
        "change of a trial registration's tracked fields",
        {
            "status": "`overall_status` in the shared vocabulary below",
        },
    ),
    "crawl_runs": (
        "run of `litmon run`/`crawl`/`serve`",
        {
            "status": "`running`, `ok`, `failed`, `interrupted`",
            "trigger": "`run`, `crawl`, `serve`",
        },
    ),
    "source_runs": (
        "source in a run",
        {
            "status": "`ok`, `failed`, `interrupted`: stopped by a signal or a killed process; not counted as a failure",
            "fetched": "items downloaded",
            "unchanged": "of the kept",
            "warnings": "JSON",
            "kept": "items that passed the local topic filter of feeds, pages, bioRxiv and Crossref; = `fetched` for the other sources",
            "skipped": "items that could not be identified or read; the watermark is then held (unless re-reading cannot help: docs/reliability.md) and `litmon status` alerts",
            "skipped_reasons": "JSON",
        },
    ),
    "source_queries": (
        "query sent (the search log)",
        {
            "query": "exactly as sent",
            "params": "JSON",
        },
    ),
    "source_states": (
        "source",
        {
            "state": "JSON: ETags, …",
        },
    ),
    "digests": (
        "digest made for one recipient",
        {
            "period_end": "the period it covers: from the end of the last digest that reached this recipient",
            "html_body": "as sent",
            "recipient": "an address, or `outbox`",
        },
    ),
    "digest_items": (
        "work listed in a digest",
        {
            "section": "`highlights`, `notices`, `clinical`, `reviews`, `trials`, `preprints`, `preclinical`, `news`, `uncertain`",
            "kind": "`new`, or `update` for a trial change, a preprint now published, a retraction/correction",
            "detail": "JSON: the notes shown, e.g. `status: RECRUITING → COMPLETED`",
        },
    ),
    "digest_deliveries": (
        "delivery attempt",
        {
            "recipient": "`outbox` for files",
            "transport": "`smtp`/`outbox`",
            "status": "`sent`, `written`, `failed`; `sending` while handed over, `unknown` if the process died then",
        },
    ),
    "record_fingerprints": (
        "record, as fuzzy matching sees it",
        {
            "kind": "`article`, `preprint`, `comment`, `protocol`, `notice`, `trial_registration`, `news`",
            "title_key": "normalised title, `\\|` where a subtitle starts",
            "first_author": "surname words of the first person author",
            "author_words": "every word of that name, initials as single letters",
        },
    ),
    "match_keys": (
        "blocking key of a record (candidates for fuzzy matching share one)",
        {
            "key": "the blocking key's 64-bit hash: the 8-byte BLAKE2b digest of the key's UTF-8 text, as a signed big-endian"
            " integer; in Python `int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), 'big', signed=True)`"
            " (`crawler.store.key_hash`). Keys are `a:<surname>:<initial>:<first or last title letters>`,"
            " `t:<hash of the title>`, `c:<hash of journal and ordered authors>`; a record's own keys come from"
            " `crawler.matching.blocking_keys` and `citation_keys`",
            "year": "the record's year (0 when unknown): candidates are read by key and year window",
        },
    ),
    "work_links": (
        "link between two works, per piece of evidence",
        {
            "link_type": "see below",
            "evidence": "`<source>:<source_id> <relation> <scheme>:<value>` for a link a record states, `title+authors score=N (records a, b)` for a guessed preprint link",
            "record_id": "the record giving the evidence",
        },
    ),
    "work_merges": (
        "merge of one work into another (the audit log)",
        {
            "reason": "`identifier doi:…` or `title+author+year score=N (records a, b)`, `title+year (no authors) …`",
            "record_id": "the record that brought the evidence",
        },
    ),
    "work_relevance": (
        "classified work",
        {
            "label": "`relevant`, `uncertain`, `not_relevant`",
            "score": "the relevance score",
            "reasons": "JSON list of strings: every concept, noise class and threshold that decided the label",
            "rank_score": "orders digest items",
            "rank_reasons": "JSON list: each contribution to `rank_score`",
            "vocabulary_hash": "of the `[topic]` vocabulary and classifier version used: differs from the current one until `litmon reclassify`",
        },
    ),
    "work_tags": (
        "tag of a work",
        {
            "category": "`evidence`, `drug`, `indication`, `safety`, or a category from `[topic.tags.*]`",
            "evidence": "what set it, e.g. `publication type 'randomized controlled trial'` or `'nasal spray' in title; 'intranasal' in abstract x2`",
        },
    ),
    "work_summaries": (
        "current work, as the views show it: kept up to date by the store in the same transaction as every change",
        {
            "authors": "display: `Anand A, Mathew SJ, ELEKT-D Study Group`",
            "pages": "each the best source's non-empty value",
            "trial_id": "NCT, else ISRCTN/EU number",
            "mesh_terms": "`; `-separated, from every source",
            "publication_types": "JSON",
            "sources": "comma list",
            "rank_score": "from `work_relevance`",
            "evidence_types": "JSON lists, from `work_tags`",
            "trial_status": "normalised status of its latest registry snapshot",
            "has_results": "0/1",
        },
    ),
    "work_summary_queue": (
        "work whose summary is being recomputed (empty between transactions)",
        {},
    ),
    "work_summaries_fts": (
        "FTS5 full-text index of `work_summaries` (porter stemming; `rowid` = `work_id`)",
        {
            "work_summaries_fts": "hidden column named after the table: the left side of `MATCH`",
            "rank": "hidden column: the bm25 rank of a match (lower is better)",
        },
    ),
    "work_summaries_fts_data": (
        "FTS5 internal storage",
        {
            "id": "FTS5 internal storage",
            "block": "FTS5 internal storage",
        },
    ),
    "work_summaries_fts_idx": (
        "FTS5 internal storage",
        {
            "segid": "FTS5 internal storage",
            "term": "FTS5 internal storage",
            "pgno": "FTS5 internal storage",
        },
    ),
    "work_summaries_fts_docsize": (
        "FTS5 internal storage",
        {
            "id": "FTS5 internal storage",
            "sz": "FTS5 internal storage",
        },
    ),
    "work_summaries_fts_config": (
        "FTS5 internal storage",
        {
            "k": "FTS5 internal storage",
            "v": "FTS5 internal storage",
        },
    ),
    "work_identifiers": (
        "identifier of a current work (distinct)",
        {
            "value": "normalised as in `identifiers`",
        },
    ),
    "work_links_view": (
        "link between two current works",
        {
            "evidence": "every piece, `; `-separated",
            "created_at": "first evidence",
        },
    ),
    "works_view": (
        "current work (the same rows as `work_summaries`, kept under its old name)",
        {},
    ),
    "trials_view": (
        "trial registration (one per registry record), at its latest snapshot",
        {
            "registry": "`clinicaltrials`, `isrctn`, …",
            "status": "normalised, see below",
            "registry_status": "as the registry writes it",
            "status_since": "first snapshot with the current status",
        },
    ),
    "trial_status_history": (
        "status change of a trial (its first status, then each change)",
        {},
    ),
    "preprint_pairs": (
        "preprint and its published version",
        {},
    ),
    "notices_view": (
        "retraction, correction or expression of concern, with the work it concerns",
        {
            "notice_type": "`retraction`, `correction`, `expression_of_concern`",
            "notice_published_on": "all empty when a source marks the work retracted and no notice is stored",
        },
    ),
    "digest_history": (
        "work listed in a digest (who got what)",
        {
            "delivery_status": "latest attempt",
        },
    ),
    "search_log": (
        "query sent to a source in a run (PRISMA-S search log; a source run without queries has one row with an empty query)",
        {
            "query": "exactly as sent",
            "hits": "the source's count",
            "params": "JSON",
            "unchanged": "counts of the source run",
        },
    ),
}

#: Columns with one meaning wherever they appear.
COMMON: dict[str, str] = {
    "id": "row id (INTEGER PRIMARY KEY)",
    "work_id": "the work (`works.id`); for current data, a work with `merged_into IS NULL`",
    "record_id": "the record (`records.id`)",
    "source": "source instance: `pubmed`, `europepmc`, `crossref`, `clinicaltrials`, `isrctn`, `ctis`, `biorxiv`, `openalex`, `feed:<name>`, `page:<name>`",
    "source_id": "the source's own id of the record",
    "record_type": "`article`, `preprint`, `trial_registration`, `notice`, `news` or `other`",
    "title": "title (of the best source, for a work)",
    "abstract": "abstract text",
    "authors": "authors",
    "journal": "journal, preprint server or registry name",
    "journal_abbreviation": "NLM/ISO journal abbreviation (`N Engl J Med`)",
    "volume": "journal volume",
    "issue": "journal issue",
    "pages": "page range (`1298-1309`; MEDLINE may shorten it: `123-9`) or article number",
    "published_on": "publication date (ISO, possibly partial: `2024`, `2024-03`)",
    "entered_on": "date a source first listed it (PubMed entrez date, Crossref created, registry first posted)",
    "updated_on": "date the source last revised it",
    "first_seen_at": "when litmon first stored it (UTC `YYYY-MM-DD HH:MM:SS`)",
    "last_seen_at": "when a crawl last saw it (UTC)",
    "changed_at": "when its content last changed (UTC)",
    "updated_at": "when the row was last updated (UTC)",
    "created_at": "when the row was created (UTC)",
    "captured_at": "when the snapshot was taken (UTC)",
    "started_at": "start time (UTC)",
    "finished_at": "end time (UTC); empty while running",
    "url": "best URL (doi.org first)",
    "publication_types": "JSON list of publication types as the sources give them",
    "mesh_terms": "MeSH headings (JSON list in `records`)",
    "keywords": "author keywords (JSON list in `records`)",
    "language": "language code as the source gives it (`eng`, `en`)",
    "version": "version of a preprint or record, when the source has one",
    "content_hash": "SHA-256 of everything parsed (except structured authors): tells whether a record changed",
    "doi": "DOI, normalised (lower case, no `https://doi.org/`)",
    "pmid": "PubMed id",
    "pmcid": "PubMed Central id (`PMC123`)",
    "trial_id": "trial registration number (NCT, else ISRCTN/EU CT/EudraCT)",
    "relevance": "`relevant`, `uncertain`, `not_relevant` (empty until classified)",
    "rank_score": "digest order: higher first (see `work_relevance`)",
    "tags": "JSON list of tags (`work_tags`)",
    "evidence": "what set it (human-readable)",
    "recipient": "digest recipient: an address, or `outbox`",
    "digest_id": "the digest (`digests.id`)",
    "crawl_run_id": "the crawl run (`crawl_runs.id`)",
    "source_run_id": "the source run (`source_runs.id`)",
    "registry": "registry the snapshot comes from (`clinicaltrials`, `isrctn`, `ctis`)",
    "status": "status",
    "error": "error message (secrets masked), empty when none",
    "query": "query exactly as sent",
    "window_from": "start of the date window searched",
    "window_to": "end of the date window searched",
    "hits": "number of results the source reported",
    "params": "JSON of the other request parameters and paging counts",
    "sent_at": "when the query was sent (UTC)",
    "section": "digest section key",
    "position": "order within the digest",
    "kind": "`new`, or `update` (trial change, preprint now published, retraction/correction)",
    "detail": "JSON: the notes shown with the item",
    "subject": "email subject",
    "period_start": "start of the period the digest covers (UTC)",
    "period_end": "end of the period the digest covers (UTC)",
    "scheme": "identifier scheme: `doi`, `pmid`, `pmcid`, `nct`, `isrctn`, `eudract`, `euct`, `ppr`, `openalex`",
    "value": "identifier, normalised as in `identifiers`",
    "note": "where the source states it (e.g. `DataBankList ClinicalTrials.gov`, `abstract`)",
    "overall_status": "status as the registry writes it (`RECRUITING`, `Recruiting`, `Ongoing, recruiting`)",
    "why_stopped": "reason given for stopping",
    "phases": "trial phases, comma-separated (`PHASE2, PHASE3`)",
    "study_type": "`INTERVENTIONAL`, `OBSERVATIONAL`, …",
    "enrollment": "planned or actual number of participants",
    "enrollment_type": "`ESTIMATED` or `ACTUAL`",
    "start_date": "study start date",
    "primary_completion_date": "primary completion date",
    "completion_date": "study completion date",
    "first_posted_on": "date first posted on the registry",
    "last_update_posted_on": "date of the registry's last update",
    "results_first_posted_on": "date results were first posted",
    "has_results": "1 when results are posted (for a work: or a results publication names the registration), else 0",
    "requests": "HTTP requests made",
    "new": "records new to the database",
    "updated": "known records whose content changed",
    "fetched": "items downloaded",
    "watermark": "date up to which the source has been read (the next window starts before it by `overlap_days`)",
    "last_success_at": "last successful run (UTC)",
    "last_failure_at": "last failed run (UTC)",
    "last_error": "error of the last failure",
    "consecutive_failures": "failed runs in a row",
    "item_count": "number of items",
    "text_body": "plain-text body as sent",
    "attempted_at": "time of the attempt (UTC)",
    "delivered_at": "when it reached the recipient (UTC); empty when not delivered",
    "message_id": "the email's `Message-ID`",
    "path": "file written (outbox)",
    "year": "publication year (integer)",
    "from_work_id": "work the link starts from (see `link_type` for the direction)",
    "to_work_id": "work the link points to",
    "link_type": "`preprint_of`, `registered_as`, `references`, `retraction_of`, `correction_of`, `expression_of_concern_of`, `comment_on`, `update_of`, `republication_of`, `version_of`, `same_trial`",
    "from_record_type": "record type of the `from` work",
    "from_title": "title of the `from` work",
    "to_record_type": "record type of the `to` work",
    "to_title": "title of the `to` work",
    "survivor_id": "the work that remains",
    "merged_id": "the work merged into it (its `merged_into` points at the survivor)",
    "merged_at": "when the merge happened (UTC)",
    "classified_at": "when the work's classification was last written (UTC): classifying it again with the same result leaves the row as it is",
    "tag": "tag name (see README, Relevance, tags and rank)",
    "first_author": "first author, Vancouver style (`Osei H`, or a group name)",
    "author_count": "number of authors",
    "record_count": "number of source records of the work",
    "sources": "sources that have a record of the work, comma-separated",
    "evidence_types": "JSON list of the work's evidence tags (category `evidence`)",
    "trial_status": "normalised status of the registration's latest snapshot (see `trials_view.status`)",
    "is_preprint": "1 for a preprint",
    "is_retracted": "1 when a retraction notice links to the work or a source marks it retracted",
    "is_corrected": "1 when an erratum/correction links to the work",
    "has_expression_of_concern": "1 when an expression of concern links to the work",
    "registry_status": "status as the registry writes it",
    "previous_status": "normalised status before this change (empty for the first snapshot)",
    "previous_registry_status": "registry's status before this change",
    "last_changed_at": "when the latest snapshot was taken (UTC)",
    "preprint_work_id": "the preprint (`works.id`)",
    "preprint_title": "title of the preprint",
    "preprint_doi": "DOI of the preprint",
    "preprint_server": "server (medRxiv, bioRxiv, Research Square, …)",
    "preprint_posted_on": "date the preprint was posted",
    "published_work_id": "the published version (`works.id`)",
    "published_title": "title of the published version",
    "published_doi": "DOI of the published version",
    "published_pmid": "PMID of the published version",
    "published_journal": "journal of the published version",
    "days_to_publication": "days from preprint to publication (empty when a date is partial)",
    "linked_at": "when litmon first linked them (UTC)",
    "notice_work_id": "the notice (`works.id`); empty when a source marks the work and no notice is stored",
    "notice_title": "title of the notice",
    "notice_doi": "DOI of the notice",
    "notice_pmid": "PMID of the notice",
    "notice_published_on": "publication date of the notice",
    "notice_type": "`retraction`, `correction` or `expression_of_concern`",
    "trigger": "what started the run: `run`, `crawl`, `serve`",
    "run_started_at": "when the crawl run started (UTC)",
}


def describe_column(table: str, column: str) -> str | None:
    own = TABLES.get(table, ("", {}))[1].get(column)
    return own or COMMON.get(column)


def schema_of(db) -> list[tuple[str, str, list[tuple[str, str, bool, str | None]]]]:
    """(name, "table"|"view", [(column, declared type, not null, default)]) for every table and view."""
    found = []
    for name, kind in db.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'"
        " ORDER BY type, name"
    ).fetchall():
        columns = [(c[1], c[2] or "", bool(c[3]), c[4]) for c in db.execute(f"PRAGMA table_xinfo([{name}])").fetchall()]
        found.append((name, kind, columns))
    return found


def problems(db) -> list[str]:
    """What the descriptions lack or describe in vain."""
    found = []
    live = {name: [c[0] for c in columns] for name, _, columns in schema_of(db)}
    for name, columns in live.items():
        if name not in TABLES:
            found.append(f"{name}: no description in crawler/store/schema_doc.py TABLES")
            continue
        found += [f"{name}.{c}: no description" for c in columns if not describe_column(name, c)]
        found += [f"{name}.{c}: described but no longer exists" for c in TABLES[name][1] if c not in columns]
    found += [f"{name}: described but no longer exists" for name in TABLES if name not in live]
    return found


def render(db) -> str:
    """docs/schema.md for the live schema of ``db``."""
    entries = {name: (kind, columns) for name, kind, columns in schema_of(db)}
    order = [n for n in TABLES if n in entries] + sorted(n for n in entries if n not in TABLES)
    out = [
        "# Database schema",
        "",
        "Generated by `python -m crawler.store.schema_doc` from the live schema and the descriptions in",
        "`crawler/store/schema_doc.py`; a test keeps them equal. Timestamps (`*_at`) are UTC",
        "`YYYY-MM-DD HH:MM:SS`, the form of SQLite's `datetime()`; dates (`*_on`) are ISO and may be partial.",
        "",
        "**Stable interface**: every table and view below not marked *internal*. Changes to it come only",
        "through a numbered migration (`_sqlite_migrations`) and are announced in CHANGELOG.md (section",
        "Schema); a column is never renamed or removed without such an entry. *Internal* tables may change",
        "in any release.",
        "",
        "| name | kind | one row per |",
        "|---|---|---|",
    ]
    out += [
        f"| [`{n}`](#{n}) | {entries[n][0]}{' (internal)' if n in INTERNAL else ''} | {TABLES.get(n, ('', {}))[0]} |"
        for n in order
    ]
    for name in order:
        kind, columns = entries[name]
        out += [
            "",
            f"## {name}",
            "",
            f"{kind.capitalize()}{', internal' if name in INTERNAL else ''}: one row per {TABLES.get(name, ('', {}))[0]}.",
            "",
        ]
        out += ["| column | type | description |", "|---|---|---|"]
        for column, declared, notnull, default in columns:
            kind_text = " ".join(
                p for p in (declared, "NOT NULL" if notnull else "", f"DEFAULT {default}" if default is not None else "") if p
            )
            description = (describe_column(name, column) or "").replace("|", "\\|")
            out.append(f"| `{column}` | {kind_text} | {description} |")
    return "\n".join(out) + "\n"


def main() -> int:
    from crawler.store.schema import memory_db  # the migrations alone: the schema is all this needs

    db = memory_db()
    missing = problems(db)
    if missing:
        print("\n".join(missing), file=sys.stderr)
        return 1
    sys.stdout.write(render(db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
