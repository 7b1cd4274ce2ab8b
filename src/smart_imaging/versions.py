"""Guards for adjustments that reach into a library's private parts (issue 9.7).

Two settings go beyond a library's public API: httpcore's body read size (``http_client``) and
pynetdicom's spooling of received data sets to files (``sources.dimse.scu``). Neither is applied
at import time: each is an explicit call made at start-up (the app's HTTP client, the DIMSE
source), and each first asks :func:`written_for` whether the installed release is the one the
adjustment was written and tested against. On another release the adjustment is skipped with a
warning and the library's default behaviour stays; the server keeps working, only slower or
with more memory.
"""

from __future__ import annotations

import functools
import logging
from importlib import metadata

log = logging.getLogger(__name__)


def release_series(version: str) -> str:
    """``"3.0.4"`` -> ``"3.0"``: the major.minor series of a version string."""
    return ".".join(version.split(".")[:2])


@functools.cache
def written_for(distribution: str, series: str, adjustment: str) -> bool:
    """Whether the installed ``distribution`` is of the release ``series`` (major.minor, e.g.
    ``"1.0"``) that ``adjustment`` was written for. If not (or it is not installed), one warning
    per process names both versions and the adjustment that is skipped."""
    try:
        installed = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        installed = "(not installed)"
    if release_series(installed) == series:
        return True
    log.warning(
        "%s %s installed, but %s was written for %s %s.x: skipped, the library's default applies",
        distribution,
        installed,
        adjustment,
        distribution,
        series,
    )
    return False
