"""QIDO-RS under an Endpoint address (issue 10.1) through the real server, for each image source:
dicom-web and dicom-dimse against the session's Orthanc, folder on the generated samples.

dicomweb-client searches the Endpoint like any DICOMweb server; everything it finds belongs to the
bound study. Scope: another study's UID, wildcards, UID lists, another PatientID get ``[]``; a path
naming another study is 403; limit/offset at their extremes page within the study only.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from .conftest import dicomweb_tenant, mock_patient
from .dimse.test_dimse_orthanc import dimse_tenant
from .generated_samples import generated_samples
from .orthanc import Orthanc
from .sample_dicom import SampleData

A = "77654033"
FOLDER_MRN = "MRN-1001"
STUDY_UID, SERIES_UID, SOP_UID, PATIENT_ID = "0020000D", "0020000E", "00080018", "00100020"

Tree = dict[str, dict[str, set[str]]]  # study -> series -> instances


@dataclass
class Case:
    base: str
    tenant: str
    patient: str  # FHIR id the mock grants
    mrn: str
    tree: Tree  # of this patient
    others: set[str]  # other patients' studies on the same archive


def tree_of(datasets: Iterable[pydicom.Dataset]) -> Tree:
    found: Tree = {}
    for ds in datasets:
        found.setdefault(ds.StudyInstanceUID, {}).setdefault(ds.SeriesInstanceUID, set()).add(
            ds.SOPInstanceUID
        )
    return found


def orthanc_tree(data: SampleData, mrn: str) -> Tree:
    blobs = (b for uid, b in data.files.items() if data.study_of[uid] in data.patients[mrn])
    return tree_of(pydicom.dcmread(io.BytesIO(b), stop_before_pixels=True) for b in blobs)


@pytest.fixture(scope="module")
def folder_files() -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in generated_samples()[1]]


@pytest.fixture(params=["dicom-web", "dicom-dimse", "folder"])
def case(
    request: pytest.FixtureRequest,
    orthanc: Orthanc,
    sample_data: SampleData,
    imaging_server: Callable[..., str],
    folder_files: list[pydicom.Dataset],
    tmp_path: Path,
) -> Case:
    kind = request.param
    if kind == "folder":
        images: dict[str, Any] = {
            "type": "folder",
            "path": str(generated_samples()[0]),
            "index": str(tmp_path / "i.sqlite"),
        }
        mine = [ds for ds in folder_files if ds.PatientID == FOLDER_MRN]
        others = {ds.StudyInstanceUID for ds in folder_files if ds.PatientID != FOLDER_MRN}
        mrn = FOLDER_MRN
    else:
        images = dicomweb_tenant(orthanc) if kind == "dicom-web" else dimse_tenant(orthanc)
        mrn = A
        mine = []
        others = {s for p, studies in sample_data.patients.items() if p != A for s in studies}
    tree = tree_of(mine) if mine else orthanc_tree(sample_data, A)
    config = {"authorization": {"type": "mock", "patient": mock_patient("pat-x", mrn)}, "images": images}
    return Case(imaging_server({"t": config}), "t", "pat-x", mrn, tree, others)


def endpoints(case: Case) -> dict[str, str]:
    url = f"{case.base}/{case.tenant}/fhir/ImagingStudy"
    response = httpx.get(url, params={"patient": case.patient}, timeout=120)
    assert response.status_code == 200, response.text
    return {e["resource"]["id"]: e["resource"]["contained"][0]["address"] for e in response.json()["entry"]}


def uids(found: list[dict[str, Any]], tag: str) -> list[str]:
    return [ds[tag]["Value"][0] for ds in found]


def test_dicomweb_client_searches_the_endpoint_like_a_dicomweb_server(case: Case) -> None:
    addresses = endpoints(case)
    assert set(addresses) == set(case.tree)
    for study, address in addresses.items():
        client = DICOMwebClient(url=address)
        studies = client.search_for_studies()
        assert uids(studies, STUDY_UID) == [study]
        assert studies[0][PATIENT_ID]["Value"] == [case.mrn]
        series = client.search_for_series(study)
        assert sorted(uids(series, SERIES_UID)) == sorted(case.tree[study])
        assert all(s[STUDY_UID]["Value"] == [study] for s in series)
        every = client.search_for_instances(study)
        assert sorted(uids(every, SOP_UID)) == sorted(i for s in case.tree[study].values() for i in s)
        for series_uid, instances in case.tree[study].items():
            found = client.search_for_instances(study, series_uid)
            assert sorted(uids(found, SOP_UID)) == sorted(instances)
            assert all(i[SERIES_UID]["Value"] == [series_uid] for i in found)


def test_queries_never_leave_the_bound_study(case: Case) -> None:
    study, address = next(iter(endpoints(case).items()))
    other = sorted(case.others)[0]
    client = DICOMwebClient(url=address)
    nothing = [
        {"StudyInstanceUID": other},
        {"StudyInstanceUID": "*"},
        {"StudyInstanceUID": f"{study}\\{other}"},
        {"StudyInstanceUID": f"{study[:-1]}*"},
        {"PatientID": "*"},
        {"PatientID": "someone-else"},
        {"00100020": f"{case.mrn}*"},
    ]
    for filters in nothing:
        assert client.search_for_studies(search_filters=filters) == [], filters
    # OHIF's "other studies of this patient": only the bound one comes back
    same = client.search_for_studies(search_filters={"00100020": case.mrn}, limit=101, offset=0)
    assert uids(same, STUDY_UID) == [study]
    assert uids(client.search_for_studies(search_filters={"StudyInstanceUID": study}), STUDY_UID) == [study]
    assert client.search_for_series(study, search_filters={"StudyInstanceUID": other}) == []
    for path in (
        f"/studies/{other}/series",
        f"/studies/{other}/instances",
        f"/studies/{other}/series/{other}/instances",
    ):
        response = httpx.get(address + path, timeout=60)
        assert response.status_code == 403, (path, response.text)
        assert other not in response.text or "study" in response.json()["message"]


def test_limit_and_offset_page_within_the_study(case: Case) -> None:
    study, address = max(endpoints(case).items(), key=lambda item: sum(map(len, case.tree[item[0]].values())))
    every = sorted(i for s in case.tree[study].values() for i in s)
    base = f"{address}/studies/{study}/instances"
    pages = []
    for offset in range(0, len(every), 2):
        page = httpx.get(base, params={"limit": 2, "offset": offset}, timeout=60).json()
        assert 1 <= len(page) <= 2
        pages += uids(page, SOP_UID)
    assert sorted(pages) == every and len(pages) == len(every)
    for params, count in (
        ({"limit": 0}, 0),
        ({"offset": len(every)}, 0),
        ({"offset": 10**12}, 0),
        ({"limit": 10**12}, len(every)),
        ({"limit": 1, "offset": len(every) - 1}, 1),
    ):
        response = httpx.get(base, params=params, timeout=60)
        assert response.status_code == 200 and response.headers["content-type"] == "application/dicom+json"
        assert len(response.json()) == count, params
    for bad in ({"limit": -1}, {"offset": "x"}, {"NoSuchAttribute": "1"}, {"fuzzymatching": "sometimes"}):
        response = httpx.get(base, params=bad, timeout=60)
        assert response.status_code == 400 and response.json()["error"], bad


def test_matching_keys_and_includefield(case: Case) -> None:
    study, address = next(iter(endpoints(case).items()))
    series = httpx.get(f"{address}/studies/{study}/series", timeout=60).json()
    first = series[0]
    modality, number = first["00080060"]["Value"][0], first["00200011"]["Value"][0]
    by_modality = httpx.get(f"{address}/studies/{study}/series", params={"Modality": modality}, timeout=60)
    assert first[SERIES_UID] in [s[SERIES_UID] for s in by_modality.json()]
    assert all(s["00080060"]["Value"] == [modality] for s in by_modality.json())
    by_number = httpx.get(
        f"{address}/studies/{study}/series", params={"00200011": str(number)}, timeout=60
    ).json()
    assert first[SERIES_UID] in [s[SERIES_UID] for s in by_number]
    none = httpx.get(f"{address}/studies/{study}/series", params={"Modality": "NO-SUCH"}, timeout=60)
    assert none.status_code == 200 and none.json() == []
    full = httpx.get(
        f"{address}/studies", params={"includefield": "all", "fuzzymatching": "true"}, timeout=60
    ).json()
    plain = httpx.get(f"{address}/studies", timeout=60).json()
    assert uids(full, STUDY_UID) == [study] and set(full[0]) >= set(plain[0])
    described = httpx.get(f"{address}/studies", params={"includefield": "00081030"}, timeout=60).json()
    assert uids(described, STUDY_UID) == [study]
    refused = httpx.get(f"{address}/studies", headers={"Accept": "application/dicom+xml"}, timeout=60)
    assert refused.status_code == 406
