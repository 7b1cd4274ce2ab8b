"""The ``RequestBinder`` of EHRs whose tokens name no patient (the Meditech variant).

Trusting the request for the patient is insecure, so it runs only with
``allowInsecurePatientFromRequest`` (``gate``); otherwise every request is refused with 403. The
safe rule that binds WADO requests: the first ImagingStudy search with ``?patient=X`` pins the
token (by its hash) to X, after the EHR has served ``Patient/X`` for that token (so the EHR itself
checks that this token may read that patient). The token can then never be used for another
patient (403), and WADO requests, which name no patient, get the pinned one; a WADO request with a
token that was never pinned is refused. Pins live until the token expires (one hour when the EHR
gives no ``exp``) and are bounded in number. If the EHR's introspection does name a patient, that
patient wins and nothing is taken from the request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from ..cache import TtlCache
from ..errors import Forbidden
from .base import AccessGrant, AuthRequest
from .claims import FHIR_ID
from .decision_cache import Refusal, SingleFlight
from .patients import PatientRefused, fetch_patient

log = logging.getLogger("smart_imaging.auth")

MAX_PINS = 10_000
PIN_TTL_WITHOUT_EXP = 3600.0


def gate(kind: str, allowed: bool) -> Refusal | None:
    """The refusal for every request of a tenant that has not opted in; warns either way."""
    if allowed:
        log.warning(
            "authorization type %s trusts the request for the patient "
            "(allowInsecurePatientFromRequest); do not use it in production",
            kind,
        )
        return None
    log.warning(
        "authorization type %s takes the patient from the request; it refuses every "
        "request until the tenant sets allowInsecurePatientFromRequest",
        kind,
    )
    return Refusal.of(
        Forbidden(
            "this tenant's authorization type takes the patient from the request and "
            "is disabled until allowInsecurePatientFromRequest is set"
        )
    )


@dataclass(frozen=True)
class Pin:
    patient_id: str
    resource: dict[str, Any]


class PatientPins:
    """Pins each token to the first patient a search names (see the module doc)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        fhir_base_url: str,
        *,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._fhir_base_url = fhir_base_url
        self._timeout = timeout
        self._clock = clock
        self._pins: TtlCache[str, Pin] = TtlCache(MAX_PINS)
        self._flight: SingleFlight[Pin] = SingleFlight()

    async def bind(self, grant: AccessGrant, request: AuthRequest, key: str) -> AccessGrant:
        if grant.disable_authz_checks:
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
                pin = await self._flight.run(key, lambda: self._pin(key, target, token, exp))
            if pin.patient_id != target:
                raise Forbidden("this access token is bound to another patient")
        return replace(grant, patient_id=pin.patient_id, extra={**grant.extra, "patient": pin.resource})

    async def _pin(self, key: str, patient_id: str, token: str, exp: object) -> Pin:
        existing = self._pins.get(key)
        if existing is not None:
            return existing
        try:
            resource = await fetch_patient(
                self._http, self._fhir_base_url, patient_id, token, timeout=self._timeout
            )
        except PatientRefused as exc:
            raise Forbidden("the EHR does not let this access token read that patient") from exc
        pin = Pin(patient_id, resource)
        ttl = exp - self._clock() if isinstance(exp, (int, float)) else PIN_TTL_WITHOUT_EXP
        self._pins.put(key, pin, ttl)
        return pin

    def clear(self) -> None:
        self._pins.clear()
