"""The fast tier's route tests: the real app in-process (httpx over ASGI, its lifespan run),
its tenants' authorizer and image source swapped for fakes (``tests/support/fakes.py``).

Tenants: ``a`` and ``a2`` (the same fakes under two names), ``slowwado`` (retrieval delayed:
503 + Retry-After) and ``slow`` (search delayed). Tokens: ``token-a`` (patient pat-a, MRN-A),
``token-b`` (pat-b, MRN-B), ``token-none`` (no patient context). The archive holds five studies of
MRN-A and one of MRN-B.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings

from ..support.asgi import StreamingASGITransport, lifespan
from ..support.fakes import FakeAuthorizer, FakeSource, grant, install, patient, study

BASE = "http://imaging.test"
KEY = "fast-tier-binding-key-not-secret"
ROOT = "1.2.826.0.1.3680043.10.99"
A_UIDS = [f"{ROOT}.1.{n}" for n in range(1, 6)]  # newest first: dates 2024, 2023, ... 2020
B_UID = f"{ROOT}.2.1"


def _tenant(**images: Any) -> dict[str, Any]:
    endpoint = "http://archive.invalid/dicom-web"  # never contacted: the source is a fake
    return {
        "authorization": {"type": "mock"},
        "images": {"type": "dicom-web", "endpoint": endpoint, **images},
    }


def _tenants() -> dict[str, dict[str, Any]]:
    later = time.time() + 3600
    return {
        "a": _tenant(),
        "a2": _tenant(),
        "slow": _tenant(delay={"lookupUntil": later}),
        "slowwado": _tenant(delay={"retrieveUntil": later}),
    }


def archive() -> list[dict[str, Any]]:
    studies = [study(uid, "MRN-A", date=f"{2024 - n}0105", series=n + 1) for n, uid in enumerate(A_UIDS)]
    return [*studies, study(B_UID, "MRN-B", date="20240301", modality="MR")]


@dataclass
class World:
    app: Starlette
    client: httpx.AsyncClient  # over httpx.ASGITransport (whole bodies)
    streaming: httpx.AsyncClient  # over StreamingASGITransport (bodies as the app sends them)
    transport: StreamingASGITransport
    source: FakeSource
    authorizer: FakeAuthorizer

    async def search(self, params: Any = None, *, tenant: str = "a", **kw: Any) -> httpx.Response:
        """GET /{tenant}/fhir/ImagingStudy; ``token`` (default token-a, None for none)."""
        return await self.client.get(
            f"/{tenant}/fhir/ImagingStudy", params=params, headers=self.headers(**kw)
        )

    @staticmethod
    def headers(token: str | None = "token-a", **extra: str) -> dict[str, str]:
        return {**({"Authorization": f"Bearer {token}"} if token else {}), **extra}

    async def wado_base(
        self, uid: str, *, tenant: str = "a", token: str = "token-a", who: str = "pat-a"
    ) -> str:
        """The WADO-RS base URL (Endpoint.address) a search gives for study ``uid``."""
        found = await self.search(
            {"patient": who, "identifier": f"urn:oid:{uid}"}, tenant=tenant, token=token
        )
        assert found.status_code == 200, found.text
        (entry,) = found.json()["entry"]
        address: str = entry["resource"]["contained"][0]["address"]
        return address.removeprefix(BASE)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    app = create_app(Settings(key=KEY), tenants={name: parse_config(cfg) for name, cfg in _tenants().items()})
    source = FakeSource(studies=archive())
    authorizer = FakeAuthorizer(
        tokens={"token-a": grant("pat-a"), "token-b": grant("pat-b"), "token-none": grant(None)},
        patients={"pat-a": patient("pat-a", "MRN-A"), "pat-b": patient("pat-b", "MRN-B")},
    )
    async with lifespan(app):
        for name in _tenants():
            await install(app, name, source=source, authorizer=authorizer)
        streaming = StreamingASGITransport(app)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
            httpx.AsyncClient(transport=streaming, base_url=BASE) as streamer,
        ):
            for each in (client, streamer):
                del each.headers["accept"]  # httpx sends */* by default; these tests say what they accept
            yield World(app, client, streamer, streaming, source, authorizer)
