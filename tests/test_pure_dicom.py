"""Pure DICOM helpers: dates, UIDs, Accept headers, multipart bodies, WADO paths."""

from __future__ import annotations

import pytest

from smart_imaging.dicom import multipart
from smart_imaging.dicom.datetime import fhir_datetime
from smart_imaging.dicom.media import normalize
from smart_imaging.dicom.uid import is_valid_uid
from smart_imaging.errors import BadRequest, NotFound
from smart_imaging.wado import WadoRequest


@pytest.mark.parametrize(
    ("da", "tm", "tz", "expected"),
    [
        ("20240131", "134501", "+0100", "2024-01-31T13:45:01+01:00"),
        ("20240131", "1345", "-0500", "2024-01-31T13:45:00-05:00"),
        ("20240131", "134501.123", "+0000", "2024-01-31T13:45:01.123+00:00"),
        ("20240131", "134501", None, "2024-01-31"),  # no offset: a time cannot be placed
        ("20240131", None, "+0100", "2024-01-31"),
        ("2024.01.31", None, None, "2024-01-31"),
        ("garbage", "1200", "+0000", None),
        (None, None, None, None),
        ("20240131", "256199", "+0000", "2024-01-31"),
    ],
)
def test_fhir_datetime(da: str | None, tm: str | None, tz: str | None, expected: str | None) -> None:
    assert fhir_datetime(da, tm, tz) == expected


@pytest.mark.parametrize(
    ("uid", "ok"),
    [
        ("1.2.840.10008.1.2", True),
        ("2.25.1234", True),
        ("1.02.3", False),
        ("1..2", False),
        ("1.2.", False),
        ("abc", False),
        ("1.2.3/../4", False),
        ("1." + "1" * 70, False),
        ("1", False),
    ],
)
def test_uid_syntax(uid: str, ok: bool) -> None:
    assert is_valid_uid(uid) is ok


def test_accept_quotes_type_and_keeps_q() -> None:
    assert (
        normalize("multipart/related; type=application/dicom", "x")
        == 'multipart/related; type="application/dicom"'
    )
    assert (
        normalize('multipart/related; type="application/dicom"; transfer-syntax=*', "x")
        == 'multipart/related; type="application/dicom"; transfer-syntax="*"'
    )
    assert normalize("image/png;q=0.5, image/jpeg", "x") == "image/png; q=0.5, image/jpeg"
    assert normalize(None, "default/type") == "default/type"
    assert normalize("not a media type", "d/t") == "d/t"
    assert normalize("a/b\r\nX-Injected: 1", "d/t") == "d/t"


def test_multipart_round_trip() -> None:
    boundary = multipart.new_boundary()
    body = multipart.encode(boundary, "application/dicom", [b"one\r\n--x", b"two"])
    parts = list(multipart.decode(multipart.content_type(boundary), body))
    assert [p for _, p in parts] == [b"one\r\n--x", b"two"]
    assert all(h["content-type"] == "application/dicom" for h, _ in parts)


def test_wado_paths() -> None:
    req = WadoRequest.parse("1.2/series/1.3/instances/1.4/frames/1,2", (), "b")
    assert (req.study_uid, req.series_uid, req.instance_uid, req.frames, req.resource) == (
        "1.2",
        "1.3",
        "1.4",
        (1, 2),
        "frames",
    )
    assert WadoRequest.parse("1.2/metadata", (), "b").resource == "metadata"
    assert WadoRequest.parse("1.2/series/1.3/rendered", (), "b").resource == "rendered"
    bulk = WadoRequest.parse("1.2/series/1.3/instances/1.4/bulk/7fe00010", (), "b")
    assert (bulk.resource, bulk.bulkdata_path) == ("bulkdata", "7fe00010")
    for bad in (
        "1.2/../1.3",
        "1.2/series",
        "1.2/studies/1.3",
        "1.2/metadata/x",
        "1.2//series/1.3",
        "1.2/series/1.3/instances/1.4/bulk/../../x",
    ):
        with pytest.raises(NotFound):
            WadoRequest.parse(bad, (), "b")
    for bad in (
        "1.02",
        "1.2/series/abc",
        "1.2/series/1.3/instances/1.4/frames/0",
        "1.2/series/1.3/instances/1.4/frames/x",
    ):
        with pytest.raises(BadRequest):
            WadoRequest.parse(bad, (), "b")
