"""The policy decision point client against a real tiny PDP on a loopback port.

Fail closed is the point: down, slow, non-2xx, garbage, wrong types or a huge body give 503
(``Unavailable``), never a grant.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from smart_imaging.access.policy import Requester
from smart_imaging.config.policy import DecisionPoint
from smart_imaging.errors import Unavailable
from smart_imaging.policy_client import PolicyDecisionClient

from .access.dicom_json import series, study

Reply = tuple[int, dict[str, str], bytes]
ELENA = Requester("app", "RelatedPerson/elena", frozenset({"patient/ImagingStudy.rs"}), "maya")
STUDY = study("2.25.200", modalities=["US"])
SERIES = [series("2.25.200.1", "US"), series("2.25.200.2", "US")]


def json_reply(body: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class FakePdp:
    """A few-line PDP: answers with ``self.reply(request_json)``, records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.reply: Callable[[Any], Reply] = lambda _: json_reply({"decision": "permit"})
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append((dict(self.headers), json.loads(body)))
                status, headers, payload = fake.reply(fake.requests[-1][1])
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (too large, too slow)
                    self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/decide"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pdp() -> Iterator[FakePdp]:
    fake = FakePdp()
    yield fake
    fake.stop()


def make_client(url: str, clock: Callable[[], float] = time.monotonic, **config: Any) -> PolicyDecisionClient:
    config.setdefault("timeout", 1.0)
    return PolicyDecisionClient(
        DecisionPoint.model_validate({"url": url, **config}), tenant="t1", clock=clock
    )


async def test_permit_sends_the_request_and_grants_the_study(pdp):
    client = make_client(pdp.url)
    decision = await client.decide(ELENA, STUDY, SERIES)
    await client.aclose()
    assert decision.complete and decision.allowed_series == ("2.25.200.1", "2.25.200.2")
    headers, body = pdp.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert body["client_id"] == "app" and body["user"] == "RelatedPerson/elena" and body["patient"] == "maya"
    assert body["study"]["uid"] == "2.25.200" and [s["uid"] for s in body["series"]] == [
        "2.25.200.1",
        "2.25.200.2",
    ]
    assert body["tenant"] == "t1" and "Authorization" not in headers


async def test_deny(pdp):
    pdp.reply = lambda _: json_reply({"decision": "deny", "reason": "confidential encounter"})
    client = make_client(pdp.url)
    decision = await client.decide(ELENA, STUDY, SERIES)
    await client.aclose()
    assert not decision.allowed and "confidential encounter" in decision.reason


async def test_partial_series(pdp):
    pdp.reply = lambda request: json_reply({"decision": "permit", "series": [request["series"][1]["uid"]]})
    client = make_client(pdp.url)
    decision = await client.decide(ELENA, STUDY, SERIES)
    await client.aclose()
    assert decision.outcome == "partial" and not decision.complete
    assert decision.allowed_series == ("2.25.200.2",)


async def test_bearer_and_basic_auth_reach_the_pdp(pdp):
    bearer = make_client(pdp.url, auth={"type": "bearer", "token": "pdp-token-1"})
    basic = make_client(pdp.url, auth={"type": "http-basic", "username": "imaging", "password": "pw"})
    await bearer.decide(ELENA, STUDY, SERIES)
    await basic.decide(ELENA, STUDY, SERIES)
    await bearer.aclose()
    await basic.aclose()
    assert pdp.requests[0][0]["Authorization"] == "Bearer pdp-token-1"
    assert pdp.requests[1][0]["Authorization"] == "Basic " + base64.b64encode(b"imaging:pw").decode()


async def test_cache_hit_does_not_ask_again(pdp):
    now = [1000.0]
    client = make_client(pdp.url, clock=lambda: now[0], cacheTtl=30)
    first = await client.decide(ELENA, STUDY, SERIES)
    second = await client.decide(ELENA, STUDY, SERIES)
    assert first == second and len(pdp.requests) == 1
    await client.decide(ELENA, STUDY, SERIES[:1])  # another question
    assert len(pdp.requests) == 2
    now[0] += 31  # expired
    await client.decide(ELENA, STUDY, SERIES)
    await client.aclose()
    assert len(pdp.requests) == 3


async def test_denials_are_cached_too(pdp):
    pdp.reply = lambda _: json_reply({"decision": "deny"})
    client = make_client(pdp.url)
    for _ in range(3):
        assert not (await client.decide(ELENA, STUDY, SERIES)).allowed
    await client.aclose()
    assert len(pdp.requests) == 1


@pytest.mark.parametrize(("config", "answer"), [({"cacheTtl": 0}, {}), ({}, {"ttl": 0})])
async def test_no_caching_when_a_ttl_is_zero(pdp, config, answer):
    pdp.reply = lambda _: json_reply({"decision": "permit", **answer})
    client = make_client(pdp.url, **config)
    await client.decide(ELENA, STUDY, SERIES)
    await client.decide(ELENA, STUDY, SERIES)
    await client.aclose()
    assert len(pdp.requests) == 2


