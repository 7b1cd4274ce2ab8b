"""The dual-launch test world: oidc-provider as the EHR's authorization server, the EHR's FHIR
side (``ehr_front``), Orthanc, and the imaging server with several ``smart-on-fhir-independent``
tenants, all real processes or real servers on loopback ports. The imaging server's port is
chosen first: the EHR must know its callback URLs."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc.jwk import ECKey, RSAKey

from tests.auth.oidc_server import OidcServer
from tests.conftest import dicomweb_tenant
from tests.orthanc import Orthanc

from .browser import APP_REDIRECT, Browser, Stop

REFERENCE = Path(__file__).parents[1] / "reference-configs" / "smart-sandbox-independent.json"
A_MRN, B_MRN = "77654033", "98890234"  # pydicom's dicomdirtests patients, in the test Orthanc
EHR_CLIENT_SCOPE = "openid fhirUser launch/patient patient/Patient.rs patient/Patient.read offline_access"
APP_EHR_SCOPE = "openid fhirUser launch/patient patient/*.rs"
IMAGING_SCOPE = "openid fhirUser launch/patient patient/ImagingStudy.rs"
TENANTS = ("reference", "other", "short", "registered", "public-ehr", "noconsent")


def mrn_patient(patient_id: str, mrn: str, name: dict[str, Any]) -> dict[str, Any]:
    code = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [name],
        "birthDate": "1970-01-01",
        "identifier": [{"type": code, "system": "urn:test:mrn", "value": mrn}],
    }


def patients() -> dict[str, dict[str, Any]]:
    return {
        "pat-a": mrn_patient("pat-a", A_MRN, {"given": ["Anna"], "family": "Test"}),
        "pat-b": mrn_patient("pat-b", B_MRN, {"given": ["Ben"], "family": "Other"}),
    }


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ServerOnPort:
    """uvicorn (lifespan on) in a thread on a given loopback port."""

    def __init__(self, app: Any, port: int, lifespan: str = "on") -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan=lifespan,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> ServerOnPort:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def reference_config() -> dict[str, Any]:
    return dict(json.loads(REFERENCE.read_text()))


def ehr_clients(ports: list[int], reference: dict[str, Any]) -> list[dict[str, Any]]:
    """oidc-provider metadata of the imaging server's EHR clients: the reference file's
    ``imaging-client`` (private_key_jwt with its ES384 key) and a public one."""
    callbacks = [f"http://127.0.0.1:{p}/{t}/oauth/ehr-callback" for p in ports for t in TENANTS]
    common = {
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "redirect_uris": callbacks,
        "scope": EHR_CLIENT_SCOPE,
    }
    public_jwk = reference["authorization"]["client"]["jwk"]
    return [
        {
            "client_id": reference["authorization"]["client"]["client_id"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES384",
            "jwks": {"keys": [public_jwk]},
            **common,
        },
        {"client_id": "imaging-public", "token_endpoint_auth_method": "none", **common},
    ]


def oidc_config(port: int, fhir_base: str, clients: list[dict[str, Any]]) -> dict[str, Any]:
    provider = RSAKey.generate_key(2048, parameters={"kid": "ehr-rs256", "alg": "RS256", "use": "sig"})
    backend = ECKey.generate_key("P-384", parameters={"kid": "unused", "alg": "ES384"})
    backend_rs = RSAKey.generate_key(2048, parameters={"kid": "unused-rs", "alg": "RS384"})
    return {
        "port": port,
        "fhirBaseUrl": fhir_base,
        "providerJwks": {"keys": [provider.as_dict(private=True)]},
        "backendJwks": {"keys": [backend.as_dict(private=False)]},
        "backendRsaJwks": {"keys": [backend_rs.as_dict(private=False)]},
        "secrets": {"imaging-secret": secrets.token_urlsafe(16), "ehr": secrets.token_urlsafe(16)},
        "dual": {
            "clients": clients,
            "firstParty": [c["client_id"] for c in clients],
            "hintAnyAudience": True,
            "interactiveLogin": True,
        },
    }


def tenant_configs(fhir_base: str, orthanc: Orthanc, app_jwks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The reference file with only ``fhirBaseUrl`` (the test EHR) and ``images`` (the test
    Orthanc) replaced, and variants of it."""
    reference = reference_config()
    reference["authorization"]["fhirBaseUrl"] = fhir_base
    reference["images"] = dicomweb_tenant(orthanc, lookup=reference["images"]["lookup"])

    def variant(**auth: Any) -> dict[str, Any]:
        config = copy.deepcopy(reference)
        config["authorization"].update(auth)
        return config

    registered = [
        {"client_id": "viewer", "name": "Test Viewer", "redirect_uris": [APP_REDIRECT]},
        {"client_id": "backend-app", "redirect_uris": [APP_REDIRECT], "jwks": app_jwks},
    ]
    return {
        "reference": reference,
        "other": variant(),
        "short": variant(oauth={"accessTokenLifetime": 2}),
        "registered": variant(oauth={"clients": registered}),
        "public-ehr": variant(client={"client_id": "imaging-public"}),
        "noconsent": variant(oauth={"consent": False}),
        "plain": {"authorization": {"type": "mock"}, "images": dicomweb_tenant(orthanc)},
    }


