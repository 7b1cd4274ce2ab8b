"""smart_imaging.cache.TtlCache: the one TTL + LRU cache type (pure, fake clock)."""

from __future__ import annotations

import pytest

from smart_imaging.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("ttl", [0.0, -1.0, float("nan"), float("inf"), float("-inf")])
def test_a_ttl_that_is_not_finite_and_positive_stores_nothing_and_drops_the_old_entry(ttl: float) -> None:
    cache: TtlCache[str, int] = TtlCache()
    cache.put("k", 1, 10)
    cache.put("k", 2, ttl)
    assert cache.get("k") is None and len(cache) == 0


def test_each_entry_expires_after_its_own_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str, str] = TtlCache(clock=clock)
    cache.put("short", "s", 5)
    cache.put("long", "l", 50)
    clock.now += 5
    assert cache.get("short") is None and cache.get("long") == "l"
    clock.now += 45
    assert cache.get("long") is None


def test_the_default_ttl_applies_unless_put_names_one() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl=10, clock=clock)
    cache.put("default", 1)
    cache.put("own", 2, 100)
    clock.now += 10
    assert cache.get("default") is None and cache.get("own") == 2


def test_without_any_ttl_entries_have_no_time_limit_but_the_bound_holds() -> None:
    clock = Clock()
    evicted: list[tuple[str, int]] = []
    cache: TtlCache[str, int] = TtlCache(2, clock=clock, on_evict=lambda k, v: evicted.append((k, v)))
    cache.put("a", 1)
    cache.put("b", 2)
    clock.now += 10**9
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert evicted == [("b", 2)]
    assert cache.get("b") is None and sorted(cache.values()) == [1, 3]


def test_expired_and_popped_entries_are_not_reported_as_evicted() -> None:
    clock = Clock()
    evicted: list[str] = []
    cache: TtlCache[str, int] = TtlCache(10, clock=clock, on_evict=lambda k, v: evicted.append(k))
    cache.put("a", 1, 5)
    cache.put("b", 2, 5)
    clock.now += 5
    assert cache.get("a") is None
    assert cache.pop("b") is None  # expired: nothing live to return
    cache.put("c", 3, 5)
    assert cache.pop("c") == 3 and cache.get("c") is None
    assert evicted == []


def test_keys_may_be_tuples_and_values_skips_expired_entries() -> None:
    clock = Clock()
    cache: TtlCache[tuple[str, str], int] = TtlCache(clock=clock)
    cache.put(("t", "study"), 1, 5)
    cache.put(("t", "other"), 2, 50)
    clock.now += 5
    assert cache.values() == [2]
    cache.clear()
    assert len(cache) == 0 and cache.get(("t", "other")) is None
