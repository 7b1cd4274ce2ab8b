"""Backend Services (client_credentials + private_key_jwt), introspection, revocation,
expiry and persistence, over real HTTP."""

from __future__ import annotations

import httpx

from .conftest import Sandbox, free_socket, serve

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _client_credentials(sandbox: Sandbox, assertion: str, **extra: str) -> httpx.Response:
    return sandbox.http.post(
        f"{sandbox.base}/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            **extra,
        },
    )


def _introspect(sandbox: Sandbox, token: str, bearer: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return sandbox.http.post(f"{sandbox.base}/introspect", data={"token": token}, headers=headers)


def test_discovery_documents(sandbox: Sandbox) -> None:
    config = sandbox.http.get(f"{sandbox.fhir}/.well-known/smart-configuration").json()
    assert config["token_endpoint"] == f"{sandbox.base}/token"
    assert config["introspection_endpoint"] == f"{sandbox.base}/introspect"
    assert config["authorization_endpoint"] == f"{sandbox.base}/authorize"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert {"ES384", "RS384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
    assert {
        "launch-standalone",
        "client-public",
        "client-confidential-asymmetric",
        "context-standalone-patient",
        "permission-v1",
        "permission-v2",
        "permission-patient",
    } <= set(config["capabilities"])
    assert config["associated_endpoints"] == [
        {
            "url": sandbox.config.imaging_fhir_base_url,
            "capabilities": [
                "smart-imaging-access",
                "http://fhir.org/argonaut/smart-imaging/capabilities/app-launch",
            ],
        },
        {
            "url": sandbox.config.dual_imaging_fhir_base_url,
            "capabilities": ["smart-imaging-access-dual-launch"],
        },
    ]
    assert {"system/ImagingStudy.rs", "patient/ImagingStudy.rs"} <= set(config["scopes_supported"])
    assert "none" in config["prompt_values_supported"]
    assert sandbox.http.get(config["jwks_uri"]).json()["keys"][0]["kty"] == "RSA"
    metadata = sandbox.http.get(f"{sandbox.fhir}/metadata")
    assert metadata.headers["content-type"].startswith("application/fhir+json")
    security = metadata.json()["rest"][0]["security"]["extension"][0]
    uris = {e["url"]: e["valueUri"] for e in security["extension"]}
    assert uris["token"] == f"{sandbox.base}/token"


def test_es384_and_rs384_backend_tokens(sandbox: Sandbox) -> None:
    es = _client_credentials(sandbox, sandbox.assertion("imaging-server"), scope="system/Patient.read")
    assert es.status_code == 200 and es.json()["scope"] == "system/Patient.read"
    assert "refresh_token" not in es.json()
    rs = _client_credentials(sandbox, sandbox.assertion("rs-backend"))
    assert rs.status_code == 200 and rs.json()["scope"] == "system/*.read"


def test_backend_reads_any_patient(sandbox: Sandbox) -> None:
    auth = {"Authorization": f"Bearer {sandbox.backend_token(scope='system/Patient.read')}"}
    patient = sandbox.http.get(f"{sandbox.fhir}/Patient/lucia-ramirez", headers=auth)
    assert patient.status_code == 200 and patient.json()["birthDate"] == "1990-07-21"
    found = sandbox.http.get(
        f"{sandbox.fhir}/Patient",
        headers=auth,
        params={"identifier": "urn:oid:2.16.840.1.113883.19.5.99999.1|MRN-1004"},
    ).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["sam-patel"]
    by_name = sandbox.http.get(f"{sandbox.fhir}/Patient", headers=auth, params={"name": "oka"}).json()
    assert [e["resource"]["id"] for e in by_name["entry"]] == ["marcus-okafor"]
    assert sandbox.http.get(f"{sandbox.fhir}/Condition", headers=auth).status_code == 403


def test_replayed_assertion_jti_is_refused(sandbox: Sandbox) -> None:
    assertion = sandbox.assertion()
    assert _client_credentials(sandbox, assertion).status_code == 200
    replay = _client_credentials(sandbox, assertion)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert "jti" in replay.json()["error_description"]


def test_bad_assertions_are_invalid_client(sandbox: Sandbox) -> None:
    now = int(sandbox.clock())
    wrong_key = sandbox.assertion("rs-backend", iss="imaging-server", sub="imaging-server")
    bad = [
        sandbox.assertion(aud=f"{sandbox.base}/introspect"),
        sandbox.assertion(exp=now + 600),
        sandbox.assertion(exp=now - 5),
        sandbox.assertion(sub="someone-else"),
        sandbox.assertion(jti=""),
        wrong_key,
        "not.a.jwt",
    ]
    for assertion in bad:
        response = _client_credentials(sandbox, assertion)
        assert response.status_code == 401, assertion
        assert response.json()["error"] == "invalid_client"
    unknown = sandbox.http.post(
        f"{sandbox.base}/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:other",
            "client_assertion": sandbox.assertion(),
        },
    )
    assert unknown.json()["error"] == "invalid_client"


def test_unregistered_scope_is_invalid_scope(sandbox: Sandbox) -> None:
    response = _client_credentials(sandbox, sandbox.assertion(), scope="system/*.read")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_introspection_needs_a_backend_token(sandbox: Sandbox) -> None:
    user = sandbox.launch(scope="launch/patient patient/*.rs fhirUser")
    for bearer in (None, "nonsense", user["access_token"]):
        response = _introspect(sandbox, user["access_token"], bearer)
        assert response.status_code == 401, bearer
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_introspection_reports_patient_token(sandbox: Sandbox) -> None:
    user = sandbox.launch(
        scope="launch/patient patient/ImagingStudy.rs fhirUser offline_access", patient="lucia-ramirez"
    )
    body = _introspect(sandbox, user["access_token"], sandbox.backend_token()).json()
    assert body["active"] is True and body["patient"] == "lucia-ramirez"
    assert body["client_id"] == "my-app" and body["token_type"] == "Bearer"
    assert body["scope"] == "launch/patient patient/ImagingStudy.rs fhirUser offline_access"
    assert body["fhirUser"] == f"{sandbox.fhir}/Patient/lucia-ramirez"
    assert body["exp"] - body["iat"] == 3600 and body["sub"] == "lucia-ramirez"
    # refresh tokens are not access tokens: never reported active
    assert _introspect(sandbox, user["refresh_token"], sandbox.backend_token()).json() == {"active": False}


def test_introspection_with_private_key_jwt(sandbox: Sandbox) -> None:
    user = sandbox.launch()
    response = sandbox.http.post(
        f"{sandbox.base}/introspect",
        data={
            "token": user["access_token"],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sandbox.assertion(aud=f"{sandbox.base}/token"),
        },
    )
    assert response.status_code == 200 and response.json()["patient"] == "ava-chen"


def test_revoked_token_is_inactive(sandbox: Sandbox) -> None:
    user = sandbox.launch()
    backend = sandbox.backend_token()
    assert _introspect(sandbox, user["access_token"], backend).json()["active"] is True
    revoked = sandbox.http.post(
        f"{sandbox.base}/revoke", data={"token": user["refresh_token"], "client_id": "my-app"}
    )
    assert revoked.status_code == 200
    assert _introspect(sandbox, user["access_token"], backend).json() == {"active": False}
    refresh = sandbox.http.post(
        f"{sandbox.base}/token",
        data={"grant_type": "refresh_token", "refresh_token": user["refresh_token"], "client_id": "my-app"},
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_expired_token_is_inactive_and_refused(sandbox: Sandbox) -> None:
    user = sandbox.launch()
    sandbox.clock.offset = 3601
    backend = sandbox.backend_token()  # issued at the moved time, so still valid
    assert _introspect(sandbox, user["access_token"], backend).json() == {"active": False}
    auth = {"Authorization": f"Bearer {user['access_token']}"}
    refused = sandbox.http.get(f"{sandbox.fhir}/Patient/ava-chen", headers=auth)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]  # RFC 6750 3.1


def test_confidential_asymmetric_client_code_flow(sandbox: Sandbox) -> None:
    page = sandbox.authorize(
        response_type="code",
        client_id="rs-backend",
        redirect_uri="https://app.example.org/cb",
        scope="launch/patient patient/Patient.rs",
        state="s",
    )
    location = httpx.URL(sandbox.approve(page).headers["location"])
    form = {
        "grant_type": "authorization_code",
        "code": location.params["code"],
        "redirect_uri": "https://app.example.org/cb",
    }
    public = sandbox.http.post(f"{sandbox.base}/token", data={**form, "client_id": "rs-backend"})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    page = sandbox.authorize(
        response_type="code",
        client_id="rs-backend",
        redirect_uri="https://app.example.org/cb",
        scope="launch/patient patient/Patient.rs",
        state="s",
    )
    form["code"] = httpx.URL(sandbox.approve(page).headers["location"]).params["code"]
    signed = sandbox.http.post(
        f"{sandbox.base}/token",
        data={
            **form,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sandbox.assertion("rs-backend"),
        },
    )
    assert signed.status_code == 200 and signed.json()["patient"] == "ava-chen"


def test_restart_keeps_sessions(sandbox: Sandbox) -> None:
    user = sandbox.launch()
    sock = free_socket()
    config = sandbox.config.model_copy(update={"base_url": f"http://127.0.0.1:{sock.getsockname()[1]}/ehr"})
    with serve(sock, config):
        response = httpx.get(
            f"{config.fhir_base_url}/Patient/ava-chen",
            timeout=10,
            headers={"Authorization": f"Bearer {user['access_token']}"},
        )
        jwks = httpx.get(config.jwks_uri, timeout=10).json()
    assert response.status_code == 200 and response.json()["id"] == "ava-chen"
    assert jwks == sandbox.http.get(sandbox.config.jwks_uri).json()  # same signing key
