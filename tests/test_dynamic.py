"""Dynamic tenants at /dyn/{base64url(json)}/: off by default, limited to allowed upstreams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from smart_imaging.config.loader import encode_dynamic

from .conftest import dicomweb_tenant
from .orthanc import Orthanc
from .sample_dicom import SampleData


def dyn_config(orthanc: Orthanc, **images: Any) -> dict[str, Any]:
    return {
        "authorization": {"type": "mock", "disableAuthzChecks": True},
        "images": dicomweb_tenant(orthanc, lookup="all-studies-on-server", **images),
    }


def test_dynamic_tenants_are_off_by_default(imaging_server: Callable[..., str], orthanc: Orthanc) -> None:
    base = imaging_server({})
    response = httpx.get(f"{base}/dyn/{encode_dynamic(dyn_config(orthanc))}/fhir/ImagingStudy")
    assert response.status_code == 404
    assert "--dynamic-tenants" in response.json()["issue"][0]["diagnostics"]


def test_dynamic_tenant_serves_search_and_wado(
    imaging_server: Callable[..., str], orthanc: Orthanc, sample_data: SampleData
) -> None:
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=("127.0.0.1",))
    encoded = encode_dynamic(dyn_config(orthanc))
    bundle = httpx.get(f"{base}/dyn/{encoded}/fhir/ImagingStudy", timeout=30).json()
    assert bundle["total"] == sum(len(v) for v in sample_data.patients.values())
    study = bundle["entry"][0]["resource"]
    address = study["contained"][0]["address"]
    assert address.startswith(f"{base}/dyn/{encoded}/wado/")
    metadata = httpx.get(f"{address}/studies/{study['id']}/metadata", timeout=30)
    assert metadata.status_code == 200
    # a binding issued by one dynamic config does not open under another
    other = encode_dynamic(dyn_config(orthanc, seriesConcurrency=2))
    moved = address.replace(f"/dyn/{encoded}/", f"/dyn/{other}/")
    assert httpx.get(f"{moved}/studies/{study['id']}/metadata").status_code == 403


def test_dynamic_upstreams_must_be_allowed(imaging_server: Callable[..., str], orthanc: Orthanc) -> None:
    base = imaging_server(
        {}, dynamic_tenants=True, dynamic_upstream_allow=(f"127.0.0.1:{orthanc.http_port}",)
    )
    ok = httpx.get(f"{base}/dyn/{encode_dynamic(dyn_config(orthanc))}/fhir/ImagingStudy", timeout=30)
    assert ok.status_code == 200
    elsewhere = dyn_config(orthanc)
    elsewhere["images"]["endpoint"] = "http://169.254.169.254/latest"
    response = httpx.get(f"{base}/dyn/{encode_dynamic(elsewhere)}/fhir/ImagingStudy")
    assert response.status_code == 400
    assert "169.254.169.254" in response.json()["issue"][0]["diagnostics"]
    other_port = dyn_config(orthanc)
    other_port["images"]["endpoint"] = "http://127.0.0.1:1/dicom-web"
    assert httpx.get(f"{base}/dyn/{encode_dynamic(other_port)}/fhir/ImagingStudy").status_code == 400
    ehr = {
        "authorization": {"type": "smart-on-fhir", "fhirBaseUrl": "http://evil.example/fhir"},
        "images": {**dyn_config(orthanc)["images"], "lookup": "studies-by-mrn"},  # allowed behind SMART
    }
    assert httpx.get(f"{base}/dyn/{encode_dynamic(ehr)}/fhir/ImagingStudy").status_code == 400


def test_dynamic_configs_cannot_read_env_or_local_folders(
    imaging_server: Callable[..., str], orthanc: Orthanc
) -> None:
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=("*",))
    secret = dyn_config(orthanc)
    secret["images"]["authentication"]["password"] = {"$env": "SMART_IMAGING_KEY"}
    response = httpx.get(f"{base}/dyn/{encode_dynamic(secret)}/fhir/ImagingStudy")
    assert response.status_code == 400 and "$env" in response.text
    folder = {
        "authorization": {"type": "mock", "disableAuthzChecks": True},
        "images": {"type": "folder", "path": "/etc"},
    }
    response = httpx.get(f"{base}/dyn/{encode_dynamic(folder)}/fhir/ImagingStudy")
    assert response.status_code == 400


def test_malformed_dynamic_configs_are_400(imaging_server: Callable[..., str]) -> None:
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=("*",))
    for encoded in ("%%%", "bm90IGpzb24", encode_dynamic({"authorization": {"type": "nope"}})):
        response = httpx.get(f"{base}/dyn/{encoded}/fhir/ImagingStudy")
        assert response.status_code == 400, encoded
        assert response.json()["resourceType"] == "OperationOutcome"


def test_allow_list_entries_match_hosts_ports_and_ipv6() -> None:
    from smart_imaging.tenants.registry import TenantRegistry

    registry = TenantRegistry(
        {}, httpx.AsyncClient(), dynamic=True, allow=("[::1]", "pacs.example.org:8042", "Archive.Example")
    )
    assert registry._allowed("http://[::1]:8042/dicom-web")
    assert registry._allowed("http://pacs.example.org:8042/dicom-web")
    assert not registry._allowed("http://pacs.example.org:8043/dicom-web")
    assert registry._allowed("https://archive.example/dicom-web")
    assert not registry._allowed("https://archive.example.evil/dicom-web")
    assert not registry._allowed("http://127.0.0.1/dicom-web")
