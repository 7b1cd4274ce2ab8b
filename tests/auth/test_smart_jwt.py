"""smart-on-fhir-jwt: JWT access tokens validated locally against the issuer's JWKS."""

from __future__ import annotations

import time
from typing import Any

import pytest
from authorizers import build
from conftest import ThreadServer
from joserfc import jwt
from joserfc.jwk import RSAKey
from oidc_server import OidcServer
from smart_ehr import EhrState
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from smart_imaging.auth import jwt_tokens
from smart_imaging.auth.base import AuthRequest
from smart_imaging.errors import InsufficientScope, Unauthorized


async def test_oidc_provider_jwt_access_token(oidc: OidcServer, ehr: EhrState, smart_config, http) -> None:
    authorizer = build(smart_config(type="smart-on-fhir-jwt"), http)
    before = oidc.introspections("imaging-server")
    token = oidc.app_token("pat-a", resource="urn:smart-imaging:jwt")["access_token"]
    assert token.count(".") == 2
    grant = await authorizer.authorize(AuthRequest(token, "t"))
    assert grant.patient_id == "pat-a" and grant.scopes == {"patient/ImagingStudy.rs"}
    assert (await authorizer.patient(grant))["id"] == "pat-a"
    assert oidc.introspections("imaging-server") == before  # we introspected nothing
    head, body, signature = token.split(".")
    tampered = f"{head}.{body}.{signature[:-4]}AAAA"
    for bad in (tampered, oidc.app_token("pat-a")["access_token"]):  # bad signature; opaque token
        with pytest.raises(Unauthorized):
            await authorizer.authorize(AuthRequest(bad, "t"))
    wrong_aud = build(smart_config(type="smart-on-fhir-jwt", audience="https://other.example/fhir"), http)
    with pytest.raises(Unauthorized):
        await wrong_aud.authorize(AuthRequest(token, "t"))
    no_scope = oidc.app_token("pat-a", "openid patient/Observation.rs", resource="urn:smart-imaging:jwt")
    with pytest.raises(InsufficientScope):
        await authorizer.authorize(AuthRequest(no_scope["access_token"], "t"))


class Issuer:
    """A tiny issuer whose signing key can rotate."""

    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.fetches = 0
        self.url = ""

    def app(self) -> Starlette:
        async def config(request: Any) -> JSONResponse:
            return JSONResponse(
                {"issuer": self.url, "jwks_uri": f"{self.url}/jwks", "token_endpoint": f"{self.url}/token"}
            )

        async def jwks(request: Any) -> JSONResponse:
            self.fetches += 1
            return JSONResponse({"keys": [k.as_dict(private=False) for k in self.keys]})

        return Starlette(
            routes=[Route("/fhir/.well-known/smart-configuration", config), Route("/jwks", jwks)]
        )

    def token(self, **claims: Any) -> str:
        key = self.keys[-1]
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": f"{self.url}/fhir",
            "exp": now + 300,
            "nbf": now,
            "scope": "patient/*.rs",
            "patient": "p1",
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key, algorithms=["RS256"])


async def test_jwks_refreshed_on_unknown_kid(monkeypatch: pytest.MonkeyPatch, smart_config, http) -> None:
    monkeypatch.setattr(jwt_tokens, "MIN_REFRESH_INTERVAL", 0.0)
    issuer = Issuer()
    with ThreadServer(issuer.app()) as url:
        issuer.url = url
        authorizer = build(smart_config(type="smart-on-fhir-jwt", fhirBaseUrl=f"{url}/fhir"), http)
        assert (await authorizer.authorize(AuthRequest(issuer.token(), "t"))).patient_id == "p1"
        assert (await authorizer.authorize(AuthRequest(issuer.token(patient="p2"), "t"))).patient_id == "p2"
        assert issuer.fetches == 1  # cached
        issuer.keys.append(RSAKey.generate_key(2048, parameters={"kid": "k2"}))
        assert (await authorizer.authorize(AuthRequest(issuer.token(), "t"))).patient_id == "p1"
        assert issuer.fetches == 2  # refreshed for the unknown kid
        now = int(time.time())
        for claims in (
            {"exp": now - 1},
            {"nbf": now + 600},
            {"iss": "https://evil.example"},
            {"aud": "https://elsewhere.example"},
            {"patient": None, "scope": "user/*.rs"},
        ):
            with pytest.raises((Unauthorized, InsufficientScope)):
                await authorizer.authorize(AuthRequest(issuer.token(**claims), "t"))
        none_alg = "eyJhbGciOiJub25lIn0." + issuer.token().split(".")[1] + "."
        with pytest.raises(Unauthorized):
            await authorizer.authorize(AuthRequest(none_alg, "t"))
