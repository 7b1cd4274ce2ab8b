"""The world hostile requests attack (issue 13), how they are sent, and what every answer must hold.

Used with the strategies of ``tests/hostile.py`` by ``tests/test_hostile_property.py`` (bounded,
fixed seed) and ``bench/fuzz_hostile.py`` (long runs). The world is a real server over real HTTP
in front of a real Orthanc with: tenant ``a`` (mock, bound to patient A, studies by MRN), ``d`` (the same over DIMSE), ``b`` (bound to patient B; only
its bindings are used, transplanted onto ``a``) and dynamic tenants allowed for the Orthanc host.
Properties of every answer: a status below 600 and not 500 (nor another 5xx than 502/503/504),
all of it within 5 s, no traceback, no secret, nothing of another patient than A (unless the
request itself named it, or a mutated ``/dyn/`` config may legitimately show it), no error
logged by the server, and the body shape of the route (OperationOutcome or Bundle for FHIR,
JSON errors or data for WADO).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pydicom

from .conftest import TEST_KEY, dicomweb_tenant, mock_patient
from .orthanc import Orthanc
from .sample_dicom import SampleData

A, B = "77654033", "98890234"
TOKEN = "Bearer hostile-fuzz-token"  # every probe's Authorization unless it brings its own
DEADLINE = 5.0
BODY_CAP = 64 << 20
UVICORN_REFUSAL = b"Invalid HTTP request received."  # a request line the HTTP parser refused
TRACEBACK = re.compile(rb'Traceback \(most recent call last\)|File "[^"]+\.py", line \d+')

# ---------------------------------------------------------------- the world


def tenants(orthanc: Orthanc) -> dict[str, dict[str, Any]]:
    return {
        "a": {
            "authorization": {"type": "mock", "patient": mock_patient("pat-a", A)},
            "images": dicomweb_tenant(orthanc),
        },
        "b": {
            "authorization": {"type": "mock", "patient": mock_patient("pat-b", B)},
            "images": dicomweb_tenant(orthanc),
        },
        "d": {  # patient A again, from the archive's DICOM port (C-FIND, C-GET)
            "authorization": {"type": "mock", "patient": mock_patient("pat-a", A)},
            "images": {
                "type": "dicom-dimse",
                "endpoint": f"dimse://127.0.0.1:{orthanc.dicom_port}",
                "ae": orthanc.peer_aet,
                "calledAe": orthanc.aet,
            },
        },
    }


def server_settings(orthanc: Orthanc) -> dict[str, Any]:
    return {
        "key": TEST_KEY,
        "dynamic_tenants": True,
        "dynamic_upstream_allow": (f"127.0.0.1:{orthanc.http_port}",),
    }


def dyn_config(orthanc: Orthanc) -> dict[str, Any]:
    """The valid dynamic config: patient A, studies by MRN, the archive's password inline."""
    return tenants(orthanc)["a"]


def encode(config_json: str) -> str:
    return base64.urlsafe_b64encode(config_json.encode("utf-8")).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Target:
    """What the strategies need to know about the running world."""

    base: str
    dyn: str  # path prefix of the valid dynamic tenant: "dyn/<encoded>"
    valid_dyn: dict[str, Any]
    bindings: dict[str, dict[str, str]]  # "a" | "d" | dyn | "b" -> study UID -> binding token
    instances: dict[str, list[tuple[str, str]]]  # A's study UID -> [(series, sop)]
    foreign: tuple[str, ...]  # strings of other patients: never in an answer about A
    secrets: tuple[str, ...]
    internal: tuple[str, ...]  # the archive's addresses (HTTP first): never in a static tenant's answer
    studies_b: tuple[str, ...] = ()

    @property
    def studies_a(self) -> list[str]:
        return sorted(self.instances)


