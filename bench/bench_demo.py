"""Cold and warm start of `smart-imaging demo` (printed, not asserted).

    .venv/bin/python bench/bench_demo.py [--warm-runs 3] [--keep DIR]

Cold: a fresh data dir, so the process generates the sample studies, keys and the index first.
Warm: the same data dir again. Each run starts the real command as a subprocess on a free
loopback port and counts until `/healthz` and `/demo/fhir/metadata` answer 200 AND an `open`
tenant ImagingStudy search returns studies; then Ctrl-C (its exit code and stop time are shown).
"banner" is when the URLs were printed (samples and app built, uvicorn not yet listening).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

EXE = Path(sys.executable).with_name("smart-imaging")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(base: str) -> bool:
    try:
        if any(
            httpx.get(f"{base}{p}", timeout=5).status_code != 200 for p in ("/healthz", "/demo/fhir/metadata")
        ):
            return False
        found = httpx.get(f"{base}/open/fhir/ImagingStudy", timeout=5)
        return found.status_code == 200 and found.json().get("total", 0) > 0
    except httpx.TransportError:
        return False


def run(data: Path, log: Path) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    banner = None
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(EXE), "demo", "--port", str(port), "--data", str(data)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"demo exited with {proc.returncode}:\n{log.read_text()}")
            if banner is None and "demo is running" in log.read_text("utf-8", "replace"):
                banner = time.perf_counter() - started
            if ready(base):
                total = time.perf_counter() - started
                break
            time.sleep(0.02)
        stopping = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        return {
            "ready": total,
            "banner": banner or total,
            "stop": time.perf_counter() - stopping,
            "exit": code,
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def show(label: str, r: dict[str, float]) -> None:
    print(
        f"{label:<8} ready {r['ready']:6.2f} s   banner {r['banner']:6.2f} s   "
        f"Ctrl-C stop {r['stop']:4.2f} s exit {int(r['exit'])}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="use (and keep) this work dir")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    try:
        show("cold", run(data, work / "cold.log"))
        warm = [run(data, work / f"warm{i}.log") for i in range(args.warm_runs)]
        for i, r in enumerate(warm, 1):
            show(f"warm {i}", r)
        print(f"warm median ready {statistics.median(r['ready'] for r in warm):.2f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
