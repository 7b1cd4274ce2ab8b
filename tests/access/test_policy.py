"""Study-level access decisions: every condition, ordering, levels, defaults, unknowns."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from smart_imaging.access.policy import (
    Requester,
    StudyDecision,
    decide_patient,
    decide_study,
    intersect,
    needs_series,
    query_fields,
    refused,
)
from smart_imaging.config.policy import parse_policy
from smart_imaging.dicom import tags

from .dicom_json import PRIVATE_CONF, series, study

TODAY = date(2026, 10, 1)
APP = Requester("app", "Practitioner/7", frozenset({"patient/ImagingStudy.rs"}), "123")


def policy(*rules: dict[str, Any], default: str = "allow", **extra: Any):
    return parse_policy({"default": default, "rules": list(rules), **extra})


def deny(level: str = "study", **when: Any) -> dict[str, Any]:
    return {"effect": "deny", "level": level, "when": when}


def allow(level: str = "study", **when: Any) -> dict[str, Any]:
    return {"effect": "allow", "level": level, "when": when}


def decide(pol, st=None, ser=(), req: Requester = APP) -> StudyDecision:
    return decide_study(pol, req, st if st is not None else study(), list(ser), today=TODAY)


CT_STUDY = study(modalities=["CT"], description="CT CHEST W CONTRAST")
CT_SERIES = [series("1.2.3.1", "CT", body_part="CHEST", description="Axial 1mm")]

# (name, policy, study, series, requester, outcome)
TABLE: list[tuple[str, Any, Any, Any, Requester, str]] = [
    ("no rules, default allow", policy(), CT_STUDY, CT_SERIES, APP, "allow"),
    ("no rules, default deny", policy(default="deny"), CT_STUDY, CT_SERIES, APP, "deny"),
    ("modality match", policy(deny(modality=["CT"])), CT_STUDY, CT_SERIES, APP, "deny"),
    ("modality lower-case rule", policy(deny(modality=["ct"])), CT_STUDY, CT_SERIES, APP, "deny"),
    ("modality miss", policy(deny(modality=["US"])), CT_STUDY, CT_SERIES, APP, "allow"),
    ("body part case-insensitive", policy(deny(bodyPart=["Chest"])), CT_STUDY, CT_SERIES, APP, "deny"),
    ("body part miss", policy(deny(bodyPart=["PELVIS"])), CT_STUDY, CT_SERIES, APP, "allow"),
    ("study description glob", policy(deny(studyDescription="ct chest*")), CT_STUDY, CT_SERIES, APP, "deny"),
    ("glob is whole value", policy(deny(studyDescription="chest")), CT_STUDY, CT_SERIES, APP, "allow"),
    (
        "study description regex anywhere",
        policy(deny(studyDescription={"regex": "chest"})),
        CT_STUDY,
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "regex anchored miss",
        policy(deny(studyDescription={"regex": "^chest"})),
        CT_STUDY,
        CT_SERIES,
        APP,
        "allow",
    ),
    ("series description", policy(deny(seriesDescription="axial*")), CT_STUDY, CT_SERIES, APP, "deny"),
    ("study uid", policy(deny(studyInstanceUid=["1.2.3"])), CT_STUDY, CT_SERIES, APP, "deny"),
    ("study uid miss", policy(deny(studyInstanceUid=["1.2.4"])), CT_STUDY, CT_SERIES, APP, "allow"),
    (
        "older than: 630 days > 365",
        policy(deny(studyAge={"olderThanDays": 365})),
        CT_STUDY,
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "older than: 630 days < 1000",
        policy(deny(studyAge={"olderThanDays": 1000})),
        CT_STUDY,
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "younger than 30 days",
        policy(allow(studyAge={"youngerThanDays": 30}), default="deny"),
        study(date="20260920"),
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "not younger than 30 days",
        policy(allow(studyAge={"youngerThanDays": 30}), default="deny"),
        study(date="20260820"),
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "age range",
        policy(deny(studyAge={"olderThanDays": 10, "youngerThanDays": 20})),
        study(date="20260916"),
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "old DA form YYYY.MM.DD",
        policy(deny(studyAge={"olderThanDays": 365})),
        study(date="2024.01.10"),
        CT_SERIES,
        APP,
        "deny",
    ),
    ("client id", policy(deny(clientId=["app"])), CT_STUDY, CT_SERIES, APP, "deny"),
    ("client id miss", policy(deny(clientId=["other"])), CT_STUDY, CT_SERIES, APP, "allow"),
    ("user glob", policy(deny(user=["Practitioner/*"])), CT_STUDY, CT_SERIES, APP, "deny"),
    ("user glob case-sensitive", policy(deny(user=["practitioner/*"])), CT_STUDY, CT_SERIES, APP, "allow"),
    (
        "user absolute URL glob",
        policy(deny(user=["*/Practitioner/7"])),
        CT_STUDY,
        CT_SERIES,
        Requester("app", "https://ehr.example.org/fhir/Practitioner/7", frozenset(), "123"),
        "deny",
    ),
    (
        "scopes any of",
        policy(allow(scopes=["x", "patient/ImagingStudy.rs"]), default="deny"),
        CT_STUDY,
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "scopes missing",
        policy(allow(scopes=["user/ImagingStudy.rs"]), default="deny"),
        CT_STUDY,
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "AND of conditions: one fails",
        policy(deny(modality=["CT"], clientId=["other"])),
        CT_STUDY,
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "AND of conditions: all hold",
        policy(deny(modality=["CT"], clientId=["app"], bodyPart=["CHEST"])),
        CT_STUDY,
        CT_SERIES,
        APP,
        "deny",
    ),
    ("empty when matches all", policy(deny()), CT_STUDY, CT_SERIES, APP, "deny"),
    (
        "first match wins: allow then deny",
        policy(allow(clientId=["app"]), deny()),
        CT_STUDY,
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "first match wins: deny then allow",
        policy(deny(clientId=["app"]), allow()),
        CT_STUDY,
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "non-matching rule falls through to default",
        policy(allow(clientId=["x"]), default="deny"),
        CT_STUDY,
        CT_SERIES,
        APP,
        "deny",
    ),
    # unknowns: deny rules apply, allow rules do not, unless whenUnknown says otherwise
    (
        "missing date: deny rule applies",
        policy(deny(studyAge={"olderThanDays": 365})),
        study(date=None),
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "missing date: allow rule does not",
        policy(allow(studyAge={"olderThanDays": 1}), default="deny"),
        study(date=None),
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "malformed date is unknown",
        policy(deny(studyAge={"olderThanDays": 365})),
        study(date="20241399"),
        CT_SERIES,
        APP,
        "deny",
    ),
    (
        "missing date, whenUnknown no-match",
        policy({**deny(studyAge={"olderThanDays": 365}), "whenUnknown": "no-match"}),
        study(date=None),
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "missing body part: deny applies",
        policy(deny(bodyPart=["PELVIS"])),
        CT_STUDY,
        [series("1.1", "CT")],
        APP,
        "deny",
    ),
    (
        "missing body part, a series matches: no-match still denies",
        policy({**deny(bodyPart=["PELVIS"]), "whenUnknown": "no-match"}),
        CT_STUDY,
        [series("1.1", "CT"), series("1.2", "CT", body_part="PELVIS")],
        APP,
        "deny",
    ),
    (
        "missing description: allow rule with whenUnknown match",
        policy({**allow(studyDescription="CT*"), "whenUnknown": "match"}, default="deny"),
        study(),
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "missing client id: deny rule applies",
        policy(deny(clientId=["other"])),
        CT_STUDY,
        CT_SERIES,
        Requester(None, None, frozenset(), "123"),
        "deny",
    ),
    (
        "missing user: allow rule does not",
        policy(allow(user=["*"]), default="deny"),
        CT_STUDY,
        CT_SERIES,
        Requester("app", None, frozenset(), "123"),
        "deny",
    ),
    (
        "no scopes is known, not unknown",
        policy(deny(scopes=["system/*.rs"])),
        CT_STUDY,
        CT_SERIES,
        Requester("app", "u", frozenset(), "123"),
        "allow",
    ),
    (
        "study without ModalitiesInStudy: series decide",
        policy(deny(modality=["US"])),
        study(),
        CT_SERIES,
        APP,
        "allow",
    ),
    (
        "study ModalitiesInStudy counts beside series",
        policy(deny(modality=["US"])),
        study(modalities=["CT", "US"]),
        CT_SERIES,
        APP,
        "deny",
    ),
]


@pytest.mark.parametrize(("name", "pol", "st", "ser", "req", "outcome"), TABLE, ids=[row[0] for row in TABLE])
def test_decision_table(name, pol, st, ser, req, outcome):
    decision = decide(pol, st, ser, req)
    assert decision.outcome == outcome, decision.reason
    assert decision.complete == (outcome == "allow")
    assert decision.allowed == (outcome != "deny")


# ---------------------------------------------------------------- study- vs series-level rules

MIXED = [
    series("1.1", "MR", body_part="HEART", description="Cine"),
    series("1.2", "SR", description="Dose Report"),
]


def test_study_level_allow_needs_every_series():
    """``allow modality MR`` at study level does not release an MR study that also holds an SR."""
    decision = decide(policy(allow(modality=["MR"]), default="deny"), study(), MIXED)
    assert decision.outcome == "deny"


def test_study_level_deny_takes_any_series():
    decision = decide(policy(deny(modality=["SR"])), study(), MIXED)
    assert decision.outcome == "deny"
    assert "rule #1" in decision.reason


def test_series_level_allow_gives_a_partial_study():
    decision = decide(policy(allow("series", modality=["MR"]), default="deny"), study(), MIXED)
    assert decision.outcome == "partial" and not decision.complete and decision.allowed
    assert decision.allowed_series == ("1.1",) and decision.refused_series == ("1.2",)
    assert decision.series_allowed("1.1") and not decision.series_allowed("1.2")
    assert not decision.series_allowed("9.9")  # a series not seen at decision time
    assert decision.reason == "1 of 2 series refused (default deny)"


def test_series_level_deny_removes_only_those_series():
    rule = {**deny("series", seriesDescription="*dose*"), "name": "no-dose"}
    decision = decide(policy(rule), study(), MIXED)
    assert decision.outcome == "partial"
    assert decision.allowed_series == ("1.1",)
    assert "rule #1 'no-dose'" in decision.reason


def test_series_without_the_attribute_a_deny_rule_reads_is_refused():
    """Deny-safe: a series whose SeriesDescription is missing may be what the rule excludes."""
    pol = policy(deny("series", seriesDescription="*dose*"))
    decision = decide(pol, study(), [series("1.1", "MR"), series("1.2", "MR", description="Cine")])
    assert decision.outcome == "partial" and decision.allowed_series == ("1.2",)
    relaxed = policy({**deny("series", seriesDescription="*dose*"), "whenUnknown": "no-match"})
    assert decide(relaxed, study(), [series("1.1", "MR"), series("1.2", "MR", description="Cine")]).complete


def test_series_level_rule_removing_every_series_refuses_the_study():
    decision = decide(policy(deny("series", modality=["MR", "SR"])), study(), MIXED)
    assert decision.outcome == "deny" and decision.allowed_series == ()


def test_series_level_rules_see_study_attributes_too():
    pol = policy(deny("series", modality=["SR"], studyDescription="*cardiac*"))
    assert decide(pol, study(description="MR cardiac"), MIXED).outcome == "partial"
    assert decide(pol, study(description="MR knee"), MIXED).outcome == "allow"


def test_order_between_study_and_series_rules():
    """A study-level allow before a series-level deny wins for every series; reversed, it does not."""
    first_allow = policy(allow(clientId=["app"]), deny("series", modality=["SR"]))
    assert decide(first_allow, study(), MIXED).outcome == "allow"
    first_deny = policy(deny("series", modality=["SR"]), allow(clientId=["app"]))
    assert decide(first_deny, study(), MIXED).outcome == "partial"


def test_series_without_uid_is_never_allowed():
    decision = decide(policy(), study(), [series("1.1", "MR"), series(None, "MR")])
    assert decision.outcome == "partial" and decision.allowed_series == ("1.1",)
    assert "no SeriesInstanceUID" in decision.reason or "default allow" in decision.reason


def test_no_series_given_the_study_stands_in():
    allowed = decide(policy(deny(modality=["US"])), study(modalities=["CT"]))
    assert allowed.outcome == "allow" and not allowed.series_known
    assert allowed.series_allowed("any.series")  # whole study allowed, series not listed
    refused_ = decide(policy(deny(modality=["CT"])), study(modalities=["CT"]))
    assert refused_.outcome == "deny" and not refused_.series_allowed("any.series")


def test_no_series_and_series_rule_on_unknown_attribute_is_deny_safe():
    decision = decide(policy(deny("series", seriesDescription="*screen*")), study(modalities=["CT"]))
    assert decision.outcome == "deny"


# ---------------------------------------------------------------- confidentiality


def conf_policy(
    *rules: dict[str, Any],
    attribute: str = "ConfidentialityCode",
    absent: str | None = None,
    default: str = "allow",
):
    extra: dict[str, Any] = {"confidentialityAttribute": attribute}
    if absent:
        extra["confidentialityWhenAbsent"] = absent
    return policy(*rules, default=default, **extra)


def test_confidentiality_on_the_study():
    pol = conf_policy(deny(confidentiality=["R"]))
    assert decide(pol, study(confidentiality="R"), CT_SERIES).outcome == "deny"
    assert decide(pol, study(confidentiality="N"), CT_SERIES).outcome == "allow"
    assert decide(pol, study(confidentiality="r"), CT_SERIES).outcome == "deny"  # case-insensitive


def test_confidentiality_on_one_series_makes_a_series_rule_partial():
    pol = conf_policy(deny("series", confidentiality=["R"]))
    decision = decide(pol, study(), [series("1.1", confidentiality="N"), series("1.2", confidentiality="R")])
    assert decision.outcome == "partial" and decision.allowed_series == ("1.1",)


def test_study_confidentiality_applies_to_its_series():
    pol = conf_policy(deny("series", confidentiality=["R"]))
    decision = decide(pol, study(confidentiality="R"), [series("1.1", confidentiality="N"), series("1.2")])
    assert decision.outcome == "deny"


def test_multi_valued_codes_quantified_deny_safe():
    deny_r = conf_policy(deny(confidentiality=["R"]))
    assert decide(deny_r, study(confidentiality=["N", "R"]), CT_SERIES).outcome == "deny"
    allow_n = conf_policy(allow(confidentiality=["N"]), default="deny")
    assert decide(allow_n, study(confidentiality=["N", "R"]), CT_SERIES).outcome == "deny"
    assert (
        decide(allow_n, study(confidentiality=["N"]), [series("1.1", confidentiality="N")]).outcome == "allow"
    )


def test_absent_confidentiality_is_unknown_unless_a_default_code_is_configured():
    rule = deny(confidentiality=["R"])
    assert decide(conf_policy(rule), study(), CT_SERIES).outcome == "deny"  # unknown: deny-safe
    assert decide(conf_policy(rule, absent="N"), study(), CT_SERIES).outcome == "allow"
    allow_n = allow(confidentiality=["N"])
    assert decide(conf_policy(allow_n, absent="N", default="deny"), study(), CT_SERIES).outcome == "allow"


def test_confidentiality_in_a_private_tag():
    pol = conf_policy(deny(confidentiality=["RESTRICTED"]), attribute=PRIVATE_CONF, absent="N")
    assert (
        decide(pol, study(confidentiality="RESTRICTED", conf_tag=PRIVATE_CONF), CT_SERIES).outcome == "deny"
    )
    # the standard attribute is not read when another is configured
    assert decide(pol, study(confidentiality="RESTRICTED"), CT_SERIES).outcome == "allow"


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "garbage",
    [
        {tags.StudyDate: {"vr": "DA", "Value": "20240101"}},  # Value not a list
        {tags.StudyDate: "20240101"},  # not an element
        {tags.StudyDate: {"vr": "DA", "Value": [None]}},
        {tags.StudyDate: {"vr": "DA", "Value": [{"Alphabetic": "x"}]}},
        {},
    ],
)
def test_malformed_study_date_is_unknown(garbage):
    pol = policy(deny(studyAge={"olderThanDays": 1}))
    assert decide(pol, garbage, CT_SERIES).outcome == "deny"
    pol_allow = policy(allow(studyAge={"olderThanDays": 1}), default="deny")
    assert decide(pol_allow, garbage, CT_SERIES).outcome == "deny"


def test_a_date_sent_as_a_number_is_read_leniently():
    pol = policy(deny(studyAge={"olderThanDays": 1}, studyInstanceUid=["9.9"]), default="allow")
    garbled = {tags.StudyDate: {"vr": "DA", "Value": [20240101]}, tags.StudyInstanceUID: {"Value": ["9.9"]}}
    assert decide(pol, garbled, CT_SERIES).outcome == "deny"
    assert (
        decide(pol, {**garbled, tags.StudyDate: {"vr": "DA", "Value": [20260930]}}, CT_SERIES).outcome
        == "allow"
    )


def test_malformed_series_entries_are_unknown_or_unnamed():
    ser: list[Any] = [
        "not a dict",
        {tags.SeriesInstanceUID: {"vr": "UI", "Value": ["1.1"]}, tags.Modality: {"vr": "CS", "Value": [7]}},
    ]
    decision = decide(policy(deny(modality=["US"])), study(), ser)
    assert decision.outcome == "deny"  # the modality of 1.1 cannot be read: deny-safe
    decision = decide(policy(allow(modality=["US"]), default="allow"), study(), ser)
    assert decision.outcome == "partial" and decision.allowed_series == ("1.1",)  # the entry without UID
    assert decide(policy(), study(), ["garbage"]).outcome == "deny"  # nothing nameable to release


def test_long_values_matched_on_a_bounded_prefix():
    decision = decide(
        policy(deny(studyDescription="*secret")), study(description="x" * 10_000 + "secret"), CT_SERIES
    )
    assert decision.outcome == "allow"  # only the first 256 characters are read
    decision = decide(policy(deny(studyDescription="x*")), study(description="x" * 10_000), CT_SERIES)
    assert decision.outcome == "deny"


# ---------------------------------------------------------------- Backend Services and helpers


def backend_policy() -> Any:
    return policy(
        backendClients={
            "svc": {"patients": ["123"], "studies": ["1.2.3"]},
            "cardio": {"patients": "*", "default": "deny", "rules": [allow("series", modality=["MR"])]},
        }
    )


def test_backend_patient_and_client_checks():
    pol = backend_policy()
    svc = Requester("svc", None, frozenset({"system/ImagingStudy.rs"}), "123", backend=True)
    assert decide_patient(pol, svc).allowed
    assert not decide_patient(pol, Requester("svc", None, frozenset(), "456", backend=True)).allowed
    unknown = decide_patient(pol, Requester("nobody", None, frozenset(), "123", backend=True))
    assert not unknown.allowed and "not a registered" in unknown.reason
    assert decide_patient(pol, APP).allowed  # App Launch requests are not checked here


def test_backend_client_rules_intersect_with_tenant_rules():
    pol = parse_policy(
        {
            "default": "allow",
            "rules": [deny("series", seriesDescription="*dose*")],
            "backendClients": {
                "cardio": {
                    "patients": "*",
                    "default": "deny",
                    "rules": [allow("series", modality=["MR", "SR"])],
                }
            },
        }
    )
    cardio = Requester("cardio", None, frozenset({"system/ImagingStudy.rs"}), "777", backend=True)
    ser = [
        series("1.1", "MR", description="Cine"),
        series("1.2", "SR", description="Dose Report"),
        series("1.3", "CR", description="PA"),
    ]
    decision = decide(pol, study(), ser, cardio)
    assert decision.outcome == "partial" and decision.allowed_series == ("1.1",)
    assert decision.refused_series == ("1.2", "1.3")
    # the same study for an App Launch token sees the tenant rules only
    assert decide(pol, study(), ser).allowed_series == ("1.1", "1.3")


def test_intersect():
    whole = StudyDecision("1", "allow", ("a", "b"), (), "x")
    part = StudyDecision("1", "partial", ("a",), ("b",), "y")
    assert intersect(whole, part).allowed_series == ("a",) and intersect(whole, part).outcome == "partial"
    assert intersect(part, refused("1", "pdp says no")).reason == "pdp says no"
    unseen = StudyDecision("1", "allow", (), (), "z", series_known=False)
    assert intersect(unseen, part).allowed_series == ("a",)
    assert intersect(whole, StudyDecision("1", "partial", ("c",), ("a", "b"), "w")).outcome == "deny"


def test_query_fields_and_needs_series():
    study_tags, series_tags = query_fields(conf_policy())
    assert "00401008" in study_tags and "00401008" in series_tags
    assert tags.BodyPartExamined in series_tags and tags.StudyDate in study_tags
    assert not needs_series(policy(deny(modality=["CT"], studyAge={"olderThanDays": 3})))
    assert needs_series(policy(deny("series", modality=["SR"])))
    assert needs_series(
        policy(
            backendClients={"c": {"patients": "*", "default": "deny", "rules": [allow(bodyPart=["HEART"])]}}
        )
    )
