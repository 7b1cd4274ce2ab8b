"""Tenant configs: the reference server's files, $env secrets, clear problems, check-config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from smart_imaging.cli import check_config
from smart_imaging.config.loader import decode_dynamic, encode_dynamic, parse_config
from smart_imaging.config.tenant import BasicAuthentication, DicomWebImages, SmartAuthorization
from smart_imaging.errors import ConfigError
from smart_imaging.tenants.authorizers import build_authorizer
from smart_imaging.tenants.registry import load_dir, load_file

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


NON_FINITE = ["Infinity", "-Infinity", "NaN", "1e999", "-1e999"]


@pytest.mark.parametrize("literal", NON_FINITE)
def test_tenant_files_refuse_non_finite_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], literal: str
) -> None:
    """Python's json reads them; ``math.ceil(inf)`` in the delay check was an OverflowError 500."""
    text = (
        '{"authorization": {"type": "mock", "disableAuthzChecks": true},'
        ' "images": {"type": "dicom-web", "endpoint": "http://pacs/dw",'
        f' "delay": {{"lookupUntil": {literal}}}, "extra": [1, {literal}]}}}}'
    )
    (tmp_path / "delayed.json").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_dir(tmp_path)
    where = [w for w, _ in caught.value.problems]
    assert where == ["delayed.json: images.delay.lookupUntil", "delayed.json: images.extra[1]"]
    assert all("not a finite number" in what for _, what in caught.value.problems)
    assert check_config(tmp_path) == 1
    assert "delayed.json: images.delay.lookupUntil: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (("images", "delay", "lookupUntil"), float("inf")),
        (("images", "delay", "retrieveUntil"), float("nan")),
        (("images", "timeout"), float("nan")),
        (("authorization", "cacheTtl"), float("nan")),
        (("images", "firstResultTimeout"), 1e300),  # threading waits overflow on huge timeouts
        (("images", "cacheIdleSeconds"), float("inf")),
        (("images", "delay", "lookupUntil"), 1e300),  # a Retry-After of 300 digits
    ],
)
def test_models_refuse_non_finite_and_absurd_numbers(field: tuple[str, ...], value: float) -> None:
    """The models themselves (``allow_inf_nan=False`` and bounds), not only the JSON loader."""
    from smart_imaging.config.tenant import TenantConfig

    data: dict[str, Any] = {
        "authorization": {"type": "smart-on-fhir", "fhirBaseUrl": "https://ehr/fhir"},
        "images": {"type": "dicom-dimse", "endpoint": "dimse://pacs:104"},
    }
    target = data
    for key in field[:-1]:
        target = target.setdefault(key, {})
    target[field[-1]] = value
    with pytest.raises(ValidationError) as caught:
        TenantConfig.model_validate(data)
    assert caught.value.errors()[0]["loc"][-1] == field[-1]


def test_dynamic_configs_refuse_non_finite_numbers() -> None:
    import base64

    raw = b'{"authorization":{"type":"mock"},"images":{"type":"dicom-web","endpoint":"http://a/b","delay":{"retrieveUntil":NaN}}}'
    with pytest.raises(ConfigError) as caught:
        decode_dynamic(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert caught.value.problems[0][0] == "images.delay.retrieveUntil"


def test_all_studies_lookup_only_where_no_patient_binding_is_expected() -> None:
    images = {"type": "dicom-web", "endpoint": "http://pacs/dw", "lookup": "all-studies-on-server"}
    smart = {"fhirBaseUrl": "https://ehr/fhir"}
    for kind in (
        "smart-on-fhir",
        "smart-on-fhir-jwt",
        "smart-on-fhir-independent",
        "smart-on-fhir-with-epic-bugfixes",
        "smart-on-fhir-with-meditech-bugfixes",
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config({"authorization": {"type": kind, **smart}, "images": images})
        ((where, what),) = caught.value.problems
        assert where == "images.lookup" and "every patient" in what and kind in what
        debug = parse_config(
            {"authorization": {"type": kind, **smart, "disableAuthzChecks": True}, "images": images}
        )
        assert debug.images.lookup == "all-studies-on-server"
    for mock in ({"type": "mock"}, {"type": "mock", "disableAuthzChecks": True}):
        assert (
            parse_config({"authorization": mock, "images": images}).images.lookup == "all-studies-on-server"
        )
    by_mrn = {**images, "lookup": "studies-by-mrn"}
    assert parse_config({"authorization": {"type": "smart-on-fhir", **smart}, "images": by_mrn})


def test_integer_literals_beyond_the_digit_limit_are_a_problem_not_a_traceback(tmp_path: Path) -> None:
    """``json.loads`` raises a plain ValueError (not JSONDecodeError) past 4300 digits."""
    (tmp_path / "big.json").write_text(
        '{"authorization": {"type": "mock"}, "images": {"type": "dicom-web", "endpoint": "http://a/b",'
        ' "seriesConcurrency": 1' + "0" * 5000 + "}}"
    )
    with pytest.raises(ConfigError) as caught:
        load_dir(tmp_path)
    ((where, what),) = caught.value.problems
    assert where == "big.json: (file)" and "digits" in what


def test_readme_policy_example_is_a_valid_tenant_policy() -> None:
    """README's ``policy`` example loads as part of a tenant config (its ``$env`` secret resolved)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("### `policy` (study-level access)", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    policy = json.loads("{" + block.strip() + "}")["policy"]
    config = parse_config(
        {
            "authorization": {"type": "mock"},
            "images": {"type": "dicom-web", "endpoint": "http://pacs/dicom-web"},
            "policy": policy,
        },
        env={"PDP_TOKEN": "pdp-secret"},
    )
    assert config.policy is not None and [r.effect for r in config.policy.rules] == ["deny", "deny", "deny"]
    assert "pdp-secret" not in repr(config)
