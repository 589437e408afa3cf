"""Synthetic PubMed records of one topic, in efetch's wire format, and a loopback E-utilities server.

Used by ``bench/pipeline.py`` (the whole crawl) and ``bench/parse_pubmed.py`` (parsers alone).

The records look like a real single-topic corpus (ketamine and depression), which is what makes
deduplication expensive: titles are built from the phrases such papers use, so many of them share
an ending ("… in treatment-resistant depression", "…: a randomized controlled trial") or an
opening ("Esketamine nasal spray …"); first authors follow a Zipf law (a few prolific groups
write many papers); abstracts are structured, ~1,500 characters, with the topic's vocabulary;
half the records carry a reference list, as efetch returns them. Every record has its own PMID
(and usually a DOI, with its journal's publisher prefix and in publication order within the journal, as real ones):
they are all different works, as PubMed's are. Everything is deterministic
(record ``i`` is always the same XML).

The server answers ``esearch.fcgi`` (POST, JSON, ``usehistory=y``) with the number of records
whose create date (``crdt``) falls in ``mindate..maxdate`` and ``efetch.fcgi`` (GET, XML) with the
``retstart``/``retmax`` slice of that window, as NCBI's History server does. Given a
:class:`RenderedCorpus` (``bench/pipeline.py`` makes one before the crawl starts), the server sends
the records' bytes as they were rendered once into a file, as NCBI's servers, on their own machines,
cost the crawl nothing: generating the XML on each request took ~0.4 ms of CPU per record on the
machine under test, ~15 % of what the crawl itself spends, on the same cores. ``dates_of`` serves the first ``total``
records of a larger corpus, with its create dates (the start of its backfill).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import random
import threading
from array import array
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2026, 10, 31)

OPENINGS = [
    "Ketamine",
    "Esketamine",
    "Esketamine nasal spray",
    "Intravenous ketamine",
    "Oral ketamine",
    "Intranasal esketamine",
    "Arketamine",
    "Repeated ketamine infusions",
    "Single-dose ketamine",
    "Subanesthetic ketamine",
    "Ketamine-assisted psychotherapy",
    "Adjunctive esketamine",
    "Racemic ketamine",
    "Low-dose ketamine",
    "(R)-ketamine",
    "Hydroxynorketamine",
]
MIDDLES = [
    "versus electroconvulsive therapy",
    "versus midazolam",
    "compared with placebo",
    "and rapid reduction of suicidal ideation",
    "for major depressive disorder",
    "in adolescents",
    "in older adults",
    "in veterans",
    "in the emergency department",
    "as maintenance treatment",
    "and cognitive function",
    "and dissociative symptoms",
    "and blood pressure",
    "and anhedonia",
    "and sleep",
    "and neuroplasticity markers",
    "and glutamate signalling",
    "and BDNF levels",
    "in routine clinical practice",
    "in a community setting",
    "after 12 weeks",
    "over 6 months",
    "and relapse prevention",
    "and functional connectivity",
]
ENDINGS = [
    "in treatment-resistant depression",
    "in treatment-resistant depression: a randomized controlled trial",
    "in major depressive disorder",
    "in bipolar depression",
    "in patients with suicidal ideation",
    "in posttraumatic stress disorder",
    "for depression: a systematic review and meta-analysis",
    "in depression: a narrative review",
    "in treatment-resistant depression: a real-world study",
    "in depression: a retrospective cohort study",
    "in treatment-resistant depression: a case report",
    "in depressed patients: a pilot study",
    "in depression: study protocol for a randomized controlled trial",
    "in treatment-resistant depression: results from a phase 3 trial",
    "in depression: a secondary analysis",
    "in depression",
]
SURNAMES = (
    "Zarate Krystal Murrough Sanacora Mathew Charney Duman Berman Fava Iosifescu Papakostas Nierenberg Daly Singh Fedgchin "
    "Popova Wajs Canuso Ionescu Wilkinson Phillips Lally Ballard Park Kadriu Henter Feder Price Abdallah Averill Short "
    "Loo Glue Fam Lapidus Kishimoto Hashimoto Zhang Wang Li Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin "
    "Luo Gao Zheng Liang Song Tang Xie Han Feng Deng Cao Peng Zeng Dong Yuan Jiang Cai Lu Yu Pan Du Ye Smith Johnson "
    "Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor "
    "Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King "
    "Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Muller "
    "Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Rossi Russo Ferrari Esposito Bianchi Romano "
    "Colombo Ricci Marino Greco Bruno Gallo Conti Costa Silva Santos Oliveira Souza Lima Pereira Ferreira Alves Sato "
    "Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Kim Choi Jung Kang Cho Yoon Jang Lim Han Oh"
).split()
GIVEN = "Anna Ben Carlos Dawn Elena Felix Grace Hiro Ines Jonas Kira Leo Maya Nils Omar Priya Qing Rafael Sara Tomas Uma Victor Wei Xin Yuki Zoe".split()
JOURNALS = [
    ("J Affect Disord", "Journal of affective disorders", "0165-0327"),
    ("JAMA Psychiatry", "JAMA psychiatry", "2168-6238"),
    ("Am J Psychiatry", "The American journal of psychiatry", "0002-953X"),
    ("Biol Psychiatry", "Biological psychiatry", "0006-3223"),
    ("Mol Psychiatry", "Molecular psychiatry", "1359-4184"),
    ("Neuropsychopharmacology", "Neuropsychopharmacology", "0893-133X"),
    ("Lancet Psychiatry", "The lancet. Psychiatry", "2215-0366"),
    ("Front Psychiatry", "Frontiers in psychiatry", "1664-0640"),
    ("Psychiatry Res", "Psychiatry research", "0165-1781"),
    ("J Clin Psychiatry", "The Journal of clinical psychiatry", "0160-6689"),
    ("BMC Psychiatry", "BMC psychiatry", "1471-244X"),
    ("Transl Psychiatry", "Translational psychiatry", "2158-3188"),
]
#: each journal's DOIs: its publisher's prefix and a journal code, as real DOIs are made (a corpus's DOIs come from a
#: few publishers and, within a journal, in publication order, so a DOI index grows at a few places, not everywhere)
DOI_STEMS = {
    "J Affect Disord": "10.1016/j.jad",
    "JAMA Psychiatry": "10.1001/jamapsychiatry",
    "Am J Psychiatry": "10.1176/appi.ajp",
    "Biol Psychiatry": "10.1016/j.biopsych",
    "Mol Psychiatry": "10.1038/s41380",
    "Neuropsychopharmacology": "10.1038/s41386",
    "Lancet Psychiatry": "10.1016/S2215-0366",
    "Front Psychiatry": "10.3389/fpsyt",
    "Psychiatry Res": "10.1016/j.psychres",
    "J Clin Psychiatry": "10.4088/JCP",
    "BMC Psychiatry": "10.1186/s12888",
    "Transl Psychiatry": "10.1038/s41398",
}
SENTENCES = {
    "BACKGROUND": [
        "Ketamine, an N-methyl-D-aspartate receptor antagonist, has rapid antidepressant effects in treatment-resistant depression.",
        "Esketamine nasal spray was approved for adults with treatment-resistant depression and for depressive symptoms with acute suicidal ideation or behavior.",
        "Up to one third of patients with major depressive disorder do not respond to two or more antidepressants.",
        "The durability of response after repeated infusions remains uncertain.",
        "Dissociation and transient increases in blood pressure are common adverse effects.",
    ],
    "METHODS": [
        "In this randomized, double-blind, placebo-controlled trial, adults were assigned to intravenous ketamine (0.5 mg/kg) or midazolam.",
        "We conducted a retrospective cohort study of patients treated in a specialised outpatient clinic between 2015 and 2022.",
        "Depression severity was measured with the Montgomery-Asberg Depression Rating Scale (MADRS) at baseline, 24 hours and day 28.",
        "We searched PubMed, Embase and PsycINFO and pooled standardized mean differences with a random-effects model.",
        "Suicidal ideation was assessed with the Columbia Suicide Severity Rating Scale.",
        "Participants received esketamine 56 or 84 mg twice weekly in addition to an oral antidepressant.",
    ],
    "RESULTS": [
        "A total of 236 participants were randomized; response rates were 55.4% and 41.2%, respectively.",
        "Remission at day 28 was more frequent with ketamine (odds ratio 2.1, 95% CI 1.3-3.4).",
        "Mean MADRS scores decreased by 14.2 points with active treatment and 9.8 points with placebo.",
        "No serious adverse events were reported; dissociative symptoms resolved within two hours.",
        "Twenty-one studies with 1,874 patients met the inclusion criteria.",
        "Relapse occurred in 27% of responders during the maintenance phase.",
    ],
    "CONCLUSIONS": [
        "Ketamine produced rapid and clinically meaningful reductions in depressive symptoms.",
        "These findings support the use of esketamine as an adjunctive treatment in treatment-resistant depression.",
        "Larger trials with longer follow-up are needed to establish long-term safety.",
        "Ketamine may reduce suicidal ideation independently of its effect on depressive symptoms.",
    ],
}
MESH = [
    "Ketamine",
    "Depressive Disorder, Treatment-Resistant",
    "Depressive Disorder, Major",
    "Antidepressive Agents",
    "Humans",
    "Adult",
    "Female",
    "Male",
    "Middle Aged",
    "Suicidal Ideation",
    "Administration, Intranasal",
    "Infusions, Intravenous",
    "Treatment Outcome",
    "Bipolar Disorder",
    "Excitatory Amino Acid Antagonists",
    "Double-Blind Method",
]
PUBTYPES = [
    ["Journal Article"],
    ["Randomized Controlled Trial", "Journal Article"],
    ["Journal Article", "Review"],
    ["Systematic Review", "Meta-Analysis", "Journal Article"],
    ["Case Reports", "Journal Article"],
    ["Observational Study", "Journal Article"],
    ["Clinical Trial, Phase III", "Journal Article"],
]


def _zipf_index(rng: random.Random, n: int) -> int:
    """An index in 0..n-1, small ones much more likely (prolific first authors)."""
    return min(n - 1, int(n ** rng.random()) - 1)


def crdt_of(i: int, total: int) -> dt.date:
    """Create date of record ``i``: records spread evenly, in order, over FIRST_DAY..LAST_DAY."""
    span = (LAST_DAY - FIRST_DAY).days
    return FIRST_DAY + dt.timedelta(days=(i * span) // total)


def first_index_on_or_after(day: dt.date, total: int) -> int:
    """The first record index whose crdt is on or after ``day`` (crdt_of is monotonic)."""
    lo, hi = 0, total
    while lo < hi:
        mid = (lo + hi) // 2
        if crdt_of(mid, total) < day:
            lo = mid + 1
        else:
            hi = mid
    return lo


SPECIFICS = (
    "response remission relapse MADRS HAM-D QIDS anhedonia cognition sleep inflammation cytokines EEG gamma-power MRI "
    "connectivity hippocampal prefrontal glutamate GABA mTOR BDNF AMPA dissociation psychotomimetic craving "
    "blood-pressure heart-rate urinary hepatic dosing titration booster tapering discontinuation adherence cost "
    "utilization telehealth at-home outpatient inpatient emergency suicide-attempts hospitalization readmission "
    "quality-of-life functioning employment caregivers pharmacokinetics metabolites norketamine genotype "
    "polymorphisms biomarkers expectancy blinding placebo-response sex-differences obesity insomnia"
).split()


def title_of(rng: random.Random) -> str:
    """A title as the topic's papers are titled: common openings and endings, a specific middle."""
    parts = [rng.choice(OPENINGS)]
    if rng.random() < 0.7:
        parts.append(rng.choice(MIDDLES))
    specifics = rng.sample(SPECIFICS, rng.randint(1, 3))
    parts.append("and " + " and ".join(s.replace("-", " ") for s in specifics))
    if rng.random() < 0.3:
        parts.append(f"in {rng.randint(12, 2400)} patients")
    parts.append(rng.choice(ENDINGS))
    return " ".join(parts) + "."


