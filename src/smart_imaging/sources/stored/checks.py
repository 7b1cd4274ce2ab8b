"""Is a file still the one described (by the folder index, or as a DIMSE transfer received it)?
Blocking: call from a thread.

The folder index records each file's size and modification time as it read it, and whether the file
was whole (``completeness``). Before an answer starts, every file it needs is checked: a file
that changed makes the source rescan, one that is cut short is a 502. While an answer streams,
each file is checked again when it is opened and after it is read, so a file truncated,
rewritten or removed meanwhile breaks the stream instead of ending it with a short part: a
study whose instances cannot all be delivered is never a success. Messages name the SOP
Instance UID, never the file's path (the log has the path).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TypeVar

from ...errors import SmartImagingError, UpstreamError
from .instance import StoredInstance

log = logging.getLogger(__name__)
T = TypeVar("T")


def stale(item: StoredInstance) -> bool:
    """True when the file is gone or differs from what the index read (a rescan may help)."""
    try:
        return changed(item, item.path.stat())
    except OSError:
        return True


def changed(item: StoredInstance, stat: os.stat_result) -> bool:
    if item.size is None or item.mtime_ns is None:
        return False
    return (stat.st_size, stat.st_mtime_ns) != (item.size, item.mtime_ns)


def problem(item: StoredInstance) -> UpstreamError | None:
    """Why ``item`` cannot be served as a whole instance now, or None."""
    try:
        stat = item.path.stat()
    except OSError as exc:
        return unreadable(item, exc)
    if changed(item, stat):
        return _error(item, "changed on disk while it was being read")
    if not item.complete:
        return _error(item, "is incomplete on disk (truncated, or still being copied)")
    return None


def check_unchanged(item: StoredInstance, stat: os.stat_result) -> None:
    """Raise ``UpstreamError`` when the open file (``stat``) is not the indexed one."""
    if changed(item, stat):
        raise _error(item, "changed on disk while it was being served")


def read_checked(item: StoredInstance, work: Callable[[], T], doing: str = "read") -> T:
    """``work()`` reads (and decodes) ``item``'s file; afterwards the file must still be the
    indexed one, whole. Any failure is an ``UpstreamError``: damaged data is the archive's."""
    try:
        result = work()
    except SmartImagingError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or doing == "read":
            raise unreadable(item, exc) from exc
        raise _error(item, f"could not be {doing} ({type(exc).__name__})") from exc
    error = problem(item)
    if error is not None:
        raise error
    return result


def cut_short(item: StoredInstance) -> UpstreamError:
    return _error(item, "was truncated while being served")


def unreadable(item: StoredInstance, exc: BaseException) -> UpstreamError:
    log.warning("could not read %s: %s", item.path, exc)
    what = "vanished from the image folder" if isinstance(exc, FileNotFoundError) else "could not be read"
    return UpstreamError(f"instance {item.sop_instance_uid} {what}")


def _error(item: StoredInstance, what: str) -> UpstreamError:
    log.warning("%s %s", item.path, what)
    return UpstreamError(f"instance {item.sop_instance_uid} {what}")
