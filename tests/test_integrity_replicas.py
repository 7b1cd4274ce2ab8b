"""The integrity cases of ``tests/test_integrity_dicomweb.py`` against a deployment: three
``serve`` replicas sharing Redis behind nginx (``bench/nginx.py``, a 502 retried on the next
replica, as ``tests/support/replicas.py`` runs it), and one ``serve --workers 2``.

A fake archive cuts, truncates, freezes or garbles a study; through nginx and through either
worker the client must still see a broken transfer (nginx must not turn an aborted stream into a
clean end), a clean 502 when nothing was sent, or the whole study byte for byte; and the process
that served it logs one warning line, never a traceback, never the binding."""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.nginx import Nginx
from smart_imaging.dicom import multipart
from tests.conftest import TEST_KEY, mock_patient
from tests.fake_archive import Answer, FakeArchive
from tests.serve_process import ServeProcess
from tests.support.redis import RedisServer
from tests.support.replicas import ERROR_LINE, NEXT_UPSTREAM
from tests.test_integrity_dicomweb import (
    BOUNDARY,
    CUTS,
    MRN,
    MULTIPART,
    NOTHING_SENT,
    PARTS,
    SERIES,
    UID,
    retrieve,
    study_multipart,
)

ABORT = re.compile(r"^.*WARNING smart_imaging\.wado WADO-RS stream aborted.*$", re.MULTILINE)


@dataclass
class Deployment:
    """What a client talks to (``base``) and the ``serve`` processes behind it."""

    base: str
    servers: list[ServeProcess]
    marks: list[int] = field(default_factory=list)  # each log's length when the test began

    def mark(self) -> None:
        self.marks = [len(server.log()) for server in self.servers]

    def new_log(self) -> str:
        return "".join(s.log()[m:] for s, m in zip(self.servers, self.marks, strict=True))

    def wait_for_aborts(self, count: int, timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(found := ABORT.findall(self.new_log())) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return found

    def address(self) -> str:
        """The Endpoint address a search through this deployment hands out."""
        bundle = httpx.get(f"{self.base}/t/fhir/ImagingStudy", params={"patient": "pat-i"}, timeout=30)
        assert bundle.status_code == 200, bundle.text
        address = str(bundle.json()["entry"][0]["resource"]["contained"][0]["address"])
        assert address.startswith(self.base)
        return address


@dataclass
class World:
    archive: FakeArchive
    deployments: dict[str, Deployment]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with contextlib.ExitStack() as stack:
        archive = FakeArchive().start()
        stack.callback(archive.stop)
        archive.route(
            "/studies",
            Answer.json(
                [{"0020000D": {"vr": "UI", "Value": [UID]}, "00100020": {"vr": "LO", "Value": [MRN]}}]
            ),
        )
        archive.route(f"/studies/{UID}/series", Answer.json([]))
        archive.route(f"/studies/{UID}/instances", Answer.json([]))
        redis = RedisServer().start()
        stack.callback(redis.stop)
        tenants = {
            "t": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-i", MRN)},
                "images": {"type": "dicom-web", "endpoint": archive.url, "timeout": 1.5},
            }
        }
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="integrity-replicas-")))
        env = {"SMART_IMAGING_KEY": TEST_KEY, "SMART_IMAGING_REDIS_URL": redis.url}

        def serve(name: str, workers: str) -> ServeProcess:
            (root / name).mkdir()
            server = ServeProcess(root / name, tenants, "--workers", workers, env=env)
            stack.callback(server.stop)
            return server.start()

        replicas = [serve(f"replica-{i}", "1") for i in range(3)]
        nginx = Nginx([r.port for r in replicas])
        nginx.config = nginx.config.replace(NEXT_UPSTREAM, "proxy_next_upstream error timeout http_502;")
        nginx.start()
        stack.callback(nginx.stop)
        workers = serve("workers-2", "2")
        yield World(
            archive,
            {
                "three replicas behind nginx": Deployment(nginx.url, replicas),
                "serve --workers 2": Deployment(workers.url, [workers]),
            },
        )


