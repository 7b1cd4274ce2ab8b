"""Blocking DIMSE service users (pynetdicom): C-FIND, C-GET and C-MOVE. Run these in threads.

Statuses are data (PS3.7 C, PS3.4 C.4): Pending answers carry results, Success ends the
operation, anything else becomes an ``UpstreamError`` naming the status. How a retrieve's
responses are judged (counts, aborts, silence) is ``progress``'s job (PS3.4 C.4.2.1.5, C.4.3.1.3).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, _config, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import StoragePresentationContexts
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind as FIND_MODEL,
)
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet as GET_MODEL,
)
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelMove as MOVE_MODEL,
)

from ...errors import SmartImagingError, UpstreamError, UpstreamTimeout
from ...versions import written_for
from .part10 import EncodedDataSet, InstanceKeys, SpooledDataSet, read_keys
from .progress import PENDING, SUCCESS, TIMED_OUT, Outcome, Progress
from .spool import SPOOLS, close_spool, spool_path, unlink
from .spool import discard_spools as discard_spools
from .spool import track_spool as track_spool

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)
MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1..255
REFUSED_OUT_OF_RESOURCES = 0xA702
CANNOT_UNDERSTAND = 0xC000

#: Receives one C-STORE data set (already in its transfer syntax) and returns a DIMSE status.
#: A spooled data set's file is deleted once the receiver returns.
Receiver = Callable[[InstanceKeys, EncodedDataSet], int]


def receive_to_files() -> bool:
    """Have pynetdicom write every received C-STORE data set to a temporary file as it arrives.

    pynetdicom otherwise collects the P-DATA of a data set in memory, so one large instance
    (a whole-slide image, a long multi-frame) made memory jump by its size.
    ``STORE_RECV_CHUNKED_DATASET`` is process-wide; the only C-STORE receivers in this process
    are ours (``store_event`` for C-GET and the C-MOVE storage SCP), and they handle both
    modes. The temporary files go to the system temporary directory (``TMPDIR``); each is
    deleted once handled, or when its association ends (see ``discard_spools``). ``_config`` is
    private: pynetdicom 3.0 only (``versions.written_for``); the DIMSE source calls this when built.
    """
    if not written_for("pynetdicom", "3.0", "spooling received data sets to files"):
        return False
    _config.STORE_RECV_CHUNKED_DATASET = True
    return True


@dataclass(frozen=True)
class Peer:
    """The archive, and who we are to it."""

    host: str
    port: int
    called_ae: str
    calling_ae: str
    timeout: float

    @classmethod
    def from_endpoint(cls, endpoint: str, called_ae: str, calling_ae: str, timeout: float) -> Peer:
        parts = urlsplit(endpoint)
        return cls(parts.hostname or "", parts.port or 104, called_ae, calling_ae, timeout)

    def describe(self) -> str:
        return f"DICOM archive {self.called_ae} at {self.host}:{self.port}"


class Cancel:
    """Lets the event loop stop a retrieve running in a worker thread, without blocking.

    ``abort(block=False)`` only queues the A-ABORT; the worker thread stays in
    ``send_c_get``/``send_c_move``, blocked on the association's DIMSE message queue.
    pynetdicom wakes that queue when the *peer* aborts or drops the connection, but not after
    our own abort when the peer then just closes the connection (Sta13 + Evt17, AR-5), so the
    worker would sit out the whole DIMSE timeout. A single wake-up item would not do either:
    the abort also restarts the association's reactor thread, which takes whatever it finds
    on that queue. So ``bind`` gives the association a queue that can be closed: once closed
    and empty it answers every wait at once with pynetdicom's own "no message" item, the
    response generator ends and the worker raises "retrieval cancelled".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assoc: Association | None = None
        self._messages: _ClosableQueue | None = None
        self.requested = False

    def bind(self, assoc: Association) -> None:
        """Attach an established association before any DIMSE request is sent on it.

        Raises ``UpstreamError`` when the retrieve was cancelled before this point.
        """
        messages = _ClosableQueue()
        old, assoc.dimse.msg_queue = assoc.dimse.msg_queue, messages
        while not old.empty():  # nothing is expected before our request, but keep it all
            messages.put(old.get_nowait())
        with self._lock:
            self._assoc, self._messages = assoc, messages
            if self.requested:
                self._abort()
                raise UpstreamError("retrieval cancelled")

    def __call__(self) -> None:
        with self._lock:
            if not self.requested:
                self.requested = True
                self._abort()

    def _abort(self) -> None:
        if self._assoc is not None and self._messages is not None:
            if self._assoc.is_established:
                self._assoc.abort(block=False)  # queues the A-ABORT for the DUL thread
            self._messages.close()


