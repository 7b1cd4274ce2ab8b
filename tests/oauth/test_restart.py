"""State survives a restart: ``smart-imaging serve`` as a real process with
``SMART_IMAGING_STATE_DIR``, stopped and started again between the steps of a dual launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import TEST_KEY
from tests.processes import stop_process, wait_for_url

from .browser import Browser
from .stack import IMAGING_SCOPE, Stack, approve, ehr_launch, redeem, start_imaging_launch


@contextmanager
def serving(stack: Stack, workdir: Path) -> Iterator[str]:
    configs = workdir / "tenants"
    configs.mkdir(exist_ok=True)
    (configs / "reference.json").write_text(json.dumps(stack.configs["reference"]))
    env = {
        **os.environ,
        "SMART_IMAGING_CONFIG_DIR": str(configs),
        "SMART_IMAGING_STATE_DIR": str(workdir / "state"),
        "SMART_IMAGING_KEY": TEST_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "smart_imaging.cli", "serve", "--port", str(stack.restart_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{stack.restart_port}"
    try:
        wait_for_url(f"{base}/healthz", process=process, what="smart-imaging serve")
        yield base
    finally:
        stop_process(process)


def search(fhir: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{fhir}/ImagingStudy", params={"patient": "pat-a"}, headers=headers, timeout=30)


def test_sessions_codes_and_tokens_survive_a_restart(stack: Stack, tmp_path: Path, browser: Browser) -> None:
    ehr = ehr_launch(browser, stack.oidc.issuer, "pat-a")
    with serving(stack, tmp_path) as base:
        fhir, oauth = f"{base}/reference/fhir", f"{base}/reference/oauth"
        launch = start_imaging_launch(
            browser, fhir, login_hint=ehr["id_token"], scope=f"{IMAGING_SCOPE} offline_access"
        )
        assert "Anna Test" in launch.stop.response.text  # the consent page, before the restart
    with serving(stack, tmp_path):
        landed = approve(browser, launch.stop)  # same browser session, pending request kept
        token = redeem(browser, oauth, launch, landed)
        assert token["status"] == 200 and token["patient"] == "pat-a"
    with serving(stack, tmp_path):
        reads = len(stack.front.reads)
        assert search(fhir, token["access_token"]).status_code == 200
        assert len(stack.front.reads) == reads  # the Patient stored with the grant: no EHR read
        form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "app"}
        renewed = httpx.post(f"{oauth}/token", data=form, timeout=10)
        assert renewed.status_code == 200
        fresh = renewed.json()["access_token"]
        assert search(fhir, fresh).status_code == 200
        replay = redeem(browser, oauth, launch, landed)
        assert replay["status"] == 400 and replay["error"] == "invalid_grant"  # used, remembered
        assert search(fhir, fresh).status_code == 401  # the replay revoked the code's whole family
    assert (tmp_path / "state" / "oauth-state.sqlite3").stat().st_mode & 0o077 == 0
