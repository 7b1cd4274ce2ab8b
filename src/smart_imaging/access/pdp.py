"""The external policy decision point's protocol (pure: build the request, read the decision).

The IG's "DICOMweb requests an access decision before retrieval" pattern (authorization-
patterns.md); the IG does not define the API, so this is ours. The HTTP side, timeouts, caching
and fail-closed handling are in :mod:`smart_imaging.policy_client`.

Request, ``POST {url}`` with ``Content-Type: application/json``::

    {"version": 1,
     "tenant": "hospital",
     "client_id": "second-opinion-app",        // null when the token names none
     "backend": false,                         // true: a SMART Backend Services (system/) token
     "user": "RelatedPerson/elena",            // fhirUser, else the token's sub; null if unknown
     "scopes": ["launch/patient", "patient/ImagingStudy.rs"],   // sorted
     "patient": "maya",                        // FHIR Patient id whose data is requested
     "study": {"uid": "2.25.200", "date": "2024-01-10", "accessionNumber": "A123",
               "modalities": ["US"], "description": "US PELVIS"},
     "series": [{"uid": "2.25.200.1", "modality": "US", "bodyPart": "PELVIS",
                 "description": "Transabdominal"}]}

Unknown attributes are ``null`` (``[]`` for lists); ``series`` is ``[]`` when the caller decides
on the study alone.

Decision, a 2xx answer whose body is a JSON object::

    {"decision": "permit" | "deny",
     "series": ["2.25.200.1"],      // optional, permit only: the allowed series; absent = all
     "reason": "proxy access excludes confidential encounters",   // optional, for the audit
     "ttl": 30}                     // optional: cache this decision at most this many seconds

Other keys are ignored (room for later versions). Series the request did not name are ignored
(they grant nothing). ``permit`` with a ``series`` list that leaves out some requested series
is a partial study: whole-study requests are refused. Anything else (wrong types, an unknown
``decision``, a non-object) is a :class:`DecisionError`, which the client turns into 503.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..dicom import json_model as dj
from ..dicom import tags
from ..dicom.datetime import fhir_datetime
from .policy import Outcome, Requester, StudyDecision, refused

VERSION = 1
MAX_REASON = 200  # characters of the PDP's reason kept for audit
MAX_SERIES = 10_000


class DecisionError(ValueError):
    """The decision point's answer does not follow the protocol."""


@dataclass(frozen=True)
class Answer:
    decision: StudyDecision
    ttl: float | None  # the PDP's own cache limit in seconds, if it gave one


def decision_request(
    requester: Requester, study_json: dj.DicomJson, series_jsons: Sequence[dj.DicomJson], *, tenant: str
) -> dict[str, Any]:
    """The JSON request for one study (see the module doc)."""
    return {
        "version": VERSION,
        "tenant": tenant,
        "client_id": requester.client_id,
        "backend": requester.backend,
        "user": requester.user,
        "scopes": sorted(requester.scopes),
        "patient": requester.patient,
        "study": {
            "uid": dj.text(study_json, tags.StudyInstanceUID),
            "date": fhir_datetime(dj.text(study_json, tags.StudyDate)),
            "accessionNumber": dj.text(study_json, tags.AccessionNumber),
            "modalities": dj.texts(study_json, tags.ModalitiesInStudy),
            "description": dj.text(study_json, tags.StudyDescription),
        },
        "series": [_series(s) for s in series_jsons if isinstance(s, dict)],
    }


def _series(ds: dj.DicomJson) -> dict[str, Any]:
    return {
        "uid": dj.text(ds, tags.SeriesInstanceUID),
        "modality": dj.text(ds, tags.Modality),
        "bodyPart": dj.text(ds, tags.BodyPartExamined),
        "description": dj.text(ds, tags.SeriesDescription),
    }


def request_key(request: dict[str, Any]) -> str:
    """A cache key for a request: the digest of its canonical JSON."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_decision(body: Any, request: dict[str, Any]) -> Answer:
    """Read a decision for ``request``; raise :class:`DecisionError` when it breaks the protocol."""
    if not isinstance(body, dict):
        raise DecisionError("the decision is not a JSON object")
    verdict = body.get("decision")
    if verdict not in ("permit", "deny"):
        raise DecisionError('\'decision\' must be "permit" or "deny"')
    reason = _reason(body.get("reason"))
    ttl = _ttl(body.get("ttl"))
    granted = _granted(body.get("series"))
    study_uid = request["study"]["uid"]
    if verdict == "deny":
        return Answer(refused(study_uid, f"decision point: deny{reason}"), ttl)
    asked = tuple(s["uid"] for s in request["series"] if s["uid"])
    return Answer(_permit(study_uid, asked, granted, f"decision point: permit{reason}"), ttl)


def _permit(
    study_uid: str | None, asked: tuple[str, ...], granted: list[str] | None, why: str
) -> StudyDecision:
    if granted is None:
        if not asked:
            return StudyDecision(study_uid, "allow", (), (), why, series_known=False)
        return StudyDecision(study_uid, "allow", asked, (), why)
    wanted = set(granted)
    if not asked:  # the request named no series: only the listed ones, never the whole study
        allowed = tuple(dict.fromkeys(granted))
        return StudyDecision(study_uid, "partial" if allowed else "deny", allowed, (), why)
    allowed = tuple(uid for uid in asked if uid in wanted)
    rest = tuple(uid for uid in asked if uid not in wanted)
    outcome: Outcome = "deny" if not allowed else ("partial" if rest else "allow")
    return StudyDecision(study_uid, outcome, allowed, rest, why)


def _reason(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DecisionError("'reason' must be a string")
    cleaned = "".join(c if c.isprintable() else " " for c in value[:MAX_REASON]).strip()
    return f" ({cleaned})" if cleaned else ""


def _ttl(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise DecisionError("'ttl' must be a finite number of seconds, 0 or more")
    return float(value)


def _granted(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_SERIES:
        raise DecisionError(f"'series' must be a list of at most {MAX_SERIES} series UIDs")
    if not all(isinstance(uid, str) and 0 < len(uid) <= 64 for uid in value):
        raise DecisionError("'series' must hold series UIDs (strings)")
    return value
