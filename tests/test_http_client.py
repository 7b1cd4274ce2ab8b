"""The server's outbound client (``http_client``: httpx on aiohttp) against a small raw-socket
server on loopback: failures arrive as httpx's exceptions, URLs go out as built, bodies stream,
a half-read connection is not reused."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from smart_imaging.http_client import create_client

pytestmark = pytest.mark.integration

Handler = Callable[[socket.socket, bytes], None]


class RawServer:
    """Accepts connections; ``handler(conn, request_head)`` answers each request on it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a client that closes mid-answer resets
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = content_length(head)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.bodies.append(buffer[:length])
                buffer = buffer[length:]
                self.heads.append(head)
                self.handler(conn, head)

    def close(self) -> None:
        self.sock.close()


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.fixture
def raw() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def ok(body: bytes) -> Handler:
    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    return handler


async def test_answers_stream_and_connections_are_reused(raw: Callable[[Handler], RawServer]) -> None:
    server = raw(ok(b"x" * 100_000))
    async with create_client(5) as http:
        for _ in range(3):
            async with http.stream("GET", f"{server.url}/a") as response:
                assert response.status_code == 200 and response.headers["content-length"] == "100000"
                assert b"".join([chunk async for chunk in response.aiter_raw()]) == b"x" * 100_000
    assert server.connections == 1


async def test_the_url_goes_out_as_built(raw: Callable[[Handler], RawServer]) -> None:
    server = raw(ok(b"[]"))
    async with create_client(5) as http:
        await http.get(f"{server.url}/studies?PatientID=7765*&x=%2A%41&y=a%2Fb")
    assert server.heads[0].split(b"\r\n")[0] == b"GET /studies?PatientID=7765*&x=%2A%41&y=a%2Fb HTTP/1.1"


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        async with create_client(5) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/")


async def test_a_body_cut_short_is_a_read_error(raw: Callable[[Handler], RawServer]) -> None:
    def cut(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"y" * 10)
        conn.shutdown(socket.SHUT_RDWR)

    server = raw(cut)
    async with create_client(5) as http, http.stream("GET", f"{server.url}/") as response:
        with pytest.raises(httpx.ReadError):
            async for _ in response.aiter_raw():
                pass


async def test_a_silent_server_is_a_read_timeout(raw: Callable[[Handler], RawServer]) -> None:
    server = raw(lambda conn, head: None)  # reads the request, never answers
    async with create_client(0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{server.url}/")


async def test_a_half_read_answer_is_not_reused(raw: Callable[[Handler], RawServer]) -> None:
    server = raw(ok(b"z" * 1_000_000))
    async with create_client(5) as http:
        async with http.stream("GET", f"{server.url}/") as response:
            await anext(response.aiter_raw())  # stop after the first chunk
        response = await http.get(f"{server.url}/")
        assert response.content == b"z" * 1_000_000
    assert server.connections == 2


async def test_a_form_post_carries_its_body(raw: Callable[[Handler], RawServer]) -> None:
    server = raw(ok(b"{}"))
    async with create_client(5) as http:
        response = await http.post(
            f"{server.url}/token", data={"grant_type": "client_credentials", "scope": "a b"}
        )
    assert response.json() == {} and server.bodies == [b"grant_type=client_credentials&scope=a+b"]
    assert b"content-type: application/x-www-form-urlencoded" in server.heads[0].lower()


def cookie_setter(body: bytes) -> Handler:
    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: session=archive-secret; Path=/\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )

    return handler


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_the_server_keeps_no_cookies_of_the_hosts_it_calls(
    raw: Callable[[Handler], RawServer], backend: str
) -> None:
    """The direct send (OutboundClient) skips the cookie jar: one host's cookie is never sent
    again, to it or to another tenant's host."""
    server = raw(cookie_setter(b"{}"))
    async with create_client(5, backend) as http:
        first = await http.get(f"{server.url}/one")
        assert first.status_code == 200 and first.content == b"{}"
        assert first.headers["set-cookie"].startswith("session=")
        await http.get(f"{server.url}/two")
    assert len(server.heads) == 2
    assert b"cookie" not in server.heads[1].lower().replace(b"set-cookie", b"")


async def test_a_request_with_auth_still_runs_the_auth_flow(raw: Callable[[Handler], RawServer]) -> None:
    """A request that needs AsyncClient.send's steps (here a BasicAuth flow) is not sent directly."""
    server = raw(ok(b"ok"))
    async with create_client(5) as http:
        response = await http.get(f"{server.url}/a", auth=httpx.BasicAuth("user", "pass"))
        direct = await http.get(f"{server.url}/b")
    assert response.content == b"ok" and direct.content == b"ok"
    assert b"authorization: basic dxnlcjpwyxnz" in server.heads[0].lower()
    assert b"authorization" not in server.heads[1].lower()
