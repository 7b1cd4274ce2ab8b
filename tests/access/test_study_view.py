"""A study as a search shows it under the policy (``access.study_view``)."""

from __future__ import annotations

from smart_imaging.access.policy import StudyDecision
from smart_imaging.access.study_view import restrict
from smart_imaging.dicom import json_model as dj
from smart_imaging.dicom import tags
from smart_imaging.fhir.imaging_study import imaging_study
from smart_imaging.sources import SeriesRecord, StudyRecord

from .dicom_json import series, study


def record() -> StudyRecord:
    ds = study("2.25.1", modalities=["DX", "OT"], description="XR KNEE")
    ds[tags.NumberOfStudyRelatedSeries] = {"vr": "IS", "Value": [2]}
    ds[tags.NumberOfStudyRelatedInstances] = {"vr": "IS", "Value": [3]}
    knee = series("2.25.1.1", "DX")
    knee[tags.NumberOfSeriesRelatedInstances] = {"vr": "IS", "Value": [2]}
    consent = series("2.25.1.2", "OT")
    return StudyRecord(
        ds, [SeriesRecord(knee), SeriesRecord(consent, [{}])], last_updated="2026-01-01T00:00:00Z"
    )


def test_a_refused_study_is_not_shown_and_an_allowed_one_is_shown_as_is() -> None:
    whole = record()
    assert restrict(whole, StudyDecision("2.25.1", "deny", (), ("2.25.1.1", "2.25.1.2"), "r")) is None
    assert restrict(whole, StudyDecision("2.25.1", "allow", ("2.25.1.1", "2.25.1.2"), (), "r")) is whole


def test_a_partial_study_lists_and_counts_only_its_allowed_series() -> None:
    shown = restrict(record(), StudyDecision("2.25.1", "partial", ("2.25.1.1",), ("2.25.1.2",), "r"))
    assert shown is not None
    assert [dj.text(s.series, tags.SeriesInstanceUID) for s in shown.series] == ["2.25.1.1"]
    assert dj.integer(shown.study, tags.NumberOfStudyRelatedSeries) == 1
    assert dj.integer(shown.study, tags.NumberOfStudyRelatedInstances) == 2
    assert dj.texts(shown.study, tags.ModalitiesInStudy) == ["DX"]
    resource = imaging_study(shown, {"reference": "Patient/p"}, "#e")
    assert resource["numberOfSeries"] == 1 and resource["numberOfInstances"] == 2
    assert [m["code"] for m in resource["modality"]] == ["DX"] and "2.25.1.2" not in str(resource)
    assert shown.last_updated == "2026-01-01T00:00:00Z"


def test_unknown_instance_counts_are_left_out_rather_than_guessed() -> None:
    partial = StudyRecord(
        study("2.25.2"), [SeriesRecord(series("2.25.2.1")), SeriesRecord(series("2.25.2.2"))]
    )
    shown = restrict(partial, StudyDecision("2.25.2", "partial", ("2.25.2.1",), ("2.25.2.2",), "r"))
    assert shown is not None and dj.integer(shown.study, tags.NumberOfStudyRelatedInstances) is None
