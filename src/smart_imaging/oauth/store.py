"""Where the authorization servers keep their state: a small key-value protocol with expiry.

Every entry is ``(kind, key) -> JSON object`` with an absolute expiry (epoch seconds); an expired
entry is absent. Each method is atomic on its own, which is all the flows need: single use is
``take`` (get and delete) or ``add`` (insert if absent), as Redis gives with ``GETDEL`` and
``SET NX EX``, so that a Redis implementation can back replicas later. Secrets (codes, tokens,
session ids) are never keys themselves: callers pass ``secret_key(secret)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Entry = dict[str, Any]


class StateStore(Protocol):
    async def put(self, kind: str, key: str, value: Mapping[str, Any], expires_at: float) -> None:
        """Store (or replace) an entry."""
        ...

    async def get(self, kind: str, key: str) -> Entry | None:
        """The entry, or None when absent or expired."""
        ...

    async def get_many(self, items: Sequence[tuple[str, str]]) -> list[Entry | None]:
        """Several entries at once (one round trip), in the order asked."""
        ...

    async def take(self, kind: str, key: str) -> Entry | None:
        """Get and delete atomically: at most one caller gets the entry."""
        ...

    async def add(self, kind: str, key: str, value: Mapping[str, Any], expires_at: float) -> bool:
        """Insert unless a live entry exists; True when this call inserted it."""
        ...

    async def delete(self, kind: str, key: str) -> None: ...

    async def aclose(self) -> None: ...


def secret_key(secret: str) -> str:
    """The key under which a secret's entry is stored: SHA-256, so a leaked store holds no
    usable code, token or session id."""
    return hashlib.sha256(b"smart-imaging/oauth\0" + secret.encode("utf-8", "replace")).hexdigest()
