"""The shared-state interface: string values under string keys, each with its own time to live.

Two implementations: ``memory.MemoryState`` (this process only) and ``redis_state.RedisState``
(every replica that names the same Redis). Users keep their hot entries in a local cache in front
and use this store for what other processes should see: an entry read from the store is kept
locally only for the seconds it has left there (``get_ttl``), so no process holds a shared entry
longer than the store does.

Keys are never secrets (callers hash tokens, codes and identifiers first); values are JSON text.
Each method is atomic on its own: ``add`` is Redis ``SET NX PX``, ``take`` is ``GETDEL``.
A store that cannot be reached raises :class:`StateUnavailable` (a 503) at once: callers that can
serve on without it (caches) catch it; callers that cannot (the authorization server) let it answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from ..errors import Unavailable


class StateUnavailable(Unavailable):
    """The shared store is unreachable (503, ``Retry-After``); what it held is not lost."""

    def __init__(self, message: str = "shared state unavailable", *, retry_after: int | None = 2) -> None:
        super().__init__(message, retry_after=retry_after)


class SharedState(Protocol):
    """What the caches and the authorization server need from a shared store.

    ``ttl`` is in seconds; one that is not finite and above zero stores nothing and deletes the
    key (as ``cache.TtlCache`` does), so nothing lives forever by mistake.
    """

    @property
    def shared(self) -> bool:
        """True when other processes see what this one writes (Redis), False for in-process."""
        ...

    async def get(self, key: str) -> str | None:
        """The live value, or None."""
        ...

    async def get_ttl(self, key: str) -> tuple[str, float] | None:
        """The live value and the seconds it has left, or None."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Several values in one round trip, in the order asked."""
        ...

    async def set(self, key: str, value: str, ttl: float) -> None:
        """Store (or replace) a value for ``ttl`` seconds."""
        ...

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Store unless a live value exists; True when this call stored it (single use)."""
        ...

    async def take(self, key: str) -> str | None:
        """Get and delete atomically: at most one caller gets the value."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool:
        """True when the store answers now (startup check, readiness); never raises."""
        ...

    async def aclose(self) -> None: ...


class Scoped:
    """A view of a store with every key under ``prefix`` (one namespace per user)."""

    def __init__(self, state: SharedState, prefix: str) -> None:
        self.state = state
        self.prefix = prefix

    @property
    def shared(self) -> bool:
        return self.state.shared

    async def get(self, key: str) -> str | None:
        return await self.state.get(self.prefix + key)

    async def get_ttl(self, key: str) -> tuple[str, float] | None:
        return await self.state.get_ttl(self.prefix + key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return await self.state.get_many([self.prefix + key for key in keys])

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.state.set(self.prefix + key, value, ttl)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        return await self.state.add(self.prefix + key, value, ttl)

    async def take(self, key: str) -> str | None:
        return await self.state.take(self.prefix + key)

    async def delete(self, key: str) -> None:
        await self.state.delete(self.prefix + key)

    async def ping(self) -> bool:
        return await self.state.ping()

    async def aclose(self) -> None:
        """A view closes nothing: the store belongs to whoever opened it."""


def scoped(state: SharedState, *parts: str) -> Scoped:
    """``state`` with keys under ``part:part:...:`` (nested views flatten to one prefix)."""
    prefix = "".join(f"{part}:" for part in parts)
    if isinstance(state, Scoped):
        return Scoped(state.state, state.prefix + prefix)
    return Scoped(state, prefix)


def digest(*parts: str) -> str:
    """A short stable key for values that must not be keys themselves (identifiers, configs)."""
    joined = "\0".join(parts).encode("utf-8", "replace")
    return hashlib.sha256(b"smart-imaging/state\0" + joined).hexdigest()[:32]
