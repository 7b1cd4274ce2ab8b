"""WadoRequest: our URL parsed, the archive's path built from it, archive URLs rebased (pure)."""

from __future__ import annotations

import pytest

from smart_imaging.errors import BadRequest, NotFound
from smart_imaging.wado import WadoRequest, rebase

S, E, N = "1.2.3", "1.2.3.4", "1.2.3.4.5"


@pytest.mark.parametrize(
    ("rest", "resource", "frames"),
    [
        (S, "", ()),
        (f"{S}/metadata", "metadata", ()),
        (f"{S}/rendered", "rendered", ()),
        (f"{S}/series/{E}", "", ()),
        (f"{S}/series/{E}/thumbnail", "thumbnail", ()),
        (f"{S}/series/{E}/instances/{N}", "", ()),
        (f"{S}/series/{E}/instances/{N}/metadata", "metadata", ()),
        (f"{S}/series/{E}/instances/{N}/frames/1,3", "frames", (1, 3)),
        (f"{S}/series/{E}/instances/{N}/frames/2/rendered", "rendered", (2,)),
        (f"{S}/series/{E}/instances/{N}/bulk/7FE00010", "bulkdata", ()),
    ],
)
def test_parse_then_path_round_trips(rest: str, resource: str, frames: tuple[int, ...]) -> None:
    request = WadoRequest.parse(rest, (("quality", "80"),), "https://us/t/wado/b")
    assert (request.resource, request.frames) == (resource, frames)
    assert request.path() == f"/studies/{rest}"
    assert request.params == (("quality", "80"),) and request.public_base == "https://us/t/wado/b"


@pytest.mark.parametrize(
    "rest",
    [
        f"{S}/",
        f"{S}//metadata",
        f"{S}/instances",
        f"{S}/series",
        f"{S}/series/{E}/instances/{N}/frames/1/metadata",
        f"{S}/series/{E}/instances/{N}/bulk/xyz",
        f"{S}/metadata/rendered",
        f"{S}/../{E}",
    ],
)
def test_paths_that_name_no_resource_are_404(rest: str) -> None:
    with pytest.raises(NotFound):
        WadoRequest.parse(rest)


@pytest.mark.parametrize(
    "rest",
    [
        "1.02.3",
        "1.2.3%0A",
        "1.2.3\n",
        "٣.2",
        f"{S}/series/x",
        f"{S}/series/{E}/instances/{N}/frames/0",
        f"{S}/series/{E}/instances/{N}/frames/+1",
        f"{S}/series/{E}/instances/{N}/frames/1_0",
        f"{S}/series/{E}/instances/{N}/frames/٣",
        f"{S}/series/{E}/instances/{N}/frames/" + ",".join(["1"] * 10_001),
    ],
)
def test_bad_uids_and_frame_numbers_are_400(rest: str) -> None:
    with pytest.raises(BadRequest):
        WadoRequest.parse(rest)


def test_rebase_keeps_the_resource_path_under_our_base() -> None:
    base = "https://us/t/wado/b"
    assert (
        rebase(f"http://orthanc:8042/dicom-web/studies/{S}/series/{E}", base)
        == f"{base}/studies/{S}/series/{E}"
    )
    assert rebase("http://orthanc:8042/dicom-web/instances/x", base) is None
    assert rebase(f"http://o/studies/{S}\r\nX: y", base) is None
    assert rebase(f"http://o/studies/{S}", "") is None
