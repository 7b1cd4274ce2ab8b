"""Time to first byte and total time of a WADO-RS study retrieval through our server:
dicom-dimse (C-GET, C-MOVE) vs dicom-web, all from the same Orthanc.

    PYTHONPATH=src:. .venv/bin/python bench/bench_dimse.py [--instances 320] [--size 256]

Starts its own Orthanc and server on free loopback ports and stops them at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings
from tests.conftest import ServerThread, mock_patient
from tests.orthanc import Orthanc
from tests.sample_dicom import deterministic_uid, to_bytes

MRN = "BENCH-300"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


def study(count: int, size: int) -> list[bytes]:
    out = []
    for n in range(1, count + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.Modality = CTImageStorage, "CT"
        ds.StudyInstanceUID = deterministic_uid("bench", "study")
        ds.SeriesInstanceUID = deterministic_uid("bench", "series")
        ds.SOPInstanceUID = deterministic_uid("bench", "instance", str(n))
        ds.PatientID, ds.PatientName, ds.StudyDate = MRN, "Bench^Mark", "20240101"
        ds.SeriesNumber, ds.InstanceNumber = 1, n
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = ((np.arange(size * size, dtype="<u2") + n) % 4096).tobytes()
        out.append(to_bytes(ds))
    return out


def timed(url: str) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    total = 0
    with httpx.stream("GET", url, headers={"Accept": MULTIPART_DICOM}, timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            total += len(chunk)
    return first or 0.0, time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=320)
    parser.add_argument("--size", type=int, default=256, help="rows = columns, 16-bit pixels")
    args = parser.parse_args()
    orthanc = Orthanc().start()
    server: ServerThread | None = None
    try:
        orthanc.upload_bytes(study(args.instances, args.size))
        auth: dict[str, Any] = {"type": "mock", "patient": mock_patient("bench", MRN)}
        dimse = {
            "type": "dicom-dimse",
            "endpoint": f"dimse://127.0.0.1:{orthanc.dicom_port}",
            "ae": orthanc.peer_aet,
            "calledAe": orthanc.aet,
            "storePort": orthanc.peer_port,
        }
        tenants = {
            "web": {
                "authorization": auth,
                "images": {
                    "type": "dicom-web",
                    "endpoint": orthanc.dicomweb_url,
                    "authentication": {
                        "type": "http-basic",
                        "username": orthanc.username,
                        "password": orthanc.password,
                    },
                },
            },
            "c-get": {"authorization": auth, "images": {**dimse, "retrieval": "c-get"}},
            "c-move": {"authorization": auth, "images": {**dimse, "retrieval": "c-move"}},
        }
        configs = {name: parse_config(cfg) for name, cfg in tenants.items()}
        server = ServerThread(create_app(Settings(key="bench-key-not-secret"), tenants=configs)).start()
        print(
            f"{args.instances} instances of {args.size}x{args.size} 16-bit, "
            "via our server from one Orthanc 1.10 on loopback"
        )
        print(f"{'source':8} {'run':5} {'TTFB s':>8} {'total s':>8} {'MB':>7}")
        for name in ("web", "c-get", "c-move"):
            bundle = httpx.get(
                f"{server.url}/{name}/fhir/ImagingStudy", params={"patient": "bench"}, timeout=120
            ).json()
            resource = bundle["entry"][0]["resource"]
            url = f"{resource['contained'][0]['address']}/studies/{resource['id']}"
            for run in ("cold", "warm"):
                first, total, size = timed(url)
                print(f"{name:8} {run:5} {first:8.3f} {total:8.3f} {size / 1e6:7.1f}")
    finally:
        if server is not None:
            server.stop()
        orthanc.stop()


if __name__ == "__main__":
    sys.exit(main())
