"""A tenant's own authorization server, composed: clients, the EHR, the state store, the browser
flow and the token service. Built with the tenant's authorizer (``tenants.authorizers``), which checks its
tokens through ``lookup``; served by ``routes.oauth``; described in the imaging FHIR base's
smart-configuration (``fhir.capability.own_authorization_server``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx

from ..auth.discovery import Discovery
from ..auth.local_tokens import LocalToken
from ..config.tenant import SmartAuthorization
from . import stores
from .clients import ClientPolicy
from .ehr_client import EhrClient
from .flow import BrowserFlow
from .grants import SUPPORTED
from .store import StateStore
from .tokens import TokenService

log = logging.getLogger("smart_imaging.oauth")


class AuthorizationServer:
    """``auth.parts.Authority`` and ``auth.local_tokens.TokenLookup`` of one tenant."""

    def __init__(
        self,
        config: SmartAuthorization,
        discovery: Discovery,
        http: httpx.AsyncClient,
        *,
        url_allowed: Callable[[str], bool] | None = None,
        state_dir: Path | None = None,
        store: StateStore | None = None,
    ) -> None:
        """``store``: the shared store (``redis_store``, with Redis), else the SQLite file of
        ``state_dir`` (``stores``)."""
        self.settings = config.oauth_settings
        self.policy = ClientPolicy(self.settings)
        self.ehr = EhrClient(config, discovery, http, url_allowed)
        self._lease = stores.acquire(state_dir) if store is None else None
        self.store_path = self._lease.store.path if self._lease is not None else None
        if self._lease is not None:
            store = self._lease.store
        assert store is not None
        self.tokens = TokenService(store, self.policy, self.settings)
        self.flow = BrowserFlow(store, self.policy, self.ehr, self.tokens, self.settings)
        self._warned_dir = False
        if not self.policy.open_mode and not self.policy.registered:
            log.warning(
                "authorization server for EHR %s has no clients and openClients is false", config.fhirBaseUrl
            )
        if self.policy.open_mode:
            log.warning(
                "authorization server for EHR %s is in open mode: any client_id may launch; codes go "
                "only to loopback addresses, this server's origin and redirectOrigins",
                config.fhirBaseUrl,
            )

    async def lookup(self, token: str) -> LocalToken | None:
        return await self.tokens.lookup(token)

    async def aclose(self) -> None:
        if self._lease is not None:
            await self._lease.aclose()

    def check_state_dir(self, configured: Path | None) -> None:
        """Warn once when the process settings name another state folder than the one in use
        (the tenant registry does not pass ``Settings.state_dir`` through: the environment's is used)."""
        if configured is None or self._warned_dir or self.store_path is None:
            return
        if (configured / stores.FILE_NAME).absolute() != self.store_path:
            self._warned_dir = True
            log.warning("state folder %s is configured but %s is in use", configured, self.store_path)

    @property
    def auth_methods(self) -> list[str]:
        """``token_endpoint_auth_methods_supported``: ``none``, and ``private_key_jwt`` when a
        confidential client is registered."""
        return ["none", *(["private_key_jwt"] if any(c.confidential for c in self.policy.registered) else [])]

    @property
    def scopes(self) -> list[str]:
        return list(SUPPORTED)


def server_of(authorizer: object) -> AuthorizationServer | None:
    """The tenant's own authorization server, when its authorizer has one."""
    authority = getattr(authorizer, "authority", None)
    return authority if isinstance(authority, AuthorizationServer) else None
