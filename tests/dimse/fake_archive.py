"""A small DIMSE archive (pynetdicom) whose pace the test controls: C-FIND and C-GET.

Real associations on loopback; only the timing is the test's: C-GET sends ``release_first``
instances, then waits for ``gate`` before the rest, so tests can observe a transfer in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as FIND_MODEL,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet as GET_MODEL,
)

from ..orthanc import free_port
from ..sample_dicom import deterministic_uid

AET = "FAKEPACS"


def synthetic_study(tag: str, count: int, patient_id: str = "FAKE-1") -> list[Dataset]:
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
        ds.PatientID, ds.PatientName, ds.Modality = patient_id, "Fake^Patient", "CT"
        ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20240101", 1, number
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = (np.arange(64, dtype="<u2") + number).tobytes()
        out.append(ds)
    return out


class FakeArchive:
    def __init__(self, instances: list[Dataset], release_first: int = 1) -> None:
        self.instances = instances
        self.release_first = release_first
        self.gate = threading.Event()
        self.get_requests = 0
        self.sent = 0
        self.port = free_port()
        ae = AE(ae_title=AET)
        ae.add_supported_context(FIND_MODEL)
        ae.add_supported_context(GET_MODEL)
        ae.add_supported_context(CTImageStorage, ALL_TRANSFER_SYNTAXES, scu_role=False, scp_role=True)
        self._server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_C_FIND, self._find), (evt.EVT_C_GET, self._get)],
        )

    @property
    def endpoint(self) -> str:
        return f"dimse://127.0.0.1:{self.port}"

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        first = self.instances[0]
        answer = Dataset()
        answer.QueryRetrieveLevel = "STUDY"
        answer.StudyInstanceUID = first.StudyInstanceUID
        answer.PatientID = first.PatientID
        answer.SOPClassesInStudy = CTImageStorage
        yield 0xFF00, answer

    def _get(self, event: Any) -> Iterator[Any]:
        self.get_requests += 1
        yield len(self.instances)
        for number, ds in enumerate(self.instances):
            if number == self.release_first:
                while not self.gate.wait(0.05):
                    if event.is_cancelled or _peer_gone(event.assoc):
                        return
            if event.is_cancelled:
                yield 0xFE00, None
                return
            self.sent += 1
            yield 0xFF00, ds

    def close(self) -> None:
        self.gate.set()
        self._server.shutdown()


def _peer_gone(assoc: Any) -> bool:
    """True once the requestor aborted: the handler blocks the reactor, so ask the DUL."""
    return bool(assoc.dul.state_machine.current_state == "Sta1")
