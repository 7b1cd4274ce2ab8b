"""Figures for the folder source and the sample generator (printed, not asserted).

PYTHONPATH=src .venv/bin/python bench/bench_folder.py [WORK_DIR]
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from smart_imaging.config.tenant import FolderImages
from smart_imaging.dicom import tags
from smart_imaging.sources.base import StudyQuery, WadoRequest
from smart_imaging.sources.folder import FolderSource
from smart_imaging_demo.samples.generate import write_samples


def timed(label: str, started: float, extra: str = "") -> None:
    print(f"{label:<38} {time.perf_counter() - started:8.3f} s {extra}")


async def bench(work: Path) -> None:
    out = work / "samples"
    started = time.perf_counter()
    files = write_samples(out, progress=False)
    size = sum(p.stat().st_size for p in files)
    timed("write_samples (cold)", started, f"{len(files)} files, {size / 1e6:.1f} MB")
    started = time.perf_counter()
    write_samples(out, progress=False)
    timed("write_samples (files already there)", started)

    config = FolderImages(type="folder", path=str(out), index=str(work / "index.sqlite"))
    source = FolderSource(config)
    started = time.perf_counter()
    result = await source.start()
    timed("index scan (cold)", started, f"{result.added} files")
    started = time.perf_counter()
    result = await FolderSource(config).start()
    timed("index scan (warm, nothing changed)", started, f"{result.unchanged} unchanged")

    started = time.perf_counter()
    for _ in range(20):
        studies = await source.search(StudyQuery(None))
    timed("search all studies x20", started, f"{len(studies)} studies")
    started = time.perf_counter()
    for _ in range(20):
        await source.search(StudyQuery("MRN-1002"))
    timed("search one patient x20", started)

    biggest = max(studies, key=lambda s: s.study[tags.NumberOfStudyRelatedInstances]["Value"][0])
    uid = biggest.study[tags.StudyInstanceUID]["Value"][0]
    started = time.perf_counter()
    total = 0
    response = await source.retrieve(
        WadoRequest(uid, accept='multipart/related; type="application/dicom"; transfer-syntax=*')
    )
    async for chunk in response.body:
        total += len(chunk)
    seconds = time.perf_counter() - started
    timed(
        "retrieve largest study (in process)",
        started,
        f"{total / 1e6:.1f} MB, {total / 1e6 / seconds:.0f} MB/s",
    )


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    try:
        asyncio.run(bench(work))
    finally:
        if len(sys.argv) <= 1:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
