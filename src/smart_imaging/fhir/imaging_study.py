"""DICOM JSON study records to FHIR R4 ImagingStudy and Endpoint resources.

Follows the SMART Imaging Access IG (SmartImagingStudy): identifier ``urn:dicom:uid`` with
value ``urn:oid:<StudyInstanceUID>``, status, subject, started, modality, endpoint with
connectionType ``dicom-wado-rs``; series and instances when the source knows them.
"""

from __future__ import annotations

from typing import Any

from ..dicom import json_model as dj
from ..dicom import tags
from ..dicom.datetime import fhir_datetime
from ..dicom.records import SeriesRecord, StudyRecord

DCM = "http://dicom.nema.org/resources/ontology/DCM"
CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
PAYLOAD_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"


def study_uid(record: StudyRecord) -> str | None:
    return dj.text(record.study, tags.StudyInstanceUID)


def started(record: StudyRecord) -> str | None:
    ds = record.study
    return fhir_datetime(
        dj.text(ds, tags.StudyDate), dj.text(ds, tags.StudyTime), dj.text(ds, tags.TimezoneOffsetFromUTC)
    )


def imaging_study(record: StudyRecord, subject: dict[str, Any], endpoint_reference: str) -> dict[str, Any]:
    ds = record.study
    uid = study_uid(record) or ""
    series = [_series(s) for s in record.series]
    modalities = _modalities(record)
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": uid,
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}],
        "status": "available",
        "modality": [{"system": DCM, "code": m} for m in modalities],
        "subject": subject,
        "started": started(record),
        "endpoint": [{"reference": endpoint_reference}],
        "numberOfSeries": dj.integer(ds, tags.NumberOfStudyRelatedSeries)
        if dj.integer(ds, tags.NumberOfStudyRelatedSeries) is not None
        else (len(series) or None),
        "numberOfInstances": _instance_count(record),
        "description": dj.text(ds, tags.StudyDescription),
        "series": series or None,
    }
    accession = dj.text(ds, tags.AccessionNumber)
    if accession:
        resource["identifier"].append(
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]
                },
                "value": accession,
            }
        )
    if record.last_updated:
        resource["meta"] = {"lastUpdated": record.last_updated}
    return _prune(resource)


def endpoint(endpoint_id: str, address: str) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "id": endpoint_id,
        "status": "active",
        "connectionType": {"system": CONNECTION_TYPE, "code": "dicom-wado-rs"},
        "name": "DICOMweb WADO-RS",
        "payloadType": [{"coding": [{"system": PAYLOAD_TYPE, "code": "any"}], "text": "DICOM"}],
        "payloadMimeType": ["application/dicom"],
        "address": address,
    }


def _series(record: SeriesRecord) -> dict[str, Any]:
    ds = record.series
    modality = dj.text(ds, tags.Modality)
    out: dict[str, Any] = {
        "uid": dj.text(ds, tags.SeriesInstanceUID),
        "number": dj.integer(ds, tags.SeriesNumber),
        "modality": {"system": DCM, "code": modality or "OT"},
        "description": dj.text(ds, tags.SeriesDescription),
        "numberOfInstances": dj.integer(ds, tags.NumberOfSeriesRelatedInstances)
        if record.instances is None
        else len(record.instances),
        "started": fhir_datetime(dj.text(ds, tags.SeriesDate), dj.text(ds, tags.SeriesTime)),
    }
    body_part = dj.text(ds, tags.BodyPartExamined)
    if body_part:
        out["bodySite"] = {"display": body_part}
    if record.instances:
        instances = [_instance(i) for i in record.instances]
        out["instance"] = sorted(instances, key=lambda i: (i.get("number") is None, i.get("number") or 0))
    return _prune(out)


def _instance(ds: dict[str, Any]) -> dict[str, Any]:
    return _prune(
        {
            "uid": dj.text(ds, tags.SOPInstanceUID),
            "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{dj.text(ds, tags.SOPClassUID)}"},
            "number": dj.integer(ds, tags.InstanceNumber),
        }
    )


def _modalities(record: StudyRecord) -> list[str]:
    found = dj.texts(record.study, tags.ModalitiesInStudy)
    for s in record.series:
        modality = dj.text(s.series, tags.Modality)
        if modality and modality not in found:
            found.append(modality)
    return found


def _instance_count(record: StudyRecord) -> int | None:
    count = dj.integer(record.study, tags.NumberOfStudyRelatedInstances)
    if count is not None:
        return count
    per_series = [
        dj.integer(s.series, tags.NumberOfSeriesRelatedInstances) if s.instances is None else len(s.instances)
        for s in record.series
    ]
    return sum(n for n in per_series if n is not None) if per_series else None


def _prune(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if v is not None and v != [] and v != ""}
