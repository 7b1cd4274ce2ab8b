import base64

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from smart_imaging.auth.backend import (
    basic_credentials,
    client_assertion,
    parse_token_response,
    signing_key,
)
from smart_imaging.auth.claims import TokenPolicy, check_token, patient_claim
from smart_imaging.config.tenant import ClientConfig
from smart_imaging.errors import (
    ConfigError,
    Forbidden,
    InsufficientScope,
    Unauthorized,
    UpstreamError,
)

NOW = 1_700_000_000.0
GOOD = {
    "active": True,
    "exp": NOW + 60,
    "scope": "patient/ImagingStudy.rs",
    "patient": "p1",
    "iss": "https://as",
    "aud": "https://ehr/fhir",
}


def test_check_token_accepts_a_good_token() -> None:
    scopes = check_token(GOOD, TokenPolicy(issuer="https://as", audience=("https://ehr/fhir",)), NOW)
    assert scopes == {"patient/ImagingStudy.rs"}


@pytest.mark.parametrize(
    "change, error",
    [
        ({"active": False}, Unauthorized),
        ({"active": "true"}, Unauthorized),
        ({"exp": NOW - 1}, Unauthorized),
        ({"exp": "soon"}, Unauthorized),
        ({"nbf": NOW + 300}, Unauthorized),
        ({"iss": "https://other"}, Unauthorized),
        ({"aud": ["https://other"]}, Unauthorized),
        ({"aud": 5}, Unauthorized),
        ({"scope": "user/*.* system/*.*"}, InsufficientScope),
        ({"scope": None}, InsufficientScope),
    ],
)
def test_check_token_refusals(change: dict, error: type) -> None:
    policy = TokenPolicy(issuer="https://as", audience=("https://ehr/fhir",))
    with pytest.raises(error) as caught:
        check_token({**GOOD, **change}, policy, NOW)
    status = 403 if error is InsufficientScope else 401
    assert caught.value.status == status
    if error is InsufficientScope:
        assert 'error="insufficient_scope"' in caught.value.headers["WWW-Authenticate"]
        assert issubclass(error, Forbidden)


def test_iss_and_aud_checked_only_when_present_unless_required() -> None:
    claims = {k: v for k, v in GOOD.items() if k not in ("iss", "aud")}
    check_token(claims, TokenPolicy(issuer="https://as", audience=("https://ehr/fhir",)), NOW)
    with pytest.raises(Unauthorized):
        check_token(claims, TokenPolicy(issuer="https://as", require_iss_aud=True), NOW)


def test_patient_claim_must_be_a_fhir_id() -> None:
    assert patient_claim({"patient": "abc-1.2"}) == "abc-1.2"
    assert patient_claim({"patient": "Patient/abc"}) == "abc"
    assert patient_claim({"patient": "../Observation/x"}) is None
    assert patient_claim({"patient": 12}) is None and patient_claim({}) is None


@pytest.mark.parametrize("kind", ["ES384", "RS384"])
def test_client_assertion_claims(kind: str) -> None:
    key = ECKey.generate_key("P-384") if kind == "ES384" else RSAKey.generate_key(2048)
    private = {**key.as_dict(private=True), "kid": "k1", "alg": kind}
    signer = signing_key(ClientConfig(client_id="me", jwkPrivate=private))
    first = client_assertion("me", signer, "https://as/token", now=NOW)
    second = client_assertion("me", signer, "https://as/token", now=NOW)
    decoded = jwt.decode(first, key, algorithms=[kind])
    claims = decoded.claims
    assert decoded.header["alg"] == kind and decoded.header["kid"] == "k1"
    assert claims["iss"] == claims["sub"] == "me" and claims["aud"] == "https://as/token"
    assert 0 < claims["exp"] - NOW <= 300
    assert claims["jti"] != jwt.decode(second, key, algorithms=[kind]).claims["jti"]


def test_signing_key_refuses_bad_keys_at_build_time() -> None:
    with pytest.raises(ConfigError):
        signing_key(ClientConfig(client_id="me"))
    public = ECKey.generate_key("P-384").as_dict(private=False)
    with pytest.raises(ConfigError):
        signing_key(ClientConfig(client_id="me", jwkPrivate={**public, "alg": "ES384"}))
    p256 = ECKey.generate_key("P-256").as_dict(private=True)
    with pytest.raises(ConfigError):
        signing_key(ClientConfig(client_id="me", jwkPrivate=p256))


def test_basic_credentials_form_encode_first() -> None:
    header = basic_credentials("a:b", "s p")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "a%3Ab:s%20p"


def test_token_response_parsing() -> None:
    assert parse_token_response({"access_token": "t", "token_type": "bearer", "expires_in": 300}) == (
        "t",
        300,
    )
    for bad in (
        {},
        {"access_token": "t", "token_type": "mac"},
        {"access_token": "t", "expires_in": -1},
        {"access_token": "t", "expires_in": True},
    ):
        with pytest.raises(UpstreamError):
            parse_token_response(bad)
