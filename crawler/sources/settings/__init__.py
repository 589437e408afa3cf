"""The keys each source's table takes (``[sources.<name>]``, ``[[feeds]]``, ``[[pages]]``), one module per source
module, holding its ``Settings`` and the defaults they name: importing one imports :mod:`crawler.settings` and nothing
of the source's fetching and parsing code (requests, lxml, feedparser, BeautifulSoup…), so loading the configuration
imports no source module. See :data:`crawler.sources.SETTINGS`."""
