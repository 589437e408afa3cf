"""Work summaries: one row per current work as the views, search and Datasette show it (issue #14).

``work_summaries`` holds each current work's best fields, identifiers, tags, relevance, normalised
trial status and flags, so that views, search and exports read one indexed table instead of running
a dozen subqueries per row. Triggers (created by migration m010) put every work whose data changes
into ``work_summary_queue`` (``save_classifications`` queues or updates the works whose relevance or tags
it changes itself: m015 dropped those two tables' triggers; ``save_record`` queues the works of the rows it
inserts into ``works``, ``records`` and ``identifiers``: m016 dropped their insert triggers);
:func:`refresh_work_summaries`, called at the end of each ingest batch, ``save_records`` and ``save_classifications`` in their transaction, recomputes
the queued works.
``work_summaries_fts`` (FTS5, sqlite-utils conventions: a content table kept in step by triggers)
indexes title, abstract, authors, journal, keywords and MeSH.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from crawler.records import Author
from crawler.store.common import insert_values, loads, source_rank_sql

#: Tables whose changes touch a work, and how to find the work from a row (``{row}`` is NEW or OLD): m010's
#: triggers (m015 dropped those of work_relevance and work_tags).
_QUEUE_SOURCES = {
    "works": ["{row}.id"],
    "records": ["{row}.work_id"],
    "identifiers": ["{row}.work_id"],
    "record_links": ["(SELECT work_id FROM records WHERE id = {row}.record_id)"],
    "trial_snapshots": ["(SELECT work_id FROM records WHERE id = {row}.record_id)"],
    "work_links": ["{row}.from_work_id", "{row}.to_work_id"],
    "work_relevance": ["{row}.work_id"],
    "work_tags": ["{row}.work_id"],
}

#: Columns of the full-text index (all TEXT columns of work_summaries).
FTS_COLUMNS = ("title", "abstract", "authors", "journal", "keywords", "mesh_terms")


def queue_triggers() -> list[str]:
    """One trigger per table and event. No ``OR IGNORE``: the statement that fires a trigger imposes its own
    conflict policy on the trigger's statements (an upsert's is ABORT), so a queued work is skipped explicitly."""
    statements = []
    for table, expressions in _QUEUE_SOURCES.items():
        for event, rows in (("INSERT", ["NEW"]), ("UPDATE", ["OLD", "NEW"]), ("DELETE", ["OLD"])):
            values = " UNION ".join(f"SELECT {e.format(row=row)} AS v" for row in rows for e in expressions)
            statements.append(
                f"CREATE TRIGGER {table}_queue_{event.lower()} AFTER {event} ON {table} BEGIN "
                f"INSERT INTO work_summary_queue (work_id) SELECT v FROM ({values}) "
                f"WHERE v IS NOT NULL AND v NOT IN (SELECT work_id FROM work_summary_queue); END"
            )
    return statements


def queue_summaries(db, work_ids: Iterable[int]) -> None:
    """Queue these works' summaries: what the insert triggers of ``works``, ``records`` and ``identifiers`` did before
    m016 (the store's one writer of those rows calls it, once per work, before anything reads the queue). Does nothing
    on a file older than m010 (no queue: its backfill summarises everything once the migration ran)."""
    rows = [(work_id,) for work_id in work_ids]
    if rows and _has_queue(db):
        insert_values(db.conn, "INSERT OR IGNORE INTO work_summary_queue (work_id)", rows)


def _has_queue(db) -> bool:
    return db.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'work_summary_queue'").fetchone() is not None


def rebuild_work_summaries(db) -> int:
    """Queue every current work and recompute its summary (after an upgrade); return how many."""
    db.execute("INSERT OR IGNORE INTO work_summary_queue (work_id) SELECT id FROM works")
    return refresh_work_summaries(db)


_best_rank = source_rank_sql("r.source")

#: The queued works of one pass: the first ``?`` of the queue, in work id order.
_QUEUED = "SELECT work_id FROM work_summary_queue ORDER BY work_id LIMIT ?"


def _best(column: str, one: bool) -> str:
    """The first non-empty value of a column over the work's records, best source first (``one``: of its one record ``r``)."""
    if one:
        return f"NULLIF(r.{column}, '')"
    return (
        f"(SELECT r.{column} FROM records r WHERE r.work_id = w.id AND COALESCE(r.{column}, '') != ''"
        f" ORDER BY {_best_rank}, r.id LIMIT 1)"
    )


def _of_records(one: bool, rows: str = "", on: str = "", where: str = "") -> str:
    """``FROM … [WHERE …]`` over the work's records (``r``) and ``rows`` of each (a table joined ``on`` its record, or a
    table-valued function): every record of ``w``, or (``one``) the work's one record ``r`` of the outer query."""
    if one:
        conditions = [c for c in (on, where) if c]
        return " ".join(([f"FROM {rows}"] if rows else []) + ([f"WHERE {' AND '.join(conditions)}"] if conditions else []))
    joined = f"records r JOIN {rows} ON {on}" if on else f"records r, {rows}" if rows else "records r"
    return f"FROM {joined} WHERE " + " AND ".join(c for c in ("r.work_id = w.id", where) if c)


def _distinct_list(column: str, one: bool, separator: str = "; ") -> str:
    rows = _of_records(one, f"json_each(r.{column}) j", where="j.value != ''")
    return f"(SELECT group_concat(v, '{separator}') FROM (SELECT DISTINCT j.value AS v {rows} ORDER BY {'j.key' if one else 'r.id, j.key'}))"


def _type_list(one: bool) -> str:
    rows = _of_records(one, "json_each(r.publication_types) j")
    return (
        f"COALESCE((SELECT json_group_array(v) FROM (SELECT DISTINCT j.value AS v {rows}\n"
        f"                 ORDER BY {'j.key' if one else 'r.id, j.key'})), '[]')"
    )


def _summary_select(one: bool | None) -> str:
    """The summaries of the queued works: of those with exactly one record (``one``: read from that record, joined
    as ``r``, as most new works are), or of all the others (``False``: each field a subquery over the work's
    records), or (``None``) of all of them the second way: the reference the first is tested against."""
    count = "" if one is None else f" AND (SELECT COUNT(*) FROM records o WHERE o.work_id = w.id) {'=' if one else '!='} 1"
    one = bool(one)
    retracted = (
        "(lower(r.publication_types) LIKE '%\"retracted publication\"%'"
        " OR EXISTS (SELECT 1 FROM record_links rl WHERE rl.record_id = r.id AND rl.relation = 'retraction_in'))"
    )
    results = "s.has_results = 1 AND s.id = (SELECT MAX(s2.id) FROM trial_snapshots s2 WHERE s2.source = s.source AND s2.trial_id = s.trial_id)"
    return f"""
SELECT w.id AS work_id, w.record_type, w.title, {_best("abstract", one)} AS abstract, w.authors AS authors_json,
       {_best("journal", one)} AS journal, {_best("journal_abbreviation", one)} AS journal_abbreviation,
       {_best("volume", one)} AS volume, {_best("issue", one)} AS issue, {_best("pages", one)} AS pages,
       w.published_on, CASE WHEN w.published_on GLOB '[0-9][0-9][0-9][0-9]*' THEN CAST(substr(w.published_on, 1, 4) AS INTEGER) END AS year,
       w.entered_on, w.first_seen_at, w.updated_at, {_best("url", one)} AS url,
       (SELECT i.value FROM identifiers i WHERE i.work_id = w.id AND i.scheme = 'doi' ORDER BY i.id LIMIT 1) AS doi,
       (SELECT i.value FROM identifiers i WHERE i.work_id = w.id AND i.scheme = 'pmid' ORDER BY i.id LIMIT 1) AS pmid,
       (SELECT i.value FROM identifiers i WHERE i.work_id = w.id AND i.scheme = 'pmcid' ORDER BY i.id LIMIT 1) AS pmcid,
       (SELECT i.value FROM identifiers i WHERE i.work_id = w.id AND i.scheme IN ('nct', 'isrctn', 'euct', 'eudract')
        ORDER BY i.scheme = 'nct' DESC, i.id LIMIT 1) AS trial_id,
       {_distinct_list("keywords", one)} AS keywords,
       {_distinct_list("mesh_terms", one)} AS mesh_terms,
       {_type_list(one)} AS publication_types,
       {_best("language", one)} AS language,
       {"r.source" if one else "(SELECT group_concat(source, ',') FROM (SELECT DISTINCT r.source FROM records r WHERE r.work_id = w.id ORDER BY r.source))"} AS sources,
       {"1" if one else "(SELECT COUNT(*) FROM records r WHERE r.work_id = w.id)"} AS record_count,
       rel.label AS relevance, rel.rank_score,
       (SELECT json_group_array(tag) FROM (SELECT t.tag FROM work_tags t WHERE t.work_id = w.id ORDER BY t.tag)) AS tags,
       (SELECT json_group_array(tag) FROM (SELECT t.tag FROM work_tags t WHERE t.work_id = w.id AND t.category = 'evidence' ORDER BY t.tag)) AS evidence_types,
       (SELECT s.status {_of_records(one, "trial_snapshots s", "s.record_id = r.id")} ORDER BY s.id DESC LIMIT 1) AS trial_status,
       w.record_type = 'preprint' AS is_preprint,
       (EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'retraction_of')
        OR EXISTS (SELECT 1 {_of_records(one, where=retracted)})) AS is_retracted,
       (EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'correction_of')
        OR EXISTS (SELECT 1 {_of_records(one, "record_links rl", "rl.record_id = r.id", "rl.relation IN ('erratum_in', 'correction_in')")})) AS is_corrected,
       (EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'expression_of_concern_of')
        OR EXISTS (SELECT 1 {_of_records(one, "record_links rl", "rl.record_id = r.id", "rl.relation = 'expression_of_concern_in'")})) AS has_expression_of_concern,
       (EXISTS (SELECT 1 {_of_records(one, "trial_snapshots s", "s.record_id = r.id", results)})
        OR EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.id AND l.link_type = 'registered_as'
                   AND (l.evidence LIKE '% result_publication %'
                        OR EXISTS (SELECT 1 FROM records r JOIN record_fingerprints f ON f.record_id = r.id
                                   WHERE r.work_id = l.from_work_id AND f.kind = 'article')))) AS has_results
FROM works w {"JOIN records r ON r.work_id = w.id " if one else ""}LEFT JOIN work_relevance rel ON rel.work_id = w.id
WHERE w.merged_into IS NULL AND w.id IN ({_QUEUED}){count}
"""


#: The summaries of the queued works of one record, and of all the others.
_SUMMARY_SELECTS = (_summary_select(True), _summary_select(False))

_SUMMARY_COLUMNS = (
    "work_id record_type title abstract authors first_author author_count journal journal_abbreviation volume issue pages "
    "published_on year entered_on first_seen_at updated_at url doi pmid pmcid trial_id keywords mesh_terms publication_types "
    "language sources record_count relevance rank_score tags evidence_types trial_status is_preprint is_retracted "
    "is_corrected has_expression_of_concern has_results"
).split()

#: The author columns of the queued works' summaries (:func:`author_columns`, computed in Python before the summary
#: statement, which joins them: a Python function called by SQLite would hold the statement to the GIL at every row).
_AUTHORS = "work_summary_authors"


#: The summary's tag columns (a subquery each, in both SELECTs).
_TAG_LISTS = {
    "tags": "(SELECT json_group_array(tag) FROM (SELECT t.tag FROM work_tags t WHERE t.work_id = w.id ORDER BY t.tag))",
    "evidence_types": "(SELECT json_group_array(tag) FROM (SELECT t.tag FROM work_tags t WHERE t.work_id = w.id AND t.category = 'evidence' ORDER BY t.tag))",
}


def _summary_insert() -> str:
    """One statement writing the summaries of the queued works (both SELECTs, work id order): the author names from
    :data:`_AUTHORS` with their count, and a one-record work's three lists from :data:`_AUTHORS` where
    :func:`list_columns` computed them; no summary row goes through Python."""
    authors = "a.authors, a.first_author, a.author_count"
    joined = "LEFT JOIN work_relevance rel ON rel.work_id = w.id"
    lists = {
        f"{_distinct_list('keywords', True)} AS keywords": "keywords",
        f"{_distinct_list('mesh_terms', True)} AS mesh_terms": "mesh_terms",
        f"{_type_list(True)} AS publication_types": "publication_types",
    }
    selects = []
    for one, select in zip((True, False), _SUMMARY_SELECTS):
        if select.count("w.authors AS authors_json") != 1 or select.count(joined) != 1:
            raise ValueError("the summary SELECT's author column or joins moved")
        select = select.replace("w.authors AS authors_json", authors)
        for column, expression in _TAG_LISTS.items():
            if select.count(f"{expression} AS {column}") != 1:
                raise ValueError(f"the summary SELECT's {column} moved")
            # the work's tags as its classification was just written, when the caller gave them (:func:`write_summaries`)
            select = select.replace(
                f"{expression} AS {column}", f"CASE WHEN a.tagged THEN a.{column} ELSE {expression} END AS {column}"
            )
        for expression, column in lists.items() if one else ():
            if select.count(expression) != 1:
                raise ValueError(f"the one-record summary SELECT's {column} moved")
            # the subquery runs only for a work whose lists Python left to SQL (CASE evaluates the branch it takes)
            select = select.replace(
                expression, f"CASE WHEN a.lists THEN a.{column} ELSE {expression[: -len(column) - 4]} END AS {column}"
            )
        # the one record of a work that has one, as the staged row names it (read with the authors, in this
        # transaction): no COUNT(*) of the work's records in each SELECT, and that record found by its id
        count = f" AND (SELECT COUNT(*) FROM records o WHERE o.work_id = w.id) {'=' if one else '!='} 1"
        record = "JOIN records r ON r.work_id = w.id "
        if select.count(count) != 1 or select.count(record) != (1 if one else 0):
            raise ValueError("the summary SELECT's record join or count moved")
        if one:
            select = select.replace(count, "").replace(
                record, f"JOIN temp.{_AUTHORS} a ON a.work_id = w.id JOIN records r ON r.id = a.record_id "
            )
        else:
            select = select.replace(count, " AND a.record_id IS NULL")
            select = select.replace(joined, f"{joined} LEFT JOIN temp.{_AUTHORS} a ON a.work_id = w.id")
        selects.append(select)
    names = ", ".join(_SUMMARY_COLUMNS)
    upsert = f"ON CONFLICT(work_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _SUMMARY_COLUMNS[1:])}"
    return (
        f"INSERT INTO work_summaries ({names}) SELECT {names} FROM ({' UNION ALL '.join(selects)}) WHERE true"
        f" ORDER BY work_id {upsert}"
    )


_SUMMARY_INSERT = _summary_insert()

#: The authors of the queued current works, whose summary names :func:`write_summaries` computes, and the three
#: lists of the one record of a work that has one (NULLs for the others: ``r.id`` tells them apart).
_QUEUED_AUTHORS = f"""SELECT w.id, CAST(w.authors AS BLOB), r.id, r.keywords, r.mesh_terms, r.publication_types FROM works w
    LEFT JOIN records r ON r.work_id = w.id AND (SELECT COUNT(*) FROM records o WHERE o.work_id = w.id) = 1
    WHERE w.merged_into IS NULL AND w.id IN ({_QUEUED})"""

#: How many works one pass summarises; the queue rows of the works it summarised (the works are not read into Python).
_QUEUED_COUNT = f"SELECT COUNT(*) FROM ({_QUEUED})"
_SUMMARISED = f"DELETE FROM work_summary_queue WHERE work_id IN ({_QUEUED})"

#: The queued works of one pass that have no current work any more (merged, or gone): their summaries are removed.
_GONE = f"""DELETE FROM work_summaries WHERE work_id IN (SELECT q.work_id FROM ({_QUEUED}) q LEFT JOIN works w ON w.id = q.work_id
    WHERE w.id IS NULL OR w.merged_into IS NOT NULL)"""


def refresh_work_summaries(db, batch: int = 2000, tags: Callable[[int], tuple[str, str] | None] | None = None) -> int:
    """Recompute the summary of every queued work (a merged one loses its row); return how many were queued.

    A work of exactly one record (most works of a backfill) is read from that record's row joined to it, the
    others by a subquery per field over all their records (best source first): a third less work per summary.
    The rows are written by one ``INSERT … SELECT`` (the author names computed in Python first): its triggers feed
    the search index (FTS5), which flushes what it holds in memory at every statement's savepoint, so one statement
    per row would write (and later merge) one index segment per work.

    ``tags``: a work id -> the work's ``tags`` and ``evidence_types`` columns as its ``work_tags`` rows give them now
    (or None: the SQL reads them), from a caller that has just written those rows (:func:`save_classification_rows`).

    Does nothing on a file older than m007 (its backfill summarises everything once the migration ran)."""
    if not _has_queue(db):
        return 0
    done = 0
    while True:
        (queued,) = db.conn.execute(_QUEUED_COUNT, [batch]).fetchone()
        if not queued:
            return done
        write_summaries(db, batch, tags)
        db.conn.execute(_SUMMARISED, [batch])  # the same works: writing summaries queues none
        done += queued


def write_summaries(db, batch: int, tags: Callable[[int], tuple[str, str] | None] | None = None) -> None:
    """The summaries of the first ``batch`` queued works, written (one statement); those of works gone removed.
    ``tags``: as :func:`refresh_work_summaries`'s."""
    names = [
        (
            work_id,
            record_id,
            *author_columns(text),
            *(list_columns(*lists) if record_id is not None else _SQL_LISTS),
            *_tagged(tags(work_id) if tags is not None else None),
        )
        for work_id, text, record_id, *lists in db.conn.execute(_QUEUED_AUTHORS, [batch])
    ]
    db.conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_AUTHORS} (work_id INTEGER PRIMARY KEY, record_id, authors, first_author, author_count,"
        " lists, keywords, mesh_terms, publication_types, tagged, tags, evidence_types)"
    )
    db.conn.execute(f"DELETE FROM temp.{_AUTHORS}")
    insert_values(
        db.conn,
        f"INSERT INTO temp.{_AUTHORS} (work_id, record_id, authors, first_author, author_count, lists, keywords, mesh_terms, publication_types,"
        " tagged, tags, evidence_types)",
        names,
    )
    db.conn.execute(_SUMMARY_INSERT, [batch, batch])
    db.conn.execute(f"DELETE FROM temp.{_AUTHORS}")
    db.conn.execute(_GONE, [batch])


