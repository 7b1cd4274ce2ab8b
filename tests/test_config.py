"""Tenant configs: the reference server's files, $env secrets, clear problems, check-config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from smart_imaging.auth import build_authorizer
from smart_imaging.cli import check_config
from smart_imaging.errors import ConfigError
from smart_imaging.tenants.config import BasicAuthentication, DicomWebImages, SmartAuthorization
from smart_imaging.tenants.loader import decode_dynamic, encode_dynamic, load_file, parse_config
from smart_imaging.tenants.registry import load_dir

# A copy of the reference server's tenant files (shared/reference-configs) travels with the tests;
# when shared/ sits beside the checkout, the copy must still equal it.
REFERENCE = Path(__file__).resolve().parent / "reference-configs"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference-configs"


def test_every_reference_config_loads_unchanged() -> None:
    configs = load_dir(REFERENCE)
    assert len(configs) == len(list(REFERENCE.glob("*.json"))) >= 13
    epic = configs["epic-sandbox"]
    assert isinstance(epic.authorization, SmartAuthorization)
    assert epic.authorization.client and epic.authorization.client.jwkPrivate
    assert isinstance(epic.images, DicomWebImages) and epic.images.mrn == [
        "identifier.where(type.text = 'EPIC').value"
    ]
    assert configs["meditech-sandbox"].authorization.scope is None  # type: ignore[union-attr]
    assert configs["open-dimse"].images.type == "dicom-dimse"
    assert configs["delayed"].images.delay and configs["delayed"].images.delay.lookupUntil == 4833623642


def test_reference_copy_matches_shared() -> None:
    if not SHARED.is_dir():
        return  # a checkout without shared/ beside it: the copy is all there is
    for path in SHARED.glob("*.json"):
        assert (REFERENCE / path.name).read_bytes() == path.read_bytes(), path.name


def test_check_config_on_reference_configs(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_config(REFERENCE) == 0
    out = capsys.readouterr().out
    assert "13 of 13 configs valid" in out or "configs valid" in out
    assert "meditech-sandbox.json: warning" in out
    assert "wrong-password" not in out and "argonaut" not in out


def test_problems_name_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.json").write_text(
        json.dumps(
            {"authorization": {"type": "mock"}, "images": {"type": "dicom-web", "endpoint": "http://a/dw"}}
        )
    )
    (tmp_path / "bad.json").write_text(
        json.dumps(
            {
                "authorization": {"type": "smart-on-fhir"},
                "images": {"type": "dicom-web", "endpoint": "ftp://x", "lookup": "everything"},
            }
        )
    )
    (tmp_path / "broken.json").write_text("{ not json")
    assert check_config(tmp_path) == 1
    out = capsys.readouterr().out
    assert "bad.json: authorization.fhirBaseUrl: Field required" in out
    assert "bad.json: images.endpoint" in out and "http(s) URL" in out
    assert "bad.json: images.lookup" in out
    assert "broken.json: line 1 column 3" in out
    assert "good.json: ok" in out
    with pytest.raises(ConfigError) as caught:
        load_dir(tmp_path)
    assert any(where.startswith("bad.json: images.endpoint") for where, _ in caught.value.problems)


def test_env_references_resolve_and_stay_secret(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "authorization": {"type": "mock"},
                "images": {
                    "type": "dicom-web",
                    "endpoint": {"$env": "ARCHIVE_URL"},
                    "authentication": {
                        "type": "http-basic",
                        "username": "u",
                        "password": {"$env": "ARCHIVE_PASSWORD"},
                    },
                },
            }
        )
    )
    config = load_file(
        path, env={"ARCHIVE_URL": "http://pacs:8042/dicom-web", "ARCHIVE_PASSWORD": "s3cret-value"}
    )
    assert isinstance(config.images, DicomWebImages)
    assert config.images.endpoint == "http://pacs:8042/dicom-web"
    assert isinstance(config.images.authentication, BasicAuthentication)
    assert config.images.authentication.password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(config)
    with pytest.raises(ConfigError) as caught:
        load_file(path, env={"ARCHIVE_URL": "http://pacs/dw"})
    assert caught.value.problems == [
        ("images.authentication.password", "environment variable 'ARCHIVE_PASSWORD' is not set")
    ]


def test_dynamic_encoding_round_trip() -> None:
    config = {"authorization": {"type": "mock"}, "images": {"type": "dicom-web", "endpoint": "http://a/b"}}
    encoded = encode_dynamic(config)
    assert "=" not in encoded and decode_dynamic(encoded) == config
    assert parse_config(decode_dynamic(encoded)).images.type == "dicom-web"
    for bad in ("!!!", encode_dynamic([1])[:-1] + "*"):
        with pytest.raises(ConfigError):
            decode_dynamic(bad)


def test_cli_entry_point_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smart_imaging.cli", "check-config", str(REFERENCE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "x.json").write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "smart_imaging.cli", "check-config", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "x.json: authorization: Field required" in result.stdout


def test_readme_authorization_examples_are_valid() -> None:
    """Every example in README's "An example config for each type" block loads."""
    import re

    from joserfc.jwk import ECKey

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("An example config for each type", 1)[1].split("</details>", 1)[0]
    examples = [json.loads(line) for line in _json_objects(re.sub(r"^\s*//.*$", "", block, flags=re.M))]
    jwk = json.dumps(ECKey.generate_key("P-384", parameters={"alg": "ES384"}).as_dict(private=True))
    env = {"IMAGING_JWK": jwk, "EPIC_JWK": jwk, "MEDITECH_SECRET": "s"}
    images = {"type": "dicom-web", "endpoint": "http://pacs/dicom-web"}
    configs = [parse_config({"authorization": e, "images": images}, env=env) for e in examples]
    assert {c.authorization.type for c in configs} == {
        "mock",
        "smart-on-fhir",
        "smart-on-fhir-jwt",
        "smart-on-fhir-with-epic-bugfixes",
        "smart-on-fhir-with-meditech-bugfixes",
    }
    http = httpx.AsyncClient()
    for config in configs:
        build_authorizer(config.authorization, http)  # each builds (keys, secrets) without I/O
        assert json.loads(jwk)["d"] not in repr(config)


def _json_objects(text: str) -> list[str]:
    """Top-level {...} objects in text, by brace depth."""
    found, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                found.append(text[start : i + 1].replace("\n", " "))
    return found
