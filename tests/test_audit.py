"""Audit: the AuditEvent builder (valid FHIR, no token anywhere), the retrieval aggregator, and the
sinks (stdout, file, POST to a real FHIR-ish HTTP server on a loopback port)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import stat
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smart_imaging.audit import AuditLog, FhirServerSink, FileSink, RetrievalAggregator, StreamSink
from smart_imaging.fhir.audit_event import Actor, Source, correlation_id, retrieval_event, search_event

TOKEN = "eyJhbGciOiJFUzM4NCJ9.c2VjcmV0LXRva2VuLWJvZHk.sig-abc123"
KEY = b"server-audit-key-not-secret"
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
SOURCE = Source(observer="smart-imaging test", site="hospital")


def actor(
    token: str = TOKEN, user: str | None = "RelatedPerson/elena", client: str | None = "viewer"
) -> Actor:
    return Actor(
        client, user, correlation_id(token, KEY), issuer="https://ehr.example.org", address="127.0.0.1"
    )


def valid(event: dict[str, Any]) -> AuditEvent:
    """fhir.resources checks the R4(B) structure; FHIR R4's required elements are checked here too."""
    parsed = AuditEvent.model_validate(event)
    assert event["type"]["code"] and event["recorded"] and event["source"]["observer"]
    assert event["agent"] and all(isinstance(a["requestor"], bool) for a in event["agent"])
    return parsed


def no_token(event: dict[str, Any]) -> None:
    text = json.dumps(event)
    for part in [TOKEN, *TOKEN.split(".")]:
        assert part not in text


# ---------------------------------------------------------------- builder


def test_search_event_is_valid_fhir_and_names_who_what_and_how_it_ended():
    event = search_event(
        actor(),
        SOURCE,
        patient="maya",
        query=f"/hospital/fhir/ImagingStudy?patient=maya&_include=ImagingStudy:endpoint&access_token={TOKEN}",
        outcome="success",
        recorded=T0,
        studies=["2.25.100", "2.25.101"],
    )
    valid(event)
    no_token(event)
    assert event["type"]["system"] == "http://terminology.hl7.org/CodeSystem/audit-event-type"
    assert event["type"]["code"] == "rest"
    assert event["subtype"][0] == {
        "system": "http://hl7.org/fhir/restful-interaction",
        "code": "search-type",
        "display": "search type",
    }
    assert (
        event["action"] == "E"
        and event["outcome"] == "0"
        and event["recorded"].startswith("2026-10-01T12:00")
    )
    app, user = event["agent"]
    assert app["who"]["identifier"] == {"system": "https://ehr.example.org", "value": "viewer"}
    assert app["requestor"] is False and app["network"] == {"address": "127.0.0.1", "type": "2"}
    assert user["who"] == {"reference": "RelatedPerson/elena"} and user["requestor"] is True
    assert app["policy"] == user["policy"] == [correlation_id(TOKEN, KEY)]
    assert event["source"]["site"] == "hospital"
    patient, study_a, study_b, query = event["entity"]
    assert patient["what"] == {"reference": "Patient/maya"} and patient["role"]["code"] == "1"
    assert study_a["what"]["identifier"]["value"] == "urn:oid:2.25.100"
    assert study_b["what"]["identifier"]["system"] == "urn:dicom:uid"
    recorded_query = base64.b64decode(query["query"]).decode()
    assert recorded_query == "/hospital/fhir/ImagingStudy?patient=maya&_include=ImagingStudy:endpoint"
    assert query["role"]["code"] == "24" and query["detail"] == [{"type": "returned", "valueString": "2"}]


