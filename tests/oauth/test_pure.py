"""The pure parts of the authorization server: PKCE, scope narrowing, client and redirect rules,
the authorization request, id_token checks, the EHR request, the pages."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from smart_imaging.config.tenant import OAuthServerSettings
from smart_imaging.oauth import pkce
from smart_imaging.oauth.clients import ClientPolicy, is_loopback, origin_of
from smart_imaging.oauth.consent import ConsentView, consent_page, error_page, human_name
from smart_imaging.oauth.ehr_leg import Attempt, authorize_url, error_code, falls_back, user_url
from smart_imaging.oauth.errors import PageError, RedirectError
from smart_imaging.oauth.grants import granted_scope, issues_refresh_token, narrowed
from smart_imaging.oauth.id_token import InvalidIdToken, check_hint, check_id_token, signed_claims
from smart_imaging.oauth.params import client_and_redirect, parse_authorize, response_url

FHIR = "https://imaging.example/t/fhir"


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.verifies(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not pkce.verifies(verifier[:-1] + "l", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not pkce.verifies("short", pkce.s256("short"))  # under 43 characters
    assert not pkce.verifies(None, pkce.s256(verifier))
    assert pkce.valid_challenge(pkce.s256(pkce.new_verifier()))
    assert not pkce.valid_challenge("plain-text-challenge")


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        ("patient/ImagingStudy.rs launch/patient openid fhirUser", "launch/patient patient/ImagingStudy.rs"),
        ("patient/*.read", "patient/ImagingStudy.read"),
        ("patient/*.*", "patient/ImagingStudy.read"),
        ("patient/*.cruds offline_access", "offline_access patient/ImagingStudy.rs"),
        (
            "patient/ImagingStudy.read patient/ImagingStudy.rs",
            "patient/ImagingStudy.read patient/ImagingStudy.rs",
        ),
        ("user/*.rs system/*.read patient/Observation.rs", None),
        ("patient/ImagingStudy.rs?category=x", None),
        ("patient/ImagingStudy.s", None),
        ("", None),
    ],
)
def test_scopes_are_narrowed_to_imaging(requested: str, granted: str | None) -> None:
    assert granted_scope(requested) == granted


def test_refresh_scopes() -> None:
    granted = "launch/patient offline_access patient/ImagingStudy.rs"
    assert issues_refresh_token(granted) and not issues_refresh_token("patient/ImagingStudy.rs")
    assert narrowed(granted, None) == granted
    assert narrowed(granted, "patient/ImagingStudy.rs") == "patient/ImagingStudy.rs"
    assert narrowed(granted, "patient/*.rs") is None  # more than granted
    assert narrowed(granted, "launch/patient") is None  # no imaging left


def policy(**settings: Any) -> ClientPolicy:
    return ClientPolicy(OAuthServerSettings.model_validate(settings))


def test_open_mode_sends_codes_only_to_loopback_own_or_configured_origins() -> None:
    open_ = policy(redirectOrigins=["https://viewer.example.org"])
    own = "https://imaging.example"
    for uri in (
        "http://127.0.0.1/cb",
        "http://127.0.0.1:5555/cb?x=1",
        "http://127.5.6.7/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/",
        "https://imaging.example/viewer/",
        "https://imaging.example:443/viewer/",
        "https://VIEWER.example.org/app/callback",
    ):
        assert open_.require("any-app", uri, own).client_id == "any-app", uri
    for uri in (
        "https://attacker.example/cb",
        "https://viewer.example.org.attacker.example/cb",
        "https://imaging.example.evil/cb",
        "http://imaging.example/viewer/",  # another scheme: another origin
        "https://viewer.example.org:8443/cb",
        "http://127.0.0.1/cb#frag",
        "http://user@127.0.0.1/cb",
        "ftp://127.0.0.1/cb",
        "/relative/cb",
    ):
        with pytest.raises(PageError):
            open_.require("any-app", uri, own)
    with pytest.raises(PageError):
        open_.require("has space", "http://127.0.0.1/cb", own)


def test_registered_clients_match_exactly_and_close_open_mode() -> None:
    closed = policy(clients=[{"client_id": "viewer", "redirect_uris": ["https://app.example/cb"]}])
    assert not closed.open_mode
    assert closed.require("viewer", "https://app.example/cb", "https://x").registered
    for uri in (
        "https://app.example/cb/",
        "https://app.example/CB",
        "https://app.example/cb?x=1",
        "http://127.0.0.1/cb",
    ):
        with pytest.raises(PageError):
            closed.require("viewer", uri, "https://x")
    with pytest.raises(PageError):
        closed.require("stranger", "http://127.0.0.1/cb", "https://x")
    both = policy(
        openClients=True, clients=[{"client_id": "viewer", "redirect_uris": ["https://app.example/cb"]}]
    )
    with pytest.raises(PageError):  # a registered id cannot be used with an open-mode redirect
        both.require("viewer", "http://127.0.0.1/cb", "https://x")
    assert both.require("another", "http://127.0.0.1/cb", "https://x").client_id == "another"


def test_origins_and_loopback() -> None:
    assert origin_of("HTTPS://Example.org:443/a?b") == "https://example.org"
    assert origin_of("http://[::1]:8080/x") == "http://[::1]:8080"
    assert (
        is_loopback("http://localhost/x")
        and is_loopback("http://[::1]/")
        and is_loopback("http://127.9.9.9/")
    )
    assert not is_loopback("http://127.0.0.1.example/") and not is_loopback("http://10.0.0.1/")


def request(**overrides: str) -> list[tuple[str, str]]:
    base = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": "http://127.0.0.1/cb",
        "scope": "patient/ImagingStudy.rs",
        "state": "st",
        "aud": FHIR,
        "code_challenge": pkce.s256(pkce.new_verifier()),
        "code_challenge_method": "S256",
    }
    base.update(overrides)
    return [(k, v) for k, v in base.items() if v]


def test_authorization_request_rules() -> None:
    parsed = parse_authorize(request(aud=FHIR + "/", login_hint="x.y.z"), FHIR)
    assert parsed.scope == "patient/ImagingStudy.rs" and parsed.login_hint == "x.y.z"
    for overrides, error in (
        ({"state": ""}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"aud": "https://imaging.example/other/fhir"}, "invalid_request"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "openid"}, "invalid_scope"),
    ):
        with pytest.raises(RedirectError) as caught:
            parse_authorize(request(**overrides), FHIR)
        assert caught.value.error == error, overrides
    with pytest.raises(RedirectError):
        parse_authorize([*request(), ("scope", "patient/*.rs")], FHIR)
    with pytest.raises(PageError):
        client_and_redirect([*request(), ("redirect_uri", "https://attacker.example/")])
    with pytest.raises(PageError):
        client_and_redirect(request(client_id=""))


def test_response_urls_keep_the_query_and_encode_values() -> None:
    url = response_url("http://127.0.0.1/cb?app=1", {"code": "a&b=c", "state": "x y", "iss": None})
    assert url.startswith("http://127.0.0.1/cb?app=1&")
    assert parse_qs(urlsplit(url).query) == {"app": ["1"], "code": ["a&b=c"], "state": ["x y"]}


KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER = ECKey.generate_key("P-256", parameters={"kid": "k2"})


def id_token(key: Any = KEY, alg: str = "RS256", kid: str | None = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": "https://ehr",
        "aud": "imaging-client",
        "sub": "u1",
        "nonce": "n1",
        "iat": now,
        "exp": now + 60,
    }
    body.update(claims)
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])


def test_id_tokens_are_checked_as_openid_connect_core_says() -> None:
    keys = KeySet([KEY, OTHER])
    good = signed_claims(id_token(), keys)
    check_id_token(good, issuer="https://ehr", client_id="imaging-client", nonce="n1", now=time.time())
    assert signed_claims(id_token(kid=None), keys)["sub"] == "u1"  # no kid: each key is tried
    assert signed_claims(id_token(OTHER, "ES256", "k2"), keys)["sub"] == "u1"
    with pytest.raises(InvalidIdToken):
        signed_claims(id_token(RSAKey.generate_key(2048, parameters={"kid": "k1"})), keys)
    with pytest.raises(InvalidIdToken):
        signed_claims("not.a.jwt", keys)
    with pytest.raises(InvalidIdToken):
        signed_claims(jwt.encode({"alg": "HS256"}, {"sub": "u"}, OctKey.import_key("s" * 32)), keys)
    now = time.time()
    for claims in (
        {"iss": "https://other"},
        {"aud": "someone-else"},
        {"aud": ["imaging-client", "x"]},  # several audiences and no azp
        {"nonce": "n2"},
        {"nonce": None},
        {"exp": int(now) - 120},
        {"iat": None},
        {"sub": ""},
    ):
        with pytest.raises(InvalidIdToken):
            check_id_token(
                signed_claims(id_token(**claims), keys),
                issuer="https://ehr",
                client_id="imaging-client",
                nonce="n1",
                now=now,
            )
    several = signed_claims(id_token(aud=["imaging-client", "x"], azp="imaging-client"), keys)
    check_id_token(several, issuer="https://ehr", client_id="imaging-client", nonce="n1", now=now)
    assert (
        check_hint(signed_claims(id_token(aud="app", exp=int(now) - 9999), keys), issuer="https://ehr")
        == "u1"
    )
    with pytest.raises(InvalidIdToken):
        check_hint({"iss": "https://other", "sub": "u1"}, issuer="https://ehr")


def test_the_ehr_request_and_its_answers() -> None:
    attempt = Attempt("st", "no", pkce.new_verifier(), silent=True)
    url = authorize_url(
        "https://ehr/auth?tenant=1",
        client_id="c",
        redirect_uri="https://i/cb",
        scope="openid",
        aud="https://ehr/fhir",
        attempt=attempt,
        hint="h.i.nt",
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["tenant"] == "1" and query["prompt"] == "none" and query["id_token_hint"] == "h.i.nt"
    assert query["code_challenge"] == pkce.s256(attempt.verifier) and query["nonce"] == "no"
    loud = authorize_url(
        "https://ehr/auth",
        client_id="c",
        redirect_uri="https://i/cb",
        scope="openid",
        aud="a",
        attempt=Attempt("s", "n", pkce.new_verifier(), silent=False),
        hint="h.i.nt",
    )
    assert "prompt" not in loud and "id_token_hint" not in loud
    assert falls_back("login_required", True) and not falls_back("login_required", False)
    assert not falls_back("access_denied", True)
    assert error_code('bad"code<>') == "server_error" and error_code("login_required") == "login_required"
    base = "https://ehr/fhir"
    assert user_url("Practitioner/p1", base) == "https://ehr/fhir/Practitioner/p1"
    assert user_url("https://ehr/fhir/Patient/x", base) == "https://ehr/fhir/Patient/x"
    for bad in ("https://attacker/fhir/Patient/x", "Observation/1", "Patient/../../x", None, "Patient/"):
        assert user_url(bad, base) is None


def test_pages_escape_everything() -> None:
    hostile = '<script>alert("x")</script>'
    assert human_name({"name": [{"given": [hostile, 3], "family": {"x": 1}}]}) == hostile
    assert human_name({"name": "not a list"}) is None and human_name(None) is None
    page = consent_page(
        ConsentView(
            request_id='r"><script>',
            csrf="c",
            client_id=hostile,
            client_name=None,
            redirect_origin="http://127.0.0.1",
            user=hostile,
            patient=hostile,
            patient_details=hostile,
            scopes=["patient/ImagingStudy.rs", hostile],
            warning=hostile,
        )
    )
    assert "<script>" not in page and page.count("&lt;script&gt;") >= 6
    assert 'value="r&quot;&gt;&lt;script&gt;"' in page
    assert "<script>" not in error_page(hostile, hostile)
