"""ImagingStudy resources as a search answers them: each with its Endpoint, whose address is a
capability (a binding token) for this one study and this one access token.

IG "Finding studies": with ``_include=ImagingStudy:endpoint`` each Endpoint is a response-local
Bundle entry (``fullUrl`` ``urn:uuid:...``, the same value in ``ImagingStudy.endpoint.reference``:
"authorization for the requesting token, not reusable Endpoint records"), on the same page as its
study; without ``_include`` it is contained (``#e``), so every study still carries it (and the
reference server's smoke test reads ``entry[0].resource.contained[0].address``). ImagingStudy
``fullUrl``s are ``{base}/fhir/ImagingStudy/{uid}``, which ``read`` resolves.

The binding seals the digest of the access token that searched and expires with that token's
``exp`` when known, else after the tenant's ``bindingTtl`` (whichever is first).
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from ..access.search_scope import SearchScope
from ..binding import Binding, seal
from ..fhir import imaging_study as fis
from ..fhir.bundle import searchset
from ..fhir.search import ImagingStudySearch
from ..sources import StudyRecord
from ..tenants.registry import Tenant
from .context import Caller, app_state, tenant_base


def binding_expiry(now: float, ttl: int, token_exp: float | None) -> int:
    """The binding's ``x``: ``bindingTtl`` from now, never past the token's ``exp``."""
    limit = now + ttl
    return int(min(limit, token_exp) if token_exp is not None else limit)


def wado_address(request: Request, tenant: Tenant, uid: str, scope: SearchScope, caller: Caller) -> str:
    """The Endpoint address of one study for this caller (see the module doc)."""
    digest = caller.token_digest if scope.patient_id is not None else None  # checks off: unbound
    expires = binding_expiry(time.time(), tenant.config.bindingTtl, caller.grant.expires_at)
    binding = Binding(tenant.key, uid, scope.patient_id, expires, scope.binding_mrn, digest)
    return f"{tenant_base(request, tenant)}/wado/{seal(binding, app_state(request).key)}"


def single_study(
    request: Request, tenant: Tenant, record: StudyRecord, scope: SearchScope, caller: Caller
) -> dict[str, Any]:
    """One ImagingStudy with its contained Endpoint (``read``)."""
    uid = fis.study_uid(record) or ""
    study = fis.imaging_study(record, scope.subject, "#e")
    study["contained"] = [fis.endpoint("e", wado_address(request, tenant, uid, scope, caller))]
    return study


def study_bundle(
    request: Request,
    tenant: Tenant,
    search: ImagingStudySearch,
    records: list[StudyRecord],
    scope: SearchScope,
    caller: Caller,
) -> dict[str, Any]:
    base = tenant_base(request, tenant)
    total = len(records)
    count = search.count if search.count is not None else total
    page = records[search.offset : search.offset + count]
    matches, includes = [], []
    for record in page:
        uid = fis.study_uid(record) or ""
        if search.include_endpoint:
            local = f"urn:uuid:{uuid.uuid4()}"
            study = fis.imaging_study(record, scope.subject, local)
            address = wado_address(request, tenant, uid, scope, caller)
            includes.append((local, fis.endpoint(local.removeprefix("urn:uuid:"), address)))
        else:
            study = single_study(request, tenant, record, scope, caller)
        matches.append((f"{base}/fhir/ImagingStudy/{uid}", study))
    links = {"self": _page_url(request, base, search.offset)}
    if search.offset + count < total and count > 0:
        links["next"] = _page_url(request, base, search.offset + count)
    return searchset(matches, includes, total, links)


def _page_url(request: Request, base: str, offset: int) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    if offset:
        params.append(("_offset", str(offset)))
    query = urlencode(params)
    return f"{base}/fhir/ImagingStudy" + (f"?{query}" if query else "")
