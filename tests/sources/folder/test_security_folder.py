"""The folder source under hostile requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_imaging.config.tenant import FolderImages
from smart_imaging.errors import NotFound
from smart_imaging.sources.base import StudyQuery, WadoRequest
from smart_imaging.sources.folder import FolderSource

from ...generated_samples import generated_samples


async def test_unknown_series_does_not_rescan_the_folder(tmp_path: Path) -> None:
    """A token holder could name random series UIDs under their own study: each miss walked and
    stat'ed the whole folder again. Only vanished files justify a rescan (notes: folder)."""
    src = FolderSource(
        FolderImages(type="folder", path=str(generated_samples()[0]), index=str(tmp_path / "index.sqlite"))
    )
    study = (await src.search(StudyQuery(None)))[0]
    study_uid = study.study["0020000D"]["Value"][0]
    scans = 0
    real_scan = src._scan

    async def counting_scan():  # type: ignore[no-untyped-def]
        nonlocal scans
        scans += 1
        return await real_scan()

    src._scan = counting_scan  # type: ignore[method-assign]
    for n in range(5):
        with pytest.raises(NotFound):
            await src.retrieve(WadoRequest(study_uid=study_uid, series_uid=f"1.2.3.{n}"))
    assert scans == 0
