"""The ``mock`` authorizer: no token needed; the patient is fixed by the config, if any."""

from __future__ import annotations

from typing import Any

from ..tenants.config import MockAuthorization
from .base import AccessGrant, AuthRequest


class MockAuthorizer:
    def __init__(self, config: MockAuthorization) -> None:
        self._patient = config.patient
        self._checks_disabled = config.disableAuthzChecks

    async def authorize(self, request: AuthRequest) -> AccessGrant:
        patient_id = str(self._patient["id"]) if self._patient and self._patient.get("id") else None
        return AccessGrant(
            patient_id=patient_id,
            checks_disabled=self._checks_disabled,
            scopes=frozenset({"patient/*.rs"}),
            client_id="mock",
        )

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        return dict(self._patient) if self._patient else None

    async def ehr_configuration(self) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        return None
