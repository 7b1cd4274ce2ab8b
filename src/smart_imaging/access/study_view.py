"""A study as a search result shows it under the access policy (pure).

The IG (specification.md "Finding studies"): "the server SHALL omit studies and included Endpoints
the client is not permitted to access". When the policy allows only some series of a study
(issue 11), the ImagingStudy lists the allowed series only and counts only those
(``numberOfSeries``, ``numberOfInstances``, ``modality``), so that nothing about the refused
series leaks; the study-level counts the archive reported are dropped.
"""

from __future__ import annotations

import copy

from ..dicom import json_model as dj
from ..dicom import tags
from ..dicom.records import SeriesRecord, StudyRecord
from .policy import StudyDecision

STUDY_LEVEL_SUMMARIES = (
    tags.NumberOfStudyRelatedSeries,
    tags.NumberOfStudyRelatedInstances,
    tags.ModalitiesInStudy,
)


def restrict(record: StudyRecord, decision: StudyDecision) -> StudyRecord | None:
    """``record`` as it may be shown: None when refused, only the allowed series when partial."""
    if not decision.allowed:
        return None
    if decision.complete:
        return record
    allowed = set(decision.allowed_series)
    series = [s for s in record.series if dj.text(s.series, tags.SeriesInstanceUID) in allowed]
    study = {k: v for k, v in record.study.items() if k not in STUDY_LEVEL_SUMMARIES}
    modalities = sorted({m for s in series if (m := dj.text(s.series, tags.Modality))})
    if modalities:
        study[tags.ModalitiesInStudy] = {"vr": "CS", "Value": modalities}
    instances = _instances(series)
    if instances is not None:
        study[tags.NumberOfStudyRelatedInstances] = {"vr": "IS", "Value": [instances]}
    study[tags.NumberOfStudyRelatedSeries] = {"vr": "IS", "Value": [len(series)]}
    return StudyRecord(study=study, series=[copy.copy(s) for s in series], last_updated=record.last_updated)


def _instances(series: list[SeriesRecord]) -> int | None:
    counts = [
        len(s.instances)
        if s.instances is not None
        else dj.integer(s.series, tags.NumberOfSeriesRelatedInstances)
        for s in series
    ]
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
