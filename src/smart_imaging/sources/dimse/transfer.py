"""One retrieval from the archive into a cache directory, followed by any number of readers.

The worker thread writes each received instance to disk and announces it to the event loop
(``call_soon_threadsafe``); the disk is the buffer, so a slow reader never holds the archive
up and memory stays flat. Readers follow the growing list of instances and end with the
transfer: cleanly on success, with its error on failure, so a partial study never ends as a
complete multipart body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ...errors import SmartImagingError, Unavailable
from .part10 import EncodedDataSet, InstanceFile, InstanceKeys, write_instance
from .progress import SUCCESS
from .scu import CANNOT_UNDERSTAND, REFUSED_OUT_OF_RESOURCES, Cancel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferKey:
    """What a transfer fetches: a study, a series of it, or one instance."""

    study_uid: str
    series_uid: str | None = None
    instance_uid: str | None = None

    def covers(self, study: str, series: str | None, instance: str | None) -> bool:
        return (
            self.study_uid == study
            and self.series_uid in (None, series)
            and self.instance_uid in (None, instance)
        )

    def wants(self, keys: InstanceKeys) -> bool:
        return self.covers(keys.study_uid, keys.series_uid, keys.sop_instance_uid)


class State(Enum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class Transfer:
    """Received instances of one key, and what became of the retrieval."""

    def __init__(
        self, key: TransferKey, directory: Path, source_ae: str, loop: asyncio.AbstractEventLoop, now: float
    ) -> None:
        self.key = key
        self.directory = directory
        self.cancel = Cancel()
        self.instances: list[InstanceFile] = []
        self.state = State.RUNNING
        self.error: SmartImagingError | None = None
        self.readers = 0
        self.keep = False  # a client was told to retry (503): finish even if nobody reads
        self.settled = False  # the worker is done with the directory (it may be removed now)
        self.last_used = now
        self._source_ae = source_ae
        self._loop = loop
        self._seen: set[str] = set()
        self._seen_lock = threading.Lock()
        self._changed = asyncio.Event()

    @property
    def size(self) -> int:
        return sum(i.size for i in self.instances)

    # ------------------------------------------------------------ worker-thread side

    def receive(self, keys: InstanceKeys, dataset: EncodedDataSet) -> int:
        """Store one instance (called in a pynetdicom thread) and announce it to the loop."""
        if self.cancel.requested or not self.key.wants(keys):
            return REFUSED_OUT_OF_RESOURCES
        with self._seen_lock:
            duplicate = keys.sop_instance_uid in self._seen
            self._seen.add(keys.sop_instance_uid)
        try:
            written = write_instance(self.directory, keys, dataset, self._source_ae)
        except (OSError, ValueError) as exc:
            log.warning("could not store a received instance: %s", exc)
            return CANNOT_UNDERSTAND
        if not duplicate:
            self._call(self._publish, written)
        return SUCCESS

    def _call(self, callback: object, *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed while the archive was still sending
            self._loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]

    # ------------------------------------------------------------ event-loop side

    def _publish(self, instance: InstanceFile) -> None:
        self.instances.append(instance)
        self._notify()

    def finish(self, error: SmartImagingError | None) -> None:
        if self.state is not State.RUNNING:
            return
        self.state = State.FAILED if error else State.COMPLETE
        self.error = error
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def first(self, key: TransferKey, timeout: float, retry_after: int) -> None:
        """Wait until an instance for ``key`` arrived or the transfer ended.

        Raises the transfer's error, or ``Unavailable`` (503 + Retry-After) when nothing came
        in time; the transfer then goes on so that the retry finds the data.
        """
        try:
            async with asyncio.timeout(timeout):
                while self.state is State.RUNNING and not self.matching(key):
                    await self._changed.wait()
        except TimeoutError:
            self.keep = True
            raise Unavailable(
                "the study is still being fetched from the DICOM archive; retry shortly",
                retry_after=retry_after,
            ) from None
        if self.state is State.FAILED and self.error is not None:
            raise self.error

    def matching(self, key: TransferKey) -> bool:
        return any(key.wants(i.keys) for i in self.instances)

    async def follow(self, key: TransferKey) -> AsyncIterator[InstanceFile]:
        """Instances for ``key`` as they arrive; raises the error of a failed transfer."""
        index = 0
        while True:
            changed = self._changed
            while index < len(self.instances):
                instance = self.instances[index]
                index += 1
                if key.wants(instance.keys):
                    yield instance
            if self.state is State.FAILED:
                raise self.error or SmartImagingError("transfer failed")
            if self.state is State.COMPLETE:
                return
            await changed.wait()
