"""Viewer benchmark in real headless Chromium: time from clicking the 64-slice CT study to the
first image on screen, and to the whole series received (every instance parsed and scrollable).

    .venv/bin/python bench/bench_viewer.py [--runs 5] [--data DIR]

Starts ``smart-imaging demo`` on a free port (sample studies are generated on a fresh data dir,
about 10 s), connects as Marcus Okafor through the EHR sandbox's consent page, then opens the
study ``--runs`` times, without throttling and with Chromium's network emulation at 50 and
10 Mbit/s. Figures come from the page (``window.viewerMetrics``, performance.now() from the
click handler to the first requestAnimationFrame after the first draw).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright

from tests.web.harness import VIEWPORT, DemoProcess, connect, launch_browser

STUDY = "CT CHEST WO CONTRAST"
PROFILES = {"loopback": None, "50 Mbit/s, 20 ms": (50, 20), "10 Mbit/s, 40 ms": (10, 40)}


def measure(page, runs: int) -> list[dict]:
    out = []
    for _ in range(runs):
        page.locator("button.study", has_text=STUDY).click()
        page.wait_for_function(
            "window.viewerMetrics.firstImageMs !== null && window.viewerMetrics.studyCompleteMs !== null",
            timeout=120_000,
        )
        m = page.evaluate("window.viewerMetrics")
        out.append(
            {
                "first": m["firstImageMs"],
                "series": m["seriesCompleteMs"][m["firstSeriesUid"]],
                "instances": m["instances"],
                "bytes": m["bytes"],
            }
        )
        page.keyboard.press("Escape")
        page.locator("button.study").first.wait_for()
    return out


def summary(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows]
    return f"median {statistics.median(values):6.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data", type=Path, help="demo data dir to reuse (default: a fresh temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        demo = DemoProcess(data, Path(tmp) / "demo.log").start()
        results = {}
        try:
            with sync_playwright() as p:
                browser = launch_browser(p)
                page = browser.new_context(viewport=VIEWPORT).new_page()
                connect(page, demo.base)
                page.locator("button.study").first.wait_for()
                cdp = page.context.new_cdp_session(page)
                cdp.send("Network.enable")
                measure(page, 1)  # warm-up: module compile, folder index, first connection
                for name, profile in PROFILES.items():
                    mbit, latency = profile or (0, 0)
                    cdp.send(
                        "Network.emulateNetworkConditions",
                        {
                            "offline": False,
                            "latency": latency,
                            "downloadThroughput": mbit * 1e6 / 8 if profile else -1,
                            "uploadThroughput": mbit * 1e6 / 8 if profile else -1,
                        },
                    )
                    results[name] = measure(page, args.runs)
                browser.close()
        finally:
            demo.stop()
    first = next(iter(results.values()))[0]
    print(
        f"{STUDY}: {first['instances']} instances, {first['bytes'] / 1e6:.1f} MB over WADO-RS "
        f"(multipart/related), {args.runs} runs per profile, Chromium {sys.platform}"
    )
    for name, rows in results.items():
        print(f"  {name:18s} first image {summary(rows, 'first')} | whole series {summary(rows, 'series')}")
    print(
        json.dumps({k: [{kk: round(vv, 1) for kk, vv in r.items()} for r in v] for k, v in results.items()})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
