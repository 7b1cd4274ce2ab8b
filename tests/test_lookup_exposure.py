"""``all-studies-on-server`` behind a real authorizer is refused, naming file and field (issue 13
item 8): by ``check-config``, by ``serve`` (a real process) and for ``/dyn/`` configs (400).

It is allowed where no patient binding is expected: ``mock``, or ``disableAuthzChecks``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from smart_imaging.app import create_app, web_routes
from smart_imaging.config.loader import encode_dynamic
from smart_imaging.settings import Settings

from .conftest import TEST_KEY, dicomweb_tenant
from .orthanc import Orthanc, free_port
from .sample_dicom import SampleData

REAL_AUTHORIZERS = [
    "smart-on-fhir",
    "smart-on-fhir-jwt",
    "smart-on-fhir-independent",
    "smart-on-fhir-with-epic-bugfixes",
    "smart-on-fhir-with-meditech-bugfixes",
]
EHR = "http://127.0.0.1:9/fhir"  # never contacted: the config is refused first


def exposing(kind: str, images: dict[str, Any], **auth: Any) -> dict[str, Any]:
    return {
        "authorization": {"type": kind, "fhirBaseUrl": EHR, **auth},
        "images": {**images, "lookup": "all-studies-on-server"},
    }


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smart_imaging.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_refuses_it_naming_file_and_field(tmp_path: Path) -> None:
    images = {"type": "dicom-web", "endpoint": "http://pacs.example/dicom-web"}
    for kind in REAL_AUTHORIZERS:
        (tmp_path / f"{kind}.json").write_text(json.dumps(exposing(kind, images)))
    (tmp_path / "debug.json").write_text(
        json.dumps(exposing("smart-on-fhir", images, disableAuthzChecks=True))
    )
    mock = {"authorization": {"type": "mock"}, "images": {**images, "lookup": "all-studies-on-server"}}
    (tmp_path / "demo.json").write_text(json.dumps(mock))
    result = cli("check-config", str(tmp_path))
    assert result.returncode == 1, result.stdout
    for kind in REAL_AUTHORIZERS:
        assert (
            f"{kind}.json: images.lookup: all-studies-on-server lists every patient's studies"
            in result.stdout
        )
    assert "debug.json: ok (smart-on-fhir, dicom-web, all-studies-on-server)" in result.stdout
    assert "demo.json: ok (mock, dicom-web, all-studies-on-server)" in result.stdout
    assert f"2 of {len(REAL_AUTHORIZERS) + 2} configs valid" in result.stdout


def test_serve_refuses_to_start_with_it(tmp_path: Path, orthanc: Orthanc) -> None:
    (tmp_path / "clinic.json").write_text(json.dumps(exposing("smart-on-fhir", dicomweb_tenant(orthanc))))
    result = cli("serve", "--config-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 2
    assert "clinic.json: images.lookup: all-studies-on-server lists every patient's studies" in result.stderr
    assert "Traceback" not in result.stderr and orthanc.password not in result.stderr


@pytest.mark.parametrize("kind", REAL_AUTHORIZERS)
def test_dyn_config_with_it_is_400(serve: Callable[[Any], str], orthanc: Orthanc, kind: str) -> None:
    settings = Settings(key=TEST_KEY, dynamic_tenants=True, dynamic_upstream_allow=("127.0.0.1",))
    base = serve(create_app(settings, tenants={}, extra_routes=web_routes()))
    encoded = encode_dynamic(exposing(kind, dicomweb_tenant(orthanc)))
    for route in ("fhir/ImagingStudy?patient=p1", "fhir/metadata", "wado/x/studies/1.2.3/metadata"):
        response = httpx.get(
            f"{base}/dyn/{encoded}/{route}", headers={"Authorization": "Bearer abc.def"}, timeout=30
        )
        assert response.status_code == 400, (route, response.text)
        assert "images.lookup" in response.text and "every patient" in response.text
    outcome = httpx.get(f"{base}/dyn/{encoded}/fhir/ImagingStudy", timeout=30).json()
    OperationOutcome.model_validate(outcome)
    validate = httpx.post(f"{base}/api/validate-config", json=exposing(kind, dicomweb_tenant(orthanc)))
    assert validate.status_code == 200 and validate.json()["valid"] is False
    assert validate.json()["problems"][0]["field"] == "images.lookup"


def test_dyn_config_with_it_still_serves_where_allowed(
    imaging_server: Callable[..., str], orthanc: Orthanc, sample_data: SampleData
) -> None:
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=("127.0.0.1",))
    everything = {uid for uids in sample_data.patients.values() for uid in uids}
    for authorization in ({"type": "mock", "disableAuthzChecks": True}, {"type": "mock"}):
        config = {
            "authorization": authorization,
            "images": dicomweb_tenant(orthanc, lookup="all-studies-on-server"),
        }
        response = httpx.get(f"{base}/dyn/{encode_dynamic(config)}/fhir/ImagingStudy", timeout=30)
        if authorization.get("disableAuthzChecks"):
            assert response.status_code == 200
            assert {e["resource"]["id"] for e in response.json()["entry"]} == everything
        else:
            assert response.status_code == 403  # a mock without a patient: no patient context
