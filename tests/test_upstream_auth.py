"""Archive authentication modes and request token syntax, with real HTTP on both sides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ARCHIVE_TOKEN = "archive-bearer-token-123"


def bearer_archive() -> Starlette:
    """A minimal QIDO-RS endpoint that insists on a bearer token and records what it saw."""
    seen: list[dict[str, Any]] = []

    async def studies(request: Request) -> Response:
        seen.append({"auth": request.headers.get("authorization"), "query": str(request.url.query)})
        if request.headers.get("authorization") != f"Bearer {ARCHIVE_TOKEN}":
            return Response(status_code=401)
        return JSONResponse([], media_type="application/dicom+json")

    app = Starlette(routes=[Route("/dicom-web/studies", studies)])
    app.state.seen = seen
    return app


def test_bearer_authentication_to_the_archive(
    serve: Callable[[Any], str], imaging_server: Callable[..., str]
) -> None:
    archive = bearer_archive()
    archive_url = serve(archive)
    images = {"type": "dicom-web", "endpoint": f"{archive_url}/dicom-web", "lookup": "studies-by-mrn"}
    patient = {"resourceType": "Patient", "id": "p", "identifier": [{"value": "M*1"}]}
    base = imaging_server(
        {
            "good": {
                "authorization": {"type": "mock", "patient": patient},
                "images": {**images, "authentication": {"type": "bearer", "token": ARCHIVE_TOKEN}},
            },
            "bad": {
                "authorization": {"type": "mock", "patient": patient},
                "images": {**images, "authentication": {"type": "bearer", "token": "wrong-token-456"}},
            },
        }
    )
    good = httpx.get(f"{base}/good/fhir/ImagingStudy?patient=p")
    assert good.status_code == 200 and good.json()["total"] == 0
    assert archive.state.seen[-1]["auth"] == f"Bearer {ARCHIVE_TOKEN}"
    assert "PatientID=M*1" in archive.state.seen[-1]["query"]  # sent as is, filtered exactly after
    bad = httpx.get(f"{base}/bad/fhir/ImagingStudy?patient=p")
    assert bad.status_code == 502
    assert "credentials" in bad.json()["issue"][0]["diagnostics"]
    assert "wrong-token-456" not in bad.text


def test_malformed_authorization_headers_are_401(imaging_server: Callable[..., str]) -> None:
    base = imaging_server(
        {
            "t": {
                "authorization": {"type": "mock", "patient": {"resourceType": "Patient", "id": "p"}},
                "images": {"type": "dicom-web", "endpoint": "http://127.0.0.1:9/x"},
            }
        }
    )
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer not a token", "Bearer tok\u00e9n"):
        response = httpx.get(
            f"{base}/t/fhir/ImagingStudy?patient=p", headers={"Authorization": header.encode("utf-8")}
        )
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["resourceType"] == "OperationOutcome"
