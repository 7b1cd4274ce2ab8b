"""Building a SMART authorizer from a config dict, as the tests do it."""

from __future__ import annotations

from typing import Any

import httpx

from smart_imaging.config.tenant import SmartAuthorization
from smart_imaging.tenants.authorizers import build_authorizer


def build(config: dict[str, Any], http: httpx.AsyncClient) -> Any:
    return build_authorizer(SmartAuthorization.model_validate(config), http)
