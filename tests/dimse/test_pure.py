"""Pure parts of the DIMSE source: identifiers, answers, Part-10 writing, presentation
contexts, cache eviction, cancellation of a blocked retrieve."""

from __future__ import annotations

import asyncio
import io
import queue
import threading
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian
from pynetdicom.dsutils import create_file_meta

from smart_imaging.errors import UpstreamError
from smart_imaging.sources.base import StudyQuery
from smart_imaging.sources.dimse import identifiers as ids
from smart_imaging.sources.dimse.cache import TransferCache
from smart_imaging.sources.dimse.part10 import (
    InstanceFile,
    InstanceKeys,
    SpooledDataSet,
    dataset_offset,
    read_keys,
    write_instance,
)
from smart_imaging.sources.dimse.scu import (
    MAX_CONTEXTS,
    TRANSFER_SYNTAXES,
    Cancel,
    discard_spools,
    storage_contexts,
    store_event,
    track_spool,
)
from smart_imaging.sources.dimse.transfer import State, Transfer, TransferKey

from ..sample_dicom import to_bytes
from .fake_archive import synthetic_study


def test_mrns_that_cannot_match_are_never_sent() -> None:
    assert ids.study_identifier(StudyQuery("")) is None
    assert ids.study_identifier(StudyQuery("  ")) is None
    assert ids.study_identifier(StudyQuery("A\\B")) is None
    everything = ids.study_identifier(StudyQuery(None))
    assert everything is not None and "PatientID" in everything and not everything.PatientID


def test_answers_are_filtered_to_the_exact_mrn_and_study_uids() -> None:
    study = {"00100020": {"vr": "LO", "Value": ["7765X033"]}, "0020000D": {"vr": "UI", "Value": ["1.2.3"]}}
    assert not StudyQuery("7765?033").matches(study)
    assert StudyQuery("7765X033 ").matches(study)
    assert not StudyQuery(None, ("1.2.4",)).matches(study)
    assert StudyQuery(None, ("1.2.3",)).matches(study)


