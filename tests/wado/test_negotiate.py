"""Accept negotiation shared by every source (PS3.18 8.7.3): instances, frames, metadata (pure)."""

from __future__ import annotations

import pytest

from smart_imaging.errors import NotAcceptable
from smart_imaging.wado.negotiate import (
    FrameTarget,
    check_bulkdata,
    check_metadata,
    frame_target,
    instance_syntaxes,
)

ELE, ILE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
JPEG, JLS, J2K, J2KL, RLE = (
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
)
DICOM = 'multipart/related; type="application/dicom"'


def dicom(*syntaxes: str) -> str:
    return ", ".join(f"{DICOM}; transfer-syntax={s}" for s in syntaxes)


@pytest.mark.parametrize("accept", [None, "", DICOM, dicom("*"), "*/*", f"{dicom(ELE)}, {dicom('*')}"])
def test_no_syntax_or_star_keeps_what_is_stored(accept: str | None) -> None:
    assert instance_syntaxes(accept).choose(J2K) == J2K


def test_the_stored_syntax_wins_among_those_named() -> None:
    wanted = instance_syntaxes(dicom(ELE, JPEG))
    assert wanted.choose(JPEG) == JPEG  # JPEG Baseline kept as is
    assert wanted.choose(J2K) == ELE  # what a browser cannot draw: transcoded
    assert wanted.choose(ILE) == ELE


def test_quality_orders_the_choices() -> None:
    wanted = instance_syntaxes(f"{DICOM}; transfer-syntax={ELE}; q=0.5, {DICOM}; transfer-syntax={RLE}")
    assert wanted.choose(ELE) == RLE  # a better q beats keeping the stored syntax
    assert wanted.candidates(JLS) == [RLE, ELE]


def test_no_feasible_syntax_is_406() -> None:
    with pytest.raises(NotAcceptable):
        instance_syntaxes(dicom(JPEG)).choose(ELE)  # no JPEG Baseline encoder: never made up
    assert instance_syntaxes(dicom(JPEG)).choose(JPEG) == JPEG
    with pytest.raises(NotAcceptable):
        instance_syntaxes("application/json")


def test_forwarded_accept_names_every_syntax_in_order() -> None:
    wanted = instance_syntaxes(f"{dicom(ELE, JPEG)}, {DICOM}; transfer-syntax={RLE}; q=0.4")
    assert wanted.accept_header() == (
        f"{DICOM}; transfer-syntax={ELE}, {DICOM}; transfer-syntax={JPEG}, {DICOM}; transfer-syntax={RLE}; q=0.9"
    )
    assert instance_syntaxes(None).accept_header() == f"{DICOM}; transfer-syntax=*"


OCTET = 'multipart/related; type="application/octet-stream"'


@pytest.mark.parametrize(
    ("accept", "stored", "target"),
    [
        (None, J2K, FrameTarget(J2K, "image/jp2")),
        ("*/*", J2K, FrameTarget(J2K, "image/jp2")),
        (f"{OCTET}; transfer-syntax=*", JLS, FrameTarget(JLS, "image/jls")),
        (OCTET, JLS, FrameTarget(ELE, "application/octet-stream")),  # PS3.18: uncompressed
        (f"{OCTET}; transfer-syntax={ILE}", ILE, FrameTarget(ELE, "application/octet-stream")),
        ('multipart/related; type="image/jls"', ELE, FrameTarget(JLS, "image/jls")),
        (f'multipart/related; type="image/jp2"; transfer-syntax={J2K}', JLS, FrameTarget(J2K, "image/jp2")),
        ('multipart/related; type="image/jpeg"', JPEG, FrameTarget(JPEG, "image/jpeg")),
        (f'multipart/related; type="image/jpeg", {OCTET}', J2K, FrameTarget(ELE, "application/octet-stream")),
    ],
)
def test_frame_targets(accept: str | None, stored: str, target: FrameTarget) -> None:
    assert frame_target(accept, stored) == target


@pytest.mark.parametrize(
    ("accept", "stored"),
    [
        ('multipart/related; type="image/jpeg"', ELE),  # no lossy encoder
        (f'multipart/related; type="image/jp2"; transfer-syntax={JLS}', ELE),  # syntax of another type
        ("application/dicom+json", ELE),
    ],
)
def test_frames_that_cannot_be_made_are_406(accept: str, stored: str) -> None:
    with pytest.raises(NotAcceptable):
        frame_target(accept, stored)


def test_metadata_and_bulk_data_media_types() -> None:
    for ok in (None, "application/dicom+json", "application/json", "*/*", "application/*"):
        check_metadata(ok)
    for refused in ('multipart/related; type="application/dicom+json"', "application/dicom", "image/jpeg"):
        with pytest.raises(NotAcceptable):
            check_metadata(refused)
    check_bulkdata(OCTET)
    with pytest.raises(NotAcceptable):
        check_bulkdata("application/dicom+json")
