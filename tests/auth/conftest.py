"""Fixtures for the SMART authorizer tests: a real oidc-provider and a small test EHR."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import oidc_server
import pytest
import uvicorn
from joserfc.jwk import ECKey, RSAKey
from oidc_server import OidcServer, free_port
from smart_ehr import EhrState, make_ehr

PATIENTS = {
    "pat-a": {
        "resourceType": "Patient",
        "id": "pat-a",
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                },
                "value": "MRN-A",
            }
        ],
    },
    "pat-b": {
        "resourceType": "Patient",
        "id": "pat-b",
        "identifier": [
            {"system": "urn:test:insurance", "value": "INS-9"},
            {"system": "urn:test:local-mrn", "value": "MRN-B"},
        ],
    },  # no type: only a custom FHIRPath finds it
}


class ThreadServer:
    """An ASGI app under uvicorn in a thread on a loopback port."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def backend_keys() -> dict[str, dict[str, Any]]:
    es = ECKey.generate_key("P-384", parameters={"kid": "es384-test", "alg": "ES384"})
    rs = RSAKey.generate_key(2048, parameters={"kid": "rs384-test", "alg": "RS384"})
    return {
        "es384": es.as_dict(private=True),
        "es384-public": es.as_dict(private=False),
        "rs384": rs.as_dict(private=True),
        "rs384-public": rs.as_dict(private=False),
    }


@pytest.fixture(scope="session")
def smart_stack(
    tmp_path_factory: pytest.TempPathFactory, backend_keys: dict[str, dict[str, Any]]
) -> Iterator[tuple[OidcServer, EhrState]]:
    """oidc-provider + test EHR, started once. Use the ``oidc`` and ``ehr`` fixtures."""
    ehr_port = free_port()
    provider_key = RSAKey.generate_key(
        2048, parameters={"kid": "provider-rs256", "alg": "RS256", "use": "sig"}
    )
    config = {
        "port": free_port(),
        "fhirBaseUrl": f"http://127.0.0.1:{ehr_port}/fhir",
        "providerJwks": {"keys": [provider_key.as_dict(private=True)]},
        "backendJwks": {"keys": [backend_keys["es384-public"]]},
        "backendRsaJwks": {"keys": [backend_keys["rs384-public"]]},
        "secrets": {"imaging-secret": secrets.token_urlsafe(16), "ehr": secrets.token_urlsafe(16)},
    }
    server = oidc_server.start(config, tmp_path_factory.mktemp("oidc"))
    state = EhrState(issuer=server.issuer, ehr_secret=config["secrets"]["ehr"])
    try:
        with ThreadServer(make_ehr(state), ehr_port) as url:
            state.base_url = url
            yield server, state
    finally:
        oidc_server.stop(server)


@pytest.fixture
def oidc(smart_stack: tuple[OidcServer, EhrState]) -> OidcServer:
    return smart_stack[0]


@pytest.fixture
def ehr(smart_stack: tuple[OidcServer, EhrState]) -> EhrState:
    """The test EHR, reset for each test."""
    state = smart_stack[1]
    state.patients = copy.deepcopy(PATIENTS)
    state.faults = {}
    state.introspection = "oidc"
    state.counts = {}
    state.patient_readers = []
    return state


@pytest.fixture
def smart_config(oidc: OidcServer, ehr: EhrState, backend_keys: dict[str, dict[str, Any]]):
    """Build a ``smart-on-fhir`` authorization dict for the test stack; override by kwargs."""

    def make(**overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "type": "smart-on-fhir",
            "fhirBaseUrl": ehr.fhir_base,
            "scope": "system/Patient.read",
            "client": {
                "client_id": "imaging-server",
                "jwk": backend_keys["es384-public"],
                "jwkPrivate": backend_keys["es384"],
            },
            "introspectionAuth": "private_key_jwt",
            "timeout": 2,
        }
        config.update(overrides)
        return config

    return make


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
