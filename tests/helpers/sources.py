"""Source sections of a test config pointing at loopback servers, and the servers' answers."""

from __future__ import annotations

import json

from werkzeug import Response

STUDIES = "/api/v2/studies"


CONDITIONS = "depression OR treatment resistant depression"


INTERVENTIONS = "ketamine OR esketamine"


def source_config(make_config, httpserver, **extra):
    settings = {
        "enabled": True,
        "base_url": httpserver.url_for("/api/v2/"),
        "conditions": CONDITIONS,
        "interventions": INTERVENTIONS,
        "page_size": 1000,
        "min_interval": 0,
        **extra,
    }
    lines = ["[sources.clinicaltrials]"] + [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return make_config("\n".join(lines) + "\n")


def serve_pages(httpserver, pages: dict):
    """Answer /studies by pageToken: ``{None: body_of_first_page, token: body, ...}``.

    A value may be ``(body, status)`` or ``(body, status, content_type)``.
    """

    def handler(request):
        answer = pages[request.args.get("pageToken")]
        body, status, ctype = (
            (answer + ("application/json",))[:3] if isinstance(answer, tuple) else (answer, 200, "application/json")
        )
        return Response(body, status=status, content_type=ctype)

    httpserver.expect_request(STUDIES, method="GET").respond_with_handler(handler)


def crossref_config(make_config, httpserver, **extra):
    settings = {
        "enabled": "true",
        "base_url": json.dumps(httpserver.url_for("/")),
        "query": '"ketamine esketamine depression"',
        "types": '["journal-article", "posted-content"]',
        "page_size": "3",
        "max_pages": "5",
        "slice_days": "3650",
        "min_interval": "0",
    }
    settings.update({k: str(v) for k, v in extra.items()})
    settings = {k: v for k, v in settings.items() if v != "None"}  # None: leave the key out
    return make_config("\n[sources.crossref]\n" + "\n".join(f"{k} = {v}" for k, v in settings.items()) + "\n")


def unreachable(port: int, path: str = "/") -> str:
    """PubMed on a closed loopback port: connection refused."""
    return f"""
[sources.pubmed]
enabled = true
base_url = "http://127.0.0.1:{port}{path}"
query = "ketamine"
min_interval = 0
"""
