"""Relevance, tags and rank of a work: transparent rules over its records.

Pure part (no database): :func:`classify_records` takes a work's records (``Record`` objects or
their ``to_dict()`` form, as stored in ``records.data``) and a :class:`Vocabulary` built from
``[topic]`` in the configuration, and returns a :class:`Classification`:

Relevance
    Every *concept* of ``[topic.concepts.*]`` (shipped: ``drug`` and ``condition``) is scored by its
    strongest match (:mod:`crawler.terms`: 3 title / MeSH / trial conditions and interventions,
    2 keywords or several abstract mentions, 1 a single abstract mention). The work's score is its
    weakest concept's score, plus ``focus_bonus`` when the ``focus_concept`` is in a title, MeSH
    heading or trial field (and every concept is present), minus the largest ``penalty`` of the
    *noise classes* of ``[topic.noise.*]`` that apply. Score ≥ ``relevant_score`` → ``relevant``; ≥ ``uncertain_score`` → ``uncertain``; else
    ``not_relevant``. Without ``[topic.concepts]`` the single concept is ``[topic] match_terms``.
    Every contribution is a line of ``reasons``.
Tags
    Evidence types from :mod:`crawler.evidence` (general rules) and the topic tags of
    ``[topic.tags.*]`` (drug and route, indication, safety: configuration, not code), each with the
    evidence that set it.
Rank
    :func:`crawler.evidence.rank_score`.

Database part: :func:`classify_works` (called by the pipeline after each saved batch),
:func:`reclassify` (``litmon reclassify``) and :func:`classify_unclassified` (before a digest).
Results go to ``work_relevance`` and ``work_tags`` through :mod:`crawler.store`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import json
import logging
import multiprocessing as mp
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crawler import clock, store
from crawler.evidence import Facts, Tag, evidence_tags, rank_score
from crawler.focus import focus_doc
from crawler.records import source_rank
from crawler.terms import (
    Doc,
    RuleResult,
    RuleSet,
    TermRule,
    WorkCache,
    first_character_first,
    normalize_text,
    term_pattern,
)
from crawler.terms import _has_other_space as _other_space

if TYPE_CHECKING:
    from crawler.config import Topic, TopicRule

log = logging.getLogger("crawler.classify")

#: Bump when a rule in code changes, so that ``vocabulary_hash`` tells stale classifications.
CLASSIFIER_VERSION = 3
LABELS = ("relevant", "uncertain", "not_relevant")
#: A work's record type, as in store.refresh_work: the first present wins.
RECORD_TYPE_ORDER = ("article", "notice", "trial_registration", "preprint", "news", "other")


@dataclass
class Vocabulary:
    concepts: list[TermRule]
    noise: list[TermRule]
    tags: list[TermRule]
    relevant_score: int = 2
    uncertain_score: int = 1
    focus_concept: str = ""
    focus_bonus: int = 0
    hash: str = ""
    #: every rule but the focus concept (which reads the work with its passing mentions set aside), evaluated together
    rules: RuleSet = field(init=False, repr=False, compare=False)
    #: id of each rule of ``rules`` -> its position there (where :func:`_evaluated` gives its result)
    positions: dict[int, int] = field(init=False, repr=False, compare=False)
    #: the key of the rule set's results in a work's memo (one object: found by identity)
    memo_key: tuple[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rules = RuleSet([c for c in self.concepts if c.name != self.focus_concept] + self.noise + self.tags)
        self.positions = {id(rule): position for position, rule in enumerate(self.rules.rules)}
        self.memo_key = ("classify.results", id(self.rules))


@dataclass
class Classification:
    work_id: int | None
    label: str
    score: int
    reasons: list[str]
    tags: list[Tag]
    rank_score: int
    rank_reasons: list[str]
    vocabulary_hash: str

    @property
    def tag_names(self) -> list[str]:
        return [t.tag for t in self.tags]


# --------------------------------------------------------------------------- vocabulary

_CACHE: dict[str, Vocabulary] = {}


def _rule(name: str, rule: TopicRule, **extra) -> TermRule:
    """One ``[topic.<group>.<name>]`` rule compiled (TermRule holds lists: the rule's tuples copied)."""
    return TermRule(
        name,
        list(rule.terms),
        list(rule.mesh),
        list(rule.exclude),
        list(rule.require),
        list(rule.unless),
        rule.min_strength,
        **extra,
    )


#: id of a topic hashed -> (the topic, what its rule groups held then, its hash): the topic is held, so its id is not
#: reused while it is here. A Topic is frozen, and so are its rules and relevance (their fields tuples, numbers and
#: texts); only its rule groups are dicts, and what they hold is compared (by identity first: C, ~a thousandth of the hash).
_HASHED: dict[int, tuple[Topic, tuple, str]] = {}


def vocabulary_hash(topic: Topic) -> str:
    """The hash of what classifies (``work_relevance.vocabulary_hash``): the JSON text of the topic's rule tables as
    they were read when ``[topic]`` was a dict (every key of each table, the term lists as arrays, keys sorted), so a
    hash stored before the topic became typed stays current. Made once per topic (~1.6M instructions; the pipeline asks
    for it with every saved batch) while its rule groups hold the same rules."""
    groups = (tuple(topic.concepts.items()), tuple(topic.noise.items()), tuple(topic.tags.items()))
    known = _HASHED.get(id(topic))
    if known is not None and known[0] is topic and known[1] == groups:
        return known[2]
    if len(_HASHED) >= 16:
        _HASHED.clear()
    digest = _hash_of(topic)
    _HASHED[id(topic)] = (topic, groups, digest)
    return digest


def _hash_of(topic: Topic) -> str:
    """:func:`vocabulary_hash` of a topic, made afresh."""
    payload: dict[str, Any] = {
        # each rule's own dict (its fields, read here, not copied: the hash is made for each saved batch)
        "concepts": {name: vars(rule) for name, rule in topic.concepts.items()},
        "noise": {name: vars(rule) for name, rule in topic.noise.items()},
        # a tag's display label does not change any classification
        "tags": {name: {k: v for k, v in vars(rule).items() if k != "label"} for name, rule in topic.tags.items()},
        "relevance": vars(topic.relevance),
        "exclude_terms": topic.exclude_terms,
    }
    if not topic.concepts:
        payload["match_terms"] = topic.match_terms
    payload["version"] = CLASSIFIER_VERSION
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def build_vocabulary(topic: Topic) -> Vocabulary:
    """Compile ``[topic]`` (as parsed by crawler.config) into rules; cached by content."""
    digest = vocabulary_hash(topic)
    if digest in _CACHE:
        return _CACHE[digest]
    if topic.concepts:
        concepts = [_rule(name, rule) for name, rule in topic.concepts.items()]
    else:  # no vocabulary: the filter terms are the one concept (word-start match, as for feeds)
        concepts = [TermRule("topic", terms=[t if t.endswith("*") else t + "*" for t in topic.match_terms])]
    noise = [_rule(name, rule, penalty=rule.penalty) for name, rule in topic.noise.items()]
    if topic.exclude_terms:
        noise.append(TermRule("exclude_terms", terms=list(topic.exclude_terms), penalty=100))
    tags = [_rule(name, rule, category=rule.category) for name, rule in topic.tags.items()]
    relevance = topic.relevance
    vocabulary = Vocabulary(
        concepts,
        noise,
        tags,
        relevance.relevant_score,
        relevance.uncertain_score,
        relevance.focus_concept if topic.concepts else "",
        relevance.focus_bonus,
        digest,
    )
    _CACHE[digest] = vocabulary
    return vocabulary


#: A made-up record for :func:`warm_up`: a title and an abstract of the kind every topic's rules read.
_WARM_UP = {
    "source": "pubmed",
    "source_id": "0",
    "record_type": "article",
    "title": "A randomised controlled trial of a treatment for depression in adults: results at 12 weeks",
    "abstract": (
        "Background: Few treatments act within days. Methods: We randomly assigned 120 adults with major depressive "
        "disorder to the drug or placebo. Results: Remission was more frequent (p = 0.01). Conclusions: The drug "
        "was well tolerated."
    ),
    "keywords": ["depression"],
    "mesh_terms": ["Depressive Disorder, Major"],
    "publication_types": ["Randomized Controlled Trial"],
    "published_on": "2020-01-01",
}


def warm_up(vocabulary: Vocabulary) -> None:
    """Classify a made-up record with ``vocabulary`` and forget the result: what a process otherwise makes at its
    first classification (the rules' expressions and the vocabulary's scan automaton, first-use caches: ~0.1 s) is
    made now, e.g. while it waits for the network or for its first batch. Changes no classification."""
    classify_records([_WARM_UP], vocabulary)


# --------------------------------------------------------------------------- facts from records


def _as_dict(record) -> dict[str, Any]:
    return record if isinstance(record, dict) else record.to_dict()


def _strings(values) -> list[str]:
    return [v for v in (values or []) if isinstance(v, str) and v.strip()]


def _source_rank(record: dict) -> int:
    return source_rank(str(record.get("source", "")))


#: bioRxiv/medRxiv DOIs: 10.1101/2024.01.02.24300001 (since late 2019) or 10.1101/123456 (before).
_PREPRINT_DOI = re.compile(r"^10\.1101/(\d{4}\.\d{2}\.\d{2}\.)?\d{6,8}(v\d+)?$")
_PREPRINT_SERVERS = ("medrxiv", "biorxiv", "research square", "ssrn", "preprints.org", "psyarxiv", "arxiv")


def _preprint_server(record: dict) -> str | None:
    """Why a record from any source is a preprint: a medRxiv/bioRxiv DOI outside a journal, a Europe PMC
    preprint (PPR) record, or a preprint server as its journal/publisher."""
    journal = record.get("journal")
    journal = str(journal).strip().lower() if journal else ""
    extra = record.get("extra")
    if extra and extra.get("europepmc_source") == "PPR":
        return "Europe PMC preprint record (PPR)"
    if journal:  # a DOI tells only a record without a journal
        return f"preprint server '{record.get('journal')}'" if journal.startswith(_PREPRINT_SERVERS) else None
    for scheme, value in record.get("identifiers") or ():
        if scheme == "doi" and _PREPRINT_DOI.match(str(value)):
            return f"medRxiv/bioRxiv DOI {value}"
    return None


#: Normalised short texts (keywords, MeSH headings, trial fields) by the text as given: the same come back work after work.
_NORMAL: dict[str, str] = {}


def _normal(value) -> str:
    """:func:`crawler.terms.normalize_text` of a short text, remembered ("" for what is not a string)."""
    if not isinstance(value, str):
        return ""
    found = _NORMAL.get(value)
    if found is None:
        if len(_NORMAL) >= 50_000:
            _NORMAL.clear()
        found = _NORMAL[value] = normalize_text(value)
    return found


def _normalized(text: str) -> str:
    """:func:`crawler.terms.normalize_text` of a title or an abstract: most are ASCII with single plain spaces between
    words, or a blank line between paragraphs (a structured abstract's sections), and then only need that line made a
    space and lower case (splitting and joining a long text again costs several times more)."""
    if not text.isascii():
        return normalize_text(text)
    joined = text.replace("\n\n", " ") if "\n" in text else text
    if "  " not in joined and joined[:1] != " " and joined[-1:] != " " and not _other_space(joined):
        return joined.lower()  # (each run of whitespace was one space or one blank line: now one space)
    return normalize_text(text)


def _add(target: list[str], text: str) -> None:
    if text and text not in target:
        target.append(text)


def _add_all(target: list[str], values) -> None:
    """Each value's normalised text, once (blank texts and what is not a string are left out)."""
    known = _NORMAL.get
    for value in values or ():
        text = known(value) if value.__class__ is str else None  # (_normal's, without a call when remembered)
        if text is None:
            text = _normal(value)
        if text and text not in target:
            target.append(text)


def _add_trial_texts(doc: Doc, extra: dict[str, Any]) -> None:
    """A record's trial texts from its ``extra``: official and scientific titles (titles), conditions and interventions'
    names (trial fields), interventions' descriptions (abstracts)."""
    for key in ("official_title", "scientific_title"):
        value = extra.get(key)
        _add(doc.titles, _normalized(value) if isinstance(value, str) else "")
    _add_all(doc.trial, extra.get("conditions"))
    for item in extra.get("interventions") or ():
        if not isinstance(item, dict):
            continue
        for key in ("name", "drugNames"):
            _add(doc.trial, _normal(item.get(key)))
        _add_all(doc.trial, item.get("other_names"))
        description = item.get("description")
        _add(doc.abstracts, _normalized(description) if isinstance(description, str) else "")


def build_facts(records: Iterable) -> Facts:
    """What the rules read, from a work's records (best source first)."""
    items = [_as_dict(r) for r in records]
    if len(items) > 1:
        items.sort(key=_source_rank)
    doc = Doc(cache=WorkCache(normalised=True))  # (every text below is normalised)
    titles, abstracts = doc.titles, doc.abstracts
    facts = Facts(doc=doc)
    publication_types = facts.publication_types
    record_types, sources = facts.record_types, facts.sources
    target_enrolment = None
    for record in items:
        get = record.get
        extra = get("extra") or {}
        title = get("title")
        _add(titles, _normalized(title) if isinstance(title, str) else "")
        abstract = get("abstract")
        _add(abstracts, _normalized(abstract) if isinstance(abstract, str) else "")
        if extra and (
            "official_title" in extra or "scientific_title" in extra or "conditions" in extra or "interventions" in extra
        ):
            _add_trial_texts(doc, extra)  # (a trial registration's: most records hold none of these)
        _add_all(doc.keywords, get("keywords"))
        _add_all(doc.mesh, get("mesh_terms"))
        for value in get("publication_types") or ():
            if isinstance(value, str) and value.strip():
                value = value.strip().lower()
                if value not in publication_types:
                    publication_types.append(value)
        if extra and target_enrolment is None:
            target_enrolment = extra.get("target_enrolment") or None
        record_types.add(get("record_type") or "other")
        source = get("source", "")
        sources.add((source if isinstance(source, str) else str(source)).split(":")[0])
        if facts.preprint_server is None:
            facts.preprint_server = _preprint_server(record)
        if not facts.trial and get("trial"):
            facts.trial = dict(record["trial"])
        links = get("links")
        if links and any(isinstance(link, dict) and link.get("relation") == "registered_as" for link in links):
            facts.registered = True
        if not facts.published_on and get("published_on"):
            facts.published_on = record["published_on"]
    facts.record_type = next((t for t in RECORD_TYPE_ORDER if t in record_types), "other")
    enrollment = facts.trial.get("enrollment") if facts.trial else None
    if not enrollment:
        enrollment = target_enrolment
    facts.enrollment = enrollment if isinstance(enrollment, int) and enrollment > 0 else None
    return facts


# --------------------------------------------------------------------------- relevance and tags


_PATTERNS: dict[tuple[str, ...], re.Pattern] = {}


def _concept_pattern(concept: TermRule) -> re.Pattern:
    """One expression for the concept's terms (what :func:`crawler.focus.focus_doc` looks for)."""
    key = tuple(concept.terms)
    if key not in _PATTERNS:
        _PATTERNS[key] = re.compile("|".join(f"(?:{first_character_first(term_pattern(t))})" for t in concept.terms))
    return _PATTERNS[key]


def _evaluated(doc: Doc, vocabulary: Vocabulary) -> list[RuleResult | None]:
    """The result of each rule of ``vocabulary.rules`` on the work, in its order (``None``: nothing to find; a rule's
    position is ``vocabulary.positions[id(rule)]``), once per work."""
    memo = doc.cache.memo
    found = memo.get(vocabulary.memo_key)
    if found is None:
        found = memo[vocabulary.memo_key] = vocabulary.rules.evaluate(doc)
    return found


def judge_relevance(facts: Facts, vocabulary: Vocabulary) -> tuple[str, int, list[str]]:
    """(label, score, reasons): weakest concept's strength, focus bonus, minus the largest penalty of noise that applies."""
    reasons: list[str] = []
    strengths = []
    focus = 0
    evaluated = _evaluated(facts.doc, vocabulary)
    positions = vocabulary.positions
    for concept in vocabulary.concepts:
        doc = facts.doc
        if concept.name == vocabulary.focus_concept and concept.terms and facts.record_type != "news":
            focused = focus_doc(facts.doc, _concept_pattern(concept), concept)
            doc = focused.doc
            for why in focused.passing:
                reasons.append(f"concept {concept.name}: passing mention set aside ({why})")
        position = positions.get(id(concept)) if doc is facts.doc else None
        result = (evaluated[position] or RuleResult(concept)) if position is not None else concept.evaluate(doc)
        strength = result.strength if result.fired else 0  # min_strength, require and unless apply to concepts too
        strengths.append(strength)
        if concept.name == vocabulary.focus_concept:
            focus = strength
        if result.excluded:
            reasons.append(f"concept {concept.name}: ignored {', '.join(repr(e) for e in result.excluded)}")
        if not result.matched and doc is not facts.doc and focused.passing:
            reasons.append(
                f"concept {concept.name} = 0: named only in passing (background, comparison or discussion), not the subject"
            )
        elif not result.matched:
            reasons.append(f"concept {concept.name} = 0: no term found")
        elif strength:
            reasons.append(f"concept {concept.name} = {strength}: {result.evidence()}")
        else:
            why = (
                f"cancelled by {result.cancelled_by}"
                if result.cancelled_by
                else "no 'require' term"
                if result.missing_require
                else f"below min_strength {concept.min_strength}"
            )
            reasons.append(f"concept {concept.name} = 0 ({why}): {result.evidence()}")
    score = min(strengths) if strengths else 0
    if score and vocabulary.focus_bonus and focus >= 3:
        score += vocabulary.focus_bonus
        reasons.append(
            f"focus: concept {vocabulary.focus_concept} in a title, MeSH or trial field, every concept present +{vocabulary.focus_bonus}"
        )
    penalty = _noise_penalty(evaluated, vocabulary, reasons)
    if penalty:
        score -= penalty
        reasons.append(f"largest noise penalty -{penalty}")
    if score >= vocabulary.relevant_score:
        label = "relevant"
    elif score >= vocabulary.uncertain_score:
        label = "uncertain"
    else:
        label = "not_relevant"
    reasons.append(f"score {score} (relevant >= {vocabulary.relevant_score}, uncertain >= {vocabulary.uncertain_score}): {label}")
    return label, score, reasons


def _noise_penalty(evaluated: list[RuleResult | None], vocabulary: Vocabulary, reasons: list[str]) -> int:
    """The largest penalty of the noise classes that apply to the work (:func:`_evaluated` gave ``evaluated``), each
    noise class that applies or is cancelled a line of ``reasons``."""
    penalty = 0
    positions = vocabulary.positions
    for noise in vocabulary.noise:
        found = evaluated[positions[id(noise)]]
        if found is None and noise.min_strength > 0:  # nothing found: neither applied nor cancelled
            continue
        result = found or RuleResult(noise)
        if result.fired:
            penalty = max(penalty, noise.penalty)
            reasons.append(f"noise {noise.name} (penalty {noise.penalty}): {result.evidence()}")
        elif result.cancelled_by and result.strength >= noise.min_strength:
            reasons.append(f"noise {noise.name} not applied: cancelled by {result.cancelled_by}")
    return penalty


def topic_tags(facts: Facts, vocabulary: Vocabulary) -> list[Tag]:
    tags: list[Tag] = []
    if not vocabulary.tags:
        return tags
    # the tags are the last rules of vocabulary.rules: their results, in the same order
    results = _evaluated(facts.doc, vocabulary)[-len(vocabulary.tags) :]
    for rule, result in zip(vocabulary.tags, results):  # most tags find nothing in a work: not run at all (None)
        # (result.fired)
        if (
            result is not None
            and result.strength >= rule.min_strength
            and result.cancelled_by is None
            and not result.missing_require
        ):
            tags.append(Tag(rule.name, rule.category or "topic", result.evidence()))
    return tags


def classify_facts(
    facts: Facts, vocabulary: Vocabulary, today: dt.date | None = None, work_id: int | None = None
) -> Classification:
    today = today or clock.today()
    label, score, reasons = judge_relevance(facts, vocabulary)
    tags = evidence_tags(facts) + topic_tags(facts, vocabulary)
    rank, rank_reasons = rank_score(facts, tags, label, today)
    return Classification(work_id, label, score, reasons, tags, rank, rank_reasons, vocabulary.hash)


def classify_records(
    records: Iterable, vocabulary: Vocabulary, today: dt.date | None = None, work_id: int | None = None
) -> Classification:
    """Classify one work from its records (pure: no database)."""
    return classify_facts(build_facts(records), vocabulary, today, work_id)


# --------------------------------------------------------------------------- database

CHUNK = 500


def classify_works(
    db,
    config,
    work_ids: Iterable[int],
    *,
    dry_run: bool = False,
    today: dt.date | None = None,
    known: dict[int, list[dict[str, Any]]] | None = None,
    ahead: dict[int, Classification] | None = None,
    current: bool = False,
) -> list[Classification]:
    """(Re)classify these works (merged ones: their survivor) and store the results unless dry_run.

    ``known``: work id -> all its records' ``records.data``, already in memory (not read again).
    ``ahead``: work id -> its classification, already computed from those records (not computed again, nor read).
    ``current``: ``work_ids`` are current works, sorted, each once (:func:`crawler.store.load_current_work_ids` gave
    them): not looked up again."""
    vocabulary = build_vocabulary(config.topic)
    ids = list(work_ids) if current else sorted(set(store.load_current_work_ids(db, list(work_ids))))
    known = known or {}
    ahead = ahead or {}
    results = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        records = store.load_work_records(db, [w for w in chunk if w not in known and w not in ahead])
        records.update((w, known[w]) for w in chunk if w in known)
        batch = [
            ahead[work_id] if work_id in ahead else classify_records(records[work_id], vocabulary, today, work_id)
            for work_id in chunk
            if work_id in ahead or records.get(work_id)
        ]
        if not dry_run:
            store.save_classifications(db, batch)
        results.extend(batch)
    return results


def classify_batch(
    db, config, records, *, stored: dict[int, dict[str, Any]] | None = None, alone: dict[int, Classification] | None = None
) -> None:
    """The pipeline's hook after a saved batch: classify the works these records belong to.

    ``stored``: record id -> the record just written (``records.data`` with its abstract) for the batch's
    new and updated records; a work made only of those is classified from them instead of being read back.
    ``alone``: record id -> that new record classified as a work of its own, computed ahead (the fetch
    worker); used for the work it is the only record of, and only then.
    A failure here is logged and never fails the crawl: the records are stored, and the digest
    classifies whatever is still unclassified (``litmon reclassify`` redoes everything).
    """
    try:
        work_ids = store.load_work_ids_of_records(db, [(r.source, r.source_id) for r in records])
        known, ahead = _works_in_memory(db, stored or {}, alone or {})
        classify_works(db, config, work_ids, known=known, ahead=ahead, current=True)
    except Exception as exc:  # noqa: BLE001 - classification must not lose a crawl
        log.error(
            "classification of %d record(s) failed: %s: %s — check: the [topic] vocabulary; run `litmon -v reclassify`",
            len(records),
            type(exc).__name__,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )


def _works_in_memory(
    db, stored: dict[int, dict[str, Any]], alone: dict[int, Classification]
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, Classification]]:
    """work id -> its records' data, for the works all of whose records are in ``stored`` (in id order);
    and work id -> its classification, for the works whose only record is one of ``alone`` (whose data is
    not read: ``stored`` may make it when read, :class:`crawler.store.WrittenRecords`)."""
    by_work: dict[int, list[int]] = {}
    sizes: dict[int, int] = {}
    for record_id, (work_id, count) in store.load_record_works(db, list(stored)).items():
        by_work.setdefault(work_id, []).append(record_id)
        sizes[work_id] = count
    ahead = {w: _of_work(alone[ids[0]], w) for w, ids in by_work.items() if sizes[w] == 1 and ids[0] in alone}
    known = {w: [stored[r] for r in sorted(ids)] for w, ids in by_work.items() if len(ids) == sizes[w] and w not in ahead}
    return known, ahead


