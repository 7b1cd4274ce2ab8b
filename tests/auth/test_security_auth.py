"""Security regressions in the authorization layer: expiry edge cases, single flight."""

from __future__ import annotations

import asyncio

import pytest

from smart_imaging.auth.claims import TokenPolicy, check_token
from smart_imaging.auth.decision_cache import SingleFlight
from smart_imaging.cache import TtlCache
from smart_imaging.errors import Unauthorized

NOW = 1_700_000_000.0
GOOD = {"active": True, "exp": NOW + 60, "scope": "patient/ImagingStudy.rs", "patient": "p1"}


@pytest.mark.parametrize(
    "claim, value",
    [
        ("exp", float("nan")),
        ("exp", float("inf")),
        ("nbf", float("nan")),
        ("nbf", float("-inf")),
    ],
)
def test_non_finite_exp_or_nbf_is_refused(claim: str, value: float) -> None:
    """Python's json accepts NaN and Infinity; an exp of NaN compared false with every time,
    so the token never expired and its decision was cached forever."""
    with pytest.raises(Unauthorized):
        check_token({**GOOD, claim: value}, TokenPolicy(), NOW)


def test_ttl_cache_never_keeps_an_entry_with_a_nan_ttl() -> None:
    cache: TtlCache[str, int] = TtlCache()
    cache.put("k", 1, float("nan"))
    assert cache.get("k") is None and len(cache) == 0


async def test_single_flight_leader_cancelled_does_not_cancel_the_others() -> None:
    """A client that disconnects while its request leads an introspection must not make the
    concurrent requests with the same token fail: one of them computes again."""
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)  # the leader, cancelled below
        await gate.wait()
        return 7

    leader = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0)
    followers = [asyncio.create_task(flight.run("k", compute)) for _ in range(3)]
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0.01)
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*followers), 5) == [7, 7, 7]
    assert calls == 2
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_single_flight_cancelled_follower_leaves_the_leader_alone() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def compute() -> int:
        await gate.wait()
        return 7

    leader = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0)
    follower = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0)
    follower.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await leader == 7
    with pytest.raises(asyncio.CancelledError):
        await follower
