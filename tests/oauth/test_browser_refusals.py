"""What the browser legs refuse or fall back on: unregistered redirect URIs (a page, never a
redirect), bad requests sent back to a genuine redirect URI, the EHR denying or answering
login_required (then an interactive EHR sign-in), forged and foreign hints, a hint naming another
patient, hostile names on the consent page, and consent posts without the session's CSRF token."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from .browser import APP_REDIRECT, Browser
from .stack import IMAGING_SCOPE, Stack, approve, ehr_launch, pkce_pair, redeem, start_imaging_launch


def ehr_visits(browser: Browser, stack: Stack, since: int) -> list[dict[str, str]]:
    """The query of every authorization request the browser made at the EHR since ``since``."""
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(u).query).items()}
        for u in browser.visited[since:]
        if u.startswith(f"{stack.oidc.issuer}/auth?")
    ]


def authorize_url(stack: Stack, tenant: str, **params: str) -> str:
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": APP_REDIRECT,
        "scope": IMAGING_SCOPE,
        "state": "s-1",
        "aud": stack.fhir(tenant),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    return f"{stack.oauth(tenant)}/authorize?{urlencode({k: v for k, v in query.items() if v})}"


def test_unregistered_redirect_uris_get_a_page_never_a_redirect(stack: Stack) -> None:
    cases = [
        ("registered", {"client_id": "viewer", "redirect_uri": "http://127.0.0.1/callback/other"}),
        ("registered", {"client_id": "viewer", "redirect_uri": "https://attacker.example/callback"}),
        ("registered", {"client_id": "not-registered"}),  # closed: clients are registered
        ("reference", {"redirect_uri": "https://attacker.example/callback"}),  # open mode: not loopback
        ("reference", {"redirect_uri": "http://127.0.0.1/callback#fragment"}),
        ("reference", {"redirect_uri": "javascript:alert(1)"}),
        ("reference", {"redirect_uri": ""}),
        ("reference", {"client_id": ""}),
    ]
    for tenant, params in cases:
        answer = httpx.get(authorize_url(stack, tenant, **params), timeout=10)
        assert answer.status_code == 400, (params, answer.status_code)
        assert "location" not in answer.headers and answer.headers["content-type"].startswith("text/html")
        assert "attacker" not in answer.text
    doubled = authorize_url(stack, "reference") + "&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb"
    answer = httpx.get(doubled, timeout=10)
    assert answer.status_code == 400 and "location" not in answer.headers


def test_bad_requests_go_back_to_a_genuine_redirect_uri_with_state(stack: Stack) -> None:
    cases = [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"aud": "https://other.example/fhir"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid patient/Observation.rs"}, "invalid_scope"),
    ]
    for params, error in cases:
        answer = httpx.get(authorize_url(stack, "reference", **params), timeout=10)
        assert answer.status_code == 302, (params, answer.text)
        location = answer.headers["location"]
        query = parse_qs(urlsplit(location).query)
        assert location.startswith(APP_REDIRECT + "?") and query["error"] == [error], params
        assert query["state"] == ["s-1"] and query["iss"] == [stack.oauth("reference")]
    no_state = httpx.get(authorize_url(stack, "reference", state=""), timeout=10)
    assert parse_qs(urlsplit(no_state.headers["location"]).query)["error"] == ["invalid_request"]


def test_the_ehr_denying_sends_access_denied_back_to_the_app(stack: Stack, browser: Browser) -> None:
    start = len(browser.visited)
    launch = start_imaging_launch(browser, stack.fhir("reference"), login_hint=None)
    (visit,) = ehr_visits(browser, stack, start)
    assert "prompt" not in visit and "id_token_hint" not in visit  # no hint: interactive at once
    login = launch.stop
    assert login.forms and "account" in login.forms[0].fields  # the EHR's own sign-in page
    landed = browser.submit(login, ("action", "deny"))
    assert landed.landed and landed.query["error"] == "access_denied"
    assert landed.query["state"] == launch.state and "code" not in landed.query


def test_login_required_falls_back_to_an_interactive_ehr_sign_in(stack: Stack) -> None:
    app_browser, imaging_browser = Browser(), Browser()  # the EHR session is only in the first
    try:
        ehr = ehr_launch(app_browser, stack.oidc.issuer, "pat-a")
        launch = start_imaging_launch(imaging_browser, stack.fhir("reference"), login_hint=ehr["id_token"])
        silent, interactive = ehr_visits(imaging_browser, stack, 0)
        assert silent["prompt"] == "none" and silent["id_token_hint"] == ehr["id_token"]
        assert "prompt" not in interactive and "id_token_hint" not in interactive
        assert interactive["state"] != silent["state"] and interactive["nonce"] != silent["nonce"]
        consent = imaging_browser.submit(launch.stop, ("action", "login"), account="pat-a")
        assert "Anna Test" in consent.response.text
        token = redeem(imaging_browser, stack.oauth("reference"), launch, approve(imaging_browser, consent))
        assert token["status"] == 200 and token["patient"] == "pat-a"
    finally:
        app_browser.close()
        imaging_browser.close()


def forged_hint(stack: Stack, sub: str) -> str:
    """An id_token that looks like the EHR's but is signed by another key (same kid)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "ehr-rs256"})
    now = int(time.time())
    claims = {"iss": stack.oidc.issuer, "sub": sub, "aud": "app", "iat": now, "exp": now + 300}
    return jwt.encode({"alg": "RS256", "kid": "ehr-rs256"}, claims, key)


