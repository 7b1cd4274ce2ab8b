"""The token, introspection and revocation endpoints through real launches: PKCE, single-use
codes (a replay revokes what the code gave), expiry, revocation, tenants, rotating refresh tokens
(reuse revokes the family) and private_key_jwt clients."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import httpx
from joserfc import jwt

from .browser import APP_REDIRECT, Browser, Stop
from .stack import IMAGING_SCOPE, ImagingLaunch, Stack, approve, ehr_launch, redeem, start_imaging_launch

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def launched(
    stack: Stack, browser: Browser, tenant: str, client_id: str = "app", scope: str = IMAGING_SCOPE
) -> tuple[ImagingLaunch, Stop]:
    """A dual launch up to the app's redirect URI with a code."""
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    launch = start_imaging_launch(
        browser, stack.fhir(tenant), login_hint=ehr["id_token"], client_id=client_id, scope=scope
    )
    landed = approve(browser, launch.stop)
    assert landed.landed and "code" in landed.query, landed.url
    return launch, landed


def search_status(stack: Stack, tenant: str, token: str) -> int:
    return httpx.get(
        f"{stack.fhir(tenant)}/ImagingStudy",
        params={"patient": "pat-a"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).status_code


def assertion(stack: Stack, tenant: str, endpoint: str = "token", jti: str | None = None) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "backend-app",
        "sub": "backend-app",
        "aud": f"{stack.oauth(tenant)}/{endpoint}",
        "jti": jti or uuid.uuid4().hex,
        "iat": now,
        "exp": now + 120,
    }
    signed = jwt.encode({"alg": "ES384", "kid": "backend-app-1"}, claims, stack.app_key, algorithms=["ES384"])
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


