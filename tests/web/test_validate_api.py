"""``POST /api/validate-config`` on the demo: problems by field, or the ``/dyn/`` FHIR base."""

from __future__ import annotations

import json
from typing import Any

import httpx

from smart_imaging.config.loader import decode_dynamic


def test_validate_config_api(demo: Any) -> None:
    url = f"{demo.base}/api/validate-config"
    good = {
        "authorization": {"type": "mock"},
        "images": {"type": "dicom-web", "endpoint": "http://localhost:8042/dicom-web"},
    }
    answer = httpx.post(url, content=json.dumps(good)).json()
    assert answer["valid"] is True and answer["problems"] == []
    prefix = f"{demo.base}/dyn/"
    assert answer["fhirBase"].startswith(prefix)
    assert decode_dynamic(answer["fhirBase"][len(prefix) : -len("/fhir")]) == good
    assert httpx.get(f"{answer['fhirBase']}/metadata").status_code == 200

    folder = {"authorization": {"type": "mock"}, "images": {"type": "folder", "path": "/etc"}}
    answer = httpx.post(url, content=json.dumps(folder)).json()
    assert answer["valid"] is False and answer["fhirBase"] is None
    assert answer["problems"] == [
        {"field": "images.type", "message": "folder is only allowed in config files"}
    ]

    elsewhere = {**good, "images": {"type": "dicom-web", "endpoint": "http://archive.example/dw"}}
    answer = httpx.post(url, content=json.dumps(elsewhere)).json()
    assert answer["valid"] is False and "archive.example" in answer["problems"][0]["message"]

    keyless = {
        "authorization": {"type": "smart-on-fhir", "fhirBaseUrl": f"{demo.base}/ehr/fhir"},
        "images": good["images"],
    }
    answer = httpx.post(url, content=json.dumps(keyless)).json()
    assert answer["problems"][0]["field"] == "authorization.client.jwkPrivate"

    answer = httpx.post(url, content=b"{not json").json()
    assert answer["valid"] is False and answer["problems"][0]["field"] == "line 1 column 2"


def test_validate_config_api_refuses_unreadable_numbers(demo: Any) -> None:
    url = f"{demo.base}/api/validate-config"
    huge = (
        '{"authorization": {"type": "mock"}, "images": {"type": "dicom-web", "timeout": ' + "9" * 5000 + "}}"
    )
    response = httpx.post(url, content=huge)
    assert response.status_code == 200
    answer = response.json()
    assert answer["valid"] is False and answer["fhirBase"] is None
    assert answer["problems"][0]["message"].startswith("not valid JSON")
