"""The ``mock`` authorization type: no token needed; the patient is fixed by the config, if any.

Its parts: a ``TokenVerifier`` that vouches for the configured claims whatever the request
carries, and a ``PatientResolver`` that answers the configured Patient resource.
"""

from __future__ import annotations

from typing import Any

from .base import AccessGrant
from .parts import VerifiedToken

MOCK_SCOPE = "patient/*.rs"
MOCK_CLIENT = "mock"


class MockVerifier:
    needs_token = False

    def __init__(self, patient: dict[str, Any] | None) -> None:
        claims: dict[str, Any] = {"active": True, "scope": MOCK_SCOPE, "client_id": MOCK_CLIENT}
        if patient and patient.get("id"):
            claims["patient"] = str(patient["id"])
        self._claims = claims

    async def verify(self, token: str | None) -> VerifiedToken:
        return VerifiedToken(dict(self._claims))


class ConfiguredPatient:
    def __init__(self, patient: dict[str, Any] | None) -> None:
        self._patient = patient

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        return dict(self._patient) if self._patient else None

    def clear(self) -> None:
        return None
