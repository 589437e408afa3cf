"""Relevance, tags and rank on the labelled set (tests/fixtures/classify), parsed by the real parsers.

One test per tag (a work that must carry it, with its evidence, and a near miss that must not) and
per noise class (kept out, with the noise named in the reasons), the term syntax, the vocabulary's
validation, and the targets of issue #5 over the whole labelled set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from crawler.classify import CLASSIFIER_VERSION, _classify_chunk, build_vocabulary, classify_records, vocabulary_hash
from crawler.config import parse_config, shipped_config_text
from crawler.errors import ConfigError
from crawler.evidence import EVIDENCE_TAGS
from crawler.records import Record
from crawler.terms import Doc, TermRule
from tests.helpers.classify_corpus import HERE, NOISE_CLASSES, build, load_corpus

TODAY = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def shipped():
    return build_vocabulary(parse_config(shipped_config_text(), "shipped").topic)


@pytest.fixture(scope="module")
def corpus():
    return {work.key: work for work in load_corpus()}


@pytest.fixture(scope="module")
def results(corpus, shipped):
    return {key: classify_records(work.records, shipped, TODAY) for key, work in corpus.items()}


def tags_of(result):
    return {t.tag: t for t in result.tags}


# --------------------------------------------------------------------------- the labelled set itself


def test_wire_fixtures_are_built_from_the_items():
    built = build.build_all()
    wire = HERE / "wire"
    assert sorted(p.name for p in wire.iterdir()) == sorted(built), "run tests/fixtures/classify/build.py"
    for name, body in built.items():
        assert (wire / name).read_bytes() == body, f"{name} is stale: run tests/fixtures/classify/build.py"


def test_labelled_set_covers_every_tag_and_noise_class(corpus, shipped):
    assert len(corpus) >= 200
    labelled = {tag for work in corpus.values() for tag in work.tags}
    assert set(EVIDENCE_TAGS) <= labelled
    assert {rule.name for rule in shipped.tags} <= labelled
    assert {work.noise for work in corpus.values() if work.noise} == set(NOISE_CLASSES)
    sources = {work.records[0].source.split(":")[0] for work in corpus.values()}
    assert {"pubmed", "clinicaltrials", "biorxiv", "europepmc", "feed"} <= sources


# --------------------------------------------------------------------------- one test per tag

TAG_CASES = [
    # (tag, a work that carries it, a near miss that must not)
    ("rct", "rct_esk_vs_quetiapine", "ma_iv_trd"),  # text only (no publication type) / a meta-analysis of RCTs
    ("clinical_trial", "ct_openlabel_bipolar", "obs_suicide_attempts"),  # open-label / "target trial emulation"
    ("observational", "obs_chart_review_clinic", "rct_iv_vs_ect"),
    ("case_report", "case_cystitis_oral_trd", "obs_cystitis_therapeutic"),  # case report / "a case-control study"
    ("meta_analysis", "ma_oral_ketamine", "protocol_sr_not_sr"),  # text only / protocol of a meta-analysis
    ("systematic_review", "sr_adolescents", "guideline_pt_suicide"),  # PRISMA / guideline "based on a systematic review"
    ("review", "review_suicide_ed", "obs_chart_review_clinic"),  # narrative review / "chart review"
    ("protocol", "protocol_esk_adolescents", "reg_esk_adolescent_si"),  # "will randomise" / a registration
    ("trial_registration", "reg_ketamine_vs_ect", "rct_iv_vs_ect"),
    ("preprint", "preprint_rct_esk", "rct_esk_vs_quetiapine"),
    ("preclinical", "pre_arketamine_rats", "rct_arketamine_phase2"),  # rats / patients
    ("commentary", "comment_home_viewpoint", "h_preclinical_stress_rats"),  # viewpoint / "response to ketamine"
    ("guideline", "guideline_taskforce", "review_esk_practice"),
    ("news", "news_fda_monotherapy", "comment_editorial_approval"),
    ("iv_ketamine", "rct_iv_vs_ect", "rct_esk_vs_quetiapine"),
    ("intranasal_esketamine", "rct_esk_vs_quetiapine", "rct_iv_vs_ect"),
    ("oral", "case_cystitis_oral_trd", "rct_esk_vs_quetiapine"),  # oral ketamine / an oral antidepressant, quetiapine XR
    ("im_sc", "rct_im_vs_iv", "rct_iv_vs_ect"),
    ("arketamine", "rct_arketamine_phase2", "rct_dose_ranging"),
    ("other_ketamine", "ct_intranasal_racemic", "rct_im_vs_iv"),
    ("ketamine_assisted_psychotherapy", "rct_ketamine_cbt", "rct_iv_vs_ect"),
    ("at_home_telehealth", "ct_home_sublingual", "obs_chart_review_clinic"),
    ("trd", "rct_iv_vs_ect", "rct_anxious_depression"),
    ("mdd", "rct_im_vs_iv", "rct_bipolar_addon"),
    ("bipolar_depression", "rct_bipolar_addon", "rct_iv_vs_ect"),
    ("suicidal_ideation", "rct_ed_suicidal", "rct_iv_vs_ect"),
    ("ptsd", "rct_ptsd_repeated", "rct_iv_vs_ect"),
    ("anxiety", "rct_anxious_depression", "rct_iv_vs_ect"),
    ("perinatal", "rct_ppd_cesarean", "rct_iv_vs_ect"),
    ("adolescent", "case_adolescent_ptsd", "rct_iv_vs_ect"),  # "16-year-old"
    ("geriatric", "rct_geriatric_esk", "rct_iv_vs_ect"),
    ("chronic_pain", "rct_oral_pain_depression", "rct_ppd_cesarean"),  # chronic pain / postoperative pain
    ("substance_use", "rct_aud_depression", "rct_iv_vs_ect"),
    ("dissociation", "rct_dose_ranging", "rct_esk_vs_quetiapine"),
    ("abuse_liability", "obs_telehealth_survey", "rct_iv_vs_ect"),
    ("cystitis", "obs_cystitis_therapeutic", "rct_iv_vs_ect"),
    ("cardiovascular", "rct_posthoc_bp", "rct_bipolar_addon"),
]


def test_every_tag_has_a_case():
    assert {tag for tag, _, _ in TAG_CASES} == set(EVIDENCE_TAGS) | {
        "iv_ketamine",
        "intranasal_esketamine",
        "oral",
        "im_sc",
        "arketamine",
        "other_ketamine",
        "ketamine_assisted_psychotherapy",
        "at_home_telehealth",
        "trd",
        "mdd",
        "bipolar_depression",
        "suicidal_ideation",
        "ptsd",
        "anxiety",
        "perinatal",
        "adolescent",
        "geriatric",
        "chronic_pain",
        "substance_use",
        "dissociation",
        "abuse_liability",
        "cystitis",
        "cardiovascular",
    }


@pytest.mark.parametrize("tag, positive, negative", TAG_CASES, ids=[case[0] for case in TAG_CASES])
def test_tag(tag, positive, negative, corpus, results):
    assert tag in corpus[positive].tags and tag not in corpus[negative].tags  # the labels agree with the case
    found = tags_of(results[positive])
    assert tag in found, f"{positive} lacks {tag}: {sorted(found)}"
    assert found[tag].evidence and found[tag].category == ("evidence" if tag in EVIDENCE_TAGS else found[tag].category)
    assert tag not in tags_of(results[negative]), f"{negative}: {tags_of(results[negative]).get(tag)}"


def test_tag_evidence_names_what_was_found(results):
    rct = tags_of(results["rct_iv_vs_ect"])
    assert rct["rct"].evidence == "publication type 'randomized controlled trial'"
    assert rct["iv_ketamine"].category == "drug" and "'infusions' in abstract" in rct["iv_ketamine"].evidence
    assert rct["trd"].category == "indication" and "in mesh" in rct["trd"].evidence
    assert rct["dissociation"].category == "safety"
    text_rct = tags_of(results["rct_esk_vs_quetiapine"])["rct"]
    assert text_rct.evidence.startswith("abstract: ") and "randomly assigned" in text_rct.evidence


# --------------------------------------------------------------------------- one test per noise class

NOISE_CASES = [
    # (noise class, a work of that class, a relevant work in the same context)
    ("anaesthesia", "noise_gastroscopy_sedation", "rct_ppd_cesarean"),  # "respiratory depression" / PPD at caesarean
    ("pain_only", "noise_crps", "rct_oral_pain_depression"),
    ("healthy_volunteers", "noise_pk_japanese", "rct_geriatric_esk"),
    ("recreational", "noise_chronic_users_depression", "obs_cystitis_therapeutic"),
    ("ssri_only", "noise_sertraline", "rct_esk_vs_quetiapine"),
    ("other", "noise_ltd_slices", "pre_csds_synapses"),  # "long-term depression" of synapses / a depression model
]


@pytest.mark.parametrize("noise, key, counterpart", NOISE_CASES, ids=[case[0] for case in NOISE_CASES])
def test_noise_class(noise, key, counterpart, corpus, results):
    assert corpus[key].noise == noise and not corpus[key].relevant and corpus[counterpart].relevant
    result = results[key]
    assert result.label == "not_relevant", result.reasons
    reasons = "\n".join(result.reasons)
    if noise in ("anaesthesia", "pain_only", "healthy_volunteers", "recreational"):
        assert f"noise {noise} (penalty" in reasons
    assert results[counterpart].label == "relevant", results[counterpart].reasons


def test_noise_reasons_are_specific(results):
    gastroscopy = "\n".join(results["noise_gastroscopy_sedation"].reasons)
    assert "concept condition: ignored 'respiratory depression'" in gastroscopy
    assert "concept condition = 0: no term found" in gastroscopy
    sertraline = "\n".join(results["noise_sertraline"].reasons)
    assert "concept drug = 0: no term found" in sertraline
    ltd = "\n".join(results["noise_ltd_slices"].reasons)
    assert "ignored 'long-term depression'" in ltd and "'synaptic depression'" in ltd
    caesarean = results["rct_ppd_cesarean"]
    assert any(r.startswith("noise anaesthesia (penalty 2)") for r in caesarean.reasons) and caesarean.score == 2
    cystitis = "\n".join(results["obs_cystitis_therapeutic"].reasons)
    assert "noise recreational" not in cystitis  # a single background mention is below min_strength


def test_every_noise_class_is_kept_out_of_the_digest(corpus, results):
    for noise in NOISE_CLASSES:
        group = [key for key, work in corpus.items() if work.noise == noise]
        kept_out = [key for key in group if results[key].label == "not_relevant"]
        assert len(kept_out) >= 0.8 * len(group), f"{noise}: {sorted(set(group) - set(kept_out))}"


def test_a_passing_mention_is_not_relevant_and_says_why(results):
    # issue #13: a mention only as a comparison no longer reaches the digest, not even as "uncertain"
    passing = results["noise_dxm_bupropion"]  # "like ketamine" once in a dextromethorphan trial
    assert passing.label == "not_relevant" and passing.score == 0
    reasons = "\n".join(passing.reasons)
    assert "concept drug: passing mention set aside (background sentence:" in reasons
    assert "concept drug = 0: named only in passing" in reasons


def test_real_passing_mentions_are_kept_out(corpus, results):
    """Real published works (issue #13) that name ketamine only as background, comparison or in a title's comparison."""
    scopolamine = results["real_scopolamine_negative_trial"]  # PMID 30184133: the title compares it with ketamine
    assert scopolamine.label == "not_relevant", scopolamine.reasons
    assert any("title, but the abstract's objective, methods and results never name it" in r for r in scopolamine.reasons)
    review = results["real_ppd_narrative_review"]  # esketamine once, in a list of promising treatments
    assert review.label == "not_relevant", review.reasons
    assert "review" in review.tag_names
    for key in ("real_h_japanese_esketamine_phase2b", "real_h_cochrane_glutamate", "real_ekstrand_ketamine_vs_ect"):
        assert results[key].label == "relevant", (key, results[key].reasons)  # background mention plus methods/results


def test_focus_sentence_roles():
    from crawler.focus import focus_doc, sentence_roles
    from crawler.terms import normalize_text

    roles, labelled = sentence_roles(
        normalize_text("Background: Ketamine is fast. Methods: We gave placebo. Results: It helped.")
    )
    assert labelled and [r for r, _ in roles] == ["background", "methods", "results"]
    roles, labelled = sentence_roles(
        normalize_text("Depression is common. We randomised 40 adults. Future studies of ketamine are needed.")
    )
    assert not labelled and [r for r, _ in roles] == ["background", "objective", "discussion"]
    roles, _ = sentence_roles(normalize_text("Ketamine changed psychiatry. It is fast."))  # no aim: roles unknown
    assert [r for r, _ in roles] == ["unknown", "unknown"]
    import re

    drug = re.compile(r"(?<![a-z0-9])(es)?ketamin")
    cases = {
        "We randomised 80 adults to escitalopram or sertraline rather than rapid-acting agents such as ketamine.": False,
        "We randomised 80 adults; unlike ketamine, nitrous oxide was inhaled.": False,
        "We randomised 80 adults to ketamine or midazolam; ketamine was given weekly.": True,
        "We randomised 80 adults; most received more than three ketamine infusions and ketamine was well tolerated.": True,
        "We randomised 80 adults to nitrous oxide, which acted faster than intravenous ketamine in earlier work.": False,
        "We excluded patients with prior treatment with ketamine; 80 adults received zuranolone.": False,
    }
    for text, kept in cases.items():
        result = focus_doc(Doc([], [normalize_text(text)]), drug)
        assert any(drug.search(a) for a in result.doc.abstracts) is kept, (text, result.passing)


def test_evidence_rules_of_issue_13(shipped):
    """Short texts written for these tests (not real papers): one per evidence rule the issue names."""

    def tags(title, abstract="", pts=(), source="pubmed"):
        record = Record(source=source, source_id="1", record_type="article", title=title, abstract=abstract)
        record.publication_types = list(pts)
        return set(classify_records([record], shipped, TODAY).tag_names)

    no_meta = "We systematically searched MEDLINE and Embase for trials of ketamine in depression. Twelve studies were included; heterogeneity precluded meta-analysis."
    assert "meta_analysis" not in tags("Ketamine for depression: a systematic review", no_meta)
    assert "meta_analysis" not in tags(
        "Ketamine for depression: a systematic review",
        "We searched PubMed. Because outcomes differed, no meta-analysis was performed.",
    )
    trial_report = "Adults with depression were randomized to ketamine or midazolam as described in this protocol. Response rates were 40% and 20% (p = 0.01)."
    assert "protocol" not in tags("Ketamine versus midazolam for depression", trial_report)
    assert "rct" in tags("Ketamine versus midazolam for depression", trial_report)
    assert "guideline" not in tags("Ketamine and the APA Task Force: a commentary", pts=["Editorial"])
    assert "guideline" in tags("Task force recommendations for ketamine in depression")
    letter = "To the Editor: The case series by Smith et al described five patients with cystitis after ketamine for depression."
    assert "case_report" not in tags("Re: ketamine cystitis case series", letter, pts=["Letter", "Comment"])
    assert "case_report" in tags(
        "Ketamine cystitis", "To the Editor: We describe a 34-year-old woman with depression.", pts=["Letter"]
    )
    naturalistic = (
        "In this open-label naturalistic observational study, 60 outpatients with depression received esketamine nasal spray."
    )
    assert {"observational"} <= tags("Esketamine in routine care", naturalistic) and "clinical_trial" not in tags(
        "Esketamine in routine care", naturalistic
    )
    assert "rct" in tags("Ketamine in depression", "Forty patients were randomly allocated to ketamine or saline.")
    assert "review" in tags("Ketamine for depression: current evidence", "Ketamine acts fast. Its effects last a week.")
    assert "review" in tags("Esketamine: a new era for depression", "Esketamine acts fast.", pts=["Review"])


# --------------------------------------------------------------------------- targets over the whole set


def test_targets_of_issue_5_on_the_labelled_set(corpus, results):
    relevant = [key for key, work in corpus.items() if work.relevant]
    shown = [key for key, result in results.items() if result.label != "not_relevant"]
    true_shown = [key for key in shown if corpus[key].relevant]
    recall, precision = len(true_shown) / len(relevant), len(true_shown) / len(shown)
    assert recall >= 0.99 and precision >= 0.95, (recall, precision)
    for tag in EVIDENCE_TAGS:
        tp = sum(1 for key in corpus if tag in corpus[key].tags and tag in tags_of(results[key]))
        fp = sum(1 for key in corpus if tag not in corpus[key].tags and tag in tags_of(results[key]))
        fn = sum(1 for key in corpus if tag in corpus[key].tags and tag not in tags_of(results[key]))
        assert 2 * tp / (2 * tp + fp + fn) >= 0.9, (tag, tp, fp, fn)


# --------------------------------------------------------------------------- rank


def test_rank_orders_by_evidence_size_status_and_recency(results):
    meta = results["ma_iv_trd"]
    assert meta.rank_reasons[0] == "evidence meta_analysis +40"
    assert any(r.startswith("sample size 1234 (abstract: 'n = 1,234')") for r in meta.rank_reasons)
    big_rct, case = results["rct_esk_vs_quetiapine"], results["case_hypertensive_crisis"]
    assert big_rct.rank_score > case.rank_score
    registration = results["reg_esk_adolescent_si"]
    assert "registry: results posted +8" in registration.rank_reasons and "phase 3 +5" in registration.rank_reasons
    assert "registry status COMPLETED +6" in registration.rank_reasons
    withdrawn = results["reg_withdrawn_oral_pain_dep"]
    assert "registry status WITHDRAWN -6" in withdrawn.rank_reasons
    old = results["review_pt_only"]  # 2023-08-08: more than 3 years before TODAY
    assert any(r.startswith("published 2023-08-08") and r.endswith("-10") for r in old.rank_reasons)
    preprint = results["preprint_rct_esk"]
    assert "preprint (not peer reviewed) -5" in preprint.rank_reasons
    assert results["noise_crps"].rank_score < 0


# --------------------------------------------------------------------------- terms and rules


def doc(title="", abstract="", keywords=(), mesh=(), trial=()):
    from crawler.terms import normalize_text

    return Doc(
        [normalize_text(title)] if title else [],
        [normalize_text(abstract)] if abstract else [],
        [normalize_text(k) for k in keywords],
        [normalize_text(t) for t in trial],
        [normalize_text(m) for m in mesh],
    )


def test_term_syntax():
    rule = TermRule("t", terms=["oral", "suicid*", "post-traumatic stress", "re:\\b1[0-7]-year-old\\b"])
    assert rule.evaluate(doc("Oral ketamine")).strength == 3
    assert rule.evaluate(doc("Orally disintegrating")).strength == 0  # whole words only
    assert rule.evaluate(doc("coral reefs")).strength == 0
    assert rule.evaluate(doc(abstract="Suicidality fell.")).hits[0].text == "suicidality"  # prefix, shown whole
    assert rule.evaluate(doc(abstract="posttraumatic stress and post traumatic stress")).strength == 2  # twice
    assert rule.evaluate(doc(abstract="A 16-year-old girl")).strength == 1
    assert rule.evaluate(doc(keywords=["PTSD", "Post–traumatic stress"])).strength == 2  # en dash


def test_mesh_entries_and_terms_are_kept_apart():
    rule = TermRule("a", terms=["anesthe*"], mesh=["Anesthesia*"])
    assert rule.evaluate(doc(mesh=["Anesthetics, Dissociative"])).strength == 0  # terms never match MeSH
    assert rule.evaluate(doc(mesh=["Anesthesia, General"])).strength == 3
    exact = TermRule("d", mesh=["Depression"])
    assert exact.evaluate(doc(mesh=["Depression, Postpartum"])).strength == 0
    assert exact.evaluate(doc(mesh=["Depression"])).strength == 3


def test_exclude_require_unless_and_min_strength():
    condition = TermRule("condition", terms=["depression"], exclude=["respiratory depress*"])
    result = condition.evaluate(doc(abstract="No respiratory depression occurred."))
    assert result.strength == 0 and result.excluded == ["respiratory depression"]
    nasal = TermRule("nasal", terms=["nasal spray"], require=["esketamin*"])
    assert not nasal.evaluate(doc("Ketamine nasal spray")).fired
    assert nasal.evaluate(doc("Esketamine nasal spray")).fired
    noise = TermRule("recreational", terms=["recreational*"], unless=["infusion*"], min_strength=2)
    assert not noise.evaluate(doc(abstract="Unlike recreational use, ...")).fired  # strength 1 < 2
    assert noise.evaluate(doc("Recreational ketamine")).fired
    cancelled = noise.evaluate(doc("Recreational users given infusions"))
    assert not cancelled.fired and cancelled.cancelled_by == "'infusions' in title"


def test_dissociative_anaesthetic_is_no_dissociation(shipped):
    record = Record(
        source="pubmed",
        source_id="1",
        record_type="article",
        title="Ketamine for depression",
        abstract="Ketamine, a dissociative anesthetic, reduced depressive symptoms.",
    )
    assert "dissociation" not in tags_of(classify_records([record], shipped, TODAY))


def test_a_work_is_classified_from_all_its_records(shipped):
    pubmed = Record(
        source="pubmed",
        source_id="1",
        record_type="article",
        title="Ketamine and mood",
        abstract="Ketamine improved mood.",
        publication_types=["Journal Article"],
    )
    europepmc = Record(
        source="europepmc",
        source_id="MED/1",
        record_type="article",
        title="Ketamine and mood.",
        mesh_terms=["Depressive Disorder, Treatment-Resistant"],
        publication_types=["Randomized Controlled Trial"],
    )
    alone = classify_records([pubmed], shipped, TODAY)
    both = classify_records([pubmed, europepmc], shipped, TODAY)
    assert alone.label == "not_relevant"
    assert both.label == "relevant" and {"rct", "trd"} <= set(both.tag_names)


def test_without_concepts_match_terms_are_the_one_concept():
    config = parse_config('contact_email = "a@example.org"\nextends = "none"\n[topic]\nmatch_terms = ["psilocyb"]\n', "t")
    vocabulary = build_vocabulary(config.topic)
    title = Record(source="pubmed", source_id="1", record_type="article", title="Psilocybin for depression")
    mention = Record(
        source="pubmed", source_id="2", record_type="article", title="Depression care", abstract="Psilocybin was not studied."
    )
    assert classify_records([title], vocabulary, TODAY).label == "relevant"
    assert classify_records([mention], vocabulary, TODAY).label == "uncertain"
    assert [t.category for t in classify_records([title], vocabulary, TODAY).tags] == []  # no topic tags


def test_vocabulary_hash_follows_the_vocabulary():
    base = 'contact_email = "a@example.org"\nextends = "none"\n[topic]\nmatch_terms = ["ketamin"]\n'
    one = build_vocabulary(parse_config(base + '[topic.concepts.drug]\nterms = ["ketamin*"]\n', "t").topic)
    two = build_vocabulary(parse_config(base + '[topic.concepts.drug]\nterms = ["ketamin*", "spravato"]\n', "t").topic)
    assert one.hash != two.hash and len(one.hash) == 16


#: A [topic] with every key of every table given (labels too), for the hash checks below.
EVERY_TOPIC_KEY = """\
contact_email = "a@example.org"
extends = "none"
[topic]
name = "Every key"
match_terms = ["Ketamin", "spravato"]
exclude_terms = ["Rat*"]
[topic.relevance]
relevant_score = 3
uncertain_score = 1
focus_concept = "drug"
focus_bonus = 0
[topic.concepts.drug]
terms = ["ketamin*"]
mesh = ["Ketamine"]
min_strength = 2
[topic.concepts.condition]
terms = ["depress*"]
exclude = ["respiratory depression"]
[topic.noise.pain]
terms = ["pain"]
unless = ["depress*"]
penalty = 3
[topic.tags.oral]
terms = ["oral"]
require = ["tablet*"]
category = "drug"
label = "By mouth"
"""


def hash_of_the_dict(data: dict) -> str:
    """``work_relevance.vocabulary_hash`` as litmon computed it while [topic] was parsed into a dict (up to 7af8116):
    ``data`` is the file's TOML, each table's missing keys given their defaults as that parser did."""
    topic = data["topic"]
    defaults = {
        "concepts": {"min_strength": 1},
        "noise": {"min_strength": 2, "penalty": 1},
        "tags": {"min_strength": 1, "category": "topic"},
    }
    lists = {key: [] for key in ("terms", "mesh", "exclude", "require", "unless")}
    groups = {
        group: {name: {**lists, **defaults[group], **rule} for name, rule in topic.get(group, {}).items()}
        for group in ("concepts", "noise", "tags")
    }
    relevance = {"relevant_score": 2, "uncertain_score": 1, "focus_concept": "", "focus_bonus": 1, **topic.get("relevance", {})}
    payload = {
        "concepts": groups["concepts"],
        "noise": groups["noise"],
        # a tag's display label was left out
        "tags": {name: {k: v for k, v in spec.items() if k != "label"} for name, spec in groups["tags"].items()},
        "relevance": relevance,
        "exclude_terms": [t.lower() for t in topic.get("exclude_terms", [])],
        "version": CLASSIFIER_VERSION,
    }
    if not groups["concepts"]:
        payload["match_terms"] = [t.lower() for t in topic["match_terms"]]
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@pytest.mark.parametrize(
    "text",
    [
        shipped_config_text(),
        EVERY_TOPIC_KEY,
        EVERY_TOPIC_KEY.split("[topic.relevance]")[0],  # no concepts: match_terms is the one concept
    ],
    ids=["shipped", "every-key", "no-concepts"],
)
def test_vocabulary_hash_is_the_one_stored_before_the_topic_was_typed(text):
    """An analyst's database keeps its classifications current across the change of [topic] into a typed value: the
    hash of the shipped config (and of a topic giving every key) is the one the dict-based parser's topic gave."""
    expected = hash_of_the_dict(tomllib.loads(text))
    assert vocabulary_hash(parse_config(text, "t").topic) == expected
    assert build_vocabulary(parse_config(text, "t").topic).hash == expected


def test_a_topics_vocabulary_hash_is_made_once_and_again_when_its_rule_groups_change(monkeypatch):
    """vocabulary_hash is made once per topic (the pipeline asks for it with every saved batch): asked again, the same
    hash without making it; a rule group changed in place (a rule added, replaced or removed) gives the hash a topic
    parsed with that change has; another topic of the same text, the same hash."""
    from dataclasses import replace

    from crawler import classify

    made = []
    monkeypatch.setattr(classify, "_hash_of", lambda topic, made_by=classify._hash_of: made.append(1) or made_by(topic))
    monkeypatch.setattr(classify, "_HASHED", {})
    topic = parse_config(EVERY_TOPIC_KEY, "t").topic
    first = vocabulary_hash(topic)
    assert first == hash_of_the_dict(tomllib.loads(EVERY_TOPIC_KEY)) and len(made) == 1
    assert vocabulary_hash(topic) == first and build_vocabulary(topic).hash == first and len(made) == 1
    pain = topic.noise["pain"]
    topic.noise["pain"] = replace(pain, penalty=4)
    assert vocabulary_hash(topic) == hash_of_the_dict(tomllib.loads(EVERY_TOPIC_KEY.replace("penalty = 3", "penalty = 4")))
    assert len(made) == 2
    topic.noise["pain"] = pain
    assert vocabulary_hash(topic) == first and len(made) == 3
    del topic.tags["oral"]
    without = EVERY_TOPIC_KEY.split("[topic.tags.oral]")[0]
    assert vocabulary_hash(topic) == hash_of_the_dict(tomllib.loads(without)) != first
    assert vocabulary_hash(parse_config(EVERY_TOPIC_KEY, "t").topic) == first and len(made) == 5


def test_a_tag_label_changes_no_vocabulary_hash():
    changed = EVERY_TOPIC_KEY.replace('label = "By mouth"', 'label = "Oral"')
    assert vocabulary_hash(parse_config(changed, "t").topic) == vocabulary_hash(parse_config(EVERY_TOPIC_KEY, "t").topic)


@pytest.mark.parametrize(
    "extra, key, message",
    [
        ('[topic.concepts.drug]\nterms = ["ketamin*"]\nsynonyms = ["x"]\n', "topic.concepts.drug.synonyms", "unknown key"),
        ('[topic.concepts.drug]\nterms = ["re:(unclosed"]\n', "topic.concepts.drug.terms[0]", "invalid term"),
        ("[topic.concepts.drug]\nterms = []\n", "topic.concepts.drug.terms", "at least one term"),
        ('[topic.tags.rct]\nterms = ["randomi*"]\n', "topic.tags.rct", "evidence-type tag"),
        ('[topic.tags.oral]\nterms = ["oral"]\ncategory = "Drug Route"\n', "topic.tags.oral.category", "lower-case"),
        ('[topic.noise.pain]\nterms = ["pain"]\npenalty = "two"\n', "topic.noise.pain.penalty", "an integer"),
        (
            '[topic.relevance]\nfocus_concept = "drugs"\n[topic.concepts.drug]\nterms = ["ketamin*"]\n',
            "topic.relevance.focus_concept",
            "drug",
        ),
        ("[topic.relevance]\nrelevant_score = 1\nuncertain_score = 2\n", "topic.relevance.uncertain_score", "<= relevant_score"),
    ],
)
def test_invalid_vocabulary_names_the_key(extra, key, message):
    text = 'contact_email = "a@example.org"\nextends = "none"\n[topic]\nmatch_terms = ["ketamin"]\n' + extra
    with pytest.raises(ConfigError) as error:
        parse_config(text, "litmon.toml")
    assert error.value.key == key and message in str(error.value) and "litmon.toml" in str(error.value)


def test_a_medrxiv_preprint_keeps_its_tag_whatever_source_saw_it(shipped):
    """Issue #13: a medRxiv preprint seen only through Crossref, Europe PMC or OpenAlex is still a preprint."""

    def tags(record):
        return set(classify_records([record], shipped, TODAY).tag_names)

    title, abstract = "Ketamine for depression in primary care", "We randomly assigned 80 adults with depression to ketamine."
    crossref = Record(
        source="crossref", source_id="10.1101/2026.01.05.26300001", record_type="article", title=title, abstract=abstract
    )
    crossref.add_id("doi", "10.1101/2026.01.05.26300001")
    assert "preprint" in tags(crossref)
    openalex = Record(source="openalex", source_id="W1", record_type="article", title=title, abstract=abstract, journal="medRxiv")
    assert "preprint" in tags(openalex)
    epmc = Record(source="europepmc", source_id="PPR1", record_type="article", title=title, abstract=abstract)
    epmc.extra["europepmc_source"] = "PPR"
    assert "preprint" in tags(epmc)
    journal = Record(source="crossref", source_id="10.1101/gr.1", record_type="article", title=title, abstract=abstract)
    journal.add_id("doi", "10.1101/gr.123456.120")  # Cold Spring Harbor's journals share the prefix
    journal.journal = "Genome research"
    assert "preprint" not in tags(journal)


def test_reclassify_writes_only_what_changed_and_keeps_summaries_true(tmp_path):
    """A classification stored as it is leaves its rows and summary alone; a changed one updates the summary's
    relevance, rank and tags to what a full recomputation of the summary gives."""
    from crawler import classify, store
    from crawler.store.summaries import rebuild_work_summaries
    from tests.helpers.classify_corpus import article

    db = store.open_db(tmp_path / "litmon.db")
    store.save_records(
        db,
        [
            article("1", "Ketamine for treatment-resistant depression: a randomized trial", "Patients were randomly assigned."),
            article("2", "Esketamine nasal spray for suicidal ideation", "An open-label study of 30 adults with depression."),
            article("3", "Ketamine anaesthesia in cats", "Cats were anaesthetised; no depression of breathing."),
        ],
    )
    config = parse_config(shipped_config_text(), "shipped")

    def summaries():
        return db.execute("SELECT * FROM work_summaries ORDER BY work_id").fetchall()

    def stored():
        return db.execute("SELECT * FROM work_relevance ORDER BY work_id").fetchall(), db.execute(
            "SELECT work_id, tag, category, evidence FROM work_tags ORDER BY work_id, tag"
        ).fetchall()

    assert classify.reclassify(db, config).works == 3
    shown = summaries()
    assert [row[0] for row in db.execute("SELECT relevance FROM work_summaries ORDER BY work_id")] == [
        "relevant",
        "relevant",
        "not_relevant",
    ]
    assert rebuild_work_summaries(db) == 3 and summaries() == shown  # written as a full summary would be

    before = stored()
    results = classify.classify_works(db, config, [1, 2, 3], dry_run=True)
    assert store.save_classifications(db, results, now="2030-01-01 00:00:00") == 0
    assert stored() == before  # classified_at included: nothing was rewritten
    assert db.execute("SELECT COUNT(*) FROM work_summary_queue").fetchone() == (0,)

    changed = parse_config(shipped_config_text().replace("exclude_terms = []", 'exclude_terms = ["randomized"]'), "changed")
    report = classify.reclassify(db, changed)
    assert report.changed == [(1, "relevant", "not_relevant")]
    assert db.execute("SELECT relevance FROM work_summaries WHERE work_id = 1").fetchone() == ("not_relevant",)
    after = summaries()
    assert after != shown
    rebuild_work_summaries(db)
    assert summaries() == after
    assert db.execute("SELECT COUNT(DISTINCT vocabulary_hash) FROM work_relevance").fetchone() == (
        1,
    )  # every row says its vocabulary


def _recorded_chunk(task):
    """classify._classify_chunk, noting the process that ran it (a module function: workers unpickle it by name)."""
    import os

    with open(os.environ["CLASSIFY_TEST_PIDS"], "a") as out:
        out.write(f"{os.getpid()}\n")
    return _classify_chunk(task)


def test_reclassify_in_worker_processes_writes_what_one_process_writes(tmp_path, monkeypatch):
    """Chunks classified by forked workers are stored in the same order with the same rows as alone."""
    import os
    import shutil

    from crawler import classify, store
    from tests.helpers.classify_corpus import article

    db = store.open_db(tmp_path / "one.db")
    store.save_records(
        db,
        [
            article(str(n), title, abstract)
            for n, (title, abstract) in enumerate(
                [
                    ("Ketamine for treatment-resistant depression: a randomized trial", "Patients were randomly assigned."),
                    ("Esketamine nasal spray for suicidal ideation", "An open-label study of 30 adults with depression."),
                    ("Ketamine anaesthesia in cats", "Cats were anaesthetised; no depression of breathing."),
                    ("Oral ketamine in older adults with depression", "A retrospective chart review of 40 patients."),
                    ("Arketamine in mice", "Mice received arketamine in the forced swim test and tail suspension test."),
                ],
                start=1,
            )
        ],
    )
    db.close()
    shutil.copy(tmp_path / "one.db", tmp_path / "two.db")
    config = parse_config(shipped_config_text(), "shipped")
    monkeypatch.setattr(classify, "CHUNK", 2)
    monkeypatch.setattr(classify, "PARALLEL_MIN_WORKS", 0)
    pids = tmp_path / "pids"
    monkeypatch.setenv("CLASSIFY_TEST_PIDS", str(pids))
    monkeypatch.setattr(classify, "_classify_chunk", _recorded_chunk)

    def rows(name, workers):
        db = store.open_db(tmp_path / name)
        report = classify.reclassify(db, config, workers=workers)
        tables = [
            db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("work_relevance", "work_tags", "work_summaries")
        ]
        db.close()
        return report, tables

    alone = rows("one.db", 1)
    assert not pids.exists()  # one process: no worker
    together = rows("two.db", 2)
    assert {int(pid) for pid in pids.read_text().split()} - {os.getpid()}  # the chunks went to workers
    assert len(pids.read_text().split()) == 3
    assert together == alone
    assert alone[0].works == 5 and all(alone[1])


def test_sample_size_expressions_match_as_written_with_a_word_start():
    """The sample-size expressions start with their first character (the engine skips every other position), the
    word-start check after it: the same matches and groups as written with ``\\b`` first, on random texts."""
    import random
    import re

    from crawler import evidence

    written = {
        evidence._N_EQUALS: re.compile(r"\bn\s*=\s*(\d{1,3}(?:[ ,]\d{3})+|\d+)"),
        evidence._N_PEOPLE: re.compile(
            r"\b(\d{1,3}(?:,\d{3})+|\d+)\s+(?:[a-z-]+\s+){0,3}?(patients|participants|adults|subjects|individuals|people|"
            r"veterans|women|men|adolescents|children|outpatients|inpatients|persons|users|cases|respondents)\b"
        ),
    }
    rng = random.Random(3)
    pieces = [
        "1",
        "23",
        "456",
        ",",
        ", ",
        " ",
        "n",
        "an",
        "=",
        " = ",
        "_",
        "x",
        "\u00e9",
        "\u0663",
        "-",
        " patients",
        " men",
        " old women",
    ]
    pieces += ["12 patients", "1,234 adults", "n = 40", "n=1 200", "x7 people", "2024 cases", "5,12 men"]
    matched = 0
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        for fast, plain in written.items():
            found = [(m.span(), m.groups()) for m in fast.finditer(text)]
            assert found == [(m.span(), m.groups()) for m in plain.finditer(text)], text
            matched += bool(found)
    assert matched > 500


def test_sentence_separators_split_as_written():
    """Focus and evidence split abstracts with expressions that start with the whitespace every separator starts
    with (the engine tries only whitespace): the same pieces as the expressions as first written, on random texts
    of sentence ends, brackets, line breaks and other whitespace."""
    import random
    import re

    from crawler import evidence, focus

    written = {
        focus._SENTENCE: re.compile(r"(?<=[.!?])\s+(?=[a-z0-9(\[])|\n+"),
        evidence._SENTENCE: re.compile(r"(?<=[.!?;])\s+(?=[a-z0-9(])|\n+"),
    }
    rng = random.Random(1)
    pieces = [
        "a",
        "b",
        "1",
        ".",
        "!",
        "?",
        ";",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        "(",
        "[",
        "X",
        "\u00a0",
        "\u2028",
        ". ",
        ".\n",
        "; ",
    ]
    parted = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 15)))
        for fast, plain in written.items():
            split = fast.split(text)
            assert split == plain.split(text), repr(text)
            parted += len(split) > 1
        # the sentences, found from the punctuation when the text has no line break, with where they stand
        parts = written[focus._SENTENCE].split(text)
        assert focus.sentences(text) == [s.strip() for s in parts if s and s.strip()], repr(text)
        assert all(text[start:end] == s for start, end, s in focus.sentence_spans(text)), repr(text)
        parts = written[evidence._SENTENCE].split(text)
        assert evidence.sentences(text) == [s for s in parts if s.strip()], repr(text)
        assert all(text[start : start + len(s)] == s for start, s in evidence.sentence_spans(text)), repr(text)
    assert parted > 10000


