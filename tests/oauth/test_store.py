"""The ``StateStore``s: expiry, single use under concurrency and taking over expired entries on
both SQLite and Redis (``redis_store`` over a real ``redis-server``, values tagged); SQLite's
purge, persistence across reopening, private files and the default folder's safety checks; a
broken store of either kind is 503, and the Redis one is used again once Redis is back."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from smart_imaging.errors import Unavailable
from smart_imaging.oauth import sqlite_store, stores
from smart_imaging.oauth.redis_store import SharedStateStore
from smart_imaging.oauth.sqlite_store import SqliteStore
from smart_imaging.oauth.store import StateStore, secret_key
from smart_imaging.state import open_state
from tests.support.redis import RedisServer, redis_server

__all__ = ["redis_server"]  # the fixture, for the Redis runs


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """A store and its time: SQLite with a clock the test moves, Redis in real time (short TTLs)."""

    store: StateStore
    now: Callable[[], float]
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    if request.param == "sqlite":
        clock = Clock()

        async def move(seconds: float) -> None:
            clock.now += seconds

        store: StateStore = SqliteStore(tmp_path / "s.sqlite3", clock=clock)
        yield World(store, clock, move)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        server.client().flushdb()
        state = await open_state(server.url, b"test-key" * 4)
        store = SharedStateStore(state)
        yield World(store, time.time, asyncio.sleep)
        await state.aclose()
    await store.aclose()


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])


async def test_entries_expire(world: World) -> None:
    store, now = world.store, world.now()
    await store.put("token", "k1", {"a": [1, "x"]}, now + 0.3)
    await store.put("token", "k2", {"b": 2}, now + 100)
    assert await store.get_many([("token", "k1"), ("token", "nope"), ("other", "k1")]) == [
        {"a": [1, "x"]},
        None,
        None,
    ]
    await world.advance(0.4)
    assert await store.get("token", "k1") is None  # expired: absent at once
    assert await store.take("token", "k1") is None
    assert await store.get("token", "k2") == {"b": 2}
    await store.put("token", "gone", {}, world.now() - 1)  # already expired: never visible
    assert await store.get("token", "gone") is None


async def test_entries_reopen_from_disk(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteStore(tmp_path / "s.sqlite3", clock=clock)
    await store.put("token", "k2", {"b": 2}, clock.now + 100)
    await store.aclose()
    reopened = SqliteStore(tmp_path / "s.sqlite3", clock=clock)
    assert await reopened.get("token", "k2") == {"b": 2}
    await reopened.aclose()
    assert (tmp_path / "s.sqlite3").stat().st_mode & 0o777 == 0o600


async def test_take_and_add_are_single_use_under_concurrency(world: World) -> None:
    store = world.store
    await store.put("code", "c", {"v": 1}, world.now() + 60)
    taken = await asyncio.gather(*(store.take("code", "c") for _ in range(20)))
    assert taken.count({"v": 1}) == 1 and taken.count(None) == 19
    added = await asyncio.gather(*(store.add("used", "c", {}, world.now() + 60) for _ in range(20)))
    assert added.count(True) == 1
    await store.delete("used", "c")
    assert await store.get("used", "c") is None and await store.add("used", "c", {}, world.now() + 60)


async def test_add_takes_over_an_expired_entry(world: World) -> None:
    store = world.store
    assert await store.add("jti", "j", {"n": 1}, world.now() + 0.3)
    assert not await store.add("jti", "j", {"n": 2}, world.now() + 0.3)
    assert await store.get("jti", "j") == {"n": 1}
    await world.advance(0.4)
    assert await store.add("jti", "j", {"n": 3}, world.now() + 5)  # the old one had expired
    assert await store.get("jti", "j") == {"n": 3}


async def test_purge_deletes_expired_rows(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path, clock=clock)
    for i in range(5):
        await store.put("session", f"s{i}", {}, clock.now + 1)
    assert rows(path) == 5
    clock.now += sqlite_store.PURGE_INTERVAL + 2
    await store.put("session", "fresh", {}, clock.now + 100)  # a write purges what expired
    assert rows(path) == 1
    await store.aclose()


async def test_a_broken_store_is_503_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()  # a folder where the file should be
    store = SqliteStore(tmp_path / "dir.sqlite3")
    with pytest.raises(Unavailable):
        await store.get("token", "k")


async def test_redis_down_is_503_for_every_call_and_the_store_recovers() -> None:
    server = RedisServer().start()
    state = await open_state(server.url, b"test-key" * 4)
    store = SharedStateStore(state)
    try:
        await store.put("code", "c", {"v": 1}, time.time() + 60)
        server.kill()
        calls = [
            store.get("code", "c"),
            store.take("code", "c"),
            store.add("used", "c", {}, time.time() + 60),
            store.put("token", "t", {}, time.time() + 60),
            store.get_many([("token", "t")]),
        ]
        for call in calls:
            with pytest.raises(Unavailable) as caught:
                await call
            assert caught.value.status == 503 and "Retry-After" in caught.value.headers
        server.start()
        await asyncio.sleep(1.1)  # the next probe is due
        assert await store.add("used", "c", {}, time.time() + 60)
        assert await store.get("used", "c") == {}
    finally:
        await state.aclose()
        server.stop()


def test_secret_keys_are_hashes_not_the_secret() -> None:
    key = secret_key("a-token")
    assert "a-token" not in key and len(key) == 64 and key == secret_key("a-token") != secret_key("b-token")


async def test_the_default_folder_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    monkeypatch.setattr(stores, "default_state_dir", lambda: shared)
    monkeypatch.delenv("SMART_IMAGING_STATE_DIR", raising=False)
    lease = stores.acquire(None)
    with pytest.raises(Unavailable):
        await lease.store.get("token", "k")
    await lease.aclose()
    os.chmod(shared, 0o700)
    lease = stores.acquire(None)
    assert await lease.store.get("token", "k") is None
    await lease.aclose()


async def test_leases_share_one_store_and_close_it_with_the_last(tmp_path: Path) -> None:
    first, second = stores.acquire(tmp_path), stores.acquire(tmp_path)
    assert first.store is second.store
    await first.store.put("k", "v", {}, time.time() + 60)
    await first.aclose()
    assert await second.store.get("k", "v") == {}  # still open for the other holder
    await second.aclose()
    third = stores.acquire(tmp_path)
    assert third.store is not first.store and await third.store.get("k", "v") == {}
    await third.aclose()
