"""The ``dicom-web`` image source: QIDO-RS search and WADO-RS retrieval over httpx (PS3.18).

Search results are filtered again by exact PatientID, since QIDO matching treats ``*`` and
``?`` as wildcards and ``\\`` as a value separator: an MRN must never widen the match.
Retrieval streams the archive's body through unchanged, chunk by chunk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from ..dicom import json_model as dj
from ..dicom import tags
from ..errors import (
    BadRequest,
    NotAcceptable,
    NotFound,
    SmartImagingError,
    UpstreamError,
    UpstreamTimeout,
)
from ..tenants.config import BasicAuthentication, BearerAuthentication, DicomWebImages
from .base import SeriesRecord, StudyQuery, StudyRecord, WadoRequest, WadoResponse
from .wado_paths import wado_path

MAX_METADATA = 256 * 1024 * 1024
RENDERED_PARAMS = {"window", "viewport", "quality", "annotation", "charset"}


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
        if query.patient_id is not None and (not query.patient_id.strip() or "\\" in query.patient_id):
            return []  # empty matches every study (PS3.4 C.2.2.2.1); LO values never hold "\\"
        params: list[tuple[str, str]] = [("includefield", f) for f in tags.STUDY_FIELDS]
        if query.patient_id is not None:
            params.append(("PatientID", query.patient_id))
        if query.study_uids:
            params.append(("StudyInstanceUID", ",".join(query.study_uids)))
        studies = [s for s in await self._qido("/studies", params) if query.matches(s)]
        if not query.include_series:
            return [StudyRecord(study=s) for s in studies]
        include = query.include_instances and self._include_instances
        return list(await asyncio.gather(*(self._study(s, include) for s in studies)))

    async def _study(self, study: dict[str, Any], include_instances: bool) -> StudyRecord:
        uid = dj.text(study, tags.StudyInstanceUID) or ""
        async with self._limit:
            series = await self._qido(
                f"/studies/{uid}/series", [("includefield", f) for f in tags.SERIES_FIELDS]
            )
        instances: dict[str, list[dict[str, Any]]] | None = None
        if include_instances:
            async with self._limit:
                found = await self._qido(
                    f"/studies/{uid}/instances", [("includefield", f) for f in tags.INSTANCE_FIELDS]
                )
            instances = {}
            for inst in found:
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

    async def _qido(self, path: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        # "*" and "?" stay unescaped: archives differ in decoding %2A, and a literal wildcard
        # gives the same superset everywhere, which StudyQuery.matches() then narrows to exact values.
        query = urlencode(params, quote_via=quote, safe="*?")
        request = self._http.build_request(
            "GET",
            f"{self._base}{path}?{query}",
            timeout=self._timeout,
            headers={**self._headers, "Accept": "application/dicom+json"},
        )
        response = await self._send(request, stream=False)
        if response.status_code == 204 or not response.content.strip():
            return []
        try:
            found = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UpstreamError("image archive answered QIDO-RS with invalid JSON") from None
        if not isinstance(found, list) or not all(isinstance(x, dict) for x in found):
            raise UpstreamError("image archive answered QIDO-RS with an unexpected document")
        return found

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
            "GET", self._base + wado_path(request), params=params, headers=headers, timeout=self._timeout
        )
        response = await self._send(upstream, stream=True)
        media_type = response.headers.get("content-type", "application/octet-stream")
        if request.resource == "metadata":
            return await self._metadata(response, media_type, request.public_base)
        passed = {
            k: v
            for k, v in response.headers.items()
            if k.lower() in ("content-length", "content-location", "warning")
        }
        return WadoResponse(
            media_type=media_type, body=_stream(response), headers=passed, close=response.aclose
        )

    async def _metadata(self, response: httpx.Response, media_type: str, public_base: str) -> WadoResponse:
        raw = bytearray()
        chunks = _stream(response)
        async for chunk in chunks:
            raw += chunk
            if len(raw) > MAX_METADATA:
                await chunks.aclose()
                raise UpstreamError("image archive metadata exceeds the size limit")
        try:
            document = json.loads(bytes(raw))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UpstreamError("image archive answered metadata with invalid JSON") from None
        _rewrite_bulkdata(document, public_base)
        body = json.dumps(document, separators=(",", ":")).encode()
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


async def _stream(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body as it arrives, one socket read (up to 1 MiB, see http_client) at a time."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.TimeoutException:
        raise UpstreamTimeout("image archive timed out mid-stream") from None
    except httpx.TransportError:
        raise UpstreamError("image archive connection failed mid-stream") from None
    finally:
        await response.aclose()


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _rewrite_bulkdata(node: Any, public_base: str) -> None:
    """Point every BulkDataURI at our WADO-RS base instead of the archive's."""
    if isinstance(node, list):
        for item in node:
            _rewrite_bulkdata(item, public_base)
    elif isinstance(node, dict):
        uri = node.get("BulkDataURI")
        if isinstance(uri, str):
            at = uri.find("/studies/")
            if at >= 0 and public_base:
                node["BulkDataURI"] = public_base + uri[at:]
            else:
                del node["BulkDataURI"]
        for value in node.values():
            if isinstance(value, (dict, list)):
                _rewrite_bulkdata(value, public_base)
