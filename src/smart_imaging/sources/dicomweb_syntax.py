"""Transfer syntaxes with a DICOMweb archive (PS3.18 8.7.3.5): what it sends is checked, and what
it cannot send is made here.

Instances: the archive is asked for the one syntax the client names (Orthanc takes one per
request; for several, and when it cannot, it is asked for what it stores). Every part is then
checked by its Part-10 File Meta (the part's Content-Type may say anything): a part in a syntax
the client takes passes unchanged, any other is transcoded here (``dicom.transcode``), one part
(one instance) at a time, so memory holds that instance and one frame. A part that cannot be
delivered as asked is 406 before the first part, a broken transfer afterwards.

Frames: the archive's answer (small: the frames asked for) is checked part by part
(``negotiate.frame_part_fits``); when it does not fit, or the archive cannot, the instance is
fetched as stored and its frames are taken or transcoded here (``stored.answers``).
"""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator, AsyncIterator

import anyio
from pydicom import Dataset, dcmread

from ..dicom import multipart
from ..dicom.multipart_stream import valid_boundary
from ..dicom.transcode import transcode_part10
from ..errors import NotFound, UpstreamError
from ..wado.negotiate import DICOM, InstanceSyntaxes, frame_part_fits, frame_target
from ..wado.parts import Part, PartSplitter
from ..wado.request import WadoRequest, rebase
from .base import WadoResponse
from .dicomweb_http import verified
from .stored.answers import frames_body, frames_in

ANY_DICOM = f'multipart/related; type="{DICOM}"; transfer-syntax=*'
CANNOT = frozenset({400, 406, 415, 500, 501})  # what archives answer for a syntax they cannot make
MAX_INSTANCE = 1 << 30


def asked_of_archive(syntaxes: InstanceSyntaxes) -> str:
    """The Accept to send the archive for instances in ``syntaxes``."""
    return syntaxes.accept_header() if len(syntaxes.named) == 1 else ANY_DICOM


def checked_instances(
    media_type: str, chunks: AsyncGenerator[bytes, None], syntaxes: InstanceSyntaxes, public_base: str
) -> tuple[str, AsyncIterator[bytes]]:
    """The archive's multipart of instances, each part in a syntax the client takes: our media
    type and body."""
    boundary = multipart.boundary_of(media_type)
    if not media_type.lower().startswith("multipart/") or boundary is None or not valid_boundary(boundary):
        raise UpstreamError("the image archive answered instances without a valid multipart")
    out = multipart.new_boundary()
    body = _parts(chunks, PartSplitter(boundary, MAX_INSTANCE), out, syntaxes, public_base)
    return multipart.content_type(out, DICOM), body


async def _parts(
    chunks: AsyncGenerator[bytes, None],
    splitter: PartSplitter,
    out: str,
    syntaxes: InstanceSyntaxes,
    base: str,
) -> AsyncIterator[bytes]:
    parts = verified(chunks, splitter)
    try:
        async for part in parts:
            async for piece in _one(part, out, syntaxes, base):
                yield piece
    finally:
        await parts.aclose()
    yield multipart.closing(out)


async def _one(part: Part, boundary: str, syntaxes: InstanceSyntaxes, base: str) -> AsyncIterator[bytes]:
    stored = await anyio.to_thread.run_sync(_syntax_of, part.body)
    target = syntaxes.choose(stored)
    headers = {}
    location = rebase(part.headers.get("content-location", ""), base)
    if location:
        headers["Content-Location"] = location
    head = multipart.part_head(boundary, f"{DICOM}; transfer-syntax={target}", headers)
    if target == stored:
        yield head + part.body + multipart.part_tail()
        return
    pieces = await anyio.to_thread.run_sync(transcode_part10, part.body, target)
    yield head
    while (piece := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
        yield piece
    yield multipart.part_tail()


def _syntax_of(body: bytes) -> str:
    """The transfer syntax in a Part-10 file's meta (PS3.10 7.1); 502 when it has none."""
    try:
        meta = dcmread(io.BytesIO(body), stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).file_meta
        syntax = meta.get("TransferSyntaxUID")
    except Exception as exc:  # pydicom raises many kinds on what is not Part-10
        raise UpstreamError("the image archive sent an instance that is not a DICOM Part-10 file") from exc
    if not syntax:
        raise UpstreamError("the image archive sent an instance without a transfer syntax")
    return str(syntax)


def frames_fit(accept: str | None, media_type: str, raw: bytes) -> list[tuple[dict[str, str], bytes]] | None:
    """The archive's frame parts (headers, bytes) when every one is what the client asked for."""
    try:
        parts = list(multipart.decode(media_type, raw))
    except ValueError:
        return None
    kinds = [h.get("content-type", "") for h, _ in parts]
    if not parts or not all(k.isascii() and k.isprintable() and frame_part_fits(accept, k) for k in kinds):
        return None
    return parts


def relabelled_frames(parts: list[tuple[dict[str, str], bytes]], public_base: str) -> WadoResponse:
    """The archive's fitting frames again, with our own boundary; of their headers only the
    Content-Type and a Content-Location moved under our base."""
    boundary = multipart.new_boundary()
    body = bytearray()
    for headers, data in parts:
        location = rebase(headers.get("content-location", ""), public_base)
        extra = {"Content-Location": location} if location else {}
        body += multipart.part_head(boundary, headers["content-type"], extra) + data + multipart.part_tail()
    part_type = parts[0][0]["content-type"].split(";")[0].strip()
    return WadoResponse(
        multipart.content_type(boundary, part_type), _once(bytes(body) + multipart.closing(boundary))
    )


async def local_frames(instance: bytes, request: WadoRequest) -> WadoResponse:
    """The frames of ``request`` from the whole instance, as the client asked (406 if cannot)."""
    ds = await anyio.to_thread.run_sync(_read, instance)
    stored = str(ds.file_meta.TransferSyntaxUID)
    count = max(1, int(ds.get("NumberOfFrames", 1) or 1))
    if "PixelData" not in ds:
        raise NotFound("this instance has no pixel data")
    bad = [n for n in request.frames if not 1 <= n <= count]
    if bad:
        raise NotFound(f"frame {bad[0]} is not in this instance ({count} frames)")
    target = frame_target(request.accept, stored)
    try:
        frames = await anyio.to_thread.run_sync(frames_in, ds, stored, count, request.frames, target)
    except (ValueError, RuntimeError, NotImplementedError, KeyError) as exc:
        raise UpstreamError("the image archive's instance could not be decoded") from exc
    return frames_body(target, frames)


def single_part(media_type: str, raw: bytes) -> bytes:
    """The one instance of a multipart answer (a WADO-RS instance request)."""
    try:
        parts = list(multipart.decode(media_type, raw))
    except ValueError:
        parts = []
    if len(parts) != 1:
        raise UpstreamError("the image archive answered an instance request without exactly one part")
    return parts[0][1]


def _read(instance: bytes) -> Dataset:
    try:
        return dcmread(io.BytesIO(instance))
    except Exception as exc:  # pydicom raises many kinds on broken files
        raise UpstreamError("the image archive sent an instance that is not readable DICOM") from exc


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
