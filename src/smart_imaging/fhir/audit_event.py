"""FHIR R4 AuditEvent for ImagingStudy searches and study/series retrievals (pure).

The IG asks (authorization-patterns.md, "Audit records", non-normative) to "record the client, any
represented user, the patient, and the study" and to "correlate the presented token, any
capability, and the retrieval decision without exposing credentials". The shape follows FHIR R4
AuditEvent (required: ``type``, ``recorded``, ``agent`` with ``requestor``, ``source.observer``)
with codes used by IHE BALP and DICOM PS3.15 A.5::

    {"resourceType": "AuditEvent",
     "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
     "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type" | "read"}],
     "action": "E" (search) | "R" (retrieval),
     "period": {"start": ..., "end": ...},            // retrieval: first and last request
     "recorded": "2026-10-01T12:00:00.000+00:00",
     "outcome": "0" (authorized) | "4" (refused) | "8" (failed: e.g. the PDP is down),
     "outcomeDesc": "refused by rule #1 'proxy-no-confidential'",
     "agent": [
       {"type": DCM 110150 Application, "who": {"identifier": {"system": <AS issuer>?, "value": <client_id>}},
        "requestor": <true when no user is known>, "policy": ["urn:uuid:<correlation id>"]},
       {"type": v3-ParticipationType IRCP, "who": {"reference": "<fhirUser>"} or {"identifier": {"value": <sub>}},
        "requestor": true, "policy": ["urn:uuid:<correlation id>"]}],      // when a user is known
     "source": {"site": <tenant>, "observer": {"display": <server name>}, "type": [security-source-type 4]},
     "entity": [
       {"what": {"reference": "Patient/123"}, "type": audit-entity-type 1, "role": object-role 1},
       {"what": {"identifier": {"system": "urn:dicom:uid", "value": "urn:oid:<study uid>"}},
        "type": audit-entity-type 2, "role": object-role 3,
        "detail": [{"type": "SeriesInstanceUID", "valueString": ...}, {"type": "requests", "valueString": "100"}]},
       {"type": audit-entity-type 2, "role": object-role 24, "query": <base64 of the search>}]}   // search

The correlation id (``agent.policy``, as BALP carries token identifiers) is a keyed hash of the
access token (:func:`correlation_id`), formatted as a UUID: equal for every event of one token,
useless for recovering the token or for guessing it without the server's key. Nothing here ever
receives the token itself; ``access_token`` parameters are removed from recorded queries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

Outcome = Literal["success", "refused", "failed"]
OUTCOME_CODES: dict[str, str] = {"success": "0", "refused": "4", "failed": "8"}
MAX_STUDIES = 200  # study entities listed for one search
MAX_SERIES = 1000  # series listed for one retrieval
MAX_TEXT = 500

AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_REFERENCE = re.compile(r"^(https?://\S+/)?[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class Actor:
    """Who asked: from the validated token, never the token itself."""

    client_id: str | None
    user: str | None  # fhirUser (a FHIR reference or URL), else the token's sub
    correlation: str | None  # correlation_id(token, key)
    issuer: str | None = None  # the authorization server: the namespace of client_id and sub
    address: str | None = None  # the client's network address, when recorded


@dataclass(frozen=True)
class Source:
    """This server, as the audit source."""

    observer: str = "smart-imaging"
    site: str | None = None  # the tenant


def correlation_id(token: str, key: bytes) -> str:
    """``urn:uuid:`` of HMAC-SHA256(key, token): stable per token, not reversible (RFC 9562 v8)."""
    digest = bytearray(hmac.new(key, b"smart-imaging/audit\0" + token.encode(), hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: custom
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
    return f"urn:uuid:{uuid.UUID(bytes=bytes(digest))}"


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _text(value: str) -> str:
    return "".join(c if c.isprintable() else " " for c in value[:MAX_TEXT])


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.isoformat(timespec="milliseconds")


def _agents(actor: Actor) -> list[dict[str, Any]]:
    policy = {"policy": [actor.correlation]} if actor.correlation else {}
    namespace = {"system": actor.issuer} if actor.issuer else {}
    app: dict[str, Any] = {
        "type": {"coding": [_coding(DCM, "110150", "Application")]},
        "who": {"identifier": {**namespace, "value": actor.client_id}}
        if actor.client_id
        else {"display": "unknown client"},
        "requestor": actor.user is None,
        **policy,
    }
    if actor.address:
        app["network"] = {"address": _text(actor.address), "type": "2"}  # IP address
    agents = [app]
    if actor.user:
        user = _text(actor.user)
        who = {"reference": user} if _REFERENCE.match(user) else {"identifier": {**namespace, "value": user}}
        agents.append(
            {
                "type": {"coding": [_coding(PARTICIPATION, "IRCP", "information recipient")]},
                "who": who,
                "requestor": True,
                **policy,
            }
        )
    return agents


def _source(source: Source) -> dict[str, Any]:
    found: dict[str, Any] = {
        "observer": {"display": source.observer},
        "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
    }
    if source.site:
        found["site"] = source.site
    return found


def _patient(patient: str | None) -> list[dict[str, Any]]:
    if not patient:
        return []
    return [
        {
            "what": {"reference": f"Patient/{_text(patient)}"},
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        }
    ]


def _study(uid: str, details: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "what": {
            "identifier": {
                "type": {"coding": [_coding(DCM, "110180", "Study Instance UID")]},
                "system": "urn:dicom:uid",
                "value": f"urn:oid:{uid}",
            }
        },
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "3", "Report"),
    }
    if details:
        entity["detail"] = [{"type": kind, "valueString": value} for kind, value in details]
    return entity


def scrub_query(query: str) -> str:
    """A search as recorded: ``access_token`` parameters (RFC 6750 2.3) removed."""
    path, _, params = query.partition("?")
    kept = [p for p in params.split("&") if p and unquote_plus(p.partition("=")[0]).lower() != "access_token"]
    return f"{path}?{'&'.join(kept)}" if kept else path


def _event(
    actor: Actor,
    source: Source,
    *,
    interaction: str,
    outcome: Outcome,
    reason: str | None,
    recorded: datetime,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _coding(AUDIT_TYPE, "rest", "RESTful Operation"),
        "subtype": [_coding(INTERACTION, interaction, interaction.replace("-", " "))],
        "action": "E" if interaction == "search-type" else "R",
        "recorded": _instant(recorded),
        "outcome": OUTCOME_CODES[outcome],
        "agent": _agents(actor),
        "source": _source(source),
    }
    if reason:
        event["outcomeDesc"] = _text(reason)
    return event


def search_event(
    actor: Actor,
    source: Source,
    *,
    patient: str | None,
    query: str,
    outcome: Outcome,
    recorded: datetime,
    reason: str | None = None,
    studies: Sequence[str] = (),
    interaction: Literal["search-type", "read"] = "search-type",
) -> dict[str, Any]:
    """An ImagingStudy search (or ``read``: ``GET ImagingStudy/{id}``): ``query`` is the path and
    query string; ``studies`` the returned UIDs."""
    event = _event(actor, source, interaction=interaction, outcome=outcome, reason=reason, recorded=recorded)
    recorded_query = scrub_query(query)
    entities = _patient(patient) + [_study(uid) for uid in studies[:MAX_STUDIES]]
    query_entity: dict[str, Any] = {
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "24", "Query"),
        "query": base64.b64encode(recorded_query.encode()).decode(),
        "detail": [{"type": "returned", "valueString": str(len(studies))}],
    }
    event["entity"] = [*entities, query_entity]
    return event


def retrieval_event(
    actor: Actor,
    source: Source,
    *,
    patient: str | None,
    study_uid: str,
    outcome: Outcome,
    start: datetime,
    end: datetime,
    recorded: datetime,
    series: Sequence[str] = (),
    series_not_listed: int = 0,
    requests: int = 1,
    kinds: Sequence[str] = (),
    reason: str | None = None,
) -> dict[str, Any]:
    """One study's retrieval (all its requests in a window): series touched, request count, kinds."""
    event = _event(actor, source, interaction="read", outcome=outcome, reason=reason, recorded=recorded)
    event["period"] = {"start": _instant(start), "end": _instant(end)}
    details = [("SeriesInstanceUID", uid) for uid in series[:MAX_SERIES]]
    unlisted = series_not_listed + max(0, len(series) - MAX_SERIES)
    if unlisted:
        details.append(("series-not-listed", str(unlisted)))
    details.append(("requests", str(requests)))
    if kinds:
        details.append(("kinds", " ".join(sorted(kinds))))
    event["entity"] = [*_patient(patient), _study(study_uid, details)]
    return event
