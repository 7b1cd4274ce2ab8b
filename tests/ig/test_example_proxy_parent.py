"""The IG's worked example (authorization-patterns.md, "A parent preparing records for a second
opinion"), end to end: Elena, with proxy access to her daughter Maya's record, uses a
second-opinion app. Her token (oidc-provider: ``patient`` maya, ``fhirUser`` RelatedPerson/elena)
receives Maya's ankle X-ray, but not the pelvic ultrasound from a confidential encounter; and a
study partly excluded (the knee X-ray's scanned documents) is never returned as a whole.
Tenant ``hospital``'s policy: ``tests/ig/world.py policy()``."""

from __future__ import annotations

import pytest

from .studies import STUDIES
from .test_retrieving_images import ALL_SYNTAXES, address_of, study_url
from .world import World, endpoints, series_uids, studies_of

pytestmark = pytest.mark.integration


def test_elena_receives_maya_s_ankle_xray_whole(world: World) -> None:
    elena = world.token("elena-for-maya")
    bundle = world.search("hospital", elena, patient="maya", _include="ImagingStudy:endpoint").json()
    ankle = next(s for s in studies_of(bundle) if s["id"] == STUDIES["ankle"].uid)
    assert sorted(series_uids(ankle)) == sorted(STUDIES["ankle"].series_uids.values())
    address = endpoints(bundle)[STUDIES["ankle"].uid]
    response = world.get(study_url(address, "ankle"), elena, ALL_SYNTAXES)
    assert response.status_code == 200 and response.content.count(b"Content-Type: application/dicom") == 4


def test_the_confidential_ultrasound_is_absent_from_elena_s_search_and_refused_on_retrieval(
    world: World,
) -> None:
    elena = world.token("elena-for-maya")
    bundle = world.search("hospital", elena, patient="maya").json()
    assert STUDIES["pelvis"].uid not in str(bundle) and bundle["total"] == 2
    read = world.get(f"{world.base}/hospital/fhir/ImagingStudy/{STUDIES['pelvis'].uid}", elena)
    assert read.status_code == 404  # no existence oracle
    maya = world.token("maya")  # Maya's own address for it is bound to Maya's token
    url = study_url(address_of(world, maya, "pelvis"), "pelvis")
    assert world.get(url, elena, ALL_SYNTAXES).status_code == 403


def test_a_partly_excluded_study_is_never_returned_partial(world: World) -> None:
    elena = world.token("elena-for-maya")
    knee = STUDIES["knee"]
    bundle = world.search("hospital", elena, patient="maya").json()
    shown = next(s for s in studies_of(bundle) if s["id"] == knee.uid)
    assert series_uids(shown) == [knee.series_uid("knee")] and shown["numberOfSeries"] == 1
    url = study_url(endpoints(bundle)[knee.uid], "knee")
    assert world.get(url, elena, ALL_SYNTAXES).json()["error"] == "partial_study"
    series = world.get(f"{url}/series/{knee.series_uid('knee')}", elena, ALL_SYNTAXES)
    assert series.status_code == 200 and series.content.count(b"Content-Type: application/dicom") == 2
    assert world.get(f"{url}/series/{knee.series_uid('consent')}", elena, ALL_SYNTAXES).status_code == 403


def test_maya_herself_receives_all_three_studies_whole(world: World) -> None:
    maya = world.token("maya")
    bundle = world.search("hospital", maya, patient="maya").json()
    assert bundle["total"] == 3
    for key in ("ankle", "pelvis", "knee"):
        url = study_url(endpoints(bundle)[STUDIES[key].uid], key)
        assert world.get(url, maya, ALL_SYNTAXES).status_code == 200, key
