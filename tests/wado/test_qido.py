"""QIDO-RS requests and answers under an Endpoint: parsing, scope, matching, paging (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from smart_imaging.dicom import tags
from smart_imaging.errors import BadRequest
from smart_imaging.wado.matching import answer
from smart_imaging.wado.qido import QidoRequest, attribute_tag

STUDY, OTHER, MRN = "1.2.3", "1.2.4", "MRN-1"


def el(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def study(uid: str = STUDY, mrn: str = MRN, **more: dict[str, Any]) -> dict[str, Any]:
    return {
        tags.StudyInstanceUID: el("UI", uid),
        tags.PatientID: el("LO", mrn),
        tags.StudyDate: el("DA", "20240115"),
        tags.ModalitiesInStudy: el("CS", "CT", "SR"),
        tags.PatientName: el("PN", {"Alphabetic": "Chen^Ava"}),
        **more,
    }


def series(uid: str, number: int, modality: str) -> dict[str, Any]:
    return {
        tags.SeriesInstanceUID: el("UI", uid),
        tags.SeriesNumber: el("IS", number),
        tags.Modality: el("CS", modality),
        tags.SeriesDescription: el("LO", f"Series {number}"),
    }


def q(level: str = "studies", **params: str) -> QidoRequest:
    return QidoRequest.parse(level, list(params.items()))  # type: ignore[arg-type]


def test_parse_keys_by_keyword_or_tag_and_controls() -> None:
    request = QidoRequest.parse(
        "series",
        [
            ("00100020", "MRN-1"),
            ("Modality", "CT"),
            ("includefield", "00081030,SeriesDescription"),
            ("includefield", "all"),
            ("limit", "101"),
            ("offset", "0"),
            ("fuzzymatching", "false"),
        ],
        STUDY,
    )
    assert request.keys == ((tags.PatientID, "MRN-1"), (tags.Modality, "CT"))
    assert request.include == (tags.StudyDescription, tags.SeriesDescription) and request.include_all
    assert (request.limit, request.offset, request.fuzzy, request.study_uid) == (101, 0, False, STUDY)
    query = request.query(STUDY, MRN, "https://us/wado/b")
    assert query.all_fields and tags.Modality in query.fields and tags.SeriesInstanceUID in query.fields


@pytest.mark.parametrize(
    "params",
    [
        [("NoSuchKeyword", "x")],
        [("00081250.0020000D", "1.2")],
        [("Modality", "CT"), ("00080060", "MR")],
        [("limit", "-1")],
        [("limit", "ten")],
        [("offset", "1"), ("offset", "2")],
        [("fuzzymatching", "maybe")],
        [("includefield", "Bogus")],
        [("PatientName", "a\nb")],
    ],
)
def test_invalid_queries_are_400(params: list[tuple[str, str]]) -> None:
    with pytest.raises(BadRequest):
        QidoRequest.parse("studies", params)


def test_attribute_names() -> None:
    assert attribute_tag("StudyInstanceUID") == attribute_tag("0020000d") == tags.StudyInstanceUID
    with pytest.raises(BadRequest):
        attribute_tag("studyinstanceuid")  # keywords are case-sensitive (PS3.6)


def test_bad_path_uids_are_400() -> None:
    with pytest.raises(BadRequest):
        QidoRequest.parse("series", [], "1.02.3")


def test_only_the_bound_study_ever_comes_back() -> None:
    found = [study(), study(OTHER, "MRN-2"), study(OTHER, MRN), {tags.PatientID: el("LO", MRN)}]
    assert answer(q(), found, STUDY, MRN) == [study()]
    assert answer(q(), found, STUDY, None) == [study()]  # no MRN bound: still this study only
    assert answer(q(), [study(STUDY, "MRN-2")], STUDY, MRN) == []  # another patient under the UID


@pytest.mark.parametrize(
    "params",
    [
        {"StudyInstanceUID": OTHER},
        {"StudyInstanceUID": "*"},
        {"StudyInstanceUID": "1.2.*"},
        {"StudyInstanceUID": f"{STUDY}\\{OTHER}"},
        {"PatientID": "MRN-2"},
        {"PatientID": "MRN*"},
        {"00100020": "*"},
        {"PatientID": f"{MRN}\\MRN-2"},
    ],
)
def test_queries_naming_other_studies_or_widening_get_nothing(params: dict[str, str]) -> None:
    assert answer(q(**params), [study()], STUDY, MRN) == []


def test_the_patients_other_studies_query_of_ohif_gets_the_bound_study() -> None:
    request = q(**{"00100020": MRN, "limit": "101", "offset": "0", "fuzzymatching": "false"})
    assert answer(request, [study()], STUDY, MRN) == [study()]
    assert answer(q(StudyInstanceUID=STUDY), [study()], STUDY, MRN) == [study()]


def test_a_literal_wildcard_mrn_matches_only_itself() -> None:
    odd = study(STUDY, "7765*")
    assert answer(q(PatientID="7765*"), [odd], STUDY, "7765*") == [odd]
    assert answer(q(PatientID="7765?"), [odd], STUDY, "7765*") == []


@pytest.mark.parametrize(
    ("params", "hit"),
    [
        ({"StudyDate": "20240115"}, True),
        ({"StudyDate": "20240101-20240131"}, True),
        ({"StudyDate": "-20231231"}, False),
        ({"StudyDate": "20240116-"}, False),
        ({"ModalitiesInStudy": "SR"}, True),
        ({"ModalitiesInStudy": "MR"}, False),
        ({"PatientName": "Chen*"}, True),
        ({"PatientName": "chen*"}, False),
        ({"PatientName": "chen*", "fuzzymatching": "true"}, True),
        ({"PatientName": "Ch?n^Ava"}, True),
        ({"PatientName": ""}, True),
        ({"AccessionNumber": "A1"}, True),  # absent from the record: not held against it
        ({"StudyDescription": "CT"}, False),
    ],
)
def test_attribute_matching(params: dict[str, str], hit: bool) -> None:
    record = study(**{tags.StudyDescription: el("LO")})
    assert answer(q(**params), [record], STUDY, MRN) == ([record] if hit else [])


def test_series_matching_and_uid_lists_within_the_study() -> None:
    found = [series("1.2.3.1", 1, "CT"), series("1.2.3.2", 2, "SR"), series("1.2.3.3", 10, "CT")]
    assert len(answer(q("series", Modality="CT"), found, STUDY, MRN)) == 2
    assert len(answer(q("series", SeriesNumber="10"), found, STUDY, MRN)) == 1
    listed = answer(q("series", SeriesInstanceUID="1.2.3.1\\1.2.3.3\\9.9"), found, STUDY, MRN)
    assert [r[tags.SeriesInstanceUID]["Value"][0] for r in listed] == ["1.2.3.1", "1.2.3.3"]
    assert all(r[tags.StudyInstanceUID]["Value"] == [STUDY] for r in listed)  # filed under the study
    foreign = {**series("1.2.3.4", 4, "CT"), tags.StudyInstanceUID: el("UI", OTHER)}
    stranger = {**series("1.2.3.5", 5, "CT"), tags.PatientID: el("LO", "MRN-2")}
    assert answer(q("series"), [foreign, stranger], STUDY, MRN) == []


@pytest.mark.parametrize(
    ("limit", "offset", "count"),
    [
        (None, "0", 5),
        ("2", "0", 2),
        ("2", "4", 1),
        ("0", "0", 0),
        (None, "5", 0),
        ("1" + "0" * 11, "999999999999", 0),
    ],
)
def test_limit_and_offset(limit: str | None, offset: str, count: int) -> None:
    found = [series(f"1.2.3.{n}", n, "CT") for n in range(1, 6)]
    params = {"offset": offset, **({"limit": limit} if limit is not None else {})}
    assert len(answer(q("series", **params), found, STUDY, MRN)) == count
