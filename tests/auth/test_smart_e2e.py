"""Through the real imaging server and Orthanc, with real tokens from oidc-provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from oidc_server import OidcServer, free_port
from smart_ehr import EhrState

A, B = "77654033", "98890234"  # PatientIDs (MRNs) of pydicom's dicomdirtests sample studies
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


@pytest.fixture
def server(
    orthanc: Any, sample_data: Any, ehr: EhrState, smart_config, imaging_server: Callable[..., str]
) -> str:
    ehr.patients["pat-a"]["identifier"][0]["value"] = A
    ehr.patients["pat-b"]["identifier"][1]["value"] = B  # only under system urn:test:local-mrn
    images = {
        "type": "dicom-web",
        "endpoint": orthanc.dicomweb_url,
        "authentication": {"type": "http-basic", "username": orthanc.username, "password": orthanc.password},
    }
    return imaging_server(
        {
            "smart": {"authorization": smart_config(), "images": images},
            "by-text": {
                "authorization": smart_config(),
                "images": {**images, "mrn": ["identifier.where(system='urn:test:local-mrn').value"]},
            },
            "nocache": {"authorization": smart_config(cacheTtl=0, negativeCacheTtl=0), "images": images},
            "ehr-down": {
                "authorization": smart_config(fhirBaseUrl=f"http://127.0.0.1:{free_port()}/fhir"),
                "images": images,
            },
        }
    )


def search(base: str, tenant: str, patient: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(
        f"{base}/{tenant}/fhir/ImagingStudy", params={"patient": patient}, headers=headers, timeout=30
    )


def studies(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {
        e["resource"]["id"]: e["resource"]["contained"][0]["address"]
        for e in response.json().get("entry", [])
        if e["resource"]["resourceType"] == "ImagingStudy"
    }


def test_token_patient_mrn_finds_their_studies_and_wado_works(
    server: str, oidc: OidcServer, sample_data: Any
) -> None:
    token = oidc.app_token("pat-a")["access_token"]
    found = studies(search(server, "smart", "pat-a", token))
    assert set(found) == set(sample_data.patients[A])
    study, address = next(iter(found.items()))
    metadata = httpx.get(
        f"{address}/studies/{study}/metadata",
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"},
    )
    assert metadata.status_code == 200 and metadata.json()[0]["0020000D"]["Value"] == [study]
    no_token = httpx.get(f"{address}/studies/{study}/metadata", timeout=30)
    assert no_token.status_code == 401 and no_token.headers["www-authenticate"].startswith("Bearer")


def test_mrn_by_configured_fhirpath(server: str, oidc: OidcServer, sample_data: Any) -> None:
    token = oidc.app_token("pat-b")["access_token"]
    assert set(studies(search(server, "by-text", "pat-b", token))) == set(sample_data.patients[B])
    # The default expressions look for an MR-typed identifier: pat-b has none, so the server
    # falls back to the first identifier (an insurance number) and finds nothing.
    assert studies(search(server, "smart", "pat-b", token)) == {}


def test_another_patients_search_or_studies_are_403(server: str, oidc: OidcServer) -> None:
    token_a = oidc.app_token("pat-a")["access_token"]
    token_b = oidc.app_token("pat-b")["access_token"]
    refused = search(server, "smart", "pat-b", token_a)
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    study, address = next(iter(studies(search(server, "smart", "pat-a", token_a)).items()))
    stolen = httpx.get(
        f"{address}/studies/{study}/metadata", headers={"Authorization": f"Bearer {token_b}"}, timeout=30
    )
    assert stolen.status_code == 403


@pytest.mark.parametrize(
    "patient, scope, status, error",
    [
        ("pat-a", "openid patient/Observation.rs", 403, "insufficient_scope"),
        ("pat-a", "openid user/*.rs system/Patient.read", 403, "insufficient_scope"),
        (None, "openid patient/ImagingStudy.rs", 403, None),
    ],
)
def test_refusals_through_the_server(
    server: str, oidc: OidcServer, patient: str | None, scope: str, status: int, error: str | None
) -> None:
    response = search(server, "smart", "pat-a", oidc.app_token(patient, scope)["access_token"])
    assert response.status_code == status
    if error:
        assert f'error="{error}"' in response.headers["www-authenticate"]


def test_missing_invalid_and_revoked_tokens_are_401(server: str, oidc: OidcServer) -> None:
    missing = search(server, "smart", "pat-a", None)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in missing.headers["www-authenticate"]
    invalid = search(server, "smart", "pat-a", "made-up-token")
    assert invalid.status_code == 401 and 'error="invalid_token"' in invalid.headers["www-authenticate"]
    token = oidc.app_token("pat-a")["access_token"]
    assert search(server, "nocache", "pat-a", token).status_code == 200
    oidc.revoke(token)
    revoked = search(server, "nocache", "pat-a", token)
    assert revoked.status_code == 401 and 'error="invalid_token"' in revoked.headers["www-authenticate"]


def test_ehr_down_is_503_with_operation_outcome(server: str, oidc: OidcServer) -> None:
    token = oidc.app_token("pat-a")["access_token"]
    response = search(server, "ehr-down", "pat-a", token)
    assert response.status_code == 503 and response.headers.get("retry-after")
    assert response.json()["resourceType"] == "OperationOutcome"
    assert token not in response.text


def test_ehr_garbage_is_502(server: str, oidc: OidcServer, ehr: EhrState) -> None:
    token = oidc.app_token("pat-a")["access_token"]
    ehr.faults["patient"] = "garbage"
    response = search(server, "nocache", "pat-a", token)
    assert response.status_code == 502 and response.json()["resourceType"] == "OperationOutcome"
