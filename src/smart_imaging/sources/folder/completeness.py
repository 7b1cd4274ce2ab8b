"""Is a DICOM Part-10 file whole? A structural walk of its encoding, values skipped. Blocking.

pydicom reads a truncated file without complaint (a value cut short is just shorter, a missing
sequence delimiter a warning), so the index would serve a half-copied or truncated file as a
complete instance. This walk follows the element lengths of PS3.5 7.1 (explicit and implicit
VR, little and big endian), undefined-length sequences and items to their delimiters (7.5) and
encapsulated pixel data fragment by fragment (A.4), seeking past every value. A file is
incomplete when a header or value runs past its end, a delimiter is missing, or an image
(Rows present) has no pixel data element. A cut exactly between two top-level elements before
Rows, or of a non-image (SR, RT plan), cannot be told from a whole file: the SOP class is no
help, as header-only "images" exist (pydicom's TINY_ALPHA set). Anything it cannot make sense of (deflated data
sets, unexpected structures, nesting past ``MAX_DEPTH``) counts as whole: pydicom judges those.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFLATED = "1.2.840.10008.1.2.1.99"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_TAGS = {0x7FE00008, 0x7FE00009, 0x7FE00010}  # Float, Double Float, Pixel Data
ROWS = 0x00280010
TRANSFER_SYNTAX = 0x00020010
MAX_DEPTH = 32
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


class _Unknown(Exception):
    """The walk met something it does not understand: leave the verdict to pydicom."""


class _Cut(Exception):
    """The file ends before the structure it started does."""


@dataclass
class _Syntax:
    implicit: bool
    little: bool

    def unpack(self, fmt: str, data: bytes) -> tuple[int, ...]:
        return struct.unpack(("<" if self.little else ">") + fmt, data)


class _Walk:
    def __init__(self, fp: BinaryIO, size: int) -> None:
        self.fp = fp
        self.size = size
        self.top_level: set[int] = set()

    def read(self, count: int) -> bytes:
        data = self.fp.read(count)
        if len(data) < count:
            raise _Cut
        return data

    def skip(self, length: int) -> None:
        position = self.fp.tell() + length
        if position > self.size:
            raise _Cut
        self.fp.seek(position)

    def header(self, syntax: _Syntax) -> tuple[int, bytes, int]:
        """(tag, VR or b"", length) of the next element; items and delimiters have no VR."""
        group, element = syntax.unpack("HH", self.read(4))
        tag = group << 16 | element
        if syntax.implicit or group == 0xFFFE:
            return tag, b"", syntax.unpack("L", self.read(4))[0]
        vr = self.read(2)
        if vr in _LONG_VRS:
            self.read(2)
            return tag, vr, syntax.unpack("L", self.read(4))[0]
        if not vr.isalpha() or not vr.isupper():
            raise _Unknown
        return tag, vr, syntax.unpack("H", self.read(2))[0]

    def elements(self, syntax: _Syntax, depth: int, until: int | None) -> None:
        """Elements up to the end of the file (``until`` None) or to the ``until`` delimiter."""
        while until is not None or self.fp.tell() < self.size:
            tag, vr, length = self.header(syntax)
            if tag == until:
                return
            if depth == 0:
                self.top_level.add(tag)
            if length != UNDEFINED:
                self.skip(length)
            elif vr in (b"OB", b"OW") and tag in PIXEL_TAGS:
                self.fragments(syntax)
            else:  # SQ, or UN holding an implicit VR little endian sequence (PS3.5 6.2.2)
                inner = _Syntax(True, True) if vr == b"UN" else syntax
                self.items(inner, depth + 1)

    def items(self, syntax: _Syntax, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Unknown
        while True:
            tag, _, length = self.header(_Syntax(True, syntax.little))
            if tag == SEQUENCE_END:
                return
            if tag != ITEM:
                raise _Unknown
            if length == UNDEFINED:
                self.elements(syntax, depth, ITEM_END)
            else:
                self.skip(length)

    def fragments(self, syntax: _Syntax) -> None:
        while True:
            tag, _, length = self.header(_Syntax(True, syntax.little))
            if tag == SEQUENCE_END:
                return
            if tag != ITEM or length == UNDEFINED:
                raise _Unknown
            self.skip(length)


def is_complete(path: Path) -> bool:
    """False when ``path`` is certainly cut short (see the module docstring)."""
    try:
        with open(path, "rb") as fp:
            return _complete(fp, os.fstat(fp.fileno()).st_size)
    except _Unknown:
        return True


def _complete(fp: BinaryIO, size: int) -> bool:
    walk = _Walk(fp, size)
    try:
        syntax = _file_meta(walk)
        if syntax is None:
            return True
        walk.elements(syntax, 0, None)
    except _Cut:
        return False
    return ROWS not in walk.top_level or bool(PIXEL_TAGS & walk.top_level)


def _file_meta(walk: _Walk) -> _Syntax | None:
    """Skip preamble and group 0002 (explicit VR little endian); the data set's transfer
    syntax (None: deflated, not walked)."""
    if walk.read(132)[128:] != b"DICM":
        raise _Unknown
    explicit_little = _Syntax(False, True)
    syntax = ""
    while True:
        start = walk.fp.tell()
        group = struct.unpack("<H", walk.read(2))[0]
        walk.fp.seek(start)
        if group != 0x0002:
            break
        tag, _, length = walk.header(explicit_little)
        if length == UNDEFINED:
            raise _Unknown
        if tag == TRANSFER_SYNTAX and length <= 64:
            syntax = walk.read(length).decode("ascii", "replace").strip("\x00 ")
        else:
            walk.skip(length)
    if syntax == DEFLATED:
        return None
    return _Syntax(syntax == IMPLICIT_LITTLE, syntax != EXPLICIT_BIG)
