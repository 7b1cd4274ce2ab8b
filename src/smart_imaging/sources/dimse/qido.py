"""QIDO-RS under an Endpoint from a DIMSE archive (PS3.18 10.6 over PS3.4 C.4.1 C-FIND).

One association per query, at the level asked: STUDY with the bound Study Instance UID, SERIES of
the study, IMAGE of one series or of every series of the study. The return keys are the
attributes the client asked for (``includefield``) and its matching keys, when the data dictionary
knows them; C-FIND has no "all", so ``includefield=all`` gets the default attributes of the level.
Answers naming another study or patient are dropped (``identifiers.of_study``). Blocking: run in
the source's find pool.
"""

from __future__ import annotations

import logging

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from ...dicom import tags
from ...errors import UpstreamError
from ...wado.qido import QidoQuery
from ..base import DicomJson
from . import identifiers as ids
from . import scu

log = logging.getLogger(__name__)
_LEVELS = {"studies": "STUDY", "series": "SERIES", "instances": "IMAGE"}


def records(peer: scu.Peer, query: QidoQuery) -> list[DicomJson]:
    """The bound study's records at ``query.level`` (blocking)."""
    fields = _known(query.fields)
    with scu.find_session(peer) as session:
        if query.level == "studies":
            found = session.find(_identifier(query, None, fields))
            answers = [
                a for a in found if ids.clean(str(a.get("StudyInstanceUID", "") or "")) == query.study_uid
            ]
        elif query.level == "series" or query.series_uid:
            answers = find_with_patient(session, _identifier(query, query.series_uid, fields))
        else:
            answers = []
            for series_uid in _series_of(session, query):
                answers += find_with_patient(session, _identifier(query, series_uid, fields))
    kept = ids.of_study(answers, query.study_uid, query.mrn, query.level)
    return [ids.to_json(answer, (*fields, tags.PatientID, tags.StudyInstanceUID)) for answer in kept]


def find_with_patient(session: scu.FindSession, identifier: Dataset) -> list[Dataset]:
    """``identifier`` asking for PatientID too; without it when the archive refuses that key
    (PatientID is a study-level key of the Study Root model, PS3.4 C.6.2.1)."""
    asking = ids.with_patient_id(identifier)
    try:
        return session.find(asking)
    except UpstreamError as exc:
        log.info(
            "C-FIND with PatientID at %s level refused (%s); asking without it",
            identifier.QueryRetrieveLevel,
            exc,
        )
        return session.find(identifier)


def _identifier(query: QidoQuery, series_uid: str | None, fields: tuple[str, ...]) -> Dataset:
    level = "IMAGE" if query.level == "instances" else _LEVELS[query.level]
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for key in fields:
        if key not in (tags.StudyInstanceUID, tags.SeriesInstanceUID):
            ds.add_new(Tag(key), dictionary_VR(Tag(key)), None)
    if level == "STUDY":
        ds.add_new(Tag(tags.PatientID), "LO", None)
    ds.StudyInstanceUID = query.study_uid
    if level != "STUDY":  # a unique key of the level (and above) is always sent, maybe empty
        ds.SeriesInstanceUID = series_uid or ""
    return ds


def _series_of(session: scu.FindSession, query: QidoQuery) -> list[str]:
    found = find_with_patient(session, ids.series_identifier(query.study_uid))
    kept = ids.of_study(found, query.study_uid, query.mrn, "series")
    uids = (ids.clean(str(a.get("SeriesInstanceUID", "") or "")) for a in kept)
    return [uid for uid in uids if uid]


def _known(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The tags the data dictionary knows (C-FIND return keys need a VR); others are left out."""
    known = []
    for key in fields:
        try:
            dictionary_VR(Tag(key))
        except KeyError:
            continue
        known.append(key)
    return tuple(known)
