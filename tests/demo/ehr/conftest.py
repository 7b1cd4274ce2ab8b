"""Fixtures for the EHR sandbox: a real uvicorn server on a free loopback port, mounted at
``/ehr`` like the demo does, with a clock the tests can move and two backend clients."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.routing import Mount

from smart_imaging_demo.ehr import BackendClient, EhrConfig, create_ehr_app
from smart_imaging_demo.ehr.pkce import s256_challenge

REQUEST_ID = re.compile(r'name="request_id" value="([^"]+)"')


class MovableClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Sandbox:
    base: str  # http://127.0.0.1:PORT/ehr
    config: EhrConfig
    clock: MovableClock
    keys: dict[str, tuple[Any, str]]  # client_id -> (private key, alg)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    @property
    def fhir(self) -> str:
        return f"{self.base}/fhir"

    def assertion(self, client_id: str = "imaging-server", **overrides: Any) -> str:
        key, alg = self.keys[client_id]
        now = int(self.clock())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": f"{self.base}/token",
            "exp": now + 240,
            "iat": now,
            "jti": uuid.uuid4().hex,
            **overrides,
        }
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])

    def backend_token(self, client_id: str = "imaging-server", scope: str | None = None) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_assertion": self.assertion(client_id),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        }
        if scope:
            form["scope"] = scope
        response = self.http.post(f"{self.base}/token", data=form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def authorize(self, **params: str) -> httpx.Response:
        return self.http.get(f"{self.base}/authorize", params=params)

    def approve(
        self, page: httpx.Response, decision: str = "approve", patient: str | None = "ava-chen"
    ) -> httpx.Response:
        assert page.status_code == 200, page.text
        match = REQUEST_ID.search(page.text)
        assert match, "consent page has no request id"
        form = {"request_id": match.group(1), "decision": decision}
        if patient:
            form["patient"] = patient
        return self.http.post(f"{self.base}/authorize", data=form)

    def launch(
        self,
        client_id: str = "my-app",
        scope: str = "launch/patient patient/*.rs openid fhirUser offline_access",
        patient: str = "ava-chen",
        redirect_uri: str = "http://localhost:9999/callback",
    ) -> dict[str, Any]:
        """A full standalone launch; returns the token response plus ``_verifier``, ``_code``."""
        verifier = uuid.uuid4().hex + uuid.uuid4().hex
        page = self.authorize(
            response_type="code",
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state="st-1",
            aud=self.fhir,
            code_challenge=s256_challenge(verifier),
            code_challenge_method="S256",
        )
        redirect = self.approve(page, patient=patient)
        assert redirect.status_code == 302
        query = httpx.URL(redirect.headers["location"]).params
        assert query["state"] == "st-1"
        response = self.http.post(
            f"{self.base}/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"],
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
        )
        assert response.status_code == 200, response.text
        return {**response.json(), "_verifier": verifier, "_code": query["code"]}


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(sock: socket.socket, config: EhrConfig) -> Iterator[Starlette]:
    ehr = create_ehr_app(config)
    outer = Starlette(routes=[Mount("/ehr", app=ehr)])
    server = uvicorn.Server(uvicorn.Config(outer, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "server thread died"
            time.sleep(0.01)
        yield ehr
    finally:
        server.should_exit = True
        thread.join(10)
        ehr.state.ehr_store.close()


def backend_keys() -> dict[str, tuple[Any, str]]:
    return {
        "imaging-server": (ECKey.generate_key("P-384", auto_kid=True), "ES384"),
        "rs-backend": (RSAKey.generate_key(2048, auto_kid=True), "RS384"),
        "dual-imaging": (ECKey.generate_key("P-384", auto_kid=True), "ES384"),
    }


DUAL_SILENT_SCOPE = "openid fhirUser launch/patient patient/*.rs"


def dual_redirect(port: int) -> str:
    """The redirect URI of a dual-launch imaging server's EHR leg (a registered client)."""
    return f"http://127.0.0.1:{port}/dual/oauth/ehr-callback"


def make_config(
    port: int, data_dir: Path, clock: MovableClock, keys: dict[str, tuple[Any, str]]
) -> EhrConfig:
    clients = [
        BackendClient(
            client_id="imaging-server",
            jwks={"keys": [keys["imaging-server"][0].as_dict(private=False)]},
            scope="system/Patient.read system/Condition.read",
        ),
        BackendClient(
            client_id="rs-backend",
            jwks=keys["rs-backend"][0].as_dict(private=False),
            scope="system/*.read",
            redirect_uris=("https://app.example.org/cb",),
        ),
        BackendClient(
            client_id="dual-imaging",
            jwks=keys["dual-imaging"][0].as_dict(private=False),
            scope="system/Patient.read",
            redirect_uris=(dual_redirect(port),),
            silent_scope=DUAL_SILENT_SCOPE,
        ),
    ]
    return EhrConfig(
        base_url=f"http://127.0.0.1:{port}/ehr",
        data_dir=data_dir,
        imaging_fhir_base_url=f"http://127.0.0.1:{port}/demo/fhir",
        dual_imaging_fhir_base_url=f"http://127.0.0.1:{port}/dual/fhir",
        backend_clients=tuple(clients),
        clock=clock,
    )


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sock = free_socket()
    clock, keys = MovableClock(), backend_keys()
    config = make_config(sock.getsockname()[1], tmp_path_factory.mktemp("ehr"), clock, keys)
    with serve(sock, config):
        sandbox = Sandbox(config.base_url, config, clock, keys)
        yield sandbox
        sandbox.http.close()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    sandbox_server.clock.offset = 0.0
    yield sandbox_server
    sandbox_server.clock.offset = 0.0
