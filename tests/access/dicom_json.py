"""Small DICOM JSON (PS3.18 F.2) builders for policy tests."""

from __future__ import annotations

from typing import Any

from smart_imaging.dicom import tags

CONFIDENTIALITY = "00401008"  # ConfidentialityCode
PRIVATE_CONF = "00091010"  # a private attribute some archives use instead


def _put(ds: dict[str, Any], tag: str, vr: str, value: Any) -> None:
    if value is None:
        return
    ds[tag] = {"vr": vr, "Value": value if isinstance(value, list) else [value]}


def study(
    uid: str = "1.2.3",
    *,
    date: str | None = "20240110",
    modalities: list[str] | None = None,
    description: str | None = None,
    confidentiality: str | list[str] | None = None,
    conf_tag: str = CONFIDENTIALITY,
    body_part: str | None = None,
) -> dict[str, Any]:
    ds: dict[str, Any] = {}
    _put(ds, tags.StudyInstanceUID, "UI", uid)
    _put(ds, tags.StudyDate, "DA", date)
    _put(ds, tags.ModalitiesInStudy, "CS", modalities)
    _put(ds, tags.StudyDescription, "LO", description)
    _put(ds, conf_tag, "LO", confidentiality)
    _put(ds, tags.BodyPartExamined, "CS", body_part)
    return ds


def series(
    uid: str | None,
    modality: str | None = "CT",
    *,
    body_part: str | None = None,
    description: str | None = None,
    confidentiality: str | list[str] | None = None,
    conf_tag: str = CONFIDENTIALITY,
) -> dict[str, Any]:
    ds: dict[str, Any] = {}
    _put(ds, tags.SeriesInstanceUID, "UI", uid)
    _put(ds, tags.Modality, "CS", modality)
    _put(ds, tags.BodyPartExamined, "CS", body_part)
    _put(ds, tags.SeriesDescription, "LO", description)
    _put(ds, conf_tag, "LO", confidentiality)
    return ds
