"""Token verifiers and the patient resolver against a few-line fake EHR (httpx.MockTransport).

The real oidc-provider and test EHR prove the whole path (test_smart_oidc, test_smart_jwt); these
pin down each part's own contract, fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from pydantic import SecretStr

from smart_imaging.auth.backend import BackendTokens, signing_key
from smart_imaging.auth.base import AccessGrant
from smart_imaging.auth.discovery import Discovery, SmartEndpoints
from smart_imaging.auth.introspection import IntrospectionVerifier, client_authenticator
from smart_imaging.auth.jwt_tokens import JwksCache, JwtVerifier
from smart_imaging.auth.patients import EhrPatients
from smart_imaging.auth.quirks import EPIC, STANDARD
from smart_imaging.config.tenant import ClientConfig
from smart_imaging.errors import ConfigError, Unauthorized, UpstreamError

EHR = "https://ehr.test/fhir"
AS = "https://as.test"

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def discovery(http: httpx.AsyncClient, **overrides: str) -> Discovery:
    return Discovery(EHR, http, overrides=SmartEndpoints(**overrides), timeout=1)


def smart_configuration(**extra: str) -> httpx.Response:
    return httpx.Response(200, json={"issuer": AS, "token_endpoint": f"{AS}/oauth2/token", **extra})


# ------------------------------------------------------------------ introspection


async def test_introspection_sends_the_token_with_client_auth_and_expects_the_discovered_issuer() -> None:
    seen: list[httpx.Request] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("smart-configuration"):
            return smart_configuration(introspection_endpoint=f"{AS}/introspect-here")
        return httpx.Response(200, json={"active": True, "patient": "p1"})

    async with client(ehr) as http:
        auth = client_authenticator("client_secret_basic", "imaging", SecretStr("s3cret"), None)
        verifier = IntrospectionVerifier(
            discovery(http), http, auth, endpoint=STANDARD.introspection_endpoint, audience=EHR, timeout=1
        )
        verified = await verifier.verify("app-token")
    assert verified.claims == {"active": True, "patient": "p1"}
    assert verified.issuer == AS and verified.audience == (EHR,) and not verified.require_iss_aud
    post = seen[-1]
    assert str(post.url) == f"{AS}/introspect-here"
    assert parse_qs(post.content.decode())["token"] == ["app-token"]
    assert post.headers["Authorization"].startswith("Basic ")


async def test_introspection_endpoint_comes_from_the_quirks() -> None:
    urls: list[str] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        if request.url.path.endswith("smart-configuration"):
            return smart_configuration()  # Epic names no introspection endpoint
        return httpx.Response(200, json={"active": False})

    async with client(ehr) as http:
        auth = client_authenticator("client_secret_basic", "imaging", SecretStr("s"), None)
        verifier = IntrospectionVerifier(
            discovery(http), http, auth, endpoint=EPIC.introspection_endpoint, audience=None, timeout=1
        )
        assert (await verifier.verify("t")).claims == {"active": False}
        with pytest.raises(Unauthorized):
            await verifier.verify(None)
    assert urls[-1] == f"{AS}/oauth2/introspect"


def test_client_authenticator_refuses_configs_that_cannot_work() -> None:
    with pytest.raises(ConfigError) as caught:
        client_authenticator("client_secret_basic", "imaging", None, None)
    assert caught.value.problems[0][0] == "authorization.client.client_secret"
    for kind in ("bearer", "private_key_jwt"):
        with pytest.raises(ConfigError):
            client_authenticator(kind, "imaging", None, None)


# ------------------------------------------------------------------ local JWT


class Issuer:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.jwks_fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("smart-configuration"):
            return smart_configuration(jwks_uri=f"{AS}/jwks")
        self.jwks_fetches += 1
        return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})

    def token(self, **claims: Any) -> str:
        payload = {"iss": AS, "aud": EHR, "exp": int(time.time()) + 60, "patient": "p1", **claims}
        return jwt.encode({"alg": "RS256", "kid": "k1"}, payload, self.key, algorithms=["RS256"])


async def test_jwt_verifier_checks_the_signature_locally_and_requires_iss_and_aud() -> None:
    issuer = Issuer()
    async with client(issuer.handler) as http:
        found = discovery(http)
        verifier = JwtVerifier(found, JwksCache(found, http, timeout=1), audience=(EHR,))
        verified = await verifier.verify(issuer.token())
        assert verified.claims["patient"] == "p1" and verified.claims["active"] is True
        assert verified.issuer == AS and verified.require_iss_aud and verified.audience == (EHR,)
        await verifier.verify(issuer.token(patient="p2"))
        assert issuer.jwks_fetches == 1
        with pytest.raises(Unauthorized):
            await verifier.verify("opaque")
        for bad in ("bm90.e30.c2ln", issuer.token()[:-6] + "AAAAAA"):  # header not JSON; bad signature
            with pytest.raises(Unauthorized) as caught:
                await verifier.verify(bad)
            assert caught.value.__cause__ is not None  # the decoding error, for tracebacks


async def test_jwt_verifier_without_any_issuer_is_a_502() -> None:
    issuer = Issuer()

    def no_issuer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("smart-configuration"):
            return httpx.Response(200, json={"jwks_uri": f"{AS}/jwks"})
        return issuer.handler(request)

    async with client(no_issuer) as http:
        found = discovery(http)
        with pytest.raises(UpstreamError):
            await JwtVerifier(found, JwksCache(found, http, timeout=1), audience=(EHR,)).verify(
                issuer.token()
            )


# ------------------------------------------------------------------ the patient resolver


class FakeEhr:
    """Issues backend tokens and serves Patient p1 to the newest one only."""

    def __init__(self) -> None:
        self.issued = 0
        self.reads: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            self.issued += 1
            return httpx.Response(200, json={"access_token": f"backend-{self.issued}", "expires_in": 300})
        bearer = request.headers["Authorization"].removeprefix("Bearer ")
        self.reads.append(bearer)
        if bearer != f"backend-{self.issued}" or self.issued < 2:
            return httpx.Response(401)
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})


def backend(http: httpx.AsyncClient) -> BackendTokens:
    key = ECKey.generate_key("P-384", parameters={"alg": "ES384"}).as_dict(private=True)
    config = ClientConfig(client_id="imaging", jwkPrivate=key)
    endpoints = discovery(http, token_endpoint=f"{AS}/oauth2/token")
    return BackendTokens("imaging", signing_key(config), "system/Patient.read", endpoints, http, timeout=1)


async def test_patient_read_renews_a_refused_backend_token_once_and_is_cached() -> None:
    ehr = FakeEhr()
    async with client(ehr.handler) as http:
        patients = EhrPatients(http, EHR, backend(http), ttl=60, timeout=1)
        grant = AccessGrant(patient_id="p1")
        assert (await patients.patient(grant)) == {"resourceType": "Patient", "id": "p1"}
        assert ehr.reads == ["backend-1", "backend-2"]
        await patients.patient(grant)
        assert len(ehr.reads) == 2  # cached by patient id
        patients.clear()
        await patients.patient(grant)
        assert ehr.reads[-1] == "backend-2"  # the renewed backend token is still cached


async def test_patient_resolver_answers_a_pinned_resource_or_none_without_io() -> None:
    def nothing(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    async with client(nothing) as http:
        patients = EhrPatients(http, EHR, None, ttl=60, timeout=1)
        pinned = {"resourceType": "Patient", "id": "p9"}
        assert await patients.patient(AccessGrant("p9", extra={"patient": pinned})) is pinned
        assert await patients.patient(AccessGrant(None)) is None
        with pytest.raises(UpstreamError):  # a patient to read, but no backend client
            await patients.patient(AccessGrant("p9"))
