"""Authorization decisions cached by a hash of the token, with single-flight (pure asyncio).

A viewer fires hundreds of WADO requests with one token; each must be authorized, but the EHR
should see one introspection. Entries are keyed by ``token_key(token)`` (SHA-256), never by the
token itself. Positive decisions live until ``min(token exp, ttl)``; negative ones (401/403)
for a few seconds, stored as a ``Refusal`` (the data to build the error, never the exception
itself) so every request gets its own exception; transient failures (503/502) are not cached. The
cache is a bounded ``smart_imaging.cache.TtlCache``. Concurrent callers asking about the same key
while a decision is being made share that one computation.

With ``SharedOutcomes`` the outcomes are also written to a shared store (``smart_imaging.state``,
Redis for replicas) as JSON, grants and refusals alike (never exception objects), and a miss here
is looked up there before computing: one introspection per token across replicas. A copy read
from the store lives here only for the seconds it has left there, so a revocation is seen by
every replica within the TTL. Single flight stays per process (two replicas missing the same key
at the same moment both compute; the later write wins). An unreachable store is a miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..cache import TtlCache
from ..errors import SmartImagingError
from ..state import SharedState, StateUnavailable

log = logging.getLogger("smart_imaging.auth")

V = TypeVar("V")


def token_key(token: str) -> str:
    """A stable, non-reversible cache key for a bearer token."""
    return hashlib.sha256(b"smart-imaging/token\0" + token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """What it takes to raise an error again (a cached 401/403, or one failure shared by concurrent
    callers): its class, constructor arguments and the attributes its constructor set (``message``,
    ``headers``, ``error``...), copied. Never the instance: one exception raised on many requests
    would pile up their tracebacks and carry one request's context into another's, and concurrent
    requests would share (and could alter) one object."""

    kind: type[SmartImagingError]
    args: tuple[Any, ...]
    attributes: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, exc: SmartImagingError) -> Refusal:
        return cls(type(exc), exc.args, tuple((k, copy.copy(v)) for k, v in vars(exc).items()))

    def error(self) -> SmartImagingError:
        """A new exception equal to the one refused, with no traceback, cause or context."""
        exc = self.kind(*self.args)
        for name, value in self.attributes:
            setattr(exc, name, copy.copy(value))
        return exc

    def to_json(self) -> dict[str, Any]:
        """The refusal as JSON data: the error class by its dotted name, never pickled."""
        kind = f"{self.kind.__module__}.{self.kind.__qualname__}"
        return {"kind": kind, "args": list(self.args), "attributes": dict(self.attributes)}

    @classmethod
    def from_json(cls, data: Any) -> Refusal:
        """Back from ``to_json``; only classes of the one exception tree (else ValueError)."""
        kind = _error_classes().get(data["kind"])
        if kind is None or not isinstance(data["args"], list) or not isinstance(data["attributes"], dict):
            raise ValueError("not a refusal of this server")
        return cls(kind, tuple(data["args"]), tuple(data["attributes"].items()))


def _error_classes() -> dict[str, type[SmartImagingError]]:
    found: dict[str, type[SmartImagingError]] = {}
    pending: list[type[SmartImagingError]] = [SmartImagingError]
    while pending:
        kind = pending.pop()
        found[f"{kind.__module__}.{kind.__qualname__}"] = kind
        pending += kind.__subclasses__()
    return found


class SingleFlight(Generic[V]):
    """Run at most one computation per key at a time; concurrent callers await the same one.

    When it fails with a ``SmartImagingError``, each waiting caller raises its own copy (same
    cause), never the leader's instance.
    """

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[V]] = {}

    async def run(self, key: str, compute: Callable[[], Awaitable[V]]) -> V:
        while (running := self._running.get(key)) is not None:
            try:
                return await asyncio.shield(running)
            except SmartImagingError as exc:
                raise Refusal.of(exc).error() from exc.__cause__
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
    """A decision to remember for ``ttl`` seconds: a value, or the refusal to raise afresh."""

    value: V | None
    refusal: Refusal | None
    ttl: float

    @classmethod
    def granted(cls, value: V, ttl: float) -> Outcome[V]:
        return cls(value, None, ttl)

    @classmethod
    def refused(cls, exc: SmartImagingError, ttl: float) -> Outcome[V]:
        return cls(None, Refusal.of(exc), ttl)

    def unwrap(self) -> V:
        """The value, or raise a new instance of the refused error."""
        if self.refusal is not None:
            raise self.refusal.error()
        assert self.value is not None
        return self.value


@dataclass(frozen=True)
class SharedOutcomes(Generic[V]):
    """Where a ``DecisionCache`` shares its outcomes: ``state`` (keys already in the user's
    namespace, ``state.scoped``), values as JSON through ``encode``/``decode``. An outcome that
    does not encode stays in this process; one that does not decode is a miss."""

    state: SharedState
    encode: Callable[[V], Any]
    decode: Callable[[Any], V]

    async def load(self, key: str) -> Outcome[V] | None:
        """The stored outcome with the seconds it has left as its TTL, or None."""
        try:
            found = await self.state.get_ttl(key)
        except StateUnavailable:
            return None
        if found is None:
            return None
        try:
            data = json.loads(found[0])
            if "refusal" in data:
                return Outcome(None, Refusal.from_json(data["refusal"]), found[1])
            return Outcome(self.decode(data["grant"]), None, found[1])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.debug("shared decision %s ignored: %s", key[:8], type(exc).__name__)
            return None

    async def store(self, key: str, outcome: Outcome[V]) -> None:
        if not outcome.ttl > 0:
            return  # not to be remembered (a TTL of 0 or NaN)
        try:
            data = (
                {"refusal": outcome.refusal.to_json()}
                if outcome.refusal is not None
                else {"grant": self.encode(outcome.unwrap())}
            )
            text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return  # not JSON: remembered in this process only
        with contextlib.suppress(StateUnavailable):  # remembered here; the outage is logged once
            await self.state.set(key, text, outcome.ttl)


class DecisionCache(Generic[V]):
    """``TtlCache`` + ``SingleFlight``: compute an ``Outcome`` once per key and remember it
    (here, and in ``shared`` when given)."""

    def __init__(
        self,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedOutcomes[V] | None = None,
    ) -> None:
        self._cache: TtlCache[str, Outcome[V]] = TtlCache(max_entries, clock=clock)
        self._flight: SingleFlight[Outcome[V]] = SingleFlight()
        self._shared = shared

    async def get_or_compute(self, key: str, compute: Callable[[], Awaitable[Outcome[V]]]) -> V:
        """The remembered outcome for ``key``, else computed once; a refusal raises a new error on
        every call. A computation that raises (a transient 502/503) is not remembered."""
        cached = self._cache.get(key)
        if cached is None:
            cached = await self._flight.run(key, lambda: self._compute_and_store(key, compute))
        return cached.unwrap()

    async def _compute_and_store(self, key: str, compute: Callable[[], Awaitable[Outcome[V]]]) -> Outcome[V]:
        shared = self._shared
        outcome = await shared.load(key) if shared is not None else None
        if outcome is None:
            outcome = await compute()
            if shared is not None:
                await shared.store(key, outcome)
        self._cache.put(key, outcome, outcome.ttl)
        return outcome

    def forget(self, key: str) -> None:
        self._cache.pop(key)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
