"""Fixtures of the dual-launch tests: one stack per session (``stack.py``), a fresh browser per
test, and a signed-in app (its EHR launch done) when a test wants one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings
from tests.auth import oidc_server
from tests.auth.oidc_server import free_port
from tests.conftest import TEST_KEY
from tests.orthanc import Orthanc
from tests.sample_dicom import SampleData

from .browser import Browser
from .ehr_front import FrontState, make_front
from .stack import ServerOnPort, Stack, ehr_clients, oidc_config, patients, reference_config, tenant_configs


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, orthanc: Orthanc, sample_data: SampleData
) -> Iterator[Stack]:
    port, restart_port, front_port = free_port(), free_port(), free_port()
    state_dir: Path = tmp_path_factory.mktemp("oauth-state")
    front_base = f"http://127.0.0.1:{front_port}"
    config = oidc_config(
        free_port(), f"{front_base}/fhir", ehr_clients([port, restart_port], reference_config())
    )
    oidc = oidc_server.start(config, tmp_path_factory.mktemp("oidc-dual"))
    front = FrontState(issuer=oidc.issuer, ehr_secret=config["secrets"]["ehr"], patients=patients())
    app_key = ECKey.generate_key("P-384", parameters={"kid": "backend-app-1", "alg": "ES384"})
    configs = tenant_configs(f"{front_base}/fhir", orthanc, {"keys": [app_key.as_dict(private=False)]})
    front_server = ServerOnPort(make_front(front), front_port, lifespan="off")
    app = create_app(
        Settings(key=TEST_KEY, state_dir=state_dir), tenants={n: parse_config(c) for n, c in configs.items()}
    )
    imaging = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMART_IMAGING_STATE_DIR", str(state_dir))
        try:
            front_server.start()
            front.base_url = front_server.url
            imaging = ServerOnPort(app, port).start()
            front.imaging_bases = [f"{imaging.url}/reference/fhir"]
            yield Stack(oidc, front, imaging.url, port, restart_port, app_key, configs, state_dir)
        finally:
            if imaging is not None:
                imaging.stop()
            front_server.stop()
            oidc_server.stop(oidc)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


@pytest.fixture(autouse=True)
def _reset_patients(request: pytest.FixtureRequest) -> None:
    """Each test that uses the stack starts with the EHR's patients as created."""
    if "stack" in request.fixturenames:
        stack: Stack = request.getfixturevalue("stack")
        stack.front.patients = patients()
        stack.front.reads = []
