"""Vendor variants of ``smart-on-fhir``: each a small subclass for one EHR's quirks.

Routes never branch on vendor (DESIGN.md rule 2); only these classes do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..errors import Forbidden
from .base import AccessGrant, AuthRequest
from .claims import FHIR_ID, patient_claim
from .decision_cache import SingleFlight, TtlCache
from .discovery import SmartEndpoints
from .patients import PatientRefused, fetch_patient
from .scopes import IMAGING_RESOURCES
from .smart import MAX_DECISIONS, SmartAuthorizer

log = logging.getLogger("smart_imaging.auth")

# Apps for these EHRs ask for imaging through reports: v1 ``patient/DiagnosticReport.read``.
REPORT_RESOURCES = (*IMAGING_RESOURCES, "DiagnosticReport")
PIN_TTL_WITHOUT_EXP = 3600.0


class EpicAuthorizer(SmartAuthorizer):
    """``smart-on-fhir-with-epic-bugfixes``.

    Quirks worked around: Epic's smart-configuration names no introspection endpoint, so it is
    derived from the token endpoint (``.../oauth2/token`` -> ``.../oauth2/introspect``) unless
    the config sets one; its introspection answers may carry the patient only as the ``sub``
    URL (``{fhirBaseUrl}/Patient/{id}``), accepted only under this tenant's ``fhirBaseUrl``;
    its apps hold SMART v1 scopes, where ``patient/DiagnosticReport.read`` also grants imaging.
    """

    resources: ClassVar[tuple[str, ...]] = REPORT_RESOURCES

    async def introspection_endpoint(self, endpoints: SmartEndpoints) -> str:
        if self.config.introspectionEndpoint:
            return self.config.introspectionEndpoint
        token_endpoint = endpoints.require("token_endpoint")
        base, slash, last = token_endpoint.rstrip("/").rpartition("/")
        return (
            f"{base}/introspect" if slash and last == "token" else endpoints.require("introspection_endpoint")
        )

    def patient_from_claims(self, claims: dict[str, Any]) -> str | None:
        found = patient_claim(claims)
        if found is not None:
            return found
        sub = claims.get("sub")
        prefix = self.config.fhirBaseUrl.rstrip("/") + "/Patient/"
        if isinstance(sub, str) and sub.startswith(prefix) and FHIR_ID.fullmatch(sub[len(prefix) :]):
            return sub[len(prefix) :]
        return None


@dataclass(frozen=True)
class _Pin:
    patient_id: str
    resource: dict[str, Any]


class MeditechAuthorizer(SmartAuthorizer):
    """``smart-on-fhir-with-meditech-bugfixes``.

    Quirks worked around: no backend services, so introspection uses the client's secret
    (``client_secret_basic``); introspection answers carry no patient, so the patient comes from
    the request; the Patient resource is read with the app's own token (so the EHR itself checks
    that this token may read that patient); v1 scopes incl. ``patient/DiagnosticReport.read``.

    Trusting the request is insecure, so this runs only with ``allowInsecurePatientFromRequest``;
    otherwise every request is refused with 403. The safe rule that binds WADO requests: the
    first ImagingStudy search with ``?patient=X`` pins the token (by its hash) to X, after the
    EHR has served ``Patient/X`` for that token. The token can then never be used for another
    patient (403), and WADO requests, which name no patient, get the pinned one; a WADO request
    with a token that was never pinned is refused. Pins live until the token expires (one hour
    when the EHR gives no ``exp``) and are bounded in number. If the EHR's introspection does
    name a patient, that patient wins and nothing is taken from the request.
    """

    resources: ClassVar[tuple[str, ...]] = REPORT_RESOURCES
    needs_backend: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pins: TtlCache[_Pin] = TtlCache(MAX_DECISIONS)
        self._pin_flight: SingleFlight[_Pin] = SingleFlight()
        if not self.config.allowInsecurePatientFromRequest:
            log.warning(
                "authorization type %s takes the patient from the request; it refuses every "
                "request until the tenant sets allowInsecurePatientFromRequest",
                self.config.type,
            )
        else:
            log.warning(
                "authorization type %s trusts the request for the patient "
                "(allowInsecurePatientFromRequest); do not use it in production",
                self.config.type,
            )

    def introspection_auth_kind(self) -> str:
        return "client_secret_basic"

    def requires_token_patient(self) -> bool:
        return False

    async def authorize(self, request: AuthRequest) -> AccessGrant:
        if not self.config.allowInsecurePatientFromRequest:
            raise Forbidden(
                "this tenant's authorization type takes the patient from the request and "
                "is disabled until allowInsecurePatientFromRequest is set"
            )
        return await super().authorize(request)

    async def bind_request(self, grant: AccessGrant, request: AuthRequest, key: str) -> AccessGrant:
        if grant.checks_disabled:
            return grant
        requested = (request.requested_patient or "").removeprefix("Patient/") or None
        target = grant.patient_id or requested
        pin = self._pins.get(key)
        if target is None:
            if pin is None:
                raise Forbidden("search ImagingStudy?patient= first: this EHR's tokens name no patient")
        else:
            if not FHIR_ID.fullmatch(target):
                raise Forbidden("invalid patient id")
            if pin is None:
                token, exp = request.token or "", grant.extra.get("exp")
                pin = await self._pin_flight.run(key, lambda: self._pin(key, target, token, exp))
            if pin.patient_id != target:
                raise Forbidden("this access token is bound to another patient")
        return replace(grant, patient_id=pin.patient_id, extra={**grant.extra, "patient": pin.resource})

    async def _pin(self, key: str, patient_id: str, token: str, exp: object) -> _Pin:
        existing = self._pins.get(key)
        if existing is not None:
            return existing
        try:
            resource = await fetch_patient(
                self._http, self.config.fhirBaseUrl, patient_id, token, timeout=self._timeout
            )
        except PatientRefused:
            raise Forbidden("the EHR does not let this access token read that patient") from None
        pin = _Pin(patient_id, resource)
        ttl = exp - time.time() if isinstance(exp, (int, float)) else PIN_TTL_WITHOUT_EXP
        self._pins.put(key, pin, ttl)
        return pin
