"""`smart-imaging demo` as a real subprocess, end to end over plain HTTP on a loopback port.

One process per module, on a fresh data dir, so the first start generates the real sample
studies (about 10 s). A public SMART app launches standalone at the EHR sandbox (discovery,
consent form, PKCE S256, state, token exchange), reads its Patient, finds the imaging endpoint in
``associated_endpoints``, searches ImagingStudy there and retrieves every study with
dicomweb-client, decoding every instance's pixels. Then: tokens of one patient are refused for
another's studies and bindings, Ctrl-C stops the process with exit code 0, and a restart keeps
the sandbox's sessions and the samples.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import JPEGBaseline8Bit

from smart_imaging_demo.ehr.pkce import s256_challenge
from smart_imaging_demo.samples.patients import PATIENTS

REDIRECT = "http://localhost:53111/callback"  # never contacted: the test reads the Location
CLIENT_ID = "e2e-viewer"
HAS_JPEG = {"marcus-okafor", "lucia-ramirez"}  # radiographs stored as JPEG Baseline
EXE = Path(sys.executable).with_name("smart-imaging")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DemoProcess:
    """The `smart-imaging demo` command on one port and data dir; output goes to a log file."""

    data: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    runs: int = 0

    @property
    def base(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> None:
        self.runs += 1
        self.log = self.data.parent / f"{self.data.name}-run{self.runs}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(EXE), "demo", "--port", str(self.port), "--data", str(self.data)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self, limit: float = 180) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.output()
            try:
                if all(
                    httpx.get(f"{self.base}{path}", timeout=5).status_code == 200
                    for path in ("/healthz", "/demo/fhir/metadata")
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"demo did not answer within {limit} s\n{self.output()}")

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code (fails if the process outlives 15 s)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=15)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace") if self.log and self.log.exists() else ""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = DemoProcess(tmp_path_factory.mktemp("demo-e2e") / "data")
    try:
        process.start()
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


class _Form(HTMLParser):
    """The consent page's form: action, hidden fields and the patient radio choices."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.patients: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif tag == "input" and a.get("type") == "radio" and a.get("name") == "patient":
            self.patients.append(a["value"])


