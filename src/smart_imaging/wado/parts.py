"""Whole parts of a ``multipart/related`` body that arrives in chunks (RFC 2046 5.1.1). Pure.

For answers that must look inside each part before passing it on (an archive's instances that
may need transcoding): one part is held at a time, never the whole body. The body must end with
its closing delimiter, else :meth:`PartSplitter.close` raises ``MultipartError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dicom.multipart_stream import MAX_HEAD, MultipartError, valid_boundary

CRLF = b"\r\n"


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class PartSplitter:
    """Feed chunks with :meth:`feed` (whole parts come out), then :meth:`close`."""

    def __init__(self, boundary: str, max_part: int) -> None:
        if not valid_boundary(boundary):
            raise MultipartError("invalid multipart boundary")
        self._delimiter = CRLF + b"--" + boundary.encode("ascii")
        self._max_part = max_part
        self._buffer = bytearray(CRLF)  # as if a line ended before the body
        self._searched = 0  # bytes of the buffer known to hold no delimiter start
        self._started = False
        self.complete = False

    def feed(self, chunk: bytes) -> list[Part]:
        self._buffer += chunk
        out: list[Part] = []
        while not self.complete:
            part = self._next()
            if part is None:
                break
            if self._started:
                out.append(part)
            self._started = True
        return out

    def close(self) -> None:
        if not self.complete:
            raise MultipartError("the multipart body ends without its closing delimiter")

    def _next(self) -> Part | None:
        """The part (or preamble) before the next delimiter, once the delimiter and what follows
        it (``--`` or the next part's headers) are in the buffer."""
        found = self._buffer.find(self._delimiter, self._searched)
        if found < 0:
            self._searched = max(0, len(self._buffer) - len(self._delimiter))
            if len(self._buffer) > self._max_part + MAX_HEAD:
                raise MultipartError(f"a part exceeds {self._max_part} bytes")
            return None
        after = found + len(self._delimiter)
        if len(self._buffer) < after + 2:
            return None
        with memoryview(self._buffer) as view:
            part = _part(view[:found]) if self._started else Part({}, b"")
            closing = bytes(view[after : after + 2]) == b"--"
            rest = b"" if closing else bytes(view[after:])
        self.complete = closing
        self._buffer = bytearray(rest)  # the part's bytes are freed with the old buffer
        self._searched = 0
        return part


def _part(block: memoryview) -> Part:
    """``block``: padding/CRLF after the previous delimiter, headers, blank line, body; only the
    body is copied out of the buffer (once: a large part never lives twice here)."""
    start = bytes(block[:MAX_HEAD]).find(CRLF) + 2
    head_area = bytes(block[start : start + MAX_HEAD + 4])
    if head_area.startswith(CRLF):  # no headers at all
        return Part({}, bytes(block[start + 2 :]))
    ends = head_area.find(CRLF + CRLF)
    if start < 2 or ends < 0:
        raise MultipartError("a part has no blank line after its headers")
    head, body = head_area[:ends], bytes(block[start + ends + 4 :])
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MultipartError("malformed part header")
        headers[name.strip().lower()] = value.strip()
    return Part(headers, body)
