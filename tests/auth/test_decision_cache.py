import asyncio

import pytest

from smart_imaging.auth.decision_cache import DecisionCache, Outcome, SingleFlight, token_key
from smart_imaging.cache import TtlCache
from smart_imaging.errors import Unauthorized


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_key_is_a_hash_not_the_token() -> None:
    token = "secret-token-value"
    key = token_key(token)
    assert token not in key and len(key) == 64
    assert key == token_key(token) and key != token_key(token + "x")


def test_ttl_cache_expiry_and_bound() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(max_entries=2, clock=clock)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") == 1  # a is now most recently used
    cache.put("c", 3, 10)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    clock.now += 10
    assert cache.get("a") is None and len(cache) == 1
    cache.put("d", 4, 0)
    assert cache.get("d") is None


async def test_single_flight_shares_one_computation() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 7

    tasks = [asyncio.create_task(flight.run("k", compute)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == [7] * 50
    assert calls == 1


async def test_single_flight_shares_failures_and_then_retries() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(*(flight.run("k", failing) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and calls == 1
    with pytest.raises(RuntimeError):
        await flight.run("k", failing)
    assert calls == 2


async def test_decision_cache_keeps_positive_and_negative_outcomes_for_their_ttl() -> None:
    clock = Clock()
    cache: DecisionCache[str] = DecisionCache(clock=clock)
    calls = 0

    async def grant() -> Outcome[str]:
        nonlocal calls
        calls += 1
        return Outcome.granted("granted", 60)

    async def refuse() -> Outcome[str]:
        nonlocal calls
        calls += 1
        return Outcome.refused(Unauthorized("inactive"), 5)

    assert await cache.get_or_compute("good", grant) == "granted"
    assert await cache.get_or_compute("good", grant) == "granted"
    assert calls == 1
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await cache.get_or_compute("bad", refuse)
    assert calls == 2
    clock.now += 6
    with pytest.raises(Unauthorized):
        await cache.get_or_compute("bad", refuse)
    assert calls == 3
    clock.now += 60
    await cache.get_or_compute("good", grant)
    assert calls == 4


async def test_transient_failures_are_not_cached() -> None:
    cache: DecisionCache[str] = DecisionCache()
    calls = 0

    async def down() -> Outcome[str]:
        nonlocal calls
        calls += 1
        raise ConnectionError("EHR down")

    for _ in range(3):
        with pytest.raises(ConnectionError):
            await cache.get_or_compute("k", down)
    assert calls == 3 and len(cache) == 0
