"""EHR answers the imaging server must not believe, from a small fake EHR (one module's worth):
an id_token with another nonce, signed by another key, for another client, expired or missing;
a token response without patient; an authorization response naming another issuer (RFC 9207).
Each ends with ``error=access_denied`` at the app and no code; the genuine answer reaches consent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings
from tests.auth.oidc_server import free_port
from tests.conftest import TEST_KEY

from .browser import Browser
from .stack import ServerOnPort, mrn_patient, start_imaging_launch

KEY = RSAKey.generate_key(2048, parameters={"kid": "fake-ehr", "alg": "RS256"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "fake-ehr", "alg": "RS256"})


class FakeEhr:
    def __init__(self) -> None:
        self.base = ""
        self.fault = ""
        self.nonce = ""

    def id_token(self) -> str:
        now = int(time.time())
        claims = {"iss": self.base, "sub": "u-1", "aud": "imaging-client", "nonce": self.nonce, "iat": now}
        claims["exp"] = now - 600 if self.fault == "expired" else now + 300
        if self.fault == "nonce":
            claims["nonce"] = "another-nonce"
        if self.fault == "aud":
            claims["aud"] = "another-client"
        key = STRANGER if self.fault == "key" else KEY
        return jwt.encode({"alg": "RS256", "kid": "fake-ehr"}, claims, key)

    def app(self) -> Starlette:
        async def config(request: Request) -> Response:
            b = self.base
            return JSONResponse(
                {
                    "issuer": b,
                    "authorization_endpoint": f"{b}/auth",
                    "token_endpoint": f"{b}/token",
                    "jwks_uri": f"{b}/jwks",
                }
            )

        async def authorize(request: Request) -> Response:
            q = request.query_params
            self.nonce = q["nonce"]
            answer = {"code": "the-code", "state": q["state"]}
            answer["iss"] = "https://mix-up.example" if self.fault == "iss" else self.base
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode(answer)}", status_code=302)

        async def token(request: Request) -> Response:
            body: dict[str, Any] = {"access_token": "ehr-token", "token_type": "Bearer", "expires_in": 300}
            if self.fault != "no-patient":
                body["patient"] = "pat-a"
            if self.fault != "no-id-token":
                body["id_token"] = self.id_token()
            return JSONResponse(body)

        async def jwks(request: Request) -> Response:
            return JSONResponse({"keys": [KEY.as_dict(private=False)]})

        async def patient(request: Request) -> Response:
            resource = mrn_patient("pat-a", "77654033", {"given": ["Anna"], "family": "Test"})
            return JSONResponse(resource, media_type="application/fhir+json")

        return Starlette(
            routes=[
                Route("/fhir/.well-known/smart-configuration", config),
                Route("/auth", authorize),
                Route("/token", token, methods=["POST"]),
                Route("/jwks", jwks),
                Route("/fhir/Patient/{id}", patient),
            ]
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeEhr, str]]:
    ehr = FakeEhr()
    ehr_server = ServerOnPort(ehr.app(), free_port(), lifespan="off").start()
    ehr.base = ehr_server.url
    config = {
        "authorization": {
            "type": "smart-on-fhir-independent",
            "fhirBaseUrl": f"{ehr.base}/fhir",
            "client": {"client_id": "imaging-client"},
        },
        "images": {"type": "dicom-web", "endpoint": "http://127.0.0.1:9/dicom-web"},
    }
    state: Path = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMART_IMAGING_STATE_DIR", str(state))
        app = create_app(Settings(key=TEST_KEY, state_dir=state), tenants={"t": parse_config(config)})
        imaging = ServerOnPort(app, free_port()).start()
    try:
        yield ehr, imaging.url
    finally:
        imaging.stop()
        ehr_server.stop()


@pytest.mark.parametrize("fault", ["nonce", "key", "aud", "expired", "no-id-token", "no-patient", "iss"])
def test_untrustworthy_ehr_answers_end_in_access_denied(world: tuple[FakeEhr, str], fault: str) -> None:
    ehr, imaging = world
    ehr.fault = fault
    browser = Browser()
    try:
        launch = start_imaging_launch(browser, f"{imaging}/t/fhir", login_hint=None)
    finally:
        browser.close()
    assert launch.stop.landed, launch.stop.response.text if launch.stop.response else ""
    assert launch.stop.query["error"] == "access_denied" and "code" not in launch.stop.query
    assert launch.stop.query["state"] == launch.state


def test_the_genuine_answer_reaches_the_consent_page(world: tuple[FakeEhr, str]) -> None:
    ehr, imaging = world
    ehr.fault = ""
    browser = Browser()
    try:
        launch = start_imaging_launch(browser, f"{imaging}/t/fhir", login_hint=None)
        assert launch.stop.response is not None and "Anna Test" in launch.stop.response.text
    finally:
        browser.close()
