"""A source's fetch and parsing in a second process, beside the one that writes the database.

In a backfill the crawling process does everything in turn: fetch (the next page prefetched in a
thread), parse, save, dedup, classify. With a worker, a forked child runs the source's
``fetch_records`` (its HTTP requests and parsing) and classifies each parsed record as a work of its
own, what a brand-new record that joins nothing is classified as; the writing process saves,
deduplicates and classifies each batch as before, in one transaction, and takes the precomputed
classification only for a work that turns out to be exactly one brand-new record of the batch
(:func:`crawler.ingest.save_batch`, ``ahead``). Every stored row is the one the sequential path writes.

The worker of the first source of ``litmon crawl`` and ``litmon run`` is forked before the database is opened, with
the state read from the file beforehand (:class:`crawler.pipeline.FirstSource`): until the fork the crawling process
runs alone, and opening and migrating the database is the writer's alone.

The writer has nothing to do until the first batch comes: the worker hands the first :data:`FIRST_BATCH` records of
the source's first answer over as a batch of their own as soon as they are read, the rest of that answer as the next
(PubMed; :attr:`~crawler.sources.base.CrawlContext.first_batch`). The rows are the same; one more transaction.

How the two talk (two pipes):

* the writer asks for the next batch when it is ready for it; the worker, meanwhile, classifies the
  batch it holds, record by record, and answers at once with the classifications done so far (the
  writer classifies the rest): the work spreads itself over both cores. When it has classified the whole
  batch before the writer asks for it, a thread of its own answers that ask while the worker reads and
  classifies the next batch: the worker then holds two batches, never more (one batch's memory more than the
  sequential path); when both are ready, or the source has no batch left, the worker goes on classifying the
  batch it sent last while the writer saves it and says so ("late-ready", with that batch's number); the
  writer, when it comes to classifying that batch, asks for those done ("late") and the worker answers at once
  (the writer never waits for a worker that is reading a page: it asks only after that batch's "late-ready");
* each answer carries what the source changed in its :class:`~crawler.sources.base.CrawlContext`
  (downloaded count, skipped items, warnings, the search log, state) and the HTTP client's request
  count, per-host last request times and intervals, so that the run's counts and the rate limits of
  the next source are exact;
* the worker's log records are sent to the writer, which hands them to its own loggers in order
  (the same handlers, the same log); an injected ``sleep`` of the client (tests) is called in the writer;
* the source's exception (SourceError, a parser bug, Interrupted, RecursionError) is rebuilt in the
  writer and raised where the sequential path raises it: after the batches before it are saved;
* a batch travels as plain values (:func:`ship_batch`, :func:`receive_batch`), its records pickled as soon as they
  are prepared (the writer does not wait for that when it asks) and sent as bytes after the answer's message, its
  classifications when asked: each prepared record as its row values and dedup's inputs as tuples, with the few
  fields the row does not hold as they are (source, identifiers, links, ``trial``, ``extra``), each classification
  as a tuple; the writer makes the objects back without running their constructors: a ``Record`` with the fields it
  saves, whose lists (sent marshalled) and ``to_dict()`` (the record as written, which classifying it in this
  process reads) are made only when read (:class:`_Written`). A record whose lists marshal refuses travels with its
  ``to_dict()``; one with ``missing`` fields, or one that could not be prepared, travels whole: the writer prepares
  it, as in one process.

Stopping: SIGTERM/SIGINT in the writer (the ``stop`` event) is passed on as SIGTERM, which ends the
worker's network waits and pauses at once (its own ``stop``), as in one process; one sent to the
worker alone stops the run as one sent to the writer does (the writer sets its ``stop``). When the writer
ends the source early (stop, a database error, a second signal), the worker is told to stop, then
killed if it does not within :data:`STOP_SECONDS`, and always reaped. A worker outlives no writer: it
dies with it (``PR_SET_PDEATHSIG`` on Linux, and a watch on its parent elsewhere).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import dataclasses
import datetime as dt
import gc
import logging
import marshal
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from crawler import classify, clock, ingest
from crawler.errors import SourceError
from crawler.evidence import Tag
from crawler.matching import Fingerprint, MatchInputs, import_rapidfuzz
from crawler.records import FIELDS_MADE_WHEN_READ, Link, Record
from crawler.sources.base import CrawlContext
from crawler.store.works import RECORD_COLUMNS

if TYPE_CHECKING:
    from crawler.config import Topic

log = logging.getLogger("crawler.fetch_worker")

#: ``[crawl] fetch_worker = "auto"``: a window longer than this (a backfill, a long outage) gets a worker.
AUTO_MIN_WINDOW_DAYS = 31
#: Sources that read one document per run: one batch, nothing to overlap.
SINGLE_DOCUMENT_KINDS = ("feed", "page")
#: Seconds the worker has to stop when told before it is killed.
STOP_SECONDS = 10.0
#: Allocations between two collections of the garbage collector's youngest generation while a source's batches are
#: read: in both processes while a worker runs, in the crawling process alone without one (:func:`collector_for_batches`)
#: (Python's default: 700). A batch's records, rows and classifications live until the batch is saved:
#: collected every 700 allocations, they were walked ~900 times per 10,000 records in the worker.
GC_THRESHOLD = 20_000

#: Records of the source's first answer handed over as a batch of their own as soon as they are read (a source that
#: reads answers of many records: :attr:`crawler.sources.base.CrawlContext.first_batch`), the rest of that answer
#: following as the next batch. The writer has nothing to do until a first batch comes; it then saves, deduplicates
#: and classifies these (~1.4 ms each under load) while the worker reads the rest (~0.6 ms each): with 500-record
#: answers both take about as long at ~150, and the writer starts ~0.2 s sooner (measured: docs/performance.md).
FIRST_BATCH = 150

#: the HttpClient attributes a source's requests change, sent back to the writer's client
_HTTP_STATE = ("request_count", "_last_request", "min_intervals", "_backoff_spent", "_slept")

Batch = tuple[list[Record], dict[int, classify.Classification] | None, list[ingest.Prepared | None] | None]
#: What :func:`batches_in_worker` yields: a :data:`Batch` and the callable that gives the classifications the worker
#: finished after sending it (:func:`crawler.ingest.save_batch`'s ``more_ahead``), or None.
Late = Callable[[], dict[int, classify.Classification]]


def cores() -> int:
    """The CPU cores this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def wanted(setting: str, kind: str, window: tuple[dt.date, dt.date]) -> bool:
    """Whether a source of this kind, crawling this window, runs in a worker (``[crawl] fetch_worker``)."""
    if setting == "off" or cores() < 2 or "fork" not in mp.get_all_start_methods():
        return False
    if setting == "on":
        return True
    return kind not in SINGLE_DOCUMENT_KINDS and (window[1] - window[0]).days > AUTO_MIN_WINDOW_DAYS