def post(stack: Stack, tenant: str, endpoint: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
    return httpx.post(f"{stack.oauth(tenant)}/{endpoint}", data=data, timeout=10, **kw)


def test_pkce_verifier_missing_or_wrong_is_refused(stack: Stack, browser: Browser) -> None:
    launch, landed = launched(stack, browser, "reference")
    for verifier in ("", secrets.token_urlsafe(48), "short"):  # "": no code_verifier at all
        refused = redeem(browser, stack.oauth("reference"), launch, landed, code_verifier=verifier)
        assert refused["status"] == 400 and refused["error"] == "invalid_grant", refused
        assert "access_token" not in refused
    token = redeem(browser, stack.oauth("reference"), launch, landed)  # the genuine app still can
    assert token["status"] == 200


def test_a_replayed_code_is_refused_and_revokes_its_tokens(stack: Stack, browser: Browser) -> None:
    launch, landed = launched(stack, browser, "reference")
    first = redeem(browser, stack.oauth("reference"), launch, landed)
    assert first["status"] == 200 and search_status(stack, "reference", first["access_token"]) == 200
    replay = redeem(browser, stack.oauth("reference"), launch, landed)
    assert replay["status"] == 400 and replay["error"] == "invalid_grant"
    assert search_status(stack, "reference", first["access_token"]) == 401


def test_a_code_is_bound_to_its_client_and_redirect_uri(stack: Stack, browser: Browser) -> None:
    launch, landed = launched(stack, browser, "reference")
    other_client = redeem(browser, stack.oauth("reference"), launch, landed, client_id="someone-else")
    assert other_client["status"] == 400 and other_client["error"] == "invalid_grant"
    other_uri = redeem(browser, stack.oauth("reference"), launch, landed, redirect_uri=APP_REDIRECT + "/x")
    assert other_uri["status"] == 400 and other_uri["error"] == "invalid_grant"
    elsewhere = redeem(browser, stack.oauth("other"), launch, landed)  # another tenant's token endpoint
    assert elsewhere["status"] == 400 and elsewhere["error"] == "invalid_grant"


def test_an_expired_token_is_401(stack: Stack, browser: Browser) -> None:
    launch, landed = launched(stack, browser, "short")  # accessTokenLifetime: 2 s
    token = redeem(browser, stack.oauth("short"), launch, landed)
    assert token["expires_in"] == 2 and search_status(stack, "short", token["access_token"]) == 200
    time.sleep(2.5)
    answer = httpx.get(
        f"{stack.fhir('short')}/ImagingStudy",
        params={"patient": "pat-a"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=30,
    )
    assert answer.status_code == 401 and "invalid_token" in answer.headers["www-authenticate"]


def test_a_revoked_token_is_401_and_only_its_client_may_revoke(stack: Stack, browser: Browser) -> None:
    launch, landed = launched(stack, browser, "reference")
    token = redeem(browser, stack.oauth("reference"), launch, landed)["access_token"]
    other = post(stack, "reference", "revoke", {"token": token, "client_id": "another-app"})
    assert other.status_code == 400 and other.json()["error"] == "unauthorized_client"
    assert search_status(stack, "reference", token) == 200
    unknown = post(stack, "reference", "revoke", {"token": "no-such-token", "client_id": "app"})
    assert unknown.status_code == 200  # RFC 7009 section 2.2
    revoked = post(stack, "reference", "revoke", {"token": token, "client_id": "app"})
    assert revoked.status_code == 200
    assert search_status(stack, "reference", token) == 401


def test_a_token_of_one_tenant_is_401_at_another(stack: Stack, browser: Browser) -> None:
    launch, landed = launched(stack, browser, "reference")
    token = redeem(browser, stack.oauth("reference"), launch, landed)["access_token"]
    assert search_status(stack, "reference", token) == 200
    answer = httpx.get(
        f"{stack.fhir('other')}/ImagingStudy",
        params={"patient": "pat-a"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 401 and "another tenant" in answer.text


def test_refresh_tokens_rotate_and_reuse_revokes_the_family(stack: Stack, browser: Browser) -> None:
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    scope = f"{IMAGING_SCOPE} offline_access"
    launch = start_imaging_launch(
        browser, stack.fhir("registered"), login_hint=ehr["id_token"], client_id="viewer", scope=scope
    )
    assert "Test Viewer" in launch.stop.response.text  # the registered client's name
    landed = approve(browser, launch.stop)
    first = redeem(browser, stack.oauth("registered"), launch, landed)
    assert first["scope"] == "launch/patient offline_access patient/ImagingStudy.rs"
    refresh = {"grant_type": "refresh_token", "client_id": "viewer"}
    wider = post(
        stack,
        "registered",
        "token",
        {**refresh, "refresh_token": first["refresh_token"], "scope": "patient/*.rs user/*.rs"},
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    second = post(stack, "registered", "token", {**refresh, "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"] and second["patient"] == "pat-a"
    assert search_status(stack, "registered", second["access_token"]) == 200
    reuse = post(stack, "registered", "token", {**refresh, "refresh_token": first["refresh_token"]})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert search_status(stack, "registered", second["access_token"]) == 401  # the family is revoked
    after = post(stack, "registered", "token", {**refresh, "refresh_token": second["refresh_token"]})
    assert after.status_code == 400


def test_confidential_clients_authenticate_with_private_key_jwt(stack: Stack, browser: Browser) -> None:
    launch, landed = launched(stack, browser, "registered", client_id="backend-app")
    form = {
        "grant_type": "authorization_code",
        "code": landed.query["code"],
        "redirect_uri": APP_REDIRECT,
        "code_verifier": launch.verifier,
    }
    bare = post(stack, "registered", "token", {**form, "client_id": "backend-app"})
    assert bare.status_code == 401 and bare.json()["error"] == "invalid_client"
    basic = post(
        stack, "registered", "token", {**form, "client_id": "backend-app"}, auth=("backend-app", "x")
    )
    assert basic.status_code == 401
    jti = uuid.uuid4().hex
    token = post(stack, "registered", "token", {**form, **assertion(stack, "registered", jti=jti)})
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    replayed = post(
        stack,
        "registered",
        "introspect",
        {"token": access, **assertion(stack, "registered", "introspect", jti)},
    )
    assert replayed.status_code == 401  # the same jti twice
    about = post(
        stack, "registered", "introspect", {"token": access, **assertion(stack, "registered", "introspect")}
    )
    claims = about.json()
    assert about.status_code == 200 and claims["active"] is True
    assert claims["patient"] == "pat-a" and claims["client_id"] == "backend-app"
    assert claims["scope"] == "launch/patient patient/ImagingStudy.rs" and claims["exp"] > time.time()
    assert claims["aud"] == stack.fhir("registered") and claims["iss"] == stack.oauth("registered")
    public = post(stack, "registered", "introspect", {"token": access, "client_id": "viewer"})
    assert public.status_code == 401
    bogus = post(
        stack, "registered", "introspect", {"token": "nope", **assertion(stack, "registered", "introspect")}
    )
    assert bogus.json() == {"active": False}


def test_malformed_token_requests_are_clear_oauth_errors(stack: Stack) -> None:
    url = f"{stack.oauth('reference')}/token"
    form = {"content-type": "application/x-www-form-urlencoded"}
    answers = [
        httpx.post(url, json={"grant_type": "authorization_code"}, timeout=10),
        httpx.post(url, content="grant_type=authorization_code&grant_type=refresh_token", headers=form),
        httpx.post(url, content=b"grant_type=\xff\xfe", headers=form),
        httpx.post(url, data={"grant_type": "password", "client_id": "app"}, timeout=10),
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] in ("invalid_request", "unsupported_grant_type")
        assert answer.headers["cache-control"] == "no-store"
