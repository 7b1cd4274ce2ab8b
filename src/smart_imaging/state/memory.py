"""``SharedState`` in this process: a bounded ``cache.TtlCache`` (LRU + per-entry TTL).

What a server without Redis uses, and what the tests use to stand for a shared store. Not
shared with other processes (``shared`` is False): ``--workers`` and replicas each keep their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from ..cache import TtlCache

MAX_ENTRIES = 100_000


class MemoryState:
    def __init__(self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: TtlCache[str, tuple[float, str]] = TtlCache(max_entries, clock=clock)

    @property
    def shared(self) -> bool:
        return False

    async def get(self, key: str) -> str | None:
        found = self._live(key)
        return found[0] if found else None

    async def get_ttl(self, key: str) -> tuple[str, float] | None:
        return self._live(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: str, ttl: float) -> None:
        if not (math.isfinite(ttl) and ttl > 0):
            self._entries.pop(key)
            return
        self._entries.put(key, (self._clock() + ttl, value), ttl)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def take(self, key: str) -> str | None:
        entry = self._entries.pop(key)
        return entry[1] if entry else None

    async def delete(self, key: str) -> None:
        self._entries.pop(key)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._entries.clear()

    def _live(self, key: str) -> tuple[str, float] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        return entry[1], entry[0] - self._clock()
