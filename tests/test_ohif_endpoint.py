"""The real OHIF Viewer v3 (npm ``@ohif/app``, pinned) opens a study through our Endpoint (issue 10):
``smart-imaging demo`` as a real process, a real SMART token from its EHR sandbox (a standalone
launch over HTTP), OHIF configured with the ``app-config.js`` that docs/notes/ohif.md documents
(read from the note), handed the Endpoint address and the token in its URL. Pixels appear in the
viewport (screenshot judgement, tests/ohif.py), no request OHIF makes gets an error, with lazy
study loading on and off; a token for another patient gets nothing drawn."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .demo.test_demo_e2e import imaging_endpoint, launch
from .ohif import OhifServer, open_study
from .web.harness import DemoProcess

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright>=1.40")

NOTE = Path(__file__).resolve().parents[1] / "docs" / "notes" / "ohif.md"
PATIENT, OTHER = "marcus-okafor", "ava-chen"  # demo patients (samples/patients.py)
STUDY = "CT CHEST WO CONTRAST"  # 64 slices; OHIF first shows one with anatomy in it
# Only for the screenshots: the investigational-use dialog and the first-visit tour would cover
# part of the viewport (a deployment decides about them itself).
TEST_ONLY = """
window.config.investigationalUseDialog = { option: "never" };
window.config.customizationService = { "ohif.tours": { $set: [] } };
window.config.maxNumberOfWebWorkers = 2;
"""


def documented_config(imaging_origin: str, *, lazy: bool) -> str:
    """The ``app-config.js`` block of docs/notes/ohif.md, for this server and lazy loading."""
    (block,) = re.findall(r"```js\n(.*?)```", NOTE.read_text(), re.S)
    assert '["https://imaging.example.org"]' in block and "enableStudyLazyLoad: true" in block
    block = block.replace('["https://imaging.example.org"]', f'["{imaging_origin}"]')
    block = block.replace("enableStudyLazyLoad: true", f"enableStudyLazyLoad: {str(lazy).lower()}")
    return block + TEST_ONLY


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    data = tmp_path_factory.mktemp("ohif-demo")
    server = DemoProcess(data / "data", data / "demo.log").start(timeout=180)
    try:
        yield server
    finally:
        server.stop()


def study_endpoint(demo: DemoProcess, patient: str, description: str) -> tuple[str, str, str]:
    """(study UID, Endpoint address, token) from a real launch and ImagingStudy search."""
    with httpx.Client(timeout=60) as http:
        token = launch(http, demo.base, patient)["access_token"]
        fhir = imaging_endpoint(http, demo.base)
        found = http.get(
            f"{fhir}/ImagingStudy", params={"patient": patient}, headers={"Authorization": f"Bearer {token}"}
        )
        assert found.status_code == 200, found.text
    for entry in found.json()["entry"]:
        study = entry["resource"]
        if study["resourceType"] == "ImagingStudy" and study.get("description") == description:
            return study["id"], study["contained"][0]["address"], token
    raise AssertionError(f"no {description} for {patient}")


@pytest.mark.parametrize(
    ("lazy", "patient", "description"),
    [
        (True, PATIENT, STUDY),
        (False, PATIENT, STUDY),
        (True, OTHER, "NM WHOLE BODY (JPEG 2000)"),  # OHIF decodes what is stored itself
        (False, OTHER, "MR SMALL CODECS"),  # JPEG-LS, JPEG 2000, RLE, uncompressed series
    ],
    ids=["lazy", "eager", "jpeg2000-lazy", "codecs-eager"],
)
def test_ohif_opens_a_study_through_the_endpoint_with_a_smart_token(
    lazy: bool, patient: str, description: str, demo: DemoProcess, ohif_dist: Path, ohif_browser: Any
) -> None:
    uid, address, token = study_endpoint(demo, patient, description)
    ohif = OhifServer(ohif_dist, config_js=documented_config(demo.base, lazy=lazy)).start()
    try:
        result = open_study(ohif_browser, ohif.url, uid, token=token, params={"endpoint": address})
    finally:
        ohif.stop()

    failed = [(r.method, r.url, r.status, r.failure) for r in result.failed()]
    assert failed == [], failed
    assert result.drawn, f"no image in the viewport {result.viewport} after {result.elapsed:.0f} s"
    ours = [r for r in result.to(address) if r.method == "GET"]
    paths = [r.url.removeprefix(address) for r in ours]
    assert any("/frames/" in p for p in paths), paths
    if lazy:  # QIDO-RS under the Endpoint first: the study, then its series
        first = urlsplit(paths[0])
        assert (first.path, parse_qs(first.query)["StudyInstanceUID"]) == ("/studies", [uid]), paths[0]
        assert any(p.startswith(f"/studies/{uid}/series?") for p in paths), paths
    else:
        assert any(p.startswith(f"/studies/{uid}/metadata") for p in paths), paths
    assert all(f"/studies/{uid}" in p or p.startswith("/studies?") for p in paths), paths
    elsewhere = {urlsplit(r.url).netloc for r in result.requests} - {
        urlsplit(ohif.url).netloc,
        urlsplit(address).netloc,
    }
    assert not elsewhere, elsewhere  # the token went nowhere else
    assert token not in " ".join(r.url for r in ours)  # in the header, never in a DICOMweb URL


def test_a_token_of_another_patient_draws_nothing(
    demo: DemoProcess, ohif_dist: Path, ohif_browser: Any
) -> None:
    """The Endpoint of one patient's study with another patient's (valid) token: OHIF's requests
    under it are refused and the viewport stays empty."""
    uid, address, _ = study_endpoint(demo, PATIENT, STUDY)
    _, _, stranger = study_endpoint(demo, OTHER, "MR BRAIN WO CONTRAST")  # a valid token, not Marcus's
    ohif = OhifServer(ohif_dist, config_js=documented_config(demo.base, lazy=True)).start()
    try:
        result = open_study(
            ohif_browser, ohif.url, uid, token=stranger, params={"endpoint": address}, timeout=20
        )
    finally:
        ohif.stop()
    assert not result.drawn
    ours = [r for r in result.to(address) if r.method == "GET"]
    assert ours and all(r.status in (401, 403) for r in ours), [(r.url, r.status) for r in ours]


def test_the_app_config_refuses_an_endpoint_of_another_origin(
    demo: DemoProcess, ohif_dist: Path, ohif_browser: Any
) -> None:
    """An ``endpoint`` naming a server the deployment does not trust is not used: OHIF sends the
    token nowhere (no request leaves for that origin)."""
    uid, address, token = study_endpoint(demo, PATIENT, STUDY)
    foreign = address.replace("localhost", "127.0.0.1")  # the same server under a name not allowed
    ohif = OhifServer(ohif_dist, config_js=documented_config(demo.base, lazy=True)).start()
    try:
        result = open_study(
            ohif_browser, ohif.url, uid, token=token, params={"endpoint": foreign}, timeout=15
        )
    finally:
        ohif.stop()
    assert not result.drawn
    assert not [r for r in result.requests if r.url.startswith(foreign.split("/demo/")[0])]
