"""Pure parsers accept only what the standards allow: ASCII digits, no trailing newline."""

from __future__ import annotations

import pytest

from smart_imaging.dicom.datetime import fhir_datetime
from smart_imaging.dicom.uid import is_valid_uid


@pytest.mark.parametrize(
    "value", ["1.2.3\n", "1.2.3 ", "\u0661.\u0662.\u0663", "1.2.\u0663", "01.2", "1", "1..2"]
)
def test_uid_syntax_refuses_non_uids(value: str) -> None:
    assert not is_valid_uid(value)


def test_uid_syntax_accepts_uids() -> None:
    assert is_valid_uid("1.2.840.10008.1.2.1")
    assert is_valid_uid("2.25." + "9" * 39)


@pytest.mark.parametrize(
    "da", ["\u0662\u0660\u0662\u0660\u0660\u0661\u0660\u0661", "2020\uff101\uff101", "2020.\u06601.01"]
)
def test_dicom_dates_with_non_ascii_digits_are_not_dates(da: str) -> None:
    assert fhir_datetime(da) is None


def test_dicom_times_with_non_ascii_digits_give_the_date_only() -> None:
    assert fhir_datetime("20200101", "\u0661\u0662\u0660\u0660\u0660\u0660", "+0100") == "2020-01-01"
    assert fhir_datetime("20200101", "120000", "+0100") == "2020-01-01T12:00:00+01:00"
