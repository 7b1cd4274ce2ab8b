"""The demo's sample studies, generated once per test session into a temporary folder."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from smart_imaging_demo.samples.generate import write_samples


@functools.cache
def generated_samples() -> tuple[Path, tuple[Path, ...]]:
    """(folder, files) of one ``write_samples`` run, removed when the session ends."""
    folder = Path(tempfile.mkdtemp(prefix="smart-imaging-samples-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder, tuple(write_samples(folder, progress=False))
