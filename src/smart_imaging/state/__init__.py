"""Shared state: what replicas (and ``--workers``) must agree on, in-process or on Redis.

- ``base``: the ``SharedState`` protocol, ``StateUnavailable`` (503), ``scoped`` key namespaces.
- ``memory``: in this process (``cache.TtlCache``); the default.
- ``redis_state``: on Redis (``SMART_IMAGING_REDIS_URL``), with ``outages`` (one warning per
  outage, a probe per second while down) and ``signed`` (values tagged with an HMAC under a
  secret derived from ``SMART_IMAGING_KEY``, so a value planted in Redis is ignored).

Users: the authorization decision cache (``auth.decision_cache``, outcomes as JSON), the study
guard (``routes.study_guard``) and the dual-launch authorization server (``oauth.redis_store``).
"""

from __future__ import annotations

import logging

from .base import Scoped, SharedState, StateUnavailable, digest, scoped
from .memory import MemoryState

log = logging.getLogger("smart_imaging.state")

__all__ = ["MemoryState", "Scoped", "SharedState", "StateUnavailable", "digest", "open_state", "scoped"]


async def open_state(redis_url: str | None, key: bytes) -> SharedState:
    """Redis when a URL is given, its values tagged under a secret derived from ``key`` (the
    binding key, which replicas share); else in-process state. Redis is checked once: when it
    is unreachable the server starts anyway, with a warning, and uses Redis once it answers."""
    if not redis_url:
        return MemoryState()
    from .redis_state import RedisState, describe
    from .signed import SignedState, state_secret

    redis = RedisState(redis_url)
    if await redis.ping():
        log.info("shared state on Redis at %s", describe(redis_url))
    return SignedState(redis, state_secret(key))