def _reference_preprint_server(record: dict) -> str | None:
    """classify._preprint_server as first written."""
    from crawler.classify import _PREPRINT_DOI, _PREPRINT_SERVERS

    journal = str(record.get("journal") or "").strip().lower()
    extra = record.get("extra") or {}
    if extra.get("europepmc_source") == "PPR":
        return "Europe PMC preprint record (PPR)"
    if journal and any(journal.startswith(server) for server in _PREPRINT_SERVERS):
        return f"preprint server '{record.get('journal')}'"
    for scheme, value in record.get("identifiers") or []:
        if scheme == "doi" and _PREPRINT_DOI.match(str(value)) and not journal:
            return f"medRxiv/bioRxiv DOI {value}"
    return None


def _reference_facts(records):
    """build_facts as first written (every text normalised as it comes, through one helper)."""
    from crawler.classify import RECORD_TYPE_ORDER, _as_dict, _source_rank, _strings
    from crawler.evidence import Facts
    from crawler.terms import normalize_text

    items = sorted((_as_dict(r) for r in records), key=_source_rank)
    doc = Doc()

    def add(target, value):
        text = normalize_text(value) if isinstance(value, str) else ""
        if text and text not in target:
            target.append(text)

    facts = Facts(doc=doc)
    for record in items:
        extra = record.get("extra") or {}
        add(doc.titles, record.get("title"))
        for key in ("official_title", "scientific_title"):
            add(doc.titles, extra.get(key))
        add(doc.abstracts, record.get("abstract"))
        for value in _strings(record.get("keywords")):
            add(doc.keywords, value)
        for value in _strings(record.get("mesh_terms")):
            add(doc.mesh, value)
        for value in _strings(record.get("publication_types")):
            if value.strip().lower() not in facts.publication_types:
                facts.publication_types.append(value.strip().lower())
        for value in _strings(extra.get("conditions")):
            add(doc.trial, value)
        for item in extra.get("interventions") or []:
            if not isinstance(item, dict):
                continue
            for key in ("name", "drugNames"):
                add(doc.trial, item.get(key))
            for value in _strings(item.get("other_names")):
                add(doc.trial, value)
            add(doc.abstracts, item.get("description"))
        facts.record_types.add(record.get("record_type") or "other")
        facts.sources.add(str(record.get("source", "")).split(":")[0])
        facts.preprint_server = facts.preprint_server or _reference_preprint_server(record)
        if record.get("trial") and not facts.trial:
            facts.trial = dict(record["trial"])
        if any(isinstance(link, dict) and link.get("relation") == "registered_as" for link in record.get("links") or []):
            facts.registered = True
        if not facts.published_on and record.get("published_on"):
            facts.published_on = record["published_on"]
    facts.record_type = next((t for t in RECORD_TYPE_ORDER if t in facts.record_types), "other")
    enrollment = facts.trial.get("enrollment") if facts.trial else None
    if not enrollment:
        enrollment = next(
            ((r.get("extra") or {}).get("target_enrolment") for r in items if (r.get("extra") or {}).get("target_enrolment")),
            None,
        )
    facts.enrollment = enrollment if isinstance(enrollment, int) and enrollment > 0 else None
    return facts


