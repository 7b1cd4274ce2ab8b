"""Two servers (app instances on their own ports) sharing one real ``redis-server``, in front of a
real Orthanc and the demo EHR sandbox (real launches, RFC 7662 introspection, RFC 7009
revocation): one introspection per token for requests spread over both, a revocation refused by
both within the cache TTL, and Redis killed mid-run (every request still answered from local
caches, never a 500, one warning per server) then restarted (shared again)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings
from tests.conftest import TEST_KEY, ServerThread, dicomweb_tenant
from tests.orthanc import Orthanc
from tests.sample_dicom import real_series_files, restamped
from tests.support.counted_ehr import CountedEhr, answers_after
from tests.support.redis import RedisServer

PATIENT, MRN = "ava-chen", "MRN-1001"  # a sandbox patient and the DICOM PatientID of her studies
CACHE_TTL, NEGATIVE_TTL = 60.0, 30.0  # tenant "t"
SHORT_TTL = 2.0  # tenant "r": decisions for 2 s, so a revocation shows within the test


@dataclass
class Pair:
    ehr: CountedEhr
    redis: RedisServer
    servers: list[str]

    def search(self, server: int, token: str, tenant: str = "t") -> httpx.Response:
        return httpx.get(
            f"{self.servers[server]}/{tenant}/fhir/ImagingStudy",
            params={"patient": PATIENT},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def metadata(self, server: int, token: str) -> httpx.Response:
        """WADO-RS study metadata on ``server`` through an Endpoint found by the other one."""
        found = self.search(1 - server, token)
        assert found.status_code == 200, found.text
        study = next(e["resource"] for e in found.json()["entry"])
        address = study["contained"][0]["address"].replace(self.servers[1 - server], self.servers[server])
        return httpx.get(
            f"{address}/studies/{study['id']}/metadata",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    orthanc, ehr, redis = Orthanc().start(), CountedEhr().start(), RedisServer().start()
    servers: list[ServerThread] = []
    try:
        orthanc.upload_bytes(
            restamped(p, MRN, "state-apps") for p in real_series_files() if "/77654033/" in str(p)
        )
        tenants = {
            name: parse_config(
                {"authorization": ehr.authorization(ttl, NEGATIVE_TTL), "images": dicomweb_tenant(orthanc)}
            )
            for name, ttl in (("t", CACHE_TTL), ("r", SHORT_TTL))
        }
        settings = Settings(key=TEST_KEY, redis_url=redis.url)
        for _ in range(2):
            app = create_app(settings, tenants=tenants)
            servers.append(ServerThread(app).start())
        yield Pair(ehr, redis, [s.url for s in servers])
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        ehr.stop()
        orthanc.stop()


def test_one_introspection_for_requests_spread_over_both_servers(pair: Pair) -> None:
    token = pair.ehr.token(PATIENT)
    before = pair.ehr.introspections
    for turn in range(6):
        answer = pair.search(turn % 2, token)
        assert answer.status_code == 200 and answer.json()["total"] >= 1, answer.text
        metadata = pair.metadata(turn % 2, token)
        assert metadata.status_code == 200 and metadata.json()[0]["00100020"]["Value"] == [MRN]
    assert pair.ehr.introspections - before == 1
    keys = pair.redis.client().keys("*")
    assert any(k.startswith("authz:") for k in keys) and any(k.startswith("guard:") for k in keys)
    stored = " ".join([*keys, *(str(pair.redis.client().get(k)) for k in keys)])
    assert token not in stored and MRN not in " ".join(keys)  # keys are digests, never tokens


def test_a_revocation_is_refused_by_both_servers_within_the_ttl(pair: Pair) -> None:
    token = pair.ehr.token(PATIENT)
    assert [pair.search(i, token, "r").status_code for i in (0, 1, 0, 1)] == [200] * 4
    before = pair.ehr.introspections
    pair.ehr.revoke(token)
    asks = [lambda server=server: pair.search(server, token, "r").status_code for server in (0, 1)]
    for answers in answers_after(asks, SHORT_TTL + 0.25):  # requests started after the TTL
        assert {status for _, status in answers} <= {200, 401}, answers
        assert {status for started, status in answers if started > SHORT_TTL + 0.25} == {401}, answers
    assert all(pair.search(i, token, "r").status_code == 401 for i in (0, 1, 0, 1))
    assert pair.ehr.introspections - before == 1  # the refusal is shared too


def test_redis_killed_mid_run_then_restarted(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    token = pair.ehr.token(PATIENT)
    assert pair.search(0, token).status_code == 200
    with caplog.at_level(logging.INFO, "smart_imaging.state"):
        pair.redis.kill()
        during = pair.ehr.token(PATIENT)
        before, started = pair.ehr.introspections, time.monotonic()
        statuses = [pair.search(i % 2, t).status_code for i in range(12) for t in (token, during)]
        statuses += [pair.metadata(i % 2, during).status_code for i in range(4)]
        assert statuses == [200] * len(statuses)  # local caches serve on; never a 500
        # each server caches on its own: per token at most once per server and cache TTL
        periods = math.ceil((time.monotonic() - started) / CACHE_TTL) + 1
        assert pair.ehr.introspections - before <= 2 * 2 * periods < len(statuses) + 4
        pair.redis.start()  # same port, empty
        time.sleep(1.2)  # each server's next probe is due
        after = pair.ehr.token(PATIENT)
        before = pair.ehr.introspections
        assert [pair.search(i % 2, after).status_code for i in range(6)] == [200] * 6
        assert pair.ehr.introspections - before == 1  # shared again
    messages = [r.getMessage() for r in caplog.records if r.name == "smart_imaging.state"]
    assert len([m for m in messages if "unreachable" in m]) == 2, messages  # one per server
    assert len([m for m in messages if "reachable again" in m]) == 2, messages
