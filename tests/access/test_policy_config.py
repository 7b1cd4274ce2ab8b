"""The policy section's JSON shape: what loads, and the errors an administrator sees."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from smart_imaging.access.policy import Requester, decide_study
from smart_imaging.config.policy import compiled, parse_policy, parse_tag, regex_problem

FULL = {
    "// note": "comments are dropped",
    "default": "allow",
    "confidentialityAttribute": "ConfidentialityCode",
    "confidentialityWhenAbsent": "N",
    "rules": [
        {
            "name": "proxy-no-confidential",
            "effect": "deny",
            "when": {"user": ["RelatedPerson/*"], "confidentiality": ["R", "V"]},
        },
        {
            "name": "no-dose-screens",
            "effect": "deny",
            "level": "series",
            "when": {"seriesDescription": "*dose*"},
        },
        {
            "effect": "allow",
            "whenUnknown": "match",
            "when": {
                "modality": ["CT"],
                "bodyPart": ["chest"],
                "studyDescription": {"regex": "^CT (chest|thorax)"},
                "studyAge": {"olderThanDays": 1, "youngerThanDays": 3650},
                "studyInstanceUid": ["1.2.3"],
                "clientId": ["app"],
                "scopes": ["patient/ImagingStudy.rs"],
            },
        },
    ],
    "backendClients": {
        "referral-service": {"patients": ["123"], "studies": ["2.25.1234"]},
        "cardiac-review": {
            "patients": "*",
            "default": "deny",
            "rules": [{"effect": "allow", "level": "series", "when": {"modality": ["MR", "CT"]}}],
        },
    },
    "decisionPoint": {
        "url": "https://pdp.example.org/decide",
        "timeout": 2,
        "auth": {"type": "bearer", "token": "pdp-secret"},
        "cacheTtl": 30,
        "cacheMaxEntries": 10000,
    },
}


def errors(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        parse_policy(data)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


def test_full_example_loads_with_every_field():
    policy = parse_policy(FULL)
    assert policy.default == "allow"
    assert policy.confidentiality_attribute == "00401008"
    assert [r.name for r in policy.rules] == ["proxy-no-confidential", "no-dose-screens", None]
    assert policy.rules[1].level == "series"
    assert policy.rules[2].when.study_age is not None and policy.rules[2].when.study_age.older_than_days == 1
    assert policy.backend_clients["cardiac-review"].patients == "*"
    assert policy.backend_clients["referral-service"].studies == ["2.25.1234"]
    point = policy.decision_point
    assert point is not None and point.auth is not None and point.auth.type == "bearer"
    assert "pdp-secret" not in repr(policy)  # secrets are SecretStr


def test_minimal_policy_is_just_a_default():
    assert parse_policy({"default": "deny"}).rules == []


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        ({}, "default", "Field required"),
        ({"default": "permit"}, "default", "Input should be 'allow' or 'deny'"),
        ({"default": "allow", "rule": []}, "rule", "Extra inputs are not permitted"),
        (
            {"default": "allow", "rules": [{"effect": "deny", "when": {"modalty": ["CT"]}}]},
            "rules.0.when.modalty",
            "Extra",
        ),
        ({"default": "allow", "rules": [{"when": {}}]}, "rules.0.effect", "Field required"),
        (
            {"default": "allow", "rules": [{"effect": "deny", "when": {"modality": []}}]},
            "rules.0.when.modality",
            "at least 1",
        ),
        (
            {"default": "allow", "rules": [{"effect": "deny", "level": "instance"}]},
            "rules.0.level",
            "'study' or 'series'",
        ),
        (
            {"default": "allow", "rules": [{"effect": "deny", "when": {"studyAge": {}}}]},
            "rules.0.when.studyAge",
            "olderThanDays",
        ),
        (
            {"default": "allow", "rules": [{"effect": "deny", "when": {"studyAge": {"olderThanDays": -1}}}]},
            "olderThanDays",
            "greater than or equal",
        ),
        (
            {"default": "allow", "rules": [{"effect": "deny", "when": {"confidentiality": ["R"]}}]},
            "",
            "confidentialityAttribute",
        ),
        (
            {"default": "allow", "confidentialityAttribute": "NoSuchKeyword"},
            "confidentialityAttribute",
            "neither a DICOM keyword",
        ),
        (
            {"default": "allow", "confidentialityAttribute": "00020010"},
            "confidentialityAttribute",
            "not a data set attribute",
        ),
        ({"default": "allow", "backendClients": {"c": {"patients": "all"}}}, "backendClients.c.patients", ""),
        (
            {"default": "allow", "backendClients": {"c": {"patients": ["../x"]}}},
            "backendClients.c.patients",
            "pattern",
        ),
        (
            {"default": "allow", "backendClients": {"c": {"patients": "*", "studies": ["1.2.abc"]}}},
            "studies.0",
            "pattern",
        ),
        (
            {"default": "allow", "backendClients": {"c": {"patients": "*", "rules": [{"effect": "allow"}]}}},
            "backendClients.c",
            "'default' is required",
        ),
        ({"default": "allow", "decisionPoint": {"url": "file:///etc/passwd"}}, "decisionPoint.url", "http"),
        (
            {"default": "allow", "decisionPoint": {"url": "http://pdp", "timeout": 0}},
            "decisionPoint.timeout",
            "greater than 0",
        ),
        (
            {"default": "allow", "decisionPoint": {"url": "http://pdp", "auth": {"type": "digest"}}},
            "decisionPoint.auth",
            "tag",
        ),
    ],
)
def test_bad_config_names_the_field(data, location, message):
    found = errors(data)
    assert any(location in loc and message in msg for loc, msg in found), found


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_refused(text):
    data = json.loads(f'{{"default": "allow", "decisionPoint": {{"url": "http://pdp", "cacheTtl": {text}}}}}')
    assert any("cacheTtl" in loc for loc, _ in errors(data))
    data = json.loads(f'{{"default": "allow", "decisionPoint": {{"url": "http://pdp", "timeout": {text}}}}}')
    assert any("timeout" in loc for loc, _ in errors(data))


def test_nulls_mean_not_set():
    policy = parse_policy(
        {"default": "allow", "decisionPoint": None, "rules": [{"effect": "deny", "name": None}]}
    )
    assert policy.decision_point is None and policy.rules[0].name is None


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("ConfidentialityCode", "00401008"),
        ("00401008", "00401008"),
        ("(0040,1008)", "00401008"),
        ("0040,1008", "00401008"),
        ("00091010", "00091010"),  # private
        ("0009abcd", "0009ABCD"),
    ],
)
def test_confidentiality_attribute_forms(text, tag):
    assert parse_tag(text) == tag


# ---------------------------------------------------------------- text patterns


def pattern_errors(value: Any) -> list[tuple[str, str]]:
    return errors({"default": "allow", "rules": [{"effect": "deny", "when": {"studyDescription": value}}]})


def test_plain_string_is_a_case_insensitive_whole_value_glob():
    rule = parse_policy(
        {"default": "allow", "rules": [{"effect": "deny", "when": {"studyDescription": "*PELVI*"}}]}
    )
    pattern = rule.rules[0].when.study_description
    assert pattern is not None and pattern.glob == "*PELVI*"
    assert compiled(pattern).match("US pelvis complete")
    assert not compiled(pattern).match("US abdomen")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"glob": "*a*", "regex": "a"}, "exactly one"),
        ({}, "exactly one"),
        ({"regex": "(a"}, "invalid regex"),
        ({"regex": "x" * 201}, "at most 200"),
        ({"regex": "(a+)+$"}, "repeated group"),
        ({"regex": "(a|aa)*b"}, "repeated group"),
        ({"regex": "((ab)*c)+"}, "repeated group"),
        ({"regex": r"(a)\1"}, "backreferences"),
        ({"regex": "(?=a)b"}, "only (...)"),
        ({"regex": "(?<!a)b"}, "only (...)"),
        ({"regex": "(?P=n)"}, "only (...)"),
        ({"regex": "a*b*c*d*"}, "more than 3"),
        ({"regex": "a{1,1000}"}, "bounds above 100"),
        ({"glob": ""}, "at least 1"),
    ],
)
def test_unsafe_or_broken_patterns_refused(value, message):
    found = pattern_errors(value)
    assert any("studyDescription" in loc and message in msg for loc, msg in found), found


@pytest.mark.parametrize(
    "regex",
    [r"^CT (chest|thorax)", r"(?i)pelvi(s|c)", r"\d{4}-\d{2}", r"(?:ab)+c", "[)(|*]+", r"\(a+\)+", "a.b?"],
)
def test_safe_regexes_accepted(regex):
    assert regex_problem(regex) is None
    re.compile(regex)


def test_worst_allowed_regex_is_fast_on_hostile_values():
    """The subset bounds backtracking: three repetitions over a 256-character value."""
    policy = parse_policy(
        {
            "default": "allow",
            "rules": [{"effect": "deny", "when": {"studyDescription": {"regex": ".*.*.*x"}}}],
        }
    )
    pattern = policy.rules[0].when.study_description
    assert pattern is not None
    assert compiled(pattern).search("a" * 256) is None
    # values are cut to an LO value's 64 characters before matching, so the subset's cubic worst
    # case is bounded by that length: a match beyond it is not seen
    study = {
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00081030": {"vr": "LO", "Value": ["a" * 64 + "x"]},
    }
    requester = Requester(client_id="app", user=None, scopes=frozenset(), patient="p")
    assert decide_study(policy, requester, study, []).allowed
    study["00081030"]["Value"] = ["a" * 63 + "x"]
    assert not decide_study(policy, requester, study, []).allowed
