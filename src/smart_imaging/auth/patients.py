"""Reading the patient in the token's context from the EHR: ``GET {fhirBaseUrl}/Patient/{id}``.

The imaging server reads it with its own backend-services token (or, for the Meditech variant,
the app's token); the routes take the MRN from it by the tenant's FHIRPath expressions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from ..errors import UpstreamError
from .claims import FHIR_ID
from .outbound import request_json


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
