"""``smart-imaging serve --workers 2`` as a real process against a real Orthanc: a binding minted
by one worker opens in the other (one random key shared when SMART_IMAGING_KEY is unset), both
workers serve, metrics are summed across them."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from smart_imaging.errors import ConfigError
from smart_imaging.settings import Settings, settings_env, worker_share

from .conftest import dicomweb_tenant, mock_patient
from .fake_archive import Answer, FakeArchive, Seen
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
        upstream_connections=7,
    )
    rebuilt = Settings.from_env(settings_env(settings))
    assert rebuilt == Settings(**{**settings.__dict__, "workers": None})  # workers: the parent's business
    assert Settings.from_env(settings_env(Settings())) == Settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMART_IMAGING_UPSTREAM_CONNECTIONS", "0"),  # aiohttp would read 0 as "no limit"
        ("SMART_IMAGING_UPSTREAM_CONNECTIONS", "many"),
        ("SMART_IMAGING_WORKERS", "0"),
        ("SMART_IMAGING_PORT", "eighty"),
        ("SMART_IMAGING_SHUTDOWN_TIMEOUT", "nan"),
        ("SMART_IMAGING_SHUTDOWN_TIMEOUT", "-1"),
    ],
)
def test_a_bad_number_in_the_environment_is_a_config_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert [where for where, _ in raised.value.problems] == [name]


def test_a_bad_number_stops_serve_with_the_variable_named(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path, {}, env={"SMART_IMAGING_UPSTREAM_CONNECTIONS": "lots"})
    done = subprocess.run(server.command, env=server.env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"SMART_IMAGING_UPSTREAM_CONNECTIONS: a whole number >= 1" in done.stderr
    assert b"Traceback" not in done.stderr


def test_the_workers_share_the_connections_to_an_archive() -> None:
    assert [worker_share(24, n) for n in (1, 2, 3, 24, 48)] == [24, 12, 8, 1, 1]


def test_two_workers_open_no_more_upstream_connections_than_the_command_is_given(tmp_path: Path) -> None:
    """``--upstream-connections 4`` with two workers: at most 4 requests at the archive at once
    (2 per worker), however many clients wait; without the share each worker would open 4. Past
    what the archive serves at once, a connection waits unserved until the timeout (a 504): the
    sum over workers and replicas is what has to fit (docs/deploy.md, Sizing)."""
    study, series, mrn = "1.2.826.0.1.3680043.8.498.40", "1.2.826.0.1.3680043.8.498.41", "MRN-W"
    lock, at_once, most = threading.Lock(), [0], [0]

    def slow_metadata(seen: Seen) -> Answer:
        with lock:
            at_once[0] += 1
            most[0] = max(most[0], at_once[0])
        time.sleep(0.4)
        with lock:
            at_once[0] -= 1
        instance = {
            "0020000D": {"vr": "UI", "Value": [study]},
            "0020000E": {"vr": "UI", "Value": [series]},
            "00080018": {"vr": "UI", "Value": ["1.2.826.0.1.3680043.8.498.42"]},
            "00100020": {"vr": "LO", "Value": [mrn]},
        }
        return Answer.json([instance])

    archive = FakeArchive().start().found_study(study, mrn)
    archive.route(f"/studies/{study}/metadata", slow_metadata)
    tenant = {
        "authorization": {"type": "mock", "patient": mock_patient("pat-w", mrn)},
        "images": {"type": "dicom-web", "endpoint": archive.url},
    }
    flags = ("--workers", "2", "--upstream-connections", "4")
    server = ServeProcess(tmp_path, {"w": tenant}, *flags, env={"SMART_IMAGING_EXPOSE_PID": "1"})
    try:
        server.start()
        address, _ = endpoint(server.url, "w", "pat-w")
        pids: Counter[str] = Counter()

        def fetch(_: int) -> int:
            response = httpx.get(f"{address}/studies/{study}/metadata", headers=AUTH, timeout=60)
            pids[response.headers[PID_HEADER]] += 1
            return response.status_code

        for _ in range(3):  # until both workers have taken a share of the clients
            with ThreadPoolExecutor(16) as pool:
                assert set(pool.map(fetch, range(16))) == {200}
            if len(pids) == 2 and min(pids.values()) >= 4:
                break
        assert len(pids) == 2, pids
        assert 2 <= most[0] <= 4, most[0]
    finally:
        server.stop()
        archive.stop()
