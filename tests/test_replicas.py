"""Three replicas behind nginx with Redis (``tests/support/replicas.py``): what one replica
does, the others know. A search on one and WADO-RS through the others (directly and through
nginx, one introspection in all); a token revoked at the EHR refused by every replica within the
TTL; the hostile-input properties of issue 13 through the nginx front and against
``--workers 2``; a Redis restart survived (the dual-launch server answers 503 meanwhile, never a
local store); one replica SIGKILLed under load: nginx retries what it can, and the only requests
lost are streams that replica had begun, each a broken transfer, never a short clean answer."""

from __future__ import annotations

import io
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pydicom
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from smart_imaging.dicom import multipart
from tests import hostile
from tests.hostile_world import DEADLINE, Probe, Target, _shape, discover, problems, send
from tests.support.counted_ehr import answers_after
from tests.support.replicas import BIG_PATIENT, MRN, PATIENT, PID, ReplicaStack, endpoint, search
from tests.test_hostile_property import bounded, known_cases

META, FRAME = (
    "application/dicom+json",
    'multipart/related; type="application/octet-stream"; transfer-syntax=*',
)
STUDY_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
TTL, SLACK = 2.0, 0.25  # tenant "r": decisions for 2 s; Redis TTLs are whole milliseconds
NGINX_PAGE = b"<hr><center>nginx"  # the footer of nginx's own error pages


@pytest.fixture(scope="module")
def stack() -> Iterator[ReplicaStack]:
    with ReplicaStack() as world:
        yield world.start()


def get(client: httpx.Client, url: str, token: str, accept: str) -> httpx.Response:
    return client.get(url, headers={"Authorization": f"Bearer {token}", "Accept": accept}, timeout=30)


def frame_urls(wado: str, study: str, metadata: list[dict[str, object]]) -> list[str]:
    def value(instance: dict[str, object], tag: str) -> str:
        return str(instance[tag]["Value"][0])  # type: ignore[index]

    return [
        f"{wado}/studies/{study}/series/{value(i, '0020000E')}/instances/{value(i, '00080018')}/frames/1"
        for i in metadata
    ]


def test_a_search_on_one_replica_opens_wado_on_the_others(stack: ReplicaStack) -> None:
    token = stack.ehr.token(PATIENT)
    before = stack.ehr.introspections
    path, study = endpoint(stack.bases[0], token)
    with httpx.Client() as client:
        for replica, base in enumerate(stack.bases[1:], start=1):
            meta = get(client, f"{base}{path}/studies/{study}/metadata", token, META)
            assert meta.status_code == 200 and meta.headers[PID] == str(stack.pid(replica)), meta.text
            assert {i["00100020"]["Value"][0] for i in meta.json()} == {MRN}
            frame = get(client, frame_urls(base + path, study, meta.json())[0], token, FRAME)
            assert frame.status_code == 200 and len(frame.content) > 256
        front, _ = endpoint(stack.nginx.url, token)
        served = {
            get(client, f"{stack.nginx.url}{front}/studies/{study}/metadata", token, META) for _ in range(9)
        }
        whole = get(client, f"{stack.nginx.url}{front}/studies/{study}", token, STUDY_ACCEPT)
    assert {r.status_code for r in served} == {200}
    assert {r.headers[PID] for r in served} == {str(stack.pid(i)) for i in range(3)}  # round robin
    bodies = [body for _, body in multipart.decode(whole.headers["content-type"], whole.content)]
    stored = stack.data.instances_of(study)
    by_uid = {
        pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True).SOPInstanceUID: body for body in bodies
    }
    assert len(bodies) == len(stored) and by_uid == stored  # the whole study, byte for byte
    assert stack.ehr.introspections - before == 1  # one for every replica


def test_a_token_revoked_at_the_ehr_is_refused_by_every_replica_within_the_ttl(stack: ReplicaStack) -> None:
    token = stack.ehr.token(PATIENT)
    assert [search(base, token, "r").status_code for base in stack.bases] == [200] * 3
    before = stack.ehr.introspections
    stack.ehr.revoke(token)
    asks = [lambda base=base: search(base, token, "r").status_code for base in stack.bases]
    seen = answers_after(asks, TTL + SLACK)  # every decision was made before the revocation
    for answers in seen:
        assert {status for _, status in answers} <= {200, 401}, answers
        assert {status for started, status in answers if started > TTL + SLACK} == {401}, answers
    assert search(stack.nginx.url, token, "r").status_code == 401
    assert stack.ehr.introspections - before == 1  # the refusal is shared as well


