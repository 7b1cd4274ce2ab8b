"""FHIR R4 routes of the sandbox (under ``/fhir``), with its own tokens enforced.

A patient-context token reads only its patient's resources (403 otherwise, as the SMART
Imaging IG asks of the imaging server); a ``system/`` token reads any patient's. No or an
inactive token gives 401 with an RFC 6750 challenge. Errors are OperationOutcomes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smart_imaging.errors import (
    Forbidden,
    InsufficientScope,
    NotFound,
    SmartImagingError,
    Unauthorized,
)
from smart_imaging.fhir.outcome import operation_outcome
from smart_imaging_demo.ehr import discovery, resources, scopes
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.http import bearer_token, request_config
from smart_imaging_demo.ehr.store import TokenRecord
from smart_imaging_demo.ehr.tokens import TokenService
from smart_imaging_demo.samples.patients import PATIENTS, DemoPatient, by_id

FHIR_JSON = "application/fhir+json"


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


class FhirEndpoints:
    def __init__(self, config: EhrConfig, tokens: TokenService) -> None:
        self.config, self.tokens = config, tokens

    def routes(self) -> list[Route]:
        return [
            Route("/fhir/.well-known/smart-configuration", self.smart_configuration),
            Route("/fhir/.well-known/openid-configuration", self.openid_configuration),
            Route("/fhir/metadata", self.metadata),
            Route("/fhir/Patient", self.search_patients),
            Route("/fhir/Patient/{id}", self.read_patient),
            *(Route(f"/fhir/{t}", self.search_clinical) for t in resources.CLINICAL_TYPES),
            *(Route(f"/fhir/{t}/{{id}}", self.read_clinical) for t in resources.CLINICAL_TYPES),
        ]

    # ------------------------------------------------------------ discovery (public)

    async def smart_configuration(self, request: Request) -> Response:
        return JSONResponse(discovery.smart_configuration(request_config(self.config, request)))

    async def openid_configuration(self, request: Request) -> Response:
        return JSONResponse(discovery.openid_configuration(request_config(self.config, request)))

    async def metadata(self, request: Request) -> Response:
        return FhirResponse(discovery.capability_statement(request_config(self.config, request)))

    # ------------------------------------------------------------ Patient

    async def read_patient(self, request: Request) -> Response:
        grant = self._grant(request, "Patient", "r")
        patient = by_id(request.path_params["id"])
        _check_patient(grant, request.path_params["id"])
        if patient is None:
            raise NotFound(f"Patient/{request.path_params['id']} is not known")
        return FhirResponse(patient.fhir())

    async def search_patients(self, request: Request) -> Response:
        grant = self._grant(request, "Patient", "s")
        params = dict(request.query_params)
        if grant.patient and "_id" in params:
            for wanted in params["_id"].split(","):
                _check_patient(grant, wanted)
        found = [p.fhir() for p in _visible(grant) if resources.patient_matches(p, params)]
        return self._bundle(request, found)

    # ------------------------------------------------------------ clinical resources

    async def search_clinical(self, request: Request) -> Response:
        resource_type = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        grant = self._grant(request, resource_type, "s")
        wanted = request.query_params.get("patient")
        if wanted is not None:
            wanted = wanted.removeprefix("Patient/")
            _check_patient(grant, wanted)
        patients = tuple(p for p in _visible(grant) if wanted is None or p.id == wanted)
        found = [r for _, r in resources.clinical(resource_type, patients)]
        return self._bundle(request, found)

    async def read_clinical(self, request: Request) -> Response:
        resource_type = request.url.path.rstrip("/").rsplit("/", 2)[-2]
        grant = self._grant(request, resource_type, "r")
        for owner, resource in resources.clinical(resource_type):
            if resource["id"] == request.path_params["id"]:
                _check_patient(grant, owner.id)
                return FhirResponse(resource)
        raise NotFound(f"{resource_type}/{request.path_params['id']} is not known")

    # ------------------------------------------------------------ helpers

    def _grant(self, request: Request, resource_type: str, interaction: str) -> TokenRecord:
        token = bearer_token(request)
        if token is None:
            raise Unauthorized("an access token is required", error=None)
        grant = self.tokens.at(request_config(self.config, request)).active_access(token)
        if grant is None:
            raise Unauthorized("the access token is invalid, expired or revoked")
        granted = scopes.split(grant.scope)
        context = "patient" if grant.patient else "system"
        if not scopes.allows(granted, context, resource_type, interaction):
            raise InsufficientScope(
                f"the token's scope does not allow reading {resource_type}",
                scope=f"{context}/{resource_type}.rs",
            )
        return grant

    def _bundle(self, request: Request, found: list[dict[str, Any]]) -> Response:
        fhir_base = request_config(self.config, request).fhir_base_url
        path = request.url.path.split("/fhir/", 1)[-1]
        query = f"?{request.url.query}" if request.url.query else ""
        return FhirResponse(resources.searchset(f"{fhir_base}/{path}{query}", fhir_base, found))


def _visible(grant: TokenRecord) -> tuple[DemoPatient, ...]:
    return tuple(p for p in PATIENTS if grant.patient is None or p.id == grant.patient)


def _check_patient(grant: TokenRecord, patient_id: str) -> None:
    if grant.patient is not None and grant.patient != patient_id:
        raise Forbidden("this token is for another patient")


async def fhir_error(request: Request, exc: Exception) -> Response:
    """Render the project's errors as an OperationOutcome with their status and headers."""
    assert isinstance(exc, SmartImagingError)
    return FhirResponse(operation_outcome(exc.code, exc.message), exc.status, headers=exc.headers)