@contextlib.contextmanager
def batches_in_worker(
    module,
    ctx: CrawlContext,
    *,
    topic: Topic | None,
    stop: threading.Event | None = None,
    prepare: bool = True,
):
    """Run ``module.fetch_records(ctx)`` in a worker process; yield an iterator of (batch, ahead, prepared, late).

    ``ahead``: position in the batch -> that record classified as a work of its own with ``topic`` (None
    without a topic, or when the day changed since). ``prepared`` (with ``prepare``; else None): each
    record's :func:`crawler.ingest.prepare_record` (None for one that failed: the writer computes it, and
    reports the failure, as in one process). ``late``: a callable (or None) giving more of ``ahead``, those the
    worker classified since, without waiting (:func:`crawler.ingest.save_batch`'s ``more_ahead``). The worker is stopped and reaped when the block ends, however
    it ends."""
    try:
        worker = _Worker(module, ctx, topic, stop, prepare)
    except OSError as exc:  # no process to be had (EAGAIN, ENOMEM): the work is done here, as without a worker
        log.warning(
            "[%s] could not start the fetch worker (%s); fetching in this process — check: the memory and process "
            'limits of litmon\'s user, or set [crawl] fetch_worker = "off"',
            ctx.name,
            exc,
        )
        with collector_for_batches():
            yield ((batch, None, None, None) for batch in module.fetch_records(ctx))
        return
    try:
        yield worker.batches()
    except (KeyboardInterrupt, SystemExit):
        worker.kill()  # the second signal: exit now
        raise
    finally:
        worker.close()


@contextlib.contextmanager
def collector_for_batches():
    """The garbage collector tuned for a source's batches in this process, as while a worker runs: what the process
    holds now (modules, the configuration, the vocabulary, memos) left out of full collections (``gc.freeze``) and the
    youngest generation collected every :data:`GC_THRESHOLD` allocations; both restored when the block ends, however
    it ends (a long-running service collects as before)."""
    threshold = _tune_collector()
    try:
        yield
    finally:
        _restore_collector(threshold)