@pytest.mark.parametrize(("outcome", "code"), [("success", "0"), ("refused", "4"), ("failed", "8")])
def test_retrieval_event_outcomes(outcome, code):
    event = retrieval_event(
        actor(),
        SOURCE,
        patient="maya",
        study_uid="2.25.200",
        outcome=outcome,
        start=T0,
        end=T0 + timedelta(seconds=20),
        recorded=T0 + timedelta(seconds=50),
        series=["2.25.200.1", "2.25.200.2"],
        requests=100,
        kinds=["frames", "metadata"],
        reason=None if outcome == "success" else "refused by rule #1 'proxy-no-confidential'",
    )
    valid(event)
    no_token(event)
    assert event["outcome"] == code and event["action"] == "R" and event["subtype"][0]["code"] == "read"
    assert event["period"] == {
        "start": "2026-10-01T12:00:00.000+00:00",
        "end": "2026-10-01T12:00:20.000+00:00",
    }
    study = event["entity"][1]
    assert study["what"]["identifier"]["value"] == "urn:oid:2.25.200"
    assert study["detail"] == [
        {"type": "SeriesInstanceUID", "valueString": "2.25.200.1"},
        {"type": "SeriesInstanceUID", "valueString": "2.25.200.2"},
        {"type": "requests", "valueString": "100"},
        {"type": "kinds", "valueString": "frames metadata"},
    ]
    assert ("outcomeDesc" in event) == (outcome != "success")


def test_refused_search_without_user_or_patient():
    event = search_event(
        actor(user=None), SOURCE, patient=None, query="/h/fhir/ImagingStudy", outcome="refused",
        recorded=T0, reason="patient 456 is outside client 'svc''s access",
    )  # fmt: skip
    valid(event)
    assert len(event["agent"]) == 1 and event["agent"][0]["requestor"] is True  # the app asked
    assert event["outcome"] == "4" and "456" in event["outcomeDesc"]
    assert [e["role"]["code"] for e in event["entity"]] == ["24"]


def test_a_user_that_is_not_a_reference_is_an_identifier():
    event = search_event(
        actor(user="a1b2c3-sub"), SOURCE, patient="1", query="/q", outcome="success", recorded=T0
    )
    assert event["agent"][1]["who"] == {
        "identifier": {"system": "https://ehr.example.org", "value": "a1b2c3-sub"}
    }
    valid(event)
    absolute = search_event(
        actor(user="https://ehr.example.org/fhir/Practitioner/7"), SOURCE, patient="1", query="/q",
        outcome="success", recorded=T0,
    )  # fmt: skip
    assert absolute["agent"][1]["who"] == {"reference": "https://ehr.example.org/fhir/Practitioner/7"}
    valid(absolute)


@pytest.mark.parametrize(
    ("query", "recorded"),
    [
        ("/f/ImagingStudy?access_token=abc&patient=1", "/f/ImagingStudy?patient=1"),
        ("/f/ImagingStudy?ACCESS_TOKEN=abc", "/f/ImagingStudy"),
        ("/f/ImagingStudy?access%5Ftoken=abc&x=1", "/f/ImagingStudy?x=1"),
        (
            "/f/ImagingStudy?patient=1&identifier=urn:oid:1.2",
            "/f/ImagingStudy?patient=1&identifier=urn:oid:1.2",
        ),
    ],
)
def test_access_tokens_are_removed_from_recorded_queries(query, recorded):
    event = search_event(actor(), SOURCE, patient="1", query=query, outcome="success", recorded=T0)
    assert base64.b64decode(event["entity"][-1]["query"]).decode() == recorded


def test_correlation_id_is_a_keyed_digest_of_the_token():
    first = correlation_id(TOKEN, KEY)
    assert first == correlation_id(TOKEN, KEY)
    assert first != correlation_id(TOKEN + "x", KEY)
    assert first != correlation_id(TOKEN, b"another key")
    parsed = uuid.UUID(first.removeprefix("urn:uuid:"))
    assert first.startswith("urn:uuid:") and parsed.version == 8 and parsed.variant == uuid.RFC_4122
    assert TOKEN not in first and TOKEN[:8] not in first


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        search_event(
            actor(), SOURCE, patient="1", query="/q", outcome="success", recorded=datetime(2026, 1, 1)
        )


