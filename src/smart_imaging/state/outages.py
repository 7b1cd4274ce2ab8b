"""Whether a remote store is up, and what is logged about it: one warning when an outage begins,
one line when the store is back, nothing per request in between.

While the store is down, callers skip it (``should_try`` is False) for ``retry_interval`` seconds,
then one caller tries again (a probe) while the others keep skipping: an unreachable host costs
one timeout per interval, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("smart_imaging.state")

RETRY_INTERVAL = 1.0


class Outages:
    def __init__(
        self,
        name: str,
        retry_interval: float = RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name  # what the log lines call the store (never credentials)
        self.retry_interval = retry_interval
        self._clock = clock
        self.down = False
        self.outages = 0  # outages begun since the start (metrics, tests)
        self._next_try = 0.0

    def should_try(self) -> bool:
        """True when the store is up, or when it is this caller's turn to probe it."""
        if not self.down:
            return True
        now = self._clock()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_interval  # the others wait for this probe
        return True

    def failed(self, exc: BaseException) -> None:
        self._next_try = self._clock() + self.retry_interval
        if self.down:
            return
        self.down = True
        self.outages += 1
        log.warning(
            "%s is unreachable (%s): caches serve on in this process, dual-launch authorization "
            "answers 503; retrying every %g s",
            self.name,
            type(exc).__name__,
            self.retry_interval,
        )

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            log.info("%s is reachable again: state is shared again", self.name)
