"""The SMART Imaging Access IG's two worked examples, as policy decisions.

- authorization-patterns.md, "A parent preparing records for a second opinion": Elena (proxy)
  receives her daughter Maya's ankle X-ray, not the pelvic ultrasound from a confidential
  encounter; and (issue 11) a study partly excluded is never released whole.
- specification.md, Backend Services example: a referral service may see study A of patient 123,
  not study B of the same patient, and nothing of patient 456 (search: 403).
"""

from __future__ import annotations

from datetime import date

from smart_imaging.access.policy import Requester, decide_patient, decide_study
from smart_imaging.config.policy import parse_policy

from .dicom_json import series, study

TODAY = date(2026, 10, 1)

PROXY_POLICY = parse_policy(
    {
        "default": "allow",
        "confidentialityAttribute": "ConfidentialityCode",
        "confidentialityWhenAbsent": "N",
        "rules": [
            {
                "name": "proxy-excludes-confidential",
                "effect": "deny",
                "level": "series",
                "when": {"user": ["RelatedPerson/*"], "confidentiality": ["R", "V"]},
            }
        ],
    }
)
ELENA = Requester("second-opinion-app", "RelatedPerson/elena", frozenset({"patient/ImagingStudy.rs"}), "maya")
MAYA = Requester("second-opinion-app", "Patient/maya", frozenset({"patient/ImagingStudy.rs"}), "maya")

ANKLE = study("2.25.100", modalities=["DX"], description="XR ANKLE 3 VIEWS LEFT")
ANKLE_SERIES = [
    series("2.25.100.1", "DX", body_part="ANKLE", description="AP"),
    series("2.25.100.2", "DX", body_part="ANKLE", description="Lateral"),
]
ULTRASOUND = study("2.25.200", modalities=["US"], description="US PELVIS", confidentiality="R")
ULTRASOUND_SERIES = [series("2.25.200.1", "US", body_part="PELVIS", description="Transabdominal")]


def test_proxy_parent_receives_the_ankle_xray():
    decision = decide_study(PROXY_POLICY, ELENA, ANKLE, ANKLE_SERIES, today=TODAY)
    assert decision.complete
    assert decision.allowed_series == ("2.25.100.1", "2.25.100.2")


def test_proxy_parent_does_not_receive_the_confidential_ultrasound():
    decision = decide_study(PROXY_POLICY, ELENA, ULTRASOUND, ULTRASOUND_SERIES, today=TODAY)
    assert not decision.allowed  # omitted from search, refused on retrieval
    assert not decision.series_allowed("2.25.200.1")
    assert "proxy-excludes-confidential" in decision.reason


def test_the_patient_herself_receives_both():
    assert decide_study(PROXY_POLICY, MAYA, ULTRASOUND, ULTRASOUND_SERIES, today=TODAY).complete
    assert decide_study(PROXY_POLICY, MAYA, ANKLE, ANKLE_SERIES, today=TODAY).complete


def test_a_partly_excluded_study_is_never_released_whole():
    """One confidential series in the ankle study: the rest by series, the whole study refused."""
    mixed = [*ANKLE_SERIES, series("2.25.100.3", "OT", description="Scanned consent", confidentiality="R")]
    decision = decide_study(PROXY_POLICY, ELENA, ANKLE, mixed, today=TODAY)
    assert decision.allowed and not decision.complete
    assert decision.allowed_series == ("2.25.100.1", "2.25.100.2")
    assert not decision.series_allowed("2.25.100.3")


REFERRAL_POLICY = parse_policy(
    {"default": "allow", "backendClients": {"referral-service": {"patients": ["123"], "studies": ["2.25.1"]}}}
)


def referral(patient: str) -> Requester:
    return Requester("referral-service", None, frozenset({"system/ImagingStudy.rs"}), patient, backend=True)


def test_referral_service_sees_study_a_of_patient_123():
    assert decide_patient(REFERRAL_POLICY, referral("123")).allowed
    decision = decide_study(
        REFERRAL_POLICY, referral("123"), study("2.25.1"), [series("2.25.1.1")], today=TODAY
    )
    assert decision.complete


def test_referral_service_is_refused_study_b_of_patient_123():
    decision = decide_study(
        REFERRAL_POLICY, referral("123"), study("2.25.2"), [series("2.25.2.1")], today=TODAY
    )
    assert not decision.allowed and "not in client" in decision.reason


def test_referral_service_is_refused_patient_456():
    patient = decide_patient(REFERRAL_POLICY, referral("456"))
    assert not patient.allowed and "456" in patient.reason  # the search answers 403
    assert not decide_study(REFERRAL_POLICY, referral("456"), study("2.25.1"), today=TODAY).allowed


def test_another_backend_client_gets_nothing():
    other = Requester("other-service", None, frozenset({"system/ImagingStudy.rs"}), "123", backend=True)
    assert not decide_patient(REFERRAL_POLICY, other).allowed
    assert not decide_study(REFERRAL_POLICY, other, study("2.25.1"), today=TODAY).allowed
