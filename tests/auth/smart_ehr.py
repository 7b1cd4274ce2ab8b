"""A small test EHR: SMART discovery, Patient reads and a bearer-authenticated introspection
proxy, in front of the real oidc-provider. It checks every credential it gets by introspecting
it at oidc-provider with its own client (``ehr``), as a real EHR's resource server would.
Faults can be switched on per endpoint to show how the imaging server copes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

BACKEND_CLIENTS = {"imaging-server", "imaging-server-rs"}


@dataclass
class EhrState:
    issuer: str
    ehr_secret: str
    base_url: str = ""  # set once served: http://127.0.0.1:PORT
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[str, str] = field(
        default_factory=dict
    )  # endpoint -> slow|garbage|unavailable|error500|missing
    introspection: str = "oidc"  # "oidc": point discovery at oidc-provider; "proxy": our /introspect
    counts: dict[str, int] = field(default_factory=dict)
    patient_readers: list[str] = field(default_factory=list)  # client_id of each accepted Patient read

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    def hit(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


async def _fault(state: EhrState, name: str) -> Response | None:
    fault = state.faults.get(name)
    if fault == "slow":
        await asyncio.sleep(3)
    elif fault == "garbage":
        return PlainTextResponse("<html>not json</html>", media_type="text/html")
    elif fault == "unavailable":
        return PlainTextResponse("down for maintenance", status_code=503)
    elif fault == "error500":
        return PlainTextResponse("boom", status_code=500)
    elif fault == "wrong-shape":
        return JSONResponse(["not", "an", "object"])
    return None


async def _introspect_at_oidc(state: EhrState, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(
            f"{state.issuer}/token/introspection", data={"token": token}, auth=("ehr", state.ehr_secret)
        )
        response.raise_for_status()
        return dict(response.json())


async def _caller(state: EhrState, request: Request) -> dict[str, Any] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    claims = await _introspect_at_oidc(state, header[7:])
    return claims if claims.get("active") is True else None


def make_ehr(state: EhrState) -> Starlette:
    async def smart_configuration(request: Request) -> Response:
        state.hit("smart-configuration")
        if (faulty := await _fault(state, "smart-configuration")) is not None:
            return faulty
        doc: dict[str, Any] = {
            "issuer": state.issuer,
            "token_endpoint": f"{state.issuer}/token",
            "jwks_uri": f"{state.issuer}/jwks",
            "introspection_endpoint": (
                f"{state.issuer}/token/introspection"
                if state.introspection == "oidc"
                else f"{state.fhir_base}/introspect"
            ),
            "capabilities": ["launch-ehr", "client-public", "permission-v2", "context-ehr-patient"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
        }
        if state.faults.get("smart-configuration") == "missing":
            doc.pop("introspection_endpoint")
        return JSONResponse(doc)

    async def patient(request: Request) -> Response:
        state.hit("patient")
        if (faulty := await _fault(state, "patient")) is not None:
            return faulty
        caller = await _caller(state, request)
        if caller is None:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        resource = state.patients.get(request.path_params["id"])
        if resource is None:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        # An app token may read only its own patient; backend clients read any.
        own = caller.get("patient") == resource["id"] or caller.get("sub") == f"nopatient:{resource['id']}"
        if caller.get("client_id") not in BACKEND_CLIENTS and not own:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=403)
        state.patient_readers.append(str(caller.get("client_id")))
        return JSONResponse(resource, media_type="application/fhir+json")

    async def introspect(request: Request) -> Response:
        """Bearer-authenticated introspection, as the SMART reference EHR does it."""
        state.hit("introspect")
        if (faulty := await _fault(state, "introspect")) is not None:
            return faulty
        caller = await _caller(state, request)
        if caller is None or caller.get("client_id") not in BACKEND_CLIENTS:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = parse_qs((await request.body()).decode())  # no python-multipart needed
        return JSONResponse(await _introspect_at_oidc(state, form.get("token", [""])[0]))

    return Starlette(
        routes=[
            Route("/fhir/.well-known/smart-configuration", smart_configuration),
            Route("/fhir/Patient/{id}", patient),
            Route("/fhir/introspect", introspect, methods=["POST"]),
        ]
    )
