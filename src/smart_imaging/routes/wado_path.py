"""Parsing the WADO-RS part of our URLs into a WadoRequest (PS3.18 10.4). Pure.

Only the resource paths of PS3.18 are accepted; anything else is a 404 and never reaches the
archive. UIDs must be valid (400), frame numbers positive integers of ASCII digits (400:
``int()`` would also take ``" 1"``, ``"+1"``, ``"1_0"`` or ``"٣"``).
"""

from __future__ import annotations

import re

from ..dicom.uid import require_uid
from ..errors import BadRequest, NotFound
from ..sources.base import WadoRequest

_BULK = re.compile(r"[0-9A-Fa-f]{8}(/[0-9]{1,6}/[0-9A-Fa-f]{8})*", re.ASCII)
_FRAME = re.compile(r"[0-9]{1,8}", re.ASCII)
MAX_FRAMES = 10_000
MAX_FRAME = 10_000_000


def parse_wado_path(
    rest: str, accept: str | None, params: tuple[tuple[str, str], ...], public_base: str
) -> WadoRequest:
    """``rest`` is what follows ``/studies/``."""
    seg = rest.split("/")
    if any(s == "" for s in seg):
        raise NotFound("no such WADO-RS resource")
    fields: dict[str, object] = {"study_uid": _uid(seg[0], "study UID")}
    tail = seg[1:]
    if tail[:1] == ["series"] and len(tail) >= 2:
        fields["series_uid"] = _uid(tail[1], "series UID")
        tail = tail[2:]
        if tail[:1] == ["instances"] and len(tail) >= 2:
            fields["instance_uid"] = _uid(tail[1], "instance UID")
            tail = tail[2:]
            if tail[:1] == ["frames"] and len(tail) >= 2:
                fields["frames"] = _frames(tail[1])
                fields["resource"] = "frames"
                tail = tail[2:]
            elif tail[:1] == ["bulk"] and len(tail) >= 2 and _BULK.fullmatch("/".join(tail[1:])):
                fields["resource"] = "bulkdata"
                fields["bulkdata_path"] = "/".join(tail[1:])
                tail = []
    if tail in (["metadata"], ["rendered"], ["thumbnail"]) and (
        fields.get("resource") is None or (fields["resource"] == "frames" and tail != ["metadata"])
    ):
        fields["resource"] = tail[0]
        tail = []
    if tail:
        raise NotFound("no such WADO-RS resource")
    return WadoRequest(accept=accept, params=params, public_base=public_base, **fields)  # type: ignore[arg-type]


def _uid(value: str, what: str) -> str:
    """A UID of the path; a trailing newline (``%0A``) must not slip through a ``$`` anchor."""
    if not value.isascii() or not value.isprintable():
        raise BadRequest(f"{what} is not a valid DICOM UID")
    return require_uid(value, what)


def _frames(text: str) -> tuple[int, ...]:
    items = text.split(",")
    if len(items) > MAX_FRAMES or not all(_FRAME.fullmatch(f) for f in items):
        raise BadRequest(f"frame numbers must be positive integers (ASCII digits) up to {MAX_FRAME}")
    frames = tuple(int(f) for f in items)
    if any(f < 1 or f > MAX_FRAME for f in frames):
        raise BadRequest(f"frame numbers must be positive integers (ASCII digits) up to {MAX_FRAME}")
    return frames