# ---------------------------------------------------------------- aggregator


class Collector:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0

    def __call__(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.mono - 100.0)


def aggregator(**options: Any) -> tuple[RetrievalAggregator, Collector, Clock]:
    out, clock = Collector(), Clock()
    return RetrievalAggregator(out, clock=clock, now=clock.wall, **options), out, clock


async def test_one_hundred_frame_requests_become_one_event():
    agg, out, clock = aggregator(idle=30, max_age=300)
    for i in range(100):
        await agg.record(actor(), SOURCE, patient="maya", study_uid="2.25.200",
                         series_uid=f"2.25.200.{i % 3}", kind="frames")  # fmt: skip
        clock.mono += 0.1
    assert await agg.flush_due() == 0 and out.events == []  # still within the window
    clock.mono += 30
    assert await agg.flush_due() == 1
    [event] = out.events
    valid(event)
    no_token(event)
    details = {(d["type"], d["valueString"]) for d in event["entity"][1]["detail"]}
    assert ("requests", "100") in details and ("kinds", "frames") in details
    assert {v for k, v in details if k == "SeriesInstanceUID"} == {"2.25.200.0", "2.25.200.1", "2.25.200.2"}
    assert event["period"]["start"] == "2026-10-01T12:00:00.000+00:00"
    assert event["period"]["end"] == "2026-10-01T12:00:09.900+00:00"
    assert len(agg) == 0


async def test_windows_are_per_study_token_patient_and_outcome():
    agg, out, _ = aggregator()
    await agg.record(actor(), SOURCE, patient="maya", study_uid="1.1", kind="metadata")
    await agg.record(actor(), SOURCE, patient="maya", study_uid="1.1", kind="instances")
    await agg.record(actor(), SOURCE, patient="maya", study_uid="1.2")
    await agg.record(actor("another-token"), SOURCE, patient="maya", study_uid="1.1")
    await agg.record(
        actor(), SOURCE, patient="maya", study_uid="1.1", outcome="refused", reason="partial study"
    )
    assert await agg.flush_all() == 4
    outcomes = sorted((e["entity"][1]["what"]["identifier"]["value"], e["outcome"]) for e in out.events)
    assert outcomes == [
        ("urn:oid:1.1", "0"),
        ("urn:oid:1.1", "0"),
        ("urn:oid:1.1", "4"),
        ("urn:oid:1.2", "0"),
    ]
    refused = next(e for e in out.events if e["outcome"] == "4")
    assert refused["outcomeDesc"] == "partial study"


async def test_a_busy_window_still_closes_at_max_age():
    agg, out, clock = aggregator(idle=30, max_age=60)
    for _ in range(13):
        await agg.record(actor(), SOURCE, patient="p", study_uid="1.1")
        clock.mono += 5
        await agg.flush_due()
    assert len(out.events) == 1  # closed at 60 s although never idle
    await agg.aclose()
    assert len(out.events) == 2  # the rest at shutdown


async def test_memory_is_bounded_by_flushing_the_oldest_window():
    agg, out, _ = aggregator(max_open=3)
    for uid in ("1.1", "1.2", "1.3", "1.4", "1.5"):
        await agg.record(actor(), SOURCE, patient="p", study_uid=uid)
    assert len(agg) == 3
    assert [e["entity"][1]["what"]["identifier"]["value"] for e in out.events] == [
        "urn:oid:1.1",
        "urn:oid:1.2",
    ]


async def test_series_listed_are_bounded_and_the_rest_counted():
    agg, out, _ = aggregator()
    for i in range(1005):
        await agg.record(actor(), SOURCE, patient="p", study_uid="1.1", series_uid=f"1.1.{i}")
    await agg.flush_all()
    details = out.events[0]["entity"][1]["detail"]
    assert sum(d["type"] == "SeriesInstanceUID" for d in details) == 1000
    assert {"type": "series-not-listed", "valueString": "5"} in details


