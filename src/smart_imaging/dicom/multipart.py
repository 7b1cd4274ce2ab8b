"""``multipart/related`` bodies as WADO-RS uses them (PS3.18 8.6.1.2, RFC 2387). Pure.

The encoder yields parts one by one so callers can stream; the decoder is for tests and for
sources that read multipart from somewhere else.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

CRLF = b"\r\n"


def new_boundary() -> str:
    return "smart-imaging-" + secrets.token_hex(16)


def content_type(boundary: str, part_type: str = "application/dicom", **params: str) -> str:
    extra = "".join(f'; {k.replace("_", "-")}="{v}"' for k, v in params.items())
    return f'multipart/related; type="{part_type}"; boundary={boundary}{extra}'


def part_head(boundary: str, part_type: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"--{boundary}", f"Content-Type: {part_type}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def part_tail() -> bytes:
    return CRLF


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("ascii")


def encode(boundary: str, part_type: str, bodies: list[bytes]) -> bytes:
    out = b"".join(part_head(boundary, part_type) + body + part_tail() for body in bodies)
    return out + closing(boundary)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def boundary_of(media_type: str) -> str | None:
    m = _BOUNDARY.search(media_type)
    return m.group(1).strip() if m else None


def decode(media_type: str, body: bytes) -> Iterator[tuple[dict[str, str], bytes]]:
    """Split a whole multipart body into (headers, payload) pairs."""
    boundary = boundary_of(media_type)
    if not boundary:
        raise ValueError("multipart media type without boundary")
    delimiter = b"--" + boundary.encode("ascii")
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(CRLF) else chunk
        head, _, payload = chunk.partition(CRLF + CRLF)
        if payload.endswith(CRLF):
            payload = payload[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        yield headers, payload
