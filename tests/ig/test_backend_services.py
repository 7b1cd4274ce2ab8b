"""IG specification.md "Backend Services" and its worked example: a referral service (a SMART
Backend Services client, ``client_credentials`` + ``private_key_jwt`` at oidc-provider) may see
study A of patient 123, not study B of the same patient, and nothing of patient 456.

The tenant ``hospital`` registers the client in ``policy.backendClients``
(``{"referral-service": {"patients": ["123"], "studies": [A]}}``); the tenant ``plain`` registers
none, so it does not offer the mode and system scopes grant nothing there.
"""

from __future__ import annotations

import time

import httpx
import pytest

from smart_imaging.auth.backend import client_assertion
from smart_imaging.binding import Binding, seal, token_digest

from .studies import MRN, STUDIES
from .world import World, endpoints, studies_of

pytestmark = pytest.mark.integration
ALL_SYNTAXES = 'multipart/related; type="application/dicom"; transfer-syntax=*'
METADATA = "application/dicom+json"
A, B, C = STUDIES["a"], STUDIES["b"], STUDIES["c"]


def test_B6_the_referral_service_finds_study_a_with_its_endpoint_and_not_study_b(world: World) -> None:
    token = world.backend_token()
    response = world.search("hospital", token, patient="123", _include="ImagingStudy:endpoint")
    assert response.status_code == 200
    bundle = response.json()
    assert [s["id"] for s in studies_of(bundle)] == [A.uid] and bundle["total"] == 1
    assert B.uid not in str(bundle)
    assert list(endpoints(bundle)) == [A.uid]


def test_B6_the_referral_service_retrieves_study_a(world: World) -> None:
    token = world.backend_token()
    address = endpoints(world.search("hospital", token, patient="123").json())[A.uid]
    response = world.get(f"{address}/studies/{A.uid}", token, ALL_SYNTAXES)
    assert response.status_code == 200 and response.content.count(b"Content-Type: application/dicom") == 2


def test_B6_study_b_requested_directly_is_denied(world: World) -> None:
    """By search (not returned), and by a retrieval URL the service was never given."""
    token = world.backend_token()
    direct = world.search("hospital", token, patient="123", identifier=f"urn:oid:{B.uid}")
    assert direct.status_code == 200 and direct.json()["total"] == 0
    forged = Binding(
        "hospital", B.uid, "123", int(time.time()) + 600, MRN["123"], token_digest(token, world.key)
    )
    url = f"{world.base}/hospital/wado/{seal(forged, world.key)}/studies/{B.uid}"
    for path, accept in (("", ALL_SYNTAXES), ("/metadata", METADATA)):
        assert world.get(url + path, token, accept).status_code == 403
    read = world.get(f"{world.base}/hospital/fhir/ImagingStudy/{B.uid}", token)
    assert read.status_code == 403  # backend clients read by searching


def test_F11_B6_a_search_for_patient_456_is_403_forbidden(world: World) -> None:
    token = world.backend_token()
    response = world.search("hospital", token, patient="456")
    assert response.status_code == 403 and response.json()["resourceType"] == "OperationOutcome"
    assert C.uid not in response.text
    forged = Binding(
        "hospital", C.uid, "456", int(time.time()) + 600, MRN["456"], token_digest(token, world.key)
    )
    url = f"{world.base}/hospital/wado/{seal(forged, world.key)}/studies/{C.uid}/metadata"
    assert world.get(url, token, METADATA).status_code == 403


def test_B5_a_backend_search_names_one_patient_by_id_never_the_population(world: World) -> None:
    token = world.backend_token()
    for params in ({}, {"patient": "123,456"}, {"patient.identifier": f"urn:test|{MRN['123']}"}):
        assert world.search("hospital", token, **params).status_code == 403, params


def test_T5_the_client_identity_comes_from_the_validated_token(world: World) -> None:
    """A client registered at the AS but not here, with the same scope, gets nothing."""
    stranger = world.backend_token("unregistered-service")
    response = world.search("hospital", stranger, patient="123")
    assert response.status_code == 403 and response.json()["issue"][0]["code"] == "forbidden"


def test_T7_a_tenant_without_backend_services_does_not_grant_on_system_scopes(world: World) -> None:
    token = world.backend_token()
    response = world.search("plain", token, patient="123")
    assert response.status_code == 403
    assert "insufficient_scope" in response.headers["www-authenticate"]


def test_B3_a_client_assertion_is_not_a_bearer_token(world: World) -> None:
    assertion = client_assertion(
        "referral-service", world.keys.backend["referral-service"], world.oidc.issuer
    )
    # oidc-provider answers 400 to introspecting a JWT it did not issue (a 502 here); other
    # authorization servers say inactive (401): never a grant
    assert world.search("hospital", assertion, patient="123").status_code in (401, 502)


def test_T1_backend_tokens_are_validated_like_app_tokens_revocation_included(world: World) -> None:
    """``hospital-fresh`` is ``hospital`` with ``cacheTtl: 0``: a revoked token is refused at once."""
    token = world.backend_token()
    assert world.search("hospital-fresh", token, patient="123").status_code == 200
    form = {
        "token": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(
            "referral-service", world.keys.backend["referral-service"], world.oidc.issuer
        ),
    }
    httpx.post(f"{world.oidc.issuer}/token/revocation", data=form, timeout=10).raise_for_status()
    assert world.search("hospital-fresh", token, patient="123").status_code == 401
    assert world.search("hospital-fresh", "not-a-token", patient="123").status_code == 401
