"""A study's real modification time from the archive's own API, for ``_lastUpdated`` and
``meta.lastUpdated`` (IG "Finding studies": "only studies updated since the app last checked").

DICOM has no standard attribute for when an archive last changed a study, so this is
vendor-specific and opt-in per tenant (``images.lastUpdated``):

- ``"orthanc"``: Orthanc's ``LastUpdate`` of each study (set when an instance is added or the
  study changes; UTC), read with one ``POST {orthancApi}/tools/find`` per search page of up to
  ``CHUNK`` studies (``Expand``: true), with the DICOMweb source's credentials.

Where no time is known the search falls back to the study's start and the CapabilityStatement
says so (``fhir.capability.LAST_UPDATED_DOC``). A failure of the archive's API fails a search that
filters on ``_lastUpdated`` (502/504: an incremental sync must not silently miss studies) and
otherwise only leaves ``meta.lastUpdated`` out, with a warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import httpx

from ..config.tenant import BasicAuthentication, BearerAuthentication, DicomWebImages
from ..dicom import json_model as dj
from ..dicom import tags
from ..errors import SmartImagingError, UpstreamError, UpstreamTimeout
from ..sources import StudyRecord

log = logging.getLogger(__name__)
CHUNK = 50
MAX_BODY = 16 * 1024 * 1024
_ORTHANC_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})$")


def orthanc_api(config: DicomWebImages) -> str:
    """Orthanc's REST base: ``orthancApi``, else the DICOMweb endpoint without ``/dicom-web``."""
    if config.orthancApi:
        return config.orthancApi
    return re.sub(r"/dicom-web/?$", "", config.endpoint)


def fhir_instant(value: object) -> str | None:
    """Orthanc's ``20240131T235959`` (UTC) as a FHIR instant, or None."""
    found = _ORTHANC_TIME.match(value) if isinstance(value, str) else None
    if found is None:
        return None
    y, mo, d, h, mi, s = found.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}Z"


class OrthancLastUpdate:
    def __init__(self, config: DicomWebImages, http: httpx.AsyncClient) -> None:
        self._url = orthanc_api(config) + "/tools/find"
        self._http = http
        self._timeout = config.timeout
        self._auth: httpx.Auth | None = None
        self._headers = {"Accept": "application/json"}
        auth = config.authentication
        if isinstance(auth, BasicAuthentication):
            self._auth = httpx.BasicAuth(auth.username, auth.password.get_secret_value())
        elif isinstance(auth, BearerAuthentication):
            self._headers["Authorization"] = f"Bearer {auth.token.get_secret_value()}"

    async def annotate(self, records: Sequence[StudyRecord], required: bool) -> None:
        """Set ``last_updated`` of each record Orthanc knows; ``required``: fail instead of warn."""
        uids = [uid for r in records if (uid := dj.text(r.study, tags.StudyInstanceUID))]
        try:
            times: dict[str, str] = {}
            for start in range(0, len(uids), CHUNK):
                times.update(await self._find(uids[start : start + CHUNK]))
        except SmartImagingError:
            if required:
                raise
            log.warning("Orthanc LastUpdate unavailable: meta.lastUpdated left out")
            return
        for record in records:
            found = times.get(dj.text(record.study, tags.StudyInstanceUID) or "")
            if found:
                record.last_updated = found

    async def _find(self, uids: list[str]) -> dict[str, str]:
        body = {"Level": "Study", "Query": {"StudyInstanceUID": "\\".join(uids)}, "Expand": True}
        try:
            response = await self._http.post(
                self._url,
                json=body,
                headers=self._headers,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the image archive's REST API did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the image archive's REST API failed ({type(exc).__name__})") from exc
        if response.status_code != 200 or len(response.content) > MAX_BODY:
            raise UpstreamError(f"the image archive's REST API answered {response.status_code} to tools/find")
        return _times(response)


def _times(response: httpx.Response) -> dict[str, str]:
    try:
        found: Any = response.json()
    except ValueError as exc:
        raise UpstreamError("the image archive's REST API did not answer JSON") from exc
    if not isinstance(found, list):
        raise UpstreamError("the image archive's REST API answered an unexpected document")
    times: dict[str, str] = {}
    for study in found:
        tags_ = study.get("MainDicomTags") if isinstance(study, dict) else None
        uid = tags_.get("StudyInstanceUID") if isinstance(tags_, dict) else None
        instant = fhir_instant(study.get("LastUpdate")) if isinstance(study, dict) else None
        if isinstance(uid, str) and instant:
            times[uid] = instant
    return times
