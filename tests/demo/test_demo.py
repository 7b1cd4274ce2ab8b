"""The demo app end to end over real HTTP: launch at the EHR sandbox (/ehr), then ImagingStudy
search and WADO-RS retrieval at the imaging server (/demo) with the same token."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydicom.data import get_testdata_file

from smart_imaging_demo.app import create_demo_app
from smart_imaging_demo.ehr.pkce import s256_challenge

from ..sample_dicom import restamped
from ..support.asgi import lifespan
from .ehr.conftest import REQUEST_ID, free_socket

REDIRECT = "http://localhost:7777/cb"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("demo")
    source = get_testdata_file("CT_small.dcm")
    assert source is not None
    (data / "samples").mkdir()
    (data / "samples" / "ava.dcm").write_bytes(restamped(Path(source), "MRN-1001", "ava"))
    sock = free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_demo_app(base, data), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "demo server died"
        time.sleep(0.01)
    yield base
    server.should_exit = True
    thread.join(10)


def _launch(http: httpx.Client, base: str, patient: str) -> str:
    verifier = uuid.uuid4().hex * 2
    page = http.get(
        f"{base}/ehr/authorize",
        params={
            "response_type": "code",
            "client_id": "viewer",
            "redirect_uri": REDIRECT,
            "scope": "launch/patient patient/ImagingStudy.rs",
            "state": "s",
            "aud": f"{base}/demo/fhir",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    match = REQUEST_ID.search(page.text)
    assert match, page.text
    redirect = http.post(
        f"{base}/ehr/authorize",
        data={"request_id": match.group(1), "decision": "approve", "patient": patient},
    )
    code = httpx.URL(redirect.headers["location"]).params["code"]
    token = http.post(
        f"{base}/ehr/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "viewer",
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def test_demo_launch_search_and_retrieve(demo: str) -> None:
    with httpx.Client(timeout=30) as http:
        config = http.get(f"{demo}/ehr/fhir/.well-known/smart-configuration").json()
        assert config["associated_endpoints"][0]["url"] == f"{demo}/demo/fhir"
        auth = {"Authorization": f"Bearer {_launch(http, demo, 'ava-chen')}"}
        bundle = http.get(
            f"{demo}/demo/fhir/ImagingStudy",
            headers=auth,
            params={"patient": "ava-chen", "_include": "ImagingStudy:endpoint"},
        )
        assert bundle.status_code == 200, bundle.text
        resources = [e["resource"] for e in bundle.json()["entry"]]
        studies = [r for r in resources if r["resourceType"] == "ImagingStudy"]
        assert len(studies) == 1
        address = next(r["address"] for r in resources if r["resourceType"] == "Endpoint")
        other = http.get(f"{demo}/demo/fhir/ImagingStudy", params={"patient": "sam-patel"}, headers=auth)
        assert other.status_code == 403
        uid = studies[0]["identifier"][0]["value"].removeprefix("urn:oid:")
        retrieved = http.get(
            f"{address}/studies/{uid}",
            headers={**auth, "Accept": 'multipart/related; type="application/dicom"'},
        )
        assert retrieved.status_code == 200, retrieved.text[:300]
        assert b"DICM" in retrieved.content
        assert http.get(f"{address}/studies/{uid}").status_code == 401


async def test_the_demo_offers_the_ohif_of_smart_imaging_ohif_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SMART_IMAGING_OHIF_URL`` reaches the demo's viewer ("Open in OHIF"), as it does ``serve``'s."""
    (tmp_path / "samples").mkdir()
    for ohif in ("https://ohif.example.org/viewer", None):
        if ohif:
            monkeypatch.setenv("SMART_IMAGING_OHIF_URL", ohif)
        else:
            monkeypatch.delenv("SMART_IMAGING_OHIF_URL")
        app = create_demo_app("http://127.0.0.1:9", tmp_path, samples_dir=tmp_path / "samples")
        async with lifespan(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as http:
                answer = await http.get("/api/viewer-config")
        assert answer.status_code == 200 and answer.json() == {"ohifUrl": ohif}
