"""WADO-RS retrieval, HTTP in and HTTP out, against fakes: the binding of a search grants one
study of one patient on one tenant for a while (SMART Imaging Access IG), paths and UIDs are
checked before any archive access (PS3.18 10.4), Accept defaults per resource (PS3.18 8.7.3),
and the archive's body streams through; a body failing mid-stream is a broken transfer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from smart_imaging.errors import NotAcceptable, NotFound, UpstreamError, UpstreamTimeout
from smart_imaging.sources.base import WadoRequest

from ..support.fakes import chunks, study
from .conftest import A_UIDS, World

UID = A_UIDS[0]
SERIES, INSTANCE = f"{UID}.1", f"{UID}.1.1"


def error(response: httpx.Response, status: int, code: str) -> str:
    """Assert a WADO error answer: short JSON ``{"error", "message"}``; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] == code
    return str(body["message"])


async def test_a_searched_study_is_retrieved_with_the_same_token(world: World) -> None:
    base = await world.wado_base(UID)
    response = await world.client.get(f"{base}/studies/{UID}", headers=world.headers())
    assert response.status_code == 200, response.text
    assert response.content == b"".join(world.source.parts)
    (asked,) = world.source.retrievals
    assert asked.study_uid == UID and asked.series_uid is None and asked.resource == ""
    assert world.source.responses_closed == 1


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("", 'multipart/related; type="application/dicom"'),
        ("/metadata", "application/dicom+json"),
        (f"/series/{SERIES}", 'multipart/related; type="application/dicom"'),
        (f"/series/{SERIES}/metadata", "application/dicom+json"),
        (
            f"/series/{SERIES}/instances/{INSTANCE}/frames/1,2",
            'multipart/related; type="application/octet-stream"',
        ),
        ("/rendered", "image/jpeg"),
        (f"/series/{SERIES}/instances/{INSTANCE}/thumbnail", "image/jpeg"),
    ],
)
async def test_accept_defaults_per_resource(world: World, path: str, media_type: str) -> None:
    base = await world.wado_base(UID)
    response = await world.client.get(f"{base}/studies/{UID}{path}", headers=world.headers())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert world.source.retrievals[-1].accept == media_type


async def test_an_explicit_accept_reaches_the_source_normalized(world: World) -> None:
    base = await world.wado_base(UID)
    accept = "multipart/related; type=application/dicom; transfer-syntax=*"
    response = await world.client.get(f"{base}/studies/{UID}", headers=world.headers(Accept=accept))
    assert response.status_code == 200
    sent = world.source.retrievals[-1].accept or ""
    assert sent.startswith('multipart/related; type="application/dicom"') and "transfer-syntax" in sent


async def test_the_binding_of_another_tenant_is_403(world: World) -> None:
    base = await world.wado_base(UID)
    elsewhere = base.replace("/a/wado/", "/a2/wado/", 1)
    error(await world.client.get(f"{elsewhere}/studies/{UID}", headers=world.headers()), 403, "forbidden")
    assert world.source.retrievals == []


async def test_the_binding_of_another_study_is_403(world: World) -> None:
    base = await world.wado_base(UID)
    for other in (A_UIDS[1], f"{UID}.9"):
        response = await world.client.get(f"{base}/studies/{other}", headers=world.headers())
        error(response, 403, "forbidden")
    assert world.source.retrievals == []


async def test_the_token_of_another_patient_is_403(world: World) -> None:
    base = await world.wado_base(UID)
    other = await world.client.get(f"{base}/studies/{UID}", headers=world.headers("token-b"))
    error(other, 403, "forbidden")
    none = await world.client.get(f"{base}/studies/{UID}", headers=world.headers("token-none"))
    error(none, 403, "forbidden")
    assert world.source.retrievals == []


