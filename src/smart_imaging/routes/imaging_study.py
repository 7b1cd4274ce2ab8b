"""ImagingStudy search and read (IG "Finding studies"): who may see which studies, decided by
``access`` and the tenant's services; one AuditEvent per request, authorized or refused.

A search names the patient of the access token (``patient``, ``subject`` or
``patient.identifier``; another patient, or none: 403 with an OperationOutcome, never an empty
Bundle). A Backend Services token (``system/ImagingStudy.rs`` of a registered client) names one
patient by id, who must be within the client's access (``access.backend``: else 403). Studies are
found by that patient's MRN, given their archive modification time where the tenant has one
(``services.last_updated``), filtered by the search's dates, then by the study-level policy
(``services.study_policy``: refused studies omitted, partly allowed ones show their allowed
series only; ``total`` counts what is returned).

``GET ImagingStudy/{id}`` (``id`` = the Study Instance UID) is the same search for the token's
patient and that UID: the study, or 404 when it is unknown, another patient's, or withheld by the
policy (one answer for all three, so a read never tells whether a study exists). Backend Services
clients read by searching (``patient`` and ``identifier``): their read is 403.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..access.backend import requester_of, search_grant
from ..access.search_scope import ByMrn, NoStudies, PatientLookup, SearchScope, scope_search
from ..auth import AccessGrant
from ..dicom.uid import is_valid_uid
from ..errors import Forbidden, NotFound, SmartImagingError
from ..fhir import imaging_study as fis
from ..fhir.dates import parse_range
from ..fhir.search import ImagingStudySearch, parse
from ..observability import redact_path
from ..services.audit_trail import outcome_of
from ..sources import StudyQuery, StudyRecord
from ..tenants.registry import Tenant
from .context import Caller, access_rules, app_state, enforce, identify, tenant_of
from .delay import check_delay
from .study_bundle import single_study, study_bundle

FHIR_JSON = "application/fhir+json"
BACKEND_READ = "Backend Services clients find a study by searching with patient and identifier"


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


async def imaging_study_search(request: Request) -> FhirResponse:
    tenant = tenant_of(request)
    strict = "handling=strict" in request.headers.get("prefer", "").replace(" ", "").lower()
    search = parse(list(request.query_params.multi_items()), strict=strict)
    caller = await identify(request, tenant, search.patients[0] if search.patients else None)
    try:
        records, scope, grant = await find_studies(request, tenant, caller, search)
    except SmartImagingError as exc:
        await _audit(request, tenant, caller, search.patients[0] if search.patients else None, exc)
        raise
    bundle = study_bundle(request, tenant, search, records, scope, caller)
    shown = tuple(r["resource"]["id"] for r in bundle.get("entry", []) if r["search"]["mode"] == "match")
    await _audit(request, tenant, caller, grant.patient_id, None, shown)
    return FhirResponse(bundle)


async def imaging_study_read(request: Request) -> FhirResponse:
    tenant = tenant_of(request)
    uid = request.path_params["id"]
    caller = await identify(request, tenant)
    try:
        if caller.grant.backend:
            raise Forbidden(BACKEND_READ)
        if not is_valid_uid(uid):
            raise NotFound(f"ImagingStudy/{uid[:64]} is not known")
        patients = [caller.grant.patient_id] if caller.grant.patient_id else []
        search = ImagingStudySearch(patients=patients, study_uids=[[uid]])
        records, scope, _ = await find_studies(request, tenant, caller, search)
        if not records:
            raise NotFound(f"ImagingStudy/{uid} is not known or not available to this access token")
    except SmartImagingError as exc:
        await _audit(request, tenant, caller, caller.grant.patient_id, exc, read=True)
        raise
    await _audit(request, tenant, caller, caller.grant.patient_id, None, (uid,), read=True)
    return FhirResponse(single_study(request, tenant, records[0], scope, caller))


async def find_studies(
    request: Request, tenant: Tenant, caller: Caller, search: ImagingStudySearch
) -> tuple[list[StudyRecord], SearchScope, AccessGrant]:
    """The studies this caller may see for ``search``, newest first, as they may be shown, the
    search's scope and the grant it was decided with (Backend Services: made for the patient)."""
    grant = enforce(search_grant(caller.grant, search, tenant.config.policy))
    check_delay(tenant, "lookup")
    scope = await _search_scope(tenant, grant, search)
    services = app_state(request).of(tenant)
    extra = services.policy.extra_fields if services.policy else ()
    records = await _find(tenant, scope, search, extra)
    if services.last_updated is not None and records:
        await services.last_updated.annotate(records, required=bool(search.last_updated))
    records = sorted(_filter(records, search), key=lambda r: fis.started(r) or "", reverse=True)
    if services.policy is not None:
        records = [view for view, _ in await services.policy.visible(requester_of(grant), records)]
    return records, scope, grant


async def _search_scope(tenant: Tenant, grant: AccessGrant, search: ImagingStudySearch) -> SearchScope:
    """Ask ``access`` whose studies this search may find; read the Patient when it needs it."""
    step = scope_search(grant, search, access_rules(tenant))
    if isinstance(step, PatientLookup):
        step = step.resolve(await tenant.authorizer.patient(grant))
    return enforce(step)


async def _find(
    tenant: Tenant, scope: SearchScope, search: ImagingStudySearch, extra: tuple[str, ...]
) -> list[StudyRecord]:
    uids = _study_uids(search)
    if uids is None or search.match_none or isinstance(scope.studies, NoStudies):
        return []
    mrn = scope.studies.mrn if isinstance(scope.studies, ByMrn) else None
    return await tenant.source.search(StudyQuery(mrn, uids, extra_fields=extra))


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
    """``started`` and ``_lastUpdated`` (on the archive's time when known, else the study's start:
    see ``fhir.capability.LAST_UPDATED_DOC``)."""
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


async def _audit(
    request: Request,
    tenant: Tenant,
    caller: Caller,
    patient: str | None,
    exc: BaseException | None,
    studies: tuple[str, ...] = (),
    *,
    read: bool = False,
) -> None:
    outcome, reason = outcome_of(exc)
    query = redact_path(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    await app_state(request).trail.search(
        caller.actor,
        tenant.key,
        patient=patient,
        query=query,
        outcome=outcome,
        reason=reason,
        studies=studies,
        read=read,
    )
