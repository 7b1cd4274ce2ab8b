"""A tenant's access rules, as the decisions need them (pure).

:class:`TenantRules` is the part of a tenant config that decides who may see what, flattened:
the route layer builds it from ``TenantConfig`` (``routes.context.access_rules``), so this package
never imports the config schema or the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..auth.base import AccessGrant
from .decisions import Refused, Why

Lookup = Literal["studies-by-mrn", "all-studies-on-server"]
AuthorizerKind = Literal["mock", "real"]


@dataclass(frozen=True)
class TenantRules:
    """What a tenant config says about access.

    - ``lookup`` (``images.lookup``): find studies by the patient's MRN, or list the archive.
      Behind a real authorizer with checks on, studies are always found by MRN (defence in depth:
      config validation refuses ``all-studies-on-server`` there).
    - ``disable_authz_checks`` (``authorization.disableAuthzChecks``): debug tenants; patient
      binding is skipped.
    - ``mrn_expressions`` (``images.mrn``): FHIRPath expressions that find the MRN in the Patient;
      ``mrn_fallback``: the tenant did not set them, so a Patient's only identifier counts
      (``fhir.mrn.mrn_of``).
    - ``authorizer``: ``mock`` (the patient comes from the config) or ``real`` (a token issued by
      an authorization server).
    - ``patient_from_request`` (the Meditech variant: tokens name no patient; the first search
      pins one) and ``allow_patient_from_request`` (``allowInsecurePatientFromRequest``).
    - ``fhir_base_url``: where the patient lives, for ``ImagingStudy.subject`` references.
    """

    lookup: Lookup = "studies-by-mrn"
    disable_authz_checks: bool = False
    mrn_expressions: tuple[str, ...] = ()
    mrn_fallback: bool = False
    authorizer: AuthorizerKind = "real"
    patient_from_request: bool = False
    allow_patient_from_request: bool = False
    fhir_base_url: str = ""

    def checks_off(self, grant: AccessGrant) -> bool:
        """Patient checks are skipped only when the tenant and the grant both say so: a grant made
        with checks on (scopes and patient verified) is never used with them off."""
        return self.disable_authz_checks and grant.disable_authz_checks

    def by_mrn(self, grant: AccessGrant) -> bool:
        """Are studies found (and retrievals filtered) by the patient's MRN?"""
        if self.lookup == "studies-by-mrn":
            return True
        return self.authorizer == "real" and not self.checks_off(grant)

    def subject(self, patient_id: str) -> dict[str, str]:
        """``ImagingStudy.subject``: a reference to the Patient (at the EHR for real authorizers)."""
        base = self.fhir_base_url.rstrip("/") + "/" if self.fhir_base_url else ""
        return {"reference": f"{base}Patient/{patient_id}"}


def gate(rules: TenantRules) -> Refused | None:
    """The refusal of every request of a tenant that trusts the request for the patient without
    opting in (the authorizer refuses them first; this is defence in depth)."""
    if rules.patient_from_request and not rules.allow_patient_from_request:
        return Refused(
            Why.PATIENT_FROM_REQUEST_DISABLED,
            "this tenant's authorization type takes the patient from the request and "
            "is disabled until allowInsecurePatientFromRequest is set",
        )
    return None


NO_PATIENT_CONTEXT = Refused(Why.NO_PATIENT_CONTEXT, "the access token has no patient context")