# ---------------------------------------------------------------- hostile input (issue 13)


@dataclass
class Front:
    target: Target
    client: httpx.Client

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Front({self.target.base})"

    def check(self, probe: Probe) -> None:
        out = send(self.client, self.target.base, probe)
        if out.unsendable:
            reject()
        found = problems(probe, out, self.target)
        if NGINX_PAGE in out.body and 400 <= out.status < 500:  # nginx refused it itself: HTML
            found = [p for p in found if p not in _shape(probe, out)]
        assert not found, (
            f"{probe.describe()}\n-> {out.status}: " + "; ".join(found) + f"\n{out.body[:300]!r}"
        )


@pytest.fixture(scope="module")
def front(stack: ReplicaStack) -> Iterator[Front]:
    with httpx.Client(timeout=DEADLINE) as client:
        yield Front(discover(stack.nginx.url, stack.orthanc, stack.data), client)


@pytest.fixture(scope="module")
def workers2(stack: ReplicaStack) -> Iterator[Front]:
    server = stack.serve("workers-2", "--workers", "2")
    stack.others.append(server)  # its log is checked with the replicas'
    with httpx.Client(timeout=DEADLINE) as client:
        yield Front(discover(server.url, stack.orthanc, stack.data), client)


def test_known_hostile_cases_through_nginx(front: Front) -> None:
    for probe in known_cases(front.target):
        front.check(probe)


@bounded(100)
@given(data=st.data())
def test_hostile_requests_through_nginx(front: Front, data: st.DataObject) -> None:
    front.check(data.draw(hostile.any_probe(front.target), label="probe"))


@bounded(100)
@given(data=st.data())
def test_hostile_requests_against_two_workers(workers2: Front, data: st.DataObject) -> None:
    workers2.check(data.draw(hostile.any_probe(workers2.target), label="probe"))


def test_no_replica_or_worker_logged_an_error(stack: ReplicaStack, front: Front, workers2: Front) -> None:
    assert len(stack.replicas) == 3 and len(stack.others) == 1 and stack.errors_logged() == []


# ---------------------------------------------------------------- Redis restarted


def dual_launch_statuses(base: str) -> tuple[int, int]:
    """The dual-launch tenant's token endpoint (an unknown code) and a search with an unknown
    token: both must look in the shared store."""
    form = {
        "grant_type": "authorization_code",
        "code": "x" * 43,
        "redirect_uri": "http://127.0.0.1:9/cb",
        "client_id": "app",
    }
    token = httpx.post(f"{base}/dual/oauth/token", data=form, timeout=30)
    searched = search(base, f"unknown-{secrets.token_hex(8)}", "dual")  # fresh: no refusal cached
    return token.status_code, searched.status_code


def test_a_redis_restart_is_survived(stack: ReplicaStack) -> None:
    token = stack.ehr.token(PATIENT)
    path, study = endpoint(stack.nginx.url, token)
    assert dual_launch_statuses(stack.nginx.url) == (400, 401)
    stack.redis.kill()
    during = stack.ehr.token(PATIENT)
    with httpx.Client() as client:
        for _ in range(4):
            for base in [*stack.bases, stack.nginx.url]:
                assert search(base, during).status_code == 200
                assert get(client, f"{base}{path}/studies/{study}/metadata", token, META).status_code == 200
    down = [dual_launch_statuses(base) for base in [*stack.bases, stack.nginx.url]]
    assert down == [(503, 503)] * 4  # never a local store that would diverge
    stack.redis.start()
    time.sleep(1.3)  # each replica's next probe is due
    fresh = stack.ehr.token(PATIENT)
    before = stack.ehr.introspections
    assert [search(base, fresh).status_code for base in stack.bases] == [200] * 3
    assert stack.ehr.introspections - before == 1  # shared again
    assert dual_launch_statuses(stack.nginx.url) == (400, 401)
    for replica in stack.replicas:
        log = replica.log()
        assert log.count("is unreachable") == 1 and log.count("is reachable again") == 1, log[-2000:]


