"""Backend Services requests name their patient (``access.backend``): pure decisions."""

from __future__ import annotations

from smart_imaging.access.backend import for_patient, requester_of, retrieval_grant, search_grant
from smart_imaging.access.decisions import Refused, Why
from smart_imaging.auth.base import AccessGrant
from smart_imaging.binding import Binding
from smart_imaging.config.policy import parse_policy
from smart_imaging.fhir.search import parse

POLICY = parse_policy({"default": "allow", "backendClients": {"referral": {"patients": ["123"]}}})
BACKEND = AccessGrant(None, scopes=frozenset({"system/ImagingStudy.rs"}), client_id="referral", backend=True)
APP = AccessGrant("maya", scopes=frozenset({"patient/ImagingStudy.rs"}), client_id="app", user="Patient/maya")


def test_app_launch_grants_pass_unchanged() -> None:
    assert search_grant(APP, parse([("patient", "maya")]), POLICY) is APP
    assert retrieval_grant(APP, Binding("t", "1.2", "maya", 0), None) is APP


def test_a_backend_search_is_decided_for_the_one_patient_it_names() -> None:
    grant = search_grant(BACKEND, parse([("patient", "123")]), POLICY)
    assert isinstance(grant, AccessGrant) and grant.patient_id == "123" and grant.backend


def test_a_backend_search_for_a_patient_outside_the_client_s_access_is_refused() -> None:
    refused = search_grant(BACKEND, parse([("patient", "456")]), POLICY)
    assert isinstance(refused, Refused) and refused.why is Why.OUTSIDE_CLIENT_ACCESS and refused.status == 403
    stranger = AccessGrant(None, client_id="stranger", backend=True)
    assert isinstance(search_grant(stranger, parse([("patient", "123")]), POLICY), Refused)
    assert isinstance(for_patient(BACKEND, "123", None), Refused)  # no policy: no backend access


def test_a_backend_search_names_exactly_one_patient_by_id() -> None:
    for params in ([], [("patient", "123"), ("patient", "456")], [("patient.identifier", "urn:x|1")]):
        refused = search_grant(BACKEND, parse(params), POLICY)
        assert isinstance(refused, Refused) and refused.why is Why.BACKEND_PATIENT_NEEDED


def test_a_backend_retrieval_is_for_the_binding_s_patient_checked_again() -> None:
    grant = retrieval_grant(BACKEND, Binding("t", "1.2", "123", 0), POLICY)
    assert isinstance(grant, AccessGrant) and grant.patient_id == "123"
    assert isinstance(retrieval_grant(BACKEND, Binding("t", "1.2", "456", 0), POLICY), Refused)
    assert isinstance(retrieval_grant(BACKEND, Binding("t", "1.2", None, 0), POLICY), Refused)


def test_the_requester_names_client_user_all_token_scopes_and_patient() -> None:
    grant = AccessGrant(
        "maya",
        scopes=frozenset({"patient/ImagingStudy.rs"}),
        client_id="app",
        subject="s1",
        user="RelatedPerson/elena",
        token_scopes=frozenset({"openid", "patient/ImagingStudy.rs"}),
    )
    requester = requester_of(grant)
    assert (requester.client_id, requester.user, requester.patient, requester.backend) == (
        "app",
        "RelatedPerson/elena",
        "maya",
        False,
    )
    assert requester.scopes == {"openid", "patient/ImagingStudy.rs"}
    assert requester_of(BACKEND, "123").patient == "123" and requester_of(BACKEND).backend
