"""``smart-imaging serve`` as a child process of a test, with its stderr kept in a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from .support.ports import free_port
from .support.processes import stop_process, wait_for_url

TOKEN = "viewer-token"  # the mock authorizer's token: search and retrievals use the same one
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class ServeProcess:
    """``ServeProcess(tmp_path, {"name": config}, "--workers", "2").start()``; ``url``, ``log()``."""

    def __init__(
        self, folder: Path, tenants: Mapping[str, Any], *args: str, env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.folder = folder
        (folder / "tenants").mkdir(exist_ok=True)
        for name, config in tenants.items():
            (folder / "tenants" / f"{name}.json").write_text(json.dumps(config))
        self.command = [sys.executable, "-m", "smart_imaging.cli", "serve"]
        self.command += ["--config-dir", str(folder / "tenants"), "--port", str(self.port), *args]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("SMART_IMAGING_")}
        self.env = {**base_env, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        with (self.folder / "serve.log").open("wb") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=log)
        wait_for_url(f"{self.url}/healthz", process=self.process, what="smart-imaging serve", timeout=60)
        return self

    def log(self) -> str:
        return (self.folder / "serve.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=60)


def endpoint(base: str, tenant: str, patient: str, token: str = TOKEN) -> tuple[str, str]:
    """(WADO-RS base URL, study UID) of the first study an ImagingStudy search finds."""
    bundle = httpx.get(
        f"{base}/{tenant}/fhir/ImagingStudy",
        params={"patient": patient},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert bundle.status_code == 200, bundle.text
    study = next(
        e["resource"] for e in bundle.json()["entry"] if e["resource"]["resourceType"] == "ImagingStudy"
    )
    return study["contained"][0]["address"], study["id"]
