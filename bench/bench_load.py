"""Benchmark: 50 concurrent simulated viewers for a fixed time against each target.

A viewer (one per asyncio task, its own keep-alive connection pool) loops until the time is up:
search its patient's studies, read one study's metadata, then every frame of that study; three
patients (``bench/stack.py``: 77654033, 98890234, LOAD-3), one SMART token each. Targets, in one
run on loopback:

- ``orthanc``: Orthanc directly (QIDO-RS search by PatientID, basic auth)
- ``nginx``: the same through a plain nginx hop
- ``one``: ``smart-imaging serve --workers 1`` (FHIR search, WADO-RS through the Endpoint)
- ``workers2``: ``smart-imaging serve --workers 2``
- ``replicas3`` (not in the default list): three ``--workers 1`` replicas behind nginx with
  their own caches (with ``--redis``, as ``replicas3-redis``), 16 archive connections each
- ``replicas3-redis``: the same sharing state on a local redis-server
  (SMART_IMAGING_REDIS_URL: decisions, study checks); Redis's CPU and memory count with the target's

Prints viewer iterations/s (the ratio to direct Orthanc is on these: a FHIR search is one
request, its archive queries are several), requests/s, p50/p99 latency (all requests, frames,
searches), errors (must be 0: a non-200, a failed connection, or
metadata naming another patient), and the peak memory (RSS) and CPU of each process of the target.
The load generator runs in this process (aiohttp, uvloop), the servers in their own.
Run: .venv/bin/python bench/bench_load.py [--seconds 30] [--viewers 50] [--targets orthanc,nginx,one,workers2,replicas3-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.nginx import free_port
from bench.stack import PATIENTS, Stack, bench_data, cpu_seconds, tree_pids
from bench.tiny_ehr import app_token
from smart_imaging.dicom import tags

FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
MAX_REQUESTS = 2_000_000  # a bound on the loop besides the time
INCLUDE = {  # the includefield lists smart-imaging's dicom-web source asks for (same archive work)
    level: "&".join(f"includefield={tag}" for tag in fields)
    for level, fields in (
        ("studies", tags.STUDY_FIELDS),
        ("series", tags.SERIES_FIELDS),
        ("instances", tags.INSTANCE_FIELDS),
    )
}


@dataclass
class Target:
    """How a viewer talks to one target: search, then WADO-RS under ``wado_base(patient)``."""

    name: str
    base: str
    pids: Callable[[], list[int]]
    fhir: bool  # True: FHIR search + Endpoint; False: QIDO-RS at the archive
    auth: Callable[[str], str]  # patient id -> Authorization header


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)  # every HTTP request
    by_kind: dict[str, list[float]] = field(
        default_factory=lambda: {"search": [], "metadata": [], "frame": []}
    )
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    loops: int = 0  # viewer iterations completed: search + metadata + every frame of one study


class Viewer:
    def __init__(self, target: Target, patient: str, results: Results, deadline: float) -> None:
        self.target, self.patient, self.results, self.deadline = target, patient, results, deadline
        self.headers = {"Authorization": target.auth(patient)}
        self.turn = 0

    async def run(self, session: aiohttp.ClientSession) -> None:
        while time.monotonic() < self.deadline and self.results.requests < MAX_REQUESTS:
            started = time.perf_counter()
            studies = await self.search(session)
            self.results.by_kind["search"].append(time.perf_counter() - started)
            if not studies:
                return
            wado, study = studies[self.turn % len(studies)]
            self.turn += 1
            metadata = await self.get(
                session, f"{wado}/studies/{study}/metadata", "application/dicom+json", "metadata"
            )
            for path in frame_paths(metadata or [], wado, study):
                if time.monotonic() >= self.deadline:
                    return
                await self.get(session, path, FRAME_ACCEPT, "frame", parse=False)
            self.results.loops += 1

    async def search(self, session: aiohttp.ClientSession) -> list[tuple[str, str]]:
        """(WADO-RS base, study UID) of each study of the patient. At the archive, the queries
        smart-imaging makes for one ImagingStudy search: studies, then each study's series and
        instances, with the same includefield lists (the same archive work per iteration)."""
        mrn = PATIENTS[self.patient]
        if self.target.fhir:
            url = f"{self.target.base}/smart/fhir/ImagingStudy?patient={self.patient}"
            bundle = await self.get(session, url, "application/fhir+json")
            entries = bundle.get("entry", []) if isinstance(bundle, dict) else []
            return [
                (e["resource"]["contained"][0]["address"], e["resource"]["id"])
                for e in entries
                if e["resource"]["resourceType"] == "ImagingStudy"
            ]
        wado = f"{self.target.base}/dicom-web"
        query = f"{wado}/studies?PatientID={mrn}&{INCLUDE['studies']}"
        found = await self.get(session, query, "application/dicom+json")
        uids = [s["0020000D"]["Value"][0] for s in found or []]
        for uid in uids:
            for level in ("series", "instances"):
                query = f"{wado}/studies/{uid}/{level}?{INCLUDE[level]}"
                await self.get(session, query, "application/dicom+json")
        return [(wado, uid) for uid in uids]

    async def get(
        self, session: aiohttp.ClientSession, url: str, accept: str, kind: str = "", parse: bool = True
    ) -> Any:
        self.results.requests += 1
        started = time.perf_counter()
        try:
            async with session.get(url, headers={**self.headers, "Accept": accept}) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.results.errors.append(f"{type(exc).__name__} {url[-60:]}")
            return None
        self.results.latencies.append(time.perf_counter() - started)
        if kind:
            self.results.by_kind[kind].append(self.results.latencies[-1])
        if status != 200:
            self.results.errors.append(f"HTTP {status} {url[-60:]}")
            return None
        return self.check(url, body) if parse else None

    def check(self, url: str, body: bytes) -> Any:
        import json

        document = json.loads(body)
        if url.endswith("/metadata"):
            others = {ds.get("00100020", {}).get("Value", [None])[0] for ds in document} - {
                PATIENTS[self.patient]
            }
            if others:
                self.results.errors.append(f"another patient's data: {others}")
        return document


def frame_paths(metadata: list[dict[str, Any]], wado: str, study: str) -> list[str]:
    paths = []
    for ds in metadata:
        series, sop = ds["0020000E"]["Value"][0], ds["00080018"]["Value"][0]
        frames = int(ds.get("00280008", {}).get("Value", [1])[0] or 1)
        base = f"{wado}/studies/{study}/series/{series}/instances/{sop}/frames/"
        paths += [f"{base}{n}" for n in range(1, frames + 1)]
    return paths


async def drive(target: Target, viewers: int, seconds: float) -> tuple[Results, float]:
    results = Results()
    deadline = time.monotonic() + seconds
    patients = list(PATIENTS)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        started = time.perf_counter()
        crew = [Viewer(target, patients[i % len(patients)], results, deadline) for i in range(viewers)]
        await asyncio.gather(*(viewer.run(session) for viewer in crew))
        return results, time.perf_counter() - started


class Sampler(threading.Thread):
    """Peak RSS per process and CPU of a target's processes, every 100 ms while it runs."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            for pid in self.pids():
                try:
                    process = psutil.Process(pid)
                    self.peak[pid] = max(self.peak.get(pid, 0), process.memory_info().rss)
                    self.names.setdefault(pid, role(process))
                except psutil.NoSuchProcess:
                    continue


