"""``StateStore`` on the shared state (``smart_imaging.state``, Redis): the dual-launch
authorization server's sessions, codes and tokens seen by every replica.

Same semantics as ``sqlite_store``: entries ``(kind, key) -> JSON object`` with an absolute expiry
(epoch seconds, turned into a Redis TTL at the time of the call); ``take`` is ``GETDEL`` and
``add`` is ``SET NX PX``, so a code is redeemed once and a refresh token rotates once across all
replicas, and the families revoked on replay are seen by all. Expired entries are Redis's to drop.

While Redis is unreachable every call raises ``StateUnavailable`` (503 + ``Retry-After``): the
authorization endpoints, and the checks of this tenant's tokens, answer 503 rather than fall
back to a local store. A local store would diverge: a code, session or revocation made on one
replica would be unknown on another (a revoked token accepted, a code redeemable twice).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..state import SharedState, scoped
from .store import Entry

NAMESPACE = "oauth"


class SharedStateStore:
    def __init__(self, state: SharedState, clock: Callable[[], float] = time.time) -> None:
        self._state = scoped(state, NAMESPACE)
        self._clock = clock

    async def put(self, kind: str, key: str, value: Mapping[str, Any], expires_at: float) -> None:
        await self._state.set(_key(kind, key), _dump(value), expires_at - self._clock())

    async def get(self, kind: str, key: str) -> Entry | None:
        return _load(await self._state.get(_key(kind, key)))

    async def get_many(self, items: Sequence[tuple[str, str]]) -> list[Entry | None]:
        values = await self._state.get_many([_key(kind, key) for kind, key in items])
        return [_load(value) for value in values]

    async def take(self, kind: str, key: str) -> Entry | None:
        return _load(await self._state.take(_key(kind, key)))

    async def add(self, kind: str, key: str, value: Mapping[str, Any], expires_at: float) -> bool:
        return await self._state.add(_key(kind, key), _dump(value), expires_at - self._clock())

    async def delete(self, kind: str, key: str) -> None:
        await self._state.delete(_key(kind, key))

    async def aclose(self) -> None:
        """The shared state belongs to the app (closed with its lifespan)."""


def _key(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _load(text: str | None) -> Entry | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
