"""IG specification.md "Retrieving images" (and the CapabilityStatement's security rules), against
the real stack. WADO-RS addresses come from searches; some are sealed by the test with the
server's key to show that a URL nobody was given is refused too ("A request made directly to a
known image URL needs protection even if it did not follow a study search", PAT)."""

from __future__ import annotations

import time

import pytest

from smart_imaging.binding import Binding, open_binding, seal, token_digest

from .studies import MRN, STUDIES
from .world import World, endpoints, studies_of

pytestmark = pytest.mark.integration
ALL_SYNTAXES = 'multipart/related; type="application/dicom"; transfer-syntax=*'
METADATA = "application/dicom+json"


def address_of(world: World, token: str, key: str, tenant: str = "hospital") -> str:
    patient = STUDIES[key].patient
    bundle = world.search(tenant, token, patient=patient, identifier=f"urn:oid:{STUDIES[key].uid}").json()
    return endpoints(bundle)[STUDIES[key].uid]


def study_url(address: str, key: str) -> str:
    return f"{address}/studies/{STUDIES[key].uid}"


def test_W6_full_study_retrieval_with_any_transfer_syntax(world: World) -> None:
    token = world.token("maya")
    response = world.get(study_url(address_of(world, token, "ankle"), "ankle"), token, ALL_SYNTAXES)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/related")
    assert response.content.count(b"Content-Type: application/dicom") == 4  # two series of two


def test_W1_C2_W3_a_capability_for_token_a_is_refused_for_token_b_of_the_same_patient_and_app(
    world: World,
) -> None:
    token_a, token_b = world.token("maya"), world.token("maya")
    assert token_a != token_b
    url = study_url(address_of(world, token_a, "ankle"), "ankle")
    assert world.get(f"{url}/metadata", token_a, METADATA).status_code == 200
    refused = world.get(f"{url}/metadata", token_b, METADATA)
    assert refused.status_code == 403 and "another access token" in refused.json()["message"]
    another_login = world.token("maya-again")  # the same patient's second sign-in
    assert world.get(f"{url}/metadata", another_login, METADATA).status_code == 403
    assert world.get(f"{url}/metadata", None, METADATA).status_code == 401


def test_W9_every_kind_of_request_is_checked_against_the_token(world: World) -> None:
    token, other = world.token("maya"), world.token("maya")
    study = STUDIES["ankle"]
    url = study_url(address_of(world, token, "ankle"), "ankle")
    series = f"{url}/series/{study.series_uid('ap')}"
    paths = (
        ("", ALL_SYNTAXES),
        ("/metadata", METADATA),
        (f"/series/{study.series_uid('ap')}", ALL_SYNTAXES),
        (f"/series/{study.series_uid('ap')}/metadata", METADATA),
        (f"/series/{study.series_uid('ap')}/rendered", "image/jpeg"),
    )
    for path, accept in paths:
        assert world.get(url + path, token, accept).status_code == 200, path
        assert world.get(url + path, other, accept).status_code == 403, path
    instance = world.get(f"{series}/metadata", token, METADATA).json()[0]["00080018"]["Value"][0]
    frames = f"{series}/instances/{instance}/frames/1"
    octets = 'multipart/related; type="application/octet-stream"'
    assert world.get(frames, token, octets).status_code == 200
    assert world.get(frames, other, octets).status_code == 403


def test_C2_a_capability_never_outlives_its_token(world: World) -> None:
    """``app-short`` tokens live 2 s: the binding's expiry is capped at the token's exp, not the
    tenant's bindingTtl (3600 s)."""
    issued = time.time()
    token = world.oidc.app_token("maya", client="app-short")["access_token"]
    binding = open_binding(address_of(world, token, "ankle").rsplit("/", 1)[1], world.key)
    assert binding.expires_at <= issued + 5
    long_lived = open_binding(address_of(world, world.token("maya"), "ankle").rsplit("/", 1)[1], world.key)
    assert long_lived.expires_at > issued + 3000
    assert long_lived.token_digest and long_lived.token_digest != binding.token_digest


