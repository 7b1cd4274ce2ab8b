"""WADO-RS through the real server: byte-identical retrieval, binding checks, errors."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from smart_imaging.binding import Binding, key_from_secret, seal, token_digest
from smart_imaging.dicom import multipart

from .conftest import TEST_KEY, dicomweb_tenant, mock_patient
from .orthanc import Orthanc
from .sample_dicom import SampleData

A, B = "77654033", "98890234"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


@pytest.fixture
def server(orthanc: Orthanc, sample_data: SampleData, imaging_server: Callable[..., str]) -> str:
    return imaging_server(
        {
            "a": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-a", A)},
                "images": dicomweb_tenant(orthanc),
            },
            "a2": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-a", A)},
                "images": dicomweb_tenant(orthanc),
            },
            "b": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-b", B)},
                "images": dicomweb_tenant(orthanc, lookup="all-studies-on-server"),
            },
            "delayed": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": dicomweb_tenant(
                    orthanc,
                    lookup="all-studies-on-server",
                    delay={"lookupUntil": 4833623642, "retrieveUntil": 4833623642},
                ),
            },
            "down": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": {
                    "type": "dicom-web",
                    "endpoint": "http://127.0.0.1:9/dicom-web",
                    "lookup": "all-studies-on-server",
                },
            },
            "badcreds": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": {
                    **dicomweb_tenant(orthanc, lookup="all-studies-on-server"),
                    "authentication": {
                        "type": "http-basic",
                        "username": "smart",
                        "password": "wrong-password-123",
                    },
                },
            },
        }
    )


def endpoints(base: str, tenant: str, patient: str) -> dict[str, str]:
    """Study UID -> Endpoint address, from a search."""
    bundle = httpx.get(f"{base}/{tenant}/fhir/ImagingStudy", params={"patient": patient}, timeout=30).json()
    return {e["resource"]["id"]: e["resource"]["contained"][0]["address"] for e in bundle["entry"]}


def parts(response: httpx.Response) -> list[bytes]:
    return [body for _, body in multipart.decode(response.headers["content-type"], response.content)]


def test_study_instances_are_byte_identical(server: str, sample_data: SampleData) -> None:
    for study, address in endpoints(server, "a", "pat-a").items():
        response = httpx.get(f"{address}/studies/{study}", headers={"Accept": MULTIPART_DICOM}, timeout=60)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("multipart/related")
        got = {
            pydicom.dcmread(io.BytesIO(p), stop_before_pixels=True).SOPInstanceUID: p for p in parts(response)
        }
        assert got == sample_data.instances_of(study)


def test_unquoted_accept_type_works_too(server: str, sample_data: SampleData) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    response = httpx.get(
        f"{address}/studies/{study}",
        headers={"Accept": "multipart/related; type=application/dicom"},
        timeout=60,
    )
    assert response.status_code == 200
    assert len(parts(response)) == len(sample_data.instances_of(study))


def test_dicomweb_client_uses_the_endpoint_as_base_url(server: str, sample_data: SampleData) -> None:
    real = set(sample_data.patients[A] + sample_data.patients[B])  # not the deliberately broken ones
    for study, address in endpoints(server, "b", "pat-b").items():
        if study not in real:
            continue
        client = DICOMwebClient(url=address)
        instances = client.retrieve_study(study)
        stored = sample_data.instances_of(study)
        assert {ds.SOPInstanceUID for ds in instances} == set(stored)
        for ds in instances:
            original = pydicom.dcmread(io.BytesIO(stored[ds.SOPInstanceUID]))
            assert ds.PixelData == original.PixelData
        metadata = client.retrieve_study_metadata(study)
        assert len(metadata) == len(stored)
        series_uid = metadata[0]["0020000E"]["Value"][0]
        sop_uid = metadata[0]["00080018"]["Value"][0]
        one = client.retrieve_instance(study, series_uid, sop_uid)
        assert one.SOPInstanceUID == sop_uid


def test_metadata_points_bulkdata_at_us_and_frames_and_rendered_work(
    server: str, sample_data: SampleData
) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    metadata = httpx.get(f"{address}/studies/{study}/metadata", timeout=30)
    assert metadata.status_code == 200 and metadata.headers["content-type"].startswith(
        "application/dicom+json"
    )
    instance = metadata.json()[0]
    bulk = instance["7FE00010"]["BulkDataURI"]
    assert bulk.startswith(address + "/studies/")
    assert "127.0.0.1" not in bulk.replace(server, "")
    series, sop = instance["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    base = f"{address}/studies/{study}/series/{series}/instances/{sop}"
    frame = httpx.get(
        f"{base}/frames/1", headers={"Accept": 'multipart/related; type="application/octet-stream"'}
    )
    assert frame.status_code == 200
    original = pydicom.dcmread(io.BytesIO(sample_data.files[sop]))
    assert parts(frame)[0] == original.PixelData[: len(parts(frame)[0])] and len(parts(frame)[0]) > 0
    rendered = httpx.get(f"{base}/rendered", headers={"Accept": "image/png"}, timeout=30)
    assert rendered.status_code == 200 and rendered.content[:8] == b"\x89PNG\r\n\x1a\n"
    bulk_response = httpx.get(bulk, headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert bulk_response.status_code == 200 and len(bulk_response.content) >= len(original.PixelData)


def test_series_and_instance_levels(server: str, sample_data: SampleData) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    metadata = httpx.get(f"{address}/studies/{study}/series/{_first_series(address, study)}/metadata").json()
    series = metadata[0]["0020000E"]["Value"][0]
    sop = metadata[0]["00080018"]["Value"][0]
    response = httpx.get(
        f"{address}/studies/{study}/series/{series}/instances/{sop}", headers={"Accept": MULTIPART_DICOM}
    )
    assert parts(response) == [sample_data.files[sop]]


def _first_series(address: str, study: str) -> str:
    return str(httpx.get(f"{address}/studies/{study}/metadata").json()[0]["0020000E"]["Value"][0])


def test_another_patients_token_is_refused(server: str) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    # tenant b's grant is patient B: the same binding presented there belongs to tenant a
    other = address.replace(f"{server}/a/", f"{server}/b/")
    response = httpx.get(f"{other}/studies/{study}/metadata")
    assert response.status_code == 403
    assert set(response.json()) == {"error", "message"}


def test_binding_of_another_tenant_with_the_same_patient_is_refused(server: str) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    other = address.replace(f"{server}/a/", f"{server}/a2/")
    assert httpx.get(f"{other}/studies/{study}/metadata").status_code == 403


def test_binding_for_one_study_does_not_open_another(server: str, sample_data: SampleData) -> None:
    studies = endpoints(server, "b", "pat-b")
    (s1, a1), (s2, _) = list(studies.items())[:2]
    assert httpx.get(f"{a1}/studies/{s2}/metadata").status_code == 403
    # appending path segments never widens access
    for suffix in (
        f"/studies/{s1}/../{s2}/metadata",
        f"/studies/{s1}/series/../../{s2}",
        f"/studies/{s1}/metadata/../../{s2}",
        f"/studies/{s1}%2F..%2F{s2}",
    ):
        response = httpx.get(a1 + suffix)
        assert response.status_code in (400, 403, 404), suffix
    other_patient = next(iter(endpoints(server, "a", "pat-a")))
    assert httpx.get(f"{a1}/studies/{other_patient}/metadata").status_code == 403


def test_tampered_binding_is_refused(server: str) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    prefix, token = address.rsplit("/", 1)
    pieces = token.split(".")
    pieces[3] = pieces[3][:-4] + ("AAAA" if not pieces[3].endswith("AAAA") else "BBBB")
    for bad in (".".join(pieces), token[:-1], "not-a-token", "a.b.c.d.e"):
        response = httpx.get(f"{prefix}/{bad}/studies/{study}/metadata")
        assert response.status_code == 403, bad
        assert "message" in response.json()


def test_invalid_uids_and_paths(server: str) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    assert httpx.get(f"{address}/studies/1.02.3").status_code == 400
    assert httpx.get(f"{address}/studies/{study}/series/x.y").status_code == 400
    assert httpx.get(f"{address}/studies/{study}/frames/1").status_code == 404
    assert httpx.get(f"{address}/studies/{study}/series/1.2/instances/1.3/frames/0").status_code == 400


def test_unknown_series_is_404(server: str) -> None:
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    response = httpx.get(f"{address}/studies/{study}/series/1.2.3.999/metadata")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_delay_answers_503_with_retry_after(server: str) -> None:
    search = httpx.get(f"{server}/delayed/fhir/ImagingStudy")
    assert search.status_code == 503
    assert int(search.headers["retry-after"]) > 0
    assert search.json()["resourceType"] == "OperationOutcome"


def test_archive_down_is_502_and_bad_credentials_502(server: str) -> None:
    down = httpx.get(f"{server}/down/fhir/ImagingStudy")
    assert down.status_code == 502
    assert "unreachable" in down.json()["issue"][0]["diagnostics"]
    creds = httpx.get(f"{server}/badcreds/fhir/ImagingStudy")
    assert creds.status_code == 502
    assert "wrong-password-123" not in creds.text


@pytest.fixture
def silent_archive() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/dicom-web"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_archive_timeout_is_504(imaging_server: Callable[..., str], silent_archive: str) -> None:
    base = imaging_server(
        {
            "slow": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": {
                    "type": "dicom-web",
                    "endpoint": silent_archive,
                    "lookup": "all-studies-on-server",
                    "timeout": 0.5,
                },
            }
        }
    )
    response = httpx.get(f"{base}/slow/fhir/ImagingStudy", timeout=10)
    assert response.status_code == 504
    assert response.json()["issue"][0]["code"] == "timeout"


def test_retrieve_delay_is_503(
    server: str, orthanc: Orthanc, imaging_server: Callable[..., str], sample_data: SampleData
) -> None:
    base = imaging_server(
        {
            "d": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": dicomweb_tenant(
                    orthanc, lookup="all-studies-on-server", delay={"retrieveUntil": 4833623642}
                ),
            }
        }
    )
    bundle = httpx.get(f"{base}/d/fhir/ImagingStudy").json()
    study = bundle["entry"][0]["resource"]
    response = httpx.get(f"{study['contained'][0]['address']}/studies/{study['id']}")
    assert response.status_code == 503 and int(response.headers["retry-after"]) > 0
    assert response.json()["error"] == "unavailable"


def test_cors_for_browser_apps(server: str) -> None:
    preflight = httpx.options(
        f"{server}/a/fhir/ImagingStudy",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, accept",
        },
    )
    assert preflight.status_code == 200
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    response = httpx.get(f"{server}/delayed/fhir/ImagingStudy", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()


def test_binding_for_another_patient_is_refused(server: str) -> None:
    """A binding sealed for patient Z of tenant a does not open for a grant of patient A."""
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    key, _ = key_from_secret(TEST_KEY)
    forged = seal(Binding("a", study, "pat-z", int(time.time()) + 600), key)
    prefix = address.rsplit("/", 1)[0]
    response = httpx.get(f"{prefix}/{forged}/studies/{study}/metadata")
    assert response.status_code == 403
    assert "patient" in response.json()["message"]
    unbound = seal(Binding("a", study, None, int(time.time()) + 600), key)
    assert httpx.get(f"{prefix}/{unbound}/studies/{study}/metadata").status_code == 403
    # issue 11: a binding is also bound to the access token that searched (here: none, a mock tenant)
    tokenless = seal(Binding("a", study, "pat-a", int(time.time()) + 600), key)
    assert httpx.get(f"{prefix}/{tokenless}/studies/{study}/metadata").status_code == 403
    genuine = seal(Binding("a", study, "pat-a", int(time.time()) + 600, None, token_digest(None, key)), key)
    assert httpx.get(f"{prefix}/{genuine}/studies/{study}/metadata").status_code == 200


def test_a_study_holding_another_patients_data_is_refused(
    orthanc: Orthanc, sample_data: SampleData, imaging_server: Callable[..., str]
) -> None:
    """Bad archive data: one study UID with instances of MIX-A and MIX-B. MIX-A finds the study,
    but retrieving it would hand out MIX-B's instance: refused."""
    base = imaging_server(
        {
            "m": {
                "authorization": {"type": "mock", "patient": mock_patient("mix-a", "MIX-A")},
                "images": dicomweb_tenant(orthanc),
            }
        }
    )
    bundle = httpx.get(f"{base}/m/fhir/ImagingStudy", params={"patient": "mix-a"}, timeout=30).json()
    study = bundle["entry"][0]["resource"]
    address = study["contained"][0]["address"]
    for suffix in ("", "/metadata"):
        response = httpx.get(f"{address}/studies/{study['id']}{suffix}", timeout=30)
        assert response.status_code == 403
        assert "another patient" in response.json()["message"]


