"""``FolderSource``: the ImageSource for a local folder of DICOM files.

The index is brought up to date in a worker thread by ``await start()``, or lazily by the first
search or retrieval; with ``rescanSeconds`` set, a request older than that since the last scan
triggers another one. All SQLite and disk work runs in threads, off the event loop.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio

from ...config.tenant import FolderImages
from ...errors import NotFound, UpstreamError
from ...wado.qido import QidoQuery
from ..base import DicomJson, StudyQuery, StudyRecord, WadoRequest, WadoResponse
from ..stored import StoredInstance, checks
from . import index, qido, query, retrieve

log = logging.getLogger(__name__)
T = TypeVar("T")


class FolderSource:
    """Studies from ``config.path``; the index lives at ``config.index`` or a default place."""

    def __init__(self, config: FolderImages) -> None:
        self.config = config
        self.root = Path(config.path).expanduser().resolve()
        self.index_path = index.default_index_path(self.root, config.index)
        self._lock = anyio.Lock()
        self._scanned_at: float | None = None
        self.last_scan: index.ScanResult | None = None

    async def start(self) -> index.ScanResult:
        """Scan the folder now (in a thread) and return what changed."""
        async with self._lock:
            return await self._scan()

    async def search(self, study_query: StudyQuery) -> list[StudyRecord]:
        await self._ready()
        return await self._with_index(lambda conn: query.search(conn, study_query))

    async def query(self, request: QidoQuery) -> list[DicomJson]:
        await self._ready()
        return await self._with_index(lambda conn: qido.records(conn, request))

    async def retrieve(self, request: WadoRequest) -> WadoResponse:
        """Answer from the files as indexed; every file is checked before the answer starts.

        Files moved, deleted or rewritten since the last scan trigger one rescan (never a miss:
        random UIDs must not make every request walk the whole folder); what is then gone is
        404 if nothing is left, a file still changing or cut short is 502. While the answer
        streams, ``retrieve`` checks each file again.
        """
        await self._ready()
        found = await self._instances(request)
        stale = bool(found) and await anyio.to_thread.run_sync(_any_stale, found)
        if stale:
            await self.start()
            found = await self._instances(request)
        if not found:
            raise NotFound(_what(request) + " not found")
        problem = await anyio.to_thread.run_sync(_first_problem, found)
        if problem is not None:
            raise problem
        return await retrieve.retrieve(found, request)

    async def aclose(self) -> None:
        return None

    async def _instances(self, request: WadoRequest) -> list[StoredInstance]:
        return await self._with_index(
            lambda conn: query.instances(
                conn,
                self.root,
                request.study_uid,
                request.series_uid,
                request.instance_uid,
                request.mrn,
            )
        )

    async def _ready(self) -> None:
        interval = self.config.rescanSeconds
        if self._scanned_at is not None and (
            interval is None or time.monotonic() - self._scanned_at < interval
        ):
            return
        async with self._lock:
            if self._scanned_at is None or (
                interval is not None and time.monotonic() - self._scanned_at >= interval
            ):
                await self._scan()

    async def _scan(self) -> index.ScanResult:
        result = await self._with_index(lambda conn: index.scan(self.root, conn))
        self._scanned_at = time.monotonic()
        self.last_scan = result
        log.info(
            "indexed %s: %d added, %d updated, %d removed, %d unchanged in %.2f s",
            self.root,
            result.added,
            result.updated,
            result.removed,
            result.unchanged,
            result.seconds,
        )
        return result

    async def _with_index(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = index.connect(self.index_path)
            try:
                return work(conn)
            finally:
                conn.close()

        return await anyio.to_thread.run_sync(run)


def _any_stale(found: list[StoredInstance]) -> bool:
    return any(checks.stale(item) for item in found)


def _first_problem(found: list[StoredInstance]) -> UpstreamError | None:
    return next((error for item in found if (error := checks.problem(item)) is not None), None)


def _what(request: WadoRequest) -> str:
    if request.instance_uid:
        return "instance"
    return "series" if request.series_uid else "study"
