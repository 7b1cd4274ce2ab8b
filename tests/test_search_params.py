"""ImagingStudy search parameter parsing and FHIR date semantics (pure)."""

from __future__ import annotations

import pytest

from smart_imaging.errors import BadRequest
from smart_imaging.fhir.dates import parse_filter, parse_range
from smart_imaging.fhir.search import parse


def test_patient_forms() -> None:
    s = parse(
        [("patient", "123"), ("subject", "Patient/123"), ("patient", "https://ehr.example/fhir/Patient/123")]
    )
    assert s.patients == ["123", "123", "123"]
    with pytest.raises(BadRequest):
        parse([("patient", "Practitioner/1")])
    with pytest.raises(BadRequest):
        parse([("patient", "")])
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
