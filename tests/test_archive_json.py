"""Archive JSON we cannot trust: the pure layer (safe_json, json_model.clean_datasets) and the
dicom-web source behind a real server, against a fake archive answering hostile JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from smart_imaging.dicom import json_model as dj
from smart_imaging.dicom.safe_json import UnsafeJson, check_depth, loads

from .conftest import mock_patient
from .fake_archive import Answer, FakeArchive

# ---------------------------------------------------------------------- pure: safe_json


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_deep_nesting_is_refused_before_parsing() -> None:
    for raw in (nested(200_000), b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"[" * 200_000):
        with pytest.raises(UnsafeJson):
            loads(raw, max_bytes=10**7)


def test_nesting_bound() -> None:
    assert loads(nested(100), max_bytes=10**6) is not None
    check_depth(nested(10), 10)
    with pytest.raises(UnsafeJson, match="deeper"):
        check_depth(nested(21), 10)  # never more than twice the bound
    with pytest.raises(UnsafeJson, match="deeper"):
        check_depth(b'{"a":' * 30 + b"1" + b"}" * 30, 10)


def test_brackets_in_strings_and_escapes_do_not_count() -> None:
    tricky = json.dumps({"a": ["[[[[[[", '"]]]]', "\\", '\\"{{{{', "x\\\\"], "b": "}}}}"}).encode()
    check_depth(tricky, 2)
    assert loads(tricky, max_bytes=10**4)["b"] == "}}}}"
    check_depth(nested(3, '"' + "[" * 50 + '"'), 3)


def test_size_invalid_json_and_huge_numbers() -> None:
    with pytest.raises(UnsafeJson, match="larger"):
        loads(b"[1]" * 100, max_bytes=10)
    for raw in (b"[1,", b"\xff\xfe", b"{'a': 1}", b"[1]]"):
        with pytest.raises(UnsafeJson):
            loads(raw, max_bytes=100)
    with pytest.raises(UnsafeJson, match="number"):
        loads(b"[" + b"9" * 5000 + b"]", max_bytes=10**4)


# ---------------------------------------------------------------------- pure: DICOM JSON shape


def test_clean_datasets_drops_what_cannot_be_used() -> None:
    items: list[Any] = [
        {
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
            "00201208": {"vr": "IS", "Value": [float("inf"), 7, True, [1], {"x": 1}, 10**30]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}, {"Alphabetic": ["x"]}]},
            "00081030": {"vr": "LO", "Value": "not a list"},
            "nottag": {"vr": "LO", "Value": ["x"]},
            "00080060": {"vr": 5, "Value": ["CT"]},
            "00080020": "string instead of element",
            "00081199": {
                "vr": "SQ",
                "Value": [{"00081155": {"vr": "UI", "Value": [float("nan")]}}, "item", None],
            },
            "7FE00010": {"vr": "OW", "BulkDataURI": "http://127.0.0.1:8042/dicom-web/studies/1.2.3/bulk"},
            "00091001": {"vr": "OB", "InlineBinary": 12, "BulkDataURI": ["x"]},
        },
        "not a dataset",
        42,
    ]
    kept, dropped = dj.clean_datasets(items, lambda uri: "https://us/wado/b" + uri[uri.find("/studies/") :])
    assert len(kept) == 1
    ds = kept[0]
    assert ds["00201208"]["Value"] == [None, 7, None, None, None, None]
    assert ds["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}, None]
    assert set(ds) == {"0020000D", "00201208", "00100010", "00081199", "7FE00010", "00091001"}
    assert ds["00081199"]["Value"] == [{"00081155": {"vr": "UI", "Value": [None]}}, None, None]
    assert ds["7FE00010"]["BulkDataURI"] == "https://us/wado/b/studies/1.2.3/bulk"
    assert ds["00091001"] == {"vr": "OB"}
    assert dropped == 2 + 5 + 1 + 4 + 2 + 1 + 1
    assert dj.integer(ds, "00201208") is None and dj.text(ds, "0020000D") == "1.2.3"


def test_deep_sequences_are_walked_without_recursion() -> None:
    ds: dict[str, Any] = {"00100020": {"vr": "LO", "Value": [1e999]}}
    top = ds
    for _ in range(5000):
        ds = {"00081199": {"vr": "SQ", "Value": [ds]}}
    _kept, dropped = dj.clean_datasets([ds])
    assert dropped == 1 and top["00100020"]["Value"] == [None]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        (" 12 ", 12),
        ("-3", -3),
        (12.0, 12),
        (12.5, None),
        (float("inf"), None),
        (float("nan"), None),
        (True, None),
        ("²", None),
        ("1_000", None),
        ("9" * 30, None),
        (10**30, None),
        ([1], None),
    ],
)
def test_integer_reads_only_what_is_an_integer(value: Any, expected: int | None) -> None:
    assert dj.integer({"00201208": {"vr": "IS", "Value": [value]}}, "00201208") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.2.3\x00", "1.2.3"), (5, "5"), ([1, 2], None), ({"Alphabetic": ["x"]}, None), (True, None)],
)
def test_text_reads_only_strings_and_numbers(value: Any, expected: str | None) -> None:
    assert dj.text({"0020000D": {"vr": "UI", "Value": [value]}}, "0020000D") == expected


# ---------------------------------------------------------------------- through a real server

UID = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.2"
MRN = "MRN-A"


def study(uid: str = UID, mrn: str = MRN, **extra: Any) -> dict[str, Any]:
    return {
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00100020": {"vr": "LO", "Value": [mrn]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"Patient^{mrn}"}]},
        "00080020": {"vr": "DA", "Value": ["20240101"]},
        **extra,
    }


def series(uid: str = SERIES, study_uid: str = UID, **extra: Any) -> dict[str, Any]:
    return {
        "0020000D": {"vr": "UI", "Value": [study_uid]},
        "0020000E": {"vr": "UI", "Value": [uid]},
        "00080060": {"vr": "CS", "Value": ["CT"]},
        **extra,
    }


def instance(uid: str = "1.2.3.4.1", series_uid: str = SERIES) -> dict[str, Any]:
    return {
        "0020000D": {"vr": "UI", "Value": [UID]},
        "0020000E": {"vr": "UI", "Value": [series_uid]},
        "00080018": {"vr": "UI", "Value": [uid]},
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
    }


@pytest.fixture
def archive() -> Iterator[FakeArchive]:
    fake = FakeArchive().start()
    fake.route("/studies", Answer.json([study()]))
    fake.route(f"/studies/{UID}/series", Answer.json([series()]))
    fake.route(f"/studies/{UID}/instances", Answer.json([instance()]))
    yield fake
    fake.stop()


@pytest.fixture
def base(archive: FakeArchive, imaging_server: Callable[..., str]) -> str:
    images = {"type": "dicom-web", "endpoint": archive.url}
    return imaging_server(
        {
            "a": {"authorization": {"type": "mock", "patient": mock_patient("pat-a", MRN)}, "images": images},
            "all": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": {**images, "lookup": "all-studies-on-server"},
            },
        }
    )


def search(base: str, tenant: str = "a") -> httpx.Response:
    params = {"patient": "pat-a"} if tenant == "a" else {}
    return httpx.get(f"{base}/{tenant}/fhir/ImagingStudy", params=params, timeout=30)


def assert_502(response: httpx.Response, words: str) -> None:
    assert response.status_code == 502, response.text
    text = (
        response.json()["issue"][0]["diagnostics"]
        if "issue" in response.json()
        else response.json()["message"]
    )
    assert words in text, text
    assert "Traceback" not in response.text


HOSTILE_QIDO = {
    "huge number": (
        b'[{"0020000D":{"vr":"UI","Value":["%s"]},"00100020":{"vr":"LO","Value":["MRN-A"]},'
        b'"00201208":{"vr":"IS","Value":[1e999]}}]' % UID.encode()
    ),
    "NaN literal": (
        b'[{"0020000D":{"vr":"UI","Value":["%s"]},"00100020":{"vr":"LO","Value":["MRN-A"]},'
        b'"00201208":{"vr":"IS","Value":[NaN]}}]' % UID.encode()
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_QIDO))
def test_out_of_range_numbers_are_dropped_and_the_study_still_listed(
    archive: FakeArchive, base: str, case: str
) -> None:
    archive.route("/studies", Answer.raw_json(HOSTILE_QIDO[case]))
    response = search(base)
    assert response.status_code == 200, response.text
    (entry,) = response.json()["entry"][:1]
    assert entry["resource"]["id"] == UID
    assert entry["resource"]["numberOfInstances"] == 1  # counted from the instances listed


UNUSABLE_QIDO = {
    "nested 200,000 deep": (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    "unbalanced": (b"[" * 200_000, "unbalanced"),
    "a 5,000-digit number": (b"[" + b"7" * 5000 + b"]", "number out of range"),
    "not JSON": (b"<html>oops</html>", "not valid JSON"),
    "not a list": (b'{"0020000D": {"vr": "UI"}}', "unexpected document"),
    "latin-1 bytes": (b'[{"00100010":{"vr":"PN","Value":[{"Alphabetic":"M\xfcller"}]}}]', "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE_QIDO))
@pytest.mark.parametrize("level", ["/studies", f"/studies/{UID}/series", f"/studies/{UID}/instances"])
def test_unusable_qido_json_is_a_502(archive: FakeArchive, base: str, case: str, level: str) -> None:
    raw, words = UNUSABLE_QIDO[case]
    archive.route(level, Answer.raw_json(raw))
    assert_502(search(base), words)


def test_wrong_shapes_are_dropped_not_500(archive: FakeArchive, base: str) -> None:
    archive.route(
        "/studies",
        Answer.json(
            [
                "not a study",
                [1, 2],
                {
                    **study(),
                    "00081030": {"vr": "LO", "Value": {"x": 1}},
                    "00080020": {"vr": "DA", "Value": [[1]]},
                },
                {"0020000D": {"vr": "UI", "Value": [{"Alphabetic": 5}]}},
            ]
        ),
    )
    archive.route(
        f"/studies/{UID}/series", Answer.json([{**series(), "00200011": {"vr": "IS", "Value": ["1e999"]}}])
    )
    response = search(base)
    assert response.status_code == 200, response.text
    studies = [
        e["resource"] for e in response.json()["entry"] if e["resource"]["resourceType"] == "ImagingStudy"
    ]
    assert [s["id"] for s in studies] == [UID]
    assert "started" not in studies[0] and "description" not in studies[0]


def test_another_patients_studies_and_series_are_never_shown(archive: FakeArchive, base: str) -> None:
    other_uid = "1.2.826.0.1.3680043.8.498.99"
    other_series = "1.2.826.0.1.3680043.8.498.98"
    # the archive ignores PatientID and widens wildcards: it answers everyone's studies
    archive.route(
        "/studies", Answer.json([study(), study(other_uid, "MRN-B"), study(other_uid + "1", "MRN-A*")])
    )
    # and files another study's (another patient's) series under the patient's study
    archive.route(
        f"/studies/{UID}/series",
        Answer.json(
            [
                series(),
                series(other_series, other_uid),
                {**series(other_series + "1"), "00100020": {"vr": "LO", "Value": ["MRN-B"]}},
            ]
        ),
    )
    archive.route(f"/studies/{other_uid}", Answer(body=b"must never be asked"))
    response = search(base)
    assert response.status_code == 200
    assert (
        "MRN-B" not in response.text and other_uid not in response.text and other_series not in response.text
    )
    studies = [
        e["resource"] for e in response.json()["entry"] if e["resource"]["resourceType"] == "ImagingStudy"
    ]
    assert [s["id"] for s in studies] == [UID]
    assert [s["uid"] for s in studies[0]["series"]] == [SERIES]


@pytest.mark.parametrize("level", ["series", "instances"])
def test_a_listed_study_whose_series_are_404_is_a_502(archive: FakeArchive, base: str, level: str) -> None:
    archive.route(f"/studies/{UID}/{level}", Answer(status=404, body=b"{}", framing="length"))
    assert_502(search(base), f"404 to a QIDO-RS search for {level}")


def test_an_archive_without_studies_resource_is_a_502(archive: FakeArchive, base: str) -> None:
    archive.routes.clear()
    assert_502(search(base, "all"), "404")


def endpoint(base: str) -> str:
    bundle = search(base).json()
    return str(bundle["entry"][0]["resource"]["contained"][0]["address"])


METADATA_UNUSABLE = {
    "nested": (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    "not a list": (b'{"a": 1}', "unexpected document"),
    "garbage": (b"\x00\x01garbage", "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(METADATA_UNUSABLE))
def test_unusable_metadata_is_a_502(archive: FakeArchive, base: str, case: str) -> None:
    address = endpoint(base)
    raw, words = METADATA_UNUSABLE[case]
    archive.route(f"/studies/{UID}/metadata", Answer.raw_json(raw))
    response = httpx.get(f"{address}/studies/{UID}/metadata", timeout=30)
    assert_502(response, words)
    assert response.json()["error"] == "bad_gateway"


def test_metadata_is_cleaned_and_never_carries_another_patient_or_the_archive_address(
    archive: FakeArchive, base: str
) -> None:
    address = endpoint(base)
    mine = {
        **series(),
        "00100020": {"vr": "LO", "Value": [MRN]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4.1"]},
        "00280030": {"vr": "DS", "Value": [0.5, 1e999]},
        "00081190": {
            "vr": "UR",
            "Value": [f"{archive.url}/studies/{UID}/series/{SERIES}/instances/1.2.3.4.1"],
        },
        "7FE00010": {
            "vr": "OW",
            "BulkDataURI": f"{archive.url}/studies/{UID}/series/{SERIES}/instances/1.2.3.4.1/bulk/7FE00010",
        },
    }
    theirs = {
        **series(),
        "00100020": {"vr": "LO", "Value": ["MRN-B"]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4.2"]},
    }
    raw = json.dumps([mine, theirs]).replace("Infinity", "1e999").encode()
    archive.route(f"/studies/{UID}/metadata", Answer.raw_json(raw))
    response = httpx.get(f"{address}/studies/{UID}/metadata", timeout=30)
    assert response.status_code == 200, response.text
    assert "MRN-B" not in response.text and "1.2.3.4.2" not in response.text
    assert "127.0.0.1:" + archive.url.split(":")[2].split("/")[0] not in response.text
    (instance,) = response.json()
    assert instance["00280030"]["Value"] == [0.5, None]
    assert instance["00081190"]["Value"] == [f"{address}/studies/{UID}/series/{SERIES}/instances/1.2.3.4.1"]
    assert (
        instance["7FE00010"]["BulkDataURI"]
        == f"{address}/studies/{UID}/series/{SERIES}/instances/1.2.3.4.1/bulk/7FE00010"
    )


def test_an_oversized_qido_answer_is_a_502(
    archive: FakeArchive, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smart_imaging.sources import dicomweb

    monkeypatch.setattr(dicomweb, "MAX_QIDO", 1000)
    archive.route(
        "/studies",
        Answer.json([study(**{f"0009{i:04X}": {"vr": "LO", "Value": ["x" * 50]} for i in range(100)})]),
    )
    assert_502(search(base), "size limit")
