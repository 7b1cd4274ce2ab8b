"""Benchmark: retrieve a large study (>= 300 MB) from Orthanc directly and through smart-imaging.

Prints both throughputs, their ratio and the server's peak RSS growth while streaming.
Run: .venv/bin/python bench/bench_wado.py [--instances 160] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psutil
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import RssSampler, start_server
from tests.orthanc import Orthanc

ACCEPT = 'multipart/related; type="application/dicom"'


def uid(*parts: object) -> str:
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_OID, "/".join(map(str, parts))).int)


def instance(study: str, series: str, number: int, size: int) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = uid("bench", study, number)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientName = "BENCH-1", "Bench^Large"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.StudyDate, ds.StudyTime, ds.Modality = "20240101", "120000", "CT"
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    rng = np.random.default_rng(number)
    ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def load_study(orthanc: Orthanc, count: int, size: int) -> tuple[str, int]:
    study, series = uid("bench-study", count, size), uid("bench-series", count, size)
    total = 0
    with httpx.Client(auth=orthanc.auth, timeout=120) as client:
        for n in range(1, count + 1):
            blob = instance(study, series, n, size)
            total += len(blob)
            client.post(f"{orthanc.http_url}/instances", content=blob).raise_for_status()
    return study, total


def fetch(url: str, auth: tuple[str, str] | None = None, rate: str | None = None) -> tuple[int, float, float]:
    """Bytes, seconds to the first byte, seconds in total.

    curl (C) is the client when available, so the client's own CPU use stays small on a
    2-core machine and the figures compare the two servers rather than the client.
    """
    if shutil.which("curl"):
        command = [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-H",
            f"Accept: {ACCEPT}",
            "-w",
            "%{size_download} %{time_starttransfer} %{time_total} %{http_code}",
            url,
        ]
        if auth:
            command[1:1] = ["-u", f"{auth[0]}:{auth[1]}"]
        if rate:
            command[1:1] = ["--limit-rate", rate]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        if out[3] != "200":
            raise RuntimeError(f"HTTP {out[3]} from {url}")
        return int(out[0]), float(out[1]), float(out[2])
    started = time.perf_counter()
    first = 0.0
    received = 0
    with (
        httpx.Client(timeout=300, auth=auth) as client,
        client.stream("GET", url, headers={"Accept": ACCEPT}) as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            if not received:
                first = time.perf_counter() - started
            received += len(chunk)
    return received, first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=160)
    parser.add_argument("--size", type=int, default=1024, help="rows = columns (16-bit pixels)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--client-rate",
        help="cap the client's download rate (curl --limit-rate, e.g. 100M) "
        "to see a network-bound rather than CPU-bound comparison",
    )
    args = parser.parse_args()

    orthanc = Orthanc().start()
    server = None
    try:
        t0 = time.perf_counter()
        study, stored = load_study(orthanc, args.instances, args.size)
        print(
            f"loaded {args.instances} instances, {stored / 1e6:.0f} MB, in {time.perf_counter() - t0:.1f} s"
        )
        config_dir = Path(tempfile.mkdtemp())
        (config_dir / "bench.json").write_text(
            json.dumps(
                {
                    "authorization": {"type": "mock", "disableAuthzChecks": True},
                    "images": {
                        "type": "dicom-web",
                        "endpoint": orthanc.dicomweb_url,
                        "lookup": "all-studies-on-server",
                        "authentication": {
                            "type": "http-basic",
                            "username": orthanc.username,
                            "password": orthanc.password,
                        },
                    },
                }
            )
        )
        server, base = start_server(config_dir)
        bundle = httpx.get(f"{base}/bench/fhir/ImagingStudy", timeout=60).json()
        address = bundle["entry"][0]["resource"]["contained"][0]["address"]
        direct_url = f"{orthanc.dicomweb_url}/studies/{study}"
        proxy_url = f"{address}/studies/{study}"
        fetch(direct_url, orthanc.auth)  # warm Orthanc's caches
        cpu_before = psutil.Process(server.pid).cpu_times()
        sampler = RssSampler(server.pid)
        baseline = sampler.baseline
        sampler.start()
        direct, proxied = [], []
        for _ in range(args.rounds):
            n, ttfb, total = fetch(direct_url, orthanc.auth, args.client_rate)
            direct.append((n, ttfb, total))
            n, ttfb, total = fetch(proxy_url, rate=args.client_rate)
            proxied.append((n, ttfb, total))
        sampler.stop.set()
        sampler.join()
        after = psutil.Process(server.pid).cpu_times()
        user, system = after.user - cpu_before.user, after.system - cpu_before.system
        size = direct[0][0]
        assert all(p[0] == size for p in proxied), "proxied size differs"
        d = statistics.median(size / t for _, _, t in direct) / 1e6
        p = statistics.median(size / t for _, _, t in proxied) / 1e6
        cap = f", client capped by curl --limit-rate {args.client_rate}" if args.client_rate else ""
        print(f"study size over the wire: {size / 1e6:.0f} MB, {args.rounds} rounds (median){cap}")
        print(
            f"direct from Orthanc:      {d:8.1f} MB/s   first byte {statistics.median(x[1] for x in direct) * 1000:.0f} ms"
        )
        print(
            f"through smart-imaging:    {p:8.1f} MB/s   first byte {statistics.median(x[1] for x in proxied) * 1000:.0f} ms"
        )
        print(f"ratio:                    {p / d:8.2f}")
        print(
            f"server CPU per GB:        {(user + system) / (size * args.rounds / 1e9):8.2f} s (user {user:.2f} s, system {system:.2f} s)"
        )
        print(
            f"server peak RSS growth:   {(sampler.peak - baseline) / 2**20:8.1f} MiB (baseline {baseline / 2**20:.0f} MiB)"
        )
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)
        orthanc.stop()


if __name__ == "__main__":
    main()
