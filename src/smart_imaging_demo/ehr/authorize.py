"""The authorization endpoint's protocol (RFC 6749 4.1.1 and 4.1.2, RFC 7636, SMART App
Launch 2 "standalone launch", OpenID Connect Core 3.1.2.1 ``prompt`` and ``id_token_hint``).
Pure: validates requests and builds redirect URLs.

Errors about the client or its redirect URI are shown as a page and never redirect; every
other error goes back to the redirect URI with ``error`` and ``state`` (RFC 6749 4.1.2.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from smart_imaging_demo.ehr import pkce, scopes
from smart_imaging_demo.ehr.clients import Client, client_for_redirect
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.errors import ErrorPage, RedirectError


@dataclass(frozen=True)
class AuthorizeRequest:
    client: Client
    redirect_uri: str
    state: str | None
    granted_scope: list[str]
    code_challenge: str | None
    nonce: str | None
    prompt: frozenset[str] = frozenset()
    id_token_hint: str | None = None

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def prompt_none(self) -> bool:
        return "none" in self.prompt


def single_values(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Parameters as a dict, and the names given more than once (RFC 6749 3.1 forbids it)."""
    values: dict[str, str] = {}
    repeated: list[str] = []
    for name, value in pairs:
        if name in values and name not in repeated:
            repeated.append(name)
        values[name] = value
    return values, repeated


def validate(pairs: Iterable[tuple[str, str]], config: EhrConfig) -> AuthorizeRequest:
    params, repeated = single_values(pairs)
    client, redirect_uri = _client(params, repeated, config)
    state = params.get("state")

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(error, description, redirect_uri, state)

    if repeated:
        raise fail("invalid_request", f"parameters repeated: {', '.join(repeated)}")
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    challenge = params.get("code_challenge")
    if challenge is None and client.is_public:
        raise fail("invalid_request", "public clients must use PKCE (code_challenge, S256)")
    if challenge is not None:
        if params.get("code_challenge_method") not in pkce.SUPPORTED_METHODS:
            raise fail("invalid_request", "code_challenge_method must be S256")
        if not pkce.is_valid_challenge(challenge):
            raise fail("invalid_request", "code_challenge is not a base64url SHA-256")
    aud = params.get("aud")
    if aud is not None and not any(config.is_own_url(aud, url) for url in _audiences(config)):
        raise fail("invalid_request", "aud is not this sandbox's FHIR base URL")
    prompt = frozenset(scopes.split(params.get("prompt")))
    if "none" in prompt and len(prompt) > 1:  # OpenID Connect Core 3.1.2.1
        raise fail("invalid_request", "prompt=none cannot be combined with other prompt values")
    granted = scopes.grant_user_scopes(params.get("scope"))
    if not granted:
        raise fail("invalid_scope", "none of the requested scopes is supported")
    hint = params.get("id_token_hint") or None
    return AuthorizeRequest(
        client, redirect_uri, state, granted, challenge, params.get("nonce"), prompt, hint
    )


def _client(params: dict[str, str], repeated: list[str], config: EhrConfig) -> tuple[Client, str]:
    """The client and redirect URI, or an :class:`ErrorPage` (never a redirect)."""
    client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
    if {"client_id", "redirect_uri"} & set(repeated):
        raise ErrorPage("client_id and redirect_uri must be given once")
    if not client_id:
        raise ErrorPage("client_id is missing")
    if not redirect_uri:
        raise ErrorPage("redirect_uri is missing (the sandbox requires it)")
    client = client_for_redirect(client_id, redirect_uri, config)
    if client is None:
        raise ErrorPage(
            "this redirect_uri is not allowed for this client: public clients must "
            "use localhost, 127.0.0.1 or the sandbox's own origin; registered "
            "clients must use a registered redirect URI exactly"
        )
    return client, redirect_uri


def _audiences(config: EhrConfig) -> set[str]:
    urls = (config.fhir_base_url, config.imaging_fhir_base_url, config.dual_imaging_fhir_base_url)
    return {u for u in urls if u}


def redirect_url(redirect_uri: str, params: dict[str, str | None]) -> str:
    """Add response parameters to the redirect URI's query, keeping its own (RFC 6749 3.1.2)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def error_redirect(error: RedirectError) -> str:
    return redirect_url(
        error.redirect_uri, {"error": error.error, "error_description": error.message, "state": error.state}
    )
