"""``RedisState`` against a real ``redis-server`` child: the ``SharedState`` contract, values
seen by another client (another replica), integrity tags over Redis, and outages: an
unreachable Redis is ``StateUnavailable`` at once (one warning per outage, no timeout per call),
and the same client uses a restarted Redis again."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from smart_imaging.state import StateUnavailable, open_state
from smart_imaging.state.redis_state import RedisState, describe
from smart_imaging.state.signed import SignedState
from tests.support.redis import RedisServer, redis_server
from tests.test_state import check_contract, check_single_use

__all__ = ["redis_server"]  # the fixture


def test_urls_are_described_without_credentials() -> None:
    assert describe("redis://:s3cret@cache.example:6380/2") == "redis://cache.example:6380/2"
    assert describe("rediss://user:pw@h/0") == "rediss://h/0"


async def test_redis_state_keeps_the_contract(redis_server: RedisServer) -> None:
    state = RedisState(redis_server.url)
    assert state.shared
    try:
        await check_contract(state, asyncio.sleep, ttl=0.2)
        await check_single_use(state)
    finally:
        await state.delete("code")
        await state.delete("used")
        await state.aclose()


async def test_another_client_sees_what_one_wrote_and_expiry_is_redis_time(
    redis_server: RedisServer,
) -> None:
    one, two = RedisState(redis_server.url), RedisState(redis_server.url)
    try:
        await one.set("seen", "by-two", 30)
        assert await two.get("seen") == "by-two"
        assert 29 < redis_server.client().pttl("seen") / 1000 <= 30  # PX as asked
        found = await two.get_ttl("seen")
        assert found is not None and 29 < found[1] <= 30
        assert await two.take("seen") == "by-two" and await one.get("seen") is None
    finally:
        await one.aclose()
        await two.aclose()


async def test_open_state_tags_values_and_ignores_planted_ones(redis_server: RedisServer) -> None:
    state = await open_state(redis_server.url, b"k" * 32)
    assert isinstance(state, SignedState) and state.shared
    try:
        await state.set("grant", "granted", 30)
        raw = redis_server.client()
        assert raw.get("grant") != "granted" and str(raw.get("grant")).endswith(".granted")
        raw.set("grant", "x" * 43 + ".forged", px=30_000)
        assert await state.get("grant") is None
    finally:
        await state.delete("grant")
        await state.aclose()


async def test_an_outage_fails_fast_warns_once_and_ends_when_redis_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer().start()
    state = RedisState(server.url, retry_interval=0.2)
    try:
        await state.set("k", "v", 60)
        server.kill()
        with caplog.at_level(logging.INFO, "smart_imaging.state"):
            started = time.monotonic()
            for _ in range(200):
                with pytest.raises(StateUnavailable):
                    await state.get("k")
            assert time.monotonic() - started < 10  # skipped while down: 200 timeouts would take far longer
            assert not await state.ping()
            server.start()  # same port, empty (no persistence)
            await asyncio.sleep(0.25)  # the next probe is due
            assert await state.get("k") is None  # reachable again; what it held is gone
            await state.set("k", "after", 60)
            assert await state.get("k") == "after"
        messages = [r.getMessage() for r in caplog.records]
        assert len([m for m in messages if "unreachable" in m]) == 1, messages
        assert len([m for m in messages if "reachable again" in m]) == 1, messages
        assert state.outages.outages == 1
    finally:
        await state.aclose()
        server.stop()


async def test_redis_absent_at_start_is_a_warning_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer()  # a port nothing listens on yet
    with caplog.at_level(logging.WARNING, "smart_imaging.state"):
        state = await open_state(server.url, b"k" * 32)
    try:
        assert any("unreachable" in r.getMessage() for r in caplog.records)
        server.start()
        await asyncio.sleep(1.1)  # the default probe interval
        await state.set("late", "ok", 30)
        assert await state.get("late") == "ok"
    finally:
        await state.aclose()
        server.stop()
