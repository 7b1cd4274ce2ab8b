"""Whether a WADO-RS request may retrieve what it asks for (SMART Imaging Access IG,
"Retrieving images"). Pure.

Every WADO-RS request carries an access token and the binding of the Endpoint its search
returned; both are checked on every request::

    scope = decide_retrieval(grant, binding, RetrievalRequest(tenant, study, series), rules, now)
    # RetrievalScope: if scope.verify_study, the route asks the archive for the study (I/O) and
    # confirms it with check_study(scope, studies); then retrieves, filtered by scope.mrn
    # Refused: 403 with the reason

A binding opens only for the tenant and study it was issued for, before it expires, and (checks
on) for the very access token it was issued to (its ``token_digest``: the IG's token-bound
capability) and that token's patient. Its MRN, the PatientID the study was found by,
is what the study's data is checked against; behind a real authorizer with checks on a binding
without one is refused, since nothing would keep another patient's study out.

The study-level policy's decision (``access.policy``, made by ``services.study_policy`` from the
study's attributes and series as the archive answers them) is applied by :func:`check_policy`:
a refused study or series is 403, and so is a study-level request of a study allowed only in
part (``PARTIAL_STUDY``: the IG's "never a successful partial study").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..auth.base import AccessGrant
from ..binding import Binding, same_token
from ..dicom import json_model as dj
from ..dicom import tags
from .decisions import Refused, Why
from .policy import StudyDecision
from .rules import NO_PATIENT_CONTEXT, TenantRules, gate

StudyPolicy = Callable[[dj.DicomJson, Sequence[dj.DicomJson]], StudyDecision]
"""(study attributes, its series' attributes) -> decision; e.g. ``partial(policy.decide_study,
policy, requester)``."""

NOT_THIS_STUDY = "this WADO-RS address does not grant access to that study"
NOT_THIS_PATIENT = "the access token's patient does not match this study"


@dataclass(frozen=True)
class RetrievalRequest:
    """What a WADO-RS or QIDO-RS request asks for: the tenant of its URL, the study (and series)
    of its path. No study (QIDO-RS ``/studies`` under an Endpoint): the binding's own study."""

    tenant: str
    study_uid: str | None
    series_uid: str | None = None
    token_digest: str | None = None  # binding.token_digest() of the presented token


@dataclass(frozen=True)
class RetrievalScope:
    """An allowed retrieval. ``mrn``: only data of this DICOM PatientID may be served, and the
    study must be confirmed to hold no other patient's (``verify_study``); None on tenants
    without patient binding (mock with ``all-studies-on-server``, checks disabled)."""

    tenant: str
    study_uid: str
    series_uid: str | None
    patient_id: str | None
    mrn: str | None

    @property
    def verify_study(self) -> bool:
        return self.mrn is not None


def decide_retrieval(
    grant: AccessGrant, binding: Binding, request: RetrievalRequest, rules: TenantRules, now: float
) -> RetrievalScope | Refused:
    """The scope of one WADO-RS request, or why not (see the module doc)."""
    refused = gate(rules) or _binding_fits(binding, request, now)
    if refused is None and not rules.checks_off(grant):
        refused = _patient_fits(grant, binding, request, rules)
    if refused is not None:
        return refused
    return RetrievalScope(
        request.tenant, binding.study_uid, request.series_uid, binding.patient_id, binding.mrn
    )


def _binding_fits(binding: Binding, request: RetrievalRequest, now: float) -> Refused | None:
    if binding.expires_at <= now:
        return Refused(Why.EXPIRED, "study binding expired; search ImagingStudy again for a fresh Endpoint")
    if binding.tenant != request.tenant:
        return Refused(Why.OTHER_TENANT, NOT_THIS_STUDY)
    if request.study_uid is not None and binding.study_uid != request.study_uid:
        return Refused(Why.OTHER_STUDY, NOT_THIS_STUDY)
    return None


def _patient_fits(
    grant: AccessGrant, binding: Binding, request: RetrievalRequest, rules: TenantRules
) -> Refused | None:
    if not grant.patient_id:
        return NO_PATIENT_CONTEXT
    if binding.patient_id is None:
        return Refused(Why.UNBOUND_BINDING, NOT_THIS_PATIENT)
    if binding.patient_id != grant.patient_id:
        return Refused(Why.OTHER_PATIENT, NOT_THIS_PATIENT)
    if binding.mrn is None and rules.authorizer == "real":
        return Refused(
            Why.BINDING_WITHOUT_MRN, "this WADO-RS address names no MRN to check the study against"
        )
    if request.token_digest is None or not same_token(binding, request.token_digest):
        return Refused(
            Why.OTHER_TOKEN,
            "this WADO-RS address was issued to another access token; search ImagingStudy again "
            "with this token for a fresh Endpoint",
        )
    return None


def check_study(
    scope: RetrievalScope, studies: Sequence[dj.DicomJson], policy: StudyPolicy | None = None
) -> RetrievalScope | Refused:
    """Confirm a scope against the archive's study-level answer for ``scope.study_uid``.

    Archives with inconsistent data can file instances of two patients under one
    StudyInstanceUID; the study-level answer then shows another PatientID and the retrieval is
    refused. ``policy`` (issue 11, not yet passed by the routes) may refuse the study, or a
    whole-study request for a study it allows only in part (the IG: never a partial study).
    """
    if not studies:
        return Refused(Why.STUDY_NOT_FOUND, "study not found in the image archive")
    if scope.mrn is not None and any(dj.text(s, tags.PatientID) != scope.mrn for s in studies):
        return Refused(Why.MIXED_PATIENTS, "the archive files data of another patient under this study")
    if policy is not None:
        return check_policy(scope, policy(studies[0], ()))
    return scope


def check_policy(scope: RetrievalScope, decision: StudyDecision) -> RetrievalScope | Refused:
    """The policy's decision on the study, applied to this request (see the module doc)."""
    if not decision.allowed:
        return Refused(Why.POLICY, "access to this study is restricted")
    if scope.series_uid is None and not decision.complete:
        return Refused(
            Why.PARTIAL_STUDY,
            "only some series of this study may be retrieved: ask for the series its ImagingStudy lists",
        )
    if scope.series_uid is not None and not decision.series_allowed(scope.series_uid):
        return Refused(Why.POLICY, "access to this series is restricted")
    return scope
