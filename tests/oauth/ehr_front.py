"""The test EHR's FHIR side for the dual-launch tests: SMART discovery that points at the real
oidc-provider (authorize, token, jwks, issuer) and Patient reads checked by introspecting the
caller's token at oidc-provider, as a real EHR's resource server would. An app's token (or the
imaging server's EHR-leg token) may read only the patient in its context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FrontState:
    issuer: str  # oidc-provider
    ehr_secret: str  # client_secret of oidc-provider's "ehr" client (introspection)
    base_url: str = ""
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    imaging_bases: list[str] = field(default_factory=list)  # associated_endpoints (dual launch)
    reads: list[tuple[str, str]] = field(default_factory=list)  # (client_id, Patient id) per read

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"


def make_front(state: FrontState) -> Starlette:
    async def smart_configuration(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": state.issuer,
                "authorization_endpoint": f"{state.issuer}/auth",
                "token_endpoint": f"{state.issuer}/token",
                "jwks_uri": f"{state.issuer}/jwks",
                "introspection_endpoint": f"{state.issuer}/token/introspection",
                "code_challenge_methods_supported": ["S256"],
                "capabilities": ["launch-standalone", "client-public", "sso-openid-connect", "permission-v2"],
                "associated_endpoints": [
                    {"url": url, "capabilities": ["smart-imaging-access-dual-launch"]}
                    for url in state.imaging_bases
                ],
            }
        )

    async def patient(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        claims: dict[str, Any] = {}
        if header.lower().startswith("bearer "):
            async with httpx.AsyncClient(timeout=5) as http:
                answer = await http.post(
                    f"{state.issuer}/token/introspection",
                    data={"token": header[7:]},
                    auth=("ehr", state.ehr_secret),
                )
                claims = answer.json()
        if claims.get("active") is not True:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        wanted = request.path_params["id"]
        if claims.get("patient") != wanted:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=403)
        resource = state.patients.get(wanted)
        if resource is None:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        state.reads.append((str(claims.get("client_id")), wanted))
        return JSONResponse(resource, media_type="application/fhir+json")

    return Starlette(
        routes=[
            Route("/fhir/.well-known/smart-configuration", smart_configuration),
            Route("/fhir/Patient/{id}", patient),
        ]
    )
