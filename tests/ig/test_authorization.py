"""IG specification.md "Authorization" and "Token validation and access enforcement", with real
tokens from oidc-provider introspected by the imaging server."""

from __future__ import annotations

import pytest

from .world import World

pytestmark = pytest.mark.integration


def test_T1_a_token_issued_for_another_resource_server_is_refused(world: World) -> None:
    """The AS reports ``aud``; by default it must name the EHR's FHIR base (the app's ``aud``) or
    this imaging FHIR base: "issued ... for use at this resource server"."""
    elsewhere = world.token("maya", resource="https://other.example.org/fhir")
    response = world.search("plain", elsewhere, patient="maya")
    assert response.status_code == 401 and "audience" in response.json()["issue"][0]["diagnostics"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_T1_a_token_for_the_ehr_or_for_this_imaging_server_is_accepted(world: World) -> None:
    for resource in (None, f"{world.base}/plain/fhir"):
        token = world.token("maya", resource=resource)
        assert world.search("plain", token, patient="maya").status_code == 200, resource


def test_T1_W12_a_revoked_token_is_refused_at_once_with_cacheTtl_0(world: World) -> None:
    token = world.token("maya")
    assert world.search("fresh", token, patient="maya").status_code == 200
    world.oidc.revoke(token)
    response = world.search("fresh", token, patient="maya")
    assert response.status_code == 401 and "not active" in response.json()["issue"][0]["diagnostics"]


def test_W10_revocation_latency_is_at_most_the_decision_cache_ttl(world: World) -> None:
    """Documented behaviour (docs/notes/security-model.md): with the default ``cacheTtl`` (60 s) a
    token revoked after its first use keeps working until its cached decision expires."""
    token = world.token("maya")
    assert world.search("plain", token, patient="maya").status_code == 200
    world.oidc.revoke(token)
    assert world.search("plain", token, patient="maya").status_code == 200  # cached decision
    assert world.search("fresh", token, patient="maya").status_code == 401  # never cached


def test_T2_a_token_without_an_imaging_scope_is_403_insufficient_scope(world: World) -> None:
    token = world.token("maya", scope="openid launch/patient patient/Observation.rs")
    response = world.search("hospital", token, patient="maya")
    assert response.status_code == 403 and "insufficient_scope" in response.headers["www-authenticate"]


def test_T6_missing_patient_context_is_not_authorization(world: World) -> None:
    token = world.token("no-patient")
    response = world.search("hospital", token, patient="maya")
    assert response.status_code == 403 and "patient context" in response.json()["issue"][0]["diagnostics"]


def test_T7_T9_system_scopes_of_an_app_do_not_grant_and_do_not_combine_with_its_patient(world: World) -> None:
    """An app (not a registered backend client) holding system/ImagingStudy.rs and a patient
    context: no patient/ imaging scope, so no access, whatever the tenant."""
    token = world.token("123", scope="openid launch/patient system/ImagingStudy.rs")
    for tenant in ("hospital", "plain"):
        response = world.search(tenant, token, patient="123")
        assert response.status_code == 403 and "insufficient_scope" in response.headers["www-authenticate"]


def test_T3_a_retrieval_is_checked_against_the_token_s_patient(world: World) -> None:
    from .test_retrieving_images import METADATA, address_of, study_url

    maya, other = world.token("maya"), world.token("123")
    url = study_url(address_of(world, maya, "ankle"), "ankle")
    assert world.get(f"{url}/metadata", other, METADATA).status_code == 403
