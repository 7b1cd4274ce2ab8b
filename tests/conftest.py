"""Shared fixtures: a real Orthanc with sample studies, and real servers on loopback ports.

Also the test tiers (``tests/support/tiers.py``): tests that start real servers or processes
are marked ``integration`` at collection; ``-m "not integration"`` is the fast tier, and in that
run a test that starts a server or a process anyway fails and says so."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings

from .orthanc import Orthanc
from .sample_dicom import SampleData, build_sample_data
from .support import tiers
from .support.servers import ServerThread as ServerThread  # re-exported: tests and bench import it

# The test tiers' hooks (tests/support/tiers.py): the integration marker, the fast-tier guard.
pytest_configure = tiers.pytest_configure
pytest_collection_modifyitems = tiers.pytest_collection_modifyitems
pytest_runtest_setup = tiers.pytest_runtest_setup
pytest_runtest_call = tiers.pytest_runtest_call
pytest_runtest_teardown = tiers.pytest_runtest_teardown

TEST_KEY = "test-binding-key-not-secret"


@pytest.fixture(scope="session")
def ohif_dist() -> Path:
    """The prebuilt OHIF v3 (``tests/ohif.py``), installed on first use; no npm: a failure."""
    from .ohif import install_ohif

    try:
        return install_ohif()
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        pytest.fail(f"OHIF could not be installed (scripts/install-ohif.sh): {exc} {detail}")


@pytest.fixture(scope="module")
def ohif_browser() -> Iterator[Any]:
    """Headless Chromium with WebGL (SwiftShader), as OHIF needs; one per module, closed before
    tests/web opens its session-wide one (with both open at once, a tests/web setup failed)."""
    from .ohif import CHROMIUM_ARGS
    from .support.browser import running_browser

    with running_browser(CHROMIUM_ARGS) as browser:
        yield browser


@pytest.fixture(scope="session")
def orthanc() -> Iterator[Orthanc]:
    server = Orthanc().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sample_data(orthanc: Orthanc) -> SampleData:
    data = build_sample_data()
    orthanc.upload_bytes(data.files.values())
    return data


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    servers: list[ServerThread] = []

    def start(app: Any) -> str:
        server = ServerThread(app).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def imaging_server(serve: Callable[[Any], str]) -> Callable[..., str]:
    """``imaging_server({"name": config}, **Settings fields) -> base URL`` of a real server."""

    def start(tenants: Mapping[str, dict[str, Any]], **settings: Any) -> str:
        configs = {name: parse_config(cfg) for name, cfg in tenants.items()}
        settings.setdefault("key", TEST_KEY)
        return serve(create_app(Settings(**settings), tenants=configs))

    return start


def dicomweb_tenant(orthanc: Orthanc, **images: Any) -> dict[str, Any]:
    """A dicom-web images section for the test Orthanc."""
    return {
        "type": "dicom-web",
        "endpoint": orthanc.dicomweb_url,
        "authentication": {"type": "http-basic", "username": orthanc.username, "password": orthanc.password},
        **images,
    }


def mock_patient(patient_id: str, mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                },
                "system": "urn:test:mrn",
                "value": mrn,
            }
        ],
    }
