"""``prompt=none`` with ``id_token_hint`` (OpenID Connect Core 3.1.2.1) over real HTTP: silent
approval for the user and patient of an id_token the sandbox issued, the OpenID errors to the
redirect URI when it cannot, and never an approval for a hint it did not sign."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from smart_imaging_demo.ehr.keys import Signer
from smart_imaging_demo.ehr.pkce import s256_challenge

from .conftest import DUAL_SILENT_SCOPE, Sandbox, dual_redirect

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
VIEWER_SCOPE = "launch/patient patient/*.rs openid fhirUser"


def _port(sandbox: Sandbox) -> int:
    return int(httpx.URL(sandbox.base).port or 0)


def _silent(sandbox: Sandbox, hint: str | None, **extra: str) -> httpx.Response:
    """A prompt=none request by the registered dual-launch client (its EHR leg)."""
    params = {
        "response_type": "code",
        "client_id": "dual-imaging",
        "redirect_uri": dual_redirect(_port(sandbox)),
        "scope": DUAL_SILENT_SCOPE,
        "state": "st-silent",
        "nonce": "n-silent",
        "prompt": "none",
        "aud": sandbox.fhir,
        **extra,
    }
    if hint is not None:
        params["id_token_hint"] = hint
    return sandbox.authorize(**params)


def _answer(response: httpx.Response) -> httpx.QueryParams:
    assert response.status_code == 302, response.text
    location = httpx.URL(response.headers["location"])
    assert location.params["state"] == "st-silent"
    return location.params


def _dual_token(sandbox: Sandbox, code: str) -> dict[str, Any]:
    response = sandbox.http.post(
        f"{sandbox.base}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": dual_redirect(_port(sandbox)),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sandbox.assertion("dual-imaging"),
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _claims(sandbox: Sandbox, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(sandbox.http.get(f"{sandbox.base}/.well-known/jwks.json").json())
    return dict(jwt.decode(id_token, keys, algorithms=["RS256"]).claims)


def _signed_by_sandbox(sandbox: Sandbox, **claims: Any) -> str:
    """An id_token signed with the sandbox's own key (read from its data dir) with these claims."""
    now = int(sandbox.clock())
    base = {"iss": sandbox.fhir, "sub": "ava-chen", "aud": "my-app", "iat": now, "exp": now + 3600}
    return Signer.load_or_create(sandbox.config.data_dir).sign({**base, **claims})


def test_silent_approval_for_the_user_and_patient_of_the_hint(sandbox: Sandbox) -> None:
    viewer = sandbox.launch(scope=VIEWER_SCOPE, patient="marcus-okafor")
    answer = _answer(_silent(sandbox, viewer["id_token"]))
    assert "error" not in answer, answer
    token = _dual_token(sandbox, answer["code"])
    assert token["patient"] == "marcus-okafor"
    assert set(token["scope"].split()) == set(DUAL_SILENT_SCOPE.split())
    claims = _claims(sandbox, token["id_token"])
    assert claims["nonce"] == "n-silent" and claims["aud"] == "dual-imaging"
    assert claims["sub"] == _claims(sandbox, viewer["id_token"])["sub"] == "marcus-okafor"
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert sandbox.http.get(f"{sandbox.fhir}/Patient/marcus-okafor", headers=auth).status_code == 200
    assert sandbox.http.get(f"{sandbox.fhir}/Patient/ava-chen", headers=auth).status_code == 403


def test_silent_approval_for_a_public_client_the_user_approved_before(sandbox: Sandbox) -> None:
    viewer = sandbox.launch(client_id="consented-app", scope=VIEWER_SCOPE, patient="lucia-ramirez")
    verifier = uuid.uuid4().hex * 2
    params = {
        "client_id": "consented-app",
        "redirect_uri": "http://localhost:9999/callback",
        "scope": "launch/patient patient/Patient.rs openid",  # narrower than approved: fine
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
    }
    answer = _answer(_silent(sandbox, viewer["id_token"], **params))
    token = sandbox.http.post(
        f"{sandbox.base}/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "client_id": "consented-app",
            "redirect_uri": params["redirect_uri"],
            "code_verifier": verifier,
        },
    ).json()
    assert token["patient"] == "lucia-ramirez"
    wider = _answer(
        _silent(sandbox, viewer["id_token"], **{**params, "scope": "launch/patient offline_access"})
    )
    assert wider["error"] == "consent_required" and "code" not in wider


def test_a_public_client_never_approved_needs_consent(sandbox: Sandbox) -> None:
    viewer = sandbox.launch(scope=VIEWER_SCOPE)
    answer = _answer(
        _silent(
            sandbox,
            viewer["id_token"],
            client_id="stranger-app",
            redirect_uri="http://localhost:9999/callback",
            code_challenge=s256_challenge("v" * 43),
            code_challenge_method="S256",
        )
    )
    assert answer["error"] == "consent_required" and "code" not in answer