class _ClosableQueue(queue.Queue[Any]):
    """A DIMSE message queue that, once closed and drained, answers ``(None, None)`` at once.

    Only the documented ``queue.Queue`` extension points are overridden, so ``get`` with or
    without a timeout keeps its semantics until ``close`` wakes its waiters.
    """

    closed = False

    def _qsize(self) -> int:
        return len(self.queue) or int(self.closed)

    def _get(self) -> Any:
        return self.queue.popleft() if self.queue else (None, None)

    def close(self) -> None:
        with self.not_empty:
            self.closed = True
            self.not_empty.notify_all()


# ---------------------------------------------------------------- associations


def _new_ae(peer: Peer) -> AE:
    """An AE whose waits all end after ``peer.timeout``.

    The idle-network timeout is a little longer than the DIMSE one: when both expired at once,
    pynetdicom's reactor and the waiting worker thread both aborted, and the second A-ABORT
    crashed the DUL thread (InvalidEventError, Evt15 in Sta13). The DIMSE timeout alone ends a
    silent retrieve, and ``progress`` reports it as a timeout.
    """
    ae = AE(ae_title=peer.calling_ae)
    ae.acse_timeout = peer.timeout
    ae.dimse_timeout = peer.timeout
    ae.network_timeout = peer.timeout + 2.0
    ae.connection_timeout = min(peer.timeout, 10.0)
    return ae


@contextmanager
def _associate(ae: AE, peer: Peer, **kwargs: Any) -> Iterator[Association]:
    started = time.monotonic()
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.called_ae, **kwargs)
    if not assoc.is_established:
        raise _refusal(assoc, peer, time.monotonic() - started, ae.connection_timeout or peer.timeout)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        assoc.kill()


def _refusal(assoc: Association, peer: Peer, waited: float, limit: float) -> SmartImagingError:
    """Why no association: rejected, silent until a timeout (504), or refused or aborted."""
    if assoc.is_rejected:
        return UpstreamError(
            f"{peer.describe()} rejected the association: is our AE title {peer.calling_ae} registered there?"
        )
    if waited >= limit * TIMED_OUT:
        return UpstreamTimeout(f"{peer.describe()} did not answer the association request in {waited:.0f} s")
    return UpstreamError(f"{peer.describe()} is not reachable or aborted the association")


class FindSession:
    """One association carrying any number of Study Root C-FINDs in turn."""

    def __init__(self, assoc: Association, peer: Peer) -> None:
        self._assoc = assoc
        self._peer = peer

    def find(self, identifier: Dataset) -> list[Dataset]:
        answers: list[Dataset] = []
        waiting = time.monotonic()
        for status, found in self._assoc.send_c_find(identifier, FIND_MODEL):
            if status is None or "Status" not in status:
                silent = time.monotonic() - waiting
                if silent >= self._peer.timeout * TIMED_OUT:
                    raise UpstreamTimeout(
                        f"{self._peer.describe()} sent nothing for {silent:.0f} s during C-FIND"
                    )
            code = _status(status, self._peer, "C-FIND")
            waiting = time.monotonic()
            if code in PENDING and found is not None:
                answers.append(found)
            elif code != SUCCESS:
                raise UpstreamError(f"{self._peer.describe()} answered C-FIND with status 0x{code:04X}")
        return answers


@contextmanager
def find_session(peer: Peer) -> Iterator[FindSession]:
    ae = _new_ae(peer)
    ae.add_requested_context(FIND_MODEL)
    with _associate(ae, peer) as assoc:
        yield FindSession(assoc, peer)


# ---------------------------------------------------------------- retrieve


def retrieve(
    peer: Peer,
    method: Literal["c-get", "c-move"],
    identifier: Dataset,
    sop_classes: Sequence[str],
    receive: Receiver,
    cancel: Cancel,
    move_destination: str = "",
    message_id: int = 1,
) -> Outcome:
    """C-GET (data comes back on this association) or C-MOVE (to our storage SCP).

    Returns the outcome of a retrieve that ended with Success; raises ``UpstreamError`` (or
    ``UpstreamTimeout``) when it ended otherwise, was aborted or the archive fell silent.
    """
    progress = Progress(method.upper(), peer.describe(), peer.timeout)
    ae = _new_ae(peer)
    if method == "c-get":
        roles, handlers = _get_contexts(ae, sop_classes, progress, receive)
    else:
        ae.add_requested_context(MOVE_MODEL)
        roles, handlers = [], []
    established: list[Association] = []
    try:
        with _associate(ae, peer, ext_neg=roles, evt_handlers=handlers) as assoc:
            established.append(assoc)
            cancel.bind(assoc)
            if method == "c-get":
                responses = assoc.send_c_get(identifier, GET_MODEL, msg_id=message_id)
            else:
                responses = assoc.send_c_move(identifier, move_destination, MOVE_MODEL, msg_id=message_id)
            _follow(responses, progress, cancel, peer)
    finally:
        for assoc in established:  # released or killed by now: its DUL thread has stopped
            discard_spools(assoc)
    return progress.outcome()


