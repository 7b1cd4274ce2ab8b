"""SMART discovery: ``{fhirBaseUrl}/.well-known/smart-configuration`` (SMART App Launch 2.x,
section "Conformance"), fetched lazily on first use, cached, each endpoint overridable.

Building an authorizer does no I/O; the document is read when a request first needs an
endpoint the config does not set. A failed fetch is not cached: the next request retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..cache import TtlCache
from ..errors import UpstreamError
from .outbound import request_json

WELL_KNOWN = "/.well-known/smart-configuration"


@dataclass(frozen=True)
class SmartEndpoints:
    """What we use from the smart-configuration document."""

    token_endpoint: str | None = None
    introspection_endpoint: str | None = None
    jwks_uri: str | None = None
    issuer: str | None = None

    def require(self, name: str) -> str:
        value: str | None = getattr(self, name)
        if not value:
            raise UpstreamError(f"EHR smart-configuration has no {name} (and the config sets none)")
        return value

    def overlaid_by(self, overrides: SmartEndpoints) -> SmartEndpoints:
        """These endpoints with every value ``overrides`` sets taking precedence."""
        changes = {f.name: getattr(overrides, f.name) for f in fields(self) if getattr(overrides, f.name)}
        return replace(self, **changes)


def parse_smart_configuration(document: Mapping[str, Any]) -> SmartEndpoints:
    """Pick the endpoints out of a smart-configuration document; lenient about the rest."""
    values: dict[str, str | None] = {}
    for name in ("token_endpoint", "introspection_endpoint", "jwks_uri", "issuer"):
        value = document.get(name)
        if value is not None and not _is_http_url(value):
            raise UpstreamError(f"EHR smart-configuration has an invalid {name}")
        values[name] = value
    return SmartEndpoints(**values)


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not 0-65535
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@dataclass(frozen=True)
class _Fetched:
    document: dict[str, Any]
    endpoints: SmartEndpoints


class Discovery:
    """The EHR's endpoints: config overrides first, then the discovered document (cached ``ttl``)."""

    def __init__(
        self,
        fhir_base_url: str,
        http: httpx.AsyncClient,
        *,
        overrides: SmartEndpoints,
        timeout: float,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        url_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        self.url = fhir_base_url.rstrip("/") + WELL_KNOWN
        self.overrides = overrides
        self._url_allowed = url_allowed  # dynamic tenants: discovered endpoints must pass it too
        self._http = http
        self._timeout = timeout
        self._cache: TtlCache[str, _Fetched] = TtlCache(1, ttl=ttl, clock=clock)
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def endpoints(self, *needed: str) -> SmartEndpoints:
        """The endpoints; fetches the document only when one of ``needed`` is not overridden."""
        if needed and all(getattr(self.overrides, name) for name in needed):
            return self.overrides
        async with self._lock:
            endpoints = (await self._fetched()).endpoints.overlaid_by(self.overrides)
            if not all(getattr(endpoints, name) for name in needed):
                self._cache.pop(self.url)  # incomplete for this use: ask again next time
            return endpoints

    async def document(self) -> dict[str, Any]:
        """The EHR's smart-configuration document with the config's overrides applied."""
        async with self._lock:
            fetched = await self._fetched()
        endpoints = fetched.endpoints.overlaid_by(self.overrides)
        return {
            **fetched.document,
            **{f.name: getattr(endpoints, f.name) for f in fields(endpoints) if getattr(endpoints, f.name)},
        }

    async def _fetched(self) -> _Fetched:
        fetched = self._cache.get(self.url)
        if fetched is None:
            document = await self._fetch()
            found = parse_smart_configuration(document)
            self._check_allowed(found)
            fetched = _Fetched(document, found)
            self._cache.put(self.url, fetched)
        return fetched

    def _check_allowed(self, found: SmartEndpoints) -> None:
        if self._url_allowed is None:
            return
        refused = [
            name
            for name in ("token_endpoint", "introspection_endpoint", "jwks_uri")
            if getattr(found, name)
            and not getattr(self.overrides, name)
            and not self._url_allowed(getattr(found, name))
        ]
        if refused:
            raise UpstreamError(
                "EHR smart-configuration names a host that is not allowed for "
                f"dynamic tenants ({', '.join(refused)})"
            )

    async def _fetch(self) -> dict[str, Any]:
        self.fetches += 1
        status, body = await request_json(
            self._http, "GET", self.url, what="EHR smart-configuration", timeout=self._timeout
        )
        if body is None:
            raise UpstreamError(f"EHR smart-configuration answered status {status}")
        return body
