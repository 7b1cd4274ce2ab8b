"""The demo's EHR sandbox (``smart_imaging_demo.ehr``) under uvicorn in a thread, counting the
introspections it answers: a real SMART EHR (standalone launch with PKCE, RFC 7662
introspection for backend clients, RFC 7009 revocation, Patient reads) for tests of decisions
shared across servers. Built from the sandbox tests' own config (``tests/demo/ehr/conftest.py``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from smart_imaging_demo.ehr import create_ehr_app
from tests.demo.ehr.conftest import MovableClock, Sandbox, backend_keys, make_config

from .ports import free_port
from .servers import ServerThread

IMAGING_SCOPE = "launch/patient patient/ImagingStudy.rs"


class Counting:
    """Counts requests by path before handing them on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.counts: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.counts[scope["path"]] = self.counts.get(scope["path"], 0) + 1
        await self.app(scope, receive, send)


class CountedEhr:
    """``CountedEhr().start()``; ``token(patient)``, ``revoke(token)``, ``introspections``."""

    def __init__(self) -> None:
        port, self.dir = free_port(), Path(tempfile.mkdtemp(prefix="counted-ehr-"))
        clock, keys = MovableClock(), backend_keys()
        self.config = make_config(port, self.dir, clock, keys)
        self.sandbox = Sandbox(self.config.base_url, self.config, clock, keys)
        self.ehr = create_ehr_app(self.config)
        self.counter = Counting(Starlette(routes=[Mount("/ehr", app=self.ehr)]))
        self.server = ServerThread(self.counter, port, lifespan="off")

    def start(self) -> CountedEhr:
        self.server.start()
        return self

    @property
    def introspections(self) -> int:
        return self.counter.counts.get("/ehr/introspect", 0)

    def token(self, patient: str, scope: str = IMAGING_SCOPE) -> str:
        """An app's access token for ``patient`` from a real standalone launch."""
        return str(self.sandbox.launch(scope=scope, patient=patient)["access_token"])

    def revoke(self, token: str) -> None:
        """RFC 7009 revocation by the app the token was issued to."""
        answer = httpx.post(f"{self.sandbox.base}/revoke", data={"token": token, "client_id": "my-app"})
        assert answer.status_code == 200, answer.text

    def authorization(self, cache_ttl: float, negative_ttl: float) -> dict[str, Any]:
        """The imaging tenant's ``smart-on-fhir`` section for this EHR (backend client ES384)."""
        key, _ = self.sandbox.keys["imaging-server"]
        return {
            "type": "smart-on-fhir",
            "fhirBaseUrl": self.sandbox.fhir,
            "scope": "system/Patient.read",
            "client": {"client_id": "imaging-server", "jwkPrivate": key.as_dict(private=True)},
            "cacheTtl": cache_ttl,
            "negativeCacheTtl": negative_ttl,
        }

    def stop(self) -> None:
        self.server.stop()
        self.sandbox.http.close()
        self.ehr.state.ehr_store.close()


def answers_after(
    ask: Sequence[Callable[[], int]], after: float, timeout: float = 20
) -> list[list[tuple[float, int]]]:
    """Call each ``ask`` (a request to one server; its status) in turn until each has answered a
    request *started* more than ``after`` seconds from now: per server, (seconds from now when the
    request started, status) of every request. What a slow machine delays is the answer, not the
    start time, so a check on requests started after a deadline does not depend on its speed."""
    began = time.monotonic()
    seen: list[list[tuple[float, int]]] = [[] for _ in ask]
    while not all(any(t > after for t, _ in answers) for answers in seen):
        assert time.monotonic() - began < timeout, seen
        for answers, one in zip(seen, ask, strict=True):
            started = time.monotonic() - began
            answers.append((started, one()))
        time.sleep(0.05)
    return seen