def article_xml(i: int, total: int) -> str:
    """Record ``i`` of a corpus of ``total`` as one <PubmedArticle> element."""
    rng = random.Random(i * 7919 + 17)
    pmid = 20000000 + i
    crdt = crdt_of(i, total)
    year = crdt.year
    abbr, journal, issn = JOURNALS[_zipf_index(rng, len(JOURNALS))]
    title = escape(title_of(rng))
    authors = []
    for k in range(rng.randint(2, 9)):
        surname = SURNAMES[_zipf_index(rng, len(SURNAMES))] if k == 0 else rng.choice(SURNAMES)
        given = rng.choice(GIVEN)
        initials = given[0] + (rng.choice("ABCDEFGHJKLMNPRST") if rng.random() < 0.4 else "")
        authors.append(
            f'<Author ValidYN="Y"><LastName>{surname}</LastName><ForeName>{given}{" " + initials[1] if len(initials) > 1 else ""}</ForeName>'
            f"<Initials>{initials}</Initials><AffiliationInfo><Affiliation>Department of Psychiatry, University Hospital {rng.randint(1, 400)}, "
            f"City {rng.randint(1, 90)}.</Affiliation></AffiliationInfo></Author>"
        )
    abstract = "".join(
        f'<AbstractText Label="{label}" NlmCategory="{label}">{escape(" ".join(rng.sample(pool, min(len(pool), rng.randint(2, 3)))))}</AbstractText>'
        for label, pool in SENTENCES.items()
    )
    mesh = "".join(
        f'<MeshHeading><DescriptorName UI="D{rng.randint(100000, 999999)}" MajorTopicYN="{"Y" if rng.random() < 0.3 else "N"}">{escape(m)}</DescriptorName>'
        + ('<QualifierName UI="Q000627" MajorTopicYN="N">therapeutic use</QualifierName>' if rng.random() < 0.5 else "")
        + "</MeshHeading>"
        for m in rng.sample(MESH, rng.randint(4, 10))
    )
    pubtypes = "".join(f'<PublicationType UI="D016428">{p}</PublicationType>' for p in rng.choice(PUBTYPES))
    volume, page = rng.randint(1, 400), rng.randint(1, 2000)
    rng.randint(1000, 9999)  # drawn as when DOIs had random prefixes: the records' other fields stay as they were
    doi = f"{DOI_STEMS[abbr]}.{year}.{i:07d}"
    elocation = f'<ELocationID EIdType="doi" ValidYN="Y">{doi}</ELocationID>' if rng.random() < 0.9 else ""
    refs = ""
    if rng.random() < 0.5:
        refs = (
            "<ReferenceList>"
            + "".join(
                f"<Reference><Citation>{rng.choice(SURNAMES)} {rng.choice(GIVEN)[0]}, et al. {escape(title_of(rng))} {rng.choice(JOURNALS)[0]}. "
                f"{rng.randint(1990, year)};{rng.randint(1, 300)}:{rng.randint(1, 900)}.</Citation>"
                f'<ArticleIdList><ArticleId IdType="pubmed">{rng.randint(10000000, 39999999)}</ArticleId></ArticleIdList></Reference>'
                for _ in range(rng.randint(10, 40))
            )
            + "</ReferenceList>"
        )
    keywords = "".join(
        f'<Keyword MajorTopicYN="N">{k}</Keyword>'
        for k in rng.sample(["ketamine", "esketamine", "depression", "suicide", "NMDA", "TRD", "glutamate"], 3)
    )
    return f"""<PubmedArticle>
<MedlineCitation Status="MEDLINE" Owner="NLM" IndexingMethod="Automated">
<PMID Version="1">{pmid}</PMID>
<DateCompleted><Year>{year}</Year><Month>{crdt.month:02d}</Month><Day>{crdt.day:02d}</Day></DateCompleted>
<DateRevised><Year>{year}</Year><Month>{crdt.month:02d}</Month><Day>{crdt.day:02d}</Day></DateRevised>
<Article PubModel="Print-Electronic">
<Journal><ISSN IssnType="Electronic">{issn}</ISSN><JournalIssue CitedMedium="Internet"><Volume>{volume}</Volume><Issue>{rng.randint(1, 12)}</Issue>
<PubDate><Year>{year}</Year><Month>{crdt.strftime("%b")}</Month></PubDate></JournalIssue><Title>{journal}</Title><ISOAbbreviation>{abbr}</ISOAbbreviation></Journal>
<ArticleTitle>{title}</ArticleTitle>
<Pagination><StartPage>{page}</StartPage><EndPage>{page + 9}</EndPage><MedlinePgn>{page}-{page + 9}</MedlinePgn></Pagination>
{elocation}
<Abstract>{abstract}</Abstract>
<AuthorList CompleteYN="Y">{"".join(authors)}</AuthorList>
<Language>eng</Language>
<PublicationTypeList>{pubtypes}</PublicationTypeList>
<ArticleDate DateType="Electronic"><Year>{year}</Year><Month>{crdt.month:02d}</Month><Day>{crdt.day:02d}</Day></ArticleDate>
</Article>
<MedlineJournalInfo><Country>United States</Country><MedlineTA>{abbr}</MedlineTA><NlmUniqueID>{rng.randint(7000000, 9999999)}</NlmUniqueID><ISSNLinking>{issn}</ISSNLinking></MedlineJournalInfo>
<ChemicalList><Chemical><RegistryNumber>690G0D6V8H</RegistryNumber><NameOfSubstance UI="D007649">Ketamine</NameOfSubstance></Chemical></ChemicalList>
<CitationSubset>IM</CitationSubset>
<MeshHeadingList>{mesh}</MeshHeadingList>
<KeywordList Owner="NOTNLM">{keywords}</KeywordList>
</MedlineCitation>
<PubmedData>
<History><PubMedPubDate PubStatus="received"><Year>{year}</Year><Month>{crdt.month}</Month><Day>{crdt.day}</Day></PubMedPubDate>
<PubMedPubDate PubStatus="entrez"><Year>{year}</Year><Month>{crdt.month}</Month><Day>{crdt.day}</Day><Hour>6</Hour><Minute>0</Minute></PubMedPubDate>
<PubMedPubDate PubStatus="pubmed"><Year>{year}</Year><Month>{crdt.month}</Month><Day>{crdt.day}</Day><Hour>6</Hour><Minute>0</Minute></PubMedPubDate></History>
<PublicationStatus>ppublish</PublicationStatus>
<ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>{f'<ArticleId IdType="doi">{doi}</ArticleId>' if elocation else ""}<ArticleId IdType="pii">S0165-{i:07d}</ArticleId></ArticleIdList>
{refs}
</PubmedData>
</PubmedArticle>
"""


