"""A small HTTP archive fake for tests: canned answers, framed or cut exactly as a test asks.

Raw sockets, so a test controls every byte: a body without length that ends early
(``Connection: close``), a chunked or length-framed body cut short, a server that never answers.
Not a DICOMweb implementation: each test maps paths to the answers it needs.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Answer:
    status: int = 200
    body: bytes | list[bytes] = b""  # a list: sent chunk by chunk, ``pause`` between them
    content_type: str = "application/dicom+json"
    headers: dict[str, str] = field(default_factory=dict)
    framing: Literal["close", "length", "chunked"] = "close"
    cut: int | None = None  # close the connection after this many body bytes
    hang: bool = False  # never answer
    pause: float = 0.0  # seconds between body chunks

    @classmethod
    def json(cls, document: Any, **kwargs: Any) -> Answer:
        return cls(body=json.dumps(document).encode(), framing="length", **kwargs)

    @classmethod
    def raw_json(cls, text: str | bytes, **kwargs: Any) -> Answer:
        return cls(body=text.encode() if isinstance(text, str) else text, framing="length", **kwargs)


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]


Handler = Callable[[Seen], Answer]


class FakeArchive:
    """``archive.route(prefix, answer_or_handler)``; the longest matching path prefix answers."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer | Handler] = {}
        self.seen: list[Seen] = []
        self._stop = threading.Event()
        archive = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                archive._serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/dicom-web"

    def route(self, prefix: str, answer: Answer | Handler) -> None:
        self.routes["/dicom-web" + prefix] = answer

    def found_study(self, study: str, mrn: str) -> FakeArchive:
        """QIDO-RS finds one study of patient ``mrn`` (no series or instance details): what a
        FHIR ImagingStudy search needs to hand out its Endpoint."""
        tags = {"0020000D": {"vr": "UI", "Value": [study]}, "00100020": {"vr": "LO", "Value": [mrn]}}
        self.route("/studies", Answer.json([tags]))
        self.route(f"/studies/{study}/series", Answer.json([]))
        self.route(f"/studies/{study}/instances", Answer.json([]))
        return self

    def start(self) -> FakeArchive:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, seen: Seen) -> Answer:
        matches = [p for p in self.routes if seen.path == p or seen.path.startswith(p.rstrip("/") + "/")]
        if not matches:
            return Answer(status=404, body=b"", framing="length")
        chosen = self.routes[max(matches, key=len)]
        return chosen if isinstance(chosen, Answer) else chosen(seen)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            seen = _read_request(conn)
            if seen is None:
                return
            self.seen.append(seen)
            answer = self._answer(seen)
            if answer.hang:
                self._stop.wait(60)
                return
            _write(conn, answer)
        except OSError:
            pass
        finally:
            conn.close()


def _read_request(conn: socket.socket) -> Seen | None:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return None
        data += more
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)
    return Seen(method, url.path, parse_qsl(url.query, keep_blank_values=True), headers)


def _chunks(body: bytes | list[bytes]) -> Iterator[bytes]:
    """A bytes body in 64 KiB pieces; a list of chunks as given (empty ones are pauses)."""
    if isinstance(body, bytes):
        for at in range(0, len(body), 65536):
            yield body[at : at + 65536]
    else:
        yield from body


def _write(conn: socket.socket, answer: Answer) -> None:
    body = answer.body if isinstance(answer.body, bytes) else list(answer.body)
    size = len(body) if isinstance(body, bytes) else sum(len(c) for c in body)
    lines = [f"HTTP/1.1 {answer.status} X", f"Content-Type: {answer.content_type}"]
    lines += [f"{k}: {v}" for k, v in answer.headers.items()]
    if answer.framing == "length":
        lines.append(f"Content-Length: {size}")
    elif answer.framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
    lines.append("Connection: close")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    budget = size if answer.cut is None else answer.cut
    for chunk in _chunks(body):
        piece = chunk[:budget]
        budget -= len(piece)
        if answer.framing == "chunked" and piece:
            piece = b"%x\r\n" % len(piece) + piece + (b"\r\n" if len(piece) == len(chunk) else b"")
        conn.sendall(piece)
        if budget <= 0:
            break
        if answer.pause:
            time.sleep(answer.pause)
    if answer.framing == "chunked" and answer.cut is None:
        conn.sendall(b"0\r\n\r\n")
    conn.shutdown(socket.SHUT_WR)
