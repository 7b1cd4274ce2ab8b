"""Orthanc's LastUpdate for ``_lastUpdated`` (``services.last_updated``); against a real Orthanc
in tests/ig/test_finding_studies.py."""

from __future__ import annotations

import httpx
import pytest

from smart_imaging.config.loader import parse_config
from smart_imaging.config.tenant import DicomWebImages
from smart_imaging.errors import UpstreamError, UpstreamTimeout
from smart_imaging.services.last_updated import OrthancLastUpdate, fhir_instant, orthanc_api
from smart_imaging.sources import StudyRecord
from tests.support.fakes import study


def images(**extra: object) -> DicomWebImages:
    config = parse_config(
        {
            "authorization": {"type": "mock"},
            "images": {"type": "dicom-web", "endpoint": "http://pacs:8042/dicom-web", **extra},
        }
    )
    assert isinstance(config.images, DicomWebImages)
    return config.images


def test_orthanc_times_and_api_base() -> None:
    assert fhir_instant("20240131T235959") == "2024-01-31T23:59:59Z"
    assert fhir_instant("2024-01-31") is None and fhir_instant(None) is None
    assert orthanc_api(images()) == "http://pacs:8042"
    assert orthanc_api(images(orthancApi="http://rest:8042/")) == "http://rest:8042"


async def test_records_get_orthanc_s_last_update() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/tools/find"
        return httpx.Response(
            200, json=[{"LastUpdate": "20260102T030405", "MainDicomTags": {"StudyInstanceUID": "1.1"}}]
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        records = [StudyRecord(study("1.1", "M")), StudyRecord(study("1.2", "M"))]
        await OrthancLastUpdate(images(lastUpdated="orthanc"), http).annotate(records, required=True)
    assert [r.last_updated for r in records] == ["2026-01-02T03:04:05Z", None]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda r: httpx.Response(500), UpstreamError),
        (lambda r: httpx.Response(200, text="<html>"), UpstreamError),
        (lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow")), UpstreamTimeout),
    ],
)
async def test_a_failing_api_fails_lastUpdated_searches_only(answer: object, error: type[Exception]) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:  # type: ignore[arg-type]
        service = OrthancLastUpdate(images(lastUpdated="orthanc"), http)
        records = [StudyRecord(study("1.1", "M"))]
        with pytest.raises(error):
            await service.annotate(records, required=True)
        await service.annotate(records, required=False)  # no _lastUpdated: just no meta.lastUpdated
        assert records[0].last_updated is None
