"""Configuration of the EHR sandbox: its public URL, data dir, registered clients, lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BackendClient(BaseModel):
    """A confidential client registered by config, authenticating with ``private_key_jwt``
    (SMART Backend Services). ``scope`` is what ``client_credentials`` may grant it, e.g.
    ``"system/Patient.read"``. With ``redirect_uris`` it may also use the authorization code
    flow as a confidential asymmetric client (exact redirect URI match).
    """

    model_config = ConfigDict(frozen=True)

    client_id: str = Field(min_length=1)
    jwks: dict[str, Any]
    scope: str = "system/Patient.read"
    redirect_uris: tuple[str, ...] = ()

    @field_validator("jwks")
    @classmethod
    def _key_set(cls, value: dict[str, Any]) -> dict[str, Any]:
        keys = value.get("keys") if "keys" in value else [value]  # a single JWK is accepted
        if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
            raise ValueError("jwks must be a JWK Set with at least one key")
        public = [{k: v for k, v in key.items() if k not in _PRIVATE_MEMBERS} for key in keys]
        return {"keys": public}


# JWK members of private keys (RFC 7518 6.2.2, 6.3.2): never kept, so a pasted private JWK
# still registers only the public half.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class EhrConfig(BaseModel):
    """``base_url`` is the sandbox's public URL including its mount path, e.g.
    ``http://localhost:8000/ehr``; every URL it emits is built from it.
    ``imaging_fhir_base_url`` is announced in ``associated_endpoints``.
    ``clock`` returns epoch seconds (tests pass one they can move).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    base_url: str
    data_dir: Path
    imaging_fhir_base_url: str | None = None
    backend_clients: tuple[BackendClient, ...] = ()
    access_token_ttl: int = Field(default=3600, gt=0)
    code_ttl: int = Field(default=60, gt=0)
    offline_refresh_ttl: int = Field(default=30 * 24 * 3600, gt=0)
    online_refresh_ttl: int = Field(default=12 * 3600, gt=0)
    pending_request_ttl: int = Field(default=600, gt=0)
    assertion_max_lifetime: int = Field(default=300, gt=0)
    clock: Callable[[], float] = time.time

    @field_validator("base_url", "imaging_fhir_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def fhir_base_url(self) -> str:
        return f"{self.base_url}/fhir"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.base_url}/introspect"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.base_url}/revoke"

    @property
    def jwks_uri(self) -> str:
        return f"{self.base_url}/.well-known/jwks.json"

    @property
    def issuer(self) -> str:
        return self.fhir_base_url

    def backend_client(self, client_id: str) -> BackendClient | None:
        return next((c for c in self.backend_clients if c.client_id == client_id), None)

    def now(self) -> int:
        return int(self.clock())