async def test_background_flush_emits_without_being_asked():
    out = Collector()
    agg = RetrievalAggregator(out, idle=0.1, max_age=10)
    agg.start()
    await agg.record(actor(), SOURCE, patient="p", study_uid="1.1", kind="frames")
    for _ in range(100):
        if out.events:
            break
        await asyncio.sleep(0.05)
    await agg.aclose()
    assert len(out.events) == 1


# ---------------------------------------------------------------- sinks


def event() -> dict[str, Any]:
    return search_event(
        actor(), SOURCE, patient="maya", query="/q?patient=maya", outcome="success", recorded=T0
    )


async def test_stream_sink_writes_json_lines():
    stream = io.StringIO()
    log = AuditLog([StreamSink(stream)])
    await log.emit(event())
    await log.emit(event())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == event()


async def test_file_sink_appends_json_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier": true}\n')
    log = AuditLog([FileSink(path)])
    await asyncio.gather(*(log.emit(event()) for _ in range(50)))
    lines = path.read_text().splitlines()
    assert len(lines) == 51 and json.loads(lines[0]) == {"earlier": True}
    assert all(json.loads(line)["resourceType"] == "AuditEvent" for line in lines[1:])


async def test_file_sink_creates_a_private_file(tmp_path):
    path = tmp_path / "new.jsonl"
    await AuditLog([FileSink(path)]).emit(event())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_a_failing_sink_never_fails_the_caller_nor_the_other_sinks(tmp_path, caplog):
    stream = io.StringIO()
    log = AuditLog([FileSink(tmp_path / "missing-dir" / "audit.jsonl"), StreamSink(stream)])
    await log.emit(event())
    assert len(stream.getvalue().splitlines()) == 1
    assert "FileSink failed" in caplog.text
    await log.emit({"bad": object()})  # not serializable: logged, not raised
    assert "not serializable" in caplog.text


def fhir_server(received: list[tuple[str, bytes]], status: int = 201) -> Starlette:
    async def create(request: Request) -> Response:
        received.append((request.headers["content-type"], await request.body()))
        if status >= 300:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=status)
        return Response(status_code=status, headers={"Location": "AuditEvent/1/_history/1"})

    return Starlette(routes=[Route("/fhir/AuditEvent", create, methods=["POST"])])


async def test_fhir_sink_posts_each_event(serve):
    received: list[tuple[str, bytes]] = []
    base = serve(fhir_server(received))
    sink = FhirServerSink(f"{base}/fhir/", headers={"Authorization": "Bearer audit-writer"})
    log = AuditLog([sink])
    for _ in range(3):
        await log.emit(event())
    await log.aclose()  # drains the queue
    assert sink.sent == 3 and sink.failed == 0
    content_type, body = received[0]
    assert content_type == "application/fhir+json"
    valid(json.loads(body))


async def test_fhir_sink_failures_are_logged_not_raised(serve, caplog):
    received: list[tuple[str, bytes]] = []
    sink = FhirServerSink(serve(fhir_server(received, status=500)) + "/fhir")
    await sink.write(json.dumps(event()))
    await sink.aclose()
    assert sink.failed == 1 and len(received) == 1
    assert "answered HTTP 500" in caplog.text


async def test_fhir_sink_with_the_server_down_logs_and_carries_on(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = FhirServerSink(f"http://127.0.0.1:{port}/fhir", timeout=2)
    log = AuditLog([sink])
    await log.emit(event())
    await log.aclose()
    assert sink.failed == 1 and "POST to the FHIR server failed (ConnectError)" in caplog.text


async def test_fhir_sink_queue_is_bounded(serve, caplog):
    received: list[tuple[str, bytes]] = []
    sink = FhirServerSink(serve(fhir_server(received)) + "/fhir", queue_size=2)
    for _ in range(5):  # no await in between: the worker has not run yet
        await sink.write("{}")
    assert sink.dropped >= 2 and "queue full" in caplog.text
    await sink.aclose()
    assert sink.sent + sink.dropped == 5