def role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    if "spawn_main" in command:
        return "worker"
    if "resource_tracker" in command:
        return "tracker"
    return "serve" if "smart_imaging.cli" in command else process.name()


def basic(orthanc_auth: tuple[str, str]) -> Callable[[str], str]:
    value = "Basic " + base64.b64encode(":".join(orthanc_auth).encode()).decode()
    return lambda patient: value


REPLICA_CONNECTIONS = 16  # per replica (docs/deploy.md, Sizing: the sum must fit the archive)


def build_targets(stack: Stack, names: list[str], redis: bool) -> dict[str, Callable[[], Target]]:
    """Each target starts only when its turn comes (so idle ones do not compete for the cores)."""
    orthanc = stack.orthanc
    assert orthanc is not None and orthanc.process is not None
    opid = orthanc.process.pid
    bearer = lambda patient: f"Bearer {app_token(patient)}"  # noqa: E731

    def direct() -> Target:
        return Target("orthanc", orthanc.http_url, lambda: [opid], False, basic(orthanc.auth))

    def via_nginx() -> Target:
        hop = stack.start_nginx([orthanc.http_port])
        return Target("nginx", hop.url, hop.pids, False, basic(orthanc.auth))

    def server(workers: int, name: str) -> Callable[[], Target]:
        def start() -> Target:
            process, url = stack.start_server(workers, "info", name=name)
            return Target(name, url, lambda: tree_pids(process.pid), True, bearer)

        return start

    def replicas(shared: bool, name: str) -> Callable[[], Target]:
        def start() -> Target:
            redis_url, store = start_redis(stack) if shared else ("", None)
            # 3 x 16 connections: within the 50 Orthanc serves at once (HttpThreadsCount); with 3 x 24
            # a connection Orthanc never picks up waits for the 30 s timeout (504s on searches)
            env = {"SMART_IMAGING_UPSTREAM_CONNECTIONS": str(REPLICA_CONNECTIONS)}
            if shared:
                env["SMART_IMAGING_REDIS_URL"] = redis_url
            started = [stack.start_server(1, "info", name=f"{name}-{i}", env=env) for i in range(3)]
            hop = stack.start_nginx([int(url.rsplit(":", 1)[1]) for _, url in started])
            extra = [store] if store is not None else []
            pids = lambda: [*hop.pids(), *(p for proc, _ in started for p in tree_pids(proc.pid)), *extra]  # noqa: E731
            return Target(name, hop.url, pids, True, bearer)

        return start

    table = {
        "orthanc": direct,
        "nginx": via_nginx,
        "one": server(1, "one"),
        "workers2": server(2, "workers2"),
        "replicas3": replicas(redis, "replicas3"),
        "replicas3-redis": replicas(True, "replicas3-redis"),
    }
    unknown = set(names) - set(table)
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))} (known: {', '.join(table)})")
    return {name: table[name] for name in names}


