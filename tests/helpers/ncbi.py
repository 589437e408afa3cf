"""A fake NCBI E-utilities server (esearch/efetch in their wire format) on pytest-httpserver."""

from __future__ import annotations

from werkzeug import Response

from tests.conftest import fixture_bytes


def esearch_body(count: int) -> bytes:
    return fixture_bytes("pubmed", "esearch_template.json").replace(b"__COUNT__", str(count).encode())


class FakeNcbi:
    """Answers esearch by datetype and efetch by retstart; records nothing itself (httpserver.log does)."""

    def __init__(self, counts: dict[str, int], pages: dict[int, bytes], fail_at: int | None = None):
        self.counts, self.pages, self.fail_at = counts, pages, fail_at

    def esearch(self, request):
        return Response(esearch_body(self.counts.get(request.form["datetype"], 0)), content_type="application/json")

    def efetch(self, request):
        start = int(request.args["retstart"])
        if self.fail_at is not None and start == self.fail_at:
            return Response("<html><body>502 Bad Gateway</body></html>", status=502, content_type="text/html")
        return Response(self.pages[start], content_type="text/xml")

    def install(self, httpserver):
        httpserver.expect_request("/esearch.fcgi", method="POST").respond_with_handler(self.esearch)
        httpserver.expect_request("/efetch.fcgi", method="GET").respond_with_handler(self.efetch)