def _tune_collector() -> tuple[int, ...]:
    """Freeze what this process holds and raise the youngest generation's threshold; return the threshold before."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *threshold[1:])
    return threshold


def _restore_collector(threshold: tuple[int, ...]) -> None:
    gc.set_threshold(*threshold)
    gc.unfreeze()


# --------------------------------------------------------------------------- the writing process's side


class _Worker:
    def __init__(self, module, ctx: CrawlContext, topic, stop: threading.Event | None, prepare: bool):
        self.ctx = ctx
        self.topic = topic
        self.stop = stop
        self.signalled = False
        self.finished = False
        self.shipped = {"warnings": len(ctx.warnings), "skipped": len(ctx.skipped)}
        self.pending: tuple | None = None  # an answer read while "late" classifications were taken
        self.late_today: dt.date | None = None  # the day the batch last received was classified ahead on
        self.received = 0  # batches received: the worker's "late-ready" and "late" name the batch they are of
        fork = mp.get_context("fork")
        self.asks_out, self.asks = fork.Pipe(duplex=False)  # (reader, writer): the writer asks
        self.answers, self.answers_in = fork.Pipe(duplex=False)  # the worker answers
        self.process = fork.Process(
            target=_work,
            args=(module, ctx, topic, prepare, self.asks_out, self.answers_in, (self.asks, self.answers), os.getpid()),
            name=f"litmon-fetch-{ctx.name}",
            daemon=True,
        )
        # what this process holds now (modules, the configuration, the vocabulary, memos) stays while the source
        # runs: left out of the garbage collector's full collections in both processes until it ends (and the pages
        # the worker shares are not copied when a collection would touch them): Python's advice before a fork;
        # and the youngest generation is collected every GC_THRESHOLD allocations, not 700
        self.gc_threshold = _tune_collector()
        try:
            self.process.start()
        except BaseException:
            self._restore_gc()
            for end in (self.asks_out, self.asks, self.answers, self.answers_in):
                end.close()
            raise
        self.asks_out.close()
        self.answers_in.close()
        log.debug("[%s] fetching in worker process %s", ctx.name, self.process.pid)

    def batches(self) -> Iterator[tuple[list[Record], Any, Any, Late | None]]:
        warm = self.topic is not None
        while True:
            with contextlib.suppress(OSError):  # a worker that died: its end of the pipe says so (EOF)
                self.asks.send("next")
            if warm:  # this process's classifier and dedup made ready while the worker fetches and parses the first page
                warm = False
                import_rapidfuzz()  # (dedup's title comparisons: not imported before the fork)
                with contextlib.suppress(Exception):  # (a failure is reported where a batch's classification fails)
                    classify.warm_up(classify.build_vocabulary(self.topic))
            message = self._answer()
            kind = message[0]
            if kind == "batch":
                _, packed, classified, today, delta, http_state = message
                del message  # (the records' pickle is not held while the batch is saved)
                self._apply(delta, http_state)
                self.late_today = today
                self.received += 1
                # the rank depends on the day
                batch = receive_batch(_unpacked(packed), classified if today == clock.today() else None)
                del packed
                yield (*batch, self._late)
            elif kind == "end":
                self.finished = True
                self._apply(*message[1:])
                return
            else:  # "error"
                self.finished = True
                _, packed, delta, http_state, signals = message
                self._apply(delta, http_state)
                if signals and self.stop is not None and not self.stop.is_set():
                    # sent to the worker alone (a kill of its PID): the run stops as if litmon had received it
                    log.warning("%s received by the fetch worker of %s: stopping the run", signals[0], self.ctx.name)
                    self.stop.set()
                raise _unpack(packed)

    def _late(self) -> dict[int, classify.Classification]:
        """The classifications of the batch last received that the worker made after sending it ("late"): position ->
        classification (none when the day changed since). Asked for only when the worker has said that it is making
        them ("late-ready" of this batch: it had nothing else left to do), which it answers at once; else nothing,
        without waiting."""
        ready = False
        while self.pending is None and not ready:
            try:
                if not self.answers.poll():
                    break
                message = self._recv()
            except (EOFError, OSError):  # the worker died: the next answer says so
                break
            ready = self._aside(message) == "late-ready" and message[1] == self.received  # (not one left of a batch before)
        if not ready:
            return {}
        with contextlib.suppress(OSError):
            self.asks.send("late")
        while self.pending is None:
            try:
                message = self._recv()
            except (EOFError, OSError):
                break
            if self._aside(message) == "late" and message[1] == self.received:
                _, _, start, values = message
                if self.late_today != clock.today():  # the rank depends on the day
                    break
                return {start + offset: _classification(v) for offset, v in enumerate(values) if v is not None}
        return {}

    def _recv(self) -> tuple:
        """The worker's next message; a batch's records' pickle, which follows it as bytes, put back in it."""
        message = self.answers.recv()
        if message[0] == "batch":
            message = (message[0], self.answers.recv_bytes(), *message[1:])
        return message

    def _aside(self, message: tuple) -> str | None:
        """A message read while taking late classifications: log records and pauses handled, an answer kept for
        :meth:`_answer`; returns the kind of a "late-ready" or "late" message."""
        kind = message[0]
        if kind in ("late-ready", "late"):
            return kind
        if kind == "log":
            _handle(message[1])
        elif kind == "pause":
            self.ctx.http._sleep(message[1])  # type: ignore[misc]
        else:
            self.pending = message
        return None

    def _answer(self) -> tuple:
        """The worker's next answer; its log records and pauses are handled on the way (and "late"
        classifications that came after the writer took them, left)."""
        if self.pending is not None:
            message, self.pending = self.pending, None
            return message
        while True:
            if self.stop is not None and not self.answers.poll(0.05):
                if self.stop.is_set() and not self.signalled:
                    self._signal(signal.SIGTERM)  # its network waits and pauses end at once, as in one process
                continue
            try:
                message = self._recv()
            except EOFError:
                self.finished = True
                raise SourceError(
                    self.ctx.name,
                    f"the fetch worker process ended unexpectedly ({_how(self.process)})",
                    hint='the system log (out of memory?); the next run re-reads this window; [crawl] fetch_worker = "off" '
                    "crawls in one process",
                ) from None
            if message[0] == "log":
                _handle(message[1])
            elif message[0] == "pause":
                self.ctx.http._sleep(message[1])  # type: ignore[misc]
            elif message[0] not in ("late-ready", "late"):  # what the writer did not take
                return message

    def _apply(self, delta: dict[str, Any], http_state: dict[str, Any]) -> None:
        ctx = self.ctx
        ctx.downloaded = delta["downloaded"]
        ctx.holds_watermark = delta["holds_watermark"]
        ctx.state = delta["state"]
        ctx.queries[:] = delta["queries"]
        ctx.warnings.extend(delta["warnings"])
        ctx.skipped.extend(delta["skipped"])
        for name, value in http_state.items():
            setattr(ctx.http, name, value)

    def _signal(self, signum: int) -> None:
        self.signalled = True
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(self.process.pid, signum)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the worker (unless it has finished), keep the requests it made in the count, and reap it."""
        if not self.finished and self.process.is_alive():
            with contextlib.suppress(OSError):
                self.asks.send("stop")
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                try:
                    if not self.answers.poll(left):
                        break
                    message = self._recv()
                except (EOFError, OSError):
                    break
                if message[0] == "log":
                    _handle(message[1])
                elif message[0] == "final":
                    for name, value in message[1].items():
                        setattr(self.ctx.http, name, value)
                    break
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.kill()
        self.asks.close()
        self.answers.close()
        self._restore_gc()

    def _restore_gc(self) -> None:
        _restore_collector(self.gc_threshold)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


def _how(process) -> str:
    process.join(1.0)
    code = process.exitcode
    if code is None:
        return "it no longer answers"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _handle(record: logging.LogRecord) -> None:
    logger = logging.getLogger(record.name)
    if not logger.disabled:
        logger.handle(record)


# --------------------------------------------------------------------------- the worker process


def _work(module, ctx: CrawlContext, topic, prepare: bool, asks, answers, parents_ends, parent_pid: int) -> None:
    """The worker process: set up (the writer's ends closed, signals, log records and pauses sent to the writer), then
    :class:`_Batches` reads the source's batches and answers the writer's asks."""
    for end in parents_ends:  # the writer's ends: EOF on the pipes when the writer is gone
        end.close()
    _die_with(parent_pid)
    send = _sender(answers)
    stop, received = _stop_on_signals(ctx.http)
    _send_logs(send)
    _client_after_fork(ctx.http, send)
    _Batches(ctx, topic, prepare, asks, send, stop, received).run(module)


def _sender(answers) -> Callable[[tuple], None]:
    """How this process's threads send the writer a message, one at a time."""
    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            if message[0] == "batch":  # its records' pickle follows it as it is (not copied into this message's pickle)
                answers.send((message[0], *message[2:]))
                answers.send_bytes(message[1])
            else:
                answers.send(message)

    return send


def _stop_on_signals(http) -> tuple[threading.Event, list[str]]:
    """SIGTERM and SIGINT set the HTTP client's ``stop`` (made when it has none): every network wait and pause ends at
    once. Returns that event and the names of the signals received, as they come (a signal sent to the worker alone
    stops the whole run, as one sent to litmon)."""
    stop = http.stop if http.stop is not None else threading.Event()
    http.stop = stop
    received: list[str] = []

    def on_signal(signum, frame) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()  # every network wait and pause ends at once

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return stop, received


def _client_after_fork(http, send) -> None:
    http.after_fork()
    if http._sleep is not None:  # injected (tests): the writer's callable sees every pause
        http._sleep = lambda seconds: send(("pause", seconds))


@dataclasses.dataclass
class _Made:
    """A batch made ready to send: its records pickled, the classifications made so far (as the values they travel
    as), the day they were made on, what the source changed in its context, and the dicts the rest are made from."""

    packed: bytes
    values: list[tuple | None]
    today: dt.date
    delta: dict[str, Any]
    dicts: list

    def message(self, http) -> tuple:
        return ("batch", self.packed, self.values, self.today, self.delta, _http_state(http))


class _Batches:
    """The worker's loop: each batch of the source read, prepared, pickled and classified ahead while the writer works
    on the one before, and sent when the writer asks for it (see "How the two talk" above)."""

    def __init__(self, ctx: CrawlContext, topic, prepare: bool, asks, send, stop: threading.Event, received: list[str]) -> None:
        self.ctx = ctx
        self.http = ctx.http
        self.stop = stop
        self.prepare = prepare
        self.asks = asks
        self.send = send
        self.received = received
        # the classifier made ready in a thread while this one waits for the first searches and page: the writer asks
        # for the first batch at once, so none of it is classified ahead, and the vocabulary is first wanted for the
        # second
        self.warming = _Warming(topic) if topic is not None else None
        self.vocabulary: classify.Vocabulary | None = None
        self.shipped = {"warnings": len(ctx.warnings), "skipped": len(ctx.skipped)}
        # the batch last sent (the one the writer holds): its dicts, how many of them were classified when it was sent,
        # its day and number; the worker classifies the rest of it when it has nothing else to do ("late": _answered,
        # _classify_late)
        self.last: _Sent | None = None
        self.made = 0  # batches made: the number of each, which "late-ready" and "late" name
        # the batch last made, classified in full before the writer asked for it: a thread sends it when the writer
        # asks, while this one reads the next batch (the worker then holds two batches, never more)
        self.answering: _Answering | None = None

    def run(self, module) -> None:
        self.ctx.first_batch = FIRST_BATCH  # (this process's copy: the writer waits for the first batch)
        batches = iter(module.fetch_records(self.ctx))
        while True:
            records, final = self._read(batches)
            batch: _Made | None = None
            try:
                ask = self._before(final)
                if final is None and ask is None:
                    batch = self._make(records)
                    del records  # (only their dicts are classified: the rest is not held while the next is read)
                    ask = self._classify_ahead(batch)
                if batch is not None and ask is None and self._classified(batch) and not self.asks.poll():
                    # nothing left to do for this batch before the writer asks for it: read the next one meanwhile
                    self.answering = _Answering(self.asks, self.send, batch.message(self.http), self.made)
                    del batch  # (the thread holds the answer until it is sent; its dicts are not kept)
                    continue
                ask = ask if ask is not None else self.asks.recv()
            except EOFError:
                return  # the writer is gone
            if ask == "stop":
                self.send(("final", _http_state(self.http)))
                return
            if final is not None:
                self.send(final)
                return
            assert batch is not None  # (made unless the source ended or the writer said stop)
            self.send(batch.message(self.http))
            self.last = _Sent(batch.dicts, len(batch.values), batch.today, self.made)
            del batch  # (its pickle and classifications not held while the next batch is read)

    def _read(self, batches) -> tuple[list[Record], tuple | None]:
        """The source's next batch, or no records and the message that ends the worker's answers ("end", "error")."""
        try:
            return next(batches), None
        except StopIteration:
            return [], ("end", _delta(self.ctx, self.shipped), _http_state(self.http))
        except BaseException as exc:  # noqa: BLE001 - every failure is the writer's to report
            return [], ("error", _pack(exc), _delta(self.ctx, self.shipped), _http_state(self.http), self.received[:1])

    def _before(self, final: tuple | None) -> str | None:
        """What comes before a batch read (or the end): the batch before sent first (when a thread holds it, and the
        writer asked for it or this is the end), the vocabulary taken (unless the writer is asking), and at the end the
        rest of the batch the writer holds classified until it asks. Returns the writer's ask taken meanwhile."""
        ask = None
        if self.answering is not None and (final is not None or not self.answering.is_alive()):
            # (None: sent; "stop" while this batch was read: not prepared)
            ask = self._answered()
        if self.warming is not None and (final is not None or not self.asks.poll()):  # (never while a thread answers)
            self.vocabulary, self.warming = self.warming.result(), None
        if ask is None and final is not None and self.last is not None and self.vocabulary is not None:
            if not self.stop.is_set():
                ask = _classify_late(self.last, self.vocabulary, self.asks, self.send)
        return ask

    def _answered(self) -> str | None:
        assert self.answering is not None
        (ask, self.last), self.answering = _answered(self.answering, self.last, self.vocabulary, self.send), None
        return ask

    def _make(self, records: list[Record]) -> _Made:
        self.made += 1
        delta = _delta(self.ctx, self.shipped)
        dicts, prepared = _prepare(records) if self.prepare else (records, None)
        # the records pickled now, not when the writer asks: it waited for this (~0.1 ms per record), idle
        packed = _packed(ship_batch(records, prepared, [])[0])
        return _Made(packed, [], clock.today(), delta, dicts)

    def _classify_ahead(self, batch: _Made) -> str | None:
        """Each record of ``batch`` classified (as the values it travels as, made as it is computed, not once asked)
        until the writer asks, or until the batch before is sent; then, when a thread holds that batch, wait until the
        writer asks for it. Returns the writer's ask taken meanwhile."""
        values, dicts = batch.values, batch.dicts
        while self.vocabulary is not None and len(values) < len(dicts):
            if self.answering is None:
                if self.asks.poll():
                    break
            elif not self.answering.is_alive():  # the writer asked for the batch before (or said stop)
                ask = self._answered()
                if ask is not None:
                    return ask
                continue
            values.append(_values_alone(dicts[len(values)], self.vocabulary, batch.today))
        if self.answering is not None:  # this batch is ready too: wait until the writer asks for the one before
            return self._answered()
        return None

    def _classified(self, batch: _Made) -> bool:
        return self.vocabulary is None or len(batch.values) == len(batch.dicts)


class _Answering(threading.Thread):
    """A batch's answer, sent by a thread of its own when the writer asks for it (while the worker reads the next)."""

    def __init__(self, asks, send: Callable[[tuple], None], message: tuple, number: int) -> None:
        super().__init__(name="litmon-answer", daemon=True)
        self.asks = asks
        self.send = send
        self.message: tuple | None = message
        self.number = number  # the batch's number
        self.today: dt.date = message[3]
        self.ask: str | None = None  # an ask other than "next", left to the worker's loop
        self.gone = False  # the writer is gone
        self.start()

    def run(self) -> None:
        try:
            ask = self.asks.recv()
            if ask == "next":
                assert self.message is not None
                self.send(self.message)
                self.message = None  # (the batch's bytes freed as soon as they are sent)
            else:
                self.ask = ask
        except (EOFError, OSError):
            self.gone = True
        if self.ask != "late":  # (then kept: sent when the writer next asks, by :meth:`again`)
            self.message = None

    def result(self) -> str | None:
        """None once the batch is sent; the ask taken instead ("stop", "late"); EOFError when the writer is gone."""
        self.join()
        if self.gone:
            raise EOFError
        return self.ask

    def again(self) -> _Answering:
        """A thread sending this batch when the writer next asks for it (after it asked for "late" classifications)."""
        assert self.message is not None
        return _Answering(self.asks, self.send, self.message, self.number)


@dataclasses.dataclass
class _Sent:
    """The batch the writer holds, as the worker keeps it to classify the rest of it ("late")."""

    dicts: list
    start: int  # how many were classified when it was sent
    today: dt.date
    number: int


def _answered(
    answering: _Answering, last: _Sent | None, vocabulary: classify.Vocabulary | None, send
) -> tuple[str | None, _Sent | None]:
    """``answering``'s result (it waits for the writer's next ask), the worker meanwhile classifying the rest of the
    batch the writer holds (``last``), having told it ("late-ready"), as with no batch left (:func:`_classify_late`):
    the writer, the slower of the two then, takes them once it has saved and deduplicated that batch ("late"). Returns
    the ask (None once the thread sent its batch) and the batch the writer then holds."""
    values: list[tuple | None] = []
    if last is not None and vocabulary is not None and last.start < len(last.dicts) and answering.is_alive():
        send(("late-ready", last.number))
        while answering.is_alive() and last.start + len(values) < len(last.dicts):
            values.append(_values_alone(last.dicts[last.start + len(values)], vocabulary, last.today))
    ask = answering.result()
    if ask == "late":
        assert last is not None
        send(("late", last.number, last.start, values))  # the writer classifies the rest itself
        last = _Sent([], 0, last.today, last.number)
        answering = answering.again()
        ask = answering.result()
    if ask is None:  # sent: classified in full, nothing of it to classify late
        last = _Sent([], 0, answering.today, answering.number)
    return ask, last


class _Warming(threading.Thread):
    """The vocabulary of ``topic`` built and warmed (:func:`crawler.classify.warm_up`) in a thread of its own."""

    def __init__(self, topic: Topic) -> None:
        super().__init__(name="litmon-warm-up", daemon=True)
        self.topic = topic
        self.vocabulary: classify.Vocabulary | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.vocabulary = classify.build_vocabulary(self.topic)
        except BaseException as exc:  # noqa: BLE001 - raised where the vocabulary is wanted, as without the thread
            self.error = exc
            return
        with contextlib.suppress(Exception):  # a classification that fails is reported with the record it fails on
            classify.warm_up(self.vocabulary)

    def result(self) -> classify.Vocabulary:
        self.join()
        if self.error is not None:
            raise self.error
        assert self.vocabulary is not None
        return self.vocabulary


def _classify_late(last: _Sent, vocabulary: classify.Vocabulary, asks, send) -> str | None:
    """With no batch left: classify the records of the batch last sent from its ``start`` on, having told the writer
    ("late-ready" and the batch's number), until it asks. Asked for them ("late": it has saved and deduplicated that
    batch), send those done as ("late", number, ``start``, values) and return None; return any other ask (the writer
    did not want them). Kept here, not sent as they are done: the writer reads nothing while it saves, and a full pipe
    would stop the worker."""
    send(("late-ready", last.number))
    dicts, start = last.dicts, last.start
    values: list[tuple | None] = []
    while True:
        if start + len(values) >= len(dicts) or asks.poll():
            ask = asks.recv()
            if ask != "late":
                return ask
            send(("late", last.number, start, values))
            return None
        values.append(_values_alone(dicts[start + len(values)], vocabulary, last.today))


def _prepare(records: list[Record]) -> tuple[list, list[ingest.Prepared | None]]:
    """Each record's ``to_dict()`` (what the classifier reads of it; the record itself when that fails) and
    :func:`crawler.ingest.prepare_record` (None when it fails: the writer computes it again, and reports the
    failure as in one process)."""
    dicts: list = []
    prepared: list[ingest.Prepared | None] = []
    for record in records:
        try:
            data = record.to_dict()
            prepared.append(ingest.prepare_record(record, data))
            dicts.append(data)
        except Exception:  # noqa: BLE001
            prepared.append(None)
            dicts.append(record)
    return dicts, prepared


# --------------------------------------------------------------------------- a batch as plain values

_CLASSIFICATION_FIELDS = tuple(f.name for f in dataclasses.fields(classify.Classification))
_TAGS = _CLASSIFICATION_FIELDS.index("tags")
_TAG_FIELDS = tuple(f.name for f in dataclasses.fields(Tag))
_FINGERPRINT_FIELDS = tuple(f.name for f in dataclasses.fields(Fingerprint))


def ship_batch(
    records: list[Record], prepared: list[ingest.Prepared | None] | None, classified: list[classify.Classification | None]
) -> tuple[list, list]:
    """A batch as the worker sends it: plain values, which pickle and unpickle several times faster than the
    objects. Each record: a tuple (the fields its row lacks, its lists marshalled, as a tuple, or its ``to_dict()``
    when marshal refuses a value of those lists; whether its sections were derived, its content hash, its row values,
    dedup's inputs as a tuple or None) when it was prepared and lacks no field, else the record itself (the writer
    prepares it). Each classification: a tuple of its fields, its tags as tuples (None: the
    writer classifies that record)."""
    shipped: list = []
    for index, record in enumerate(records):
        ready = prepared[index] if prepared is not None else None
        if ready is None or record.missing:
            shipped.append(record)
            continue
        (digest, values), inputs, data = ready
        match = None if inputs is None else (tuple(map(inputs.fingerprint.__getattribute__, _FINGERPRINT_FIELDS)), *inputs[1:])
        try:  # the lists the writer makes back only when it reads them
            lists = marshal.dumps(itemgetter(*FIELDS_MADE_WHEN_READ)(data))
        except ValueError:  # a value marshal does not write exactly as it is (a text subclass, a date): the dict is sent
            shipped.append((data, not record.abstract_sections, digest, values, match))
            continue
        links = [(link["relation"], link["scheme"], link["value"], link["note"]) for link in data["links"]]
        fields = (data["source"], data["source_id"], data["identifiers"], links, data["trial"], data["extra"], lists)
        shipped.append((fields, not record.abstract_sections, digest, values, match))
    return shipped, [None if c is None else _classification_values(c) for c in classified]


def _packed(shipped: list) -> bytes:
    """:func:`ship_batch`'s records pickled, to travel inside the batch's message (made before the writer asks)."""
    return pickle.dumps(shipped, protocol=pickle.HIGHEST_PROTOCOL)


def _unpacked(packed: bytes) -> list:
    return pickle.loads(packed)


#: Positions in a ``records`` row's values (:data:`crawler.store.RECORD_COLUMNS`) of the fields :class:`_Written` reads.
_COLUMN = {name: index for index, name in enumerate(RECORD_COLUMNS)}


class _Written:
    """A received record as written (its ``to_dict()``), made when first read (:class:`crawler.store.WrittenRecords`
    reads it only to classify the record's work in this process): from its row's values, the fields sent as they are
    and its lists (:data:`crawler.records.FIELDS_MADE_WHEN_READ`) sent marshalled (``marshal`` gives back exactly
    the values it takes: types, dict key order; it refuses the others)."""

    __slots__ = ("fields", "values", "derived_sections", "data")

    def __init__(self, fields: tuple, values: tuple, derived_sections: bool) -> None:
        self.fields = fields  # source, source_id, identifiers, links as tuples, trial, extra, the lists marshalled
        self.values = values
        self.derived_sections = derived_sections
        self.data: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.data is not None:
            return self.data
        source, source_id, identifiers, links, trial, extra, lists = self.fields
        authors, people, sections, publication_types, mesh_terms, keywords = marshal.loads(lists)
        values = self.values
        self.data = {
            "source": source,
            "source_id": source_id,
            "record_type": values[_RECORD_TYPE],
            "title": values[_TITLE],
            "url": values[_URL],
            "abstract": values[_ABSTRACT],
            "authors": authors,
            "structured_authors": people,
            "abstract_sections": sections,
            "journal": values[_JOURNAL],
            "published_on": values[_PUBLISHED_ON],
            "entered_on": values[_ENTERED_ON],
            "updated_on": values[_UPDATED_ON],
            "identifiers": identifiers,
            "publication_types": publication_types,
            "mesh_terms": mesh_terms,
            "keywords": keywords,
            "language": values[_LANGUAGE],
            "version": values[_VERSION],
            "links": [{"relation": r, "scheme": s, "value": v, "note": n} for r, s, v, n in links],
            "trial": trial,
            "extra": extra,
        }
        return self.data


_RECORD_TYPE, _TITLE, _ABSTRACT, _JOURNAL = (_COLUMN[name] for name in ("record_type", "title", "abstract", "journal"))
_PUBLISHED_ON, _ENTERED_ON, _UPDATED_ON, _URL = (_COLUMN[name] for name in ("published_on", "entered_on", "updated_on", "url"))
_LANGUAGE, _VERSION, _DATA = (_COLUMN[name] for name in ("language", "version", "data"))
_LINK_FIELDS = ("relation", "scheme", "value", "note")


def receive_batch(shipped: list, classified: list | None) -> Batch:
    """:func:`ship_batch`'s values made back into the batch (records, ahead, prepared) that
    :func:`crawler.ingest.save_batch` takes; ``classified`` None: none is used (the day changed)."""
    records: list[Record] = []
    prepared: list[ingest.Prepared | None] = []
    for item in shipped:
        if type(item) is not tuple:
            records.append(item)
            prepared.append(None)
            continue
        data, derived_sections, digest, values, match = item
        if type(data) is tuple:  # the fields the row does not hold; the rest made from the row when read
            written = _Written(data, values, derived_sections)
            source, source_id, identifiers, links, trial, extra, _ = data
            # the row's columns, as _Written.to_dict reads them: not shared, since to_dict's dict keeps to_dict()'s key
            # order (the lists between them) and this one is a Record's fields, made for every record received
            fields = {
                "source": source,
                "source_id": source_id,
                "record_type": values[_RECORD_TYPE],
                "title": values[_TITLE],
                "url": values[_URL],
                "abstract": values[_ABSTRACT],
                "journal": values[_JOURNAL],
                "published_on": values[_PUBLISHED_ON],
                "entered_on": values[_ENTERED_ON],
                "updated_on": values[_UPDATED_ON],
                "identifiers": identifiers,
                "language": values[_LANGUAGE],
                "version": values[_VERSION],
                "links": [_made(Link, _LINK_FIELDS, link) for link in links] if links else [],
                "trial": trial,
                "extra": extra,
                "missing": [],
            }
            records.append(Record.made_when_read(fields, written))
            data = written
        else:
            records.append(Record.from_dict(data, derived_sections=derived_sections))
        inputs = None
        if match is not None:
            inputs = MatchInputs(_made(Fingerprint, _FINGERPRINT_FIELDS, match[0]), *match[1:])
        prepared.append(((digest, values), inputs, data))
    ahead = None
    if classified:
        ahead = {i: _classification(values) for i, values in enumerate(classified) if values is not None}
    return records, ahead, prepared


def _classification_values(classification: classify.Classification) -> tuple:
    values = [getattr(classification, name) for name in _CLASSIFICATION_FIELDS]
    values[_TAGS] = [tuple(getattr(tag, name) for name in _TAG_FIELDS) for tag in values[_TAGS]]
    return tuple(values)


def _classification(values: tuple) -> classify.Classification:
    classification = _made(classify.Classification, _CLASSIFICATION_FIELDS, values)
    classification.tags = [_made(Tag, _TAG_FIELDS, tag) for tag in values[_TAGS]]
    return classification


def _made(cls, names: tuple[str, ...], values):
    """An instance of the dataclass ``cls`` with these field values, as its ``__init__`` stored them (not run again)."""
    instance = object.__new__(cls)
    instance.__dict__.update(zip(names, values))
    return instance


def _classify_alone(record, vocabulary: classify.Vocabulary, today: dt.date) -> classify.Classification | None:
    try:
        return classify.classify_records([record], vocabulary, today)
    except Exception:  # noqa: BLE001 - the writer classifies it again and reports the failure as in one process
        return None


def _values_alone(record, vocabulary: classify.Vocabulary, today: dt.date) -> tuple | None:
    """:func:`_classify_alone`'s classification as the values it travels as (None: the writer classifies it)."""
    classification = _classify_alone(record, vocabulary, today)
    return None if classification is None else _classification_values(classification)


def _delta(ctx: CrawlContext, shipped: dict[str, int]) -> dict[str, Any]:
    warnings, skipped = len(ctx.warnings), len(ctx.skipped)  # a prefetch thread may add a warning meanwhile
    delta = {
        "downloaded": ctx.downloaded,
        "holds_watermark": ctx.holds_watermark,
        "state": copy.deepcopy(ctx.state),
        "queries": list(ctx.queries),
        "warnings": ctx.warnings[shipped["warnings"] : warnings],
        "skipped": ctx.skipped[shipped["skipped"] : skipped],
    }
    shipped["warnings"], shipped["skipped"] = warnings, skipped
    return delta


def _http_state(http) -> dict[str, Any]:
    state = {name: getattr(http, name) for name in _HTTP_STATE}
    return {
        name: dict(value) if isinstance(value, dict) else value for name, value in state.items()
    }  # a prefetch thread writes them


def _die_with(parent_pid: int) -> None:
    """End this process when the writer ends, however it ends (SIGKILL included)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        watched = False
    except (OSError, AttributeError):  # not Linux: watch the parent instead
        watched = True
    if os.getppid() != parent_pid:  # the writer died before the line above
        os._exit(1)
    if watched:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="litmon-fetch-parent-watch", daemon=True).start()


class _LogSender(logging.Handler):
    def __init__(self, send):
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.send(("log", _portable(record)))
        except Exception:  # noqa: BLE001 - the writer is gone, or a record that cannot travel
            self.handleError(record)


def _send_logs(send) -> None:
    """Every log record of this process goes to the writer, whose loggers handle it."""
    sender = _LogSender(send)
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]
    for logger in loggers:
        had = bool(logger.handlers)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        if had and not logger.propagate:
            logger.addHandler(sender)
    logging.getLogger().addHandler(sender)


def _portable(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message formatted and its traceback as text (what a pipe can carry)."""
    record = copy.copy(record)
    record.msg, record.args = record.getMessage(), None
    if record.exc_info:
        record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    try:
        pickle.dumps(record.__dict__)
    except Exception:  # noqa: BLE001 - an extra field that cannot travel travels as its text
        record.__dict__.update({k: repr(v) for k, v in record.__dict__.items() if not _picklable(v)})
    return record


def _picklable(value) -> bool:
    try:
        pickle.dumps(value)
        return True
    except Exception:  # noqa: BLE001
        return False


def _pack(exc: BaseException) -> tuple:
    """An exception as something a pipe can carry: its class, args and attributes (without calling its
    ``__init__``, whose signature may differ), else its class name and text; with the worker's traceback."""
    text = "".join(traceback.format_exception(exc))
    for state in ((type(exc), exc.args, vars(exc)), (type(exc), exc.args, {})):
        try:
            pickle.loads(pickle.dumps(state))
            return ("object", state, text)
        except Exception:  # noqa: BLE001
            continue
    return ("text", (type(exc).__name__, str(exc)), text)


def _unpack(packed: tuple) -> BaseException:
    how, state, text = packed
    if how == "object":
        cls, args, attributes = state
        exc = cls.__new__(cls, *args)
        exc.args = args
        exc.__dict__.update(attributes)
    else:
        name, message = state
        exc = type(name, (Exception,), {})(message)
    exc.add_note("raised in the fetch worker process:\n" + text.rstrip())
    return exc
