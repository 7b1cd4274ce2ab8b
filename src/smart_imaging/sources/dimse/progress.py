"""What a C-GET or C-MOVE says about its sub-operations, and whether it delivered everything.

PS3.4 C.4.2.1.5 (C-MOVE) and C.4.3.1.3 (C-GET): Pending responses may carry the Number of
Remaining, Completed, Failed and Warning Sub-operations; the final response carries Completed,
Failed and Warning. A retrieve counts as complete only when it ends with Success, without
failed or warning sub-operations, having completed as many sub-operations as it ever announced
(remaining + completed + failed + warning in any response), with every completed instance
received here and at least as many instances as C-FIND listed for the key (PS3.4 C.6.1.1.4:
Number of Study/Series Related Instances). Anything less is an ``UpstreamError``, so a study
that could not be delivered whole never ends as a success.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from ...errors import NotFound, SmartImagingError, UpstreamError, UpstreamTimeout

SUCCESS, PENDING = 0x0000, (0xFF00, 0xFF01)
_COUNTS = (
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)
TIMED_OUT = 0.9  # a wait of at least this share of a pynetdicom timeout ended by that timeout


@dataclass(frozen=True)
class Outcome:
    """The final response of a retrieve: its status and sub-operation counts."""

    status: int
    completed: int = 0
    failed: int = 0
    warned: int = 0
    announced: int = 0  # the largest sub-operation total of any response


@dataclass
class Progress:
    """Responses and C-STOREs of one retrieve as they come (the worker thread's record)."""

    method: str  # "C-GET" or "C-MOVE"
    peer: str  # the archive, as named in messages
    timeout: float  # the DIMSE timeout pynetdicom applies to each wait
    announced: int = 0
    completed: int = 0
    stored: int = 0
    final: Dataset | None = None
    _active: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stored_one(self) -> None:
        """A C-STORE sub-operation arrived on this association (C-GET)."""
        with self._lock:
            self.stored += 1
            self._active = time.monotonic()

    def response(self, status: Dataset) -> bool:
        """Note one response that carries a Status; True when it is the final one."""
        counts = [_count(status, keyword) for keyword in _COUNTS]
        with self._lock:
            self._active = time.monotonic()
            self.announced = max(self.announced, sum(counts))
            self.completed = max(self.completed, counts[1])
        if int(status.Status) in PENDING:
            return False
        self.final = status
        return True

    def interrupted(self, calling_ae: str) -> SmartImagingError:
        """The error for a response without Status: the association ended or timed out."""
        silent = time.monotonic() - self._active
        if silent >= self.timeout * TIMED_OUT:
            return UpstreamTimeout(
                f"{self.peer} sent nothing for {silent:.0f} s during {self.method} "
                f"after {self._done()} instance(s); the transfer was abandoned"
            )
        if self.stored or self.completed or self.announced:
            return UpstreamError(
                f"{self.peer} ended the association during {self.method} after {self._done()} "
                f"of {self.announced or 'an unknown number of'} instances"
            )
        return UpstreamError(
            f"{self.peer} aborted or stopped answering {self.method}: does it "
            f"allow our AE title {calling_ae} to do that?"
        )

    def outcome(self) -> Outcome:
        """The final response's status and counts; ``check_delivery`` judges them."""
        final = self.final
        if final is None:
            raise UpstreamError(f"{self.peer} sent no {self.method} response")
        _, completed, failed, warned = (_count(final, keyword) for keyword in _COUNTS)
        return Outcome(int(final.Status), completed, failed, warned, self.announced)

    def _done(self) -> int:
        return max(self.stored, self.completed)


def check_delivery(outcome: Outcome, received: int, listed: int | None, peer: str, method: str) -> None:
    """Raise unless the retrieve delivered everything (PS3.4 C.4.2.1.5, C.4.3.1.3).

    ``received``: distinct instances that arrived for the key; ``listed``: what C-FIND
    announced for the key (None when unknown). ``NotFound`` only when nothing was announced
    anywhere and the archive ended with Success or "Unable to process" (0xCxxx, what Orthanc
    answers for unknown UIDs) before any sub-operation; ``UpstreamError`` for everything else.
    """
    code = outcome.status
    if _nothing_matched(outcome, received, listed):
        raise NotFound(f"no such study, series or instance in the archive (status 0x{code:04X})")
    if code != SUCCESS or outcome.failed or outcome.warned:
        raise UpstreamError(
            f"{peer} ended {method} with status 0x{code:04X} ({outcome.completed} sent, "
            f"{outcome.failed} failed, {outcome.warned} with warnings)"
        )
    if outcome.announced > outcome.completed:
        raise UpstreamError(
            f"{peer} ended {method} with Success after {outcome.completed} of "
            f"{outcome.announced} announced sub-operations"
        )
    if outcome.completed > received:
        raise UpstreamError(f"{peer} reported {outcome.completed} instances sent but {received} arrived")
    if listed is not None and received < listed:
        raise UpstreamError(
            f"{peer} lists {listed} instances for this request (C-FIND) but {method} delivered {received}"
        )


def _nothing_matched(outcome: Outcome, received: int, listed: int | None) -> bool:
    counts = (outcome.completed, outcome.failed, outcome.warned, outcome.announced, received, listed)
    return not any(counts) and (outcome.status == SUCCESS or outcome.status & 0xF000 == 0xC000)


def _count(status: Dataset, keyword: str) -> int:
    try:
        value = int(status.get(keyword, 0) or 0)
    except (TypeError, ValueError):
        return 0
    return value if 0 <= value <= 0xFFFF else 0  # US (PS3.7 C.4.2.1, C.4.3.1)
