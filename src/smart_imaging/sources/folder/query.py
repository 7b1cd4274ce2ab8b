"""Searches over the folder index: studies as DICOM JSON (PS3.18 F.2), instances to retrieve.

Blocking (SQLite): call from a thread. Study, series and instance attributes are those QIDO-RS
returns (``dicom.tags.STUDY_FIELDS`` and friends), so the FHIR mapping treats the folder like
any DICOMweb archive.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...dicom import tags
from ...dicom.json_model import element
from ..base import DicomJson, SeriesRecord, StudyQuery, StudyRecord
from ..stored import StoredInstance

IndexedInstance = StoredInstance  # a file as the folder index describes it


_ORDER = (
    "series_number IS NULL, series_number, series_uid, "
    "instance_number IS NULL, instance_number, sop_instance_uid, path"
)


def search(conn: sqlite3.Connection, query: StudyQuery) -> list[StudyRecord]:
    """Studies matching ``query``: PatientID exactly (None: all, "": none), optional UIDs."""
    if query.mrn == "":
        return []
    sql = "SELECT * FROM files WHERE sop_instance_uid IS NOT NULL"
    args: list[Any] = []
    if query.mrn is not None:
        sql += " AND mrn = ?"
        args.append(query.mrn)
    if query.study_uids:
        sql += f" AND study_uid IN ({', '.join('?' * len(query.study_uids))})"
        args.extend(query.study_uids)
    # One record per (PatientID, study), as DICOMweb archives answer: files of two patients
    # under one study UID (bad data) show as two studies, never as one patient's.
    groups: dict[tuple[str, str], list[sqlite3.Row]] = {}
    seen: set[str] = set()
    for row in conn.execute(f"{sql} ORDER BY study_uid, {_ORDER}", args):
        if row["sop_instance_uid"] not in seen:  # copies of one instance count once
            seen.add(row["sop_instance_uid"])
            groups.setdefault((row["mrn"] or "", row["study_uid"]), []).append(row)
    records = [study_record(rows, query.include_instances) for rows in groups.values()]
    return sorted(records, key=_newest_first)


def instances(
    conn: sqlite3.Connection,
    root: Path,
    study_uid: str,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
    mrn: str | None = None,
) -> list[IndexedInstance]:
    """Files of a study, series or instance in series and instance number order; with
    ``mrn``, only files of that PatientID (a study never yields another patient's files)."""
    sql = "SELECT * FROM files WHERE study_uid = ?"
    args = [study_uid]
    if mrn is not None:
        sql += " AND mrn = ?"
        args.append(mrn)
    if series_uid is not None:
        sql += " AND series_uid = ?"
        args.append(series_uid)
    if sop_instance_uid is not None:
        sql += " AND sop_instance_uid = ?"
        args.append(sop_instance_uid)
    rows = conn.execute(f"{sql} ORDER BY {_ORDER}", args).fetchall()
    return _unique([_instance(root, row) for row in rows])


def study_record(rows: Sequence[sqlite3.Row], include_instances: bool = True) -> StudyRecord:
    """One study from its files' rows (sorted by series, then instance)."""
    first = rows[0]
    by_series: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        by_series.setdefault(row["series_uid"], []).append(row)
    series = [
        SeriesRecord(series_json(group), [instance_json(r) for r in group] if include_instances else None)
        for group in by_series.values()
    ]
    modalities = sorted({r["modality"] for r in rows if r["modality"]})
    study: DicomJson = {
        tags.StudyInstanceUID: element("UI", first["study_uid"]),
        tags.StudyDate: element("DA", first["study_date"]),
        tags.StudyTime: element("TM", first["study_time"]),
        tags.TimezoneOffsetFromUTC: element("SH", first["timezone_offset"]),
        tags.AccessionNumber: element("SH", first["accession_number"]),
        tags.ModalitiesInStudy: element("CS", *modalities),
        tags.StudyDescription: element("LO", first["study_description"]),
        tags.PatientID: element("LO", first["mrn"]),
        tags.IssuerOfPatientID: element("LO", first["mrn_issuer"]),
        tags.PatientName: _person_name(first["patient_name"]),
        tags.PatientBirthDate: element("DA", first["patient_birth_date"]),
        tags.PatientSex: element("CS", first["patient_sex"]),
        tags.StudyID: element("SH", first["study_id"]),
        tags.NumberOfStudyRelatedSeries: element("IS", len(by_series)),
        tags.NumberOfStudyRelatedInstances: element("IS", len(rows)),
    }
    newest = max(r["mtime_ns"] for r in rows)
    return StudyRecord(study, series, fhir_instant(newest))


def series_json(rows: Sequence[sqlite3.Row]) -> DicomJson:
    first = rows[0]
    return {
        tags.SeriesInstanceUID: element("UI", first["series_uid"]),
        tags.SeriesNumber: element("IS", first["series_number"]),
        tags.Modality: element("CS", first["modality"]),
        tags.SeriesDescription: element("LO", first["series_description"]),
        tags.SeriesDate: element("DA", first["series_date"]),
        tags.SeriesTime: element("TM", first["series_time"]),
        tags.NumberOfSeriesRelatedInstances: element("IS", len(rows)),
        tags.BodyPartExamined: element("CS", first["body_part_examined"]),
    }


def instance_json(row: sqlite3.Row) -> DicomJson:
    found: DicomJson = {
        tags.SOPInstanceUID: element("UI", row["sop_instance_uid"]),
        tags.SOPClassUID: element("UI", row["sop_class_uid"]),
        tags.InstanceNumber: element("IS", row["instance_number"]),
        tags.SeriesInstanceUID: element("UI", row["series_uid"]),
    }
    if row["number_of_frames"] is not None:
        found[tags.NumberOfFrames] = element("IS", row["number_of_frames"])
    return found


def fhir_instant(mtime_ns: int) -> str:
    """A file time as a FHIR instant (UTC, milliseconds)."""
    moment = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _person_name(name: str | None) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": name}]} if name else {"vr": "PN"}


def _newest_first(record: StudyRecord) -> tuple[int, str]:
    study = record.study
    stamp = "".join(str(study[t].get("Value", [""])[0]) for t in (tags.StudyDate, tags.StudyTime))
    digits = "".join(ch for ch in stamp if ch.isdigit())[:14].ljust(14, "0")
    return -int(digits), study[tags.StudyInstanceUID]["Value"][0]


def _instance(root: Path, row: sqlite3.Row) -> IndexedInstance:
    return IndexedInstance(
        path=root / row["path"],
        study_uid=row["study_uid"],
        series_uid=row["series_uid"],
        sop_instance_uid=row["sop_instance_uid"],
        transfer_syntax=row["transfer_syntax"] or "1.2.840.10008.1.2",
        number_of_frames=max(1, row["number_of_frames"] or 1),
        has_pixels=row["rows"] is not None,
        bits_allocated=row["bits_allocated"] or 16,
        size=row["size"],
        mtime_ns=row["mtime_ns"],
        complete=bool(row["complete"]),
    )


def _unique(found: list[IndexedInstance]) -> list[IndexedInstance]:
    """One file per SOP Instance UID (copies of a file in two places are served once)."""
    seen: set[str] = set()
    kept = []
    for item in found:
        if item.sop_instance_uid not in seen:
            seen.add(item.sop_instance_uid)
            kept.append(item)
    return kept
