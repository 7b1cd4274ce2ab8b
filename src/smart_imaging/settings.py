"""Process settings, from the command line and ``SMART_IMAGING_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError


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
    # Capacity and lifecycle (``smart-imaging serve``; docs/deploy.md)
    workers: int | None = None  # SMART_IMAGING_WORKERS: processes; None: one per core
    shutdown_timeout: float = 30.0  # SMART_IMAGING_SHUTDOWN_TIMEOUT: seconds in-flight requests get
    expose_pid: bool = False  # SMART_IMAGING_EXPOSE_PID: X-Smart-Imaging-Pid on answers (debugging)
    http_backend: str = "aiohttp"  # SMART_IMAGING_HTTP_BACKEND: aiohttp | httpx (http_client.py)
    # SMART_IMAGING_UPSTREAM_CONNECTIONS: connections to one archive host per ``serve`` command, its
    # workers each taking an equal share (``worker_share``); keep replicas x this within what the
    # archive serves at once (Orthanc: HttpThreadsCount, 50): a connection it never serves waits
    # until the timeout (docs/deploy.md, Sizing)
    upstream_connections: int = 24
    # SMART_IMAGING_AUDIT: where AuditEvents go, comma-separated stdout, file:/path,
    # fhir:https://server/fhir (services.audit_trail); unset: no audit events
    audit: str | None = None
    # SMART_IMAGING_REDIS_URL: shared state for replicas and workers (``smart_imaging.state``):
    # decisions, study checks, dual-launch state; unset: each process keeps its own
    redis_url: str | None = field(default=None, repr=False)
    # SMART_IMAGING_OHIF_URL: an OHIF v3 deployment our viewer offers "Open in OHIF" for
    # (docs/notes/ohif.md); unset: no such button unless the viewer's own setting names one
    ohif_url: str | None = None

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
            values["port"] = _number(env, "SMART_IMAGING_PORT", int, 0)
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
        if env.get("SMART_IMAGING_AUDIT"):
            values["audit"] = env["SMART_IMAGING_AUDIT"].strip()
        if env.get("SMART_IMAGING_OHIF_URL", "").strip():
            values["ohif_url"] = env["SMART_IMAGING_OHIF_URL"].strip()
        values.update(_capacity_from_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def state_dir_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """``SMART_IMAGING_STATE_DIR``, or None when unset."""
    env = os.environ if env is None else env
    value = env.get("SMART_IMAGING_STATE_DIR", "").strip()
    return Path(value) if value else None


_TRUE = ("1", "true", "yes", "on")


def _capacity_from_env(env: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    if env.get("SMART_IMAGING_WORKERS"):
        values["workers"] = _number(env, "SMART_IMAGING_WORKERS", int, 1)
    if env.get("SMART_IMAGING_SHUTDOWN_TIMEOUT"):
        values["shutdown_timeout"] = _number(env, "SMART_IMAGING_SHUTDOWN_TIMEOUT", float, 0)
    if env.get("SMART_IMAGING_EXPOSE_PID"):
        values["expose_pid"] = env["SMART_IMAGING_EXPOSE_PID"].lower() in _TRUE
    if env.get("SMART_IMAGING_UPSTREAM_CONNECTIONS"):
        values["upstream_connections"] = _number(env, "SMART_IMAGING_UPSTREAM_CONNECTIONS", int, 1)
    if env.get("SMART_IMAGING_HTTP_BACKEND"):
        values["http_backend"] = env["SMART_IMAGING_HTTP_BACKEND"].strip().lower()
    if env.get("SMART_IMAGING_REDIS_URL", "").strip():
        values["redis_url"] = env["SMART_IMAGING_REDIS_URL"].strip()
    return values


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, kind: type[N], minimum: N) -> N:
    """``env[name]`` as a number of ``kind`` no smaller than ``minimum``, or a ConfigError naming it."""
    what = f"{'a whole number' if kind is int else 'a number'} >= {minimum}"
    try:
        value = kind(env[name].strip())
    except ValueError:
        raise ConfigError("invalid settings", [(name, what)]) from None
    if not value >= minimum:  # also refuses nan
        raise ConfigError("invalid settings", [(name, what)])
    return value


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``SMART_IMAGING_*`` variables that make ``Settings.from_env()`` rebuild ``settings`` in
    another process (the workers of ``serve --workers N``); the key included."""
    pairs: dict[str, object] = {
        "SMART_IMAGING_CONFIG_DIR": settings.config_dir,
        "SMART_IMAGING_BASE_URL": settings.base_url,
        "SMART_IMAGING_HOST": settings.host,
        "SMART_IMAGING_PORT": settings.port,
        "SMART_IMAGING_DYNAMIC_TENANTS": "1" if settings.dynamic_tenants else "0",
        "SMART_IMAGING_DYNAMIC_UPSTREAM_ALLOW": ",".join(settings.dynamic_upstream_allow),
        "SMART_IMAGING_KEY": settings.key,
        "SMART_IMAGING_STATE_DIR": settings.state_dir,
        "SMART_IMAGING_SHUTDOWN_TIMEOUT": settings.shutdown_timeout,
        "SMART_IMAGING_EXPOSE_PID": "1" if settings.expose_pid else "",
        "SMART_IMAGING_HTTP_BACKEND": settings.http_backend,
        "SMART_IMAGING_UPSTREAM_CONNECTIONS": settings.upstream_connections,
        "SMART_IMAGING_AUDIT": settings.audit,
        "SMART_IMAGING_REDIS_URL": settings.redis_url,
        "SMART_IMAGING_OHIF_URL": settings.ohif_url,
    }
    return {name: str(value) for name, value in pairs.items() if value not in (None, "")}


def worker_share(connections: int, workers: int) -> int:
    """Each of ``workers`` processes' share of ``connections`` to one archive host: together at
    most ``connections``, but at least one each."""
    return max(1, connections // workers)
