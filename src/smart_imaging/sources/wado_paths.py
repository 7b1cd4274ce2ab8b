"""WADO-RS resource paths (PS3.18 10.4) from a validated request. Pure."""

from __future__ import annotations

from .base import WadoRequest


def wado_path(request: WadoRequest) -> str:
    path = f"/studies/{request.study_uid}"
    if request.series_uid:
        path += f"/series/{request.series_uid}"
        if request.instance_uid:
            path += f"/instances/{request.instance_uid}"
            if request.frames:
                path += "/frames/" + ",".join(str(f) for f in request.frames)
            if request.resource == "bulkdata":
                return path + "/bulk/" + request.bulkdata_path
    if request.resource in ("metadata", "rendered", "thumbnail"):
        path += f"/{request.resource}"
    return path


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
