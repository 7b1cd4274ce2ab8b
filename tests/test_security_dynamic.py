"""Security regressions for dynamic tenants and config parsing: no 500s, no secrets in logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smart_imaging.auth.discovery import parse_smart_configuration
from smart_imaging.errors import ConfigError, UpstreamError
from smart_imaging.tenants.loader import encode_dynamic, parse_config


def _mock_dicomweb(endpoint: str) -> dict[str, Any]:
    return {"authorization": {"type": "mock", "disableAuthzChecks": True},
            "images": {"type": "dicom-web", "endpoint": endpoint, "lookup": "all-studies-on-server"}}


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/dicom-web", "http://127.0.0.1:abc/dicom-web"])
def test_dynamic_config_with_a_bad_port_is_400(imaging_server: Callable[..., str], url: str) -> None:
    base = imaging_server({}, dynamic_tenants=True, dynamic_upstream_allow=("127.0.0.1",))
    for config in (_mock_dicomweb(url),
                   {"authorization": {"type": "smart-on-fhir", "fhirBaseUrl": url},
                    "images": _mock_dicomweb("http://127.0.0.1/x")["images"]}):
        response = httpx.get(f"{base}/dyn/{encode_dynamic(config)}/fhir/ImagingStudy")
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


def test_config_file_with_a_bad_port_fails_validation() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_mock_dicomweb("http://pacs.example:70000/dicom-web"))
    assert caught.value.problems[0][0] == "images.endpoint"


@pytest.mark.parametrize("url", ["http://ehr.example:abc/token", "http://ehr.example:99999/token"])
def test_discovered_endpoint_with_a_bad_port_is_an_upstream_error(url: str) -> None:
    """httpx raises InvalidURL (not an HTTPError) on such URLs: it became a 500."""
    with pytest.raises(UpstreamError):
        parse_smart_configuration({"token_endpoint": url})
