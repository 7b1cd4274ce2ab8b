"""AuditEvents for what the server decides (issue 11.5; IG authorization-patterns.md "Audit
records": "Record the client, any represented user, the patient, and the study. Correlate the
presented token, any capability, and the retrieval decision without exposing credentials").

- One event per ImagingStudy search or read, authorized or refused (``search_event``).
- One event per retrieval of a study under one token: every WADO-RS and QIDO-RS request of that
  study (metadata, frames, instances, series, rendered) joins one window of
  ``audit.RetrievalAggregator``, emitted when idle for ``IDLE`` seconds, ``MAX_AGE`` old, or at
  shutdown. Refusals (403) and failures (503 from a decision point) are their own windows.
- Requests refused before a token is validated (401) are in the access log only: they name no one.

The events carry the client_id, the user (``fhirUser`` or ``sub``), the patient, the study, the
outcome with its reason, and a correlation id: a keyed hash of the token (``correlation_id``, key
derived from ``SMART_IMAGING_KEY``), never the token. Sinks come from ``SMART_IMAGING_AUDIT``
(:func:`parse_sinks`); none configured: auditing is off.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

from joserfc.jwk import OctKey

from ..audit import AuditLog, AuditSink, FhirServerSink, FileSink, RetrievalAggregator, StreamSink
from ..auth.base import AccessGrant
from ..errors import ConfigError, SmartImagingError
from ..fhir.audit_event import Actor, Outcome, Source, correlation_id, search_event

IDLE = 30.0
MAX_AGE = 300.0


def parse_sinks(spec: str | None) -> list[AuditSink]:
    """``SMART_IMAGING_AUDIT``: comma-separated ``stdout``, ``file:/path/audit.jsonl``,
    ``fhir:https://fhir.example.org/fhir`` (POST each event to ``{base}/AuditEvent``)."""
    sinks: list[AuditSink] = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item or item == "off":
            continue
        if item == "stdout":
            sinks.append(StreamSink())
        elif item.startswith("file:") and len(item) > 5:
            sinks.append(FileSink(Path(item[5:])))
        elif item.startswith(("fhir:http://", "fhir:https://")):
            sinks.append(FhirServerSink(item[5:]))
        else:
            raise ConfigError(
                "invalid settings",
                [("SMART_IMAGING_AUDIT", "comma-separated stdout, file:/path, fhir:https://server/fhir")],
            )
    return sinks


def outcome_of(exc: BaseException | None) -> tuple[Outcome, str | None]:
    """How a request is audited: no error success; 403/404 refused; anything else failed."""
    if exc is None:
        return "success", None
    if isinstance(exc, SmartImagingError):
        return ("refused" if exc.status in (403, 404) else "failed"), exc.message
    return "failed", type(exc).__name__


class AuditTrail:
    def __init__(self, sinks: list[AuditSink], key: OctKey, *, idle: float = IDLE, max_age: float = MAX_AGE):
        self._log = AuditLog(sinks) if sinks else None
        self._retrievals = (
            RetrievalAggregator(self._log.emit, idle=idle, max_age=max_age) if self._log else None
        )
        self._key = hmac.new(key.raw_value, b"smart-imaging/audit/correlation/v1", hashlib.sha256).digest()

    @property
    def enabled(self) -> bool:
        return self._log is not None

    def actor(self, grant: AccessGrant, token: str | None, address: str | None = None) -> Actor:
        """Who asked, from the validated grant; the token only as its correlation id."""
        return Actor(
            client_id=grant.client_id,
            user=grant.user or grant.subject,
            correlation=correlation_id(token, self._key) if token else None,
            issuer=grant.issuer,
            address=address,
        )

    async def search(
        self,
        actor: Actor,
        tenant: str,
        *,
        patient: str | None,
        query: str,
        outcome: Outcome,
        reason: str | None = None,
        studies: tuple[str, ...] = (),
        read: bool = False,
    ) -> None:
        """One ImagingStudy search (or read) and what it returned."""
        if self._log is None:
            return
        event = search_event(
            actor,
            Source(site=tenant),
            patient=patient,
            query=query,
            outcome=outcome,
            recorded=datetime.now(UTC),
            reason=reason,
            studies=studies,
            interaction="read" if read else "search-type",
        )
        await self._log.emit(event)

    async def retrieval(
        self,
        actor: Actor,
        tenant: str,
        *,
        patient: str | None,
        study_uid: str,
        series_uid: str | None,
        kind: str,
        outcome: Outcome = "success",
        reason: str | None = None,
    ) -> None:
        if self._retrievals is None:
            return
        self._retrievals.start()
        await self._retrievals.record(
            actor,
            Source(site=tenant),
            patient=patient,
            study_uid=study_uid,
            series_uid=series_uid,
            outcome=outcome,
            kind=kind,
            reason=reason,
        )

    async def aclose(self) -> None:
        """Emit every open retrieval window, then close the sinks (at shutdown)."""
        if self._retrievals is not None:
            await self._retrievals.aclose()
        if self._log is not None:
            await self._log.aclose()
