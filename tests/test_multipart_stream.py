"""The multipart relay (pure): complete bodies pass unchanged however they are chunked; cut,
unterminated or malformed bodies always raise; part headers are rewritten."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_imaging.dicom import multipart
from smart_imaging.dicom.multipart_stream import MultipartError, MultipartRelay

B = "c39523a1-c9b1-4af9-83c7-7deca4fa973c"


def body(parts: list[bytes], lengths: bool = True, close: bool = True, location: str | None = None) -> bytes:
    out = b""
    for i, payload in enumerate(parts):
        head = f"--{B}\r\nContent-Type: application/dicom\r\n"
        if lengths:
            head += f"Content-Length: {len(payload)}\r\n"
        if location:
            head += f"Content-Location: {location}/{i}\r\n"
        out += head.encode() + b"\r\n" + payload + b"\r\n"
    return out + (f"--{B}--\r\n".encode() if close else b"")


def relay_all(data: bytes, cuts: list[int], relay: MultipartRelay | None = None) -> bytes:
    relay = relay or MultipartRelay(B)
    out: list[bytes] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        out += relay.feed(data[start:cut])
        start = cut
    relay.close()
    return b"".join(out)


PAYLOAD = st.binary(max_size=300) | st.just(b"\r\n--" + B[:-1].encode()) | st.just(b"\r\n\r\n--")


@settings(max_examples=300, derandomize=True)
@given(
    parts=st.lists(PAYLOAD, max_size=5),
    lengths=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_a_complete_body_passes_unchanged_however_it_is_chunked(
    parts: list[bytes], lengths: bool, cuts: list[int]
) -> None:
    data = body(parts, lengths)
    relay = MultipartRelay(B)
    assert relay_all(data, [c for c in cuts if c <= len(data)], relay) == data
    assert relay.complete and relay.parts == len(parts)
    assert [p for _, p in multipart.decode(f"multipart/related; boundary={B}", data)] == parts


@settings(max_examples=300, derandomize=True)
@given(
    parts=st.lists(PAYLOAD, min_size=1, max_size=4),
    lengths=st.booleans(),
    data=st.data(),
)
def test_every_cut_of_a_body_raises(parts: list[bytes], lengths: bool, data: st.DataObject) -> None:
    whole = body(parts, lengths)
    # anything shorter than "...--boundary--" is incomplete (the final CRLF is epilogue)
    cut = whole[: data.draw(st.integers(min_value=0, max_value=len(whole) - 3))]
    chunking = data.draw(st.lists(st.integers(min_value=0, max_value=len(cut)), max_size=5))
    with pytest.raises(MultipartError):
        relay_all(cut, chunking)


def test_a_body_without_its_closing_delimiter_raises() -> None:
    with pytest.raises(MultipartError, match="without a closing delimiter"):
        relay_all(body([b"a" * 100, b"b" * 100], lengths=False, close=False), [50, 150])
    with pytest.raises(MultipartError, match="no multipart delimiter"):
        relay_all(b"<html>502 Bad Gateway</html>", [])
    with pytest.raises(MultipartError, match="no multipart delimiter"):
        relay_all(b"", [])


def test_a_part_shorter_or_longer_than_its_content_length_raises() -> None:
    data = body([b"x" * 10]).replace(b"Content-Length: 10", b"Content-Length: 12")
    with pytest.raises(MultipartError, match="Content-Length"):
        relay_all(data, [])
    data = body([b"x" * 10]).replace(b"Content-Length: 10", b"Content-Length: 8")
    with pytest.raises(MultipartError, match="longer than its Content-Length"):
        relay_all(data, [3])
    with pytest.raises(MultipartError, match="invalid Content-Length"):
        relay_all(
            body([b"x"]).replace(b"Content-Length: 1", b"Content-Length: \xb2".decode("latin-1").encode()), []
        )


def test_malformed_delimiters_and_headers_raise() -> None:
    with pytest.raises(MultipartError, match="malformed delimiter"):
        relay_all(f"--{B}junk\r\n\r\nx\r\n--{B}--".encode(), [])
    with pytest.raises(MultipartError, match="malformed header"):
        relay_all(f"--{B}\r\nno colon here\r\n\r\nx\r\n--{B}--".encode(), [])
    with pytest.raises(MultipartError, match="exceed"):
        relay_all(f"--{B}\r\nX: {'y' * 70000}\r\n\r\nx\r\n--{B}--".encode(), [1000, 5000])
    with pytest.raises(MultipartError, match="inside the headers"):
        relay_all(f"--{B}\r\nContent-Type: application/dicom\r\n".encode(), [])
    with pytest.raises(MultipartError, match="boundary"):
        MultipartRelay("")
    with pytest.raises(MultipartError, match="boundary"):
        MultipartRelay("bé")


def test_the_closing_delimiter_ends_the_relay_and_the_epilogue_is_dropped() -> None:
    relay = MultipartRelay(B)
    out = relay.feed(body([b"abc"]) + b"epilogue that never ends" * 10)
    assert relay.complete
    assert b"".join(out) == body([b"abc"])
    assert relay.feed(b"more") == []
    relay.close()


def test_a_part_without_headers_and_transport_padding_are_accepted_and_the_preamble_dropped() -> None:
    data = f"preamble\r\n--{B}  \r\n\r\nabc\r\n--{B}--".encode()
    assert relay_all(data, [12, 13]) == f"--{B}\r\n\r\nabc\r\n--{B}--\r\n".encode()


def test_a_body_that_is_no_multipart_fails_before_anything_is_passed_on() -> None:
    relay = MultipartRelay(B)
    assert relay.feed(b"<html>" + b"x" * 60000) == []
    with pytest.raises(MultipartError, match="no multipart delimiter in the first"):
        relay.feed(b"x" * 10000)


def test_content_location_is_rewritten_or_dropped() -> None:
    data = body([b"one", b"two"], location="http://127.0.0.1:8042/dicom-web/studies/1.2/series/3")

    def rewrite(name: str, value: str) -> str | None:
        if name != "content-location":
            return value
        return (
            None if value.endswith("/1") else "https://us.example/wado/b" + value[value.find("/studies/") :]
        )

    out = relay_all(data, [40, 41, 42, 120], MultipartRelay(B, rewrite))
    assert b"127.0.0.1" not in out
    assert b"Content-Location: https://us.example/wado/b/studies/1.2/series/3/0\r\n" in out
    assert out.count(b"Content-Location") == 1
    assert [p for _, p in multipart.decode(f"multipart/related; boundary={B}", out)] == [b"one", b"two"]


def test_big_parts_pass_as_the_chunks_that_came_in() -> None:
    """No buffering of part bodies: a chunk inside a part comes out as the same object."""
    payload = bytes(range(256)) * 8192  # 2 MiB
    data = body([payload], lengths=False)
    relay = MultipartRelay(B)
    head = data.index(b"\r\n\r\n") + 4
    assert relay.feed(data[:head])
    middle = data[head : head + 1_000_000]
    assert relay.feed(middle)[0] is middle
    relay.feed(data[head + 1_000_000 :])
    relay.close()