def discover(base: str, orthanc: Orthanc, data: SampleData) -> Target:
    """Search as a client would to get valid bindings; list what belongs to whom."""
    dyn = "dyn/" + encode(json.dumps(dyn_config(orthanc)))
    bindings: dict[str, dict[str, str]] = {}
    for prefix, patient in (("a", "pat-a"), ("d", "pat-a"), (dyn, "pat-a"), ("b", "pat-b")):
        url, auth = f"{base}/{prefix}/fhir/ImagingStudy", {"Authorization": TOKEN}
        bundle = httpx.get(url, params={"patient": patient}, headers=auth, timeout=30).json()
        bindings[prefix] = {
            e["resource"]["id"]: e["resource"]["contained"][0]["address"].rsplit("/", 1)[1]
            for e in bundle["entry"]
        }
    own: list[str] = []
    other: set[str] = set()
    instances: dict[str, list[tuple[str, str]]] = {}
    for blob in data.files.values():
        ds = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
        strings = [
            str(ds.PatientID),
            str(ds.PatientName),
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
        ]
        if str(ds.PatientID) == A:
            own += strings
            instances.setdefault(ds.StudyInstanceUID, []).append((ds.SeriesInstanceUID, ds.SOPInstanceUID))
        else:
            other.update(strings)
    foreign = tuple(sorted(s for s in other if len(s) >= 5 and not any(s in mine for mine in own)))
    basic = base64.b64encode(f"{orthanc.username}:{orthanc.password}".encode()).decode()
    return Target(
        base=base,
        dyn=dyn,
        valid_dyn=dyn_config(orthanc),
        bindings=bindings,
        instances=instances,
        foreign=foreign,
        secrets=(orthanc.password, basic, TEST_KEY),
        internal=(f"127.0.0.1:{orthanc.http_port}", f"127.0.0.1:{orthanc.dicom_port}"),
        studies_b=tuple(data.patients[B]),
    )


# ---------------------------------------------------------------- probes and answers


@dataclass(frozen=True)
class Probe:
    method: str
    target: str  # raw request target: path and query, sent as given (already percent-encoded)
    headers: tuple[tuple[str, bytes], ...] = ()
    about_a: bool = True  # the answer may only show patient A's data
    static: bool = True  # a static tenant: the archive's address is internal
    raw: bytes = b""  # sent over a plain socket instead (bytes httpx refuses to send)

    def label(self) -> str:
        """A short name: bindings and dynamic configs elided."""
        path, _, query = self.target.partition("?")
        path = re.sub(r"^/dyn/[^/]+", "/dyn/{config}", re.sub(r"/wado/[^/]+", "/wado/{binding}", path))
        return (
            f"{self.method} {path}"
            + (f"?{query[:80]}" if query else "")
            + " "
            + ", ".join(k for k, _ in self.headers)
        )

    def describe(self) -> str:
        heads = "".join(f"\n  {k}: {v!r}" for k, v in self.headers)
        target = (
            self.target if len(self.target) < 600 else self.target[:600] + f"... ({len(self.target)} chars)"
        )
        return f"{self.method} {target}{heads}" + (f"\n  raw: {self.raw[:300]!r}" if self.raw else "")


@dataclass
class Outcome:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    error: str = ""  # a transport failure: reset, incomplete body, timeout
    logged: list[str] = field(default_factory=list)  # errors the server logged meanwhile
    unsendable: str = ""  # why the HTTP client refused to send the probe


LOGGERS = ("smart_imaging", "uvicorn.error")  # the app's error handler, and errors after the headers


