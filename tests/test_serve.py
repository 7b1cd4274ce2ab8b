"""`smart-imaging serve` as a real process: config folder, env settings, access log hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import dicomweb_tenant, mock_patient
from .orthanc import Orthanc, free_port
from .sample_dicom import SampleData


def wait_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


def test_serve_process_answers_and_logs_without_secrets(
    tmp_path: Path, orthanc: Orthanc, sample_data: SampleData
) -> None:
    config = {
        "authorization": {"type": "mock", "patient": mock_patient("pat-a", "77654033")},
        "images": dicomweb_tenant(orthanc),
    }
    config["images"]["authentication"]["password"] = {"$env": "ORTHANC_PASSWORD"}
    (tmp_path / "clinic.json").write_text(json.dumps(config))
    port = free_port()
    env = {
        **os.environ,
        "SMART_IMAGING_KEY": "a-long-test-secret",
        "ORTHANC_PASSWORD": orthanc.password,
        "SMART_IMAGING_CONFIG_DIR": str(tmp_path),
        "SMART_IMAGING_BASE_URL": "https://imaging.example",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "smart_imaging.cli", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/healthz", process)
        headers = {"Authorization": "Bearer very-secret-access-token"}
        bundle = httpx.get(
            f"{base}/clinic/fhir/ImagingStudy?patient=pat-a", headers=headers, timeout=30
        ).json()
        study = bundle["entry"][0]["resource"]
        address = study["contained"][0]["address"]
        assert address.startswith("https://imaging.example/clinic/wado/")  # the configured base URL
        local = address.replace("https://imaging.example", base)
        metadata = httpx.get(f"{local}/studies/{study['id']}/metadata", headers=headers, timeout=30)
        assert metadata.status_code == 200
        assert httpx.get(f"{base}/clinic/fhir/ImagingStudy?patient=pat-b", headers=headers).status_code == 403
        metrics = httpx.get(f"{base}/metrics").text
        assert 'smart_imaging_requests_total{route="wado",status="200"}' in metrics
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    token = address.rsplit("/", 1)[1]
    for secret in ("very-secret-access-token", token, orthanc.password, "a-long-test-secret"):
        assert secret not in stderr
    lines = [
        json.loads(line.split(" smart_imaging.access ", 1)[1])
        for line in stderr.splitlines()
        if " smart_imaging.access " in line
    ]
    wado = [entry for entry in lines if entry["route"] == "wado"]
    assert wado and wado[0]["tenant"] == "clinic" and wado[0]["status"] == 200
    assert wado[0]["patient"] == "pat-a" and wado[0]["bytes"] > 0 and "{binding}" in wado[0]["path"]
    assert any(entry["status"] == 403 and entry["route"] == "fhir" for entry in lines)


def test_serve_refuses_a_bad_config_folder(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text(json.dumps({"authorization": {"type": "mock"}, "images": {}}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "smart_imaging.cli",
            "serve",
            "--config-dir",
            str(tmp_path),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "broken.json: images" in result.stderr
