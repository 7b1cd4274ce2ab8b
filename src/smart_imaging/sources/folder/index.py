"""The folder's SQLite index: one row per file, DICOM attributes read with pydicom.

Blocking code: call it from a thread. ``scan`` walks the folder, reads the header
(``stop_before_pixels``) of files that are new or whose mtime or size changed, and drops rows of
files that are gone. Each instance's row notes whether the file is structurally whole
(``completeness``): a truncated or half-copied file is indexed (it belongs to its study) but
never served as if it were complete. Files that are not DICOM Part-10 instances keep a row without a SOP
Instance UID so they are not read again until they change. Hidden files and folders (names
starting with ``.``) and DICOMDIR files are skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread

from .completeness import is_complete

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 2: the complete column; 3: PatientID in column mrn, IssuerOfPatientID in mrn_issuer
DEFAULT_INDEX_NAME = ".smart-imaging-index.sqlite"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
BATCH = 500

# (column, DICOM keyword, kind) for attributes kept per file.
ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("sop_instance_uid", "SOPInstanceUID", "str"),
    ("sop_class_uid", "SOPClassUID", "str"),
    ("study_uid", "StudyInstanceUID", "str"),
    ("series_uid", "SeriesInstanceUID", "str"),
    ("mrn", "PatientID", "str"),
    ("patient_name", "PatientName", "str"),
    ("mrn_issuer", "IssuerOfPatientID", "str"),
    ("patient_birth_date", "PatientBirthDate", "str"),
    ("patient_sex", "PatientSex", "str"),
    ("study_date", "StudyDate", "str"),
    ("study_time", "StudyTime", "str"),
    ("timezone_offset", "TimezoneOffsetFromUTC", "str"),
    ("accession_number", "AccessionNumber", "str"),
    ("study_description", "StudyDescription", "str"),
    ("study_id", "StudyID", "str"),
    ("series_number", "SeriesNumber", "int"),
    ("modality", "Modality", "str"),
    ("series_description", "SeriesDescription", "str"),
    ("series_date", "SeriesDate", "str"),
    ("series_time", "SeriesTime", "str"),
    ("body_part_examined", "BodyPartExamined", "str"),
    ("instance_number", "InstanceNumber", "int"),
    ("number_of_frames", "NumberOfFrames", "int"),
    ("rows", "Rows", "int"),
    ("bits_allocated", "BitsAllocated", "int"),
)
COLUMNS = ("path", "mtime_ns", "size", "transfer_syntax", "complete", *(c for c, _, _ in ATTRIBUTES))

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    transfer_syntax TEXT,
    complete INTEGER NOT NULL DEFAULT 1,
    {", ".join(f"{c} {'INTEGER' if k == 'int' else 'TEXT'}" for c, _, k in ATTRIBUTES)}
);
CREATE INDEX IF NOT EXISTS files_study ON files (study_uid);
CREATE INDEX IF NOT EXISTS files_mrn ON files (mrn);
CREATE INDEX IF NOT EXISTS files_series ON files (series_uid);
CREATE INDEX IF NOT EXISTS files_sop ON files (sop_instance_uid);
"""


@dataclass(frozen=True)
class ScanResult:
    added: int
    updated: int
    removed: int
    unchanged: int
    not_dicom: int
    seconds: float


def default_index_path(root: Path, configured: str | None = None) -> Path:
    """``configured`` (relative to the folder), else a file in the folder when it is writable,
    else one in the user's cache directory named after the folder."""
    if configured:
        return root / Path(configured).expanduser()
    if root.is_dir() and os.access(root, os.W_OK):
        return root / DEFAULT_INDEX_NAME
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache / "smart-imaging" / f"index-{digest}.sqlite"


def connect(index_path: Path) -> sqlite3.Connection:
    """Open (creating when needed) the index; a schema of another version is rebuilt."""
    index_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(index_path, timeout=30.0)
    conn.row_factory = sqlite3.Row
    if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        conn.executescript("DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS meta;")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.executescript(_SCHEMA)
    return conn


