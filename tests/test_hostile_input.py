"""Hostile request input against the real server and a real Orthanc (issue 13 item 3).

Each case was a 500 before: Unicode digits in ``_count``/``_offset``/frame numbers
(``'²'.isdigit()`` is True, ``int('²')`` fails), a non-ASCII ``Accept`` on WADO routes (it failed
to encode when forwarded), ``Infinity``/``NaN`` in ``/dyn/`` configs and tenant files
(``math.ceil(inf)``), dates at the end of the calendar. Now: 400 with an OperationOutcome (FHIR)
or a short JSON error (WADO), never a 500.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from smart_imaging.errors import BadRequest
from smart_imaging.wado import WadoRequest

from .conftest import dicomweb_tenant, mock_patient
from .orthanc import Orthanc, free_port
from .sample_dicom import SampleData

A = "77654033"
UNICODE_DIGITS = ["\u00b2", "\u0663", "1\u00b2", "\uff11", "\u0661\u0660", "\u2460", "1\u0969"]


@pytest.fixture
def server(orthanc: Orthanc, sample_data: SampleData, imaging_server: Callable[..., str]) -> str:
    return imaging_server(
        {
            "a": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-a", A)},
                "images": dicomweb_tenant(orthanc),
            },
        },
        dynamic_tenants=True,
        dynamic_upstream_allow=("127.0.0.1",),
    )


def assert_outcome(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    OperationOutcome.model_validate(outcome)
    assert "Traceback" not in response.text
    return outcome


def assert_wado_error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"} and "Traceback" not in response.text
    return body


@pytest.mark.parametrize("name", ["_count", "_offset"])
@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_unicode_digits_in_count_and_offset_are_400(server: str, name: str, digit: str) -> None:
    response = httpx.get(
        f"{server}/a/fhir/ImagingStudy", params={"patient": "pat-a", name: digit}, timeout=30
    )
    outcome = assert_outcome(response)
    assert name in outcome["issue"][0]["diagnostics"]


def test_huge_count_is_capped_and_huge_offset_refused(server: str, sample_data: SampleData) -> None:
    url = f"{server}/a/fhir/ImagingStudy"
    capped = httpx.get(url, params={"patient": "pat-a", "_count": "999999999"}, timeout=30)
    assert capped.status_code == 200 and capped.json()["total"] == len(sample_data.patients[A])
    assert_outcome(httpx.get(url, params={"patient": "pat-a", "_offset": "9" * 400}, timeout=30))
    assert_outcome(httpx.get(url, params={"patient": "pat-a", "_count": "9" * 5000}, timeout=30))


@pytest.mark.parametrize(
    "value", ["9999-12-31", "le9999-12-31", "ge0001-01-01T00:00+01:00", "9999", "eb9999-12-31T23:59:59-05:00"]
)
def test_dates_at_the_ends_of_the_calendar_are_answered(server: str, value: str) -> None:
    response = httpx.get(
        f"{server}/a/fhir/ImagingStudy", params={"patient": "pat-a", "started": value}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "Bundle"


@pytest.mark.parametrize(
    "value", ["\u0662\u0660\u0662\u0660", "2020-0\u0661-01", "ge\uff12\uff10\uff12\uff10"]
)
def test_unicode_digits_in_dates_are_400(server: str, value: str) -> None:
    params = {"patient": "pat-a", "started": value}
    assert_outcome(httpx.get(f"{server}/a/fhir/ImagingStudy", params=params, timeout=30))


def wado_resources(server: str) -> tuple[str, list[str]]:
    """The Endpoint address of one of A's studies, and every WADO-RS resource path under it."""
    bundle = httpx.get(f"{server}/a/fhir/ImagingStudy", params={"patient": "pat-a"}, timeout=30).json()
    study = bundle["entry"][0]["resource"]
    address = study["contained"][0]["address"]
    series = study["series"][0]["uid"]
    instance = study["series"][0]["instance"][0]["uid"]
    root = f"studies/{study['id']}"
    inst = f"{root}/series/{series}/instances/{instance}"
    paths = [root, f"{root}/metadata", f"{root}/series/{series}", f"{root}/series/{series}/metadata"]
    paths += [inst, f"{inst}/metadata", f"{inst}/frames/1", f"{inst}/rendered", f"{inst}/thumbnail"]
    paths += [f"{root}/rendered", f"{root}/series/{series}/rendered", f"{inst}/frames/1/rendered"]
    paths += [f"{inst}/bulk/7FE00010"]
    return address, paths


