"""PartSplitter: whole parts out of a multipart arriving in chunks of any size (pure)."""

from __future__ import annotations

import random

import pytest

from smart_imaging.dicom import multipart
from smart_imaging.dicom.multipart_stream import MultipartError
from smart_imaging.wado.parts import PartSplitter

BODIES = [b"", b"x", bytes(range(256)) * 20, b"\r\n--not-the-boundary\r\n" * 3]


def _split(body: bytes, boundary: str, size: int, limit: int = 1 << 20) -> list[bytes]:
    splitter = PartSplitter(boundary, limit)
    found = []
    for at in range(0, len(body), size):
        found += [p.body for p in splitter.feed(body[at : at + size])]
    splitter.close()
    return found


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, 1 << 20])
def test_parts_come_out_whole_whatever_the_chunking(size: int) -> None:
    boundary = multipart.new_boundary()
    body = b"preamble\r\n" + multipart.encode(boundary, "application/dicom", BODIES) + b"epilogue"
    assert _split(body, boundary, size) == BODIES


def test_headers_are_read() -> None:
    boundary = "b0"
    body = (
        b"--b0\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n"
        b"Content-Location: x\r\n\r\nDATA\r\n--b0--"
    )
    (part,) = PartSplitter(boundary, 100).feed(body)
    assert part.content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    assert part.headers["content-location"] == "x" and part.body == b"DATA"


def test_a_body_without_its_closing_delimiter_fails() -> None:
    boundary = multipart.new_boundary()
    whole = multipart.encode(boundary, "application/dicom", [b"a" * 100, b"b" * 100])
    cut = whole[: whole.rindex(b"--" + boundary.encode())]
    with pytest.raises(MultipartError):
        _split(cut, boundary, 10)
    with pytest.raises(MultipartError):
        _split(b"", boundary, 10)


def test_a_part_larger_than_the_limit_fails_before_it_is_held() -> None:
    boundary = multipart.new_boundary()
    body = multipart.encode(boundary, "application/dicom", [random.randbytes(200_000)])
    with pytest.raises(MultipartError):
        _split(body, boundary, 4096, limit=100_000)
