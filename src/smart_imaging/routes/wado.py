"""WADO-RS routes: ``/{tenant}/wado/{binding}/studies/...``.

Each request is authorized on its own, then its binding token is opened and checked against
that grant: same tenant, same study, same patient (SMART Imaging Access IG). The archive's
answer streams through chunk by chunk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..binding import open_binding
from ..dicom.media import normalize
from ..errors import Forbidden
from .context import app_state, authorize, tenant_base, tenant_of
from .delay import check_delay
from .wado_path import parse_wado_path

DEFAULT_ACCEPT = {
    "": 'multipart/related; type="application/dicom"',
    "metadata": "application/dicom+json",
    "frames": 'multipart/related; type="application/octet-stream"',
    "bulkdata": 'multipart/related; type="application/octet-stream"',
    "rendered": "image/jpeg",
    "thumbnail": "image/jpeg",
}


async def retrieve(request: Request) -> StreamingResponse:
    tenant = tenant_of(request)
    binding_token = request.path_params["binding"]
    base = f"{tenant_base(request, tenant)}/wado/{binding_token}"
    params = tuple(request.query_params.multi_items())
    wado = parse_wado_path(request.path_params["rest"], None, params, base)
    grant = await authorize(request, tenant)
    binding = open_binding(binding_token, app_state(request).key)
    if binding.tenant != tenant.key or binding.study_uid != wado.study_uid:
        raise Forbidden("this WADO-RS address does not grant access to that study")
    if not grant.checks_disabled and (binding.patient_id is None or binding.patient_id != grant.patient_id):
        raise Forbidden("the access token's patient does not match this study")
    check_delay(tenant, "retrieve")
    if binding.mrn is not None:
        await app_state(request).study_guard.check(tenant, wado.study_uid, binding.mrn)
    accept = normalize(request.headers.get("accept"), DEFAULT_ACCEPT[wado.resource])
    wado = dataclasses.replace(wado, accept=accept, patient_id=binding.mrn)
    upstream = await tenant.source.retrieve(wado)
    return StreamingResponse(
        _guard(upstream.body),
        media_type=upstream.media_type,
        headers={k: v for k, v in upstream.headers.items() if k.lower() != "content-type"},
        background=BackgroundTask(upstream.aclose),
    )


async def _guard(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass chunks on; a failure mid-stream aborts the response (status is already sent)."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
