"""Benchmark: 2,000 WADO-RS metadata requests with one SMART token, decision cache on and off.

Starts Orthanc (sample studies), the real oidc-provider, the test EHR and smart-imaging, gets a
real token, then fires the requests (``--concurrency`` at a time) and prints requests/s and how
many introspection calls reached the authorization server. Target: one with the cache on.
Run: PYTHONPATH=src .venv/bin/python bench/bench_auth.py [--requests 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import ECKey, RSAKey

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "auth"), str(ROOT / "src")]
import oidc_server
from smart_ehr import EhrState, make_ehr

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings
from tests.conftest import ServerThread
from tests.orthanc import Orthanc
from tests.sample_dicom import build_sample_data

MRN = "77654033"


async def run(base: str, tenant: str, token: str, total: int, concurrency: int) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as http:
        bundle = (
            await http.get(f"{base}/{tenant}/fhir/ImagingStudy", params={"patient": "pat-a"}, headers=headers)
        ).json()
        entry = bundle["entry"][0]["resource"]
        url = f"{entry['contained'][0]['address']}/studies/{entry['id']}/metadata"
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(total):
            queue.put_nowait(i)
        failures = 0

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                queue.get_nowait()
                response = await http.get(url, headers=headers)
                failures += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        if failures:
            raise SystemExit(f"{failures} requests failed")
        return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    backend = ECKey.generate_key("P-384", parameters={"kid": "bench", "alg": "ES384"})
    orthanc = Orthanc().start()
    servers: list[Any] = []
    oidc = None
    try:
        orthanc.upload_bytes(build_sample_data().files.values())
        state = EhrState(issuer="", ehr_secret=secrets.token_urlsafe(16))
        ehr = ServerThread(make_ehr(state)).start()
        servers.append(ehr)
        state.base_url = ehr.url
        oidc = oidc_server.start(
            {
                "port": oidc_server.free_port(),
                "fhirBaseUrl": state.fhir_base,
                "providerJwks": {
                    "keys": [RSAKey.generate_key(2048, parameters={"kid": "p"}).as_dict(private=True)]
                },
                "backendJwks": {"keys": [backend.as_dict(private=False)]},
                "backendRsaJwks": {"keys": [RSAKey.generate_key(2048).as_dict(private=False)]},
                "secrets": {"imaging-secret": "x" * 16, "ehr": state.ehr_secret},
            },
            Path(tempfile.mkdtemp()),
        )
        state.issuer = oidc.issuer
        state.patients = {
            "pat-a": {
                "resourceType": "Patient",
                "id": "pat-a",
                "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": MRN}],
            }
        }
        auth = {
            "type": "smart-on-fhir",
            "fhirBaseUrl": state.fhir_base,
            "introspectionAuth": "private_key_jwt",
            "client": {"client_id": "imaging-server", "jwkPrivate": backend.as_dict(private=True)},
        }
        images = {
            "type": "dicom-web",
            "endpoint": orthanc.dicomweb_url,
            "authentication": {
                "type": "http-basic",
                "username": orthanc.username,
                "password": orthanc.password,
            },
        }
        tenants = {
            "cache-on": parse_config({"authorization": auth, "images": images}),
            "cache-off": parse_config(
                {"authorization": {**auth, "cacheTtl": 0, "negativeCacheTtl": 0}, "images": images}
            ),
        }
        app = ServerThread(create_app(Settings(key="bench-key"), tenants=tenants)).start()
        servers.append(app)
        token = oidc.app_token("pat-a")["access_token"]
        print(f"{args.requests} WADO-RS metadata requests, one token, concurrency {args.concurrency}")
        for tenant in ("cache-on", "cache-off"):
            before = oidc.introspections("imaging-server")
            rate = asyncio.run(run(app.url, tenant, token, args.requests, args.concurrency))
            calls = oidc.introspections("imaging-server") - before
            print(
                f"  {tenant:9}  {rate:8.1f} requests/s  {calls:5d} introspection calls (incl. the 1 search)"
            )
    finally:
        for server in reversed(servers):
            server.stop()
        if oidc is not None:
            oidc_server.stop(oidc)
        orthanc.stop()


if __name__ == "__main__":
    main()
