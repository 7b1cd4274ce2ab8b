"""With a real authorizer another patient's study is never listed or served, whatever the lookup.

Issue 13 item 8: ``images.lookup: all-studies-on-server`` behind ``smart-on-fhir`` showed each
token's patient the whole archive, and served another patient's study (the binding carried no
MRN, so the study guard was skipped). Config validation now refuses that combination
(``tests/test_lookup_exposure.py``); here the server is given such a config anyway (built past
validation, as a future code path might) and must still search by the token patient's MRN.
Tokens come from the real oidc-provider, introspected by the real authorizer; images from Orthanc.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from oidc_server import OidcServer
from smart_ehr import EhrState

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.config.tenant import TenantConfig
from smart_imaging.settings import Settings

A, B = "77654033", "98890234"  # PatientIDs of the real sample studies
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


def past_validation(config: dict[str, Any], lookup: str) -> TenantConfig:
    """A valid config whose ``images.lookup`` is then set without validation."""
    parsed = parse_config(config)
    return parsed.model_copy(update={"images": parsed.images.model_copy(update={"lookup": lookup})})


@pytest.fixture
def server(
    orthanc: Any, sample_data: Any, ehr: EhrState, smart_config: Callable[..., dict[str, Any]], serve: Any
) -> str:
    ehr.patients["pat-a"]["identifier"][0]["value"] = A  # MR-typed: the default expression finds it
    ehr.patients["pat-b"]["identifier"][1]["value"] = B  # only under system urn:test:local-mrn
    images = {
        "type": "dicom-web",
        "endpoint": orthanc.dicomweb_url,
        "authentication": {"type": "http-basic", "username": orthanc.username, "password": orthanc.password},
    }
    by_text = {**images, "mrn": ["identifier.where(system='urn:test:local-mrn').value"]}
    tenants = {
        f"{name}.{lookup}": past_validation({"authorization": smart_config(), "images": imgs}, lookup)
        for name, imgs in (("default", images), ("by-text", by_text))
        for lookup in ("studies-by-mrn", "all-studies-on-server")
    }
    for name, config in tenants.items():
        assert config.images.lookup == name.split(".")[1]  # the bypass took: this is what is tested
    return str(serve(create_app(Settings(key="lookup-exposure-test-key"), tenants=tenants)))


def search(base: str, tenant: str, token: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{base}/{tenant}/fhir/ImagingStudy",
        params=params or {"patient": "pat-a"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def addresses(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {
        e["resource"]["id"]: e["resource"]["contained"][0]["address"]
        for e in response.json().get("entry", [])
        if e["resource"]["resourceType"] == "ImagingStudy"
    }


LOOKUPS = ["studies-by-mrn", "all-studies-on-server"]


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_each_token_lists_only_its_patients_studies(
    server: str, oidc: OidcServer, sample_data: Any, lookup: str
) -> None:
    everything = {uid for uids in sample_data.patients.values() for uid in uids}
    anna = oidc.app_token("pat-a")["access_token"]
    ben = oidc.app_token("pat-b")["access_token"]
    assert set(addresses(search(server, f"default.{lookup}", anna))) == set(sample_data.patients[A])
    assert set(addresses(search(server, f"by-text.{lookup}", ben, patient="pat-b"))) == set(
        sample_data.patients[B]
    )
    # ben has no MR-typed identifier: under the default expressions he has no MRN, and a patient
    # without an MRN finds nothing, never everything
    nothing = search(server, f"default.{lookup}", ben, patient="pat-b")
    assert addresses(nothing) == {} and nothing.json()["total"] == 0
    assert len(everything) > len(sample_data.patients[A]) + len(sample_data.patients[B])
    for identifier in (f"urn:test:mrn|{B}", B):
        other = search(server, f"default.{lookup}", anna, **{"patient.identifier": identifier})
        assert other.status_code == 403
    assert search(server, f"default.{lookup}", anna, patient="pat-b").status_code == 403


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_another_patients_study_is_never_served(
    server: str, oidc: OidcServer, sample_data: Any, lookup: str
) -> None:
    anna = oidc.app_token("pat-a")["access_token"]
    ben = oidc.app_token("pat-b")["access_token"]
    own = addresses(search(server, f"default.{lookup}", anna))
    study, address = next(iter(own.items()))
    bens_study = sample_data.patients[B][0]
    with httpx.Client(timeout=30) as client:
        served = client.get(
            f"{address}/studies/{study}/metadata", headers={"Authorization": f"Bearer {anna}"}
        )
        assert served.status_code == 200 and served.json()[0]["00100020"]["Value"] == [A]
        for path in (f"studies/{bens_study}", f"studies/{bens_study}/metadata"):
            # anna's capability URL with ben's study UID appended
            moved = client.get(
                f"{address}/{path}", headers={"Authorization": f"Bearer {anna}", "Accept": MULTIPART_DICOM}
            )
            assert moved.status_code == 403, path
            assert A not in moved.text and B not in moved.text
        # ben's token on anna's capability URL
        stolen = client.get(f"{address}/studies/{study}/metadata", headers={"Authorization": f"Bearer {ben}"})
        assert stolen.status_code == 403 and A not in stolen.text
