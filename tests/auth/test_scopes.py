import pytest

from smart_imaging.auth.scopes import grants_read, imaging_scopes, is_v2_permissions, parse_scopes

REPORTS = ("ImagingStudy", "DiagnosticReport")


@pytest.mark.parametrize(
    "scope",
    [
        "patient/ImagingStudy.read",
        "patient/*.read",
        "patient/ImagingStudy.rs",
        "patient/*.rs",
        "patient/ImagingStudy.cruds",
        "patient/*.cruds",
        "patient/*.*",
        "patient/ImagingStudy.*",
        "patient/ImagingStudy.rs",
        "patient/ImagingStudy.crs",
    ],
)
def test_granting_scopes(scope: str) -> None:
    assert grants_read(scope)


@pytest.mark.parametrize(
    "scope",
    [
        "user/ImagingStudy.read",
        "system/*.rs",
        "user/*.*",
        "patient/ImagingStudy.write",
        "patient/ImagingStudy.r",
        "patient/ImagingStudy.s",
        "patient/ImagingStudy.sr",
        "patient/ImagingStudy.rrs",
        "patient/Observation.rs",
        "patient/DiagnosticReport.read",
        "patient/ImagingStudy.rs?status=available",
        "launch/patient",
        "openid",
        "patient",
        "patient/ImagingStudy",
        "patient/ImagingStudy.cud",
        "Patient/ImagingStudy.read",
    ],
)
def test_scopes_that_never_grant_imaging(scope: str) -> None:
    assert not grants_read(scope)


def test_report_scopes_only_for_variants_that_allow_them() -> None:
    assert grants_read("patient/DiagnosticReport.read", REPORTS)
    assert not grants_read("patient/Observation.read", REPORTS)


def test_imaging_scopes_picks_the_granting_subset() -> None:
    scopes = parse_scopes("openid launch/patient user/*.rs patient/ImagingStudy.rs patient/Observation.rs")
    assert imaging_scopes(scopes) == {"patient/ImagingStudy.rs"}
    assert imaging_scopes(parse_scopes("user/*.* system/*.*")) == frozenset()


def test_parse_scopes_is_lenient_about_shape() -> None:
    assert parse_scopes("  a   b\tc ") == {"a", "b", "c"}
    assert parse_scopes(["a b", "c"]) == {"a", "b", "c"}
    assert parse_scopes(None) == frozenset()
    assert parse_scopes(42) == frozenset()


def test_v2_permission_grammar() -> None:
    assert is_v2_permissions("cruds") and is_v2_permissions("rs") and is_v2_permissions("c")
    assert not is_v2_permissions("") and not is_v2_permissions("sr") and not is_v2_permissions("rx")


def test_B2_system_scopes_covering_imagingstudy_search_and_read() -> None:
    """IG Backend Services: system/ImagingStudy.rs, "a granted wildcard covering the same
    interactions MAY also be used"; they grant only through ``system_imaging_scopes`` (registered
    backend clients, ``claims.check_token``), never as patient scopes."""
    from smart_imaging.auth.scopes import system_imaging_scopes

    granting = {"system/ImagingStudy.rs", "system/*.rs", "system/ImagingStudy.read", "system/*.cruds"}
    other = {
        "system/ImagingStudy.r",
        "system/Patient.rs",
        "patient/ImagingStudy.rs",
        "system/ImagingStudy.rs?x=1",
    }
    assert system_imaging_scopes(granting | other) == granting
    assert not imaging_scopes(granting)  # App Launch never counts them
