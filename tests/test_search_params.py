"""ImagingStudy search parameter parsing and FHIR date semantics (pure)."""

from __future__ import annotations

import pytest

from smart_imaging.errors import BadRequest
from smart_imaging.fhir.dates import parse_filter, parse_range
from smart_imaging.fhir.search import Identifier, parse


def test_patient_forms() -> None:
    s = parse(
        [("patient", "123"), ("subject", "Patient/123"), ("patient", "https://ehr.example/fhir/Patient/123")]
    )
    assert s.patients == ["123", "123", "123"]
    with pytest.raises(BadRequest):
        parse([("patient", "Practitioner/1")])
    # An empty patient= names no patient (issue 10.5: the reference server's open tenants list
    # every study for it); the access decision then refuses it wherever a patient is required.
    assert parse([("patient", "")]).patients == []
    with pytest.raises(BadRequest):
        parse([("patient", "123,")])
    with pytest.raises(BadRequest):
        parse([("patient", "a b")])


def test_identifiers_and_include() -> None:
    s = parse(
        [
            ("identifier", "urn:oid:1.2.3,urn:dicom:uid|urn:oid:1.2.4"),
            ("patient.identifier", "urn:sys|MRN-1"),
            ("_include", "ImagingStudy:endpoint"),
            ("_count", "5"),
        ]
    )
    assert s.study_uids == [["1.2.3", "1.2.4"]]
    assert (s.patient_identifiers[0].system, s.patient_identifiers[0].value) == ("urn:sys", "MRN-1")
    assert s.include_endpoint and s.count == 5
    with pytest.raises(BadRequest):
        parse([("identifier", "urn:oid:1.02")])
    with pytest.raises(BadRequest):
        parse([("_count", "-1")])


def test_unknown_parameters_ignored_unless_strict() -> None:
    assert parse([("patient", "1"), ("foo", "bar")]).unknown == ["foo"]
    with pytest.raises(BadRequest, match="foo"):
        parse([("patient", "1"), ("foo", "bar")], strict=True)
    with pytest.raises(BadRequest):
        parse([("_include", "ImagingStudy:patient")], strict=True)


@pytest.mark.parametrize(
    ("param", "target", "ok"),
    [
        ("ge2020-01-01", "2020-01-01T10:00:00+00:00", True),
        ("gt2020-01-01", "2020-01-01T10:00:00+00:00", False),
        ("gt2020-01-01", "2020-01-02", True),
        ("lt2020-01-01", "2019-12-31", True),
        ("lt2020-01-01", "2020-01-01", False),
        ("le2020-01", "2020-01-31", True),
        ("eq2020", "2020-06-15T12:00:00+02:00", True),
        ("2020-06-15", "2020-06-15T12:00:00+02:00", True),
        ("2020-06-15", "2020-06-15T23:30:00-05:00", False),  # 04:30 UTC on the 16th (dates are UTC days)
        ("ne2020-06-15", "2020-06-16", True),
        ("sa2020-06-15", "2020-06-16", True),
        ("eb2020-06-15", "2020-06-16", False),
        ("ge2020-01-01T10:00:00Z", "2020-01-01T10:00:00+00:00", True),
    ],
)
def test_date_prefixes(param: str, target: str, ok: bool) -> None:
    found = parse_range(target)
    assert found is not None
    assert parse_filter(param, "started").matches(found) is ok


def test_bad_dates() -> None:
    for bad in ("2020-13-01", "ge20200101", "yesterday", "gt"):
        with pytest.raises(BadRequest):
            parse_filter(bad, "started")


