"""The folder index and search: scan, re-index changed files, drop removed ones, exact matching."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pydicom
import pytest

from smart_imaging.config.tenant import FolderImages
from smart_imaging.dicom import tags
from smart_imaging.sources.base import StudyQuery
from smart_imaging.sources.folder import FolderSource
from smart_imaging.sources.folder import index as folder_index

TESTDATA = Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests"
PETER = "98890234"  # four studies (CT and MR) in pydicom's dicomdirtests
ARCHIBALD = "77654033"  # two studies (CR and CT)


def source(folder: Path, **options: object) -> FolderSource:
    return FolderSource(FolderImages(type="folder", path=str(folder), **options))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for study in ("77654033", "98892001", "98892003"):
        shutil.copytree(TESTDATA / study, root / study)
    (root / "notes.txt").write_text("not DICOM")
    (root / ".hidden").mkdir()
    shutil.copy(TESTDATA / "77654033" / "CR1" / "6154", root / ".hidden" / "copy.dcm")
    return root


def value(element: dict[str, object]) -> object:
    found = element.get("Value")
    return found[0] if isinstance(found, list) else None


async def test_scan_indexes_dicom_and_skips_other_and_hidden_files(folder: Path) -> None:
    src = source(folder)
    first = await src.start()
    assert (first.added, first.not_dicom, first.removed) == (32, 1, 0)
    assert src.index_path == folder / ".smart-imaging-index.sqlite" and src.index_path.is_file()
    again = await src.start()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 32)
    studies = await src.search(StudyQuery(None))
    assert sum(value(s.study[tags.NumberOfStudyRelatedInstances]) for s in studies) == 31


async def test_changed_files_are_reindexed_and_removed_ones_dropped(folder: Path) -> None:
    src = source(folder)
    await src.start()
    changed = folder / "77654033" / "CR1" / "6154"
    ds = pydicom.dcmread(changed)
    ds.PatientID = "NEW-PATIENT"
    ds.save_as(changed)
    os.utime(changed, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    shutil.rmtree(folder / "98892001")
    result = await src.start()
    assert (result.updated, result.removed, result.added) == (1, 7, 0)
    moved = await src.search(StudyQuery("NEW-PATIENT"))
    assert len(moved) == 1 and moved[0].last_updated == "2023-11-14T22:13:20.000Z"
    assert [value(s.study[tags.StudyDescription]) for s in await src.search(StudyQuery(PETER))] == [
        "Carotids",
        "Brain-MRA",
        "Brain",
    ]  # the CT study (98892001) is gone


async def test_a_new_source_reuses_the_index(folder: Path) -> None:
    await source(folder).start()
    result = await source(folder).start()
    assert result.unchanged == 32 and result.added == 0


async def test_mrn_is_matched_exactly(folder: Path) -> None:
    src = source(folder)
    assert len(await src.search(StudyQuery(PETER))) == 4
    assert len(await src.search(StudyQuery(ARCHIBALD))) == 2
    assert len(await src.search(StudyQuery(None))) == 6
    for pattern in ("", "9889023*", "9889023?", "9889023%", "9889023_", "98890234 ", "*"):
        assert await src.search(StudyQuery(pattern)) == [], pattern


async def test_study_uid_filter_and_study_attributes(folder: Path) -> None:
    src = source(folder)
    every = {value(s.study[tags.StudyInstanceUID]): s for s in await src.search(StudyQuery(None))}
    wanted = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.1"
    found = await src.search(StudyQuery(PETER, study_uids=(wanted,)))
    assert [value(s.study[tags.StudyInstanceUID]) for s in found] == [wanted]
    assert await src.search(StudyQuery(ARCHIBALD, study_uids=(wanted,))) == []
    study = found[0]
    assert study == every[wanted]
    assert value(study.study[tags.PatientID]) == PETER
    assert study.study[tags.ModalitiesInStudy]["Value"] == ["CT"]
    assert value(study.study[tags.NumberOfStudyRelatedSeries]) == 2
    assert value(study.study[tags.NumberOfStudyRelatedInstances]) == 7
    assert value(study.study[tags.StudyDate]) == "20010101"
    assert value(study.study[tags.TimezoneOffsetFromUTC]) == "+0000"
    assert value(study.study[tags.PatientName]) == {"Alphabetic": "Doe^Peter"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", study.last_updated or "")
    series = {value(s.series[tags.SeriesNumber]): s for s in study.series}
    assert sorted(series) == [4, 5]
    assert value(series[5].series[tags.NumberOfSeriesRelatedInstances]) == 5
    assert value(series[5].series[tags.Modality]) == "CT"
    numbers = [value(i[tags.InstanceNumber]) for i in series[5].instances or []]
    assert numbers == sorted(numbers) and len(numbers) == 5
    assert all(value(i[tags.SOPClassUID]) == "1.2.840.10008.5.1.4.1.1.2" for i in series[5].instances or [])
    lean = await src.search(StudyQuery(PETER, study_uids=(wanted,), include_instances=False))
    assert all(s.instances is None for s in lean[0].series)


async def test_configured_index_path_is_relative_to_the_folder(folder: Path) -> None:
    src = source(folder, index="state/index.db")
    await src.start()
    assert src.index_path == folder / "state" / "index.db" and src.index_path.is_file()
    assert not (folder / ".smart-imaging-index.sqlite").exists()


def test_read_only_folder_keeps_its_index_in_the_cache_dir(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(folder_index.os, "access", lambda path, mode: False)
    path = folder_index.default_index_path(folder)
    assert path.parent == tmp_path / "cache" / "smart-imaging"
    assert path != folder_index.default_index_path(tmp_path)


async def test_missing_folder_is_empty_not_an_error(tmp_path: Path) -> None:
    src = source(tmp_path / "absent", index=str(tmp_path / "index.sqlite"))
    assert await src.search(StudyQuery(None)) == []


async def test_rescan_interval_picks_up_new_files(folder: Path, tmp_path: Path) -> None:
    src = source(folder, rescanSeconds=0.001)
    assert len(await src.search(StudyQuery(ARCHIBALD))) == 2
    ds = pydicom.dcmread(TESTDATA / "77654033" / "CR1" / "6154")
    ds.StudyInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "2.25.1"
    ds.save_as(folder / "new.dcm")
    assert len(await src.search(StudyQuery(ARCHIBALD))) == 3


async def test_a_study_of_two_patients_shows_as_two_and_retrieval_filters(tmp_path: Path) -> None:
    """Bad data: one study UID with files of MIX-A and MIX-B."""
    from smart_imaging.sources.base import WadoRequest

    from ...sample_dicom import mixed_study_files

    root = tmp_path / "mixed"
    root.mkdir()
    for n, blob in enumerate(mixed_study_files()):
        (root / f"{n}.dcm").write_bytes(blob)
    src = source(root)
    records = await src.search(StudyQuery(None))
    assert sorted(value(r.study[tags.PatientID]) for r in records) == ["MIX-A", "MIX-B"]
    study_uid = str(value(records[0].study[tags.StudyInstanceUID]))
    only_a = await src.retrieve(WadoRequest(study_uid, resource="metadata", mrn="MIX-A"))
    body = b"".join([chunk async for chunk in only_a.body])
    assert b"MIX-A" in body and b"MIX-B" not in body