def test_build_facts_as_first_written(corpus):
    """build_facts reads short texts through a memo and each record's fields once: the same facts as first written,
    on the labelled set (one and two records per work) and on records with blank, odd and repeated values."""
    from dataclasses import asdict

    from crawler.classify import build_facts

    def facts_of(facts):
        return asdict(facts) | {
            "doc": (facts.doc.titles, facts.doc.abstracts, facts.doc.keywords, facts.doc.trial, facts.doc.mesh)
        }

    works = [work.records for work in corpus.values()]
    works += [a.records + b.records for a, b in zip(list(corpus.values())[::2], list(corpus.values())[1::2])]
    odd = {
        "source": "ctgov",
        "source_id": "NCT1",
        "record_type": "trial_registration",
        "title": "  Ketamine  Trial ",
        "keywords": ["", "  ", "TRD", "trd", 7, None, "Caf\u00e9\u00a0au lait", "\u200b"],
        "mesh_terms": "Ketamine",
        "publication_types": [" Review ", "review", "", 3],
        "extra": {
            "official_title": "Ketamine trial",
            "conditions": ["Depression", "depression", "\u3000"],
            "interventions": [
                {"name": "Ketamine", "drugNames": ["x"], "other_names": ["Ketalar", ""], "description": "IV  drug"},
                "x",
            ],
            "target_enrolment": 40,
        },
    }
    works += [[odd], [odd, {"source": "pubmed", "source_id": "1", "title": "Ketamine trial", "keywords": ("TRD",)}]]
    preprints = [
        {"journal": journal, "extra": extra, "identifiers": identifiers}
        for journal in (None, "", "  ", "medRxiv", "bioRxiv (Cold Spring Harbor)", "The Lancet", 0)
        for extra in (None, {}, {"europepmc_source": "PPR"}, {"europepmc_source": "MED"})
        for identifiers in (
            None,
            [],
            [("doi", "10.1101/2024.01.02.24300001")],
            [("pmid", "1"), ("doi", "10.1101/123456v2")],
            [("doi", "10.1/x")],
        )
    ]
    works += [[record] for record in preprints]
    for records in works:
        assert facts_of(build_facts(records)) == facts_of(_reference_facts(records)), records
    assert sum(build_facts([record]).preprint_server is not None for record in preprints) > 50


