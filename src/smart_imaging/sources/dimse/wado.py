"""WADO-RS answers (PS3.18 10.4) from received Part-10 files, streamed as files arrive.

Instances and metadata follow the transfer: each part leaves as soon as its file is on disk.
Single-instance answers (frames, rendered) and the DICOM JSON of one instance are the folder
source's, so every file-backed source negotiates and encodes them the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial

from pydicom import dcmread

from ...dicom import multipart
from ...dicom.media import parse_accept
from ...errors import NotAcceptable, UpstreamError
from ..base import WadoRequest, WadoResponse
from ..folder.checks import read_checked
from ..folder.query import IndexedInstance
from ..folder.retrieve import frames_response, instance_metadata, rendered_response
from .part10 import InstanceFile

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"


def check_accept(request: WadoRequest) -> None:
    """406 early for instances and metadata the client cannot take (PS3.18 8.7.3).

    Instances are sent in the transfer syntax the archive sent (no transcoding here), so a
    ``transfer-syntax`` parameter is not checked: the part headers name the real one.
    """
    ranges = [r for r in parse_accept(request.accept)]
    if not ranges:
        return
    if request.resource == "" and not any(r.matches(DICOM) for r in ranges):
        raise NotAcceptable('instances are available as multipart/related; type="application/dicom"')
    if request.resource == "metadata" and not any(
        r.matches(DICOM_JSON) or r.matches("application/json") for r in ranges
    ):
        raise NotAcceptable("metadata is available as application/dicom+json")


async def dicom_parts(instances: AsyncIterator[InstanceFile], boundary: str) -> AsyncIterator[bytes]:
    """Each instance file as one part, read in chunks off the event loop."""
    async for instance in instances:
        syntax = instance.keys.transfer_syntax
        yield multipart.part_head(boundary, f"{DICOM}; transfer-syntax={syntax}")
        async for chunk in read_chunks(instance):
            yield chunk
        yield multipart.part_tail()
    yield multipart.closing(boundary)


async def read_chunks(instance: InstanceFile) -> AsyncIterator[bytes]:
    """The received file in chunks; ``UpstreamError`` if it cannot be read whole."""
    loop = asyncio.get_running_loop()
    try:
        fp = await loop.run_in_executor(None, instance.path.open, "rb")
    except OSError as exc:
        raise _unreadable(instance, exc) from exc
    sent = 0
    try:
        while chunk := await loop.run_in_executor(None, fp.read, CHUNK):
            sent += len(chunk)
            yield chunk
    except OSError as exc:
        raise _unreadable(instance, exc) from exc
    finally:
        fp.close()
    if sent != instance.size:
        raise UpstreamError(f"received instance {instance.keys.sop_instance_uid} was cut short in the cache")


async def metadata_array(instances: AsyncIterator[InstanceFile], public_base: str) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    separator = b"["
    async for instance in instances:
        item = await loop.run_in_executor(None, indexed, instance)
        found = await loop.run_in_executor(
            None, read_checked, item, partial(instance_metadata, item, public_base)
        )
        yield separator + found
        separator = b","
    yield b"[]" if separator == b"[" else b"]"


async def single_instance(instance: InstanceFile, request: WadoRequest) -> WadoResponse:
    """Frames or a rendered image of one received instance."""
    item = await asyncio.get_running_loop().run_in_executor(None, indexed, instance)
    if request.resource == "frames":
        return await frames_response(item, request)
    return await rendered_response(item, request)


def indexed(instance: InstanceFile) -> IndexedInstance:
    """What the file-backed answers need to know about a received file (blocking).

    ``UpstreamError`` when the file cannot be read: what the archive sent is unusable.
    """
    try:
        ds = dcmread(instance.path, stop_before_pixels=True)
    except Exception as exc:
        raise _unreadable(instance, exc) from exc
    keys = instance.keys
    return IndexedInstance(
        path=instance.path,
        study_uid=keys.study_uid,
        series_uid=keys.series_uid,
        sop_instance_uid=keys.sop_instance_uid,
        transfer_syntax=keys.transfer_syntax,
        number_of_frames=max(1, int(ds.get("NumberOfFrames", 1) or 1)),
        has_pixels="Rows" in ds,
        bits_allocated=int(ds.get("BitsAllocated", 16) or 16),
        size=instance.size,
    )


def _unreadable(instance: InstanceFile, exc: BaseException) -> UpstreamError:
    log.warning("could not read the received file %s: %s", instance.path, exc)
    return UpstreamError(f"received instance {instance.keys.sop_instance_uid} could not be read")
