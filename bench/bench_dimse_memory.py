"""Peak RSS growth of `smart-imaging serve` while it retrieves ONE large instance (a 16-bit
multi-frame, 262 MB by default) from Orthanc over DIMSE (dicom-dimse tenant) and streams it.

    .venv/bin/python bench/bench_dimse_memory.py [--frames 500] [--retrieval c-get|c-move]
        [--src DIR ...]

Each ``--src`` is a source tree to run the server from (PYTHONPATH), e.g. a ``git worktree``
of an older commit, to compare before/after on the same Orthanc; default: this tree's src.
Starts its own Orthanc and servers on free loopback ports and stops them at the end. The
server's RSS is sampled every 20 ms (psutil) from just before the request until the response
has been read (the first, "cold" request runs the DIMSE transfer).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import RssSampler, start_server
from tests.orthanc import Orthanc
from tests.sample_dicom import large_multiframe

MRN = "BENCH-LARGE"
ACCEPT = 'multipart/related; type="application/dicom"'


def large_instance(frames: int, size: int) -> bytes:
    return large_multiframe("bench-large", MRN, "Bench^Large", frames, size)


def measure(src: Path, orthanc: Orthanc, retrieval: str) -> tuple[float, float, float, int]:
    """(baseline MiB, peak growth MiB, seconds, bytes received) for one cold retrieval."""
    config_dir = Path(tempfile.mkdtemp(prefix="bench-dimse-memory-"))
    (config_dir / "bench.json").write_text(
        json.dumps(
            {
                "authorization": {
                    "type": "mock",
                    "patient": {
                        "resourceType": "Patient",
                        "id": "bench",
                        "identifier": [{"system": "urn:bench", "value": MRN}],
                    },
                },
                "images": {
                    "type": "dicom-dimse",
                    "endpoint": f"dimse://127.0.0.1:{orthanc.dicom_port}",
                    "ae": orthanc.peer_aet,
                    "calledAe": orthanc.aet,
                    "retrieval": retrieval,
                    "storePort": orthanc.peer_port,
                    "cacheDir": str(config_dir / "cache"),
                    "firstResultTimeout": 300,
                    "timeout": 120,
                },
            }
        )
    )
    server, base = start_server(config_dir, {"PYTHONPATH": str(src)})
    try:
        bundle = httpx.get(f"{base}/bench/fhir/ImagingStudy", params={"patient": "bench"}, timeout=120).json()
        resource = bundle["entry"][0]["resource"]
        url = f"{resource['contained'][0]['address']}/studies/{resource['id']}"
        time.sleep(0.5)  # let the search settle before the baseline
        sampler = RssSampler(server.pid)
        sampler.start()
        started = time.perf_counter()
        received = 0
        with httpx.stream("GET", url, headers={"Accept": ACCEPT}, timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(1 << 20):
                received += len(chunk)
        seconds = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        return sampler.baseline / 2**20, (sampler.peak - sampler.baseline) / 2**20, seconds, received
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--size", type=int, default=512, help="rows = columns, 16-bit pixels")
    parser.add_argument("--retrieval", choices=["c-get", "c-move"], default="c-get")
    parser.add_argument(
        "--src",
        type=Path,
        action="append",
        help="source tree(s) to run the server from (default: this tree's src)",
    )
    args = parser.parse_args()
    orthanc = Orthanc().start()
    try:
        blob = large_instance(args.frames, args.size)
        size = len(blob)
        orthanc.upload_bytes([blob])
        del blob
        print(
            f"one instance of {args.frames} frames {args.size}x{args.size} 16-bit, "
            f"{size / 1e6:.0f} MB, {args.retrieval} via `smart-imaging serve` from Orthanc on loopback"
        )
        print(f"{'server source':40} {'baseline MiB':>12} {'peak growth MiB':>16} {'s':>6} {'MB':>6}")
        for src in args.src or [ROOT / "src"]:
            baseline, growth, seconds, received = measure(src.resolve(), orthanc, args.retrieval)
            print(f"{src!s:40} {baseline:12.0f} {growth:16.1f} {seconds:6.1f} {received / 1e6:6.0f}")
    finally:
        orthanc.stop()


if __name__ == "__main__":
    main()