def test_W13_an_expired_capability_is_403_and_says_to_search_again(world: World) -> None:
    token = world.token("maya")
    study = STUDIES["ankle"]
    expired = Binding(
        "hospital", study.uid, "maya", int(time.time()) - 1, MRN["maya"], token_digest(token, world.key)
    )
    response = world.get(f"{world.base}/hospital/wado/{seal(expired, world.key)}/studies/{study.uid}", token)
    assert response.status_code == 403 and "search ImagingStudy again" in response.json()["message"]


def test_W4_G4_appending_another_study_to_a_capability_is_refused(world: World) -> None:
    token = world.token("maya")
    address = address_of(world, token, "ankle")
    assert world.get(f"{study_url(address, 'pelvis')}/metadata", token, METADATA).status_code == 403


def test_W14_refreshing_a_retrieval_endpoint_a_new_search_gives_the_new_token_a_working_address(
    world: World,
) -> None:
    old_token, refreshed = world.token("maya"), world.token("maya")
    old = study_url(address_of(world, old_token, "knee"), "knee")
    assert world.get(f"{old}/metadata", refreshed, METADATA).status_code == 403
    again = world.search("hospital", refreshed, patient="maya", identifier=f"urn:oid:{STUDIES['knee'].uid}")
    fresh = study_url(endpoints(again.json())[STUDIES["knee"].uid], "knee")
    assert world.get(f"{fresh}/metadata", refreshed, METADATA).status_code == 200


def test_W16_a_study_the_policy_refuses_is_403_without_dicom_data(world: World) -> None:
    """Elena never gets an address for the confidential ultrasound; one sealed for her token anyway
    (as if guessed or copied) is refused before any DICOM leaves the archive."""
    elena = world.token("elena-for-maya")
    study = STUDIES["pelvis"]
    forged = Binding(
        "hospital", study.uid, "maya", int(time.time()) + 600, MRN["maya"], token_digest(elena, world.key)
    )
    url = f"{world.base}/hospital/wado/{seal(forged, world.key)}/studies/{study.uid}"
    for path, accept in (
        ("", ALL_SYNTAXES),
        ("/metadata", METADATA),
        (f"/series/{study.series_uid('us')}", ALL_SYNTAXES),
    ):
        response = world.get(url + path, elena, accept)
        assert response.status_code == 403 and response.headers["content-type"].startswith("application/json")
        assert b"DICM" not in response.content
    maya = world.token("maya")
    assert (
        world.get(
            f"{study_url(address_of(world, maya, 'pelvis'), 'pelvis')}/metadata", maya, METADATA
        ).status_code
        == 200
    )


def test_W17_a_partly_allowed_study_is_refused_whole_and_served_series_by_series(world: World) -> None:
    elena = world.token("elena-for-maya")
    study = STUDIES["knee"]
    url = study_url(address_of(world, elena, "knee"), "knee")
    for path, accept in (("", ALL_SYNTAXES), ("/metadata", METADATA), ("/rendered", "image/jpeg")):
        whole = world.get(url + path, elena, accept)
        assert whole.status_code == 403 and whole.json()["error"] == "partial_study", path
    allowed = f"{url}/series/{study.series_uid('knee')}"
    assert world.get(allowed, elena, ALL_SYNTAXES).status_code == 200
    assert world.get(f"{allowed}/metadata", elena, METADATA).status_code == 200
    refused = world.get(f"{url}/series/{study.series_uid('consent')}", elena, ALL_SYNTAXES)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    maya = world.token("maya")  # the patient herself gets the whole study
    assert (
        world.get(study_url(address_of(world, maya, "knee"), "knee"), maya, ALL_SYNTAXES).status_code == 200
    )


def test_W9_a_search_page_s_studies_all_open_with_the_searching_token(world: World) -> None:
    token = world.token("maya")
    bundle = world.search("hospital", token, patient="maya", _include="ImagingStudy:endpoint").json()
    for uid, address in endpoints(bundle).items():
        assert world.get(f"{address}/studies/{uid}/metadata", token, METADATA).status_code == 200
    assert len(studies_of(bundle)) == 3
