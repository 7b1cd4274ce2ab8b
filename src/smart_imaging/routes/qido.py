"""QIDO-RS routes under an Endpoint address (PS3.18 10.6): ``/{tenant}/wado/{binding}/studies``,
``.../studies/{study}/series``, ``.../studies/{study}/series/{series}/instances`` and
``.../studies/{study}/instances``.

Each request is authorized exactly like WADO-RS (:func:`.wado.authorize_retrieval`: the token,
the binding, the access decision and the study check), for the bound study: ``/studies`` asks
about the binding's own study, a path naming another study is 403. The source lists the bound
study's records; ``wado.matching`` keeps those in scope that match the query, then pages them.
No match is ``200 []`` (see ``wado.matching``).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from ..dicom.media import parse_accept
from ..errors import NotAcceptable
from ..wado import matching
from ..wado.qido import Level, QidoRequest
from .context import tenant_base, tenant_of
from .wado import authorize_retrieval

DICOM_JSON = "application/dicom+json"


async def studies(request: Request) -> Response:
    return await _search(request, "studies")


async def series(request: Request) -> Response:
    return await _search(request, "series")


async def instances(request: Request) -> Response:
    return await _search(request, "instances")


async def _search(request: Request, level: Level) -> Response:
    tenant = tenant_of(request)
    binding_token = request.path_params["binding"]
    path = request.path_params
    qido = QidoRequest.parse(
        level, list(request.query_params.multi_items()), path.get("study"), path.get("series")
    )
    _check_accept(request.headers.get("accept"))
    scope = await authorize_retrieval(request, tenant, binding_token, qido.study_uid, qido.series_uid)
    base = f"{tenant_base(request, tenant)}/wado/{binding_token}"
    found = await tenant.source.query(qido.query(scope.study_uid, scope.mrn, base))
    records = matching.answer(qido, found, scope.study_uid, scope.mrn)
    body = json.dumps(records, separators=(",", ":")).encode()
    return Response(body, media_type=DICOM_JSON)


def _check_accept(accept: str | None) -> None:
    """PS3.18 8.7.3.2: QIDO-RS answers DICOM JSON here (XML is not offered): 406 otherwise."""
    ranges = parse_accept(accept)
    if ranges and not any(
        r.matches(DICOM_JSON) or r.matches("application/json") for r in ranges if not r.multipart
    ):
        raise NotAcceptable("QIDO-RS results are available as application/dicom+json")
