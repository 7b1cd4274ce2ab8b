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
