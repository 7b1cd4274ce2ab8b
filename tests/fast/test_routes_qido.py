"""QIDO-RS under an Endpoint address (PS3.18 10.6), HTTP in and out, against fakes: authorized
exactly like WADO-RS (token, binding, patient), a path naming another study is 403 before any
archive access, and whatever the archive answers, only the bound study's records come back."""

from __future__ import annotations

import pytest

from smart_imaging.dicom import tags

from ..support.fakes import study
from .conftest import A_UIDS, B_UID, World
from .test_routes_wado import error

UID, OTHER = A_UIDS[1], A_UIDS[0]  # two studies of the same patient


async def test_the_collections_answer_dicom_json_for_the_bound_study(world: World) -> None:
    base = await world.wado_base(UID)
    studies = await world.client.get(f"{base}/studies", headers=world.headers())
    assert studies.status_code == 200 and studies.headers["content-type"] == "application/dicom+json"
    assert [s[tags.StudyInstanceUID]["Value"] for s in studies.json()] == [[UID]]
    series = (await world.client.get(f"{base}/studies/{UID}/series", headers=world.headers())).json()
    assert [s[tags.SeriesInstanceUID]["Value"][0] for s in series] == [f"{UID}.1", f"{UID}.2"]
    one = await world.client.get(f"{base}/studies/{UID}/series/{UID}.2/instances", headers=world.headers())
    assert [i[tags.SOPInstanceUID]["Value"][0] for i in one.json()] == [f"{UID}.2.1"]
    every = await world.client.get(f"{base}/studies/{UID}/instances", headers=world.headers())
    assert len(every.json()) == 2
    levels = [(q.level, q.study_uid, q.series_uid, q.mrn) for q in world.source.queries]
    assert levels == [
        ("studies", UID, None, "MRN-A"),
        ("series", UID, None, "MRN-A"),
        ("instances", UID, f"{UID}.2", "MRN-A"),
        ("instances", UID, None, "MRN-A"),
    ]
    assert world.source.retrievals == []


async def test_an_archive_answering_more_is_narrowed_to_the_bound_study(world: World) -> None:
    world.source.extra_records = [study(OTHER, "MRN-A"), study(B_UID, "MRN-B"), study(UID, "MRN-B")]
    base = await world.wado_base(UID)
    found = (await world.client.get(f"{base}/studies", headers=world.headers())).json()
    assert [(s[tags.StudyInstanceUID]["Value"], s[tags.PatientID]["Value"]) for s in found] == [
        ([UID], ["MRN-A"])
    ]
    series = (await world.client.get(f"{base}/studies/{UID}/series", headers=world.headers())).json()
    assert {s[tags.StudyInstanceUID]["Value"][0] for s in series} == {UID}


@pytest.mark.parametrize(
    "path",
    [f"/studies/{OTHER}/series", f"/studies/{OTHER}/instances", f"/studies/{OTHER}/series/1.2/instances"],
)
async def test_a_path_naming_another_study_is_403_without_archive_access(world: World, path: str) -> None:
    base = await world.wado_base(UID)
    error(await world.client.get(base + path, headers=world.headers()), 403, "forbidden")
    assert world.source.queries == []


async def test_queries_naming_others_get_an_empty_list(world: World) -> None:
    base = await world.wado_base(UID)
    for params in ({"StudyInstanceUID": OTHER}, {"StudyInstanceUID": "*"}, {"PatientID": "MRN-B"}):
        response = await world.client.get(f"{base}/studies", params=params, headers=world.headers())
        assert response.status_code == 200 and response.json() == [], params


async def test_authorization_is_that_of_wado(world: World) -> None:
    base = await world.wado_base(UID)
    error(await world.client.get(f"{base}/studies"), 401, "missing_token")
    other = await world.client.get(f"{base}/studies", headers=world.headers("token-b"))
    error(other, 403, "forbidden")
    tampered = base[:-3] + ("AAA" if not base.endswith("AAA") else "BBB")
    assert (await world.client.get(f"{tampered}/studies", headers=world.headers())).status_code in (401, 403)
    error(
        await world.client.get(f"{base}/studies", params={"Bogus": "1"}, headers=world.headers()),
        400,
        "bad_request",
    )
    assert world.source.queries == []


@pytest.mark.parametrize("tail", ["/studies%0A", f"/studies/{UID}/series%0A", "/studies%0D", "/studies%09"])
async def test_a_control_character_in_the_path_is_404(world: World, tail: str) -> None:
    """Starlette's ``$`` also matches before a final newline: ``/studies%0A`` reached ``/studies``."""
    base = await world.wado_base(UID)
    answer = await world.client.get(base + tail, headers=world.headers())
    error(answer, 404, "not_found")
    assert world.source.queries == [] and world.source.retrievals == []
    fhir = await world.client.get(base.split("/wado/")[0] + "/fhir/ImagingStudy%0A", headers=world.headers())
    assert fhir.status_code == 404 and fhir.json()["resourceType"] == "OperationOutcome"
