"""The base of the tenant config models: lenient like the reference server's files (``null`` is
"not set", ``//`` keys are comments, unknown keys kept), strict on numbers (finite only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, model_validator


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls_and_comments(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and not str(k).startswith("//")}
        return data


def require_http_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL with a valid port (None passes)."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not 0-65535
    except ValueError:
        raise ValueError("must be an absolute http(s) URL with a valid port") from None
    return value