async def test_cache_is_bounded(pdp):
    client = make_client(pdp.url, cacheMaxEntries=2)
    for uid in ("1.1", "1.2", "1.3", "1.1"):
        await client.decide(ELENA, study(uid), [])
    await client.aclose()
    assert len(pdp.requests) == 4  # 1.1 was pushed out by 1.2 and 1.3


# ---------------------------------------------------------------- fail closed


async def assert_unavailable(client: PolicyDecisionClient, fragment: str) -> Unavailable:
    with pytest.raises(Unavailable) as caught:
        await client.decide(ELENA, STUDY, SERIES)
    await client.aclose()
    error = caught.value
    assert error.status == 503 and error.headers.get("Retry-After") == "5"
    assert fragment in error.message, error.message
    return error


async def test_down_is_503():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await assert_unavailable(make_client(f"http://127.0.0.1:{port}/decide"), "could not be reached")


async def test_slow_is_503_after_the_timeout(pdp):
    def slow(_: Any) -> Reply:
        time.sleep(8)
        return json_reply({"decision": "permit"})

    pdp.reply = slow
    started = time.monotonic()
    await assert_unavailable(make_client(pdp.url, timeout=0.3), "did not answer in time")
    assert time.monotonic() - started < 6  # it did not wait for the 8 s answer


async def test_a_slow_trickle_is_bounded_by_the_whole_exchange():
    """Headers at once, then one byte every 0.2 s: each read is quick, the total is not."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n")
        try:
            for byte in b'{"decision": "permit"' + b" " * 19:
                conn.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass
        conn.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    await assert_unavailable(
        make_client(f"http://127.0.0.1:{port}/decide", timeout=1.0), "did not answer in time"
    )
    listener.close()


@pytest.mark.parametrize("status", [500, 503, 404, 401, 302])
async def test_non_2xx_is_503(pdp, status):
    pdp.reply = lambda _: (status, {"Location": "http://127.0.0.1:1/"}, b'{"decision": "permit"}')
    await assert_unavailable(make_client(pdp.url), f"answered HTTP {status}")


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"", b'{"decision": "permit"', b"NaN", b'{"decision": NaN}', b"[" * 100_000, b"\xff\xfe"],
)
async def test_garbage_is_503(pdp, payload):
    pdp.reply = lambda _: (200, {"Content-Type": "application/json"}, payload)
    await assert_unavailable(make_client(pdp.url, maxResponseBytes=200_000), "outside the protocol")


@pytest.mark.parametrize(
    "body",
    [
        {"decision": True},
        {"decision": "permit", "series": "2.25.200.1"},
        {"decision": "permit", "ttl": "never"},
        {"permit": True},
        ["permit"],
    ],
)
async def test_wrong_types_are_503(pdp, body):
    pdp.reply = lambda _: json_reply(body)
    await assert_unavailable(make_client(pdp.url), "outside the protocol")


async def test_huge_declared_body_is_503(pdp):
    pdp.reply = lambda _: (
        200,
        {"Content-Type": "application/json"},
        b" " * 5_000_000 + b'{"decision": "permit"}',
    )
    await assert_unavailable(make_client(pdp.url), "more than 65536 bytes")


async def test_huge_undeclared_body_is_read_only_up_to_the_bound():
    """No Content-Length, the body runs until the connection closes: reading stops at the bound."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    sent = [0]

    def flood() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        try:
            while sent[0] < 200_000_000:
                conn.sendall(b'{"decision": "permit"}' + b" " * 65_000)
                sent[0] += 65_022
        except OSError:
            pass
        conn.close()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    await assert_unavailable(
        make_client(f"http://127.0.0.1:{port}/decide", timeout=10), "more than 65536 bytes"
    )
    thread.join(timeout=10)
    listener.close()
    assert sent[0] < 50_000_000  # the client hung up long before the server was done


async def test_failures_are_not_cached(pdp):
    pdp.reply = lambda _: (500, {}, b"")
    client = make_client(pdp.url)
    for _ in range(2):
        with pytest.raises(Unavailable):
            await client.decide(ELENA, STUDY, SERIES)
    pdp.reply = lambda _: json_reply({"decision": "permit"})
    assert (await client.decide(ELENA, STUDY, SERIES)).complete
    await client.aclose()
    assert len(pdp.requests) == 3


async def test_the_pdp_credentials_never_appear_in_errors_or_logs(pdp, caplog):
    pdp.reply = lambda _: (500, {}, b"")
    caplog.set_level("DEBUG")
    error = await assert_unavailable(
        make_client(pdp.url, auth={"type": "bearer", "token": "s3cret-pdp"}), "HTTP 500"
    )
    assert "s3cret-pdp" not in error.message and "s3cret-pdp" not in str(error.headers)
    assert "policy decision point: answered HTTP 500" in caplog.text
    assert "s3cret-pdp" not in caplog.text
