"""The one authorization of a request under an Endpoint address (WADO-RS and QIDO-RS), and its
audit record (IG "Retrieving images": "The DICOMweb Server SHALL validate the token, the
capability, and their binding, and enforce all applicable restrictions", on every request).

In order: the access token (``identify``); the binding (``binding.BindingOpener``: decrypted once, expiry checked each time); for a Backend
Services token, the binding's patient against the client's access (``access.backend``); the
decision of ``access.retrieval`` (tenant, study, expiry, the binding's token digest = this
token's, the patient); the tenant's delay; the study check against the archive
(``study_guard``); the study-level policy (``services.study_policy``, cached per token and study,
then ``access.retrieval.check_policy``: a refused study or series, or a study-level request of a
partly allowed study, is 403). Every outcome after the token is known goes to the audit trail
(``services.audit_trail``: a study's requests aggregate into one event).
"""

from __future__ import annotations

import time

from starlette.requests import Request

from ..access.backend import requester_of, retrieval_grant
from ..access.retrieval import RetrievalRequest, RetrievalScope, check_policy, decide_retrieval
from ..binding import Binding
from ..errors import SmartImagingError
from ..services.audit_trail import outcome_of
from ..tenants.registry import Tenant
from .context import Caller, access_rules, app_state, enforce, identify
from .delay import check_delay


async def authorize_retrieval(
    request: Request,
    tenant: Tenant,
    binding_token: str,
    study_uid: str | None,
    series_uid: str | None = None,
    kind: str = "qido",
) -> RetrievalScope:
    """Authorize one request (see the module doc); ``study_uid`` None: the binding's own study
    (QIDO-RS ``/studies``); ``kind`` names the request in the audit record. Raises the refusal."""
    caller = await identify(request, tenant)
    binding = app_state(request).bindings.open(binding_token)
    asked = RetrievalRequest(tenant.key, study_uid, series_uid, caller.token_digest)
    try:
        scope = await _decide(request, tenant, caller, binding, asked)
    except SmartImagingError as exc:
        await _record(request, tenant, caller, binding, asked, kind, exc)
        raise
    await _record(request, tenant, caller, binding, asked, kind)
    return scope


async def _record(
    request: Request,
    tenant: Tenant,
    caller: Caller,
    binding: Binding,
    asked: RetrievalRequest,
    kind: str,
    exc: SmartImagingError | None = None,
) -> None:
    outcome, reason = outcome_of(exc)
    await app_state(request).trail.retrieval(
        caller.actor,
        tenant.key,
        patient=binding.patient_id,
        study_uid=asked.study_uid or binding.study_uid,
        series_uid=asked.series_uid,
        kind=kind,
        outcome=outcome,
        reason=reason,
    )


async def _decide(
    request: Request, tenant: Tenant, caller: Caller, binding: Binding, asked: RetrievalRequest
) -> RetrievalScope:
    state = app_state(request)
    grant = enforce(retrieval_grant(caller.grant, binding, tenant.config.policy))
    scope = enforce(decide_retrieval(grant, binding, asked, access_rules(tenant), time.time()))
    check_delay(tenant, "retrieve")
    scope = enforce(await state.study_guard.confirm(tenant.source, scope))
    policy = state.of(tenant).policy
    if policy is not None:
        decision = await policy.for_retrieval(requester_of(grant), caller.token_digest, tenant.source, scope)
        scope = enforce(check_policy(scope, decision))
    return scope
