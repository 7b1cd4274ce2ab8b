"""Codes and tokens of a tenant's authorization server: the token endpoint (RFC 6749 sections
4.1.3 and 6), introspection (RFC 7662), revocation (RFC 7009), and the lookup the FHIR and WADO
routes use (``auth.local_tokens``).

Codes and tokens are 256-bit random strings, stored under their hash with the ``Grant`` they
carry. A code is redeemable once, within ``codeLifetime`` (at most 60 s), by its client, with its
redirect URI and PKCE verifier; it is remembered longer so that a second use revokes the whole
family of tokens issued from it (RFC 6749 section 4.1.2, 10.5). Refresh tokens rotate: each use
returns a new one and retires the old; presenting a retired one revokes the family (OAuth 2.1
section 4.3.1, RFC 6819 5.2.2.3). Revoking a refresh token revokes its family (RFC 7009 2.1).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from ..auth.local_tokens import LocalToken
from ..config.tenant import OAuthServerSettings
from . import pkce
from .client_auth import authenticate
from .clients import Client, ClientPolicy
from .errors import OAuthError
from .grants import issues_refresh_token, narrowed
from .records import Grant, from_entry, to_entry
from .site import Site
from .store import StateStore, secret_key

CODE, CODE_USED, TOKEN, ROTATED, REVOKED, FAMILY = (
    "code",
    "code-used",
    "token",
    "rotated",
    "revoked",
    "family",
)


def _grant_error(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


class TokenService:
    def __init__(self, store: StateStore, policy: ClientPolicy, settings: OAuthServerSettings) -> None:
        self._store = store
        self._policy = policy
        self._settings = settings

    @property
    def _family_life(self) -> float:
        return self._settings.refreshTokenLifetime + self._settings.accessTokenLifetime + 60

    async def issue_code(self, grant: Grant) -> str:
        code, now = secrets.token_urlsafe(32), time.time()
        entry = {"grant": to_entry(grant), "redeem_by": now + self._settings.codeLifetime}
        await self._store.put(CODE, secret_key(code), entry, now + self._family_life)
        return code

    # ------------------------------------------------------------------ token endpoint

    async def token(self, form: Mapping[str, str], authorization: str | None, site: Site) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError(
                "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
            )
        client = await self._client(form, authorization, site, "token")
        if grant_type == "authorization_code":
            return await self._redeem_code(form, client, site)
        return await self._refresh(form, client, site)

    async def _client(
        self, form: Mapping[str, str], authorization: str | None, site: Site, name: str
    ) -> Client:
        audiences = {site.endpoint(name), site.endpoint("token"), site.issuer}
        return await authenticate(form, authorization, self._policy, self._store, audiences)

    async def _redeem_code(self, form: Mapping[str, str], client: Client, site: Site) -> dict[str, Any]:
        code = form.get("code", "")
        if not code or not form.get("redirect_uri"):
            raise OAuthError("invalid_request", "code and redirect_uri are required")
        key = secret_key(code)
        entry, used = await self._store.get_many([(CODE, key), (CODE_USED, key)])
        grant = from_entry(Grant, (entry or {}).get("grant"))
        if entry is None or grant is None or grant.tenant != site.tenant:
            raise _grant_error("the code is unknown or expired")
        if used is not None:
            await self._revoke_family(grant.family)
            raise _grant_error("the code was already used: the tokens issued for it are revoked")
        self._check_code(entry, grant, form, client)
        if not await self._store.add(CODE_USED, key, {}, time.time() + self._family_life):
            await self._revoke_family(grant.family)
            raise _grant_error("the code was already used: the tokens issued for it are revoked")
        return await self._issue(grant, grant.scope, site, refresh=issues_refresh_token(grant.scope))

    def _check_code(
        self, entry: Mapping[str, Any], grant: Grant, form: Mapping[str, str], client: Client
    ) -> None:
        if grant.client_id != client.client_id:
            raise _grant_error("the code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise _grant_error("redirect_uri is not the one of the authorization request")
        if not isinstance(entry.get("redeem_by"), (int, float)) or entry["redeem_by"] <= time.time():
            raise _grant_error("the code has expired")
        if not pkce.verifies(form.get("code_verifier"), grant.code_challenge):
            raise _grant_error("PKCE verification failed (code_verifier missing or wrong)")

    async def _refresh(self, form: Mapping[str, str], client: Client, site: Site) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        found = await self._record(token) if token else None
        if found is None or found[0].get("kind") != "refresh" or found[1].tenant != site.tenant:
            raise _grant_error("the refresh token is unknown, expired or revoked")
        record, grant = found
        if grant.client_id != client.client_id:
            raise _grant_error("the refresh token was issued to another client")
        scope = narrowed(grant.scope, form.get("scope"))
        if scope is None:
            raise OAuthError("invalid_scope", "the scope asks for more than was granted")
        if record["rotated"] or not await self._store.add(
            ROTATED, secret_key(token), {}, record["exp"] + 60.0
        ):
            await self._revoke_family(grant.family)
            raise _grant_error("the refresh token was already used: its family is revoked")
        return await self._issue(grant, scope, site, refresh=True)

    async def _issue(self, grant: Grant, scope: str, site: Site, *, refresh: bool) -> dict[str, Any]:
        now = time.time()
        access = await self._store_token(
            "access", grant, scope, site, now + self._settings.accessTokenLifetime
        )
        response: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self._settings.accessTokenLifetime),
            "scope": scope,
            "patient": grant.patient_id,
        }
        if refresh:
            expires = now + self._settings.refreshTokenLifetime
            response["refresh_token"] = await self._store_token("refresh", grant, grant.scope, site, expires)
        return response

    async def _store_token(self, kind: str, grant: Grant, scope: str, site: Site, exp: float) -> str:
        token = secrets.token_urlsafe(32)
        entry = {
            "kind": kind,
            "grant": to_entry(grant),
            "scope": scope,
            "iat": int(time.time()),
            "exp": int(exp),
            "iss": site.issuer,
            "aud": site.fhir_base,
        }
        await self._store.put(TOKEN, secret_key(token), entry, exp)
        return token

    # ------------------------------------------------------------------ lookups

    async def _record(self, token: str) -> tuple[dict[str, Any], Grant] | None:
        """The live record of a token (any kind) and its grant, or None when revoked."""
        if len(token) > 512:
            return None
        key = secret_key(token)
        entry, revoked, rotated = await self._store.get_many([(TOKEN, key), (REVOKED, key), (ROTATED, key)])
        grant = from_entry(Grant, (entry or {}).get("grant"))
        if entry is None or revoked is not None or grant is None:
            return None
        if await self._store.get(FAMILY, grant.family) is not None:
            return None
        return {**entry, "rotated": rotated is not None}, grant

    async def lookup(self, token: str) -> LocalToken | None:
        """An active access token (``auth.local_tokens.TokenLookup``)."""
        found = await self._record(token)
        if found is None or found[0].get("kind") != "access":
            return None
        record, grant = found
        return LocalToken(_claims(record, grant), grant.tenant, grant.patient)

    async def introspect(
        self, form: Mapping[str, str], authorization: str | None, site: Site
    ) -> dict[str, Any]:
        """RFC 7662 section 2: for confidential clients, about their own tokens of this tenant."""
        client = await self._client(form, authorization, site, "introspect")
        if not client.confidential:
            raise OAuthError(
                "invalid_client", "introspection needs a client with private_key_jwt", status=401
            )
        found = await self._record(form.get("token", ""))
        if found is None or found[0]["rotated"] or found[1].tenant != site.tenant:
            return {"active": False}
        if found[1].client_id != client.client_id:
            return {"active": False}
        return {
            **_claims(*found),
            "token_type": "Bearer" if found[0].get("kind") == "access" else "refresh_token",
        }

    async def revoke(self, form: Mapping[str, str], authorization: str | None, site: Site) -> None:
        """RFC 7009: only the client a token was issued to may revoke it; unknown tokens are fine."""
        client = await self._client(form, authorization, site, "revoke")
        token = form.get("token", "")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        found = await self._record(token)
        if found is None or found[1].tenant != site.tenant:
            return
        record, grant = found
        if grant.client_id != client.client_id:
            raise OAuthError("unauthorized_client", "the token was issued to another client")
        if record.get("kind") == "refresh":
            await self._revoke_family(grant.family)
        else:
            await self._store.put(REVOKED, secret_key(token), {}, record["exp"] + 60.0)

    async def _revoke_family(self, family: str) -> None:
        await self._store.put(FAMILY, family, {}, time.time() + self._family_life)


def _claims(record: Mapping[str, Any], grant: Grant) -> dict[str, Any]:
    """RFC 7662 section 2.2 members, plus SMART's ``patient`` and ``fhirUser``."""
    claims: dict[str, Any] = {
        "active": True,
        "scope": record.get("scope", grant.scope),
        "client_id": grant.client_id,
        "exp": record.get("exp"),
        "iat": record.get("iat"),
        "iss": record.get("iss"),
        "aud": record.get("aud"),
        "patient": grant.patient_id,
        "sub": grant.fhir_user or grant.subject,
    }
    if grant.fhir_user:
        claims["fhirUser"] = grant.fhir_user
    return {k: v for k, v in claims.items() if v is not None}
