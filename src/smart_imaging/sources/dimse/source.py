"""The ``dicom-dimse`` image source: C-FIND to search, C-GET or C-MOVE to retrieve.

pynetdicom blocks, so every association runs in a worker thread of a bounded pool (finds:
``seriesConcurrency`` threads, retrievals: ``maxTransfers``); the event loop only awaits them.
Retrievals land in a per-key cache directory and are shared by concurrent requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydicom.dataset import Dataset

from ...config.tenant import DimseImages
from ...dicom import json_model as dj
from ...dicom import multipart, tags
from ...errors import BadRequest, NotFound, SmartImagingError, UpstreamError
from ...wado.negotiate import InstanceSyntaxes
from ...wado.qido import QidoQuery
from ..base import SeriesRecord, StudyQuery, StudyRecord, WadoRequest, WadoResponse
from . import census, progress, qido, scu, wado
from . import identifiers as ids
from .cache import TransferCache
from .storage_scp import SCPS, Route, StorageScp
from .transfer import State, Transfer, TransferKey

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_STORE_PORT = 11112  # PS3.15 / IANA "dicom" port, used when a C-MOVE config names none
_SOP_CLASS_MEMORY = 4096


class DimseSource:
    """An archive that speaks DIMSE (PS3.4 C), served as if it spoke DICOMweb."""

    def __init__(self, config: DimseImages, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        scu.receive_to_files()  # received instances go to disk as they arrive: flat memory
        self.peer = scu.Peer.from_endpoint(config.endpoint, config.calledAe, config.ae, config.timeout)
        self._find_pool = ThreadPoolExecutor(config.seriesConcurrency, "dimse-find")
        self._transfer_pool = ThreadPoolExecutor(config.maxTransfers, "dimse-transfer")
        self.cache = TransferCache(self._cache_root(), config.cacheIdleSeconds, config.cacheMaxBytes, clock)
        self._sop_classes: OrderedDict[str, list[str]] = OrderedDict()
        self._message_ids = itertools.count(1)
        self._scp: StorageScp | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def _cache_root(self) -> Path:
        if not self.config.cacheDir:
            return Path(tempfile.mkdtemp(prefix="smart-imaging-dimse-"))
        me = f"{self.config.endpoint}|{self.config.calledAe}|{self.config.ae}"
        root = Path(self.config.cacheDir) / hashlib.sha256(me.encode()).hexdigest()[:16]
        shutil.rmtree(root, ignore_errors=True)  # ours alone; nothing in it is known complete
        root.mkdir(parents=True)
        return root

    # ------------------------------------------------------------ search

    async def search(self, query: StudyQuery) -> list[StudyRecord]:
        """STUDY level C-FIND, then SERIES (and IMAGE) level per study, bounded concurrency."""
        identifier = ids.study_identifier(query)
        if identifier is None:
            return []
        answers = await self._in(self._find_pool, self._find, identifier)
        studies: list[tuple[dict[str, Any], list[str]]] = []
        for answer in answers:
            study = ids.to_json(answer, tags.STUDY_FIELDS)
            if query.matches(study):
                studies.append((study, ids.sop_classes(answer)))
        for study, classes in studies:
            self._remember_sop_classes(_uid(study), classes)
        if not query.include_series:
            return [StudyRecord(study) for study, _ in studies]
        include = query.include_instances and self.config.includeInstances
        series = await asyncio.gather(
            *(self._in(self._find_pool, self._find_series, study, include) for study, _ in studies)
        )
        return [StudyRecord(study, found) for (study, _), found in zip(studies, series, strict=True)]

    async def query(self, query: QidoQuery) -> list[dict[str, Any]]:
        """QIDO-RS under an Endpoint: C-FIND at the level asked (``qido``)."""
        return await self._in(self._find_pool, qido.records, self.peer, query)

    def _find(self, identifier: Dataset) -> list[Dataset]:
        with scu.find_session(self.peer) as session:
            return session.find(identifier)

    def _find_series(self, study: dict[str, Any], include_instances: bool) -> list[SeriesRecord]:
        """SERIES (and IMAGE) level answers of one study, without any that name another study
        or patient (as the dicom-web source: a study never shows another patient's series)."""
        study_uid, patient = _uid(study), dj.text(study, tags.PatientID)
        records: list[SeriesRecord] = []
        with scu.find_session(self.peer) as session:
            answers = qido.find_with_patient(session, ids.series_identifier(study_uid))
            for answer in ids.of_study(answers, study_uid, patient, "series"):
                series = ids.to_json(answer, tags.SERIES_FIELDS)
                series_uid = ids.clean(str(answer.get("SeriesInstanceUID", "") or ""))
                if not series_uid:
                    continue
                instances = None
                if include_instances:
                    found = qido.find_with_patient(session, ids.instance_identifier(study_uid, series_uid))
                    kept = ids.of_study(found, study_uid, patient, "instances")
                    instances = [ids.to_json(a, tags.INSTANCE_FIELDS) for a in kept]
                records.append(SeriesRecord(series, instances))
        records.sort(
            key=lambda r: (
                dj.integer(r.series, tags.SeriesNumber) is None,
                dj.integer(r.series, tags.SeriesNumber) or 0,
            )
        )  # as dicom-web
        return records

    def _remember_sop_classes(self, study_uid: str, classes: list[str]) -> None:
        if classes:
            self._sop_classes[study_uid] = classes
            self._sop_classes.move_to_end(study_uid)
            while len(self._sop_classes) > _SOP_CLASS_MEMORY:
                self._sop_classes.popitem(last=False)

    # ------------------------------------------------------------ retrieve

    async def retrieve(self, request: WadoRequest) -> WadoResponse:
        """Join or start the transfer covering the request; answer once something arrived."""
        if request.resource == "bulkdata":
            raise NotFound("bulk data other than frames is not available from this source")
        if request.resource == "frames" and not request.instance_uid:
            raise BadRequest("frames are retrieved from one instance")
        syntaxes = wado.check_accept(request)
        key = TransferKey(request.study_uid, request.series_uid, request.instance_uid)
        transfer = self._acquire(key)
        lease = _Lease(self, transfer)
        try:
            await transfer.first(key, self.config.firstResultTimeout, self._retry_after())
            if request.resource in ("frames", "rendered", "thumbnail"):
                async for instance in transfer.follow(key):
                    return await wado.single_instance(instance, request)
            elif transfer.state is State.RUNNING or transfer.matching(key):
                return self._stream(transfer, key, lease, request, syntaxes)
            raise NotFound("no such series or instance in this study")
        finally:
            if not lease.streaming:
                lease.release()

    def _stream(
        self,
        transfer: Transfer,
        key: TransferKey,
        lease: _Lease,
        request: WadoRequest,
        syntaxes: InstanceSyntaxes,
    ) -> WadoResponse:
        lease.streaming = True
        if request.resource == "metadata":
            body = wado.metadata_array(transfer.follow(key), request.public_base)
            return WadoResponse(wado.DICOM_JSON, _leased(body, lease), close=lease.aclose)
        boundary = multipart.new_boundary()
        body = wado.dicom_parts(transfer.follow(key), boundary, syntaxes)
        return WadoResponse(
            multipart.content_type(boundary, wado.DICOM), _leased(body, lease), close=lease.aclose
        )

    def _retry_after(self) -> int:
        return max(1, min(30, math.ceil(self.config.firstResultTimeout / 2)))

    def _acquire(self, key: TransferKey) -> Transfer:
        self._start_sweeper()
        transfer = self.cache.covering(key)
        if transfer is None:
            self._evict()
            loop = asyncio.get_running_loop()
            transfer = Transfer(
                key, self.cache.directory_for(key), self.config.calledAe, loop, self.cache.clock()
            )
            self.cache.add(transfer)
            self._spawn(self._run(transfer))
        transfer.readers += 1
        self.cache.touch(transfer)
        return transfer

    def _release(self, transfer: Transfer) -> None:
        transfer.readers -= 1
        self.cache.touch(transfer)
        if transfer.readers == 0 and transfer.state is State.RUNNING and not transfer.keep:
            transfer.cancel()  # nobody waits for it: stop the archive, keep nothing partial
            transfer.finish(UpstreamError("retrieval cancelled: no client is waiting for it"))
            self.cache.forget(transfer)
        elif transfer.readers == 0 and transfer.state is State.FAILED and transfer.settled:
            self._spawn(self._remove(transfer.directory))

    async def _run(self, transfer: Transfer) -> None:
        route: Route | None = None
        scp: StorageScp | None = None
        try:
            if self.config.retrieval == "c-move":
                scp = self._storage_scp()
                route = Route(*_parts(transfer.key), transfer.receive)
                scp.add(route)
            listed = self._census(transfer.key)
            outcome = await self._in(self._transfer_pool, self._retrieve, transfer)
            received = len(transfer.instances)
            progress.check_delivery(
                outcome, received, await listed, self.peer.describe(), self.config.retrieval.upper()
            )
            transfer.finish(None)
        except SmartImagingError as exc:
            self._failed(transfer, exc)
        except Exception:
            log.exception("DIMSE retrieval failed")
            transfer.finish(UpstreamError(f"retrieval from {self.peer.describe()} failed"))
        finally:
            if transfer.state is State.RUNNING:  # cancelled: the server is closing
                transfer.cancel()
            transfer.finish(UpstreamError("retrieval stopped: the server is shutting down"))
            if scp is not None and route is not None:
                scp.remove(route)
            transfer.settled = True
            if transfer.state is State.FAILED:
                self.cache.forget(transfer)
                if transfer.readers == 0:  # else the last reader removes it (it may be mid-file)
                    await self._remove(transfer.directory)

    def _census(self, key: TransferKey) -> asyncio.Future[int | None]:
        """C-FIND's count for a study or series key, counted while the retrieve runs."""
        if key.instance_uid is not None:
            done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
            done.set_result(None)  # one instance: the retrieve's own counts say it all
            return done
        return asyncio.ensure_future(
            self._in(self._find_pool, census.listed_instances, self.peer, key.study_uid, key.series_uid)
        )

    def _failed(self, transfer: Transfer, error: SmartImagingError) -> None:
        if transfer.state is State.RUNNING and not transfer.cancel.requested:
            log.warning("DIMSE retrieval of study %s failed: %s", transfer.key.study_uid, error.message)
        transfer.finish(error)

    def _retrieve(self, transfer: Transfer) -> progress.Outcome:
        """Worker thread: one C-GET or C-MOVE for the transfer's key."""
        if transfer.cancel.requested:
            raise UpstreamError("retrieval cancelled")
        key = transfer.key
        classes: list[str] = []
        if self.config.retrieval == "c-get":
            classes = self._sop_classes.get(key.study_uid) or self._find_sop_classes(key.study_uid)
        return scu.retrieve(
            self.peer,
            self.config.retrieval,
            ids.retrieve_identifier(*_parts(key)),
            classes,
            transfer.receive,
            transfer.cancel,
            move_destination=self.config.ae,
            message_id=next(self._message_ids) % 0xFFFF + 1,
        )

    def _find_sop_classes(self, study_uid: str) -> list[str]:
        answers = self._find(ids.study_identifier(StudyQuery(None, (study_uid,))) or Dataset())
        return ids.sop_classes(answers[0]) if answers else []

    def _storage_scp(self) -> StorageScp:
        if self._scp is None:
            port = self.config.storePort or DEFAULT_STORE_PORT
            try:
                self._scp = SCPS.acquire(self.config.ae, port)
            except OSError as exc:
                raise UpstreamError(f"cannot listen for C-MOVE on port {port}") from exc
        return self._scp

    # ------------------------------------------------------------ cache upkeep

    def _evict(self) -> None:
        for transfer in self.cache.expired():
            self.cache.forget(transfer)
            self._spawn(self._remove(transfer.directory))

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        period = max(1.0, min(60.0, self.config.cacheIdleSeconds / 2))
        while True:
            await asyncio.sleep(period)
            self._evict()

    async def _remove(self, directory: Path) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: shutil.rmtree(directory, ignore_errors=True)
        )

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def aclose(self) -> None:
        """Abort running transfers, wait for the worker threads, stop our SCP, drop the cache."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for transfer in self.cache.clear():
            transfer.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        loop = asyncio.get_running_loop()
        for pool in (self._find_pool, self._transfer_pool):
            await loop.run_in_executor(None, partial(pool.shutdown, cancel_futures=True))
        if self._scp is not None:
            SCPS.release(self._scp)
            self._scp = None
        await self._remove(self.cache.root)


class _Lease:
    """One reader's hold on a transfer, given back exactly once."""

    def __init__(self, source: DimseSource, transfer: Transfer) -> None:
        self._source = source
        self._transfer: Transfer | None = transfer
        self.streaming = False  # the response body now owns the lease

    def release(self) -> None:
        if self._transfer is not None:
            transfer, self._transfer = self._transfer, None
            self._source._release(transfer)

    async def aclose(self) -> None:
        self.release()


async def _leased(body: AsyncIterator[bytes], lease: _Lease) -> AsyncIterator[bytes]:
    try:
        async for chunk in body:
            yield chunk
    finally:
        lease.release()


def _uid(study: dict[str, Any]) -> str:
    return str(study[tags.StudyInstanceUID]["Value"][0])


def _parts(key: TransferKey) -> tuple[str, str | None, str | None]:
    return key.study_uid, key.series_uid, key.instance_uid