def test_mrn_by_fhirpath_and_the_cautious_fallback() -> None:
    from smart_imaging.fhir.mrn import mrn_of

    mr = {"type": {"coding": [{"code": "MR"}]}, "value": "M-1"}
    ssn = {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-99-9999"}
    default = ["identifier.where(type.coding.code='MR').value"]
    assert mrn_of({"identifier": [ssn, mr]}, default) == "M-1"
    assert mrn_of({"identifier": [ssn, {"value": "X"}]}, default, fallback=True) is None
    assert mrn_of({"identifier": [{"value": "only"}]}, default, fallback=True) == "only"
    assert mrn_of({"identifier": [{"value": "only"}]}, default, fallback=False) is None
    assert (
        mrn_of({"identifier": [ssn]}, ["identifier.where(system='x').value", "identifier[0].value"])
        == "999-99-9999"
    )
    assert mrn_of({"identifier": [mr]}, ["this is not fhirpath ((("]) is None


@pytest.mark.parametrize(
    "value", ["\u00b2", "\u0663", "1\u00b2", "\uff11", "+1", " 1", "1_0", "0x1", "1e3", "", "-0"]
)
def test_integers_are_ascii_digits_only(value: str) -> None:
    """``'²'.isdigit()`` is True and ``int('²')`` fails: that was a 500."""
    for name in ("_count", "_offset"):
        with pytest.raises(BadRequest, match=name):
            parse([(name, value)])


def test_count_is_capped_and_offset_bounded() -> None:
    assert parse([("_count", "999999999")]).count == 1000
    assert parse([("_count", "0000000000005")]).count == 5  # leading zeros do not count as digits
    with pytest.raises(BadRequest):
        parse([("_count", "9" * 5000)])  # beyond int()'s digit limit, and beyond ours
    with pytest.raises(BadRequest):
        parse([("_offset", "1" + "0" * 9)])


@pytest.mark.parametrize("name", ["patient:identifier", "subject:identifier", "patient:Patient.identifier"])
def test_identifier_modifier_is_the_patient_identifier(name: str) -> None:
    s = parse([(name, "urn:sys|MRN-1")], strict=True)
    assert s.patient_identifiers == [Identifier("urn:sys", "MRN-1")] and s.unknown == []
    with pytest.raises(BadRequest, match="value after"):
        parse([(name, "urn:sys|")])


def test_type_modifier_and_missing() -> None:
    assert (
        parse([("subject:Patient", "Patient/1"), ("patient:Patient", "1")], strict=True).patients == ["1"] * 2
    )
    assert parse([("identifier:missing", "true")], strict=True).match_none
    assert not parse([("patient:missing", "false")], strict=True).match_none
    assert parse([("started:missing", "true")]).started_missing is True
    assert parse([("started:missing", "true"), ("started:missing", "false")]).match_none
    with pytest.raises(BadRequest, match="true or false"):
        parse([("started:missing", "yes")])


@pytest.mark.parametrize(
    "name",
    [
        "patient:not",
        "patient:missing:x",
        "subject:Group",
        "identifier:text",
        "identifier:of-type",
        "started:exact",
        "_lastUpdated:missing",
        "patient.identifier:exact",
        "patient:identifier:not",
    ],
)
def test_unsupported_modifiers_are_ignored_but_refused_when_strict(name: str) -> None:
    lenient = parse([("patient", "1"), (name, "x")])
    assert lenient.unknown == [name] and lenient.patients == ["1"]
    assert not lenient.patient_identifiers and not lenient.study_uids and not lenient.started
    with pytest.raises(BadRequest, match="unsupported search parameters or modifiers"):
        parse([("patient", "1"), (name, "x")], strict=True)


def test_an_ignored_modifier_never_names_a_patient() -> None:
    """``patient:not=1`` must not become ``patient=1``, nor count as naming a patient."""
    s = parse([("patient:not", "1"), ("patient:below", "1"), ("subject:missing", "false")])
    assert s.patients == [] and s.patient_identifiers == []


@pytest.mark.parametrize(
    "value",
    [
        "\u0662\u0660\u0662\u0660",
        "\uff12\uff10\uff12\uff10-01-01",
        "2020-0\u0661-01",
        "2020-01-01T1\u0660:00Z",
    ],
)
def test_dates_are_ascii(value: str) -> None:
    """``\\d`` takes any Unicode decimal digit and ``int()`` reads them: no longer dates."""
    assert parse_range(value) is None
    with pytest.raises(BadRequest):
        parse_filter(value, "started")


def test_dates_at_the_ends_of_the_calendar_do_not_overflow() -> None:
    """``9999-12-31`` + 1 day and ``0001-01-01T00:00+01:00`` in UTC were OverflowError 500s."""
    for value in ("9999-12-31", "9999-12", "9999", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00+01:00"):
        found = parse_range(value)
        assert found is not None and found.low <= found.high, value
    everything = parse_filter("le9999-12-31", "started")
    assert everything.matches(parse_range("2020-06-15"))
    assert parse_filter("ge0001-01-01", "started").matches(parse_range("2020-06-15"))
    assert parse_range("0000-01-01") is None and parse_range("2020-06-15T10:00+24:00") is None


def test_a_malformed_patient_identifier_list_identifies_nothing() -> None:
    from smart_imaging.fhir.mrn import has_identifier

    for malformed in (5, "MRN-1", {"value": "MRN-1"}, None, [None, 3, "x"]):
        assert has_identifier({"identifier": malformed}, None, "MRN-1") is False
    assert has_identifier({"identifier": [{"system": "s", "value": "MRN-1"}]}, "s", "MRN-1")
    assert not has_identifier({"identifier": [{"system": "s", "value": "MRN-1"}]}, "t", "MRN-1")
