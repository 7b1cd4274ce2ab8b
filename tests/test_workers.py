"""``smart-imaging serve --workers 2`` as a real process against a real Orthanc: a binding minted
by one worker opens in the other (one random key shared when SMART_IMAGING_KEY is unset), both
workers serve, metrics are summed across them."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from smart_imaging.settings import Settings, settings_env

from .conftest import dicomweb_tenant, mock_patient
from .orthanc import Orthanc
from .sample_dicom import SampleData
from .serve_process import AUTH, ServeProcess, endpoint

MRN = "77654033"
PID_HEADER = "x-smart-imaging-pid"


def worker_pids(server: ServeProcess) -> list[int]:
    """The server's worker processes (multiprocessing also starts a resource tracker)."""
    assert server.process is not None
    children = psutil.Process(server.process.pid).children()
    return [c.pid for c in children if any("spawn_main" in part for part in c.cmdline())]


@pytest.fixture
def two_workers(tmp_path: Path, orthanc: Orthanc, sample_data: SampleData) -> Iterator[ServeProcess]:
    tenant = {
        "authorization": {"type": "mock", "patient": mock_patient("pat-a", MRN)},
        "images": dicomweb_tenant(orthanc),
    }
    server = ServeProcess(
        tmp_path, {"clinic": tenant}, "--workers", "2", env={"SMART_IMAGING_EXPOSE_PID": "1"}
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.integration
def test_bindings_open_in_every_worker(two_workers: ServeProcess, sample_data: SampleData) -> None:
    address, study = endpoint(two_workers.url, "clinic", "pat-a")  # one search, one worker
    assert two_workers.process is not None
    workers = set(worker_pids(two_workers))
    assert len(workers) == 2
    served: Counter[int] = Counter()
    for _ in range(200):  # each on a fresh connection, until both workers have answered a few
        response = httpx.get(f"{address}/studies/{study}/metadata", headers=AUTH)
        assert response.status_code == 200, response.text
        assert {ds["0020000D"]["Value"][0] for ds in response.json()} == {study}
        served[int(response.headers[PID_HEADER])] += 1
        if len(served) == 2 and min(served.values()) >= 3:
            break
    assert set(served) == workers, served  # both workers opened bindings the other may have minted
    assert min(served.values()) >= 3, served
    log = two_workers.log()
    assert log.count("SMART_IMAGING_KEY is not set") == 1  # the parent's one key, said once
    assert "shared by the 2 workers" in log


@pytest.mark.integration
def test_metrics_are_summed_across_workers(two_workers: ServeProcess) -> None:
    address, study = endpoint(two_workers.url, "clinic", "pat-a")
    for _ in range(30):  # fresh connections: both workers answer some (previous test)
        response = httpx.get(f"{address}/studies/{study}/metadata", headers=AUTH)
        assert response.status_code == 200
    text = httpx.get(f"{two_workers.url}/metrics").text
    found = re.search(r'^smart_imaging_requests_total\{route="wado",status="200"\} (\S+)$', text, re.M)
    assert found is not None, text[:2000]
    assert float(found.group(1)) == 30  # whichever worker answers /metrics counts all 30


@pytest.mark.integration
def test_a_worker_that_dies_is_replaced(two_workers: ServeProcess) -> None:
    assert two_workers.process is not None
    victim = psutil.Process(worker_pids(two_workers)[0])
    victim.kill()
    victim.wait(timeout=10)
    for _ in range(100):
        workers = worker_pids(two_workers)
        if len(workers) == 2 and victim.pid not in workers:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no replacement worker")
    for _ in range(50):
        if httpx.get(f"{two_workers.url}/readyz").status_code == 200:
            break
    address, study = endpoint(two_workers.url, "clinic", "pat-a")
    assert httpx.get(f"{address}/studies/{study}/metadata", headers=AUTH).status_code == 200


def test_workers_rebuild_the_parents_settings_from_the_environment(tmp_path: Path) -> None:
    """What ``serve --workers N`` hands its workers (``settings_env``) gives back the same settings."""
    settings = Settings(
        config_dir=tmp_path,
        base_url="https://imaging.example",
        host="0.0.0.0",
        port=8123,
        dynamic_tenants=True,
        dynamic_upstream_allow=("127.0.0.1", "archive:8042"),
        key="k" * 40,
        state_dir=tmp_path / "state",
        workers=3,
        shutdown_timeout=12.5,
        expose_pid=True,
        http_backend="httpx",
    )
    rebuilt = Settings.from_env(settings_env(settings))
    assert rebuilt == Settings(**{**settings.__dict__, "workers": None})  # workers: the parent's business
    assert Settings.from_env(settings_env(Settings())) == Settings()
