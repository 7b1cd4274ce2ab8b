"""Secrets never reach the logs, also when a request fails unexpectedly."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import Request

from smart_imaging.app import unexpected_error_response
from smart_imaging.config.loader import encode_dynamic


async def test_unexpected_error_log_redacts_the_dynamic_config(caplog: pytest.LogCaptureFixture) -> None:
    """A /dyn/ URL carries the whole config, inline secrets included ($env is refused there)."""
    secret = encode_dynamic({"images": {"authentication": {"password": "archive-password-42"}}})
    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/dyn/{secret}/fhir/ImagingStudy",
        "query_string": b"",
        "headers": [],
        "root_path": "",
        "scheme": "http",
        "server": ("test", 80),
    }
    with caplog.at_level(logging.ERROR, logger="smart_imaging"):
        response = await unexpected_error_response(Request(scope), RuntimeError("boom"))
    assert response.status_code == 500
    assert secret not in caplog.text and "/dyn/{config}/fhir/ImagingStudy" in caplog.text