async def test_no_token_is_401_even_with_a_valid_binding(world: World) -> None:
    base = await world.wado_base(UID)
    response = await world.client.get(f"{base}/studies/{UID}")
    error(response, 401, "missing_token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert world.source.retrievals == []


async def test_an_expired_binding_is_403(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    base = await world.wado_base(UID)
    now = time.time
    monkeypatch.setattr(time, "time", lambda: now() + 2 * 3600)  # bindingTtl is one hour
    message = error(
        await world.client.get(f"{base}/studies/{UID}", headers=world.headers()), 403, "forbidden"
    )
    assert "expired" in message
    assert world.source.retrievals == []


async def test_a_changed_binding_is_403(world: World) -> None:
    base = await world.wado_base(UID)
    prefix, token = base.rsplit("/", 1)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for forged in (flipped, token[:-1], "x.y.z.w.v", "garbage"):
        response = await world.client.get(f"{prefix}/{forged}/studies/{UID}", headers=world.headers())
        error(response, 403, "forbidden")
    assert world.source.retrievals == []


@pytest.mark.parametrize(
    "path",
    [
        "/nonsense",
        f"/series/{SERIES}/frames/1",
        "/metadata/extra",
        "//metadata",
    ],
)
async def test_an_unknown_path_is_404(world: World, path: str) -> None:
    base = await world.wado_base(UID)
    error(await world.client.get(f"{base}/studies/{UID}{path}", headers=world.headers()), 404, "not_found")
    assert world.source.retrievals == []


@pytest.mark.parametrize(
    "path",
    [
        "/series/not-a-uid/metadata",
        f"/series/{SERIES}/instances/1.2.03/metadata",  # a component with a leading zero
        f"/series/{SERIES}/instances/{INSTANCE}/frames/0",
        f"/series/{SERIES}/instances/{INSTANCE}/frames/1,x",
    ],
)
async def test_a_bad_uid_or_frame_number_is_400(world: World, path: str) -> None:
    base = await world.wado_base(UID)
    error(await world.client.get(f"{base}/studies/{UID}{path}", headers=world.headers()), 400, "bad_request")
    assert world.source.retrievals == []


async def test_a_bad_study_uid_is_400(world: World) -> None:
    base = await world.wado_base(UID)
    for bad in ("not-a-uid", "1..2", "01.2", f"{UID}.", f"{UID} "):
        error(await world.client.get(f"{base}/studies/{bad}", headers=world.headers()), 400, "bad_request")
    newline = await world.client.get(f"{base}/studies/{UID}%0A/metadata", headers=world.headers())
    assert newline.status_code in (400, 404) and set(newline.json()) == {"error", "message"}
    assert world.source.retrievals == []


async def test_a_study_filing_another_patients_data_is_403(world: World) -> None:
    base = await world.wado_base(UID)
    world.source.studies.append(study(UID, "MRN-B"))  # the archive files MRN-B under the same UID
    error(await world.client.get(f"{base}/studies/{UID}", headers=world.headers()), 403, "forbidden")
    assert world.source.retrievals == []


async def test_a_delayed_tenant_answers_503_with_retry_after(world: World) -> None:
    base = await world.wado_base(UID, tenant="slowwado")
    response = await world.client.get(f"{base}/studies/{UID}", headers=world.headers())
    error(response, 503, "unavailable")
    assert 3500 <= int(response.headers["retry-after"]) <= 3600
    assert world.source.retrievals == []


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (NotFound("no such study in the archive"), 404, "not_found"),
        (NotAcceptable("cannot answer in that transfer syntax"), 406, "not_acceptable"),
        (UpstreamError("the archive answered 500"), 502, "bad_gateway"),
        (UpstreamTimeout("the archive did not answer in time"), 504, "gateway_timeout"),
    ],
)
async def test_source_refusals_are_json_errors(
    world: World, failure: Exception, status: int, code: str
) -> None:
    base = await world.wado_base(UID)
    world.source.retrieve_error = failure
    error(await world.client.get(f"{base}/studies/{UID}", headers=world.headers()), status, code)


async def test_a_body_failing_before_its_first_chunk_is_a_clean_502(world: World) -> None:
    async def broken(request: WadoRequest) -> AsyncIterator[bytes]:
        raise UpstreamError("the archive closed the connection")
        yield b""  # pragma: no cover - makes this an async generator

    base = await world.wado_base(UID)
    world.source.body = broken
    error(await world.client.get(f"{base}/studies/{UID}", headers=world.headers()), 502, "bad_gateway")
    assert world.source.responses_closed == 1


async def test_the_body_streams_chunk_by_chunk(world: World) -> None:
    """The first chunk reaches the client while the source still holds the second."""
    release = asyncio.Event()
    produced: list[bytes] = []

    async def gated(request: WadoRequest) -> AsyncIterator[bytes]:
        for n in range(1, 4):
            if n == 2:
                await release.wait()
            produced.append(b"chunk-%d" % n)
            yield b"chunk-%d" % n

    base = await world.wado_base(UID)
    world.source.body = gated
    request = world.streaming.build_request("GET", f"{base}/studies/{UID}", headers=world.headers())
    try:
        async with asyncio.timeout(5):  # a route that buffered the body would never answer here
            response = await world.streaming.send(request, stream=True)
            chunks_in = response.aiter_raw()
            received = [await anext(chunks_in)]
        assert response.status_code == 200
        assert received == [b"chunk-1"] and produced == [b"chunk-1"]  # nothing read ahead of the client
        release.set()
        received += [chunk async for chunk in chunks_in]
        await response.aclose()
    finally:
        release.set()
    assert received == [b"chunk-1", b"chunk-2", b"chunk-3"]  # chunk boundaries kept: no re-buffering
    assert world.source.responses_closed == 1


async def test_a_body_failing_mid_stream_is_a_broken_transfer_not_a_clean_end(world: World) -> None:
    base = await world.wado_base(UID)
    world.source.body = lambda request: chunks([b"part-1", b"part-2"], then_fail=True)
    received: list[bytes] = []
    async with world.streaming.stream("GET", f"{base}/studies/{UID}", headers=world.headers()) as response:
        assert response.status_code == 200  # the status line was out before the failure
        with pytest.raises(httpx.RemoteProtocolError):
            async for chunk in response.aiter_raw():
                received.append(chunk)
    assert received == [b"part-1", b"part-2"]
    assert world.source.responses_closed == 1


async def test_a_complete_body_ends_cleanly_over_the_streaming_transport(world: World) -> None:
    """The counterpart of the broken transfer: the same transport reports a clean end."""
    base = await world.wado_base(UID)
    response = await world.streaming.get(f"{base}/studies/{UID}", headers=world.headers())
    assert response.status_code == 200 and response.content == b"".join(world.source.parts)
