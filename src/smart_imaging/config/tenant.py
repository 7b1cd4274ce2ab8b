"""Tenant config models (DESIGN.md section 2), compatible with the reference server's files.

Lenient where the reference files are: ``null`` means "not set", keys starting with ``//`` are
comments, and unknown keys are kept (and reported as warnings by ``check-config``). Strict where
safety needs it: numbers are finite and bounded (Python's ``json`` reads ``NaN``, ``Infinity``
and ``1e999``, which then overflow timers and ``math.ceil``), and a lookup that lists the whole
archive is only allowed where no patient binding is expected (:meth:`TenantConfig._lookup`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .model import ConfigModel as _Model
from .model import require_http_url as _require_http_url
from .oauth import (
    DEFAULT_EHR_SCOPE as DEFAULT_EHR_SCOPE,
)
from .oauth import (
    REDIRECT_URI_MAX as REDIRECT_URI_MAX,
)
from .oauth import (
    OAuthServerSettings as OAuthServerSettings,
)
from .oauth import (
    RegisteredClient as RegisteredClient,
)
from .oauth import (
    check_redirect_uri as check_redirect_uri,
)
from .policy import Policy

# The reference server's default; when no expression yields a value, the first identifier is used.
DEFAULT_MRN_EXPRESSIONS = ["identifier.where(type.coding.code='MR').value"]
LATEST_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: later "until" moments are typos
WEEK = 7 * 24 * 3600.0


# ---------------------------------------------------------------- authorization


class ClientConfig(_Model):
    """The imaging server's own client at the EHR (SMART Backend Services)."""

    client_id: str
    jwk: dict[str, Any] | None = None
    jwkPrivate: dict[str, Any] | None = Field(default=None, repr=False)
    client_secret: SecretStr | None = None

    @field_validator("jwk", "jwkPrivate", mode="before")
    @classmethod
    def _jwk_text(cls, value: Any) -> Any:
        """A JWK may also be given as its JSON text, e.g. ``{"$env": "IMAGING_JWK"}``."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("must be a JWK object or its JSON text") from None
        return value


class MockAuthorization(_Model):
    """Accepts any request; the patient comes from the config (or none)."""

    type: Literal["mock"]
    disableAuthzChecks: bool = False
    patient: dict[str, Any] | None = None

    @field_validator("patient")
    @classmethod
    def _patient_resource(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            if value.get("resourceType", "Patient") != "Patient":
                raise ValueError("patient must be a FHIR Patient resource")
            if not isinstance(value.get("id", ""), str):
                raise ValueError("patient.id must be a string")
        return value


SmartType = Literal[
    "smart-on-fhir",
    "smart-on-fhir-with-epic-bugfixes",
    "smart-on-fhir-with-meditech-bugfixes",
    "smart-on-fhir-independent",
    "smart-on-fhir-jwt",
]


class SmartAuthorization(_Model):
    """Access tokens issued by a SMART on FHIR EHR, checked by introspection or as JWTs.

    ``smart-on-fhir-independent``: the imaging server is its own authorization server, chained
    to the EHR (``oauth``, docs/notes/dual-launch.md); its tokens are checked locally.
    """

    type: SmartType
    fhirBaseUrl: str
    disableAuthzChecks: bool = False
    scope: str | None = None
    client: ClientConfig | None = None
    introspectionAuth: Literal["bearer", "private_key_jwt", "client_secret_basic"] = "bearer"
    tokenEndpoint: str | None = None
    introspectionEndpoint: str | None = None
    jwksUri: str | None = None
    issuer: str | None = None
    audience: str | list[str] | None = None
    checkAudience: bool = True  # false: a reported aud is not checked (when no audience is set)
    cacheTtl: float = Field(default=60.0, ge=0, le=3600)
    negativeCacheTtl: float = Field(default=5.0, ge=0, le=300)
    timeout: float = Field(default=10.0, gt=0, le=120)
    allowInsecurePatientFromRequest: bool = False
    oauth: OAuthServerSettings | None = None

    @field_validator("fhirBaseUrl", "tokenEndpoint", "introspectionEndpoint", "jwksUri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _require_http_url(value)

    @model_validator(mode="after")
    def _oauth_only_for_independent(self) -> SmartAuthorization:
        if self.oauth is not None and self.type != "smart-on-fhir-independent":
            raise PydanticCustomError(
                "oauth_needs_independent",
                "oauth configures the imaging server's own authorization server: only for "
                "type smart-on-fhir-independent",
                {"field": "authorization.oauth"},
            )
        return self

    @property
    def oauth_settings(self) -> OAuthServerSettings:
        """``oauth`` or its defaults."""
        return self.oauth or OAuthServerSettings()


Authorization = Annotated[MockAuthorization | SmartAuthorization, Field(discriminator="type")]


# ---------------------------------------------------------------- images


class OpenAuthentication(_Model):
    type: Literal["open"]


class BasicAuthentication(_Model):
    type: Literal["http-basic"]
    username: str
    password: SecretStr


class BearerAuthentication(_Model):
    type: Literal["bearer"]
    token: SecretStr


Authentication = Annotated[
    OpenAuthentication | BasicAuthentication | BearerAuthentication, Field(discriminator="type")
]


class Delay(_Model):
    """Answer 503 + Retry-After until these epoch-second moments (reference server feature)."""

    lookupUntil: float | None = Field(default=None, ge=0, le=LATEST_EPOCH)
    retrieveUntil: float | None = Field(default=None, ge=0, le=LATEST_EPOCH)


class _Images(_Model):
    lookup: Literal["studies-by-mrn", "all-studies-on-server"] = "studies-by-mrn"
    mrn: list[str] = Field(default_factory=lambda: list(DEFAULT_MRN_EXPRESSIONS))
    delay: Delay | None = None
    timeout: float = Field(default=30.0, gt=0, le=600)

    @field_validator("mrn", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class DicomWebImages(_Images):
    """A DICOMweb archive (QIDO-RS + WADO-RS)."""

    type: Literal["dicom-web"]
    endpoint: str
    authentication: Authentication = Field(default_factory=lambda: OpenAuthentication(type="open"))
    seriesConcurrency: int = Field(default=4, ge=1, le=64)
    includeInstances: bool = True
    # ``_lastUpdated``/``meta.lastUpdated`` from the archive's own modification time (vendor REST
    # API; ``services.last_updated``): "orthanc" = Orthanc's LastUpdate. None: not known.
    lastUpdated: Literal["orthanc"] | None = None
    orthancApi: str | None = None  # Orthanc's REST base; default: endpoint without /dicom-web

    @field_validator("endpoint", "orthancApi")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else str(_require_http_url(value)).rstrip("/")


class DimseImages(_Images):
    """A DIMSE archive (C-FIND + C-GET/C-MOVE)."""

    type: Literal["dicom-dimse"]
    endpoint: str
    ae: str = "SMART-IMAGING"
    calledAe: str = "ANY-SCP"
    retrieval: Literal["c-get", "c-move"] = "c-get"
    storePort: int | None = Field(default=None, ge=1, le=65535)
    seriesConcurrency: int = Field(default=4, ge=1, le=64)
    cacheDir: str | None = None
    cacheIdleSeconds: float = Field(default=600.0, gt=0, le=WEEK)
    cacheMaxBytes: int = Field(default=2 * 1024**3, gt=0, le=2**50)
    firstResultTimeout: float = Field(default=20.0, gt=0, le=600)
    maxTransfers: int = Field(default=4, ge=1, le=32)
    includeInstances: bool = True

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "dimse" or not parts.hostname or not parts.port:
            raise ValueError("endpoint must look like dimse://host:port")
        return value

    @field_validator("ae", "calledAe")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        if not 0 < len(value.strip()) <= 16 or "\\" in value:
            raise ValueError("AE titles are 1 to 16 characters without backslash")
        return value.strip()


class FolderImages(_Images):
    """A local folder of DICOM Part-10 files, indexed into SQLite."""

    type: Literal["folder"]
    path: str
    index: str | None = None  # SQLite index file; relative paths are relative to ``path``
    rescanSeconds: float | None = Field(default=None, gt=0, le=WEEK)  # None: scan once, at start


Images = Annotated[DicomWebImages | DimseImages | FolderImages, Field(discriminator="type")]


# ---------------------------------------------------------------- tenant


class TenantConfig(_Model):
    authorization: Authorization
    images: Images
    bindingTtl: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    policy: Policy | None = None  # study-level access policy (config.policy), additive

    @model_validator(mode="after")
    def _lookup(self) -> TenantConfig:
        """``all-studies-on-server`` lists every patient's studies: only where no patient binding
        is expected (``mock``, or ``disableAuthzChecks``). Behind a real authorizer it would show
        each token's holder the whole archive (issue 13 item 8)."""
        auth = self.authorization
        if self.images.lookup == "all-studies-on-server" and not (
            isinstance(auth, MockAuthorization) or auth.disableAuthzChecks
        ):
            raise PydanticCustomError(
                "lookup_exposes_archive",
                "all-studies-on-server lists every patient's studies; with authorization type "
                "{auth_type} use studies-by-mrn (all-studies-on-server is only for mock or "
                "disableAuthzChecks tenants)",
                {"field": "images.lookup", "auth_type": auth.type},
            )
        return self

    def upstream_urls(self) -> list[str]:
        """Every URL this config makes the server contact (for the dynamic-tenant allow list)."""
        urls: list[str] = [self.images.endpoint] if hasattr(self.images, "endpoint") else []
        if isinstance(self.images, DicomWebImages) and self.images.orthancApi:
            urls.append(self.images.orthancApi)
        if self.policy is not None and self.policy.decision_point is not None:
            urls.append(self.policy.decision_point.url)
        auth = self.authorization
        if isinstance(auth, SmartAuthorization):
            urls += [
                u
                for u in (auth.fhirBaseUrl, auth.tokenEndpoint, auth.introspectionEndpoint, auth.jwksUri)
                if u
            ]
        return urls
