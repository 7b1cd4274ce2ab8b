"""A tiny SMART EHR for benchmarks: discovery, a backend-services token endpoint, RFC 7662
introspection and Patient reads, so smart-imaging takes its real ``smart-on-fhir`` path.

It checks nothing but the bearer token on introspection and Patient reads (a benchmark needs the
server's real work, not a real EHR's). App tokens are ``app-token-{patient id}``; ``GET /stats``
counts the introspections.
Run: python bench/tiny_ehr.py PORT '{"pat-a": "77654033", ...}'   (patient id -> MRN)
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BACKEND_TOKEN = "tiny-ehr-backend-token"


def app_token(patient_id: str) -> str:
    return f"app-token-{patient_id}"


def make_app(base: str, patients: dict[str, str]) -> Starlette:
    """``base`` is the EHR's URL; ``patients`` maps patient id -> MRN."""
    stats = {"introspections": 0}
    tokens = {app_token(pid): pid for pid in patients}

    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(_discovery(base))

    async def token(request: Request) -> JSONResponse:
        return JSONResponse({"access_token": BACKEND_TOKEN, "token_type": "bearer", "expires_in": 3600})

    async def introspect(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {BACKEND_TOKEN}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        stats["introspections"] += 1
        form = parse_qs((await request.body()).decode())
        patient = tokens.get(form.get("token", [""])[0])
        if patient is None:
            return JSONResponse({"active": False})
        return JSONResponse(_claims(base, patient))

    async def patient(request: Request) -> JSONResponse:
        pid = request.path_params["id"]
        if pid not in patients or not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        return JSONResponse(_patient(pid, patients[pid]), media_type="application/fhir+json")

    async def counts(request: Request) -> JSONResponse:
        return JSONResponse(stats)

    return Starlette(
        routes=[
            Route("/fhir/.well-known/smart-configuration", discovery),
            Route("/token", token, methods=["POST"]),
            Route("/introspect", introspect, methods=["POST"]),
            Route("/fhir/Patient/{id}", patient),
            Route("/stats", counts),
        ]
    )


def _discovery(base: str) -> dict[str, Any]:
    return {
        "issuer": base,
        "token_endpoint": f"{base}/token",
        "introspection_endpoint": f"{base}/introspect",
        "jwks_uri": f"{base}/jwks",
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
    }


def _claims(base: str, patient: str) -> dict[str, Any]:
    return {
        "active": True,
        "iss": base,
        "client_id": "bench-viewer",
        "sub": f"user-{patient}",
        "scope": "launch/patient patient/ImagingStudy.rs patient/Patient.r",
        "patient": patient,
        "exp": int(time.time()) + 3600,
    }


def _patient(pid: str, mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                },
                "value": mrn,
            }
        ],
    }


def main() -> None:
    port, patients = int(sys.argv[1]), json.loads(sys.argv[2])
    app = make_app(f"http://127.0.0.1:{port}", patients)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