def test_registered_client_beyond_its_silent_scope_needs_consent(sandbox: Sandbox) -> None:
    viewer = sandbox.launch(scope=VIEWER_SCOPE)
    answer = _answer(_silent(sandbox, viewer["id_token"], scope=f"{DUAL_SILENT_SCOPE} offline_access"))
    assert answer["error"] == "consent_required" and "code" not in answer


def test_prompt_none_without_a_hint_is_login_required(sandbox: Sandbox) -> None:
    answer = _answer(_silent(sandbox, None))
    assert answer["error"] == "login_required" and "code" not in answer


def test_prompt_none_with_another_prompt_is_invalid(sandbox: Sandbox) -> None:
    viewer = sandbox.launch(scope=VIEWER_SCOPE)
    answer = _answer(_silent(sandbox, viewer["id_token"], prompt="none login"))
    assert answer["error"] == "invalid_request" and "code" not in answer


def _forged(sandbox: Sandbox, genuine: str) -> str:
    """The genuine id_token's header and claims, signed with another RSA key."""
    claims = _claims(sandbox, genuine)
    kid = sandbox.http.get(f"{sandbox.base}/.well-known/jwks.json").json()["keys"][0]["kid"]
    other = RSAKey.generate_key(2048)
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, other, algorithms=["RS256"])


@pytest.mark.parametrize("kind", ["other-key", "unsigned", "garbage", "tampered"])
def test_a_hint_the_sandbox_did_not_sign_is_refused(sandbox: Sandbox, kind: str) -> None:
    genuine = sandbox.launch(scope=VIEWER_SCOPE, patient="ava-chen")["id_token"]
    head, body, signature = genuine.split(".")
    hints = {
        "other-key": lambda: _forged(sandbox, genuine),
        "unsigned": lambda: f"eyJhbGciOiJub25lIn0.{body}.",
        "garbage": lambda: "not-a-jwt",
        "tampered": lambda: f"{head}.{_payload(sandbox, genuine, sub='sam-patel')}.{signature}",
    }
    hint = hints[kind]()
    answer = _answer(_silent(sandbox, hint))
    assert answer["error"] == "invalid_request" and "code" not in answer
    assert "did not sign" in answer["error_description"] or "signed" in answer["error_description"]
    interactive = sandbox.authorize(**{**_silent_params(sandbox), "id_token_hint": hint})
    assert interactive.status_code == 302  # never a consent page that could approve it
    assert httpx.URL(interactive.headers["location"]).params["error"] == "invalid_request"


def _silent_params(sandbox: Sandbox) -> dict[str, str]:
    request = _silent(sandbox, None).request
    params = dict(request.url.params)
    del params["prompt"]
    return params


def _payload(sandbox: Sandbox, genuine: str, **changes: Any) -> str:
    claims = {**_claims(sandbox, genuine), **changes}
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def test_hints_signed_by_the_sandbox_with_unusable_claims(sandbox: Sandbox) -> None:
    sandbox.launch(client_id="my-app", scope=VIEWER_SCOPE)  # my-app is a client the sandbox knows
    foreign_iss = _answer(_silent(sandbox, _signed_by_sandbox(sandbox, iss="https://other.example/fhir")))
    assert foreign_iss["error"] == "invalid_request"
    unknown_client = _answer(_silent(sandbox, _signed_by_sandbox(sandbox, aud="never-seen-app")))
    assert unknown_client["error"] == "login_required"
    unknown_user = _answer(_silent(sandbox, _signed_by_sandbox(sandbox, sub="nobody")))
    assert unknown_user["error"] == "login_required"
    usable = _answer(_silent(sandbox, _signed_by_sandbox(sandbox)))
    assert "code" in usable and _dual_token(sandbox, usable["code"])["patient"] == "ava-chen"


def test_an_expired_hint_works_within_the_grace_window_only(sandbox: Sandbox) -> None:
    hint = sandbox.launch(scope=VIEWER_SCOPE, patient="sam-patel")["id_token"]
    exp = int(_claims(sandbox, hint)["exp"])
    sandbox.clock.offset = exp - time.time() + 60  # expired a minute ago
    within = _answer(_silent(sandbox, hint))
    assert "code" in within, within
    sandbox.clock.offset = exp - time.time() + sandbox.config.id_token_hint_grace + 60
    beyond = _answer(_silent(sandbox, hint))
    assert beyond["error"] == "login_required" and "code" not in beyond


def test_interactive_fallback_after_login_required(sandbox: Sandbox) -> None:
    """What an imaging server does after ``login_required``: the same request without prompt."""
    assert _answer(_silent(sandbox, None))["error"] == "login_required"
    page = sandbox.authorize(**_silent_params(sandbox))
    redirect = sandbox.approve(page, patient="lucia-ramirez")
    answer = _answer(redirect)
    token = _dual_token(sandbox, answer["code"])
    assert token["patient"] == "lucia-ramirez"
    assert _claims(sandbox, token["id_token"])["nonce"] == "n-silent"