def test_part_content_locations_point_at_us_never_at_the_archive(
    server: str, orthanc: Orthanc, sample_data: SampleData
) -> None:
    """Orthanc names each frame part with its own address (Content-Location: http://127.0.0.1:
    <port>/dicom-web/...): passed on, it is rewritten under the Endpoint, the same frame."""
    study, address = next(iter(endpoints(server, "a", "pat-a").items()))
    instance = httpx.get(f"{address}/studies/{study}/metadata", timeout=30).json()[0]
    series, sop = instance["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    path = f"/studies/{study}/series/{series}/instances/{sop}/frames/1"
    octets = {"Accept": 'multipart/related; type="application/octet-stream"'}
    direct = httpx.get(orthanc.dicomweb_url + path, headers=octets, auth=orthanc.auth)
    assert any(
        "content-location" in h for h, _ in multipart.decode(direct.headers["content-type"], direct.content)
    )
    response = httpx.get(address + path, headers=octets, timeout=30)
    assert response.status_code == 200
    decoded = list(multipart.decode(response.headers["content-type"], response.content))
    assert [h["content-location"] for h, _ in decoded] == [address + path]
    assert f":{orthanc.http_port}" not in response.text and "/dicom-web/" not in response.text
    assert response.headers.get("content-location", address).startswith(address)
    again = httpx.get(decoded[0][0]["content-location"], headers=octets, timeout=30)
    assert [p for _, p in multipart.decode(again.headers["content-type"], again.content)] == [decoded[0][1]]
