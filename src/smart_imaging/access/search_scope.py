"""Whose studies an ImagingStudy search may find (SMART Imaging Access IG, "Finding studies"). Pure.

In two steps, so that the one piece of I/O (reading the token patient's Patient resource at the
EHR) stays in the route::

    step = scope_search(grant, search, rules)        # SearchScope | Refused | PatientLookup
    if isinstance(step, PatientLookup):               # the decision needs the Patient resource
        step = step.resolve(await authorizer.patient(grant))
    # SearchScope: search by step.studies, bind Endpoints to step.patient_id / step.binding_mrn

With checks on, the search must name the token's patient (``patient``/``subject``, or the
patient's own ``patient.identifier``); another patient, or none, is refused with 403, never an
empty Bundle. Studies are found by that patient's MRN (:meth:`TenantRules.by_mrn`); a patient
without an MRN finds nothing, never everything. With ``disableAuthzChecks`` (debug tenants) the
search names whom it wants; lookup by MRN then needs something to take an MRN from (else 400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..auth.base import AccessGrant
from ..fhir.mrn import has_identifier, mrn_of
from ..fhir.search import ImagingStudySearch
from .decisions import Refused, Why
from .rules import NO_PATIENT_CONTEXT, TenantRules, gate

Patient = dict[str, Any]  # a FHIR Patient resource


@dataclass(frozen=True)
class ByMrn:
    """Studies whose DICOM PatientID (0010,0020) is exactly ``mrn``."""

    mrn: str


@dataclass(frozen=True)
class AllStudies:
    """Every study on the archive (mock or debug tenants with ``all-studies-on-server``)."""


@dataclass(frozen=True)
class NoStudies:
    """Nothing can match (e.g. the patient has no MRN): the archive is not even asked."""

    reason: str


StudyFilter = ByMrn | AllStudies | NoStudies


@dataclass(frozen=True)
class SearchScope:
    """An allowed search: which studies, the ``ImagingStudy.subject`` to report, and the FHIR
    patient the Endpoints' bindings are bound to (None: a tenant with checks disabled)."""

    studies: StudyFilter
    subject: dict[str, Any]
    patient_id: str | None

    @property
    def binding_mrn(self) -> str | None:
        """The MRN sealed into each binding, which retrievals check the study against."""
        return self.studies.mrn if isinstance(self.studies, ByMrn) else None


@dataclass(frozen=True)
class PatientLookup:
    """The decision needs the grant's Patient resource: read it, then call :meth:`resolve`."""

    grant: AccessGrant
    search: ImagingStudySearch
    rules: TenantRules

    def resolve(self, patient: Patient | None) -> SearchScope | Refused:
        """The decision, given the Patient (None: the authorizer knows none)."""
        if self.rules.checks_off(self.grant):
            return _open_scope(self.grant, self.search, self.rules, patient)
        return _bound_scope(self.grant, self.search, self.rules, patient)


SearchStep = SearchScope | Refused | PatientLookup


def scope_search(grant: AccessGrant, search: ImagingStudySearch, rules: TenantRules) -> SearchStep:
    """First step: refuse what can be refused without the Patient, else say whether it is needed."""
    refused = gate(rules)
    if refused is not None:
        return refused
    if rules.checks_off(grant):
        requested = _requested(grant, search)
        if rules.by_mrn(grant) or requested is None:
            return PatientLookup(grant, search, rules)
        return SearchScope(AllStudies(), rules.subject(requested), None)
    refused = _names_the_token_patient(grant, search)
    if refused is not None:
        return refused
    if rules.by_mrn(grant) or search.patient_identifiers:
        return PatientLookup(grant, search, rules)
    return SearchScope(AllStudies(), rules.subject(grant.patient_id or ""), grant.patient_id)


def _names_the_token_patient(grant: AccessGrant, search: ImagingStudySearch) -> Refused | None:
    if not grant.patient_id:
        return NO_PATIENT_CONTEXT
    if not search.patients and not search.patient_identifiers:
        return Refused(
            Why.PATIENT_NOT_NAMED,
            "the search must name the patient of the access token (patient, subject or patient.identifier)",
        )
    if any(p != grant.patient_id for p in search.patients):
        return Refused(
            Why.OTHER_PATIENT, "the search names a patient other than the one the access token allows"
        )
    return None


def _bound_scope(
    grant: AccessGrant, search: ImagingStudySearch, rules: TenantRules, patient: Patient | None
) -> SearchScope | Refused:
    """Checks on: the token's patient, found by MRN where the rules say so."""
    patient_id = grant.patient_id or ""
    for ident in search.patient_identifiers:
        if patient is None or not has_identifier(patient, ident.system, ident.value):
            return Refused(
                Why.IDENTIFIER_MISMATCH,
                "patient.identifier does not identify the patient of the access token",
            )
    studies: StudyFilter = AllStudies()
    if rules.by_mrn(grant):
        mrn = _mrn(patient, rules) if patient else None
        studies = ByMrn(mrn) if mrn else NoStudies("the token's patient has no MRN")
    return SearchScope(studies, rules.subject(patient_id), patient_id)


def _open_scope(
    grant: AccessGrant, search: ImagingStudySearch, rules: TenantRules, patient: Patient | None
) -> SearchScope | Refused:
    """Checks off: the patient the search names (else the grant's); bindings bound to nobody."""
    requested = _requested(grant, search)
    if patient is not None:
        value = _mrn(patient, rules)
    elif search.patient_identifiers:
        value = search.patient_identifiers[0].value
    else:
        value = requested
    if rules.by_mrn(grant) and not value:
        return Refused(
            Why.MRN_NEEDED, "this tenant looks studies up by MRN: give patient or patient.identifier"
        )
    studies: StudyFilter = ByMrn(value) if rules.by_mrn(grant) and value else AllStudies()
    if requested:
        return SearchScope(studies, rules.subject(requested), None)
    subject = {"identifier": {"value": value}} if value else {"display": "unknown"}
    return SearchScope(studies, subject, None)


def _requested(grant: AccessGrant, search: ImagingStudySearch) -> str | None:
    return search.patients[0] if search.patients else grant.patient_id


def _mrn(patient: Patient, rules: TenantRules) -> str | None:
    return mrn_of(patient, list(rules.mrn_expressions), fallback=rules.mrn_fallback)