def test_every_text_of_a_works_doc_is_normalised(corpus):
    """What build_facts puts in a work's Doc is in normalize_text's form, as its cache says (its scans then need not look
    for other whitespace, nor lower-case the text to know its case): on the labelled set, one and two records per work,
    and records with blank, odd and repeated values."""
    from crawler.classify import build_facts
    from crawler.terms import normalize_text

    works = [work.records for work in corpus.values()]
    works += [a.records + b.records for a, b in zip(list(corpus.values())[::2], list(corpus.values())[1::2])]
    odd = {
        "source": "ctgov",
        "title": " \tKetamine\u00a0 Trial\x1c ",
        "abstract": "Background:\n\nKETAMINE\u2009works.\r\nMethods: \u201cIV\u201d\u200bdrug\x0b\x85.",
        "keywords": ["TRD\t", "É–x"],
        "mesh_terms": ["Ketamine", " Depression\n"],
        "extra": {
            "official_title": "Ketamine\u2028trial",
            "conditions": ["Depression\x1f", "\u3000"],
            "interventions": [{"name": "Ketamine\r", "other_names": ["Ketalar"], "description": "IV\n\n drug"}],
        },
    }
    works += [[odd], [odd, {"source": "pubmed", "title": "Ketamine\n\ntrial", "abstract": "One. Two\n\nthree"}]]
    texts = 0
    for records in works:
        doc = build_facts(records).doc
        assert doc.cache.normalised
        for text in doc.titles + doc.abstracts + doc.keywords + doc.trial + doc.mesh:
            assert normalize_text(text) == text, text
            texts += 1
    assert texts > 1_000