HEADER = (
    '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2019//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_190101.dtd">\n<PubmedArticleSet>\n'
)


def efetch_body(start: int, stop: int, total: int) -> bytes:
    """Records start..stop-1 as an efetch answer."""
    return (HEADER + "".join(article_xml(i, total) for i in range(start, stop)) + "</PubmedArticleSet>\n").encode()


def _rendered_chunk(bounds: tuple[int, int, int]) -> tuple[bytes, list[int]]:
    """Records start..stop-1 as bytes, with each one's length."""
    start, stop, total = bounds
    articles = [article_xml(i, total).encode() for i in range(start, stop)]
    return b"".join(articles), [len(a) for a in articles]


class RenderedCorpus:
    """Records 0..total-1 rendered once into ``path`` (in order, with their offsets): :meth:`body` reads a slice of
    the file, byte for byte :func:`efetch_body`'s answer, without generating anything."""

    CHUNK = 500

    def __init__(self, total: int, path: str | os.PathLike, processes: int | None = None, dates_of: int | None = None):
        self.total = total
        self.offsets = array("q", [0])
        dates_of = max(dates_of or total, total)
        chunks = [(start, min(start + self.CHUNK, total), dates_of) for start in range(0, total, self.CHUNK)]
        self.file = open(path, "w+b")  # noqa: SIM115 - open while the corpus is served; closed by close()
        with mp.get_context("fork").Pool(processes or os.cpu_count() or 1) as pool:
            for text, lengths in pool.imap(_rendered_chunk, chunks):
                for length in lengths:
                    self.offsets.append(self.offsets[-1] + length)
                self.file.write(text)
        self.file.flush()

    def body(self, start: int, stop: int) -> bytes:
        """Records start..stop-1 as an efetch answer (the same bytes as ``efetch_body(start, stop, total)``)."""
        offset = self.offsets[start]
        articles = os.pread(self.file.fileno(), self.offsets[stop] - offset, offset)
        return HEADER.encode() + articles + b"</PubmedArticleSet>\n"

    def close(self) -> None:
        """Close and delete the file."""
        self.file.close()
        os.unlink(self.file.name)


