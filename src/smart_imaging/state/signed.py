"""Values in a shared store carry an HMAC under a secret all replicas hold (derived from
``SMART_IMAGING_KEY``), bound to the key they are stored under.

Redis holds authorization decisions and the authorization server's tokens: whoever could write
to it could otherwise plant a grant for any token. A value without a valid tag (written by
someone without the secret, moved under another key, or by a replica with another key) reads as
absent; the first such value is logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Sequence

from .base import SharedState

log = logging.getLogger("smart_imaging.state")
TAG_LENGTH = 43  # base64url of 32 bytes, unpadded


def state_secret(key: bytes) -> bytes:
    """The tagging secret, derived from the binding key (never the key itself)."""
    return hmac.new(key, b"smart-imaging/state/v1", hashlib.sha256).digest()


class SignedState:
    def __init__(self, state: SharedState, secret: bytes) -> None:
        self.state = state
        self._secret = secret
        self._warned = False

    @property
    def shared(self) -> bool:
        return self.state.shared

    async def get(self, key: str) -> str | None:
        return self._open(key, await self.state.get(key))

    async def get_ttl(self, key: str) -> tuple[str, float] | None:
        found = await self.state.get_ttl(key)
        value = self._open(key, found[0]) if found else None
        return (value, found[1]) if found and value is not None else None

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        values = await self.state.get_many(keys)
        return [self._open(key, value) for key, value in zip(keys, values, strict=True)]

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.state.set(key, self._seal(key, value), ttl)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        return await self.state.add(key, self._seal(key, value), ttl)

    async def take(self, key: str) -> str | None:
        return self._open(key, await self.state.take(key))

    async def delete(self, key: str) -> None:
        await self.state.delete(key)

    async def ping(self) -> bool:
        return await self.state.ping()

    async def aclose(self) -> None:
        await self.state.aclose()

    def _tag(self, key: str, value: str) -> str:
        message = key.encode("utf-8", "replace") + b"\0" + value.encode("utf-8", "replace")
        mac = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def _seal(self, key: str, value: str) -> str:
        return f"{self._tag(key, value)}.{value}"

    def _open(self, key: str, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        tag, value = sealed[:TAG_LENGTH], sealed[TAG_LENGTH + 1 :]
        if sealed[TAG_LENGTH : TAG_LENGTH + 1] == "." and hmac.compare_digest(tag, self._tag(key, value)):
            return value
        if not self._warned:
            self._warned = True
            log.warning(
                "a shared-state value failed its integrity check and was ignored (written without "
                "this server's SMART_IMAGING_KEY?); further ones are ignored silently"
            )
        return None
