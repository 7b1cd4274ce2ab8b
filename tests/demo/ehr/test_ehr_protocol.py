"""Unit tests of the sandbox's pure protocol code: PKCE, scopes, clients, authorize
validation, client assertions, and the store's single-use rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from smart_imaging_demo.ehr import authorize, pkce, scopes
from smart_imaging_demo.ehr.assertion import CLIENT_ASSERTION_TYPE, verify_client_assertion
from smart_imaging_demo.ehr.clients import client_for_redirect
from smart_imaging_demo.ehr.config import BackendClient, EhrConfig
from smart_imaging_demo.ehr.errors import ErrorPage, InvalidClient, RedirectError
from smart_imaging_demo.ehr.store import CodeRecord, PendingRequest, Store

NOW = 1_700_000_000


def _config(tmp_path: Path, key: ECKey | None = None) -> EhrConfig:
    clients = (BackendClient(client_id="backend", jwks={"keys": [key.as_dict(private=True)]}),) if key else ()
    return EhrConfig(
        base_url="http://localhost:8000/ehr/",
        data_dir=tmp_path,
        imaging_fhir_base_url="http://localhost:8000/demo/fhir",
        backend_clients=clients,
        clock=lambda: NOW,
    )


# ---------------------------------------------------------------- PKCE (RFC 7636)


def test_pkce_rfc7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not pkce.verify(verifier[:-1] + "l", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_pkce_verifier_syntax() -> None:
    assert not pkce.verify("short", pkce.s256_challenge("short"))
    assert not pkce.verify(None, "x" * 43)
    assert not pkce.is_valid_verifier("a" * 129) and pkce.is_valid_verifier("a" * 128)
    assert not pkce.is_valid_challenge("a" * 42) and not pkce.is_valid_challenge("+" * 43)


# ---------------------------------------------------------------- scopes


def test_user_scopes_are_intersected_and_reduced_to_read() -> None:
    granted = scopes.grant_user_scopes(
        "openid fhirUser launch/patient patient/*.cruds patient/Condition.read "
        "patient/Observation.rs patient/Patient.write user/*.rs system/*.read "
        "patient/ImagingStudy.rs?x=1 patient/*.rs"
    )
    assert granted == ["openid", "fhirUser", "launch/patient", "patient/*.rs", "patient/Condition.read"]


def test_scope_parsing_rejects_bad_v2_permissions() -> None:
    assert scopes.parse_clinical("patient/*.sr") is None  # order is cruds
    assert scopes.parse_clinical("patient/*.rr") is None
    parsed = scopes.parse_clinical("patient/Patient.rs")
    assert parsed is not None and parsed.covers("Patient", "s")
    assert not parsed.covers("Condition", "r")


def test_allows_checks_context_type_and_interaction() -> None:
    granted = ["patient/Patient.r", "system/*.read"]
    assert scopes.allows(granted, "patient", "Patient", "r")
    assert not scopes.allows(granted, "patient", "Patient", "s")
    assert scopes.allows(granted, "system", "Condition", "s")
    assert not scopes.allows(["patient/*.rs"], "system", "Patient", "r")


def test_system_scopes_within_registered_scope() -> None:
    assert scopes.grant_system_scopes(None, "system/Patient.read") == ["system/Patient.read"]
    assert scopes.grant_system_scopes("system/Patient.rs system/Condition.read", "system/Patient.read") == [
        "system/Patient.rs"
    ]
    assert scopes.grant_system_scopes("system/*.read", "system/Patient.read") == []
    assert scopes.grant_system_scopes("system/Patient.r", "system/*.rs") == ["system/Patient.r"]
    assert scopes.grant_system_scopes("patient/*.rs", "system/*.rs") == []


def test_refresh_may_only_narrow() -> None:
    assert scopes.narrow(["a", "b"], None) == ["a", "b"]
    assert scopes.narrow(["a", "b"], "b") == ["b"]
    assert scopes.narrow(["a", "b"], "b c") is None


# ---------------------------------------------------------------- clients & authorize


@pytest.mark.parametrize(
    "uri, accepted",
    [
        ("http://localhost:3000/cb", True),
        ("http://127.0.0.1/cb", True),
        ("http://[::1]:8080/cb", True),
        ("http://localhost:8000/viewer/", True),
        ("https://LOCALHOST:1/x?y=1", True),
        ("http://localhost:8001.evil.com/cb", False),
        ("https://example.com/cb", False),
        ("http://localhost:8000/cb#f", False),
        ("javascript:alert(1)", False),
        ("http://user@localhost/cb", False),
        ("http://localhost:99999/cb", False),
        ("/relative", False),
    ],
)
def test_public_redirect_uris(tmp_path: Path, uri: str, accepted: bool) -> None:
    assert (client_for_redirect("any", uri, _config(tmp_path)) is not None) is accepted


def _authorize_params(**extra: str) -> list[tuple[str, str]]:
    params = {
        "response_type": "code",
        "client_id": "app",
        "state": "s",
        "redirect_uri": "http://localhost:5000/cb",
        "scope": "launch/patient patient/*.rs",
        "code_challenge": pkce.s256_challenge("x" * 43),
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return [(k, v) for k, v in params.items() if v != "<drop>"]


def test_authorize_validation(tmp_path: Path) -> None:
    config = _config(tmp_path)
    valid = authorize.validate(_authorize_params(aud="http://localhost:8000/ehr/fhir"), config)
    assert valid.granted_scope == ["launch/patient", "patient/*.rs"] and valid.state == "s"
    with pytest.raises(ErrorPage):
        authorize.validate(_authorize_params(redirect_uri="<drop>"), config)
    with pytest.raises(ErrorPage):
        authorize.validate([*_authorize_params(), ("client_id", "other")], config)
    with pytest.raises(RedirectError) as repeated:
        authorize.validate([*_authorize_params(), ("scope", "openid")], config)
    assert repeated.value.error == "invalid_request" and repeated.value.state == "s"
    with pytest.raises(RedirectError) as bad_challenge:
        authorize.validate(_authorize_params(code_challenge="short"), config)
    assert bad_challenge.value.error == "invalid_request"


def test_redirect_url_keeps_existing_query() -> None:
    url = authorize.redirect_url("http://localhost/cb?app=1", {"code": "c d", "state": None})
    assert url == "http://localhost/cb?app=1&code=c+d"


# ---------------------------------------------------------------- client assertions


def _assertion(key: ECKey, **overrides: Any) -> str:
    claims = {
        "iss": "backend",
        "sub": "backend",
        "aud": "http://localhost:8000/ehr/token",
        "exp": NOW + 60,
        "jti": "j1",
        **overrides,
    }
    return jwt.encode({"alg": "ES384", "kid": key.kid}, claims, key, algorithms=["ES384"])


def test_assertion_accepted_and_claims_checked(tmp_path: Path) -> None:
    key = ECKey.generate_key("P-384", auto_kid=True)
    config = _config(tmp_path, key)
    verified = verify_client_assertion(_assertion(key), CLIENT_ASSERTION_TYPE, "backend", config)
    assert (verified.client_id, verified.jti, verified.exp) == ("backend", "j1", NOW + 60)
    assert config.backend_clients[0].jwks["keys"][0].get("d") is None  # private part dropped
    refusals = [
        _assertion(key, aud=["http://elsewhere/token"]),
        _assertion(key, exp=NOW),
        _assertion(key, exp=NOW + 301),
        _assertion(key, exp="soon"),
        _assertion(key, iat=NOW + 120),
        _assertion(key, iss="nobody", sub="nobody"),
        _assertion(ECKey.generate_key("P-384", auto_kid=True)),
    ]
    for assertion in refusals:
        with pytest.raises(InvalidClient):
            verify_client_assertion(assertion, CLIENT_ASSERTION_TYPE, None, config)
    with pytest.raises(InvalidClient):
        verify_client_assertion(_assertion(key), CLIENT_ASSERTION_TYPE, "other", config)
    es256 = ECKey.generate_key("P-256")
    weak = jwt.encode({"alg": "ES256"}, {"iss": "backend"}, es256, algorithms=["ES256"])
    with pytest.raises(InvalidClient):
        verify_client_assertion(weak, CLIENT_ASSERTION_TYPE, None, config)


# ---------------------------------------------------------------- store


def test_store_codes_pending_and_jtis_are_single_use(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    try:
        store.save_code(
            "code-secret-one", CodeRecord("app", "http://localhost/cb", None, "openid", None, None, NOW + 60)
        )
        assert store.redeem_code("code-secret-one", NOW)[0] == "ok"
        assert store.redeem_code("code-secret-one", NOW) == ("used", None)
        assert store.redeem_code("nope", NOW) == ("unknown", None)
        store.save_code("c2", CodeRecord("app", "u", None, "s", None, None, NOW + 60))
        assert store.redeem_code("c2", NOW + 60)[0] == "expired"
        store.save_pending("r1", PendingRequest("app", "u", "s", None, None, None, NOW + 10))
        assert store.take_pending("r1", NOW) is not None
        assert store.take_pending("r1", NOW) is None
        assert store.remember_jti("backend", "j", NOW + 60)
        assert not store.remember_jti("backend", "j", NOW + 60)
        assert store.remember_jti("other", "j", NOW + 60)
        raw = (tmp_path / "s.sqlite").read_bytes()
        assert b"code-secret-one" not in raw.replace(b"code-secret-one" * 0, b"")  # only hashes are stored
    finally:
        store.close()
