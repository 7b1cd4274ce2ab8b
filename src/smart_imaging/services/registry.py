"""One set of services per tenant, built on first use from its config and kept by the app.

Keyed by ``Tenant.key`` (a static tenant's name, or ``dyn:`` + the config's hash), bounded: a
dynamic tenant evicted here is rebuilt on its next request; its decision caches start empty.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import httpx

from ..cache import TtlCache
from ..config.tenant import DicomWebImages, TenantConfig
from .last_updated import OrthancLastUpdate
from .study_policy import StudyPolicyService

MAX_TENANTS = 256


@dataclass
class TenantServices:
    policy: StudyPolicyService | None
    last_updated: OrthancLastUpdate | None

    async def aclose(self) -> None:
        if self.policy is not None:
            await self.policy.aclose()


def build(key: str, config: TenantConfig, http: httpx.AsyncClient | None) -> TenantServices:
    policy = StudyPolicyService(config.policy, tenant=key, http=http) if config.policy else None
    images = config.images
    updates = None
    if isinstance(images, DicomWebImages) and images.lastUpdated == "orthanc" and http is not None:
        updates = OrthancLastUpdate(images, http)
    return TenantServices(policy, updates)


class ServiceRegistry:
    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        self.http = http
        self._tenants: TtlCache[str, TenantServices] = TtlCache(MAX_TENANTS, on_evict=self._evicted)
        self._closing: set[asyncio.Task[None]] = set()

    def of(self, key: str, config: TenantConfig) -> TenantServices:
        found = self._tenants.get(key)
        if found is None:
            found = build(key, config, self.http)
            self._tenants.put(key, found)
        return found

    def _evicted(self, key: str, services: TenantServices) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing holds a connection
            task = asyncio.get_running_loop().create_task(services.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for services in self._tenants.values():
            await services.aclose()
        self._tenants.clear()