@pytest.mark.parametrize(
    "accept",
    [
        'multipart/related; type="application/dicom"; transfer-syntax=\u00e9',
        "application/dicom+json; charset=\u00fcnicode",
        "image/j\u00e9peg",
        'multipart/related; type="application/octet-stream"; transfer-syntax="1.2.840.10008.1.2.1\u2028"',
    ],
)
def test_non_ascii_accept_is_400_on_every_wado_route(server: str, accept: str) -> None:
    address, paths = wado_resources(server)
    with httpx.Client(timeout=30) as client:
        for path in paths:
            response = client.get(f"{address}/{path}", headers={"Accept": accept.encode("utf-8")})
            body = assert_wado_error(response)
            assert body["error"] == "bad_request" and "Accept" in body["message"], path
        # the same routes answer with a plain ASCII Accept (or no Accept): the refusal is the header's
        metadata = client.get(f"{address}/{paths[1]}", headers={"Accept": "application/dicom+json"})
        assert metadata.status_code == 200


@pytest.mark.parametrize("frames", [*UNICODE_DIGITS, "1,\u00b2", " 1", "+1", "1_0", "0", "1,,2", "99999999"])
def test_bad_frame_numbers_are_400(server: str, frames: str) -> None:
    address, paths = wado_resources(server)
    instance = next(p for p in paths if p.endswith("/frames/1")).removesuffix("/frames/1")
    response = httpx.get(f"{address}/{instance}/frames/{frames}", timeout=30)
    assert "frame numbers" in assert_wado_error(response)["message"]


def test_uid_with_a_trailing_newline_is_refused(server: str) -> None:
    """``re.match("^...$")`` accepts a trailing newline; the router already stops ``%0A`` (404),
    and the path parser refuses it too should it ever get one."""
    address, paths = wado_resources(server)
    response = httpx.get(f"{address}/{paths[0]}%0A/metadata", timeout=30)
    assert response.status_code in (400, 404) and set(response.json()) == {"error", "message"}
    study = paths[0].removeprefix("studies/")
    with pytest.raises(BadRequest):
        WadoRequest.parse(f"{study}\n/metadata", (), "")
    with pytest.raises(BadRequest):
        WadoRequest.parse(f"{study}/series/1.2\n/metadata", (), "")
    assert WadoRequest.parse(f"{study}/metadata", (), "").study_uid == study


def _dyn(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e999"])
@pytest.mark.parametrize("field", ["lookupUntil", "retrieveUntil"])
def test_non_finite_numbers_in_dyn_configs_are_400(
    server: str, orthanc: Orthanc, literal: str, field: str
) -> None:
    images = json.dumps(dicomweb_tenant(orthanc, lookup="all-studies-on-server"))[:-1]
    raw = (
        '{"authorization": {"type": "mock", "disableAuthzChecks": true}, "images": '
        f'{images}, "delay": {{"{field}": {literal}}}}}}}'
    )
    for route in ("fhir/ImagingStudy", "fhir/metadata", "wado/x/studies/1.2.3"):
        response = httpx.get(f"{server}/dyn/{_dyn(raw.encode())}/{route}", timeout=30)
        assert response.status_code == 400, (route, response.text)
        assert "Traceback" not in response.text
        assert f"images.delay.{field}" in response.text and "finite" in response.text
    text = json.loads(httpx.get(f"{server}/dyn/{_dyn(raw.encode())}/fhir/ImagingStudy", timeout=30).text)[
        "issue"
    ][0]["diagnostics"]
    assert orthanc.password not in text  # the problem is named, the config's secrets are not echoed


def test_non_finite_numbers_in_tenant_files_are_refused(tmp_path: Path, orthanc: Orthanc) -> None:
    images = json.dumps(dicomweb_tenant(orthanc))[:-1]
    (tmp_path / "clinic.json").write_text(
        '{"authorization": {"type": "mock"}, "images": ' + images + ', "delay": {"lookupUntil": Infinity}}}'
    )
    (tmp_path / "ok.json").write_text(
        json.dumps({"authorization": {"type": "mock"}, "images": dicomweb_tenant(orthanc)})
    )
    check = subprocess.run(
        [sys.executable, "-m", "smart_imaging.cli", "check-config", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1
    assert "clinic.json: images.delay.lookupUntil: inf is not a finite number" in check.stdout
    assert "ok.json: ok" in check.stdout
    serve = subprocess.run(
        [
            sys.executable,
            "-m",
            "smart_imaging.cli",
            "serve",
            "--config-dir",
            str(tmp_path),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 2
    assert "clinic.json: images.delay.lookupUntil" in serve.stderr and "Traceback" not in serve.stderr
