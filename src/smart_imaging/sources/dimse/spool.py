"""pynetdicom's temporary files of received data sets (``scu.receive_to_files``), deleted
whatever becomes of them: see ``SpoolRegistry``."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SpoolRegistry:
    """pynetdicom's temporary files of received data sets, by association, until handled.

    pynetdicom deletes a spooled file only after a storage SCP's handler ran, never on C-GET,
    and not for data sets that were received but never handled (an abort or cancel while they
    waited in the DIMSE queue, a C-STORE on a context it refuses). ``track_spool`` notes every
    completed one; ``discard_spools`` deletes what is left when the association ends, and the
    data set being received at that moment.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[Any, set[Path]] = {}

    def add(self, assoc: Any, path: Path) -> None:
        with self._lock:
            self._paths.setdefault(assoc, set()).add(path)

    def remove(self, assoc: Any, path: Path) -> None:
        with self._lock:
            self._paths.get(assoc, set()).discard(path)

    def pop(self, assoc: Any) -> set[Path]:
        with self._lock:
            return self._paths.pop(assoc, set())


SPOOLS = SpoolRegistry()


def track_spool(event: Any) -> None:
    """EVT_DIMSE_RECV handler (DUL thread, before the message is queued)."""
    path = getattr(event.message, "_data_set_path", None)
    if isinstance(path, Path):
        SPOOLS.add(event.assoc, path)


def discard_spools(assoc: Any) -> None:
    """Delete the spooled files of an association that has ended (or whose DUL has stopped)."""
    paths = SPOOLS.pop(assoc)
    receiving = getattr(getattr(assoc, "dimse", None), "message", None)
    partial = getattr(receiving, "_data_set_file", None)
    if partial is not None:  # a data set cut off by the end of the association
        with contextlib.suppress(OSError):
            partial.close()
        paths.add(Path(partial.name))
    for path in paths:
        unlink(path)


def spool_path(request: Any) -> Path | None:
    path = getattr(request, "_dataset_path", None)
    return path if isinstance(path, Path) else None


def close_spool(request: Any) -> None:
    spool = getattr(request, "_dataset_file", None)
    if spool is not None:
        spool.close()


def unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not delete a received data set's temporary file: %s", exc)
