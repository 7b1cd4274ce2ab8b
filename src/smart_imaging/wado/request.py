"""One WADO-RS request (PS3.18 10.4): parsed from our URL, built again for an archive. Pure.

``WadoRequest.parse`` reads what follows ``/studies/`` in our URL. Only the resource paths of
PS3.18 are accepted; anything else is a 404 and never reaches the archive. UIDs must be valid
(400), frame numbers positive integers of ASCII digits (400: ``int()`` would also take ``" 1"``,
``"+1"``, ``"1_0"`` or ``"٣"``). ``WadoRequest.path`` builds the same resource path for the
archive, and :func:`rebase` moves an archive's WADO-RS URL under our public base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..dicom.uid import require_uid
from ..errors import BadRequest, NotFound

Resource = Literal["", "metadata", "rendered", "thumbnail", "frames", "bulkdata"]

_BULK = re.compile(r"[0-9A-Fa-f]{8}(/[0-9]{1,6}/[0-9A-Fa-f]{8})*", re.ASCII)
_FRAME = re.compile(r"[0-9]{1,8}", re.ASCII)
MAX_FRAMES = 10_000
MAX_FRAME = 10_000_000
_RENDERINGS = (["metadata"], ["rendered"], ["thumbnail"])


@dataclass(frozen=True)
class WadoRequest:
    """One WADO-RS request, already validated (UIDs, frame numbers)."""

    study_uid: str
    series_uid: str | None = None
    instance_uid: str | None = None
    frames: tuple[int, ...] = ()
    resource: Resource = ""
    accept: str | None = None
    params: tuple[tuple[str, str], ...] = ()  # query params passed on (rendered: window, quality...)
    bulkdata_path: str = ""  # resource "bulkdata": the part after .../instances/{uid}/bulk/
    mrn: str | None = None  # when set, never answer with instances of another PatientID
    public_base: str = ""  # our WADO-RS base for this binding: BulkDataURIs in metadata point here

    @classmethod
    def parse(cls, rest: str, params: tuple[tuple[str, str], ...] = (), public_base: str = "") -> WadoRequest:
        """The request of our URL; ``rest`` is what follows ``/studies/``."""
        seg = rest.split("/")
        if any(s == "" for s in seg):
            raise NotFound("no such WADO-RS resource")
        fields: dict[str, object] = {"study_uid": _uid(seg[0], "study UID")}
        tail = _instance_part(seg[1:], fields)
        if tail in _RENDERINGS and (
            fields.get("resource") is None or (fields["resource"] == "frames" and tail != ["metadata"])
        ):
            fields["resource"] = tail[0]
            tail = []
        if tail:
            raise NotFound("no such WADO-RS resource")
        return cls(params=params, public_base=public_base, **fields)  # type: ignore[arg-type]

    def path(self) -> str:
        """The resource path (PS3.18 10.4) to ask an archive for, from ``/studies/`` on."""
        path = f"/studies/{self.study_uid}"
        if self.series_uid:
            path += f"/series/{self.series_uid}"
            if self.instance_uid:
                path += f"/instances/{self.instance_uid}"
                if self.frames:
                    path += "/frames/" + ",".join(str(f) for f in self.frames)
                if self.resource == "bulkdata":
                    return path + "/bulk/" + self.bulkdata_path
        if self.resource in ("metadata", "rendered", "thumbnail"):
            path += f"/{self.resource}"
        return path


def _instance_part(tail: list[str], fields: dict[str, object]) -> list[str]:
    """Series, instance, frames or bulk data segments into ``fields``; the rest is returned."""
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
    return tail


def rebase(uri: str, public_base: str) -> str | None:
    """An archive's WADO-RS URL moved under our public base, or None when it names no resource.

    Everything from ``/studies/`` on is kept (PS3.18 10.4 resource paths), so a BulkDataURI or
    ``Content-Location`` keeps pointing at the same resource, now behind the same binding. Only
    printable ASCII is kept: a header value must stay a valid header value.
    """
    at = uri.find("/studies/")
    if at < 0 or not public_base:
        return None
    moved = public_base + uri[at:]
    return moved if moved.isascii() and moved.isprintable() else None


def require_path_uid(value: str, what: str) -> str:
    """A UID of a URL path; a trailing newline (``%0A``) must not slip through a ``$`` anchor."""
    return _uid(value, what)


def _uid(value: str, what: str) -> str:
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
