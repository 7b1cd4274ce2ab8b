"""The dual launch end to end, as a browser does it: the app's EHR launch (oidc-provider, EHR
login form), then the imaging launch with ``login_hint`` = the EHR's id_token (silent EHR leg,
our consent page), then ImagingStudy search and WADO-RS at Orthanc with the imaging token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from .browser import Browser
from .stack import Stack, approve, ehr_launch, redeem, reference_config, start_imaging_launch

MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


def search(stack: Stack, tenant: str, patient: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(
        f"{stack.fhir(tenant)}/ImagingStudy", params={"patient": patient}, headers=headers, timeout=30
    )


def test_dual_launch_with_the_reference_config_then_search_and_wado(stack: Stack, browser: Browser) -> None:
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    assert ehr["patient"] == "pat-a" and "id_token" in ehr
    before = len(browser.visited)
    launch = start_imaging_launch(browser, stack.fhir("reference"), login_hint=ehr["id_token"])
    to_ehr = [u for u in browser.visited[before:] if u.startswith(f"{stack.oidc.issuer}/auth?")]
    (silent,) = to_ehr  # one EHR round trip: silent, no login form this time
    assert not any("/interaction/" in u for u in browser.visited[before:]), browser.visited[before:]
    query = {k: v[0] for k, v in parse_qs(urlsplit(silent).query).items()}
    assert query["prompt"] == "none" and query["id_token_hint"] == ehr["id_token"]
    assert query["client_id"] == "imaging-client" and query["aud"] == stack.front.fhir_base
    assert query["code_challenge_method"] == "S256" and query["nonce"]
    page = launch.stop
    assert "Anna Test" in page.response.text and "imaging" in page.response.text.lower()
    assert page.response.headers["x-frame-options"] == "DENY"
    landed = approve(browser, page)
    assert landed.landed and landed.query["state"] == launch.state
    assert landed.query["iss"] == stack.oauth("reference")
    token = redeem(browser, stack.oauth("reference"), launch, landed)
    assert token["status"] == 200 and token["patient"] == "pat-a" and token["token_type"] == "Bearer"
    assert token["scope"] == "launch/patient patient/ImagingStudy.rs"  # openid, fhirUser dropped
    assert "refresh_token" not in token and "id_token" not in token
    assert ("imaging-client", "pat-a") in stack.front.reads  # read with the EHR-leg token

    found = search(stack, "reference", "pat-a", token["access_token"])
    assert found.status_code == 200, found.text
    studies = [
        e["resource"] for e in found.json()["entry"] if e["resource"]["resourceType"] == "ImagingStudy"
    ]
    assert studies and all(s["subject"]["reference"].endswith("Patient/pat-a") for s in studies)
    address = studies[0]["contained"][0]["address"]
    uid = studies[0]["identifier"][0]["value"].removeprefix("urn:oid:")
    wado = httpx.get(
        f"{address}/studies/{uid}",
        headers={"Authorization": f"Bearer {token['access_token']}", "Accept": MULTIPART_DICOM},
        timeout=60,
    )
    assert wado.status_code == 200 and wado.headers["content-type"].startswith("multipart/related")
    assert len(wado.content) > 1000
    other = search(stack, "reference", "pat-b", token["access_token"])
    assert other.status_code == 403
    ehr_token_here = search(stack, "reference", "pat-a", ehr["access_token"])
    assert ehr_token_here.status_code == 401  # the EHR's token is not ours


def test_the_reference_file_is_used_unchanged_but_for_the_ehr_and_archive(stack: Stack) -> None:
    original, used = reference_config(), stack.configs["reference"]
    assert {k: v for k, v in original["authorization"].items() if k != "fhirBaseUrl"} == {
        k: v for k, v in used["authorization"].items() if k != "fhirBaseUrl"
    }
    assert "oauth" not in used["authorization"]  # open mode by default: no clients registered
    assert used["images"]["lookup"] == original["images"]["lookup"] == "studies-by-mrn"
    assert used["images"]["type"] == original["images"]["type"] == "dicom-web"


def test_smart_configuration_and_metadata_name_our_endpoints(stack: Stack) -> None:
    doc = httpx.get(f"{stack.fhir('registered')}/.well-known/smart-configuration", timeout=10).json()
    oauth = stack.oauth("registered")
    assert doc["issuer"] == oauth
    assert doc["authorization_endpoint"] == f"{oauth}/authorize"
    assert doc["token_endpoint"] == f"{oauth}/token"
    assert doc["introspection_endpoint"] == f"{oauth}/introspect"
    assert doc["revocation_endpoint"] == f"{oauth}/revoke"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["token_endpoint_auth_methods_supported"] == ["none", "private_key_jwt"]
    for capability in (
        "smart-imaging-access-dual-launch",
        "smart-imaging-access",
        "http://fhir.org/argonaut/smart-imaging/capabilities/app-launch",
    ):
        assert capability in doc["capabilities"]
        assert capability in doc["associated_endpoints"][0]["capabilities"]
    assert doc["associated_endpoints"][0]["url"] == stack.fhir("registered")
    open_doc = httpx.get(f"{stack.fhir('reference')}/.well-known/smart-configuration", timeout=10).json()
    assert open_doc["token_endpoint_auth_methods_supported"] == ["none"]
    metadata = httpx.get(f"{stack.fhir('reference')}/metadata", timeout=10).json()
    uris = {e["url"]: e["valueUri"] for e in metadata["rest"][0]["security"]["extension"][0]["extension"]}
    assert uris["authorize"] == f"{stack.oauth('reference')}/authorize"
    assert uris["token"] == f"{stack.oauth('reference')}/token"
