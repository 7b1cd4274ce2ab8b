"""Benchmark: the request mix of OHIF v3 opening a study (lazy load), through smart-imaging's Endpoint
vs directly from Orthanc, in the same run.

The mix, as OHIF sends it (tests/test_ohif_endpoint.py records the real one): a QIDO-RS for the
study, one for its series, the metadata of each series, then one frame request per instance
(``frames/1``, ``transfer-syntax=*``), six at a time (a browser's connections per host). For a
study of 320 instances in 4 series (256 x 256, 16 bits) it prints, per target, the median over the
rounds of the time to the first frame and to all frames, and their ratio (server / direct).

Run: .venv/bin/python bench/bench_ohif.py [--instances 320] [--series 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.stack import PATIENTS, Stack, endpoint_path

MRN = PATIENTS["pat-a"]  # the mock tenant's patient
TOKEN = "bench-ohif-token"
FRAMES = "multipart/related; type=application/octet-stream; transfer-syntax=*"
STUDY_FIELDS = "00081030,00080060,00080090,00100030"
SERIES_FIELDS = "00080021,00080031,0008103E,00200011"
CONNECTIONS = 6


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def uid(*parts: object) -> str:
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_OID, "/".join(map(str, parts))).int)


def study_files(instances: int, series: int, size: int = 256) -> tuple[str, list[bytes]]:
    """A CT study of ``instances`` slices in ``series`` series, for patient ``MRN``."""
    study = uid("bench-ohif", instances, series)
    rng = np.random.default_rng(7)
    blobs = []
    for number in range(1, instances + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.file_meta.MediaStorageSOPInstanceUID = uid(study, number)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", uid(study, number)
        ds.PatientID, ds.PatientName, ds.Modality = MRN, "Bench^Ohif", "CT"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study, "20240101", "120000"
        part = (number - 1) % series + 1
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = uid(study, "series", part), part, number
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = rng.integers(0, 4096, size * size, dtype="<u2").tobytes()
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        blobs.append(out.getvalue())
    return study, blobs


@dataclass
class Round:
    first_frame: float
    all_frames: float
    requests: int


async def ohif_mix(root: str, study: str, headers: dict[str, str]) -> Round:
    """The lazy-load mix against the DICOMweb ``root``; times from the first request."""
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120) as http:
        started = time.perf_counter()
        params = {"StudyInstanceUID": study, "includefield": STUDY_FIELDS, "limit": "101", "offset": "0"}
        (await http.get(f"{root}/studies", params=params)).raise_for_status()
        series = await http.get(f"{root}/studies/{study}/series", params={"includefield": SERIES_FIELDS})
        series.raise_for_status()
        uids = [s["0020000E"]["Value"][0] for s in series.json()]
        metadata = await asyncio.gather(
            *(http.get(f"{root}/studies/{study}/series/{s}/metadata") for s in uids)
        )
        instances = [
            (ds["0020000E"]["Value"][0], ds["00080018"]["Value"][0])
            for answer in metadata
            for ds in answer.raise_for_status().json()
        ]
        frames = [f"{root}/studies/{study}/series/{s}/instances/{i}/frames/1" for s, i in instances]
        first: list[float] = []

        async def frame(url: str) -> None:
            answer = await http.get(url, headers={"Accept": FRAMES})
            answer.raise_for_status()
            first.append(time.perf_counter() - started)

        await asyncio.gather(*(frame(url) for url in frames))
        return Round(min(first), time.perf_counter() - started, 2 + len(uids) + len(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=320)
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    study, blobs = study_files(args.instances, args.series)
    with Stack() as stack:
        orthanc = stack.start_orthanc(blobs)
        stack.start_ehr()
        _, base = stack.start_server(log_level="warning")
        endpoint = base + endpoint_path(base, "mock", TOKEN, "pat-a", study)
        targets = {
            "orthanc (direct)": (orthanc.dicomweb_url, {"Authorization": basic(*orthanc.auth)}),
            "smart-imaging": (endpoint, {"Authorization": f"Bearer {TOKEN}"}),
        }
        results: dict[str, list[Round]] = {name: [] for name in targets}
        for root, headers in targets.values():  # warm-up: caches, connections, study check
            asyncio.run(ohif_mix(root, study, headers))
        for _ in range(args.rounds):
            for name, (root, headers) in targets.items():
                results[name].append(asyncio.run(ohif_mix(root, study, headers)))
    report(results, args)


def report(results: dict[str, list[Round]], args: argparse.Namespace) -> None:
    print(f"OHIF-like mix, {args.instances} instances in {args.series} series, {args.rounds} rounds (median)")
    print(f"{'target':<20} {'requests':>8} {'first frame ms':>15} {'all frames ms':>14}")
    medians = {}
    for name, rounds in results.items():
        first = statistics.median(r.first_frame for r in rounds) * 1000
        every = statistics.median(r.all_frames for r in rounds) * 1000
        medians[name] = (first, every)
        print(f"{name:<20} {rounds[0].requests:>8} {first:>15.0f} {every:>14.0f}")
    (d_first, d_all), (s_first, s_all) = medians["orthanc (direct)"], medians["smart-imaging"]
    print(f"{'ratio server/direct':<20} {'':>8} {s_first / d_first:>15.2f} {s_all / d_all:>14.2f}")


if __name__ == "__main__":
    main()
