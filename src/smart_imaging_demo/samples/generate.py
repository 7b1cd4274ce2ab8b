"""``write_samples``: write the demo's sample studies as DICOM Part-10 files.

Deterministic: the same package versions give the same UIDs and the same bytes. Files whose
bytes are already on disk are left untouched (mtime kept), so a folder index stays valid.
Layout: ``{out}/{MRN}/{date}-{study}/{NN}-{series}/{instance:04d}.dcm``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from .dataset import to_bytes
from .studies import all_plans

DEFAULT_OUT = Path("samples")


class Progress:
    """A one-line progress bar on a text stream (stderr); redrawn 20 times a second on a
    terminal, every 2 s elsewhere (logs)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream or sys.stderr
        self.started = self._drawn = time.monotonic()
        self.interval = 0.05 if self.stream.isatty() else 2.0

    def advance(self, step: int = 1) -> None:
        self.done += step
        now = time.monotonic()
        if now - self._drawn >= self.interval:
            self._drawn = now
            self._draw(now)

    def close(self) -> None:
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\rsamples [{bar}] {self.done}/{self.total} {now - self.started:5.1f} s")
        self.stream.flush()


def write_samples(out: Path, progress: bool = True) -> list[Path]:
    """Write every sample study under ``out``; return the files' paths in generation order."""
    plans = all_plans()
    bar = Progress(sum(p.count for p in plans)) if progress else None
    written: list[Path] = []
    seen: set[Path] = set()
    for plan in plans:
        for ds in plan.instances():
            path = out / plan.folder / f"{int(ds.InstanceNumber):04d}.dcm"
            if path in seen:
                raise RuntimeError(f"two sample instances map to {path}")
            seen.add(path)
            write_if_changed(path, to_bytes(ds))
            written.append(path)
            if bar is not None:
                bar.advance()
    if bar is not None:
        bar.close()
    return written


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds exactly it. True when written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")  # hidden: folder scans skip it
    partial.write_bytes(data)
    partial.replace(path)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m smart_imaging_demo.samples.generate [--out DIR]`` (as ``smart-imaging samples``)."""
    parser = argparse.ArgumentParser(
        prog="smart-imaging samples", description="write the demo's sample DICOM studies"
    )
    parser.add_argument("dir", nargs="?", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=f"output folder (default: ./{DEFAULT_OUT})")
    args = parser.parse_args(argv)
    out = args.out or args.dir or DEFAULT_OUT
    started = time.perf_counter()
    files = write_samples(out)
    print(f"{len(files)} files in {out} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
