"""Audit wiring (``services.audit_trail``): sinks from SMART_IMAGING_AUDIT, actors from grants."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from smart_imaging.audit import FhirServerSink, FileSink, StreamSink
from smart_imaging.auth.base import AccessGrant
from smart_imaging.binding import key_from_secret
from smart_imaging.errors import ConfigError, Forbidden, Unavailable
from smart_imaging.services.audit_trail import AuditTrail, outcome_of, parse_sinks

KEY, _ = key_from_secret("audit-test")


def test_sinks_from_the_setting() -> None:
    sinks = parse_sinks("stdout, file:/var/log/audit.jsonl,fhir:https://fhir.example.org/fhir")
    assert [type(s) for s in sinks] == [StreamSink, FileSink, FhirServerSink]
    assert parse_sinks(None) == [] and parse_sinks("off") == [] and not AuditTrail([], KEY).enabled
    for bad in ("syslog", "file:", "fhir:ftp://x", "https://fhir.example.org"):
        with pytest.raises(ConfigError):
            parse_sinks(bad)


def test_outcomes_of_refusals_and_failures() -> None:
    assert outcome_of(None) == ("success", None)
    assert outcome_of(Forbidden("no")) == ("refused", "no")
    assert outcome_of(Unavailable("pdp down"))[0] == "failed"


async def test_the_actor_names_client_and_user_and_correlates_the_token_without_it(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    trail = AuditTrail([FileSink(path)], KEY)
    grant = AccessGrant("maya", client_id="app", subject="s", user="RelatedPerson/elena", issuer="https://as")
    actor = trail.actor(grant, "secret-token-value", "10.0.0.1")
    assert actor.client_id == "app" and actor.user == "RelatedPerson/elena" and actor.issuer == "https://as"
    assert actor.correlation == trail.actor(grant, "secret-token-value").correlation
    assert actor.correlation != trail.actor(grant, "other-token").correlation
    assert trail.actor(grant, None).correlation is None
    await trail.search(
        actor,
        "t",
        patient="maya",
        query="/t/fhir/ImagingStudy?patient=maya&access_token=x",
        outcome="success",
    )
    for _ in range(3):
        await trail.retrieval(actor, "t", patient="maya", study_uid="1.2", series_uid="1.2.1", kind="frames")
    await trail.aclose()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(events) == 2  # one search, one retrieval window
    assert "secret-token-value" not in path.read_text() and "access_token" not in str(events)


async def test_stdout_sink_writes_json_lines() -> None:
    stream = io.StringIO()
    trail = AuditTrail([StreamSink(stream)], KEY)
    await trail.search(
        trail.actor(AccessGrant("p"), "t"), "t", patient="p", query="/q", outcome="refused", reason="x"
    )
    assert json.loads(stream.getvalue())["outcome"] == "4"
