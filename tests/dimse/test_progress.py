"""Pure parts of retrieval integrity: judging a retrieve's final response and counts, and C-FIND
answers with values pydicom cannot convert."""

from __future__ import annotations

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from smart_imaging.dicom import tags
from smart_imaging.errors import NotFound, SmartImagingError, UpstreamError, UpstreamTimeout
from smart_imaging.sources.dimse import identifiers as ids
from smart_imaging.sources.dimse.progress import Outcome, Progress, check_delivery

PEER = "DICOM archive X at h:1"


def status(code: int, remaining: int | None = None, completed: int = 0, failed: int = 0) -> Dataset:
    ds = Dataset()
    ds.Status = code
    if remaining is not None:
        ds.NumberOfRemainingSuboperations = remaining
    ds.NumberOfCompletedSuboperations, ds.NumberOfFailedSuboperations = completed, failed
    ds.NumberOfWarningSuboperations = 0
    return ds


def judged(outcome: Outcome, received: int, listed: int | None) -> type[SmartImagingError] | None:
    try:
        check_delivery(outcome, received, listed, PEER, "C-GET")
    except SmartImagingError as exc:
        return type(exc)
    return None


@pytest.mark.parametrize(
    ("outcome", "received", "listed", "verdict"),
    [
        (Outcome(0x0000, 5, announced=5), 5, 5, None),
        (Outcome(0x0000, 5, announced=5), 5, None, None),  # C-FIND gave no count
        (Outcome(0x0000, 5, announced=5), 5, 3, None),  # more than listed: the archive grew
        (Outcome(0x0000, 5, announced=5), 4, 5, UpstreamError),  # a completed one never arrived
        (Outcome(0x0000, 4, announced=4), 4, 5, UpstreamError),  # fewer than C-FIND lists
        (Outcome(0x0000, 3, announced=5), 3, None, UpstreamError),  # fewer than announced
        (Outcome(0xB000, 4, failed=1, announced=5), 4, 5, UpstreamError),  # warning: some failed
        (Outcome(0x0000, 5, warned=1, announced=5), 5, 5, UpstreamError),
        (Outcome(0xA702, 2, failed=3, announced=5), 2, 5, UpstreamError),
        (Outcome(0xFE00, 2, announced=5), 2, 5, UpstreamError),  # cancelled
        (Outcome(0x0000), 0, None, NotFound),  # nothing anywhere: no such study
        (Outcome(0xC000), 0, None, NotFound),  # Orthanc's answer for unknown UIDs
        (Outcome(0xC000), 0, 4, UpstreamError),  # ... but C-FIND lists instances: not "not found"
        (Outcome(0x0000), 0, 4, UpstreamError),
    ],
)
def test_only_everything_announced_and_received_is_a_success(
    outcome: Outcome, received: int, listed: int | None, verdict: type[SmartImagingError] | None
) -> None:
    assert judged(outcome, received, listed) is verdict


def test_progress_keeps_the_largest_announced_total_and_the_final_response() -> None:
    progress = Progress("C-GET", PEER, timeout=30)
    assert not progress.response(status(0xFF00, remaining=6, completed=0))
    assert not progress.response(status(0xFF00, remaining=3, completed=3))
    assert progress.response(status(0x0000, completed=4))  # Success, but 6 were announced
    outcome = progress.outcome()
    assert (outcome.status, outcome.completed, outcome.announced) == (0x0000, 4, 6)
    assert judged(outcome, 4, None) is UpstreamError


def test_an_ended_association_is_an_error_naming_how_far_it_got_and_silence_a_timeout() -> None:
    progress = Progress("C-MOVE", PEER, timeout=30)
    assert "does it allow our AE title ME" in str(progress.interrupted("ME"))  # before anything
    progress.response(status(0xFF00, remaining=8, completed=2))
    error = progress.interrupted("ME")
    assert type(error) is UpstreamError and "after 2 of 10 instances" in str(error)
    silent = Progress("C-GET", PEER, timeout=0.0)
    assert isinstance(silent.interrupted("ME"), UpstreamTimeout)
    with pytest.raises(UpstreamError):
        Progress("C-GET", PEER, timeout=30).outcome()  # no final response at all


def raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(Tag(tag), vr, len(value), value, 0, True, True)


@pytest.mark.parametrize("value", [b"1e999", b"abc", b"\xff\xfe", b"1\\2"])
def test_c_find_values_pydicom_cannot_convert_are_dropped_not_fatal(value: bytes) -> None:
    answer = Dataset(
        {
            Tag(0x0020000D): raw(0x0020000D, "UI", b"1.2.3\x00"),
            Tag(0x00201208): raw(0x00201208, "IS", value),
            Tag(0x00081030): raw(0x00081030, "LO", b"HEAD CT "),
        }
    )
    found = ids.to_json(answer, tags.STUDY_FIELDS)
    assert found[tags.StudyInstanceUID]["Value"] == ["1.2.3"]
    assert found[tags.StudyDescription]["Value"] == ["HEAD CT"]
    assert ids.count(answer, "NumberOfStudyRelatedInstances") is None
    if tags.NumberOfStudyRelatedInstances in found:  # "1\2" converts: two values, not a count
        assert found[tags.NumberOfStudyRelatedInstances]["Value"] == [1, 2]
