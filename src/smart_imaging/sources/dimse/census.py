"""How many instances the archive lists for a study or series, by C-FIND. Blocking: run in a thread.

A C-GET or C-MOVE reports its own sub-operation counts, but an archive can end one with
Success having sent fewer instances than it holds. C-FIND gives an independent count
(PS3.4 C.6.1.1.4, optional return keys of the Study Root model): Number of Study Related
Instances (0020,1208) at STUDY level, else Number of Series Related Instances (0020,1209)
summed over the SERIES level answers, else the distinct SOP Instance UIDs of the IMAGE level
answers. ``None`` when the archive gives none of these; the caller then relies on the
retrieve's own counts.
"""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from ..base import StudyQuery
from . import identifiers as ids
from . import scu

log = logging.getLogger(__name__)


def listed_instances(peer: scu.Peer, study_uid: str, series_uid: str | None = None) -> int | None:
    """The number of instances C-FIND lists for the study (or one series of it), or None.

    Never raises: a census that fails leaves the check to the retrieve's own counts (if the
    archive is down, the retrieve fails on its own).
    """
    try:
        with scu.find_session(peer) as session:
            return _listed(session, study_uid, series_uid)
    except Exception as exc:  # noqa: BLE001 - a census is a second opinion, never the cause of a failure
        log.warning("could not count the instances of %s by C-FIND: %s", study_uid, exc)
        return None


def _listed(session: scu.FindSession, study_uid: str, series_uid: str | None) -> int | None:
    if series_uid is None:
        query = ids.study_identifier(StudyQuery(None, (study_uid,))) or Dataset()
        studies = [a for a in session.find(query) if _uid(a, "StudyInstanceUID") == study_uid]
        counts = [ids.count(a, "NumberOfStudyRelatedInstances") for a in studies]
        if studies and None not in counts:
            return sum(c for c in counts if c is not None)
    answers = session.find(ids.series_identifier(study_uid, series_uid))
    series = {_uid(a, "SeriesInstanceUID"): a for a in answers}
    series.pop("", None)
    if series_uid is not None:
        series = {uid: a for uid, a in series.items() if uid == series_uid}
    if not series:
        return None
    counts = [ids.count(a, "NumberOfSeriesRelatedInstances") for a in series.values()]
    if None not in counts:
        return sum(c for c in counts if c is not None)
    return sum(_instances(session, study_uid, uid) for uid in series)


def _instances(session: scu.FindSession, study_uid: str, series_uid: str) -> int:
    answers = session.find(ids.instance_identifier(study_uid, series_uid))
    return len({_uid(a, "SOPInstanceUID") for a in answers} - {""})


def _uid(answer: Dataset, keyword: str) -> str:
    return ids.clean(str(answer.get(keyword, "") or ""))
