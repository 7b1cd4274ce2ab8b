"""ImagingStudy search through the real server against a real Orthanc."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from .conftest import dicomweb_tenant, mock_patient
from .orthanc import Orthanc
from .sample_dicom import SampleData

A, B = "77654033", "98890234"  # the two real patients' MRNs


@pytest.fixture
def server(orthanc: Orthanc, sample_data: SampleData, imaging_server: Callable[..., str]) -> str:
    return imaging_server(
        {
            "a": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-a", A)},
                "images": dicomweb_tenant(orthanc),
            },
            "b": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-b", B)},
                "images": dicomweb_tenant(orthanc),
            },
            "wild": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-w", "7765*")},
                "images": dicomweb_tenant(orthanc),
            },
            "star": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-s", "*")},
                "images": dicomweb_tenant(orthanc),
            },
            "all": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-a", A)},
                "images": dicomweb_tenant(orthanc, lookup="all-studies-on-server"),
            },
            "open": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": dicomweb_tenant(orthanc, lookup="all-studies-on-server"),
            },
            "nopatient": {"authorization": {"type": "mock"}, "images": dicomweb_tenant(orthanc)},
        }
    )


def search(base: str, tenant: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{base}/{tenant}/fhir/ImagingStudy", params=params, timeout=30)


def studies(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "ImagingStudy"]


def uids(bundle: dict[str, Any]) -> set[str]:
    return {s["identifier"][0]["value"].removeprefix("urn:oid:") for s in studies(bundle)}


def test_each_patient_sees_exactly_their_studies(server: str, sample_data: SampleData) -> None:
    for tenant, patient, mrn in (("a", "pat-a", A), ("b", "pat-b", B)):
        response = search(server, tenant, patient=patient)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        bundle = response.json()
        Bundle.model_validate(bundle)
        assert uids(bundle) == set(sample_data.patients[mrn])
        assert bundle["total"] == len(sample_data.patients[mrn])
        assert bundle["type"] == "searchset"
        assert all(e["search"]["mode"] == "match" for e in bundle["entry"])
        assert bundle["link"][0]["relation"] == "self"
        for study in studies(bundle):
            assert study["subject"] == {"reference": f"Patient/{patient}"}
            assert study["status"] == "available"
            assert study["identifier"][0]["system"] == "urn:dicom:uid"
            endpoint = study["contained"][0]
            assert study["endpoint"] == [{"reference": "#e"}]
            assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
            assert endpoint["status"] == "active"
            assert endpoint["address"].startswith(f"{server}/{tenant}/wado/")


def test_study_shape_follows_the_profile(server: str) -> None:
    bundle = search(server, "b", patient="Patient/pat-b").json()
    mr = [s for s in studies(bundle) if any(m["code"] == "MR" for m in s["modality"])]
    assert mr, "patient B has MR studies"
    study = max(mr, key=lambda s: s["numberOfInstances"])
    assert study["numberOfSeries"] == len(study["series"])
    assert study["numberOfInstances"] == sum(s["numberOfInstances"] for s in study["series"])
    for series in study["series"]:
        assert series["modality"]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
        assert len(series["instance"]) == series["numberOfInstances"]
        assert all(i["sopClass"]["code"].startswith("urn:oid:1.2.840.10008.") for i in series["instance"])
    assert study["started"][:4].isdigit()


def test_include_puts_endpoints_in_the_bundle(server: str) -> None:
    bundle = search(server, "a", patient="pat-a", _include="ImagingStudy:endpoint").json()
    Bundle.model_validate(bundle)
    endpoints = {e["fullUrl"]: e for e in bundle["entry"] if e["resource"]["resourceType"] == "Endpoint"}
    assert len(endpoints) == bundle["total"]
    for study in studies(bundle):
        assert "contained" not in study
        ref = study["endpoint"][0]["reference"]
        assert ref.startswith("urn:uuid:")  # IG F4: response-local entries, same value as fullUrl
        assert endpoints[ref]["search"]["mode"] == "include"


def test_other_patient_or_no_patient_is_403_never_an_empty_bundle(server: str) -> None:
    for params in (
        {"patient": "pat-b"},
        {},
        {"subject": "Patient/someone"},
        {"patient": "pat-a,pat-b"},
        {"patient.identifier": f"urn:test:mrn|{B}"},
    ):
        response = search(server, "a", **params)
        assert response.status_code == 403, params
        outcome = response.json()
        OperationOutcome.model_validate(outcome)
        assert outcome["issue"][0]["code"] == "forbidden"


def test_patient_identifier_of_the_grant_is_accepted(server: str, sample_data: SampleData) -> None:
    response = search(server, "a", **{"patient.identifier": f"urn:test:mrn|{A}"})
    assert response.status_code == 200
    assert uids(response.json()) == set(sample_data.patients[A])


def test_token_without_patient_is_403(server: str) -> None:
    assert search(server, "nopatient", patient="x").status_code == 403


def test_wildcards_in_an_mrn_never_widen_the_match(server: str, sample_data: SampleData) -> None:
    wild = search(server, "wild", patient="pat-w").json()
    assert uids(wild) == set(sample_data.patients["7765*"])
    assert not uids(wild) & set(sample_data.patients[A])
    star = search(server, "star", patient="pat-s").json()
    assert star["total"] == 0


def test_all_studies_lookup_still_checks_the_patient(server: str, sample_data: SampleData) -> None:
    everything = {u for mrn in sample_data.patients.values() for u in mrn}
    assert uids(search(server, "all", patient="pat-a").json()) == everything
    assert search(server, "all", patient="pat-b").status_code == 403
    assert uids(search(server, "open").json()) == everything


def test_identifier_and_date_filters(server: str, sample_data: SampleData) -> None:
    target = sample_data.patients[B][0]
    found = search(server, "b", patient="pat-b", identifier=f"urn:oid:{target}").json()
    assert uids(found) == {target}
    started = {s["id"]: s["started"] for s in studies(search(server, "b", patient="pat-b").json())}
    day = started[target][:10]
    on_day = uids(search(server, "b", patient="pat-b", started=f"eq{day}").json())
    assert target in on_day and all(started[u][:10] == day for u in on_day)
    before = uids(search(server, "b", patient="pat-b", started=f"lt{day}").json())
    assert target not in before and all(started[u][:10] < day for u in before)
    assert search(server, "b", patient="pat-b", started="ge1900-01-01").json()["total"] == len(started)
    assert search(server, "b", patient="pat-b", _lastUpdated="gt2999-01-01").json()["total"] == 0


def test_count_pages_with_next_link(server: str, sample_data: SampleData) -> None:
    first = search(server, "b", patient="pat-b", _count="1").json()
    assert first["total"] == len(sample_data.patients[B]) and len(studies(first)) == 1
    nxt = {link["relation"]: link["url"] for link in first["link"]}["next"]
    second = httpx.get(nxt).json()
    assert len(studies(second)) == 1 and uids(second) != uids(first)


def test_unknown_parameters(server: str) -> None:
    assert search(server, "a", patient="pat-a", color="blue").status_code == 200
    strict = httpx.get(
        f"{server}/a/fhir/ImagingStudy",
        params={"patient": "pat-a", "color": "blue"},
        headers={"Prefer": "handling=strict"},
    )
    assert strict.status_code == 400
    OperationOutcome.model_validate(strict.json())


def test_bad_parameters_are_400(server: str) -> None:
    for params in (
        {"patient": "pat-a", "started": "soon"},
        {"patient": "pat-a", "identifier": "urn:oid:1..2"},
        {"patient": "pat-a", "_count": "x"},
    ):
        response = search(server, "a", **params)
        assert response.status_code == 400, params
        assert response.json()["resourceType"] == "OperationOutcome"


def test_metadata_and_smart_configuration(server: str) -> None:
    metadata = httpx.get(f"{server}/a/fhir/metadata").json()
    CapabilityStatement.model_validate(metadata)
    resource = metadata["rest"][0]["resource"][0]
    assert resource["type"] == "ImagingStudy"
    assert {"patient", "identifier", "started", "_lastUpdated"} <= {
        p["name"] for p in resource["searchParam"]
    }
    assert "ImagingStudy:endpoint" in resource["searchInclude"]
    smart = httpx.get(f"{server}/a/fhir/.well-known/smart-configuration").json()
    assert "smart-imaging-access" in smart["capabilities"]
    assert smart["associated_endpoints"][0]["url"] == f"{server}/a/fhir"


def test_unknown_tenant_and_route(server: str) -> None:
    response = httpx.get(f"{server}/nope/fhir/ImagingStudy?patient=1")
    assert response.status_code == 404
    OperationOutcome.model_validate(response.json())
    assert httpx.get(f"{server}/a/fhir/Observation").status_code == 404


def test_patient_identifier_modifier_is_applied(server: str, sample_data: SampleData) -> None:
    """``patient:identifier=system|value`` was silently ignored (issue 13 item 7)."""
    for name in ("patient:identifier", "subject:identifier", "subject:Patient.identifier"):
        own = search(server, "a", **{name: f"urn:test:mrn|{A}"})
        assert own.status_code == 200, (name, own.text)
        assert uids(own.json()) == set(sample_data.patients[A])
        other = search(server, "a", **{name: f"urn:test:mrn|{B}"})
        assert other.status_code == 403, name
        OperationOutcome.model_validate(other.json())
    both = search(server, "a", patient="pat-a", **{"patient:identifier": f"urn:test:mrn|{B}"})
    assert both.status_code == 403  # applied, not ignored: it names another patient
    typed = search(server, "a", **{"subject:Patient": "pat-a"})
    assert uids(typed.json()) == set(sample_data.patients[A])


def test_missing_modifier(server: str, sample_data: SampleData) -> None:
    none = search(server, "a", patient="pat-a", **{"identifier:missing": "true"}).json()
    assert none["total"] == 0 and "entry" not in none
    dated = search(server, "a", patient="pat-a", **{"started:missing": "false"}).json()
    undated = search(server, "a", patient="pat-a", **{"started:missing": "true"}).json()
    assert uids(dated) | uids(undated) == set(sample_data.patients[A])
    assert all(s.get("started") for s in studies(dated)) and not any(
        s.get("started") for s in studies(undated)
    )


def test_unsupported_modifiers_are_400_when_strict_and_never_widen_when_ignored(
    server: str, sample_data: SampleData
) -> None:
    strict = {"Prefer": "handling=strict"}
    for name, value in (("patient:not", "pat-b"), ("identifier:text", "x"), ("started:exact", "2020")):
        params = {"patient": "pat-a", name: value}
        refused = httpx.get(f"{server}/a/fhir/ImagingStudy", params=params, headers=strict, timeout=30)
        assert refused.status_code == 400, name
        assert name in refused.json()["issue"][0]["diagnostics"]
        lenient = search(server, "a", **params)
        assert lenient.status_code == 200 and uids(lenient.json()) <= set(sample_data.patients[A])
    # an ignored parameter never names the patient: the search still lacks one (403), and on an
    # all-studies tenant it cannot stand in for the grant's patient either
    for tenant in ("a", "all"):
        for name in ("patient:not", "patient:below", "subject:Group", "patient:missing"):
            value = "false" if name.endswith("missing") else "pat-a"
            response = search(server, tenant, **{name: value})
            assert response.status_code == 403, (tenant, name)
