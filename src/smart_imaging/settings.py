"""Process settings, from the command line and ``SMART_IMAGING_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    config_dir: Path | None = None
    base_url: str | None = None  # public URL of this server; derived from each request when unset
    host: str = "127.0.0.1"
    port: int = 8000
    dynamic_tenants: bool = False
    dynamic_upstream_allow: tuple[str, ...] = ()
    key: str | None = field(default=None, repr=False)  # SMART_IMAGING_KEY: binding-token secret
    http_timeout: float = 30.0
    max_dynamic_tenants: int = 64
    # SMART_IMAGING_STATE_DIR: where the dual-launch authorization servers keep sessions, codes and
    # tokens (SQLite); unset: a private folder in the temp dir, with a warning (``oauth.stores``)
    state_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("SMART_IMAGING_CONFIG_DIR"):
            values["config_dir"] = Path(env["SMART_IMAGING_CONFIG_DIR"])
        if env.get("SMART_IMAGING_BASE_URL"):
            values["base_url"] = env["SMART_IMAGING_BASE_URL"]
        if env.get("SMART_IMAGING_HOST"):
            values["host"] = env["SMART_IMAGING_HOST"]
        if env.get("SMART_IMAGING_PORT"):
            values["port"] = int(env["SMART_IMAGING_PORT"])
        if env.get("SMART_IMAGING_DYNAMIC_TENANTS"):
            values["dynamic_tenants"] = env["SMART_IMAGING_DYNAMIC_TENANTS"].lower() in (
                "1",
                "true",
                "yes",
                "on",
            )
        if env.get("SMART_IMAGING_DYNAMIC_UPSTREAM_ALLOW"):
            values["dynamic_upstream_allow"] = tuple(
                h.strip() for h in env["SMART_IMAGING_DYNAMIC_UPSTREAM_ALLOW"].split(",") if h.strip()
            )
        if env.get("SMART_IMAGING_KEY"):
            values["key"] = env["SMART_IMAGING_KEY"]
        if (state_dir := state_dir_from_env(env)) is not None:
            values["state_dir"] = state_dir
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def state_dir_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """``SMART_IMAGING_STATE_DIR``, or None when unset."""
    env = os.environ if env is None else env
    value = env.get("SMART_IMAGING_STATE_DIR", "").strip()
    return Path(value) if value else None
