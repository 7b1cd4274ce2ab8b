"""One bounded cache type for every in-process cache: least recently used entries go first, each
entry expires after its own time to live (monotonic clock). Pure: no I/O, no locks (asyncio code
runs it on one thread).

A TTL must be a finite number of seconds above zero; anything else (0, negative, NaN, infinity)
stores nothing and drops an entry already under that key, so a bad TTL can never make an entry
live forever (NaN compares false with every time). An entry without a time limit is asked for
explicitly with ``ttl=None`` on a cache built without a default TTL; the size bound still applies.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

NO_EXPIRY = math.inf  # stored expiry of entries put with ttl=None (never passed in by callers)


class TtlCache(Generic[K, V]):
    """A map bounded to ``max_entries`` (LRU) whose entries expire after their own TTL.

    ``ttl`` is the default for ``put`` (None: entries have no time limit unless ``put`` names one).
    ``on_evict(key, value)`` is called for each entry the size bound pushes out (not for entries that
    expire or are popped), e.g. to close a resource after in-flight users are done with it.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max = max(1, max_entries)
        self._ttl = ttl
        self._clock = clock
        self._on_evict = on_evict

    def get(self, key: K) -> V | None:
        """The live value under ``key`` (now most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        """Remember ``value`` for ``ttl`` seconds (default: the cache's TTL); see the module doc."""
        chosen = self._ttl if ttl is None else ttl
        if chosen is None:
            expires = NO_EXPIRY
        elif math.isfinite(chosen) and chosen > 0:
            expires = self._clock() + chosen
        else:
            self._entries.pop(key, None)
            return
        self._entries[key] = (expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            old_key, (_, old_value) = self._entries.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(old_key, old_value)

    def pop(self, key: K) -> V | None:
        """Remove ``key``; return its value if it was still live."""
        entry = self._entries.pop(key, None)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def clear(self) -> None:
        self._entries.clear()

    def values(self) -> list[V]:
        """The live values, least recently used first (does not change the order)."""
        now = self._clock()
        return [value for expires, value in self._entries.values() if expires > now]

    def __len__(self) -> int:
        """Stored entries, expired ones included until a ``get`` or ``pop`` meets them (or the bound)."""
        return len(self._entries)
