"""Shared fixtures: a real Orthanc with sample studies, and real servers on loopback ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import uvicorn

from smart_imaging.app import create_app
from smart_imaging.settings import Settings
from smart_imaging.tenants.loader import parse_config

from .orthanc import Orthanc, free_port
from .sample_dicom import SampleData, build_sample_data

TEST_KEY = "test-binding-key-not-secret"


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


class ServerThread:
    """uvicorn in a background thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
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