def launch(http: httpx.Client, base: str, patient: str) -> dict[str, Any]:
    """A standalone launch as a public client; returns the token response."""
    config = http.get(f"{base}/ehr/fhir/.well-known/smart-configuration")
    assert config.status_code == 200, config.text
    smart = config.json()
    assert "S256" in smart["code_challenge_methods_supported"]
    verifier, state = uuid.uuid4().hex * 2, uuid.uuid4().hex
    page = http.get(
        smart["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "launch/patient openid fhirUser patient/*.rs",
            "state": state,
            "aud": f"{base}/ehr/fhir",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    form = _Form()
    form.feed(page.text)
    assert form.action is not None and "request_id" in form.hidden
    assert patient in form.patients, form.patients
    redirect = http.post(
        page.url.join(form.action), data={**form.hidden, "patient": patient, "decision": "approve"}
    )
    assert redirect.status_code in (302, 303), redirect.text
    location = httpx.URL(redirect.headers["location"])
    assert str(location.copy_with(query=None)) == REDIRECT
    assert location.params["state"] == state
    token = http.post(
        smart["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": location.params["code"],
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    assert body["token_type"].lower() == "bearer" and body["patient"] == patient
    return body


def imaging_endpoint(http: httpx.Client, base: str) -> str:
    smart = http.get(f"{base}/ehr/fhir/.well-known/smart-configuration").json()
    urls = [
        e["url"]
        for e in smart.get("associated_endpoints", [])
        if "smart-imaging-access" in e.get("capabilities", [])
    ]
    assert len(urls) == 1, smart
    return str(urls[0])


def search(http: httpx.Client, fhir: str, token: str, patient: str) -> httpx.Response:
    return http.get(
        f"{fhir}/ImagingStudy",
        headers={"Authorization": f"Bearer {token}"},
        params={"patient": patient, "_include": "ImagingStudy:endpoint"},
    )


def studies_with_addresses(bundle: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Each ImagingStudy of a searchset with its included Endpoint's address."""
    entries = bundle.get("entry", [])
    # Bundle reference resolution: a response-local urn:uuid fullUrl (the IG's form for capability
    # Endpoints) or Type/id
    resources = {e["fullUrl"]: e for e in entries if "fullUrl" in e}
    resources |= {f"{e['resource']['resourceType']}/{e['resource']['id']}": e for e in entries}
    found = []
    for entry in entries:
        study = entry["resource"]
        if study["resourceType"] != "ImagingStudy":
            continue
        assert entry["search"]["mode"] == "match"
        endpoint_entry = resources[study["endpoint"][0]["reference"]]
        assert endpoint_entry["search"]["mode"] == "include"
        endpoint = endpoint_entry["resource"]
        assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
        found.append((study, str(endpoint["address"])))
    return found


def study_uid(study: dict[str, Any]) -> str:
    return next(
        str(i["value"]).removeprefix("urn:oid:")
        for i in study["identifier"]
        if i.get("system") == "urn:dicom:uid"
    )


def test_process_prints_the_urls(demo: DemoProcess) -> None:
    out = demo.output()
    for url in (
        f"{demo.base}/ehr/fhir",
        f"{demo.base}/demo/fhir",
        f"{demo.base}/open/fhir/ImagingStudy",
        f"{demo.base}/",
    ):
        assert url in out, out
    assert "First run: writing sample studies" in out
    assert (demo.data / "samples" / ".samples-complete").read_text().strip() == "242"


@pytest.mark.parametrize("patient", [p.id for p in PATIENTS])
def test_launch_search_and_retrieve_every_study(demo: DemoProcess, http: httpx.Client, patient: str) -> None:
    token = launch(http, demo.base, patient)["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    record = http.get(f"{demo.base}/ehr/fhir/Patient/{patient}", headers=auth)
    assert record.status_code == 200 and record.json()["id"] == patient
    fhir = imaging_endpoint(http, demo.base)
    assert fhir == f"{demo.base}/demo/fhir"
    response = search(http, fhir, token, patient)
    assert response.status_code == 200, response.text
    studies = studies_with_addresses(response.json())
    assert studies and response.json()["total"] == len(studies)
    syntaxes = set()
    for study, address in studies:
        assert study["subject"]["reference"] in (
            f"Patient/{patient}",
            f"{demo.base}/ehr/fhir/Patient/{patient}",
        )
        client = DICOMwebClient(url=address, headers=auth)
        instances = client.retrieve_study(study_uid(study))
        assert len(instances) == study["numberOfInstances"]
        listed = {i["uid"] for s in study.get("series", []) for i in s.get("instance", [])}
        if listed:
            assert {ds.SOPInstanceUID for ds in instances} == listed
        for ds in instances:
            assert ds.StudyInstanceUID == study_uid(study)
            pixels = ds.pixel_array
            samples = int(getattr(ds, "SamplesPerPixel", 1))
            plane = (ds.Rows, ds.Columns) if samples == 1 else (ds.Rows, ds.Columns, samples)
            assert pixels.shape[-len(plane) :] == plane  # frames first when multi-frame
            assert pixels.max() > pixels.min()  # an image, not a blank buffer
            syntaxes.add(ds.file_meta.TransferSyntaxUID)
    assert (JPEGBaseline8Bit in syntaxes) == (patient in HAS_JPEG)


def test_token_is_refused_for_another_patient(demo: DemoProcess, http: httpx.Client) -> None:
    fhir = imaging_endpoint(http, demo.base)
    ava = launch(http, demo.base, "ava-chen")["access_token"]
    marcus = launch(http, demo.base, "marcus-okafor")["access_token"]
    assert search(http, fhir, ava, "marcus-okafor").status_code == 403
    assert (
        http.get(
            f"{demo.base}/ehr/fhir/Patient/marcus-okafor", headers={"Authorization": f"Bearer {ava}"}
        ).status_code
        == 403
    )
    own = search(http, fhir, marcus, "marcus-okafor")
    assert own.status_code == 200
    study, address = studies_with_addresses(own.json())[0]
    url = f"{address}/studies/{study_uid(study)}"
    accept = {"Accept": 'multipart/related; type="application/dicom"'}
    assert (
        http.get(url, headers={**accept, "Authorization": f"Bearer {marcus}"}).status_code == 200
    )  # the binding works with its own token...
    refused = http.get(url, headers={**accept, "Authorization": f"Bearer {ava}"})
    assert refused.status_code == 403, refused.text[:300]  # ...and not with another patient's
    assert b"DICM" not in refused.content
    refused_metadata = http.get(f"{url}/metadata", headers={"Authorization": f"Bearer {ava}"})
    assert refused_metadata.status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_every_name_of_the_demo_launches_and_searches(
    demo: DemoProcess, http: httpx.Client, host: str
) -> None:
    """Issue 12.4: without --base-url, discovery, tokens and aud checks follow the name used."""
    base = f"http://{host}:{demo.port}"
    smart = http.get(f"{base}/ehr/fhir/.well-known/smart-configuration").json()
    assert (
        smart["authorization_endpoint"] == f"{base}/ehr/authorize" and smart["issuer"] == f"{base}/ehr/fhir"
    )
    token = launch(http, base, "lucia-ramirez")  # aud = {base}/ehr/fhir under this name
    fhir = imaging_endpoint(http, base)
    assert fhir == f"{base}/demo/fhir"
    imaging = http.get(f"{fhir}/.well-known/smart-configuration")
    assert imaging.status_code == 200, imaging.text
    response = search(http, fhir, token["access_token"], "lucia-ramirez")
    assert response.status_code == 200, response.text
    studies = studies_with_addresses(response.json())
    # lucia-ramirez has three demo studies (one of them the compressed samples of issue 10)
    assert len(studies) == 3 and all(address.startswith(f"{base}/demo/wado/") for _, address in studies)
    study, address = studies[0]
    metadata = http.get(
        f"{address}/studies/{study_uid(study)}/metadata",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert metadata.status_code == 200 and len(metadata.json()) == study["numberOfInstances"]


def test_ctrl_c_exits_0_and_restart_keeps_sessions_and_samples(demo: DemoProcess, http: httpx.Client) -> None:
    """Last in this module: stops the shared process and starts it again on the same data."""
    token = launch(http, demo.base, "sam-patel")["access_token"]
    samples = demo.data / "samples"
    stamps = {p: p.stat().st_mtime_ns for p in samples.rglob("*") if p.is_file()}
    assert len(stamps) > 242  # the files plus the marker
    code = demo.interrupt()
    first = demo.output()
    assert code == 0, first[-2000:]
    assert "Traceback" not in first and "Application shutdown complete" in first

    demo.start()
    second = demo.output()
    assert "First run" not in second and "samples [" not in second
    assert {p: p.stat().st_mtime_ns for p in samples.rglob("*") if p.is_file()} == stamps
    auth = {"Authorization": f"Bearer {token}"}
    assert http.get(f"{demo.base}/ehr/fhir/Patient/sam-patel", headers=auth).status_code == 200
    again = search(http, imaging_endpoint(http, demo.base), token, "sam-patel")
    assert again.status_code == 200 and studies_with_addresses(again.json())
