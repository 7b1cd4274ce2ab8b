"""``authorization.oauth``: the imaging server's own authorization server (``smart-on-fhir-independent``,
dual launch): registered clients and the server's settings. See docs/notes/dual-launch.md."""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import Field, field_validator, model_validator

from .model import ConfigModel as _Model
from .model import require_http_url as _require_http_url

REDIRECT_URI_MAX = 2048
DEFAULT_EHR_SCOPE = "openid fhirUser launch/patient patient/Patient.rs"


class RegisteredClient(_Model):
    """An app registered at a tenant's own authorization server (``smart-on-fhir-independent``).

    Public (``token_endpoint_auth_method`` ``none``, PKCE only) unless it has a ``jwks``: then
    confidential with ``private_key_jwt`` (RFC 7523) client assertions signed by one of those keys.
    Redirect URIs are matched exactly (RFC 6749 section 3.1.2; OAuth 2.1).
    """

    client_id: str = Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    redirect_uris: list[str] = Field(min_length=1)
    name: str | None = Field(default=None, max_length=200)
    jwks: dict[str, Any] | None = None
    token_endpoint_auth_method: Literal["none", "private_key_jwt"] | None = None

    @field_validator("redirect_uris")
    @classmethod
    def _redirect_uris(cls, values: list[str]) -> list[str]:
        for value in values:
            check_redirect_uri(value)
        return values

    @field_validator("jwks", mode="before")
    @classmethod
    def _jwks_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("must be a JWK set object or its JSON text") from None
        return value

    @field_validator("jwks")
    @classmethod
    def _public_key_set(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _check_public_jwks(value)
        return value

    @model_validator(mode="after")
    def _auth_method(self) -> RegisteredClient:
        if self.token_endpoint_auth_method == "private_key_jwt" and not self.jwks:
            raise ValueError("private_key_jwt needs the client's public keys in jwks")
        if self.token_endpoint_auth_method == "none" and self.jwks:
            raise ValueError("a public client (token_endpoint_auth_method none) has no jwks")
        return self

    @property
    def confidential(self) -> bool:
        return self.jwks is not None


class OAuthServerSettings(_Model):
    """``authorization.oauth``: the imaging server's own authorization server (dual launch).

    With no ``clients``, ``openClients`` defaults to true (the reference server's behaviour, made
    safer: any client_id, but redirect URIs only on loopback, this server's own origin or
    ``redirectOrigins``); with clients listed it defaults to false.
    """

    clients: list[RegisteredClient] = Field(default_factory=list)
    openClients: bool | None = None
    redirectOrigins: list[str] = Field(default_factory=list)
    accessTokenLifetime: float = Field(default=3600.0, ge=1, le=24 * 3600)
    refreshTokenLifetime: float = Field(default=24 * 3600.0, ge=60, le=90 * 24 * 3600)
    codeLifetime: float = Field(default=60.0, ge=1, le=60)
    consent: bool = True
    ehrScope: str = Field(default=DEFAULT_EHR_SCOPE, min_length=1, max_length=2000)

    @field_validator("redirectOrigins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError("each entry must be an origin such as https://viewer.example.org")
            if parts.query or parts.fragment or parts.username or parts.password:
                raise ValueError("each entry must be an origin such as https://viewer.example.org")
            out.append(value.rstrip("/").lower())
        return out

    @field_validator("clients")
    @classmethod
    def _unique(cls, values: list[RegisteredClient]) -> list[RegisteredClient]:
        ids = [c.client_id for c in values]
        if len(set(ids)) != len(ids):
            raise ValueError("client_id values must be unique")
        return values

    @property
    def open_mode(self) -> bool:
        return self.openClients if self.openClients is not None else not self.clients


def check_redirect_uri(value: str) -> None:
    """An absolute http(s) URL without fragment or user info (RFC 6749 section 3.1.2)."""
    if len(value) > REDIRECT_URI_MAX:
        raise ValueError(f"redirect URIs are at most {REDIRECT_URI_MAX} characters")
    _require_http_url(value)
    parts = urlsplit(value)
    if parts.fragment or "#" in value or parts.username or parts.password:
        raise ValueError("a redirect URI has no fragment and no user info")
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in value):
        raise ValueError("a redirect URI is printable ASCII without spaces")


def _check_public_jwks(value: dict[str, Any]) -> None:
    """A JWK set of public RSA or EC signing keys (RFC 7517 section 5)."""
    keys = value.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError('must be a JWK set: {"keys": [...]}')
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise ValueError("keys must be RSA or EC public keys")
        if any(name in key for name in ("d", "p", "q", "dp", "dq", "qi")):
            raise ValueError("jwks holds a private key: give the public keys only")
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError):
        raise ValueError("jwks holds an invalid key") from None