def test_padding_of_odd_length_values_is_stripped() -> None:
    answer = Dataset()
    answer.StudyInstanceUID = "1.2.33\x00"
    answer.PatientName = "Doe^Jane "
    answer.ModalitiesInStudy = ["CT", "MR "]
    answer.SOPClassesInStudy = [CTImageStorage + "\x00"]
    found = ids.to_json(answer, ("0020000D", "00100010", "00080061"))
    assert found["0020000D"]["Value"] == ["1.2.33"]
    assert found["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    assert found["00080061"]["Value"] == ["CT", "MR"]
    assert ids.sop_classes(answer) == [CTImageStorage]


def test_retrieve_identifier_uses_the_deepest_level() -> None:
    assert ids.retrieve_identifier("1.2").QueryRetrieveLevel == "STUDY"
    assert ids.retrieve_identifier("1.2", "1.3").QueryRetrieveLevel == "SERIES"
    assert ids.retrieve_identifier("1.2", "1.3", "1.4").SOPInstanceUID == "1.4"


def test_received_data_sets_are_written_unchanged(tmp_path: Path) -> None:
    original = to_bytes(synthetic_study("pure", 1)[0])
    dataset = original[dataset_offset(original) :]
    ds = pydicom.dcmread(io.BytesIO(original))
    keys = read_keys(dataset, ds.SOPClassUID + "\x00", ds.SOPInstanceUID, ExplicitVRLittleEndian)
    assert keys.study_uid == ds.StudyInstanceUID and keys.series_uid == ds.SeriesInstanceUID
    written = write_instance(tmp_path, keys, dataset, "ARCHIVE")
    data = written.path.read_bytes()
    assert data[dataset_offset(data) :] == dataset and written.size == len(data)
    again = pydicom.dcmread(written.path)
    assert again.file_meta.SourceApplicationEntityTitle == "ARCHIVE"
    assert again == ds
    assert not list(tmp_path.glob(".*.part"))


def spool(directory: Path, ds: Dataset, dataset: bytes, syntax: str) -> Path:
    """A temporary file as pynetdicom writes it with STORE_RECV_CHUNKED_DATASET."""
    path = directory / f"spool-{len(list(directory.iterdir()))}.dcm"
    with open(path, "wb") as fp:
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(
            fp,
            create_file_meta(
                sop_class_uid=ds.SOPClassUID,  # type: ignore[arg-type]
                sop_instance_uid=ds.SOPInstanceUID,
                transfer_syntax=syntax,
            ),
        )
        fp.write(dataset)
    return path


@pytest.mark.parametrize("deflated", [False, True])
def test_spooled_data_sets_are_copied_unchanged(tmp_path: Path, deflated: bool) -> None:
    ds = synthetic_study("spooled", 1)[0]
    ds.add_new(0x00090010, "LO", "SMART TEST")
    ds.add_new(0x00091001, "OB", bytes(range(256)) * 2048)  # 512 KiB before the keys
    original = to_bytes(ds)
    dataset = original[dataset_offset(original) :]
    syntax = ExplicitVRLittleEndian
    if deflated:
        syntax = DeflatedExplicitVRLittleEndian
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        dataset = packer.compress(dataset) + packer.flush()
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    spooled = SpooledDataSet.of_part10(spool(tmp_path / "in", ds, dataset, syntax))
    keys = read_keys(spooled, ds.SOPClassUID, ds.SOPInstanceUID, syntax)
    assert (keys.study_uid, keys.series_uid) == (ds.StudyInstanceUID, ds.SeriesInstanceUID)
    written = write_instance(tmp_path / "out", keys, spooled, "ARCHIVE")
    data = written.path.read_bytes()
    assert data[dataset_offset(data) :] == dataset and written.size == len(data)
    again = pydicom.dcmread(written.path)
    assert again.file_meta.TransferSyntaxUID == syntax
    assert again.file_meta.SourceApplicationEntityTitle == "ARCHIVE"
    assert again.PixelData == ds.PixelData


def store_request(path: Path, ds: Dataset) -> SimpleNamespace:
    return SimpleNamespace(
        _dataset_path=path,
        _dataset_file=open(path, "ab"),
        AffectedSOPClassUID=ds.SOPClassUID,
        AffectedSOPInstanceUID=ds.SOPInstanceUID,
    )


@pytest.mark.parametrize("outcome", ["stored", "refused", "unreadable", "raises"])
def test_store_event_deletes_the_spooled_file_whatever_happens(tmp_path: Path, outcome: str) -> None:
    ds = synthetic_study("spool-event", 1)[0]
    original = to_bytes(ds)
    dataset = original[dataset_offset(original) :] if outcome != "unreadable" else b"\xff" * 7
    path = spool(tmp_path, ds, dataset, ExplicitVRLittleEndian)
    assoc = object()
    track_spool(SimpleNamespace(assoc=assoc, message=SimpleNamespace(_data_set_path=path)))
    got: list[Any] = []

    def receive(keys: InstanceKeys, data: Any) -> int:
        got.append(data.path.read_bytes()[data.offset :])
        if outcome == "raises":
            raise OSError("disk full")
        return 0xA702 if outcome == "refused" else 0x0000

    event = SimpleNamespace(
        request=store_request(path, ds),
        assoc=assoc,
        context=SimpleNamespace(transfer_syntax=ExplicitVRLittleEndian),
    )
    if outcome == "raises":
        with pytest.raises(OSError):
            store_event(event, receive)
    else:
        status = store_event(event, receive)
        assert status == {"stored": 0x0000, "refused": 0xA702, "unreadable": 0xC000}[outcome]
    assert got == ([] if outcome == "unreadable" else [dataset])
    assert not path.exists() and event.request._dataset_file.closed


class FakeAssociation:
    """Hashable, like pynetdicom's: what ``discard_spools`` reads of it."""

    def __init__(self, receiving: object) -> None:
        self.dimse = SimpleNamespace(message=receiving)


def test_spooled_files_never_handled_go_when_the_association_ends(tmp_path: Path) -> None:
    ds = synthetic_study("spool-end", 1)[0]
    queued = spool(tmp_path, ds, b"queued", ExplicitVRLittleEndian)
    partial = spool(tmp_path, ds, b"cut off", ExplicitVRLittleEndian)
    writer = open(partial, "ab")  # noqa: SIM115 - held open, as pynetdicom does while receiving
    assoc = FakeAssociation(SimpleNamespace(_data_set_file=writer))
    track_spool(SimpleNamespace(assoc=assoc, message=SimpleNamespace(_data_set_path=queued)))
    other = FakeAssociation(None)
    kept = spool(tmp_path, ds, b"other association", ExplicitVRLittleEndian)
    track_spool(SimpleNamespace(assoc=other, message=SimpleNamespace(_data_set_path=kept)))
    discard_spools(assoc)
    assert not queued.exists() and not partial.exists() and writer.closed
    assert kept.exists()
    discard_spools(other)
    assert not kept.exists()


def test_presentation_contexts_fit_the_limit() -> None:
    few = storage_contexts([CTImageStorage], MAX_CONTEXTS - 1)
    assert len(few) == len(TRANSFER_SYNTAXES) and all(len(ts) == 1 for _, ts in few)
    many = storage_contexts([f"1.2.3.{n}" for n in range(40)], MAX_CONTEXTS - 1)
    assert len(many) == 40 and all(ts == TRANSFER_SYNTAXES for _, ts in many)
    assert len(storage_contexts([], MAX_CONTEXTS - 1)) <= MAX_CONTEXTS - 1


def _transfer(cache: TransferCache, key: TransferKey, size: int) -> Transfer:
    transfer = Transfer(key, cache.directory_for(key), "A", asyncio.get_running_loop(), cache.clock())
    cache.add(transfer)
    keys = InstanceKeys(key.study_uid, "1.9", f"{key.study_uid}.1", CTImageStorage, ExplicitVRLittleEndian)
    transfer.instances.append(InstanceFile(keys, transfer.directory / "x.dcm", size))
    transfer.finish(None)
    return transfer


async def test_cache_expires_idle_studies_and_keeps_its_size_bound(tmp_path: Path) -> None:
    now = [0.0]
    cache = TransferCache(tmp_path, idle_seconds=100, max_bytes=250, clock=lambda: now[0])
    old = _transfer(cache, TransferKey("1.1"), 100)
    now[0] = 50
    middle = _transfer(cache, TransferKey("1.2"), 100)
    now[0] = 60
    busy = _transfer(cache, TransferKey("1.3"), 100)
    busy.readers = 1
    assert cache.expired() == [old]  # over 250 bytes: least recently used first, not busy
    now[0] = 170
    assert set(cache.expired()) == {old, middle}
    busy.readers = 0
    assert set(cache.expired()) == {old, middle, busy}
    assert busy.state is State.COMPLETE


async def test_a_study_transfer_covers_its_series_and_instances(tmp_path: Path) -> None:
    cache = TransferCache(tmp_path, 100, 1000, clock=lambda: 0.0)
    study = _transfer(cache, TransferKey("1.1"), 1)
    assert cache.covering(TransferKey("1.1", "1.9", "1.1.1")) is study
    assert cache.covering(TransferKey("1.2", "1.9")) is None
    series = _transfer(cache, TransferKey("1.2", "1.9"), 1)
    assert cache.covering(TransferKey("1.2", "1.9", "1.2.1")) is series
    assert cache.covering(TransferKey("1.2", "1.8")) is None


class _Association:
    """What ``Cancel`` touches of a pynetdicom association."""

    def __init__(self) -> None:
        self.is_established = True
        self.aborts: list[bool] = []
        self.dimse = SimpleNamespace(msg_queue=queue.Queue())

    def abort(self, block: bool = True) -> None:
        self.aborts.append(block)
        self.is_established = False


def test_cancel_wakes_a_worker_waiting_for_the_next_dimse_message() -> None:
    assoc = _Association()
    assoc.dimse.msg_queue.put((1, "queued before bind"))
    cancel = Cancel()
    cancel.bind(cast(Any, assoc))
    messages = assoc.dimse.msg_queue
    assert messages.get(timeout=1) == (1, "queued before bind")
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.append(messages.get(timeout=60)))
    worker.start()
    cancel()  # as pynetdicom's send_c_get waits: the DIMSE timeout must not be sat out
    worker.join(10)
    assert not worker.is_alive() and got == [(None, None)]
    assert assoc.aborts == [False]  # non-blocking: the event loop calls this
    assert messages.get_nowait() == (None, None)  # every later wait ends too
    cancel()
    assert assoc.aborts == [False]


def test_a_retrieve_cancelled_before_its_association_existed_stops_at_bind() -> None:
    cancel = Cancel()
    cancel()
    assoc = _Association()
    with pytest.raises(UpstreamError, match="cancelled"):
        cancel.bind(cast(Any, assoc))
    assert assoc.aborts == [False] and assoc.dimse.msg_queue.get_nowait() == (None, None)