# ---------------------------------------------------------------- a replica killed under load


@dataclass
class Request:
    status: int = 0
    pid: str = ""
    error: str = ""  # a transport failure: before the answer's head, or while reading its body
    after_head: bool = False
    ended: float = 0.0


@dataclass
class Load:
    urls: list[str]
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    done: list[Request] = field(default_factory=list)

    def viewer(self, offset: int) -> None:
        with httpx.Client(timeout=30) as client:
            turn = offset
            while not self.stop.is_set():
                self.done.append(self.one(client, self.urls[turn % len(self.urls)]))
                turn += 1

    def one(self, client: httpx.Client, url: str) -> Request:
        request = Request()
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": META if url.endswith("metadata") else FRAME,
        }
        try:
            with client.stream("GET", url, headers=headers) as response:
                request.status, request.pid, request.after_head = (
                    response.status_code,
                    response.headers.get(PID, ""),
                    True,
                )
                response.read()
        except httpx.TransportError as exc:
            request.error = type(exc).__name__
        request.ended = time.monotonic()
        return request


@dataclass
class Stream:
    response: httpx.Response
    chunks: Iterator[bytes]

    def broken(self) -> bool:
        """True when the rest of the body fails or lacks the closing delimiter (not a clean end)."""
        boundary = multipart.boundary_of(self.response.headers["content-type"]) or ""
        tail = b""
        try:
            for chunk in self.chunks:
                tail = (tail + chunk)[-200:]
        except httpx.TransportError:
            return True
        finally:
            self.response.close()
        return not tail.rstrip().endswith(f"--{boundary}--".encode())


def open_stream_on(client: httpx.Client, url: str, token: str, pid: str) -> Stream:
    """A whole-study stream that nginx handed to replica ``pid``, its first MiB read."""
    headers = {"Authorization": f"Bearer {token}", "Accept": STUDY_ACCEPT}
    for _ in range(12):
        response = client.send(client.build_request("GET", url, headers=headers), stream=True)
        if response.headers.get(PID) == pid:
            chunks, read = response.iter_raw(65536), 0
            while read < 1 << 20:
                read += len(next(chunks))
            return Stream(response, chunks)
        response.close()
    raise AssertionError(f"nginx never handed the stream to {pid}")


def test_a_replica_killed_under_load_loses_only_what_it_had_begun(stack: ReplicaStack) -> None:
    token, big = stack.ehr.token(PATIENT), stack.ehr.token(BIG_PATIENT)
    path, study = endpoint(stack.nginx.url, token)
    with httpx.Client() as client:
        metadata = get(client, f"{stack.nginx.url}{path}/studies/{study}/metadata", token, META).json()
    load = Load(
        [
            f"{stack.nginx.url}{path}/studies/{study}/metadata",
            *frame_urls(stack.nginx.url + path, study, metadata),
        ],
        token,
    )
    big_path, big_study = endpoint(stack.nginx.url, big, patient=BIG_PATIENT)
    victim = str(stack.pid(2))
    streamer = httpx.Client(timeout=30)
    stream = open_stream_on(streamer, f"{stack.nginx.url}{big_path}/studies/{big_study}", big, victim)
    viewers = [threading.Thread(target=load.viewer, args=(i,)) for i in range(6)]
    for viewer in viewers:
        viewer.start()
    time.sleep(2)
    stack.replicas[2].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    killed = time.monotonic()
    time.sleep(4)
    load.stop.set()
    for viewer in viewers:
        viewer.join(60)
    assert stream.broken()  # the stream it had begun: a broken transfer, never a clean short study
    streamer.close()
    failed = [r for r in load.done if r.error or r.status != 200]
    after = [r for r in load.done if r.ended > killed + 0.5]
    print(
        f"kill under load: {len(load.done)} GETs through nginx, {len(after)} after the kill, failed: {failed}"
    )
    assert len(load.done) > 60 and len(after) > 20
    assert all(r.after_head and r.status == 200 and r.pid == victim for r in failed), failed  # begun there
    assert len(failed) <= len(viewers)  # at most the requests in flight on it when it died
    assert {r.pid for r in after} == {str(stack.pid(0)), str(stack.pid(1))}
    assert {r.status for r in after} == {200}
