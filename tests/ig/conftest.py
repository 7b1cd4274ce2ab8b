"""The IG world (``world.py``), started once per session: every tests/ig module uses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings
from tests.auth import oidc_server
from tests.auth.oidc_server import free_port
from tests.auth.smart_ehr import EhrState, make_ehr
from tests.conftest import TEST_KEY
from tests.orthanc import Orthanc
from tests.support.servers import ServerThread

from .pdp import PdpState, make_pdp
from .studies import STUDIES, instances
from .world import Keys, World, oidc_config, patients, tenants


@pytest.fixture(scope="session")
def ig_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # an archive of its own: the IG's example studies must not appear in other tests' archive
    orthanc = Orthanc().start()
    for study in STUDIES.values():
        orthanc.upload_bytes(instances(study))
    keys = Keys.generate()
    ehr_port = free_port()
    config = oidc_config(free_port(), f"http://127.0.0.1:{ehr_port}/fhir", keys)
    oidc = oidc_server.start(config, tmp_path_factory.mktemp("oidc-ig"))
    ehr = EhrState(issuer=oidc.issuer, ehr_secret=config["secrets"]["ehr"], patients=patients())
    pdp = PdpState()
    servers: list[ServerThread] = []
    try:
        servers.append(ServerThread(make_ehr(ehr), ehr_port, lifespan="off").start())
        ehr.base_url = servers[-1].url
        servers.append(ServerThread(make_pdp(pdp), lifespan="off").start())
        pdp_url = f"{servers[-1].url}/decide"
        audit = Path(tmp_path_factory.mktemp("ig-audit")) / "audit.jsonl"
        configs = {n: parse_config(c) for n, c in tenants(ehr, keys, orthanc, pdp_url).items()}
        app = create_app(Settings(key=TEST_KEY, audit=f"file:{audit}"), tenants=configs)
        servers.append(ServerThread(app).start())
        yield World(oidc, ehr, servers[-1].url, keys, pdp, audit, configs)
    finally:
        for server in reversed(servers):
            server.stop()
        oidc_server.stop(oidc)
        orthanc.stop()


@pytest.fixture
def world(ig_world: World) -> World:
    """The session's world with the decision point reset to permitting."""
    ig_world.pdp.mode = "permit"
    ig_world.pdp.deny_modalities = set()
    ig_world.pdp.deny_series_modalities = set()
    ig_world.pdp.requests.clear()
    ig_world.ehr.faults = {}
    return ig_world
