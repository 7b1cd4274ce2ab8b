"""A real Orthanc (Debian package) with its DICOMweb plugin, run as a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import httpx

from .support.ports import free_port as free_port  # re-exported: tests import it from here
from .support.processes import stop_process, wait_for_url

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


class Orthanc:
    username = "smart"
    password = "imaging-test-password"
    aet = "ORTHANC"
    peer_aet = "SMARTIMG"

    def __init__(self, modalities: dict[str, tuple[str, int]] | None = None) -> None:
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.peer_port = free_port()
        self.modalities = {"smartimg": (self.peer_aet, self.peer_port), **(modalities or {})}
        self.dir = Path(tempfile.mkdtemp(prefix="orthanc-test-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def config(self) -> dict[str, object]:
        return {
            "Name": "smart-imaging-test",
            "StorageDirectory": str(self.dir / "db"),
            "IndexDirectory": str(self.dir / "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.username: self.password},
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomModalities": {
                name: {
                    "AET": aet,
                    "Host": "127.0.0.1",
                    "Port": port,
                    "AllowFind": True,
                    "AllowMove": True,
                    "AllowGet": True,
                    "AllowStore": True,
                    "AllowEcho": True,
                }
                for name, (aet, port) in self.modalities.items()
            },
            "StorageCompression": False,
            "OverwriteInstances": True,
            "ConcurrentJobs": 2,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "EnableWado": True,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            },
        }

    def start(self) -> Orthanc:
        (self.dir / "db").mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        config_path = self.dir / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        self.process = subprocess.Popen(
            [ORTHANC, str(config_path), f"--logdir={self.dir / 'logs'}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_url(
            f"{self.http_url}/system",
            process=self.process,
            auth=self.auth,
            what="Orthanc",
            exited=lambda code: f"Orthanc exited with {code}; logs in {self.dir}",
        )
        return self

    def upload(self, paths: Iterable[Path]) -> list[str]:
        """POST each file to /instances; returns Orthanc instance ids."""
        ids = []
        with httpx.Client(auth=self.auth, timeout=60) as client:
            for path in paths:
                response = client.post(f"{self.http_url}/instances", content=Path(path).read_bytes())
                response.raise_for_status()
                ids.append(response.json()["ID"])
        return ids

    def upload_bytes(self, blobs: Iterable[bytes]) -> None:
        with httpx.Client(auth=self.auth, timeout=60) as client:
            for blob in blobs:
                client.post(f"{self.http_url}/instances", content=blob).raise_for_status()

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)
        if not os.environ.get("KEEP_ORTHANC"):
            shutil.rmtree(self.dir, ignore_errors=True)