def scan(root: Path, conn: sqlite3.Connection) -> ScanResult:
    """Bring the index up to date with the files under ``root``."""
    started = time.perf_counter()
    root = root.resolve()
    _reset_if_other_root(conn, root)
    known = {
        r["path"]: (r["mtime_ns"], r["size"]) for r in conn.execute("SELECT path, mtime_ns, size FROM files")
    }
    skip = _index_files(conn)
    added = updated = unchanged = not_dicom = 0
    pending: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for relative, stat in walk(root, skip):
        seen.add(relative)
        previous = known.get(relative)
        if previous == (stat.st_mtime_ns, stat.st_size):
            unchanged += 1
            continue
        row = read_row(root / relative, relative, stat)
        not_dicom += row[COLUMNS.index("sop_instance_uid")] is None
        added, updated = (added + 1, updated) if previous is None else (added, updated + 1)
        pending.append(row)
        if len(pending) >= BATCH:
            _upsert(conn, pending)
    _upsert(conn, pending)
    removed = [(p,) for p in known if p not in seen]
    with conn:
        conn.executemany("DELETE FROM files WHERE path = ?", removed)
    return ScanResult(added, updated, len(removed), unchanged, not_dicom, time.perf_counter() - started)


def walk(root: Path, skip: set[Path] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """(relative POSIX path, stat) of every regular file below ``root``, sorted, no hidden."""
    if not root.is_dir():
        log.warning("image folder %s does not exist or is not a folder", root)
        return
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            path = Path(current) / name
            if skip and path in skip:
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file():
                yield path.relative_to(root).as_posix(), stat


def read_row(path: Path, relative: str, stat: os.stat_result) -> tuple[Any, ...]:
    """The index row of one file; attributes are NULL when it is not a DICOM instance."""
    ds = read_header(path)
    base = (relative, stat.st_mtime_ns, stat.st_size)
    if ds is None:
        return (*base, None, 1, *([None] * len(ATTRIBUTES)))
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) or None
    complete = _complete(path)
    return (*base, ts, int(complete), *(_value(ds, keyword, kind) for _, keyword, kind in ATTRIBUTES))


def _complete(path: Path) -> bool:
    try:
        complete = is_complete(path)
    except OSError as exc:
        log.warning("could not check %s: %s", path, exc)
        return False
    if not complete:
        log.warning("%s is cut short (truncated, or still being copied): it will not be served", path)
    return complete


def read_header(path: Path) -> Dataset | None:
    """The header of a DICOM Part-10 instance, or None for anything else."""
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on foreign files
        log.debug("not indexed: %s (%s)", path, exc)
        return None
    meta = ds.file_meta
    if meta.get("MediaStorageSOPClassUID") == MEDIA_STORAGE_DIRECTORY:
        return None
    if not all(_value(ds, k, "str") for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")):
        log.warning("not indexed: %s lacks Study, Series or SOP Instance UID", path)
        return None
    return ds


def _value(ds: Dataset, keyword: str, kind: str) -> str | int | None:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value must not stop the scan
        return None
    if value is None or value == "":
        return None
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    text = str(value).strip("\x00 ")
    return text or None


def _upsert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    marks = ", ".join("?" * len(COLUMNS))
    with conn:
        conn.executemany(f"INSERT OR REPLACE INTO files ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
    rows.clear()


def _reset_if_other_root(conn: sqlite3.Connection, root: Path) -> None:
    found = conn.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
    if found is not None and found[0] == str(root):
        return
    with conn:
        conn.execute("DELETE FROM files")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('root', ?)", (str(root),))


def _index_files(conn: sqlite3.Connection) -> set[Path]:
    main = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    if not main:
        return set()
    base = Path(main).resolve()
    return {base, *(base.with_name(base.name + s) for s in ("-journal", "-wal", "-shm"))}
