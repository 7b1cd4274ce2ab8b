"""Security regressions for dynamic tenants and config parsing: no 500s, no secrets in logs."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from smart_imaging.app import create_app, web_routes
from smart_imaging.auth.discovery import parse_smart_configuration
from smart_imaging.config.loader import encode_dynamic, parse_config
from smart_imaging.errors import ConfigError, UpstreamError
from smart_imaging.settings import Settings

from .conftest import TEST_KEY


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _mock_dicomweb(endpoint: str) -> dict[str, Any]:
    return {
        "authorization": {"type": "mock", "disableAuthzChecks": True},
        "images": {"type": "dicom-web", "endpoint": endpoint, "lookup": "all-studies-on-server"},
    }


def _smart_images(endpoint: str) -> dict[str, Any]:
    """Images behind a real authorizer: by MRN (all-studies-on-server is refused there)."""
    return {"type": "dicom-web", "endpoint": endpoint, "lookup": "studies-by-mrn"}


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/dicom-web", "http://127.0.0.1:abc/dicom-web"])
def test_dynamic_config_with_a_bad_port_is_400(imaging_server: Callable[..., str], url: str) -> None:
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=("127.0.0.1",))
    for config in (
        _mock_dicomweb(url),
        {
            "authorization": {"type": "smart-on-fhir", "fhirBaseUrl": url},
            "images": _smart_images("http://127.0.0.1/x"),
        },
    ):
        response = httpx.get(f"{base}/dyn/{encode_dynamic(config)}/fhir/ImagingStudy")
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


def test_config_file_with_a_bad_port_fails_validation() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_mock_dicomweb("http://pacs.example:70000/dicom-web"))
    assert caught.value.problems[0][0] == "images.endpoint"


@pytest.mark.parametrize(
    "text", ["[" * 600 + "]" * 600, '{"a":' * 600 + "1" + "}" * 600, "[" * 5000 + "]" * 5000]
)
def test_deeply_nested_config_is_400(serve: Callable[[Any], str], text: str) -> None:
    base = serve(
        create_app(
            Settings(key=TEST_KEY, dynamic_tenants=True, dynamic_upstream_allow=("*",)),
            tenants={},
            extra_routes=web_routes(),
        )
    )
    encoded = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    response = httpx.get(f"{base}/dyn/{encoded}/fhir/ImagingStudy")
    assert response.status_code == 400, response.text
    validate = httpx.post(f"{base}/api/validate-config", content=text.encode())
    assert validate.status_code == 200 and validate.json()["valid"] is False
    with pytest.raises(ConfigError):
        parse_config(
            {
                "authorization": {"type": "mock"},
                "images": {"type": "folder", "path": "/x"},
                "deep": _nested(600),
            }
        )


@pytest.mark.parametrize("url", ["http://ehr.example:abc/token", "http://ehr.example:99999/token"])
def test_discovered_endpoint_with_a_bad_port_is_an_upstream_error(url: str) -> None:
    """httpx raises InvalidURL (not an HTTPError) on such URLs: it became a 500."""
    with pytest.raises(UpstreamError):
        parse_smart_configuration({"token_endpoint": url})


def test_dynamic_dimse_config_cannot_name_a_local_cache_dir(imaging_server: Callable[..., str]) -> None:
    """Like ``folder``, a local path: the server would create and fill (and rmtree) directories
    wherever the URL's author says."""
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=("*",))
    config = {
        "authorization": {"type": "mock", "disableAuthzChecks": True},
        "images": {
            "type": "dicom-dimse",
            "endpoint": "dimse://127.0.0.1:11112",
            "lookup": "all-studies-on-server",
            "cacheDir": "/tmp/anywhere",
        },
    }
    response = httpx.get(f"{base}/dyn/{encode_dynamic(config)}/fhir/ImagingStudy")
    assert response.status_code == 400
    assert "cacheDir" in response.text


def test_dynamic_tenant_never_contacts_a_discovered_host_outside_the_allow_list(
    serve: Callable[[Any], str], imaging_server: Callable[..., str]
) -> None:
    """The allowed EHR's smart-configuration names token and introspection endpoints on
    another host: a /dyn/ tenant must not follow them there (SSRF around the allow list)."""
    hits: list[str] = []

    async def record(request: StarletteRequest) -> JSONResponse:
        hits.append(request.url.path)
        return JSONResponse({"access_token": "t", "token_type": "Bearer", "active": True})

    elsewhere = serve(Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST"])]))

    async def smart_configuration(request: StarletteRequest) -> JSONResponse:
        return JSONResponse(
            {
                "token_endpoint": f"{elsewhere}/token",
                "introspection_endpoint": f"{elsewhere}/introspect",
                "jwks_uri": f"{elsewhere}/jwks",
            }
        )

    ehr = serve(Starlette(routes=[Route("/fhir/.well-known/smart-configuration", smart_configuration)]))
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=(ehr.removeprefix("http://"),))
    key = ECKey.generate_key("P-384", private=True).as_dict(private=True)
    token = base64.urlsafe_b64encode(b'{"alg":"ES384","kid":"k1"}').decode().rstrip("=") + ".e30.AAAA"
    for kind in ("smart-on-fhir", "smart-on-fhir-jwt"):
        config = {
            "authorization": {
                "type": kind,
                "fhirBaseUrl": f"{ehr}/fhir",
                "client": {"client_id": "imaging", "jwkPrivate": key},
            },
            "images": _smart_images(f"{ehr}/dicom-web"),
        }
        response = httpx.get(
            f"{base}/dyn/{encode_dynamic(config)}/fhir/ImagingStudy",
            params={"patient": "p1"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 502, response.text
        assert "not allowed" in response.json()["issue"][0]["diagnostics"]
    assert hits == []
