"""The decision point protocol, pure: the request we send and how each answer is read."""

from __future__ import annotations

from typing import Any

import pytest

from smart_imaging.access.pdp import DecisionError, decision_request, parse_decision, request_key
from smart_imaging.access.policy import Requester

from .dicom_json import series, study

ELENA = Requester(
    "app", "RelatedPerson/elena", frozenset({"patient/ImagingStudy.rs", "launch/patient"}), "maya"
)
STUDY = study("2.25.200", modalities=["US"], description="US PELVIS", date="20240110")
SERIES = [series("2.25.200.1", "US", body_part="PELVIS", description="TA"), series("2.25.200.2", "US")]


def request(ser: list[Any] | None = None) -> dict[str, Any]:
    return decision_request(ELENA, STUDY, SERIES if ser is None else ser, tenant="hospital")


def test_request_names_client_user_patient_study_and_series():
    assert request() == {
        "version": 1,
        "tenant": "hospital",
        "client_id": "app",
        "backend": False,
        "user": "RelatedPerson/elena",
        "scopes": ["launch/patient", "patient/ImagingStudy.rs"],
        "patient": "maya",
        "study": {
            "uid": "2.25.200",
            "date": "2024-01-10",
            "accessionNumber": None,
            "modalities": ["US"],
            "description": "US PELVIS",
        },
        "series": [
            {"uid": "2.25.200.1", "modality": "US", "bodyPart": "PELVIS", "description": "TA"},
            {"uid": "2.25.200.2", "modality": "US", "bodyPart": None, "description": None},
        ],
    }


def test_request_key_is_stable_and_distinguishes_requests():
    assert request_key(request()) == request_key(request())
    assert request_key(request()) != request_key(request(SERIES[:1]))
    other_user = decision_request(
        Requester("app", "Patient/maya", ELENA.scopes, "maya"), STUDY, SERIES, tenant="hospital"
    )
    assert request_key(other_user) != request_key(request())


@pytest.mark.parametrize(
    ("body", "outcome", "allowed"),
    [
        ({"decision": "permit"}, "allow", ("2.25.200.1", "2.25.200.2")),
        ({"decision": "deny"}, "deny", ()),
        ({"decision": "deny", "series": ["2.25.200.1"]}, "deny", ()),  # a deny never grants
        ({"decision": "permit", "series": ["2.25.200.1"]}, "partial", ("2.25.200.1",)),
        (
            {"decision": "permit", "series": ["2.25.200.2", "2.25.200.1"]},
            "allow",
            ("2.25.200.1", "2.25.200.2"),
        ),
        ({"decision": "permit", "series": []}, "deny", ()),
        ({"decision": "permit", "series": ["9.9.9"]}, "deny", ()),  # unrequested series grant nothing
        ({"decision": "permit", "future": {"x": 1}}, "allow", ("2.25.200.1", "2.25.200.2")),
    ],
)
def test_decisions(body, outcome, allowed):
    decision = parse_decision(body, request()).decision
    assert decision.outcome == outcome
    assert decision.allowed_series == allowed
    assert decision.study_uid == "2.25.200"


def test_permit_without_series_on_a_study_alone_is_whole_but_unlisted():
    decision = parse_decision({"decision": "permit"}, request([])).decision
    assert decision.complete and not decision.series_known and decision.series_allowed("2.25.200.9")
    partial = parse_decision({"decision": "permit", "series": ["2.25.200.9"]}, request([])).decision
    assert partial.outcome == "partial" and not partial.complete and partial.series_allowed("2.25.200.9")


def test_reason_and_ttl_are_read():
    answer = parse_decision({"decision": "deny", "reason": "consent\nwithdrawn", "ttl": 7}, request())
    assert answer.ttl == 7.0
    assert answer.decision.reason == "decision point: deny (consent withdrawn)"
    long = parse_decision({"decision": "deny", "reason": "x" * 5000}, request()).decision
    assert len(long.reason) < 300


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "permit",
        {},
        {"decision": True},
        {"decision": "PERMIT"},
        {"decision": "allow"},
        {"decision": "permit", "series": "2.25.200.1"},
        {"decision": "permit", "series": [1]},
        {"decision": "permit", "series": [""]},
        {"decision": "permit", "series": ["x" * 65]},
        {"decision": "permit", "reason": 5},
        {"decision": "permit", "ttl": "30"},
        {"decision": "permit", "ttl": -1},
        {"decision": "permit", "ttl": True},
        {"decision": "permit", "ttl": float("inf")},
        {"decision": "permit", "series": ["1"] * 10_001},
    ],
)
def test_protocol_violations_are_errors(body):
    with pytest.raises(DecisionError):
        parse_decision(body, request())
