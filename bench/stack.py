"""What the capacity benchmarks start: a real Orthanc with sample studies, a plain nginx hop, the
tiny SMART EHR (``bench/tiny_ehr.py``) and ``smart-imaging serve`` processes, all on loopback.

Everything started is stopped by :meth:`Stack.close` (also when a later start fails).
Tenants: ``mock`` (the mock authorizer, patient ``pat-a``) and ``smart`` (``smart-on-fhir``:
introspection at the tiny EHR, then cached decisions; tokens from :func:`tiny_ehr.app_token`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from joserfc.jwk import ECKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.nginx import Nginx, free_port
from tests.orthanc import Orthanc
from tests.sample_dicom import SampleData, build_sample_data, real_series_files, restamped

PATIENTS = {"pat-a": "77654033", "pat-b": "98890234", "pat-c": "LOAD-3"}  # patient id -> MRN
KEY = "bench-capacity-key"


@dataclass(frozen=True)
class FloorProxy:
    base: str
    pid: int


def wait_http(
    url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 60, accept_any: bool = False
) -> None:
    """Until ``url`` answers 200 (``accept_any``: any HTTP answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200 or accept_any:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:g} s")


def tenant_configs(
    orthanc: Orthanc, ehr_url: str, series_concurrency: int | None = None
) -> dict[str, dict[str, object]]:
    """``series_concurrency``: the tenant's ``seriesConcurrency`` (its QIDO-RS queries at once for
    series and instances, shared by all concurrent searches; default 4)."""
    images: dict[str, object] = {
        "type": "dicom-web",
        "endpoint": orthanc.dicomweb_url,
        "authentication": {"type": "http-basic", "username": orthanc.username, "password": orthanc.password},
    }
    if series_concurrency:
        images["seriesConcurrency"] = series_concurrency
    key = ECKey.generate_key("P-384", parameters={"kid": "bench", "alg": "ES384"}, private=True)
    patient = {
        "resourceType": "Patient",
        "id": "pat-a",
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": PATIENTS["pat-a"]}],
    }
    smart = {
        "type": "smart-on-fhir",
        "fhirBaseUrl": f"{ehr_url}/fhir",
        "client": {"client_id": "imaging-server", "jwkPrivate": key.as_dict(private=True)},
    }
    return {
        "mock": {"authorization": {"type": "mock", "patient": patient}, "images": images},
        "smart": {"authorization": smart, "images": images},
    }


class Stack(contextlib.ExitStack):
    """``with Stack() as stack:`` then ``stack.start_*``; everything stops on exit."""

    def __init__(self) -> None:
        super().__init__()
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
        self.orthanc: Orthanc | None = None
        self.ehr_url = ""
        self.tenants = self.workdir / "tenants"

    def start_orthanc(self, blobs: Sequence[bytes]) -> Orthanc:
        orthanc = Orthanc().start()
        self.callback(orthanc.stop)
        orthanc.upload_bytes(blobs)
        self.orthanc = orthanc
        return orthanc

    def start_nginx(self, upstreams: Sequence[int], workers: str = "auto") -> Nginx:
        nginx = Nginx(upstreams, workers).start()
        self.callback(nginx.stop)
        return nginx

    def start_floor_proxy(self, upstream: str, server: str = "uvicorn") -> FloorProxy:
        """``bench/floor_proxy.py``: a bare Python proxy (aiohttp, no checks; served by ``server``,
        uvicorn or granian) in front of ``upstream``; what any Python hop costs on this machine."""
        port = free_port()
        script = str(ROOT / "bench" / "floor_proxy.py")
        command = [sys.executable, script, str(port), upstream, server]
        process = self._process(command, self.workdir / f"floor-{server}.log")
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/dicom-web/studies?limit=1", process, "bare Python proxy", accept_any=True)
        return FloorProxy(base, process.pid)

    def start_ehr(self, series_concurrency: int | None = None) -> str:
        """The tiny EHR, then the tenant configs that point at it and at Orthanc."""
        assert self.orthanc is not None, "start Orthanc first"
        port = free_port()
        script = str(ROOT / "bench" / "tiny_ehr.py")
        self._process([sys.executable, script, str(port), json.dumps(PATIENTS)], self.workdir / "ehr.log")
        self.ehr_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.ehr_url}/stats", self._last, "tiny EHR")
        self.tenants.mkdir(exist_ok=True)
        for name, config in tenant_configs(self.orthanc, self.ehr_url, series_concurrency).items():
            (self.tenants / f"{name}.json").write_text(json.dumps(config))
        return self.ehr_url

    def start_server(
        self,
        workers: int = 1,
        log_level: str = "info",
        wrap: Sequence[str] = (),
        name: str = "server",
        env: dict[str, str] | None = None,
    ) -> tuple[subprocess.Popen[bytes], str]:
        """``smart-imaging serve --workers N`` on a free port; (process, base URL)."""
        port = free_port()
        command = [
            *wrap,
            sys.executable,
            "-m",
            "smart_imaging.cli",
            "serve",
            "--config-dir",
            str(self.tenants),
        ]
        command += ["--port", str(port), "--log-level", log_level, "--workers", str(workers)]
        environment = {**os.environ, "SMART_IMAGING_KEY": KEY, **(env or {})}
        process = self._process(command, self.workdir / f"{name}.log", environment)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", process, name)
        return process, url

    def _process(
        self, command: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        self.callback(_stop, process)
        self._last = process
        return process

    def introspections(self) -> int:
        return int(httpx.get(f"{self.ehr_url}/stats").json()["introspections"])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants (a server's workers)."""
    process = psutil.Process(pid)
    return [pid, *(child.pid for child in process.children(recursive=True))]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of these processes and their descendants so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            for each in (process, *process.children(recursive=True)):
                times = each.cpu_times()
                total += times.user + times.system
    return total


def endpoint_path(base: str, tenant: str, token: str, patient: str, study: str) -> str:
    """The WADO-RS base path (binding included) of ``study``, from an ImagingStudy search."""
    from urllib.parse import urlsplit

    found = search(base, tenant, token, patient)
    for resource in found:
        if resource["id"] == study:
            return urlsplit(resource["contained"][0]["address"]).path
    raise RuntimeError(f"study {study} not found by {tenant}")


def search(base: str, tenant: str, token: str, patient: str) -> list[dict[str, object]]:
    """The ImagingStudy resources of ``patient``'s search (raises on a non-200)."""
    bundle = httpx.get(
        f"{base}/{tenant}/fhir/ImagingStudy",
        params={"patient": patient},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    bundle.raise_for_status()
    return [
        entry["resource"]
        for entry in bundle.json().get("entry", [])
        if entry["resource"]["resourceType"] == "ImagingStudy"
    ]


def bench_data() -> SampleData:
    """The test suite's sample studies plus a third plain patient (``LOAD-3``): copies of
    77654033's real CT/MR series under new UIDs."""
    data = build_sample_data()
    for path in real_series_files():
        if "/77654033/" in str(path):
            data.add(restamped(path, PATIENTS["pat-c"], "load-3"))
    return data