def _of_work(classification: Classification, work_id: int) -> Classification:
    """``dataclasses.replace(classification, work_id=work_id)``: a copy with the same values of its fields. Copied as
    its ``__dict__`` (a Classification has nothing but its fields, no ``__post_init__``): a fourth of ``replace``'s
    time, which calls ``__init__`` with every field by keyword (~1.5 µs per work classified ahead)."""
    copied = object.__new__(Classification)
    copied.__dict__.update(classification.__dict__)
    copied.work_id = work_id
    return copied


@dataclass
class ReclassifyReport:
    works: int = 0
    labels: dict[str, int] = field(default_factory=lambda: {label: 0 for label in LABELS})
    changed: list[tuple[int | None, str | None, str]] = field(default_factory=list)  # (work_id, old, new)
    tags_changed: int = 0


#: Fewest works for which reclassify starts worker processes (below, starting them costs more than they save).
PARALLEL_MIN_WORKS = 2 * CHUNK


def reclassify(
    db, config, *, dry_run: bool = False, today: dt.date | None = None, workers: int | None = None
) -> ReclassifyReport:
    """Recompute relevance, tags and rank of every current work (``litmon reclassify``).

    Works are classified in chunks; with ``workers`` > 1 (default: one per CPU core) and a database file,
    worker processes classify the chunks (each reading its works' records) while this process stores
    the results, in the same order and with the same writes as alone."""
    report = ReclassifyReport()
    today = today or clock.today()
    before: dict[int, tuple[str, set[str]]] | None = None
    for rows in _classified_chunks(db, config, store.load_current_work_ids(db), today, workers):
        if before is None:  # what is stored, read once the workers have started (and before anything is written)
            before = store.load_classification_summary(db)
        if not dry_run:
            store.save_classification_rows(db, rows)
        for work_id, label, *_, tags in rows:
            report.works += 1
            report.labels[label] += 1
            stored = before.get(work_id) if work_id is not None else None
            old_label, old_tags = stored if stored else (None, set[str]())
            if old_label != label:
                report.changed.append((work_id, old_label, label))
            if old_tags != tags.keys():
                report.tags_changed += 1
    return report


