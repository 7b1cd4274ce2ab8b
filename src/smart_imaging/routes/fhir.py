"""FHIR routes of a tenant: ``metadata``, ``.well-known/smart-configuration``, ``ImagingStudy``.

ImagingStudy search follows the SMART Imaging Access IG: the search must name the patient of
the access token (``patient``, ``subject`` or ``patient.identifier``); another patient, or none,
is a 403 with an OperationOutcome, never an empty Bundle. Behind a real authorizer (not
``mock``) with checks on, the archive is searched by the token patient's MRN whatever the
tenant's ``lookup``; a patient without an MRN finds nothing, never everything.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..access.search_scope import ByMrn, NoStudies, PatientLookup, SearchScope, scope_search
from ..auth import AccessGrant
from ..binding import Binding, seal
from ..fhir import imaging_study as fis
from ..fhir.bundle import searchset
from ..fhir.capability import (
    capability_statement,
    own_authorization_server,
    own_oauth_uris,
    smart_configuration,
)
from ..fhir.dates import parse_range
from ..fhir.search import ImagingStudySearch, parse
from ..oauth.server import server_of
from ..sources import StudyQuery, StudyRecord
from ..tenants.registry import Tenant
from .context import access_rules, app_state, authorize, enforce, tenant_base, tenant_of
from .delay import check_delay

FHIR_JSON = "application/fhir+json"


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


async def metadata(request: Request) -> FhirResponse:
    tenant = tenant_of(request)
    base = tenant_base(request, tenant)
    if server_of(tenant.authorizer) is not None:  # dual launch: our own authorization server
        return FhirResponse(capability_statement(f"{base}/fhir", own_oauth_uris(f"{base}/oauth")))
    ehr = await _ehr_configuration(tenant)
    oauth = {
        k: ehr[v]
        for k, v in (
            ("authorize", "authorization_endpoint"),
            ("token", "token_endpoint"),
            ("introspect", "introspection_endpoint"),
        )
        if ehr and ehr.get(v)
    }
    return FhirResponse(capability_statement(f"{base}/fhir", oauth))


async def smart_config(request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    base = tenant_base(request, tenant)
    server = server_of(tenant.authorizer)
    if server is not None:
        methods, scopes = server.auth_methods, server.scopes
        return JSONResponse(own_authorization_server(f"{base}/fhir", f"{base}/oauth", methods, scopes))
    ehr = await _ehr_configuration(tenant)
    return JSONResponse(smart_configuration(f"{base}/fhir", ehr))


async def _ehr_configuration(tenant: Tenant) -> dict[str, Any] | None:
    try:
        return await tenant.authorizer.ehr_configuration()
    except Exception:  # noqa: BLE001 - discovery documents are best effort
        return None


async def imaging_study_search(request: Request) -> FhirResponse:
    tenant = tenant_of(request)
    strict = "handling=strict" in request.headers.get("prefer", "").replace(" ", "").lower()
    search = parse(list(request.query_params.multi_items()), strict=strict)
    grant = await authorize(request, tenant, search.patients[0] if search.patients else None)
    check_delay(tenant, "lookup")
    scope = await _search_scope(tenant, grant, search)
    records = await _find(tenant, scope, search)
    records = sorted(_filter(records, search), key=lambda r: fis.started(r) or "", reverse=True)
    return FhirResponse(_bundle(request, tenant, search, records, scope))


async def _search_scope(tenant: Tenant, grant: AccessGrant, search: ImagingStudySearch) -> SearchScope:
    """Ask ``access`` whose studies this search may find; read the Patient when it needs it."""
    step = scope_search(grant, search, access_rules(tenant))
    if isinstance(step, PatientLookup):
        step = step.resolve(await tenant.authorizer.patient(grant))
    return enforce(step)


async def _find(tenant: Tenant, scope: SearchScope, search: ImagingStudySearch) -> list[StudyRecord]:
    uids = _study_uids(search)
    if uids is None or search.match_none or isinstance(scope.studies, NoStudies):
        return []
    mrn = scope.studies.mrn if isinstance(scope.studies, ByMrn) else None
    return await tenant.source.search(StudyQuery(mrn, uids))


def _study_uids(search: ImagingStudySearch) -> tuple[str, ...] | None:
    """The UIDs every ``identifier`` parameter allows (AND of ORs); () for no restriction,
    None when the parameters exclude each other and nothing can match."""
    if not search.study_uids:
        return ()
    wanted = set(search.study_uids[0])
    for group in search.study_uids[1:]:
        wanted &= set(group)
    return tuple(sorted(wanted)) or None


def _filter(records: list[StudyRecord], search: ImagingStudySearch) -> list[StudyRecord]:
    out = []
    for record in records:
        started = fis.started(record)
        started_range = parse_range(started) if started else None
        updated = record.last_updated or started
        updated_range = parse_range(updated) if updated else None
        if search.started_missing is not None and search.started_missing != (started_range is None):
            continue
        if all(f.matches(started_range) for f in search.started) and all(
            f.matches(updated_range) for f in search.last_updated
        ):
            out.append(record)
    return out


def _bundle(
    request: Request,
    tenant: Tenant,
    search: ImagingStudySearch,
    records: list[StudyRecord],
    scope: SearchScope,
) -> dict[str, Any]:
    key = app_state(request).key
    base = tenant_base(request, tenant)
    total = len(records)
    count = search.count if search.count is not None else total
    page = records[search.offset : search.offset + count]
    expires = int(time.time()) + tenant.config.bindingTtl
    matches, includes = [], []
    for record in page:
        uid = fis.study_uid(record) or ""
        token = seal(Binding(tenant.key, uid, scope.patient_id, expires, scope.binding_mrn), key)
        address = f"{base}/wado/{token}"
        endpoint_id = "wado-" + hashlib.sha256(token.encode()).hexdigest()[:32]
        if search.include_endpoint:
            study = fis.imaging_study(record, scope.subject, f"Endpoint/{endpoint_id}")
            includes.append((f"{base}/fhir/Endpoint/{endpoint_id}", fis.endpoint(endpoint_id, address)))
        else:
            study = fis.imaging_study(record, scope.subject, "#e")
            study["contained"] = [fis.endpoint("e", address)]
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
