"""Fuzz: many hostile requests against a real server and a real Orthanc (issue 13).

The same strategies and properties as tests/test_hostile_property.py, for longer: every probe
runs to the end (no stop at the first failure), and the run prints how often each status came
back per kind of probe, and each distinct failure class (what broke, where the server raised
it) with a count and one example to reproduce it.

Run: .venv/bin/python bench/fuzz_hostile.py [--examples 3000] [--seed 13] [--kinds wado,search,dyn,path]
Exits 1 when any probe broke a property.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings
from tests import hostile
from tests.conftest import ServerThread
from tests.hostile_world import (
    DEADLINE,
    LogCapture,
    Outcome,
    Probe,
    Target,
    discover,
    problems,
    route_of,
    send,
    server_settings,
    tenants,
)
from tests.orthanc import Orthanc
from tests.sample_dicom import build_sample_data

KINDS = {
    "wado": hostile.wado_probe,
    "search": hostile.search_probe,
    "dyn": hostile.dyn_probe,
    "path": hostile.path_probe,
}


def failure_class(probe: Probe, problem: str) -> str:
    """What broke and where, without the parts that differ from one example to the next."""
    logged = re.search(r"\[(\w+): .* at (\S+)(?: \(raised in (\S+)\))?\]", problem)
    if logged:
        return f"{route_of(probe.target)}: {logged.group(1)} at {logged.group(2)}"
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", problem)
    return f"{route_of(probe.target)}: " + re.sub(r"\d+(\.\d+)?", "N", text)


class Tally:
    def __init__(self) -> None:
        self.statuses: dict[str, Counter[str]] = defaultdict(Counter)
        self.failures: Counter[str] = Counter()
        self.examples: dict[str, tuple[Probe, Outcome, list[str]]] = {}
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.probes = 0

    def add(self, kind: str, probe: Probe, out: Outcome, found: list[str]) -> None:
        self.probes += 1
        self.statuses[kind][
            str(out.status) if out.status else "unsendable" if out.unsendable else "no answer"
        ] += 1
        self.seconds[kind].append(out.seconds)
        raised = [p for p in found if p.startswith("server logged: smart_imaging") and " at " in p]
        classes = {failure_class(probe, p) for p in (raised or found)}
        for name in classes:
            self.failures[name] += 1
            self.examples.setdefault(name, (probe, out, found))

    def report(self, seconds: float) -> None:
        print(f"{self.probes} probes in {seconds:.0f} s ({self.probes / seconds:.1f}/s)")
        for kind, counts in sorted(self.statuses.items()):
            times = sorted(self.seconds[kind])
            spread = f"median {times[len(times) // 2] * 1000:.0f} ms, slowest {times[-1]:.2f} s"
            statuses = "  ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
            print(f"  {kind:7} {statuses}  ({spread})")
        broken = len(self.failures)
        print(f"{broken} failure classes" + (":" if broken else ""))
        for name, count in self.failures.most_common():
            probe, out, found = self.examples[name]
            print(f"\n[{count}x] {name}\n  e.g. {probe.describe()}\n  -> {out.status} in {out.seconds:.2f} s")
            for problem in found:
                print(f"     {problem[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: " + ", ".join(KINDS))
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]

    orthanc = Orthanc().start()
    server = None
    tally = Tally()
    logs = LogCapture().install()
    try:
        data = build_sample_data()
        orthanc.upload_bytes(data.files.values())
        configs = {name: parse_config(cfg) for name, cfg in tenants(orthanc).items()}
        server = ServerThread(create_app(Settings(**server_settings(orthanc)), tenants=configs)).start()
        world = discover(server.url, orthanc, data)
        started = time.monotonic()
        with httpx.Client(timeout=DEADLINE) as client:
            fuzz(world, client, logs, tally, kinds, args.examples, args.seed)
        tally.report(time.monotonic() - started)
    finally:
        logs.remove()
        if server:
            server.stop()
        orthanc.stop()
    sys.exit(1 if tally.failures else 0)


def fuzz(
    world: Target, client: httpx.Client, logs: LogCapture, tally: Tally, kinds: list[str], n: int, at: int
) -> None:
    @seed(at)
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(kinds), label="kind")
        probe = data.draw(KINDS[kind](world), label="probe")
        out = send(client, world.base, probe, logs)
        tally.add(kind, probe, out, problems(probe, out, world))

    run()


if __name__ == "__main__":
    main()
