"""QIDO-RS under an Endpoint from the folder index (PS3.18 10.6): the bound study's records at
one level, as the index knows them (``query.study_record``). Blocking (SQLite): call from a thread.
"""

from __future__ import annotations

import sqlite3

from ...dicom import json_model as dj
from ...dicom import tags
from ...wado.qido import QidoQuery
from ..base import DicomJson, StudyQuery
from .query import search


def records(conn: sqlite3.Connection, qido: QidoQuery) -> list[DicomJson]:
    """The study (of ``qido.mrn`` when bound), its series, or their instances."""
    wanted = StudyQuery(qido.mrn, (qido.study_uid,), include_instances=qido.level == "instances")
    found = search(conn, wanted)
    if qido.level == "studies":
        return [record.study for record in found]
    out: list[DicomJson] = []
    for record in found:
        for series in record.series:
            if qido.series_uid and dj.text(series.series, tags.SeriesInstanceUID) != qido.series_uid:
                continue
            out += [series.series] if qido.level == "series" else list(series.instances or [])
    return out