@pytest.fixture(params=["three replicas behind nginx", "serve --workers 2"])
def deployment(world: World, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    found = world.deployments[request.param]
    found.mark()
    yield found
    log = found.new_log()
    assert [m.group(0) for m in ERROR_LINE.finditer(log)] == []
    assert "unexpected error" not in log and "ASGI callable" not in log


def assert_one_abort(deployment: Deployment, address: str, why: str) -> None:
    aborts = deployment.wait_for_aborts(1)
    assert len(aborts) == 1 and why in aborts[0], aborts
    assert address.rsplit("/", 1)[1] not in deployment.new_log()  # the binding is never logged


@pytest.mark.parametrize("case", sorted(CUTS))
def test_a_cut_study_is_a_broken_transfer(world: World, deployment: Deployment, case: str) -> None:
    spec = dict(CUTS[case])
    body = study_multipart(lengths=spec.pop("lengths", True))
    cut = spec.pop("cut")
    world.archive.route(
        f"/studies/{UID}", Answer(body=body, content_type=MULTIPART, cut=cut % len(body), **spec)
    )
    address = deployment.address()
    response, received, error = retrieve(address)
    assert response.status_code == 200
    assert error is not None, "a cut study must never end cleanly, through nginx neither"
    assert not received.rstrip().endswith(f"--{BOUNDARY}--".encode())
    assert_one_abort(deployment, address, "image archive")


def test_a_multipart_without_closing_delimiter_is_a_broken_transfer(
    world: World, deployment: Deployment
) -> None:
    world.archive.route(f"/studies/{UID}", Answer(body=study_multipart(close=False), content_type=MULTIPART))
    address = deployment.address()
    response, received, error = retrieve(address)
    assert error is not None and response.status_code == 200
    assert len(list(multipart.decode(MULTIPART, received))) == len(PARTS)
    assert_one_abort(deployment, address, "without a closing delimiter")


def test_a_part_shorter_than_its_content_length_is_a_broken_transfer(
    world: World, deployment: Deployment
) -> None:
    body = study_multipart().replace(b"Content-Length: 300003", b"Content-Length: 300009")
    world.archive.route(f"/studies/{UID}", Answer(body=body, content_type=MULTIPART))
    address = deployment.address()
    assert retrieve(address)[2] is not None
    assert_one_abort(deployment, address, "Content-Length")


def test_a_frozen_archive_mid_stream_is_a_broken_transfer(world: World, deployment: Deployment) -> None:
    body = study_multipart()
    frozen = [body[:500_000], *[b"" for _ in range(5)], body[500_000:]]
    world.archive.route(f"/studies/{UID}", Answer(body=frozen, content_type=MULTIPART, pause=1.0))
    address = deployment.address()
    _, received, error = retrieve(address)
    assert error is not None and len(received) < len(body)
    assert_one_abort(deployment, address, "timed out mid-stream")


@pytest.mark.parametrize("case", sorted(NOTHING_SENT))
def test_a_retrieval_that_fails_before_its_first_byte_is_a_clean_502(
    world: World, deployment: Deployment, case: str
) -> None:
    """Through nginx each replica is asked in turn (a 502 is retried); the answer is still ours."""
    body, content_type, why = NOTHING_SENT[case]
    world.archive.route(f"/studies/{UID}", Answer(body=body, content_type=content_type))
    response = httpx.get(f"{deployment.address()}/studies/{UID}", timeout=30)
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway" and why in response.json()["message"]
    assert deployment.wait_for_aborts(0) == []  # nothing was streamed, nothing aborted


def test_a_complete_study_passes_byte_for_byte(world: World, deployment: Deployment) -> None:
    body = study_multipart(location=world.archive.url)
    world.archive.route(f"/studies/{UID}", Answer(body=body, content_type=MULTIPART))
    address = deployment.address()
    response, received, error = retrieve(address)
    assert error is None and response.status_code == 200
    decoded = list(multipart.decode(MULTIPART, received))
    assert [payload for _, payload in decoded] == PARTS
    assert [h["content-location"] for h, _ in decoded] == [
        f"{address}/studies/{UID}/series/{SERIES}/instances/1.2.3.{i}" for i in range(len(PARTS))
    ]
    assert " WARNING " not in deployment.new_log()