@dataclass
class Stack:
    oidc: OidcServer
    front: Any  # ehr_front.FrontState
    imaging: str
    port: int
    restart_port: int
    app_key: ECKey  # the "backend-app" client's private key
    configs: dict[str, dict[str, Any]]
    state_dir: Path

    def fhir(self, tenant: str) -> str:
        return f"{self.imaging}/{tenant}/fhir"

    def oauth(self, tenant: str) -> str:
        return f"{self.imaging}/{tenant}/oauth"


def ehr_launch(browser: Browser, issuer: str, account: str, scope: str = APP_EHR_SCOPE) -> dict[str, Any]:
    """The app's own launch at the EHR (client ``app``), signing in on the EHR's login form."""
    verifier, challenge = pkce_pair()
    params = {
        "client_id": "app",
        "response_type": "code",
        "redirect_uri": APP_REDIRECT,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = browser.go(f"{issuer}/auth?{urlencode(params)}")
    assert not page.landed and page.forms, page.response.text if page.response else page.url
    landed = browser.submit(page, ("action", "login"), account=account)
    assert landed.landed and "code" in landed.query, landed.url
    form = {
        "grant_type": "authorization_code",
        "code": landed.query["code"],
        "redirect_uri": APP_REDIRECT,
        "client_id": "app",
        "code_verifier": verifier,
    }
    response = browser.http.post(f"{issuer}/token", data=form)
    assert response.status_code == 200, response.text
    return dict(response.json())


@dataclass
class ImagingLaunch:
    stop: Stop
    verifier: str
    state: str
    client_id: str


def start_imaging_launch(
    browser: Browser,
    fhir_base: str,
    *,
    login_hint: str | None,
    client_id: str = "app",
    scope: str = IMAGING_SCOPE,
    **extra: str | None,
) -> ImagingLaunch:
    """Discover the imaging server's authorize endpoint and go there; follow until a page
    (the consent page, an EHR login form, an error page) or the app's redirect URI."""
    config = browser.http.get(f"{fhir_base}/.well-known/smart-configuration").json()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(12)
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": APP_REDIRECT,
        "scope": scope,
        "state": state,
        "aud": fhir_base,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": login_hint,
        **extra,
    }
    query = urlencode({k: v for k, v in params.items() if v is not None})
    stop = browser.go(f"{config['authorization_endpoint']}?{query}")
    return ImagingLaunch(stop, verifier, state, client_id)


def approve(browser: Browser, page: Stop) -> Stop:
    assert not page.landed and page.response is not None and page.response.status_code == 200, page.url
    return browser.submit(page, ("decision", "approve"))


def redeem(
    browser: Browser, oauth_base: str, launch: ImagingLaunch, landed: Stop, **form: str
) -> dict[str, Any]:
    data = {
        "grant_type": "authorization_code",
        "code": landed.query["code"],
        "redirect_uri": APP_REDIRECT,
        "client_id": launch.client_id,
        "code_verifier": launch.verifier,
        **form,
    }
    response = browser.http.post(f"{oauth_base}/token", data={k: v for k, v in data.items() if v})
    return {"status": response.status_code, **response.json()}
