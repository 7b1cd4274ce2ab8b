"""Standalone launch as a public client over real HTTP, and its refusals."""

from __future__ import annotations

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from smart_imaging_demo.ehr.pkce import s256_challenge

from .conftest import Sandbox

REDIRECT = "http://localhost:9999/callback"
VERIFIER = "v" * 43 + "-abc"


def _params(**extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "my-app",
        "redirect_uri": REDIRECT,
        "scope": "launch/patient patient/*.rs",
        "state": "xyz",
        "code_challenge": s256_challenge(VERIFIER),
        "code_challenge_method": "S256",
        **extra,
    }


def _code(sandbox: Sandbox, **extra: str) -> str:
    redirect = sandbox.approve(sandbox.authorize(**_params(**extra)))
    assert redirect.status_code == 302
    return httpx.URL(redirect.headers["location"]).params["code"]


def _exchange(sandbox: Sandbox, code: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "my-app",
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        **overrides,
    }
    return sandbox.http.post(f"{sandbox.base}/token", data=form)


def test_full_standalone_launch_reads_patient_and_conditions(sandbox: Sandbox) -> None:
    page = sandbox.authorize(
        **_params(scope="launch/patient patient/*.rs openid fhirUser offline_access", nonce="n-1")
    )
    assert "Marcus Okafor" in page.text and "1965-11-02" in page.text
    assert 'type="radio"' in page.text and "<script" not in page.text
    redirect = sandbox.approve(page, patient="marcus-okafor")
    assert redirect.status_code == 302
    location = httpx.URL(redirect.headers["location"])
    assert str(location).startswith(REDIRECT) and location.params["state"] == "xyz"

    response = _exchange(sandbox, location.params["code"])
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["patient"] == "marcus-okafor"
    assert body["expires_in"] == 3600 and body["refresh_token"]
    assert set(body["scope"].split()) == {
        "launch/patient",
        "patient/*.rs",
        "openid",
        "fhirUser",
        "offline_access",
    }
    keys = KeySet.import_key_set(sandbox.http.get(f"{sandbox.base}/.well-known/jwks.json").json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert id_token["aud"] == "my-app" and id_token["nonce"] == "n-1"
    assert id_token["fhirUser"] == f"{sandbox.fhir}/Patient/marcus-okafor"
    assert id_token["iss"] == sandbox.fhir

    auth = {"Authorization": f"Bearer {body['access_token']}"}
    patient = sandbox.http.get(f"{sandbox.fhir}/Patient/marcus-okafor", headers=auth)
    assert patient.status_code == 200
    assert patient.headers["content-type"].startswith("application/fhir+json")
    assert patient.json()["identifier"][0]["value"] == "MRN-1002"
    conditions = sandbox.http.get(
        f"{sandbox.fhir}/Condition", params={"patient": "marcus-okafor"}, headers=auth
    ).json()
    assert conditions["resourceType"] == "Bundle" and conditions["total"] == 3
    texts = {e["resource"]["code"]["text"] for e in conditions["entry"]}
    assert "Pulmonary nodule" in texts
    assert conditions["entry"][0]["fullUrl"].startswith(f"{sandbox.fhir}/Condition/")


def test_patient_token_reads_only_its_patient(sandbox: Sandbox) -> None:
    token = sandbox.launch(patient="ava-chen")["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    other = sandbox.http.get(f"{sandbox.fhir}/Patient/sam-patel", headers=auth)
    assert other.status_code == 403 and other.json()["resourceType"] == "OperationOutcome"
    assert (
        sandbox.http.get(
            f"{sandbox.fhir}/Condition", params={"patient": "sam-patel"}, headers=auth
        ).status_code
        == 403
    )
    assert (
        sandbox.http.get(f"{sandbox.fhir}/AllergyIntolerance/sam-patel-allergy-1", headers=auth).status_code
        == 403
    )
    assert (
        sandbox.http.get(f"{sandbox.fhir}/Patient", params={"_id": "sam-patel"}, headers=auth).status_code
        == 403
    )
    everyone = sandbox.http.get(f"{sandbox.fhir}/Patient", headers=auth).json()
    assert [e["resource"]["id"] for e in everyone["entry"]] == ["ava-chen"]
    meds = sandbox.http.get(f"{sandbox.fhir}/MedicationRequest", headers=auth).json()
    assert meds["total"] == 2
    assert {e["resource"]["subject"]["reference"] for e in meds["entry"]} == {"Patient/ava-chen"}


def test_scope_limits_resource_types(sandbox: Sandbox) -> None:
    token = sandbox.launch(scope="launch/patient patient/Patient.rs")["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert sandbox.http.get(f"{sandbox.fhir}/Patient/ava-chen", headers=auth).status_code == 200
    refused = sandbox.http.get(f"{sandbox.fhir}/Condition", headers=auth)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


def test_no_or_unknown_token_is_401(sandbox: Sandbox) -> None:
    missing = sandbox.http.get(f"{sandbox.fhir}/Patient/ava-chen")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    wrong = sandbox.http.get(
        f"{sandbox.fhir}/Patient/ava-chen", headers={"Authorization": "Bearer not-a-token"}
    )
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]


def test_wrong_pkce_verifier_is_invalid_grant(sandbox: Sandbox) -> None:
    response = _exchange(sandbox, _code(sandbox), code_verifier="w" * 50)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    missing = _exchange(sandbox, _code(sandbox), code_verifier="")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"


def test_reused_code_is_refused_and_revokes_its_tokens(sandbox: Sandbox) -> None:
    code = _code(sandbox)
    first = _exchange(sandbox, code)
    assert first.status_code == 200
    again = _exchange(sandbox, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    auth = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert sandbox.http.get(f"{sandbox.fhir}/Patient/ava-chen", headers=auth).status_code == 401


def test_redirect_uri_must_match_at_token_endpoint(sandbox: Sandbox) -> None:
    response = _exchange(sandbox, _code(sandbox), redirect_uri="http://localhost:9999/other")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_code_of_another_client_is_refused(sandbox: Sandbox) -> None:
    response = _exchange(sandbox, _code(sandbox), client_id="other-app")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_code_expires(sandbox: Sandbox) -> None:
    code = _code(sandbox)
    sandbox.clock.offset = 61
    response = _exchange(sandbox, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_denied_authorization_redirects_access_denied_with_state(sandbox: Sandbox) -> None:
    redirect = sandbox.approve(sandbox.authorize(**_params()), decision="deny", patient=None)
    assert redirect.status_code == 302
    params = httpx.URL(redirect.headers["location"]).params
    assert params["error"] == "access_denied" and params["state"] == "xyz"
    assert "code" not in params


def test_consent_form_is_single_use(sandbox: Sandbox) -> None:
    page = sandbox.authorize(**_params())
    assert sandbox.approve(page).status_code == 302
    again = sandbox.approve(page)
    assert again.status_code == 400 and "location" not in again.headers


def test_unacceptable_redirect_uri_or_client_shows_page_and_never_redirects(sandbox: Sandbox) -> None:
    for params in (
        _params(redirect_uri="https://evil.example.com/cb"),
        _params(client_id=""),
        _params(redirect_uri="http://localhost:9999/cb#frag"),
        _params(client_id="rs-backend"),
    ):  # registered: only its own redirect URIs
        response = sandbox.authorize(**params)
        assert response.status_code == 400 and "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")


def test_authorize_errors_go_to_redirect_uri(sandbox: Sandbox) -> None:
    cases = {
        "unsupported_response_type": _params(response_type="token"),
        "invalid_scope": _params(scope="user/*.cruds weird"),
    }
    no_pkce = _params()
    del no_pkce["code_challenge"], no_pkce["code_challenge_method"]
    cases_list = [
        *cases.items(),
        ("invalid_request", no_pkce),
        ("invalid_request", _params(code_challenge_method="plain")),
        ("invalid_request", _params(aud="https://other.example.org/fhir")),
    ]
    for error, params in cases_list:
        response = sandbox.authorize(**params)
        assert response.status_code == 302, (error, response.text)
        query = httpx.URL(response.headers["location"]).params
        assert query["error"] == error and query["state"] == "xyz"


def test_granted_scope_is_intersection(sandbox: Sandbox) -> None:
    body = sandbox.launch(
        scope="launch/patient patient/*.cruds patient/Observation.rs patient/ImagingStudy.read system/*.read"
    )
    assert body["scope"].split() == ["launch/patient", "patient/*.rs", "patient/ImagingStudy.read"]


def test_refresh_token_rotates(sandbox: Sandbox) -> None:
    body = sandbox.launch(scope="launch/patient patient/*.rs online_access")
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "my-app"}
    fresh = sandbox.http.post(f"{sandbox.base}/token", data=form)
    assert fresh.status_code == 200 and fresh.json()["patient"] == "ava-chen"
    assert fresh.json()["refresh_token"] != body["refresh_token"]
    replay = sandbox.http.post(f"{sandbox.base}/token", data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    wider = sandbox.http.post(
        f"{sandbox.base}/token",
        data={**form, "refresh_token": fresh.json()["refresh_token"], "scope": "patient/*.rs openid"},
    )
    assert wider.json()["error"] in ("invalid_scope", "invalid_grant")


def test_token_endpoint_errors(sandbox: Sandbox) -> None:
    url = f"{sandbox.base}/token"
    unsupported = sandbox.http.post(url, data={"grant_type": "password", "client_id": "a"})
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"
    missing = sandbox.http.post(url, data={"client_id": "a"})
    assert missing.json()["error"] == "invalid_request"
    json_body = sandbox.http.post(url, json={"grant_type": "authorization_code"})
    assert json_body.status_code == 400 and json_body.json()["error"] == "invalid_request"
    public_cc = sandbox.http.post(url, data={"grant_type": "client_credentials", "client_id": "my-app"})
    assert public_cc.json()["error"] == "unauthorized_client"
    registered_without_auth = sandbox.http.post(
        url, data={"grant_type": "client_credentials", "client_id": "imaging-server"}
    )
    assert registered_without_auth.status_code == 401
    assert registered_without_auth.json()["error"] == "invalid_client"
