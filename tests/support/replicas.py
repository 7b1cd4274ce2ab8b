"""Three ``smart-imaging serve`` replicas sharing ``SMART_IMAGING_KEY`` and a real Redis, nginx in
front (``bench/nginx.py``, idempotent GETs retried on the next replica on a connection error, a
timeout or a 502), a real Orthanc and the demo EHR sandbox: the world of ``tests/test_replicas.py``.

Tenants: the hostile world's ``a``/``b``/``d`` (mock, ``tests/hostile_world.py``) and dynamic
tenants for its Orthanc, ``s`` (``smart-on-fhir`` at the sandbox, decisions for 60 s) and ``r``
(the same, 2 s, for revocation), ``dual`` (``smart-on-fhir-independent``: its state in Redis).
The sandbox patients' studies: ava-chen (MRN-1001, copies of a
real CT/MR series) and sam-patel (MRN-1004, one 40 MB multi-frame instance, for streams cut by a
replica's death).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.nginx import Nginx
from tests.conftest import TEST_KEY, dicomweb_tenant
from tests.hostile_world import tenants as hostile_tenants
from tests.orthanc import Orthanc
from tests.sample_dicom import SampleData, build_sample_data, large_multiframe, real_series_files, restamped
from tests.serve_process import ServeProcess

from .counted_ehr import CountedEhr
from .redis import RedisServer

PATIENT, MRN = "ava-chen", "MRN-1001"
BIG_PATIENT, BIG_MRN = "sam-patel", "MRN-1004"
PID = "x-smart-imaging-pid"
NEXT_UPSTREAM = "proxy_next_upstream error timeout;"
ERROR_LINE = re.compile(
    r"^\S+ \S+ (ERROR|CRITICAL) .*|^(ERROR|CRITICAL):.*|Traceback \(most recent call last\)", re.MULTILINE
)


def replica_data() -> SampleData:
    data = build_sample_data()
    for path in real_series_files():
        if "/77654033/" in str(path):
            data.add(restamped(path, MRN, "replicas"))
    data.add(large_multiframe("replicas-big", BIG_MRN, "Big^Stream", frames=20, size=1024))
    return data


class ReplicaStack(contextlib.ExitStack):
    """``with ReplicaStack() as stack: stack.start()``; everything stops on exit."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="replicas-"))
        self.data = replica_data()
        self.replicas: list[ServeProcess] = []
        self.others: list[ServeProcess] = []  # servers of this world not behind nginx

    def start(self, count: int = 3) -> ReplicaStack:
        self.orthanc = Orthanc().start()
        self.callback(self.orthanc.stop)
        self.orthanc.upload_bytes(self.data.files.values())
        self.ehr = CountedEhr().start()
        self.callback(self.ehr.stop)
        self.redis = RedisServer().start()
        self.callback(self.redis.stop)
        self.replicas = [self.serve(f"replica-{i}") for i in range(count)]
        self.nginx = Nginx([r.port for r in self.replicas])
        assert NEXT_UPSTREAM in self.nginx.config  # the helper's line, made to retry a 502 too
        self.nginx.config = self.nginx.config.replace(
            NEXT_UPSTREAM, "proxy_next_upstream error timeout http_502;"
        )
        self.nginx.start()
        self.callback(self.nginx.stop)
        return self

    def tenants(self) -> dict[str, Any]:
        images = dicomweb_tenant(self.orthanc)
        return {
            **hostile_tenants(self.orthanc),
            "s": {"authorization": self.ehr.authorization(60, 30), "images": images},
            "r": {"authorization": self.ehr.authorization(2, 30), "images": images},
            "dual": {"authorization": self.dual_authorization(), "images": images},
        }

    def dual_authorization(self) -> dict[str, Any]:
        """A dual-launch tenant (its own authorization server) on the sandbox's EHR client."""
        key, _ = self.ehr.sandbox.keys["dual-imaging"]
        client = {"client_id": "dual-imaging", "jwkPrivate": key.as_dict(private=True)}
        return {"type": "smart-on-fhir-independent", "fhirBaseUrl": self.ehr.sandbox.fhir, "client": client}

    def serve(self, name: str, *args: str) -> ServeProcess:
        """One more ``serve`` process of this world (``--workers 1`` unless ``args`` say otherwise)."""
        folder = self.dir / name
        folder.mkdir()
        allow = f"127.0.0.1:{self.orthanc.http_port}"
        flags = ["--dynamic-tenants", "--dynamic-upstream-allow", allow, *(args or ("--workers", "1"))]
        env = {"SMART_IMAGING_KEY": TEST_KEY, "SMART_IMAGING_REDIS_URL": self.redis.url}
        env["SMART_IMAGING_UPSTREAM_CONNECTIONS"] = "12"  # x 4 servers: within Orthanc's 50 threads
        server = ServeProcess(folder, self.tenants(), *flags, env={**env, "SMART_IMAGING_EXPOSE_PID": "1"})
        self.callback(server.stop)
        return server.start()

    @property
    def bases(self) -> list[str]:
        return [r.url for r in self.replicas]

    def pid(self, replica: int) -> int:
        process = self.replicas[replica].process
        assert process is not None
        return process.pid

    def errors_logged(self) -> list[str]:
        """ERROR lines and tracebacks in the logs of the replicas and the other servers."""
        found = []
        for replica in [*self.replicas, *self.others]:
            found += [m.group(0) for m in ERROR_LINE.finditer(replica.log())]
        return found


def search(base: str, token: str, tenant: str = "s", patient: str = PATIENT) -> httpx.Response:
    return httpx.get(
        f"{base}/{tenant}/fhir/ImagingStudy",
        params={"patient": patient},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def endpoint(base: str, token: str, tenant: str = "s", patient: str = PATIENT) -> tuple[str, str]:
    """(WADO-RS base path under the Endpoint, without the host; study UID) of the first study."""
    found = search(base, token, tenant, patient)
    assert found.status_code == 200, found.text
    study = next(
        e["resource"] for e in found.json()["entry"] if e["resource"]["resourceType"] == "ImagingStudy"
    )
    return urlsplit(study["contained"][0]["address"]).path, study["id"]
