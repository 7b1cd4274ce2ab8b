"""Whose studies a search may find (``access.search_scope``), table-driven, without any server.

Each row: the grant, the search's query parameters, the tenant rules, the Patient the authorizer
would answer, and what the decision must be: whether it asked for the Patient, and the scope
(studies, subject, bound patient) or the refusal's reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import pytest

from smart_imaging.access.decisions import Refused, Why
from smart_imaging.access.rules import TenantRules
from smart_imaging.access.search_scope import (
    AllStudies,
    ByMrn,
    NoStudies,
    PatientLookup,
    SearchScope,
    StudyFilter,
    scope_search,
)
from smart_imaging.auth.base import AccessGrant
from smart_imaging.errors import BadRequest, Forbidden
from smart_imaging.fhir.search import parse

MR = "identifier.where(type.coding.code='MR').value"
EHR = "https://ehr.example/fhir"

P1 = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "MRN-1"},
        {"system": "urn:insurance", "value": "INS-9"},
    ],
}
NO_MRN = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "urn:insurance", "value": "INS-9"}],
}
TWO_IDS = {"resourceType": "Patient", "id": "p1", "identifier": [{"value": "L-1"}, {"value": "INS-9"}]}
ONE_ID = {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:local", "value": "L-1"}]}

MOCK = TenantRules(mrn_expressions=(MR,), authorizer="mock")
MOCK_ALL = TenantRules(lookup="all-studies-on-server", mrn_expressions=(MR,), authorizer="mock")
REAL = TenantRules(mrn_expressions=(MR,), fhir_base_url=EHR)
REAL_ALL = TenantRules(
    lookup="all-studies-on-server", mrn_expressions=(MR,), fhir_base_url=EHR
)  # past validation
FALLBACK = TenantRules(mrn_expressions=(MR,), mrn_fallback=True, fhir_base_url=EHR)  # images.mrn not set
MEDITECH = TenantRules(mrn_expressions=(MR,), fhir_base_url=EHR, patient_from_request=True)
MEDITECH_OPTED_IN = TenantRules(
    mrn_expressions=(MR,), fhir_base_url=EHR, patient_from_request=True, allow_patient_from_request=True
)
DEBUG_ALL = TenantRules(lookup="all-studies-on-server", disable_authz_checks=True, authorizer="mock")
DEBUG = TenantRules(disable_authz_checks=True, mrn_expressions=(MR,), authorizer="mock")
DEBUG_REAL_ALL = TenantRules(lookup="all-studies-on-server", disable_authz_checks=True, fhir_base_url=EHR)


def grant(patient: str | None = "p1", *, off: bool = False) -> AccessGrant:
    return AccessGrant(patient_id=patient, disable_authz_checks=off)


def ref(patient: str, base: str = "") -> dict[str, str]:
    return {"reference": f"{base}Patient/{patient}"}


@dataclass(frozen=True)
class Row:
    name: str
    grant: AccessGrant
    params: dict[str, str]
    rules: TenantRules
    patient: dict[str, Any] | None
    asks: bool  # does the first step ask for the Patient?
    expect: Why | Literal["nothing"] | tuple[StudyFilter, dict[str, Any], str | None]


G, OPEN = grant(), grant(None, off=True)
P1_ONLY = {"patient": "p1"}
AT_MOCK, AT_EHR = ref("p1"), ref("p1", EHR + "/")
MRN_1 = ByMrn("MRN-1")
MEDITECH_OFF = replace(MEDITECH, disable_authz_checks=True)
PID, ALL, UNKNOWN = "patient.identifier", AllStudies(), {"display": "unknown"}
MISMATCH, GATED = Why.IDENTIFIER_MISMATCH, Why.PATIENT_FROM_REQUEST_DISABLED

# fmt: off
ROWS = [
    # checks on: the search must name the token's patient
    Row("no patient in the token", grant(None), P1_ONLY, MOCK, P1, False, Why.NO_PATIENT_CONTEXT),
    Row("names no patient", G, {}, MOCK, P1, False, Why.PATIENT_NOT_NAMED),
    Row("only :missing names none", G, {"patient:missing": "false"}, MOCK, P1, False, Why.PATIENT_NOT_NAMED),
    Row("other patient", G, {"patient": "p2"}, MOCK, P1, False, Why.OTHER_PATIENT),
    Row("other patient among several", G, {"patient": "p1,p2"}, REAL, P1, False, Why.OTHER_PATIENT),
    Row("other patient as subject", G, {"subject": "Patient/p2"}, REAL, P1, False, Why.OTHER_PATIENT),
    Row("by mrn", G, P1_ONLY, MOCK, P1, True, (MRN_1, AT_MOCK, "p1")),
    Row("subject reference", G, {"subject": "Patient/p1"}, MOCK, P1, True, (MRN_1, AT_MOCK, "p1")),
    Row("real authorizer", G, P1_ONLY, REAL, P1, True, (MRN_1, AT_EHR, "p1")),
    Row("own identifier", G, {PID: "urn:mrn|MRN-1"}, REAL, P1, True, (MRN_1, AT_EHR, "p1")),
    Row("own identifier, no system", G, {PID: "INS-9"}, MOCK, P1, True, (MRN_1, AT_MOCK, "p1")),
    Row("identifier, wrong system", G, {PID: "urn:x|MRN-1"}, MOCK, P1, True, MISMATCH),
    Row("another's identifier", G, {PID: "urn:mrn|MRN-2"}, REAL, P1, True, MISMATCH),
    Row("identifier, no Patient", G, {PID: "MRN-1"}, MOCK, None, True, MISMATCH),
    Row("patient and identifier", G, {"patient": "p1", "patient.identifier": "MRN-2"}, MOCK, P1, True,
        MISMATCH),
    Row("patient without mrn", G, P1_ONLY, REAL, NO_MRN, True, "nothing"),
    Row("no Patient finds nothing", G, P1_ONLY, MOCK, None, True, "nothing"),
    Row("mrn fallback: the only id", G, P1_ONLY, FALLBACK, ONE_ID, True, (ByMrn("L-1"), AT_EHR, "p1")),
    Row("mrn fallback: no guess", G, P1_ONLY, FALLBACK, TWO_IDS, True, "nothing"),
    # lookup modes
    Row("mock lists the archive", G, P1_ONLY, MOCK_ALL, P1, False, (ALL, AT_MOCK, "p1")),
    Row("mock lists, identifier", G, {PID: "MRN-1"}, MOCK_ALL, P1, True, (ALL, AT_MOCK, "p1")),
    Row("mock lists, wrong identifier", G, {PID: "MRN-2"}, MOCK_ALL, P1, True,
        MISMATCH),
    Row("mock lists, other patient", G, {"patient": "p2"}, MOCK_ALL, P1, False, Why.OTHER_PATIENT),
    Row("real never lists the archive", G, P1_ONLY, REAL_ALL, P1, True, (MRN_1, AT_EHR, "p1")),
    Row("real, no mrn, never everything", G, P1_ONLY, REAL_ALL, NO_MRN, True, "nothing"),
    # the Meditech option (patient from the request): refused unless the tenant opts in
    Row("meditech without opt-in", G, P1_ONLY, MEDITECH, P1, False, GATED),
    Row("meditech w/o opt-in, checks off", OPEN, {}, MEDITECH_OFF, None, False, GATED),
    Row("meditech opted in", G, P1_ONLY, MEDITECH_OPTED_IN, P1, True, (MRN_1, AT_EHR, "p1")),
    Row("meditech, other patient", G, {"patient": "p2"}, MEDITECH_OPTED_IN, P1, False, Why.OTHER_PATIENT),
    # checks off (disableAuthzChecks): the search names whom it wants; bindings bound to nobody
    Row("off: lists the archive", OPEN, {}, DEBUG_ALL, None, True, (ALL, UNKNOWN, None)),
    Row("off: a named patient", OPEN, {"patient": "p7"}, DEBUG_ALL, None, False, (ALL, ref("p7"), None)),
    Row("off: the grant's patient", grant("p3", off=True), {}, DEBUG_ALL, None, False,
        (ALL, ref("p3"), None)),
    Row("off: real lists the archive", OPEN, {"patient": "p7"}, DEBUG_REAL_ALL, None, False,
        (ALL, ref("p7", EHR + "/"), None)),
    Row("off by mrn: the Patient's", OPEN, {"patient": "p7"}, DEBUG, P1, True, (MRN_1, ref("p7"), None)),
    Row("off by mrn: named id", OPEN, {"patient": "p7"}, DEBUG, None, True, (ByMrn("p7"), ref("p7"), None)),
    Row("off by mrn: an identifier", OPEN, {PID: "urn:x|M-5"}, DEBUG, None, True,
        (ByMrn("M-5"), {"identifier": {"value": "M-5"}}, None)),
    Row("off by mrn: nothing to go by", OPEN, {}, DEBUG, None, True, Why.MRN_NEEDED),
    Row("off by mrn: Patient w/o mrn", OPEN, {"patient": "p7"}, DEBUG, NO_MRN, True, Why.MRN_NEEDED),
    # checks are lifted only when tenant and grant agree
    Row("tenant off, grant on", grant(None), {}, DEBUG_ALL, None, False, Why.NO_PATIENT_CONTEXT),
    Row("tenant off, grant on, other", G, {"patient": "p2"}, DEBUG_ALL, None, False, Why.OTHER_PATIENT),
    Row("tenant on, grant off", OPEN, {}, MOCK, None, False, Why.NO_PATIENT_CONTEXT),
]
# fmt: on


def decide(row: Row) -> tuple[bool, SearchScope | Refused]:
    step = scope_search(row.grant, parse(list(row.params.items())), row.rules)
    if isinstance(step, PatientLookup):
        return True, step.resolve(row.patient)
    return False, step


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_search_scope(row: Row) -> None:
    asked, decision = decide(row)
    assert asked is row.asks
    if isinstance(row.expect, Why):
        assert isinstance(decision, Refused) and decision.why is row.expect, decision
    elif row.expect == "nothing":
        assert isinstance(decision, SearchScope) and isinstance(decision.studies, NoStudies), decision
        assert decision.patient_id == row.grant.patient_id and decision.binding_mrn is None
    else:
        studies, subject, bound = row.expect
        assert decision == SearchScope(studies, subject, bound)


def test_bindings_carry_the_mrn_the_studies_were_found_by() -> None:
    _, by_mrn = decide(Row("", G, P1_ONLY, REAL, P1, True, Why.POLICY))
    _, everything = decide(Row("", grant(), {"patient": "p1"}, MOCK_ALL, P1, False, Why.POLICY))
    assert isinstance(by_mrn, SearchScope) and by_mrn.binding_mrn == "MRN-1"
    assert isinstance(everything, SearchScope) and everything.binding_mrn is None


def test_refusals_render_as_403_or_400_with_their_message() -> None:
    _, other = decide(Row("", grant(), {"patient": "p2"}, MOCK, P1, False, Why.POLICY))
    _, nothing = decide(Row("", OPEN, {}, DEBUG, None, True, Why.POLICY))
    assert isinstance(other, Refused) and other.status == 403
    assert isinstance(other.error(), Forbidden) and "other than" in other.error().message
    assert isinstance(nothing, Refused) and nothing.status == 400
    assert isinstance(nothing.error(), BadRequest) and "MRN" in nothing.error().message


def test_refusal_messages_never_name_the_token_patients_mrn() -> None:
    for row in ROWS:
        _, decision = decide(row)
        if isinstance(decision, Refused):
            assert "MRN-1" not in decision.message and "p1" not in decision.message, row.name
