"""The tenants a server answers for: static ones from the config folder, dynamic ones from
``/dyn/{base64url(json)}/...`` (off unless enabled, limited to allowed upstream hosts)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ..auth import Authorizer
from ..config.loader import check_depth, contains_env, decode_dynamic, parse_config, parse_text
from ..config.tenant import DimseImages, FolderImages, TenantConfig
from ..errors import BadRequest, ConfigError, NotFound
from ..sources import ImageSource
from ..state import SharedState
from .authorizers import build_authorizer
from .sources import build_source

log = logging.getLogger("smart_imaging.tenants")
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED = {"dyn", "metrics", "healthz", "ehr", "static", "api", "config", "viewer", "app"}


@dataclass
class Tenant:
    key: str  # identity bound into binding tokens: the name, or "dyn:" + config hash
    path: str  # URL prefix after the base: "name" or "dyn/<encoded>"
    config: TenantConfig
    authorizer: Authorizer
    source: ImageSource

    async def aclose(self) -> None:
        await self.authorizer.aclose()
        await self.source.aclose()


def load_file(path: Path, env: Mapping[str, str] | None = None) -> TenantConfig:
    """Read one tenant config file (UTF-8 JSON) and validate it (``config.loader.parse_text``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("cannot read config", [("(file)", str(exc))]) from None
    return parse_text(text, env)


def load_dir(config_dir: Path) -> dict[str, TenantConfig]:
    """Load every ``*.json`` in the folder. Raises ConfigError naming each file and field."""
    configs: dict[str, TenantConfig] = {}
    problems: list[tuple[str, str]] = []
    for path in sorted(config_dir.glob("*.json")):
        name = path.stem
        if not TENANT_NAME.match(name) or name in RESERVED:
            problems.append((path.name, f"tenant name {name!r} is not allowed"))
            continue
        try:
            configs[name] = load_file(path)
        except ConfigError as exc:
            problems += [(f"{path.name}: {where}", what) for where, what in exc.problems]
    if problems:
        raise ConfigError("invalid tenant configs", problems)
    return configs


class TenantRegistry:
    def __init__(
        self,
        configs: Mapping[str, TenantConfig],
        http: httpx.AsyncClient,
        *,
        dynamic: bool = False,
        allow: tuple[str, ...] = (),
        max_dynamic: int = 64,
        state: SharedState | None = None,
    ) -> None:
        self._http = http
        self._state = state  # the app's shared state (``smart_imaging.state``), for the authorizers
        self._static = {name: self._build(name, name, cfg) for name, cfg in configs.items()}
        self._dynamic_on = dynamic
        self._allow = tuple(a.lower().replace("[", "").replace("]", "") for a in allow)  # [::1] -> ::1
        self._dynamic: OrderedDict[str, Tenant] = OrderedDict()
        self._max_dynamic = max_dynamic
        self._retired: list[Tenant] = []
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def names(self) -> list[str]:
        return sorted(self._static)

    @property
    def dynamic_enabled(self) -> bool:
        return self._dynamic_on

    def get(self, name: str) -> Tenant:
        tenant = self._static.get(name)
        if tenant is None:
            raise NotFound(f"unknown tenant {name!r}")
        return tenant

    def dynamic(self, encoded: str) -> Tenant:
        if not self._dynamic_on:
            raise NotFound(
                "dynamic tenants are disabled on this server "
                "(start it with --dynamic-tenants to enable /dyn/ URLs)"
            )
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        tenant = self._dynamic.get(digest)
        if tenant is not None:
            self._dynamic.move_to_end(digest)
            return tenant
        config = self.validate_dynamic(decode_dynamic(encoded))
        tenant = self._build("dyn:" + digest[:32], f"dyn/{encoded}", config, dynamic=True)
        self._dynamic[digest] = tenant
        if len(self._dynamic) > self._max_dynamic:
            _, old = self._dynamic.popitem(last=False)
            self._retire(old)
        return tenant

    def validate_dynamic(self, data: object) -> TenantConfig:
        """Check a dynamic config: no ``$env``, no local folders, only allowed upstream hosts."""
        check_depth(data)
        if contains_env(data):
            raise ConfigError(
                "dynamic configs cannot read environment variables",
                [("(config)", "$env is only allowed in config files")],
            )
        config = parse_config(data, env={})
        if isinstance(config.images, FolderImages):
            raise ConfigError(
                "dynamic configs cannot serve local folders",
                [("images.type", "folder is only allowed in config files")],
            )
        if isinstance(config.images, DimseImages) and config.images.cacheDir:
            raise ConfigError(
                "dynamic configs cannot name local directories",
                [("images.cacheDir", "cacheDir is only allowed in config files")],
            )
        denied = [u for u in config.upstream_urls() if not self._allowed(u)]
        if denied:
            raise BadRequest(
                "dynamic config names an upstream host that is not allowed: "
                + ", ".join(sorted({_host_port(u) for u in denied}))
            )
        return config

    def _allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
        return any(a == host or a == f"{host}:{port}" or a == "*" for a in self._allow)

    def _build(self, key: str, path: str, config: TenantConfig, dynamic: bool = False) -> Tenant:
        allowed = self._allowed if dynamic else None
        return Tenant(
            key=key,
            path=path,
            config=config,
            authorizer=build_authorizer(
                config.authorization, self._http, allowed, shared=self._state, tenant=key
            ),
            source=build_source(config.images, self._http),
        )

    def _retire(self, tenant: Tenant) -> None:
        """Close an evicted dynamic tenant after in-flight requests had time to finish."""
        self._retired.append(tenant)
        with contextlib.suppress(RuntimeError):  # no running loop: closed at shutdown instead
            asyncio.get_running_loop().call_later(300, self._close_later, tenant)

    def _close_later(self, tenant: Tenant) -> None:
        if tenant in self._retired:
            self._retired.remove(tenant)
            task = asyncio.ensure_future(tenant.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for tenant in [*self._static.values(), *self._dynamic.values(), *self._retired]:
            try:
                await tenant.aclose()
            except Exception:
                log.exception("error closing tenant %s", tenant.key)


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
