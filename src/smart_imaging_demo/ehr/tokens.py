"""The token, introspection and revocation endpoints' logic: RFC 6749 4.1.3 and 6,
RFC 7636 4.6, RFC 7523 (SMART Backend Services), RFC 7662, RFC 7009.

Works on already-parsed form parameters; the Starlette layer only moves bytes.
"""

from __future__ import annotations

from typing import Any

from smart_imaging_demo.ehr import pkce, scopes
from smart_imaging_demo.ehr.assertion import verify_client_assertion
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
)
from smart_imaging_demo.ehr.keys import Signer
from smart_imaging_demo.ehr.store import CodeRecord, Store, TokenRecord, new_secret

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


class TokenService:
    def __init__(self, config: EhrConfig, store: Store, signer: Signer) -> None:
        self.config = config
        self.store = store
        self.signer = signer

    def at(self, config: EhrConfig) -> TokenService:
        """The same service for a request that sees the sandbox under another origin."""
        return self if config is self.config else TokenService(config, self.store, self.signer)

    # ------------------------------------------------------------ client authentication

    def authenticate(self, form: dict[str, str]) -> tuple[str, bool]:
        """(client_id, confidential) of the caller: ``private_key_jwt`` or a public client's
        ``client_id`` (RFC 6749 3.2.1). Registered clients must authenticate."""
        if "client_assertion" in form or "client_assertion_type" in form:
            verified = verify_client_assertion(
                form.get("client_assertion", ""),
                form.get("client_assertion_type"),
                form.get("client_id"),
                self.config,
            )
            if not self.store.remember_jti(verified.client_id, verified.jti, verified.exp):
                raise InvalidClient("client assertion jti was already used (replay)")
            return verified.client_id, True
        client_id = form.get("client_id", "")
        if not client_id:
            raise InvalidClient("client authentication missing: client_id or client_assertion")
        if self.config.backend_client(client_id) is not None:
            raise InvalidClient("this client is registered as confidential: use private_key_jwt")
        return client_id, False

    # ------------------------------------------------------------ token endpoint

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequest("grant_type is missing")
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} not supported")
        client_id, confidential = self.authenticate(form)
        if grant_type == "authorization_code":
            return self._authorization_code(form, client_id)
        if grant_type == "refresh_token":
            return self._refresh_token(form, client_id)
        if not confidential:
            raise OAuthError(
                "unauthorized_client", "client_credentials needs a registered client using private_key_jwt"
            )
        return self._client_credentials(form, client_id)

    def _authorization_code(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        code, redirect_uri = form.get("code"), form.get("redirect_uri")
        if not code or not redirect_uri:
            raise InvalidRequest("code and redirect_uri are required")
        outcome, record = self.store.redeem_code(code, self.config.now())
        if outcome == "used":
            self.store.revoke_origin(Store.code_origin(code))  # RFC 6749 4.1.2, 10.5
            raise InvalidGrant("authorization code was already used; its tokens are revoked")
        if outcome != "ok" or record is None:
            raise InvalidGrant(f"authorization code is {'expired' if record else 'unknown'}")
        if record.client_id != client_id:
            raise InvalidGrant("authorization code was issued to another client")
        if record.redirect_uri != redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
        self._check_pkce(record, form.get("code_verifier"))
        return self._issue(record, client_id, Store.code_origin(code))

    @staticmethod
    def _check_pkce(record: CodeRecord, verifier: str | None) -> None:
        if record.code_challenge is None:
            if verifier is not None:
                raise InvalidGrant("code_verifier given but no code_challenge was")
            return
        if not pkce.verify(verifier, record.code_challenge):
            raise InvalidGrant("code_verifier does not match the code_challenge (PKCE)")

    def _issue(
        self, grant: CodeRecord | TokenRecord, client_id: str, origin: str, scope: list[str] | None = None
    ) -> dict[str, Any]:
        granted = scope if scope is not None else scopes.split(grant.scope)
        now, patient = self.config.now(), grant.patient
        fhir_user = f"{self.config.fhir_base_url}/Patient/{patient}" if patient else None
        access = new_secret()
        record = TokenRecord(
            "access",
            client_id,
            " ".join(granted),
            patient,
            patient or client_id,
            fhir_user,
            "authorization_code",
            now,
            now + self.config.access_token_ttl,
            origin,
        )
        self.store.save_token(access, record)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.access_token_ttl,
            "scope": record.scope,
        }
        if patient and scopes.needs_patient(granted):
            body["patient"] = patient
            body["need_patient_banner"] = True
        if scopes.wants_refresh(granted):
            body["refresh_token"] = self._refresh_for(record, granted)
        if "openid" in granted and isinstance(grant, CodeRecord):
            body["id_token"] = self._id_token(record, grant.nonce)
        return body

    def _refresh_for(self, access: TokenRecord, granted: list[str]) -> str:
        ttl = (
            self.config.offline_refresh_ttl if "offline_access" in granted else self.config.online_refresh_ttl
        )
        refresh = new_secret()
        self.store.save_token(
            refresh,
            TokenRecord(
                "refresh",
                access.client_id,
                access.scope,
                access.patient,
                access.subject,
                access.fhir_user,
                access.grant_type,
                access.issued_at,
                access.issued_at + ttl,
                access.origin,
            ),
        )
        return refresh

    def _id_token(self, access: TokenRecord, nonce: str | None) -> str:
        """OpenID Connect Core 2 and SMART App Launch 2 ``fhirUser`` claim."""
        claims: dict[str, Any] = {
            "iss": self.config.issuer,
            "sub": access.subject,
            "aud": access.client_id,
            "iat": access.issued_at,
            "exp": access.expires_at,
        }
        if access.fhir_user and "fhirUser" in scopes.split(access.scope):
            claims["fhirUser"] = access.fhir_user
        if nonce:
            claims["nonce"] = nonce
        return self.signer.sign(claims)

    def _refresh_token(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise InvalidRequest("refresh_token is missing")
        record = self.store.find_token(presented)
        if record is None or record.kind != "refresh" or record.client_id != client_id:
            raise InvalidGrant("refresh token is unknown or belongs to another client")
        if record.revoked:
            self.store.revoke_origin(record.origin)  # a rotated token came back: stolen?
            raise InvalidGrant("refresh token was already used or revoked")
        if not record.is_active(self.config.now()):
            raise InvalidGrant("refresh token has expired")
        narrowed = scopes.narrow(scopes.split(record.scope), form.get("scope"))
        if narrowed is None:
            raise InvalidScope("a refresh may only narrow the granted scope")
        self.store.revoke_token(presented)  # rotation: each refresh token works once
        return self._issue(record, client_id, record.origin, narrowed)

    def _client_credentials(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        registered = self.config.backend_client(client_id)
        assert registered is not None  # authenticate() only confirms registered clients
        granted = scopes.grant_system_scopes(form.get("scope"), registered.scope)
        if not granted:
            raise InvalidScope("none of the requested scopes is registered for this client")
        now, access = self.config.now(), new_secret()
        record = TokenRecord(
            "access",
            client_id,
            " ".join(granted),
            None,
            client_id,
            None,
            "client_credentials",
            now,
            now + self.config.access_token_ttl,
            f"client:{client_id}",
        )
        self.store.save_token(access, record)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.access_token_ttl,
            "scope": record.scope,
        }

    # ------------------------------------------------------------ access tokens

    def active_access(self, token: str | None) -> TokenRecord | None:
        record = self.store.find_token(token) if token else None
        if record is None or record.kind != "access" or not record.is_active(self.config.now()):
            return None
        return record

    def backend_caller(self, bearer: str | None) -> TokenRecord | None:
        """A registered backend client's active client_credentials token, else None."""
        record = self.active_access(bearer)
        if record is None or record.grant_type != "client_credentials":
            return None
        return record if self.config.backend_client(record.client_id) else None

    def introspect(self, token: str | None) -> dict[str, Any]:
        """RFC 7662 2.2: only access tokens are reported active; anything else is
        ``{"active": false}`` with nothing more."""
        record = self.active_access(token)
        if record is None:
            return {"active": False}
        body: dict[str, Any] = {
            "active": True,
            "scope": record.scope,
            "client_id": record.client_id,
            "token_type": "Bearer",
            "exp": record.expires_at,
            "iat": record.issued_at,
            "sub": record.subject,
            "iss": self.config.issuer,
            "patient": record.patient,
            "fhirUser": record.fhir_user,
        }
        return {k: v for k, v in body.items() if v is not None}

    def revoke(self, form: dict[str, str]) -> None:
        """RFC 7009 2: revoke a token of the authenticated client; unknown tokens are fine.
        Revoking a refresh token also revokes the access tokens of the same grant."""
        client_id, _ = self.authenticate(form)
        token = form.get("token")
        if not token:
            raise InvalidRequest("token is missing")
        record = self.store.find_token(token)
        if record is None or record.client_id != client_id:
            return
        self.store.revoke_token(token)
        if record.kind == "refresh":
            self.store.revoke_origin(record.origin)
