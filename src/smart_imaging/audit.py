"""Audit I/O: where AuditEvents go, and one event per study retrieval instead of one per request.

The events are built by :mod:`smart_imaging.fhir.audit_event` (pure). Interface::

    audit = AuditLog([StreamSink(), FileSink("/var/log/imaging/audit.jsonl"),
                      FhirServerSink("https://ehr.example.org/fhir", headers={...})])
    retrievals = RetrievalAggregator(audit.emit, idle=30, max_age=300)
    retrievals.start()                                   # in the app's lifespan
    await audit.emit(search_event(actor, source, ...))   # searches: one event each
    await retrievals.record(actor, source, patient="123", study_uid=uid, series_uid=None,
                            outcome="success", kind="frames")   # every WADO-RS request
    await retrievals.aclose(); await audit.aclose()      # at shutdown: nothing open is lost

Auditing never fails a request: :meth:`AuditLog.emit` logs a sink's failure and carries on.

- :class:`StreamSink`: one JSON object per line on stdout (or a given text stream).
- :class:`FileSink`: appends JSON lines to a file (created ``0600``; reopened per event, so log
  rotation by rename works).
- :class:`FhirServerSink`: ``POST {base}/AuditEvent`` (``application/fhir+json``) from a bounded
  queue in the background; a full queue drops the event and says so in the log; failures and
  non-2xx answers are logged (status only), never retried.

:class:`RetrievalAggregator`: every metadata, frames, instance, rendered, series or study request
for one study, under one token (correlation id), patient, tenant and outcome, joins one open
window; the window becomes ONE retrieval AuditEvent (``period`` = first to last request, the
series touched, the number and kinds of requests) when no request joined it for ``idle`` seconds,
when it is ``max_age`` seconds old, at shutdown, or when ``max_open`` windows are open and it is
the oldest (memory stays bounded; a window keeps at most 1000 series UIDs and counts the rest).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx

from .fhir.audit_event import MAX_SERIES, Actor, Outcome, Source, retrieval_event

log = logging.getLogger(__name__)
Emit = Callable[[dict[str, Any]], Awaitable[None]]


class AuditSink(Protocol):
    async def write(self, line: str) -> None:
        """Record one event, given as its JSON text (one line)."""

    async def aclose(self) -> None: ...


class StreamSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def write(self, line: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()

    async def aclose(self) -> None:
        return None


class FileSink:
    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = asyncio.Lock()

    async def write(self, line: str) -> None:
        async with self._lock:  # one writer at a time: lines never interleave
            await asyncio.to_thread(self._append, (line + "\n").encode())

    def _append(self, data: bytes) -> None:
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        return None


class FhirServerSink:
    """POSTs events to a FHIR server in the background (see the module doc)."""

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        queue_size: int = 1000,
    ) -> None:
        self._url = base_url.rstrip("/") + "/AuditEvent"
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(follow_redirects=False)
        self._headers = {"Content-Type": "application/fhir+json", **(headers or {})}
        self._timeout = timeout
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max(1, queue_size))
        self._worker: asyncio.Task[None] | None = None
        self.sent = self.failed = self.dropped = 0

    async def write(self, line: str) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="audit-fhir-post")
        try:
            self._queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("audit: FHIR server queue full, %d event(s) dropped so far", self.dropped)

    async def _run(self) -> None:
        while True:
            line = await self._queue.get()
            try:
                await self._post(line)
            finally:
                self._queue.task_done()

    async def _post(self, line: str) -> None:
        try:
            response = await self._http.post(
                self._url, content=line.encode(), headers=self._headers, timeout=self._timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            self.failed += 1
            log.warning("audit: POST to the FHIR server failed (%s)", type(exc).__name__)
            return
        if 200 <= response.status_code < 300:
            self.sent += 1
        else:
            self.failed += 1
            log.warning("audit: the FHIR server answered HTTP %d to an AuditEvent", response.status_code)

    async def aclose(self, drain_timeout: float = 5.0) -> None:
        """Send what is queued (up to ``drain_timeout`` seconds), then stop."""
        if self._worker is not None:
            try:
                await asyncio.wait_for(self._queue.join(), drain_timeout)
            except TimeoutError:
                log.warning("audit: %d event(s) not sent at shutdown", self._queue.qsize())
            self._worker.cancel()
            self._worker = None
        if self._own_http:
            await self._http.aclose()


class AuditLog:
    """Fan-out to sinks; never raises."""

    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self._sinks = list(sinks)

    async def emit(self, event: dict[str, Any]) -> None:
        try:
            line = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.error("audit: event not serializable (%s)", exc)
            return
        for sink in self._sinks:
            try:
                await sink.write(line)
            except (OSError, ValueError) as exc:  # a full disk, a closed stream
                log.error("audit: %s failed (%s)", type(sink).__name__, type(exc).__name__)

    async def aclose(self) -> None:
        for sink in self._sinks:
            await sink.aclose()


# ---------------------------------------------------------------- one event per study retrieval

WindowKey = tuple[str | None, str | None, str | None, str | None, str, str]


@dataclass
class _Window:
    actor: Actor
    source: Source
    patient: str | None
    study_uid: str
    outcome: Outcome
    reason: str | None
    first: datetime
    opened: float
    last: datetime = field(init=False)
    touched: float = field(init=False)
    series: dict[str, None] = field(default_factory=dict)  # an ordered set
    unlisted_series: int = 0
    requests: int = 0
    kinds: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.last, self.touched = self.first, self.opened

    def add(self, series_uid: str | None, kind: str, when: datetime, now: float) -> None:
        self.requests += 1
        self.last, self.touched = when, now
        if len(self.kinds) < 20:
            self.kinds.add(kind[:32])
        if series_uid and series_uid not in self.series:
            if len(self.series) < MAX_SERIES:
                self.series[series_uid] = None
            else:
                self.unlisted_series += 1


class RetrievalAggregator:
    """Joins one study's retrieval requests into one AuditEvent per window (see the module doc)."""

    def __init__(
        self,
        emit: Emit,
        *,
        idle: float = 30.0,
        max_age: float = 300.0,
        max_open: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._emit = emit
        self._idle, self._max_age = idle, max_age
        self._max_open = max(1, max_open)
        self._clock, self._now = clock, now
        self._open: OrderedDict[WindowKey, _Window] = OrderedDict()
        self._ticker: asyncio.Task[None] | None = None

    async def record(
        self,
        actor: Actor,
        source: Source,
        *,
        patient: str | None,
        study_uid: str,
        series_uid: str | None = None,
        outcome: Outcome = "success",
        kind: str = "instances",
        reason: str | None = None,
    ) -> None:
        """One WADO-RS/QIDO-RS request of a study (cheap; emits only to keep memory bounded)."""
        key: WindowKey = (source.site, actor.correlation, actor.client_id, patient, study_uid, outcome)
        window = self._open.get(key)
        if window is None:
            if len(self._open) >= self._max_open:
                await self._flush(next(iter(self._open)))
            window = _Window(actor, source, patient, study_uid, outcome, reason, self._now(), self._clock())
            self._open[key] = window
        window.add(series_uid, kind, self._now(), self._clock())

    async def flush_due(self) -> int:
        """Emit the windows idle for ``idle`` seconds or open for ``max_age``; how many."""
        now = self._clock()
        due = [
            key
            for key, w in self._open.items()
            if now - w.touched >= self._idle or now - w.opened >= self._max_age
        ]
        for key in due:
            await self._flush(key)
        return len(due)

    async def flush_all(self) -> int:
        keys = list(self._open)
        for key in keys:
            await self._flush(key)
        return len(keys)

    def __len__(self) -> int:
        return len(self._open)

    async def _flush(self, key: WindowKey) -> None:
        w = self._open.pop(key)
        event = retrieval_event(
            w.actor,
            w.source,
            patient=w.patient,
            study_uid=w.study_uid,
            outcome=w.outcome,
            start=w.first,
            end=w.last,
            recorded=self._now(),
            series=list(w.series),
            series_not_listed=w.unlisted_series,
            requests=w.requests,
            kinds=sorted(w.kinds),
            reason=w.reason,
        )
        await self._emit(event)

    def start(self) -> None:
        """Flush due windows in the background (call from a running event loop)."""
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="audit-retrieval-windows")

    async def _tick(self) -> None:
        interval = max(0.05, min(self._idle, self._max_age) / 4)
        while True:
            await asyncio.sleep(interval)
            await self.flush_due()

    async def aclose(self) -> None:
        """Stop the background flush and emit every open window."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        await self.flush_all()