def _day(value: str) -> dt.date:
    return dt.date(*map(int, value.split("/")))


def make_server(
    total: int, host: str = "127.0.0.1", port: int = 0, rendered: RenderedCorpus | None = None, dates_of: int | None = None
) -> ThreadingHTTPServer:
    """An E-utilities stand-in holding ``total`` records (serve with ``serve_forever``); with ``rendered``, efetch
    answers are read from it, else generated on each request. ``dates_of``: the records are the first ``total`` of a
    corpus of that many (the same records, with that corpus's create dates: the start of a larger backfill)."""
    dates_of = max(dates_of or total, total)

    def first_index(day: dt.date) -> int:
        return min(first_index_on_or_after(day, dates_of), total)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if not self.path.endswith("esearch.fcgi"):
                self.send_error(404)
                return
            lo = first_index(_day(form["mindate"]))
            hi = first_index(_day(form["maxdate"]) + dt.timedelta(days=1))
            if form.get("datetype") != "crdt":
                lo = hi = 0
            payload = {
                "header": {"type": "esearch", "version": "0.3"},
                "esearchresult": {
                    "count": str(hi - lo),
                    "retmax": "0",
                    "retstart": "0",
                    "querykey": "1",
                    "webenv": f"MCID_{lo}_{hi}",
                    "idlist": [],
                    "translationset": [],
                    "querytranslation": form.get("term", ""),
                },
            }
            self._send(json.dumps(payload).encode(), "application/json; charset=UTF-8")

        def do_GET(self):
            url = urlparse(self.path)
            if not url.path.endswith("efetch.fcgi"):
                self.send_error(404)
                return
            args = {k: v[0] for k, v in parse_qs(url.query).items()}
            _, lo, hi = args["WebEnv"].split("_")
            start = int(lo) + int(args.get("retstart", 0))
            stop = min(int(hi), start + int(args.get("retmax", 20)))
            body = rendered.body(start, stop) if rendered is not None else efetch_body(start, stop, dates_of)
            self._send(body, "text/xml; charset=UTF-8")

    return ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(
    total: int, rendered: RenderedCorpus | None = None, dates_of: int | None = None
) -> tuple[ThreadingHTTPServer, str]:
    server = make_server(total, rendered=rendered, dates_of=dates_of)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"
