"""Received C-STORE data sets written as DICOM Part-10 files, without re-encoding.

The data set bytes are kept exactly as the archive sent them, in the transfer syntax of the
presentation context they came on. The File Meta Information (PS3.10 7.1) never travels over
DIMSE, so it is written anew: SOP class, instance, transfer syntax, our implementation UID and
the archive's AE title as Source Application Entity Title.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

IMPLEMENTATION_CLASS_UID = "2.25.76832107822871796303627184213257020413"  # UUID-derived (PS3.5 B.2)
IMPLEMENTATION_VERSION_NAME = "SMART_IMAGING_1"
_LAST_KEY = 0x00200013  # stop parsing after Instance Number: every key we need lies before it


@dataclass(frozen=True)
class InstanceKeys:
    """Where a received instance belongs: read from its data set, padding stripped."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str


@dataclass(frozen=True)
class InstanceFile:
    keys: InstanceKeys
    path: Path
    size: int


def read_keys(dataset: bytes, sop_class_uid: str, sop_instance_uid: str,
              transfer_syntax: str) -> InstanceKeys:
    """Parse just the study and series UIDs from an encoded data set. Raises ValueError."""
    syntax = UID(transfer_syntax)
    raw = zlib.decompress(dataset, -15) if syntax == DeflatedExplicitVRLittleEndian else dataset
    ds = read_dataset(io.BytesIO(raw), syntax.is_implicit_VR, syntax.is_little_endian,
                      stop_when=_after_keys)
    study = _clean(ds.get("StudyInstanceUID"))
    series = _clean(ds.get("SeriesInstanceUID"))
    if not study or not series:
        raise ValueError("received data set has no Study or Series Instance UID")
    return InstanceKeys(study, series, _clean(sop_instance_uid), _clean(sop_class_uid),
                        _clean(transfer_syntax))


def write_instance(directory: Path, keys: InstanceKeys, dataset: bytes,
                   source_ae: str) -> InstanceFile:
    """Write preamble, new file meta and the untouched data set; the file appears atomically."""
    final = directory / f"{keys.sop_instance_uid}.dcm"
    partial = directory / f".{keys.sop_instance_uid}.part"
    with open(partial, "wb") as fp:
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, file_meta(keys, source_ae), enforce_standard=True)  # type: ignore[arg-type]
        fp.write(dataset)
        size = fp.tell()
    os.replace(partial, final)
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
    if data[128:132] != b"DICM":
        raise ValueError("not a DICOM Part-10 file")
    group_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL, explicit VR LE
    return 144 + group_length


def _after_keys(tag: BaseTag, vr: str | None, length: int) -> bool:
    return int(tag) > _LAST_KEY


def _clean(value: Any) -> str:
    return str(value or "").strip("\x00 ")
