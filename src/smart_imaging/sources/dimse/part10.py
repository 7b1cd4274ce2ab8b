"""Received C-STORE data sets written as DICOM Part-10 files, without re-encoding.

The data set bytes are kept exactly as the archive sent them, in the transfer syntax of the
presentation context they came on. The File Meta Information (PS3.10 7.1) never travels over
DIMSE, so it is written anew: SOP class, instance, transfer syntax, our implementation UID and
the archive's AE title as Source Application Entity Title.

A data set arrives either spooled (pynetdicom wrote it to a temporary Part-10 file as the
P-DATA came in, see ``scu.receive_to_files``) or in memory. A spooled one is never loaded:
its keys are parsed from the start of the data set and its bytes are copied in chunks, so
memory stays flat however large the instance.
"""

from __future__ import annotations

import io
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

IMPLEMENTATION_CLASS_UID = "2.25.76832107822871796303627184213257020413"  # UUID-derived (PS3.5 B.2)
IMPLEMENTATION_VERSION_NAME = "SMART_IMAGING_1"
_LAST_KEY = 0x00200013  # stop parsing after Instance Number: every key we need lies before it
_KEY_TAGS = [BaseTag(0x0020000D), BaseTag(0x0020000E)]  # Study, Series Instance UID
COPY_CHUNK = 1 << 20
_INFLATE_FIRST = 1 << 16  # a deflated data set is inflated this far, then doubling ...
_INFLATE_MAX = 64 << 20  # ... until its keys are found, but never further


@dataclass(frozen=True)
class InstanceKeys:
    """Where a received instance belongs: read from its data set, padding stripped."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str


@dataclass(frozen=True)
class SpooledDataSet:
    """A received data set in a file: from byte ``offset`` of ``path`` to its end."""

    path: Path
    offset: int

    @classmethod
    def of_part10(cls, path: Path) -> SpooledDataSet:
        """The data set of a Part-10 file (preamble, prefix and file meta skipped)."""
        with open(path, "rb") as fp:
            return cls(path, dataset_offset(fp.read(144)))


#: A received data set, as sent: encoded bytes, or where they lie on disk.
EncodedDataSet = bytes | SpooledDataSet


@dataclass(frozen=True)
class InstanceFile:
    keys: InstanceKeys
    path: Path
    size: int


def read_keys(
    dataset: EncodedDataSet, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str
) -> InstanceKeys:
    """Parse just the study and series UIDs from an encoded data set. Raises ValueError.

    Reads the data set only up to its keys (values of other elements are skipped, not loaded).
    """
    syntax = UID(transfer_syntax)
    if isinstance(dataset, SpooledDataSet):
        with open(dataset.path, "rb") as fp:
            fp.seek(dataset.offset)
            ds = _read_keys(fp, syntax)
    else:
        ds = _read_keys(io.BytesIO(dataset), syntax)
    study = _clean(ds.get("StudyInstanceUID"))
    series = _clean(ds.get("SeriesInstanceUID"))
    if not study or not series:
        raise ValueError("received data set has no Study or Series Instance UID")
    return InstanceKeys(
        study, series, _clean(sop_instance_uid), _clean(sop_class_uid), _clean(transfer_syntax)
    )


def _read_keys(fp: BinaryIO, syntax: UID) -> Dataset:
    if syntax == DeflatedExplicitVRLittleEndian:
        return _read_deflated_keys(fp)
    return read_dataset(
        fp,
        syntax.is_implicit_VR,
        syntax.is_little_endian,
        stop_when=_after_keys,
        specific_tags=list(_KEY_TAGS),
    )


def _read_deflated_keys(fp: BinaryIO) -> Dataset:
    """Inflate a prefix and parse it; a parse counts only if it reached an element after the
    keys (so no key was cut short) or the data set's end. Otherwise inflate twice as much."""
    inflated = bytearray()
    want = _INFLATE_FIRST
    chunks = _inflate(fp)
    stopped: list[bool] = []

    def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
        if _after_keys(tag, vr, length):
            stopped.append(True)
        return bool(stopped)

    while True:
        ended = _inflate_to(chunks, inflated, want)
        stopped.clear()
        try:
            ds = read_dataset(io.BytesIO(bytes(inflated)), False, True, stop_when=stop)
        except Exception:
            if ended:
                raise
        else:
            if stopped or ended:
                return ds
        if want >= _INFLATE_MAX:
            raise ValueError(
                "no Study and Series Instance UID in the first "
                f"{_INFLATE_MAX >> 20} MiB of a deflated data set"
            )
        want *= 2


def _inflate_to(chunks: Iterator[bytes], inflated: bytearray, want: int) -> bool:
    """Append inflated chunks until ``want`` bytes are in; True when the stream ended first."""
    for chunk in chunks:
        inflated += chunk
        if len(inflated) >= want:
            return False
    return True


def _inflate(fp: BinaryIO) -> Iterator[bytes]:
    """A raw deflate stream inflated in bounded pieces (PS3.5 A.5)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    while not inflater.eof:
        data = inflater.unconsumed_tail or fp.read(COPY_CHUNK)
        if not data:
            return
        if out := inflater.decompress(data, COPY_CHUNK):
            yield out


def write_instance(
    directory: Path, keys: InstanceKeys, dataset: EncodedDataSet, source_ae: str
) -> InstanceFile:
    """Write preamble, new file meta and the untouched data set; the file appears atomically.

    A spooled data set is copied in ``COPY_CHUNK`` pieces, never held whole.
    """
    final = directory / f"{keys.sop_instance_uid}.dcm"
    partial = directory / f".{keys.sop_instance_uid}.part"
    try:
        with open(partial, "wb") as fp:
            fp.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(fp, file_meta(keys, source_ae), enforce_standard=True)  # type: ignore[arg-type]
            if isinstance(dataset, SpooledDataSet):
                with open(dataset.path, "rb") as source:
                    source.seek(dataset.offset)
                    shutil.copyfileobj(source, fp, COPY_CHUNK)
            else:
                fp.write(dataset)
            size = fp.tell()
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return InstanceFile(keys, final, size)


def file_meta(keys: InstanceKeys, source_ae: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(keys.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(keys.sop_instance_uid)
    meta.TransferSyntaxUID = UID(keys.transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if source_ae:
        meta.SourceApplicationEntityTitle = source_ae
    return meta


def dataset_offset(data: bytes) -> int:
    """Where the data set starts in Part-10 bytes (after preamble, prefix and group 0002)."""
    if data[128:132] != b"DICM" or data[132:138] != b"\x02\x00\x00\x00UL":
        raise ValueError("not a DICOM Part-10 file starting with its group length")
    group_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL, explicit VR LE
    return 144 + group_length


def _after_keys(tag: BaseTag, vr: str | None, length: int) -> bool:
    return int(tag) > _LAST_KEY


def _clean(value: Any) -> str:
    return str(value or "").strip("\x00 ")
