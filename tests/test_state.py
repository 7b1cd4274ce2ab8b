"""Shared state in-process (fast tier): the ``SharedState`` contract on ``MemoryState``, key
namespaces, integrity tags, and the outage bookkeeping (one warning per outage, probes)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

import pytest

from smart_imaging.state import MemoryState, SharedState, digest, scoped
from smart_imaging.state.outages import Outages
from smart_imaging.state.signed import SignedState, state_secret

Wait = Callable[[float], Awaitable[None]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def check_contract(state: SharedState, wait: Wait, ttl: float) -> None:
    """What every implementation must do; ``wait(seconds)`` lets ``ttl`` pass for it."""
    assert await state.get("k") is None and await state.get_ttl("k") is None
    await state.set("k", '{"a": 1}', ttl)
    assert await state.get("k") == '{"a": 1}'
    found = await state.get_ttl("k")
    assert found is not None and found[0] == '{"a": 1}' and 0 < found[1] <= ttl
    assert await state.get_many(["k", "nope", "k"]) == ['{"a": 1}', None, '{"a": 1}']
    assert await state.get_many([]) == []
    assert not await state.add("k", "other", ttl)  # a live value stays
    assert await state.take("k") == '{"a": 1}' and await state.take("k") is None
    assert await state.add("k", "second", ttl) and await state.get("k") == "second"
    await state.delete("k")
    assert await state.get("k") is None
    for bad in (0.0, -1.0, math.nan, math.inf):  # stores nothing, and drops what was there
        await state.set("bad", "v", ttl)
        await state.set("bad", "v", bad)
        assert await state.get("bad") is None
    await state.set("short", "v", ttl)
    await wait(ttl * 1.5)
    assert await state.get("short") is None and await state.take("short") is None
    assert await state.add("short", "again", ttl)  # an expired value is no obstacle
    assert await state.ping()


async def check_single_use(state: SharedState) -> None:
    """``take`` and ``add`` hand a value to one of many concurrent callers."""
    await state.set("code", "v", 60)
    taken = await asyncio.gather(*(state.take("code") for _ in range(20)))
    assert taken.count("v") == 1 and taken.count(None) == 19
    added = await asyncio.gather(*(state.add("used", "x", 60) for _ in range(20)))
    assert added.count(True) == 1


async def test_memory_state_keeps_the_contract() -> None:
    clock = Clock()

    async def wait(seconds: float) -> None:
        clock.now += seconds

    state = MemoryState(clock=clock)
    assert not state.shared
    await check_contract(state, wait, ttl=10)
    await check_single_use(state)


async def test_memory_state_is_bounded() -> None:
    state = MemoryState(max_entries=3)
    for i in range(5):
        await state.set(f"k{i}", "v", 60)
    assert await state.get_many([f"k{i}" for i in range(5)]) == [None, None, "v", "v", "v"]


async def test_scoped_views_keep_namespaces_apart() -> None:
    state = MemoryState()
    one, two = scoped(state, "authz", "t1"), scoped(state, "authz", "t2")
    await one.set("k", "1", 60)
    await two.set("k", "2", 60)
    assert (await one.get("k"), await two.get("k"), await state.get("authz:t1:k")) == ("1", "2", "1")
    nested = scoped(one, "inner")
    await nested.set("x", "3", 60)
    assert nested.prefix == "authz:t1:inner:" and await state.get("authz:t1:inner:x") == "3"
    await one.aclose()  # a view closes nothing
    assert await state.get("authz:t1:k") == "1"


def test_digests_are_stable_and_hide_their_parts() -> None:
    key = digest("tenant", "1.2.3", "MRN-1")
    assert key == digest("tenant", "1.2.3", "MRN-1") != digest("tenant", "1.2.3", "MRN-2")
    assert "MRN-1" not in key and len(key) == 32
    assert digest("ab", "c") != digest("a", "bc")


async def test_signed_values_read_back_and_forged_ones_are_absent(caplog: pytest.LogCaptureFixture) -> None:
    inner = MemoryState()
    state = SignedState(inner, state_secret(b"k" * 32))
    await check_contract(state, _sleep, ttl=0.05)
    await state.set("grant", '{"patient": "a"}', 60)
    assert (await inner.get("grant") or "").endswith('.{"patient": "a"}')
    stolen = await inner.get("grant")
    assert stolen is not None
    await inner.set("other-token", stolen, 60)  # a value moved under another key
    await inner.set("planted", "x" * 43 + '.{"patient": "b"}', 60)  # written without the secret
    other = SignedState(inner, state_secret(b"j" * 32))  # a replica with another key
    with caplog.at_level(logging.WARNING, "smart_imaging.state"):
        assert await state.get("other-token") is None and await state.get("planted") is None
        assert await state.get_many(["grant", "planted"]) == ['{"patient": "a"}', None]
        assert await other.get("grant") is None and await state.get_ttl("planted") is None
    assert len([r for r in caplog.records if "integrity" in r.getMessage()]) == 2  # once per process


def test_outages_warn_once_and_probe_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outages = Outages("Redis at redis://127.0.0.1:1/0", retry_interval=1.0, clock=clock)
    with caplog.at_level(logging.INFO, "smart_imaging.state"):
        assert outages.should_try()
        for _ in range(100):
            outages.failed(ConnectionError("refused"))
        assert [outages.should_try() for _ in range(3)] == [False, False, False]
        clock.now += 1.0
        assert [outages.should_try() for _ in range(3)] == [True, False, False]  # one probe
        outages.failed(ConnectionError("still refused"))
        clock.now += 1.0
        assert outages.should_try()
        outages.succeeded()
        assert all(outages.should_try() for _ in range(3)) and not outages.down
        outages.failed(OSError("again"))
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "unreachable" in m]) == 2 and outages.outages == 2
    assert len([m for m in messages if "reachable again" in m]) == 1
    assert all("password" not in m for m in messages)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