class LogCapture(logging.Handler):
    """Collects ERROR records of the server (in this process) with their traceback's last frame."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        where = ""
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = [
                f"{f.filename.rpartition('/src/')[2]}:{f.lineno}"
                for f in traceback.extract_tb(exc.__traceback__)
            ]
            ours = [f for f in frames if f.startswith("smart_imaging/")]
            last = frames[-1] if frames else "?"
            at = f"{ours[-1]} (raised in {last})" if ours and ours[-1] != last else last
            where = f" [{type(exc).__name__}: {str(exc)[:120]} at {at}]"
        self.records.append(f"{record.name}: {record.getMessage().splitlines()[0][:200]}{where}")

    def install(self) -> LogCapture:
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def remove(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self)


def send(client: httpx.Client, base: str, probe: Probe, logs: LogCapture | None = None) -> Outcome:
    mark = len(logs.records) if logs else 0
    started = time.monotonic()
    out = _send_raw(base, probe) if probe.raw else _send_httpx(client, base, probe, started)
    out.seconds = time.monotonic() - started
    if logs:
        time.sleep(0.002)  # let a background task that failed after the body log its error
        out.logged = logs.records[mark:]
    return out


def with_token(headers: tuple[tuple[str, bytes], ...]) -> tuple[tuple[str, bytes], ...]:
    if any(k.lower() == "authorization" for k, _ in headers):
        return headers
    return (("Authorization", TOKEN.encode()), *headers)


def _send_httpx(client: httpx.Client, base: str, probe: Probe, started: float) -> Outcome:
    out = Outcome()
    request = client.build_request(
        probe.method,
        base + "/",
        headers=[(k.encode(), v) for k, v in with_token(probe.headers)],
        extensions={"target": probe.target.encode("ascii")},
    )
    try:
        response = client.send(request, stream=True)
        try:
            out.status, out.headers = (
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
            )
            chunks = []
            for chunk in response.iter_raw():
                chunks.append(chunk)
                if sum(map(len, chunks)) > BODY_CAP or time.monotonic() - started > DEADLINE:
                    out.error = "body too long or too slow: stopped reading"
                    break
            out.body = b"".join(chunks)
        finally:
            response.close()
    except httpx.LocalProtocolError as exc:  # the client refused to send it: not a server failure
        out.unsendable = f"{type(exc).__name__}: {exc}"
    except httpx.TimeoutException as exc:
        out.error = f"timeout: {type(exc).__name__}"
    except httpx.TransportError as exc:
        out.error = f"transport: {type(exc).__name__}: {exc}"
    return out


def _send_raw(base: str, probe: Probe) -> Outcome:
    """One request over a plain socket (``Connection: close``), for bytes an HTTP client refuses."""
    host, port = base.removeprefix("http://").split(":")
    out = Outcome()
    with socket.create_connection((host, int(port)), timeout=DEADLINE) as sock:
        sock.sendall(probe.raw)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            out.error = "timeout: raw socket"
        except ConnectionResetError:
            out.error = "transport: connection reset"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not match:
        out.error = out.error or f"no HTTP answer: {data[:80]!r}"
        return out
    out.status = int(match.group(1))
    out.headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    out.body = _dechunk(body) if out.headers.get("transfer-encoding") == "chunked" else body
    return out


def _dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


def route_of(target: str) -> str:
    """The route a request target reaches: fhir, wado or other (as Starlette matches: decoded)."""
    path = unquote(target.partition("?")[0])
    if re.match(r"^/(dyn/[^/]+|[^/]+)/fhir/(metadata|\.well-known/smart-configuration|ImagingStudy)$", path):
        return "fhir"
    if re.match(r"^/(dyn/[^/]+|[^/]+)/wado/[^/]+/studies/.", path):
        return "wado"
    return "other"


def problems(probe: Probe, out: Outcome, target: Target) -> list[str]:
    """Every property the answer breaks (empty: all hold)."""
    found = [f"server logged: {line}" for line in out.logged]
    if out.error:
        found.append(out.error)
    if out.seconds > DEADLINE:
        found.append(f"answer took {out.seconds:.1f} s")
    if out.status == 500 or out.status >= 600 or (out.status > 500 and out.status not in (502, 503, 504)):
        found.append(f"status {out.status}")
    if not out.status:
        return found
    text = out.body + "\n".join(f"{k}: {v}" for k, v in out.headers.items()).encode("latin-1", "replace")
    if TRACEBACK.search(text):
        found.append("traceback in the answer")
    sent = (
        probe.target + "".join(v.decode("latin-1") for _, v in probe.headers) + probe.raw.decode("latin-1")
    ).encode("latin-1", "replace")
    plain = unquote(probe.target).encode("utf-8", "replace")
    for secret in target.secrets:
        if secret.encode() in text:
            found.append(f"secret {secret[:4]}... in the answer")
    leaks = target.foreign if probe.about_a else ()
    leaks += target.internal if probe.static else ()
    for other in leaks:
        if other.encode() in text and other.encode() not in sent and other.encode() not in plain:
            found.append(
                f"{'internal address' if other in target.internal else 'other patient data'} {other!r} in the answer"
            )
    found += _shape(probe, out)
    return found


def _shape(probe: Probe, out: Outcome) -> list[str]:
    if (
        probe.method != "GET"
        or out.error
        or 300 <= out.status < 400
        or (probe.raw and out.body == UVICORN_REFUSAL)
    ):
        return []
    route, ctype = route_of(probe.target), out.headers.get("content-type", "")
    if route == "wado" and out.status < 300:
        return [] if out.body or out.status == 204 else ["empty WADO answer"]
    if route == "other" and out.status < 300:
        return []
    try:
        body = json.loads(out.body)
    except ValueError:
        return [f"{route} answer {out.status} is not JSON ({ctype})"]
    if not isinstance(body, dict):
        return [f"{route} answer is not a JSON object"]
    kind = body.get("resourceType")
    if route == "fhir" and out.status >= 400 and (kind != "OperationOutcome" or not body.get("issue")):
        return [f"FHIR error {out.status} is not an OperationOutcome"]
    path = unquote(probe.target.partition("?")[0])
    if route == "fhir" and out.status < 300 and path.endswith("/ImagingStudy") and kind != "Bundle":
        return ["ImagingStudy search answered without a Bundle"]
    if (
        route != "fhir"
        and out.status >= 400
        and kind != "OperationOutcome"
        and not {"error", "message"} <= set(body)
    ):
        return [f"{route} error {out.status} is not {{error, message}} JSON"]
    return []
