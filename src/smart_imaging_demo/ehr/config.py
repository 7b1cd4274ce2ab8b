"""Configuration of the EHR sandbox: its public URL, data dir, registered clients, lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BackendClient(BaseModel):
    """A confidential client registered by config, authenticating with ``private_key_jwt``
    (SMART Backend Services). ``scope`` is what ``client_credentials`` may grant it, e.g.
    ``"system/Patient.read"``. With ``redirect_uris`` it may also use the authorization code
    flow as a confidential asymmetric client (exact redirect URI match). ``silent_scope`` is
    what it may be granted without the consent page (``prompt=none`` with a valid
    ``id_token_hint``): the administrator's consent, e.g. for an imaging server's EHR leg.
    """

    model_config = ConfigDict(frozen=True)

    client_id: str = Field(min_length=1)
    jwks: dict[str, Any]
    scope: str = "system/Patient.read"
    redirect_uris: tuple[str, ...] = ()
    silent_scope: str = ""

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
    ``imaging_fhir_base_url`` and ``dual_imaging_fhir_base_url`` are announced in
    ``associated_endpoints`` (capabilities ``smart-imaging-access`` resp.
    ``smart-imaging-access-dual-launch``).

    ``derive_from_request``: every URL the sandbox emits or checks uses the request's own
    origin (scheme and ``Host``) instead of ``base_url``'s (which keeps giving the path), so one
    sandbox works under each name it answers to. ``alias_origins`` are further origins that are
    this sandbox (accepted as its own in ``aud``, ``iss`` and redirect URIs), e.g.
    ``http://127.0.0.1:8000`` next to ``http://localhost:8000``.
    ``clock`` returns epoch seconds (tests pass one they can move).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    base_url: str
    data_dir: Path
    imaging_fhir_base_url: str | None = None
    dual_imaging_fhir_base_url: str | None = None
    derive_from_request: bool = False
    alias_origins: tuple[str, ...] = ()
    backend_clients: tuple[BackendClient, ...] = ()
    access_token_ttl: int = Field(default=3600, gt=0)
    code_ttl: int = Field(default=60, gt=0)
    offline_refresh_ttl: int = Field(default=30 * 24 * 3600, gt=0)
    online_refresh_ttl: int = Field(default=12 * 3600, gt=0)
    pending_request_ttl: int = Field(default=600, gt=0)
    assertion_max_lifetime: int = Field(default=300, gt=0)
    id_token_hint_grace: int = Field(default=12 * 3600, ge=0)
    clock: Callable[[], float] = time.time

    @field_validator("base_url", "imaging_fhir_base_url", "dual_imaging_fhir_base_url")
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

    def own_origins(self) -> set[Origin]:
        """Every origin that is this sandbox: ``base_url``'s and the aliases."""
        return {origin(self.base_url), *(origin(a) for a in self.alias_origins)}

    def is_own_url(self, url: str, canonical: str) -> bool:
        """``url`` names ``canonical`` (one of this sandbox's URLs), under any of its origins."""
        url, canonical = url.rstrip("/"), canonical.rstrip("/")
        if url == canonical:
            return True
        own = self.own_origins()
        return (
            origin(canonical) in own
            and origin(url) in own
            and urlsplit(url).path == urlsplit(canonical).path
            and not urlsplit(url).query
        )

    def at_origin(self, new_origin: str) -> EhrConfig:
        """This config as seen under ``new_origin`` (``scheme://host[:port]``): the URLs on
        ``base_url``'s origin move there; the old origin becomes an alias."""
        old = _origin_text(self.base_url)
        new_origin = new_origin.rstrip("/")
        if new_origin == old:
            return self

        def move(url: str | None) -> str | None:
            return new_origin + url[len(old) :] if url and _origin_text(url) == old else url

        return self.model_copy(
            update={
                "base_url": move(self.base_url),
                "imaging_fhir_base_url": move(self.imaging_fhir_base_url),
                "dual_imaging_fhir_base_url": move(self.dual_imaging_fhir_base_url),
                "alias_origins": (*self.alias_origins, old),
            }
        )

    def backend_client(self, client_id: str) -> BackendClient | None:
        return next((c for c in self.backend_clients if c.client_id == client_id), None)

    def now(self) -> int:
        return int(self.clock())


Origin = tuple[str, str, int | None]


def origin(url: str) -> Origin:
    """(scheme, lower-case host, port with the scheme's default) of a URL (RFC 6454 4)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return ("", "", None)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port or default


def _origin_text(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