def test_a_forged_hint_is_never_forwarded_nor_believed(stack: Stack, browser: Browser) -> None:
    ehr_launch(browser, stack.oidc.issuer, "pat-a")  # the browser's EHR session is pat-a's
    start = len(browser.visited)
    hint = forged_hint(stack, "pat-b")
    launch = start_imaging_launch(browser, stack.fhir("reference"), login_hint=hint)
    (visit,) = ehr_visits(browser, stack, start)
    assert "id_token_hint" not in visit and "prompt" not in visit  # not silent, hint dropped
    assert "Anna Test" in launch.stop.response.text and "Ben" not in launch.stop.response.text
    token = redeem(browser, stack.oauth("reference"), launch, approve(browser, launch.stop))
    assert token["patient"] == "pat-a"


def test_a_hint_of_another_user_is_refused_by_the_ehr_and_never_taken(stack: Stack) -> None:
    """A genuine id_token of pat-b's EHR session, used in pat-a's browser: the EHR answers
    login_required to the silent attempt; the interactive retry signs in the session's user."""
    other, browser = Browser(), Browser()
    try:
        hint = ehr_launch(other, stack.oidc.issuer, "pat-b")["id_token"]
        ehr_launch(browser, stack.oidc.issuer, "pat-a")
        start = len(browser.visited)
        launch = start_imaging_launch(browser, stack.fhir("reference"), login_hint=hint)
        silent, retry = ehr_visits(browser, stack, start)
        assert silent["prompt"] == "none" and "id_token_hint" not in retry
        page = launch.stop.response.text
        assert "Anna Test" in page and "Ben Other" not in page
        assert "another EHR user" in page  # the consent page says the hint named someone else
        token = redeem(browser, stack.oauth("reference"), launch, approve(browser, launch.stop))
        assert token["patient"] == "pat-a"
        found = httpx.get(
            f"{stack.fhir('reference')}/ImagingStudy",
            params={"patient": "pat-b"},
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=30,
        )
        assert found.status_code == 403
    finally:
        other.close()
        browser.close()


def test_hostile_names_are_shown_escaped(stack: Stack, browser: Browser) -> None:
    stack.front.patients["pat-a"]["name"] = [{"text": '<script>alert("x")</script> & "Anna"'}]
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    client = "<img/src=x/onerror=alert(1)>"
    launch = start_imaging_launch(
        browser, stack.fhir("reference"), login_hint=ehr["id_token"], client_id=client
    )
    page = launch.stop.response
    assert page.status_code == 200
    assert "<script>" not in page.text and "<img" not in page.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Anna&quot;" in page.text
    assert "&lt;img/src=x/onerror=alert(1)&gt;" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_consent_posts_need_the_sessions_csrf_token(stack: Stack, browser: Browser) -> None:
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    launch = start_imaging_launch(browser, stack.fhir("reference"), login_hint=ehr["id_token"])
    page = launch.stop
    for csrf in (None, "", secrets.token_urlsafe(32)):
        refused = browser.submit(page, ("decision", "approve"), csrf=csrf)
        assert refused.response is not None and refused.response.status_code == 403
        assert "location" not in refused.response.headers
    form = page.forms[0]
    stranger = httpx.post(  # another browser (no session cookie), with the right token
        page.url.split("?")[0], data={**form.fields, "decision": "approve"}, timeout=10
    )
    assert stranger.status_code == 403 and "location" not in stranger.headers
    landed = approve(browser, page)  # the genuine post still works
    assert landed.landed and "code" in landed.query
    replay = browser.submit(page, ("decision", "approve"))
    assert replay.response is not None and replay.response.status_code == 400  # decided already


def test_the_ehr_callback_refuses_a_state_it_did_not_send_or_another_browser(stack: Stack) -> None:
    answer = httpx.get(f"{stack.oauth('reference')}/ehr-callback?code=x&state=forged", timeout=10)
    assert answer.status_code == 400 and "location" not in answer.headers
    browser, stranger = Browser(), Browser()
    try:
        ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
        browser.stop_at = f"{stack.oauth('reference')}/ehr-callback"  # stop before the callback
        launch = start_imaging_launch(browser, stack.fhir("reference"), login_hint=ehr["id_token"])
        assert launch.stop.landed and "code" in launch.stop.query  # the EHR's answer, not yet delivered
        refused = stranger.go(launch.stop.url)  # the EHR's code injected into another browser
        assert refused.response is not None and refused.response.status_code == 400
        assert "another browser" in refused.response.text and "location" not in refused.response.headers
        browser.stop_at = APP_REDIRECT
        late = browser.go(launch.stop.url)  # single use: the refused attempt consumed the state
        assert late.response is not None and late.response.status_code == 400
    finally:
        browser.close()
        stranger.close()


def test_without_consent_the_code_comes_straight_back(stack: Stack, browser: Browser) -> None:
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    launch = start_imaging_launch(browser, stack.fhir("noconsent"), login_hint=ehr["id_token"])
    assert launch.stop.landed and "code" in launch.stop.query
    token = redeem(browser, stack.oauth("noconsent"), launch, launch.stop)
    assert token["patient"] == "pat-a"


def test_a_public_ehr_client_works_with_pkce_only(stack: Stack, browser: Browser) -> None:
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    launch = start_imaging_launch(browser, stack.fhir("public-ehr"), login_hint=ehr["id_token"])
    token = redeem(browser, stack.oauth("public-ehr"), launch, approve(browser, launch.stop))
    assert token["status"] == 200 and token["patient"] == "pat-a"
    assert stack.oidc.stats()["token"].get("imaging-public", 0) >= 1


def test_tenants_of_other_types_have_no_authorization_server(stack: Stack) -> None:
    answer = httpx.get(authorize_url(stack, "plain"), timeout=10)
    assert answer.status_code == 404 and "location" not in answer.headers
    token = httpx.post(f"{stack.oauth('plain')}/token", data={"grant_type": "x"}, timeout=10)
    assert token.status_code == 404
