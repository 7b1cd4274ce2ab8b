"""What answering from a stored Part-10 file needs to know about it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredInstance:
    """One instance in a Part-10 file: the folder index's row, or a file a DIMSE transfer received.

    ``size`` and ``mtime_ns`` are the file as indexed or received (None: not checked, for files
    that no one else writes); ``complete`` is the folder index's structural verdict
    (``folder.completeness``). ``number_of_frames``, ``has_pixels`` and ``bits_allocated`` are
    only needed for frames and metadata, and only filled in where the header was read.
    """

    path: Path
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    number_of_frames: int = 1
    has_pixels: bool = True
    bits_allocated: int = 16
    size: int | None = None
    mtime_ns: int | None = None
    complete: bool = True
