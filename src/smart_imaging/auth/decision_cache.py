"""Authorization decisions cached by a hash of the token, with single-flight (pure asyncio).

A viewer fires hundreds of WADO requests with one token; each must be authorized, but the EHR
should see one introspection. Entries are keyed by ``token_key(token)`` (SHA-256), never by the
token itself. Positive decisions live until ``min(token exp, ttl)``; negative ones (401/403)
for a few seconds; transient failures (503/502) are not cached. The cache is bounded (least
recently used entries go first). Concurrent callers asking about the same key while a decision
is being made share that one computation.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


def token_key(token: str) -> str:
    """A stable, non-reversible cache key for a bearer token."""
    return hashlib.sha256(b"smart-imaging/token\0" + token.encode("utf-8", "replace")).hexdigest()


class TtlCache(Generic[V]):
    """A bounded LRU map whose entries expire after their own TTL (monotonic clock)."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._max = max(1, max_entries)
        self._clock = clock

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: V, ttl: float) -> None:
        if not ttl > 0:  # also NaN, which would never expire
            self._entries.pop(key, None)
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class SingleFlight(Generic[V]):
    """Run at most one computation per key at a time; concurrent callers await the same one."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[V]] = {}

    async def run(self, key: str, compute: Callable[[], Awaitable[V]]) -> V:
        while (running := self._running.get(key)) is not None:
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not running.cancelled() or (task is not None and task.cancelling()):
                    raise  # this caller was cancelled, not the leader
                # the leader's caller went away: compute again (perhaps as the new leader)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._running[key]


@dataclass(frozen=True)
class Outcome(Generic[V]):
    """A decision: a value, or the (401/403) error to raise again. ``ttl`` in seconds."""

    value: V | None
    error: Exception | None
    ttl: float

    def unwrap(self) -> V:
        if self.error is not None:
            raise self.error.with_traceback(None)
        assert self.value is not None
        return self.value


class DecisionCache(Generic[V]):
    """``TtlCache`` + ``SingleFlight``: compute an ``Outcome`` once per key and remember it."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._cache: TtlCache[Outcome[V]] = TtlCache(max_entries, clock)
        self._flight: SingleFlight[Outcome[V]] = SingleFlight()

    async def get_or_compute(self, key: str, compute: Callable[[], Awaitable[Outcome[V]]]) -> V:
        cached = self._cache.get(key)
        if cached is None:
            cached = await self._flight.run(key, lambda: self._compute_and_store(key, compute))
        return cached.unwrap()

    async def _compute_and_store(self, key: str, compute: Callable[[], Awaitable[Outcome[V]]]) -> Outcome[V]:
        outcome = await compute()
        self._cache.put(key, outcome, outcome.ttl)
        return outcome

    def forget(self, key: str) -> None:
        self._cache.pop(key)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
