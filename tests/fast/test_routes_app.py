"""What every route shares, HTTP in and HTTP out: errors rendered as a FHIR OperationOutcome on
FHIR routes and as short JSON elsewhere (never a traceback), CORS for viewers on other origins,
``/healthz`` and ``/metrics``."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, Route

from smart_imaging.app import create_app
from smart_imaging.settings import Settings

from .conftest import A_UIDS, World

ORIGIN = "https://viewer.example"
SECRET = "archive-password-s3cr3t"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/nope/fhir/ImagingStudy?patient=pat-a", 404),  # unknown tenant
        ("/a/fhir/Patient", 404),  # no such FHIR route
        ("/a/fhir/ImagingStudy?patient=pat-b", 403),
        ("/a/fhir/ImagingStudy?patient=pat-a&_count=x", 400),
        ("/slow/fhir/ImagingStudy?patient=pat-a", 503),
    ],
)
async def test_fhir_errors_are_operation_outcomes(world: World, path: str, status: int) -> None:
    response = await world.client.get(path, headers=world.headers())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/nope/wado/x/studies/1.2.3", 404, "not_found"),  # unknown tenant
        ("/a/wado/x/studies/1.2.3", 403, "forbidden"),  # not a binding
        ("/a/wado/x/studies/1..2", 400, "bad_request"),
        ("/nothing/here/at/all", 404, "not_found"),
    ],
)
async def test_other_errors_are_short_json(world: World, path: str, status: int, code: str) -> None:
    response = await world.client.get(path, headers=world.headers())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": code, "message": response.json()["message"]}
    assert response.json()["message"]


async def test_a_method_not_allowed_is_405(world: World) -> None:
    response = await world.client.post("/a/fhir/ImagingStudy", headers=world.headers())
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_an_unexpected_failure_is_a_bare_500_without_its_message(world: World) -> None:
    base = await world.wado_base(A_UIDS[0])
    world.source.search_error = RuntimeError(f"connect failed for user smart password {SECRET}")
    # Starlette re-raises an unexpected error after its 500 for the server's log: the streaming
    # transport keeps it (app_errors) where httpx.ASGITransport would raise it at the client.
    fhir = await world.streaming.get("/a/fhir/ImagingStudy?patient=pat-a", headers=world.headers())
    assert fhir.status_code == 500
    assert fhir.json()["resourceType"] == "OperationOutcome"
    assert SECRET not in fhir.text and "Traceback" not in fhir.text and "RuntimeError" not in fhir.text
    world.source.retrieve_error = RuntimeError(f"boom {SECRET}")
    wado = await world.streaming.get(f"{base}/studies/{A_UIDS[0]}", headers=world.headers())
    assert wado.status_code == 500 and set(wado.json()) == {"error", "message"}
    assert SECRET not in wado.text and "Traceback" not in wado.text
    assert [type(e) for e in world.transport.app_errors] == [RuntimeError, RuntimeError]


@pytest.mark.parametrize("path", ["/a/fhir/ImagingStudy", "/a/wado/x/studies/1.2.3/metadata"])
async def test_cors_preflight_allows_a_viewer_on_another_origin(world: World, path: str) -> None:
    response = await world.client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, accept",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "accept"} <= allowed
    assert "GET" in response.headers["access-control-allow-methods"]
    assert world.authorizer.requests == []  # a preflight carries no token and is not authorized


async def test_cors_answers_expose_retry_after_and_the_challenge(world: World) -> None:
    headers = world.headers(Origin=ORIGIN)
    response = await world.client.get("/slow/fhir/ImagingStudy?patient=pat-a", headers=headers)
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "www-authenticate"} <= exposed


async def test_healthz_lists_the_tenants(world: World) -> None:
    response = await world.client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["tenants"] == ["a", "a2", "slow", "slowwado"]
    assert body["dynamicTenants"] is False


async def test_metrics_count_requests_by_route_and_status(world: World) -> None:
    await world.client.get("/a/fhir/ImagingStudy?patient=pat-b", headers=world.headers())
    await world.client.get("/a/fhir/ImagingStudy?patient=pat-b", headers=world.headers())
    base = await world.wado_base(A_UIDS[0])  # one FHIR 200
    await world.client.get(f"{base}/studies/{A_UIDS[0]}", headers=world.headers())
    response = await world.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    counts = {
        (route, status): float(value)
        for route, status, value in re.findall(
            r'^smart_imaging_requests_total\{route="(\w+)",status="(\d+)"\} (\S+)$', response.text, re.M
        )
    }
    assert counts[("fhir", "403")] == 2
    assert counts[("fhir", "200")] == 1
    assert counts[("wado", "200")] == 1
    body_bytes = re.search(r'^smart_imaging_response_bytes_total\{route="wado"\} (\S+)$', response.text, re.M)
    assert body_bytes and float(body_bytes.group(1)) == len(b"".join(world.source.parts))
    assert "/wado/" not in response.text  # no capability URL in a label


@pytest.mark.parametrize(
    ("rest", "endpoint"),
    [
        ("", "studies"),  # QIDO-RS collections (PS3.18 10.6)
        ("/1.2.3/series", "series"),
        ("/1.2.3/instances", "instances"),
        ("/1.2.3/series/1.2.4/instances", "instances"),
        ("/1.2.3", "retrieve"),  # WADO-RS resources
        ("/1.2.3/metadata", "retrieve"),
        ("/1.2.3/series/1.2.4", "retrieve"),
        ("/1.2.3/series/1.2.4/instances/1.2.5", "retrieve"),
        ("/1.2.3/series/1.2.4/instances/1.2.5/frames/1,2", "retrieve"),
        ("/1.2.3/series/1.2.4/instances/1.2.5/bulk/7FE00010", "retrieve"),
        ("/1.2.3/series/", "retrieve"),  # not a collection: WADO-RS parses (and refuses) it
    ],
)
@pytest.mark.parametrize("prefix", ["/a", "/dyn/eyJ4IjoxfQ"])
def test_wado_rs_is_matched_first_and_leaves_qido_rs_its_collections(
    prefix: str, rest: str, endpoint: str
) -> None:
    app = create_app(Settings(key="k" * 32), tenants={})
    path = f"{prefix}/wado/{'b' * 300}/studies{rest}"
    scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
    found = next(route for route in app.routes if route.matches(scope)[0] is Match.FULL)
    assert isinstance(found, Route) and found.endpoint.__name__ == endpoint
    if endpoint == "retrieve":  # no QIDO-RS pattern tried before it
        mine = found.path.split("/wado/")[0] + "/wado/"  # this prefix's QIDO-RS routes
        before = app.routes[: app.routes.index(found)]
        assert not [route for route in before if getattr(route, "path", "").startswith(mine)]
