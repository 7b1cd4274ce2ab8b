"""A small DIMSE archive (pynetdicom) whose pace and faults the test controls: C-FIND, C-GET, C-MOVE.

Real associations on loopback; only the timing and the faults are the test's: a retrieve sends
``release_first`` instances, then waits for ``gate`` before the rest, so tests can observe a
transfer in flight. With ``stop_after`` it sends that many instances and then ends as
``ending`` says: ``"success"`` (a final Success counting only what was sent), ``"failure"``
(0xA702 with the rest counted as failed), ``"warning"`` (0xB000), ``"abort"`` (an A-ABORT) or
``"drop"`` (the TCP connection closed, as when the archive dies). C-FIND answers STUDY, SERIES
and IMAGE levels (with PatientID at every level, as Orthanc does; ``strict`` refuses that key
below STUDY level) and announces ``listed`` instances (default: all of them) at STUDY and
SERIES level; ``announce`` overrides the sub-operation count a retrieve starts with.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as FIND_MODEL,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet as GET_MODEL,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelMove as MOVE_MODEL,
)

from ..orthanc import free_port
from ..sample_dicom import deterministic_uid

AET = "FAKEPACS"
Ending = Literal["success", "failure", "warning", "abort", "drop"]
_FINAL = {"success": 0x0000, "failure": 0xA702, "warning": 0xB000}


def synthetic_study(tag: str, count: int, mrn: str = "FAKE-1", size: int = 8) -> list[Dataset]:
    study = deterministic_uid(tag, "study")
    series = deterministic_uid(tag, "series")
    out = []
    for number in range(1, count + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = deterministic_uid(tag, "instance", str(number))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName, ds.Modality = mrn, "Fake^Patient", "CT"
        ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20240101", 1, number
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = ((np.arange(size * size, dtype="<u4") + number) % 4096).astype("<u2").tobytes()
        out.append(ds)
    return out


class FakeArchive:
    def __init__(
        self,
        instances: list[Dataset],
        release_first: int = 1,
        destinations: dict[str, int] | None = None,
    ) -> None:
        self.instances = instances
        self.release_first = release_first
        self.destinations = dict(destinations or {})  # C-MOVE: AE title -> port on 127.0.0.1
        self.stop_after: int | None = None
        self.ending: Ending = "success"
        self.listed: int | None = None
        self.announce: int | None = None
        self.strict = False  # refuse keys of a higher level (PatientID below STUDY), PS3.4 C.4.1.2.1
        self.gate = threading.Event()
        self.get_requests = 0
        self.move_requests = 0
        self.sent = 0
        self.port = free_port()
        ae = AE(ae_title=AET)
        ae.add_supported_context(FIND_MODEL)
        ae.add_supported_context(GET_MODEL)
        ae.add_supported_context(MOVE_MODEL)
        ae.add_supported_context(CTImageStorage, ALL_TRANSFER_SYNTAXES, scu_role=False, scp_role=True)
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)  # C-MOVE sub-associations
        self._server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[
                (evt.EVT_C_FIND, self._find),
                (evt.EVT_C_GET, self._get),
                (evt.EVT_C_MOVE, self._move),
            ],
        )

    @property
    def endpoint(self) -> str:
        return f"dimse://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ C-FIND

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        level = str(query.get("QueryRetrieveLevel", "STUDY"))
        if self.strict and level != "STUDY" and "PatientID" in query:
            yield 0xA900, None  # Identifier does not match SOP Class
            return
        for answer in self._answers(level):
            if all(
                _matches(query, answer, key) for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")
            ):
                yield 0xFF00, answer

    def _answers(self, level: str) -> list[Dataset]:
        first = self.instances[0]
        listed = len(self.instances) if self.listed is None else self.listed
        answer = Dataset()
        answer.QueryRetrieveLevel = level
        answer.StudyInstanceUID, answer.PatientID = first.StudyInstanceUID, first.PatientID
        if level == "STUDY":
            answer.PatientName, answer.StudyDate = first.PatientName, first.StudyDate
            answer.SOPClassesInStudy, answer.ModalitiesInStudy = CTImageStorage, "CT"
            answer.NumberOfStudyRelatedSeries, answer.NumberOfStudyRelatedInstances = 1, listed
            return [answer]
        answer.SeriesInstanceUID, answer.Modality, answer.SeriesNumber = first.SeriesInstanceUID, "CT", 1
        if level == "SERIES":
            answer.NumberOfSeriesRelatedInstances = listed
            return [answer]
        out = []
        for ds in self.instances:
            one = Dataset()
            one.QueryRetrieveLevel = level
            one.StudyInstanceUID, one.SeriesInstanceUID = ds.StudyInstanceUID, ds.SeriesInstanceUID
            one.PatientID = ds.PatientID
            one.SOPInstanceUID, one.SOPClassUID, one.InstanceNumber = (
                ds.SOPInstanceUID,
                ds.SOPClassUID,
                ds.InstanceNumber,
            )
            out.append(one)
        return out

    # ------------------------------------------------------------ C-GET, C-MOVE

    def _get(self, event: Any) -> Iterator[Any]:
        self.get_requests += 1
        yield from self._send(event)

    def _move(self, event: Any) -> Iterator[Any]:
        self.move_requests += 1
        port = self.destinations.get(str(event.move_destination).strip())
        if port is None:
            yield None, None
            return
        yield "127.0.0.1", port
        yield from self._send(event)

    def _send(self, event: Any) -> Iterator[Any]:
        wanted = self._wanted(event.identifier)
        yield len(wanted) if self.announce is None else self.announce
        for number, ds in enumerate(wanted):
            if number == self.stop_after:
                yield from self._end(event)
                return
            if number == self.release_first:
                while not self.gate.wait(0.05):
                    if event.is_cancelled or _peer_gone(event.assoc):
                        return
            if event.is_cancelled:
                yield 0xFE00, None
                return
            self.sent += 1
            yield 0xFF00, ds
        if self.stop_after is not None and self.stop_after >= len(wanted):
            yield from self._end(event)

    def _wanted(self, query: Dataset) -> list[Dataset]:
        return [
            ds
            for ds in self.instances
            if all(
                _matches(query, ds, key)
                for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
            )
        ]

    def _end(self, event: Any) -> Iterator[Any]:
        if self.ending == "abort":
            event.assoc.abort()
        elif self.ending == "drop":
            raw = event.assoc.dul.socket.socket
            raw.shutdown(socket.SHUT_RDWR)  # the peer sees the connection end, no A-ABORT
        else:
            failed = Dataset()
            failed.FailedSOPInstanceUIDList = ""
            yield _FINAL[self.ending], None if self.ending == "success" else failed

    def close(self) -> None:
        self.gate.set()
        self._server.shutdown()


def _matches(query: Dataset, answer: Dataset, keyword: str) -> bool:
    value = query.get(keyword)
    values = list(value) if isinstance(value, MultiValue) else [value]
    wanted = [w for w in (str(v or "").strip("\x00 ") for v in values) if w]
    if not wanted or any("*" in w or "?" in w for w in wanted):
        return True
    return str(answer.get(keyword, "")).strip("\x00 ") in wanted


def _peer_gone(assoc: Any) -> bool:
    """True once the requestor aborted: the handler blocks the reactor, so ask the DUL."""
    return bool(assoc.dul.state_machine.current_state == "Sta1")