def _tagged(arrays: tuple[str, str] | None) -> tuple:
    """The staged ``tagged``, ``tags``, ``evidence_types`` of a work whose tag columns were given (or not: SQL's)."""
    return (0, None, None) if arrays is None else (1, *arrays)


#: :func:`list_columns` of lists it leaves to SQL.
_SQL_LISTS = (0, None, None, None)


def list_columns(keywords: str | None, mesh_terms: str | None, publication_types: str | None) -> tuple:
    """(1, the summary's ``keywords``, ``mesh_terms``, ``publication_types``) of a work of one record, from that
    record's three JSON columns, as the one-record SELECT's subqueries give them (each list's distinct values in the
    order they first come, the empty ones left out of the first two; ``group_concat``'s NULL for none, and
    ``json_group_array``'s JSON, which writes a text without escapes as it is) without their two temporary b-trees
    each (a ``DISTINCT`` and an ``ORDER BY``). ``(0, None, None, None)`` (SQL computes them) when a column holds a
    JSON escape or anything but a list of texts. No Python runs per value: the checks and lists are C's."""
    try:
        if "\\" in keywords or "\\" in mesh_terms or "\\" in publication_types:  # type: ignore[operator]
            return _SQL_LISTS
        words, terms, types = _loads(keywords), _loads(mesh_terms), _loads(publication_types)  # type: ignore[arg-type]
        if type(words) is not list or type(terms) is not list or type(types) is not list:
            return _SQL_LISTS
        # (the joins raise TypeError for a value that is not a text, dict.fromkeys for one that cannot be a key)
        words, terms = dict.fromkeys(words), dict.fromkeys(terms)
        words.pop("", None)
        terms.pop("", None)
        return (
            1,
            "; ".join(words) or None,
            "; ".join(terms) or None,
            '["' + '","'.join(dict.fromkeys(types)) + '"]' if types else "[]",
        )
    except (TypeError, ValueError):  # a NULL column (no record), JSON that orjson refuses, a value not a text
        return _SQL_LISTS


