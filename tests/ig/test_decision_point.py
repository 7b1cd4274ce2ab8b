"""IG authorization-patterns.md "DICOMweb requests an access decision" (issue 11.2): the tenant
asks an external policy decision point (``policy.decisionPoint``, our JSON protocol in
``smart_imaging.access.pdp``) about every study it would show or serve. When the decision point is
down, slow or answers garbage, the answer is 503 with Retry-After: never a grant ("A server SHALL
NOT serve data when it cannot establish the applicable permissions")."""

from __future__ import annotations

import time

import pytest

from smart_imaging.binding import Binding, seal, token_digest

from .studies import MRN, STUDIES
from .test_retrieving_images import METADATA, address_of, study_url
from .world import World, series_uids, studies_of

pytestmark = pytest.mark.integration
FAILURES = ("slow", "garbage", "wrong-protocol", "error500")


def test_the_decision_point_is_asked_with_client_user_patient_study_and_series(world: World) -> None:
    token = world.token("elena-for-maya")
    assert world.search("pdp", token, patient="maya").json()["total"] == 3
    asked = {r["study"]["uid"]: r for r in world.pdp.requests}
    knee = asked[STUDIES["knee"].uid]
    assert knee["client_id"] == "app" and knee["user"] == "RelatedPerson/elena" and knee["patient"] == "maya"
    assert {s["uid"] for s in knee["series"]} == set(STUDIES["knee"].series_uids.values())
    assert "patient/ImagingStudy.rs" in knee["scopes"] and knee["backend"] is False
    assert token not in str(world.pdp.requests)


def test_G5_a_study_the_decision_point_denies_is_omitted_and_refused(world: World) -> None:
    token = world.token("maya")
    address = address_of(world, token, "pelvis", tenant="pdp")  # while permitted
    world.pdp.deny_modalities = {"US"}
    bundle = world.search("pdp", token, patient="maya").json()
    assert STUDIES["pelvis"].uid not in {s["id"] for s in studies_of(bundle)} and bundle["total"] == 2
    assert world.get(f"{study_url(address, 'pelvis')}/metadata", token, METADATA).status_code == 403


def test_a_decision_point_permitting_some_series_makes_the_study_partial(world: World) -> None:
    world.pdp.deny_series_modalities = {"OT"}
    token = world.token("maya")
    bundle = world.search("pdp", token, patient="maya").json()
    knee = next(s for s in studies_of(bundle) if s["id"] == STUDIES["knee"].uid)
    assert series_uids(knee) == [STUDIES["knee"].series_uid("knee")]
    url = study_url(address_of(world, token, "knee", tenant="pdp"), "knee")
    assert world.get(f"{url}/metadata", token, METADATA).json()["error"] == "partial_study"
    allowed = f"{url}/series/{STUDIES['knee'].series_uid('knee')}/metadata"
    assert world.get(allowed, token, METADATA).status_code == 200


@pytest.mark.parametrize("mode", FAILURES)
def test_T8_a_decision_point_that_cannot_answer_is_503_never_a_grant_for_search(
    world: World, mode: str
) -> None:
    token = world.token("maya")
    world.pdp.mode = mode
    started = time.monotonic()
    response = world.search("pdp", token, patient="maya")
    assert response.status_code == 503 and response.headers["retry-after"].isdigit()
    assert response.json()["resourceType"] == "OperationOutcome"
    assert time.monotonic() - started < 4  # the decision point's timeout is 1 s
    assert "ImagingStudy" not in str(response.json().get("entry", ""))


@pytest.mark.parametrize("mode", FAILURES)
def test_T8_a_decision_point_that_cannot_answer_is_503_never_a_grant_for_retrieval(
    world: World, mode: str
) -> None:
    token = world.token("maya")
    url = study_url(address_of(world, token, "ankle", tenant="pdp"), "ankle")
    world.pdp.mode = mode
    response = world.get(f"{url}/metadata", token, METADATA)
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
    assert b"00080018" not in response.content  # no DICOM attributes


def test_one_decision_serves_a_viewer_s_many_requests_of_a_study(world: World) -> None:
    """``pdp-cached``: decisions are kept (30 s), so a search and 40 series and metadata requests of
    a study cost the decision point one question per study; while the decision is kept, even a
    decision point gone bad is not asked again (a policy change takes effect within cacheTtl)."""
    token = world.token("maya")
    url = study_url(address_of(world, token, "ankle", tenant="pdp-cached"), "ankle")
    asked = [r for r in world.pdp.requests if r["study"]["uid"] == STUDIES["ankle"].uid]
    assert len(asked) == 1
    study = STUDIES["ankle"]
    assert world.get(f"{url}/metadata", token, METADATA).status_code == 200
    world.pdp.mode = "garbage"
    for _ in range(20):
        for key in ("ap", "lateral"):
            series = f"{url}/series/{study.series_uid(key)}/metadata"
            assert world.get(series, token, METADATA).status_code == 200
    assert len([r for r in world.pdp.requests if r["study"]["uid"] == study.uid]) == 1


def test_T8_a_decision_point_that_is_down_is_503_for_search_and_retrieval(world: World) -> None:
    token = world.token("maya")
    search = world.search("pdp-down", token, patient="maya")
    assert search.status_code == 503 and search.headers["retry-after"].isdigit()
    study = STUDIES["ankle"]  # an address as a search would have given it, had it been able to
    binding = Binding(
        "pdp-down", study.uid, "maya", int(time.time()) + 600, MRN["maya"], token_digest(token, world.key)
    )
    url = f"{world.base}/pdp-down/wado/{seal(binding, world.key)}/studies/{study.uid}/metadata"
    response = world.get(url, token, METADATA)
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
