"""IG specification.md "Finding studies" (and the CapabilityStatement's ImagingStudy rules),
against the real stack: oidc-provider tokens, Orthanc, the imaging server over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.imagingstudy import ImagingStudy

from .studies import STUDIES
from .world import World, endpoints, series_uids, studies_of

pytestmark = pytest.mark.integration
INCLUDE = "ImagingStudy:endpoint"


def uid_param(key: str) -> str:
    return f"urn:oid:{STUDIES[key].uid}"


def test_F1_search_by_patient_alone_and_with_identifier(world: World) -> None:
    token = world.token("maya")
    everything = world.search("hospital", token, patient="maya").json()
    assert {s["id"] for s in studies_of(everything)} == {STUDIES[k].uid for k in ("ankle", "pelvis", "knee")}
    one = world.search("hospital", token, patient="maya", identifier=uid_param("knee")).json()
    assert [s["id"] for s in studies_of(one)] == [STUDIES["knee"].uid] and one["total"] == 1


def test_F1_lastUpdated_is_the_archives_update_time_so_a_study_acquired_long_ago_is_found(
    world: World,
) -> None:
    """The ankle X-ray was acquired in 2000 and stored in Orthanc by this test session: an
    incremental sync asking for studies updated since yesterday must find it (issue 11.4)."""
    token = world.token("maya")
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = world.search("hospital", token, patient="maya", _lastUpdated=f"gt{since}").json()
    ankle = next(s for s in studies_of(recent) if s["id"] == STUDIES["ankle"].uid)
    assert ankle["started"].startswith("2000-10-10")
    updated = datetime.fromisoformat(ankle["meta"]["lastUpdated"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - updated < timedelta(hours=2)
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert world.search("hospital", token, patient="maya", _lastUpdated=f"gt{later}").json()["total"] == 0


def test_F1_without_an_archive_update_time_lastUpdated_falls_back_to_the_study_date(world: World) -> None:
    """The plain tenant has no images.lastUpdated: the CapabilityStatement says so (K3)."""
    token = world.token("maya")
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = world.search("plain", token, patient="maya", _lastUpdated=f"gt{since}").json()
    assert STUDIES["ankle"].uid not in {s["id"] for s in studies_of(recent)}
    assert all("meta" not in s for s in studies_of(world.search("plain", token, patient="maya").json()))


def test_F2_F4_include_returns_response_local_urn_uuid_endpoints_on_the_page_of_their_study(
    world: World,
) -> None:
    token = world.token("maya")
    for offset in (0, 1, 2):
        bundle = world.search(
            "hospital", token, patient="maya", _include=INCLUDE, _count="1", _offset=str(offset)
        ).json()
        Bundle.model_validate(bundle)
        (study,) = studies_of(bundle)
        (reference,) = study["endpoint"]
        assert reference["reference"].startswith("urn:uuid:")
        (included,) = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
        assert included["fullUrl"] == reference["reference"]
        assert included["resource"]["id"] == reference["reference"].removeprefix("urn:uuid:")
        assert included["resource"]["connectionType"]["code"] == "dicom-wado-rs"
        assert bundle["total"] == 3  # counts matches, not included Endpoints


def test_F5_without_include_every_study_carries_its_endpoint_contained(world: World) -> None:
    bundle = world.search("hospital", world.token("maya"), patient="maya").json()
    for study in studies_of(bundle):
        assert study["endpoint"] == [{"reference": "#e"}]
        assert study["contained"][0]["address"].startswith(f"{world.base}/hospital/wado/")
    assert bundle["entry"][0]["resource"]["contained"][0]["address"]  # the reference's smoke test


def test_F7_P1_every_study_follows_the_smart_imaging_study_profile(world: World) -> None:
    bundle = world.search("hospital", world.token("maya"), patient="maya", _include=INCLUDE).json()
    for study in studies_of(bundle):
        ImagingStudy.model_validate(study)
        assert {"system": "urn:dicom:uid", "value": f"urn:oid:{study['id']}"} in study["identifier"]
        assert study["status"] == "available" and study["subject"]["reference"].endswith("Patient/maya")
        assert study["modality"] and study["endpoint"]


def test_F10_T3_a_search_for_another_patient_is_403_not_an_empty_bundle(world: World) -> None:
    token = world.token("maya")
    for params in ({"patient": "123"}, {}, {"patient": "maya,123"}):
        response = world.search("hospital", token, **params)
        assert response.status_code == 403, params
        assert response.json()["resourceType"] == "OperationOutcome"


def test_F12_studies_the_client_may_not_access_are_omitted_with_their_endpoints(world: World) -> None:
    """Elena (proxy): the confidential ultrasound is neither listed nor referenced; total = 2."""
    bundle = world.search("hospital", world.token("elena-for-maya"), patient="maya", _include=INCLUDE).json()
    listed = {s["id"] for s in studies_of(bundle)}
    assert listed == {STUDIES["ankle"].uid, STUDIES["knee"].uid} and bundle["total"] == 2
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert len(included) == 2
    assert STUDIES["pelvis"].uid not in str(bundle)  # neither the study nor anything naming it


def test_F12_a_partly_allowed_study_lists_and_counts_only_its_allowed_series(world: World) -> None:
    bundle = world.search("hospital", world.token("elena-for-maya"), patient="maya").json()
    knee = next(s for s in studies_of(bundle) if s["id"] == STUDIES["knee"].uid)
    assert series_uids(knee) == [STUDIES["knee"].series_uid("knee")]
    assert knee["numberOfSeries"] == 1 and knee["numberOfInstances"] == 2
    assert [m["code"] for m in knee["modality"]] == ["DX"]  # no trace of the OT series
    assert STUDIES["knee"].series_uid("consent") not in str(bundle)


def test_F13_the_restrictions_apply_to_identifier_and_lastUpdated_searches_too(world: World) -> None:
    token = world.token("elena-for-maya")
    direct = world.search("hospital", token, patient="maya", identifier=uid_param("pelvis"))
    assert direct.status_code == 200 and direct.json()["total"] == 0
    recent = world.search("hospital", token, patient="maya", _lastUpdated="gt2000-01-01").json()
    assert STUDIES["pelvis"].uid not in {s["id"] for s in studies_of(recent)}


def test_read_resolves_each_fullUrl_with_the_same_authorization_as_search(world: World) -> None:
    token = world.token("maya")
    bundle = world.search("hospital", token, patient="maya").json()
    for entry in bundle["entry"]:
        read = world.get(entry["fullUrl"], token)
        assert read.status_code == 200 and read.headers["content-type"].startswith("application/fhir+json")
        study = read.json()
        assert study["id"] == entry["resource"]["id"] and study["contained"][0]["address"]
    assert world.get(bundle["entry"][0]["fullUrl"], None).status_code == 401


def test_read_is_404_for_an_unknown_another_patients_or_a_withheld_study(world: World) -> None:
    """One answer for the three, so a read never tells whether a study exists (documented in the
    CapabilityStatement)."""
    base = f"{world.base}/hospital/fhir/ImagingStudy"
    maya, elena = world.token("maya"), world.token("elena-for-maya")
    for token, uid in ((maya, "2.25.1"), (maya, STUDIES["a"].uid), (elena, STUDIES["pelvis"].uid)):
        response = world.get(f"{base}/{uid}", token)
        assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"
    assert world.get(f"{base}/{STUDIES['knee'].uid}", elena).json()["numberOfSeries"] == 1
    assert endpoints(world.search("hospital", maya, patient="maya").json())
