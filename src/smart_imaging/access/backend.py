"""Who asks, as the policy sees it, and the patient of a Backend Services request (pure).

SMART Backend Services (IG "Backend Services"): a registered backend client's token carries no
patient context (``AccessGrant.backend``). Each request names its patient instead: a search by
``patient=<the Clinical FHIR Server's Patient id>`` ("the search parameter selects data, not
permission to access it"), a retrieval by the patient its binding was issued for. That patient
must be within the client's pre-authorized access (``policy.backendClients``,
:func:`~.policy.decide_patient`), else 403; the request then proceeds exactly as an App Launch
request for that patient (:func:`for_patient`), narrowed further by the study-level policy.
"""

from __future__ import annotations

from dataclasses import replace

from ..auth.base import AccessGrant
from ..binding import Binding
from ..config.policy import Policy
from ..fhir.search import ImagingStudySearch
from .decisions import Refused, Why
from .policy import Requester, decide_patient

NAME_ONE_PATIENT = (
    "a Backend Services search names exactly one patient by its FHIR id (patient=...); population-wide "
    "search is not offered"
)
OUTSIDE = "this patient is outside the client's pre-authorized access"


def requester_of(grant: AccessGrant, patient: str | None = None) -> Requester:
    """The policy's view of a grant: client, user, the token's scopes, and the patient whose data is
    requested (App Launch: the token's patient; Backend Services: the one the request names)."""
    return Requester(
        client_id=grant.client_id,
        user=grant.user or grant.subject,
        scopes=grant.token_scopes or grant.scopes,
        patient=patient if patient is not None else grant.patient_id,
        backend=grant.backend,
    )


def for_patient(grant: AccessGrant, patient: str | None, policy: Policy | None) -> AccessGrant | Refused:
    """A Backend Services grant made specific to ``patient`` when the client may see that patient;
    other grants unchanged."""
    if not grant.backend:
        return grant
    if patient is None:
        return Refused(Why.BACKEND_PATIENT_NEEDED, NAME_ONE_PATIENT)
    if policy is None or not decide_patient(policy, requester_of(grant, patient)).allowed:
        return Refused(Why.OUTSIDE_CLIENT_ACCESS, OUTSIDE)
    return replace(grant, patient_id=patient)


def search_grant(
    grant: AccessGrant, search: ImagingStudySearch, policy: Policy | None
) -> AccessGrant | Refused:
    """The grant a search is decided with: Backend Services searches name one patient by id."""
    if not grant.backend:
        return grant
    patients = set(search.patients)
    if len(patients) != 1 or search.patient_identifiers:
        return Refused(Why.BACKEND_PATIENT_NEEDED, NAME_ONE_PATIENT)
    return for_patient(grant, patients.pop(), policy)


def retrieval_grant(grant: AccessGrant, binding: Binding, policy: Policy | None) -> AccessGrant | Refused:
    """The grant a retrieval is decided with: the patient the binding was issued for, checked again
    (the client's access may have changed since the search)."""
    return for_patient(grant, binding.patient_id, policy) if grant.backend else grant