def test_titles_and_abstracts_normalised_as_normalize_text_does():
    """build_facts lower-cases an ASCII text with single plain spaces between words (or blank lines between paragraphs,
    made spaces) as it is; every other text goes through normalize_text: the same result on random texts of every kind
    of space, dash, quote and control character."""
    import random

    from crawler.classify import _normalized
    from crawler.terms import normalize_text

    rng = random.Random(23)
    pieces = [
        "Ketamine",
        "TRD",
        "a",
        "x-1",
        " ",
        "  ",
        "\t",
        "\n",
        "\n\n",
        "\n\n",
        "\r",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x1f",
        "\x00",
        "\x7f",
    ]
    pieces += ["\u00a0", "\u2009", "\u2013", "\u2019", "É", "é", "ß", ".", ":", "(", "\u3000", "\u2028", "\x85"]
    fast = 0
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert _normalized(text) == normalize_text(text), repr(text)
        fast += "\n\n" in text and text.replace("\n\n", " ").isprintable() and "  " not in text.replace("\n\n", " ")
    assert fast > 300


WARM_UP_SCRIPT = """
import dataclasses, json, sys
from crawler.classify import build_vocabulary, classify_records, warm_up
from crawler.config import parse_config, shipped_config_text
from tests.test_classify import TODAY
from tests.helpers.classify_corpus import load_corpus
vocabulary = build_vocabulary(parse_config(shipped_config_text(), "shipped").topic)
if sys.argv[1] == "warm":
    warm_up(vocabulary)
results = {w.key: dataclasses.asdict(classify_records(w.records, vocabulary, TODAY)) for w in load_corpus()}
print(json.dumps(results, sort_keys=True, default=str))
"""