_loads = orjson.loads


def author_columns(text: bytes | None) -> tuple[str | None, str | None, int]:
    """The summary's ``authors`` (the short names, comma-separated, None when none), ``first_author`` (the first
    author's short name, None without authors) and ``author_count`` of ``works.authors`` (its UTF-8 bytes:
    :func:`~crawler.store.common.loads` reads them as ``json.loads``, in about half its instructions). No Python frame
    per name but :func:`short_name`'s. The count is ``json_array_length`` of the column (0 for none), which SQLite
    would compute by parsing the JSON again: the column is a list whenever its names can be made."""
    people = list(map(short_name, loads(text or b"[]")))
    return ", ".join(filter(None, people)) or None, people[0] if people else None, len(people)


def short_name(author: dict) -> str:
    """``Author.from_dict(author).short`` (the summary's names, about five per work) without making the Author, unless
    it computes something: the initials of a given name stored without them. :func:`~crawler.records.vancouver_name`'s
    result, written out (without its call and its generator). An author with initials (nearly every one) is joined
    from a tuple of its parts (no list comprehension: in Python 3.11 a function made and called for each author)."""
    initials = author.get("initials")
    if initials:
        collective = author.get("collective")
        if collective:
            return collective
        family, suffix = author.get("family"), author.get("suffix")
        if family:
            return " ".join((family, initials, suffix) if suffix else (family, initials))
        return " ".join((initials, suffix) if suffix else (initials,))
    if author.get("given") and not initials:
        return Author.from_dict(author).short
    collective = author.get("collective")
    if collective:
        return collective
    return " ".join([part for part in (author.get("family"), initials, author.get("suffix")) if part])


