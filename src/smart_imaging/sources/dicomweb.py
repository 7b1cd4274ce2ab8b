"""The ``dicom-web`` image source: QIDO-RS search and WADO-RS retrieval over httpx (PS3.18).

Search results are filtered again by exact PatientID, since QIDO matching treats ``*`` and
``?`` as wildcards and ``\\`` as a value separator: an MRN must never widen the match. Series and
instances that name another study or patient than the study they were listed under are dropped.

The archive's JSON is read through one defensive layer (``dicom.safe_json`` for size and
nesting, ``json_model.clean_datasets`` for shape and number ranges): what cannot be used is a 502.

Retrieval streams the archive's body through chunk by chunk. Multipart answers pass through a
:class:`~smart_imaging.dicom.multipart_stream.MultipartRelay`: a body that ends before its closing
delimiter (an archive killed mid-stream, a proxy cutting a ``Connection: close`` answer) raises
:class:`~smart_imaging.errors.IncompleteTransfer` instead of ending, so the client sees a broken
transfer, never a clean partial study. Archive URLs in part and response headers
(``Content-Location``) and in BulkDataURIs are moved under our WADO-RS base or dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from urllib.parse import quote, urlencode

import httpx

from ..config.tenant import BasicAuthentication, BearerAuthentication, DicomWebImages
from ..dicom import json_model as dj
from ..dicom import multipart, safe_json, tags
from ..dicom.multipart_stream import HeaderRewrite, MultipartError, MultipartRelay, valid_boundary
from ..errors import (
    BadRequest,
    IncompleteTransfer,
    NotAcceptable,
    NotFound,
    SmartImagingError,
    UpstreamError,
    UpstreamTimeout,
)
from ..wado.qido import QidoQuery
from ..wado.request import rebase
from .base import DicomJson, SeriesRecord, StudyQuery, StudyRecord, WadoRequest, WadoResponse

MAX_QIDO = 64 * 1024 * 1024
MAX_METADATA = 256 * 1024 * 1024
RENDERED_PARAMS = {"window", "viewport", "quality", "annotation", "charset"}

log = logging.getLogger(__name__)


class DicomWebSource:
    def __init__(self, config: DicomWebImages, http: httpx.AsyncClient) -> None:
        self._base = config.endpoint
        self._http = http
        self._timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0))
        self._limit = asyncio.Semaphore(config.seriesConcurrency)
        self._include_instances = config.includeInstances
        self._headers = {"Accept-Encoding": "identity"}
        self._auth: httpx.Auth | None = None
        auth = config.authentication
        if isinstance(auth, BasicAuthentication):
            self._auth = httpx.BasicAuth(auth.username, auth.password.get_secret_value())
        elif isinstance(auth, BearerAuthentication):
            self._headers["Authorization"] = f"Bearer {auth.token.get_secret_value()}"

    # ------------------------------------------------------------------ search (QIDO-RS)

    async def search(self, query: StudyQuery) -> list[StudyRecord]:
        if query.mrn is not None and (not query.mrn.strip() or "\\" in query.mrn):
            return []  # empty matches every study (PS3.4 C.2.2.2.1); LO values never hold "\\"
        params = [("includefield", f) for f in (*tags.STUDY_FIELDS, *query.extra_fields)]
        if query.mrn is not None:
            params.append(("PatientID", query.mrn))
        if query.study_uids:
            params.append(("StudyInstanceUID", ",".join(query.study_uids)))
        studies = [s for s in await self._qido("/studies", params) if query.matches(s)]
        if not query.include_series:
            return [StudyRecord(study=s) for s in studies]
        include = query.include_instances and self._include_instances
        extra = query.extra_fields
        return list(await asyncio.gather(*(self._study(s, include, extra) for s in studies)))

    async def _study(
        self, study: DicomJson, include_instances: bool, extra: tuple[str, ...] = ()
    ) -> StudyRecord:
        uid = dj.text(study, tags.StudyInstanceUID) or ""
        fields = (*tags.SERIES_FIELDS, *extra)
        async with self._limit:
            series = await self._qido(
                f"/studies/{uid}/series", [("includefield", f) for f in fields], "series"
            )
        series = _listed_under(study, series, "series")
        instances: dict[str, list[DicomJson]] | None = None
        if include_instances:
            async with self._limit:
                found = await self._qido(
                    f"/studies/{uid}/instances",
                    [("includefield", f) for f in tags.INSTANCE_FIELDS],
                    "instances",
                )
            instances = {}
            for inst in _listed_under(study, found, "instances"):
                instances.setdefault(dj.text(inst, tags.SeriesInstanceUID) or "", []).append(inst)
        records = [
            SeriesRecord(
                s, None if instances is None else instances.get(dj.text(s, tags.SeriesInstanceUID) or "", [])
            )
            for s in series
        ]
        records.sort(
            key=lambda r: (
                dj.integer(r.series, tags.SeriesNumber) is None,
                dj.integer(r.series, tags.SeriesNumber) or 0,
            )
        )
        return StudyRecord(study=study, series=records)

    async def query(self, query: QidoQuery) -> list[DicomJson]:
        """The archive's QIDO-RS for the bound study only (its UID in the path or as the key);
        a 404 for a series of it is an empty answer (the client named it)."""
        # "all" and the named fields: Orthanc's "all" leaves out attributes without a value
        params = [("includefield", f) for f in (("all",) if query.all_fields else ()) + query.fields]
        study, series = query.study_uid, query.series_uid
        if query.level == "studies":
            path, params = "/studies", [*params, ("StudyInstanceUID", study)]
        elif query.level == "series":
            path, params = f"/studies/{study}/series", params + _series_key(series)
        else:
            path = f"/studies/{study}" + (f"/series/{series}" if series else "") + "/instances"
        try:
            return await self._qido(path, params, query.level, query.public_base)
        except NotFound:
            return []

    async def _qido(
        self, path: str, params: list[tuple[str, str]], level: str = "studies", public_base: str | None = None
    ) -> list[DicomJson]:
        """``public_base`` None: our own search (a 404 is the archive's inconsistency, 502); else
        QIDO-RS under an Endpoint (a 404 is NotFound, RetrieveURLs moved under it)."""
        # "*" and "?" stay unescaped: archives differ in decoding %2A, and a literal wildcard
        # gives the same superset everywhere, which StudyQuery.matches() then narrows to exact values.
        query = urlencode(params, quote_via=quote, safe="*?")
        request = self._http.build_request(
            "GET",
            f"{self._base}{path}?{query}",
            timeout=self._timeout,
            headers={**self._headers, "Accept": "application/dicom+json"},
        )
        try:
            response = await self._send(request, stream=True)
        except NotFound:
            if public_base is not None:
                raise
            # Our search, not the client's resource: a 404 is the archive's inconsistency (it
            # listed the study) or a wrong endpoint, never "not found" for the client.
            raise UpstreamError(f"the image archive answered 404 to a QIDO-RS search for {level}") from None
        raw = await _read(response, MAX_QIDO, "QIDO-RS answer")
        if response.status_code == 204 or not raw.strip():
            return []
        try:
            found = safe_json.loads(raw, max_bytes=MAX_QIDO)
        except safe_json.UnsafeJson as exc:
            raise UpstreamError(f"the image archive answered QIDO-RS with unusable JSON ({exc})") from None
        if not isinstance(found, list):
            raise UpstreamError("the image archive answered QIDO-RS with an unexpected document")
        datasets, dropped = dj.clean_datasets(found)
        if dropped:
            log.warning("image archive QIDO-RS answer for %s: %d unusable values dropped", level, dropped)
        _move_retrieve_urls(datasets, public_base or "")  # the archive's own addresses stay here
        return datasets

    # ------------------------------------------------------------------ retrieve (WADO-RS)

    async def retrieve(self, request: WadoRequest) -> WadoResponse:
        params: list[tuple[str, str | int | float | bool | None]] = (
            [(k, v) for k, v in request.params if k in RENDERED_PARAMS]
            if request.resource in ("rendered", "thumbnail")
            else []
        )
        headers = dict(self._headers)
        if request.accept:
            headers["Accept"] = request.accept
        upstream = self._http.build_request(
            "GET", self._base + request.path(), params=params, headers=headers, timeout=self._timeout
        )
        response = await self._send(upstream, stream=True)
        if request.resource == "metadata":
            return await self._metadata(response, request)
        try:
            return _relayed(response, request.public_base)
        except UpstreamError:
            await response.aclose()
            raise

    async def _metadata(self, response: httpx.Response, request: WadoRequest) -> WadoResponse:
        raw = await _read(response, MAX_METADATA, "metadata")
        try:
            document = safe_json.loads(raw, max_bytes=MAX_METADATA)
        except safe_json.UnsafeJson as exc:
            raise UpstreamError(f"the image archive answered metadata with unusable JSON ({exc})") from None
        if not isinstance(document, list):
            raise UpstreamError("the image archive answered metadata with an unexpected document")
        datasets, dropped = dj.clean_datasets(document, lambda uri: rebase(uri, request.public_base))
        if request.mrn is not None:
            mine = [ds for ds in datasets if dj.text(ds, tags.PatientID) in (None, request.mrn)]
            if len(mine) < len(datasets):
                log.warning(
                    "image archive metadata: %d instances of another patient dropped",
                    len(datasets) - len(mine),
                )
            datasets = mine
        if dropped:
            log.warning("image archive metadata: %d unusable values dropped", dropped)
        _move_retrieve_urls(datasets, request.public_base)
        body = json.dumps(datasets, separators=(",", ":")).encode()
        return WadoResponse(
            media_type="application/dicom+json", body=_once(body), headers={"content-length": str(len(body))}
        )

    # ------------------------------------------------------------------ plumbing

    async def _send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            response = await self._http.send(
                request, stream=stream, auth=self._auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.TimeoutException:
            raise UpstreamTimeout("image archive timed out") from None
        except httpx.TransportError:
            raise UpstreamError("image archive unreachable") from None
        if response.status_code < 300:
            return response
        if stream:
            await response.aclose()
        raise _status_error(response.status_code)

    async def aclose(self) -> None:
        return None


def _status_error(status: int) -> SmartImagingError:
    if status == 404:
        return NotFound("not found in the image archive")
    if status == 406:
        return NotAcceptable("the image archive cannot produce the requested media type")
    if status in (400, 415):
        return BadRequest(f"the image archive rejected the request (HTTP {status})")
    if status in (401, 403):
        return UpstreamError("the image archive refused the server's credentials")
    if status == 504:
        return UpstreamTimeout("the image archive timed out")
    return UpstreamError(f"the image archive failed (HTTP {status})")


def _relayed(response: httpx.Response, public_base: str) -> WadoResponse:
    """The archive's answer as we pass it on: multipart bodies verified, archive URLs moved."""
    media_type = response.headers.get("content-type", "application/octet-stream")
    if not _header_safe(media_type):
        raise UpstreamError("the image archive answered with an invalid Content-Type")
    headers = {}
    location = response.headers.get("content-location")
    moved = rebase(location, public_base) if location else None
    if moved:
        headers["content-location"] = moved
    warning = response.headers.get("warning")
    if warning and _header_safe(warning):
        headers["warning"] = warning
    body = _stream(response)
    if media_type.lower().startswith("multipart/"):
        boundary = multipart.boundary_of(media_type)
        if boundary is None or not valid_boundary(boundary):
            raise UpstreamError("the image archive answered with a multipart without a valid boundary")
        body = _relay(body, MultipartRelay(boundary, _part_rewrite(public_base)))
    elif "content-length" in response.headers and _identity(response):
        headers["content-length"] = response.headers["content-length"]
    return WadoResponse(media_type=media_type, body=body, headers=headers, close=response.aclose)


def _part_rewrite(public_base: str) -> HeaderRewrite:
    def rewrite(name: str, value: str) -> str | None:
        return rebase(value, public_base) if name == "content-location" else value

    return rewrite


async def _relay(chunks: AsyncGenerator[bytes, None], relay: MultipartRelay) -> AsyncGenerator[bytes, None]:
    """Pass the multipart on as it arrives; raise unless it ends with its closing delimiter."""
    try:
        async for chunk in chunks:
            for piece in relay.feed(chunk):
                yield piece
            if relay.complete:  # the epilogue, if any, is not worth waiting for
                break
        relay.close()
    except MultipartError as exc:
        raise IncompleteTransfer(f"the image archive's multipart answer is incomplete: {exc}") from None
    finally:
        await chunks.aclose()


def _identity(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").strip().lower() in ("", "identity")


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _series_key(series_uid: str | None) -> list[tuple[str, str]]:
    return [("SeriesInstanceUID", series_uid)] if series_uid else []


def _move_retrieve_urls(datasets: list[DicomJson], public_base: str) -> None:
    """RetrieveURL (0008,1190) names the archive: under our base when it can be, else removed."""
    for ds in datasets:
        urls = [rebase(u, public_base) for u in dj.texts(ds, tags.RetrieveURL)]
        kept = [u for u in urls if u]
        if kept:
            ds[tags.RetrieveURL] = dj.element("UR", *kept)
        else:
            ds.pop(tags.RetrieveURL, None)


def _listed_under(study: DicomJson, items: list[DicomJson], level: str) -> list[DicomJson]:
    """Series or instances an archive listed under ``study``, without any that name another
    study or patient (an inconsistent or hostile archive must not mix patients into a study)."""
    uid, patient = dj.text(study, tags.StudyInstanceUID), dj.text(study, tags.PatientID)
    kept = [
        item
        for item in items
        if dj.text(item, tags.StudyInstanceUID) in (None, uid)
        and dj.text(item, tags.PatientID) in (None, patient)
    ]
    if len(kept) < len(items):
        log.warning(
            "image archive listed %d %s of another study or patient: dropped", len(items) - len(kept), level
        )
    return kept


async def _read(response: httpx.Response, limit: int, what: str) -> bytes:
    """A whole (small) answer, refused once it exceeds ``limit`` bytes."""
    raw = bytearray()
    chunks = _stream(response)
    try:
        async for chunk in chunks:
            raw += chunk
            if len(raw) > limit:
                raise UpstreamError(f"the image archive's {what} exceeds the size limit")
    finally:
        await chunks.aclose()
    return bytes(raw)


async def _stream(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body as it arrives, one socket read (up to 1 MiB, see http_client) at a time.

    Raw bytes unless the archive compressed its answer despite ``Accept-Encoding: identity``.
    """
    try:
        async for chunk in response.aiter_raw() if _identity(response) else response.aiter_bytes():
            yield chunk
    except httpx.TimeoutException:
        raise UpstreamTimeout("image archive timed out mid-stream") from None
    except httpx.TransportError:
        raise UpstreamError("image archive connection failed mid-stream") from None
    except httpx.DecodingError:
        raise UpstreamError("image archive sent a body that cannot be decoded") from None
    finally:
        await response.aclose()


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body
