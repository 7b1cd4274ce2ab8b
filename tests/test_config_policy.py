"""The tenant config's additive ``policy`` section and the other issue-11 options, as configs load:
``$env`` resolved before validation, errors naming the field, dynamic configs limited."""

from __future__ import annotations

import httpx
import pytest

from smart_imaging.config.loader import parse_config, unknown_keys
from smart_imaging.errors import BadRequest, ConfigError
from smart_imaging.tenants.registry import TenantRegistry

BASE = {
    "authorization": {"type": "mock"},
    "images": {"type": "dicom-web", "endpoint": "http://pacs.test/dicom-web"},
}
POINT = {"url": "https://pdp.test/decide", "auth": {"type": "bearer", "token": {"$env": "PDP_TOKEN"}}}


def test_env_references_in_the_policy_resolve_before_validation() -> None:
    config = parse_config(
        {**BASE, "policy": {"default": "deny", "decisionPoint": POINT}}, env={"PDP_TOKEN": "s3cret"}
    )
    assert config.policy is not None and config.policy.decision_point is not None
    auth = config.policy.decision_point.auth
    assert auth is not None and auth.type == "bearer" and auth.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)


def test_policy_errors_name_the_field() -> None:
    bad = {**BASE, "policy": {"default": "allow", "rules": [{"effect": "deny", "when": {"modalty": ["US"]}}]}}
    with pytest.raises(ConfigError) as caught:
        parse_config(bad)
    assert any("policy.rules" in where and "modalty" in where for where, _ in caught.value.problems)


def test_check_config_does_not_report_policy_keys_as_unknown() -> None:
    data = {
        **BASE,
        "images": {**BASE["images"], "lastUpdated": "orthanc", "colour": 1},
        "policy": {"default": "allow", "backendClients": {"referral": {"patients": "*"}}},
    }
    assert unknown_keys(data) == ["images.colour"]
    assert parse_config(data).images.lastUpdated == "orthanc"  # type: ignore[union-attr]


def test_dynamic_configs_name_only_allowed_decision_points_and_no_env() -> None:
    registry = TenantRegistry({}, httpx.AsyncClient(), dynamic=True, allow=("pacs.test",))
    with pytest.raises(BadRequest, match=r"pdp\.test"):
        registry.validate_dynamic(
            {**BASE, "policy": {"default": "allow", "decisionPoint": {"url": POINT["url"]}}}
        )
    with pytest.raises(ConfigError, match="environment"):
        registry.validate_dynamic({**BASE, "policy": {"default": "allow", "decisionPoint": POINT}})
    allowed = TenantRegistry({}, httpx.AsyncClient(), dynamic=True, allow=("pacs.test", "pdp.test"))
    assert allowed.validate_dynamic(
        {**BASE, "policy": {"default": "allow", "decisionPoint": {"url": POINT["url"]}}}
    )
