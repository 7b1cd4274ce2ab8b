"""Authorizers: who is asking, for which patient. Built from ``authorization.type``."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ..tenants.config import MockAuthorization, SmartAuthorization
from .base import AccessGrant, Authorizer, AuthRequest
from .mock import MockAuthorizer

__all__ = ["AccessGrant", "AuthRequest", "Authorizer", "build_authorizer"]


def build_authorizer(
    config: MockAuthorization | SmartAuthorization,
    http: httpx.AsyncClient,
    url_allowed: Callable[[str], bool] | None = None,
) -> Authorizer:
    """Make the authorizer a tenant's ``authorization`` section asks for."""
    if isinstance(config, MockAuthorization):
        return MockAuthorizer(config)
    from .smart import build_smart_authorizer  # the SMART family lives in its own modules

    return build_smart_authorizer(config, http, url_allowed)
