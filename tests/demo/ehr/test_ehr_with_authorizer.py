"""The imaging server's real ``smart-on-fhir`` authorizer against the sandbox over HTTP: the
demo's path (discovery, backend token by private_key_jwt ES384, introspection, Patient read)."""

from __future__ import annotations

import httpx
import pytest

from smart_imaging.auth import AuthRequest
from smart_imaging.config.tenant import SmartAuthorization
from smart_imaging.errors import Forbidden, Unauthorized
from smart_imaging.tenants.authorizers import build_authorizer

from .conftest import Sandbox


def _authorization(sandbox: Sandbox) -> SmartAuthorization:
    key, _ = sandbox.keys["imaging-server"]
    return SmartAuthorization.model_validate(
        {
            "type": "smart-on-fhir",
            "fhirBaseUrl": sandbox.fhir,
            "scope": "system/Patient.read",
            "client": {"client_id": "imaging-server", "jwkPrivate": key.as_dict(private=True)},
        }
    )


async def test_authorizer_introspects_sandbox_tokens(sandbox: Sandbox) -> None:
    user = sandbox.launch(scope="launch/patient patient/ImagingStudy.rs", patient="sam-patel")
    async with httpx.AsyncClient(timeout=10) as http:
        authorizer = build_authorizer(_authorization(sandbox), http)
        grant = await authorizer.authorize(AuthRequest(token=user["access_token"], tenant="demo"))
        assert grant.patient_id == "sam-patel" and grant.client_id == "my-app"
        patient = await authorizer.patient(grant)
        assert patient is not None and patient["identifier"][0]["value"] == "MRN-1004"
        with pytest.raises(Unauthorized):
            await authorizer.authorize(AuthRequest(token="not-a-sandbox-token", tenant="demo"))
        await authorizer.aclose()


async def test_authorizer_refuses_token_without_imaging_scope(sandbox: Sandbox) -> None:
    user = sandbox.launch(scope="launch/patient patient/Condition.rs", patient="ava-chen")
    async with httpx.AsyncClient(timeout=10) as http:
        authorizer = build_authorizer(_authorization(sandbox), http)
        with pytest.raises((Forbidden, Unauthorized)):
            await authorizer.authorize(AuthRequest(token=user["access_token"], tenant="demo"))
        await authorizer.aclose()