def _classified_chunks(db, config, ids: list[int], today: dt.date, workers: int | None):
    """The classifications of the works ``ids``, a chunk at a time in order, as rows to store
    (``store.classification_row``): in worker processes when that pays."""
    path = store.database_file(db)
    workers = min(workers or _cores(), -(-len(ids) // CHUNK))
    vocabulary = build_vocabulary(config.topic)
    with _collector_for_chunks():
        if workers < 2 or not path or len(ids) < PARALLEL_MIN_WORKS or "fork" not in mp.get_all_start_methods():
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                yield _classified_rows(store.load_work_records(db, chunk), chunk, vocabulary, today)
            return
        # forked workers start at once with the compiled vocabulary (built above; handed over by the fork, not pickled with
        # each chunk) and this process's collector settings; each reads its chunk's records itself
        with ProcessPoolExecutor(
            workers, mp_context=mp.get_context("fork"), initializer=_start_worker, initargs=(path, vocabulary)
        ) as pool:
            yield from pool.map(_classify_chunk, [(chunk, today) for chunk in _chunks(ids, workers)])


#: The youngest generation's threshold of the garbage collector while works are classified (Python's default: 700).
GC_THRESHOLD = 20_000


@contextlib.contextmanager
def _collector_for_chunks():
    """The garbage collector tuned for classifying chunks, in this process and the workers forked from it: what the
    process holds now (modules, the vocabulary) left out of full collections (``gc.freeze``), the youngest generation
    collected every :data:`GC_THRESHOLD` allocations; both restored when the block ends, however it ends."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _chunks(ids: list[int], workers: int) -> list[list[int]]:
    """``ids`` in chunks for ``workers`` processes: of CHUNK works, then smaller towards the end of a long run (each
    at most a share of what is left), so that the workers end together rather than one idling through the last chunk."""
    if len(ids) < 4 * workers * CHUNK:
        return [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)]
    chunks, start, least = [], 0, max(CHUNK // 8, 1)
    while start < len(ids):
        size = max(least, min(CHUNK, -(-(len(ids) - start) // (2 * workers))))
        chunks.append(ids[start : start + size])
        start += size
    return chunks


def _classified_rows(records: dict[int, list[dict[str, Any]]], chunk: list[int], vocabulary: Vocabulary, today: dt.date):
    """The rows to store of the works of ``chunk`` that have records, in order."""
    return [
        store.classification_row(classify_records(records[work_id], vocabulary, today, work_id))
        for work_id in chunk
        if records.get(work_id)
    ]


def _cores() -> int:
    """The CPU cores this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: In a worker process of reclassify: its read-only connection to the database file and the vocabulary (``_start_worker``).
_WORKER: dict[str, Any] = {}


def _start_worker(path: str, vocabulary: Vocabulary) -> None:
    """In a new (forked) worker process: open the database file to read, and keep the vocabulary the fork handed over."""
    _WORKER["db"] = store.open_reader(path)
    _WORKER["vocabulary"] = vocabulary


def _classify_chunk(task) -> list[tuple]:
    """In a worker process: classify one chunk of works, reading their records from the database file; the rows to store."""
    chunk, today = task
    return _classified_rows(store.load_work_records(_WORKER["db"], chunk), chunk, _WORKER["vocabulary"], today)


def classify_unclassified(db, config) -> tuple[int, int]:
    """Classify works that have no classification yet; return (classified, stale).

    ``stale`` counts works classified with another vocabulary (or classifier version): a hint to run
    ``litmon reclassify``.
    """
    vocabulary = build_vocabulary(config.topic)
    missing = store.load_unclassified_work_ids(db)
    if missing:
        classify_works(db, config, missing)
    return len(missing), store.count_stale_classifications(db, vocabulary.hash)
