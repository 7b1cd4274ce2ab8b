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
(``Content-Location``) and in BulkDataURIs are moved under our WADO-RS base or dropped
(``dicomweb_http``). A transfer syntax the client names is asked of the archive, what comes back
is checked, and what the archive cannot make is transcoded here (``dicomweb_syntax``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import overload
from urllib.parse import quote, urlencode

import httpx
import orjson

from ..config.tenant import BasicAuthentication, BearerAuthentication, DicomWebImages
from ..dicom import json_model as dj
from ..dicom import safe_json, tags
from ..errors import (
    NotFound,
    UpstreamError,
    UpstreamTimeout,
)
from ..wado.negotiate import InstanceSyntaxes, check_metadata, frames_as_stored, instance_syntaxes
from ..wado.qido import QidoQuery
from ..wado.request import rebase
from . import dicomweb_http as http_
from . import dicomweb_syntax as syntax
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
        self._timeout_options = self._timeout.as_dict()
        self._concurrency = config.seriesConcurrency  # per search: the pool bounds the archive's load
        self._include_instances = config.includeInstances
        self._headers = {"Accept-Encoding": "identity"}
        auth = config.authentication
        if isinstance(auth, BasicAuthentication):  # as a header: no auth flow per request
            userpass = f"{auth.username}:{auth.password.get_secret_value()}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(userpass).decode("ascii")
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
        limit = asyncio.Semaphore(self._concurrency)
        return list(await asyncio.gather(*(self._study(s, include, limit, extra) for s in studies)))

    async def _study(
        self, study: DicomJson, include_instances: bool, limit: asyncio.Semaphore, extra: tuple[str, ...] = ()
    ) -> StudyRecord:
        uid = dj.text(study, tags.StudyInstanceUID) or ""
        fields = (*tags.SERIES_FIELDS, *extra)
        async with limit:
            series = await self._qido(
                f"/studies/{uid}/series", [("includefield", f) for f in fields], "series"
            )
        series = _listed_under(study, series, "series")
        instances: dict[str, list[DicomJson]] | None = None
        if include_instances:
            async with limit:
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
        raw = await http_.read_limited(response, MAX_QIDO, "QIDO-RS answer")
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
        if request.resource == "":
            syntaxes = instance_syntaxes(request.accept)  # 406 for what is no DICOM
            if not syntaxes.as_stored:
                return await self._instances_in(request, syntaxes)
        elif request.resource == "metadata":
            check_metadata(request.accept)
        elif request.resource == "frames" and not frames_as_stored(request.accept):
            return await self._frames_in(request)
        response = await self._send(self._wado(request, request.accept), stream=True)
        if request.resource == "metadata":
            return await self._metadata(response, request)
        try:
            return http_.relayed(response, request.public_base)
        except UpstreamError:
            await response.aclose()
            raise

    def _wado(self, request: WadoRequest, accept: str | None, path: str | None = None) -> httpx.Request:
        params: list[tuple[str, str | int | float | bool | None]] = (
            [(k, v) for k, v in request.params if k in RENDERED_PARAMS]
            if request.resource in ("rendered", "thumbnail")
            else []
        )
        headers = {**self._headers, **({"Accept": accept} if accept else {})}
        url = self._base + (path or request.path())
        if params:
            return self._http.build_request("GET", url, params=params, headers=headers, timeout=self._timeout)
        # the hot path (a frame, metadata): the request as is, without merging the client's defaults
        return httpx.Request("GET", url, headers=headers, extensions={"timeout": self._timeout_options})

    async def _instances_in(self, request: WadoRequest, syntaxes: InstanceSyntaxes) -> WadoResponse:
        """Instances in the syntaxes asked (``dicomweb_syntax``): asked of the archive, checked,
        and transcoded here where the archive could not."""
        asked = syntax.asked_of_archive(syntaxes)
        response = await self._send(
            self._wado(request, asked), stream=True, fallback=asked != syntax.ANY_DICOM
        )
        if response is None:  # the archive cannot make it: as stored, transcoded here
            response = await self._send(self._wado(request, syntax.ANY_DICOM), stream=True)
        try:
            kind, body = syntax.checked_instances(
                response.headers.get("content-type", ""),
                http_.stream_body(response),
                syntaxes,
                request.public_base,
            )
        except UpstreamError:
            await response.aclose()
            raise
        return WadoResponse(kind, body, close=response.aclose)

    async def _frames_in(self, request: WadoRequest) -> WadoResponse:
        """Frames in a syntax that needs checking: the archive's, if they fit, else made here."""
        response = await self._send(self._wado(request, request.accept), stream=True, fallback=True)
        if response is not None:
            raw = await http_.read_limited(response, MAX_METADATA, "frames")
            kind = response.headers.get("content-type", "")
            fitting = syntax.frames_fit(request.accept, kind, raw)
            if fitting is not None:
                return syntax.relabelled_frames(fitting, request.public_base)
        whole = WadoRequest(request.study_uid, request.series_uid, request.instance_uid)
        stored = await self._send(self._wado(whole, syntax.ANY_DICOM), stream=True)
        raw = await http_.read_limited(stored, syntax.MAX_INSTANCE, "instance")
        instance = syntax.single_part(stored.headers.get("content-type", ""), raw)
        return await syntax.local_frames(instance, request)

    async def _metadata(self, response: httpx.Response, request: WadoRequest) -> WadoResponse:
        raw = await http_.read_limited(response, MAX_METADATA, "metadata")
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
        body = _serialised(datasets)
        return WadoResponse(
            media_type="application/dicom+json",
            body=http_.once(body),
            headers={"content-length": str(len(body))},
        )

    # ------------------------------------------------------------------ plumbing

    @overload
    async def _send(self, request: httpx.Request, stream: bool) -> httpx.Response: ...

    @overload
    async def _send(self, request: httpx.Request, stream: bool, fallback: bool) -> httpx.Response | None: ...

    async def _send(
        self, request: httpx.Request, stream: bool, fallback: bool = False
    ) -> httpx.Response | None:
        """The archive's 2xx answer, else its error; ``fallback``: None for a status that says it
        cannot make what was asked (``dicomweb_syntax.CANNOT``), so the caller makes it."""
        try:
            response = await self._http.send(request, stream=stream)
        except httpx.TimeoutException:
            raise UpstreamTimeout("image archive timed out") from None
        except httpx.TransportError:
            raise UpstreamError("image archive unreachable") from None
        if response.status_code < 300:
            return response
        if stream:
            await response.aclose()
        if fallback and response.status_code in syntax.CANNOT:
            return None
        raise http_.status_error(response.status_code)

    async def aclose(self) -> None:
        return None


def _serialised(datasets: list[DicomJson]) -> bytes:
    """Compact JSON of the cleaned metadata; orjson, else (a value orjson refuses, such as an
    integer past 64 bits) the standard library."""
    try:
        return orjson.dumps(datasets)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(datasets, separators=(",", ":")).encode()


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
