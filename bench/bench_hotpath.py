"""Benchmark: the cost of one small request, sequentially, through each hop.

In one run (``bench/stack.py``): a real Orthanc with sample studies, a plain nginx hop in front of
it, the tiny SMART EHR and ``smart-imaging serve`` with two tenants for that Orthanc: ``mock`` (the
mock authorizer) and ``smart`` (``smart-on-fhir``: one introspection, then cached decisions). One
token per tenant, one keep-alive connection per target (``http.client``, the leanest client to
hand, so the client's own cost stays small); rounds interleaved across the targets so a busy
neighbour on the machine hits them all alike. For WADO-RS study metadata and for one frame it
prints req/s, p50/p99, the ms added at the median, the ratio to direct Orthanc (nginx's beside it)
and the CPU each hop's own processes spent per request. Two bare Python proxies
(``bench/floor_proxy.py``, no checks at all) give the floor of any Python hop here: one on uvicorn
(the server's own), one on granian (a Rust HTTP server), to see whether the server library moves it.

Run: .venv/bin/python bench/bench_hotpath.py [--requests 300] [--rounds 3] [--workers 1] [--floors uvicorn,granian]
     [--profile profile.svg|stacks.txt [--profile-kind frame]]   py-spy record on the server
     [--wrap 'py-spy record -o server.svg --']                   run the server under a command
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.stack import PATIENTS, Stack, bench_data, cpu_seconds, endpoint_path, tree_pids
from bench.tiny_ehr import app_token
from tests.sample_dicom import SampleData

KINDS = ("metadata", "frame")
ACCEPT = {
    "metadata": "application/dicom+json",
    "frame": 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
}


@dataclass
class Target:
    name: str
    base: str  # scheme://host:port
    paths: dict[str, str]  # kind -> path
    headers: dict[str, str]
    pids: list[int]  # the hop's own processes (their CPU is counted)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    elapsed: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def reset(self) -> None:
        self.latencies = {kind: [] for kind in KINDS}
        self.elapsed = dict.fromkeys(KINDS, 0.0)
        self.cpu = dict.fromkeys(KINDS, 0.0)

    def rate(self, kind: str) -> float:
        return len(self.latencies[kind]) / self.elapsed[kind]


def first_instance(sample: SampleData, study: str) -> tuple[str, str]:
    """(series UID, SOP instance UID) of one instance of ``study``."""
    sop, blob = min(sample.instances_of(study).items())
    ds = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
    return str(ds.SeriesInstanceUID), sop


FLOORS = {"uvicorn": "bare-py", "granian": "bare-gr"}  # floor_proxy.py's servers -> target names


def targets(
    stack: Stack, server: subprocess.Popen[bytes], url: str, sample: SampleData, floors: list[str]
) -> list[Target]:
    assert stack.orthanc is not None and stack.orthanc.process is not None
    nginx = stack.start_nginx([stack.orthanc.http_port])
    study = sample.patients[PATIENTS["pat-a"]][0]
    series, sop = first_instance(sample, study)
    rest = {
        "metadata": f"/studies/{study}/metadata",
        "frame": f"/studies/{study}/series/{series}/instances/{sop}/frames/1",
    }
    credentials = base64.b64encode(":".join(stack.orthanc.auth).encode()).decode()
    basic = {"Authorization": f"Basic {credentials}"}
    archive = {kind: f"/dicom-web{path}" for kind, path in rest.items()}
    found = [
        Target("orthanc", stack.orthanc.http_url, archive, basic, [stack.orthanc.process.pid]),
        Target("nginx", nginx.url, archive, basic, nginx.pids()),
    ]
    for name in floors:
        floor = stack.start_floor_proxy(stack.orthanc.http_url, name)
        found.append(Target(FLOORS[name], floor.base, archive, basic, tree_pids(floor.pid)))
    for tenant, token in (("mock", "mock-token"), ("smart", app_token("pat-a"))):
        wado = endpoint_path(url, tenant, token, "pat-a", study)
        paths = {kind: wado + path for kind, path in rest.items()}
        found.append(Target(tenant, url, paths, {"Authorization": f"Bearer {token}"}, tree_pids(server.pid)))
    for target in found:
        target.reset()
    return found


def run_requests(target: Target, kind: str, count: int) -> None:
    """``count`` sequential requests on one keep-alive connection; latencies in seconds."""
    parts = urlsplit(target.base)
    headers = {**target.headers, "Accept": ACCEPT[kind]}
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    latencies, path = target.latencies[kind], target.paths[kind]
    cpu_before = cpu_seconds(target.pids)
    started = time.perf_counter()
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            latencies.append(time.perf_counter() - t0)
            if response.status != 200 or not body:
                raise RuntimeError(f"{target.name} {kind}: HTTP {response.status} {body[:200]!r}")
    finally:
        target.elapsed[kind] += time.perf_counter() - started
        target.cpu[kind] += cpu_seconds(target.pids) - cpu_before
        connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(found: list[Target], kind: str) -> None:
    direct, nginx = found[0], found[1]
    d_p50 = statistics.median(direct.latencies[kind])
    n_ratio = nginx.rate(kind) / direct.rate(kind)
    print(f"\nWADO-RS {kind}: {len(direct.latencies[kind])} sequential requests per target")
    print(
        f"  {'target':8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'added p50':>10} {'ratio':>6} {'nginx':>6} {'hop CPU/req':>12}"
    )
    for target in found:
        values = target.latencies[kind]
        p50 = statistics.median(values)
        print(
            f"  {target.name:8} {target.rate(kind):7.0f} {p50 * 1000:7.2f} {percentile(values, 0.99) * 1000:7.2f} "
            f"{(p50 - d_p50) * 1000:+10.2f} {target.rate(kind) / direct.rate(kind):6.2f} {n_ratio:6.2f} "
            f"{target.cpu[kind] / len(values) * 1e6:9.0f} us"
        )


def profile(server: subprocess.Popen[bytes], target: Target, kind: str, count: int, output: str) -> None:
    """py-spy record on the server (and its workers) during ``count`` requests of ``kind``."""
    spy = Path(sys.executable).with_name("py-spy")
    fmt = "flamegraph" if output.endswith(".svg") else "raw"  # raw: collapsed stacks, one a line
    command = [str(spy), "record", "--pid", str(server.pid), "--subprocesses", "-o", output]
    recorder = subprocess.Popen([*command, "--rate", "500", "--format", fmt, "--nonblocking"])
    time.sleep(1.5)
    run_requests(target, kind, count)
    recorder.send_signal(2)  # SIGINT: py-spy writes its output and exits
    recorder.wait(timeout=60)
    print(f"profile of {count} cached {target.name} {kind} requests: {output}")


def measure(found: list[Target], requests: int, rounds: int) -> None:
    for target in found:  # warm-up: caches, connections, the one introspection
        for kind in KINDS:
            run_requests(target, kind, 20)
        target.reset()
    for _ in range(rounds):
        for kind in KINDS:
            for target in found:
                run_requests(target, kind, requests)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="requests per target, kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--log-level", default="info", help="the server's (info: access log on)")
    parser.add_argument("--profile", help="write a py-spy profile of the server to this file")
    parser.add_argument("--profile-kind", choices=KINDS, default="metadata")
    parser.add_argument(
        "--floors", default="uvicorn,granian", help="bare proxies to run: uvicorn, granian (comma-separated)"
    )
    parser.add_argument("--wrap", default="", help="a command to run the server under")
    args = parser.parse_args()
    with Stack() as stack:
        sample = bench_data()
        stack.start_orthanc(list(sample.files.values()))
        stack.start_ehr()
        server, url = stack.start_server(args.workers, args.log_level, shlex.split(args.wrap))
        floors = [name for name in args.floors.split(",") if name]
        if unknown := set(floors) - set(FLOORS):
            parser.error(f"--floors: unknown {', '.join(sorted(unknown))} (known: {', '.join(FLOORS)})")
        found = targets(stack, server, url, sample, floors)
        measure(found, args.requests, args.rounds)
        print(f"cores: {os.cpu_count()}, server workers: {args.workers}, log level: {args.log_level}")
        print(f"introspections at the EHR: {stack.introspections()} (one token, all requests)")
        for kind in KINDS:
            report(found, kind)
        print("  (hop CPU/req: CPU of that target's own processes per request: the hop alone)")
        if args.profile:
            mock = next(target for target in found if target.name == "mock")
            profile(server, mock, args.profile_kind, args.requests * 3, args.profile)


if __name__ == "__main__":
    main()