def test_a_warmed_up_classifier_classifies_as_a_cold_one():
    """warm_up (run by the fetch worker and the writer while they wait for the first page) changes no classification:
    the labelled set classified in a fresh process after it equals the set classified in a fresh process without it."""
    root = Path(__file__).resolve().parent.parent
    outputs = {
        how: subprocess.run(
            [sys.executable, "-c", WARM_UP_SCRIPT, how], cwd=root, capture_output=True, text=True, check=True
        ).stdout
        for how in ("cold", "warm")
    }
    cold = json.loads(outputs["cold"])
    assert len(cold) > 100 and any(result["tags"] for result in cold.values())
    assert outputs["warm"] == outputs["cold"]


def test_a_classification_computed_ahead_is_given_its_work_as_dataclasses_replace_would():
    """A work's classification computed ahead (for its one record) is a copy with the work's id: equal to
    ``dataclasses.replace``'s, with its fields in the same order, the original left as it was."""
    import dataclasses

    from crawler.classify import _of_work

    vocabulary = build_vocabulary(parse_config(shipped_config_text()).topic)
    record = Record(source="pubmed", source_id="1", record_type="article", title="Ketamine for depression: an RCT")
    original = classify_records([record.to_dict()], vocabulary, TODAY, None)
    copied = _of_work(original, 42)
    assert copied == dataclasses.replace(original, work_id=42) and type(copied) is type(original)
    assert list(vars(copied).items()) == list(vars(dataclasses.replace(original, work_id=42)).items())
    assert original.work_id is None and copied.tags == original.tags
