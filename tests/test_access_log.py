"""The access log line (``observability.AccessLogMiddleware``): one JSON object per request,
capabilities redacted, any path written (orjson, or json for what orjson refuses)."""

from __future__ import annotations

import json
import logging

import pytest
from starlette.types import Receive, Scope, Send

from smart_imaging.observability import AccessLogMiddleware, Metrics


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    scope["state"].update(tenant="clinic", patient_id="pat-a")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"12345"})


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/clinic/wado/SECRET-binding/studies/1.2.3", "/clinic/wado/{binding}/studies/1.2.3"),
        ("/dyn/SECRET-config/fhir/metadata", "/dyn/{config}/fhir/metadata"),
        ("/clinic/fhir/Patient/\u00e9", "/clinic/fhir/Patient/\u00e9"),
        ("/clinic/fhir/Patient/\udcff", "/clinic/fhir/Patient/\udcff"),  # undecodable %FF
        ('/clinic/fhir/"\n', '/clinic/fhir/"\n'),  # quoted and escaped: still one line
    ],
)
async def test_one_json_line_per_request(caplog: pytest.LogCaptureFixture, path: str, logged: str) -> None:
    middleware = AccessLogMiddleware(answer, Metrics())
    scope: Scope = {"type": "http", "method": "GET", "path": path, "state": {}}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        pass

    with caplog.at_level(logging.INFO, "smart_imaging.access"):
        await middleware(scope, receive, send)  # type: ignore[arg-type]
    [record] = [r for r in caplog.records if r.name == "smart_imaging.access"]
    message = record.getMessage()
    assert "\n" not in message and "SECRET" not in message
    entry = json.loads(message)
    assert entry["path"] == logged
    assert (entry["status"], entry["bytes"], entry["tenant"], entry["patient"]) == (200, 5, "clinic", "pat-a")