def _get_contexts(
    ae: AE, sop_classes: Sequence[str], progress: Progress, receive: Receiver
) -> tuple[list[Any], list[Any]]:
    """C-GET: the storage contexts the data comes back on, our SCP role for each, and the
    handlers that receive each C-STORE (and track its spool file)."""
    ae.add_requested_context(GET_MODEL)
    for sop_class, syntaxes in storage_contexts(sop_classes, MAX_CONTEXTS - 1):
        ae.add_requested_context(sop_class, list(syntaxes))
    roles = [build_role(c, scp_role=True) for c in dict.fromkeys(sop_classes or _DEFAULT)]
    handlers = [
        (evt.EVT_C_STORE, lambda event: _stored(progress, store_event(event, receive))),
        (evt.EVT_DIMSE_RECV, track_spool),
    ]
    return roles, handlers


def _follow(responses: Iterator[tuple[Dataset, Any]], progress: Progress, cancel: Cancel, peer: Peer) -> None:
    """Read responses up to the final one; an empty status means the association ended."""
    for status, _ in responses:
        if cancel.requested:
            raise UpstreamError("retrieval cancelled")
        if status is None or "Status" not in status:
            raise progress.interrupted(peer.calling_ae)
        if progress.response(status):
            return


def _stored(progress: Progress, status: int) -> int:
    if status == SUCCESS:
        progress.stored_one()
    return status


def _status(status: Dataset | None, peer: Peer, what: str) -> int:
    if status is not None and "Status" in status:
        return int(status.Status)
    # pynetdicom aborts on its own timeouts too, so a peer's abort and silence look alike
    raise UpstreamError(
        f"{peer.describe()} aborted or stopped answering {what}: does it "
        f"allow our AE title {peer.calling_ae} to do that?"
    )


# ---------------------------------------------------------------- storage


_DEFAULT = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]


def storage_contexts(sop_classes: Sequence[str], limit: int) -> list[tuple[str, tuple[str, ...]]]:
    """Presentation contexts to receive ``sop_classes`` in the archive's own transfer syntax.

    One context per (class, syntax) lets the archive pick the context matching the stored
    file, so it need not transcode (PS3.4 C.4.3.3). When that is too many, one context per
    class with every syntax; without known classes, the common storage classes.
    """
    classes = list(dict.fromkeys(sop_classes)) or _DEFAULT
    if len(classes) * len(TRANSFER_SYNTAXES) <= limit:
        return [(c, (ts,)) for c in classes for ts in TRANSFER_SYNTAXES]
    return [(c, TRANSFER_SYNTAXES) for c in classes[:limit]]


def store_event(event: Any, receive: Receiver) -> int:
    """EVT_C_STORE handler: pass the encoded data set on without decoding it.

    With ``receive_to_files`` the data set is pynetdicom's temporary Part-10 file, handed on
    as a ``SpooledDataSet`` (never loaded) and deleted here whatever the outcome; otherwise
    it is the bytes pynetdicom collected in memory.
    """
    request = event.request
    spooled = spool_path(request)
    try:
        dataset: EncodedDataSet
        if spooled is not None:
            close_spool(request)  # pynetdicom leaves it open for writing on C-GET
            dataset = SpooledDataSet.of_part10(spooled)
        else:
            dataset = event.encoded_dataset(include_meta=False)
        keys = read_keys(
            dataset,
            request.AffectedSOPClassUID,
            request.AffectedSOPInstanceUID,
            event.context.transfer_syntax,
        )
    except Exception as exc:  # noqa: BLE001 - an unreadable data set fails this sub-operation only
        log.warning("could not read a received data set: %s", exc)
        return CANNOT_UNDERSTAND
    else:
        return receive(keys, dataset)
    finally:
        if spooled is not None:
            SPOOLS.remove(event.assoc, spooled)
            unlink(spooled)
