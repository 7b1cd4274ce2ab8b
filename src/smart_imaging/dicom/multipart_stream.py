"""Relaying a ``multipart/related`` body while checking that it is complete. Pure, no I/O.

An archive that sends a WADO-RS multipart with ``Connection: close`` and no length (Orthanc does,
for studies) ends its body the same way whether it finished or died: only the multipart framing
tells them apart. :class:`MultipartRelay` follows that framing as chunks pass through it:

- every part must be followed by a delimiter, and the body must end with the closing delimiter
  ``--boundary--`` (RFC 2046 section 5.1.1); a part that declares ``Content-Length`` must have
  exactly that many bytes;
- part bodies pass through as they arrive, never buffered: only part headers are held (bounded),
  and they can be rewritten or dropped (``Content-Location`` of an archive, PS3.18 8.6.1.2);
- the closing delimiter ends the relay; whatever the archive sends after it (the epilogue) is
  ignored, so the caller can stop reading.

Delimiters are found with ``bytes.find`` on whole chunks; only the last ``len(delimiter) - 1``
bytes of a chunk are kept to find a delimiter split across two chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable

CRLF = b"\r\n"
MAX_HEAD = 64 * 1024
MAX_BOUNDARY = 200  # RFC 2046 allows 70; be lenient in what we read

HeaderRewrite = Callable[[str, str], str | None]
"""``(lower-case name, value) -> new value``, or ``None`` to drop the header."""

_LWSP = re.compile(rb"[ \t]*")


class MultipartError(ValueError):
    """The body is not a complete, well-formed multipart."""


def valid_boundary(boundary: str) -> bool:
    return 0 < len(boundary) <= MAX_BOUNDARY and boundary.isascii() and boundary.isprintable()


class MultipartRelay:
    """Feed chunks in order with :meth:`feed`, then call :meth:`close` at the end of the body."""

    def __init__(self, boundary: str, rewrite: HeaderRewrite | None = None, max_head: int = MAX_HEAD) -> None:
        if not valid_boundary(boundary):
            raise MultipartError("invalid multipart boundary")
        self._delimiter = CRLF + b"--" + boundary.encode("ascii")
        self._rewrite = rewrite
        self._max_head = max_head
        self._tail = CRLF  # as if a line ended before the body: the first delimiter may open it
        self._head: bytes | None = None  # not None: reading what follows a delimiter
        self._preamble = True
        self._in_part = False
        self._part_bytes = 0
        self._expected: int | None = None
        self.parts = 0  # parts started
        self.complete = False  # the closing delimiter arrived

    # ------------------------------------------------------------------ feeding

    def feed(self, chunk: bytes) -> list[bytes]:
        """The bytes to pass on for this chunk (part bodies unchanged, headers rewritten)."""
        out: list[bytes] = []
        at = 0
        while at < len(chunk) and not self.complete:
            if self._head is not None:
                at = self._after_delimiter(chunk, at, out)
            elif self._in_part and self._expected is not None:
                at = self._counted(chunk, at, out)
            else:
                at = self._searched(chunk, at, out)
        return out

    def close(self) -> None:
        """Raise :class:`MultipartError` unless the body ended with its closing delimiter."""
        if self.complete:
            return
        if self._head is not None:
            raise MultipartError(f"the body ends inside the headers of part {self.parts + 1}")
        if self._preamble:
            raise MultipartError("the body holds no multipart delimiter")
        raise MultipartError(
            f"part {self.parts} ends after {self._part_bytes} bytes without a closing delimiter"
        )

    # ------------------------------------------------------------------ states
    # Each takes the chunk and the offset where its unread bytes start, and returns the offset
    # after what it consumed: offsets, not slices, so that a chunk is copied at most once.

    def _searched(self, chunk: bytes, at: int, out: list[bytes]) -> int:
        """The preamble or a part without Content-Length: pass bytes on up to a delimiter.

        The preamble is dropped (receivers ignore it, RFC 2046 5.1.1) and bounded: a body that is
        not a multipart at all fails before anything of it is passed on."""
        delimiter, size = self._delimiter, len(self._delimiter)
        probe = self._tail + chunk[at : at + size - 1]
        found = probe.find(delimiter)
        if 0 <= found < len(self._tail):
            end = at + found + size - len(self._tail)  # the delimiter began in an earlier chunk
        else:
            found = chunk.find(delimiter, at)
            if found < 0:
                self._pass(chunk, at, len(chunk), out)
                rest = len(chunk) - at
                self._tail = chunk[-(size - 1) :] if rest >= size - 1 else probe[-(size - 1) :]
                return len(chunk)
            end = found + size
        if self._preamble:
            self._preamble = False
            out.append(delimiter[len(CRLF) :])
            self._head = b""
            return end
        self._pass(chunk, at, end, out)
        return self._delimited(self._part_bytes - size, end)

    def _counted(self, chunk: bytes, at: int, out: list[bytes]) -> int:
        """A part with a Content-Length: no search; the delimiter must follow its last byte."""
        assert self._expected is not None
        remaining = self._expected - self._part_bytes
        if remaining > 0:
            if len(chunk) - at <= remaining:
                self._pass(chunk, at, len(chunk), out)
                return len(chunk)
            self._pass(chunk, at, at + remaining, out)
            at += remaining
        seen = len(self._tail)  # in this state: the delimiter bytes matched so far
        probe = self._tail + chunk[at : at + len(self._delimiter) - seen]
        if not self._delimiter.startswith(probe):
            raise MultipartError(
                f"part {self.parts} is longer than its Content-Length ({self._expected} bytes)"
            )
        end = at + len(probe) - seen
        _emit(chunk, at, end, out)
        if len(probe) < len(self._delimiter):
            self._tail = probe
            return end
        return self._delimited(self._expected, end)

    def _pass(self, chunk: bytes, start: int, end: int, out: list[bytes]) -> None:
        self._part_bytes += end - start
        if not self._preamble:
            _emit(chunk, start, end, out)
        elif self._part_bytes > self._max_head:
            raise MultipartError(f"no multipart delimiter in the first {self._max_head} bytes")

    def _delimited(self, size: int, at: int) -> int:
        """A delimiter ended the current part (or the preamble) after ``size`` body bytes."""
        if self._in_part and self._expected is not None and size != self._expected:
            raise MultipartError(
                f"part {self.parts} has {size} bytes but its Content-Length says {self._expected}"
            )
        self._in_part = False
        self._head = b""
        return at

    def _after_delimiter(self, chunk: bytes, at: int, out: list[bytes]) -> int:
        """After a delimiter: ``--`` closes the body, else transport padding, CRLF and headers."""
        assert self._head is not None
        seen = len(self._head)
        head = self._head + chunk[at : at + self._max_head + 4]
        if head[:2] == b"--":
            out.append(b"--" + CRLF)
            self._head, self.complete = None, True
            return len(chunk)
        ends = head.find(CRLF + CRLF, max(0, seen - 3))
        if ends > self._max_head or (ends < 0 and len(head) > self._max_head):
            raise MultipartError(f"the headers of part {self.parts + 1} exceed {self._max_head} bytes")
        if ends < 0:
            self._head = head  # also a lone "-": the next byte tells whether it closes the body
            return len(chunk)
        out.append(self._headers(head[: ends + 2]))
        self._head = None
        self._start_part()
        return at + ends + 4 - seen

    def _start_part(self) -> None:
        self.parts += 1
        self._in_part = True
        self._part_bytes = 0
        self._tail = b""

    def _headers(self, block: bytes) -> bytes:
        """Check and rewrite one header block (padding, CRLF, header lines), re-encoded."""
        padding, _, fields = block.partition(CRLF)
        if _LWSP.fullmatch(padding) is None:
            raise MultipartError(f"malformed delimiter before part {self.parts + 1}")
        self._expected = None
        lines: list[bytes] = []
        for raw in fields.split(CRLF)[:-1]:
            name, sep, value = raw.decode("latin-1").partition(":")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                raise MultipartError(f"malformed header in part {self.parts + 1}")
            if name.lower() == "content-length":
                self._expected = _length(value, self.parts + 1)
            kept = self._rewrite(name.lower(), value) if self._rewrite else value
            if kept is not None:
                lines.append(_encode_header(name, kept))
        return CRLF + b"".join(line + CRLF for line in lines) + CRLF


def _emit(chunk: bytes, start: int, end: int, out: list[bytes]) -> None:
    if end > start:
        out.append(chunk if start == 0 and end == len(chunk) else chunk[start:end])


def _length(value: str, part: int) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
        raise MultipartError(f"part {part} has an invalid Content-Length")
    return int(value)


def _encode_header(name: str, value: str) -> bytes:
    try:
        return f"{name}: {value}".encode("latin-1")
    except UnicodeEncodeError:
        raise MultipartError("a rewritten part header is not latin-1") from None
