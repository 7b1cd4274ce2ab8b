"""WADO-RS answers (PS3.18 10.4) from received Part-10 files, streamed as files arrive.

Instances and metadata follow the transfer: each part leaves as soon as its file is on disk (and,
when the client asked for another transfer syntax, is transcoded). Everything is answered by the
shared file-backed answers (``sources.stored``) and negotiated by ``wado.negotiate``, so every
file-backed source answers alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from pydicom import dcmread

from ...errors import UpstreamError
from ...wado.negotiate import DICOM, DICOM_JSON, InstanceSyntaxes, check_metadata, instance_syntaxes
from ..base import WadoRequest, WadoResponse
from ..stored import StoredInstance, answers, files
from .part10 import InstanceFile

log = logging.getLogger(__name__)

__all__ = ["DICOM", "DICOM_JSON", "check_accept", "dicom_parts", "metadata_array", "single_instance"]


def check_accept(request: WadoRequest) -> InstanceSyntaxes:
    """406 early for instances and metadata the client cannot take (PS3.18 8.7.3); for
    instances, the transfer syntaxes it takes (checked per instance as files arrive)."""
    if request.resource == "metadata":
        check_metadata(request.accept)
    if request.resource == "":
        return instance_syntaxes(request.accept)
    return InstanceSyntaxes()


async def dicom_parts(
    instances: AsyncIterator[InstanceFile], boundary: str, syntaxes: InstanceSyntaxes
) -> AsyncIterator[bytes]:
    """Each received file as one part, as received or transcoded, read off the event loop."""
    async for chunk in files.instance_parts(_received(instances), boundary, syntaxes):
        yield chunk


async def metadata_array(instances: AsyncIterator[InstanceFile], public_base: str) -> AsyncIterator[bytes]:
    async for chunk in answers.metadata_array(_indexed(instances), public_base):
        yield chunk


async def single_instance(instance: InstanceFile, request: WadoRequest) -> WadoResponse:
    """Frames or a rendered image of one received instance."""
    item = await asyncio.get_running_loop().run_in_executor(None, indexed, instance)
    if request.resource == "frames":
        return await answers.frames_response(item, request)
    return await answers.rendered_response(item, request)


async def _received(instances: AsyncIterator[InstanceFile]) -> AsyncIterator[StoredInstance]:
    """Received files as stored instances, without reading their headers."""
    async for instance in instances:
        keys = instance.keys
        yield StoredInstance(
            instance.path,
            keys.study_uid,
            keys.series_uid,
            keys.sop_instance_uid,
            keys.transfer_syntax,
            size=instance.size,
        )


async def _indexed(instances: AsyncIterator[InstanceFile]) -> AsyncIterator[StoredInstance]:
    loop = asyncio.get_running_loop()
    async for instance in instances:
        yield await loop.run_in_executor(None, indexed, instance)


def indexed(instance: InstanceFile) -> StoredInstance:
    """What the file-backed answers need to know about a received file (blocking).

    ``UpstreamError`` when the file cannot be read: what the archive sent is unusable.
    """
    try:
        ds = dcmread(instance.path, stop_before_pixels=True)
    except Exception as exc:
        raise _unreadable(instance, exc) from exc
    keys = instance.keys
    return StoredInstance(
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
