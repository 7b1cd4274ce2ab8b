"""``SharedState`` on Redis (``redis.asyncio``): what every replica naming the same Redis sees.

Each call is one command (or one pipelined round trip): ``SET PX``, ``SET NX PX`` (``add``),
``GETDEL`` (``take``, Redis 6.2+), ``MGET``, ``GET`` + ``PTTL`` (``get_ttl``). Timeouts are short
(``timeout``, default 0.5 s for connecting and for each answer): on loopback or in a cluster a
command takes well under a millisecond, and a slow store must not hold requests. A broken
connection is retried once (a restarted Redis leaves dead pooled connections); a timeout is not.

When Redis cannot be reached every call raises ``StateUnavailable`` at once, and ``Outages``
logs one warning per outage and lets one call per ``retry_interval`` probe for its return.
The URL's password is never logged (``describe``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .base import StateUnavailable
from .outages import RETRY_INTERVAL, Outages

T = TypeVar("T")
TIMEOUT = 0.5


def describe(url: str) -> str:
    """``redis://host:port/db`` without credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def milliseconds(ttl: float) -> int | None:
    """A TTL as Redis ``PX``, or None for one that must store nothing (see ``base.SharedState``)."""
    if not (math.isfinite(ttl) and ttl > 0):
        return None
    return max(1, math.ceil(ttl * 1000))


class RedisState:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = TIMEOUT,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        self.url = url
        self.outages = Outages(f"Redis at {describe(url)}", retry_interval)
        self._client: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            client_name="smart-imaging",
        )

    @property
    def shared(self) -> bool:
        return True

    async def get(self, key: str) -> str | None:
        return _text(await self._call(lambda r: r.get(key)))

    async def get_ttl(self, key: str) -> tuple[str, float] | None:
        async def both(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                return list(await pipe.execute())

        value, left = await self._call(both)
        if not isinstance(value, str) or not isinstance(left, int) or left <= 0:
            return None  # absent, or expired between the two commands
        return value, left / 1000

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        values = await self._call(lambda r: r.mget(list(keys)))
        return [_text(value) for value in values]

    async def set(self, key: str, value: str, ttl: float) -> None:
        px = milliseconds(ttl)
        if px is None:
            await self.delete(key)
            return
        await self._call(lambda r: r.set(key, value, px=px))

    async def add(self, key: str, value: str, ttl: float) -> bool:
        px = milliseconds(ttl)
        if px is None:  # stored and expired at once: True unless a live value was there
            return not await self._call(lambda r: r.exists(key))
        return bool(await self._call(lambda r: r.set(key, value, px=px, nx=True)))

    async def take(self, key: str) -> str | None:
        return _text(await self._call(lambda r: r.getdel(key)))

    async def delete(self, key: str) -> None:
        await self._call(lambda r: r.delete(key))

    async def ping(self) -> bool:
        try:
            return bool(await self._call(lambda r: r.ping()))
        except StateUnavailable:
            return False

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, command: Callable[[Redis], Awaitable[T]]) -> T:
        if not self.outages.should_try():
            raise StateUnavailable()
        try:
            result = await command(self._client)
        except (RedisError, OSError) as exc:
            self.outages.failed(exc)
            raise StateUnavailable() from exc
        self.outages.succeeded()
        return result


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