def start_redis(stack: Stack) -> tuple[str, int]:
    """A redis-server child on a free loopback port (NOTES.md); its URL and PID."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(process.terminate)
    for _ in range(100):
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            return f"redis://127.0.0.1:{port}/0", process.pid
        time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


def run_target(target: Target, archive: int, viewers: int, seconds: float) -> dict[str, Any]:
    """Warm up, then drive ``viewers`` for ``seconds``; CPU of the target and of the archive."""
    asyncio.run(drive(target, viewers, 2.0))  # warm-up: connections, caches, introspection
    sampler = Sampler(target.pids)
    sampler.start()
    cpu_before, archive_before = cpu_seconds(target.pids()), cpu_seconds([archive])
    results, elapsed = asyncio.run(drive(target, viewers, seconds))
    cpu, archive_cpu = cpu_seconds(target.pids()) - cpu_before, cpu_seconds([archive]) - archive_before
    sampler.stop.set()
    sampler.join()
    peak, names = sampler.peak, sampler.names
    return {
        "results": results,
        "elapsed": elapsed,
        "cpu": cpu,
        "archive": archive_cpu,
        "peak": peak,
        "names": names,
    }


def percentiles(values: list[float]) -> str:
    if not values:
        return "       -       -"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{statistics.median(ordered) * 1000:8.1f} {p99 * 1000:8.1f}"


def report(name: str, run: dict[str, Any], direct: float | None) -> float:
    """One line per target; returns its viewer iterations per second."""
    results: Results = run["results"]
    loops = results.loops / run["elapsed"]
    ratio = loops / direct if direct else 1.0
    peak = ", ".join(
        f"{run['names'].get(pid, '?')}:{rss / 2**20:.0f}" for pid, rss in sorted(run["peak"].items())
    )
    print(
        f"  {name:9} {loops:6.1f} {ratio:5.2f} {len(results.latencies) / run['elapsed']:6.0f} "
        f"{percentiles(results.latencies)} {percentiles(results.by_kind['frame'])} "
        f"{percentiles(results.by_kind['search'])} {len(results.errors):6d} "
        f"{run['cpu'] / run['elapsed'] * 100:5.0f}% {run['archive'] / run['elapsed'] * 100:5.0f}%  {peak}"
    )
    for error in results.errors[:5]:
        print(f"      error: {error}")
    return loops


HEADER = (
    f"  {'target':9} {'loops/s':>6} {'ratio':>5} {'req/s':>6} {'p50 ms':>8} {'p99 ms':>8} {'frame p50':>8} "
    f"{'p99':>8} {'search p50':>8} {'p99':>8} {'errors':>6} {'CPU':>6} {'archive':>6}  peak RSS MiB per process"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--targets", default="orthanc,nginx,one,workers2,replicas3-redis")
    parser.add_argument(
        "--series-concurrency",
        type=int,
        help="the tenants' seriesConcurrency (default 4: QIDO-RS series/instances queries at once, "
        "shared by every concurrent search)",
    )
    parser.add_argument("--redis", action="store_true", help="replicas3: hand the replicas a Redis URL")
    args = parser.parse_args()
    uvloop.install()
    with Stack() as stack:
        sample = bench_data()
        stack.start_orthanc(list(sample.files.values()))
        stack.start_ehr(args.series_concurrency)
        starters = build_targets(stack, args.targets.split(","), args.redis)
        print(
            f"{args.viewers} viewers x {args.seconds:g} s per target, {os.cpu_count()} cores, loopback, "
            f"seriesConcurrency {args.series_concurrency or 'default (4)'}"
        )
        print(HEADER)
        direct_rate = None
        introspected = {}
        for name, start in starters.items():
            archive = stack.orthanc.process.pid  # type: ignore[union-attr]
            before = stack.introspections()
            rate = report(name, run_target(start(), archive, args.viewers, args.seconds), direct_rate)
            direct_rate = direct_rate or (rate if name == "orthanc" else None)
            introspected[name] = stack.introspections() - before
        counts = ", ".join(
            f"{name} {count}" for name, count in introspected.items() if name not in ("orthanc", "nginx")
        )
        print(f"introspections at the EHR (3 tokens): {counts}")
        print("loops: viewer iterations (search + metadata + every frame of one study); ratio: loops/s vs")
        print("Orthanc directly; CPU: the target's own processes (100% = one core); archive: Orthanc's CPU")


if __name__ == "__main__":
    main()
