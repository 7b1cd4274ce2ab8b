"""The ``PatientResolver`` of SMART tenants: ``GET {fhirBaseUrl}/Patient/{id}`` at the EHR.

The imaging server reads the Patient in the token's context with its own backend-services token
(the Meditech variant pins it with the app's token instead, ``pins``); the routes take the MRN from
it by the tenant's FHIRPath expressions (``fhir.mrn``). FHIR R4 RESTful API, "read".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from ..errors import UpstreamError
from .backend import BackendTokens
from .base import AccessGrant
from .claims import FHIR_ID
from .decision_cache import DecisionCache, Outcome
from .outbound import request_json

MAX_PATIENTS = 10_000


class CredentialsRejected(UpstreamError):
    """The EHR answered 401 to our token: the caller may renew it and retry once."""


class PatientRefused(UpstreamError):
    """The EHR answered 403 or 404: this token (or our client) may not read that Patient."""


async def fetch_patient(
    http: httpx.AsyncClient, fhir_base_url: str, patient_id: str, bearer: str, *, timeout: float
) -> dict[str, Any]:
    if not FHIR_ID.fullmatch(patient_id):
        raise UpstreamError("patient id in the token context is not a valid FHIR id")
    url = f"{fhir_base_url.rstrip('/')}/Patient/{quote(patient_id, safe='')}"
    headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {bearer}"}
    status, body = await request_json(
        http, "GET", url, what="EHR Patient read", timeout=timeout, headers=headers
    )
    if status == 401:
        raise CredentialsRejected("EHR refused the server's credentials for Patient read")
    if status in (403, 404):
        raise PatientRefused(f"EHR Patient read answered status {status}")
    if body is None:
        raise UpstreamError(f"EHR Patient read answered status {status}")
    if body.get("resourceType") != "Patient" or body.get("id") != patient_id:
        raise UpstreamError("EHR Patient read did not answer the requested Patient")
    return body


class EhrPatients:
    """Patients read with the backend token, cached by id for ``ttl`` seconds (single flight).

    A grant that already carries its Patient (``extra["patient"]``, set by a pin) answers that.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        fhir_base_url: str,
        backend: BackendTokens | None,
        *,
        ttl: float,
        timeout: float,
    ) -> None:
        self._http = http
        self._fhir_base_url = fhir_base_url
        self._backend = backend
        self._ttl = ttl
        self._timeout = timeout
        self._cache: DecisionCache[dict[str, Any]] = DecisionCache(MAX_PATIENTS)

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        known = grant.extra.get("patient")
        if isinstance(known, dict):
            return known
        patient_id = grant.patient_id
        if patient_id is None:
            return None
        return await self._cache.get_or_compute(patient_id, lambda: self._read(patient_id))

    async def _read(self, patient_id: str) -> Outcome[dict[str, Any]]:
        backend = self._backend
        if backend is None:
            raise UpstreamError("no backend-services client configured for this EHR")
        try:
            resource = await self._fetch(patient_id, await backend.token())
        except CredentialsRejected:
            backend.forget()  # the EHR may have revoked it early: renew once
            resource = await self._fetch(patient_id, await backend.token())
        return Outcome.granted(resource, self._ttl)

    async def _fetch(self, patient_id: str, bearer: str) -> dict[str, Any]:
        return await fetch_patient(self._http, self._fhir_base_url, patient_id, bearer, timeout=self._timeout)

    def clear(self) -> None:
        self._cache.clear()