#: The views of the stable interface (name -> CREATE VIEW), documented in docs/schema.md.
VIEWS = {
    "trials_view": """CREATE VIEW trials_view AS
        SELECT r.work_id, s.source AS registry, s.trial_id, ws.title, s.status, s.overall_status AS registry_status,
               (SELECT MIN(p.captured_at) FROM trial_snapshots p WHERE p.source = s.source AND p.trial_id = s.trial_id
                AND p.id > COALESCE((SELECT MAX(q.id) FROM trial_snapshots q WHERE q.source = s.source AND q.trial_id = s.trial_id
                                     AND q.status IS NOT s.status), 0)) AS status_since,
               s.why_stopped, s.phases, s.study_type, s.enrollment, s.enrollment_type, s.start_date, s.primary_completion_date,
               s.completion_date, s.first_posted_on, s.last_update_posted_on, s.results_first_posted_on, s.has_results,
               s.captured_at AS last_changed_at, ws.first_seen_at, ws.relevance, ws.tags, ws.url
        FROM trial_snapshots s JOIN records r ON r.id = s.record_id JOIN work_summaries ws ON ws.work_id = r.work_id
        WHERE s.id IN (SELECT MAX(id) FROM trial_snapshots GROUP BY source, trial_id)""",
    "trial_status_history": """CREATE VIEW trial_status_history AS
        SELECT work_id, registry, trial_id, captured_at, status, registry_status, previous_status, previous_registry_status
        FROM (SELECT r.work_id, s.source AS registry, s.trial_id, s.captured_at, s.status, s.overall_status AS registry_status,
                     LAG(s.status) OVER win AS previous_status, LAG(s.overall_status) OVER win AS previous_registry_status,
                     ROW_NUMBER() OVER win AS n
              FROM trial_snapshots s JOIN records r ON r.id = s.record_id
              WINDOW win AS (PARTITION BY s.source, s.trial_id ORDER BY s.id))
        WHERE n = 1 OR registry_status IS NOT previous_registry_status""",
    "preprint_pairs": """CREATE VIEW preprint_pairs AS
        SELECT p.work_id AS preprint_work_id, p.title AS preprint_title, p.doi AS preprint_doi, p.journal AS preprint_server,
               p.published_on AS preprint_posted_on, a.work_id AS published_work_id, a.title AS published_title,
               a.doi AS published_doi, a.pmid AS published_pmid, a.journal AS published_journal, a.published_on,
               CAST(julianday(a.published_on) - julianday(p.published_on) AS INTEGER) AS days_to_publication,
               group_concat(l.evidence, '; ') AS evidence, MIN(l.created_at) AS linked_at
        FROM work_links l JOIN work_summaries p ON p.work_id = l.from_work_id JOIN work_summaries a ON a.work_id = l.to_work_id
        WHERE l.link_type = 'preprint_of'
        GROUP BY l.from_work_id, l.to_work_id""",
    "notices_view": """CREATE VIEW notices_view AS
        SELECT CASE l.link_type WHEN 'retraction_of' THEN 'retraction' WHEN 'correction_of' THEN 'correction'
                    ELSE 'expression_of_concern' END AS notice_type,
               n.work_id AS notice_work_id, n.title AS notice_title, n.doi AS notice_doi, n.pmid AS notice_pmid,
               n.published_on AS notice_published_on, w.work_id, w.title, w.authors, w.journal, w.published_on, w.doi, w.pmid,
               w.relevance, group_concat(l.evidence, '; ') AS evidence, MIN(l.created_at) AS linked_at
        FROM work_links l JOIN work_summaries n ON n.work_id = l.from_work_id JOIN work_summaries w ON w.work_id = l.to_work_id
        WHERE l.link_type IN ('retraction_of', 'correction_of', 'expression_of_concern_of')
        GROUP BY l.link_type, l.from_work_id, l.to_work_id
        UNION ALL
        SELECT 'retraction', NULL, NULL, NULL, NULL, NULL, w.work_id, w.title, w.authors, w.journal, w.published_on, w.doi,
               w.pmid, w.relevance, 'marked retracted by ' || w.sources, NULL
        FROM work_summaries w
        WHERE w.is_retracted = 1 AND NOT EXISTS (SELECT 1 FROM work_links l WHERE l.to_work_id = w.work_id AND l.link_type = 'retraction_of')""",
    "digest_history": """CREATE VIEW digest_history AS
        SELECT d.id AS digest_id, d.recipient, d.created_at, d.period_start, d.period_end, d.subject,
               (SELECT x.status FROM digest_deliveries x WHERE x.digest_id = d.id ORDER BY x.id DESC LIMIT 1) AS delivery_status,
               (SELECT MIN(x.delivered_at) FROM digest_deliveries x WHERE x.digest_id = d.id) AS delivered_at,
               i.section, i.position, i.kind, i.detail, i.work_id, w.title, w.doi, w.pmid, w.trial_id
        FROM digest_items i JOIN digests d ON d.id = i.digest_id LEFT JOIN work_summaries w ON w.work_id = i.work_id""",
    "search_log": """CREATE VIEW search_log AS
        SELECT c.id AS crawl_run_id, c.trigger, c.started_at AS run_started_at, s.id AS source_run_id, s.source,
               s.status, q.query, COALESCE(q.window_from, s.window_from) AS window_from,
               COALESCE(q.window_to, s.window_to) AS window_to, q.sent_at, q.hits, q.params, s.started_at, s.finished_at,
               s.requests, s.fetched, s.new, s.updated, s.unchanged, s.error
        FROM source_runs s JOIN crawl_runs c ON c.id = s.crawl_run_id LEFT JOIN source_queries q ON q.source_run_id = s.id""",
}
